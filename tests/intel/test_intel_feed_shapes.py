"""Published indicator-file shapes, generated here (harmless values), read exactly.

Each test writes a file in a shape seen in public IOC releases and asserts the exact
(type, value) pairs that come out, and that the report links in it are not among them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.intel import csvtext
from taintline.intel.interface import ReadResult
from taintline.intel.store import ingest, read_file
from taintline.limits import IntelLimits

Write = Callable[[str, str | bytes], Path]


def _digests(seed: str) -> tuple[str, str, str]:
    data = seed.encode()
    return (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
    )


SHA256, SHA1, MD5 = _digests("installer")
SHA256_B, SHA1_B, MD5_B = _digests("library")
REPORT = "https://blog.example.org/2023/03/supply-chain-report"


def rows(result: ReadResult) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for table in result.tables:
        out.extend(table.to_pylist())
    return out


def pairs(result: ReadResult) -> set[tuple[str, str]]:
    return {(str(r["type"]), str(r["value"])) for r in rows(result)}


def values(result: ReadResult) -> set[str]:
    return {str(r["value"]) for r in rows(result)}


def read(path: Path) -> ReadResult:
    return read_file(path, IntelLimits())


def test_type_column_plus_value_column_with_a_note(write: Write) -> None:
    path = write(
        "3cx-iocs.csv",
        "Indicator,Data,Note\r\n"
        f"sha256,{SHA256},Trojanized installer (see {REPORT})\r\n"
        f"sha1,{SHA1},Trojanized installer\r\n"
        f"md5,{MD5},\r\n"
        "domain,update-check[.]example,C2\r\n"
        "url,hxxps://cdn.example/icons/icon1.ico,payload\r\n"
        "ip,198.51.100.7,\r\n",
    )
    result = read(path)
    assert not result.failed and not result.rejected
    assert pairs(result) == {
        ("sha256", SHA256),
        ("sha1", SHA1),
        ("md5", MD5),
        ("domain", "update-check.example"),
        ("url", "https://cdn.example/icons/icon1.ico"),
        ("ipv4", "198.51.100.7"),
    }
    assert REPORT not in values(result)
    by_value = {r["value"]: r for r in rows(result)}
    assert by_value[SHA256]["description"] == f"Trojanized installer (see {REPORT})"
    assert json.loads(str(by_value[SHA256]["context"]))["reference"] == REPORT
    assert by_value["update-check.example"]["description"] == "C2"


@pytest.mark.parametrize(
    "header",
    ["type,value,comment", "value,type,comment", "comment,value,type", "Type;Value;Comment"],
)
def test_type_and_value_columns_in_any_order(write: Write, header: str) -> None:
    delimiter = ";" if ";" in header else ","
    names = [h.lower() for h in header.split(delimiter)]
    lines = [header]
    for kind, value in (("sha256", SHA256), ("hostname", "c2.example"), ("ip", "2001:db8::5")):
        cells = {"type": kind, "value": value, "comment": "note"}
        lines.append(delimiter.join(cells[n] for n in names))
    result = read(write("list.csv", "\n".join(lines) + "\n"))
    assert pairs(result) == {("sha256", SHA256), ("domain", "c2.example"), ("ipv6", "2001:db8::5")}


def test_several_values_in_one_cell_are_linked_as_one_file(write: Write) -> None:
    path = write(
        "hashes.csv",
        "file,hashes,reference\n"
        f'setup.msi,"{SHA256} {SHA1} {MD5}",{REPORT}\n'
        f"lib.dll,{SHA256_B};{SHA1_B};{MD5_B},{REPORT}\n",
    )
    result = read(path)
    assert pairs(result) == {
        ("filename", "setup.msi"),
        ("sha256", SHA256),
        ("sha1", SHA1),
        ("md5", MD5),
        ("filename", "lib.dll"),
        ("sha256", SHA256_B),
        ("sha1", SHA1_B),
        ("md5", MD5_B),
    }
    assert REPORT not in values(result)
    by_value = {r["value"]: json.loads(str(r["context"])) for r in rows(result)}
    assert set(by_value[MD5]["together_with"]) == {
        "filename:setup.msi",
        f"sha256:{SHA256}",
        f"sha1:{SHA1}",
        f"md5:{MD5}",
    }
    assert by_value[SHA1_B]["reference"] == REPORT


def test_hash_columns_named_by_type_in_one_row(write: Write) -> None:
    path = write(
        "files.csv",
        "SHA256,SHA1,MD5,Filename,Source\n"
        f"{SHA256},{SHA1},{MD5},3CXDesktopApp.exe,{REPORT}\n"
        f"{SHA256_B},,{MD5_B}\n",  # a short, ragged row
    )
    result = read(path)
    assert pairs(result) == {
        ("sha256", SHA256),
        ("sha1", SHA1),
        ("md5", MD5),
        ("filename", "3CXDesktopApp.exe"),
        ("sha256", SHA256_B),
        ("md5", MD5_B),
    }
    assert REPORT not in values(result)
    linked = {r["value"]: json.loads(str(r["context"])) for r in rows(result)}
    assert linked[MD5_B]["together_with"] == [f"sha256:{SHA256_B}", f"md5:{MD5_B}"]


def test_headerless_rows_with_several_hashes(write: Write) -> None:
    path = write(
        "hashes.txt",
        f"{SHA256};{SHA1};{MD5};Trojanized installer {REPORT}\n{SHA256_B} {MD5_B}\n",
    )
    result = read(path)
    assert pairs(result) == {
        ("sha256", SHA256),
        ("sha1", SHA1),
        ("md5", MD5),
        ("sha256", SHA256_B),
        ("md5", MD5_B),
    }
    assert REPORT not in values(result)
    by_value = {r["value"]: r for r in rows(result)}
    assert by_value[SHA1]["description"] == f"Trojanized installer {REPORT}"


def test_bom_crlf_ragged_rows_and_invisible_marks(write: Write) -> None:
    text = (
        "\ufefftype,value,note,extra\r\n"
        "domain,\u200eevil\u200b[.]example\u200f\r\n"
        "sha256,\u202a" + SHA256.upper() + "\u202c,a note,x,y,z\r\n"
        "url\r\n"
        "ip,203.0.113[.]9\r\n"
    )
    result = read(write("marks.csv", text.encode("utf-8")))
    assert pairs(result) == {
        ("domain", "evil.example"),
        ("sha256", SHA256),
        ("ipv4", "203.0.113.9"),
    }
    assert result.rejected == {"no value on this line": 1}


@pytest.mark.parametrize(
    ("defanged", "expected"),
    [
        ("hxxp://evil[.]example/a", ("url", "http://evil.example/a")),
        ("hxxps[://]evil[.]example/a", ("url", "https://evil.example/a")),
        ("hXXps[:]//evil(.)example/a", ("url", "https://evil.example/a")),
        ("evil[dot]example", ("domain", "evil.example")),
        ("evil(dot)example", ("domain", "evil.example")),
        ("198.51.100[.]7", ("ipv4", "198.51.100.7")),
        ("2001:db8[:]:1", ("ipv6", "2001:db8::1")),
        ("github[.]com/IconStorages/images", ("url", "https://github.com/IconStorages/images")),
    ],
)
def test_defanging_variants(write: Write, defanged: str, expected: tuple[str, str]) -> None:
    result = read(write("one.txt", defanged + "\n"))
    assert pairs(result) == {expected}


def test_type_labels_seen_in_feeds(write: Write) -> None:
    path = write(
        "labels.csv",
        "type,value\n"
        "url_path,github.com/IconStorages/images\n"
        "ip_port,198.51.100.7:443\n"
        "ip:port,[2001:db8::7]:8443\n"
        "hostname,c2.example\n"
        "hostname,203.0.113.5\n"
        f"filename|sha256,ffmpeg.dll|{SHA256}\n"
        "mutex,Global\\3cx-update\n"
        f"link,{REPORT}\n",
    )
    result = read(path)
    assert pairs(result) == {
        ("url", "https://github.com/IconStorages/images"),
        ("ipv4", "198.51.100.7"),
        ("ipv6", "2001:db8::7"),
        ("domain", "c2.example"),
        ("ipv4", "203.0.113.5"),
        ("filename", "ffmpeg.dll"),
        ("sha256", SHA256),
    }
    assert REPORT not in values(result)
    contexts = {r["value"]: json.loads(str(r.get("context") or "{}")) for r in rows(result)}
    assert contexts["198.51.100.7"] == {"port": "443"}
    assert contexts["2001:db8::7"] == {"port": "8443"}
    assert contexts[SHA256]["together_with"] == ["filename:ffmpeg.dll", f"sha256:{SHA256}"]
    assert [w.line for w in result.warnings] == [6]
    assert result.rejected == {
        "type 'mutex' is not matched by taintline": 1,
        "report link (kept as the source's reference)": 1,
    }


def test_scheme_less_urls(write: Write) -> None:
    path = write(
        "urls.txt",
        "github.com/IconStorages/images\nraw.githubusercontent.com/a/b/main/icon2.ico\n",
    )
    assert pairs(read(path)) == {
        ("url", "https://github.com/IconStorages/images"),
        ("url", "https://raw.githubusercontent.com/a/b/main/icon2.ico"),
    }


def test_reference_and_source_columns_are_never_indicators(write: Write) -> None:
    path = write(
        "refs.csv",
        "indicator,type,source,reference\n"
        f"evil.example,domain,{REPORT},{REPORT}\n"
        f"{SHA256},sha256,Vendor,{REPORT}#ioc\n",
    )
    result = read(path)
    assert pairs(result) == {("domain", "evil.example"), ("sha256", SHA256)}
    assert not any(str(v).startswith("https://blog") for v in values(result))


def test_loki_hash_and_c2_lists(write: Write) -> None:
    hashes = write(
        "hash-iocs.txt",
        "# LOKI-style hash list\n# HASH;COMMENT\n\n"
        f"{MD5};Generated sample A {REPORT}\n"
        f"{SHA1};Generated sample B\n"
        f"{SHA256};Generated sample C (setup.msi)\n",
    )
    got = read(hashes)
    assert pairs(got) == {("md5", MD5), ("sha1", SHA1), ("sha256", SHA256)}
    by_value = {r["value"]: r for r in rows(got)}
    assert by_value[SHA256]["description"] == "Generated sample C (setup.msi)"
    c2 = write("c2-iocs.txt", "# Campaign X https://example.org/r\nc2.example\n198.51.100.9\n")
    assert pairs(read(c2)) == {("domain", "c2.example"), ("ipv4", "198.51.100.9")}


def test_loki_filename_iocs_are_regexes_never_names(write: Write) -> None:
    path = write(
        "filename-iocs.txt",
        "# LOKI file name IOCs\n# REGEX;SCORE\n\n"
        "# Generated campaign X https://example.org/x\n"
        "\\\\AppData\\\\Local\\\\Programs\\\\3CXDesktopApp\\\\app\\\\ffmpeg\\.dll;70\n"
        "\\\\d3dcompiler_47\\.dll$;60;\\\\Windows\\\\System32\\\\\n"
        "(TEMP|Temp)\\\\[a-z]{5}\\.exe;80\n"
        "(?<=x)bad;50\n",
    )
    result = read(path)
    assert pairs(result) == {
        (
            "filename-regex",
            "\\\\AppData\\\\Local\\\\Programs\\\\3CXDesktopApp\\\\app\\\\ffmpeg\\.dll",
        ),
        ("filename-regex", "\\\\d3dcompiler_47\\.dll$"),
        ("filename-regex", "(TEMP|Temp)\\\\[a-z]{5}\\.exe"),
    }
    by_value = {r["value"]: r for r in rows(result)}
    first = by_value["\\\\d3dcompiler_47\\.dll$"]
    assert first["description"] == "Generated campaign X https://example.org/x"
    assert json.loads(str(first["context"])) == {
        "score": 60,
        "false_positive_regex": "\\\\Windows\\\\System32\\\\",
        "reference": "https://example.org/x",
    }
    assert list(result.rejected) == ["regex RE2 cannot compile"]


def test_json_that_is_neither_stix_nor_misp_is_refused(write: Write) -> None:
    schema = write(
        "schema.json",
        json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}),
    )
    result = read(schema)
    assert result.failed and result.format == "json"
    assert (
        "neither a STIX 2.1 bundle, a MISP event nor endoflife.date" in result.problems[0].message
    )
    listed = write("list.txt", "[.]not json\nevil[.]example\n")
    assert pairs(read(listed)) == {("domain", "evil.example")}


def test_a_file_nothing_could_be_read_from_fails_with_reasons(case: Case, write: Write) -> None:
    words = "\n".join(f"Indicator,{n}" for n in ("alpha", "beta", "gamma"))
    bad = write("bad.csv", "kind,what\n" + words.replace("Indicator", "Registry-ish") + "\n")
    good = write("good.txt", "evil.example\n")
    comments = write("comments.txt", "# nothing but comments\n")
    report = ingest(case, [bad, good, comments])
    assert [f.failed for f in report.files] == [True, False, True]
    assert report.files[0].failure == (
        "nothing could be read (3 rows: unknown type word 'registry-ish')"
    )
    assert report.files[0].rejected == {"unknown type word 'registry-ish'": 3}
    assert "no indicators" in report.files[2].failure
    assert [i.value for i in case.indicators()] == ["evil.example"]


def test_one_crashing_reader_never_stops_the_batch(
    case: Case, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    first = write("first.csv", "type,value\nbroken,evil.example\n")
    second = write("second.txt", "other.example\n")
    real = csvtext.read

    def crash(path: Path, limits: IntelLimits) -> ReadResult:
        if path.name == "first.csv":
            raise pa.ArrowInvalid("simulated kernel failure")
        return real(path, limits)

    monkeypatch.setattr(csvtext, "read", crash)
    report = ingest(case, [first, second])
    assert report.files[0].failed and "ArrowInvalid" in report.files[0].failure
    assert not report.files[1].failed
    assert [i.value for i in case.indicators()] == ["other.example"]


def test_intel_add_reports_failures_and_explains_rejects(
    tmp_path: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    from taintline.cli.main import main

    case_path = tmp_path / "case.duckdb"
    bad = write("bad.csv", "type,value\n" + "".join(f"sometype,v{i}\n" for i in range(31)))
    good = write("good.txt", "evil.example\nnot an indicator at all\n")
    code = main(["intel", "add", "--case", str(case_path), str(bad), str(good)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "31 rows: unknown type word 'sometype'" in err
    assert "21 more problem(s)" in err
    code = main(
        ["intel", "add", "--case", str(case_path), "--explain-rejects", str(good), str(bad)]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert "bad.csv:32: unknown type word 'sometype': v30" in err
    assert "good.txt:2: not a recognised indicator" in err


def test_misp_to_ids_false_is_context_found_by_show_never_matched(
    tmp_path: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    from taintline.cli.main import main

    event = {
        "Event": {
            "info": "generated event",
            "Orgc": {"name": "Generated CERT"},
            "Attribute": [
                {"type": "domain", "value": "c2.example", "to_ids": True},
                {"type": "ip-src", "value": "192.0.2.44", "to_ids": False, "comment": "victim"},
                {"type": "link", "value": REPORT, "to_ids": False},
            ],
        }
    }
    path = write("event.json", json.dumps(event))
    case_path = tmp_path / "case.duckdb"
    assert main(["intel", "add", "--case", str(case_path), str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "1 kept as context only (never matched)" in out
    with Case(case_path, read_only=True) as c:
        assert [(str(i.type), i.value) for i in c.indicators()] == [("domain", "c2.example")]
    assert main(["intel", "show", "--case", str(case_path), "192.0.2[.]44"]) == 0
    out, _ = capsys.readouterr()
    assert "ipv4 192.0.2.44  (context only, never matched)" in out
    assert "source: Generated CERT" in out and "description: victim" in out


def test_stix_ip_in_a_domain_name_is_retyped_with_a_warning(write: Write) -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-000000000001",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--00000000-0000-4000-8000-000000000002",
                "pattern": "[domain-name:value = '198.51.100.23']",
                "pattern_type": "stix",
                "valid_from": "2023-03-29T00:00:00Z",
            },
            {
                "type": "domain-name",
                "spec_version": "2.1",
                "id": "domain-name--00000000-0000-4000-8000-000000000003",
                "value": "2001:db8::23",
            },
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--00000000-0000-4000-8000-000000000004",
                "pattern": "[domain-name:value = 'c2.example']",
                "pattern_type": "stix",
                "valid_from": "2023-03-29T00:00:00Z",
            },
        ],
    }
    result = read(write("bundle.json", json.dumps(bundle)))
    assert pairs(result) == {
        ("ipv4", "198.51.100.23"),
        ("ipv6", "2001:db8::23"),
        ("domain", "c2.example"),
    }
    assert [w.line for w in result.warnings] == [1, 2]
    assert "is an IP address; kept as ipv4" in result.warnings[0].message


def test_intel_add_folder_reads_recursively_and_reports_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from taintline.cli.main import main

    feeds = tmp_path / "feeds"
    (feeds / "yara" / "inc").mkdir(parents=True)
    (feeds / "iocs").mkdir()
    (feeds / ".git").mkdir()
    (feeds / ".git" / "config.txt").write_text("evil.example\n")
    (feeds / "yara" / "inc" / "base.yar").write_text("private rule base { condition: true }\n")
    (feeds / "yara" / "loki.yar").write_text(
        'include "inc/base.yar"\n'
        'rule ext_rule { condition: base and extension == ".exe" and filename != "" }\n'
    )
    (feeds / "yara" / "broken.yara").write_text("rule b { condition: and }\n")
    (feeds / "iocs" / "c2-iocs.txt").write_text("c2.example\n")
    (feeds / "iocs" / "schema.json").write_text('{"$schema": "x", "properties": {}}')
    (feeds / "README.md").write_text("# not intel\n")
    case_path = tmp_path / "case.duckdb"
    code = main(["intel", "add", "--case", str(case_path), str(feeds)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "c2-iocs.txt [csv]: 1 domain" in out
    assert "loki.yar [yara]" in out and "2 YARA rules (base, ext_rule)" in out
    assert "inc/base.yar [yara]" in out
    assert "broken.yara: FAILED" in err and "schema.json: FAILED" in err
    assert f"{feeds}: 1 file(s) left out" in out
    assert "config.txt" not in out + err


def test_a_rule_collections_readme_is_not_read_as_intel(case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "collection"
    folder.mkdir()
    (folder / "README.md").write_text("# My rules\n\nSee https://example.org\n")
    (folder / "rules.yar").write_text("rule r { condition: filesize > 0 }\n")
    report = ingest(case, [folder])
    assert [(Path(f.path).name, f.failed) for f in report.files] == [("rules.yar", False)]
    assert report.left_out == {str(folder): 1}
