"""Inputs that may be compressed: gzip, bzip2 or zstd, recognised by their magic bytes (not by
their name), read through one helper so every reader takes ``sbom.json.gz`` as it takes
``sbom.json``.

Decompression is streamed and bounded: at most ``limit`` bytes come out, so a compression bomb
is a clear error for that file, not an exhausted machine. Python's ``gzip`` and ``bz2`` and the
``zstandard`` library do the decoding; only the dispatch and the bound are ours.
"""

from __future__ import annotations

import bz2
import gzip
import zlib
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

#: Magic bytes of each supported compression.
MAGIC: dict[str, bytes] = {
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
    "zstd": b"\x28\xb5\x2f\xfd",
}


class CompressedInputError(ValueError):
    """A compressed input that cannot be read; the message says why in words."""


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
