from __future__ import annotations

from pathlib import Path

import pytest

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
