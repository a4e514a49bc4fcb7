"""Small, valid images made by hand (zlib for PNG), and the same images with bytes after their
real end, including the 3CX icon layout: an ICO whose last byte of image is followed by a ``$``
marker and base64 text."""

from __future__ import annotations

import base64
import struct
import zlib


def png(width: int = 2, height: int = 2, rgba: bytes = b"\x20\x40\x80\xff") -> bytes:
    """A ``width`` x ``height`` RGBA PNG of one colour."""

    def chunk(ctype: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + ctype
            + data
            + struct.pack(">I", zlib.crc32(ctype + data))
        )

    raw = b"".join(b"\0" + rgba * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\0made by taintline tests")
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """An 8x8 grey baseline JPEG: one quantisation table, one-code Huffman tables, one block
    whose DC difference and AC coefficients are all zero (bits ``00`` padded with ones).
    An APP1 segment carries an EXIF-like payload with a stray ``FF D9`` to prove that the walk
    follows segment lengths instead of searching for EOI."""

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload

    app0 = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    app1 = segment(0xE1, b"Exif\0\0thumbnail\xff\xd8\xff\xd9end")
    dqt = segment(0xDB, b"\x00" + bytes([1] * 64))
    sof0 = segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
    dht_dc = segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    dht_ac = segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    sos = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    scan = b"\x3f"
    return b"\xff\xd8" + app0 + app1 + dqt + sof0 + dht_dc + dht_ac + sos + scan + b"\xff\xd9"


def gif() -> bytes:
    """A 1x1 GIF89a with a global colour table, a graphic control extension and one image."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\xff\xff\xff\x00\x00\x00"
    gce = b"\x21\xf9\x04\x01\x00\x00\x00\x00"
    comment = b"\x21\xfe\x05hello\x00"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + gce + comment + image + b"\x3b"


def bmp(width: int = 2, height: int = 2) -> bytes:
    """A 24-bit BMP with a BITMAPINFOHEADER."""
    row = (b"\x10\x20\x30" * width).ljust((width * 3 + 3) // 4 * 4, b"\0")
    pixels = row * height
    size = 14 + 40 + len(pixels)
    return (
        b"BM"
        + struct.pack("<IHHI", size, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
        + pixels
    )


def ico(images: list[bytes] | None = None) -> bytes:
    """An ICO whose entries hold the given images (a 16x16 PNG by default)."""
    images = images or [png(16, 16)]
    offset = 6 + 16 * len(images)
    directory = b""
    for image in images:
        directory += struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(image), offset)
        offset += len(image)
    return struct.pack("<HHH", 0, 1, len(images)) + directory + b"".join(images)


def c2_trailer(
    text: str = "https://c2.example.invalid/api/v1;https://cdn.example.invalid/x",
) -> bytes:
    """What the 3CX icons carried after the image: ``$`` then base64 (here of harmless text
    with a fake, reserved-TLD URL)."""
    return b"$" + base64.b64encode(text.encode() * 3)


def with_trailing(image: bytes, trailer: bytes | None = None) -> bytes:
    return image + (c2_trailer() if trailer is None else trailer)
