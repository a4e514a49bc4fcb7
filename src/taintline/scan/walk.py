"""The file-system walk: regular files under the inputs, in a stable order, within limits.

:func:`walk_inputs` runs in the parent process and yields one :class:`FileTask` per regular
file (or an ``error.*`` finding for what cannot be walked). Symlinks are never followed: one
that points inside the scanned tree is skipped (its target is scanned under its own path), one
that points outside is reported (``error.symlink-outside``), one that loops (``ELOOP``, or a
folder link to one of its own ancestors) is reported as ``error.symlink-loop``. Special files
(FIFOs, sockets, devices) are never opened. macOS ``.app`` bundles and Electron app folders are
folders here; the bundle analysers judge them as a whole.

Containers inside files (ZIP, tar, MSI/OLE, CAB, asar) are opened by the workers, through
:mod:`taintline.scan.containers`.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from taintline.kinds import error_finding
from taintline.limits import MiB, ScanLimits
from taintline.model import Finding
from taintline.terminal import storable


# not frozen: a frozen dataclass sets each field through object.__setattr__, which made its
# construction 4 times slower (about 3 us more per file of the walk); nothing changes a task
@dataclass(slots=True)
class FileTask:
    """A regular file to scan: ``path`` to open (real), ``display`` to report."""

    path: str
    display: str
    top: str
    size: int
    owner: str
    #: Bundle roots (display paths of folders) this file belongs to.
    bundles: tuple[str, ...] = ()
    sparse: bool = False
    #: identity of the file when walked (incremental scans, see :mod:`taintline.scan.cache`)
    mtime_ns: int = 0
    ctime_ns: int = 0
    dev: int = 0
    ino: int = 0


@dataclass(slots=True)
class _Owners:
    cache: dict[int, str] = field(default_factory=dict)

    def name(self, uid: int) -> str:
        if uid not in self.cache:
            try:
                self.cache[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self.cache[uid] = str(uid)
        return self.cache[uid]


def is_bundle_root(path: str, name: str) -> bool:
    """Folders judged as a whole by the bundle analysers: macOS ``.app`` bundles and Electron
    app folders (those holding ``resources/app.asar``)."""
    if name.lower().endswith(".app"):
        return True
    # os.path, not pathlib: called for every folder of the walk (a tenth of its time)
    return os.path.isfile(os.path.join(path, "resources", "app.asar"))  # noqa: PTH113, PTH118


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


#: Files up to this size are never called sparse.
SPARSE_MIN = 16 * MiB


def _is_sparse(st: os.stat_result) -> bool:
    blocks = getattr(st, "st_blocks", None)
    return blocks is not None and st.st_size > SPARSE_MIN and blocks * 512 < st.st_size // 8


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino


def walk_inputs(paths: Sequence[str], limits: ScanLimits) -> Iterator[FileTask | Finding]:
    """Regular files under ``paths`` (files or folders), in a stable order, or error findings.
    A file reached from several inputs (one inside another, or given twice) is yielded once,
    under the first: scanned twice in one run, its results would be recorded twice."""
    owners = _Owners()
    if len(paths) == 1:
        yield from _walk_one(paths[0], limits, owners)
        return
    seen: set[str] = set()
    for top in paths:
        for produced in _walk_one(top, limits, owners):
            if isinstance(produced, FileTask):
                if produced.path in seen:
                    continue
                seen.add(produced.path)
            yield produced


def _walk_one(top: str, limits: ScanLimits, owners: _Owners) -> Iterator[FileTask | Finding]:
    # Names are shown and recorded as valid UTF-8 (a name that is not UTF-8 as \xNN); the
    # real path (bytes kept by Python) is what is opened.
    real_top, top = top, storable(top)
    try:
        root = os.path.realpath(real_top, strict=True)
        st = Path(root).stat()
    except OSError as exc:
        kind = "error.symlink-loop" if exc.errno == errno.ELOOP else "error.unreadable"
        yield error_finding(kind, top, f"cannot open: {exc.strerror or exc}")
        return
    if stat.S_ISREG(st.st_mode):
        yield FileTask(
            root, top, top, st.st_size, owners.name(st.st_uid), (), _is_sparse(st), *_identity(st)
        )
        return
    if not stat.S_ISDIR(st.st_mode):
        yield error_finding("error.not-regular", top, "not a regular file or folder; not opened")
        return
    count = 0
    max_files = limits.max_files
    owner = owners.name
    # the top folder is always a bundle (the user pointed at it: often an app folder)
    top_bundles: tuple[str, ...] = (top,)
    # (real dir, display dir, bundles, ancestors as (dev, ino))
    stack: list[tuple[str, str, tuple[str, ...], frozenset[tuple[int, int]]]] = [
        (root, top, top_bundles, frozenset({(st.st_dev, st.st_ino)}))
    ]
    while stack:
        real_dir, shown_dir, bundles, ancestors = stack.pop()
        try:
            with os.scandir(real_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield error_finding(
                "error.unreadable", shown_dir, f"cannot list folder: {exc.strerror}"
            )
            continue
        subdirs: list[tuple[str, str, tuple[str, ...], frozenset[tuple[int, int]]]] = []
        base = shown_dir.rstrip("/") + "/"
        for entry in entries:
            shown = base + storable(entry.name)
            try:
                if entry.is_symlink():
                    finding = _judge_symlink(entry.path, shown, root, ancestors)
                    if finding is not None:
                        yield finding
                    continue
                est = entry.stat(follow_symlinks=False)
            except OSError as exc:
                yield error_finding("error.unreadable", shown, f"cannot stat: {exc.strerror}")
                continue
            if S_ISDIR(est.st_mode):
                key = (est.st_dev, est.st_ino)
                child_bundles = bundles
                if is_bundle_root(entry.path, entry.name):
                    child_bundles = (*bundles, shown)
                subdirs.append((entry.path, shown, child_bundles, ancestors | {key}))
            elif S_ISREG(est.st_mode):
                count += 1
                if count > max_files:
                    yield error_finding(
                        "error.too-many-files",
                        top,
                        f"more than {limits.max_files} files (--max-files); rest not scanned",
                    )
                    return
                size = est.st_size
                yield FileTask(
                    entry.path,
                    shown,
                    top,
                    size,
                    owner(est.st_uid),
                    bundles,
                    size > SPARSE_MIN and _is_sparse(est),
                    est.st_mtime_ns,
                    est.st_ctime_ns,
                    est.st_dev,
                    est.st_ino,
                )
            else:
                yield error_finding(
                    "error.not-regular",
                    shown,
                    "not a regular file (FIFO, socket or device); not opened",
                    mode=stat.filemode(est.st_mode),
                )
        stack.extend(reversed(subdirs))


def _judge_symlink(
    link: str, shown: str, root: str, ancestors: frozenset[tuple[int, int]]
) -> Finding | None:
    """Symlinks are not followed. Report loops and links out of the tree; links to inside the
    tree need nothing (their target is scanned under its own name)."""
    try:
        target_st = Path(link).stat()  # follows
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return error_finding(
                "error.symlink-loop",
                shown,
                "symbolic link loop; not followed",
                target=str(Path(link).readlink()),
            )
        return error_finding(
            "error.unreadable",
            shown,
            f"broken symbolic link: {exc.strerror}",
            target=str(Path(link).readlink()),
        )
    target = os.path.realpath(link)
    if not _inside(target, root):
        return error_finding(
            "error.symlink-outside",
            shown,
            "symbolic link points outside the scanned tree; not followed",
            target=str(Path(link).readlink()),
        )
    if stat.S_ISDIR(target_st.st_mode) and (target_st.st_dev, target_st.st_ino) in ancestors:
        return error_finding(
            "error.symlink-loop",
            shown,
            "symbolic link to one of its own parent folders; not followed",
            target=str(Path(link).readlink()),
        )
    return None


class Walk:
    """The walk of the inputs (:func:`~taintline.scan.walk.walk_inputs`), run in a thread from
    the moment it is made, while the scan opens the case and reads the intel, the rules and
    the context (DuckDB releases the GIL while it works): on the PySpark tree the walk is a
    fifth of a re-scan of the unchanged tree. :func:`taintline.scan.engine.start_walk` makes one
    before the case is opened; :func:`~taintline.scan.engine.scan_paths` makes its own
    otherwise."""

    def __init__(self, paths: Sequence[str | Path], limits: ScanLimits) -> None:
        self.paths = [str(p) for p in paths]
        self.limits = limits
        self._tasks: list[FileTask] = []
        self._findings: list[Finding] = []
        self._error: BaseException | None = None
        # a daemon: a scan stopped by Ctrl-C does not wait for the rest of the walk
        self._thread = threading.Thread(target=self._run, name="taintline-walk", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for produced in walk_inputs(self.paths, self.limits):
                if isinstance(produced, Finding):
                    self._findings.append(produced)
                else:
                    self._tasks.append(produced)
        except BaseException as exc:  # given to the scan's thread by result()
            self._error = exc

    def result(self) -> tuple[list[FileTask], list[Finding]]:
        """The files to scan and the findings of the walk, once it is complete."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._tasks, self._findings
