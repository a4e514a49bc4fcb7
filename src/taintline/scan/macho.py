"""Mach-O analyser (thin and fat/universal): architectures, load commands for dylibs, and the
code signature: present or not, ad-hoc or signed, identifier, team id and signer.

LIEF parses the load commands and hands out the raw LC_CODE_SIGNATURE bytes, but its Python API
does not decode the SuperBlob inside (CodeDirectory flags, identifier, team id, CMS signer), so
:func:`parse_code_signature` reads those few big-endian fields itself, following Apple's
``cs_blobs.h`` layout, and asn1crypto reads the CMS blob's signer certificate.
"""

from __future__ import annotations

import posixpath
import struct
from dataclasses import dataclass

from asn1crypto import cms

from taintline.model import Finding, Severity
from taintline.scan import lieflazy, magic
from taintline.scan.interface import AnalysisContext, AnalysisResult, FileItem

NAME = "macho"

MAGICS = magic.MACHO_MAGICS
FAT_MAGICS = (magic.FAT_MAGIC, magic.FAT_MAGIC_64)
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSMAGIC_BLOBWRAPPER = 0xFADE0B01
CSSLOT_CODEDIRECTORY = 0
CSSLOT_SIGNATURESLOT = 0x10000
CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000
CS_RUNTIME = 0x10000
MAX_BLOBS = 64

#: dylib locations that are part of the OS or resolved inside the app bundle
EXPECTED_PREFIXES = ("/usr/lib/", "/System/Library/", "/System/iOSSupport/")
RELATIVE_PREFIXES = ("@rpath/", "@executable_path/", "@loader_path/")


@dataclass(frozen=True, slots=True)
class CodeSignature:
    identifier: str | None = None
    team_id: str | None = None
    flags: int = 0
    adhoc: bool = False
    hardened_runtime: bool = False
    signer: str | None = None  # CMS signer subject, e.g. "Developer ID Application: ..."
    cms_present: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MachOSlice:
    cpu: str
    filetype: str
    dylibs: tuple[str, ...]
    rpaths: tuple[str, ...]
    signed: bool
    signature: CodeSignature | None


@dataclass(frozen=True, slots=True)
class MachOFacts:
    fat: bool
    slices: tuple[MachOSlice, ...]
    truncated: str | None = None

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(s.cpu for s in self.slices)

    @property
    def signed(self) -> bool:
        return bool(self.slices) and all(s.signed for s in self.slices)

    @property
    def signer(self) -> str | None:
        """Team id, else CMS signer, else ``"adhoc"``; ``None`` when unsigned."""
        for s in self.slices:
            sig = s.signature
            if sig is not None:
                if sig.adhoc:
                    return "adhoc"
                return sig.team_id or sig.signer
        return None


def applies(item: FileItem) -> bool:
    # 0xCAFEBABE is also a Java class file: the magic table tells them apart by the header
    return magic.sniff(item.data) is magic.FileType.MACHO


def _cstring(blob: bytes, offset: int) -> str | None:
    if not 0 < offset < len(blob):
        return None
    end = blob.find(b"\0", offset)
    raw = blob[offset : end if end >= 0 else len(blob)]
    return raw[:256].decode("utf-8", "replace")


def _cms_signer(der: bytes) -> str | None:
    info = cms.ContentInfo.load(der)
    signed = info["content"]
    certs = [c.chosen for c in signed["certificates"] or () if c.name == "certificate"]
    sid = signed["signer_infos"][0]["sid"] if signed["signer_infos"] else None
    chosen = None
    if sid is not None and sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        chosen = next((c for c in certs if c.serial_number == serial), None)
    chosen = chosen or (certs[0] if certs else None)
    if chosen is None:
        return None
    cn = chosen.subject.native.get("common_name")
    return str(cn) if cn else chosen.subject.human_friendly


def parse_code_signature(blob: bytes) -> CodeSignature:
    """Decode an embedded-signature SuperBlob (big-endian)."""
    if len(blob) < 12:
        return CodeSignature(error="code signature blob truncated")
    magic, _length, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        return CodeSignature(error=f"unexpected SuperBlob magic 0x{magic:08x}")
    identifier = team = signer = None
    flags = 0
    cms_present = False
    error: str | None = None
    for i in range(min(count, MAX_BLOBS)):
        if 12 + 8 * i + 8 > len(blob):
            error = "SuperBlob index truncated"
            break
        slot, offset = struct.unpack_from(">II", blob, 12 + 8 * i)
        if offset + 8 > len(blob):
            error = f"blob {slot:#x} outside the signature"
            continue
        bmagic, blength = struct.unpack_from(">II", blob, offset)
        sub = blob[offset : offset + blength]
        if slot == CSSLOT_CODEDIRECTORY and bmagic == CSMAGIC_CODEDIRECTORY and len(sub) >= 44:
            version, flags = struct.unpack_from(">II", sub, 8)
            ident_off = struct.unpack_from(">I", sub, 20)[0]
            identifier = _cstring(sub, ident_off)
            if version >= 0x20200 and len(sub) >= 52:
                team = _cstring(sub, struct.unpack_from(">I", sub, 48)[0])
        elif slot == CSSLOT_SIGNATURESLOT and bmagic == CSMAGIC_BLOBWRAPPER and blength > 8:
            cms_present = True
            try:
                signer = _cms_signer(bytes(sub[8:]))
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                error = f"CMS signature does not parse: {exc}"
    return CodeSignature(
        identifier=identifier,
        team_id=team,
        flags=flags,
        adhoc=bool(flags & CS_ADHOC) or not cms_present,
        hardened_runtime=bool(flags & CS_RUNTIME),
        signer=signer,
        cms_present=cms_present,
        error=error,
    )


def facts_of(data: bytes) -> MachOFacts | None:
    lieflazy.ready()
    import lief

    if len(data) < 28:
        return None
    parsed = lief.MachO.parse(data)
    if parsed is None:
        return None
    slices = []
    for binary in parsed:
        rpaths = tuple(
            lieflazy.attr_text(cmd, "path")
            for cmd in binary.commands
            if isinstance(cmd, lief.MachO.RPathCommand)
        )
        signature: CodeSignature | None = None
        command = binary.code_signature if binary.has_code_signature else None
        if command is not None:
            signature = parse_code_signature(bytes(command.content))
        slices.append(
            MachOSlice(
                cpu=lieflazy.enum_name(binary.header.cpu_type),
                filetype=lieflazy.enum_name(binary.header.file_type),
                dylibs=tuple(lieflazy.attr_text(lib, "name") for lib in binary.libraries)[:256],
                rpaths=rpaths[:64],
                signed=signature is not None and signature.error is None,
                signature=signature,
            )
        )
    return MachOFacts(fat=data[:4] in FAT_MAGICS, slices=tuple(slices), truncated=truncation(data))


def truncation(data: bytes) -> str | None:
    """Why the headers promise more bytes than the file has (LIEF parses leniently)."""
    head = data[:4]
    if head in FAT_MAGICS:
        count = struct.unpack_from(">I", data, 4)[0]
        wide = head == FAT_MAGICS[1]
        entry = 32 if wide else 20
        for i in range(min(count, 32)):
            pos = 8 + entry * i
            if pos + entry > len(data):
                return "fat header truncated"
            if wide:
                offset, size = struct.unpack_from(">QQ", data, pos + 8)
            else:
                offset, size = struct.unpack_from(">II", data, pos + 8)
            if offset + size > len(data):
                return f"slice {i} ({offset}+{size}) runs past the end of the file ({len(data)})"
        return None
    if len(data) < 28:
        return "Mach-O header truncated"
    order = ">" if head in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf") else "<"
    sizeofcmds = struct.unpack_from(order + "I", data, 20)[0]
    header = 32 if head in (b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe") else 28
    if header + sizeofcmds > len(data):
        return f"load commands ({sizeofcmds} bytes) run past the end of the file ({len(data)})"
    return None


def unexpected_dylib(path: str) -> bool:
    """True for a dylib outside the OS locations and outside the bundle (relative paths that
    climb out of ``Contents/``)."""
    if path.startswith(EXPECTED_PREFIXES):
        return False
    for prefix in RELATIVE_PREFIXES:
        if path.startswith(prefix):
            rest = posixpath.normpath("Contents/MacOS/" + path[len(prefix) :])
            return rest.startswith("..") or not rest.startswith("Contents")
    return True


def findings_of(path: str, facts: MachOFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    archs = list(facts.architectures)
    if not facts.slices:
        return (
            Finding(
                "error.malformed",
                Severity.LOW,
                path,
                "Mach-O without slices",
                evidence={"format": NAME},
            ),
        )
    if facts.truncated:
        out.append(Finding("error.malformed", Severity.LOW, path, f"Mach-O truncated: {facts.truncated}",
                           evidence={"format": NAME, "reason": facts.truncated}))  # fmt: skip
    unsigned = [s.cpu for s in facts.slices if s.signature is None]
    if unsigned:
        out.append(Finding("macho.unsigned", Severity.INFO, path,
                           f"Mach-O slice(s) without a code signature: {', '.join(unsigned)}",
                           evidence={"architectures": archs, "unsigned": unsigned}))  # fmt: skip
    for s in facts.slices:
        sig = s.signature
        if sig is None:
            continue
        if sig.error:
            out.append(Finding("macho.signature-malformed", Severity.MEDIUM, path,
                               f"{s.cpu}: code signature is malformed: {sig.error}",
                               evidence={"cpu": s.cpu, "error": sig.error}))  # fmt: skip
        elif sig.adhoc:
            out.append(Finding("macho.adhoc-signature", Severity.MEDIUM, path,
                               f"{s.cpu}: ad-hoc code signature (no signing identity), identifier {sig.identifier!r}",
                               evidence={"cpu": s.cpu, "identifier": sig.identifier, "flags": sig.flags}))  # fmt: skip
    seen: set[str] = set()
    for s in facts.slices:
        for lib in s.dylibs:
            if lib in seen or not unexpected_dylib(lib):
                continue
            seen.add(lib)
            out.append(Finding("macho.unexpected-dylib", Severity.MEDIUM, path,
                               f"loads a library outside the OS and the bundle: {lib}",
                               evidence={"dylib": lib, "cpu": s.cpu, "rpaths": list(s.rpaths)}))  # fmt: skip
    return tuple(out)


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    return lieflazy.guarded(
        NAME, "Mach-O", item.path,
        lambda: facts_of(item.data),
        lambda facts: findings_of(item.path, facts),
        "Mach-O magic present but the file does not parse",
    )  # fmt: skip
