"""The user's cache folder: what taintline can compute again, kept to save start-up time
(compiled YARA rules, the campaign pack's rows). Removing it loses nothing.

``$TAINTLINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/taintline``, else ``~/.cache/taintline``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(part: str) -> Path:
    """The cache folder of one kind of entry (``rules``, ``packs``); not created here."""
    if explicit := os.environ.get("TAINTLINE_CACHE_DIR"):
        return Path(explicit) / part
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "taintline" / part
