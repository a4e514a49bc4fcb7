"""tar (plain, gzip, bzip2, xz); a compressed file that is not a tar is one member."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from taintline.model import Finding
from taintline.scan.containers.interface import (
    CHUNK,
    RATIO_GRACE,
    Budget,
    ContainerKind,
    LimitExceeded,
    Member,
    Produced,
    admit,
    limit_finding,
    read_stream,
)
from taintline.scan.magic import FileType

NAME = "tar"
OPENS = {
    FileType.TAR: ContainerKind.TAR,
    FileType.GZIP: ContainerKind.COMPRESSED,
    FileType.BZIP2: ContainerKind.COMPRESSED,
    FileType.XZ: ContainerKind.COMPRESSED,
}


class _CountingReader(io.RawIOBase):
    """Counts decompressed bytes as tarfile pulls them (headers and skipped members too), so a
    gzip bomb is stopped while decompressing rather than after."""

    def __init__(self, inner: io.BufferedIOBase, compressed_size: int, budget: Budget) -> None:
        self._inner = inner
        self._compressed = compressed_size
        self._budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count > RATIO_GRACE:
            ratio = self.count / max(self._compressed, 1)
            if ratio > self._budget.limits.max_ratio:
                raise LimitExceeded(
                    "error.archive-bomb",
                    f"compression ratio above {self._budget.limits.max_ratio:g} (--max-ratio);"
                    " rest of the container skipped",
                    ratio=round(ratio, 1),
                    compressed=self._compressed,
                    read=self.count,
                )
        if self.count > self._budget.limits.max_total_bytes:
            raise LimitExceeded(
                "error.archive-bomb",
                f"more than {self._budget.limits.max_total_bytes} bytes decompressed"
                " (--max-total-bytes); rest of the container skipped",
                read=self.count,
            )
        return n


def _decompressor(data: bytes) -> io.BufferedIOBase | None:
    raw = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)
    if data[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)
    return None


def _strip_compression_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz"):
        if lower.endswith(suffix):
            base = name[: -len(suffix)]
            return base + ".tar" if suffix.startswith(".t") else base
    return name + ".out"


def members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    inner = _decompressor(data)
    stream: io.RawIOBase | io.BufferedIOBase
    if inner is not None:
        counting = _CountingReader(inner, len(data), budget)
        stream = io.BufferedReader(counting, buffer_size=CHUNK)
        # is there a tar inside? peek at the first header block
        head = stream.peek(512)[:512]  # type: ignore[attr-defined]
        if not _looks_like_tar(head):
            single = _strip_compression_suffix(PurePosixPath(name).name)
            budget.take_file()
            content = read_stream(stream.read, subject=subject, budget=budget, compressed_size=None)
            yield Member(single, content)
            return
    else:
        stream = io.BytesIO(data)
    with tarfile.open(fileobj=stream, mode="r|") as tf:
        for info in tf:
            if not info.isreg():
                continue
            admitted = admit(info.name, subject, budget)
            if isinstance(admitted, Finding):
                yield admitted
                continue
            member, where = admitted
            fh = tf.extractfile(info)
            if fh is None:
                continue
            try:
                # the outer counting reader judges the ratio of the whole stream
                content = read_stream(fh.read, subject=where, budget=budget, compressed_size=None)
            except LimitExceeded as exc:
                if exc.member and exc.kind == "error.too-large":
                    yield limit_finding(exc, where)
                    continue
                raise
            yield Member(member, content)


def _looks_like_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    # v7 tar: the header checksum must match
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed
