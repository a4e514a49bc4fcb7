"""One side of a comparison read from what the user gave: a folder, an installer or archive, a
manifest, or an SBOM.

A folder is read lazily, because a release is mostly files that did not change: every file is
hashed (on threads: hashlib releases the GIL) and typed by its magic bytes, and only the files
a comparison asks about (changed, new, moved; containers that changed) go through the scan's
worker - the same code, analysers and container expansion as ``taintline scan``. An installer
or archive given as a side is scanned whole (its members are the release). Manifests and SBOMs
are parsed (see :mod:`taintline.release.manifest`, :mod:`taintline.release.sbom`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from taintline.case import Case
from taintline.errors import InputError
from taintline.limits import ScanLimits
from taintline.model import Finding, FindingSource
from taintline.release.manifest import (
    looks_like_manifest,
    read_manifest,
    release_from_rows,
)
from taintline.release.model import SEP, Entry, Release, product_from_label
from taintline.release.sbom import looks_like_sbom, read_sbom
from taintline.scan.interface import AnalysisContext

#: Files hashed in one read; larger ones are streamed.
WHOLE_READ = 64 * 1024 * 1024
#: Up to this many files are analysed in this process; more go to the scan's worker pool.
IN_PROCESS_MAX = 48

Row = tuple[str, str, str | None, str | None, str | None, int | None, str | None, str, Any]


class SideProgress(Protocol):
    """What a progress bar is told (the CLI passes a rich one; the library none)."""

    def start(self, total_files: int, total_bytes: int) -> None: ...

    def advance(self, files: int, nbytes: int) -> None: ...


@dataclass(slots=True)
class Reader:
    """Reads sides and analyses their files on demand, with one analysis context.

    ``context`` may be a future: the caller prepares it (case intel, trust store, LIEF's
    import) on a thread while the folders are hashed; the first analysis waits for it.
    """

    context: AnalysisContext | Future[AnalysisContext]
    limits: ScanLimits = field(default_factory=ScanLimits)
    workers: int | None = None
    progress: SideProgress | None = None
    ca_bundle: Path | None = None
    threads: int = max(2, min(8, (os.cpu_count() or 1) * 2))
    #: error.* findings met while reading (unreadable files, malformed containers)
    errors: list[Finding] = field(default_factory=list)

    def analysis_context(self) -> AnalysisContext:
        if isinstance(self.context, Future):
            self.context = self.context.result()
        return self.context

    # -- opening a side -------------------------------------------------------------------
    def open(self, spec: str | Path, *, all_hashes: bool = True) -> Release:
        path = Path(spec)
        if path.is_dir():
            return self._folder(path, all_hashes)
        if not path.exists():
            raise InputError(str(path), "no such file or folder")
        try:
            with path.open("rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
        if head.lstrip()[:1] == b"{":
            if looks_like_sbom(head) and not looks_like_manifest(head):
                return read_sbom(path)
            return read_manifest(path)  # or a clear error saying what it is not
        return self._archive(path)

    def _archive(self, path: Path) -> Release:
        rows, errors = self.scan_rows([str(path)])
        top = str(path)
        release = release_from_rows(rows, path.name, "files", [top])
        if not release.entries:
            why = "; ".join(f.message for f in errors[:3]) or "not a container taintline opens"
            raise InputError(str(path), f"nothing could be read from it as a release ({why})")
        self.errors.extend(self._relabel(errors, top, release))
        return release

    def _relabel(self, errors: Sequence[Finding], top: str, release: Release) -> list[Finding]:
        out = []
        for f in errors:
            subject = f.subject
            for sep in ("/", SEP):
                if subject.startswith(top.rstrip("/") + sep):
                    subject = release.subject(subject[len(top.rstrip("/")) + len(sep) :])
                    break
            else:
                if subject == top:
                    subject = release.label
            out.append(replace(f, subject=subject, source=FindingSource.RELEASE))
        return out

    def _folder(self, root: Path, all_hashes: bool) -> Release:
        from taintline.scan.walk import FileTask, walk_inputs

        top = str(root)
        tasks: list[FileTask] = []
        walk_errors: list[Finding] = []
        for produced in walk_inputs([top], self.limits):
            if isinstance(produced, Finding):
                walk_errors.append(produced)
            else:
                tasks.append(produced)
        label = root.resolve().name or top
        release = Release(label, "files", product_from_label(label), {})
        self.errors.extend(self._relabel(walk_errors, top, release))
        if self.progress is not None:
            self.progress.start(len(tasks), sum(t.size for t in tasks))
        prefix = top.rstrip("/") + "/"

        def one(task: FileTask) -> tuple[FileTask, Entry | Finding]:
            rel = task.display[len(prefix) :] if task.display.startswith(prefix) else task.display
            try:
                return task, _hash_file(task.path, rel, all_hashes)
            except OSError as exc:
                from taintline.kinds import error_finding

                return task, error_finding(
                    "error.unreadable", task.display, f"cannot read: {exc.strerror or exc}"
                )

        with ThreadPoolExecutor(self.threads, thread_name_prefix="taintline-verify") as pool:
            for task, result in pool.map(one, tasks):
                if isinstance(result, Finding):
                    self.errors.extend(self._relabel([result], top, release))
                else:
                    release.entries[result.path] = result
                    release.origin[result.path] = task.path
                if self.progress is not None:
                    self.progress.advance(1, task.size)
        if not release.entries and not tasks:
            raise InputError(top, "the folder holds no readable file")
        return release

    # -- analysing on demand -------------------------------------------------------------
    def analyse(self, release: Release, paths: Sequence[str]) -> None:
        """Run the scan's analysers (and container expansion) on ``paths`` of a folder side
        that were only hashed so far; their entries (and members) join ``release``."""
        todo = sorted({p for p in paths if p in release.origin and not release.entries[p].analysed})
        if not todo:
            return
        real = [release.origin[p] for p in todo]
        rows, errors = self.scan_rows(real)
        back = dict(zip(real, todo, strict=True))
        fixed: list[Row] = []
        for top, path, sha256, sha1, md5, size, ftype, analyser, facts in rows:
            rel = back[top] + path[len(top) :] if path.startswith(top) else path
            fixed.append(("", rel, sha256, sha1, md5, size, ftype, analyser, facts))
        scanned = release_from_rows(fixed, release.label, release.source, [""])
        for rel, entry in scanned.entries.items():
            release.entries[rel] = entry
        for f in errors:
            subject = f.subject
            for top, rel in back.items():
                if subject == top or subject.startswith(top + SEP):
                    subject = release.subject(rel + subject[len(top) :])
                    break
            self.errors.append(replace(f, subject=subject, source=FindingSource.RELEASE))

    def scan_rows(self, paths: Sequence[str]) -> tuple[list[Row], list[Finding]]:
        """``file_facts``-shaped rows and the ``error.*`` findings of scanning ``paths`` (files),
        in this process for a few files, on the scan's worker pool for many."""
        if len(paths) <= IN_PROCESS_MAX or self.workers == 0:
            return self._scan_here(paths)
        return self._scan_pool(paths)

    def _scan_here(self, paths: Sequence[str]) -> tuple[list[Row], list[Finding]]:
        from taintline.scan.walk import walk_inputs
        from taintline.scan.worker import Worker, WorkerConfig

        worker = Worker(
            WorkerConfig(None, self.limits, self.analysis_context()), hash_threads=False
        )
        rows: list[Row] = []
        errors: list[Finding] = []
        try:
            tasks = []
            for produced in walk_inputs(list(paths), self.limits):
                if isinstance(produced, Finding):
                    errors.append(produced)
                else:
                    tasks.append(produced)
            result = worker.run_batch(tasks)
        finally:
            worker.close()
        errors.extend(f for f in result.findings if f.kind.startswith("error."))
        for r in result.records:
            items: list[tuple[str, str | None]] = list(r.facts_json.items()) or [("", None)]
            for analyser, facts in items:
                rows.append((r.top, r.path, r.sha256, r.sha1, r.md5, r.size, r.filetype,
                             analyser, facts))  # fmt: skip
        return rows, errors

    def _scan_pool(self, paths: Sequence[str]) -> tuple[list[Row], list[Finding]]:
        from taintline.scan.engine import ScanOptions, scan_paths

        with Case(":memory:") as mem:
            result = scan_paths(
                list(paths),
                mem,
                ScanOptions(
                    limits=self.limits,
                    workers=self.workers,
                    use_rules=False,
                    ensure_intel=False,
                    ca_bundle=self.ca_bundle,
                ),
            )
            rows = mem.con.execute(
                "SELECT top, path, sha256, sha1, md5, size, filetype, analyser, facts::VARCHAR"
                " FROM file_facts_all ORDER BY path, analyser"
            ).fetchall()
        return rows, [f for f in result.findings if f.kind.startswith("error.")]


def _hash_file(real: str, rel: str, all_hashes: bool) -> Entry:
    from taintline.scan.magic import filetype
    from taintline.scan.reproducible import _bundle

    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        news: list[Callable[[], Any]] = [hashlib.sha256]
        if all_hashes:
            news += [hashlib.sha1, hashlib.md5]
        hashers = [n() for n in news]
        if size <= WHOLE_READ:
            data = fh.read()
            head = data[:4096]
            for h in hashers:
                h.update(data)
        else:
            data = b""
            head = b""
            while chunk := fh.read(4 * 1024 * 1024):
                if not head:
                    head = chunk[:4096]
                for h in hashers:
                    h.update(chunk)
    name = rel.rsplit("/", 1)[-1]
    bundle = _bundle(data) if name == "Info.plist" and data else None
    digests = [h.hexdigest() for h in hashers]
    return Entry(
        path=rel,
        size=size,
        sha256=digests[0],
        sha1=digests[1] if all_hashes else None,
        md5=digests[2] if all_hashes else None,
        filetype=filetype(head, name),
        bundle=bundle,
    )
