"""``verify``: generated releases in folder, ZIP, MSI and asar form; every difference kind found
and ranked; clean rebuilds are no risk; bad input is a clear error or finding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tests.release.conftest import Releases, kinds_at_least, make, run

from taintline.case import Case
from taintline.errors import InputError
from taintline.model import Indicator, IndicatorType, Severity
from taintline.release.compare import pair
from taintline.release.expect import Expectation
from taintline.release.model import Entry, Product, Release
from taintline.testing import archives, macho, pe, releases

APP = releases.APP
THREE = {
    ("release.changed-same-version", "ffmpeg.dll"),
    ("release.hidden-signature-data", "d3dcompiler_47.dll"),
    ("release.new-native-foreign-signer", f"{APP}/Contents/Frameworks/libupdate.dylib"),
}


def _paths(form: str, expected: set[tuple[str, str]]) -> set[tuple[str, str]]:
    if form == "msi":  # the installer holds the Windows files, flat, in disk1.cab
        return {(k, f"disk1.cab!/{p}") for k, p in expected if not p.startswith(APP)}
    return expected


@pytest.mark.parametrize("form", ["folder", "zip", "msi", "asar"])
def test_the_three_tricks_rank_on_top(rel: Releases, case: Case, tmp_path: Path, form: str) -> None:
    base = make(form, rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make(form, rel.tampered, tmp_path, "DemoApp-18.12.416")
    result = run(case, base, cand)
    expected = _paths(form, THREE)
    top = result.findings[: len(expected)]
    assert {(f.kind, f.evidence["path"]) for f in top} == expected
    assert all(f.severity is Severity.CRITICAL for f in top)
    # nothing else is critical or high: the rest is the honest version bump
    assert kinds_at_least(result.findings[len(expected) :], Severity.MEDIUM) == []
    assert all(f.source == "release" for f in result.findings)
    # old and new values explain each
    same = next(f for f in top if f.kind == "release.changed-same-version")
    assert same.evidence["old"]["version"] == same.evidence["new"]["version"]
    assert same.evidence["old"]["sha256"] != same.evidence["new"]["sha256"]
    hidden = next(f for f in top if f.kind == "release.hidden-signature-data")
    assert hidden.evidence["old"]["hidden_bytes"] == 0
    assert hidden.evidence["new"]["hidden_bytes"] > 1000
    assert hidden.evidence["new"]["status"] == "verifies"
    # recorded in the case with the release source
    stored = case.findings(source="release")
    assert {(f.kind, f.evidence["path"]) for f in stored} >= expected


def test_honest_bump_is_low_risk(rel: Releases, case: Case, tmp_path: Path) -> None:
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.bumped, tmp_path, "DemoApp-18.12.416")
    result = run(case, base, cand)
    assert kinds_at_least(result.findings, Severity.MEDIUM) == []
    kinds = {(f.kind, f.evidence["path"]) for f in result.findings}
    assert ("release.version-bumped", "DemoApp.exe") in kinds
    assert ("release.changed", "resources/app.asar!/package.json") in kinds


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_clean_rebuild_is_no_risk(rel: Releases, case: Case, tmp_path: Path, form: str) -> None:
    base = make(form, rel.base, tmp_path, "a")
    if form == "zip":  # also the other member order
        cand = tmp_path / "b.zip"
        cand.write_bytes(releases.as_zip(rel.rebuild, reverse=True))
    else:
        cand = make(form, rel.rebuild, tmp_path, "b")
    result = run(case, base, cand, rebuild=True)
    assert result.stats["changed"] >= 3  # time stamps and signatures did change the bytes
    assert all(f.severity is Severity.INFO for f in result.findings), result.findings


def test_rebuild_with_a_real_difference(rel: Releases, case: Case, tmp_path: Path) -> None:
    other = dict(rel.rebuild)
    other["ffmpeg.dll"] = rel.tampered["ffmpeg.dll"]
    other["resources/readme.txt"] = b"edited\n"
    base = make("folder", rel.base, tmp_path, "a")
    cand = make("folder", other, tmp_path, "b")
    result = run(case, base, cand, rebuild=True)
    assert (result.findings[0].kind, result.findings[0].evidence["path"]) == (
        "release.changed-same-version",
        "ffmpeg.dll",
    )
    assert ("release.rebuild-differs", "resources/readme.txt") in kinds_at_least(
        result.findings, Severity.MEDIUM
    )


def _pe(**spec: object) -> bytes:
    base: dict[str, object] = {
        "dll": True,
        "exports": ("a", "b"),
        "version_info": {"FileVersion": "1.0.0.0", "ProductVersion": "1.0.0.0"},
    }
    base.update(spec)
    return pe.build_pe(pe.PESpec(**base))  # type: ignore[arg-type]


def test_each_binary_difference_kind(rel: Releases, case: Case, tmp_path: Path) -> None:
    from taintline.testing.signing import sign_pe

    vendor, graphics = rel.signers.vendor, rel.signers.graphics
    old = {
        "imports.dll": _pe(),
        "overlay.dll": _pe(),
        "signer.dll": sign_pe(_pe(), vendor, timestamp=False),
        "broken.dll": sign_pe(_pe(), vendor, timestamp=False),
        "gone.txt": b"removed later",
        "docs/old/manual.txt": b"moved later",
        "plain.txt": b"one",
        "signed.dll": sign_pe(_pe(exports=("z",)), vendor, timestamp=False),
    }
    signed_broken = bytearray(sign_pe(_pe(exports=("a", "b", "c")), vendor, timestamp=False))
    signed_broken[0x400] ^= 0xFF  # inside .text: the digest no longer matches
    new = {
        "imports.dll": _pe(exports=("a", "b", "evil")),
        "overlay.dll": _pe(overlay=b"\x00payload" * 64),
        "signer.dll": sign_pe(_pe(), graphics, timestamp=False),
        "broken.dll": bytes(signed_broken),
        "docs/new/manual.txt": b"moved later",
        "plain.txt": b"two",
        "signed.dll": sign_pe(_pe(exports=("z",)), vendor, timestamp=False),
        "tool.exe": _pe(dll=False, exports=()),
        "helper.dll": sign_pe(_pe(exports=("h",)), vendor, timestamp=False),
    }
    base = releases.write_folder(old, tmp_path / "Thing-1.0")
    cand = releases.write_folder(new, tmp_path / "Thing-1.1")
    result = run(case, base, cand)
    got = {(f.kind, str(f.evidence["path"])): f.severity for f in result.findings}
    assert got[("release.imports-changed", "imports.dll")] is Severity.HIGH
    assert got[("release.overlay-grown", "overlay.dll")] is Severity.HIGH
    assert got[("release.signer-changed", "signer.dll")] is Severity.HIGH
    assert got[("release.signature-broken", "broken.dll")] is Severity.HIGH
    assert got[("release.removed", "gone.txt")] is Severity.LOW
    assert got[("release.moved", "docs/new/manual.txt")] is Severity.INFO
    assert got[("release.changed", "plain.txt")] is Severity.LOW
    # an unsigned new executable among signed binaries; a new DLL signed like the others
    assert got[("release.new-native-foreign-signer", "tool.exe")] is Severity.CRITICAL
    assert got[("release.new-native", "helper.dll")] is Severity.HIGH
    # same version resource, code changed: the imports change and the same-version rule
    assert got[("release.changed-same-version", "imports.dll")] is Severity.CRITICAL
    # re-signed only: no finding
    assert not [k for k in got if k[1] == "signed.dll"]
    # ranked: never a lower severity before a higher one
    ranks = [f.severity.rank for f in result.findings]
    assert ranks == sorted(ranks, reverse=True)
    moved = next(f for f in result.findings if f.kind == "release.moved")
    assert moved.evidence["old"]["path"] == "docs/old/manual.txt"


def test_indicator_match_is_critical(rel: Releases, case: Case, tmp_path: Path) -> None:
    import hashlib

    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.bumped, tmp_path, "DemoApp-18.12.416")
    readme = hashlib.sha256(rel.bumped["resources/readme.txt"]).hexdigest()
    case.add_indicators([Indicator(IndicatorType.SHA256, readme, source="test")])
    result = run(case, base, cand)
    first = result.findings[0]
    assert (first.kind, first.evidence["path"]) == (
        "release.indicator-match",
        "resources/readme.txt",
    )
    assert first.indicators == (f"sha256:{readme}",)


def test_verify_from_manifest_equals_verify_from_files(
    rel: Releases, case: Case, tmp_path: Path
) -> None:
    from taintline.release.manifest import manifest_from_paths, write_manifest

    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    from_files = run(case, base, cand)
    manifests = []
    for side in (base, cand):
        release, errors = manifest_from_paths([side], case, workers=0)
        assert errors == []
        out = tmp_path / f"{side.name}.manifest.json"
        write_manifest(release, out)
        manifests.append(out)

    def view(result: object) -> list[tuple[str, str, str, str]]:
        return [(f.kind, str(f.severity), f.subject, f.message) for f in result.findings]  # type: ignore[attr-defined]

    assert view(run(case, manifests[0], manifests[1])) == view(from_files)
    assert view(run(case, manifests[0], cand)) == view(from_files)
    assert view(run(case, base, manifests[1])) == view(from_files)


def test_truncated_msi_is_a_clear_error(rel: Releases, case: Case, tmp_path: Path) -> None:
    base = make("msi", rel.base, tmp_path, "DemoApp-18.12.407")
    bad = tmp_path / "DemoApp-18.12.416.msi"
    bad.write_bytes(archives.truncated(releases.as_msi(rel.tampered), keep=0.1))
    with pytest.raises(InputError, match="nothing could be read"):
        run(case, base, bad)


def test_two_unrelated_products(rel: Releases, case: Case, tmp_path: Path) -> None:
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    other = releases.write_folder(
        {f"lib/part{i}.txt": f"other product {i}".encode() for i in range(12)},
        tmp_path / "OtherThing-2.0",
    )
    result = run(case, base, other)
    assert result.unrelated
    assert [f.kind for f in result.findings] == ["release.unrelated"]
    assert result.findings[0].severity is Severity.HIGH


def test_expectations_downgrade_but_never_an_indicator(
    rel: Releases, case: Case, tmp_path: Path
) -> None:
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    rules = (Expectation("*.dll", ("release.changed-same-version",), "ffmpeg rebuilt"),)
    result = run(case, base, cand, expectations=rules)
    ffmpeg = next(f for f in result.findings if f.evidence["path"] == "ffmpeg.dll")
    assert ffmpeg.severity is Severity.INFO
    assert ffmpeg.evidence["expected"] == "ffmpeg rebuilt"
    assert ffmpeg.evidence["severity_before"] == "critical"
    # the hidden data is another kind: still critical
    assert result.findings[0].kind == "release.hidden-signature-data"


def test_pairing_skips_members_of_unchanged_containers() -> None:
    def release(entries: dict[str, str]) -> Release:
        return Release(
            "x", "manifest", Product(), {p: Entry(p, sha256=h * 64) for p, h in entries.items()}
        )

    base = release({"a.zip": "1", "a.zip!/x": "2", "b.zip": "3", "b.zip!/y": "4", "old": "5"})
    cand = release({"a.zip": "1", "a.zip!/x": "9", "b.zip": "6", "b.zip!/y": "7", "new": "5"})
    p = pair(base, cand)
    assert p.changed == ["b.zip", "b.zip!/y"]  # a.zip did not change: its members are not read
    assert p.same == ["a.zip"]
    assert p.moved == [("old", "new")]


def test_new_dylib_signed_by_someone_else(rel: Releases, case: Case, tmp_path: Path) -> None:
    other_dev = macho.make_developer_id("Someone Else", "OTHER99999")
    files = dict(rel.bumped)
    files[f"{APP}/Contents/Frameworks/libextra.dylib"] = macho.thin(
        signature="developer-id", developer=other_dev, filetype=macho.MH_DYLIB
    )
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", files, tmp_path, "DemoApp-18.12.416")
    result = run(case, base, cand)
    first = result.findings[0]
    assert first.kind == "release.new-native-foreign-signer"
    assert "Someone Else" in first.message


def test_sbom_baseline(rel: Releases, case: Case, tmp_path: Path) -> None:
    import hashlib

    import orjson

    sbom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"name": "DemoApp", "version": "18.12.407"}},
        "components": [
            {
                "type": "file",
                "name": p,
                "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(d).hexdigest()}],
            }
            for p, d in rel.base.items()
        ],
    }
    path = tmp_path / "base.cdx.json"
    path.write_bytes(orjson.dumps(sbom))
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    result = run(case, path, cand)
    got = {(f.kind, f.evidence["path"]) for f in result.findings}
    assert ("release.native-changed", "ffmpeg.dll") in got
    assert ("release.native-changed", "d3dcompiler_47.dll") in got
    assert (
        "release.new-native-foreign-signer",
        f"{APP}/Contents/Frameworks/libupdate.dylib",
    ) in got

    spdx = {
        "spdxVersion": "SPDX-2.3",
        "name": "DemoApp",
        "files": [
            {
                "fileName": f"./{p}",
                "checksums": [
                    {"algorithm": "SHA256", "checksumValue": hashlib.sha256(d).hexdigest()}
                ],
            }
            for p, d in rel.base.items()
        ],
    }
    path2 = tmp_path / "base.spdx.json"
    path2.write_bytes(orjson.dumps(spdx))
    again = run(case, path2, cand)
    assert {(f.kind, f.evidence["path"]) for f in again.findings} == got


def test_missing_side_entries_are_problems_not_crashes(case: Case, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(b"\x00garbage" * 100)
    folder = releases.write_folder({"a.txt": b"a"}, tmp_path / "f")
    with pytest.raises(InputError):
        run(case, folder, bad)
    empty = Release("e", "manifest", Product(), {})
    result = run(case, folder, replace(empty))
    assert [f.kind for f in result.findings] == ["release.removed"]


def test_many_files_are_analysed_on_the_worker_pool(
    rel: Releases, case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taintline.release import sides
    from taintline.release.verify import VerifyOptions, verify

    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    here = run(case, base, cand)
    monkeypatch.setattr(sides, "IN_PROCESS_MAX", 1)
    pooled = verify(base, cand, case, VerifyOptions(ensure_intel=False, workers=1))
    assert [(f.kind, f.subject, f.message) for f in pooled.findings] == [
        (f.kind, f.subject, f.message) for f in here.findings
    ]


def test_folder_against_installer_pairs_by_unique_name(
    rel: Releases, case: Case, tmp_path: Path
) -> None:
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("msi", rel.tampered, tmp_path, "DemoApp-18.12.416")
    result = run(case, base, cand)
    top = {(f.kind, f.evidence["path"]) for f in result.findings if f.severity is Severity.CRITICAL}
    assert top == {
        ("release.changed-same-version", "disk1.cab!/ffmpeg.dll"),
        ("release.hidden-signature-data", "disk1.cab!/d3dcompiler_47.dll"),
    }
    same = next(f for f in result.findings if f.kind == "release.changed-same-version")
    assert same.evidence["old_path"] == "ffmpeg.dll"
