"""Electron ``app.asar`` integrity analyser: every member against the ``integrity`` record the
archive's header keeps for it, links that leave the archive, and the header's own SHA-256 (what
an app declares in ``ElectronAsarIntegrity`` / its Windows ``INTEGRITY`` resource; the
Electron bundle analyser compares the two).

Since Electron 16 ``@electron/asar`` writes, per file, ``integrity: {algorithm: "SHA256", hash,
blockSize, blocks}``: the SHA-256 of the whole file and of each ``blockSize`` block. Electron
checks them when the ``EnableEmbeddedAsarIntegrityValidation`` fuse is on, and only for the
header when it is off, so a member changed after packaging (the 3CX shape: a trojanized app
re-packed or patched in place) shows up here. No maintained Python library reads asar (the
format lives in JavaScript); the index is read by :func:`taintline.scan.walk.asar_index`.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

from taintline.model import Finding, Severity
from taintline.scan.interface import AnalysisContext, AnalysisResult, AppliesTo, FileItem

NAME = "asar"
#: applies() needs a Chromium Pickle header, whose first byte is 4 (see
#: :class:`~taintline.scan.interface.AppliesTo`)
APPLIES_TO = AppliesTo(first_bytes=frozenset({b"\x04"}))
MAX_REPORTED = 50
MAX_NODES = 200_000


@dataclass(frozen=True, slots=True)
class AsarMismatch:
    member: str
    reason: str
    block: int | None = None


@dataclass(frozen=True, slots=True)
class AsarFacts:
    #: SHA-256 of the JSON header text: what ElectronAsarIntegrity declares
    header_sha256: str
    files: int
    with_integrity: int
    checked: int
    unpacked: int
    mismatches: tuple[AsarMismatch, ...] = ()
    #: members without an integrity record in an archive whose other members have one
    missing_integrity: tuple[str, ...] = ()
    links_outside: tuple[tuple[str, str], ...] = ()  # (member, link target)
    errors: tuple[str, ...] = ()


def applies(item: FileItem) -> bool:
    # Chromium Pickle: u32 4, u32 header pickle size, u32 payload size, u32 length, JSON
    data = item.data
    return len(data) >= 25 and data[:4] == b"\x04\x00\x00\x00" and data[16:25] == b'{"files":'


def _check(data: bytes, base: int, entry: dict[str, object], path: str) -> AsarMismatch | None:
    integrity = entry.get("integrity")
    if not isinstance(integrity, dict):
        return None
    try:
        size = int(entry.get("size", 0))  # type: ignore[call-overload]
        offset = int(entry.get("offset", 0))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return AsarMismatch(path, "size or offset is not a number")
    if size < 0 or offset < 0 or base + offset + size > len(data):
        return AsarMismatch(path, "the member runs past the end of the archive")
    if str(integrity.get("algorithm", "")).upper() != "SHA256":
        return AsarMismatch(path, f"unknown integrity algorithm {integrity.get('algorithm')!r}")
    content = memoryview(data)[base + offset : base + offset + size]
    if hashlib.sha256(content).hexdigest() != str(integrity.get("hash", "")).lower():
        reason = "the SHA-256 of the member differs from the integrity hash in the header"
        blocks = integrity.get("blocks")
        try:
            block_size = int(integrity.get("blockSize", 0))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            block_size = 0
        if isinstance(blocks, list) and block_size > 0:
            for i, start in enumerate(range(0, max(size, 1), block_size)):
                want = str(blocks[i]).lower() if i < len(blocks) else ""
                got = hashlib.sha256(content[start : start + block_size]).hexdigest()
                if got != want:
                    return AsarMismatch(path, f"{reason} (first differing block: {i})", i)
        return AsarMismatch(path, reason)
    blocks = integrity.get("blocks")
    try:
        block_size = int(integrity.get("blockSize", 0))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return AsarMismatch(path, "blockSize is not a number")
    if isinstance(blocks, list) and block_size > 0:
        expected = max((size + block_size - 1) // block_size, 1)
        if len(blocks) != expected:
            return AsarMismatch(path, f"{len(blocks)} block hashes for {expected} blocks")
        for i, start in enumerate(range(0, max(size, 1), block_size)):
            got = hashlib.sha256(content[start : start + block_size]).hexdigest()
            if got != str(blocks[i]).lower():
                return AsarMismatch(path, f"block {i} differs from its integrity hash", i)
    return None


def facts_of(data: bytes) -> AsarFacts:
    from taintline.scan.containers.asar import asar_index

    index, base = asar_index(data)
    json_len = int.from_bytes(data[12:16], "little")
    header_sha256 = hashlib.sha256(data[16 : 16 + json_len]).hexdigest()
    files = with_integrity = checked = unpacked = 0
    mismatches: list[AsarMismatch] = []
    missing: list[str] = []
    links: list[tuple[str, str]] = []
    stack: list[tuple[str, dict[str, object]]] = [("", index)]
    nodes = 0
    while stack and nodes < MAX_NODES:
        prefix, node = stack.pop()
        children = node.get("files")
        if not isinstance(children, dict):
            continue
        for name in sorted(children):
            entry = children[name]
            nodes += 1
            if not isinstance(entry, dict) or not isinstance(name, str):
                continue
            path = f"{prefix}{name}"
            if "files" in entry:
                stack.append((path + "/", entry))
                continue
            if "link" in entry:
                target = str(entry.get("link"))
                # links are stored relative to the archive root; one that climbs out of it
                # (or is absolute) points at the file system of whoever runs the app
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                plain = posixpath.normpath(target)
                if (
                    target.startswith(("/", "\\"))
                    or (len(target) > 1 and target[1] == ":")
                    or plain.startswith("..")
                    or resolved.startswith("..")
                ):
                    links.append((path, target))
                continue
            files += 1
            if entry.get("unpacked"):
                unpacked += 1
                if "integrity" in entry:
                    with_integrity += 1
                continue  # its bytes live in app.asar.unpacked/, scanned as files on disk
            if "integrity" not in entry:
                missing.append(path)
                continue
            with_integrity += 1
            checked += 1
            mismatch = _check(data, base, entry, path)
            if mismatch is not None:
                mismatches.append(mismatch)
    return AsarFacts(
        header_sha256=header_sha256,
        files=files,
        with_integrity=with_integrity,
        checked=checked,
        unpacked=unpacked,
        mismatches=tuple(mismatches),
        # an archive written before integrity records existed has none: nothing is missing
        missing_integrity=tuple(missing) if with_integrity else (),
        links_outside=tuple(links),
    )


def findings_of(path: str, facts: AsarFacts) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for m in facts.mismatches[:MAX_REPORTED]:
        out.append(
            Finding(
                "electron.asar-integrity-mismatch",
                Severity.HIGH,
                f"{path}!/{m.member}",
                f"asar member {m.member} does not match its integrity record: changed after"
                " packaging",
                evidence={
                    "archive": path,
                    "member": m.member,
                    "block": m.block,
                    "reason": m.reason,
                },
            )
        )
    if len(facts.mismatches) > MAX_REPORTED:
        out.append(Finding("electron.asar-integrity-mismatch", Severity.HIGH, path,
                           f"{len(facts.mismatches) - MAX_REPORTED} more asar members do not match"
                           " their integrity records",
                           evidence={"archive": path, "more": len(facts.mismatches) - MAX_REPORTED,
                                     "reason": "see the findings above"}))  # fmt: skip
    if facts.missing_integrity:
        sample = list(facts.missing_integrity[:MAX_REPORTED])
        out.append(
            Finding(
                "electron.asar-integrity-missing",
                Severity.MEDIUM,
                path,
                f"{len(facts.missing_integrity)} asar member(s) without an integrity record in an"
                f" archive whose other {facts.with_integrity} members have one: {sample[0]}",
                evidence={
                    "archive": path,
                    "members": sample,
                    "reason": "@electron/asar writes an integrity record for every file;"
                    " a member without one was added after packaging",
                },
            )
        )
    for member, target in facts.links_outside[:MAX_REPORTED]:
        out.append(
            Finding(
                "electron.asar-link-outside",
                Severity.MEDIUM,
                f"{path}!/{member}",
                f"asar link {member} points outside the archive: {target}",
                evidence={
                    "archive": path,
                    "member": member,
                    "target": target,
                    "reason": "the link target is absolute or climbs above the archive"
                    " root; @electron/asar refuses to pack such links",
                },
            )
        )
    return tuple(out)


def analyse(item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
    try:
        facts = facts_of(item.data)
    except (ValueError, EOFError, KeyError, TypeError):
        # the container reader reports a broken index (error.malformed); nothing to judge here
        return AnalysisResult(NAME, None, ())
    return AnalysisResult(NAME, facts, findings_of(item.path, facts))
