"""PKCS#7 / CMS SignedData checks shared by every signature format (Authenticode in PE, MSI,
catalogs, Appx ``.p7x``, RFC 3161 timestamps).

asn1crypto parses, cryptography verifies. Neither offers "verify this SignerInfo" for
Authenticode-style SignedData (cryptography's PKCS#7 API only signs, and only the ``data``
content type), so :func:`verify_signer` is the few lines RFC 5652 section 5.4 prescribes: the
message-digest attribute must equal the hash of the content's value octets, and the signature
must verify over the DER SET OF the signed attributes.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def digest(algorithm: str, data: bytes) -> bytes:
    if algorithm not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm}")
    return hashlib.new(algorithm, data).digest()


def quiet_text(
    obj: x509.Certificate | x509.CertificateRevocationList, attr: str = "subject"
) -> str:
    """RFC 4514 text of a certificate's subject (or ``issuer``); real certificates carry
    over-long attributes that make cryptography warn when the name is read (and the tests turn
    warnings into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name: x509.Name = getattr(obj, attr)
        return name.rfc4514_string()


def certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    """The certificates of a SignedData that cryptography can read (hostile ones skipped)."""
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


def signer_cert(
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
    elif sid.name == "subject_key_identifier":
        wanted = sid.chosen.native
        for cert in certs:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except (x509.ExtensionNotFound, ValueError):
                continue
            if ski.value.digest == wanted:
                return cert
    return None


def content_octets(signed_data: cms.SignedData) -> bytes:
    """What the signer's message digest covers: the content's value octets, without its tag
    and length (RFC 5652 5.4; Authenticode hashes SpcIndirectDataContent the same way)."""
    content = signed_data["encap_content_info"]["content"]
    if content is None or isinstance(content, core.Void):
        return b""
    return bytes(content.contents or b"")


def verify_signer(
    signer_info: cms.SignerInfo, cert: x509.Certificate, content: bytes
) -> str | None:
    """``None`` when ``signer_info`` (made with ``cert``) signs ``content``; else why not."""
    algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
    if algorithm not in _HASHES:
        return f"unsupported digest algorithm {algorithm}"
    attrs = signer_info["signed_attrs"]
    if attrs is not None and len(attrs):
        claimed = next(
            (a["values"][0].native for a in attrs if a["type"].native == "message_digest"),
            None,
        )
        if claimed != digest(algorithm, content):
            return "the message digest does not match the signed content"
        # the signature covers the attributes as a DER SET OF (tag 0x31), not as [0] IMPLICIT
        signed = b"\x31" + attrs.dump()[1:]
    else:
        signed = content
    return verify_bytes(cert, signer_info, signed)


def verify_bytes(cert: x509.Certificate, signer_info: cms.SignerInfo, signed: bytes) -> str | None:
    algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
    hash_cls = _HASHES.get(algorithm)
    if hash_cls is None:
        return f"unsupported digest algorithm {algorithm}"
    signature = bytes(signer_info["signature"].native)
    try:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            sig_algo = signer_info["signature_algorithm"].signature_algo
            if sig_algo == "rsassa_pss":
                key.verify(
                    signature,
                    signed,
                    padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=padding.PSS.AUTO),
                    hash_cls(),
                )
            else:
                key.verify(signature, signed, padding.PKCS1v15(), hash_cls())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hash_cls()))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, signed, hash_cls())
        else:
            return f"unsupported public key type {type(key).__name__}"
    except InvalidSignature:
        return "the signer's signature does not verify"
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"the signer's signature cannot be checked: {exc}"
    return None
