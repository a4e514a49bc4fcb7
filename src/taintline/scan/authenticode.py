"""Authenticode: the PE certificate table, the PKCS#7 signature in it, and the verdict.

Library choice (checked on this machine, OpenSSL 3.0.19): signify 0.9 imports oscrypto 1.3.0,
whose libcrypto version regex fails against OpenSSL >= 3.0.10, so ``import signify.authenticode``
raises at import time on a fresh install. We do not depend on an unofficial oscrypto fork;
instead:

* LIEF (already our PE parser) parses the signature and checks it: the signer's signature over
  the authenticated attributes, the message digest, and the Authenticode digest (authentihash)
  against the SpcIndirectData digest (``Binary.verify_signature``).
* asn1crypto reads the attributes LIEF does not hand out as plain values (signing time, the
  RFC 3161 / PKCS#9 countersignature time and its signer).
* cryptography builds and checks the issuer chain against a trust store
  (``Certificate.verify_directly_issued_by``) and the certificate validity at signing time.
  Neither LIEF nor cryptography verifies Authenticode chains against a CA bundle (cryptography's
  X.509 verifier implements the Web PKI server/client profiles only), so the small chain walk
  below is ours.
* The check for data hidden after the PKCS#7 blob inside the certificate table (CVE-2013-3900,
  3CX's d3dcompiler_47.dll) is ours too: no Authenticode library flags it. We compare the DER
  length of the SignedData with WIN_CERTIFICATE.dwLength minus its 8-byte header, allowing up to
  7 zero bytes of alignment padding.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import certifi
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from taintline.scan.measure import entropy, preview

FEEDFACE = b"\xfe\xed\xfa\xce"
WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002
MAX_CHAIN = 10
_DER = Encoding.DER


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
    signing_time: str | None = None
    timestamp_time: str | None = None
    timestamp_signer: str | None = None
    valid_at_signing: bool | None = None
    nested_signatures: int = 0
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


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cert_facts(cert: x509.Certificate) -> CertFacts:
    return CertFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        sha1=hashlib.sha1(cert.public_bytes(_DER)).hexdigest(),
        not_before=_iso(cert.not_valid_before_utc) or "",
        not_after=_iso(cert.not_valid_after_utc) or "",
        common_name=_name_attr(cert.subject, NameOID.COMMON_NAME),
        organization=_name_attr(cert.subject, NameOID.ORGANIZATION_NAME),
    )


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@lru_cache(maxsize=4)
def trust_roots(pem: bytes | None) -> dict[bytes, tuple[x509.Certificate, ...]]:
    """Trust anchors by subject DER; ``None`` means certifi's Mozilla roots."""
    if pem is None:
        with open(certifi.where(), "rb") as fh:  # noqa: PTH123
            pem = fh.read()
    roots: dict[bytes, list[x509.Certificate]] = {}
    try:
        with warnings.catch_warnings():
            # certifi ships a root with a negative serial; cryptography warns about it
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    for cert in certs:
        roots.setdefault(cert.subject.public_bytes(), []).append(cert)
    return {k: tuple(v) for k, v in roots.items()}


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def build_chain(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], trust_pem: bytes | None
) -> tuple[list[x509.Certificate], bool, str | None]:
    """Walk from ``leaf`` up through ``pool`` (the certificates in the signature) to an anchor
    of the trust store. Returns (chain, trusted, reason when not trusted)."""
    roots = trust_roots(trust_pem)
    chain = [leaf]
    current = leaf
    for _ in range(MAX_CHAIN):
        for root in roots.get(current.issuer.public_bytes(), ()):
            if _issued_by(current, root):
                if root != current:
                    chain.append(root)
                return chain, True, None
        if current.issuer == current.subject:
            return chain, False, "self-signed certificate not in the trust store"
        nxt = next(
            (
                c
                for c in pool
                if c != current and c.subject == current.issuer and _issued_by(current, c)
            ),
            None,
        )
        if nxt is None:
            return chain, False, f"issuer not found: {current.issuer.rfc4514_string()}"
        chain.append(nxt)
        current = nxt
    return chain, False, "chain too long"


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


def _signer_cert(
    signer_info: cms.SignerInfo, certs: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    sid = signer_info["sid"]
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        issuer_der = sid.chosen["issuer"].dump()
        for cert in certs:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer_der:
                return cert
        for cert in certs:
            if cert.serial_number == serial:
                return cert
    return None


def _certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for choice in signed_data["certificates"] or ():
        if choice.name != "certificate":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # odd serials etc.: hostile input is normal
                cert = x509.load_der_x509_certificate(choice.chosen.dump())
                # cryptography decodes fields lazily: touch them now so a broken certificate
                # is dropped here instead of failing later in the chain walk
                cert.subject.rfc4514_string()
                cert.issuer.rfc4514_string()
                _ = (cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc)
        except Exception:  # noqa: S112  # hostile DER raises many error types; skip the cert
            continue
        out.append(cert)
    return out


def _countersignature(
    signer_info: cms.SignerInfo, certs: Sequence[x509.Certificate]
) -> tuple[datetime | None, str | None, int]:
    """(time, signer subject, nested signature count) from the unsigned attributes."""
    when: datetime | None = None
    who: str | None = None
    nested = 0
    for attr in signer_info["unsigned_attrs"] or ():
        kind = attr["type"].native
        for value in attr["values"]:
            if (
                kind == "microsoft_time_stamp_token"
                or attr["type"].dotted == "1.2.840.113549.1.9.16.2.14"
            ):
                token = value["content"]
                tst = tsp.TSTInfo.load(token["encap_content_info"]["content"].contents)
                when = tst["gen_time"].native
                tsa_certs = _certificates(token)
                infos = token["signer_infos"]
                if infos:
                    cert = _signer_cert(infos[0], tsa_certs)
                    who = cert.subject.rfc4514_string() if cert else None
            elif kind == "counter_signature":
                for inner in value["signed_attrs"] or ():
                    if inner["type"].native == "signing_time":
                        when = inner["values"][0].native
                cert = _signer_cert(value, certs)
                who = cert.subject.rfc4514_string() if cert else None
            elif (
                kind == "microsoft_nested_signature"
                or attr["type"].dotted == "1.3.6.1.4.1.311.2.4.1"
            ):
                nested += 1
    return when, who, nested


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
        "digest_matches": None if lief_flags is None else "BAD_DIGEST" not in lief_flags,
        "authentihash_sha256": authentihash_sha256,
    }
    if table.pkcs7 is None:
        return AuthenticodeFacts(**base, errors=tuple(errors))
    try:
        info = cms.ContentInfo.load(table.pkcs7)
        signed_data = info["content"]
        if info["content_type"].native != "signed_data":
            raise ValueError(f"content type {info['content_type'].native}, not signed data")
        certs = _certificates(signed_data)
        signer_infos = signed_data["signer_infos"]
        if not signer_infos:
            raise ValueError("no signer info")
        signer_info = signer_infos[0]
        algorithms = signed_data["digest_algorithms"]
        digest_algorithm = algorithms[0]["algorithm"].native if algorithms else None
        signing_time: datetime | None = None
        for attr in signer_info["signed_attrs"] or ():
            if attr["type"].native == "signing_time":
                signing_time = attr["values"][0].native
        ts_time, ts_signer, nested = _countersignature(signer_info, certs)
        leaf = _signer_cert(signer_info, certs)
    except Exception as exc:  # asn1crypto/cryptography on hostile DER: many error types
        errors.append(f"PKCS#7 signature does not parse: {type(exc).__name__}: {exc}")
        return AuthenticodeFacts(**base, errors=tuple(errors))

    signer = chain_facts = None
    trusted: bool | None = None
    chain_error: str | None = None
    valid_at: bool | None = None
    try:
        if leaf is None:
            chain_error = "signer certificate not in the signature"
        else:
            signer = cert_facts(leaf)
            chain, trusted, chain_error = build_chain(leaf, certs, trust_pem)
            chain_facts = tuple(cert_facts(c) for c in chain)
            moment = ts_time or signing_time
            if moment is not None:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                valid_at = leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc
    except Exception as exc:  # cryptography parses certificate fields lazily: hostile DER
        errors.append(f"certificate does not parse: {type(exc).__name__}: {exc}")
        return AuthenticodeFacts(**base, errors=tuple(errors))
    return AuthenticodeFacts(
        **base,
        parsed=True,
        digest_algorithm=digest_algorithm,
        signer=signer,
        chain=chain_facts or (),
        chain_trusted=trusted,
        chain_error=chain_error,
        signing_time=_iso(signing_time),
        timestamp_time=_iso(ts_time),
        timestamp_signer=ts_signer,
        valid_at_signing=valid_at,
        nested_signatures=nested,
        errors=tuple(errors),
    )
