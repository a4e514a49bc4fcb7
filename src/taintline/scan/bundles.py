"""Bundle checks run from the case: which folder bundles need them, and their members.

The bundle analysers (:data:`taintline.scan.analysers.BUNDLE_ANALYSERS`) judge a folder as a
whole: an Electron app and the native libraries beside it, files vouched for by a security
catalog scanned with them. A scanned tree is one bundle too, and a virtual environment holds
hundreds of thousands of records, none of which either analyser has anything to say about
unless the bundle holds an Electron marker or a catalog. So a scan that records into a case
does not keep records in memory for them: at the end it asks the case which bundles hold a
member that could start a bundle analyser (:data:`TRIGGERS`, one SQL pass over the run's
``file_facts`` rows) and loads only those bundles' members (in path order) to run the
analysers. A re-scan that linked its rows in SQL (:mod:`taintline.scan.carry`) is judged the
same way, without materialising its records.

The triggers are kept here (not in the analysers' modules) so that the parent need not import
the analysers and their parsing libraries to ask; a test checks that they agree.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import orjson

from taintline.case import Case
from taintline.model import Finding
from taintline.scan.electron import ELECTRON_MARKERS
from taintline.scan.interface import AnalysisContext, FileRecord


@dataclass(frozen=True, slots=True)
class BundleTrigger:
    """What one member must show for a bundle analyser to have anything to say about its
    bundle (a superset: the analyser still decides)."""

    #: lower-cased substrings of the member's path
    path_contains: tuple[str, ...] = ()
    #: lower-cased endings of the member's path
    path_endswith: tuple[str, ...] = ()
    #: (analyser, fact, value): the member's facts of that analyser have that value
    facts: tuple[tuple[str, str, str], ...] = ()


#: Per bundle analyser NAME. ``electron.is_electron`` looks for its markers in the paths
#: joined by spaces: "electron framework" may span two paths, one ending with "electron".
#: ``signed`` needs a security catalog (``signed`` facts with ``format`` "catalog").
TRIGGERS: dict[str, BundleTrigger] = {
    "electron": BundleTrigger(path_contains=ELECTRON_MARKERS, path_endswith=("electron",)),
    "signed": BundleTrigger(facts=(("signed", "format", "catalog"),)),
}


def _prefix(root: str) -> str:
    return root if root.endswith(("/", "\\")) else root + "/"


def _condition() -> tuple[str, list[str]]:
    # the path patterns as one case-insensitive RE2 alternation: one pass over each path
    texts = [re.escape(t) for trigger in TRIGGERS.values() for t in trigger.path_contains]
    texts += [re.escape(t) + "$" for trigger in TRIGGERS.values() for t in trigger.path_endswith]
    parts: list[str] = []
    params: list[str] = []
    if texts:
        parts.append("regexp_matches(path, ?)")
        params.append("(?i)" + "|".join(texts))
    for trigger in TRIGGERS.values():
        for analyser, fact, value in trigger.facts:
            parts.append("(analyser = ? AND json_extract_string(facts, ?) = ?)")
            params.extend([analyser, f'$."{fact}"', value])
    return " OR ".join(parts) or "false", params


#: Names the trigger definitions: trigger paths a run remembered under other ones are unused.
TRIGGER_KEY = hashlib.sha256(repr(sorted(TRIGGERS.items())).encode()).hexdigest()[:16]


@dataclass(slots=True)
class Triggered:
    """The bundle roots to judge, and the paths of the run's own rows (not its linked rows)
    that could start a bundle analyser, as (top, path), which the run remembers in its
    summary (``bundle_triggers``) so that runs linking to its rows need not look again."""

    roots: list[str]
    own: list[tuple[str, str]] | None = None


def triggered_roots(
    case: Case, run_id: str, roots: Iterable[str], analysers: Iterable[str] = TRIGGERS
) -> Triggered:
    """The bundle roots (folders, display paths) under which this run recorded or linked a
    member that could start one of the bundle ``analysers`` (their NAMEs), in the order given.
    An analyser without a trigger here judges every bundle that holds a record.

    The run's own rows are searched; for its linked rows (:mod:`taintline.scan.carry`), the
    trigger paths the run that stored them remembered are used (searched only if it did not:
    a run from before, or other trigger definitions), so a re-scan of an unchanged tree does
    not run the search over every path again."""
    wanted = list(dict.fromkeys(roots))
    if not wanted:
        return Triggered([])
    if any(name not in TRIGGERS for name in analysers):
        return Triggered(
            [
                root
                for root in wanted
                if case.con.execute(
                    "SELECT 1 FROM file_facts_all WHERE run_id = ? AND starts_with(path, ?)"
                    " LIMIT 1",
                    [run_id, _prefix(root)],
                ).fetchone()
            ]
        )
    own = _search(case, run_id)
    paths = [path for _, path in own]
    links = case.con.execute(
        "SELECT top, display, src_run, src_top FROM file_facts_links WHERE run_id = ?", [run_id]
    ).fetchall()
    sources: dict[str, list[tuple[str, str]]] = {}
    for _, display, src_run, src_top in links:
        if src_run not in sources:
            sources[src_run] = _remembered(case, src_run)
        for top, path in sources[src_run]:
            if top == src_top and (
                display is None or path == display or path.startswith(display + "!/")
            ):
                paths.append(path)
    return Triggered([r for r in wanted if any(p.startswith(_prefix(r)) for p in paths)], own)


def _search(case: Case, run_id: str) -> list[tuple[str, str]]:
    """(top, path) of the rows ``run_id`` stored itself that could start a bundle analyser."""
    condition, params = _condition()
    rows = case.con.execute(
        f"SELECT DISTINCT top, path FROM file_facts WHERE run_id = ? AND ({condition})"  # noqa: S608
        " ORDER BY top, path",
        [run_id, *params],
    ).fetchall()
    return [(str(top), str(path)) for top, path in rows]


def _remembered(case: Case, run_id: str) -> list[tuple[str, str]]:
    """The trigger paths ``run_id`` remembered (under these trigger definitions), or those
    found by searching its rows."""
    row = case.con.execute(
        "SELECT json_extract(summary, '$.bundle_triggers') FROM runs WHERE run_id = ?", [run_id]
    ).fetchone()
    remembered = orjson.loads(row[0]) if row and row[0] else None
    if isinstance(remembered, dict) and remembered.get("key") == TRIGGER_KEY:
        paths = remembered.get("paths")
        if isinstance(paths, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in paths
        ):
            return [(p[0], p[1]) for p in paths]
    return _search(case, run_id)


def remembered_summary(own: list[tuple[str, str]] | None) -> dict[str, object]:
    """What a run's summary holds of its own trigger paths (nothing if not searched)."""
    if own is None:
        return {}
    return {"bundle_triggers": {"key": TRIGGER_KEY, "paths": [list(p) for p in own]}}


def record_name(path: str, depth: int) -> str:
    """The name the worker gives a record, from its display path (``file_facts`` keeps no
    name): the base name of a file on disk; a member's name is the last ``/`` part of its
    member name, which is the last ``/`` part of the path unless that part is empty."""
    if depth == 0:
        return PurePosixPath(path.replace("\\", "/")).name or path
    tail = path.rpartition("/")[2]
    if tail and tail not in (".", ".."):
        return tail
    member = path.rpartition("!/")[2]
    return PurePosixPath(member).name or member


def bundle_records(case: Case, run_id: str, root: str) -> list[FileRecord]:
    """The records this run stored under the folder ``root``, in path order, with their
    facts (as JSON values, as the analysers also read cached facts)."""
    rows = case.con.execute(
        "SELECT top, path, sha256, sha1, md5, size, filetype, depth, analyser, facts::VARCHAR"
        " FROM file_facts_all WHERE run_id = ? AND starts_with(path, ?) ORDER BY path, analyser, top",
        [run_id, _prefix(root)],
    ).fetchall()
    records: list[FileRecord] = []
    last: FileRecord | None = None
    for top, path, sha256, sha1, md5, size, ftype, depth, analyser, facts in rows:
        if last is None or last.path != path:
            last = FileRecord(
                str(top),
                str(path),
                record_name(str(path), int(depth or 0)),
                int(size or 0),
                md5 or "",
                sha1 or "",
                sha256 or "",
                ftype or "",
                int(depth or 0),
            )
            records.append(last)
        if analyser and facts is not None and analyser not in last.facts_json:
            last.facts_json[str(analyser)] = str(facts)
            last.facts[str(analyser)] = orjson.loads(facts)
    return records


def judge(
    case: Case, run_id: str, walked: Sequence[tuple[str, ...]], context: AnalysisContext
) -> tuple[list[Finding], list[tuple[str, str]] | None]:
    """The bundle analysers' findings on the folder bundles (``walked``: each walked file's
    bundle roots) whose recorded members could interest them, read back from the case; and
    the run's own trigger paths (:class:`Triggered`) for its summary."""
    roots = list(dict.fromkeys(root for roots in walked for root in roots))
    # the shipped bundle analysers, or those of the analysers module when it is loaded (the
    # parent of a worker pool does not load it unless a bundle needs judging)
    loaded = sys.modules.get("taintline.scan.analysers")
    names = (
        [str(getattr(a, "NAME", "")) for a in loaded.BUNDLE_ANALYSERS]
        if loaded is not None
        else list(TRIGGERS)
    )
    findings: list[Finding] = []
    triggered = triggered_roots(case, run_id, roots, names)
    for root in triggered.roots:
        from taintline.scan.analysers import BUNDLE_ANALYSERS
        from taintline.scan.worker import run_bundle_analysers

        records = bundle_records(case, run_id, root)
        findings.extend(run_bundle_analysers(BUNDLE_ANALYSERS, root, records, context))
    return findings, triggered.own
