"""A crash is never mistaken for a result: the traceback goes to a file, the user gets one
line naming the command and that file, and ``main`` exits with ``ExitCode.INTERNAL``."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from taintline import __version__

#: Commands with sub-commands: their crash is named with the sub-command (``intel add``).
GROUPS = frozenset(("intel", "graph"))


def command_name(args: Sequence[str]) -> str:
    """``intel add`` for ``["--case", "x", "intel", "add", "f.json"]``-like argument lists
    (the same guess ``main`` makes to load a command's module: words not starting with -)."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return "taintline"
    if words[0] in GROUPS and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0]


def crash_dirs() -> list[Path]:
    """Where crash reports go, in order of preference: ``$TAINTLINE_CRASH_DIR``, the user's
    state folder (``$XDG_STATE_HOME/taintline/crashes``, ``~/.local/state/...``), then the
    system's temporary folder."""
    out: list[Path] = []
    if explicit := os.environ.get("TAINTLINE_CRASH_DIR"):
        out.append(Path(explicit))
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    out.append(Path(state) / "taintline" / "crashes")
    out.append(Path(tempfile.gettempdir()) / "taintline-crashes")
    return out


def write_report(args: Sequence[str], exc: BaseException) -> Path | None:
    """Write the traceback of ``exc`` and the context needed to report it; returns the file,
    or ``None`` when no folder was writable."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    body = (
        f"taintline {__version__} crashed in `{command_name(args)}`\n"
        f"time: {datetime.now(UTC).isoformat()}\n"
        f"python: {sys.version.split()[0]} on {sys.platform}\n"
        f"arguments: {list(args)!r}\n\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    for folder in crash_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
                out.write(body)
            return Path(name)
        except OSError:
            continue
    return None
