"""Electron asar integrity: members against the header's integrity records, links leaving the
archive, and the header against the app's declared ElectronAsarIntegrity."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.scan.scanhelpers import run_scan

from taintline.case import Case
from taintline.model import Severity
from taintline.scan import asar, plist
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing.archives import asar_bytes, asar_header_sha256, info_plist

FILES = {
    "package.json": b'{"name": "example", "main": "main.js"}',
    "main.js": b"require('electron').app.whenReady().then(() => {});\n" * 40,
    "node_modules/lib/index.js": b"module.exports = 42;\n",
}


def _analyse(data: bytes, path: str = "app/resources/app.asar") -> asar.AnalysisResult:
    return asar.analyse(
        FileItem(path=path, name="app.asar", data=data, top="app"), AnalysisContext()
    )


def _flip(archive: bytes, member: bytes, at: int = 3) -> bytes:
    pos = archive.index(member) + at
    out = bytearray(archive)
    out[pos] ^= 0x01
    return bytes(out)


def test_clean_archive_with_integrity_is_quiet() -> None:
    result = _analyse(asar_bytes(FILES, integrity=True))
    facts = result.facts
    assert facts.files == 3 and facts.with_integrity == 3 and facts.checked == 3
    assert facts.mismatches == () and result.findings == ()


def test_flip_one_byte_names_the_member() -> None:
    data = _flip(asar_bytes(FILES, integrity=True), FILES["node_modules/lib/index.js"])
    result = _analyse(data)
    (finding,) = result.findings
    assert finding.kind == "electron.asar-integrity-mismatch"
    assert finding.severity is Severity.HIGH
    assert finding.subject == "app/resources/app.asar!/node_modules/lib/index.js"
    assert finding.evidence["member"] == "node_modules/lib/index.js"
    assert "differs from the integrity hash" in finding.evidence["reason"]


def test_the_differing_block_is_named() -> None:
    big = {"main.js": bytes(range(256)) * 16}  # 4096 bytes, 16 blocks of 256
    data = asar_bytes(big, integrity=True, block_size=256)
    assert _analyse(data).findings == ()
    base = data.index(big["main.js"])
    tampered = bytearray(data)
    tampered[base + 256 * 5 + 7] ^= 0xFF
    (finding,) = _analyse(bytes(tampered)).findings
    assert finding.evidence["block"] == 5


def test_archive_without_integrity_records_says_nothing() -> None:
    # archives from before Electron 16 have no records: nothing to check, nothing to report
    data = _flip(asar_bytes(FILES), FILES["main.js"])
    result = _analyse(data)
    assert result.facts.with_integrity == 0 and result.findings == ()


def test_member_added_without_integrity_record() -> None:
    data = asar_bytes(FILES, integrity=True)
    # rebuild with one member lacking a record: what an attacker re-packing by hand leaves
    import orjson

    json_len = int.from_bytes(data[12:16], "little")
    header = orjson.loads(data[16 : 16 + json_len])
    del header["files"]["main.js"]["integrity"]
    rebuilt = asar_bytes(FILES, integrity=True)
    assert rebuilt  # same layout; swap the header
    new_header = orjson.dumps(header)
    padded = new_header + b"\0" * (-len(new_header) % 4)
    import struct

    pickle = struct.pack("<II", len(padded) + 4, len(new_header)) + padded
    body = data[8 + int.from_bytes(data[4:8], "little") :]
    forged = struct.pack("<II", 4, len(pickle)) + pickle + body
    (finding,) = _analyse(forged).findings
    assert finding.kind == "electron.asar-integrity-missing"
    assert finding.severity is Severity.MEDIUM
    assert finding.evidence["members"] == ["main.js"]


@pytest.mark.parametrize(
    ("target", "outside"),
    [
        ("../../../../private/tmp", True),
        ("/etc/passwd", True),
        ("node_modules/lib/index.js", False),
        ("node_modules/../main.js", False),
    ],
)
def test_links_leaving_the_archive(target: str, outside: bool) -> None:
    data = asar_bytes(FILES, integrity=True, links={"tmp": target})
    kinds = [f.kind for f in _analyse(data).findings]
    assert kinds == (["electron.asar-link-outside"] if outside else [])


def test_declared_header_hash_in_info_plist(tmp_path: Path) -> None:
    archive = asar_bytes(FILES, integrity=True)
    app = tmp_path / "Example.app" / "Contents"
    (app / "Resources").mkdir(parents=True)
    (app / "Resources" / "app.asar").write_bytes(archive)
    (app / "Info.plist").write_bytes(
        info_plist({"Resources/app.asar": asar_header_sha256(archive)})
    )
    facts = plist.analyse(
        FileItem("Info.plist", "Info.plist", (app / "Info.plist").read_bytes(), "."),
        AnalysisContext(),
    ).facts
    assert facts.asar_integrity[0].path == "Resources/app.asar"
    with Case(tmp_path / "clean.duckdb") as case:
        clean = run_scan(case, [tmp_path / "Example.app"], use_rules=False)
    assert [f for f in clean.findings if f.severity.at_least(Severity.MEDIUM)] == []
    # a new header (e.g. a member swapped and its record rewritten to match)
    forged = asar_bytes({**FILES, "main.js": b"evil()"}, integrity=True)
    (app / "Resources" / "app.asar").write_bytes(forged)
    with Case(tmp_path / "forged.duckdb") as case:
        result = run_scan(case, [tmp_path / "Example.app"], use_rules=False)
    high = [f for f in result.findings if f.severity.at_least(Severity.MEDIUM)]
    assert [f.kind for f in high] == ["electron.asar-header-mismatch"]
    assert high[0].subject.endswith("Example.app/Contents/Resources/app.asar")


def test_flip_one_byte_through_the_scan(tmp_path: Path) -> None:
    folder = tmp_path / "app" / "resources"
    folder.mkdir(parents=True)
    (folder / "app.asar").write_bytes(asar_bytes(FILES, integrity=True))
    with Case(tmp_path / "c.duckdb") as case:
        clean = run_scan(case, [tmp_path / "app"], use_rules=False)
    assert [f for f in clean.findings if f.severity.at_least(Severity.MEDIUM)] == []
    (folder / "app.asar").write_bytes(
        _flip(asar_bytes(FILES, integrity=True), FILES["main.js"], at=10)
    )
    with Case(tmp_path / "d.duckdb") as case:
        result = run_scan(case, [tmp_path / "app"], use_rules=False)
    high = [f for f in result.findings if f.severity.at_least(Severity.MEDIUM)]
    assert len(high) == 1 and high[0].severity is Severity.HIGH
    assert high[0].subject.endswith("app.asar!/main.js")


def test_declared_header_hash_in_the_windows_resource(tmp_path: Path) -> None:
    import orjson

    from taintline.testing.pe import PESpec, build_pe

    archive = asar_bytes(FILES, integrity=True)

    def exe(digest: str) -> bytes:
        declared = [{"file": "resources\\app.asar", "alg": "SHA256", "value": digest}]
        return build_pe(PESpec(resources=[("INTEGRITY", "ELECTRONASAR", orjson.dumps(declared))]))

    app = tmp_path / "Example"
    (app / "resources").mkdir(parents=True)
    (app / "resources" / "app.asar").write_bytes(archive)
    (app / "Example.exe").write_bytes(exe(asar_header_sha256(archive)))
    with Case(tmp_path / "clean.duckdb") as case:
        clean = run_scan(case, [app], use_rules=False)
    assert [f for f in clean.findings if f.severity.at_least(Severity.MEDIUM)] == []
    (app / "Example.exe").write_bytes(exe("00" * 32))
    with Case(tmp_path / "forged.duckdb") as case:
        result = run_scan(case, [app], use_rules=False)
    high = [f for f in result.findings if f.severity.at_least(Severity.MEDIUM)]
    assert [f.kind for f in high] == ["electron.asar-header-mismatch"]
    assert high[0].evidence["declared_in"].endswith("Example.exe")
