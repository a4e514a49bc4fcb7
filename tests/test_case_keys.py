"""Idempotent stores: every table has a natural key, re-ingesting changes nothing, export ->
import is lossless, and cases written before the keys upgrade with their duplicates removed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.hunt.conftest import INDICATORS, make_logs

from taintline.case import NATURAL_KEYS, Case, load_migrations
from taintline.cli.main import main
from taintline.demo import graph as demo
from taintline.graph.ingest import add_files
from taintline.hunt.service import run_hunt
from taintline.intel.store import ingest, store_context
from taintline.interchange import export_case, import_jsonl, table_columns
from taintline.model import Edge, EdgeKind, Indicator, IndicatorType, NodeKind, NodeRef, Severity

YARA = 'rule demo_marker\n{\n    strings:\n        $a = "taintline-demo"\n    condition:\n        $a\n}\n'
CYCLES = {
    "product": "x_trader",
    "title": "X_TRADER",
    "aliases": ["xtrader"],
    "identifiers": [{"type": "purl", "id": "pkg:generic/x_trader"}],
    "cycles": [{"cycle": "7", "releaseDate": "2015-01-01", "eol": "2020-03-31", "latest": "7.17"}],
}


def _counts(case: Case) -> dict[str, int]:
    return {
        t: int(case.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
        for t in case.tables()
    }


def _rows(case: Case, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` in a canonical order, JSON columns parsed (their text spacing is
    not part of the fact)."""
    columns = table_columns(case, table)
    rows = case.con.execute(f"SELECT * FROM {table}").fetchall()
    out = [
        tuple(
            json.dumps(json.loads(v), sort_keys=True) if c.type == "JSON" and v is not None else v
            for c, v in zip(columns, row, strict=True)
        )
        for row in rows
    ]
    return sorted(out, key=repr)


def _full_case(tmp_path: Path) -> Path:
    """A case with rows in every table, each written by the code that writes it for real."""
    path = tmp_path / "full.duckdb"
    story = demo.write_story(tmp_path / "story")
    logs = tmp_path / "logs"
    make_logs(logs)
    (tmp_path / "intel").mkdir()
    yar = tmp_path / "intel" / "demo.yar"
    yar.write_text(YARA)
    eol = tmp_path / "intel" / "x_trader.json"
    eol.write_text(json.dumps(CYCLES))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "readme.txt").write_text("taintline-demo\n")
    with Case(path) as c:
        c.add_indicators(INDICATORS)
        store_context(c, [Indicator(IndicatorType.DOMAIN, "example.org", "MISP event 7")])
        ingest(c, [yar, eol])
        add_files(c, story.all())
        run_hunt(c, [logs / "dns.log", logs / "conn.log"], run_id=c.start_run("hunt"))
    time.sleep(0.1)  # older than a scan's racy window (scan/cache.py): the re-scan links it
    for _ in range(2):  # the second scan links to the first's rows (file_facts_links)
        assert main(["scan", str(tree), "--case", str(path), "--format", "jsonl"]) in (0, 1)
    seed = f"artifact:{demo.XTRADER_SHA}@2022-02-03T10:00:00Z"
    assert main(["cascade", "--seed", seed, "--case", str(path), "--format", "jsonl"]) == 0
    return path


def test_every_table_has_a_declared_natural_key(case: Case) -> None:
    tables = case.tables()
    assert "edges" in tables and "hunt_sightings" in tables
    missing = [t for t in tables if t not in NATURAL_KEYS]
    assert missing == [], f"tables without an entry in NATURAL_KEYS: {missing}"
    for table in tables:
        names = {c.name for c in table_columns(case, table)}
        assert set(NATURAL_KEYS[table]) <= names, table


def test_export_import_round_trip_is_lossless_for_every_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _full_case(tmp_path)
    capsys.readouterr()
    export = tmp_path / "case.jsonl"
    with Case(source, read_only=True) as a:
        counts = _counts(a)
        export_case(a, "jsonl", export)
        before = {t: _rows(a, t) for t in a.tables()}
    empty = [t for t, n in counts.items() if n == 0]
    assert empty == [], f"the fixture case should fill every table: {empty}"
    with Case(tmp_path / "copy.duckdb") as b:
        result = import_jsonl(b, export)
        assert result.problems == []
        assert sorted(b.tables()) == sorted(before)
        for table, rows in before.items():
            assert _rows(b, table) == rows, table
        # the same file again: nothing new anywhere
        again = import_jsonl(b, export)
        assert again.problems == [] and set(again.counts.values()) == {0}
        assert _counts(b) == counts
    assert main(["import", "--case", str(tmp_path / "copy.duckdb"), str(export)]) == 0
    out = capsys.readouterr().out
    assert "0 new sightings" in out and "0 new edges" in out and "0 new findings" in out


def test_graph_add_twice_adds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    story = demo.write_story(tmp_path / "in")
    case_path = str(tmp_path / "case.duckdb")
    assert main(["graph", "add", *map(str, story.all()), "--case", case_path]) == 0
    with Case(case_path, read_only=True) as c:
        first = _counts(c)
    assert first["edges"] > 0
    capsys.readouterr()
    assert main(["graph", "add", *map(str, story.all()), "--case", case_path]) == 0
    out = capsys.readouterr().out
    assert out.count("0 new nodes, 0 new edges") == len(story.all())
    with Case(case_path, read_only=True) as c:
        assert _counts(c) == first


def test_hunt_twice_adds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case_path = tmp_path / "case.duckdb"
    with Case(case_path) as c:
        c.add_indicators(INDICATORS)
    logs = tmp_path / "logs"
    make_logs(logs)
    argv = ["hunt", str(logs / "dns.log"), "--case", str(case_path), "--format", "jsonl"]
    assert main(argv) == 1
    assert "0 new sightings" not in capsys.readouterr().err
    with Case(case_path, read_only=True) as c:
        first = _counts(c)
    assert first["hunt_sightings"] > 0 and first["edges"] > 0
    assert main(argv) == 1
    assert "0 new sightings, 0 new findings, 0 new edges" in capsys.readouterr().err
    with Case(case_path, read_only=True) as c:
        after = _counts(c)
    assert after.pop("runs") == first.pop("runs") + 1  # each run is an event of its own
    assert after == first


def test_same_edge_twice_in_one_batch_and_across_batches(case: Case) -> None:
    edge = Edge(
        EdgeKind.INSTALLED_ON,
        NodeRef(NodeKind.SOFTWARE, "3cx"),
        NodeRef(NodeKind.HOST, "ws-1"),
        source="inventory.csv:2",
        valid_from=None,  # NULL key columns compare equal
        recorded_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    later = Edge(
        edge.kind, edge.src, edge.dst, edge.source, recorded_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert case.add_edges([edge, edge]) == 1
    assert case.add_edges([later]) == 0
    assert [e.recorded_at for e in case.edges()] == [datetime(2024, 1, 1, tzinfo=UTC)]


def _old_case(path: Path) -> None:
    """A case file as the version before the natural keys wrote it: only migrations 001."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_versions ("
        " component VARCHAR PRIMARY KEY, version INTEGER NOT NULL, applied TIMESTAMP)"
    )
    for component in ("core", "intel", "scan", "hunt", "graph"):
        con.execute(load_migrations(component)[0].sql)
        con.execute("INSERT INTO schema_versions VALUES (?, 1, now()::TIMESTAMP)", [component])
    edge = (
        "INSERT INTO edges VALUES ('installed_on', 'software', '3cx', 'host', 'ws-1', NULL,"
        " NULL, TIMESTAMP '{}', 'inventory.csv:2', 1.0, '{{}}')"
    )
    con.execute(edge.format("2024-01-01 00:00:00"))
    con.execute(edge.format("2025-01-01 00:00:00"))
    sighting = (
        "INSERT INTO hunt_sightings VALUES ('{}', 'ws-1', 'domain', 'pbxsources.com',"
        " TIMESTAMP '2023-03-29 10:00:00', TIMESTAMP '2023-03-29 11:00:00', 3, ['Sophos'],"
        " '3cx', ['query'], ['dns.log:4'], now()::TIMESTAMP)"
    )
    con.execute(sighting.format("run1"))
    con.execute(sighting.format("run2"))
    facts = (
        "INSERT INTO file_facts VALUES ('r1', 'ws-1', '/t', '/t/a.dll', NULL, NULL, NULL, 1,"
        " NULL, 0, '', NULL, now()::TIMESTAMP)"
    )
    con.execute(facts)
    con.execute(facts)
    con.close()


def test_old_case_upgrades_and_loses_its_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_case(path)
    with Case(path) as c:
        assert c.schema_version("core") >= 2 and c.schema_version("hunt") >= 2
        counts = _counts(c)
        assert counts["edges"] == 1 and counts["hunt_sightings"] == 1
        assert counts["file_facts"] == 1
        (edge,) = c.edges()
        assert edge.recorded_at == datetime(2024, 1, 1, tzinfo=UTC)  # the first recorded kept
        # and the keys hold from now on
        assert c.add_edges([edge]) == 0


def test_short_records_from_scan_output_still_import(tmp_path: Path) -> None:
    src = tmp_path / "host1.jsonl"
    src.write_text(
        json.dumps(
            {
                "record": "finding",
                **{"kind": "yara", "severity": "high"},
                "subject": "C:/x.dll",
                "message": "m",
                "host": "ws-1",
            }
        )
        + "\n"
        + json.dumps(
            {
                "record": "edge",
                "kind": "installed_on",
                "src": "software:3cx",
                "dst": "host:ws-1",
                "source": "x",
            }
        )
        + "\n"
        + json.dumps({"record": "sighting", "host": "ws-1"})
        + "\n"
    )
    with Case(tmp_path / "c.duckdb") as c:
        result = import_jsonl(c, src)
        assert [(p.line, p.message) for p in result.problems] == [
            (3, "bad record: field 'indicator_type' is missing")
        ]
        assert result.counts["finding"] == 1 and result.counts["edge"] == 1
        (stored,) = c.findings()
        assert (stored.subject, stored.severity, stored.host) == ("C:/x.dll", Severity.HIGH, "ws-1")
        assert import_jsonl(c, src).counts["finding"] == 0
