"""YARA: externals, timeouts, case rules, compile problems, findings."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.errors import InputError
from taintline.limits import ScanLimits
from taintline.model import Severity
from taintline.scan.rules import RuleSource, compile_rules
from taintline.testing.archives import zip_bytes

from .scanhelpers import kinds, run_scan, write_rules

EXTERNAL_RULES = """
rule by_name { condition: filename == "invoice.exe" }
rule by_ext { condition: extension == ".dll" and filetype == "EXE" }
rule by_path { condition: filepath contains ".zip!/bin/" }
rule by_owner { condition: owner == "%s" and filename == "invoice.exe" }
rule not_gif : tagged { meta: severity = "critical" score = 10
  strings: $mz = "MZ" condition: $mz at 0 and filetype != "GIF" }
"""


def test_externals_are_set_per_file(tmp_path: Path, case: Case) -> None:
    owner = pwd.getpwuid(os.getuid()).pw_name
    root = tmp_path / "tree"
    root.mkdir()
    (root / "invoice.exe").write_bytes(b"MZ not really")
    (root / "notes.txt").write_bytes(b"hello")
    (root / "pkg.zip").write_bytes(zip_bytes({"bin/helper.dll": b"MZ lib", "bin/x.txt": b"t"}))
    rule = write_rules(tmp_path / "ext.yar", EXTERNAL_RULES % owner)
    result = run_scan(case, [root], rules=[rule])
    matched: dict[str, set[str]] = {}
    for f in result.findings:
        assert f.kind == "yara"
        matched.setdefault(f.evidence["rule"], set()).add(f.subject)
    assert matched["by_name"] == {f"{root}/invoice.exe"}
    assert matched["by_ext"] == {f"{root}/pkg.zip!/bin/helper.dll"}
    assert matched["by_path"] == {f"{root}/pkg.zip!/bin/helper.dll", f"{root}/pkg.zip!/bin/x.txt"}
    assert matched["by_owner"] == {f"{root}/invoice.exe"}
    assert matched["not_gif"] == {f"{root}/invoice.exe", f"{root}/pkg.zip!/bin/helper.dll"}
    detail = next(f for f in result.findings if f.evidence["rule"] == "not_gif")
    assert detail.severity is Severity.CRITICAL
    assert detail.evidence["tags"] == ["tagged"]
    assert detail.evidence["namespace"] == "ext"
    assert detail.evidence["meta"] == {"severity": "critical", "score": 10}
    assert detail.evidence["strings"] == [{"id": "$mz", "count": 1, "offsets": [0]}]


def test_rule_timeout_is_an_error_and_other_rules_still_count(tmp_path: Path, case: Case) -> None:
    slow = write_rules(
        tmp_path / "slow.yar",
        "rule slow { condition: for all i in (0..filesize - 1) : "
        "( for all j in (0..filesize - 1) : ( uint8(i) != 0x100 + j ) ) }",
    )
    root = tmp_path / "tree"
    root.mkdir()
    (root / "big.bin").write_bytes(b"A" * 200_000)
    (root / "tiny.bin").write_bytes(b"A")
    result = run_scan(case, [root], rules=[slow], limits=ScanLimits(yara_timeout_s=1))
    got = kinds(result.findings)
    assert got["error.yara-timeout"] == [f"{root}/big.bin"]
    assert got["yara"] == [f"{root}/tiny.bin"]


def test_case_rules_are_used(tmp_path: Path, case: Case) -> None:
    from taintline.intel.store import ingest

    intel = tmp_path / "campaign.yar"
    intel.write_text('rule campaign_marker { strings: $a = "CAMPAIGN_X" condition: $a }')
    ingest(case, [intel])
    target = tmp_path / "tree"
    target.mkdir()
    (target / "f.bin").write_bytes(b"...CAMPAIGN_X...")
    result = run_scan(case, [target])
    assert [f.evidence["rule"] for f in result.findings] == ["campaign_marker"]
    assert result.rules == 1
    nothing = run_scan(case, [target], use_rules=False)
    assert nothing.findings == [] and nothing.rules == 0


def test_bad_case_rules_are_left_out_but_user_rules_must_compile() -> None:
    good = RuleSource("good.yar", "rule ok { condition: true }", "good")
    bad = RuleSource("bad.yar", "rule broken { condition: nonsense( }", "bad")
    compiled = compile_rules([good, bad])
    assert compiled.count == 1 and compiled.data
    assert [p.item for p in compiled.problems] == ["bad.yar"]
    with pytest.raises(InputError):
        compile_rules([good, bad], strict=("bad.yar",))


def test_same_rule_names_in_two_files_do_not_clash() -> None:
    a = RuleSource("a/x.yar", "rule same { condition: true }", "x")
    b = RuleSource("b/x.yar", "rule same { condition: false }", "x")
    compiled = compile_rules([a, b])
    assert compiled.count == 2 and not compiled.problems
