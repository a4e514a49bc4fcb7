"""Incremental scans: unchanged files are not read, changed ones are, results equal a fresh scan."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taintline.case import Case
from taintline.cli.main import main
from taintline.scan.engine import ScanOptions, ScanResult, scan_paths
from taintline.scan.worker import Worker
from taintline.testing.archives import zip_bytes
from taintline.testing.image import png, with_trailing
from taintline.testing.pe import build_pe

from .scanhelpers import run_rows, settle

RULE_A = 'rule marker_a { strings: $a = "taintline-marker-a" condition: $a }\n'
RULE_B = 'rule marker_b { strings: $b = "taintline-marker-b" condition: $b }\n'


def _tree(root: Path) -> None:
    pe = build_pe()
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "loose.dll").write_bytes(pe)
    (root / "bin" / "marker.txt").write_bytes(b"x taintline-marker-a y")
    (root / "img.png").write_bytes(with_trailing(png()))
    (root / "bundle.zip").write_bytes(
        zip_bytes({"lib/same.dll": pe, "docs/b.txt": b"member taintline-marker-b", "c.txt": b"c"})
    )
    (root / "keep.txt").write_bytes(b"unchanged content")
    (root / "edit.txt").write_bytes(b"before the edit!")
    (root / "sneaky.txt").write_bytes(b"original bytes 1")
    (root / "swap.txt").write_bytes(b"swap me please 1")
    (root / "gone.txt").write_bytes(b"will be removed")
    (root / "old-name.txt").write_bytes(b"will be renamed taintline-marker-a")


def _change(root: Path) -> None:
    (root / "new.txt").write_bytes(b"a new file taintline-marker-a")
    (root / "edit.txt").write_bytes(b"after the edit, longer")
    # same size, mtime put back: ctime still moves
    st = (root / "sneaky.txt").stat()
    (root / "sneaky.txt").write_bytes(b"changed bytes 22")
    os.utime(root / "sneaky.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    # a new inode of the same size renamed over the old one, mtime put back
    st = (root / "swap.txt").stat()
    (root / "swap.tmp").write_bytes(b"swap me please 2")
    os.utime(root / "swap.tmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    (root / "swap.tmp").replace(root / "swap.txt")
    (root / "gone.txt").unlink()
    (root / "old-name.txt").rename(root / "new-name.txt")


def _scan(case: Case, root: Path, rules: list[Path], *, full: bool = False) -> ScanResult:
    options = ScanOptions(
        workers=0, rule_files=tuple(rules), ensure_intel=False, host="ws-1", full=full
    )
    return scan_paths([root], case, options)


def _view(result: ScanResult) -> list[tuple[str, str, str, str]]:
    return sorted((f.fingerprint, f.kind, str(f.severity), f.message) for f in result.findings)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], list[str]]]:
    """Files under a folder that the scan opened (every read starts with ``os.open``)."""
    calls: list[str] = []
    real_open = os.open

    def counting(path: Any, *args: Any, **kwargs: Any) -> int:
        calls.append(os.fsdecode(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    yield lambda root: sorted(c for c in calls if c.startswith(str(root)))


@pytest.fixture
def analysed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the analysers ran on."""
    seen: list[str] = []
    real = Worker._analyse

    def counting(self: Worker, item: Any, *args: Any) -> Any:
        seen.append(item.path)
        return real(self, item, *args)

    monkeypatch.setattr(Worker, "_analyse", counting)
    return seen


def test_rescan_of_an_unchanged_tree_reads_no_file(
    tmp_path: Path, opened: Callable[[Path], list[str]], analysed: list[str]
) -> None:
    root = tmp_path / "tree"
    _tree(root)
    rules = tmp_path / "a.yar"
    rules.write_text(RULE_A)
    settle()
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, [rules])
        assert first.unchanged == 0 and len(set(opened(root))) == first.files == 10
        # the same DLL loose and inside the ZIP is analysed once
        assert sum(p.endswith(".dll") for p in analysed) == 1
        before = len(opened(root))
        again = _scan(case, root, [rules])
        assert len(opened(root)) == before  # not one file opened
        assert again.unchanged == again.files == 10 and again.bytes_read == 0
        assert again.reuse_summary() == "10 of 10 files unchanged, 0 read"
        assert first.rules == 1 and again.rules == 0  # nothing to read: rules not compiled
        assert _view(again) == _view(first)
        kinds = {f.kind for f in again.findings}
        assert {"yara", "pe.unsigned", "image.trailing-data"} <= kinds
        assert again.members == first.members == 3
        rows = run_rows(case, first.run_id)
        assert rows and run_rows(case, again.run_id) == rows


def test_new_rules_rerun_yara_only(
    tmp_path: Path, opened: Callable[[Path], list[str]], analysed: list[str]
) -> None:
    root = tmp_path / "tree"
    _tree(root)
    a, b = tmp_path / "a.yar", tmp_path / "b.yar"
    a.write_text(RULE_A)
    b.write_text(RULE_B)
    settle()
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, [a])
        assert not any(f.evidence.get("rule") == "marker_b" for f in first.findings)
        analysed.clear()
        second = _scan(case, root, [a, b])
        # every file is read again for YARA, none analysed again
        assert analysed == [] and second.unchanged == 0 and second.known_content == 10
        hits = [f.subject for f in second.findings if f.evidence.get("rule") == "marker_b"]
        assert hits == [f"{root}/bundle.zip!/docs/b.txt"]
        with Case(tmp_path / "fresh.duckdb") as fresh:
            assert _view(_scan(fresh, root, [a, b])) == _view(second)
        # and the results under the new rules are remembered: nothing read the third time
        third = _scan(case, root, [a, b])
        assert third.unchanged == 10 and _view(third) == _view(second)


def test_rescan_after_changes_equals_a_fresh_scan(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _tree(root)
    rules = tmp_path / "a.yar"
    rules.write_text(RULE_A)
    settle()
    with Case(tmp_path / "case.duckdb") as case:
        _scan(case, root, [rules])
        _change(root)
        settle()
        again = _scan(case, root, [rules])
        # unchanged: loose.dll, marker.txt, img.png, bundle.zip, keep.txt; the renamed file
        # is read but its content is known
        assert again.unchanged == 5 and again.files == 10
        assert again.known_content == 1
        assert sorted(Path(p).name for p in again.disappeared) == ["gone.txt", "old-name.txt"]
        with Case(tmp_path / "fresh.duckdb") as fresh:
            reference = _scan(fresh, root, [rules])
            assert _view(again) == _view(reference)
            assert run_rows(case, again.run_id) == run_rows(fresh, reference.run_id)
        # the sneaky edits are in: their new hashes were recorded
        shas = dict(
            case.con.execute(
                "SELECT path, sha256 FROM file_facts_all WHERE run_id = ?", [again.run_id]
            ).fetchall()
        )
        with Case(tmp_path / "fresh.duckdb") as fresh:
            assert shas == dict(
                fresh.con.execute(
                    "SELECT path, sha256 FROM file_facts_all WHERE run_id = ?", [reference.run_id]
                ).fetchall()
            )
        # --full reads everything again and finds the same
        full = _scan(case, root, [rules], full=True)
        assert full.unchanged == 0 and full.known_content == 0 and _view(full) == _view(again)
        # nothing disappeared since the last scan of this root
        assert full.disappeared == ()


def test_files_written_during_the_scan_are_not_trusted(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    with Case(tmp_path / "case.duckdb") as case:
        (root / "fresh.txt").write_bytes(b"just written")
        _scan(case, root, [])
        # its ctime is within the racy window of the first scan: read again
        assert _scan(case, root, []).unchanged == 0


def test_cli_says_how_much_was_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(3):
        (root / f"f{i}.txt").write_bytes(b"file %d" % i)
    settle()
    case = str(tmp_path / "case.duckdb")
    argv = ["scan", str(root), "--no-rules", "--workers", "0", "--case", case]
    assert main(argv) == 0
    assert "0 of 3 files unchanged, 3 read" in capsys.readouterr().err
    assert main(argv) == 0
    assert "3 of 3 files unchanged, 0 read" in capsys.readouterr().err
    (root / "f0.txt").unlink()
    assert main([*argv, "--full"]) == 0
    err = capsys.readouterr().err
    assert "0 of 2 files unchanged, 2 read; 1 gone since the last scan" in err
    assert "f0.txt" in err
