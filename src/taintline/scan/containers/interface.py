"""The contract between the scanner and the container readers (``scan/containers/*``).

A container reader is a module with three names (see :class:`Container`): ``NAME``, ``OPENS``
(which sniffed :class:`~taintline.scan.magic.FileType` it opens, as which
:class:`ContainerKind`) and ``members``, which yields each member's bytes or an ``error.*``
finding. Nothing is ever written to disk: members are decompressed in streaming chunks, counted
as they come (declared sizes are never trusted) and checked against the per-file size, the
compression ratio and the per-input budget of extracted bytes and files (:class:`Budget`).
Member names that would escape an extraction folder (``../``, absolute, drive letters) are
reported as ``error.path-traversal`` (:func:`admit`) and their content is not read.

Readers may raise :class:`LimitExceeded` and the usual parser errors; :func:`expand` in
``scan/containers/__init__.py`` turns them into findings after the members already produced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from taintline.kinds import error_finding
from taintline.limits import MiB, ScanLimits
from taintline.model import Finding
from taintline.scan.magic import FileType

#: Member paths inside containers are joined with this separator: ``setup.msi!/disk1.cab!/a.dll``.
SEP = "!/"

#: Reading chunk for members and large files.
CHUNK = 1 * MiB

#: The compression ratio is only judged once a member has produced this much: tiny, very
#: compressible files (a page of zeros) are normal.
RATIO_GRACE = 1 * MiB


class ContainerKind(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    COMPRESSED = "compressed"  # gzip/bzip2/xz: a tar inside, or one compressed file
    OLE = "ole"
    CAB = "cab"
    ASAR = "asar"


class LimitExceeded(Exception):
    """Raised while streaming a member when a limit is hit; becomes an ``error.*`` finding."""

    def __init__(
        self, kind: str, message: str, *, member: bool = False, **evidence: object
    ) -> None:
        super().__init__(message)
        #: ``True`` when only the current member is skipped; otherwise the container ends.
        self.member = member
        self.kind = kind
        self.message = message
        self.evidence = evidence


@dataclass(slots=True)
class Budget:
    """What one top-level file (and everything nested in it) may still extract."""

    limits: ScanLimits
    total_bytes: int = 0
    files: int = 0

    def take_bytes(self, n: int) -> None:
        self.total_bytes += n
        if self.total_bytes > self.limits.max_total_bytes:
            raise LimitExceeded(
                "error.archive-bomb",
                f"more than {self.limits.max_total_bytes} bytes extracted from one input"
                " (--max-total-bytes); rest of the container skipped",
                extracted=self.total_bytes,
            )

    def take_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise LimitExceeded(
                "error.too-many-files",
                f"more than {self.limits.max_files} members in one input (--max-files);"
                " rest of the container skipped",
            )


# -- member names ---------------------------------------------------------------------------


def unsafe_member_name(name: str) -> bool:
    """Would extracting ``name`` write outside the extraction folder?"""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        return True
    # ".." as a whole part implies ".." somewhere in the text: most names have none
    return ".." in text and any(part == ".." for part in text.split("/"))


def clean_name(name: str) -> str:
    return name.replace("\\", "/").lstrip("./") or name


# -- members --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One member read from a container: its name inside the container and its bytes."""

    name: str
    data: bytes


Produced = Member | Finding

#: Where a member's bytes lie in its container's file, in order: (offset, length) pairs.
Ranges = list[tuple[int, int]]


def read_stream(
    read: object,
    *,
    subject: str,
    budget: Budget,
    compressed_size: int | None,
) -> bytes:
    """Read a member from a file-like ``read`` callable in chunks, counting real bytes."""
    assert callable(read)
    limits = budget.limits
    chunks: list[bytes] = []
    produced = 0
    hashing: list[Any] = []  # over --max-file-size: the rest is only hashed, not kept
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        produced += len(chunk)
        budget.take_bytes(len(chunk))
        if produced > limits.max_file_bytes and not hashing:
            hashing = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
            for h in hashing:
                for kept in chunks:
                    h.update(kept)
            chunks = []
        if compressed_size is not None and produced > RATIO_GRACE:
            ratio = produced / max(compressed_size, 1)
            if ratio > limits.max_ratio:
                raise LimitExceeded(
                    "error.archive-bomb",
                    f"compression ratio above {limits.max_ratio:g} (--max-ratio); member skipped",
                    member=True,
                    ratio=round(ratio, 1),
                    compressed=compressed_size,
                    read=produced,
                )
        if hashing:
            for h in hashing:
                h.update(chunk)
        else:
            chunks.append(chunk)
    if hashing:
        md5, sha1, sha256 = (h.hexdigest() for h in hashing)
        raise LimitExceeded(
            "error.too-large",
            f"member of {produced} bytes larger than {limits.max_file_bytes} bytes"
            " (--max-file-size): hashed (MD5, SHA-1, SHA-256) by streaming, not scanned",
            member=True,
            read=produced,
            size=produced,
            md5=md5,
            sha1=sha1,
            sha256=sha256,
        )
    return b"".join(chunks)


def hashed_too_large(where: str, content: bytes, limit: int) -> Finding:
    """A member over ``--max-file-size`` whose bytes the container's library produced whole
    anyway (cabarchive expands a CAB at once): hashed, not scanned, said as
    :func:`read_stream` says it (the worker records it, so hash indicators match)."""
    hashing = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
    view = memoryview(content)
    for start in range(0, len(view), CHUNK):
        for h in hashing:
            h.update(view[start : start + CHUNK])
    md5, sha1, sha256 = (h.hexdigest() for h in hashing)
    return error_finding(
        "error.too-large",
        where,
        f"member of {len(content)} bytes larger than {limit} bytes (--max-file-size): hashed"
        " (MD5, SHA-1, SHA-256), not scanned",
        read=len(content),
        size=len(content),
        md5=md5,
        sha1=sha1,
        sha256=sha256,
    )


def limit_finding(exc: LimitExceeded, subject: str) -> Finding:
    return error_finding(exc.kind, subject, exc.message, **exc.evidence)


def admit(name: str, subject: str, budget: Budget) -> Finding | tuple[str, str]:
    """A member about to be read: its clean name and display path, counted against
    ``--max-files``; or the path-traversal finding when its name escapes the container."""
    if unsafe_member_name(name):
        return error_finding(
            "error.path-traversal",
            f"{subject}{SEP}{name}",
            "member name escapes the extraction folder (path traversal); not extracted",
            member=name,
        )
    member = clean_name(name)
    budget.take_file()
    return member, f"{subject}{SEP}{member}"


class Container(Protocol):
    """One container format. Implementations are modules exposing these three names."""

    NAME: str

    @property
    def OPENS(self) -> Mapping[FileType, ContainerKind]:
        """The sniffed file types this reader opens, and the kind each is opened as."""
        ...

    def members(self, data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
        """Members of ``data`` (display path ``subject``, file name ``name``) or findings."""
        ...
