"""Release facts the verify stage needs from every scanned file, computed once in the worker.

* For a native binary (PE, ELF, Mach-O, fat Mach-O): the SHA-256 of its bytes after
  normalising what two honest builds of one source legitimately differ in: signatures (the PE
  certificate table, the Mach-O code signature), time stamps (PE header and debug directory),
  the PE checksum, build ids (PE CodeView GUID/age and the REPRO hash, the ELF GNU build-id note,
  the Mach-O ``LC_UUID``). Two builds whose normalised hashes agree are reproducible.
* For an ``Info.plist``: the bundle identifier and versions (a Mach-O library inside an app has
  no version resource of its own; its release's version is the bundle's).

No library does this normalisation (diffoscope compares, it does not normalise to a hash; LIEF
could rewrite a binary but would re-lay it out): the header offsets are the formats' documented
fixed fields, each read bounds-checked; anything that does not parse is hashed as it is.
"""

from __future__ import annotations

import hashlib
import plistlib
import struct
from dataclasses import dataclass
from typing import Any

from taintline.scan import magic
from taintline.scan.interface import AnalysisContext, AnalysisResult, AppliesTo, FileItem

NAME = "release"
#: applies() needs a native binary or an ``Info.plist`` (see
#: :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(
    kinds=frozenset({magic.FileType.EXE, magic.FileType.ELF, magic.FileType.MACHO}),
    names=frozenset({"Info.plist"}),
)

MAX_PLIST = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReleaseFacts:
    #: SHA-256 of the normalised bytes (native binaries), else ``None``.
    normalised_sha256: str | None = None
    #: What the normalisation changed (``pe.timestamp``, ``pe.signature``, ``elf.build-id``...).
    normalised: tuple[str, ...] = ()
    #: From an Info.plist: CFBundleIdentifier, CFBundleShortVersionString, CFBundleVersion.
    bundle: dict[str, str] | None = None


def _native(data: bytes) -> str | None:
    """Which native format, by the scanner's one magic table (as the PE/ELF/Mach-O analysers)."""
    return _native_of(magic.sniff(data), data)


def _native_of(found: magic.FileType | None, data: bytes) -> str | None:
    """:func:`_native` from the table's answer ``found`` for ``data``."""
    if found is magic.FileType.EXE:
        return "pe"  # any MZ: a DOS stub without a PE header is hashed as it is
    if found is magic.FileType.ELF:
        return "elf"
    if found is magic.FileType.MACHO:
        return "fat" if magic.is_fat_macho(data) else "macho"
    return None


def applies(item: FileItem) -> bool:
    return _native_of(item.kind(), item.data) is not None or item.name == "Info.plist"


def _u16(buf: bytearray | bytes, off: int) -> int:
    return int(struct.unpack_from("<H", buf, off)[0]) if 0 <= off <= len(buf) - 2 else 0


def _u32(buf: bytearray | bytes, off: int) -> int:
    return int(struct.unpack_from("<I", buf, off)[0]) if 0 <= off <= len(buf) - 4 else 0


def _zero(buf: bytearray, off: int, size: int) -> bool:
    if off < 0 or size <= 0 or off + size > len(buf):
        return False
    buf[off : off + size] = bytes(size)
    return True


def normalise_pe(data: bytes) -> tuple[bytes, list[str]]:
    buf = bytearray(data)
    done: list[str] = []
    e = _u32(buf, 0x3C)
    if buf[e : e + 4] != b"PE\0\0":
        return data, done
    nsections = _u16(buf, e + 6)
    if _zero(buf, e + 8, 4):
        done.append("pe.timestamp")
    opt = e + 24
    opt_size = _u16(buf, e + 20)
    magic = _u16(buf, opt)
    if magic not in (0x10B, 0x20B):
        return bytes(buf), done
    if _zero(buf, opt + 64, 4):
        done.append("pe.checksum")
    dirs = opt + (96 if magic == 0x10B else 112)
    sec_table = opt + opt_size
    sections = []
    for i in range(min(nsections, 96)):
        s = sec_table + 40 * i
        if s + 40 > len(buf):
            break
        sections.append(
            (_u32(buf, s + 12), max(_u32(buf, s + 8), _u32(buf, s + 16)), _u32(buf, s + 20))
        )

    def file_offset(rva: int) -> int | None:
        for va, size, raw in sections:
            if va <= rva < va + size:
                return raw + (rva - va)
        return None

    debug_rva, debug_size = _u32(buf, dirs + 6 * 8), _u32(buf, dirs + 6 * 8 + 4)
    start = file_offset(debug_rva) if debug_rva else None
    if start is not None:
        for k in range(min(debug_size // 28, 64)):
            entry = start + 28 * k
            if entry + 28 > len(buf):
                break
            _zero(buf, entry + 4, 4)
            kind, size, raw = _u32(buf, entry + 12), _u32(buf, entry + 16), _u32(buf, entry + 24)
            if kind == 2 and buf[raw : raw + 4] == b"RSDS":
                _zero(buf, raw + 4, 20)  # GUID + age: the PDB build id
            elif kind == 16:
                _zero(buf, raw, size)  # IMAGE_DEBUG_TYPE_REPRO: the build's hash
            # a pointer to the raw data moves when the signature's size changes nothing here
        done.append("pe.debug")
    sec_off, sec_size = _u32(buf, dirs + 4 * 8), _u32(buf, dirs + 4 * 8 + 4)
    if sec_off and sec_size and sec_off + sec_size <= len(buf):
        _zero(buf, dirs + 4 * 8, 8)
        del buf[sec_off : sec_off + sec_size]
        done.append("pe.signature")
    return bytes(buf), done


def normalise_elf(data: bytes) -> tuple[bytes, list[str]]:
    """Zero the descriptor of every GNU build-id note (namesz 4, type 3, name "GNU")."""
    ranges, done = _elf_build_ids(data)
    if not ranges:
        return data, done
    buf = bytearray(data)
    for start, size in ranges:
        _zero(buf, start, size)
    return bytes(buf), done


def _elf_build_ids(data: bytes) -> tuple[list[tuple[int, int]], list[str]]:
    """Where the descriptors of the GNU build-id notes are (offset, size, in order), found
    in ``data`` without copying it: a note header is read as it would be after the earlier
    descriptors were zeroed (a descriptor is never searched again)."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    for _ in range(16):
        hit = data.find(b"GNU\0", pos)
        if hit < 0:
            break
        pos = hit + 4
        note = hit - 12
        if note < 0:
            continue
        header = bytearray(data[note:hit])
        for start, size in ranges:  # descriptors zeroed before this note header
            for i in range(max(start, note), min(start + size, hit)):
                header[i - note] = 0
        if _u32(header, 0) != 4 or _u32(header, 8) != 3:
            continue
        size = _u32(header, 4)
        if 0 < size <= 64 and hit + 4 + size <= len(data):
            ranges.append((hit + 4, size))
            pos = hit + 4 + size
    return ranges, ["elf.build-id"] if ranges else []


def normalised_sha256(data: bytes) -> tuple[str, list[str]]:
    """The SHA-256 of :func:`normalise`'s bytes, and what was blanked; an ELF file is hashed
    in place (a 60 MB shared library was copied twice to blank 20 bytes)."""
    if _native(data) != "elf":
        normal, done = normalise(data)
        return hashlib.sha256(normal).hexdigest(), done
    ranges, done = _elf_build_ids(data)
    digest = hashlib.sha256()
    view = memoryview(data)
    pos = 0
    for start, size in ranges:
        digest.update(view[pos:start])
        digest.update(bytes(size))
        pos = start + size
    digest.update(view[pos:])
    return digest.hexdigest(), done


def _normalise_macho_slice(data: bytes) -> tuple[bytes, list[str]]:
    buf = bytearray(data)
    done: list[str] = []
    is64 = buf[:4] == b"\xcf\xfa\xed\xfe"
    ncmds = _u32(buf, 16)
    off = 32 if is64 else 28
    end_cut: int | None = None
    for _ in range(min(ncmds, 4096)):
        cmd, size = _u32(buf, off), _u32(buf, off + 4)
        if size < 8 or off + size > len(buf):
            break
        if cmd == 0x1B and _zero(buf, off + 8, 16):  # LC_UUID
            done.append("macho.uuid")
        elif cmd == 0x1D:  # LC_CODE_SIGNATURE: dataoff, datasize
            dataoff, datasize = _u32(buf, off + 8), _u32(buf, off + 12)
            if dataoff and dataoff + datasize <= len(buf):
                end_cut = dataoff
                _zero(buf, off + 8, 8)
                done.append("macho.signature")
        elif cmd in (0x19, 0x1) and bytes(buf[off + 8 : off + 24]).rstrip(b"\0") == b"__LINKEDIT":
            # the signature's size changes __LINKEDIT's sizes
            if is64:
                _zero(buf, off + 32, 8)
                _zero(buf, off + 48, 8)
            else:
                _zero(buf, off + 28, 4)
                _zero(buf, off + 36, 4)
        off += size
    if end_cut is not None:
        del buf[end_cut:]
    return bytes(buf), done


def normalise_macho(data: bytes) -> tuple[bytes, list[str]]:
    if data[:4] != magic.FAT_MAGIC:  # fat64 (0xCAFEBABF) slices are hashed as they are
        return _normalise_macho_slice(data)
    count = int.from_bytes(data[4:8], "big")
    parts: list[bytes] = []
    done: set[str] = set()
    for i in range(min(count, 30)):
        entry = 8 + 20 * i
        if entry + 20 > len(data):
            break
        offset = int.from_bytes(data[entry + 8 : entry + 12], "big")
        size = int.from_bytes(data[entry + 12 : entry + 16], "big")
        part, what = _normalise_macho_slice(data[offset : offset + size])
        parts.append(part)
        done.update(what)
    return b"".join(parts), sorted(done)


def normalise(data: bytes) -> tuple[bytes, list[str]]:
    """The bytes of a native binary with signatures, time stamps, checksums and build ids
    blanked (see the module docstring), and what was blanked; other data unchanged."""
    kind = _native(data)
    if kind == "pe":
        return normalise_pe(data)
    if kind == "elf":
        return normalise_elf(data)
    if kind in ("macho", "fat"):
        return normalise_macho(data)
    return data, []


def _bundle(data: bytes) -> dict[str, str] | None:
    if len(data) > MAX_PLIST:
        return None
    try:
        value: Any = plistlib.loads(data)
    except Exception:
        return None
    if not isinstance(value, dict):
        return None
    keys = ("CFBundleIdentifier", "CFBundleShortVersionString", "CFBundleVersion", "CFBundleName")
    out = {k: str(value[k])[:256] for k in keys if isinstance(value.get(k), str | int | float)}
    return out or None


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    if _native_of(item.kind(), item.data) is not None:
        digest, done = normalised_sha256(item.data)
        return AnalysisResult(NAME, ReleaseFacts(digest, tuple(done)))
    bundle = _bundle(item.data)
    return AnalysisResult(NAME, ReleaseFacts(bundle=bundle) if bundle else None)
