"""Builders for intel test inputs: every fixture file is generated here, nothing is shipped."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest


def build_pe(cert_blob: bytes | None, body: bytes = b"") -> bytes:
    """A minimal, harmless PE32+ image with one section; ``cert_blob`` becomes its
    certificate table (data directory 4) at the end of the file."""
    file_align = 0x200
    section = (body + b"\xc3").ljust(file_align, b"\x00")
    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,
        14,
        0,
        len(section),
        0,
        0,
        0x1000,
        0x1000,
        0x140000000,
        0x1000,
        file_align,
        6,
        0,
        0,
        0,
        6,
        0,
        0,
        0x2000,
        0x200,
        0,
        3,
        0x8160,
        0x100000,
        0x1000,
        0x100000,
        0x1000,
        0,
        16,
    )
    cert_offset = 0x200 + len(section)
    cert = b""
    if cert_blob is not None:
        cert = struct.pack("<IHH", 8 + len(cert_blob), 0x0200, 0x0002) + cert_blob
        cert = cert.ljust((len(cert) + 7) // 8 * 8, b"\x00")
    directories = [(0, 0)] * 16
    if cert:
        directories[4] = (cert_offset, len(cert))
    optional += b"".join(struct.pack("<II", a, s) for a, s in directories)
    coff = struct.pack("<HHIIIHH", 0x8664, 1, 0x64000000, 0, 0, len(optional), 0x0022)
    section_header = struct.pack(
        "<8sIIIIIIHHI", b".text", 0x1000, 0x1000, len(section), 0x200, 0, 0, 0, 0, 0x60000020
    )
    dos = b"MZ" + b"\x00" * 58 + struct.pack("<I", 0x40)
    headers = (dos + b"PE\x00\x00" + coff + optional + section_header).ljust(0x200, b"\x00")
    return headers + section + cert


def build_ico_png(trailer: bytes) -> bytes:
    """An ICO holding one tiny PNG whose IEND chunk is followed by ``trailer``."""
    png = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
        + b"\x00" * 4
        + struct.pack(">I", 0)
        + b"IEND"
        + b"\xaeB`\x82"
        + trailer
    )
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 1, 1, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return _write
