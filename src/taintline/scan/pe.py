"""PE analyser: identity, version resource, imports/exports summary, sections, overlay and the
Authenticode verdict (see :mod:`taintline.scan.authenticode`).

Parsing is LIEF's (fast, fuzzed, and it computes the authentihash); the judgement is ours:
:func:`facts_of` turns bytes into :class:`PEFacts`, :func:`findings_of` turns facts into
findings, :func:`analyse` does both for the engine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from taintline.model import Finding, Severity, parse_time
from taintline.scan import lieflazy, magic
from taintline.scan.authenticode import AuthenticodeFacts, analyse_signature, verdict_findings
from taintline.scan.interface import AnalysisContext, AnalysisResult, AppliesTo, FileItem
from taintline.scan.measure import entropy

if TYPE_CHECKING:
    import lief

NAME = "pe"
#: applies() needs an ``EXE`` (see :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(kinds=frozenset({magic.FileType.EXE}))

VERSION_KEYS = (
    "CompanyName",
    "ProductName",
    "ProductVersion",
    "FileVersion",
    "FileDescription",
    "OriginalFilename",
    "InternalName",
    "LegalCopyright",
)
MAX_NAMES = 20


@dataclass(frozen=True, slots=True)
class SectionFacts:
    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    sha256: str
    entropy: float


@dataclass(frozen=True, slots=True)
class AsarIntegrity:
    """One entry of Electron's ``INTEGRITY``/``ELECTRONASAR`` resource: the SHA-256 of an asar
    archive's header, as the app was built with it."""

    path: str  # relative to the executable's folder, "/" separators
    algorithm: str
    hash: str


@dataclass(frozen=True, slots=True)
class PEFacts:
    machine: str
    is_64: bool
    is_dll: bool
    subsystem: str
    timestamp: str | None
    entry_point_rva: int
    entry_section: str | None
    version: Mapping[str, str]
    imported_dlls: tuple[str, ...]
    imported_functions: int
    imports_sample: tuple[str, ...]
    exports: int
    exports_sample: tuple[str, ...]
    sections: tuple[SectionFacts, ...]
    overlay_offset: int | None
    overlay_size: int
    size: int
    signature: AuthenticodeFacts | None
    #: the Authenticode hashes of the image (what a catalog lists for a PE), signed or not
    authentihash_sha256: str | None = None
    authentihash_sha1: str | None = None
    asar_integrity: tuple[AsarIntegrity, ...] = ()

    @property
    def signed(self) -> bool:
        return self.signature is not None and self.signature.signed


def applies(item: FileItem) -> bool:
    return item.kind() is magic.FileType.EXE and magic.is_pe(item.data)


def _version_strings(binary: lief.PE.Binary) -> dict[str, str]:
    import lief  # imported (and silenced) by facts_of

    out: dict[str, str] = {}
    if not binary.has_resources:
        return out
    manager = binary.resources_manager
    if not isinstance(manager, lief.PE.ResourcesManager) or not manager.has_version:
        return out
    try:
        versions = list(manager.version)
    except UnicodeDecodeError:
        return out
    for version in versions:
        try:
            sfi = version.string_file_info
        except UnicodeDecodeError:
            continue
        if sfi is None:
            continue
        try:
            tables = list(sfi.children)
        except UnicodeDecodeError:
            continue
        for table in tables:
            try:
                entries = list(table.entries)
            except UnicodeDecodeError:
                continue
            for entry in entries:
                key = lieflazy.attr_text(entry, "key")
                if key in VERSION_KEYS and key not in out:
                    out[key] = lieflazy.attr_text(entry, "value").strip("\0").strip()[:512]
    return out


def _asar_integrity(binary: lief.PE.Binary) -> tuple[AsarIntegrity, ...]:
    """Electron (>= 30 on Windows) declares its asar header hashes in an RCDATA-like resource
    of type ``INTEGRITY`` named ``ELECTRONASAR``: JSON ``[{file, alg, value}]``."""
    import orjson

    root = binary.resources if binary.has_resources else None
    if root is None:
        return ()
    out: list[AsarIntegrity] = []
    try:
        for kind in root.childs:
            if not (kind.has_name and lieflazy.attr_text(kind, "name") == "INTEGRITY"):
                continue
            for name in kind.childs:
                if not (name.has_name and lieflazy.attr_text(name, "name") == "ELECTRONASAR"):
                    continue
                for lang in name.childs:
                    raw = bytes(getattr(lang, "content", b""))[:65536]
                    entries = orjson.loads(raw)
                    for entry in entries if isinstance(entries, list) else ():
                        if isinstance(entry, dict) and len(out) < 64:
                            out.append(
                                AsarIntegrity(
                                    path=str(entry.get("file", "")).replace("\\", "/"),
                                    algorithm=str(entry.get("alg", "")).upper(),
                                    hash=str(entry.get("value", "")).lower(),
                                )
                            )
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
        return tuple(out)  # a hostile resource: keep what was read
    return tuple(out)


def facts_of(data: bytes, trust_pem: bytes | None = None) -> PEFacts | None:
    """Parse ``data``; ``None`` when LIEF does not see a PE at all."""
    lieflazy.ready()
    import lief

    binary = lief.PE.parse(data)
    if binary is None:
        return None
    header = binary.header
    optional = binary.optional_header
    sections = []
    view = memoryview(data)
    entry = optional.addressof_entrypoint
    entry_section: str | None = None
    for section in binary.sections:
        start = section.offset
        raw = view[start : start + section.size]  # no copy; empty past the end
        name = lieflazy.attr_text(section, "name")
        sections.append(
            SectionFacts(
                name=name,
                virtual_address=section.virtual_address,
                virtual_size=section.virtual_size,
                raw_offset=start,
                raw_size=section.size,
                sha256=hashlib.sha256(raw).hexdigest(),
                entropy=entropy(raw),
            )
        )
        span = max(section.virtual_size, section.size)
        if (
            entry_section is None
            and section.virtual_address <= entry < section.virtual_address + span
        ):
            entry_section = name
    dlls: list[str] = []
    functions: list[str] = []
    for imported in binary.imports:
        dll = lieflazy.attr_text(imported, "name")
        dlls.append(dll)
        for func in imported.entries:
            if len(functions) < 10_000:
                functions.append(f"{dll}!{lieflazy.attr_text(func, 'name') or f'#{func.ordinal}'}")
    exported = [lieflazy.attr_text(f, "name") for f in binary.exported_functions]

    signature: AuthenticodeFacts | None = None
    security = binary.data_directory(lief.PE.DataDirectory.TYPES.CERTIFICATE_TABLE)
    if security is not None and security.rva and security.size:
        flags: str | None = None
        authentihash: str | None = None
        if binary.has_signatures:
            checks = lief.PE.Signature.VERIFICATION_CHECKS.SKIP_CERT_TIME
            flags = lieflazy.enum_name(binary.verify_signature(checks)).replace(" | ", "|")
            authentihash = bytes(binary.authentihash(lief.PE.ALGORITHMS.SHA_256)).hex()
        signature = analyse_signature(
            data,
            security.rva,
            security.size,
            lief_flags=flags,
            authentihash_sha256=authentihash,
            trust_pem=trust_pem,
        )
    overlay_offset = binary.overlay_offset if binary.overlay_offset else None
    overlay_size = len(binary.overlay)
    if signature is not None and overlay_offset is not None:
        # LIEF counts the certificate table as overlay; ours is what follows it.
        overlay_size = signature.overlay_after_table
        overlay_offset = (
            signature.cert_table_offset + signature.cert_table_size if overlay_size else None
        )
    stamp = header.time_date_stamps
    own_sha256: str | None
    own_sha1: str | None
    try:
        own_sha256 = bytes(binary.authentihash(lief.PE.ALGORITHMS.SHA_256)).hex()
        own_sha1 = bytes(binary.authentihash(lief.PE.ALGORITHMS.SHA_1)).hex()
    except Exception:  # LIEF on a damaged image: no catalog match, nothing else lost
        own_sha256 = own_sha1 = None
    return PEFacts(
        machine=lieflazy.enum_name(header.machine),
        is_64=optional.magic == lief.PE.PE_TYPE.PE32_PLUS,
        is_dll=header.has_characteristic(lief.PE.Header.CHARACTERISTICS.DLL),
        subsystem=lieflazy.enum_name(optional.subsystem),
        timestamp=datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
        if stamp
        else None,
        entry_point_rva=entry,
        entry_section=entry_section,
        version=_version_strings(binary),
        imported_dlls=tuple(dlls[:MAX_NAMES]),
        imported_functions=len(functions),
        imports_sample=tuple(functions[:MAX_NAMES]),
        exports=len(exported),
        exports_sample=tuple(exported[:MAX_NAMES]),
        sections=tuple(sections),
        overlay_offset=overlay_offset,
        overlay_size=overlay_size,
        size=len(data),
        signature=signature,
        authentihash_sha256=own_sha256,
        authentihash_sha1=own_sha1,
        asar_integrity=_asar_integrity(binary),
    )


def _eol_keys(version: Mapping[str, str]) -> list[str]:
    keys: list[str] = []
    product = version.get("ProductName", "").strip().lower()
    company = version.get("CompanyName", "").strip().lower()
    for text in (product, f"{company} {product}".strip() if product else "", company):
        if not text:
            continue
        for variant in (
            text,
            re.sub(r"[^a-z0-9]+", "-", text).strip("-"),
            re.sub(r"[^a-z0-9]+", "_", text).strip("_"),
        ):
            if variant not in keys:
                keys.append(variant)
    return keys


def _eol_match(keys: list[str], eol: Mapping[str, str]) -> list[str]:
    """End-of-life keys for this product: exact matches of the name variants first, then
    products whose key starts a variant as a whole word ("x_trader" for "X_TRADER Pro 7")."""
    exact = [k for k in keys if k in eol]
    if exact:
        return exact
    prefixed = []
    for product in eol:
        if len(product) < 3:
            continue
        for key in keys:
            if key.startswith(product) and not key[len(product) : len(product) + 1].isalnum():
                prefixed.append(product)
                break
    return sorted(prefixed, key=len, reverse=True)


def _parse_day(text: str) -> datetime | None:
    try:
        return parse_time(text if "T" in text else f"{text}T00:00:00Z")
    except ValueError:
        return None


def findings_of(path: str, facts: PEFacts, ctx: AnalysisContext) -> tuple[Finding, ...]:
    """Judge PE facts. Kinds are catalogued in docs/analysers.md."""
    out: list[Finding] = []
    sig = facts.signature

    def add(kind: str, severity: Severity, message: str, **evidence: object) -> None:
        out.append(
            Finding(kind=kind, severity=severity, subject=path, message=message, evidence=evidence)
        )

    if sig is None or not sig.signed:
        add("pe.unsigned", Severity.INFO, "PE file carries no Authenticode signature",
            product=facts.version.get("ProductName"), company=facts.version.get("CompanyName"),
            reason="the security data directory is empty: no WIN_CERTIFICATE entry")  # fmt: skip
        if sig is not None and sig.errors:
            add("signature.invalid", Severity.HIGH, "certificate table is malformed",
                errors=list(sig.errors), reason="; ".join(sig.errors))  # fmt: skip
        return tuple(out)

    signer = sig.signer
    if sig.appended_size:
        marker = " with the FE ED FA CE marker" if sig.appended_has_feedface else ""
        verdict = (
            "the signature still verifies"
            if sig.verification == "OK"
            else f"signature verdict: {sig.verification}"
        )
        add(
            "signature.appended-data",
            Severity.CRITICAL
            if sig.appended_has_feedface or sig.verification == "OK"
            else Severity.HIGH,
            f"{sig.appended_size} bytes hidden in the certificate table after the PKCS#7 signature"
            f"{marker} (CVE-2013-3900 layout; {verdict})",
            size=sig.appended_size,
            offset=sig.appended_offset,
            entropy=sig.appended_entropy,
            feedface_marker=sig.appended_has_feedface,
            preview=sig.appended_preview,
            pkcs7_size=sig.pkcs7_size,
            cert_table_size=sig.cert_table_size,
            verification=sig.verification,
            signer=signer.subject if signer else None,
            reason=f"the PKCS#7 blob's DER length is {sig.pkcs7_size} bytes but its"
            f" WIN_CERTIFICATE entry holds {sig.appended_size} more bytes that are not padding",
        )
    if sig.overlay_after_table:
        add("pe.overlay-after-signature", Severity.MEDIUM,
            f"{sig.overlay_after_table} bytes after the certificate table (outside the signed image)",
            size=sig.overlay_after_table, offset=sig.cert_table_offset + sig.cert_table_size,
            reason="the file continues after the end the security data directory declares")  # fmt: skip
    out.extend(verdict_findings(path, sig, signers=ctx.signers, cert_serials=ctx.cert_serials))
    if not sig.parsed:
        return tuple(out)
    when_text = sig.effective_signing_time
    when = _parse_day(when_text) if when_text else None
    if when is not None and ctx.eol:
        for key in _eol_match(_eol_keys(facts.version), ctx.eol):
            eol_text = ctx.eol.get(key)
            eol = _parse_day(eol_text) if eol_text else None
            if eol is not None and when > eol:
                add("signature.after-end-of-life", Severity.HIGH,
                    f"signed {when_text} although {key!r} reached end of life on {eol_text}",
                    product=key, eol=eol_text, signing_time=when_text,
                    signer=signer.subject if signer else None,
                    reason=f"signing time {when_text} is after the end-of-life date {eol_text}"
                    f" recorded for {key!r} in the case")  # fmt: skip
                break
    return tuple(out)


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    return lieflazy.guarded(
        NAME, "PE", item.path,
        lambda: facts_of(item.data, ctx.trust_store_pem),
        lambda facts: findings_of(item.path, facts, ctx),
        "MZ/PE header present but the PE does not parse",
    )  # fmt: skip
