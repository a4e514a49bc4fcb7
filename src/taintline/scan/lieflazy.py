"""LIEF, imported on first use.

Importing LIEF costs about 0.85 s of CPU. The scan's parent process only needs the analyser
modules for their facts classes (results coming back from the workers) and for the bundle
analysers, and a worker that sees no executable never needs LIEF at all; so the PE, ELF and
Mach-O analysers import LIEF inside the functions that parse, after calling :func:`ready`.
"""

from __future__ import annotations

import functools


@functools.cache
def ready() -> None:
    """Import LIEF once and silence its logging (hostile input makes it chatty)."""
    import lief

    lief.logging.disable()
