"""``Info.plist`` analyser: the few keys of a macOS bundle's property list that later checks
need (bundle id, executable, and Electron's ``ElectronAsarIntegrity`` declaration: the SHA-256
of each asar archive's header, which the Electron bundle analyser compares with the archive).

Read with the standard library's :mod:`plistlib` (XML and binary plists). Facts only; no
findings of its own.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass

from taintline.scan.interface import AnalysisContext, AnalysisResult, AppliesTo, FileItem

NAME = "plist"
#: applies() needs the name ``Info.plist``, whatever the type (see
#: :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(kinds=frozenset(), names=frozenset({"Info.plist"}))
MAX_PLIST = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AsarDeclaration:
    path: str  # relative to Contents/ (macOS) or the app folder (Windows), e.g. Resources/app.asar
    algorithm: str
    hash: str


@dataclass(frozen=True, slots=True)
class PlistFacts:
    bundle_id: str | None
    executable: str | None
    asar_integrity: tuple[AsarDeclaration, ...] = ()


def applies(item: FileItem) -> bool:
    return item.name == "Info.plist" and len(item.data) <= MAX_PLIST


def declarations(value: object) -> tuple[AsarDeclaration, ...]:
    """``{"Resources/app.asar": {"algorithm": "SHA256", "hash": "..."}}`` as records."""
    out = []
    if isinstance(value, dict):
        for path, spec in value.items():
            if isinstance(path, str) and isinstance(spec, dict):
                out.append(
                    AsarDeclaration(
                        path=path.replace("\\", "/"),
                        algorithm=str(spec.get("algorithm", "")).upper(),
                        hash=str(spec.get("hash", "")).lower(),
                    )
                )
    return tuple(out[:64])


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    try:
        data = plistlib.loads(item.data)
    except Exception:  # plistlib raises many types on hostile input; not a plist we can read
        return AnalysisResult(NAME, None, ())
    if not isinstance(data, dict):
        return AnalysisResult(NAME, None, ())
    bundle_id = data.get("CFBundleIdentifier")
    executable = data.get("CFBundleExecutable")
    return AnalysisResult(
        NAME,
        PlistFacts(
            bundle_id=bundle_id if isinstance(bundle_id, str) else None,
            executable=executable if isinstance(executable, str) else None,
            asar_integrity=declarations(data.get("ElectronAsarIntegrity")),
        ),
        (),
    )
