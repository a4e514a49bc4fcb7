from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from taintline.case import Case, load_migrations
from taintline.errors import CaseError
from taintline.model import (
    Edge,
    EdgeKind,
    Finding,
    FindingSource,
    Indicator,
    IndicatorType,
    Node,
    NodeKind,
    NodeRef,
    Severity,
)

SHA = "aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868"


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with Case(path) as c:
        assert c.schema_version("core") == len(load_migrations("core")) >= 1
    with Case(path) as c:  # re-open: nothing to apply
        assert c.migrate() == []


def test_same_indicator_from_two_sources_is_one_with_two_sources(case: Case) -> None:
    added = case.add_indicators(
        [
            Indicator(IndicatorType.SHA256, SHA, "Sophos"),
            Indicator(IndicatorType.SHA256, SHA, "Volexity"),
            Indicator(IndicatorType.SHA256, SHA, "Volexity"),  # repeated statement
            Indicator(IndicatorType.DOMAIN, "msstorageazure.com", "Volexity"),
        ]
    )
    assert added == 3
    assert case.indicator_count() == 2
    (hit,) = case.indicators(value=SHA)
    assert hit.sources == ("Sophos", "Volexity")
    assert case.indicator_counts_by_type() == {"domain": 1, "sha256": 1}
    # adding the same again adds nothing
    assert case.add_indicators([Indicator(IndicatorType.SHA256, SHA, "Sophos")]) == 0


def test_interrupted_batch_leaves_nothing(case: Case) -> None:
    def statements():
        yield Indicator(IndicatorType.DOMAIN, "a.example", "s")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        case.add_indicators(statements(), batch_size=1)
    assert case.indicator_count() == 0


def test_nested_transaction_rolls_back_as_one(case: Case) -> None:
    with pytest.raises(RuntimeError), case.transaction():
        case.add_indicators([Indicator(IndicatorType.DOMAIN, "a.example", "s")])
        case.add_findings([Finding("yara", Severity.HIGH, "x", "m")])
        raise RuntimeError("boom")
    assert case.indicator_count() == 0
    assert case.findings() == []


def test_findings_merge_by_fingerprint_and_keep_earliest_time(case: Case) -> None:
    t1 = datetime(2023, 3, 29, tzinfo=UTC)
    t0 = datetime(2023, 3, 22, tzinfo=UTC)
    f = Finding("network.ioc", Severity.HIGH, "msstorageazure.com", "dns", host="h1", time=t1)
    assert case.add_findings([f]) == 1
    g = Finding("network.ioc", Severity.HIGH, "msstorageazure.com", "dns", host="h1", time=t0)
    assert case.add_findings([g]) == 0
    (got,) = case.findings()
    assert got.time == t0
    assert case.findings(min_severity=Severity.CRITICAL) == []


def test_graph_roundtrip(case: Case) -> None:
    case.add_nodes([Node(NodeKind.HOST, "build-1", {"os": "windows"})])
    case.add_nodes([Node(NodeKind.HOST, "build-1", {"role": "ci"})])
    (node,) = case.nodes(NodeKind.HOST)
    assert node.attrs == {"os": "windows", "role": "ci"}
    e = Edge(
        EdgeKind.BUILT_ON,
        NodeRef(NodeKind.BUILD, "b1"),
        NodeRef(NodeKind.HOST, "build-1"),
        source="builds.csv",
        valid_from=datetime(2023, 3, 13, 6, 0, tzinfo=UTC),
    )
    case.add_edges([e])
    (back,) = case.edges(EdgeKind.BUILT_ON)
    assert back.src == e.src and back.valid_from == e.valid_from and back.source == "builds.csv"


def test_unopenable_case_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-case.duckdb"
    bad.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(CaseError, match="cannot open case"):
        Case(bad)
    with pytest.raises(CaseError, match="no such case"):
        Case(tmp_path / "missing.duckdb", read_only=True)


def test_case_file_is_plain_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with Case(path) as c:
        c.add_findings([Finding("yara", Severity.LOW, "s", "m")])
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select count(*) from findings").fetchone() == (1,)
    con.close()


def test_injected_clock_stamps_runs_indicators_and_hunt_records(tmp_path: Path) -> None:
    """Every "recorded at" comes from the case's clock, so a test can pin it."""
    from taintline.hunt.service import run_hunt

    fixed = datetime(2023, 3, 29, 12, 0, tzinfo=UTC)
    log = tmp_path / "dns.jsonl"
    log.write_text(
        '{"ts": "2023-03-22T10:00:00Z", "src": "10.0.0.5", "query": "msstorageazure.com"}\n'
    )
    with Case(tmp_path / "c.duckdb", clock=lambda: fixed) as case:
        assert case.now() == fixed
        result = run_hunt(case, [log])
        assert result.sightings, "the pack's C2 domain is in the log"
        started, finished = case.con.execute(
            "SELECT started, finished FROM runs WHERE run_id = ?", [result.run_id]
        ).fetchone()
        assert started == finished == fixed.replace(tzinfo=None)
        added = {
            r[0] for r in case.con.execute("SELECT DISTINCT added_at FROM indicators").fetchall()
        }
        assert added == {fixed.replace(tzinfo=None)}


def test_findings_stored_alike_from_list_parameters_and_from_arrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few findings go to DuckDB as list parameters (no pyarrow), many as an Arrow table:
    both store the same rows, NULLs, empty lists, odd text and times included."""
    import taintline.case as case_module

    findings = [
        Finding(
            "ioc.hash",
            Severity.HIGH,
            f"/t/{i}\x00'\";--{{new_rows}}",
            f"message {i}",
            FindingSource.SCAN,
            None if i % 2 else f"host{i}",
            None if i % 3 else datetime(2023, 3, 29, 12, i, tzinfo=UTC),
            {"n": i, "nested": {"a": [1, None]}} if i % 2 else {},
            () if i % 4 else (f"sha256:{i:064x}", "domain:x.example"),
        )
        for i in range(12)
    ]
    stored = []
    for small in (True, False):
        monkeypatch.setattr(case_module, "SMALL_ROWS", 10_000 if small else 0)
        with Case(tmp_path / f"{small}.duckdb", clock=lambda: datetime(2026, 1, 1)) as c:
            assert c.add_findings(findings, run_id="r", origin="scan") == 12
            assert c.add_findings(findings[:3], run_id="r2", origin="scan") == 0  # merged
            stored.append(
                c.con.execute(
                    "SELECT * EXCLUDE (first_recorded, last_recorded) FROM findings"
                    " ORDER BY fingerprint"
                ).fetchall()
            )
    assert len(stored[0]) == 12
    assert stored[0] == stored[1]


def test_insert_new_within_one_run_still_keeps_each_row_once(case: Case) -> None:
    select = (
        "SELECT run_id, 'h' AS host, 't' AS top, path, NULL AS sha256, NULL AS sha1,"
        " NULL AS md5, 1 AS size, NULL AS filetype, 0 AS depth, '' AS analyser,"
        " NULL AS facts, TIMESTAMP '2026-01-01' AS recorded"
        " FROM (VALUES ('r1', 'a'), ('r1', 'b'), ('r1', 'a')) AS v(run_id, path)"
    )
    assert case.insert_new("file_facts", select, within=("run_id", "r1")) == 2
    assert case.insert_new("file_facts", select, within=("run_id", "r1")) == 0
    other = select.replace("'r1'", "'r2'")
    assert case.insert_new("file_facts", other, within=("run_id", "r2")) == 2
    with pytest.raises(ValueError, match="natural key"):
        case.insert_new("file_facts", select, within=("host", "h"))


def test_hash_matches_alike_from_list_parameters_and_from_arrow(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records' hashes go to DuckDB as list parameters (a few) or as Arrow (many): the
    same ``ioc.hash`` findings either way."""
    from dataclasses import dataclass

    import taintline.case as case_module
    from taintline.scan.hashes import match_hashes

    @dataclass(frozen=True)
    class Hashed:
        path: str
        md5: str
        sha1: str
        sha256: str
        size: int

    files = [Hashed(f"/t/{i}", f"{i:032x}", f"{i:040x}", f"{i:064x}", i) for i in range(40)]
    case.add_indicators(
        [
            Indicator(IndicatorType.SHA256, f"{3:064x}", "feed-a"),
            Indicator(IndicatorType.MD5, f"{3:032x}", "feed-b"),
            Indicator(IndicatorType.SHA1, f"{17:040x}", "feed-a"),
        ]
    )
    found = []
    for small in (10_000, 0):
        monkeypatch.setattr(case_module, "SMALL_ROWS", small)
        found.append(sorted((f.subject, f.message) for f in match_hashes(case, files)))
    assert [subject for subject, _ in found[0]] == ["/t/17", "/t/3"]
    assert found[0] == found[1]
