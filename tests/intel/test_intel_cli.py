from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import stix2

from taintline.case import Case
from taintline.cli.main import main
from taintline.demo import intel as demo
from taintline.demo.context import DemoContext
from taintline.intel.export import build_stix_bundle, stix_pattern
from taintline.model import IndicatorType

SHA = "dde03348075512796241389dfea5560c20a3d2a2eac95c894e7bbed5e85a0acc"


@pytest.fixture
def case_path(tmp_path: Path) -> Path:
    return tmp_path / "cli-case.duckdb"


def test_add_list_show(
    case_path: Path, write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    good = write("iocs.txt", f"{SHA}\nhxxps://msstorageazure[.]com/x\nbogus\n")
    code = main(["intel", "add", "--case", str(case_path), "--source", "Analyst notes", str(good)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "1 sha256, 1 url; 2 new, 0 duplicate" in out
    assert "iocs.txt:3:" in err and "1 problem(s)" in out
    assert main(["intel", "list", "--case", str(case_path), "--type", "sha256"]) == 0
    out, _ = capsys.readouterr()
    assert SHA in out and "Analyst notes" in out and "msstorageazure" not in out
    assert main(["intel", "show", "--case", str(case_path), "hxxps://msstorageazure[.]com/x"]) == 0
    out, _ = capsys.readouterr()
    assert "url https://msstorageazure.com/x" in out and "source: Analyst notes" in out


def test_add_exit_code_2_when_a_file_fails(
    case_path: Path, write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    good = write("ok.txt", "evil.com\n")
    bad = write("bad.yar", "rule broken { condition: and }\n")
    code = main(["intel", "add", "--case", str(case_path), str(good), str(bad)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "bad.yar:1: YARA does not compile" in err
    assert "1 file(s) failed" in err
    with Case(case_path, read_only=True) as c:
        assert [i.value for i in c.indicators()] == ["evil.com"]


def test_usage_errors(case_path: Path) -> None:
    assert main(["intel", "add", "--case", str(case_path)]) == 2
    assert main(["intel", "add", "--case", str(case_path), "--pack", "nope"]) == 2
    assert main(["intel", "list", "--case", str(case_path), "--type", "nope"]) == 2
    assert main(["intel", "export", "--case", str(case_path), "--format", "xml"]) == 2


def test_pack_and_packs(case_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["intel", "packs"]) == 0
    assert "3cx-xtrader" in capsys.readouterr().out
    assert main(["intel", "add", "--case", str(case_path), "--pack", "3cx-xtrader"]) == 0
    out, _ = capsys.readouterr()
    assert "pack 3cx-xtrader/3cx_xtrader.yar [yara]" in out and "6 YARA rules" in out


def test_export_formats(
    case_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["intel", "add", "--case", str(case_path), "--pack", "3cx-xtrader"]) == 0
    capsys.readouterr()
    stix_out = tmp_path / "out.stix.json"
    assert (
        main(["intel", "export", "--case", str(case_path), "--format", "stix", "-o", str(stix_out)])
        == 0
    )
    bundle = stix2.parse(stix_out.read_text(), allow_custom=False)
    indicators = [o for o in bundle.objects if o.type == "indicator"]
    campaigns = [o for o in bundle.objects if o.type == "campaign"]
    assert len(indicators) > 150 and [c.name for c in campaigns] == [
        "3CX / X_TRADER supply chain (UNC4736)"
    ]
    assert main(["intel", "export", "--case", str(case_path), "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(json.loads(line)["record"] == "indicator" for line in lines)
    assert main(["intel", "export", "--case", str(case_path), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("type,value,sources,campaign")


def test_exported_stix_reads_back(case: Case, tmp_path: Path) -> None:
    from taintline.intel.store import ingest, ingest_pack

    ingest_pack(case, "3cx-xtrader")
    path = tmp_path / "b.json"
    path.write_text(build_stix_bundle(case).serialize())
    with Case(tmp_path / "other.duckdb") as other:
        report = ingest(other, [path])
        assert not report.problems
        theirs = {(str(i.type), i.value) for i in other.indicators()}
    ours = {(str(i.type), i.value) for i in case.indicators() if stix_pattern(i.type, i.value)}
    assert theirs == ours


def test_stix_patterns_escape_quotes() -> None:
    pattern = stix_pattern(IndicatorType.FILENAME, "C:\\it's.exe")
    assert pattern == "[file:name = 'C:\\\\it\\'s.exe']"
    stix2.Indicator(pattern=pattern, pattern_type="stix", valid_from="2023-01-01T00:00:00Z")


def test_demo_stage(tmp_path: Path) -> None:
    from rich.console import Console

    with Case(tmp_path / "demo.duckdb") as c:
        ctx = DemoContext(workdir=tmp_path, case=c, console=Console())
        result = demo.stage(ctx)
    assert "loaded pack 3cx-xtrader" in result.lines[0]
    assert any(line.startswith("end of life: x_trader 2020-03-31") for line in result.lines)
    assert ctx.shared["intel"]["eol"] == {"x_trader": "2020-03-31"}
