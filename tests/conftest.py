from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taintline.case import Case

# compiled YARA rules are cached in the user's cache folder (scan/rules.py): the tests keep
# theirs in a folder of their own (per test process), never in the developer's
os.environ["TAINTLINE_CACHE_DIR"] = tempfile.mkdtemp(prefix="taintline-test-cache-")


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    with Case(tmp_path / "case.duckdb") as c:
        yield c


_LOCAL_SPARK: dict[str, Any] = {}


@pytest.fixture
def spark() -> Iterator[Any]:
    """One local Spark session for every Spark test of this process (a JVM start costs
    seconds). It carries the settings of both engines: the hunt's (UTC times, NULL on bad
    casts) and the cascade's (Arrow); the engines' own sessions reuse it (and leave it
    running: ``sparklocal.session_scope`` stops only what it started). Should a test stop it
    anyway, the next test gets a new one instead of a dead session. The Spark tests share
    one xdist group, so one worker starts one JVM."""
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    pytest.importorskip("pyspark")
    from taintline.sparklocal import local_session, running_master

    session = _LOCAL_SPARK.get("session")
    if session is None or running_master() is None:
        session = local_session(
            "taintline-tests",
            conf={
                "spark.sql.session.timeZone": "UTC",
                "spark.sql.ansi.enabled": "false",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
            },
        )
        _LOCAL_SPARK["session"] = session
    yield session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    spark = _LOCAL_SPARK.pop("session", None)
    if spark is not None:
        spark.stop()
