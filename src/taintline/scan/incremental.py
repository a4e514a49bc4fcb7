"""Incremental scans, the engine's side: a worker's batch result split per file, completed
with what the case remembered (:mod:`taintline.scan.cache`) and remembered in turn; the
scanned roots whose files may be said to have disappeared."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taintline.kinds import error_finding
from taintline.model import Finding
from taintline.scan.cache import ScanCache
from taintline.scan.interface import FileRecord, TaskResult
from taintline.scan.reuse import belongs_to
from taintline.scan.walk import FileTask
from taintline.terminal import storable


def split_result(
    res: TaskResult, tasks: dict[str, FileTask]
) -> tuple[list[tuple[FileTask, list[FileRecord], list[Finding]]], list[Finding]]:
    """A worker's batch result per file: its records and its (and its members') findings;
    and the findings about none of the batch's files."""
    by_task: list[tuple[FileTask, list[FileRecord], list[Finding]]] = []
    leftovers: list[Finding] = []
    owner: dict[str, int] = {}
    for display, start, end in res.spans:
        task = tasks.get(display)
        if task is None:
            continue
        owner[display] = len(by_task)
        by_task.append((task, res.records[start:end], []))
    for f in res.findings:
        display = f.subject
        while display not in owner and "!/" in display:
            display = display.rsplit("!/", 1)[0]
        if display in owner and belongs_to(f.subject, display):
            by_task[owner[display]][2].append(f)
        else:
            leftovers.append(f)
    return by_task, leftovers


def input_roots(paths: Sequence[str | Path], walk_findings: Sequence[Finding]) -> list[str]:
    """Real paths of the inputs whose walk was complete (a folder cut at ``--max-files`` did
    not show all its files: nothing under it is said to have disappeared)."""
    cut = {f.subject for f in walk_findings if f.kind == "error.too-many-files"}
    roots: list[str] = []
    for p in paths:
        if storable(str(p)) in cut:
            continue
        with contextlib.suppress(OSError):
            roots.append(storable(os.path.realpath(p, strict=True)))
    return roots


def complete(
    cache: ScanCache, res: TaskResult, tasks: dict[str, FileTask], result: Any
) -> TaskResult:
    """A worker's result with the cached parts filled in, and what it computed remembered."""
    reused = {display: (sha, known) for display, sha, known in res.reused}
    fetched = (
        cache.fetch([(tasks[d], sha, known) for d, (sha, known) in reused.items() if d in tasks])
        if reused
        else {}
    )
    out = TaskResult([], [], res.bytes_read, res.files)
    per_task, leftovers = split_result(res, tasks)
    for task, records, findings in per_task:
        if task.display in reused:
            done = fetched.get(task.display)
            if done is None:  # the cached rows went away meanwhile: say so, read next time
                findings = [
                    *findings,
                    error_finding(
                        "error.internal",
                        task.display,
                        "cached results of this content vanished during the scan; rescan it",
                    ),
                ]
                records = []
            else:
                result.known_content += 1
                records = done.records
                findings = [*done.findings, *findings]
            yara_known = reused[task.display][1]
            cache.remember(task, records, findings, analysis=False, yara=not yara_known)
        else:
            cache.remember(task, records, findings, analysis=True, yara=True)
        start = len(out.records)
        out.records.extend(records)
        out.findings.extend(findings)
        out.spans.append((task.display, start, len(out.records)))
    out.findings.extend(leftovers)
    return out
