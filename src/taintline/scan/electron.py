"""Electron bundle analyser: the native code shipped with an Electron app (``.node`` modules,
DLLs, dylibs and shared objects beside the executable and inside ``app.asar``), each with its
signature status, and flags for an unsigned or differently signed library inside a signed app.

3CX's trojanized DesktopApp kept its signed main executable; the payload rode in
``ffmpeg.dll`` (unsigned on Windows) and ``libffmpeg.dylib`` on macOS, and the second stage
in a Microsoft-signed ``d3dcompiler_47.dll`` with data appended inside its signature (the PE
analyser flags that; here it is allowed only when its signature is clean).

Works on the facts other analysers produced (records or, after a round trip through the case,
plain dicts), never on file bytes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taintline.model import Finding, Severity
from taintline.scan.interface import AnalysisContext, BundleMember

NAME = "electron"

ELECTRON_MARKERS = (
    "app.asar",
    "electron framework",
    "v8_context_snapshot.bin",
    "snapshot_blob.bin",
    "chrome_100_percent.pak",
    "resources.pak",
)
NATIVE_SUFFIX = re.compile(r"\.(node|dll|dylib|so(\.\d+)*)$", re.IGNORECASE)
#: Microsoft redistributables Electron ships; allowed with a Microsoft signer only when clean
MICROSOFT_REDISTRIBUTABLES = frozenset(
    {
        "d3dcompiler_47.dll",
        "vk_swiftshader.dll",
        "msvcp140.dll",
        "vcruntime140.dll",
        "vcruntime140_1.dll",
        "ucrtbase.dll",
        "concrt140.dll",
    }
)
HELPER_EXECUTABLES = re.compile(
    r"(update|squirrel|elevate|uninstall|crashpad|helper)", re.IGNORECASE
)
MAX_LISTED = 200


def _get(record: Any, name: str, default: Any = None) -> Any:
    """Attribute of a facts record, or key of its dict form (facts read back from the case)."""
    if record is None:
        return default
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    format: str  # pe | macho | elf | unknown
    signed: bool
    signer: str | None  # organisation (PE) or team id / signer (Mach-O)
    subject: str | None
    clean: bool  # verifies, no hidden data, no overlay after the certificate table
    executable: bool  # a main-program candidate (PE EXE / Mach-O MH_EXECUTE)


def _organisation(subject: str | None) -> str | None:
    if not subject:
        return None
    parts = {
        p.split("=", 1)[0].strip().upper(): p.split("=", 1)[1].strip()
        for p in re.split(r",(?=[A-Za-z.0-9]+=)", subject)
        if "=" in p
    }
    return (parts.get("O") or parts.get("CN") or subject).lower()


def status_of(member: BundleMember) -> SignatureStatus:
    pe = member.facts.get("pe")
    if pe is not None:
        sig = _get(pe, "signature")
        entries = _get(sig, "entries", 0) or 0
        signer = _get(sig, "signer")
        subject = _get(signer, "subject")
        clean = (
            entries > 0
            and _get(sig, "verification") == "OK"
            and not _get(sig, "appended_size", 0)
            and not _get(sig, "overlay_after_table", 0)
        )
        org = _get(signer, "organization")
        return SignatureStatus(
            "pe",
            entries > 0,
            org.lower() if org else _organisation(subject),
            subject,
            clean,
            not _get(pe, "is_dll", False),
        )
    macho = member.facts.get("macho")
    if macho is not None:
        slices = _get(macho, "slices", ()) or ()
        sigs = [_get(s, "signature") for s in slices]
        signed = bool(sigs) and all(
            s is not None and not _get(s, "adhoc") and not _get(s, "error") for s in sigs
        )
        first = sigs[0] if sigs else None
        team = _get(first, "team_id") or _get(first, "signer")
        executable = any(_get(s, "filetype") == "EXECUTE" for s in slices)
        return SignatureStatus(
            "macho",
            signed,
            team.lower() if signed and team else None,
            _get(first, "signer"),
            signed,
            executable,
        )
    if member.facts.get("elf") is not None:
        elf = member.facts["elf"]
        return SignatureStatus("elf", False, None, None, False, _get(elf, "type") == "EXEC")
    return SignatureStatus("unknown", False, None, None, False, False)


def _depth(root: str, path: str) -> int:
    rel = path[len(root) :] if path.startswith(root) else path
    return rel.strip("/\\").replace("\\", "/").replace("!/", "/").count("/")


def is_electron(members: Sequence[BundleMember]) -> bool:
    names = " ".join(m.path.lower() for m in members)
    return any(marker in names for marker in ELECTRON_MARKERS)


def _main_executable(
    root: str, members: Sequence[BundleMember]
) -> tuple[BundleMember, SignatureStatus] | None:
    best: tuple[int, int, BundleMember, SignatureStatus] | None = None
    for m in members:
        if "!/" in m.path:
            continue  # the main program is not inside an archive of the bundle
        st = status_of(m)
        if not st.executable or st.format not in ("pe", "macho"):
            continue
        penalty = 1 if HELPER_EXECUTABLES.search(m.name) else 0
        rank = (penalty, _depth(root, m.path))
        if best is None or rank < best[:2]:
            best = (*rank, m, st)
    return (best[2], best[3]) if best else None


def declared_asar_findings(members: Sequence[BundleMember]) -> list[Finding]:
    """Compare each asar archive's header hash with what the app declares for it
    (``ElectronAsarIntegrity`` in ``Info.plist``; the Windows ``INTEGRITY`` resource in the
    main executable, read by the PE analyser)."""
    declared: list[tuple[str, str, str, str]] = []  # (base folder, relative path, hash, where)
    for m in members:
        plist = m.facts.get("plist")
        if plist is not None:
            folder = posixpath.dirname(m.path.replace("\\", "/"))  # .../Contents
            for d in _get(plist, "asar_integrity", ()) or ():
                declared.append(
                    (folder, str(_get(d, "path", "")), str(_get(d, "hash", "")), m.path)
                )
        pe = m.facts.get("pe")
        if pe is not None:
            folder = posixpath.dirname(m.path.replace("\\", "/"))
            for d in _get(pe, "asar_integrity", ()) or ():
                declared.append(
                    (folder, str(_get(d, "path", "")), str(_get(d, "hash", "")), m.path)
                )
    if not declared:
        return []
    archives = {m.path.replace("\\", "/"): m for m in members if m.facts.get("asar") is not None}
    out: list[Finding] = []
    for folder, rel, digest, where in declared:
        target = posixpath.normpath(posixpath.join(folder, rel))
        archive = archives.get(target)
        if archive is None:
            continue
        actual = str(_get(archive.facts["asar"], "header_sha256", ""))
        if actual and actual != digest.lower():
            out.append(
                Finding(
                    "electron.asar-header-mismatch",
                    Severity.HIGH,
                    archive.path,
                    f"the header of {rel} differs from the integrity hash the app declares in"
                    f" {posixpath.basename(where)}: the archive was changed after the app was"
                    " built",
                    evidence={
                        "archive": archive.path,
                        "declared_in": where,
                        "declared_sha256": digest,
                        "header_sha256": actual,
                        "reason": "SHA-256 of the asar JSON header differs from"
                        " ElectronAsarIntegrity",
                    },
                )
            )
    return out


def app_roots(members: Sequence[BundleMember]) -> set[str]:
    """Where the Electron apps among ``members`` start: the ``.app`` folder of a macOS app,
    the folder holding ``resources/app.asar`` on Windows and Linux."""
    roots: set[str] = set()
    for m in members:
        path = m.path.replace("\\", "/")
        app = path.find(".app/")
        if app >= 0:
            roots.add(path[: app + 4])
            continue
        asar = path.lower().find("/resources/app.asar")
        if asar >= 0:
            roots.add(path[:asar])
    return roots


def _scope(root: str, members: Sequence[BundleMember]) -> Sequence[BundleMember] | None:
    """The members that belong to the Electron app judged at ``root``, or ``None`` when the
    app lies deeper in a folder: that folder is a bundle of its own (a scanned disk or
    virtual environment holding an app is not the app, and its other libraries are not the
    app's libraries)."""
    top = root.replace("\\", "/").rstrip("/")
    roots = app_roots(members)
    if not roots or top in roots or f"{top}!" in roots:
        return members
    if not any(m.path.startswith(f"{root}!/") for m in members):
        return None  # a folder: the walker made each app folder its own bundle
    # an archive holding an app under a folder: judge that app's members only
    app = min(roots, key=len)
    return [m for m in members if m.path.replace("\\", "/").startswith(f"{app}/")]


def analyse_bundle(
    root: str, members: Sequence[BundleMember], ctx: AnalysisContext
) -> tuple[Finding, ...]:
    if not members or not is_electron(members):
        return ()
    scoped = _scope(root, members)
    if not scoped:
        return ()
    members = scoped
    integrity = declared_asar_findings(members)
    main = _main_executable(root, members)
    natives: list[tuple[BundleMember, SignatureStatus]] = []
    for m in members:
        if main is not None and m is main[0]:
            continue
        st = status_of(m)
        if NATIVE_SUFFIX.search(m.name) or (
            st.format in ("pe", "macho", "elf") and not st.executable
        ):
            natives.append((m, st))
    out: list[Finding] = []
    listing = [
        {
            "path": m.path,
            "sha256": m.sha256,
            "format": st.format,
            "signed": st.signed,
            "signer": st.subject,
            "clean": st.clean,
            "in_asar": "app.asar!" in m.path or ".asar!" in m.path,
        }
        for m, st in natives[:MAX_LISTED]
    ]
    main_path = main[0].path if main else None
    main_status = main[1] if main else None
    out.append(
        Finding(
            "electron.native-libraries",
            Severity.INFO,
            root,
            f"Electron app with {len(natives)} native libraries"
            + (f"; main executable {posixpath.basename(main_path)} " if main_path else "")
            + (
                f"signed by {main_status.subject}"
                if main_status and main_status.signed
                else "(unsigned)"
                if main_path
                else ""
            ),
            evidence={
                "reason": "inventory: native code found in an Electron app",
                "main_executable": main_path,
                "main_signer": main_status.subject if main_status else None,
                "libraries": listing,
                "truncated": len(natives) > MAX_LISTED,
            },
        )
    )
    out.extend(integrity)
    if main_status is None or not main_status.signed:
        return tuple(out)
    for m, st in natives:
        if st.format != main_status.format:
            continue  # e.g. a Linux .so inside a Windows app: no signature to compare
        evidence = {
            "library": m.path,
            "sha256": m.sha256,
            "main_executable": main_path,
            "main_signer": main_status.subject,
            "library_signer": st.subject,
        }
        if not st.signed:
            out.append(Finding("electron.unsigned-native-library", Severity.HIGH, m.path,
                               f"unsigned native library inside an app signed by {main_status.subject}",
                               evidence={**evidence, "reason": "the main executable carries a"
                                         " signature, this library of the same platform none"
                                         " (or an ad-hoc one)"}))  # fmt: skip
        elif st.signer != main_status.signer:
            allowed = (
                m.name.lower() in MICROSOFT_REDISTRIBUTABLES
                and (st.signer or "").startswith("microsoft")
                and st.clean
            )
            if allowed:
                continue
            out.append(Finding("electron.foreign-signer-native-library", Severity.MEDIUM, m.path,
                               f"native library signed by {st.subject}, not by the app's signer {main_status.subject}",
                               evidence={**evidence, "clean": st.clean,
                                         "reason": f"library signer {st.signer!r} differs from"
                                         f" the app's {main_status.signer!r}"}))  # fmt: skip
    return tuple(out)
