"""A tiny, valid PE32+ (x86-64) EXE or DLL assembled from bytes.

Pure Python on purpose: the tests must not depend on a cross compiler. The image has a
``.text`` section whose entry point only returns, an optional ``.rdata`` with an import table
(and an export table for DLLs), and an optional ``.rsrc`` with a version resource. LIEF, pefile,
osslsigncode and Windows' loader all accept it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FILE_ALIGNMENT = 0x200
SECTION_ALIGNMENT = 0x1000
IMAGE_BASE_EXE = 0x140000000
IMAGE_BASE_DLL = 0x180000000
MACHINE_AMD64 = 0x8664
SEC_CODE = 0x60000020  # CODE | EXECUTE | READ
SEC_RDATA = 0x40000040  # INITIALIZED_DATA | READ
SEC_DATA = 0xC0000040  # INITIALIZED_DATA | READ | WRITE

DIR_EXPORT = 0
DIR_IMPORT = 1
DIR_RESOURCE = 2
DIR_SECURITY = 4
DIR_IAT = 12


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _pad(data: bytes, alignment: int) -> bytes:
    return data + b"\0" * (_align(len(data), alignment) - len(data))


@dataclass(frozen=True, slots=True)
class PESpec:
    """What to put in the PE. Defaults give a console EXE importing ``KERNEL32!ExitProcess``."""

    dll: bool = False
    timestamp: int = 0x64000000
    subsystem: int = 3  # 2 GUI, 3 console
    imports: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {"KERNEL32.dll": ("ExitProcess",)}
    )
    exports: Sequence[str] = ()
    version_info: Mapping[str, str] | None = None
    file_version: tuple[int, int, int, int] = (1, 0, 0, 0)
    extra_sections: Sequence[tuple[str, bytes]] = ()
    overlay: bytes = b""
    #: more resources: (type, name, payload), ids or strings
    resources: Sequence[tuple[int | str, int | str, bytes]] = ()


def _string_utf16(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def _version_block(
    key: str, value: bytes, value_len: int, vtype: int, children: Sequence[bytes]
) -> bytes:
    """One node of a VS_VERSIONINFO tree (wLength, wValueLength, wType, szKey, value, children)."""
    body = struct.pack("<HHH", 0, value_len, vtype) + _string_utf16(key)
    body = _pad(body, 4) + value
    for child in children:
        body = _pad(body, 4) + child
    return struct.pack("<H", len(body)) + body[2:]


def version_resource(
    strings: Mapping[str, str], version: tuple[int, int, int, int], dll: bool
) -> bytes:
    """A VS_VERSIONINFO resource with a StringFileInfo (040904B0) and a Translation var."""
    ms = (version[0] << 16) | version[1]
    ls = (version[2] << 16) | version[3]
    fixed = struct.pack(
        "<13I", 0xFEEF04BD, 0x00010000, ms, ls, ms, ls, 0x3F, 0, 0x40004, 2 if dll else 1, 0, 0, 0
    )
    string_nodes = [
        _version_block(k, _string_utf16(v), len(v) + 1, 1, ()) for k, v in strings.items()
    ]
    table = _version_block("040904B0", b"", 0, 1, string_nodes)
    sfi = _version_block("StringFileInfo", b"", 0, 1, [table])
    var = _version_block("Translation", struct.pack("<HH", 0x0409, 1200), 4, 0, ())
    vfi = _version_block("VarFileInfo", b"", 0, 1, [var])
    return _version_block("VS_VERSION_INFO", fixed, len(fixed), 0, [sfi, vfi])


def _resource_section(rva: int, resources: Sequence[tuple[int | str, int | str, bytes]]) -> bytes:
    """A resource tree type / name / 0x409 -> payload for each ``(type, name, payload)``;
    types and names are ids or strings (e.g. Electron's ``INTEGRITY`` / ``ELECTRONASAR``)."""
    # named entries come first, sorted, then ids ascending (the PE format's order)
    ordered = sorted(
        resources,
        key=lambda r: (
            isinstance(r[0], int),
            str(r[0]) if isinstance(r[0], str) else f"{r[0]:08d}",
        ),
    )
    n = len(ordered)
    root_len = 16 + 8 * n
    sub_len = 16 + 8  # one entry per directory below the root
    dirs_len = root_len + n * 2 * sub_len
    data_entries = dirs_len
    strings_at = data_entries + 16 * n
    strings = b""
    string_offsets: dict[str, int] = {}
    for kind, name, _ in ordered:
        for label in (kind, name):
            if isinstance(label, str) and label not in string_offsets:
                string_offsets[label] = strings_at + len(strings)
                raw = struct.pack("<H", len(label)) + label.encode("utf-16-le")
                strings += raw + b"\0" * (-len(raw) % 4)
    payload_at = strings_at + len(strings)

    def ident(label: int | str) -> int:
        return 0x80000000 | string_offsets[label] if isinstance(label, str) else label

    def directory(entries: Sequence[tuple[int | str, int]]) -> bytes:
        named = sum(1 for label, _ in entries if isinstance(label, str))
        head = struct.pack("<IIHHHH", 0, 0, 0, 0, named, len(entries) - named)
        return head + b"".join(
            struct.pack("<II", ident(label), target) for label, target in entries
        )

    out = directory(
        [
            (kind, 0x80000000 | (root_len + i * 2 * sub_len))
            for i, (kind, _, _) in enumerate(ordered)
        ]
    )
    payloads = b""
    data = b""
    for i, (_, name, payload) in enumerate(ordered):
        name_dir = root_len + i * 2 * sub_len
        out += directory([(name, 0x80000000 | (name_dir + sub_len))])
        out += directory([(0x409, data_entries + 16 * i)])
        data += struct.pack("<IIII", rva + payload_at + len(payloads), len(payload), 0, 0)
        payloads += payload + b"\0" * (-len(payload) % 4)
    return out + data + strings + payloads


def _rdata_section(
    rva: int,
    imports: Mapping[str, Sequence[str]],
    exports: Sequence[str],
    dll_name: str,
    code_rva: int,
) -> tuple[bytes, dict[int, tuple[int, int]]]:
    """Import table (IDT, ILT, IAT, hint/names, DLL names) and an optional export table."""
    dirs: dict[int, tuple[int, int]] = {}
    buf = bytearray()
    if imports:
        dlls = list(imports.items())
        idt_size = 20 * (len(dlls) + 1)
        buf += b"\0" * idt_size
        descriptors: list[tuple[int, int, int]] = []  # ilt, iat, name
        iat_start = None
        iat_end = 0
        for dll, funcs in dlls:
            # hint/name entries first, then ILT/IAT pointing at them
            name_rvas = []
            for func in funcs:
                buf += b"\0" * (len(buf) % 2)
                name_rvas.append(rva + len(buf))
                buf += struct.pack("<H", 0) + func.encode("ascii") + b"\0"
            buf += b"\0" * (len(buf) % 2)
            dll_rva = rva + len(buf)
            buf += dll.encode("ascii") + b"\0"
            buf += b"\0" * (-len(buf) % 8)
            thunks = b"".join(struct.pack("<Q", r) for r in name_rvas) + b"\0" * 8
            ilt_rva = rva + len(buf)
            buf += thunks
            iat_rva = rva + len(buf)
            if iat_start is None:
                iat_start = iat_rva
            buf += thunks
            iat_end = rva + len(buf)
            descriptors.append((ilt_rva, iat_rva, dll_rva))
        for i, (ilt, iat, name_rva) in enumerate(descriptors):
            buf[i * 20 : i * 20 + 20] = struct.pack("<IIIII", ilt, 0, 0, name_rva, iat)
        dirs[DIR_IMPORT] = (rva, idt_size)
        assert iat_start is not None
        dirs[DIR_IAT] = (iat_start, iat_end - iat_start)
    if exports:
        buf += b"\0" * (-len(buf) % 8)
        export_start = len(buf)
        names = sorted(exports)
        n = len(names)
        header_off = len(buf)
        buf += b"\0" * 40
        funcs_rva = rva + len(buf)
        buf += b"".join(struct.pack("<I", code_rva) for _ in names)
        names_table_off = len(buf)
        buf += b"\0" * (4 * n)
        ords_rva = rva + len(buf)
        buf += b"".join(struct.pack("<H", i) for i in range(n))
        dll_name_rva = rva + len(buf)
        buf += dll_name.encode("ascii") + b"\0"
        name_ptrs = []
        for name in names:
            name_ptrs.append(rva + len(buf))
            buf += name.encode("ascii") + b"\0"
        buf[names_table_off : names_table_off + 4 * n] = b"".join(
            struct.pack("<I", p) for p in name_ptrs
        )
        buf[header_off : header_off + 40] = struct.pack(
            "<IIHHIIIIIII",
            0,
            0,
            0,
            0,
            dll_name_rva,
            1,
            n,
            n,
            funcs_rva,
            rva + names_table_off,
            ords_rva,
        )
        dirs[DIR_EXPORT] = (rva + export_start, len(buf) - export_start)
    return bytes(buf), dirs


def build_pe(spec: PESpec | None = None, *, dll_name: str = "sample.dll") -> bytes:
    """Assemble the PE described by ``spec`` (see :class:`PESpec`)."""
    spec = spec or PESpec()
    # DllMain / entry: mov eax, 1 ; ret
    code = b"\xb8\x01\x00\x00\x00\xc3"
    sections: list[tuple[str, bytes, int]] = [(".text", code, SEC_CODE)]
    dirs: dict[int, tuple[int, int]] = {}
    rva = SECTION_ALIGNMENT
    code_rva = rva
    rva += _align(len(code), SECTION_ALIGNMENT)
    if spec.imports or spec.exports:
        rdata, rdirs = _rdata_section(rva, spec.imports, spec.exports, dll_name, code_rva)
        sections.append((".rdata", rdata, SEC_RDATA))
        dirs.update(rdirs)
        rva += _align(len(rdata), SECTION_ALIGNMENT)
    for name, data in spec.extra_sections:
        sections.append((name, data, SEC_DATA))
        rva += _align(max(len(data), 1), SECTION_ALIGNMENT)
    resources = list(spec.resources)
    if spec.version_info is not None:
        payload = version_resource(spec.version_info, spec.file_version, spec.dll)
        resources.append((16, 1, payload))
    if resources:
        rsrc = _resource_section(rva, resources)
        sections.append((".rsrc", rsrc, SEC_RDATA))
        dirs[DIR_RESOURCE] = (rva, len(rsrc))
        rva += _align(len(rsrc), SECTION_ALIGNMENT)
    size_of_image = rva

    e_lfanew = 0x80
    headers_len = e_lfanew + 4 + 20 + 240 + 40 * len(sections)
    size_of_headers = _align(headers_len, FILE_ALIGNMENT)

    table = b""
    raw = b""
    raw_ptr = size_of_headers
    vaddr = SECTION_ALIGNMENT
    size_code = size_idata = 0
    for name, data, chars in sections:
        raw_size = _align(len(data), FILE_ALIGNMENT)
        table += struct.pack(
            "<8sIIIIIIHHI",
            name.encode("ascii"),
            max(len(data), 1),
            vaddr,
            raw_size,
            raw_ptr,
            0,
            0,
            0,
            0,
            chars,
        )
        raw += _pad(data, FILE_ALIGNMENT)
        raw_ptr += raw_size
        if chars & 0x20:
            size_code += raw_size
        else:
            size_idata += raw_size
        vaddr += _align(max(len(data), 1), SECTION_ALIGNMENT)

    dos = bytearray(e_lfanew)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, e_lfanew)
    characteristics = 0x0022 | (0x2000 if spec.dll else 0)
    coff = struct.pack(
        "<HHIIIHH", MACHINE_AMD64, len(sections), spec.timestamp, 0, 0, 240, characteristics
    )
    data_dirs = b"".join(struct.pack("<II", *dirs.get(i, (0, 0))) for i in range(16))
    optional = (
        struct.pack(
            "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
            0x20B,
            14,
            0,
            size_code,
            size_idata,
            0,
            code_rva,
            code_rva,
            IMAGE_BASE_DLL if spec.dll else IMAGE_BASE_EXE,
            SECTION_ALIGNMENT,
            FILE_ALIGNMENT,
            6,
            0,
            0,
            0,
            6,
            0,
            0,
            size_of_image,
            size_of_headers,
            0,
            spec.subsystem,
            0x8160,
            0x100000,
            0x1000,
            0x100000,
            0x1000,
            0,
            16,
        )
        + data_dirs
    )
    headers = bytes(dos) + b"PE\0\0" + coff + optional + table
    return _pad(headers, FILE_ALIGNMENT) + raw + spec.overlay


DEFAULT_VERSION_INFO: Mapping[str, str] = {
    "CompanyName": "Example Trading Ltd",
    "ProductName": "Example Trader",
    "FileDescription": "Example Trader main program",
    "FileVersion": "7.17.90.608",
    "OriginalFilename": "example.exe",
}


def data_directory(pe: bytes, index: int) -> tuple[int, int]:
    """(rva-or-offset, size) of data directory ``index`` of a PE32+ built here."""
    e_lfanew = struct.unpack_from("<I", pe, 0x3C)[0]
    opt = e_lfanew + 24
    magic = struct.unpack_from("<H", pe, opt)[0]
    base = opt + (112 if magic == 0x20B else 96)
    return struct.unpack_from("<II", pe, base + 8 * index)  # type: ignore[return-value]


def set_data_directory(pe: bytes, index: int, value: tuple[int, int]) -> bytes:
    e_lfanew = struct.unpack_from("<I", pe, 0x3C)[0]
    opt = e_lfanew + 24
    magic = struct.unpack_from("<H", pe, opt)[0]
    base = opt + (112 if magic == 0x20B else 96)
    out = bytearray(pe)
    struct.pack_into("<II", out, base + 8 * index, *value)
    return bytes(out)


def append_inside_certificate_table(signed: bytes, extra: bytes) -> bytes:
    """The CVE-2013-3900 layout (3CX's d3dcompiler_47.dll): ``extra`` goes after the PKCS#7 blob
    *inside* the first WIN_CERTIFICATE; its ``dwLength`` and the security directory size grow,
    so the Authenticode digest (which skips the certificate table) still matches."""
    offset, size = data_directory(signed, DIR_SECURITY)
    if not offset or not size:
        raise ValueError("not signed: no certificate table")
    dw_length = struct.unpack_from("<I", signed, offset)[0]
    entry = signed[offset : offset + dw_length] + extra
    entry = _pad(entry, 8)
    entry = struct.pack("<I", len(entry)) + entry[4:]
    rest = signed[offset + size :]
    out = signed[:offset] + entry + rest
    return set_data_directory(out, DIR_SECURITY, (offset, len(entry)))
