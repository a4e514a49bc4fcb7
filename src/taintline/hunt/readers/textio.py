"""Byte-level helpers shared by the log readers: peeking at a file, and one counting pass.

DuckDB reads the data, but it silently skips blank lines and cannot report line numbers, and
a truncated compressed member ends its scan with an error. This pass (``bytes.count``/``find`` over
large blocks, so it runs at memory speed on plain files) gives every file an exact line
count, the numbers of its blank lines (to turn DuckDB's row numbers into line numbers), the
number of ``#`` lines, and for a damaged compressed file a plain copy of everything readable.
gzip, bzip2 and zstd input is known by its magic bytes (:mod:`taintline.compressed` decodes it,
streamed and bounded).
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from taintline.compressed import (
    SUFFIXES,
    CompressedInputError,
    Expansion,
    ExpansionError,
    compression_of,
    stream_blocks,
)

_BLOCK = 8 << 20
#: More blank lines than this in one file are counted but their positions are not kept
#: (line numbers after them may then be off; a Problem says so).
MAX_BLANK_POSITIONS = 1_000_000
#: How far a compressed log may expand unless the hunt's options say otherwise.
DEFAULT_EXPANSION = Expansion(max_bytes=256 << 30)
#: Compressions DuckDB reads itself (``read_csv(..., compression=...)``); a bzip2 log is
#: read from a plain copy the counting pass writes.
NATIVE = frozenset({"gzip", "zstd"})


def compression_of_path(path: Path) -> str | None:
    """``gzip``, ``bzip2`` or ``zstd`` by the magic bytes; a path not on this machine (a
    cluster URI) by its name ending."""
    try:
        with path.open("rb") as handle:
            return compression_of(handle.read(4))
    except OSError:
        return SUFFIXES.get(path.suffix.lower())


def head_lines(path: Path, max_bytes: int = 256 * 1024, max_lines: int = 200) -> list[bytes]:
    """The first lines of a (possibly gzip, bzip2 or zstd compressed) file, without line
    endings. A damaged compressed file gives what could be read before the damage."""
    data = bytearray()
    with path.open("rb") as handle:
        name = compression_of(handle.read(4))
        handle.seek(0)
        if name is None:
            data += handle.read(max_bytes)
        else:
            for block in decompressed_blocks(handle, name, Damage(), DEFAULT_EXPANSION, 1 << 16):
                data += block
                if len(data) >= max_bytes:
                    break
    lines = bytes(data[:max_bytes]).split(b"\n")
    if len(data) >= max_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last one is cut
    return [line.rstrip(b"\r") for line in lines[:max_lines]]


@dataclass(slots=True)
class Damage:
    message: str | None = None


def decompressed_blocks(
    handle: BinaryIO, name: str, damage: Damage, limit: Expansion, block: int = _BLOCK
) -> Iterator[bytes]:
    """Decompressed blocks (at most ``block`` bytes each, whatever the compression ratio) of
    every member or frame; stops, recording why in ``damage``, at the first damage or when
    the data expands past ``limit`` (what came before stays)."""
    try:
        yield from stream_blocks(handle, name, limit, block)
    except ExpansionError as exc:
        damage.message = f"{exc}: reading stopped there"
    except CompressedInputError as exc:
        damage.message = str(exc)


def iter_lines(path: Path, limit: Expansion = DEFAULT_EXPANSION) -> Iterator[bytes]:
    """The raw lines of a plain or compressed file (with their line endings), up to any
    damage."""
    with path.open("rb") as handle:
        name = compression_of(handle.read(4))
        handle.seek(0)
        if name is None:
            yield from handle
            return
        pending = b""
        for chunk in decompressed_blocks(handle, name, Damage(), limit):
            data = pending + chunk
            cut = data.rfind(b"\n")
            if cut == -1:
                pending = data
                continue
            yield from data[: cut + 1].splitlines(keepends=True)
            pending = data[cut + 1 :]
        if pending:
            yield pending


@dataclass(slots=True)
class LineScan:
    """Result of the counting pass over one file."""

    lines: int = 0
    #: Line numbers (1-based) of empty lines (``\\n`` or ``\\r\\n`` alone).
    blank: list[int] = field(default_factory=list)
    blank_count: int = 0
    #: Lines whose first byte is ``#``.
    hash_lines: int = 0
    #: Line numbers of lines that are not valid UTF-8.
    bad_utf8: list[int] = field(default_factory=list)
    #: Set when the file is a damaged compressed file: why. ``salvaged`` is a plain copy of
    #: what was readable (complete lines only), or of a whole file whose compression the
    #: engine does not read itself.
    damage: str | None = None
    salvaged: Path | None = None
    #: The incomplete last line of a damaged file (counted as garbage).
    cut_line: bool = False


class _Counter:
    """Counts lines, blank lines and ``#`` lines over consecutive blocks."""

    def __init__(self, scan: LineScan) -> None:
        self.scan = scan
        self.prev = b"\n"  # the byte before the current block ("start of a line")
        self.prev2 = b""
        self.decoder: codecs.IncrementalDecoder | _SkipLine = codecs.getincrementaldecoder(
            "utf-8"
        )()

    def feed(self, block: bytes) -> None:
        if not block:
            return
        scan = self.scan
        base = scan.lines  # newlines before this block
        at_line_start = self.prev == b"\n"
        if b"#" in block:
            scan.hash_lines += block.count(b"\n#") + (
                1 if at_line_start and block[:1] == b"#" else 0
            )
        # Blank lines that end at the very start of this block.
        if (at_line_start and (block[:1] == b"\n" or block[:2] == b"\r\n")) or (
            self.prev2 + self.prev == b"\n\r" and block[:1] == b"\n"
        ):
            self._add_blank(base + 1)
        self._blank(block, base)
        if not (block.isascii() and not self._pending()):
            self._utf8(block, base)
        scan.lines += block.count(b"\n")
        self.prev2 = block[-2:-1] if len(block) >= 2 else self.prev
        self.prev = block[-1:]

    def _pending(self) -> bool:
        decoder = self.decoder
        return isinstance(decoder, _SkipLine) or bool(decoder.getstate()[0])

    def _blank(self, block: bytes, base: int) -> None:
        """Blank lines inside the block: a newline followed by a newline (or ``\\r\\n``)."""
        # numpy finds "\n\n" about twice as fast as bytes.find on newline-dense data.
        newline = np.frombuffer(block, np.uint8) == 10
        found: list[int] = (np.flatnonzero(newline[:-1] & newline[1:]) + 1).tolist()
        if b"\r" in block:
            pos = block.find(b"\n\r\n")
            while pos != -1:
                found.append(pos + 1)
                pos = block.find(b"\n\r\n", pos + 1)
        if not found:
            return
        found.sort()
        counted, upto = 0, 0
        for start in found:
            counted += block.count(b"\n", upto, start)
            upto = start
            self._add_blank(base + counted + 1)

    def _utf8(self, block: bytes, base: int) -> None:
        start = 0
        while start < len(block):
            try:
                self.decoder.decode(block[start:])
                return
            except UnicodeDecodeError as exc:
                bad = start + exc.start
                line = base + block.count(b"\n", 0, bad) + 1
                if not self.scan.bad_utf8 or self.scan.bad_utf8[-1] != line:
                    self.scan.bad_utf8.append(line)
                self.decoder = codecs.getincrementaldecoder("utf-8")()
                nxt = block.find(b"\n", bad)
                if nxt == -1:
                    # The rest of this line continues in the next block: skip to its end there.
                    self.decoder = _SkipLine()
                    return
                start = nxt + 1

    def _add_blank(self, line: int) -> None:
        scan = self.scan
        scan.blank_count += 1
        if len(scan.blank) < MAX_BLANK_POSITIONS:
            scan.blank.append(line)

    def finish(self) -> None:
        if self.prev not in (b"\n", b""):
            self.scan.lines += 1  # a last line without a newline


class _SkipLine:
    """Stands in for the UTF-8 decoder until the end of a bad line that spans two blocks."""

    def decode(self, data: bytes) -> str:
        raise UnicodeDecodeError("utf-8", data, 0, 1, "rest of an invalid line")


def scan_file(
    path: Path,
    salvage_dir: Path | None = None,
    limit: Expansion = DEFAULT_EXPANSION,
    *,
    plain_copy: bool | None = None,
) -> LineScan:
    """Count the lines of ``path`` (plain or compressed). A damaged compressed file, one that
    expands past ``limit``, and one whose compression the engine does not read itself
    (``plain_copy``; by default a compression outside :data:`NATIVE`) get a plain copy of
    their complete lines in ``scan.salvaged``, written in the same pass."""
    scan = LineScan()
    counter = _Counter(scan)
    with path.open("rb") as handle:
        name = compression_of(handle.read(4))
        handle.seek(0)
        if name is None:
            while block := handle.read(_BLOCK):
                counter.feed(block)
            counter.finish()
            scan.blank.sort()
            return scan
        copy = name not in NATIVE if plain_copy is None else plain_copy
        damage = Damage()
        writer = _CopyWriter(salvage_dir) if copy else None
        try:
            for block in decompressed_blocks(handle, name, damage, limit):
                counter.feed(block)
                if writer is not None:
                    writer.write(block)
        finally:
            if writer is not None:
                scan.salvaged = writer.close()
    if damage.message is None:
        counter.finish()
        scan.blank.sort()
        return scan
    # Damaged: keep the complete lines in a plain temporary copy for the engines.
    scan.damage = damage.message
    scan.cut_line = counter.prev not in (b"\n", b"")
    if scan.cut_line:
        scan.lines += 1
    if scan.salvaged is None:
        scan.salvaged = _salvage(path, salvage_dir, name, limit)
    scan.blank.sort()
    return scan


class _CopyWriter:
    """A plain temporary copy of the complete lines written to it."""

    def __init__(self, folder: Path | None) -> None:
        fd, name = tempfile.mkstemp(prefix="taintline-plain-", suffix=".log", dir=folder)
        self.path = Path(name)
        self.out = os.fdopen(fd, "wb")
        self.pending = b""

    def write(self, block: bytes) -> None:
        data = self.pending + block
        cut = data.rfind(b"\n")
        if cut == -1:
            self.pending = data
            return
        self.out.write(data[: cut + 1])
        self.pending = data[cut + 1 :]

    def close(self) -> Path:
        self.out.close()
        return self.path


def _salvage(path: Path, salvage_dir: Path | None, name: str, limit: Expansion) -> Path:
    writer = _CopyWriter(salvage_dir)
    try:
        with path.open("rb") as handle:
            for block in decompressed_blocks(handle, name, Damage(), limit):
                writer.write(block)
    finally:
        writer.close()
    return writer.path
