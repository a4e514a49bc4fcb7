"""The output contract: every verb that emits results takes the same --format / -o / --fail-on,
validated by typer from one enum each, and its --help lists exactly the accepted values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from taintline.cli.common import FailOn
from taintline.cli.main import main
from taintline.report import OutputFormat, RowFormat

#: Verbs whose results are findings: the full trio.
FINDING_VERBS = (["scan"], ["hunt"], ["cascade"], ["report"], ["verify"], ["eol"])
#: Views of rows (not findings): --format from RowFormat and -o.
ROW_VERBS = (["graph", "show"], ["graph", "stats"])


def _help(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*args, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def _choices(text: str, option: str) -> list[str]:
    found = re.search(re.escape(option) + r" <([a-z|]+)>", text)
    assert found, f"{option} has no choice list in: {text}"
    return found.group(1).split("|")


@pytest.mark.parametrize("verb", FINDING_VERBS, ids=" ".join)
def test_finding_verbs_list_exactly_the_accepted_values(
    verb: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(verb, capsys)
    assert _choices(text, "--format") == [f.value for f in OutputFormat]
    assert _choices(text, "--fail-on") == [f.value for f in FailOn]
    assert "-o, --output <path>" in text


@pytest.mark.parametrize("verb", ROW_VERBS, ids=" ".join)
def test_row_verbs_list_exactly_the_accepted_values(
    verb: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(verb, capsys)
    assert _choices(text, "--format") == [f.value for f in RowFormat]
    assert "-o, --output <path>" in text


@pytest.mark.parametrize("verb", [*FINDING_VERBS, *ROW_VERBS], ids=" ".join)
def test_an_unknown_format_is_a_usage_error(
    verb: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*verb, "--format", "xml", "--case", str(tmp_path / "c.duckdb")]
    if verb[0] in ("scan", "hunt"):
        args.append(str(tmp_path))
    if verb[0] == "verify":
        args += [str(tmp_path), str(tmp_path)]
    assert main(args) == 2
    assert "xml" in capsys.readouterr().err


@pytest.mark.parametrize("verb", FINDING_VERBS, ids=" ".join)
def test_an_unknown_fail_on_is_a_usage_error(verb: list[str], tmp_path: Path) -> None:
    args = [*verb, "--fail-on", "severe", "--case", str(tmp_path / "c.duckdb")]
    if verb[0] in ("scan", "hunt"):
        args.append(str(tmp_path))
    if verb[0] == "verify":
        args += [str(tmp_path), str(tmp_path)]
    assert main(args) == 2


def test_fail_on_thresholds() -> None:
    from taintline.model import Finding, Severity

    medium = [Finding("yara", Severity.MEDIUM, "a", "m")]
    assert FailOn.MEDIUM.failed(medium)
    assert FailOn.LOW.failed(medium)
    assert not FailOn.HIGH.failed(medium)
    assert not FailOn.NEVER.failed(medium)
    assert not FailOn.INFO.failed([])


def test_scan_writes_every_format_to_output_and_fails_on(tmp_path: Path) -> None:
    from taintline.testing.image import c2_trailer, ico, with_trailing

    target = tmp_path / "in"
    target.mkdir()
    (target / "icon3.ico").write_bytes(with_trailing(ico(), c2_trailer()))
    case = str(tmp_path / "c.duckdb")
    base = ["scan", str(target), "--no-rules", "--workers", "0", "--case", case]
    for fmt in OutputFormat:
        out = tmp_path / f"out.{fmt}"
        code = main([*base, "--format", fmt.value, "-o", str(out), "--fail-on", "never"])
        assert code == 0, fmt
        assert out.stat().st_size > 0, fmt
    assert main([*base, "--format", "jsonl", "-o", str(tmp_path / "x"), "--fail-on", "high"]) == 1


def test_report_fail_on(tmp_path: Path) -> None:
    from taintline.case import Case
    from taintline.model import Finding, Severity

    case = tmp_path / "c.duckdb"
    with Case(case) as c:
        c.add_findings([Finding("ioc.hash", Severity.CRITICAL, "a.dll", "m")], origin="scan")
    out = tmp_path / "r.sarif"
    args = ["report", "--case", str(case), "--format", "sarif", "-o", str(out)]
    assert main(args) == 0  # report's default is --fail-on never
    assert main([*args, "--fail-on", "critical"]) == 1
    assert main([*args, "--fail-on", "HIGH"]) == 1  # case-insensitive, like the enum values


@pytest.mark.parametrize("verb", [["intel", "add"], ["graph", "add"]], ids=" ".join)
def test_input_formats_are_chosen_with_reader(
    verb: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(verb, capsys)
    assert "--reader" in text
    assert "--format" not in text  # the old spelling still works, hidden
    if verb[0] == "intel":
        data = tmp_path / "iocs.txt"
        data.write_text("msstorageazure.com\n", encoding="utf-8")
        reader = "csv"
    else:
        data = tmp_path / "inv.csv"
        data.write_text("host,software,version,installed_at\npc1,3cx,18.12,2023-01-01\n")
        reader = "inventory-csv"
    case = str(tmp_path / "c.duckdb")
    assert main([*verb, str(data), "--reader", reader, "--case", case]) == 0
    assert main([*verb, str(data), "--format", reader, "--case", case]) == 0
    assert main([*verb, str(data), "--reader", "nope", "--case", case]) == 2
