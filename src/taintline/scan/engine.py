"""The scan engine: walk, read each file once, hash, YARA, analysers, containers, bundles.

``scan_paths(paths, case, options) -> ScanResult``. The parent process walks the file system
and hands batches of files to a pool of worker processes (yara-x holds the GIL, so processes,
not threads). Each worker reads a file once and feeds the same buffer to the three hashes, the
YARA scanner and every analyser whose ``applies`` says yes, then opens it if it is a container
and does the same for every member (recursively, within :class:`~taintline.limits.ScanLimits`).
The parent writes what comes back in batches (``file_facts`` rows, findings, hash-indicator
matches), so an interrupted scan keeps everything already recorded, then runs the bundle
analysers over each folder bundle.

A worker that dies (a native parser crashing on hostile input) is replaced; the files of the
batches it was running are retried one at a time, and the file that kills a worker again gets
an ``error.worker-crash`` finding. Any exception from an analyser is an ``error.analyser``
finding for that file; the scan goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import orjson

from taintline.case import Case
from taintline.errors import Problem, TaintlineError
from taintline.limits import MiB, ScanLimits
from taintline.model import Finding, IndicatorType
from taintline.scan import rules as rules_mod
from taintline.scan import store
from taintline.scan.hashes import HashedFile, hash_bytes, hash_stream, match_hashes
from taintline.scan.interface import AnalysisContext, BundleMember, FileItem
from taintline.scan.walk import (
    SEP,
    Budget,
    FileTask,
    container_kind,
    error_finding,
    expand,
    filetype,
    walk_inputs,
)

#: Files per worker task and the byte size at which a batch is closed early.
BATCH_FILES = 64
BATCH_BYTES = 32 * MiB
#: Records and findings are written to the case at least this often.
FLUSH_RECORDS = 2000
FLUSH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ScanOptions:
    limits: ScanLimits = field(default_factory=ScanLimits)
    #: Worker processes; ``None`` means ``os.cpu_count()``; ``0`` scans in this process (no
    #: isolation from crashing parsers; for debugging and tests).
    workers: int | None = None
    rule_files: tuple[Path, ...] = ()
    #: ``False``: hashes and analysers only (``--no-rules``).
    use_rules: bool = True
    #: CA bundle (PEM) for Authenticode chains; ``None`` uses certifi's Mozilla roots.
    ca_bundle: Path | None = None
    #: Host name put on findings; ``None`` uses this machine's name.
    host: str | None = None
    #: Load the shipped campaign intel into an empty case first.
    ensure_intel: bool = True
    #: Write findings and file facts into the case.
    record: bool = True


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One scanned file or member, as the worker sends it back."""

    top: str
    path: str
    name: str
    size: int
    md5: str
    sha1: str
    sha256: str
    filetype: str
    depth: int
    #: analyser NAME -> its facts record (a frozen dataclass)
    facts: dict[str, Any] = field(default_factory=dict)
    #: analyser NAME -> the facts as JSON text (``dataclasses.asdict``)
    facts_json: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class TaskResult:
    records: list[FileRecord]
    findings: list[Finding]
    bytes_read: int
    files: int
    #: (display path of the file on disk, first record index, end index) per task
    spans: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass(slots=True)
class ScanResult:
    run_id: str | None
    findings: list[Finding]
    files: int = 0
    members: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    rules: int = 0
    problems: tuple[Problem, ...] = ()
    interrupted: bool = False


class ScanProgress(Protocol):
    def start(self, total_files: int, total_bytes: int) -> None: ...

    def advance(self, files: int, nbytes: int) -> None: ...


# -- analysis context ----------------------------------------------------------------------


def _normal_serial(value: str) -> str:
    text = value.strip().lower().replace(":", "").replace(" ", "").replace("-", "")
    if text.startswith("0x"):
        text = text[2:]
    return text.lstrip("0") or "0"


def build_context(case: Case, ca_bundle: Path | None = None) -> AnalysisContext:
    """What the analysers may know from the case, loaded once per scan."""
    from taintline.intel.store import eol_map

    eol = {str(k).lower(): str(v) for k, v in eol_map(case).items()}
    signers = frozenset(i.value.lower() for i in case.indicators(types=[IndicatorType.SIGNER]))
    serials = frozenset(
        _normal_serial(i.value) for i in case.indicators(types=[IndicatorType.CERT_SERIAL])
    )
    if ca_bundle is not None:
        trust = ca_bundle.read_bytes()
    else:
        import certifi

        trust = Path(certifi.where()).read_bytes()
    return AnalysisContext(eol=eol, signers=signers, cert_serials=serials, trust_store_pem=trust)


def _ensure_intel(case: Case) -> Problem | None:
    """Load the shipped campaign pack into an empty case; a failure is a warning, not fatal."""
    from taintline.intel.store import ensure_intel

    try:
        ensure_intel(case)
    except TaintlineError as exc:
        return Problem("intel", f"campaign intel not loaded: {exc.diagnostics()}")
    return None


# -- the worker side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    rules: bytes | None
    limits: ScanLimits
    context: AnalysisContext


def _facts_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def facts_to_json(facts: Any) -> str:
    value = (
        dataclasses.asdict(facts)
        if dataclasses.is_dataclass(facts) and not isinstance(facts, type)
        else facts
    )
    return orjson.dumps(
        value, default=_facts_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
    ).decode()


class Worker:
    """Everything one process needs to scan files: rules, limits, analysers, context."""

    def __init__(self, config: WorkerConfig) -> None:
        from taintline.scan.analysers import ANALYSERS, BUNDLE_ANALYSERS

        self.limits = config.limits
        self.context = config.context
        self.analysers = ANALYSERS
        self.bundle_analysers = BUNDLE_ANALYSERS
        self.rules = (
            rules_mod.RuleScanner(config.rules, config.limits.yara_timeout_s)
            if config.rules
            else None
        )

    # one file on disk -------------------------------------------------------------------
    def run_batch(self, tasks: Sequence[FileTask]) -> TaskResult:
        out = TaskResult([], [], 0, 0)
        for task in tasks:
            start = len(out.records)
            self.run_task(task, out)
            out.spans.append((task.display, start, len(out.records)))
        return out

    def run_task(self, task: FileTask, out: TaskResult) -> None:
        out.files += 1
        limits = self.limits
        try:
            fd = os.open(task.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            out.findings.append(
                error_finding(
                    "error.unreadable", task.display, f"cannot open: {exc.strerror or exc}"
                )
            )
            return
        with os.fdopen(fd, "rb") as fh:
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    out.findings.append(
                        error_finding("error.not-regular", task.display, "not a regular file")
                    )
                    return
                if st.st_size > limits.max_file_bytes:
                    self._too_large(task, st.st_size, fh, out)
                    return
                data = fh.read(st.st_size)
            except OSError as exc:
                out.findings.append(
                    error_finding(
                        "error.unreadable", task.display, f"read failed: {exc.strerror or exc}"
                    )
                )
                return
        out.bytes_read += len(data)
        budget = Budget(limits)
        name = PurePosixPath(task.display.replace("\\", "/")).name or task.display
        self.scan_item(data, task.display, name, task.top, 0, task.owner, budget, out)

    def _too_large(self, task: FileTask, size: int, fh: Any, out: TaskResult) -> None:
        """Bigger than ``--max-file-size``: reported; hashed in bounded chunks (so a known-bad
        hash still matches) unless the file is sparse (mostly holes: hashing them costs time
        and says nothing); never read whole, no YARA, no analysers."""
        sparse = task.sparse
        out.findings.append(
            error_finding(
                "error.too-large",
                task.display,
                f"file of {size} bytes is larger than --max-file-size ({self.limits.max_file_bytes});"
                + (" sparse, not hashed" if sparse else " hashed only"),
                size=size,
                sparse=sparse,
            )
        )
        if sparse:
            out.records.append(
                FileRecord(task.top, task.display, task.display, size, "", "", "", "", 0)
            )
            return
        hashes = hash_stream(fh)
        out.bytes_read += hashes.size
        out.records.append(
            FileRecord(
                task.top,
                task.display,
                PurePosixPath(task.display).name,
                hashes.size,
                hashes.md5,
                hashes.sha1,
                hashes.sha256,
                "",
                0,
            )
        )

    # one buffer (file or member) ----------------------------------------------------------
    def scan_item(
        self,
        data: bytes,
        path: str,
        name: str,
        top: str,
        depth: int,
        owner: str,
        budget: Budget,
        out: TaskResult,
    ) -> None:
        hashes = hash_bytes(data)
        ftype = filetype(data, name)
        item = FileItem(
            path=path,
            name=name,
            data=data,
            top=top,
            depth=depth,
            sha256=hashes.sha256,
            sha1=hashes.sha1,
            md5=hashes.md5,
        )
        if self.rules is not None:
            out.findings.extend(
                self.rules.scan(data, subject=path, name=name, filetype=ftype, owner=owner)
            )
        facts: dict[str, Any] = {}
        facts_json: dict[str, str] = {}
        for analyser in self.analysers:
            analyser_name = str(getattr(analyser, "NAME", type(analyser).__name__))
            try:
                if not analyser.applies(item):
                    continue
                result = analyser.analyse(item, self.context)
                if result.facts is not None:
                    facts_json[analyser_name] = facts_to_json(result.facts)
                    facts[analyser_name] = result.facts
                out.findings.extend(result.findings)
            except Exception as exc:  # one bad parser never ends the scan
                out.findings.append(
                    error_finding(
                        "error.analyser",
                        path,
                        f"analyser {analyser_name} failed: {type(exc).__name__}: {exc}",
                        analyser=analyser_name,
                        exception=type(exc).__name__,
                    )
                )
        start = len(out.records)
        out.records.append(
            FileRecord(
                top,
                path,
                name,
                hashes.size,
                hashes.md5,
                hashes.sha1,
                hashes.sha256,
                ftype,
                depth,
                facts,
                facts_json,
            )
        )
        kind = container_kind(data)
        if kind is None:
            return
        if depth >= self.limits.max_depth:
            out.findings.append(
                error_finding(
                    "error.too-deep",
                    path,
                    f"containers nested deeper than {self.limits.max_depth} (--max-depth);"
                    " not opened",
                    depth=depth,
                )
            )
            return
        for produced in expand(data, kind, path, name, budget):
            if isinstance(produced, Finding):
                out.findings.append(produced)
                continue
            member_path = f"{path}{SEP}{produced.name}"
            member_name = PurePosixPath(produced.name).name or produced.name
            self.scan_item(
                produced.data, member_path, member_name, top, depth + 1, owner, budget, out
            )
        members = out.records[start + 1 :]
        if members and self.bundle_analysers:
            out.findings.extend(
                run_bundle_analysers(self.bundle_analysers, path, members, self.context)
            )


def run_bundle_analysers(
    analysers: Iterable[Any], root: str, records: Sequence[FileRecord], ctx: AnalysisContext
) -> list[Finding]:
    members = [BundleMember(r.path, r.name, r.sha256, r.facts) for r in records]
    findings: list[Finding] = []
    for analyser in analysers:
        analyser_name = str(getattr(analyser, "NAME", type(analyser).__name__))
        try:
            findings.extend(analyser.analyse_bundle(root, members, ctx))
        except Exception as exc:  # one bad analyser never ends the scan
            findings.append(
                error_finding(
                    "error.analyser",
                    root,
                    f"bundle analyser {analyser_name} failed: {type(exc).__name__}: {exc}",
                    analyser=analyser_name,
                    exception=type(exc).__name__,
                )
            )
    return findings


_WORKER: Worker | None = None


def _init_worker(config: WorkerConfig) -> None:
    global _WORKER  # noqa: PLW0603  (one scanner per worker process, built once)
    _WORKER = Worker(config)


def _ping() -> bool:
    return _WORKER is not None


def _run_in_worker(tasks: Sequence[FileTask]) -> TaskResult:
    if _WORKER is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker not initialised")
    return _WORKER.run_batch(tasks)


# -- the parent side -------------------------------------------------------------------------


class _Recorder:
    """Collects results; writes them to the case in batches (one transaction each)."""

    def __init__(self, case: Case | None, run_id: str | None, host: str, when: datetime) -> None:
        self.case = case
        self.run_id = run_id
        self.host = host
        self.when = when
        self.findings: list[Finding] = []
        self._pending_records: list[FileRecord] = []
        self._pending_findings: list[Finding] = []
        self._last_flush = time.monotonic()

    def stamp(self, finding: Finding) -> Finding:
        changes: dict[str, Any] = {}
        if finding.host is None:
            changes["host"] = self.host
        if finding.time is None:
            changes["time"] = self.when
        return dataclasses.replace(finding, **changes) if changes else finding

    def add(self, records: Sequence[FileRecord], findings: Sequence[Finding]) -> None:
        self._pending_records.extend(records)
        self._pending_findings.extend(self.stamp(f) for f in findings)
        if (
            len(self._pending_records) >= FLUSH_RECORDS
            or time.monotonic() - self._last_flush > FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        records, findings = self._pending_records, self._pending_findings
        self._pending_records, self._pending_findings = [], []
        self._last_flush = time.monotonic()
        if self.case is not None:
            hashed = [
                HashedFile(r.path, r.md5, r.sha1, r.sha256, r.size) for r in records if r.sha256
            ]
            with self.case.transaction():
                matches = [self.stamp(f) for f in match_hashes(self.case, hashed)]
                store.add_file_facts(self.case, self.run_id or "", self.host, records)
                self.case.add_findings([*findings, *matches], run_id=self.run_id, origin="scan")
            findings = [*findings, *matches]
        self.findings.extend(findings)


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


def scan_paths(
    paths: Sequence[str | Path],
    case: Case,
    options: ScanOptions | None = None,
    progress: ScanProgress | None = None,
) -> ScanResult:
    """Scan files, folders and containers; findings (and file facts) go into ``case``."""
    options = options or ScanOptions()
    started = time.monotonic()
    when = datetime.now(UTC).replace(microsecond=0)
    host = options.host or socket.gethostname()
    problems: list[Problem] = []
    if options.ensure_intel and (problem := _ensure_intel(case)) is not None:
        problems.append(problem)
    compiled: rules_mod.CompiledRules | None = None
    if options.use_rules:
        sources = [*rules_mod.case_rule_sources(case)]
        user = rules_mod.read_rule_files(list(options.rule_files))
        compiled = rules_mod.compile_rules([*sources, *user], strict=tuple(s.origin for s in user))
        problems.extend(compiled.problems)
    context = build_context(case, options.ca_bundle)
    config = WorkerConfig(compiled.data if compiled else None, options.limits, context)

    run_id = case.start_run("scan " + " ".join(str(p) for p in paths)) if options.record else None
    recorder = _Recorder(case if options.record else None, run_id, host, when)
    result = ScanResult(run_id, recorder.findings, rules=compiled.count if compiled else 0)

    tasks: list[FileTask] = []
    walk_findings: list[Finding] = []
    for produced in walk_inputs([str(p) for p in paths], options.limits):
        if isinstance(produced, Finding):
            walk_findings.append(produced)
        else:
            tasks.append(produced)
    recorder.add([], walk_findings)
    if progress is not None:
        progress.start(len(tasks), sum(t.size for t in tasks))

    # folder bundles: root -> members, filled as results come back
    bundle_members: dict[str, list[FileRecord]] = {}
    bundles_of_top: dict[str, tuple[str, ...]] = {t.display: t.bundles for t in tasks}

    def collect(res: TaskResult) -> None:
        result.files += res.files
        result.bytes_read += res.bytes_read
        result.members += sum(1 for r in res.records if r.depth > 0)
        recorder.add(res.records, res.findings)
        for display, start, end in res.spans:
            for root in bundles_of_top.get(display, ()):
                bundle_members.setdefault(root, []).extend(res.records[start:end])
        if progress is not None:
            progress.advance(res.files, res.bytes_read)

    status = "ok"
    try:
        workers = (os.cpu_count() or 1) if options.workers is None else options.workers
        if workers <= 0:
            worker = Worker(config)
            for batch in _batches(tasks):
                collect(worker.run_batch(batch))
        elif tasks:
            _run_pool(_batches(tasks), workers, config, collect, recorder)
        if bundle_members:
            from taintline.scan.analysers import BUNDLE_ANALYSERS

            for root, records in bundle_members.items():
                recorder.add([], run_bundle_analysers(BUNDLE_ANALYSERS, root, records, context))
    except KeyboardInterrupt:
        status = "interrupted"
        result.interrupted = True
        raise
    finally:
        recorder.flush()
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
                        "seconds": round(result.seconds, 3),
                    },
                )
    result.problems = tuple(problems)
    return result


def _run_pool(
    batches: list[list[FileTask]],
    workers: int,
    config: WorkerConfig,
    collect: Callable[[TaskResult], None],
    recorder: _Recorder,
) -> None:
    """Run ``batches`` on a process pool; survive workers that die (see module docstring)."""
    pending: deque[list[FileTask]] = deque(batches)
    quarantine: deque[list[FileTask]] = deque()
    retried: set[str] = set()
    completed = 0
    max_inflight = workers * 3

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(config,),
        )

    def check_pool_starts() -> None:
        """After a break before anything completed: can workers start at all? Otherwise
        every file would be retried on a fresh pool, one by one, for nothing."""
        probe = new_pool()
        try:
            probe.submit(_ping).result()
        except BrokenProcessPool as exc:
            raise TaintlineError(
                "scan worker processes cannot start (run with --workers 0 to see why)"
            ) from exc
        finally:
            probe.shutdown(wait=True, cancel_futures=True)

    pool = new_pool()
    inflight: dict[Future[TaskResult], list[FileTask]] = {}
    try:
        while pending or quarantine or inflight:
            if quarantine:
                # after a crash: one file at a time, so the file that kills a worker is known
                if not inflight:
                    batch = quarantine.popleft()
                    inflight[pool.submit(_run_in_worker, batch)] = batch
            else:
                while pending and len(inflight) < max_inflight:
                    batch = pending.popleft()
                    inflight[pool.submit(_run_in_worker, batch)] = batch
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken: list[list[FileTask]] = []
            for future in done:
                batch = inflight.pop(future)
                try:
                    collect(future.result())
                    completed += 1
                except BrokenProcessPool:
                    broken.append(batch)
                except Exception as exc:  # e.g. a result that cannot be sent back
                    recorder.add(
                        [],
                        [
                            error_finding(
                                "error.worker-crash",
                                t.display,
                                f"worker failed: {type(exc).__name__}: {exc}",
                            )
                            for t in batch
                        ],
                    )
            if not broken:
                continue
            broken.extend(inflight.values())
            inflight.clear()
            pool.shutdown(wait=True, cancel_futures=True)
            if not completed:
                check_pool_starts()
            pool = new_pool()
            for batch in broken:
                if len(batch) == 1 and batch[0].path in retried:
                    recorder.add(
                        [],
                        [
                            error_finding(
                                "error.worker-crash",
                                batch[0].display,
                                "a worker process died while scanning this file; skipped",
                            )
                        ],
                    )
                    continue
                for task in batch:
                    quarantine.append([task])
                    retried.add(task.path)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
