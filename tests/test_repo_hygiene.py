"""The repository holds no unresolved merge: no conflict markers in any tracked text file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(rb"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def test_no_conflict_markers() -> None:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    found = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or name.endswith(".bundle"):
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for match in MARKER.finditer(data):
            line = data.count(b"\n", 0, match.start()) + 1
            found.append(f"{name}:{line}")
    assert not found, f"unresolved merge conflict markers: {found}"
