from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.cli.common import ExitCode
from taintline.cli.main import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "taintline" in capsys.readouterr().out


def test_command_table_matches_what_modules_register() -> None:
    """The lazy start-up loads one module per command: the table that says which module owns
    a command must name exactly the commands each module registers."""
    import importlib

    import typer

    from taintline.cli.main import COMMAND_MODULES, build_app

    everything = typer.main.get_command(build_app())
    assert isinstance(everything, typer.core.TyperGroup)
    assert set(everything.commands) == {c for cs in COMMAND_MODULES.values() for c in cs}
    for module, commands in COMMAND_MODULES.items():
        app = typer.Typer()
        importlib.import_module(f"taintline.cli.{module}").register(app)
        group = typer.main.get_command(app)
        registered = set(group.commands) if isinstance(group, typer.core.TyperGroup) else set()
        if not registered:  # a single command: typer returns it, not a group
            registered = {str(group.name)}
        assert registered == set(commands), module
        for command in commands:
            only = typer.main.get_command(build_app([command, "--help"]))
            assert isinstance(only, typer.core.TyperGroup)
            assert set(only.commands) == set(commands)


def test_unknown_command_is_usage_error() -> None:
    assert main(["no-such-command"]) == 2


def test_demo_runs_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from taintline.demo import STAGES

    assert main(["demo", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "demo-case.duckdb" in out
    for number in range(1, len(STAGES) + 1):
        assert f"{number}. " in out
    # the scan stage scans the release again: nothing read, the same findings
    assert re.search(r"re-scan: (\d+) of \1 files unchanged, 0 read, [\d.]+s; same findings", out)
    html = (tmp_path / "report.html").read_text()
    # The cascade's explaining path reaches the customer's host through the build host.
    assert "host:initech-pc-7" in html
    assert "--built_on--&gt;" in html or "--built_on-->" in html
    assert "<script src=" not in html  # self-contained


def test_error_messages_are_not_rich_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """User input and shell syntax in errors (``taintline[spark]``) print as written."""
    assert main(["report", "--format", "[bold]x[/bold]", "--case", str(tmp_path / "c")]) == 2
    assert "[bold]x[/bold]" in capsys.readouterr().err


def test_unexpected_error_is_one_line_and_its_own_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is never read as a result: not 0, not 1 (findings), not 2 (usage); one line on
    stderr naming the command and the file holding the traceback."""
    from taintline.cli.common import ExitCode
    from taintline.report import jsonl

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(jsonl, "render", broken)
    monkeypatch.setenv("TAINTLINE_CRASH_DIR", str(tmp_path / "crashes"))
    from taintline.case import Case

    case = str(tmp_path / "case.duckdb")
    Case(case).close()
    code = main(["report", "--case", case, "--format", "jsonl"])
    err = capsys.readouterr().err
    assert code == ExitCode.INTERNAL == 3
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "taintline report: internal error (ZeroDivisionError)" in lines[0]
    assert "Traceback" not in err
    written = list((tmp_path / "crashes").iterdir())
    assert len(written) == 1
    assert str(written[0]) in err.replace("\n", "")
    body = written[0].read_text()
    assert "Traceback (most recent call last)" in body
    assert "ZeroDivisionError: simulated bug" in body
    assert "crashed in `report`" in body


def test_crash_report_falls_back_when_the_state_folder_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taintline.cli import crash

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TAINTLINE_CRASH_DIR", str(blocker / "sub"))
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker / "state"))
    monkeypatch.setattr(crash.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        written = crash.write_report(["intel", "add", "x.json"], exc)
    assert written is not None and written.parent == tmp_path / "tmp" / "taintline-crashes"
    assert "crashed in `intel add`" in written.read_text()


def test_readme_documents_every_exit_code() -> None:
    from taintline.cli.common import ExitCode

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in ExitCode:
        assert f"| {int(code)} |" in section, code


def test_console_script_exit_keeps_output_exit_code_and_cleanup(tmp_path: Path) -> None:
    """The console script ends without tearing the interpreter down (cli/main.py _exit_now):
    everything written reaches stdout and the output file, the exit code is the command's,
    atexit handlers still run, and the case is complete for the next command."""
    tree = tmp_path / "t"
    tree.mkdir()
    for i in range(50):
        (tree / f"f{i}.txt").write_bytes(b"%d" % i)
    case = tmp_path / "c.duckdb"
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "sys.argv = ['taintline', *sys.argv[1:]]\n"
        "from taintline.cli.main import run\n"
        "run()\n"
    )
    # stdout a pipe with Python's own buffer (as usual; not as in CI's environment)
    env = {**os.environ, "PYTHONUNBUFFERED": ""}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )

    iocs = tmp_path / "iocs.txt"
    iocs.write_text(hashlib.sha256(b"7").hexdigest() + "\n")
    added = cli("intel", "add", str(iocs), "--case", str(case))
    assert added.returncode == ExitCode.CLEAN, added.stderr
    scan = ("scan", str(tree), "--no-rules", "--workers", "0", "--case", str(case))
    done = cli(*scan, "--format", "jsonl")
    assert done.returncode == ExitCode.FINDINGS, done.stderr
    assert marker.read_text() == "yes"
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(f["kind"], f["subject"]) for f in lines] == [("ioc.hash", f"{tree}/f7.txt")]
    out = tmp_path / "out.jsonl"
    again = cli(*scan, "--format", "jsonl", "--output", str(out))
    assert again.returncode == ExitCode.FINDINGS, again.stderr
    assert "50 of 50 files unchanged" in again.stderr
    assert [json.loads(line)["kind"] for line in out.read_text().splitlines()] == ["ioc.hash"]
    with Case(case, read_only=True) as c:
        runs = c.con.execute(
            "SELECT count(*), min(status) FROM runs WHERE command LIKE 'scan%'"
        ).fetchone()
    assert runs == (2, "ok")
    bad = cli(*scan, "--format", "nonsense")
    assert bad.returncode == ExitCode.USAGE and bad.stderr.strip()
