from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from taintline.intel import csvtext
from taintline.intel.interface import ReadResult
from taintline.limits import IntelLimits

SHA = "aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868"


def rows(result: ReadResult) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for table in result.tables:
        out.extend(table.to_pylist())
    return sorted(out, key=lambda r: (str(r["type"]), str(r["value"])))


def pairs(result: ReadResult) -> set[tuple[str, str]]:
    return {(str(r["type"]), str(r["value"])) for r in rows(result)}


def test_plain_text_with_defanged_values_and_comments(write: Callable[[str, str], Path]) -> None:
    path = write(
        "iocs.txt",
        "# 3CX campaign\n"
        "// exported by hand\n"
        "\n"
        "hxxps[:]//raw.githubusercontent[.]com/IconStorages/images/main/icon1.ico\n"
        f"{SHA.upper()}  3CXDesktopApp-18.12.407.msi\n"
        "journalide(.)org   # C2\n"
        "172.93.201[.]88\n"
        "sbmsa.wiki.\n"
        "2001:db8::/32\n"
        "ffmpeg.dll\n"
        "not-an-indicator\n"
        "abcdef0123\n",
    )
    result = csvtext.read(path, IntelLimits())
    assert not result.failed
    assert pairs(result) == {
        ("url", "https://raw.githubusercontent.com/IconStorages/images/main/icon1.ico"),
        ("sha256", SHA),
        ("domain", "journalide.org"),
        ("ipv4", "172.93.201.88"),
        ("domain", "sbmsa.wiki"),
        ("cidr", "2001:db8::/32"),
        ("filename", "ffmpeg.dll"),
    }
    by_value = {r["value"]: r for r in rows(result)}
    assert by_value[SHA]["description"] == "3CXDesktopApp-18.12.407.msi"
    assert by_value["journalide.org"]["description"] == "C2"
    assert all(r["source"] == "iocs.txt" for r in rows(result))
    assert [(p.line, "hex string" in p.message) for p in result.problems] == [
        (11, False),
        (12, True),
    ]
    assert result.rejected == {"not a recognised indicator": 2}
    assert "10 digits" in result.problems[1].message


def test_csv_with_header_and_stated_types(write: Callable[[str, str], Path]) -> None:
    path = write(
        "list.csv",
        "# comment before the header\n"
        "Type,Indicator,Source,Description,Reference,Tags,Confidence\n"
        f"sha256,{SHA},Vendor A,the MSI,https://example.org/a,3cx;msi,80\n"
        "domain,EVIL.example.,Vendor B,,,,\n"
        "ip,2001:db8::1,Vendor B,v6 with a v4-ish type name,,,\n"
        "md5,abc,Vendor A,too short,,,\n"
        f"sha1,{SHA},Vendor A,wrong length for the stated type,,,\n"
        "weird,foo,Vendor A,unknown type,,,\n"
        "cert_serial,00 85 38 A6 C5 01 8F 50 FC,Vendor C,TT cert,,,\n",
    )
    result = csvtext.read(path, IntelLimits())
    got = {(r["type"], r["value"]): r for r in rows(result)}
    assert set(got) == {
        ("sha256", SHA),
        ("domain", "evil.example"),
        ("ipv6", "2001:db8::1"),
        ("cert_serial", "8538a6c5018f50fc"),
    }
    first = got[("sha256", SHA)]
    assert first["source"] == "Vendor A"
    assert first["labels"] == ["3cx", "msi"]
    assert first["confidence"] == 80
    assert first["context"] == '{"reference":"https://example.org/a"}'
    assert {p.line for p in result.problems} == {6, 7, 8}
    assert result.rejected == {
        "not a valid md5 value": 1,
        "not a valid sha1 value": 1,
        "unknown type word 'weird'": 1,
    }


def test_quoted_csv_and_tabs(write: Callable[[str, str], Path]) -> None:
    quoted = write("q.csv", 'value,description\n"evil.com","C2, seen twice"\n"1.2.3.4",""\n')
    result = csvtext.read(quoted, IntelLimits())
    assert pairs(result) == {("domain", "evil.com"), ("ipv4", "1.2.3.4")}
    assert rows(result)[0]["description"] == "C2, seen twice"
    tabs = write("t.tsv", "indicator\tcomment\nevil.com\tx\n")
    assert pairs(csvtext.read(tabs, IntelLimits())) == {("domain", "evil.com")}


def test_headerless_type_value_lines(write: Callable[[str, str], Path]) -> None:
    path = write("tv.txt", f"sha256,{SHA}\ndomain evil.com c2 server\n")
    result = csvtext.read(path, IntelLimits())
    assert pairs(result) == {("sha256", SHA), ("domain", "evil.com")}
    assert {r["description"] for r in rows(result)} == {None, "c2 server"}


def test_a_line_that_looks_like_data_is_not_a_header(write: Callable[[str, str], Path]) -> None:
    path = write("x.txt", "evil.com,malware\nother.org,campaign\n")
    assert pairs(csvtext.read(path, IntelLimits())) == {
        ("domain", "evil.com"),
        ("domain", "other.org"),
    }


def test_limits(write: Callable[[str, str], Path]) -> None:
    path = write("big.txt", "evil.com\n" + "a" * 100 + ".com\n")
    result = csvtext.read(path, IntelLimits(max_line_bytes=50))
    assert pairs(result) == {("domain", "evil.com")}
    assert result.problems[0].line == 2
    refused = csvtext.read(path, IntelLimits(max_text_bytes=10))
    assert refused.failed and "limit" in refused.problems[0].message


def test_chunked_reading_keeps_header_line_numbers_and_every_row(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list far larger than one chunk: the header from the first chunk applies to all, no
    row is lost or doubled at chunk boundaries, and problems keep their true line numbers."""
    monkeypatch.setattr(csvtext, "CHUNK_BYTES", 97)  # many boundaries, most mid-line
    body = ["value,type,source"]
    expected: set[tuple[str, str]] = set()
    for i in range(300):
        value = f"{i:064x}"
        body.append(f"{value},sha256,feed")
        expected.add(("sha256", value))
    body.insert(150, "zz-not-a-hash,sha256,feed")  # becomes line 151
    path = write("big.csv", "\ufeff" + "\n".join(body))  # BOM, no final newline
    result = csvtext.read(path, IntelLimits())
    assert pairs(result) == expected
    assert [(p.line, p.message) for p in result.problems] == [
        (151, "not a valid sha256 value: not a hex hash: 'zz-not-a-hash'")
    ]


def test_an_endless_line_is_skipped_while_streaming(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvtext, "CHUNK_BYTES", 64)
    path = write("long.txt", "evil.example\n" + "a" * 5000 + "\nbad.example\n")
    result = csvtext.read(path, IntelLimits(max_line_bytes=256))
    assert pairs(result) == {("domain", "evil.example"), ("domain", "bad.example")}
    assert [(p.line, p.message) for p in result.problems] == [(2, "line too long: skipped")]
