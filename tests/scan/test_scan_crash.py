"""A parser that kills its process (LIEF segfaulting on hostile bytes, here a deliberate
``os.abort()``) cannot kill the scan: the scan's worker processes isolate it, the file that
killed a worker becomes an ``error.worker-crash`` finding, every other file is scanned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.scan.engine import ScanOptions, scan_paths

MARKER = "TAINTLINE-TEST-ABORT-7f3a"

#: Run by every new Python process whose path holds it (the scan's spawned workers): from
#: then on, a buffer holding MARKER makes the worker abort inside its per-file analysis, as a
#: segfaulting native parser would.
SITECUSTOMIZE = f"""
import os
if os.environ.get("TAINTLINE_TEST_ABORT_ON") == {MARKER!r}:
    import taintline.scan.worker as _worker
    _sniff = _worker.sniff
    def sniff(data, *args, **kwargs):
        if {MARKER.encode()!r} in bytes(data[:65536]):
            os.abort()
        return _sniff(data, *args, **kwargs)
    _worker.sniff = sniff
"""


def test_a_worker_that_aborts_is_one_finding_and_the_scan_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join([str(hook), src, os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("TAINTLINE_TEST_ABORT_ON", MARKER)
    tree = tmp_path / "tree"
    tree.mkdir()
    names = ["a.txt", "b.txt"]
    for name in names:
        (tree / name).write_bytes(f"harmless {name}\n".encode())
    (tree / "crasher.bin").write_bytes(b"hostile " + MARKER.encode() + b" bytes\n")
    with Case(tmp_path / "case.duckdb") as case:
        result = scan_paths(
            [tree], case, ScanOptions(workers=1, use_rules=False, ensure_intel=False)
        )
        scanned = {
            Path(r[0]).name for r in case.con.execute("SELECT path FROM file_facts").fetchall()
        }
    crashes = [f for f in result.findings if f.kind == "error.worker-crash"]
    assert [Path(f.subject).name for f in crashes] == ["crasher.bin"]
    assert "worker process died" in crashes[0].message
    assert set(names) <= scanned and "crasher.bin" not in scanned
    assert not result.interrupted and result.files >= len(names)
