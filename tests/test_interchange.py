from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from taintline.case import Case
from taintline.cli.main import main
from taintline.interchange import export_case, import_jsonl
from taintline.model import (
    Edge,
    EdgeKind,
    Finding,
    Indicator,
    IndicatorType,
    NodeKind,
    NodeRef,
    Severity,
)


def _fill(case: Case) -> None:
    case.add_findings(
        [
            Finding(
                "ioc.hash",
                Severity.CRITICAL,
                "setup.msi!/ffmpeg.dll",
                "known bad",
                host="ws-1",
                time=datetime(2023, 3, 29, tzinfo=UTC),
                evidence={"sha256": "ab" * 32},
                indicators=("sha256:" + "ab" * 32,),
            )
        ]
    )
    case.add_indicators([Indicator(IndicatorType.DOMAIN, "pbxsources.com", "Sophos")])
    case.add_edges(
        [
            Edge(
                EdgeKind.OBSERVED_ON,
                NodeRef(NodeKind.INDICATOR, "domain:pbxsources.com"),
                NodeRef(NodeKind.HOST, "ws-1"),
                source="dns.log",
            )
        ]
    )


def test_jsonl_roundtrip_merges_into_another_case(tmp_path: Path) -> None:
    with Case(tmp_path / "a.duckdb") as a:
        _fill(a)
        counts = export_case(a, "jsonl", tmp_path / "a.jsonl")
    assert counts == {"finding": 1, "indicator": 1, "edge": 1}
    with Case(tmp_path / "b.duckdb") as b:
        b.add_findings([Finding("yara", Severity.LOW, "other", "m")])
        result = import_jsonl(b, tmp_path / "a.jsonl")
        assert result.problems == []
        assert result.counts["finding"] == 1
        kinds = sorted(f.kind for f in b.findings())
        assert kinds == ["ioc.hash", "yara"]
        (f,) = b.findings(kinds=["ioc.hash"])
        assert f.evidence == {"sha256": "ab" * 32} and f.host == "ws-1"
        # importing twice merges, adds nothing
        assert import_jsonl(b, tmp_path / "a.jsonl").counts["finding"] == 0


def test_import_reports_bad_lines_and_keeps_good_ones(case: Case, tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_text(
        '{"record":"finding","kind":"yara","severity":"high","subject":"a","message":"m"}\n'
        "{truncated\n"
        '{"record":"finding","kind":"yara","severity":"nope","subject":"b","message":"m"}\n'
        "[1,2]\n"
    )
    result = import_jsonl(case, src)
    assert [p.line for p in result.problems] == [2, 3, 4]
    assert [f.subject for f in case.findings()] == ["a"]


def test_parquet_export(case: Case, tmp_path: Path) -> None:
    _fill(case)
    counts = export_case(case, "parquet", tmp_path / "out")
    assert counts["findings"] == 1
    n = duckdb.sql(f"select count(*) from '{tmp_path / 'out' / 'edges.parquet'}'").fetchall()
    assert n == [(1,)]


def test_cli_export_import(tmp_path: Path) -> None:
    with Case(tmp_path / "a.duckdb") as a:
        _fill(a)
    out = tmp_path / "x.jsonl"
    assert main(["export", "--case", str(tmp_path / "a.duckdb"), "-o", str(out)]) == 0
    assert main(["import", "--case", str(tmp_path / "b.duckdb"), str(out)]) == 0
    assert (
        main(["export", "--case", str(tmp_path / "a.duckdb"), "-o", str(out), "--format", "xml"])
        == 2
    )
    assert main(["import", "--case", str(tmp_path / "b.duckdb"), str(tmp_path / "missing")]) == 2


def test_binary_columns_travel_as_base64_and_bad_base64_is_that_line_only(
    case: Case, tmp_path: Path
) -> None:
    row = {
        "record": "scan_contents",
        "sha256": "ab" * 32,
        "analysis_key": "k",
        "name_class": "",
        "display": "/t/a.jar",
        "records": "",
        "findings": "[]",
        "recorded": "2026-01-01T00:00:00Z",
    }
    src = tmp_path / "contents.jsonl"
    src.write_text(
        "\n".join(
            orjson.dumps({**row, "sha256": sha, "records_zstd": blob}).decode()
            for sha, blob in (("ab" * 32, "AAEC/w=="), ("cd" * 32, "not base64!"), ("ef" * 32, 7))
        )
        + "\n"
    )
    result = import_jsonl(case, src)
    assert [(p.line, "base64" in p.message) for p in result.problems] == [(2, True), (3, True)]
    stored = case.con.execute("SELECT sha256, records_zstd FROM scan_contents").fetchall()
    assert stored == [("ab" * 32, b"\x00\x01\x02\xff")]
    out = tmp_path / "out.jsonl"
    export_case(case, "jsonl", out)
    exported = [
        orjson.loads(line) for line in out.read_text().splitlines() if '"scan_contents"' in line
    ]
    assert [e["records_zstd"] for e in exported] == ["AAEC/w=="]
