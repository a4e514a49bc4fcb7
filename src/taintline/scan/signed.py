"""Signatures outside PE files, with the same verdict vocabulary as Authenticode in PE:

* **MSI** (any OLE compound file with a ``\\x05DigitalSignature`` stream): the PKCS#7 in that
  stream, and the file's own digest recomputed the way Windows does: every stream's content in
  the order of their UTF-16 names (sub-storages recursively), then the storage's CLSID; the
  signature streams themselves left out. With ``\\x05MsiDigitalSignatureEx`` (the "extended"
  signature) its content, a hash of every entry's metadata (names, sizes, state bits, times,
  CLSIDs), is checked against the file and goes first into the digest.
* **Catalogs** (``.cat``: a PKCS#7 whose content is a CTL of member hashes): the signature over
  the member list, and the members themselves (file name, SpcIndirectData digest: the
  Authenticode hash of a PE, the flat hash of other files). The bundle analyser
  :func:`analyse_bundle` recognises the files scanned with a catalog that vouches for them.
* **Appx ``.p7x``** (``PKCX`` + PKCS#7, the ``AppxSignature.p7x`` of a package): the
  signature and its chain. The package digests it signs (block map, content types, central
  directory) are reported, not recomputed.

No library does these (signify covers PE and catalogs, but cannot be imported here: see
:mod:`taintline.scan.authenticode`); olefile reads the compound file, asn1crypto and
cryptography the rest. The judgement is :func:`taintline.scan.authenticode.judge_pkcs7`.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taintline.model import Finding, Severity
from taintline.scan.authenticode import AuthenticodeFacts, judge_pkcs7, verdict_findings
from taintline.scan.interface import (
    AnalysisContext,
    AnalysisResult,
    AppliesTo,
    BundleMember,
    FileItem,
)

NAME = "signed"

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
P7X_MAGIC = b"PKCX"
_CTL_OID_DER = bytes.fromhex("06092b0601040182370a01")  # 1.3.6.1.4.1.311.10.1
#: applies() needs an OLE or PKCX header or a DER SEQUENCE (0x30) (see
#: :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(first_bytes=frozenset({OLE_MAGIC[:1], P7X_MAGIC[:1], b"\x30"}))
DIGITAL_SIGNATURE = "\x05DigitalSignature"
DIGITAL_SIGNATURE_EX = "\x05MsiDigitalSignatureEx"
MAX_SIGNATURE = 16 * 1024 * 1024
MAX_MEMBERS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class CatalogMember:
    name: str | None
    algorithm: str
    digest: str  # hex


@dataclass(frozen=True, slots=True)
class SignedFileFacts:
    format: str  # msi | catalog | p7x
    signature: AuthenticodeFacts | None
    #: MSI: MsiDigitalSignatureEx present, and whether it matches the file's metadata
    extended_signature: bool = False
    extended_matches: bool | None = None
    members: tuple[CatalogMember, ...] = ()
    member_count: int = 0
    errors: tuple[str, ...] = ()


def applies(item: FileItem) -> bool:
    data = item.data
    if data[:8] == OLE_MAGIC or data[:4] == P7X_MAGIC:
        return True
    return data[:1] == b"\x30" and _CTL_OID_DER in data[:80]


# -- MSI -----------------------------------------------------------------------------------


def _clsid(entry: Any) -> bytes:
    return uuid.UUID(entry.clsid).bytes_le if entry.clsid else b"\0" * 16


def _name_key(entry: Any) -> bytes:
    # Windows orders the entries by their UTF-16LE name bytes, a shorter prefix first
    return str(entry.name).encode("utf-16-le")


def _hash_content(ole: Any, entry: Any, path: list[str], h: Any, root: bool) -> None:
    for child in sorted(entry.kids, key=_name_key):
        if root and child.name in (DIGITAL_SIGNATURE, DIGITAL_SIGNATURE_EX):
            continue
        if child.entry_type == 2:  # stream
            if child.size:
                h.update(ole.openstream([*path, child.name]).read())
        elif child.entry_type == 1:  # storage
            _hash_content(ole, child, [*path, child.name], h, False)
    h.update(_clsid(entry))


def _metadata(entry: Any, h: Any, root: bool) -> None:
    if not root:
        h.update(str(entry.name).encode("utf-16-le"))
    if entry.entry_type == 2:
        h.update(struct.pack("<I", entry.size & 0xFFFFFFFF))
    else:
        h.update(_clsid(entry))
    h.update(struct.pack("<I", entry.dwUserFlags & 0xFFFFFFFF))
    if not root:
        h.update(struct.pack("<QQ", entry.createTime or 0, entry.modifyTime or 0))


def _hash_metadata(entry: Any, h: Any, root: bool) -> None:
    _metadata(entry, h, root)
    for child in sorted(entry.kids, key=_name_key):
        if root and child.name in (DIGITAL_SIGNATURE, DIGITAL_SIGNATURE_EX):
            continue
        if child.entry_type == 2:
            _metadata(child, h, False)
        elif child.entry_type == 1:
            _hash_metadata(child, h, False)


def _msi(data: bytes, ctx: AnalysisContext) -> SignedFileFacts | None:
    import olefile

    try:
        ole = olefile.OleFileIO(data)
    except Exception:  # not a compound file olefile can read: the container reader says so
        return None
    with ole:
        if not ole.exists(DIGITAL_SIGNATURE):
            return None
        if ole.get_size(DIGITAL_SIGNATURE) > MAX_SIGNATURE:
            return SignedFileFacts("msi", None, errors=("signature stream too large",))
        pkcs7 = ole.openstream(DIGITAL_SIGNATURE).read()
        extended = ole.exists(DIGITAL_SIGNATURE_EX)
        ex_content = ole.openstream(DIGITAL_SIGNATURE_EX).read() if extended else b""
        ex_matches: list[bool] = []

        def file_digest(algorithm: str) -> bytes | None:
            h = hashlib.new(algorithm)
            if extended:
                meta = hashlib.new(algorithm)
                _hash_metadata(ole.root, meta, True)
                ex_matches.append(meta.digest() == ex_content)
                h.update(ex_content)
            _hash_content(ole, ole.root, [], h, True)
            return h.digest()

        signature = _judge(pkcs7, ctx, file_digest)
    return SignedFileFacts(
        "msi",
        signature,
        extended_signature=extended,
        extended_matches=ex_matches[0] if ex_matches else None,
    )


def _judge(pkcs7: bytes, ctx: AnalysisContext, file_digest: Any = None) -> AuthenticodeFacts:
    base: dict[str, Any] = {
        "cert_table_offset": 0,
        "cert_table_size": len(pkcs7),
        "entries": 1,
        "pkcs7_size": len(pkcs7),
    }
    try:
        fields, errors = judge_pkcs7(pkcs7, ctx.trust_store_pem, file_digest=file_digest)
    except Exception as exc:  # hostile DER: asn1crypto/cryptography raise many types
        return AuthenticodeFacts(
            **base, errors=(f"PKCS#7 signature does not parse: {type(exc).__name__}: {exc}",)
        )
    return AuthenticodeFacts(**base, **fields, errors=tuple(errors))


# -- catalogs and p7x ----------------------------------------------------------------------


def _catalog(data: bytes, ctx: AnalysisContext) -> SignedFileFacts | None:
    from taintline.scan.ctl import OID_CATALOG_LIST, member_digests, member_name, read_ctl

    try:
        ctl = read_ctl(data)
    except Exception:  # not a PKCS#7 we can read: not a catalog
        return None
    if ctl is None or OID_CATALOG_LIST not in ctl.usage:
        return None
    members: list[CatalogMember] = []
    for subject in ctl.subjects:
        name = member_name(subject)
        for algorithm, digest in member_digests(subject):
            if len(members) < MAX_MEMBERS_KEPT:
                members.append(CatalogMember(name, algorithm, digest.hex()))
    return SignedFileFacts(
        "catalog",
        _judge(data, ctx),
        members=tuple(members),
        member_count=len(ctl.subjects),
    )


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    data = item.data
    facts: SignedFileFacts | None
    if data[:8] == OLE_MAGIC:
        facts = _msi(data, ctx)
    elif data[:4] == P7X_MAGIC:
        facts = SignedFileFacts("p7x", _judge(data[4:], ctx))
    else:
        facts = _catalog(data, ctx)
    if facts is None:
        return AnalysisResult(NAME, None, ())
    return AnalysisResult(NAME, facts, findings_of(item.path, facts, ctx))


def findings_of(path: str, facts: SignedFileFacts, ctx: AnalysisContext) -> tuple[Finding, ...]:
    what = {"msi": "MSI signature", "catalog": "catalog signature", "p7x": "Appx signature"}[
        facts.format
    ]
    out: list[Finding] = []
    if facts.signature is None:
        out.append(Finding("signature.invalid", Severity.HIGH, path, f"{what} cannot be read",
                           evidence={"reason": "; ".join(facts.errors)}))  # fmt: skip
        return tuple(out)
    out.extend(
        verdict_findings(
            path, facts.signature, what=what, signers=ctx.signers, cert_serials=ctx.cert_serials
        )
    )
    if facts.extended_matches is False:
        out.append(
            Finding(
                "signature.digest-mismatch",
                Severity.HIGH,
                path,
                "MsiDigitalSignatureEx does not match the file's metadata: entries renamed,"
                " resized or re-dated after signing",
                evidence={
                    "reason": "the hash of the entries' names, sizes, state bits and"
                    " times differs from the MsiDigitalSignatureEx stream",
                    "verdict": "tampered",
                },
            )
        )
    return tuple(out)


# -- catalog members recognised in a bundle --------------------------------------------------


def _get(record: Any, name: str, default: Any = None) -> Any:
    if record is None:
        return default
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def analyse_bundle(
    root: str, members: Sequence[BundleMember], ctx: AnalysisContext
) -> tuple[Finding, ...]:
    """Files scanned together with a catalog that lists their hash: catalog-signed."""
    catalogs = []
    for m in members:
        facts = m.facts.get(NAME)
        if _get(facts, "format") == "catalog":
            catalogs.append((m, facts))
    if not catalogs:
        return ()
    index: dict[tuple[str, str], tuple[BundleMember, Any, str | None]] = {}
    for m, facts in catalogs:
        for member in _get(facts, "members", ()) or ():
            key = (str(_get(member, "algorithm")), str(_get(member, "digest")).lower())
            index.setdefault(key, (m, facts, _get(member, "name")))
    out: list[Finding] = []
    for m in members:
        if _get(m.facts.get(NAME), "format") == "catalog":
            continue
        pe = m.facts.get("pe")
        keys = [("sha256", m.sha256.lower())]
        if pe is not None:
            keys = [
                ("sha256", str(_get(pe, "authentihash_sha256") or "")),
                ("sha1", str(_get(pe, "authentihash_sha1") or "")),
                *keys,
            ]
        hit = next((index[k] for k in keys if k in index), None)
        if hit is None:
            continue
        catalog, facts, listed_as = hit
        sig = _get(facts, "signature")
        verdict = _get(sig, "verdict")
        signer = _get(_get(sig, "signer"), "subject")
        out.append(
            Finding(
                "signature.catalog-signed",
                Severity.INFO,
                m.path,
                f"vouched for by catalog {catalog.name} (verdict {verdict}, signer {signer})",
                evidence={
                    "catalog": catalog.path,
                    "listed_as": listed_as,
                    "verdict": verdict,
                    "signer": signer,
                    "reason": "the file's Authenticode or flat hash is a member of the catalog",
                },
            )
        )
    return tuple(out)
