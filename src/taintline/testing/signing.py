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
) -> SigningIdentity:
    """Create a root CA, a code-signing certificate it issued, and a TSA certificate."""
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
        ExtendedKeyUsageOID.CODE_SIGNING,
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

    def write_key(path: Path, k: rsa.RSAPrivateKey) -> None:
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
    )


def sign_pe(
    pe: bytes,
    identity: SigningIdentity,
    *,
    signing_time: datetime | None = None,
    timestamp: bool = True,
    embed_ca: bool = True,
) -> bytes:
    """Authenticode-sign ``pe`` with osslsigncode (SHA-256), optionally with an RFC 3161
    timestamp from the built-in TSA; ``embed_ca=False`` leaves the CA out of the signature. Raises ``RuntimeError`` when osslsigncode is missing."""
    tool = osslsigncode_path()
    if tool is None:
        raise RuntimeError("osslsigncode is not installed")
    with tempfile.TemporaryDirectory(prefix="taintline-sign-") as tmp:
        src = Path(tmp) / "in.exe"
        dst = Path(tmp) / "out.exe"
        src.write_bytes(pe)
        cmd = [
            tool, "sign", "-certs", str(identity.chain_path if embed_ca else identity.cert_path), "-key", str(identity.key_path),
            "-h", "sha256", "-n", "taintline test", "-in", str(src), "-out", str(dst),
        ]  # fmt: skip
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
