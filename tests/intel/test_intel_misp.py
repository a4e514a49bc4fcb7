from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taintline.intel import misp
from taintline.intel.interface import ReadResult
from taintline.limits import IntelLimits

SHA = "7986bbaee8940da11ce089383521ab420c443ab7b15ed42aed91fd31ce833896"


def event(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "info": "3CX supply chain",
        "uuid": "5f8e8c3a-0000-4000-8000-000000000001",
        "Orgc": {"name": "CIRCL"},
        "Tag": [{"name": "tlp:clear"}],
        "Galaxy": [
            {
                "type": "threat-actor",
                "GalaxyCluster": [{"type": "threat-actor", "value": "Lazarus Group"}],
            }
        ],
        "Attribute": [
            {
                "type": "sha256",
                "value": SHA.upper(),
                "to_ids": True,
                "category": "Payload delivery",
                "comment": "ffmpeg.dll",
                "Tag": [{"name": "kill-chain:install"}],
                "first_seen": "2023-03-22T00:00:00Z",
            },
            {"type": "ip-dst|port", "value": "172.93.201.88|443", "to_ids": "1"},
            {"type": "domain|ip", "value": "journalide.org|172.93.201.88", "to_ids": True},
            {
                "type": "filename|md5",
                "value": "ffmpeg.dll|74BC2D0B6680FAA1A5A76B27E5479CBC",
                "to_ids": True,
            },
            {"type": "ip-src", "value": "10.0.0.5", "to_ids": False, "comment": "victim"},
            {"type": "text", "value": "free text", "to_ids": True},
            {"type": "sha1", "value": "nothex", "to_ids": True},
            {"type": "url", "value": "hxxps://sbmsa[.]wiki/blog/_insert", "to_ids": True},
            {
                "type": "yara",
                "value": "rule misp_rule { condition: true }",
                "to_ids": True,
                "uuid": "u-1",
            },
        ],
        "Object": [
            {
                "name": "file",
                "Attribute": [
                    {
                        "object_relation": "sha1",
                        "type": "sha1",
                        "value": "BF939C9C261D27EE7BB92325CC588624FCA75429",
                        "to_ids": True,
                    },
                    {
                        "object_relation": "filename",
                        "type": "filename",
                        "value": "d3dcompiler_47.dll",
                        "to_ids": False,
                    },
                ],
            }
        ],
    }
    base.update(extra)
    return base


def statements(result: ReadResult) -> dict[tuple[str, str], Any]:
    return {(str(i.type), i.value): i for i in result.indicators}


def test_event_attributes_objects_and_composites(write: Callable[[str, str], Path]) -> None:
    path = write("event.json", json.dumps({"Event": event()}))
    result = misp.read(path, IntelLimits())
    assert not result.failed
    got = statements(result)
    assert set(got) == {
        ("sha256", SHA),
        ("ipv4", "172.93.201.88"),
        ("domain", "journalide.org"),
        ("filename", "ffmpeg.dll"),
        ("md5", "74bc2d0b6680faa1a5a76b27e5479cbc"),
        ("url", "https://sbmsa.wiki/blog/_insert"),
        ("sha1", "bf939c9c261d27ee7bb92325cc588624fca75429"),
    }
    first = got[("sha256", SHA)]
    assert first.source == "CIRCL"
    assert first.campaign == "Lazarus Group"
    assert first.description == "ffmpeg.dll"
    assert first.valid_from is not None and first.valid_from.year == 2023
    assert {"tlp:clear", "kill-chain:install", "Lazarus Group"} <= set(first.labels)
    assert first.context["galaxies"] == ["threat-actor=Lazarus Group"]
    ports = [i for i in result.indicators if i.context.get("port") == "443"]
    assert len(ports) == 1 and ports[0].value == "172.93.201.88"
    assert got[("sha1", "bf939c9c261d27ee7bb92325cc588624fca75429")].context["object"] == "file"
    # to_ids=false is not imported: the victim IP and the object's file name are context only
    assert "misp to_ids=false (not for detection)" not in result.skipped
    assert {(str(i.type), i.value, i.context["to_ids"]) for i in result.context_only} == {
        ("ipv4", "10.0.0.5", False),
        ("filename", "d3dcompiler_47.dll", False),
    }
    assert result.skipped["misp type text"] == 1
    assert [p.line for p in result.problems] == [7]
    assert [y.text for y in result.yara] == ["rule misp_rule { condition: true }"]


def test_list_and_response_wrappers(write: Callable[[str, str], Path]) -> None:
    listed = write(
        "list.json", json.dumps([{"Event": event()}, {"Event": event(Orgc={"name": "Other"})}])
    )
    result = misp.read(listed, IntelLimits())
    assert {i.source for i in result.indicators} == {"CIRCL", "Other"}
    wrapped = write("resp.json", json.dumps({"response": [{"Event": event()}]}))
    assert len(statements(misp.read(wrapped, IntelLimits()))) == 7


def test_bad_files_fail_whole(write: Callable[[str, str], Path]) -> None:
    truncated = write("t.json", json.dumps({"Event": event()})[:200])
    result = misp.read(truncated, IntelLimits())
    assert result.failed and "invalid JSON" in result.problems[0].message
    wrong = write("w.json", json.dumps({"Event": event(Attribute={"type": "md5"})}))
    result = misp.read(wrong, IntelLimits())
    assert result.failed and "'Attribute' is not a list" in result.problems[0].message
    assert not result.indicators
    other = write("o.json", json.dumps({"something": 1}))
    assert misp.read(other, IntelLimits()).failed
    big = write("b.json", json.dumps({"Event": event()}))
    assert "limit" in misp.read(big, IntelLimits(max_json_bytes=100)).problems[0].message


def test_sniff() -> None:
    assert misp.sniff(b'{"Event": {"info": "x"', Path("a.json"))
    assert misp.sniff(b'{"response": [{"Event": {', Path("a.txt"))
    assert not misp.sniff(b'{"type": "bundle"}', Path("a.json"))


def test_whole_file_json_readers_refuse_over_the_limit_and_broken_json(
    write: Callable[[str, str], Path],
) -> None:
    from taintline.intel import endoflife

    doc = write("big.json", json.dumps({"Event": event()}))
    small = IntelLimits(max_json_bytes=100)
    for reader in (misp, endoflife):
        result = reader.read(doc, small)
        assert result.failed and result.format == reader.NAME
        [problem] = result.problems
        assert problem.item == str(doc)
        assert problem.message == f"{doc.stat().st_size} bytes is over the 100-byte JSON limit"
        broken = write(f"{reader.NAME}.json", '[{"cycle": "7.17", "eol": ')
        assert "invalid JSON" in reader.read(broken, IntelLimits()).problems[0].message
