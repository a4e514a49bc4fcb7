"""One magic-byte table for the whole scanner: what a file is, judged by its content.

The walker (which containers to open), YARA's ``filetype`` external and every analyser's
``applies`` ask :func:`sniff`, so they cannot disagree about the same bytes. Names are never
trusted, with one exception that changes no decision: an OLE compound file named ``.msi``,
``.msp`` or ``.msm`` is reported as ``MSI`` (both are opened the same way).

Written by hand rather than with libmagic: ``python-magic`` needs the C library and its
database, answers in prose ("PE32+ executable (DLL)...") that would need parsing again, and the
scanner only needs these few, well-known signatures.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import StrEnum


class FileType(StrEnum):
    """The value of YARA's ``filetype`` external (LOKI/THOR style), upper case."""

    EXE = "EXE"  # MZ: DOS or PE
    ELF = "ELF"
    MACHO = "MACHO"  # thin or fat/universal
    CLASS = "CLASS"  # Java class file (shares 0xCAFEBABE with fat Mach-O)
    ZIP = "ZIP"
    MSI = "MSI"  # an OLE compound file named .msi/.msp/.msm
    OLE = "OLE"
    CAB = "CAB"
    ASAR = "ASAR"
    GZIP = "GZIP"
    BZIP2 = "BZIP2"
    XZ = "XZ"
    TAR = "TAR"
    PNG = "PNG"
    JPEG = "JPEG"
    GIF = "GIF"
    ICO = "ICO"
    CUR = "CUR"
    BMP = "BMP"
    PDF = "PDF"


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")
FAT_MAGIC = b"\xca\xfe\xba\xbe"
FAT_MAGIC_64 = b"\xca\xfe\xba\xbf"
#: Most ICO/CUR directory entries believed (a real icon has a handful).
MAX_ICO_ENTRIES = 4096
#: A fat header's architecture count is below this; a Java class file's major version (at the
#: same offset, after a 16-bit minor version) is 45 or more. LLVM's ``identify_magic`` and
#: file(1) tell the two apart the same way.
_FAT_MAX_ARCHS = 43
_SNIFF_BYTES = 512


def _fat_archs(data: bytes) -> int | None:
    if len(data) < 8 or data[:4] not in (FAT_MAGIC, FAT_MAGIC_64):
        return None
    count: int = struct.unpack_from(">I", data, 4)[0]
    return count


def is_fat_macho(data: bytes) -> bool:
    count = _fat_archs(data)
    return count is not None and 0 < count < _FAT_MAX_ARCHS


def is_java_class(data: bytes) -> bool:
    # 0xCAFEBABE, u16 minor, u16 major >= 45 (JDK 1.1); there is no 64-bit class magic
    return data[:4] == FAT_MAGIC and len(data) >= 8 and (data[6] << 8 | data[7]) >= 45


def is_asar(data: bytes) -> bool:
    # Chromium Pickle: u32 4, u32 header pickle size, u32 payload size, u32 string length, JSON
    return len(data) >= 25 and data[:4] == b"\x04\x00\x00\x00" and data[16:25] == b'{"files":'


def is_tar(data: bytes) -> bool:
    """POSIX/GNU tar: ``ustar`` at offset 257 and a header checksum that adds up.

    Checked before the magics at offset 0, which a tar's first member name could imitate; the
    checksum keeps an executable with ``ustar`` at 257 an executable. A header cut short is a
    tar (opening it reports the truncation).
    """
    if data[257:262] != b"ustar":
        return False
    if len(data) < 512:
        return True
    field = data[148:156].split(b"\0", 1)[0].strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    unsigned = sum(data[:148]) + 8 * 0x20 + sum(data[156:512])
    signed = unsigned - 256 * sum(1 for b in (*data[:148], *data[156:512]) if b > 127)
    return stored in (unsigned, signed)


def is_pe(data: bytes) -> bool:
    """An MZ file whose ``e_lfanew`` points at a ``PE\\0\\0`` header (a DOS program has none)."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return False
    e_lfanew = int.from_bytes(data[0x3C:0x40], "little")
    return e_lfanew + 4 <= len(data) and data[e_lfanew : e_lfanew + 4] == b"PE\0\0"


def _icon_kind(data: bytes) -> FileType | None:
    """ICO/CUR by their directory (reserved 0, type 1 or 2, a sane count and first offset)."""
    if len(data) < 22 or data[:4] not in (b"\0\0\1\0", b"\0\0\2\0"):
        return None
    count = struct.unpack_from("<H", data, 4)[0]
    if not 0 < count <= MAX_ICO_ENTRIES:
        return None
    offset = struct.unpack_from("<I", data, 18)[0]
    if offset < 6 + 16 * count and offset != 0:
        return None
    return FileType.ICO if data[2] == 1 else FileType.CUR


def _prefix(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda data: data.startswith(magics)


#: The table, in order: the first row whose test passes names the type. ``tar`` comes first
#: because its magic is at offset 257 and a tar's first member name could start like anything.
#: The third column lists the first bytes a row's test can pass on (``None``: any), so
#: :func:`sniff` only tries the rows that can match; ``tests/scan/test_scan_magic.py`` checks
#: that no test passes on any other first byte.
TABLE: tuple[tuple[FileType, Callable[[bytes], bool], bytes | None], ...] = (
    (FileType.TAR, is_tar, None),
    (FileType.EXE, _prefix(b"MZ"), b"M"),
    (FileType.ELF, _prefix(b"\x7fELF"), b"\x7f"),
    (
        FileType.MACHO,
        lambda d: d.startswith(MACHO_MAGICS) or is_fat_macho(d),
        b"\xfe\xce\xcf\xca",
    ),
    (FileType.CLASS, is_java_class, b"\xca"),
    (FileType.ZIP, _prefix(b"PK\x03\x04", b"PK\x05\x06"), b"P"),
    (FileType.OLE, _prefix(OLE_MAGIC), b"\xd0"),
    (FileType.CAB, _prefix(b"MSCF"), b"M"),
    (FileType.ASAR, is_asar, b"\x04"),
    (FileType.GZIP, _prefix(b"\x1f\x8b"), b"\x1f"),
    (FileType.BZIP2, _prefix(b"BZh"), b"B"),
    (FileType.XZ, _prefix(b"\xfd7zXZ\x00"), b"\xfd"),
    (FileType.PNG, _prefix(PNG_SIGNATURE), b"\x89"),
    (FileType.JPEG, _prefix(b"\xff\xd8\xff"), b"\xff"),
    (FileType.GIF, _prefix(b"GIF87a", b"GIF89a"), b"G"),
    (FileType.ICO, lambda d: _icon_kind(d) is not None, b"\x00"),
    (FileType.BMP, lambda d: d[:2] == b"BM" and len(d) >= 26, b"B"),
    (FileType.PDF, _prefix(b"%PDF-"), b"%"),
)

#: First byte -> the rows (in table order) whose test can pass on it; rows marked ``None``
#: are in every list.
_BY_FIRST_BYTE: tuple[tuple[tuple[FileType, Callable[[bytes], bool]], ...], ...] = tuple(
    tuple((t, test) for t, test, first in TABLE if first is None or byte in first)
    for byte in range(256)
)
_ANY_LENGTH_ROWS = tuple((t, test) for t, test, first in TABLE if first is None)


def sniff(data: bytes, name: str = "") -> FileType | None:
    """The type of ``data`` (only its first 512 bytes are looked at), or ``None``."""
    head = bytes(data[:_SNIFF_BYTES])
    rows = _BY_FIRST_BYTE[head[0]] if head else _ANY_LENGTH_ROWS
    for filetype, test in rows:
        if test(head):
            if filetype is FileType.OLE and name.lower().endswith((".msi", ".msp", ".msm")):
                return FileType.MSI
            if filetype is FileType.ICO:
                return _icon_kind(head)
            return filetype
    return None


def filetype(data: bytes, name: str = "") -> str:
    """YARA's ``filetype`` external: :func:`sniff` as text, empty when unknown."""
    found = sniff(data, name)
    return "" if found is None else str(found)
