"""The literal pre-filter (Zeek TSV) gives exactly what parsing every line gives."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from tests.hunt.conftest import dns, make_logs

from taintline.case import Case
from taintline.hunt import prefilter
from taintline.hunt.engines import duckdb_engine
from taintline.hunt.model import FileStats, HuntOptions, Sighting
from taintline.hunt.service import run_hunt
from taintline.hunt.synth import FIELDS, write_zeek_tsv, zeek_header, zeek_line


def _counts(files: list[FileStats]) -> dict[str, tuple[int, int, int, int, int]]:
    return {Path(f.path).name: (f.lines, f.records, f.comments, f.blank, f.garbage) for f in files}


def _sightings(sightings: list[Sighting]) -> list[tuple[object, ...]]:
    return sorted(
        (s.host, str(s.indicator_type), s.indicator_value, s.count, s.first_seen, s.last_seen,
         tuple((Path(loc.path).name, loc.first_line, loc.last_line, loc.lines) for loc in s.locations))
        for s in sightings
    )  # fmt: skip


def _both(case: Case, paths: list[Path], **options: int) -> tuple[object, object]:
    fast = run_hunt(case, paths, HuntOptions(prefilter=True, **options), record=False)  # type: ignore[arg-type]
    full = run_hunt(case, paths, HuntOptions(prefilter=False, **options), record=False)  # type: ignore[arg-type]
    assert _counts(fast.files) == _counts(full.files)
    assert _sightings(fast.sightings) == _sightings(full.sightings)
    for f in fast.files:
        if f.format == "zeek-tsv":  # (a CSV's header line is in neither count)
            assert f.lines == f.records + f.comments + f.blank + f.garbage
    return fast, full


def _hostile_dns(path: Path) -> None:
    records = [
        dns(i, f"10.0.1.{i % 7}", "a.evil.com" if i % 37 == 0 else f"h{i}.example.org")
        for i in range(3000)
    ]
    extra = {
        10: "garbage",  # too few fields
        20: "\t".join(["x"] * 30),  # too many fields
        30: "",  # blank
        31: "",
        40: "1680082800.0\tCbad\t10.9.9.9\tq.evil.com",  # truncated record with a hit
        900: "#fields\tts\tuid",  # a repeated header in the middle (rotated files concatenated)
        1500: "",
    }
    write_zeek_tsv(path, "dns", records, extra_lines=extra)
    data = path.read_bytes()
    data = data.replace(b"h5.example.org", b"h5.ex\xffample.org", 1)  # invalid UTF-8
    data = data.replace(b"h7.example.org", b"h7.\xc3\xa9xample.org", 1)  # valid non-ASCII
    path.write_bytes(data)


@pytest.mark.skipif(not prefilter.available(), reason="hyperscan is not installed")
@pytest.mark.parametrize("block", [prefilter.BLOCK, 4096, 257])
def test_hostile_file_same_counts_and_sightings(
    hunt_case: Case, tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block boundaries everywhere (small blocks), garbage, blanks, comments, bad UTF-8."""
    monkeypatch.setattr(prefilter, "BLOCK", block)
    path = tmp_path / "dns.log"
    _hostile_dns(path)
    fast, _ = _both(hunt_case, [path])
    (stats,) = fast.files  # type: ignore[attr-defined]
    assert stats.garbage == 4 and stats.blank == 3 and stats.records == 2999


@pytest.mark.skipif(not prefilter.available(), reason="hyperscan is not installed")
def test_every_match_kind_and_gzip(hunt_case: Case, tmp_path: Path) -> None:
    paths = make_logs(tmp_path / "logs")
    _both(hunt_case, list(paths.values()))


@pytest.mark.skipif(not prefilter.available(), reason="hyperscan is not installed")
@pytest.mark.parametrize("batch_bytes", [duckdb_engine.BATCH_BYTES, 1])
def test_worker_processes_and_batches_give_the_same_answer(
    hunt_case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int
) -> None:
    """Candidates of several files matched in one batch (or one flush per file) keep their
    files and line numbers."""
    monkeypatch.setattr(prefilter, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(duckdb_engine, "BATCH_BYTES", batch_bytes)
    paths = []
    for n in range(3):
        path = tmp_path / f"dns.{n}.log"
        _hostile_dns(path)
        paths.append(path)
    fast, _ = _both(hunt_case, paths)
    assert len(fast.files) == 3  # type: ignore[attr-defined]


@pytest.mark.skipif(not prefilter.available(), reason="hyperscan is not installed")
def test_truncated_gzip_and_long_line(
    hunt_case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prefilter, "BLOCK", 4096)
    body = zeek_header("dns", FIELDS["dns"]) + "".join(
        zeek_line(FIELDS["dns"], dns(i, "10.0.2.1", "x.evil.com")) + "\n" for i in range(3000)
    )
    data = gzip.compress(body.encode())
    cut = tmp_path / "dns.log.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    long = tmp_path / "dns.log"
    records = [dns(i, "10.0.2.2", "y.evil.com") for i in range(50)]
    write_zeek_tsv(long, "dns", records, extra_lines={20: "evil.com " * 2000})  # > one block
    fast, _ = _both(hunt_case, [cut, long])
    by_name = {Path(f.path).name: f for f in fast.files}  # type: ignore[attr-defined]
    assert any("truncated gzip" in p.message for p in by_name["dns.log.gz"].problems)
    assert by_name["dns.log"].garbage == 1


@pytest.mark.skipif(not prefilter.available(), reason="hyperscan is not installed")
def test_over_long_line_inside_a_block_is_garbage_with_or_without_a_hit(
    hunt_case: Case, tmp_path: Path
) -> None:
    """A line over --max-line-bytes but shorter than a read block, with the right number of
    fields: garbage for both engines, whether or not it holds an indicator."""
    records = [dns(i, "10.0.4.1", f"h{i}.example.org") for i in range(40)]
    long_fields = ["1680082800.0", "Clong", "10.0.4.9"] + ["x" * 400] * (len(FIELDS["dns"]) - 3)
    hit_fields = [*long_fields[:-1], "q.evil.com" + "x" * 400]
    path = tmp_path / "dns.log"
    write_zeek_tsv(
        path, "dns", records, extra_lines={5: "\t".join(long_fields), 9: "\t".join(hit_fields)}
    )
    fast, _ = _both(hunt_case, [path], max_line_bytes=4096)
    (stats,) = fast.files  # type: ignore[attr-defined]
    assert stats.garbage == 2 and stats.records == 40


@pytest.mark.skipif(not prefilter.available(), reason="hyperscan is not installed")
def test_flooded_prefilter_falls_back_to_the_full_read(
    hunt_case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prefilter, "FLOOD_FLOOR", 3)
    monkeypatch.setattr(prefilter, "FLOOD_SHARE", 0.0)
    path = tmp_path / "dns.log"
    write_zeek_tsv(path, "dns", [dns(i, "10.0.3.1", f"{i}.evil.com") for i in range(100)])
    fast, _ = _both(hunt_case, [path])
    (sighting,) = fast.sightings  # type: ignore[attr-defined]
    assert sighting.count == 100


def test_literals_cover_every_indicator_kind() -> None:
    got = prefilter.literals(
        ["evil.com"],
        ["raw.githubusercontent.com"],
        ["203.0.113.7", "2001:db8:1::66"],
        ["198.51.100.0/24", "10.20.16.0/20", "2001:db8:bad::/48"],
        ["a" * 64],
    )
    assert got is not None
    text = {g.decode() for g in got}
    assert {"evil.com", "raw.githubusercontent.com", "203.0.113.7", "2001:db8:1::66"} <= text
    assert "198.51.100." in text and "a" * 64 in text and "2001:" in text
    assert {f"10.20.{k}." for k in range(16, 32)} <= text and "10.20.15." not in text
    assert prefilter.literals([], [], [], ["10.0.0.0/7"], []) is None
