from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taintline.case import Case


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    with Case(tmp_path / "case.duckdb") as c:
        yield c


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for every Spark test of this process (a JVM start costs
    seconds). It carries the settings of both engines: the hunt's (UTC times, NULL on bad
    casts) and the cascade's (Arrow); the engines' own ``getOrCreate`` calls get it back.
    The Spark tests share one xdist group, so one worker starts one JVM."""
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    pytest.importorskip("pyspark")
    from taintline.sparklocal import local_session

    session = local_session(
        "taintline-tests",
        conf={
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.ansi.enabled": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
        },
    )
    yield session
    session.stop()
