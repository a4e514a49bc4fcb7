from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest

from taintline.scan import electron, macho, pe
from taintline.scan.interface import AnalysisContext, BundleMember, FileItem
from taintline.testing.macho import make_developer_id, thin
from taintline.testing.pe import PESpec, append_inside_certificate_table, build_pe
from taintline.testing.signing import SigningIdentity, make_identity, sign_pe

ROOT = "C:/Users/a/AppData/Local/Programs/3CXDesktopApp"


def _member(path: str, data: bytes, ctx: AnalysisContext) -> BundleMember:
    item = FileItem(path=path, name=path.rsplit("/", 1)[-1], data=data, top=ROOT)
    facts = {}
    for analyser in (pe, macho):
        if analyser.applies(item):
            facts[analyser.NAME] = analyser.analyse(item, ctx).facts
    return BundleMember(
        path=path, name=item.name, sha256=hashlib.sha256(data).hexdigest(), facts=facts
    )


@pytest.fixture(scope="module")
def microsoft(
    tmp_path_factory: pytest.TempPathFactory, identity: SigningIdentity
) -> SigningIdentity:
    return make_identity(tmp_path_factory.mktemp("ms"), subject_cn="Microsoft Corporation")


@pytest.fixture(scope="module")
def windows_app(identity: SigningIdentity, microsoft: SigningIdentity) -> dict[str, bytes]:
    exe = sign_pe(build_pe(PESpec()), identity)
    dll = build_pe(PESpec(dll=True))
    own = sign_pe(dll, identity)
    d3d = sign_pe(dll, microsoft)
    return {
        f"{ROOT}/3CXDesktopApp.exe": exe,
        f"{ROOT}/Update.exe": build_pe(PESpec()),
        f"{ROOT}/ffmpeg.dll": own,
        f"{ROOT}/d3dcompiler_47.dll": d3d,
        f"{ROOT}/resources/app.asar!/node_modules/keytar/build/Release/keytar.node": own,
        f"{ROOT}/resources/app.asar": b"\x04\x00\x00\x00asar-header",
    }


def _run(files: dict[str, bytes], ctx: AnalysisContext | None = None) -> tuple:
    ctx = ctx or AnalysisContext()
    members = [_member(p, d, ctx) for p, d in files.items()]
    return electron.analyse_bundle(ROOT, members, ctx)


def test_clean_windows_app_lists_native_libraries(windows_app: dict[str, bytes]) -> None:
    (info,) = _run(windows_app)
    assert info.kind == "electron.native-libraries" and info.subject == ROOT
    assert info.evidence["main_executable"].endswith("3CXDesktopApp.exe")
    libs = {lib["path"].rsplit("/", 1)[-1]: lib for lib in info.evidence["libraries"]}
    assert set(libs) == {"ffmpeg.dll", "d3dcompiler_47.dll", "keytar.node"}
    assert libs["keytar.node"]["in_asar"] is True and libs["keytar.node"]["signed"] is True
    assert "Microsoft Corporation" in libs["d3dcompiler_47.dll"]["signer"]
    json.dumps(info.evidence)  # evidence stays JSON-serialisable


def test_unsigned_ffmpeg_is_flagged(windows_app: dict[str, bytes]) -> None:
    files = dict(windows_app)
    files[f"{ROOT}/ffmpeg.dll"] = build_pe(PESpec(dll=True))
    findings = _run(files)
    flagged = [f for f in findings if f.kind == "electron.unsigned-native-library"]
    assert [f.subject for f in flagged] == [f"{ROOT}/ffmpeg.dll"]
    assert "Example Trading Ltd" in flagged[0].evidence["main_signer"]
    assert all(f.evidence["reason"] for f in findings)


def test_foreign_signer_and_tampered_microsoft_dll(
    windows_app: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    files = dict(windows_app)
    stranger = make_identity(tmp_path_factory.mktemp("stranger"), subject_cn="Stranger Things LLC")
    files[f"{ROOT}/resources/app.asar!/node_modules/x/x.node"] = sign_pe(
        build_pe(PESpec(dll=True)), stranger
    )
    files[f"{ROOT}/d3dcompiler_47.dll"] = append_inside_certificate_table(
        files[f"{ROOT}/d3dcompiler_47.dll"], b"\xfe\xed\xfa\xce" + os.urandom(512)
    )
    findings = _run(files)
    foreign = sorted(
        f.subject.rsplit("/", 1)[-1]
        for f in findings
        if f.kind == "electron.foreign-signer-native-library"
    )
    assert foreign == ["d3dcompiler_47.dll", "x.node"]


def test_unsigned_main_executable_gives_inventory_only(windows_app: dict[str, bytes]) -> None:
    files = dict(windows_app)
    files[f"{ROOT}/3CXDesktopApp.exe"] = build_pe(PESpec())
    files[f"{ROOT}/ffmpeg.dll"] = build_pe(PESpec(dll=True))
    assert [f.kind for f in _run(files)] == ["electron.native-libraries"]


def test_not_electron_is_ignored(windows_app: dict[str, bytes]) -> None:
    files = {p: d for p, d in windows_app.items() if "asar" not in p}
    assert _run(files) == ()


def test_macos_app_with_adhoc_dylib() -> None:
    dev = make_developer_id("3CX", "33CF4654HL")
    app = "3CX Desktop App.app/Contents"
    files = {
        f"{app}/MacOS/3CX Desktop App": thin(signature="developer-id", developer=dev),
        f"{app}/Frameworks/Electron Framework.framework/Versions/A/Libraries/libffmpeg.dylib": thin(
            signature="adhoc", filetype=6
        ),
        f"{app}/Frameworks/Electron Framework.framework/Versions/A/Electron Framework": thin(
            signature="developer-id", developer=dev, filetype=6
        ),
        f"{app}/Resources/app.asar": b"asar",
    }
    ctx = AnalysisContext()
    members = [_member(p, d, ctx) for p, d in files.items()]
    findings = electron.analyse_bundle("3CX Desktop App.app", members, ctx)
    unsigned = [f.subject for f in findings if f.kind == "electron.unsigned-native-library"]
    assert [u.rsplit("/", 1)[-1] for u in unsigned] == ["libffmpeg.dylib"]
    assert not [f for f in findings if f.kind == "electron.foreign-signer-native-library"]


def test_facts_read_back_as_dicts(windows_app: dict[str, bytes]) -> None:
    """The engine may hand over facts that went through the case as plain dicts."""
    ctx = AnalysisContext()
    files = dict(windows_app)
    files[f"{ROOT}/ffmpeg.dll"] = build_pe(PESpec(dll=True))
    members = []
    for p, d in files.items():
        m = _member(p, d, ctx)
        members.append(
            dataclasses.replace(m, facts={k: dataclasses.asdict(v) for k, v in m.facts.items()})
        )
    kinds = [f.kind for f in electron.analyse_bundle(ROOT, members, ctx)]
    assert kinds == ["electron.native-libraries", "electron.unsigned-native-library"]
