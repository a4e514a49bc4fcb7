from __future__ import annotations

import os
import struct
from datetime import UTC, datetime

import pytest

from taintline.model import Severity
from taintline.scan import pe
from taintline.scan.authenticode import der_length, scan_certificate_table
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing.pe import (
    DIR_SECURITY,
    PESpec,
    append_inside_certificate_table,
    build_pe,
    data_directory,
)
from taintline.testing.signing import SigningIdentity, make_identity, sign_pe

from .conftest import SIGNING_TIME


def _item(data: bytes, path: str = "app/d3dcompiler_47.dll") -> FileItem:
    return FileItem(path=path, name=path.rsplit("/", 1)[-1], data=data, top="app")


def _kinds(result: pe.AnalysisResult) -> set[str]:
    return {f.kind for f in result.findings}


def test_unsigned_pe_facts(unsigned_dll: bytes) -> None:
    assert pe.applies(_item(unsigned_dll))
    result = pe.analyse(_item(unsigned_dll), AnalysisContext())
    facts = result.facts
    assert isinstance(facts, pe.PEFacts)
    assert facts.machine == "AMD64" and facts.is_64 and facts.is_dll
    assert facts.version["ProductName"] == "Example Trader"
    assert facts.version["CompanyName"] == "Example Trading Ltd"
    assert facts.version["OriginalFilename"] == "example.exe"
    assert facts.imported_dlls == ("KERNEL32.dll",)
    assert facts.imports_sample == ("KERNEL32.dll!ExitProcess",)
    assert facts.exports == 2 and set(facts.exports_sample) == {"D3DCompile", "D3DDisassemble"}
    assert [s.name for s in facts.sections] == [".text", ".rdata", ".rsrc"]
    assert facts.entry_section == ".text"
    assert all(len(s.sha256) == 64 and 0.0 <= s.entropy <= 8.0 for s in facts.sections)
    assert facts.overlay_size == 0 and facts.signature is None
    assert facts.timestamp == "2023-03-02T01:46:40Z"
    assert _kinds(result) == {"pe.unsigned"}
    assert result.findings[0].severity is Severity.INFO


def test_overlay_on_unsigned_pe_is_a_fact() -> None:
    data = build_pe(PESpec(overlay=b"\x01" * 100))
    facts = pe.analyse(_item(data, "setup.exe"), AnalysisContext()).facts
    assert facts.overlay_size == 100
    assert facts.overlay_offset == len(data) - 100


def test_not_pe() -> None:
    assert not pe.applies(_item(b"MZ" + b"\0" * 100))
    assert not pe.applies(_item(b"hello"))


def test_signed_pe_verifies_against_its_ca(
    signed_dll: bytes, trusting: AnalysisContext, identity: SigningIdentity
) -> None:
    result = pe.analyse(_item(signed_dll), trusting)
    sig = result.facts.signature
    assert sig is not None and sig.signed and sig.parsed
    assert sig.verification == "OK" and sig.digest_matches is True
    assert sig.chain_trusted is True and sig.chain_error is None
    assert sig.signer is not None and "CN=Example Trading Ltd" in sig.signer.subject
    assert sig.signer.serial == identity.serial_hex
    assert [c.subject for c in sig.chain][-1].endswith("CN=Taintline Test Root CA (throw-away)")
    assert sig.signing_time == "2022-06-01T12:00:00Z"
    assert sig.timestamp_time == "2022-06-01T12:00:00Z"
    assert sig.timestamp_signer is not None and "Taintline Test TSA" in sig.timestamp_signer
    assert sig.valid_at_signing is True
    assert sig.appended_size == 0 and sig.overlay_after_table == 0
    assert sig.pkcs7_size is not None and sig.pkcs7_size <= sig.cert_table_size - 8
    assert sig.digest_algorithm == "sha256" and sig.authentihash_sha256
    assert result.findings == ()  # the clean twin is quiet


def test_signed_pe_is_untrusted_by_default(signed_dll: bytes) -> None:
    result = pe.analyse(_item(signed_dll), AnalysisContext())
    assert result.facts.signature.chain_trusted is False
    assert _kinds(result) == {"signature.untrusted-chain"}


def test_appended_data_inside_certificate_table(
    signed_dll: bytes, trusting: AnalysisContext
) -> None:
    # Ends in a non-zero byte: up to 7 trailing zero bytes are alignment padding by design,
    # so a random payload ending in 0x00 (1 run in 256) was reported one byte shorter.
    hidden = b"\xfe\xed\xfa\xce" + os.urandom(3999) + b"\x5a"
    tampered = append_inside_certificate_table(signed_dll, hidden)
    offset, size = data_directory(tampered, DIR_SECURITY)
    assert struct.unpack_from("<I", tampered, offset)[0] == size  # dwLength grew too
    result = pe.analyse(_item(tampered), trusting)
    sig = result.facts.signature
    assert sig.verification == "OK"  # the trick: the signature still verifies
    assert sig.appended_size >= len(hidden)
    assert sig.appended_has_feedface
    assert sig.appended_entropy > 7.0
    (finding,) = [f for f in result.findings if f.kind == "signature.appended-data"]
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["size"] >= 4004 and finding.evidence["feedface_marker"] is True
    assert finding.evidence["entropy"] > 7.0
    assert offset + 8 + sig.pkcs7_size <= finding.evidence["offset"] < offset + 16 + sig.pkcs7_size
    assert _kinds(result) == {"signature.appended-data"}


def test_appended_low_entropy_without_marker(signed_dll: bytes, trusting: AnalysisContext) -> None:
    tampered = append_inside_certificate_table(signed_dll, b"A" * 64)
    result = pe.analyse(_item(tampered), trusting)
    (finding,) = [f for f in result.findings if f.kind == "signature.appended-data"]
    assert finding.evidence["size"] == 64 and finding.evidence["entropy"] == 0.0
    assert finding.evidence["feedface_marker"] is False


def test_alignment_padding_is_not_appended_data() -> None:
    blob = b"\x30\x03\x02\x01\x05"  # DER SEQUENCE of 5 bytes
    entry = struct.pack("<IHH", 8 + len(blob) + 3, 0x200, 2) + blob + b"\0\0\0"
    table = scan_certificate_table(b"\0" * 16 + entry, 16, len(entry))
    assert table.appended == b"" and table.pkcs7_size == 5
    assert der_length(b"\x30\x82\x01\x00") == 4 + 256
    assert der_length(b"\x30\x80") is None


def test_overlay_after_certificate_table(signed_dll: bytes, trusting: AnalysisContext) -> None:
    result = pe.analyse(_item(signed_dll + b"payload" * 10), trusting)
    assert "pe.overlay-after-signature" in _kinds(result)
    facts = result.facts
    assert facts.overlay_size == 70 and facts.signature.overlay_after_table == 70
    assert "signature.appended-data" not in _kinds(result)


def test_digest_mismatch_after_modification(signed_dll: bytes, trusting: AnalysisContext) -> None:
    tampered = bytearray(signed_dll)
    text = 0x200  # first byte of .text (FileAlignment 0x200)
    tampered[text] ^= 0xFF
    result = pe.analyse(_item(bytes(tampered)), trusting)
    assert result.facts.signature.digest_matches is False
    assert "signature.digest-mismatch" in _kinds(result)


def test_corrupted_pkcs7_is_invalid(signed_dll: bytes, trusting: AnalysisContext) -> None:
    offset, _size = data_directory(signed_dll, DIR_SECURITY)
    broken = bytearray(signed_dll)
    broken[offset + 8 : offset + 40] = b"\xff" * 32
    result = pe.analyse(_item(bytes(broken)), trusting)
    assert result.facts is not None
    assert "signature.invalid" in _kinds(result)


def test_end_of_life(signed_dll: bytes, identity: SigningIdentity) -> None:
    ctx = AnalysisContext(eol={"example trader": "2020-01-01"}, trust_store_pem=identity.ca_pem)
    result = pe.analyse(_item(signed_dll), ctx)
    (finding,) = [f for f in result.findings if f.kind == "signature.after-end-of-life"]
    assert finding.evidence["eol"] == "2020-01-01"
    assert finding.evidence["signing_time"] == "2022-06-01T12:00:00Z"
    later = AnalysisContext(eol={"example-trader": "2024-01-01"}, trust_store_pem=identity.ca_pem)
    assert "signature.after-end-of-life" not in _kinds(pe.analyse(_item(signed_dll), later))
    slug = AnalysisContext(eol={"example-trader": "2021-01-01"}, trust_store_pem=identity.ca_pem)
    assert "signature.after-end-of-life" in _kinds(pe.analyse(_item(signed_dll), slug))


def test_signer_on_indicator_list(signed_dll: bytes, identity: SigningIdentity) -> None:
    by_name = AnalysisContext(
        signers=frozenset({"example trading ltd"}), trust_store_pem=identity.ca_pem
    )
    (finding,) = [
        f
        for f in pe.analyse(_item(signed_dll), by_name).findings
        if f.kind == "signature.signer-ioc"
    ]
    assert finding.severity is Severity.CRITICAL
    assert finding.indicators == ("signer:example trading ltd",)
    serial = "00" + identity.serial_hex.upper()
    by_serial = AnalysisContext(cert_serials=frozenset({serial}), trust_store_pem=identity.ca_pem)
    assert "signature.signer-ioc" in _kinds(pe.analyse(_item(signed_dll), by_serial))
    other = AnalysisContext(signers=frozenset({"3cx ltd"}), cert_serials=frozenset({"1b6611df"}))
    assert "signature.signer-ioc" not in _kinds(pe.analyse(_item(signed_dll), other))


def test_expired_at_signing(tmp_path_factory: pytest.TempPathFactory, unsigned_dll: bytes) -> None:
    old = make_identity(
        tmp_path_factory.mktemp("oldpki"),
        not_before=datetime(2018, 1, 1, tzinfo=UTC),
        not_after=datetime(2019, 1, 1, tzinfo=UTC),
    )
    signed = sign_pe(unsigned_dll, old, signing_time=datetime(2022, 6, 1, tzinfo=UTC))
    result = pe.analyse(_item(signed), AnalysisContext(trust_store_pem=old.ca_pem))
    assert result.facts.signature.valid_at_signing is False
    assert _kinds(result) == {"signature.expired-at-signing"}


def test_signed_without_timestamp_uses_signing_time(
    identity: SigningIdentity, unsigned_dll: bytes
) -> None:
    signed = sign_pe(unsigned_dll, identity, signing_time=SIGNING_TIME, timestamp=False)
    sig = pe.analyse(
        _item(signed), AnalysisContext(trust_store_pem=identity.ca_pem)
    ).facts.signature
    assert sig.timestamp_time is None and sig.signing_time == "2022-06-01T12:00:00Z"
    assert sig.effective_signing_time == "2022-06-01T12:00:00Z"


@pytest.mark.parametrize("cut", [64, 200, 0x200, 0x600, -4000, -100, -1])
def test_truncated_signed_pe_never_raises(
    signed_dll: bytes, trusting: AnalysisContext, cut: int
) -> None:
    result = pe.analyse(_item(signed_dll[:cut]), trusting)
    assert result.analyser == "pe"
    if result.facts is None:
        assert {f.kind for f in result.findings} <= {"error.malformed", "error.analyser"}
    elif cut < 0:
        # the certificate table runs past the end: reported, not raised
        assert _kinds(result) & {"signature.invalid", "signature.digest-mismatch", "pe.unsigned"}


def test_untrusted_chain_severity(signed_dll: bytes) -> None:
    (finding,) = pe.analyse(_item(signed_dll), AnalysisContext()).findings
    assert finding.severity is Severity.MEDIUM  # the chain ends in an unknown self-signed root
    assert finding.evidence["reason"].startswith("self-signed")


def test_missing_issuer_is_low_and_trusted_with_ca(
    identity: SigningIdentity, unsigned_dll: bytes
) -> None:
    signed = sign_pe(unsigned_dll, identity, signing_time=SIGNING_TIME, embed_ca=False)
    (finding,) = pe.analyse(_item(signed), AnalysisContext()).findings
    assert finding.kind == "signature.untrusted-chain" and finding.severity is Severity.LOW
    assert finding.evidence["reason"].startswith("issuer not found")
    # the CA in the trust store completes the chain
    assert (
        pe.analyse(_item(signed), AnalysisContext(trust_store_pem=identity.ca_pem)).findings == ()
    )


def test_end_of_life_prefix_and_comma_in_organisation(
    tmp_path_factory: pytest.TempPathFactory, unsigned_dll: bytes
) -> None:
    tt = make_identity(
        tmp_path_factory.mktemp("tt"), subject_cn="Trading Technologies International, Inc"
    )
    data = build_pe(
        PESpec(version_info={"ProductName": "X_TRADER Pro", "CompanyName": "Trading Technologies"})
    )
    signed = sign_pe(data, tt, signing_time=SIGNING_TIME)
    ctx = AnalysisContext(
        eol={"x_trader": "2020-03-31", "x": "2000-01-01"},
        signers=frozenset({"trading technologies international, inc"}),
        trust_store_pem=tt.ca_pem,
    )
    result = pe.analyse(_item(signed, "X_TRADER_r7.17.90p608.exe"), ctx)
    assert result.facts.signature.signer.organization == "Trading Technologies International, Inc"
    (eol,) = [f for f in result.findings if f.kind == "signature.after-end-of-life"]
    assert eol.evidence["product"] == "x_trader"
    assert "signature.signer-ioc" in _kinds(result)
