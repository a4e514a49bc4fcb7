"""Minimal Mach-O files (thin and fat/universal) made from bytes: a ``__TEXT`` segment with a
``ret``, LC_MAIN, LC_LOAD_DYLIB commands, and optionally an LC_CODE_SIGNATURE pointing at a
SuperBlob with a CodeDirectory (ad-hoc, or with a CMS signature from a throw-away
"Developer ID Application" certificate)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

MH_MAGIC_64 = 0xFEEDFACF
CPU_X86_64 = 0x01000007
CPU_ARM64 = 0x0100000C
MH_EXECUTE = 2
MH_DYLIB = 6
LC_SEGMENT_64 = 0x19
LC_LOAD_DYLIB = 0x0C
LC_ID_DYLIB = 0x0D
LC_CODE_SIGNATURE = 0x1D
LC_MAIN = 0x80000028
CS_ADHOC = 0x2
CS_RUNTIME = 0x10000
PAGE = 0x1000


#: Apple's marker extensions on leaf certificates (Apple PKI certificate policy)
OID_APPLE_DEVELOPER_ID_APPLICATION = "1.2.840.113635.100.6.1.13"
OID_APPLE_SOFTWARE_SIGNING = "1.2.840.113635.100.6.1.2"


@dataclass(frozen=True, slots=True)
class DeveloperId:
    """A throw-away signing identity shaped like Apple's: a root (stand-in for Apple Root CA,
    trusted by a test through ``--ca-bundle``), an intermediate and a leaf that reads like
    ``Developer ID Application: 3CX (33CF4654HL)`` with Apple's Developer ID marker."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    team_id: str
    intermediate: x509.Certificate | None = None
    root: x509.Certificate | None = None

    @property
    def root_pem(self) -> bytes:
        assert self.root is not None
        return self.root.public_bytes(serialization.Encoding.PEM)


def _ca(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None,
        issuer_key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:  # fmt: skip
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "taintline tests")])  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key or key, hashes.SHA256())
    )


def make_developer_id(
    name: str = "Example Corp",
    team_id: str = "EXAMPLE123",
    *,
    marker: str = OID_APPLE_DEVELOPER_ID_APPLICATION,
    self_signed: bool = False,
) -> DeveloperId:
    """``self_signed=True``: an impostor certificate no root vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    cn = f"Developer ID Application: {name} ({team_id})"
    if marker == OID_APPLE_SOFTWARE_SIGNING:
        cn = "Software Signing"
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        ]
    )
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca("Taintline Test Apple-like Root CA (throw-away)", root_key)
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = _ca(
        "Taintline Test Developer ID Certification Authority", mid_key, root.subject, root_key
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else mid.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=True
        )
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(marker), b"\x05\x00"),
            critical=False,
        )
    )
    cert = builder.sign(key if self_signed else mid_key, hashes.SHA256())
    if self_signed:
        return DeveloperId(cert, key, team_id)
    return DeveloperId(cert, key, team_id, mid, root)


def _lc_dylib(name: str, cmd: int = LC_LOAD_DYLIB) -> bytes:
    raw = name.encode() + b"\0"
    size = (24 + len(raw) + 7) // 8 * 8
    return struct.pack("<IIIIII", cmd, size, 24, 2, 0x10000, 0x10000) + raw.ljust(size - 24, b"\0")


def _segment(
    name: str,
    vmaddr: int,
    vmsize: int,
    fileoff: int,
    filesize: int,
    sections: bytes = b"",
    nsects: int = 0,
) -> bytes:
    return (
        struct.pack(
            "<II16sQQQQIIII",
            LC_SEGMENT_64,
            72 + len(sections),
            name.encode(),
            vmaddr,
            vmsize,
            fileoff,
            filesize,
            7,
            5,
            nsects,
            0,
        )
        + sections
    )


def _code_directory(code: bytes, identifier: str, team_id: str | None, flags: int) -> bytes:
    ident = identifier.encode() + b"\0"
    team = (team_id.encode() + b"\0") if team_id else b""
    header_len = 88
    ident_off = header_len
    team_off = ident_off + len(ident) if team else 0
    n_special = 2
    hash_off = header_len + len(ident) + len(team) + 32 * n_special
    pages = [code[i : i + PAGE] for i in range(0, len(code), PAGE)]
    hashes_blob = b"\0" * 32 * n_special + b"".join(hashlib.sha256(p).digest() for p in pages)
    length = header_len + len(ident) + len(team) + len(hashes_blob)
    header = struct.pack(
        ">IIIIIIIIIBBBBIIIIQQQQ",
        0xFADE0C02, length, 0x20400, flags, hash_off, ident_off, n_special, len(pages), len(code),
        32, 2, 0, 12, 0, 0, team_off, 0, 0, 0, len(code), 1,
    )  # fmt: skip
    assert len(header) == header_len
    return header + ident + team + hashes_blob


def _superblob(code: bytes, identifier: str, developer: DeveloperId | None, flags: int) -> bytes:
    cd = _code_directory(code, identifier, developer.team_id if developer else None, flags)
    requirements = struct.pack(">III", 0xFADE0C01, 12, 0)
    blobs: list[tuple[int, bytes]] = [(0, cd), (2, requirements)]
    if developer is not None:
        cms = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(cd)
            .add_signer(developer.cert, developer.key, hashes.SHA256())
            .add_certificate(developer.intermediate or developer.cert)
            .sign(
                serialization.Encoding.DER,
                [
                    pkcs7.PKCS7Options.DetachedSignature,
                    pkcs7.PKCS7Options.NoCapabilities,
                    pkcs7.PKCS7Options.Binary,  # sign the bytes, not a text canonical form
                ],
            )
        )
        blobs.append((0x10000, struct.pack(">II", 0xFADE0B01, 8 + len(cms)) + cms))
    index_len = 12 + 8 * len(blobs)
    offset = index_len
    index = b""
    body = b""
    for slot, blob in blobs:
        index += struct.pack(">II", slot, offset)
        body += blob
        offset += len(blob)
    return struct.pack(">III", 0xFADE0CC0, index_len + len(body), len(blobs)) + index + body


#: Bytes reserved beyond the measured signature (a DER ECDSA signature varies by up to 2-3
#: bytes between signings; the CMS lengths in its headers by as much again).
SIGNATURE_SLACK = 64


def thin(
    *,
    cpu: int = CPU_ARM64,
    dylibs: Sequence[str] = ("/usr/lib/libSystem.B.dylib",),
    signature: str | None = None,  # None, "adhoc", "developer-id"
    developer: DeveloperId | None = None,
    identifier: str = "com.example.app",
    filetype: int = MH_EXECUTE,
    install_name: str | None = None,
) -> bytes:
    """One Mach-O 64-bit slice. The ``__TEXT`` segment spans the first page (headers + code).
    ``install_name`` adds LC_ID_DYLIB (a dylib's own name, e.g. the absolute build path real
    ``.jnilib`` files carry)."""
    code = b"\xc0\x03\x5f\xd6" if cpu == CPU_ARM64 else b"\xc3"
    commands = [_lc_dylib(install_name, LC_ID_DYLIB)] if install_name else []
    commands += [_lc_dylib(d) for d in dylibs]
    commands.append(struct.pack("<IIQQ", LC_MAIN, 24, 0x800, 0))
    signed = signature is not None
    # sizes first, then offsets (load commands are fixed size once counted)
    text_section_len = 80
    n_cmds = 1 + len(commands) + (2 if signed else 0)
    cmds_len = 72 + text_section_len + sum(len(c) for c in commands) + ((72 + 16) if signed else 0)
    text_size = PAGE
    sig_off = text_size
    section = struct.pack(
        "<16s16sQQIIIIIIII",
        b"__text",
        b"__TEXT",
        0x100000000 + 0x800,
        len(code),
        0x800,
        2,
        0,
        0,
        0x80000400,
        0,
        0,
        0,
    )
    seg_text = _segment("__TEXT", 0x100000000, text_size, 0, text_size, section, 1)
    body_cmds = seg_text + b"".join(commands)
    flags = 0x00200085  # NOUNDEFS | DYLDLINK | TWOLEVEL | PIE
    header = struct.pack(
        "<IIIIIIII",
        MH_MAGIC_64,
        cpu,
        0 if cpu == CPU_ARM64 else 3,
        filetype,
        n_cmds,
        cmds_len,
        flags,
        0,
    )
    if not signed:
        image = header + body_cmds
        image = image.ljust(0x800, b"\0") + code
        return image.ljust(text_size, b"\0")
    # The blob covers the bytes before it, which hold its size (LC_CODE_SIGNATURE, the
    # __LINKEDIT segment): measure it once, then sign for good with room to spare, as
    # codesign does. An ECDSA signature's DER length varies by a few bytes from one signing to
    # the next, so the second blob may be longer than the first: without the slack it
    # overflowed its declared size about 1 time in 12 (the analyser rightly called that
    # "blob truncated" / "CMS does not parse").
    sig_len = 0
    blob = b""
    for attempt in range(2):
        linkedit = _segment("__LINKEDIT", 0x100000000 + text_size, PAGE, sig_off, sig_len)
        lc_sig = struct.pack("<IIII", LC_CODE_SIGNATURE, 16, sig_off, sig_len)
        image = header + body_cmds + linkedit + lc_sig
        image = image.ljust(0x800, b"\0") + code
        image = image.ljust(text_size, b"\0")
        cs_flags = CS_ADHOC if signature == "adhoc" else CS_RUNTIME
        dev = developer if signature == "developer-id" else None
        if signature == "developer-id" and dev is None:
            dev = make_developer_id()
            developer = dev
        blob = _superblob(image, identifier, dev, cs_flags)
        if attempt == 0:
            sig_len = (len(blob) + SIGNATURE_SLACK + 15) // 16 * 16
    if len(blob) > sig_len:  # cannot happen with the slack; never emit a cut signature
        raise AssertionError(f"code signature of {len(blob)} bytes over its {sig_len}-byte room")
    return image + blob.ljust(sig_len, b"\0")


def fat(slices: Sequence[bytes], align: int = 12) -> bytes:
    """A universal binary of the given thin slices."""
    header = struct.pack(">II", 0xCAFEBABE, len(slices))
    offset = (8 + 20 * len(slices) + (1 << align) - 1) >> align << align
    entries = b""
    body = b""
    for piece in slices:
        cputype, cpusub = struct.unpack_from("<II", piece, 4)
        entries += struct.pack(">IIIII", cputype, cpusub, offset, len(piece), align)
        padded = piece.ljust((len(piece) + (1 << align) - 1) >> align << align, b"\0")
        body += padded
        offset += len(padded)
    start = (8 + 20 * len(slices) + (1 << align) - 1) >> align << align
    return (header + entries).ljust(start, b"\0") + body
