"""``filename-regex`` indicators (LOKI/THOR filename IOCs) against scanned paths."""

from __future__ import annotations

from pathlib import Path

from taintline.case import Case
from taintline.intel.store import ingest
from taintline.model import Severity
from taintline.scan.filenames import FilenameRules, PathRule
from taintline.testing.archives import zip_bytes

from .scanhelpers import run_scan

IOCS = (
    "# Generated campaign https://example.org/report\n"
    "\\\\3CXDesktopApp\\\\app\\\\ffmpeg\\.dll$;80\n"
    "\\\\Temp\\\\[a-z]{5}\\.exe$;60;\\\\Temp\\\\setup\\.exe$\n"
    "ffmpeg\\.dll;40\n"
)


def _load(case: Case, tmp_path: Path) -> None:
    iocs = tmp_path / "filename-iocs.txt"
    iocs.write_text(IOCS)
    report = ingest(case, [iocs])
    assert not report.files[0].failed
    assert report.files[0].read_by_type == {"filename-regex": 3}


def test_regexes_match_paths_inside_containers_never_as_literal_names(
    case: Case, tmp_path: Path
) -> None:
    _load(case, tmp_path)
    root = tmp_path / "scan"
    (root / "3CXDesktopApp" / "app").mkdir(parents=True)
    (root / "3CXDesktopApp" / "app" / "ffmpeg.dll").write_bytes(b"harmless library")
    (root / "Temp").mkdir()
    (root / "Temp" / "abcde.exe").write_bytes(b"harmless one")
    (root / "Temp" / "setup.exe").write_bytes(b"harmless two")  # the false-positive regex
    (root / "notes.txt").write_text("ffmpeg.dll is mentioned here")
    (root / "bundle.zip").write_bytes(
        zip_bytes({"3CXDesktopApp/app/ffmpeg.dll": b"inner", "docs/readme.txt": b"text"})
    )
    result = run_scan(case, [root])
    found = {
        (
            Path(f.subject).name if "!" not in f.subject else f.subject.split(str(root))[-1],
            f.evidence["regex"],
            f.severity,
        )
        for f in result.findings
        if f.kind == "ioc.filename"
    }
    assert found == {
        ("ffmpeg.dll", "\\\\3CXDesktopApp\\\\app\\\\ffmpeg\\.dll$", Severity.HIGH),
        ("ffmpeg.dll", "ffmpeg\\.dll", Severity.LOW),
        (
            "/bundle.zip!/3CXDesktopApp/app/ffmpeg.dll",
            "\\\\3CXDesktopApp\\\\app\\\\ffmpeg\\.dll$",
            Severity.HIGH,
        ),
        ("/bundle.zip!/3CXDesktopApp/app/ffmpeg.dll", "ffmpeg\\.dll", Severity.LOW),
        ("abcde.exe", "\\\\Temp\\\\[a-z]{5}\\.exe$", Severity.MEDIUM),
    }
    # the regex text itself is no file name indicator
    assert not case.indicators(types=["filename"])
    stored = case.findings(kinds=["ioc.filename"])
    assert len(stored) == 5


def test_matching_is_case_sensitive_and_survives_many_rules() -> None:
    many = [f"\\\\tool{i}\\.exe$" for i in range(3000)]
    rules = FilenameRules([PathRule(r, ("feed",), 70) for r in [*many, "\\\\Evil\\.dll$"]])
    got = rules.match(["C:/x/tool7.exe", "/x/evil.dll", "/x/Evil.dll", "/x/tool7.exe.bak"])
    assert sorted((f.subject, f.evidence["regex"]) for f in got) == [
        ("/x/Evil.dll", "\\\\Evil\\.dll$"),
        ("C:/x/tool7.exe", "\\\\tool7\\.exe$"),
    ]
