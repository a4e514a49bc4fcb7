"""The intel readers, in sniffing order (explicit: adding a format is adding a module here).

Structured formats come first; ``jsonother`` refuses JSON none of them claimed (it must come
after every JSON reader); ``csvtext`` accepts any text and must stay last.
"""

from __future__ import annotations

from pathlib import Path

from taintline.intel import csvtext, endoflife, endoflife_md, jsonother, misp, stix, yara_rules
from taintline.intel.interface import Reader

READERS: tuple[Reader, ...] = (
    stix,
    misp,
    endoflife,
    endoflife_md,
    jsonother,
    yara_rules,
    csvtext,
)

#: How many bytes of a file the readers see when sniffing.
SNIFF_BYTES = 64 * 1024


def reader_named(name: str) -> Reader | None:
    return next((r for r in READERS if name == r.NAME), None)


def detect(head: bytes, path: Path) -> Reader | None:
    """The first reader that recognises the content."""
    for reader in READERS:
        if reader.sniff(head, path):
            return reader
    return None
