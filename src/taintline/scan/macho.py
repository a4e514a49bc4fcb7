"""Mach-O analyser (thin and fat/universal): architectures, load commands for dylibs, the
library's own install name, and the code signature with a verdict: ad-hoc, Developer ID,
Apple-signed, Mac App Store, development, signed by a private PKI, untrusted, invalid or
tampered.

LIEF parses the load commands and hands out the raw LC_CODE_SIGNATURE bytes, but its Python API
does not decode the SuperBlob inside (CodeDirectory flags, identifier, team id, page hashes,
CMS signer), so :func:`parse_code_signature` reads those few big-endian fields itself,
following Apple's ``cs_blobs.h`` layout; it checks every code page against the CodeDirectory
hashes, :mod:`taintline.scan.cms` checks the CMS signature over the CodeDirectory, and
:mod:`taintline.scan.trust` walks the signer's chain to Apple Root CA (or a ``--ca-bundle``
root).
"""

from __future__ import annotations

import hashlib
import posixpath
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from cryptography import x509

from taintline.model import Finding, Severity
from taintline.scan import lieflazy, magic, trust
from taintline.scan.cms import certificates, quiet_text, signer_cert, verify_signer
from taintline.scan.interface import AnalysisContext, AnalysisResult, AppliesTo, FileItem

NAME = "macho"
#: applies() needs a ``MACHO`` (see :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(kinds=frozenset({magic.FileType.MACHO}))

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
CS_HASH_TYPES = {1: "sha1", 2: "sha256", 3: "sha256", 4: "sha384"}
#: Apple's marker extensions on leaf certificates -> the kind of identity
APPLE_MARKERS = {
    "1.2.840.113635.100.6.1.13": "developer-id",
    "1.2.840.113635.100.6.1.9": "mac-app-store",
    "1.2.840.113635.100.6.1.12": "apple-development",
}

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
    signer: str | None = None  # CMS signer CN, e.g. "Developer ID Application: ..."
    cms_present: bool = False
    error: str | None = None
    linker_signed: bool = False
    hash_type: str | None = None
    code_pages: int = 0
    #: every code page hashes to the CodeDirectory's value (None: not checked)
    code_hashes_match: bool | None = None
    first_bad_page: int | None = None
    #: the CMS signature verifies over the CodeDirectory
    cms_verified: bool | None = None
    cms_error: str | None = None
    signer_subject: str | None = None
    chain: tuple[str, ...] = ()
    chain_trusted: bool | None = None
    chain_error: str | None = None
    trust_program: str | None = None  # apple | ca-bundle
    #: the kind of identity the leaf claims: developer-id | apple | mac-app-store |
    #: apple-development | other
    identity: str | None = None
    #: ad-hoc | developer-id | apple | mac-app-store | apple-development | signed (private
    #: PKI) | untrusted | invalid | tampered
    verdict: str | None = None


@dataclass(frozen=True, slots=True)
class MachOSlice:
    cpu: str
    filetype: str
    dylibs: tuple[str, ...]
    rpaths: tuple[str, ...]
    signed: bool
    signature: CodeSignature | None
    #: LC_ID_DYLIB: a library's own name (what others load it as), not a library it loads
    install_name: str | None = None


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
    return item.kind() is magic.FileType.MACHO


def _cstring(blob: bytes, offset: int) -> str | None:
    if not 0 < offset < len(blob):
        return None
    end = blob.find(b"\0", offset)
    raw = blob[offset : end if end >= 0 else len(blob)]
    return raw[:256].decode("utf-8", "replace")


def _identity_of(leaf: x509.Certificate) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oids = {ext.oid.dotted_string for ext in leaf.extensions}
        cn_attrs = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        issuer = quiet_text(leaf, "issuer")
    for oid, kind in APPLE_MARKERS.items():
        if oid in oids:
            return kind
    cn = str(cn_attrs[0].value) if cn_attrs else ""
    if cn.startswith("Developer ID Application:"):
        return "developer-id"
    if cn == "Software Signing" or "Apple Code Signing Certification Authority" in issuer:
        return "apple"
    if cn.startswith(("Apple Mac OS Application Signing", "3rd Party Mac Developer Application")):
        return "mac-app-store"
    if cn.startswith(("Apple Development:", "Mac Developer:")):
        return "apple-development"
    return "other"


def _common_name(cert: x509.Certificate) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else quiet_text(cert)


def judge_cms(der: bytes, code_directory: bytes, trust_pem: bytes | None) -> dict[str, object]:
    """The CMS blob of a code signature: signer, signature over the CodeDirectory, chain to
    Apple Root CA (or a ``--ca-bundle`` root) for code signing, identity kind."""
    from taintline.scan.sigtime import countersignature

    info = cms.ContentInfo.load(der)
    signed = info["content"]
    certs = certificates(signed)
    infos = signed["signer_infos"]
    if not infos:
        return {"cms_verified": False, "cms_error": "CMS without a signer"}
    signer_info = infos[0]
    leaf = signer_cert(signer_info, certs) or (certs[0] if certs else None)
    if leaf is None:
        return {"cms_verified": False, "cms_error": "signer certificate not in the CMS blob"}
    problem = verify_signer(signer_info, leaf, code_directory)
    store = trust.apple_code_store(trust_pem)
    stamp, _ = countersignature(signer_info, certs, store)
    when: datetime | None = stamp.time if stamp is not None and stamp.verified else None
    if when is None:
        # Apple's CMS carries the signing time; an expired Developer ID keeps working for
        # what it signed while valid (Gatekeeper), so the chain is judged at that time
        for attr in signer_info["signed_attrs"] or ():
            if attr["type"].native == "signing_time":
                when = attr["values"][0].native
    verdict = trust.build_chain(leaf, certs, store, when=when)
    return {
        "signer": _common_name(leaf),
        "signer_subject": quiet_text(leaf),
        "cms_verified": problem is None,
        "cms_error": problem,
        "chain": tuple(quiet_text(c) for c in verdict.chain),
        "chain_trusted": verdict.trusted,
        "chain_error": verdict.reason,
        "trust_program": verdict.program if verdict.trusted else None,
        "identity": _identity_of(leaf),
    }


def _check_pages(cd: bytes, code: bytes) -> tuple[str | None, int, bool | None, int | None]:
    """(hash type, number of code pages, all match, first bad page) for one CodeDirectory."""
    if len(cd) < 40:
        return None, 0, None, None
    hash_offset, _ident, _special, n_code, code_limit = struct.unpack_from(">IIIII", cd, 16)
    hash_size, hash_type, _platform, page_log = cd[36], cd[37], cd[38], cd[39]
    algorithm = CS_HASH_TYPES.get(hash_type)
    if algorithm is None or hash_size == 0:
        return None, n_code, None, None
    page = 1 << page_log if page_log else max(code_limit, 1)
    # a hostile count cannot make us hash more pages than the file has
    if code_limit > len(code) or n_code > len(code) // page + 2 or n_code * hash_size > len(cd):
        return algorithm, n_code, False, 0
    for i in range(n_code):
        start = i * page
        want = cd[hash_offset + i * hash_size : hash_offset + (i + 1) * hash_size]
        got = hashlib.new(algorithm, code[start : min(start + page, code_limit)]).digest()
        if got[:hash_size] != want:
            return algorithm, n_code, False, i
    return algorithm, n_code, True, None


def parse_code_signature(
    blob: bytes, code: bytes | None = None, trust_pem: bytes | None = None
) -> CodeSignature:
    """Decode an embedded-signature SuperBlob (big-endian); with ``code`` (the slice's bytes),
    check its pages and the CMS signature and give the verdict."""
    if len(blob) < 12:
        return CodeSignature(error="code signature blob truncated", verdict="invalid")
    magic, _length, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        return CodeSignature(error=f"unexpected SuperBlob magic 0x{magic:08x}", verdict="invalid")
    identifier = team = None
    flags = 0
    cms_blob: bytes | None = None
    code_directory: bytes | None = None
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
            code_directory = bytes(sub)
            version, flags = struct.unpack_from(">II", sub, 8)
            ident_off = struct.unpack_from(">I", sub, 20)[0]
            identifier = _cstring(sub, ident_off)
            if version >= 0x20200 and len(sub) >= 52:
                team = _cstring(sub, struct.unpack_from(">I", sub, 48)[0])
        elif slot == CSSLOT_SIGNATURESLOT and bmagic == CSMAGIC_BLOBWRAPPER and blength > 8:
            cms_blob = bytes(sub[8:])
    fields: dict[str, object] = {}
    if code_directory is not None and code is not None:
        hash_type, pages, match, bad = _check_pages(code_directory, code)
        fields.update(hash_type=hash_type, code_pages=pages, code_hashes_match=match,
                      first_bad_page=bad)  # fmt: skip
    if cms_blob is not None:
        try:
            fields.update(judge_cms(cms_blob, code_directory or b"", trust_pem))
        except Exception as exc:  # hostile DER: asn1crypto/cryptography raise many types
            error = f"CMS signature does not parse: {type(exc).__name__}: {exc}"
    adhoc = bool(flags & CS_ADHOC) or cms_blob is None
    if error is not None:
        verdict = "invalid"
    elif fields.get("code_hashes_match") is False:
        verdict = "tampered"
    elif adhoc:
        verdict = "ad-hoc"
    elif fields.get("cms_verified") is False:
        verdict = "invalid"
    elif not fields.get("chain_trusted"):
        verdict = "untrusted"
    elif fields.get("trust_program") == "apple":
        identity = str(fields.get("identity"))
        verdict = identity if identity != "other" else "signed"
    else:
        verdict = "signed"
    return CodeSignature(
        identifier=identifier,
        team_id=team,
        flags=flags,
        adhoc=adhoc,
        hardened_runtime=bool(flags & CS_RUNTIME),
        cms_present=cms_blob is not None,
        error=error,
        linker_signed=bool(flags & CS_LINKER_SIGNED),
        verdict=verdict,
        **fields,  # type: ignore[arg-type]
    )


def facts_of(data: bytes, trust_pem: bytes | None = None) -> MachOFacts | None:
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
            start = getattr(binary, "fat_offset", 0) or 0
            code = (
                data[start : start + command.data_offset]
                if parsed.size > 1 or start
                else data[: command.data_offset]
            )
            signature = parse_code_signature(bytes(command.content), code, trust_pem)
        id_type = lief.MachO.LoadCommand.TYPE.ID_DYLIB
        loads: list[str] = []
        install_name: str | None = None
        for lib in binary.libraries:
            name = lieflazy.attr_text(lib, "name")
            if lib.command == id_type:
                install_name = name  # the library's own name, not something it loads
            elif len(loads) < 256:
                loads.append(name)
        slices.append(
            MachOSlice(
                cpu=lieflazy.enum_name(binary.header.cpu_type),
                filetype=lieflazy.enum_name(binary.header.file_type),
                dylibs=tuple(loads),
                rpaths=rpaths[:64],
                signed=signature is not None and signature.error is None,
                signature=signature,
                install_name=install_name,
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
                           evidence={"architectures": archs, "unsigned": unsigned,
                                     "reason": "no LC_CODE_SIGNATURE load command"}))  # fmt: skip
    for s in facts.slices:
        sig = s.signature
        if sig is None:
            continue
        base = {"cpu": s.cpu, "identifier": sig.identifier, "verdict": sig.verdict}
        if sig.error:
            out.append(Finding("macho.signature-malformed", Severity.MEDIUM, path,
                               f"{s.cpu}: code signature is malformed: {sig.error}",
                               evidence={**base, "error": sig.error, "reason": sig.error}))  # fmt: skip
            continue
        if sig.code_hashes_match is False:
            out.append(Finding("macho.code-hash-mismatch", Severity.HIGH, path,
                               f"{s.cpu}: code page {sig.first_bad_page} does not match its"
                               " CodeDirectory hash: modified after signing",
                               evidence={**base, "page": sig.first_bad_page,
                                         "hash_type": sig.hash_type, "signer": sig.signer,
                                         "reason": f"the {sig.hash_type} of code page"
                                         f" {sig.first_bad_page} differs from the hash the"
                                         " CodeDirectory records"}))  # fmt: skip
        if sig.adhoc:
            # every arm64 binary must carry a signature and the linker adds an ad-hoc one: on
            # its own that proves nothing (the Electron check flags an ad-hoc library inside a
            # Developer ID app)
            out.append(Finding("macho.adhoc-signature",
                               Severity.INFO if sig.linker_signed else Severity.LOW, path,
                               f"{s.cpu}: ad-hoc code signature (no signing identity), identifier {sig.identifier!r}",
                               evidence={**base, "flags": sig.flags, "linker_signed": sig.linker_signed,
                                         "reason": "CodeDirectory flag CS_ADHOC set or no CMS"
                                         " signature blob"}))  # fmt: skip
            continue
        if sig.cms_verified is False:
            out.append(Finding("macho.signature-invalid", Severity.HIGH, path,
                               f"{s.cpu}: the CMS signature does not verify over the CodeDirectory",
                               evidence={**base, "signer": sig.signer,
                                         "reason": sig.cms_error or "CMS verification failed"}))  # fmt: skip
        elif sig.chain_trusted is False:
            out.append(Finding("macho.untrusted-signature", Severity.MEDIUM, path,
                               f"{s.cpu}: signed by {sig.signer!r}, whose chain does not lead to"
                               " Apple Root CA (or a --ca-bundle root)",
                               evidence={**base, "signer": sig.signer_subject, "chain": list(sig.chain),
                                         "reason": sig.chain_error or "no trusted root"}))  # fmt: skip
    seen: set[str] = set()
    for s in facts.slices:
        for lib in s.dylibs:
            if lib in seen or not unexpected_dylib(lib):
                continue
            seen.add(lib)
            out.append(Finding("macho.unexpected-dylib", Severity.MEDIUM, path,
                               f"loads a library outside the OS and the bundle: {lib}",
                               evidence={"dylib": lib, "cpu": s.cpu, "rpaths": list(s.rpaths),
                                         "install_name": s.install_name,
                                         "reason": "an LC_LOAD_DYLIB (or weak/re-export) path"
                                         " outside /usr/lib, /System and the bundle"}))  # fmt: skip
    return tuple(out)


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    return lieflazy.guarded(
        NAME, "Mach-O", item.path,
        lambda: facts_of(item.data, ctx.trust_store_pem),
        lambda facts: findings_of(item.path, facts),
        "Mach-O magic present but the file does not parse",
    )  # fmt: skip
