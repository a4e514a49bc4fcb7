"""``taintline scan``: exit codes, formats, output file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jsonschema
import orjson
import pytest

from taintline.case import Case
from taintline.cli.main import main
from taintline.model import Indicator, IndicatorType

SARIF_SCHEMA = orjson.loads(
    (Path(__file__).parent.parent / "data" / "sarif-2.1.0-rtm.5.json").read_bytes()
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "clean.txt").write_text("nothing to see")
    return root


def _rule(tmp_path: Path) -> Path:
    rule = tmp_path / "r.yar"
    rule.write_text('rule cli_hit { strings: $a = "CLI_HIT" condition: $a }')
    return rule


def test_clean_scan_exits_0(tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(tree), "--case", str(tmp_path / "c.duckdb"), "--workers", "0"])
    assert code == 0
    assert "nothing found" in capsys.readouterr().out


def test_findings_exit_1_and_jsonl(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "hit.bin").write_bytes(b"xx CLI_HIT xx")
    args = ["scan", str(tree), "--case", str(tmp_path / "c.duckdb"), "--workers", "0"]
    code = main([*args, "--rules", str(_rule(tmp_path)), "--format", "jsonl"])
    assert code == 1
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["subject"]) for r in lines] == [("yara", f"{tree}/hit.bin")]
    # the same finding below --fail-on critical: exit 0; --no-rules: nothing at all
    assert main([*args, "--rules", str(_rule(tmp_path)), "--fail-on", "critical"]) == 0
    capsys.readouterr()
    assert main([*args, "--no-rules", "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == ""


def test_output_file(tmp_path: Path, tree: Path) -> None:
    (tree / "hit.bin").write_bytes(b"CLI_HIT")
    out = tmp_path / "report.jsonl"
    code = main(
        [
            "scan",
            str(tree),
            "--case",
            str(tmp_path / "c.duckdb"),
            "--workers",
            "0",
            "--rules",
            str(_rule(tmp_path)),
            "--format",
            "jsonl",
            "--output",
            str(out),
        ]
    )
    assert code == 1
    assert orjson.loads(out.read_text().splitlines()[0])["kind"] == "yara"


@pytest.mark.parametrize(
    "extra",
    [
        ["--format", "xml"],
        ["--fail-on", "sometimes"],
        ["--max-file-size", "lots"],
        ["--rules", "/nonexistent.yar"],
        ["--workers", "-1"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, tree: Path, extra: list[str]) -> None:
    assert main(["scan", str(tree), "--case", str(tmp_path / "c.duckdb"), *extra]) == 2


def test_missing_path_and_bad_rules_exit_2(tmp_path: Path) -> None:
    case = str(tmp_path / "c.duckdb")
    assert main(["scan", str(tmp_path / "missing"), "--case", case]) == 2
    bad = tmp_path / "bad.yar"
    bad.write_text("rule { nope")
    assert main(["scan", str(tmp_path), "--case", case, "--rules", str(bad)]) == 2


def test_sarif_output_validates(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "hit.bin").write_bytes(b"CLI_HIT")
    args = ["scan", str(tree), "--case", str(tmp_path / "c.duckdb"), "--workers", "0"]
    assert main([*args, "--rules", str(_rule(tmp_path)), "--format", "sarif"]) == 1
    log = orjson.loads(capsys.readouterr().out)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert "yara" in {r["ruleId"] for r in log["runs"][0]["results"]}


def test_hashes_sha256_only_stores_null_md5_and_says_md5_indicators_went_unchecked(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b"a payload published by its MD5 only"
    (tree / "payload.bin").write_bytes(data)
    case = tmp_path / "c.duckdb"
    with Case(case) as c:
        c.add_indicators([Indicator(IndicatorType.MD5, hashlib.md5(data).hexdigest(), "feed")])
    args = ["scan", str(tree), "--case", str(case), "--workers", "0", "--format", "jsonl"]

    assert main([*args, "--hashes", "sha256"]) == 0  # the unchecked note is low severity
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["subject"]) for r in lines] == [("error.hash-unchecked", str(tree))]
    assert lines[0]["evidence"]["indicators"] == {"md5": 1}
    assert "1 MD5 indicator(s)" in lines[0]["message"]
    with Case(case) as c:
        stored = c.con.execute(
            "SELECT sha256, sha1, md5 FROM file_facts WHERE path LIKE '%payload.bin'"
        ).fetchall()
    assert stored == [(hashlib.sha256(data).hexdigest(), None, None)]

    # the default computes all three: the MD5 indicator matches
    assert main(args) == 1
    kinds = [orjson.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()]
    assert kinds == ["ioc.hash"]


def test_hashes_option_is_checked(tmp_path: Path, tree: Path) -> None:
    case = str(tmp_path / "c.duckdb")
    assert main(["scan", str(tree), "--case", case, "--hashes", "sha256,sha512"]) == 2
    assert main(["scan", str(tree), "--case", case, "--hashes", "md5", "--workers", "0"]) == 0
