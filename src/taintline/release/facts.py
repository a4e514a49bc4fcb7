"""From the scan's per-file fact records (analyser name -> facts as JSON objects, as the
``file_facts`` table and the worker's records hold them) to release :class:`Entry` values.

Pure functions: the same facts give the same entry whether they come from a fresh scan, from an
earlier scan in the case, or from a manifest written earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taintline.release.model import VERSION_KEYS, Binary, Entry, Signature


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _pe_signature(sig: Mapping[str, Any] | None) -> Signature:
    if not sig or not sig.get("entries"):
        return Signature("unsigned")
    signer = sig.get("signer") or {}
    chain = tuple(str(c.get("subject", "")) for c in sig.get("chain") or () if isinstance(c, dict))
    if not sig.get("parsed"):
        status = "malformed"
    elif sig.get("verification") == "OK":
        status = "verifies"
    else:
        status = "invalid"
    return Signature(
        status=status,
        signer=_text(signer.get("subject")),
        issuer=_text(signer.get("issuer")),
        chain=chain,
        hidden_bytes=int(sig.get("appended_size") or 0),
    )


def binary_of_pe(facts: Mapping[str, Any]) -> Binary:
    version = facts.get("version") or {}
    return Binary(
        format="pe",
        role="library" if facts.get("is_dll") else "executable",
        version={k: str(version[k]) for k in VERSION_KEYS if version.get(k)},
        signature=_pe_signature(facts.get("signature")),
        imports=tuple(str(x) for x in facts.get("imported_dlls") or ()),
        import_count=int(facts.get("imported_functions") or 0),
        exports=tuple(str(x) for x in facts.get("exports_sample") or ()),
        export_count=int(facts.get("exports") or 0),
        sections=tuple(
            (str(s.get("name", "")), str(s.get("sha256", "")))
            for s in facts.get("sections") or ()
            if isinstance(s, dict)
        ),
        overlay_size=int(facts.get("overlay_size") or 0),
        timestamp=_text(facts.get("timestamp")),
    )


def binary_of_macho(facts: Mapping[str, Any]) -> Binary:
    slices = [s for s in facts.get("slices") or () if isinstance(s, dict)]
    kinds = {str(s.get("filetype", "")).upper() for s in slices}
    role = (
        "executable"
        if "EXECUTE" in kinds
        else "library"
        if kinds & {"DYLIB", "BUNDLE"}
        else "other"
    )
    dylibs: list[str] = []
    signature = Signature("unsigned")
    for s in slices:
        for lib in s.get("dylibs") or ():
            if lib not in dylibs:
                dylibs.append(str(lib))
        sig = s.get("signature") or {}
        if s.get("signed") and signature.status == "unsigned":
            status = "adhoc" if sig.get("adhoc") else "signed"
            signer = _text(sig.get("signer")) or (
                f"team {sig['team_id']}" if sig.get("team_id") else None
            )
            signature = Signature(status, signer=signer, team_id=_text(sig.get("team_id")))
        elif sig and sig.get("error") and signature.status == "unsigned":
            signature = Signature("malformed")
    return Binary(
        format="macho",
        role=role,
        signature=signature,
        imports=tuple(dylibs),
        import_count=len(dylibs),
    )


def binary_of_elf(facts: Mapping[str, Any]) -> Binary:
    kind = str(facts.get("type", "")).upper()
    executable = "EXEC" in kind or bool(facts.get("interpreter"))
    needed = tuple(str(x) for x in facts.get("needed") or ())
    return Binary(
        format="elf",
        role="executable" if executable else "library" if "DYN" in kind else "other",
        imports=needed,
        import_count=len(needed),
        overlay_size=int(facts.get("overlay_size") or 0),
    )


_BUILDERS = {"pe": binary_of_pe, "macho": binary_of_macho, "elf": binary_of_elf}


def entry_of(
    path: str,
    *,
    size: int | None,
    sha256: str | None,
    sha1: str | None,
    md5: str | None,
    filetype: str | None,
    facts: Mapping[str, Mapping[str, Any] | None],
) -> Entry:
    """One entry from a scanned file's hashes, type and analyser facts (by analyser NAME)."""
    binary: Binary | None = None
    for name, build in _BUILDERS.items():
        found = facts.get(name)
        if isinstance(found, Mapping):
            binary = build(found)
            break
    release = facts.get("release")
    bundle: dict[str, str] | None = None
    if isinstance(release, Mapping):
        if binary is not None and release.get("normalised_sha256"):
            from dataclasses import replace

            binary = replace(binary, normalised_sha256=str(release["normalised_sha256"]))
        if isinstance(release.get("bundle"), Mapping):
            bundle = {str(k): str(v) for k, v in release["bundle"].items()}
    return Entry(
        path=path,
        size=size,
        sha256=sha256 or None,
        sha1=sha1 or None,
        md5=md5 or None,
        filetype=filetype or "",
        binary=binary,
        bundle=bundle,
        analysed=True,
    )
