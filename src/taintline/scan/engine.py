"""The scan engine: walk, read each file once, hash, YARA, analysers, containers, bundles.

``scan_paths(paths, case, options) -> ScanResult``. The parent process walks the file system,
starts a pool of worker processes (yara-x holds the GIL, so processes, not threads; they import
while the parent compiles the rules) and hands them batches of files, largest first. Each
worker (:mod:`taintline.scan.worker`) reads a file once and feeds the same buffer to the three
hashes, the YARA scanner and every analyser whose ``applies`` says yes, then opens it if it is
a container and does the same for every member (recursively, within
:class:`~taintline.limits.ScanLimits`). The parent writes what comes back in batches
(``file_facts`` rows, findings, hash-indicator matches), so an interrupted scan keeps
everything already recorded, then runs the bundle analysers over the folder bundles that hold
a member they could judge, reading those members back from the case (in path order, whatever
order the workers finished in: :mod:`taintline.scan.bundles`), so the parent keeps no records.
A re-scan links the stored rows of unchanged files in SQL (:mod:`taintline.scan.carry`).

A worker that dies (a native parser crashing on hostile input) is replaced; the files of the
batches it was running are retried one at a time, and the file that kills a worker again gets
an ``error.worker-crash`` finding. Any exception from an analyser is an ``error.analyser``
finding for that file; the scan goes on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from taintline.case import Case
from taintline.errors import Problem
from taintline.limits import MiB, ScanLimits
from taintline.model import Finding
from taintline.scan import bundles, store, treestate
from taintline.scan import rules as rules_mod
from taintline.scan.cache import ScanCache, Unchanged
from taintline.scan.carry import carry_unchanged, members_summary
from taintline.scan.context import Prepared, build_context, prepare
from taintline.scan.hashes import ALL_HASHES, HashType, unchecked_hash_findings
from taintline.scan.identities import Identities, known_identities
from taintline.scan.incremental import complete, input_roots
from taintline.scan.interface import FileRecord, TaskResult
from taintline.scan.reuse import (
    analysis_key,
)
from taintline.scan.walk import FileTask, Walk

if TYPE_CHECKING:
    from taintline.scan.pool import WorkerPool
    from taintline.scan.worker import WorkerConfig

__all__ = [
    "FileRecord",
    "ScanOptions",
    "ScanProgress",
    "ScanResult",
    "TaskResult",
    "build_context",
    "scan_paths",
]

#: Files per worker task and the byte size at which a batch is closed early.
BATCH_FILES = 64
BATCH_BYTES = 32 * MiB


@dataclass(frozen=True, slots=True)
class ScanOptions:
    limits: ScanLimits = field(default_factory=ScanLimits)
    #: Worker processes; ``None`` means ``os.cpu_count()``; ``0`` scans in this process (no
    #: isolation from crashing parsers; for debugging and tests).
    workers: int | None = None
    rule_files: tuple[Path, ...] = ()
    #: ``False``: hashes and analysers only (``--no-rules``).
    use_rules: bool = True
    #: extra roots (PEM, a private PKI) for code signing besides Microsoft's and Apple's roots
    ca_bundle: Path | None = None
    #: Host name put on findings; ``None`` uses this machine's name.
    host: str | None = None
    #: Load the shipped campaign intel into an empty case first.
    ensure_intel: bool = True
    #: Write findings and file facts into the case.
    record: bool = True
    #: ``True`` (``--full``): reuse nothing from earlier scans (what is computed is still
    #: remembered for the next one).
    full: bool = False
    #: The hashes to compute (``--hashes``); SHA-256 is always computed. A hash left out is
    #: stored as NULL, and the case's indicators of that type are reported as not checked.
    hashes: frozenset[HashType] = ALL_HASHES

    def worker_processes(self) -> int:
        """How many worker processes ``workers`` asks for (``None``: the CPU count)."""
        return (os.cpu_count() or 1) if self.workers is None else self.workers


@dataclass(slots=True)
class ScanResult:
    run_id: str | None
    findings: list[Finding]
    files: int = 0
    members: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    #: rules compiled (0 when no file had to be read: an unchanged tree needs no rules)
    rules: int = 0
    problems: tuple[Problem, ...] = ()
    interrupted: bool = False
    #: files not read at all: identity unchanged since the last scan, results from the case
    unchanged: int = 0
    #: files read (new or changed identity) whose content the case knew: only hashed, and
    #: YARA run when the rules changed
    known_content: int = 0
    #: files remembered under the scanned roots that this scan did not find (removed or
    #: renamed since the last scan of that root), display paths as last seen
    disappeared: tuple[str, ...] = ()

    def reuse_summary(self) -> str:
        """``14,982 of 15,000 files unchanged, 18 read`` (and what disappeared)."""
        text = f"{self.unchanged:,} of {self.files:,} files unchanged, {self.files - self.unchanged:,} read"
        if self.known_content:
            text += f" ({self.known_content:,} of them with known content)"
        if self.disappeared:
            text += f"; {len(self.disappeared):,} gone since the last scan"
        return text


class ScanProgress(Protocol):
    """Told the walk's totals, then what each worker result added (files on disk, container
    members, bytes of files on disk); :class:`taintline.scan.progress.ScanMeter` is one."""

    def start(self, total_files: int, total_bytes: int) -> None: ...

    def advance(self, files: int, members: int, nbytes: int) -> None: ...


# -- the parent side -------------------------------------------------------------------------


def _batches(tasks: Sequence[FileTask]) -> list[list[FileTask]]:
    out: list[list[FileTask]] = []
    current: list[FileTask] = []
    size = 0
    for task in tasks:
        if current and (len(current) >= BATCH_FILES or size + task.size > BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(task)
        size += task.size
    if current:
        out.append(current)
    return out


def start_walk(paths: Sequence[str | Path], options: ScanOptions) -> Walk:
    """Start walking ``paths`` now (give the walk to :func:`scan_paths`, ``walk=``)."""
    return Walk(paths, options.limits)


def start_pool(options: ScanOptions) -> WorkerPool | None:
    """The scan's worker processes, started before the case is open, for a scan that will
    read every file (a new case): give it to :func:`scan_paths` (``pool=``), which uses it
    and leaves it to the caller to shut down; None for ``--workers 0``."""
    from taintline.scan.pool import WorkerPool

    workers = options.worker_processes()
    return WorkerPool(workers) if workers > 0 else None


def scan_paths(
    paths: Sequence[str | Path],
    case: Case,
    options: ScanOptions | None = None,
    progress: ScanProgress | None = None,
    *,
    pool: WorkerPool | None = None,
    walk: Walk | None = None,
) -> ScanResult:
    """Scan files, folders and containers; findings (and file facts) go into ``case``.
    ``pool``: workers the caller started (:func:`start_pool`) and shuts down itself;
    ``walk``: the walk of ``paths`` the caller started (:func:`start_walk`)."""
    options = options or ScanOptions()
    started = time.monotonic()
    started_ns = time.time_ns()
    if walk is None:
        walk = Walk(paths, options.limits)
    elif walk.paths != [str(p) for p in paths]:
        raise ValueError("the walk given is not of the paths given")
    workers = options.worker_processes()
    host = options.host or socket.gethostname()
    identities = Identities(case, host, [str(p) for p in paths])
    given = pool  # the caller's: used, never shut down here
    if given is not None and given.config is not None:
        raise ValueError("a worker pool serves one scan (its workers hold that scan's rules)")
    # files under the inputs may be known from an earlier scan (otherwise nothing is looked up)
    maybe_known_before = options.record and not options.full and identities.exist()
    if pool is None and workers > 0 and not maybe_known_before:
        # nothing under the inputs can be unchanged (a first scan): the worker processes
        # start before the walk, their imports overlap it and the intel, rules and context
        from taintline.scan.pool import WorkerPool

        pool = WorkerPool(workers)
    try:
        # while the walk runs: the intel, rules, context and keys
        prepared = prepare(
            case,
            ensure=options.ensure_intel,
            rule_files=options.rule_files if options.use_rules else None,
            ca_bundle=options.ca_bundle,
            hashes=options.hashes,
            limits=options.limits,
        )
        tasks, walk_findings = walk.result()
    except BaseException:
        if pool is not None and pool is not given:
            pool.shutdown()
        raise
    # a tree as a finished run left it needs no per-file work at all (checked under the keys
    # in _scan); otherwise files whose identity is unchanged since the last scan may need no
    # reading: the pool is started now only for the others (the final check needs the rules)
    # the walk's fingerprints: looked up now, remembered at the end (computed once)
    prints = treestate.walk_prints(tasks, identities.roots) if options.record else None
    trees: dict[str, list[treestate.TreeState]] | None = None
    maybe_known: dict[int, str] = {}
    if maybe_known_before:
        trees = treestate.candidates(case, host, prints) if prints else None
        if trees is None:
            maybe_known = known_identities(identities, tasks)
    to_read = [] if trees else [t for i, t in enumerate(tasks) if i not in maybe_known]
    if pool is not None and not to_read:
        if pool is not given:
            pool.shutdown()
        pool = None
    elif pool is None and workers > 0 and to_read:
        # the worker processes start now: their imports overlap the intel, rules and context
        from taintline.scan.pool import WorkerPool

        pool = WorkerPool(min(workers, len(_batches(to_read))))
    try:
        return _scan(
            paths,
            case,
            options,
            progress,
            started,
            started_ns,
            tasks,
            walk_findings,
            pool,
            host,
            identities,
            prepared,
            prints,
            trees,
        )
    finally:
        if pool is not None and pool is not given:
            pool.shutdown()


def _scan(
    paths: Sequence[str | Path],
    case: Case,
    options: ScanOptions,
    progress: ScanProgress | None,
    started: float,
    started_ns: int,
    tasks: list[FileTask],
    walk_findings: list[Finding],
    pool: WorkerPool | None,
    host: str,
    identities: Identities,
    prepared: Prepared,
    prints: dict[str, str] | None,
    trees: dict[str, list[treestate.TreeState]] | None,
) -> ScanResult:
    when = case.now().replace(microsecond=0)
    problems = prepared.problems
    sources, user, context = prepared.sources, prepared.user, prepared.context
    hashes, reuse = prepared.hashes, prepared.reuse
    compiled: rules_mod.CompiledRules | None = None
    cache: ScanCache | None = None
    unchanged: dict[int, Unchanged] = {}
    whole: dict[str, treestate.TreeState] | None = None  # every top as a run left it
    if options.record:
        akey = analysis_key(context, options.limits, hashes)
        cache = ScanCache(
            case,
            host,
            akey,
            reuse,
            use=not options.full,
            started_ns=started_ns,
            identities=identities,
        )
        if not options.full:
            whole = treestate.matching(trees, akey, reuse.rules_key)
        if whole is None:
            unchanged = cache.unchanged(tasks)
    to_read = [] if whole else [t for i, t in enumerate(tasks) if i not in unchanged]
    configs: list[WorkerConfig] = []

    def config() -> WorkerConfig:
        """The workers' configuration, the rules compiled on first need."""
        nonlocal compiled
        if not configs:
            if sources or user:
                compiled = rules_mod.compile_rules(
                    [*sources, *user], strict=tuple(s.origin for s in user)
                )
                problems.extend(compiled.problems)
            rules_data = compiled.data if compiled else None
            # what the case knows (looked up only when a file is read)
            known = cache.worker_config() if cache is not None else reuse
            from taintline.scan.worker import WorkerConfig

            configs.append(WorkerConfig(rules_data, options.limits, context, hashes, known))
        return configs[0]

    if to_read:
        config()  # before the run starts: rules that do not compile are a usage error
    workers = options.worker_processes()
    started_pool: WorkerPool | None = None  # started here (not by scan_paths): stopped here

    run_id = case.start_run("scan " + " ".join(str(p) for p in paths)) if options.record else None
    recorder = store.Recorder(case if options.record else None, run_id, host, when, cache)
    result = ScanResult(run_id, recorder.findings, rules=compiled.count if compiled else 0)
    if pool is not None:  # started by scan_paths: some files are read for sure
        pool.configure(config())

    if progress is not None:
        progress.start(len(tasks), sum(t.size for t in to_read))
    if whole and run_id is not None:
        # every top as a run left it: that run's rows are linked as it saw them
        with case.transaction():
            carried = treestate.link_trees(case, host, run_id, whole, recorder.path_rules)
        result.files += len(tasks)
        result.unchanged += len(tasks)
        result.members += carried.members
        recorder.add([], carried.findings)
        if progress is not None:
            progress.advance(len(tasks), carried.members, 0)
    elif cache is not None and unchanged and run_id is not None:
        # unchanged files recorded under the same path and analysis: their rows are linked
        # in the case, no record of them is built here (first: nothing else is in the run yet)
        with case.transaction():
            carried = carry_unchanged(case, cache, run_id, tasks, unchanged, recorder.path_rules)
        for i in carried.done:
            cache.settle(tasks[i], unchanged[i].sha256)
        if carried.done:
            result.files += len(carried.done)
            result.unchanged += len(carried.done)
            result.members += carried.members
            recorder.add([], carried.findings)
            unchanged = {i: u for i, u in unchanged.items() if i not in carried.done}
            if progress is not None:
                progress.advance(len(carried.done), carried.members, 0)
    recorder.add([], [*walk_findings, *unchecked_hash_findings(case, paths, hashes)])

    # folder bundles, when the records are not recorded in a case (from which the bundle
    # checks read them otherwise, see taintline.scan.bundles): root -> (walk index of the
    # file, its records), filled as results come back (in any order: the pool scans the
    # largest files first) and put back in walk order before the bundle analysers run, so
    # their verdicts never depend on scheduling
    in_memory = recorder.case is None
    bundle_parts: dict[str, list[tuple[int, list[FileRecord]]]] = {}
    # both only when a file may be read or replayed (the first only without a case)
    some_read = bool(to_read or unchanged)
    bundles_of_top: dict[str, tuple[int, tuple[str, ...]]] = (
        {t.display: (i, t.bundles) for i, t in enumerate(tasks)} if in_memory and some_read else {}
    )
    by_display = {t.display: t for t in tasks} if some_read else {}

    def collect(res: TaskResult, from_cache: bool = False) -> None:
        if cache is not None and not from_cache:
            res = complete(cache, res, by_display, result)
        members = sum(1 for r in res.records if r.depth > 0)
        result.files += res.files
        result.bytes_read += res.bytes_read
        result.members += members
        recorder.add(res.records, res.findings)
        for display, start, end in res.spans if in_memory else ():
            index, roots = bundles_of_top.get(display, (0, ()))
            for root in roots:
                bundle_parts.setdefault(root, []).append((index, res.records[start:end]))
        if progress is not None:
            progress.advance(res.files, members, res.bytes_read)

    status = "ok"
    own_triggers: list[tuple[str, str]] | None = None  # searched by the bundle checks
    try:
        if cache is not None and unchanged:
            # nothing of these is read: records and findings come from the case (rows that
            # went away meanwhile: those files are read after all)
            items = [(tasks[i], u.sha256, True) for i, u in sorted(unchanged.items())]
            for res in cache.replay(items, to_read):
                result.unchanged += 1
                collect(res, from_cache=True)
        if to_read:
            from taintline.scan.pool import WorkerPool, run_pool
            from taintline.scan.worker import Worker
        if pool is None and workers > 0 and to_read:
            pool = started_pool = WorkerPool(min(workers, len(_batches(to_read))))
            pool.configure(config())
        if pool is not None and to_read:
            # largest first: the last batches are the small files, so no worker idles long at
            # the end while another still scans a big one
            batches = _batches(sorted(to_read, key=lambda t: t.size, reverse=True))
            run_pool(pool, batches, collect, recorder)
        elif to_read:  # --workers 0: in this process, in walk order
            worker = Worker(config(), hash_threads=(os.cpu_count() or 1) > 1)
            try:
                for batch in _batches(to_read):
                    collect(worker.run_batch(batch))
            finally:
                worker.close()
        if run_id is not None and not in_memory:
            recorder.flush()  # the bundle checks read the run's rows
            judged, own_triggers = bundles.judge(case, run_id, [t.bundles for t in tasks], context)
            recorder.add([], judged)
        elif bundle_parts:
            from taintline.scan.analysers import BUNDLE_ANALYSERS
            from taintline.scan.worker import run_bundle_analysers

            roots = dict.fromkeys(root for t in tasks for root in t.bundles if root in bundle_parts)
            for root in roots:
                parts = sorted(bundle_parts[root], key=lambda part: part[0])
                records = [r for _, part in parts for r in part]
                recorder.add([], run_bundle_analysers(BUNDLE_ANALYSERS, root, records, context))
        if cache is not None:
            result.disappeared = tuple(
                cache.disappeared(input_roots(paths, walk_findings), tasks, all_known=bool(whole))
            )
            if run_id is not None and not whole:
                # the tree as this run leaves it: the next scan that finds it so links it whole
                recorder.flush()
                # the members are counted for the whole run: known per top for one top
                tops = {t.top for t in tasks}
                counted = {tops.pop(): result.members} if len(tops) == 1 else None
                treestate.remember(case, cache, run_id, tasks, prints, counted)
    except KeyboardInterrupt:
        status = "interrupted"
        result.interrupted = True
        raise
    finally:
        recorder.flush()
        result.rules = compiled.count if compiled else 0
        if started_pool is not None:
            started_pool.shutdown()
        result.seconds = time.monotonic() - started
        if run_id is not None:
            with contextlib.suppress(Exception):
                case.finish_run(
                    run_id,
                    status,
                    {
                        "files": result.files,
                        "members": result.members,
                        "bytes": result.bytes_read,
                        "findings": len(result.findings),
                        "rules": result.rules,
                        "hashes": sorted(hashes),
                        "seconds": round(result.seconds, 3),
                        "unchanged": result.unchanged,
                        "known_content": result.known_content,
                        "disappeared": list(result.disappeared),
                        **bundles.remembered_summary(own_triggers),
                        **members_summary(case, run_id),
                    },
                )
    result.problems = tuple(problems)
    return result
