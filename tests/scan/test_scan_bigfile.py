"""Files over --max-file-size: hashed whole, YARA on head and tail windows, headers checked,
and one finding that says what was and was not covered (no blind spot for padded payloads)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from taintline.case import Case
from taintline.cli.main import main
from taintline.limits import MiB, ScanLimits
from taintline.model import Indicator, IndicatorType, Severity
from taintline.scan.bigfile import header_facts
from taintline.testing.archives import asar_bytes, cab_bytes, ole_bytes, zip_bytes
from taintline.testing.image import png
from taintline.testing.pe import build_pe

from .scanhelpers import kinds, run_scan, write_rules

MARKER = b"taintline-tail-marker"
RULE = 'rule tail_marker { meta: score = 80 strings: $m = "taintline-tail-marker" condition: $m }\n'
LIMIT = ScanLimits(max_file_bytes=1 * MiB)


def _sparse(path: Path, size: int, tail: bytes) -> None:
    """A mostly-holes file of ``size`` bytes with ``tail`` written 100 bytes before its end."""
    with path.open("wb") as fh:
        fh.truncate(size)
        fh.seek(size - 100)
        fh.write(tail)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_padded_sparse_file_is_hashed_scanned_in_its_tail_and_reported(
    tmp_path: Path, case: Case
) -> None:
    size = 17 * MiB  # over the 16 MiB below which a file is never called sparse
    big = tmp_path / "tree" / "update.bin"
    big.parent.mkdir()
    _sparse(big, size, MARKER)
    assert big.stat().st_blocks * 512 < size // 8  # really sparse
    case.add_indicators([Indicator(IndicatorType.SHA256, _sha256(big), source="feed")])
    rules = write_rules(tmp_path / "tail.yar", RULE)
    result = run_scan(case, [big.parent], limits=LIMIT, rules=[rules])
    got = kinds(result.findings)
    assert got["ioc.hash"] == [str(big)]
    assert got["yara"] == [str(big)]
    assert "error.too-large" not in got
    (hit,) = [f for f in result.findings if f.kind == "yara"]
    assert hit.evidence["windows"] == ["tail"]
    assert hit.evidence["strings"][0]["offsets"] == [size - 100]  # a file offset
    (cover,) = [f for f in result.findings if f.kind == "coverage.big-file"]
    assert cover.severity.at_least(Severity.MEDIUM)
    half = MiB // 2
    assert cover.evidence["hashed_bytes"] == size and cover.evidence["sparse"] is True
    assert cover.evidence["yara_windows"] == [
        {"window": "head", "offset": 0, "length": half},
        {"window": "tail", "offset": size - half, "length": half},
    ]
    assert cover.evidence["not_scanned_by_yara"] == [{"offset": half, "length": size - MiB}]
    assert f"{size:,} bytes hashed" in cover.message
    assert f"not scanned by YARA: bytes {half:,}-{size - half:,}" in cover.message
    # the record carries the real hashes (retroactive matching and verify see it)
    (row,) = case.con.execute(
        "SELECT size, sha256 FROM file_facts WHERE path = ?", [str(big)]
    ).fetchall()
    assert row == (size, _sha256(big))


def test_headers_say_how_much_follows_a_formats_end(tmp_path: Path, case: Case) -> None:
    pe, image = build_pe(), png()
    assert header_facts(pe, len(pe), "a.exe") == {
        "format": "EXE",
        "declared_end": len(pe),
        "beyond_end": 0,
    }
    root = tmp_path / "tree"
    root.mkdir()
    padding = 2 * MiB
    (root / "setup.exe").write_bytes(pe + b"\0" * padding)
    (root / "icon.png").write_bytes(image + os.urandom(MiB + 1))
    result = run_scan(case, [root], limits=LIMIT, use_rules=False)
    cover = {Path(f.subject).name: f for f in result.findings if f.kind == "coverage.big-file"}
    assert cover["setup.exe"].evidence["header"] == {
        "format": "EXE",
        "declared_end": len(pe),
        "beyond_end": padding,
    }
    assert cover["setup.exe"].severity is Severity.HIGH  # megabytes after the PE's end
    assert f"{padding:,} bytes after it" in cover["setup.exe"].message
    assert cover["icon.png"].evidence["header"]["declared_end"] == len(image)
    assert cover["icon.png"].evidence["yara_windows"] == []
    assert "no YARA rules ran" in cover["icon.png"].message


def test_member_over_the_limit_is_hashed_by_streaming(tmp_path: Path, case: Case) -> None:
    member = os.urandom(16 * 1024) * 128  # 2 MiB that compresses about 50:1 (a small zip)
    archive = tmp_path / "pkg.zip"
    archive.write_bytes(zip_bytes({"big/payload.dll": member, "small.txt": b"small"}))
    case.add_indicators(
        [Indicator(IndicatorType.MD5, hashlib.md5(member).hexdigest(), source="feed")]
    )
    result = run_scan(case, [archive], limits=LIMIT, use_rules=False)
    where = f"{archive}!/big/payload.dll"
    got = kinds(result.findings)
    assert got["error.too-large"] == [where] and got["ioc.hash"] == [where]
    (too,) = [f for f in result.findings if f.kind == "error.too-large"]
    assert too.evidence["sha256"] == hashlib.sha256(member).hexdigest()
    assert too.evidence["size"] == len(member)


def test_cli_big_file_fails_on_medium(tmp_path: Path) -> None:
    big = tmp_path / "disk.img"
    _sparse(big, 3 * MiB, b"nothing to see")
    argv = ["scan", str(big), "--max-file-size", "1M", "--no-rules", "--workers", "0"]
    case = ["--case", str(tmp_path / "case.duckdb")]
    assert main([*argv, *case, "--fail-on", "medium"]) == 1
    assert main([*argv, *case, "--fail-on", "high", "--full"]) == 0


def _patterned(size: int) -> bytes:
    """Bytes that compress about 30:1 (a random KiB repeated), ``size`` long."""
    return (os.urandom(1024) * (size // 1024 + 1))[:size]


def test_cab_member_over_the_limit_is_hashed(tmp_path: Path, case: Case) -> None:
    member = _patterned(2 * MiB)
    cab = tmp_path / "drivers.cab"
    cab.write_bytes(cab_bytes({"big.dll": member, "small.txt": b"small"}))
    assert cab.stat().st_size < LIMIT.max_file_bytes  # the CAB is read whole, its member is not
    case.add_indicators([Indicator(IndicatorType.SHA1, hashlib.sha1(member).hexdigest(), "feed")])
    result = run_scan(case, [cab], limits=LIMIT, use_rules=False)
    where = f"{cab}!/big.dll"
    got = kinds(result.findings)
    assert got["error.too-large"] == [where] and got["ioc.hash"] == [where]
    (too,) = [f for f in result.findings if f.kind == "error.too-large"]
    assert too.evidence["sha256"] == hashlib.sha256(member).hexdigest()
    assert too.evidence["size"] == len(member)


def test_big_asar_members_are_hashed_from_the_file(tmp_path: Path, case: Case) -> None:
    payload, small = os.urandom(MiB + 4096), b"module.exports = 1"
    asar = tmp_path / "app.asar"
    asar.write_bytes(asar_bytes({"node_modules/x/x.node": payload, "main.js": small}))
    case.add_indicators(
        [
            Indicator(IndicatorType.SHA256, hashlib.sha256(payload).hexdigest(), "feed"),
            Indicator(IndicatorType.MD5, hashlib.md5(small).hexdigest(), "feed"),
        ]
    )
    result = run_scan(case, [asar], limits=LIMIT, use_rules=False)
    got = kinds(result.findings)
    assert sorted(got["ioc.hash"]) == [f"{asar}!/main.js", f"{asar}!/node_modules/x/x.node"]
    (coverage,) = [f for f in result.findings if f.kind == "coverage.big-file"]
    assert "2 members hashed by streaming (not scanned)" in coverage.message
    assert result.members == 2


def test_big_msi_streams_are_hashed_from_the_file(tmp_path: Path, case: Case) -> None:
    payload, small = os.urandom(MiB + 1000), b"tiny stream in the mini stream"
    msi = tmp_path / "setup.msi"
    msi.write_bytes(ole_bytes({"payload.bin": payload, "small": small}))
    case.add_indicators(
        [
            Indicator(IndicatorType.SHA256, hashlib.sha256(payload).hexdigest(), "feed"),
            Indicator(IndicatorType.SHA1, hashlib.sha1(small).hexdigest(), "feed"),
        ]
    )
    result = run_scan(case, [msi], limits=LIMIT, use_rules=False)
    assert sorted(kinds(result.findings)["ioc.hash"]) == [
        f"{msi}!/payload.bin",
        f"{msi}!/small",
    ]
    (coverage,) = [f for f in result.findings if f.kind == "coverage.big-file"]
    assert "2 members hashed by streaming (not scanned)" in coverage.message
