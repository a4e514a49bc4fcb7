"""Microsoft certificate trust lists (CTL): the content of ``authroot.stl`` and of catalog
(``.cat``) files.

A CTL is the content of a PKCS#7 SignedData (content type ``szOID_CTL``,
1.3.6.1.4.1.311.10.1): a list of subjects, each an identifier (a certificate's SHA-1 in the
root list; a member's hash, or a tag, in a catalog) with attributes. asn1crypto has no schema
for it, so the few lines below describe it (from Microsoft's ``wincrypt.h`` CTL_INFO); the
parsing itself is asn1crypto's.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import algos, cms, core

OID_CTL = "1.3.6.1.4.1.311.10.1"
OID_CATALOG_LIST = "1.3.6.1.4.1.311.12.1.1"
OID_ROOT_LIST_SIGNER = "1.3.6.1.4.1.311.10.3.9"
OID_SPC_INDIRECT_DATA = "1.3.6.1.4.1.311.2.1.4"
OID_CAT_NAMEVALUE = "1.3.6.1.4.1.311.12.2.1"
OID_CAT_MEMBERINFO = "1.3.6.1.4.1.311.12.2.2"
OID_CAT_MEMBERINFO2 = "1.3.6.1.4.1.311.12.2.3"
MAX_SUBJECTS = 200_000


class _AnySet(core.SetOf):  # type: ignore[misc]
    _child_spec = core.Any


class _Attribute(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.ObjectIdentifier), ("values", _AnySet)]


class _Attributes(core.SetOf):  # type: ignore[misc]
    _child_spec = _Attribute


class _TrustedSubject(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("subject_identifier", core.OctetString),
        ("subject_attributes", _Attributes, {"optional": True}),
    ]


class _TrustedSubjects(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _TrustedSubject


class _Usage(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.ObjectIdentifier


class _Time(core.Choice):  # type: ignore[misc]
    _alternatives = [("utc_time", core.UTCTime), ("general_time", core.GeneralizedTime)]


class CertificateTrustList(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("version", core.Integer, {"optional": True}),
        ("subject_usage", _Usage),
        ("list_identifier", core.OctetString, {"optional": True}),
        ("sequence_number", core.Integer, {"optional": True}),
        ("this_update", _Time),
        ("next_update", _Time, {"optional": True}),
        ("subject_algorithm", algos.DigestAlgorithm),
        ("trusted_subjects", _TrustedSubjects, {"optional": True}),
        ("extensions", core.Any, {"explicit": 0, "optional": True}),
    ]


class _DigestInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("digest_algorithm", algos.DigestAlgorithm), ("digest", core.OctetString)]


class _SpcAttributeTypeAndOptionalValue(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.ObjectIdentifier), ("value", core.Any, {"optional": True})]


class SpcIndirectDataContent(core.Sequence):  # type: ignore[misc]
    _fields = [("data", _SpcAttributeTypeAndOptionalValue), ("message_digest", _DigestInfo)]


class _NameValue(core.Sequence):  # type: ignore[misc]
    _fields = [("tag", core.BMPString), ("flags", core.Integer), ("value", core.OctetString)]


@dataclass(frozen=True, slots=True)
class CtlSubject:
    identifier: bytes
    #: (attribute OID, first value's inner bytes: the OCTET STRING contents when the value is
    #: one, else the value's DER)
    attributes: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Ctl:
    usage: tuple[str, ...]
    this_update: str | None
    subject_algorithm: str
    subjects: tuple[CtlSubject, ...]
    truncated: bool = False


_OIDS: dict[bytes, str] = {}


def _dotted(oid: core.ObjectIdentifier) -> str:
    # asn1crypto computes dotted text anew each time; authroot.stl repeats a dozen OIDs
    key = oid.contents
    text = _OIDS.get(key)
    if text is None:
        text = _OIDS[key] = oid.dotted
    return text


def ctl_of(content: core.Asn1Value) -> Ctl:
    """Read the CTL from a SignedData's ``encap_content_info['content']``."""
    ctl = content.parse(CertificateTrustList) if isinstance(content, core.Any) else content
    subjects = []
    listed = ctl["trusted_subjects"]
    count = 0
    truncated = False
    for subject in listed if isinstance(listed, _TrustedSubjects) else ():
        count += 1
        if count > MAX_SUBJECTS:
            truncated = True
            break
        attrs = []
        for attr in subject["subject_attributes"] or ():
            values = attr["values"]
            if not len(values):
                continue
            first = values[0]
            raw = first.dump()
            # most properties are OCTET STRINGs around the real value: hand out the inside
            inner = core.OctetString.load(raw).native if raw[:1] == b"\x04" else raw
            attrs.append((_dotted(attr["type"]), bytes(inner)))
        subjects.append(CtlSubject(bytes(subject["subject_identifier"].native), tuple(attrs)))
    when = ctl["this_update"].native
    return Ctl(
        usage=tuple(u.dotted for u in ctl["subject_usage"]),
        this_update=when.isoformat().replace("+00:00", "Z") if when is not None else None,
        subject_algorithm=str(ctl["subject_algorithm"]["algorithm"].native),
        subjects=tuple(subjects),
        truncated=truncated,
    )


def read_ctl(der: bytes) -> Ctl | None:
    """The CTL inside a PKCS#7 blob, or ``None`` when the blob holds no CTL."""
    info = cms.ContentInfo.load(der)
    if info["content_type"].native != "signed_data":
        return None
    eci = info["content"]["encap_content_info"]
    if eci["content_type"].dotted != OID_CTL:
        return None
    return ctl_of(eci["content"])


def member_digests(subject: CtlSubject) -> list[tuple[str, bytes]]:
    """(algorithm, digest) pairs a catalog member vouches for: the SpcIndirectData digest
    (the Authenticode hash for PE files, the flat file hash otherwise), and the identifier
    itself when it is a hash written as (UTF-16) hex text, as version-1 catalogs do."""
    out: list[tuple[str, bytes]] = []
    for oid, value in subject.attributes:
        if oid != OID_SPC_INDIRECT_DATA:
            continue
        try:
            indirect = SpcIndirectDataContent.load(value)
            digest = indirect["message_digest"]
            out.append(
                (str(digest["digest_algorithm"]["algorithm"].native), digest["digest"].native)
            )
        except (ValueError, TypeError, KeyError):
            continue
    for encoding in ("utf-16-le", "ascii"):
        try:
            text = subject.identifier.decode(encoding).rstrip("\0")
            raw = bytes.fromhex(text)
        except (UnicodeDecodeError, ValueError):
            continue
        if len(raw) in (20, 32):
            pair = ("sha1" if len(raw) == 20 else "sha256", raw)
            if pair not in out:
                out.append(pair)
        break
    return out


def member_name(subject: CtlSubject) -> str | None:
    """The ``File`` name-value a catalog records for a member (CAT_NAMEVALUE), if any."""
    for oid, value in subject.attributes:
        if oid != OID_CAT_NAMEVALUE:
            continue
        try:
            nv = _NameValue.load(value)
            if str(nv["tag"].native).lower() == "file":
                return bytes(nv["value"].native).decode("utf-16-le", "replace").rstrip("\0")
        except (ValueError, TypeError):
            continue
    return None
