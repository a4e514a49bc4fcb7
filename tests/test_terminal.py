"""Untrusted strings are text: terminal tables and messages (rich) and the HTML report."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from taintline.cli.main import main
from taintline.model import Finding, FindingSource, Severity
from taintline.report import RenderContext, render_findings
from taintline.terminal import make_console, printable, text

#: Names an attacker controls, and how each must look on a terminal.
HOSTILE = {
    "../a[/]b.dll": "../a[/]b.dll",  # rich: "closing tag '[/]' has nothing to close"
    "[red]hidden[/red]-evil.dll": "[red]hidden[/red]-evil.dll",
    "[link=https://evil.example]ok[/link].dll": "[link=https://evil.example]ok[/link].dll",
    ":skull: emoji-code.dll": ":skull: emoji-code.dll",
    "clear\x1b[2Jscreen.dll": "clear\\x1b[2Jscreen.dll",
    "bell\x07\rreturn.dll": "bell\\x07\\rreturn.dll",
    "invoice\u202egpj.exe": "invoice\\u202egpj.exe",  # right-to-left override
    "zero\u200bwidth.dll": "zero\\u200bwidth.dll",
    "not-utf8-\udcff\udcfe.dll": "not-utf8-\\xff\\xfe.dll",  # os.fsdecode of b"\xff\xfe"
    "new\nline.dll": "new\\nline.dll",
}


@pytest.mark.parametrize(("raw", "shown"), HOSTILE.items())
def test_printable_shows_every_character(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert text(raw).plain == shown


def test_printable_keeps_ordinary_text_unchanged() -> None:
    for ordinary in ("C:\\Program Files\\3CX\\app.exe", "naïve résumé.pdf", "日本語.txt", "a b"):
        assert printable(ordinary) == ordinary


def _finding(name: str) -> Finding:
    return Finding(
        kind="ioc.hash",
        severity=Severity.HIGH,
        subject=f"bundle.zip!/{name}",
        message=f"{name} matches a known-bad hash",
        source=FindingSource.SCAN,
        host=name,
        evidence={"observed": name},
    )


@pytest.mark.parametrize("rich_rows", [2000, 0], ids=["rich", "plain"])
def test_table_report_shows_hostile_names_literally(
    rich_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taintline.report import table

    monkeypatch.setattr(table, "RICH_MAX_ROWS", rich_rows)  # long lists: the plain table
    out = io.StringIO()
    findings = [_finding(name) for name in HOSTILE]
    render_findings(findings, "table", out, RenderContext(width=400, extra_columns=("observed",)))
    shown = out.getvalue()
    for name in HOSTILE.values():
        assert name in shown
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown


def test_hunt_timeline_shows_hostile_names_literally() -> None:
    from taintline.hunt.model import FileLocation, Sighting
    from taintline.hunt.render import render_timeline
    from taintline.model import IndicatorType

    out = io.StringIO()
    sightings = [
        Sighting(
            host=name,
            indicator_type=IndicatorType.DOMAIN,
            indicator_value="evil.example",
            first_seen=None,
            last_seen=None,
            count=1,
            sources=(),
            campaign="[bold]campaign[/]",
            fields=("query",),
            observed=(name,),
            locations=(
                FileLocation(path=f"/logs/{name}", first_line=3, last_line=3, count=1, lines=(3,)),
            ),
        )
        for name in HOSTILE
    ]
    render_timeline(sightings, [], out, width=400)
    shown = out.getvalue()
    assert "[bold]campaign[/]" in shown
    for name in HOSTILE.values():
        assert name in shown
    assert "\x1b" not in shown


def test_console_prints_plain_strings_as_text() -> None:
    out = io.StringIO()
    make_console(out, width=200).print("[red]hidden[/red] and [/] :skull:")
    assert out.getvalue().strip() == "[red]hidden[/red] and [/] :skull:"


def test_html_report_escapes_hostile_names() -> None:
    out = io.StringIO()
    name = "<script>alert(1)</script>[red]x[/red]\"'.dll"
    render_findings([_finding(name)], "html", out, RenderContext())
    html = out.getvalue()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;[red]x[/red]" in html


def test_scan_and_report_show_hostile_member_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's reproduction: a ZIP member named ``../a[/]b.dll`` ended scan and report
    with a rich MarkupError; ``[red]hidden[/red]-evil.dll`` was shown as ``hidden-evil.dll``."""
    monkeypatch.chdir(tmp_path)  # short subjects: the 160-column table does not fold them
    payload = b"MZ harmless test payload for a hostile name"
    archive = Path("bundle.zip")
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../a[/]b.dll", payload)
        z.writestr("[red]hidden[/red]-evil.dll", payload)
        z.writestr("clear\x1b[2Jscreen.dll", payload)
    iocs = Path("iocs.txt")
    iocs.write_text(hashlib.sha256(payload).hexdigest() + "\n")
    case = "case.duckdb"
    assert main(["intel", "add", str(iocs), "--case", case]) == 0
    capsys.readouterr()
    code = main(["scan", str(archive), "--case", case, "--workers", "0", "--no-rules"])
    scanned = capsys.readouterr()
    assert code == 1, scanned.err  # the hash findings, not a crash
    assert main(["report", "--case", case]) == 0
    reported = capsys.readouterr()
    for out in (scanned.out, reported.out):
        assert "[red]hidden[/red]-evil.dll" in out
        assert "a[/]b.dll" in out
        assert "clear\\x1b[2Jscreen.dll" in out
        assert "\x1b" not in out
