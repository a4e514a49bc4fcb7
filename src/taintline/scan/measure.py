"""Small measurements the analysers share: Shannon entropy, printable previews, and whether a
blob looks like base64. Pure functions over bytes; no format knowledge here."""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import TYPE_CHECKING

from taintline.lazy import LazyModule

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # the parent of a re-scan that reads nothing never needs it

_B64_ALPHABET = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\r\n"
)
_B64_BYTES = bytes(sorted(_B64_ALPHABET))
_B64_RUN = re.compile(rb"[A-Za-z0-9+/\-_]{16,}={0,2}")


#: Bytes counted per ``np.bincount`` call: bincount widens its input to 8-byte integers, so
#: one call over a whole 8 MB section allocates (and page-faults) 64 MB; chunks stay in cache.
_COUNT_CHUNK = 256 * 1024


def byte_counts(data: bytes | memoryview) -> np.ndarray:
    """How often each byte value occurs in ``data`` (256 counts)."""
    values = np.frombuffer(data, dtype=np.uint8)
    if len(values) <= _COUNT_CHUNK:
        return np.bincount(values, minlength=256)
    counts = np.zeros(256, dtype=np.intp)
    for start in range(0, len(values), _COUNT_CHUNK):
        counts += np.bincount(values[start : start + _COUNT_CHUNK], minlength=256)
    return counts


def entropy(data: bytes | memoryview) -> float:
    """Shannon entropy in bits per byte (0.0 for empty input), rounded to 3 decimals."""
    n = len(data)
    if n == 0:
        return 0.0
    counts = byte_counts(data)
    p = counts[counts > 0] / n
    value = float(-(p * np.log2(p)).sum())
    return round(abs(value), 3) if math.isfinite(value) else 0.0


def preview(data: bytes, limit: int = 48) -> dict[str, str]:
    """A capped hex and ASCII view (non-printable bytes as ``.``) for evidence."""
    head = data[:limit]
    return {
        "hex": head.hex(),
        "ascii": "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in head),
    }


def base64_info(data: bytes) -> dict[str, object]:
    """How much ``data`` looks like base64: the share of base64-alphabet bytes, the longest run,
    and whether that run decodes (standard or URL-safe alphabet)."""
    if not data:
        return {"alphabet_ratio": 0.0, "longest_run": 0, "decodes": False, "looks_base64": False}
    sample = data[: 1 << 20]
    in_alphabet = len(sample) - len(sample.translate(None, _B64_BYTES))
    ratio = round(in_alphabet / len(sample), 3)
    longest = b""
    for match in _B64_RUN.finditer(sample):
        if len(match.group()) > len(longest):
            longest = match.group()
    decodes = False
    if len(longest) >= 16:
        candidate = longest.rstrip(b"=")
        candidate = candidate[: len(candidate) - len(candidate) % 4]
        for decoder in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoder(candidate + b"=" * (-len(candidate) % 4))
            except (binascii.Error, ValueError):
                continue
            decodes = True
            break
    looks = decodes and ratio >= 0.9 and len(longest) >= 16
    return {
        "alphabet_ratio": ratio,
        "longest_run": len(longest),
        "decodes": decodes,
        "looks_base64": looks,
    }
