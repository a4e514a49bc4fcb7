"""The one streaming decompressor every reader uses: gzip members, bzip2 streams and zstd
frames in bounded blocks, damage and bombs as clear errors after the good blocks."""

from __future__ import annotations

import io

import pytest
from tests.builders.sboms import compress

from taintline.compressed import CompressedInputError, Expansion, ExpansionError, stream_blocks

DATA = b"".join(b"%d\t10.0.0.%d\tq%d.evil.example\n" % (i, i % 250, i) for i in range(60_000))
BLOCK = 1 << 16


def expand(raw: bytes, name: str, limit: Expansion | None = None) -> tuple[bytes, str | None]:
    out = bytearray()
    try:
        for block in stream_blocks(io.BytesIO(raw), name, limit or Expansion(), BLOCK):
            assert 0 < len(block) <= BLOCK
            out += block
    except CompressedInputError as exc:
        return bytes(out), str(exc)
    return bytes(out), None


@pytest.mark.parametrize("name", ["gzip", "bzip2", "zstd"])
def test_members_damage_and_bombs(name: str) -> None:
    packed = compress(DATA, name)
    assert expand(packed, name) == (DATA, None)
    assert expand(packed + packed, name) == (DATA + DATA, None)  # rotated logs: cat a b
    assert expand(packed + b"\0" * 9, name) == (DATA, None)  # zero padding
    got, why = expand(packed + b"junk", name)
    assert got == DATA and why == f"trailing bytes after the {name} data"
    got, why = expand(packed[:-40], name)
    assert (
        DATA.startswith(got) and why == f"truncated {name} file (the compressed stream ends early)"
    )
    got, why = expand(packed[:20] + bytes(200) + packed[220:], name)
    assert why is not None and ("corrupt" in why or "truncated" in why)
    # a bomb: stopped at the size limit, or by its ratio once past the grace
    bomb = compress(b"\n" * 20_000_000, name)
    got, why = expand(bomb, name, Expansion(max_bytes=300_000))
    assert len(got) <= 300_000 + BLOCK
    assert (
        why == f"{name} data expands to more than the limit of 300,000 bytes (a compression bomb?)"
    )
    got, why = expand(bomb, name, Expansion(max_ratio=100, grace_bytes=1 << 20))
    # (the compressed bytes read so far count: a whole 8 KiB-64 KiB read, not what was decoded)
    assert len(got) <= max(1 << 20, 100 * len(bomb)) + 2 * BLOCK
    assert why is not None and "expands more than 100 times" in why
    with pytest.raises(ExpansionError):
        list(stream_blocks(io.BytesIO(bomb), name, Expansion(max_bytes=1000), BLOCK))
