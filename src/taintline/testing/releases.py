"""Synthetic, harmless releases of a made-up desktop app, for the verify tests, the demo and the
benchmark: a Windows part (a signed EXE, a signed ``ffmpeg.dll``, a signed
``d3dcompiler_47.dll``, an Electron ``app.asar``, a readme) and a macOS app bundle (a signed
Mach-O executable and ``libffmpeg.dylib``, an ``Info.plist``).

``tamper=True`` reproduces the three 3CX tricks: ``ffmpeg.dll`` changed under the same version
and signer, ``d3dcompiler_47.dll`` with bytes hidden inside its certificate table (its signature
still verifies), and a new unsigned ``libupdate.dylib`` in the app bundle. Every byte is made
here; nothing runs.
"""

from __future__ import annotations

import hashlib
import plistlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from taintline.testing import archives, macho, pe, signing

PRODUCT = "DemoApp"
APP = "Demo App.app"


@dataclass(frozen=True, slots=True)
class Signers:
    vendor: signing.SigningIdentity
    graphics: signing.SigningIdentity
    developer: macho.DeveloperId


def make_signers(folder: Path) -> Signers:
    since, until = datetime(2021, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
    return Signers(
        vendor=signing.make_identity(
            folder / "vendor", subject_cn="Demo Vendor Ltd", not_before=since, not_after=until
        ),
        graphics=signing.make_identity(
            folder / "graphics", subject_cn="Demo Graphics Corp", not_before=since, not_after=until
        ),
        developer=macho.make_developer_id("Demo Vendor Ltd", "DEMO123456"),
    )


def _pe(
    *,
    dll: bool,
    name: str,
    file_version: str,
    product_version: str,
    company: str,
    exports: tuple[str, ...] = (),
    imports: Mapping[str, tuple[str, ...]] | None = None,
    extra: bytes = b"",
    timestamp: int = 0x64000000,
) -> bytes:
    parts = tuple(int(x) for x in [*file_version.split("."), "0", "0", "0", "0"][:4])
    version = (parts[0], parts[1], parts[2], parts[3])
    spec = pe.PESpec(
        dll=dll,
        timestamp=timestamp,
        exports=exports,
        imports=imports or {"KERNEL32.dll": ("ExitProcess", "GetProcAddress")},
        version_info={
            "CompanyName": company,
            "ProductName": name,
            "FileVersion": file_version,
            "ProductVersion": product_version,
            "OriginalFilename": name,
        },
        file_version=version,
        extra_sections=((".data", b"harmless taintline test data " + extra),),
    )
    return pe.build_pe(spec, dll_name=name)


def _sign(data: bytes, who: signing.SigningIdentity, when: datetime | None) -> bytes:
    return signing.sign_pe(data, who, timestamp=False, signing_time=when)


def release_files(
    signers: Signers,
    *,
    version: str = "18.12.407",
    tamper: bool = False,
    build: int = 0,
    signing_time: datetime | None = None,
) -> dict[str, bytes]:
    """Path -> bytes of one release. ``build`` varies only what two honest builds of one source
    differ in (PE time stamps and signing times), for rebuild checks."""
    when = signing_time or datetime(2023, 3, 1, 12, 0, tzinfo=UTC)
    stamp = 0x64000000 + build * 3600
    files: dict[str, bytes] = {}
    files["DemoApp.exe"] = _sign(
        _pe(dll=False, name="DemoApp.exe", file_version=version, product_version=version,
            company="Demo Vendor Ltd", extra=version.encode(), timestamp=stamp),
        signers.vendor, when,
    )  # fmt: skip
    ffmpeg_extra = b"ffmpeg 4.4" + (b" + a payload loader (harmless stand-in)" if tamper else b"")
    files["ffmpeg.dll"] = _sign(
        _pe(dll=True, name="ffmpeg.dll", file_version="4.4.0.0", product_version="4.4.0.0",
            company="Demo Vendor Ltd", exports=("av_open", "av_read"), extra=ffmpeg_extra,
            timestamp=stamp),
        signers.vendor, when,
    )  # fmt: skip
    d3d = _sign(
        _pe(dll=True, name="d3dcompiler_47.dll", file_version="10.0.1.0",
            product_version="10.0.1.0", company="Demo Graphics Corp", exports=("D3DCompile",),
            timestamp=stamp),
        signers.graphics, when,
    )  # fmt: skip
    if tamper:
        hidden = b"\xfe\xed\xfa\xce" + hashlib.sha256(b"taintline demo").digest() * 32
        d3d = pe.append_inside_certificate_table(d3d, hidden)
    files["d3dcompiler_47.dll"] = d3d
    files["resources/app.asar"] = archives.asar_bytes(
        {
            "package.json": f'{{"name": "demo-app", "version": "{version}"}}'.encode(),
            "dist/main.js": f"console.log('demo app {version}');\n".encode(),
        }
    )
    files["resources/readme.txt"] = b"Demo App: a synthetic release for taintline tests.\n"
    files[f"{APP}/Contents/Info.plist"] = plistlib.dumps(
        {
            "CFBundleIdentifier": "com.example.demoapp",
            "CFBundleShortVersionString": version,
            "CFBundleVersion": version,
        },
        sort_keys=True,
    )
    files[f"{APP}/Contents/MacOS/Demo App"] = macho.thin(
        signature="developer-id", developer=signers.developer, identifier="com.example.demoapp",
        dylibs=("/usr/lib/libSystem.B.dylib", "@rpath/libffmpeg.dylib"),
    )  # fmt: skip
    files[f"{APP}/Contents/Frameworks/libffmpeg.dylib"] = macho.thin(
        signature="developer-id", developer=signers.developer, identifier="libffmpeg",
        filetype=macho.MH_DYLIB,
    )  # fmt: skip
    if tamper:
        files[f"{APP}/Contents/Frameworks/libupdate.dylib"] = macho.thin(
            signature=None, identifier="libupdate", filetype=macho.MH_DYLIB
        )
    return files


def write_folder(files: Mapping[str, bytes], folder: Path) -> Path:
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def as_zip(files: Mapping[str, bytes], *, reverse: bool = False) -> bytes:
    """A ZIP of the release; ``reverse`` stores the members in the other order."""
    items = sorted(files.items(), reverse=reverse)
    return archives.zip_bytes(dict(items))


def as_msi(files: Mapping[str, bytes]) -> bytes:
    """An MSI-shaped installer: the Windows files in one CAB (flat names, as MSI CABs are)."""
    windows = {k.rsplit("/", 1)[-1]: v for k, v in files.items() if not k.startswith(APP)}
    return archives.msi_like({"disk1.cab": windows})


def as_asar(files: Mapping[str, bytes]) -> bytes:
    """An asar archive holding the release."""
    return archives.asar_bytes(dict(files))
