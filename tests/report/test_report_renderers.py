from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from taintline.errors import UsageError
from taintline.interchange import finding_from_dict
from taintline.model import Finding, FindingSource, Severity
from taintline.report import FORMATS, RenderContext, render_findings

SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "sarif-2.1.0-rtm.5.json").read_text())

FINDINGS = [
    Finding(
        "signature.appended-data",
        Severity.CRITICAL,
        "/releases/3CX Desktop App/setup.msi!/files.cab!/d3dcompiler_47.dll",
        "4 KiB of high-entropy data inside the certificate table",
        evidence={"hidden_bytes": 4096, "entropy": 7.98, "marker": "feedface"},
    ),
    Finding(
        "network.ioc",
        Severity.HIGH,
        "domain:msstorageazure.com",
        "3 DNS queries",
        source=FindingSource.HUNT,
        host="ws-17",
        time=datetime(2023, 3, 22, 10, 0, tzinfo=UTC),
        indicators=("domain:msstorageazure.com",),
    ),
    Finding("pe.unsigned", Severity.INFO, "rel/tool.exe", "not signed"),
]


def _render(fmt: str) -> str:
    buf = io.StringIO()
    render_findings(FINDINGS, fmt, buf, RenderContext(command="scan", inputs=("rel",), width=200))
    return buf.getvalue()


def test_sarif_validates_against_official_schema() -> None:
    log = json.loads(_render("sarif"))
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == sorted({f.kind for f in FINDINGS})
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {
        "signature.appended-data": "error",
        "network.ioc": "error",
        "pe.unsigned": "note",
    }
    msi = next(r for r in run["results"] if r["ruleId"] == "signature.appended-data")
    uri = msi["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "file:///releases/3CX%20Desktop%20App/setup.msi"
    hunt = next(r for r in run["results"] if r["ruleId"] == "network.ioc")
    assert "physicalLocation" not in hunt["locations"][0]
    assert hunt["partialFingerprints"]["taintline/v1"] == FINDINGS[1].fingerprint


def test_sarif_empty_run_is_valid() -> None:
    buf = io.StringIO()
    render_findings([], "sarif", buf)
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(buf.getvalue()))


def test_jsonl_roundtrips_to_the_same_findings() -> None:
    lines = _render("jsonl").splitlines()
    back = [finding_from_dict(json.loads(line)) for line in lines]
    assert back == FINDINGS


def test_csv_has_one_row_per_finding() -> None:
    rows = list(csv.DictReader(io.StringIO(_render("csv"))))
    assert [r["kind"] for r in rows] == [f.kind for f in FINDINGS]
    assert json.loads(rows[0]["evidence"])["hidden_bytes"] == 4096


def test_table_is_worst_first_with_summary() -> None:
    text = _render("table")
    assert text.index("signature.appended-data") < text.index("pe.unsigned")
    assert "3 finding(s): 1 critical, 1 high, 1 info" in text


def test_unknown_format_is_usage_error() -> None:
    with pytest.raises(UsageError):
        render_findings(FINDINGS, "xml", io.StringIO())
    assert set(FORMATS) >= {"table", "jsonl", "sarif", "csv"}


def test_stix_bundle_validates_and_links_sightings_to_hosts() -> None:
    import stix2

    text = _render("stix")
    bundle = stix2.parse(text, allow_custom=False)
    types = [o.type for o in bundle.objects]
    assert types.count("indicator") == 1
    sighting = next(o for o in bundle.objects if o.type == "sighting")
    host = next(o for o in bundle.objects if o.type == "identity" and o.name == "ws-17")
    assert sighting.where_sighted_refs == [host.id]
    note = next(o for o in bundle.objects if o.type == "note" and "certificate table" in o.content)
    file_obj = next(o for o in bundle.objects if o.id == note.object_refs[0])
    assert file_obj.name == "d3dcompiler_47.dll"


def test_html_is_self_contained_and_escapes_hostile_names() -> None:
    hostile = Finding(
        "yara", Severity.HIGH, 'evil<script>alert(1)</script>".exe', "<img src=x onerror=alert(1)>"
    )
    buf = io.StringIO()
    render_findings([*FINDINGS, hostile], "html", buf)
    page = buf.getvalue()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert (
        "http://" not in page and "https://" not in page.split("<body>", 1)[1].split("</table>")[0]
    )
    assert "ws-17" in page  # the host timeline section


def test_report_command_renders_case_findings(tmp_path: Path) -> None:
    from taintline.case import Case
    from taintline.cli.main import main

    with Case(tmp_path / "c.duckdb") as c:
        c.add_findings(FINDINGS)
    out = tmp_path / "r.sarif"
    args = ["report", "--case", str(tmp_path / "c.duckdb"), "--format", "sarif", "-o", str(out)]
    assert main(args) == 0
    log = json.loads(out.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert len(log["runs"][0]["results"]) == 3
    out_html = tmp_path / "r.html"
    assert main([*args[:3], "--format", "html", "-o", str(out_html), "--min-severity", "high"]) == 0
    assert "pe.unsigned" not in out_html.read_text()
    assert main([*args[:3], "--format", "nope"]) == 2


def test_stix_bundle_with_hostile_values_validates() -> None:
    """Quotes, backslashes, bidi overrides and undecodable bytes in names and indicator
    values still give a bundle ``stix2`` accepts, with patterns its grammar parses."""
    import stix2
    from stix2patterns.validator import run_validator

    nasty = "it's a \\ back\\slash \u202etxt.exe \udcff [red]x[/red]"
    findings = [
        Finding(
            "network.ioc.domain",
            Severity.HIGH,
            nasty,
            f"{nasty} contacted domain:x'.example",
            source=FindingSource.HUNT,
            host=nasty,
            time=datetime(2023, 3, 22, 10, 0, tzinfo=UTC),
            evidence={"last_seen": "not a time", "count": 7},
            indicators=("domain:x'.example", "url:http://a.example/\\'p"),
        ),
        Finding(
            "ioc.hash",
            Severity.CRITICAL,
            f"bundle.zip!/{nasty}.dll",
            "hash match",
            evidence={"sha256": "a" * 64},
            indicators=("sha256:" + "a" * 64,),
        ),
        Finding("error.unreadable", Severity.MEDIUM, f"/x/{nasty}", "cannot read"),
    ]
    buf = io.StringIO()
    render_findings(findings, "stix", buf, RenderContext())
    bundle = stix2.parse(buf.getvalue(), allow_custom=False)
    patterns = [o.pattern for o in bundle.objects if o.type == "indicator"]
    assert len(patterns) == 3
    for pattern in patterns:
        assert run_validator(pattern, stix_version="2.1") == []
    sighting = next(o for o in bundle.objects if o.type == "sighting")
    assert sighting.count == 7 and sighting.last_seen == sighting.first_seen
    host = next(o for o in bundle.objects if o.id == sighting.where_sighted_refs[0])
    assert host.name == "it's a \\ back\\slash \u202etxt.exe \\xff [red]x[/red]"
    again = io.StringIO()
    render_findings(findings, "stix", again, RenderContext())
    ids = [o["id"] for o in json.loads(buf.getvalue())["objects"]]
    assert ids == [o["id"] for o in json.loads(again.getvalue())["objects"]]  # stable ids
