"""Byte-level helpers shared by the log readers: peeking at a file, and one counting pass.

DuckDB reads the data, but it silently skips blank lines and cannot report line numbers, and
a truncated gzip member ends its scan with an error. This pass (``bytes.count``/``find`` over
large blocks, so it runs at memory speed on plain files) gives every file an exact line
count, the numbers of its blank lines (to turn DuckDB's row numbers into line numbers), the
number of ``#`` lines, and for a damaged gzip file a plain copy of everything readable.
"""

from __future__ import annotations

import codecs
import gzip
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 8 << 20
#: More blank lines than this in one file are counted but their positions are not kept
#: (line numbers after them may then be off; a Problem says so).
MAX_BLANK_POSITIONS = 1_000_000


def is_gzip(path: Path) -> bool:
    """By the magic bytes; a path not on this machine (a cluster URI) by its suffix."""
    try:
        with path.open("rb") as handle:
            return handle.read(2) == GZIP_MAGIC
    except OSError:
        return path.suffix == ".gz"


def head_lines(path: Path, max_bytes: int = 256 * 1024, max_lines: int = 200) -> list[bytes]:
    """The first lines of a (possibly gzip-compressed) file, without line endings.

    A damaged gzip file gives what could be read before the damage.
    """
    data = b""
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as handle:
                data = handle.read(max_bytes)
        else:
            with path.open("rb") as handle:
                data = handle.read(max_bytes)
    except (OSError, EOFError, zlib.error):
        data = _salvage_gzip_head(path, max_bytes)
    lines = data.split(b"\n")
    if len(data) >= max_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last one is cut
    return [line.rstrip(b"\r") for line in lines[:max_lines]]


def _salvage_gzip_head(path: Path, max_bytes: int) -> bytes:
    out = bytearray()
    for chunk in _gzip_chunks(path, Damage()):
        out += chunk
        if len(out) >= max_bytes:
            break
    return bytes(out[:max_bytes])


@dataclass(slots=True)
class Damage:
    message: str | None = None


def _gzip_chunks(path: Path, damage: Damage) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from gzip_blocks(handle, damage)


def gzip_blocks(handle: BinaryIO, damage: Damage, block: int = _BLOCK) -> Iterator[bytes]:
    """Decompressed blocks (at most ``block`` bytes each, whatever the compression ratio) of
    every gzip member; stops (recording why in ``damage``) at the first damage."""
    decomp = zlib.decompressobj(wbits=31)
    in_member = False
    while raw := handle.read(block):
        while raw:
            in_member = True
            try:
                out = decomp.decompress(raw, block)
                while out:
                    yield out
                    tail = decomp.unconsumed_tail
                    out = decomp.decompress(tail, block) if tail else b""
            except zlib.error as exc:
                damage.message = f"corrupt gzip data ({exc})"
                return
            if decomp.eof:
                raw = decomp.unused_data
                decomp = zlib.decompressobj(wbits=31)
                in_member = False
                if raw and not raw.startswith(GZIP_MAGIC):
                    if raw.strip(b"\0"):
                        damage.message = "trailing bytes after the gzip data"
                    return
            else:
                raw = b""
    if in_member:
        tail = decomp.flush()
        if tail:
            yield tail
        damage.message = "truncated gzip file (the compressed stream ends early)"


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
    #: Set when the file is a damaged gzip file: why, and a plain copy of what was readable
    #: (complete lines only).
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


def scan_file(path: Path, salvage_dir: Path | None = None) -> LineScan:
    """Count the lines of ``path`` (gzip or plain); salvage what a damaged gzip file holds."""
    scan = LineScan()
    counter = _Counter(scan)
    if not is_gzip(path):
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                counter.feed(block)
        counter.finish()
        scan.blank.sort()
        return scan
    damage = Damage()
    for block in _gzip_chunks(path, damage):
        counter.feed(block)
    if damage.message is None:
        counter.finish()
        scan.blank.sort()
        return scan
    # Damaged: keep the complete lines in a plain temporary copy for the engines.
    scan.damage = damage.message
    scan.cut_line = counter.prev not in (b"\n", b"")
    if scan.cut_line:
        scan.lines += 1
    scan.salvaged = _salvage(path, salvage_dir)
    scan.blank.sort()
    return scan


def _salvage(path: Path, salvage_dir: Path | None) -> Path:
    fd, name = tempfile.mkstemp(prefix="taintline-salvage-", suffix=".log", dir=salvage_dir)
    pending = b""
    with os.fdopen(fd, "wb") as out:
        for block in _gzip_chunks(path, Damage()):
            data = pending + block
            cut = data.rfind(b"\n")
            if cut == -1:
                pending = data
                continue
            out.write(data[: cut + 1])
            pending = data[cut + 1 :]
    return Path(name)
