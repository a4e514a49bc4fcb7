from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.hunt.conftest import INDICATORS, make_logs

from taintline.case import Case
from taintline.cli.main import main


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    case_path = tmp_path / "case.duckdb"
    with Case(case_path) as c:
        c.add_indicators(INDICATORS)
    logs = tmp_path / "logs"
    make_logs(logs)
    return case_path, logs


def test_hunt_jsonl_and_exit_code(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    case_path, logs = setup
    code = main(
        [
            "hunt",
            str(logs / "dns.log"),
            str(logs / "conn.log"),
            "--format",
            "jsonl",
            "--case",
            str(case_path),
        ]
    )
    assert code == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    hosts = {r.get("host") for r in records}
    assert {"10.0.0.1", "10.0.0.3", "10.0.0.8", "10.0.0.9"} <= hosts
    with Case(case_path, read_only=True) as c:
        assert len(c.edges("observed_on")) == len(hosts - {None})


def test_hunt_table_with_map_and_window(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    case_path, logs = setup
    code = main(
        ["hunt", str(logs / "ecs.jsonl"), "--map", "query=dns.question.name,src=source.ip,ts=@timestamp",
         "--since", "2023-03-29T09:00:00Z", "--until", "2023-03-29T10:00:00Z", "--case", str(case_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "10.0.0.16" in out and "domain:evil.com" in out
    code = main(
        [
            "hunt",
            str(logs / "ecs.jsonl"),
            "--map",
            "query=dns.question.name",
            "--since",
            "2024-01-01",
            "--case",
            str(case_path),
            "--no-record",
        ]
    )
    assert code == 0
    assert "no indicator seen" in capsys.readouterr().out


def test_hunt_sarif_and_csv(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    case_path, logs = setup
    assert (
        main(
            [
                "hunt",
                str(logs),
                "--format",
                "sarif",
                "--case",
                str(case_path),
                "--fail-on",
                "critical",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == "2.1.0" and doc["runs"][0]["results"]
    assert main(["hunt", str(logs / "http.log"), "--format", "csv", "--case", str(case_path)]) == 1
    assert "network.ioc.url" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--map", "nonsense"],
        ["--map", "bogus=x"],
        ["--engine", "hadoop"],
        ["--format", "xml"],
        ["--since", "yesterday"],
    ],
)
def test_hunt_usage_errors(setup: tuple[Path, Path], args: list[str]) -> None:
    case_path, logs = setup
    assert main(["hunt", str(logs / "dns.log"), "--case", str(case_path), *args]) == 2


def test_hunt_no_readable_input(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello\n")
    assert main(["hunt", str(tmp_path / "x.txt"), "--case", str(tmp_path / "c.duckdb")]) == 2


def test_full_read_flag_gives_the_same_findings(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    case_path, logs = setup
    outputs = []
    for extra in ([], ["--full-read"]):
        args = ["hunt", str(logs / "dns.log"), "--format", "jsonl", "--no-record"]
        assert main([*args, "--case", str(case_path), *extra]) == 1
        records = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
        outputs.append(sorted((r.get("host"), r["subject"], r["message"]) for r in records))
    assert outputs[0] == outputs[1] and outputs[0]


def test_a_case_without_intel_hunts_with_the_builtin_pack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "dns.log").write_text(
        "#separator \\x09\n#fields\tts\tid.orig_h\tquery\n1680000000.0\t10.0.0.1\tmsstorageazure.com\n"
    )
    code = main(["hunt", str(logs), "--format", "jsonl", "--case", str(tmp_path / "new.duckdb")])
    captured = capsys.readouterr()
    assert code == 1
    assert "built-in 3CX / X_TRADER pack" in captured.err
    assert "msstorageazure.com" in captured.out
