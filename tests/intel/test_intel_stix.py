from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stix2

from taintline.intel import stix
from taintline.intel.interface import ReadResult
from taintline.limits import IntelLimits

SHA = "59e1edf4d82fae4978e97512b0331b7eb21dd4b838b850ba46794d9c7a2c0983"
T0 = datetime(2023, 3, 29, tzinfo=UTC)
T1 = datetime(2023, 12, 31, tzinfo=UTC)


def build_bundle() -> stix2.Bundle:
    vendor = stix2.Identity(name="Vendor Labs", identity_class="organization")
    campaign = stix2.Campaign(name="3CX supply chain")
    actor = stix2.IntrusionSet(name="UNC4736")
    malware = stix2.Malware(name="SUDDENICON", is_family=True)
    simple = stix2.Indicator(
        pattern=f"[file:hashes.'SHA-256' = '{SHA.upper()}']",
        pattern_type="stix",
        valid_from=T0,
        valid_until=T1,
        confidence=85,
        labels=["trojanized-installer"],
        indicator_types=["malicious-activity"],
        name="3CX MSI",
        created_by_ref=vendor.id,
    )
    domain = stix2.Indicator(
        pattern="[domain-name:value = 'JournalIDE.org.']", pattern_type="stix", valid_from=T0
    )
    url = stix2.Indicator(
        pattern="[url:value = 'https://sbmsa.wiki/blog/_insert']",
        pattern_type="stix",
        valid_from=T0,
    )
    net = stix2.Indicator(
        pattern="[ipv4-addr:value = '172.93.201.0/24']", pattern_type="stix", valid_from=T0
    )
    host = stix2.Indicator(
        pattern="[ipv6-addr:value = '2001:db8::1/128']", pattern_type="stix", valid_from=T0
    )
    md5 = stix2.Indicator(
        pattern="[file:hashes.MD5 = '0EEB1C0133EB4D571178B2D9D14CE3E9']",
        pattern_type="stix",
        valid_from=T0,
    )
    spaced = stix2.Indicator(
        pattern="[ domain-name:value  =  'spaced.example' ] ", pattern_type="stix", valid_from=T0
    )
    compound = stix2.Indicator(
        pattern=(
            "([file:name = 'ffmpeg.dll' AND file:hashes.'SHA-1' = 'BF939C9C261D27EE7BB92325CC588624FCA75429']"
            " OR [domain-name:value = 'msstorageazure.com']) FOLLOWEDBY [url:value = 'https://github.com/IconStorages/images']"
        ),
        pattern_type="stix",
        valid_from=T0,
    )
    other = stix2.Indicator(
        pattern="[process:name = 'update.exe']", pattern_type="stix", valid_from=T0
    )
    yara = stix2.Indicator(pattern="rule x { condition: true }", pattern_type="yara", valid_from=T0)
    rels = [
        stix2.Relationship(simple, "indicates", campaign),
        stix2.Relationship(simple, "indicates", malware),
        stix2.Relationship(domain, "indicates", actor),
    ]
    scos = [
        stix2.File(
            hashes={"SHA-256": SHA, "MD5": "0eeb1c0133eb4d571178b2d9d14ce3e9"}, name="3cx.msi"
        ),
        stix2.DomainName(value="Akamaicontainer.com"),
        stix2.URL(value="https://github.com/IconStorages/images"),
        stix2.IPv4Address(value="23.254.211.230"),
        stix2.IPv6Address(value="2001:db8::2"),
    ]
    return stix2.Bundle(
        vendor,
        campaign,
        actor,
        malware,
        simple,
        domain,
        url,
        net,
        host,
        md5,
        spaced,
        compound,
        other,
        yara,
        *rels,
        *scos,
    )


def rows(result: ReadResult) -> list[dict[str, object]]:
    return [r for t in result.tables for r in t.to_pylist()]


def read(path: Path) -> ReadResult:
    return stix.read(path, IntelLimits())


@pytest.fixture
def bundle_path(write: Callable[[str, str], Path]) -> Path:
    return write("bundle.json", build_bundle().serialize())


def test_indicators_observables_and_relationships(bundle_path: Path) -> None:
    result = read(bundle_path)
    assert not result.failed and not result.problems
    got = {(r["type"], r["value"]) for r in rows(result)}
    assert {
        ("sha256", SHA),
        ("domain", "journalide.org"),
        ("url", "https://sbmsa.wiki/blog/_insert"),
        ("cidr", "172.93.201.0/24"),
        ("ipv6", "2001:db8::1"),
        ("md5", "0eeb1c0133eb4d571178b2d9d14ce3e9"),
        ("domain", "spaced.example"),
        ("pattern", "[process:name = 'update.exe']"),
        ("filename", "3cx.msi"),
        ("domain", "akamaicontainer.com"),
        ("url", "https://github.com/IconStorages/images"),
        ("ipv4", "23.254.211.230"),
        ("ipv6", "2001:db8::2"),
    } <= got
    first = next(r for r in rows(result) if r["type"] == "sha256" and r["confidence"] is not None)
    assert first["source"] == "Vendor Labs"
    assert first["campaign"] == "3CX supply chain"
    assert first["valid_from"] == T0.replace(tzinfo=None)
    assert first["valid_until"] == T1.replace(tzinfo=None)
    assert first["labels"] == ["trojanized-installer", "malicious-activity"]
    assert first["description"] == "3CX MSI"
    context = json.loads(str(first["context"]))
    assert context["malware"] == ["SUDDENICON"] and context["campaign"] == ["3CX supply chain"]
    domain = next(r for r in rows(result) if r["value"] == "journalide.org")
    assert domain["campaign"] == "UNC4736"
    assert domain["source"] == "bundle.json"
    assert result.skipped["stix indicators with pattern_type yara"] == 1


def test_compound_pattern_kept_whole_with_atoms(bundle_path: Path) -> None:
    result = read(bundle_path)
    patterns = [
        r for r in rows(result) if r["type"] == "pattern" and "FOLLOWEDBY" in str(r["value"])
    ]
    assert len(patterns) == 1
    whole = patterns[0]["value"]
    atoms = {
        (r["type"], r["value"])
        for r in rows(result)
        if r["context"] and json.loads(str(r["context"])).get("pattern") == whole
    }
    assert atoms == {
        ("filename", "ffmpeg.dll"),
        ("sha1", "bf939c9c261d27ee7bb92325cc588624fca75429"),
        ("domain", "msstorageazure.com"),
        ("url", "https://github.com/IconStorages/images"),
    }


def test_bad_patterns_and_values_are_problems(write: Callable[[str, str], Path]) -> None:
    objects = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--1",
            "pattern": "[file:hashes.'SHA-256' = 'abc'",
            "pattern_type": "stix",
            "valid_from": "2023-01-01T00:00:00Z",
        },
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--2",
            "pattern": "[file:hashes.'SHA-256' = 'abc']",
            "pattern_type": "stix",
            "valid_from": "2023-01-01T00:00:00Z",
        },
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--3",
            "pattern": "[domain-name:value = 'ok.example']",
            "pattern_type": "stix",
            "valid_from": "not a time",
        },
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--4", "pattern": 42},
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--5",
            "pattern": "[domain-name:value = 'good.example']",
            "pattern_type": "stix",
            "valid_from": "2023-01-01T00:00:00Z",
            "confidence": "high",
        },
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--6",
            "pattern": "[domain-name:value = 'fine.example']",
            "pattern_type": "stix",
            "valid_from": "2023-01-01T00:00:00Z",
        },
        "not an object",
    ]
    path = write("bad.json", json.dumps({"type": "bundle", "id": "bundle--1", "objects": objects}))
    result = read(path)
    assert not result.failed
    assert [r["value"] for r in rows(result)] == ["fine.example"]
    assert [p.line for p in result.problems] == [1, 2, 3, 4, 5, 7]
    assert "invalid STIX pattern" in result.problems[0].message
    assert "64 hex digits" in result.problems[1].message


@pytest.mark.parametrize("streaming", [False, True])
def test_truncated_bundle_adds_nothing(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch, streaming: bool
) -> None:
    if streaming:
        monkeypatch.setattr(stix, "WHOLE_FILE_BYTES", 0)
    text = build_bundle().serialize()
    path = write("cut.json", text[: len(text) * 2 // 3])
    result = read(path)
    assert result.failed and not result.tables
    assert len(result.problems) == 1 and "JSON" in result.problems[0].message


def test_streaming_reader_gives_the_same_rows(
    bundle_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = rows(read(bundle_path))
    monkeypatch.setattr(stix, "WHOLE_FILE_BYTES", 0)
    streamed = rows(read(bundle_path))
    assert streamed == whole


def test_wrong_top_level_type(write: Callable[[str, str], Path]) -> None:
    path = write("s.json", '"just a string"')
    assert read(path).failed
    bundle = write("b.json", '{"type": "bundle", "id": "bundle--1", "objects": {"a": 1}}')
    assert "not a list" in read(bundle).problems[0].message


def test_sniff() -> None:
    assert stix.sniff(b'{"type": "bundle", "id": "bundle--x"', Path("x.txt"))
    assert not stix.sniff(b'{"Event": {}}', Path("x.json"))
    assert not stix.sniff(b"evil.com\n", Path("x.json"))


def test_batched_columns_give_the_same_rows(
    bundle_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows become Arrow columns in small batches; campaigns named by relationships that come
    after the indicators (and sources named by identities) still reach every row."""
    whole = rows(read(bundle_path))
    monkeypatch.setattr(stix, "BATCH_ROWS", 2)
    batched = rows(read(bundle_path))
    assert batched == whole
    assert any(r["campaign"] == "3CX supply chain" for r in batched)
