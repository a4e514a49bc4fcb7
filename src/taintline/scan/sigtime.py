"""When an Authenticode-style signature was made, and whether it was revoked: the RFC 3161 or
PKCS#9 countersignature (its own signature, message imprint and time-stamping chain verified
before its time is trusted) and the CRLs a signature carries.

Split from :mod:`taintline.scan.authenticode`, which judges the whole signature with these;
the Mach-O analyser uses :func:`countersignature` for its CMS signatures too.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509

from taintline.model import utc
from taintline.scan import trust
from taintline.scan.cms import (
    certificates,
    content_octets,
    digest,
    quiet_text,
    signer_cert,
    verify_signer,
)

OID_MS_TIMESTAMP = "1.3.6.1.4.1.311.3.3.1"
OID_NESTED_SIGNATURE = "1.3.6.1.4.1.311.2.4.1"


def maybe_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def iso_z(value: datetime | None) -> str | None:
    """``value`` in UTC as ISO 8601 with a ``Z``; naive times are taken as UTC."""
    if value is None:
        return None
    return utc(value).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Timestamp:
    time: datetime | None = None
    signer: str | None = None
    verified: bool | None = None
    error: str | None = None


def _rfc3161(
    value: Any, outer: cms.SignerInfo, pool: Sequence[x509.Certificate], store: trust.TrustStore
) -> Timestamp:
    token = value if isinstance(value, cms.ContentInfo) else cms.ContentInfo.load(value.dump())
    signed = token["content"]
    tst = tsp.TSTInfo.load(signed["encap_content_info"]["content"].contents)
    when = maybe_utc(tst["gen_time"].native)
    tsa_certs = certificates(signed)
    infos = signed["signer_infos"]
    if not infos:
        return Timestamp(when, None, False, "timestamp token has no signer")
    cert = signer_cert(infos[0], tsa_certs)
    if cert is None:
        return Timestamp(when, None, False, "timestamp signer certificate not in the token")
    who = quiet_text(cert)
    imprint = tst["message_imprint"]
    algorithm = str(imprint["hash_algorithm"]["algorithm"].native)
    try:
        expected = digest(algorithm, bytes(outer["signature"].native))
    except ValueError as exc:
        return Timestamp(when, who, False, str(exc))
    if imprint["hashed_message"].native != expected:
        return Timestamp(when, who, False, "timestamp does not cover this signature")
    problem = verify_signer(infos[0], cert, content_octets(signed))
    if problem is not None:
        return Timestamp(when, who, False, f"timestamp: {problem}")
    return _chain_ok(cert, [*tsa_certs, *pool], store, when, who)


def _pkcs9(
    value: Any, outer: cms.SignerInfo, pool: Sequence[x509.Certificate], store: trust.TrustStore
) -> Timestamp:
    counter = value if isinstance(value, cms.SignerInfo) else cms.SignerInfo.load(value.dump())
    when: datetime | None = None
    for inner in counter["signed_attrs"] or ():
        if inner["type"].native == "signing_time":
            when = maybe_utc(inner["values"][0].native)
    cert = signer_cert(counter, pool)
    if cert is None:
        return Timestamp(when, None, False, "countersigner certificate not in the signature")
    who = quiet_text(cert)
    problem = verify_signer(counter, cert, bytes(outer["signature"].native))
    if problem is not None:
        return Timestamp(when, who, False, f"countersignature: {problem}")
    return _chain_ok(cert, pool, store, when, who)


def _chain_ok(
    cert: x509.Certificate,
    pool: Sequence[x509.Certificate],
    store: trust.TrustStore,
    when: datetime | None,
    who: str,
) -> Timestamp:
    if when is None:
        return Timestamp(None, who, False, "timestamp has no time")
    verdict = trust.build_chain(cert, pool, store, purpose=trust.OID_TIME_STAMPING, when=when)
    if not verdict.trusted:
        return Timestamp(when, who, False, f"time-stamping chain: {verdict.reason}")
    return Timestamp(when, who, True, None)


def countersignature(
    signer_info: cms.SignerInfo, pool: Sequence[x509.Certificate], store: trust.TrustStore
) -> tuple[Timestamp | None, int]:
    """The first countersignature (RFC 3161 token or PKCS#9) and the nested signature count."""
    found: Timestamp | None = None
    nested = 0
    for attr in signer_info["unsigned_attrs"] or ():
        dotted = attr["type"].dotted
        kind = attr["type"].native
        for value in attr["values"]:
            if kind == "microsoft_nested_signature" or dotted == OID_NESTED_SIGNATURE:
                nested += 1
                continue
            if found is not None and found.verified:
                continue
            try:
                if kind == "microsoft_time_stamp_token" or dotted in (
                    OID_MS_TIMESTAMP,
                    "1.2.840.113549.1.9.16.2.14",
                ):
                    found = _rfc3161(value, signer_info, pool, store)
                elif kind == "counter_signature":
                    found = _pkcs9(value, signer_info, pool, store)
            except Exception as exc:  # hostile DER inside the attribute: many error types
                found = Timestamp(None, None, False, f"timestamp does not parse: {exc}")
    return found, nested


def revocation(
    signed_data: cms.SignedData, chain: Sequence[x509.Certificate], when: datetime | None
) -> tuple[dict[str, str] | None, int]:
    """A certificate of ``chain`` revoked by a CRL carried in the signature (signed by its
    issuer) on or before ``when`` (the trusted signing time; ``None``: revoked at any time
    counts). Returns (the revocation, number of CRLs carried)."""
    crls = [c for c in signed_data["crls"] or () if c.name == "crl"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # over-long name attributes in real certificates
        return _revoked(crls, chain, when), len(crls)


def _revoked(
    crls: Sequence[Any], chain: Sequence[x509.Certificate], when: datetime | None
) -> dict[str, str] | None:
    for choice in crls:
        try:
            crl = x509.load_der_x509_crl(choice.chosen.dump())
            for cert in chain:
                entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                if entry is None or crl.issuer != cert.issuer:
                    continue
                issuer = next((c for c in chain if c.subject == crl.issuer), None)
                if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                    continue
                date = entry.revocation_date_utc
                if when is not None and date > when:
                    continue  # revoked after the trusted signing time: the signature stands
                reason = ""
                try:
                    ext = entry.extensions.get_extension_for_class(x509.CRLReason)
                    reason = str(ext.value.reason.value)
                except (x509.ExtensionNotFound, ValueError):
                    pass
                return {
                    "serial": format(cert.serial_number, "x"),
                    "subject": quiet_text(cert),
                    "date": iso_z(date) or "",
                    "reason": reason,
                    "crl_issuer": quiet_text(crl, "issuer"),
                }
        except Exception:  # noqa: S112  # a hostile CRL is skipped, not fatal
            continue
    return None
