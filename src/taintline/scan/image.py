"""Image analyser: where an ICO, PNG, JPEG, GIF or BMP really ends, and what lies after it.

The 3CX downloader fetched ICO files from GitHub whose real image ended early: after it, a
``$`` marker and base64 text (encrypted C2 addresses). Viewers ignore such trailing bytes, and
so does Pillow, which decodes pixels and never reports where a file's format ends; so the
structure walks below are hand-written: PNG chunks up to IEND, JPEG marker segments and
entropy-coded data up to EOI, GIF blocks up to the 0x3B trailer, the BMP header's file size,
and the ICO directory's extents (with the IEND of PNG images inside an icon).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from taintline.model import Finding, Severity
from taintline.scan import magic
from taintline.scan.interface import AnalysisContext, AnalysisResult, AppliesTo, FileItem
from taintline.scan.measure import base64_info, entropy, preview

NAME = "image"

PNG_SIGNATURE = magic.PNG_SIGNATURE
MAX_ICO_ENTRIES = magic.MAX_ICO_ENTRIES
MAX_BLOCKS = 1_000_000
#: printable bytes that, placed right before base64, act as a separator ("$" in 3CX's icons)
MARKER_BYTES = frozenset(b"$#%&*@!|~^:;")


class Malformed(ValueError):
    """The structure walk met something impossible (also raised for truncation)."""


@dataclass(frozen=True, slots=True)
class IconEntry:
    index: int
    width: int
    height: int
    offset: int
    size: int
    format: str  # png | dib | unknown
    inner_end: int | None  # for PNG entries: where the embedded PNG's IEND ends (file offset)


@dataclass(frozen=True, slots=True)
class Trailing:
    """Bytes after a format's real end (or after an embedded image inside its ICO slot)."""

    offset: int
    size: int
    entropy: float
    all_zero: bool
    marker: str | None
    base64: dict[str, object]
    preview: dict[str, str]
    embedded_format: str | None  # e.g. a second JPEG (MPF) or a PNG after the end
    where: str  # "after-end" | "inside-icon-entry-N"


@dataclass(frozen=True, slots=True)
class ImageFacts:
    format: str
    size: int
    real_end: int | None
    width: int | None = None
    height: int | None = None
    icon_entries: tuple[IconEntry, ...] = ()
    trailing: tuple[Trailing, ...] = ()
    error: str | None = None

    @property
    def trailing_size(self) -> int:
        return sum(t.size for t in self.trailing)


#: The image types of the magic table, as this analyser names them.
FORMATS = {
    magic.FileType.PNG: "png",
    magic.FileType.JPEG: "jpeg",
    magic.FileType.GIF: "gif",
    magic.FileType.BMP: "bmp",
    magic.FileType.ICO: "ico",
    magic.FileType.CUR: "ico",
}
#: applies() needs one of the image types (see :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(kinds=frozenset(FORMATS))


def sniff(data: bytes) -> str | None:
    """The image format of ``data`` by the scanner's magic table, or ``None``."""
    found = magic.sniff(data)
    return FORMATS.get(found) if found is not None else None


def applies(item: FileItem) -> bool:
    found = item.kind()
    return found is not None and found in FORMATS


# --- structure walks: each returns the offset just past the format's end ---------------


def png_end(data: bytes, start: int = 0, limit: int | None = None) -> tuple[int, int, int]:
    """End of the PNG at ``start`` (just past the IEND chunk's CRC), width, height."""
    limit = len(data) if limit is None else min(limit, len(data))
    if data[start : start + 8] != PNG_SIGNATURE:
        raise Malformed("no PNG signature")
    pos = start + 8
    width = height = 0
    for _ in range(MAX_BLOCKS):
        if pos + 8 > limit:
            raise Malformed(f"PNG truncated at offset {pos} (no IEND)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if length > 0x7FFFFFFF:
            raise Malformed(f"PNG chunk length {length} out of range at offset {pos}")
        end = pos + 12 + length
        if end > limit:
            raise Malformed(f"PNG chunk {ctype!r} at offset {pos} runs past the end")
        if ctype == b"IHDR" and length >= 8:
            width, height = struct.unpack_from(">II", data, pos + 8)
        if ctype == b"IEND":
            return end, width, height
        pos = end
    raise Malformed("too many PNG chunks")


def jpeg_end(data: bytes) -> tuple[int, int, int]:
    """End of a JPEG (just past EOI), walking marker segments and entropy-coded data, so EOI
    bytes inside an EXIF thumbnail or in segment payloads are not mistaken for the end."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        raise Malformed("no JPEG SOI")
    pos = 2
    width = height = 0
    for _ in range(MAX_BLOCKS):
        if pos >= n or data[pos] != 0xFF:
            raise Malformed(f"JPEG: expected a marker at offset {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise Malformed("JPEG truncated inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos, width, height
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            continue
        if pos + 2 > n:
            raise Malformed("JPEG truncated inside a segment length")
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > n:
            raise Malformed(f"JPEG segment 0x{marker:02X} at offset {pos - 2} runs past the end")
        if (
            marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
            and length >= 7
        ):
            height, width = struct.unpack_from(">HH", data, pos + 3)
        pos += length
        if marker == 0xDA:
            # entropy-coded data: runs until an 0xFF that is not stuffing (00) nor RSTn
            while True:
                nxt = data.find(b"\xff", pos)
                if nxt < 0 or nxt + 1 >= n:
                    raise Malformed("JPEG truncated in scan data (no EOI)")
                follower = data[nxt + 1]
                if follower == 0x00 or 0xD0 <= follower <= 0xD7 or follower == 0xFF:
                    pos = nxt + 1 if follower == 0xFF else nxt + 2
                    continue
                pos = nxt
                break
    raise Malformed("too many JPEG segments")


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    n = len(data)
    for _ in range(MAX_BLOCKS):
        if pos >= n:
            raise Malformed("GIF truncated inside data sub-blocks")
        size = data[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size
    raise Malformed("too many GIF sub-blocks")


def gif_end(data: bytes) -> tuple[int, int, int]:
    """End of a GIF (just past the 0x3B trailer), walking extensions and image blocks."""
    n = len(data)
    if n < 13:
        raise Malformed("GIF header truncated")
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    pos = 13
    if packed & 0x80:
        pos += 3 * (1 << ((packed & 7) + 1))
    for _ in range(MAX_BLOCKS):
        if pos >= n:
            raise Malformed("GIF truncated (no trailer)")
        block = data[pos]
        if block == 0x3B:
            return pos + 1, width, height
        if block == 0x21:
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:
            if pos + 10 > n:
                raise Malformed("GIF image descriptor truncated")
            local = data[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (1 << ((local & 7) + 1))
            pos = _skip_sub_blocks(data, pos + 1)  # +1: LZW minimum code size
        else:
            raise Malformed(f"GIF: unknown block 0x{block:02X} at offset {pos}")
    raise Malformed("too many GIF blocks")


def bmp_end(data: bytes) -> tuple[int, int, int]:
    """End of a BMP from its header: bfSize, or pixel offset + image size when bfSize is 0."""
    n = len(data)
    file_size, _r1, _r2, pixel_offset, dib_size = struct.unpack_from("<IHHII", data, 2)
    width = height = 0
    image_size = 0
    if dib_size >= 40 and n >= 14 + 40:
        width, height, _planes, bpp, _compression, image_size = struct.unpack_from(
            "<iiHHII", data, 18
        )
        if image_size == 0 and bpp:
            image_size = ((abs(width) * bpp + 31) // 32) * 4 * abs(height)
    elif dib_size == 12 and n >= 26:
        width, height = struct.unpack_from("<HH", data, 18)
    end = file_size if file_size >= 26 else pixel_offset + image_size
    if end > n:
        raise Malformed(f"BMP declares {end} bytes but the file has {n}")
    if end < 26:
        raise Malformed("BMP header declares an impossible size")
    return end, abs(width), abs(height)


def _ico(data: bytes) -> tuple[int, tuple[IconEntry, ...], list[tuple[int, int, str]], int, int]:
    """Directory extents of an ICO/CUR. Returns (end, entries, inner gaps (start, end, where),
    width, height of the first entry)."""
    count = struct.unpack_from("<H", data, 4)[0]
    if 6 + 16 * count > len(data):
        raise Malformed("ICO directory truncated")
    entries: list[IconEntry] = []
    gaps: list[tuple[int, int, str]] = []
    end = 6 + 16 * count
    for i in range(count):
        w, h, _colors, _res, _planes, _bpp, size, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * i
        )
        if offset + size > len(data):
            raise Malformed(f"ICO entry {i} ({offset}+{size}) runs past the end of the file")
        fmt = "unknown"
        inner_end: int | None = None
        if data[offset : offset + 8] == PNG_SIGNATURE:
            fmt = "png"
            try:
                inner_end, _, _ = png_end(data, offset, offset + size)
            except Malformed:
                inner_end = None
            if inner_end is not None and inner_end < offset + size:
                gaps.append((inner_end, offset + size, f"inside-icon-entry-{i}"))
        elif data[offset : offset + 4] == b"\x28\0\0\0":
            fmt = "dib"
        entries.append(IconEntry(i, w or 256, h or 256, offset, size, fmt, inner_end))
        end = max(end, offset + size)
    first = entries[0] if entries else None
    return end, tuple(entries), gaps, first.width if first else 0, first.height if first else 0


def _embedded(blob: bytes) -> str | None:
    if blob.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if blob.startswith(PNG_SIGNATURE):
        return "png"
    if blob.startswith((b"MZ", b"PK\x03\x04", b"\x7fELF")):
        return {b"MZ": "pe", b"PK": "zip", b"\x7fE": "elf"}[blob[:2]]
    return None


def describe_trailing(data: bytes, start: int, end: int, where: str) -> Trailing:
    blob = data[start:end]
    marker: str | None = None
    body = blob
    stripped = blob.lstrip(b"\0\r\n ")
    if stripped and stripped[0] in MARKER_BYTES:
        marker = chr(stripped[0])
        body = stripped[1:]
    return Trailing(
        offset=start,
        size=len(blob),
        entropy=entropy(blob),
        all_zero=not blob.strip(b"\0"),
        marker=marker,
        base64=base64_info(body.strip()),
        preview=preview(blob),
        embedded_format=_embedded(stripped),
        where=where,
    )


def facts_of(data: bytes) -> ImageFacts | None:
    fmt = sniff(data)
    if fmt is None:
        return None
    gaps: list[tuple[int, int, str]] = []
    entries: tuple[IconEntry, ...] = ()
    try:
        if fmt == "png":
            end, width, height = png_end(data)
        elif fmt == "jpeg":
            end, width, height = jpeg_end(data)
        elif fmt == "gif":
            end, width, height = gif_end(data)
        elif fmt == "bmp":
            end, width, height = bmp_end(data)
        else:
            end, entries, gaps, width, height = _ico(data)
    except (Malformed, struct.error) as exc:
        return ImageFacts(format=fmt, size=len(data), real_end=None, error=str(exc))
    if end < len(data):
        gaps.append((end, len(data), "after-end"))
    trailing = tuple(describe_trailing(data, s, e, where) for s, e, where in gaps)
    return ImageFacts(
        format=fmt,
        size=len(data),
        real_end=end,
        width=width,
        height=height,
        icon_entries=entries,
        trailing=trailing,
    )


def findings_of(path: str, facts: ImageFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    if facts.error is not None:
        out.append(
            Finding(
                kind="error.malformed",
                severity=Severity.LOW,
                subject=path,
                message=f"{facts.format.upper()} structure is broken: {facts.error}",
                evidence={"format": facts.format, "reason": facts.error},
            )
        )
        return tuple(out)
    for t in facts.trailing:
        if t.all_zero:
            continue  # zero padding after the end is common and harmless
        looks_b64 = bool(t.base64.get("looks_base64"))
        if t.embedded_format in ("jpeg", "png") and not looks_b64:
            severity = Severity.LOW  # e.g. an MPF second image or a preview after the end
        elif looks_b64 or t.marker is not None or t.embedded_format in ("pe", "zip", "elf"):
            severity = Severity.HIGH
        else:
            severity = Severity.MEDIUM
        hints = []
        if t.marker:
            hints.append(f"after a {t.marker!r} marker")
        if looks_b64:
            hints.append("looks like base64")
        if t.embedded_format:
            hints.append(f"starts like {t.embedded_format.upper()}")
        where = (
            "after the end of the"
            if t.where == "after-end"
            else f"({t.where.replace('-', ' ')}) after the embedded PNG of the"
        )
        out.append(
            Finding(
                kind="image.trailing-data",
                severity=severity,
                subject=path,
                message=f"{t.size} bytes {where} {facts.format.upper()} image"
                + (f" ({', '.join(hints)})" if hints else ""),
                evidence={
                    "format": facts.format,
                    "real_end": facts.real_end,
                    "offset": t.offset,
                    "size": t.size,
                    "entropy": t.entropy,
                    "marker": t.marker,
                    "base64": t.base64,
                    "embedded_format": t.embedded_format,
                    "where": t.where,
                    "preview": t.preview,
                    "reason": f"the {facts.format.upper()} structure ends at offset"
                    f" {facts.real_end}; {t.size} non-padding bytes follow at {t.offset}",
                },
            )
        )
    return tuple(out)


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    try:
        facts = facts_of(item.data)
    except Exception as exc:  # defensive: a walk bug on hostile input must not end the scan
        return AnalysisResult(
            NAME,
            None,
            (
                Finding(
                    kind="error.analyser",
                    severity=Severity.LOW,
                    subject=item.path,
                    message=f"image analysis failed: {type(exc).__name__}: {exc}",
                    evidence={"analyser": NAME},
                ),
            ),
        )
    if facts is None:
        return AnalysisResult(NAME, None)
    return AnalysisResult(NAME, facts, findings_of(item.path, facts))
