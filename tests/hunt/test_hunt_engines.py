"""Both engines give identical sightings and counts on the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.builders.sboms import compress
from tests.hunt.conftest import make_logs

from taintline.case import Case
from taintline.hunt.engines.duckdb_engine import DuckDBEngine
from taintline.hunt.indicators import load_indicators
from taintline.hunt.model import Field, HuntOptions
from taintline.hunt.readers import discover
from taintline.hunt.sightings import fold

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]  # session: tests/conftest.py


def _run(
    engine: Any, case: Case, folder: Path, options: HuntOptions
) -> tuple[list[Any], list[Any]]:
    found = discover([folder], options.field_map)
    ind = load_indicators(case)
    result = engine.run(found.sources, ind, options)
    stats = sorted(
        (s.path, s.lines, s.records, s.comments, s.blank, s.garbage, s.hits) for s in result.stats
    )
    return fold(result.groups, ind), stats


def test_engines_agree(spark: Any, hunt_case: Case, tmp_path: Path) -> None:
    """The same sightings and per-file counts from DuckDB and Spark, on plain and compressed
    logs in one run (a Spark hunt costs tens of seconds in CI). Spark decompresses by name
    ending (.gz, .bz2); a zstd log and a gzip log without its ending are read from the plain
    copy the counting pass writes."""
    from taintline.hunt.engines.spark_engine import SparkEngine

    folder = tmp_path / "logs"
    paths = make_logs(folder)
    # Some garbage and a blank line too (inside a compressed log).
    with paths["dns"].open("a") as handle:
        handle.write("not a record\n\n")
    packed = {"dns": ("bzip2", ".bz2"), "conn": ("zstd", ".zst"), "http": ("gzip", "")}
    for key, (kind, suffix) in packed.items():
        path = paths[key]
        data = path.read_bytes()
        path.unlink()
        path.with_name(path.name + suffix).write_bytes(compress(data, kind))
    options = HuntOptions(field_map={Field.DOMAIN: "dns.question.name"})
    duck, duck_stats = _run(DuckDBEngine(), hunt_case, folder, options)
    sparked, spark_stats = _run(SparkEngine(spark), hunt_case, folder, options)
    assert len(duck) == 13
    assert sparked == duck
    assert spark_stats == duck_stats
