"""MSI, catalog and Appx signatures: the same verdicts as PE, on fixtures the suite signs with
its throw-away CA through osslsigncode."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import olefile
import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from tests.scan.scanhelpers import run_scan

from taintline.case import Case
from taintline.model import Severity
from taintline.scan import signed
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing.archives import msi_like
from taintline.testing.pe import PESpec, build_pe
from taintline.testing.signing import (
    SPC_CAB_DATA,
    SPC_PE_IMAGE_DATA,
    SigningIdentity,
    catalog_bytes,
    make_identity,
    sign_file,
)

from .conftest import SIGNING_TIME

MSI = msi_like(
    {"disk1.cab": {"ffmpeg.dll": b"MZ" + b"\0" * 300}},
    {"\x05SummaryInformation": b"\xfe\xff" + b"\0" * 100, "Binary.icon": b"\x01" * 5000},
)


def _analyse(data: bytes, ctx: AnalysisContext, name: str = "setup.msi") -> signed.AnalysisResult:
    item = FileItem(path=f"dl/{name}", name=name, data=data, top="dl")
    assert signed.applies(item)
    return signed.analyse(item, ctx)


def _kinds(result: signed.AnalysisResult) -> set[str]:
    return {f.kind for f in result.findings}


def _ctx(identity: SigningIdentity) -> AnalysisContext:
    return AnalysisContext(trust_store_pem=identity.ca_pem)


@pytest.fixture(scope="module")
def expired(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return make_identity(
        tmp_path_factory.mktemp("expired"),
        not_before=datetime(2019, 1, 1, tzinfo=UTC),
        not_after=datetime(2021, 1, 1, tzinfo=UTC),
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return make_identity(
        tmp_path_factory.mktemp("tls"),
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=datetime(2021, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )


# -- MSI -------------------------------------------------------------------------------------


@pytest.mark.parametrize("extended", [False, True])
def test_msi_valid(identity: SigningIdentity, extended: bool) -> None:
    args = ("-add-msi-dse",) if extended else ()
    data = sign_file(MSI, identity, ".msi", signing_time=SIGNING_TIME, extra_args=args)
    result = _analyse(data, _ctx(identity))
    facts = result.facts
    assert facts.format == "msi" and facts.extended_signature is extended
    assert facts.extended_matches is (True if extended else None)
    sig = facts.signature
    assert sig.digest_matches is True and sig.verification == "OK"
    assert sig.verdict == "valid" and sig.timestamp_verified is True
    assert result.findings == ()


def _patch_stream(msi: bytes, stream: str, data: bytes) -> bytes:
    path = Path(__import__("tempfile").mkdtemp()) / "x.msi"
    path.write_bytes(msi)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        ole.write_stream(stream, data)
    return path.read_bytes()


def test_msi_tampered(identity: SigningIdentity) -> None:
    data = sign_file(MSI, identity, ".msi", signing_time=SIGNING_TIME)
    name = next(n for n in olefile.OleFileIO(data).listdir() if len(n[0]) > 2 and n[0][0] != "\x05")
    with olefile.OleFileIO(data) as ole:
        original = ole.openstream(name).read()
    tampered = _patch_stream(data, "/".join(name), bytes([original[0] ^ 1]) + original[1:])
    result = _analyse(tampered, _ctx(identity))
    assert result.facts.signature.verdict == "tampered"
    assert _kinds(result) == {"signature.digest-mismatch"}


def test_msi_untrusted_root(identity: SigningIdentity) -> None:
    data = sign_file(MSI, identity, ".msi", signing_time=SIGNING_TIME)
    result = _analyse(data, AnalysisContext())
    (finding,) = result.findings
    assert finding.kind == "signature.untrusted-chain" and finding.severity is Severity.MEDIUM


def test_msi_wrong_eku(tls: SigningIdentity) -> None:
    data = sign_file(MSI, tls, ".msi", signing_time=SIGNING_TIME)
    assert _kinds(_analyse(data, _ctx(tls))) == {"signature.wrong-eku"}


def test_msi_expired_but_timestamped(expired: SigningIdentity) -> None:
    when = datetime(2020, 6, 1, tzinfo=UTC)
    stamped = _analyse(sign_file(MSI, expired, ".msi", signing_time=when), _ctx(expired))
    assert stamped.facts.signature.verdict == "valid" and stamped.findings == ()
    bare = sign_file(MSI, expired, ".msi", signing_time=when, timestamp=False)
    assert _kinds(_analyse(bare, _ctx(expired))) == {"signature.expired"}


def test_unsigned_ole_is_not_judged() -> None:
    result = signed.analyse(FileItem("a.msi", "a.msi", MSI, "."), AnalysisContext())
    assert result.facts is None and result.findings == ()


# -- catalogs --------------------------------------------------------------------------------

DLL = build_pe(PESpec(dll=True, exports=("Run",)))
README = b"release notes\n"


def _catalog(identity: SigningIdentity, **options: object) -> bytes:
    from taintline.scan import pe

    facts = pe.facts_of(DLL)
    assert facts is not None and facts.authentihash_sha256
    members = {
        "helper.dll": (SPC_PE_IMAGE_DATA, bytes.fromhex(facts.authentihash_sha256)),
        "readme.txt": (SPC_CAB_DATA, hashlib.sha256(README).digest()),
    }
    return sign_file(catalog_bytes(members), identity, ".cat", **options)


def test_catalog_valid_lists_members(identity: SigningIdentity) -> None:
    result = _analyse(_catalog(identity, signing_time=SIGNING_TIME), _ctx(identity), "x.cat")
    facts = result.facts
    assert facts.format == "catalog" and facts.member_count == 2
    assert {m.name for m in facts.members} == {"helper.dll", "readme.txt"}
    assert facts.signature.verdict == "valid" and result.findings == ()


def test_catalog_tampered(identity: SigningIdentity) -> None:
    data = bytearray(_catalog(identity, signing_time=SIGNING_TIME))
    at = data.index("readme.txt".encode("utf-16-le"))
    data[at] ^= 0x01  # a member name in the signed list
    result = _analyse(bytes(data), _ctx(identity), "x.cat")
    assert result.facts.signature.verdict == "tampered"
    assert _kinds(result) == {"signature.digest-mismatch"}


def test_catalog_untrusted_wrong_eku_and_expired(
    identity: SigningIdentity, tls: SigningIdentity, expired: SigningIdentity
) -> None:
    untrusted = _analyse(_catalog(identity), AnalysisContext(), "x.cat")
    assert _kinds(untrusted) == {"signature.untrusted-chain"}
    wrong = _analyse(_catalog(tls, signing_time=SIGNING_TIME), _ctx(tls), "x.cat")
    assert _kinds(wrong) == {"signature.wrong-eku"}
    when = datetime(2020, 6, 1, tzinfo=UTC)
    stamped = _analyse(_catalog(expired, signing_time=when), _ctx(expired), "x.cat")
    assert stamped.facts.signature.verdict == "valid" and stamped.findings == ()
    bare = _analyse(_catalog(expired, signing_time=when, timestamp=False), _ctx(expired), "x.cat")
    assert _kinds(bare) == {"signature.expired"}


def test_catalog_signed_files_recognised_in_a_scan(
    tmp_path: Path, identity: SigningIdentity
) -> None:
    folder = tmp_path / "System32"
    folder.mkdir()
    (folder / "helper.dll").write_bytes(DLL)
    (folder / "readme.txt").write_bytes(README)
    (folder / "other.txt").write_bytes(b"not in the catalog")
    (folder / "helper.cat").write_bytes(_catalog(identity, signing_time=SIGNING_TIME))
    with Case(tmp_path / "c.duckdb") as case:
        result = run_scan(case, [folder], use_rules=False)
    vouched = {
        f.subject.rsplit("/", 1)[-1]: f
        for f in result.findings
        if f.kind == "signature.catalog-signed"
    }
    assert set(vouched) == {"helper.dll", "readme.txt"}
    assert vouched["helper.dll"].evidence["listed_as"] == "helper.dll"
    # the catalog's own verdict travels with it (untrusted here: the test CA is not a root)
    assert vouched["helper.dll"].evidence["verdict"] == "untrusted"


# -- Appx ------------------------------------------------------------------------------------


def test_p7x_uses_the_same_verdicts(identity: SigningIdentity) -> None:
    # AppxSignature.p7x is "PKCX" + PKCS#7; a signed catalog's PKCS#7 stands in for the blob
    blob = _catalog(identity, signing_time=SIGNING_TIME)
    result = _analyse(b"PKCX" + blob, _ctx(identity), "AppxSignature.p7x")
    assert result.facts.format == "p7x" and result.facts.signature.verdict == "valid"
    untrusted = _analyse(b"PKCX" + blob, AnalysisContext(), "AppxSignature.p7x")
    assert _kinds(untrusted) == {"signature.untrusted-chain"}
    broken = _analyse(b"PKCX" + blob[:200], AnalysisContext(), "AppxSignature.p7x")
    assert _kinds(broken) == {"signature.invalid"}
