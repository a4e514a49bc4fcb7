"""Container readers as plug-ins: one module per format, listed in :data:`CONTAINERS`.

:func:`container_kind` asks the one magic table (:mod:`taintline.scan.magic`) which reader
opens a file; :func:`expand` runs it and turns any parser failure on hostile input into an
``error.*`` finding for that container, after the members that could be read.
"""

from __future__ import annotations

import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator

from taintline.kinds import error_finding
from taintline.scan.containers import asar, cab, ole, tar
from taintline.scan.containers import zip as zip_
from taintline.scan.containers.interface import (
    SEP,
    Budget,
    Container,
    ContainerKind,
    LimitExceeded,
    Member,
    Produced,
    limit_finding,
    unsafe_member_name,
)
from taintline.scan.magic import FileType, sniff

#: Every container reader, in no particular order (each opens its own file types).
CONTAINERS: tuple[Container, ...] = (zip_, tar, ole, cab, asar)

_BY_FILETYPE: dict[FileType, tuple[ContainerKind, Container]] = {
    filetype: (kind, reader) for reader in CONTAINERS for filetype, kind in reader.OPENS.items()
}
_BY_KIND: dict[ContainerKind, Container] = dict(_BY_FILETYPE.values())

__all__ = [
    "CONTAINERS",
    "SEP",
    "Budget",
    "Container",
    "ContainerKind",
    "LimitExceeded",
    "Member",
    "Produced",
    "container_kind",
    "container_kind_of",
    "expand",
    "unsafe_member_name",
]


def container_kind(data: bytes) -> ContainerKind | None:
    """Which container ``data`` is, judged by content only (never by name)."""
    return container_kind_of(sniff(data))


def container_kind_of(found: FileType | None) -> ContainerKind | None:
    """Which container a file of the sniffed type ``found`` is (``MSI`` and ``OLE``, the only
    types a name changes, open the same way)."""
    entry = _BY_FILETYPE.get(found) if found is not None else None
    return entry[0] if entry else None


def expand(
    data: bytes, kind: ContainerKind, subject: str, name: str, budget: Budget
) -> Iterator[Produced]:
    """Members of the container ``data`` (display path ``subject``), or error findings.

    Never raises for bad input: corrupt and hostile containers end in an ``error.*`` finding
    after the members that could be read.
    """
    try:
        yield from _BY_KIND[kind].members(data, subject, name, budget)
    except LimitExceeded as exc:
        yield limit_finding(exc, subject)
    except (
        EOFError,
        zlib.error,
        lzma.LZMAError,
        OSError,
        tarfile.TarError,
        zipfile.BadZipFile,
    ) as exc:
        yield error_finding(
            "error.truncated-archive",
            subject,
            f"truncated or corrupt {kind}: {exc}",
            container=kind,
        )
    except (
        ValueError,
        KeyError,
        IndexError,
        struct.error,
        RuntimeError,
        OverflowError,  # olefile, for sector numbers past what an index can hold
        MemoryError,  # a parser believing a hostile size field
    ) as exc:
        yield error_finding("error.malformed", subject, f"malformed {kind}: {exc}", container=kind)
    except Exception as exc:  # any other parser failure on hostile input: this container only
        yield error_finding(
            "error.malformed",
            subject,
            f"malformed {kind}: {type(exc).__name__}: {exc}",
            container=kind,
            exception=type(exc).__name__,
        )
