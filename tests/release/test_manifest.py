"""``manifest``: deterministic, valid against the shipped schema, readable back, from files, from
the case (no re-read) and from SBOMs."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest
from tests.release.conftest import Releases, make

from taintline.case import Case
from taintline.release.manifest import (
    SCHEMA_FILE,
    ManifestError,
    dumps,
    from_document,
    manifest_from_case,
    manifest_from_paths,
    read_manifest,
    to_document,
)
from taintline.scan.engine import ScanOptions, scan_paths
from taintline.testing import releases


def _schema() -> dict[str, object]:
    return orjson.loads(SCHEMA_FILE.read_bytes())  # type: ignore[no-any-return]


@pytest.mark.parametrize("form", ["folder", "msi"])
def test_manifest_validates_round_trips_and_is_deterministic(
    rel: Releases, tmp_path: Path, form: str
) -> None:
    side = make(form, rel.tampered, tmp_path, "DemoApp-18.12.416")
    with Case(tmp_path / "one.duckdb") as one, Case(tmp_path / "two.duckdb") as two:
        first, errors = manifest_from_paths([side], one, workers=0)
        second, _ = manifest_from_paths([side], two, workers=0)
    assert errors == []
    text = dumps(first)
    assert text == dumps(second)  # nothing depends on the run, the case or the time
    doc = orjson.loads(text)
    jsonschema.validate(doc, _schema())
    assert doc["schema_version"] == 1
    assert doc["product"] == {"name": "DemoApp", "version": "18.12.416"}
    back = from_document(doc, "m.json")
    assert dumps(back) == text
    files = {f["path"]: f for f in doc["files"]}
    ffmpeg = files["ffmpeg.dll" if form == "folder" else "disk1.cab!/ffmpeg.dll"]
    assert ffmpeg["binary"]["version"]["FileVersion"] == "4.4.0.0"
    assert ffmpeg["binary"]["signature"]["status"] == "verifies"
    assert "Demo Vendor Ltd" in ffmpeg["binary"]["signature"]["signer"]
    assert ffmpeg["binary"]["export_count"] == 2
    assert ffmpeg["binary"]["sections"] and ffmpeg["binary"]["normalised_sha256"]
    d3d = files["d3dcompiler_47.dll" if form == "folder" else "disk1.cab!/d3dcompiler_47.dll"]
    assert d3d["binary"]["signature"]["hidden_bytes"] > 1000
    if form == "folder":  # containers opened
        assert "resources/app.asar!/dist/main.js" in files
        assert files[f"{releases.APP}/Contents/Info.plist"]["bundle"] == {
            "CFBundleIdentifier": "com.example.demoapp",
            "CFBundleShortVersionString": "18.12.416",
            "CFBundleVersion": "18.12.416",
        }
    else:
        assert doc["archive"] is True and doc["input_sha256"]


def test_manifest_from_the_case_reads_no_file(rel: Releases, tmp_path: Path) -> None:
    side = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    with Case(tmp_path / "c.duckdb") as case:
        scan_paths([side], case, ScanOptions(workers=0, use_rules=False, ensure_intel=False))
        expected, _ = manifest_from_paths([side], Case(tmp_path / "other.duckdb"), workers=0)
        for path in list(side.rglob("*")):
            if path.is_file():
                path.unlink()  # the files are gone: the case alone must do
        from_case = manifest_from_case(case)
    a, b = to_document(from_case), to_document(expected)
    assert a.pop("source") == "case"
    b.pop("source")
    assert a == b


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.json"
    path.write_bytes(
        orjson.dumps({"schema": "taintline.release-manifest", "schema_version": 2, "files": []})
    )
    with pytest.raises(ManifestError, match="schema version 2 is not supported"):
        read_manifest(path)
    path.write_bytes(b'{"something": "else"}')
    with pytest.raises(ManifestError, match="not a taintline release manifest"):
        read_manifest(path)
    path.write_bytes(b'{"schema": "taintline.release-manifest", "schema_ver')
    with pytest.raises(ManifestError, match="not JSON"):
        read_manifest(path)


def test_bad_file_records_are_problems(tmp_path: Path) -> None:
    doc = {
        "schema": "taintline.release-manifest",
        "schema_version": 1,
        "files": [{"path": "a", "sha256": "zz"}, {"nopath": 1}, {"path": "ok", "sha256": None}],
    }
    release = from_document(doc, "m.json")
    assert list(release.entries) == ["ok"]
    assert len(release.problems) == 2
