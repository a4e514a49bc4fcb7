"""A throw-away code-signing PKI (made with ``cryptography``) and Authenticode signing of test
PEs through Debian's ``osslsigncode`` (tests skip when it is missing).

The CA, the code-signing certificate and the time-stamping authority (osslsigncode's built-in
TSA, so no network) live in a caller-given temporary folder and are never reused.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def osslsigncode_path() -> str | None:
    return shutil.which("osslsigncode")


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """Files of one throw-away PKI. ``ca_pem`` is what a test passes as the trust store."""

    folder: Path
    ca_pem: bytes
    cert_path: Path
    key_path: Path
    chain_path: Path  # signer + CA, what osslsigncode embeds
    tsa_cert_path: Path
    tsa_key_path: Path
    subject_cn: str
    serial_hex: str
    ca_key_path: Path | None = None


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_identity(
    folder: Path,
    *,
    subject_cn: str = "Example Trading Ltd",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    serial: int | None = None,
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CODE_SIGNING,
) -> SigningIdentity:
    """Create a root CA, a signing certificate it issued (for code signing unless ``eku``
    says otherwise), and a TSA certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Taintline Test Root CA (throw-away)", "taintline tests")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, eku: x509.ObjectIdentifier, serial_number: int, nb: datetime, na: datetime
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, cn))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(serial_number)
            .not_valid_before(nb)
            .not_valid_after(na)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([eku]), critical=eku == ExtendedKeyUsageOID.TIME_STAMPING
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    serial = serial or x509.random_serial_number()
    cert, key = leaf(
        subject_cn,
        eku,
        serial,
        not_before or now - timedelta(days=365),
        not_after or now + timedelta(days=365),
    )
    tsa_cert, tsa_key = leaf(
        "Taintline Test TSA",
        ExtendedKeyUsageOID.TIME_STAMPING,
        x509.random_serial_number(),
        now - timedelta(days=3000),
        now + timedelta(days=3000),
    )

    def write_key(path: Path, k: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    (folder / "ca.pem").write_bytes(_pem(ca_cert))
    (folder / "signer.pem").write_bytes(_pem(cert))
    (folder / "chain.pem").write_bytes(_pem(cert) + _pem(ca_cert))
    (folder / "tsa.pem").write_bytes(_pem(tsa_cert) + _pem(ca_cert))
    write_key(folder / "signer.key", key)
    write_key(folder / "tsa.key", tsa_key)
    write_key(folder / "ca.key", ca_key)
    return SigningIdentity(
        folder=folder,
        ca_pem=_pem(ca_cert),
        cert_path=folder / "signer.pem",
        key_path=folder / "signer.key",
        chain_path=folder / "chain.pem",
        tsa_cert_path=folder / "tsa.pem",
        tsa_key_path=folder / "tsa.key",
        subject_cn=subject_cn,
        serial_hex=format(serial, "x"),
        ca_key_path=folder / "ca.key",
    )


def sign_pe(
    pe: bytes,
    identity: SigningIdentity,
    *,
    signing_time: datetime | None = None,
    timestamp: bool = True,
    embed_ca: bool = True,
    suffix: str = ".exe",
    extra_args: tuple[str, ...] = (),
) -> bytes:
    """Authenticode-sign ``pe`` with osslsigncode (SHA-256), optionally with an RFC 3161
    timestamp from the built-in TSA; ``embed_ca=False`` leaves the CA out of the signature.
    ``suffix`` tells osslsigncode the format (``.msi``, ``.cat`` work too: see
    :func:`sign_file`). Raises ``RuntimeError`` when osslsigncode is missing."""
    tool = osslsigncode_path()
    if tool is None:
        raise RuntimeError("osslsigncode is not installed")
    with tempfile.TemporaryDirectory(prefix="taintline-sign-") as tmp:
        src = Path(tmp) / f"in{suffix}"
        dst = Path(tmp) / f"out{suffix}"
        src.write_bytes(pe)
        cmd = [
            tool, "sign", "-certs", str(identity.chain_path if embed_ca else identity.cert_path), "-key", str(identity.key_path),
            "-h", "sha256", "-n", "taintline test", "-in", str(src), "-out", str(dst),
        ]  # fmt: skip
        cmd += list(extra_args)
        if signing_time is not None:
            cmd += ["-time", str(int(signing_time.timestamp()))]
        if timestamp:
            cmd += [
                "-TSA-certs",
                str(identity.tsa_cert_path),
                "-TSA-key",
                str(identity.tsa_key_path),
            ]
            if signing_time is not None:
                cmd += ["-TSA-time", str(int(signing_time.timestamp()))]
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(
                f"osslsigncode failed: {proc.stderr.decode(errors='replace')[-500:]}"
            )
        return dst.read_bytes()


def sign_file(data: bytes, identity: SigningIdentity, suffix: str, **options: object) -> bytes:
    """Sign an MSI (``.msi``) or catalog (``.cat``) like :func:`sign_pe` signs a PE."""
    return sign_pe(data, identity, suffix=suffix, **options)  # type: ignore[arg-type]


def revocation_list(
    identity: SigningIdentity, revoked_at: datetime, serial_hex: str | None = None
) -> bytes:
    """A DER CRL from the identity's CA revoking its signing certificate at ``revoked_at``."""
    if identity.ca_key_path is None:
        raise ValueError("identity without a CA key")
    ca_key = serialization.load_pem_private_key(identity.ca_key_path.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(identity.ca_pem)
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(int(serial_hex or identity.serial_hex, 16))
        .revocation_date(revoked_at)
        .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        .build()
    )
    now = datetime.now(UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(min(now, revoked_at))
        .next_update(now + timedelta(days=30))
        .add_revoked_certificate(entry)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return crl.public_bytes(serialization.Encoding.DER)


def with_crl(signed_pe: bytes, crl_der: bytes) -> bytes:
    """Put ``crl_der`` into the ``crls`` of a signed PE's PKCS#7 (outside what the signer
    signs, as signing tools that embed revocation data do) and rewrite the certificate table."""
    import struct

    from asn1crypto import cms, crl

    from taintline.testing.pe import DIR_SECURITY, data_directory, set_data_directory

    offset, size = data_directory(signed_pe, DIR_SECURITY)
    dw_length = struct.unpack_from("<I", signed_pe, offset)[0]
    blob = signed_pe[offset + 8 : offset + dw_length]
    info = cms.ContentInfo.load(blob)
    signed = info["content"]
    signed["crls"] = cms.RevocationInfoChoices(
        [cms.RevocationInfoChoice(name="crl", value=crl.CertificateList.load(crl_der))]
    )
    new_blob = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump(force=True)
    entry = struct.pack("<IHH", 8 + len(new_blob), 0x0200, 0x0002) + new_blob
    entry += b"\0" * (-len(entry) % 8)
    entry = struct.pack("<I", len(entry)) + entry[4:]
    out = signed_pe[:offset] + entry + signed_pe[offset + size :]
    return set_data_directory(out, DIR_SECURITY, (offset, len(entry)))


#: SpcIndirectData types a catalog member's digest is made as (Authenticode hash of a PE, or
#: the flat hash of any other file)
SPC_PE_IMAGE_DATA = "1.3.6.1.4.1.311.2.1.15"
SPC_CAB_DATA = "1.3.6.1.4.1.311.2.1.25"


def catalog_bytes(members: dict[str, tuple[str, bytes]], *, algorithm: str = "sha256") -> bytes:
    """An unsigned catalog (``.cat``): a PKCS#7 SignedData with no signer whose content is a
    catalog CTL listing ``members`` (file name -> (SpcIndirectData type, digest)), in the shape
    makecat writes. Sign it with :func:`sign_file` (``.cat``)."""
    import os

    from asn1crypto import algos, cms, core

    from taintline.scan.ctl import (
        OID_CAT_NAMEVALUE,
        OID_CATALOG_LIST,
        OID_SPC_INDIRECT_DATA,
        CertificateTrustList,
        SpcIndirectDataContent,
        _NameValue,
    )

    subjects = []
    for name, (kind, digest) in members.items():
        indirect = SpcIndirectDataContent(
            {
                "data": {"type": kind, "value": core.Any.load(core.Null().dump())},
                "message_digest": {
                    "digest_algorithm": {"algorithm": algorithm},
                    "digest": digest,
                },
            }
        )
        name_value = _NameValue(
            {"tag": "File", "flags": 0x10010001, "value": (name + "\0").encode("utf-16-le")}
        )
        subjects.append(
            {
                "subject_identifier": (digest.hex().upper() + "\0").encode("utf-16-le"),
                "subject_attributes": [
                    {
                        "type": OID_CAT_NAMEVALUE,
                        "values": [core.Any.load(name_value.dump())],
                    },
                    {
                        "type": OID_SPC_INDIRECT_DATA,
                        "values": [core.Any.load(indirect.dump())],
                    },
                ],
            }
        )
    ctl = CertificateTrustList(
        {
            "subject_usage": [OID_CATALOG_LIST],
            "list_identifier": os.urandom(16),
            "this_update": {"utc_time": datetime.now(UTC).replace(microsecond=0)},
            "subject_algorithm": algos.DigestAlgorithm({"algorithm": "1.3.6.1.4.1.311.12.1.2"}),
            "trusted_subjects": subjects,
        }
    )
    # PKCS#7 v1.5 form: the CTL sits in [0] EXPLICIT directly (not in an OCTET STRING)
    body = ctl.dump()
    content = b"\xa0" + _der_length(len(body)) + body
    oid = core.ObjectIdentifier("1.3.6.1.4.1.311.10.1").dump()
    eci = b"\x30" + _der_length(len(oid) + len(content)) + oid + content
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": algorithm}],
            "encap_content_info": cms.ContentInfo.load(eci),
            "signer_infos": [],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
