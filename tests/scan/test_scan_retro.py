"""Retroactive matching: indicators added after a scan meet the stored file records."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from taintline.case import Case
from taintline.cli.main import main
from taintline.model import Indicator, IndicatorType
from taintline.scan.retro import match_stored


def _tree(root: Path) -> dict[str, bytes]:
    root.mkdir()
    files = {
        "loose.dll": b"MZ loose payload " * 50,
        "other.bin": b"harmless other bytes " * 40,
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    # The same bytes inside an archive: two records, two findings (two subjects).
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("inner/loose.dll", files["loose.dll"])
    return files


def _hash_findings(case: Path) -> list[tuple[str, str | None, str]]:
    with Case(case) as c:
        return sorted(
            (f.subject.rsplit("/", 1)[-1], f.host, f.fingerprint)
            for f in c.findings(kinds=["ioc.hash"])
        )


def test_indicators_added_after_a_scan_match_without_reading_files(tmp_path: Path) -> None:
    files = _tree(tmp_path / "tree")
    case = tmp_path / "case.duckdb"
    assert main(["scan", str(tmp_path / "tree"), "--no-rules", "--case", str(case)]) == 0
    assert _hash_findings(case) == []
    # The files are gone (or the machine is): the match needs only the stored records.
    for p in (tmp_path / "tree").iterdir():
        p.unlink()
    sha = hashlib.sha256(files["loose.dll"]).hexdigest()
    feed = tmp_path / "feed.csv"
    feed.write_text(f"type,value\nsha256,{sha}\nsha256,{'0' * 64}\n")
    assert main(["intel", "add", str(feed), "--case", str(case)]) == 0
    found = _hash_findings(case)
    assert [name for name, _, _ in found] == ["loose.dll", "loose.dll"]
    with Case(case) as c:
        evidence = [f.evidence for f in c.findings(kinds=["ioc.hash"])]
    assert all(e["retroactive"] is True and e["scan_run"] for e in evidence)
    # Again: nothing new.
    with Case(case) as c:
        again = match_stored(c)
    assert again.matched == 2 and again.new_findings == 0


def test_a_fresh_scan_finds_the_same_findings_as_the_retroactive_match(tmp_path: Path) -> None:
    files = _tree(tmp_path / "tree")
    sha = hashlib.sha256(files["loose.dll"]).hexdigest()
    retro_case = tmp_path / "retro.duckdb"
    fresh_case = tmp_path / "fresh.duckdb"
    ind = [Indicator(IndicatorType.SHA256, sha, "feed")]
    assert main(["scan", str(tmp_path / "tree"), "--no-rules", "--case", str(retro_case)]) == 0
    with Case(retro_case) as c:
        c.add_indicators(ind)
        assert match_stored(c).new_findings == 2
    with Case(fresh_case) as c:
        c.add_indicators(ind)
    assert main(["scan", str(tmp_path / "tree"), "--no-rules", "--case", str(fresh_case)]) == 1
    # Same kind, subject, host and indicators: the same fingerprints.
    assert _hash_findings(retro_case) == _hash_findings(fresh_case)
    # And a re-scan of the retro case merges with what the match recorded.
    assert main(["scan", str(tmp_path / "tree"), "--no-rules", "--case", str(retro_case)]) == 1
    assert len(_hash_findings(retro_case)) == 2


def test_only_indicators_added_since_are_matched(tmp_path: Path) -> None:
    files = _tree(tmp_path / "tree")
    case = tmp_path / "case.duckdb"
    assert main(["scan", str(tmp_path / "tree"), "--no-rules", "--case", str(case)]) == 0
    loose = hashlib.sha256(files["loose.dll"]).hexdigest()
    other = hashlib.md5(files["other.bin"]).hexdigest()
    with Case(case) as c:
        c.add_indicators([Indicator(IndicatorType.SHA256, loose, "old-feed")])
        later = datetime.now(UTC)
        c.add_indicators([Indicator(IndicatorType.MD5, other, "new-feed")])
        result = match_stored(c, since=later, record=False)
    assert [f.subject.rsplit("/", 1)[-1] for f in result.findings] == ["other.bin"]
    assert result.findings[0].indicators == (f"md5:{other}",)


def test_match_command(tmp_path: Path, capsys) -> None:
    files = _tree(tmp_path / "tree")
    case = tmp_path / "case.duckdb"
    assert main(["scan", str(tmp_path / "tree"), "--no-rules", "--case", str(case)]) == 0
    with Case(case) as c:
        c.add_indicators(
            [Indicator(IndicatorType.SHA1, hashlib.sha1(files["other.bin"]).hexdigest(), "f")]
        )
    capsys.readouterr()
    assert main(["match", "--format", "jsonl", "--case", str(case)]) == 1
    out = capsys.readouterr()
    assert "other.bin" in out.out and "1 new match" in out.err
    # Matching again records nothing new, but the match is still reported (and fails CI).
    assert main(["match", "--case", str(case), "--fail-on", "critical"]) == 1
    assert "0 new match" in capsys.readouterr().err


FILENAME_IOCS = (
    "\\\\3CXDesktopApp\\\\app\\\\ffmpeg\\.dll$;80\n"
    # RE2's \d is ASCII only (Python's re also takes other Unicode digits): the scan and the
    # retroactive match use the same dialect, so neither matches setup<ARABIC-INDIC THREE>.exe
    "\\\\Temp\\\\setup\\d\\.exe$;60\n"
)


def _regex_tree(root: Path) -> None:
    (root / "3CXDesktopApp" / "app").mkdir(parents=True)
    (root / "3CXDesktopApp" / "app" / "ffmpeg.dll").write_bytes(b"harmless library")
    (root / "Temp").mkdir()
    (root / "Temp" / "setup3.exe").write_bytes(b"harmless one")
    (root / "Temp" / "setup\u0663.exe").write_bytes(b"harmless two")
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("3CXDesktopApp/app/ffmpeg.dll", b"inner")
        zf.writestr("docs/readme.txt", b"text")


def _filename_findings(case: Path) -> list[tuple[str, str | None, str]]:
    with Case(case) as c:
        return sorted(
            (f.subject, f.host, f.fingerprint) for f in c.findings(kinds=["ioc.filename"])
        )


def test_filename_regexes_added_after_a_scan_match_stored_paths(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _regex_tree(tree)
    iocs = tmp_path / "filename-iocs.txt"
    iocs.write_text(FILENAME_IOCS)
    retro_case, fresh_case = tmp_path / "retro.duckdb", tmp_path / "fresh.duckdb"
    scan = ["scan", str(tree), "--no-rules", "--host", "ws-1"]
    assert main([*scan, "--case", str(retro_case)]) == 0
    assert _filename_findings(retro_case) == []
    # the files are gone: only the stored paths are matched
    shutil.rmtree(tree)
    assert main(["intel", "add", str(iocs), "--case", str(retro_case)]) == 0
    retro = _filename_findings(retro_case)
    assert sorted(Path(s).name for s, _, _ in retro) == ["ffmpeg.dll", "ffmpeg.dll", "setup3.exe"]
    assert any("bundle.zip!/3CXDesktopApp/app/ffmpeg.dll" in s for s, _, _ in retro)
    assert {h for _, h, _ in retro} == {"ws-1"}
    with Case(retro_case) as c:
        evidence = [f.evidence for f in c.findings(kinds=["ioc.filename"])]
        again = match_stored(c)
    assert all(e["retroactive"] is True and e["scan_run"] for e in evidence)
    assert again.new_findings == 0 and again.matched == 3
    # a fresh scan of the same tree with the indicators loaded first: the same fingerprints
    _regex_tree(tree)
    assert main(["intel", "add", str(iocs), "--case", str(fresh_case)]) == 0
    assert main([*scan, "--case", str(fresh_case)]) == 1
    assert _filename_findings(fresh_case) == retro


def test_match_command_runs_filename_regexes_of_an_imported_case(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _regex_tree(tree)
    case = tmp_path / "case.duckdb"
    assert main(["scan", str(tree), "--no-rules", "--case", str(case)]) == 0
    with Case(case) as c:
        c.add_indicators(
            [Indicator(IndicatorType.FILENAME_REGEX, "\\\\Temp\\\\setup\\d\\.exe$", "feed")]
        )
        only_new = match_stored(c, since=datetime.now(UTC), record=False)
    assert only_new.findings == []  # added before ``since``
    assert main(["match", "--case", str(case), "--fail-on", "high"]) == 1  # no score: high
    assert [Path(s).name for s, _, _ in _filename_findings(case)] == ["setup3.exe"]
