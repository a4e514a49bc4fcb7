"""Hostile input: each gives its error finding; the scan finishes with the other findings."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.limits import MiB, ScanLimits
from taintline.model import Indicator, IndicatorType, Severity
from taintline.scan import store
from taintline.testing.archives import (
    nested_zips,
    tar_bytes,
    traversal_zip,
    truncated,
    zip_bomb,
    zip_bytes,
)

from .scanhelpers import kinds, run_scan, write_rules

GOOD = b"GOOD_FILE_MARKER and nothing else"


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "good.bin").write_bytes(GOOD)
    (root / "truncated.zip").write_bytes(truncated(zip_bytes({"a.txt": b"a" * 5000})))
    (root / "bomb.zip").write_bytes(zip_bomb(16 * MiB))
    (root / "deep.zip").write_bytes(nested_zips(6, b"DEEP"))
    (root / "traversal.zip").write_bytes(traversal_zip({"inside.txt": GOOD}))
    (root / "empty.dat").write_bytes(b"")
    sub = root / "sub"
    sub.mkdir()
    (sub / "loop").symlink_to(root)  # a folder link to its own ancestor
    (root / "self").symlink_to(root / "self")  # ELOOP
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    (root / "out.txt").symlink_to(outside)
    (root / "dangling").symlink_to(tmp_path / "nope")
    os.mkfifo(root / "fifo")
    return root


def test_hostile_tree_gives_errors_and_keeps_other_findings(tmp_path: Path, case: Case) -> None:
    root = _tree(tmp_path)
    case.add_indicators(
        [Indicator(IndicatorType.SHA256, hashlib.sha256(GOOD).hexdigest(), source="test-feed")]
    )
    rule = write_rules(
        tmp_path / "r.yar", 'rule good { strings: $a = "GOOD_FILE_MARKER" condition: $a }'
    )
    limits = ScanLimits(max_depth=3)
    started = time.monotonic()
    result = run_scan(case, [root], rules=[rule], limits=limits)
    assert time.monotonic() - started < 60
    got = kinds(result.findings)
    assert got["error.truncated-archive"] == [f"{root}/truncated.zip"]
    assert got["error.archive-bomb"] == [f"{root}/bomb.zip!/zeros.bin"]
    assert got["error.too-deep"] == [f"{root}/deep.zip!/level2.zip!/level3.zip!/level4.zip"]
    assert len(got["error.path-traversal"]) == 4
    assert sorted(got["error.symlink-loop"]) == [f"{root}/self", f"{root}/sub/loop"]
    assert got["error.symlink-outside"] == [f"{root}/out.txt"]
    assert got["error.unreadable"] == [f"{root}/dangling"]
    assert got["error.not-regular"] == [f"{root}/fifo"]
    # everything else intact: the hash and YARA hits on the good file and the traversal zip's
    # good member
    assert sorted(got["ioc.hash"]) == [f"{root}/good.bin", f"{root}/traversal.zip!/inside.txt"]
    assert sorted(got["yara"]) == [f"{root}/good.bin", f"{root}/traversal.zip!/inside.txt"]
    ioc = next(f for f in result.findings if f.kind == "ioc.hash")
    assert ioc.severity is Severity.CRITICAL
    assert ioc.indicators == (f"sha256:{hashlib.sha256(GOOD).hexdigest()}",)
    assert ioc.evidence["matches"][0]["sources"] == ["test-feed"]
    # the zero-length file was hashed and recorded
    empty = [r for r in store.file_facts(case) if r.path == f"{root}/empty.dat"]
    assert empty and empty[0].sha256 == hashlib.sha256(b"").hexdigest() and empty[0].size == 0
    # findings are in the case too
    stored = {(f.kind, f.subject) for f in case.findings()}
    assert ("error.archive-bomb", f"{root}/bomb.zip!/zeros.bin") in stored
    assert ("ioc.hash", f"{root}/good.bin") in stored


def test_total_bytes_and_file_count_budgets(tmp_path: Path, case: Case) -> None:
    many = zip_bytes({f"f{i}.bin": os.urandom(64 * 1024) for i in range(20)})
    (tmp_path / "many.zip").write_bytes(many)
    result = run_scan(case, [tmp_path / "many.zip"], limits=ScanLimits(max_total_bytes=512 * 1024))
    bomb = [f for f in result.findings if f.kind == "error.archive-bomb"]
    assert len(bomb) == 1
    assert "--max-total-bytes" in bomb[0].message
    assert 0 < result.members < 20
    result = run_scan(case, [tmp_path / "many.zip"], limits=ScanLimits(max_files=5))
    assert [f.kind for f in result.findings] == ["error.too-many-files"]
    assert result.members == 5


def test_gzip_tar_bomb_stops_while_decompressing(tmp_path: Path, case: Case) -> None:
    (tmp_path / "bomb.tar.gz").write_bytes(
        tar_bytes({"zeros": b"\0" * (64 * MiB)}, compression="gz")
    )
    result = run_scan(case, [tmp_path / "bomb.tar.gz"])
    bomb = [f for f in result.findings if f.kind == "error.archive-bomb"]
    assert len(bomb) == 1
    assert bomb[0].evidence["read"] < 64 * MiB


def test_unreadable_file_is_an_error_finding(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests run as root, so chmod 000 does not stop reads: make open() fail for one file
    root = tmp_path / "tree"
    root.mkdir()
    (root / "locked.bin").write_bytes(b"secret")
    (root / "ok.bin").write_bytes(GOOD)
    real_open = os.open

    def fake_open(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("locked.bin"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    rule = write_rules(tmp_path / "r.yar", 'rule good { strings: $a = "GOOD_FILE" condition: $a }')
    result = run_scan(case, [root], rules=[rule])
    got = kinds(result.findings)
    assert got["error.unreadable"] == [f"{root}/locked.bin"]
    assert got["yara"] == [f"{root}/ok.bin"]


def test_ole_with_a_huge_mini_sector_shift_keeps_the_members_before_it() -> None:
    """olefile raises OverflowError for a mini sector of 2**64 bytes; the container gives an
    error finding after the members it could read (found by fuzzing, once an escape)."""
    from taintline.scan.containers import Budget, Member, container_kind, expand
    from taintline.testing.archives import msi_like

    data = msi_like({"files.cab": {"a.txt": b"x" * 5000}})
    data = data[:32] + (64).to_bytes(2, "little") + data[34:]  # uMiniSectorShift
    kind = container_kind(data)
    assert kind is not None
    produced = list(expand(data, kind, "s.msi", "s.msi", Budget(ScanLimits())))
    assert any(isinstance(p, Member) for p in produced)
    errors = [p for p in produced if not isinstance(p, Member)]
    assert [e.kind for e in errors] == ["error.malformed"]
    assert "cannot fit" in errors[0].message


def test_a_bug_on_one_file_keeps_the_rest_of_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taintline.scan.interface import AnalysisContext
    from taintline.scan.walk import FileTask
    from taintline.scan.worker import Worker, WorkerConfig

    paths = []
    for name in ("a.txt", "boom.txt", "c.txt"):
        path = tmp_path / name
        path.write_bytes(name.encode() * 10)
        paths.append(path)
    worker = Worker(WorkerConfig(None, ScanLimits(), AnalysisContext()), hash_threads=False)
    real = Worker.scan_item

    def scan_item(self: Worker, data: bytes, path: str, *args: object) -> None:
        if path.endswith("boom.txt"):
            raise TypeError("a bug")
        real(self, data, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Worker, "scan_item", scan_item)
    tasks = [FileTask(str(p), str(p), str(p), p.stat().st_size, "") for p in paths]
    result = worker.run_batch(tasks)
    assert [Path(r.path).name for r in result.records] == ["a.txt", "c.txt"]
    assert [(f.kind, Path(f.subject).name) for f in result.findings] == [
        ("error.internal", "boom.txt")
    ]
    assert "TypeError: a bug" in result.findings[0].message
    assert [span[0] for span in result.spans] == [str(p) for p in paths]
