"""Every log reader (Zeek TSV, Zeek JSON, JSON Lines, CSV) reads gzip, bzip2 and zstd logs,
known by their magic bytes whatever their names, with the same sightings and the same line
accounting as the plain files, in the pre-filter and in the full read; a compression bomb is
a problem for that file and the hunt goes on."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from tests.builders.sboms import compress
from tests.hunt.conftest import INDICATORS, dns, make_logs

from taintline.case import Case
from taintline.compressed import plain_name
from taintline.hunt.model import Field, HuntOptions
from taintline.hunt.service import HuntResult, run_hunt
from taintline.hunt.synth import write_zeek_tsv

SUFFIX = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}
#: Files that keep their plain name when compressed (detected by content alone).
DISGUISED = {"proxy.csv", "ssl.json", "dns.log"}
OPTIONS = {Field.DOMAIN: "dns.question.name"}


def _plain_logs(folder: Path) -> dict[str, bytes]:
    """The conftest logs as plain bytes, by plain file name (the rotated gzip one expanded)."""
    out = {}
    for path in make_logs(folder).values():
        data = path.read_bytes()
        out[plain_name(path.name)] = gzip.decompress(data) if path.name.endswith(".gz") else data
    return out


def _summary(result: HuntResult) -> dict[str, Any]:
    return {
        "sightings": sorted(
            (s.host, s.indicator_key, s.count, s.first_seen, s.last_seen, s.fields)
            for s in result.sightings
        ),
        "lines": sorted(
            (plain_name(Path(loc.path).name), loc.lines) if hasattr(loc, "lines") else ()
            for s in result.sightings
            for loc in s.locations
        ),
        "files": sorted(
            (plain_name(Path(f.path).name), f.lines, f.records, f.comments, f.blank, f.garbage)
            for f in result.files
        ),
        "problems": [p.message for f in result.files for p in f.problems]
        + [p.message for p in result.problems],
    }


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _plain_logs(tmp_path_factory.mktemp("plain-logs"))


@pytest.fixture(scope="module")
def expected(logs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("baseline")
    folder = base / "logs"
    folder.mkdir()
    for name, data in logs.items():
        (folder / name).write_bytes(data)
    with Case(base / "case.duckdb") as case:
        case.add_indicators(INDICATORS)
        found = _summary(run_hunt(case, [folder], HuntOptions(field_map=OPTIONS), record=False))
    assert len(found["files"]) == len(logs) and found["sightings"] and not found["problems"]
    return found


@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "full-read"])
@pytest.mark.parametrize("compression", SUFFIX)
def test_every_reader_reads_every_compression(
    tmp_path: Path,
    logs: dict[str, bytes],
    expected: dict[str, Any],
    compression: str,
    prefilter: bool,
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for name, data in logs.items():
        shown = name if name in DISGUISED else name + SUFFIX[compression]
        (folder / shown).write_bytes(compress(data, compression))
    with Case(tmp_path / "case.duckdb") as case:
        case.add_indicators(INDICATORS)
        options = HuntOptions(field_map=OPTIONS, prefilter=prefilter)
        got = _summary(run_hunt(case, [folder], options, record=False))
    assert got == expected
    assert not list(tmp_path.glob("**/taintline-plain-*"))  # plain copies are removed


@pytest.mark.parametrize("compression", SUFFIX)
def test_bomb_is_a_problem_for_that_file_and_the_hunt_goes_on(
    tmp_path: Path, compression: str
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    plain = tmp_path / "dns.log"
    # an evil query first, then 20,000 identical benign lines: 1.5 MB from a few KB
    write_zeek_tsv(plain, "dns", [dns(0, "10.0.0.1", "a.evil.com")], close=False)
    write_zeek_tsv(tmp_path / "one.log", "dns", [dns(1, "10.0.0.2", "ok.org")], close=False)
    benign = (tmp_path / "one.log").read_bytes().splitlines(keepends=True)[-1]
    bomb = folder / f"dns.log{SUFFIX[compression]}"
    bomb.write_bytes(compress(plain.read_bytes() + benign * 20_000, compression))
    assert bomb.stat().st_size < 100_000
    write_zeek_tsv(folder / "other.log", "dns", [dns(5, "10.0.0.3", "b.evil.com")])
    with Case(tmp_path / "case.duckdb") as case:
        case.add_indicators(INDICATORS)
        for prefilter in (True, False):
            options = HuntOptions(prefilter=prefilter, max_expanded_bytes=300_000)
            result = run_hunt(case, [folder], options, record=False)
            by_name = {Path(f.path).name: f for f in result.files}
            problems = [p.message for p in by_name[bomb.name].problems]
            assert any(
                f"{compression} data expands to more than the limit of 300,000 bytes" in m
                and "compression bomb" in m
                and "reading stopped there" in m
                for m in problems
            ), problems
            assert 0 < by_name[bomb.name].lines < 300_000 // 60
            assert not by_name["other.log"].problems
            hosts = {(s.host, s.indicator_key) for s in result.sightings}
            assert hosts == {("10.0.0.1", "domain:evil.com"), ("10.0.0.3", "domain:evil.com")}
