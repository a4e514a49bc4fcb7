"""No false alarms: a generated tree of clean software - signed and unsigned PE, Mach-O
(executables, dylibs with their own install name, fat), ELF, images, jars carrying native
libraries, an Electron app with an asar and its declared integrity, a signed MSI and a catalog -
gives zero findings at medium or above. Signed files are signed by the suite's throw-away CAs,
passed as ``--ca-bundle`` (the private-PKI case)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.builders.elf import ET_DYN, elf64

from taintline.case import Case
from taintline.limits import ScanLimits
from taintline.model import Severity
from taintline.scan.engine import ScanOptions, scan_paths
from taintline.testing import image, macho
from taintline.testing.archives import (
    asar_bytes,
    asar_header_sha256,
    info_plist,
    msi_like,
    tar_bytes,
    zip_bytes,
)
from taintline.testing.pe import DEFAULT_VERSION_INFO, PESpec, build_pe
from taintline.testing.signing import (
    SPC_CAB_DATA,
    SigningIdentity,
    catalog_bytes,
    make_identity,
    osslsigncode_path,
    sign_file,
    sign_pe,
)

CLASS_FILE = b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 64


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    if osslsigncode_path() is None:
        pytest.skip("osslsigncode is not installed")
    return make_identity(tmp_path_factory.mktemp("benign-pki"), subject_cn="Example Software Inc")


def _tree(root: Path, pki: SigningIdentity, dev: macho.DeveloperId) -> None:
    def put(rel: str, data: bytes) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    exe = build_pe(PESpec(version_info=DEFAULT_VERSION_INFO))
    dll = build_pe(PESpec(dll=True, exports=("Run",), version_info=DEFAULT_VERSION_INFO))
    put("win/tool.exe", sign_pe(exe, pki))
    put("win/helper.dll", sign_pe(dll, pki, timestamp=False))
    put("win/unsigned-plugin.dll", dll)
    put("win/setup.msi", sign_file(msi_like({"disk1.cab": {"a.txt": b"hello"}}), pki, ".msi"))
    readme = b"clean release\n"
    put("win/readme.txt", readme)
    put(
        "win/release.cat",
        sign_file(
            catalog_bytes({"readme.txt": (SPC_CAB_DATA, hashlib.sha256(readme).digest())}),
            pki,
            ".cat",
        ),
    )
    # an Electron app on Windows: every native library signed by the app's signer
    put("ExampleApp/Example.exe", sign_pe(exe, pki))
    put("ExampleApp/ffmpeg.dll", sign_pe(dll, pki))
    archive = asar_bytes(
        {"package.json": b'{"main": "main.js"}', "main.js": b"console.log(1)\n"},
        integrity=True,
        links={"node_modules/.bin/tool": "node_modules/tool/cli.js"},
    )
    put("ExampleApp/resources/app.asar", archive)
    # the same app on macOS, with its declared asar integrity
    contents = "Example.app/Contents"
    put(f"{contents}/Info.plist", info_plist({"Resources/app.asar": asar_header_sha256(archive)}))
    put(f"{contents}/Resources/app.asar", archive)
    put(f"{contents}/MacOS/Example", macho.thin(signature="developer-id", developer=dev))
    put(
        f"{contents}/Frameworks/libffmpeg.dylib",
        macho.thin(
            filetype=macho.MH_DYLIB,
            signature="developer-id",
            developer=dev,
            install_name="@rpath/libffmpeg.dylib",
        ),
    )
    # Mach-O outside apps: fat tools, unsigned and ad-hoc dylibs naming themselves by build path
    put("mac/tool", macho.fat([macho.thin(cpu=macho.CPU_X86_64), macho.thin(signature="adhoc")]))
    jnilib = macho.thin(
        filetype=macho.MH_DYLIB,
        signature="adhoc",
        install_name="/Users/runner/work/snappy-java/target/libsnappyjava.jnilib",
        dylibs=("/usr/lib/libSystem.B.dylib", "/usr/lib/libc++.1.dylib"),
    )
    put(
        "mac/libplain.dylib",
        macho.thin(filetype=macho.MH_DYLIB, install_name="/opt/x/libplain.dylib"),
    )
    # jars carrying native libraries, as pyspark's do
    put(
        "lib/snappy-java.jar",
        zip_bytes(
            {
                "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n\r\n",
                "org/xerial/snappy/Snappy.class": CLASS_FILE,
                "org/xerial/snappy/native/Mac/aarch64/libsnappyjava.jnilib": jnilib,
                "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so": elf64(etype=ET_DYN),
                "org/xerial/snappy/native/Windows/x86_64/snappyjava.dll": dll,
            }
        ),
    )
    put("linux/tool", elf64())
    put("linux/libx.so.1", elf64(etype=ET_DYN))
    put("linux/bundle.tar.gz", tar_bytes({"bin/tool": elf64()}, compression="gz"))
    for name, data in {
        "icon.png": image.png(),
        "photo.jpg": image.jpeg(),
        "anim.gif": image.gif(),
        "pic.bmp": image.bmp(),
        "app.ico": image.ico(),
    }.items():
        put(f"images/{name}", data)


def test_benign_corpus_gives_no_medium_or_higher(tmp_path: Path, pki: SigningIdentity) -> None:
    dev = macho.make_developer_id("Example Software Inc", "EXAMPLE123")
    root = tmp_path / "corpus"
    _tree(root, pki, dev)
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(pki.ca_pem + dev.root_pem)
    options = ScanOptions(
        limits=ScanLimits(),
        workers=0,
        use_rules=False,
        ca_bundle=bundle,
        ensure_intel=False,
        host="benign",
    )
    with Case(tmp_path / "case.duckdb") as case:
        result = scan_paths([str(root)], case, options)
    loud = [f for f in result.findings if f.severity.at_least(Severity.MEDIUM)]
    assert loud == [], "\n".join(f"{f.kind} {f.subject}: {f.message}" for f in loud)
    kinds = {f.kind for f in result.findings}
    # the scan did look: inventory and catalog recognition are there
    assert {"pe.unsigned", "electron.native-libraries", "signature.catalog-signed"} <= kinds
    # every analyser finding states why
    for f in result.findings:
        if not f.kind.startswith(("error.", "ioc.", "yara")):
            assert f.evidence.get("reason"), f
