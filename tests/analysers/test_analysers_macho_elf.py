from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.builders.elf import ET_DYN, elf64

from taintline.model import Severity
from taintline.scan import elf, macho, trust
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing.macho import (
    CPU_ARM64,
    CPU_X86_64,
    MH_DYLIB,
    OID_APPLE_DEVELOPER_ID_APPLICATION,
    OID_APPLE_SOFTWARE_SIGNING,
    fat,
    make_developer_id,
    thin,
)


def _item(
    data: bytes, path: str = "3CX Desktop App.app/Contents/MacOS/3CX Desktop App"
) -> FileItem:
    return FileItem(path=path, name=path.rsplit("/", 1)[-1], data=data, top="app")


def _kinds(result: object) -> list[str]:
    return sorted(f.kind for f in result.findings)  # type: ignore[attr-defined]


def test_developer_id_signed_thin_is_quiet() -> None:
    dev = make_developer_id("Example Corp", "EXAMPLE123")
    data = thin(
        signature="developer-id",
        developer=dev,
        dylibs=(
            "/usr/lib/libSystem.B.dylib",
            "/System/Library/Frameworks/Cocoa.framework/Versions/A/Cocoa",
            "@rpath/Electron Framework.framework/Electron Framework",
            "@executable_path/../Frameworks/libffmpeg.dylib",
        ),
    )
    assert macho.applies(_item(data))
    result = macho.analyse(_item(data), AnalysisContext(trust_store_pem=dev.root_pem))
    facts = result.facts
    assert facts.architectures == ("ARM64",) and not facts.fat and facts.signed
    sig = facts.slices[0].signature
    assert sig.team_id == "EXAMPLE123" and not sig.adhoc and sig.hardened_runtime
    assert sig.signer == "Developer ID Application: Example Corp (EXAMPLE123)"
    assert sig.identifier == "com.example.app"
    assert facts.signer == "EXAMPLE123"
    assert len(facts.slices[0].dylibs) == 4
    assert sig.code_hashes_match is True and sig.cms_verified is True and sig.chain_trusted
    # a private root (--ca-bundle) vouches for it: "signed", with the identity it claims
    assert sig.verdict == "signed" and sig.identity == "developer-id"
    assert sig.trust_program == "ca-bundle"
    assert result.findings == ()


@pytest.mark.parametrize(
    ("marker", "verdict"),
    [
        (OID_APPLE_DEVELOPER_ID_APPLICATION, "developer-id"),
        (OID_APPLE_SOFTWARE_SIGNING, "apple"),
    ],
)
def test_apple_rooted_verdicts(monkeypatch: pytest.MonkeyPatch, marker: str, verdict: str) -> None:
    dev = make_developer_id(marker=marker)
    # stand the test root in for Apple Root CA (the real one cannot sign test fixtures)
    store = trust.TrustStore.of([trust.Anchor(cert=dev.root, program="apple")])  # type: ignore[arg-type]
    monkeypatch.setattr(trust, "apple_code_store", lambda extra=None: store)
    result = macho.analyse(_item(thin(signature="developer-id", developer=dev)), AnalysisContext())
    assert result.facts.slices[0].signature.verdict == verdict
    assert result.findings == ()


def test_impostor_developer_id_is_untrusted() -> None:
    dev = make_developer_id(self_signed=True)
    result = macho.analyse(_item(thin(signature="developer-id", developer=dev)), AnalysisContext())
    (finding,) = result.findings
    assert finding.kind == "macho.untrusted-signature" and finding.severity is Severity.MEDIUM
    assert result.facts.slices[0].signature.verdict == "untrusted"
    assert finding.evidence["reason"] == "self-signed certificate not in the trust store"


def test_every_generated_signature_fits_its_declared_room() -> None:
    """The builder's signature used to overflow its LC_CODE_SIGNATURE size about 1 time in
    12 (an ECDSA signature's DER length varies between signings): 24 fresh keys and
    signatures (each run fails that way with probability 1 - (11/12)^24, 88 %, before the fix)
    are all well-formed, and the untrusted verdict never turns into "malformed"."""
    for _ in range(24):
        dev = make_developer_id(self_signed=True)
        data = thin(signature="developer-id", developer=dev)
        result = macho.analyse(_item(data), AnalysisContext())
        sig = result.facts.slices[0].signature
        assert (sig.verdict, sig.error) == ("untrusted", None)


@pytest.mark.parametrize("signature", ["developer-id", "adhoc"])
def test_code_page_modified_after_signing(signature: str) -> None:
    dev = make_developer_id()
    data = bytearray(thin(signature=signature, developer=dev))
    data[0x800] ^= 0xFF  # the code
    result = macho.analyse(_item(bytes(data)), AnalysisContext(trust_store_pem=dev.root_pem))
    sig = result.facts.slices[0].signature
    assert sig.verdict == "tampered" and sig.first_bad_page == 0
    (finding,) = [f for f in result.findings if f.severity.at_least(Severity.MEDIUM)]
    assert finding.kind == "macho.code-hash-mismatch" and finding.severity is Severity.HIGH


def test_install_name_is_not_a_loaded_library() -> None:
    # real .jnilib files (pyspark's jars) name themselves with their build path
    data = thin(
        filetype=MH_DYLIB,
        signature="adhoc",
        install_name="/Users/runner/work/snappy-java/target/libsnappyjava.jnilib",
        dylibs=("/usr/lib/libSystem.B.dylib", "/usr/lib/libc++.1.dylib"),
    )
    result = macho.analyse(_item(data, "lib/libsnappyjava.jnilib"), AnalysisContext())
    s = result.facts.slices[0]
    assert s.install_name == "/Users/runner/work/snappy-java/target/libsnappyjava.jnilib"
    assert s.dylibs == ("/usr/lib/libSystem.B.dylib", "/usr/lib/libc++.1.dylib")
    assert "macho.unexpected-dylib" not in _kinds(result)
    assert not any(f.severity.at_least(Severity.MEDIUM) for f in result.findings)


def test_unsigned_and_unexpected_dylib() -> None:
    data = thin(dylibs=("/usr/lib/libSystem.B.dylib", "/usr/local/lib/libhook.dylib"))
    result = macho.analyse(_item(data), AnalysisContext())
    assert _kinds(result) == ["macho.unexpected-dylib", "macho.unsigned"]
    (dylib,) = [f for f in result.findings if f.kind == "macho.unexpected-dylib"]
    assert dylib.evidence["dylib"] == "/usr/local/lib/libhook.dylib"


def test_adhoc_fat_binary() -> None:
    data = fat([thin(cpu=CPU_X86_64, signature="adhoc"), thin(cpu=CPU_ARM64, signature="adhoc")])
    result = macho.analyse(_item(data), AnalysisContext())
    assert result.facts.fat and result.facts.architectures == ("X86_64", "ARM64")
    assert result.facts.signer == "adhoc"
    assert _kinds(result) == ["macho.adhoc-signature", "macho.adhoc-signature"]
    assert {f.severity for f in result.findings} == {Severity.LOW}
    assert all(f.evidence["reason"] for f in result.findings)


@pytest.mark.parametrize(
    ("path", "unexpected"),
    [
        ("/usr/lib/libc++.1.dylib", False),
        ("@executable_path/../Frameworks/x.dylib", False),
        ("@loader_path/../../../../../tmp/x.dylib", True),
        ("@rpath/libfoo.dylib", False),
        ("/Library/Application Support/x.dylib", True),
        ("/tmp/x.dylib", True),
    ],
)
def test_unexpected_dylib_rules(path: str, unexpected: bool) -> None:
    assert macho.unexpected_dylib(path) is unexpected


def test_truncated_macho_is_reported() -> None:
    data = thin(dylibs=("/usr/lib/libSystem.B.dylib",) * 20)
    result = macho.analyse(_item(data[:300]), AnalysisContext())
    assert "error.malformed" in _kinds(result)
    result = macho.analyse(_item(fat([thin(), thin(cpu=CPU_X86_64)])[:5000]), AnalysisContext())
    assert "error.malformed" in _kinds(result)


def test_java_class_is_not_fat_macho() -> None:
    assert not macho.applies(_item(b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(100)))


def test_dylib_filetype() -> None:
    facts = macho.analyse(
        _item(thin(filetype=MH_DYLIB, signature="adhoc")), AnalysisContext()
    ).facts
    assert facts.slices[0].filetype == "DYLIB"


def test_elf_identity_and_quiet_twin() -> None:
    data = elf64()
    assert elf.applies(_item(data, "usr/bin/tool"))
    result = elf.analyse(_item(data, "usr/bin/tool"), AnalysisContext())
    facts = result.facts
    assert (facts.elf_class, facts.machine, facts.type) == ("ELF64", "X86_64", "EXEC")
    assert facts.overlay_size == 0 and facts.sections == 3 and facts.segments == 1
    assert result.findings == ()
    assert elf.analyse(_item(elf64(etype=ET_DYN), "lib.so"), AnalysisContext()).facts.type == "DYN"


def test_elf_overlay() -> None:
    data = elf64(overlay=b"PAYLOAD!" * 32)
    result = elf.analyse(_item(data, "usr/bin/tool"), AnalysisContext())
    (finding,) = result.findings
    assert finding.kind == "elf.overlay"
    assert finding.evidence["size"] == 256 and finding.evidence["offset"] == len(data) - 256
    assert finding.evidence["reason"].startswith(f"non-zero bytes from offset {len(data) - 256}")


def test_elf_truncated() -> None:
    result = elf.analyse(_item(elf64()[:100], "usr/bin/tool"), AnalysisContext())
    assert _kinds(result) == ["error.malformed"]


def _real_elfs() -> list[bytes]:
    """ELF files this interpreter runs from (itself, the hashlib extension linking OpenSSL):
    real symbol tables, versions and relocations, read only."""
    import _hashlib

    out = []
    for path in {Path(sys.executable).resolve(), Path(_hashlib.__file__ or "")}:
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            out.append(path.read_bytes())
    return out


def test_elf_facts_are_the_same_without_parsing_symbols(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analyser tells LIEF to skip symbols and relocations; the facts equal a full parse."""
    import lief

    samples = [elf64(), elf64(etype=ET_DYN), elf64(overlay=b"PAYLOAD!" * 32), *_real_elfs()]
    lean = [elf.facts_of(data) for data in samples]
    monkeypatch.setattr(elf, "_parser_config", lambda: lief.ELF.ParserConfig.all)
    assert [elf.facts_of(data) for data in samples] == lean
    assert any(f is not None and f.needed for f in lean[3:]) or not _real_elfs()
