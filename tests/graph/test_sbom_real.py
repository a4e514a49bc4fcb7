"""SBOMs as generators write them: SPDX 2.2/2.3 deviations read with one warning each, SPDX 3.0
JSON-LD, compressed inputs, spec enum strings, SaaSBOM unknown refs, errors in words."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.builders import sboms

from taintline.case import Case
from taintline.cli.main import main
from taintline.graph import ingest
from taintline.graph.ingest import read_file
from taintline.graph.interface import GraphFacts, ReadContext

CTX = ReadContext(recorded_at=datetime(2024, 1, 1, tzinfo=UTC))
DLL = f"artifact:{sboms.DLL_SHA256}"
RELEASE = "release:3cxdesktopapp@18.12.407"


def _read(path: Path) -> tuple[str | None, GraphFacts]:
    return read_file(path, CTX)


def _edges(facts: GraphFacts) -> set[tuple[str, str, str]]:
    return {(str(e.kind), str(e.src), str(e.dst)) for e in facts.edges}


def test_spdx22_as_generators_write_it_is_read_with_one_warning_per_deviation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.spdx.json"
    path.write_bytes(sboms.dumps(sboms.spdx22_with_deviations()))
    name, facts = _read(path)
    assert name == "spdx"
    assert facts.problems == []
    edges = _edges(facts)
    assert ("contains", RELEASE, "software:3cxdesktopapp@18.12.407") in edges
    assert ("contains", RELEASE, DLL) in edges  # hasFiles, the 2.2 way
    assert ("contains", RELEASE, "software:./license") in edges  # a file without checksums
    assert ("depends_on", RELEASE, "software:pkg:npm/electron@19.0.0") in edges
    messages = [w.message for w in facts.warnings]
    # one warning per kind of deviation, even when it occurs on several elements
    assert len(messages) == len(set(messages))
    joined = "\n".join(messages)
    assert "'created' not in SPDX's" in joined
    assert "file without checksums" in joined and "SPDXRef-File-readme and 1 more" in joined
    assert "without 'downloadLocation'" in joined
    assert "'versionInfo' given as a number" in joined
    assert "relationship type not in upper case" in joined
    assert all(w.item == str(path) for w in facts.warnings)


def test_spdx_tagvalue_with_fractional_created(tmp_path: Path) -> None:
    path = tmp_path / "app.spdx"
    path.write_text(sboms.spdx23_tagvalue())
    name, facts = _read(path)
    assert name == "spdx" and facts.problems == []
    assert ("contains", RELEASE, "software:3cxdesktopapp@18.12.407") in _edges(facts)
    assert [w.message.split(" (")[0] for w in facts.warnings] == [
        "'created' not in SPDX's YYYY-MM-DDThh:mm:ssZ form"
    ]


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        (
            {"SPDXID": "SPDXRef-bad", "name": {"nested": "object"}},
            "package SPDXRef-bad: field 'name' is an object, not text; skipped",
        ),
        ({"name": "no-id"}, "package #3: has no text 'SPDXID'; skipped"),
        ("just text", "package #3: is text, not an object; skipped"),
    ],
)
def test_spdx_errors_name_the_element_in_words_and_the_rest_is_read(
    tmp_path: Path, element: object, expected: str
) -> None:
    doc = sboms.spdx22_with_deviations()
    doc["packages"].append(element)
    path = tmp_path / "bad.spdx.json"
    path.write_bytes(sboms.dumps(doc))
    _, facts = _read(path)
    assert [p.one_line() for p in facts.problems] == [f"{path}: {expected}"]
    assert ("contains", RELEASE, "software:3cxdesktopapp@18.12.407") in _edges(facts)


def test_spdx_whole_document_errors_are_words(tmp_path: Path) -> None:
    for content, words in [
        (b'{"spdxVersion": "SPDX-2.3", "packages": {"a": 1}}', "'packages': is an object"),
        (b'{"spdxVersion": "SPDX-2.3", "creationInfo": {"created": {"a": 1}}}', ""),
        (b'["spdxVersion"]', "SPDX document must be a JSON object, this is a list"),
        (b'{"spdxVersion": "SPDX-2.3", ', "not valid JSON"),
    ]:
        path = tmp_path / "x.spdx.json"
        path.write_bytes(content)
        _, facts = read_file(path, CTX, "spdx")
        text = " ".join(p.one_line() for p in facts.problems + facts.warnings)
        assert words in text
        assert "expected string or bytes-like object" not in text
        assert "SetterError" not in text and "violates type hint" not in text


def test_spdx3_jsonld(tmp_path: Path) -> None:
    path = tmp_path / "app.spdx3.json"
    path.write_bytes(sboms.dumps(sboms.spdx3_jsonld()))
    name, facts = _read(path)
    assert name == "spdx3"
    assert facts.problems == [] and facts.warnings == []
    assert _edges(facts) == {
        ("contains", RELEASE, "software:3cxdesktopapp@18.12.407"),
        ("contains", RELEASE, DLL),
        ("depends_on", RELEASE, "software:pkg:npm/electron@19.0.0"),
    }
    names = {n.attrs.get("name") for n in facts.nodes}
    assert {"3CXDesktopApp", "electron", "ffmpeg.dll"} <= names


def test_spdx3_bad_elements(tmp_path: Path) -> None:
    doc = sboms.spdx3_jsonld()
    doc["@graph"] += [
        7,
        {"type": "software_Package", "name": "no-id"},
        {
            "type": "Relationship",
            "spdxId": "r9",
            "from": "x",
            "to": ["y"],
            "relationshipType": "contains",
        },
    ]
    path = tmp_path / "bad.spdx3.json"
    path.write_bytes(sboms.dumps(doc))
    _, facts = _read(path)
    assert [p.message for p in facts.problems] == [
        "element #10: is a number, not an object; skipped",
        "software_package #11: has no 'spdxId'; skipped",
    ]
    assert [w.message for w in facts.warnings] == [
        "relationship with an end that is no package or file of the document; skipped (id 'x')"
    ]


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "zstd"])
@pytest.mark.parametrize(
    ("fixture", "suffix"),
    [
        (lambda: sboms.dumps(sboms.spdx22_with_deviations()), ".spdx.json"),
        (lambda: sboms.dumps(sboms.spdx3_jsonld()), ".spdx3.json"),
        (lambda: sboms.dumps(sboms.cyclonedx_saasbom()), ".cdx.json"),
        (lambda: b"host,software,version\nws-1,3CXDesktopApp,18.12.407\n", ".csv"),
    ],
)
def test_compressed_inputs_read_as_the_plain_file(
    tmp_path: Path, kind: str, fixture: object, suffix: str
) -> None:
    data = fixture()  # type: ignore[operator]
    plain = tmp_path / f"plain{suffix}"
    plain.write_bytes(data)
    packed = tmp_path / f"packed{suffix}.{kind}"
    packed.write_bytes(sboms.compress(data, kind))
    name_plain, facts_plain = _read(plain)
    name_packed, facts_packed = _read(packed)
    assert name_plain is not None and name_packed == name_plain
    assert _edges(facts_packed) == _edges(facts_plain) and facts_plain.edges


def test_compressed_corrupt_and_bombs_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sboms.dumps(sboms.cyclonedx_saasbom())
    cut = tmp_path / "cut.cdx.json.gz"
    cut.write_bytes(sboms.compress(data, "gzip")[:-12])
    _, facts = _read(cut)
    assert [p.message for p in facts.problems] == ["gzip data is cut short, nothing read"]
    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", 10_000)
    bomb = tmp_path / "bomb.json.zst"
    bomb.write_bytes(sboms.compress(b" " * 5_000_000, "zstd"))
    _, facts = _read(bomb)
    assert len(facts.problems) == 1
    assert "zstd data expands to more than the limit of 10,000 bytes" in facts.problems[0].message


def test_cyclonedx_types_are_spec_strings_and_saasbom_unknown_ref_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "saas.cdx.json"
    path.write_bytes(sboms.dumps(sboms.cyclonedx_saasbom()))
    case_path = tmp_path / "case.duckdb"
    assert main(["graph", "add", str(path), "--case", str(case_path)]) == 0
    captured = capsys.readouterr()
    assert "dependency on a ref no component or service" in captured.err
    assert "svc-billing-external" in captured.err
    with Case(case_path, read_only=True) as c:
        types = {n.key: n.attrs.get("type") for n in c.nodes()}
        edges = {(str(e.kind), str(e.src), str(e.dst)) for e in c.edges()}
    assert types["left-pad@1.3.0"] == "library"
    assert types["update-api@3"] == "service"
    assert ("depends_on", "release:provisioning-portal@2.1", "software:update-api@3") in edges


def test_cyclonedx_errors_name_the_element_in_words(tmp_path: Path) -> None:
    doc = sboms.cyclonedx_saasbom()
    doc["components"] += [{"type": "library", "name": {"a": 1}}, {"type": "gizmo", "name": "x"}]
    path = tmp_path / "bad.cdx.json"
    path.write_text(json.dumps(doc))
    _, facts = _read(path)
    assert [p.message for p in facts.problems] == [
        "component #2: field 'name' is an object, not text"
    ]
    assert any(
        w.message.startswith("component type missing or unknown, read as library (component 'x')")
        for w in facts.warnings
    )
    assert any(e.dst.key == "x" for e in facts.edges)
