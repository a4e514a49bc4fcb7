"""A tree exactly as a finished run left it: a re-scan that finds it so does no per-file work.

A re-scan of an unchanged tree reads no file (:mod:`taintline.scan.cache`), but checking that
costs per file: the identities the case remembers are read and compared with the walk's, the
cached analysis and YARA results looked up for each content (with a digest of each file's
path and owner when the rules read external variables), and the rows linked per file
(:mod:`taintline.scan.carry`). On the PySpark tree (9,177 files) that was about 0.35 s of a
1.1 s re-scan.

So a run that ends with every file under an input (a *top*) recorded, and its results
cached, remembers that in ``scan_tree_states`` (``migrations/scan/008_tree_states.sql``):
the *fingerprint* of what its walk gave under the top (each file's real path, size, mtime,
ctime, device and inode, in walk order, with the top and the owners' names), the keys of
the analysis and of the rules, and the cached findings of those files. A later scan on the
same host whose walk gives the same fingerprint, under the same keys, sees what that run saw:
the identities are those the run checked (the fingerprint holds them), and cached results
never go away (``--full`` only replaces them with their equal). Its rows are linked as that
run saw them: the run's links under the top copied, and one link to the rows it stored
itself. Hash and filename indicators are still matched against every record, as on every
scan.

Tops that overlap (an input inside another, or one given twice) are never remembered nor
linked this way: their rows are shared between tops, which the per-file path sorts out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson

from taintline.case import Case, rows_relation
from taintline.model import Finding
from taintline.scan.cache import ScanCache, findings_from_json, findings_json
from taintline.scan.carry import (
    Carried,
    Stored,
    hash_digest,
    hash_rows,
    linked_members,
    path_matches,
)
from taintline.scan.filenames import FilenameRules
from taintline.scan.hashes import match_hashes
from taintline.scan.identities import under
from taintline.scan.reuse import name_class
from taintline.scan.walk import FileTask
from taintline.terminal import storable

#: Changes when what the fingerprint digests changes (old states then never match).
_VERSION = b"taintline-tree-1\0"


@dataclass(frozen=True, slots=True)
class TreeState:
    """A remembered tree: the run whose view it is, and what the scan needs of it."""

    top: str
    fingerprint: str
    analysis_key: str
    rules_key: str
    run_id: str
    files: int
    members: int | None
    findings: str
    hash_digest: str
    hash_rows: str
    #: ``findings`` and ``hash_rows`` read (by :func:`matching`)
    cached: tuple[Finding, ...] = ()
    matched: tuple[Stored, ...] = ()


def disjoint(roots: Sequence[str]) -> bool:
    """Are the inputs' real paths distinct, none inside another?"""
    if len(set(roots)) != len(roots):
        return False
    prefixes = [under(r) for r in roots]
    return not any(r.startswith(p) for r in roots for p in prefixes)


def fingerprints(tasks: Sequence[FileTask]) -> dict[str, str]:
    """Top -> the digest of what the walk gave under it, in walk order: each file's real path
    and identity, and the owners' names. The rest of a task follows from these and the top
    (its display path from the top and the real path; its owner's uid, its size on disk and
    the folder's bundles change its ctime or another file's identity)."""
    identity = attrgetter("path", "size", "mtime_ns", "ctime_ns", "dev", "ino")
    by_top: dict[str, list[FileTask]] = {}
    for t in tasks:
        by_top.setdefault(t.top, []).append(t)
    # marshal: tuples of text and numbers as bytes in C (9,177 files: 5 ms, where formatting
    # a line per file took 30 ms), a slice of the walk at a time (a million files are not
    # copied whole); its format may differ between Python versions, which only makes a tree
    # remembered by another Python go the per-file way once
    out: dict[str, str] = {}
    for top, part in by_top.items():
        digest = hashlib.blake2b(_VERSION, digest_size=20)
        digest.update(marshal.dumps((top, sorted({t.owner for t in part}))))
        for start in range(0, len(part), _SLICE):
            digest.update(marshal.dumps(list(map(identity, part[start : start + _SLICE]))))
        out[top] = digest.hexdigest()
    return out


#: Files digested per slice of the walk.
_SLICE = 16_384


def walk_prints(tasks: Sequence[FileTask], roots: Sequence[str]) -> dict[str, str] | None:
    """The fingerprints of a walk whose tops may be remembered (:func:`fingerprints`); None
    when it found no file or its tops overlap."""
    if not tasks or not disjoint(roots):
        return None
    return fingerprints(tasks)


def candidates(case: Case, host: str, prints: dict[str, str]) -> dict[str, list[TreeState]] | None:
    """Top -> the states remembered for the walk's fingerprint under it (``prints``, from
    :func:`walk_prints`; any keys), when every top has one; None otherwise (some file is new,
    changed or gone)."""
    rows = case.con.execute(
        "SELECT top, fingerprint, analysis_key, rules_key, run_id, files, members, findings,"
        " hash_digest, hash_rows FROM scan_tree_states"
        " WHERE host = ? AND fingerprint IN (SELECT unnest(?::VARCHAR[]))",
        [host, list(prints.values())],
    ).fetchall()
    found: dict[str, list[TreeState]] = {}
    for row in rows:
        state = TreeState(*row)
        if prints.get(state.top) == state.fingerprint:
            found.setdefault(state.top, []).append(state)
    return {top: found[top] for top in prints} if len(found) == len(prints) else None


def matching(
    found: dict[str, list[TreeState]] | None, analysis_key: str, rules_key: str
) -> dict[str, TreeState] | None:
    """The state of every top under these keys, or None when one has none."""
    if not found:
        return None
    out: dict[str, TreeState] = {}
    for top, states in found.items():
        for state in states:
            if state.analysis_key == analysis_key and state.rules_key == rules_key:
                read = _read(state)
                if read is None:
                    return None  # a state that does not read (a damaged case): file by file
                out[top] = read
    return out if len(out) == len(found) else None


def _read(state: TreeState) -> TreeState | None:
    """``state`` with its findings and matched records read, or None if they do not read."""
    try:
        texts = orjson.loads(state.findings)
        rows = orjson.loads(state.hash_rows)
        if not isinstance(texts, list) or not isinstance(rows, list):
            return None
        cached = tuple(f for text in texts for f in findings_from_json(text, "", ""))
        matched: list[Stored] = []
        for row in rows:
            if not (
                isinstance(row, list)
                and len(row) == 5
                and all(isinstance(v, str) for v in row[:4])
                and isinstance(row[4], int)
            ):
                return None
            matched.append(Stored(*row))
    except (ValueError, TypeError, KeyError):  # orjson's JSONDecodeError is a ValueError
        return None
    return dataclasses.replace(state, cached=cached, matched=tuple(matched))


def link_trees(
    case: Case,
    host: str,
    run_id: str,
    states: dict[str, TreeState],
    path_rules: FilenameRules | None,
) -> Carried:
    """Link, under ``run_id``, every row of each top as the run its state names saw it: that
    run's links under the top, copied, and one link to the rows it stored itself; with the
    files' cached findings and the indicator matches. In the caller's transaction when one is
    open; call before anything else is recorded under ``run_id``."""
    out = Carried()
    con = case.con
    stamp = case.now_naive()
    for top, state in states.items():
        con.execute(
            "INSERT INTO file_facts_links SELECT ?, ?, top, display, src_run, src_top, ?"
            " FROM file_facts_links WHERE run_id = ? AND top = ?",
            [run_id, host, stamp, state.run_id, top],
        )
        con.execute(
            "INSERT INTO file_facts_links VALUES (?, ?, ?, NULL, ?, ?, ?)",
            [run_id, host, top, state.run_id, top, stamp],
        )
    counted = [state.members for state in states.values()]
    out.members = (
        sum(n for n in counted if n is not None)
        if None not in counted
        else linked_members(case, run_id)
    )
    for state in states.values():
        out.findings.extend(state.cached)
    # the hash indicators are those the states were remembered under: the records that
    # matched then are those that match now (scanning 187,000 records' hashes: 50 ms)
    digest = hash_digest(case)
    if all(state.hash_digest == digest for state in states.values()):
        matched = sorted(
            (row for state in states.values() for row in state.matched), key=dataclasses.astuple
        )
    else:
        matched = hash_rows(case, run_id)
    out.findings.extend(match_hashes(case, matched))
    out.findings.extend(path_matches(case, run_id, path_rules))
    return out


def remember(
    case: Case,
    cache: ScanCache,
    run_id: str,
    tasks: Sequence[FileTask],
    prints: dict[str, str] | None,
    members: dict[str, int] | None = None,
) -> list[str]:
    """After ``run_id`` recorded ``tasks`` (its results flushed): remember each top whose
    every file the scan settled (:attr:`ScanCache.settled`: its identity and its results are
    in the case) under its fingerprint (``prints``, from :func:`walk_prints`: None, nothing
    is remembered), with its container members when ``members`` counts them. Returns the
    tops remembered."""
    if not prints:
        return []
    settled = cache.settled
    by_top: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        by_top.setdefault(t.top, []).append(i)
    whole = {
        top: idx
        for top, idx in by_top.items()
        if all(storable(tasks[i].path) in settled for i in idx)
    }
    if not whole:
        return []
    wanted = [i for idx in whole.values() for i in idx]
    columns: dict[str, tuple[str, list[Any]]] = {
        "idx": ("BIGINT", wanted),
        "sha256": ("VARCHAR", [settled[storable(tasks[i].path)] for i in wanted]),
        "name_class": ("VARCHAR", [name_class(tasks[i].display) for i in wanted]),
        "place": ("VARCHAR", [cache.place(tasks[i]) for i in wanted]),
    }
    con = case.con
    with rows_relation(con, columns) as (files, params):
        rows = con.execute(
            f"""
            SELECT u.idx, c.display, c.findings, y.display, y.findings
            FROM {files} u
            JOIN scan_contents c ON c.sha256 = u.sha256 AND c.analysis_key = ?
                AND c.name_class = u.name_class
            LEFT JOIN scan_yara y ON y.sha256 = u.sha256 AND y.rules_key = ?
                AND y.place = u.place
            WHERE c.findings <> '[]' OR coalesce(y.findings, '[]') <> '[]'
            ORDER BY u.idx
            """,  # noqa: S608  (a relation of ours)
            [*params, cache.analysis_key, cache.rules_key],
        ).fetchall()
    cached: dict[int, list[str]] = {}
    for idx, c_display, c_findings, y_display, y_findings in rows:
        display = tasks[int(idx)].display
        texts = cached.setdefault(int(idx), [])
        texts.append(findings_json(findings_from_json(c_findings, c_display, display)))
        if cache.rules_key and y_findings is not None:
            texts.append(findings_json(findings_from_json(y_findings, y_display, display)))
    recorded = case.now_naive()
    digest = hash_digest(case)
    with case.transaction():
        for top, idx in whole.items():
            texts = [text for i in idx for text in cached.get(i, [])]
            matched = [dataclasses.astuple(r) for r in hash_rows(case, run_id, top)]
            con.execute(
                "DELETE FROM scan_tree_states WHERE host = ? AND top = ? AND analysis_key = ?"
                " AND rules_key = ?",
                [cache.host, top, cache.analysis_key, cache.rules_key],
            )
            con.execute(
                "INSERT INTO scan_tree_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    cache.host,
                    top,
                    cache.analysis_key,
                    cache.rules_key,
                    prints[top],
                    run_id,
                    len(idx),
                    (members or {}).get(top),
                    orjson.dumps(texts).decode(),
                    digest,
                    orjson.dumps(matched).decode(),
                    recorded,
                ],
            )
    return list(whole)
