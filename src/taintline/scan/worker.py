"""The worker side of the scan engine: one file read once, fed to hashes, YARA and analysers.

Runs in the scan's worker processes (and in the parent with ``--workers 0``). It imports no
DuckDB, pyarrow or LIEF up front: a worker process starts in a fraction of a second, and LIEF
is imported by the first executable that needs it (see :mod:`taintline.scan.lieflazy`).

Per buffer (a file or a container member):

* the three hashes start on the worker's hash threads (:func:`~taintline.scan.hashes.start_hashes`;
  hashlib releases the GIL for the whole buffer) while this thread runs the YARA rules over the
  same bytes (yara-x holds the GIL for a whole scan, so the hashes must be running before it
  starts);
* then the analysers whose ``applies`` says yes (only those whose declared ``APPLIES_TO``
  admits the buffer are asked), then the container's members, recursively, in chunks: YARA
  scans a chunk's members one after another, then each is hashed, analysed and recorded.

Long file: one class whose per-buffer steps (YARA and its memo, hashes, the analysers, the
members in chunks, the incremental shortcuts) share the worker's rules, memos and limits.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import orjson

from taintline.kinds import error_finding
from taintline.limits import ScanLimits
from taintline.model import Finding
from taintline.scan import rules as rules_mod
from taintline.scan.bigfile import scan_big_file, streamed_member
from taintline.scan.containers import SEP, Budget, ContainerKind, container_kind_of, expand
from taintline.scan.hashes import (
    ALL_HASHES,
    THREADED_MIN,
    Hashes,
    HashJob,
    HashType,
    hash_bytes,
    start_hashes,
)
from taintline.scan.interface import (
    AnalysisContext,
    AppliesTo,
    BundleMember,
    FileItem,
    FileRecord,
    TaskResult,
    display_name,
)
from taintline.scan.magic import FileType, sniff
from taintline.scan.reuse import ReuseConfig, name_class, rebase, rebase_text, yara_place
from taintline.scan.walk import FileTask

#: A container's members are read and scanned by YARA in chunks of at most this many members
#: or (about) this many bytes (see :meth:`Worker._members`).
CHUNK_MEMBERS = 256
CHUNK_BYTES = 8 * 1024 * 1024

#: Contents remembered per worker process so identical content met twice in one scan (the
#: same DLL loose and inside an MSI, the same class in two jars) is analysed once; the memo is
#: emptied when it holds this many.
MEMO_MAX = 20_000


#: Files smaller than this are not announced to the kernel before they are read.
PREFETCH_MIN = 256 * 1024


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    rules: bytes | None
    limits: ScanLimits
    context: AnalysisContext
    #: the hashes to compute (``--hashes``; SHA-256 always)
    hashes: frozenset[HashType] = ALL_HASHES
    #: what the case already knows (incremental scans); ``None``: reuse nothing
    reuse: ReuseConfig | None = None


def base_name(path: str) -> str:
    """``PurePosixPath(path).name`` (the last part of a ``/`` path), without building a path
    for the common case (called for every member)."""
    tail = path.rpartition("/")[2]
    if tail and tail not in (".", ".."):
        return tail
    return PurePosixPath(path).name


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

    def __init__(self, config: WorkerConfig, hash_threads: bool = True) -> None:
        from taintline.scan.analysers import ANALYSERS, BUNDLE_ANALYSERS

        self.limits = config.limits
        self.context = config.context
        self.hashes = config.hashes
        self.analysers = ANALYSERS
        self.analyser_names = tuple(
            str(getattr(a, "NAME", type(a).__name__)) for a in self.analysers
        )
        self.bundle_analysers = BUNDLE_ANALYSERS
        #: each analyser's declared ``APPLIES_TO`` (``None``: always asked), and the
        #: analysers to ask per (type, first byte, name if some declaration names it)
        self._gates: tuple[AppliesTo | None, ...] = tuple(
            getattr(a, "APPLIES_TO", None) for a in self.analysers
        )
        self._gate_names = frozenset(n for g in self._gates if g is not None for n in g.names)
        self._by_gate: dict[tuple[FileType | None, bytes, str], tuple[int, ...]] = {}
        self.rules = (
            rules_mod.RuleScanner(config.rules, config.limits.yara_timeout_s)
            if config.rules
            else None
        )
        self.reuse = config.reuse
        #: YARA findings by SHA-256 (only when the rules read no external variable, so the
        #: result depends on the bytes alone) and analyser results by SHA-256, each with the
        #: path they were computed for
        self._yara_memo: dict[str, tuple[str, list[Finding]]] = {}
        self._analysis_memo: dict[
            str, tuple[str, dict[str, Any], dict[str, str], list[Finding]]
        ] = {}
        self._yara_by_bytes = config.reuse is not None and not config.reuse.externals
        #: one thread per hash (MD5, SHA-1, SHA-256), see :func:`start_hashes`; only when this
        #: process has a core to spare (with as many busy workers as cores, the threads only
        #: add switches and memory traffic: the buffer is then hashed in one cache-sized pass)
        self._hash_threads = (
            ThreadPoolExecutor(3, thread_name_prefix="taintline-hash") if hash_threads else None
        )

    def close(self) -> None:
        if self._hash_threads is not None:
            self._hash_threads.shutdown(wait=True)

    # one file on disk -------------------------------------------------------------------
    def run_batch(self, tasks: Sequence[FileTask]) -> TaskResult:
        out = TaskResult([], [], 0, 0)
        for i, task in enumerate(tasks):
            if i + 1 < len(tasks):
                self._prefetch(tasks[i + 1])
            start = len(out.records)
            try:
                self.run_task(task, out)
            except Exception as exc:  # a bug on one file must not lose the batch's other files
                out.findings.append(
                    error_finding(
                        "error.internal",
                        task.display,
                        f"scan of this file stopped: {type(exc).__name__}: {exc}",
                        exception=type(exc).__name__,
                    )
                )
            out.spans.append((task.display, start, len(out.records)))
        return out

    def _prefetch(self, task: FileTask) -> None:
        """Have the kernel start reading the next file while this one is scanned (a cold page
        cache otherwise stalls the worker on every read). Only a hint: errors are ignored
        (:meth:`run_task` reports them), and only regular files that will be read whole and
        are large enough for it to matter (the hint costs an open, a stat and a close: on a
        tree of 9,000 mostly small files, 0.1 s of CPU for files the kernel's own read-ahead
        fetches in one go)."""
        if (
            task.size < PREFETCH_MIN
            or task.sparse
            or task.size > self.limits.max_file_bytes
            or not hasattr(os, "posix_fadvise")
        ):
            return
        try:
            fd = os.open(task.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)

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
                    self.big_file(task, st.st_size, fh, out)
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
        name = display_name(task.display)
        hashes: Hashes | None = None
        if self.reuse is not None and self.reuse.known_contents:
            hashes = hash_bytes(data, self.hashes)
            if self._known(task, data, hashes, name, budget, out):
                return
        self.scan_item(data, task.display, name, task.top, 0, task.owner, budget, out, hashes)

    def _known(
        self,
        task: FileTask,
        data: bytes,
        hashes: Hashes,
        name: str,
        budget: Budget,
        out: TaskResult,
    ) -> bool:
        """A file whose content the case already analysed (renamed, copied, or unchanged
        under new rules): only YARA runs, and only if the case lacks its results under
        these rules; the parent takes the rest from the case."""
        reuse = self.reuse
        if reuse is None or f"{hashes.sha256}|{name_class(name)}" not in reuse.known_contents:
            return False
        place = yara_place(reuse.externals, task.display, task.owner)
        yara_known = self.rules is None or f"{hashes.sha256}|{place}" in reuse.known_yara
        if not yara_known:
            self.yara_only(data, task.display, name, 0, task.owner, budget, out)
        out.reused.append((task.display, hashes.sha256, yara_known))
        return True

    def yara_only(
        self,
        data: bytes,
        path: str,
        name: str,
        depth: int,
        owner: str,
        budget: Budget,
        out: TaskResult,
    ) -> None:
        """YARA over ``data`` and its members (opened exactly as :meth:`scan_item` opens
        them), nothing else: the hashes and analyses of these bytes are already known."""
        found = sniff(data, name)
        if self.rules is not None:
            ftype = "" if found is None else str(found)
            out.findings.extend(
                self.rules.scan(data, subject=path, name=name, filetype=ftype, owner=owner)
            )
        kind = container_kind_of(found)
        if kind is None or depth >= self.limits.max_depth:
            return
        for produced in expand(data, kind, path, name, budget):
            if isinstance(produced, Finding):
                continue  # part of the known analysis
            member_name = base_name(produced.name) or produced.name
            self.yara_only(
                produced.data,
                f"{path}{SEP}{produced.name}",
                member_name,
                depth + 1,
                owner,
                budget,
                out,
            )

    def big_file(self, task: FileTask, size: int, fh: Any, out: TaskResult) -> None:
        """Bigger than ``--max-file-size``: see :func:`taintline.scan.bigfile.scan_big_file`."""
        scan_big_file(task, size, fh, out, self.rules, self.limits.max_file_bytes, self.hashes)

    # one buffer (file or member) ----------------------------------------------------------
    def _yara(
        self, data: bytes, path: str, name: str, ftype: str, owner: str, early: Hashes | None
    ) -> list[Finding]:
        """The YARA findings of one buffer (``[]`` without rules); from the memo when the
        rules read no external variable and the same bytes were scanned before."""
        rules = self.rules
        if rules is None:
            return []
        memo_key = early.sha256 if early is not None and self._yara_by_bytes else None
        hit = self._yara_memo.get(memo_key) if memo_key else None
        if hit is not None:
            return rebase(hit[1], hit[0], path)
        matched = rules.scan(data, subject=path, name=name, filetype=ftype, owner=owner)
        if memo_key:
            _memo(self._yara_memo, memo_key, (path, matched))
        return matched

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
        known: Hashes | None = None,
        pre: tuple[FileType | None, list[Finding]] | None = None,
    ) -> None:
        """Hashes, YARA, analysers and record of one buffer, then its members. ``pre`` is
        the buffer's sniffed type and YARA findings when :meth:`_members` computed them."""
        if pre is None:
            job = (  # runs while YARA scans
                HashJob(len(data), done=known)
                if known is not None
                else start_hashes(data, self._hash_threads, self.hashes)
            )
            found = sniff(data, name)  # once: YARA's filetype, the analysers, the container
            ftype = "" if found is None else str(found)
            out.findings.extend(self._yara(data, path, name, ftype, owner, job.ready()))
            hashes = job.result()
        else:
            found, matched = pre
            ftype = "" if found is None else str(found)
            out.findings.extend(matched)
            if known is not None:
                hashes = known
            elif self._hash_threads is None or len(data) < THREADED_MIN:
                hashes = hash_bytes(data, self.hashes)
            else:
                hashes = start_hashes(data, self._hash_threads, self.hashes).result()
        sha256 = hashes.sha256
        memo = self._analysis_memo.get(sha256)
        if memo is not None:
            old, facts, facts_json, judged = memo
            if old != path:
                facts_json = {k: rebase_text(v, old, path) for k, v in facts_json.items()}
                judged = rebase(judged, old, path)
            out.findings.extend(judged)
        else:
            candidates = self._candidates(found, name, data)
            if candidates:
                item = FileItem(
                    path, name, data, top, depth, sha256, hashes.sha1, hashes.md5, found, True
                )
                facts, facts_json, judged = self._analyse(item, candidates)
                out.findings.extend(judged)
            else:  # no analyser can apply (see _candidates): nothing to ask
                facts, facts_json, judged = {}, {}, []
            _memo(self._analysis_memo, sha256, (path, facts, facts_json, judged))
        start = len(out.records)
        out.records.append(
            FileRecord(
                top,
                path,
                name,
                hashes.size,
                hashes.md5,
                hashes.sha1,
                sha256,
                ftype,
                depth,
                facts,
                facts_json,
            )
        )
        kind = container_kind_of(found)
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
        self._members(data, kind, path, name, top, depth, owner, budget, out)
        members = out.records[start + 1 :]
        if members and self.bundle_analysers:
            out.findings.extend(
                run_bundle_analysers(self.bundle_analysers, path, members, self.context)
            )

    def _members(
        self,
        data: bytes,
        kind: ContainerKind,
        path: str,
        name: str,
        top: str,
        depth: int,
        owner: str,
        budget: Budget,
        out: TaskResult,
    ) -> None:
        """Every member of a container, in order, in chunks: a chunk's members are read and
        sniffed, YARA scans them one after another, then each is hashed, analysed and
        recorded. yara-x's tables stay in the CPU's caches across the scans of a chunk:
        scans interleaved with inflating, hashing and analysing cost about a third more
        (issue 17). The order of everything produced is the one of member-by-member scanning,
        and so is the order in which the container's budget is used: a chunk ends after any
        member that will be opened itself, before the next member is read."""
        produced_members = expand(data, kind, path, name, budget)
        opens_members = depth + 1 < self.limits.max_depth
        # the hashes are known before YARA (and its memo by content usable) where scan_item
        # would know them: when they are computed at once rather than on the hash threads
        early_max = THREADED_MIN if self._hash_threads is not None else None
        while True:
            chunk: list[Finding | tuple[bytes, str, str, FileType | None]] = []
            size = 0
            for produced in produced_members:
                if isinstance(produced, Finding):
                    chunk.append(produced)
                    continue
                member_data = produced.data
                member_name = base_name(produced.name) or produced.name
                found = sniff(member_data, member_name)
                chunk.append((member_data, f"{path}{SEP}{produced.name}", member_name, found))
                size += len(member_data)
                if (
                    size >= CHUNK_BYTES
                    or len(chunk) >= CHUNK_MEMBERS
                    or (opens_members and container_kind_of(found) is not None)
                ):
                    break
            if not chunk:
                return
            # YARA over the chunk's members, one scan after another
            scanned: list[tuple[Hashes | None, list[Finding]]] = []
            for entry in chunk:
                if isinstance(entry, Finding):
                    continue
                member_data, member_path, member_name, found = entry
                early = (
                    hash_bytes(member_data, self.hashes)
                    if self._yara_by_bytes and (early_max is None or len(member_data) < early_max)
                    else None
                )
                ftype = "" if found is None else str(found)
                scanned.append(
                    (early, self._yara(member_data, member_path, member_name, ftype, owner, early))
                )
            # then each member in order, as scan_item would have taken it
            at = 0
            for entry in chunk:
                if isinstance(entry, Finding):
                    out.findings.append(entry)
                    if entry.kind == "error.too-large" and entry.subject.startswith(path + SEP):
                        out.records.extend(streamed_member(entry, top, depth + 1))
                    continue
                member_data, member_path, member_name, found = entry
                early, matched = scanned[at]
                at += 1
                self.scan_item(
                    member_data,
                    member_path,
                    member_name,
                    top,
                    depth + 1,
                    owner,
                    budget,
                    out,
                    early,
                    (found, matched),
                )
            del chunk, scanned

    def _candidates(self, found: FileType | None, name: str, data: bytes) -> tuple[int, ...]:
        """Indexes of the analysers whose ``applies`` may say yes to a buffer of type
        ``found``, named ``name``, starting with ``data[:1]``: the others' ``applies`` is
        false for it by their declared ``APPLIES_TO`` (:class:`~taintline.scan.interface.AppliesTo`;
        a test holds every declaration against ``applies``), so they are not asked."""
        first = data[:1]
        key = (found, first, name if name in self._gate_names else "")
        hit = self._by_gate.get(key)
        if hit is None:
            hit = self._by_gate[key] = tuple(
                i
                for i, gate in enumerate(self._gates)
                if gate is None or gate.admits(found, name, first)
            )
        return hit

    def _analyse(
        self, item: FileItem, candidates: Sequence[int] | None = None
    ) -> tuple[dict[str, Any], dict[str, str], list[Finding]]:
        """Every analyser (of ``candidates``, indexes into :attr:`analysers`; default: all)
        whose ``applies`` says yes, on one buffer."""
        facts: dict[str, Any] = {}
        facts_json: dict[str, str] = {}
        found: list[Finding] = []
        for index in range(len(self.analysers)) if candidates is None else candidates:
            analyser, analyser_name = self.analysers[index], self.analyser_names[index]
            try:
                if not analyser.applies(item):
                    continue
                result = analyser.analyse(item, self.context)
                if result.facts is not None:
                    facts_json[analyser_name] = facts_to_json(result.facts)
                    facts[analyser_name] = result.facts
                found.extend(result.findings)
            except Exception as exc:  # one bad parser never ends the scan
                found.append(
                    error_finding(
                        "error.analyser",
                        item.path,
                        f"analyser {analyser_name} failed: {type(exc).__name__}: {exc}",
                        analyser=analyser_name,
                        exception=type(exc).__name__,
                    )
                )
        return facts, facts_json, found


def _memo(memo: dict[str, Any], key: str, value: Any) -> None:
    if len(memo) >= MEMO_MAX:
        memo.clear()
    memo[key] = value


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


# -- in a pool process -----------------------------------------------------------------------

_WORKER: Worker | None = None


def _init_worker(config: WorkerConfig, hash_threads: bool = False) -> None:
    global _WORKER  # noqa: PLW0603  (one scanner per worker process, built once)
    _WORKER = Worker(config, hash_threads)
    # A pool worker has sent every result before it exits and owns nothing that needs
    # cleaning up: skip the interpreter's teardown of LIEF, yara-x and numpy (about 0.3 s
    # that the scan would wait for at its end). Only in a child process, never in a caller's.
    if multiprocessing.parent_process() is not None:
        atexit.register(os._exit, 0)


def _init_worker_from_queue(queue: Any, hash_threads: bool) -> None:
    """Initializer of a pool started before its configuration was known: the imports are
    done while the parent compiles the rules; ``None`` means the scan ended first."""
    import taintline.scan.analysers  # noqa: F401

    config = queue.get()
    if config is not None:
        _init_worker(config, hash_threads)


def _ping() -> bool:
    return _WORKER is not None


def _run_in_worker(tasks: Sequence[FileTask]) -> TaskResult:
    if _WORKER is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker not initialised")
    return _WORKER.run_batch(tasks)
