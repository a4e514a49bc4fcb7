from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
from tests.hunt.conftest import dns

from taintline.case import Case
from taintline.hunt.readers.textio import scan_file
from taintline.hunt.service import run_hunt
from taintline.hunt.synth import FIELDS, write_zeek_tsv, zeek_header, zeek_line


def _accounted(stats) -> None:
    assert stats.lines == stats.records + stats.comments + stats.blank + stats.garbage


def test_every_line_counted_with_garbage(hunt_case: Case, tmp_path: Path) -> None:
    records = [
        dns(i, f"10.0.1.{i % 7}", "ok.example.org" if i % 50 else "a.evil.com") for i in range(1000)
    ]
    extra = {
        10: "garbage",  # too few fields
        20: "\t".join(["x"] * 30),  # too many fields
        30: "",  # blank
        40: "1680082800.0\tCbad\t10.9.9.9",  # truncated record
    }
    path = tmp_path / "dns.log"
    write_zeek_tsv(path, "dns", records, extra_lines=extra)
    # invalid UTF-8 in a record's query
    data = path.read_bytes().replace(b"ok.example.org", b"ok.ex\xffample.org", 1)
    path.write_bytes(data)
    result = run_hunt(hunt_case, [path], record=False)
    (stats,) = result.files
    _accounted(stats)
    assert stats.lines == 8 + 1000 + 4 + 1
    assert stats.comments == 9 and stats.blank == 1
    assert stats.garbage == 4  # too few, too many, truncated, invalid UTF-8
    assert stats.records == 999
    # The indicator is seen on every 50th record; line numbers account for the inserted lines.
    lines = sorted(ln for s in result.sightings for loc in s.locations for ln in loc.lines)
    assert sum(s.count for s in result.sightings) == 20
    assert lines[0] == 9  # record 0
    assert 9 + 50 + 4 in [
        ln
        for s in result.sightings
        for loc in s.locations
        for ln in range(loc.first_line, loc.last_line + 1)
    ]


def test_duckdb_rows_agree_with_line_count(tmp_path: Path) -> None:
    """The counting pass and DuckDB see the same rows (no silent drop: no skip/comment)."""
    path = tmp_path / "dns.log.gz"
    write_zeek_tsv(
        path, "dns", [dns(i, "10.0.0.1", f"h{i}.example.org") for i in range(5000)], compress=True
    )
    scan = scan_file(path)
    cols = ", ".join(f"'{c}': 'VARCHAR'" for c in FIELDS["dns"])
    (rows,) = duckdb.sql(
        f"SELECT count(*) FROM read_csv('{path}', columns={{{cols}}}, delim='\t', quote='', escape='',"
        " header=false, auto_detect=false, ignore_errors=true) WHERE NOT starts_with(ts, '#')"
    ).fetchall()[0]
    assert rows == 5000 == scan.lines - scan.hash_lines


def test_truncated_gzip_is_read_up_to_the_damage(hunt_case: Case, tmp_path: Path) -> None:
    body = zeek_header("dns", FIELDS["dns"]) + "".join(
        zeek_line(FIELDS["dns"], dns(i, "10.0.2.1", "x.evil.com")) + "\n" for i in range(20000)
    )
    data = gzip.compress(body.encode())
    path = tmp_path / "dns.log.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    result = run_hunt(hunt_case, [path], record=False)
    (stats,) = result.files
    _accounted(stats)
    assert any("truncated gzip" in p.message for p in stats.problems)
    assert 0 < stats.records < 20000
    (sighting,) = result.sightings
    assert sighting.count == stats.records


def test_stray_carriage_return_and_bad_json(hunt_case: Case, tmp_path: Path) -> None:
    path = tmp_path / "dns.log"
    write_zeek_tsv(
        path, "dns", [dns(i, "10.0.3.1", "y.evil.com") for i in range(10)], extra_lines={5: "\r"}
    )
    jpath = tmp_path / "dns.json"
    jpath.write_bytes(
        b'{"ts": 1680082800.0, "id.orig_h": "10.0.4.1", "query": "z.evil.com"}\n'
        b"{not json\n"
        b'{"ts": 1680082801.0, "id.orig_h": "10.0.4.1", "query": "\xff.evil.com"}\n'
        b"\n"
        b'{"ts": 1680082802.0, "id.orig_h": "10.0.4.1", "query": "w.evil.com"}\n'
    )
    result = run_hunt(hunt_case, [path, jpath], record=False)
    by_path = {f.path: f for f in result.files}
    for stats in by_path.values():
        _accounted(stats)
    assert by_path[str(path)].records == 10
    assert by_path[str(jpath)].garbage == 2 and by_path[str(jpath)].blank == 1
    counts = {s.host: s.count for s in result.sightings}
    assert counts == {"10.0.3.1": 10, "10.0.4.1": 2}
    json_hit = next(s for s in result.sightings if s.host == "10.0.4.1")
    assert json_hit.locations[0].lines == (1, 5)


def test_unknown_files_are_problems(hunt_case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello\n")
    (folder / "empty.log").write_text("")
    (folder / "blob.log").write_bytes(b"\0\1\2binary")
    result = run_hunt(hunt_case, [folder, folder / "missing.log"], record=False)
    assert len(result.problems) == 4
    assert result.files == []
