"""Inputs that may be compressed: gzip, bzip2 or zstd, recognised by their magic bytes (not by
their name), read through one helper so every reader takes ``sbom.json.gz`` as it takes
``sbom.json``.

Decompression is streamed and bounded: at most ``limit`` bytes come out, so a compression bomb
is a clear error for that file, not an exhausted machine. Python's ``zlib`` and ``bz2`` and the
``zstandard`` library do the decoding; only the dispatch and the bounds are ours.

Two ways in: :func:`read_input` (a whole document, for readers that parse one, such as SBOMs)
and :func:`stream_blocks` (bounded blocks of any size input: intel files are expanded through
it into a temporary file, log files are counted and matched through it). Every block is at
most ``block`` bytes whatever the compression ratio: each decoder is asked for a bounded
output (``max_length`` for zlib and bz2; zstd input is fed in 1 KiB pieces, which cannot
expand past 32 MiB).
"""

from __future__ import annotations

import bz2
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from taintline.limits import GiB, MiB

#: Magic bytes of each supported compression.
MAGIC: dict[str, bytes] = {
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
    "zstd": b"\x28\xb5\x2f\xfd",
}


#: The usual file name endings of each compression (dropped to name the expanded content).
SUFFIXES: dict[str, str] = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".zst": "zstd"}
SUFFIXES[".zstd"] = "zstd"


class CompressedInputError(ValueError):
    """A compressed input that cannot be read; the message says why in words."""


class ExpansionError(CompressedInputError):
    """Compressed data that expands past its limit (a compression bomb?)."""


@dataclass(frozen=True, slots=True)
class Expansion:
    """How far a compressed input may expand: at most ``max_bytes`` in all, and, once
    ``grace_bytes`` came out, at most ``max_ratio`` times the compressed bytes read so far
    (real logs and indicator lists stay far below 1000:1; a bomb is far above it)."""

    max_bytes: int = 64 * GiB
    max_ratio: float = 1000.0
    grace_bytes: int = 64 * MiB

    def check(self, name: str, produced: int, consumed: int) -> None:
        if produced > self.max_bytes:
            raise ExpansionError(
                f"{name} data expands to more than the limit of {self.max_bytes:,} bytes"
                " (a compression bomb?)"
            )
        if produced > self.grace_bytes and produced > self.max_ratio * max(consumed, 1):
            raise ExpansionError(
                f"{name} data expands more than {self.max_ratio:g} times"
                f" ({consumed:,} bytes gave over {produced:,}; a compression bomb?)"
            )


def compression_of_file(path: Path) -> str | None:
    """The compression of the file at ``path`` by its magic bytes (``None``: plain, or
    unreadable: the reader that opens it reports that)."""
    try:
        with path.open("rb") as handle:
            return compression_of(handle.read(4))
    except OSError:
        return None


def plain_name(name: str) -> str:
    """``dns.log.gz`` -> ``dns.log``; a name without a compression ending is kept."""
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``bzip2`` or ``zstd`` if ``head`` starts like one, else ``None``."""
    for name, magic in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def _reader(name: str, raw: IO[bytes]) -> BinaryIO:
    if name == "gzip":  # reads every member of the file
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if name == "bzip2":  # reads every stream of the file
        return cast(BinaryIO, bz2.BZ2File(raw, mode="rb"))
    return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))


def read_input(path: Path, limit: int) -> tuple[bytes, str | None]:
    """The content of ``path``, decompressed if it is compressed, and the compression's name.

    Raises :class:`CompressedInputError` for a corrupt or cut-off stream and for content
    (compressed or not) over ``limit`` bytes; ``OSError`` if the file cannot be read.
    """
    with path.open("rb") as raw:
        name = compression_of(raw.read(4))
        raw.seek(0)
        if name is None:
            data = raw.read(limit + 1)
            if len(data) > limit:
                raise CompressedInputError(f"file larger than the limit of {limit:,} bytes")
            return data, None
        try:
            with _reader(name, raw) as stream:
                data = stream.read(limit + 1)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            reason = "cut short" if isinstance(exc, EOFError) else "corrupt"
            raise CompressedInputError(f"{name} data is {reason}, nothing read") from None
    if len(data) > limit:
        raise CompressedInputError(
            f"{name} data expands to more than the limit of {limit:,} bytes (a compression"
            " bomb?), nothing read"
        )
    return data, name


def open_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of the content of ``path``, decompressed if need be (for
    format detection). Unreadable or corrupt input gives ``b""``."""
    try:
        with path.open("rb") as raw:
            name = compression_of(raw.read(4))
            raw.seek(0)
            if name is None:
                return raw.read(size)
            with _reader(name, raw) as stream:
                return stream.read(size)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        return b""


_ZSTD_PIECE = 1024  # zstd's largest expansion is ~32,768:1 (RLE blocks): 32 MiB per piece


class _Counting:
    """Reads ``raw`` and counts the compressed bytes taken (for the ratio bound)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.taken = 0

    def read(self, size: int) -> bytes:
        data = self.raw.read(size)
        self.taken += len(data)
        return data


def stream_blocks(
    raw: IO[bytes], name: str, limit: Expansion, block: int = 8 * MiB
) -> Iterator[bytes]:
    """The decompressed content of ``raw`` (``gzip``, ``bzip2`` or ``zstd``, every member or
    frame of it) in blocks of at most ``block`` bytes.

    Raises :class:`CompressedInputError` at the first damage (corrupt data, a stream cut
    short, bytes after the last member other than zero padding) and :class:`ExpansionError`
    past ``limit``; the blocks yielded before stay valid, so a caller may keep them.
    Written by hand around the decoders because none of the three libraries bounds both the
    output of one call and the total, and reports a cut-off last frame, through one API.
    """
    source = _Counting(raw)
    produced = 0
    decoder = _ZstdDecoder() if name == "zstd" else _Decoder(name)
    piece = _ZSTD_PIECE if name == "zstd" else block
    started = False
    while data := source.read(piece):
        while data:
            started = True
            for out in decoder.feed(data, block):
                room = limit.max_bytes - produced
                if 0 < room < len(out):
                    yield out[:room]  # what fits under the limit is still given
                produced += len(out)
                limit.check(name, produced, source.taken)
                yield out
            rest = decoder.next_member()
            data = rest or b""
            if data:
                magic = MAGIC[name]
                if not data.startswith(magic[: len(data)]):
                    if data.strip(b"\0") or source.read(block).strip(b"\0"):
                        raise CompressedInputError(f"trailing bytes after the {name} data")
                    return
    if not started:
        raise CompressedInputError(f"empty {name} file")
    if decoder.open:
        raise CompressedInputError(f"truncated {name} file (the compressed stream ends early)")


class _Decoder:
    """zlib (gzip members) or bz2 (streams), each asked for at most ``block`` bytes a call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.open = False
        self._new()

    def _new(self) -> None:
        self.obj: zlib._Decompress | bz2.BZ2Decompressor = (
            zlib.decompressobj(wbits=31) if self.name == "gzip" else bz2.BZ2Decompressor()
        )

    def feed(self, data: bytes, block: int) -> Iterator[bytes]:
        self.open = True
        try:
            if isinstance(self.obj, bz2.BZ2Decompressor):
                obj = self.obj
                out = obj.decompress(data, block)
                while True:
                    if out:
                        yield out
                    if obj.eof or obj.needs_input:
                        return
                    out = obj.decompress(b"", block)
            zobj = self.obj
            out = zobj.decompress(data, block)
            while out:
                yield out
                tail = zobj.unconsumed_tail
                # after the end of a member, a call would append its input to unused_data
                out = zobj.decompress(tail, block) if tail and not zobj.eof else b""
        except (OSError, EOFError, zlib.error) as exc:
            raise CompressedInputError(f"corrupt {self.name} data ({exc})") from None

    def next_member(self) -> bytes | None:
        """After a finished member: the bytes after it (a new decoder is ready); else None."""
        obj = self.obj
        if not obj.eof:
            return None
        rest = obj.unused_data  # at the end of a member zlib moves its unread input here
        self.open = False
        self._new()
        return rest


class _ZstdDecoder:
    """zstd frames, fed in small pieces (the library's decompressobj has no output bound)."""

    name = "zstd"

    def __init__(self) -> None:
        self.obj = zstandard.ZstdDecompressor().decompressobj()
        self.open = False

    def feed(self, data: bytes, block: int) -> Iterator[bytes]:
        self.open = True
        try:
            out = self.obj.decompress(data)
        except zstandard.ZstdError as exc:
            raise CompressedInputError(f"corrupt zstd data ({exc})") from None
        for start in range(0, len(out), block):
            yield out[start : start + block]

    def next_member(self) -> bytes | None:
        if not self.obj.eof:
            return None
        rest = self.obj.unused_data
        self.obj = zstandard.ZstdDecompressor().decompressobj()
        self.open = False
        return rest


def expand_to(path: Path, out: IO[bytes], limit: Expansion) -> str | None:
    """Write the decompressed content of ``path`` to ``out`` (streamed, bounded by
    ``limit``); returns the compression's name, or ``None`` (nothing written) if ``path`` is
    not compressed. Raises :class:`CompressedInputError` or ``OSError``."""
    with path.open("rb") as raw:
        name = compression_of(raw.read(4))
        if name is None:
            return None
        raw.seek(0)
        for chunk in stream_blocks(raw, name, limit, block=1 * MiB):
            out.write(chunk)
    return name
