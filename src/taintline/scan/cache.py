"""Incremental scans: the case remembers what each file was and what each content gave.

Three tables (``migrations/scan/003_incremental.sql``):

* ``scan_identities`` - per host and real path: size, mtime, ctime, device, inode and the
  SHA-256 read last time. A file whose identity is unchanged is not read again. ctime is part
  of it because it cannot be set from user space: a file rewritten with its old size and its
  mtime put back (``touch -r``) still has a new ctime. An identity is only trusted when its
  ctime is older than the scan's start by more than :data:`RACY_NS` (the kernel stamps files
  with a clock that ticks every few milliseconds: a file written in the same tick as it was
  read could change again without its ctime changing, as git's "racily clean" entries).
* ``scan_contents`` - per top-level content (SHA-256), analysis key and name class: the
  records of the file and of every member inside it, and the analysers' and containers'
  findings (JSON, with the display path they were computed for).
* ``scan_yara`` - per content and rules key: the YARA findings of the file and its members.

Lookups are bulk: one query reads the identities remembered under the scanned inputs (compared
with the walk's tasks here, :class:`Identities`), one the contents and YARA results they have, and one fetch of the cached
payloads per batch of results. Hash and filename indicators are matched against every
record, reused or not, on every scan (in the parent, as before), so new indicators need no
cache invalidation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import zstandard

from taintline.case import Case
from taintline.interchange import finding_from_dict, finding_to_dict
from taintline.lazy import LazyModule
from taintline.model import Finding
from taintline.scan.identities import Identities, under
from taintline.scan.interface import FileRecord, TaskResult, display_name
from taintline.scan.reuse import (
    TRANSIENT_KINDS,
    YARA_KINDS,
    ReuseConfig,
    name_class,
    rebase,
    rebase_text,
    yara_place,
)
from taintline.scan.walk import FileTask
from taintline.terminal import storable

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")

#: An identity whose ctime is this close to (or after) the scan's start is not trusted.
RACY_NS = 50_000_000

# Paths are keyed as :func:`~taintline.terminal.storable` text (a name that is not UTF-8 has
# its bytes as ``\\xNN``): DuckDB and Arrow hold UTF-8 only.

#: Cached results fetched per query.
FETCH_CHUNK = 512


def _records_json(records: Sequence[FileRecord], display: str) -> bytes:
    rows = [
        [
            r.path[len(display) :],
            r.name,
            r.size,
            r.md5,
            r.sha1,
            r.sha256,
            r.filetype,
            r.depth,
            r.facts_json,
        ]
        for r in records
    ]
    # zstd (level 1: about 400 MB/s): the JSON of a jar's members is large and repetitive
    return _COMPRESS.compress(orjson.dumps(rows))


_COMPRESS = zstandard.ZstdCompressor(level=1)
#: A cached record list is decompressed in one piece; it can be no larger than the worker's
#: records of one top-level file, but a hostile case file could claim any size.
_MAX_RECORDS_JSON = 1 << 30


def _records_text(text: str, blob: bytes | None) -> bytes | str:
    """The JSON of cached records: decompressed from ``blob`` (``records_zstd``), or the text
    of a row written before records were compressed."""
    if blob is None:
        return text
    return zstandard.ZstdDecompressor().decompress(blob, max_output_size=_MAX_RECORDS_JSON)


def _records_from_json(text: bytes | str, old: str, task: FileTask) -> list[FileRecord]:
    records: list[FileRecord] = []
    for suffix, name, size, md5, sha1, sha256, ftype, depth, facts_json in orjson.loads(text):
        if depth == 0:  # as the worker names it
            name = display_name(task.display)
        moved = {k: rebase_text(v, old, task.display) for k, v in facts_json.items()}
        records.append(
            FileRecord(
                task.top,
                task.display + suffix,
                name,
                size,
                md5,
                sha1,
                sha256,
                ftype,
                depth,
                {k: orjson.loads(v) for k, v in moved.items()},
                moved,
            )
        )
    return records


def findings_json(findings: Sequence[Finding]) -> str:
    rows = []
    for f in findings:
        row = finding_to_dict(f)
        for key in ("record", "fingerprint"):
            row.pop(key)
        rows.append(row)
    return orjson.dumps(rows, default=str).decode()


def findings_from_json(text: str, old: str, new: str) -> list[Finding]:
    """Cached findings (JSON), computed for the file at ``old``, moved to ``new``."""
    return rebase([finding_from_dict(d) for d in orjson.loads(text)], old, new)


class Unchanged(NamedTuple):
    """A file whose identity is unchanged: its content, and where the case recorded it (the
    display path, the run whose ``file_facts`` rows hold its records, under which analysis
    key; see :mod:`taintline.scan.carry`)."""

    sha256: str
    display: str | None
    run_id: str | None
    analysis_key: str | None


@dataclass(slots=True)
class _Pending:
    identities: list[tuple[Any, ...]] = field(default_factory=list)
    contents: list[tuple[str, str, str, str, bytes, str]] = field(default_factory=list)
    yara: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    #: unchanged files replayed from the cache: (real path, display) now recorded by this run
    adopted: list[tuple[str, str]] = field(default_factory=list)


class ScanCache:
    """One scan's view of the cache: what may be reused, and what to remember."""

    def __init__(
        self,
        case: Case,
        host: str,
        analysis_key: str,
        reuse: ReuseConfig,
        *,
        use: bool = True,
        started_ns: int | None = None,
        identities: Identities | None = None,
    ) -> None:
        self.case = case
        self.host = host
        #: what the case remembers under the scanned inputs (none given: nothing)
        self.identities = identities or Identities(case, host, ())
        self.analysis_key = analysis_key
        self.rules_key = reuse.rules_key
        self.externals = reuse.externals
        #: ``False`` (``--full``): nothing is reused, everything is remembered afresh
        self.use = use
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self.pending = _Pending()
        self._places: dict[tuple[str, str], str] = {}
        #: real path -> SHA-256 of the files this scan recorded (read, replayed or linked)
        #: whose identity and results the case holds once the pending rows are written
        self.settled: dict[str, str] = {}

    # -- keys ----------------------------------------------------------------------------------
    def place(self, task: FileTask) -> str:
        if not self.externals:
            return ""
        key = (task.display, task.owner)
        found = self._places.get(key)
        if found is None:
            found = self._places[key] = yara_place(True, task.display, task.owner)
        return found

    def worker_config(self) -> ReuseConfig:
        """The contents (and YARA results) a worker may take from the cache after hashing."""
        if not self.use:
            return ReuseConfig(self.rules_key, self.externals)
        contents = self.case.con.execute(
            "SELECT DISTINCT sha256 || '|' || name_class FROM scan_contents WHERE analysis_key = ?",
            [self.analysis_key],
        ).fetchall()
        yara: list[tuple[Any, ...]] = []
        if self.rules_key:
            yara = self.case.con.execute(
                "SELECT DISTINCT sha256 || '|' || place FROM scan_yara WHERE rules_key = ?",
                [self.rules_key],
            ).fetchall()
        return ReuseConfig(
            self.rules_key,
            self.externals,
            frozenset(str(r[0]) for r in contents),
            frozenset(str(r[0]) for r in yara),
        )

    # -- what need not be read -------------------------------------------------------------
    def unchanged(self, tasks: Sequence[FileTask]) -> dict[int, Unchanged]:
        """Task index -> what the case knows of the files whose identity is unchanged since
        the last scan and whose analysis and YARA results it holds: nothing of them is read."""
        if not self.use or not tasks:
            return {}
        known = self.identities.known(tasks)
        if not known:
            return {}
        # which of the remembered contents have their analysis (and YARA results) cached
        analysed = self._cached_under_roots("scan_contents", "analysis_key", self.analysis_key)
        scanned = (
            self._cached_under_roots("scan_yara", "rules_key", self.rules_key)
            if self.rules_key
            else None
        )
        out: dict[int, Unchanged] = {}
        for i, r in known.items():
            task = tasks[i]
            if (r.sha256, name_class(task.display)) not in analysed:
                continue
            if scanned is not None and (r.sha256, self.place(task)) not in scanned:
                continue
            out[i] = Unchanged(r.sha256, r.display, r.run_id, r.analysis_key)
        return out

    def _cached_under_roots(self, table: str, key: str, value: str) -> set[tuple[str, str]]:
        """(SHA-256, name class or place) of ``table``'s rows under ``key`` = ``value`` for
        the contents remembered under the scanned inputs."""
        second = "name_class" if table == "scan_contents" else "place"
        condition, params = self.identities.under_roots(self.identities.roots)
        sql = f"""SELECT DISTINCT c.sha256, c.{second} FROM {table} c
            JOIN scan_identities i ON i.sha256 = c.sha256
            WHERE c.{key} = ? AND i.host = ? AND {condition}"""  # noqa: S608  (constants)
        rows = self.case.con.execute(sql, [value, self.host, *params]).fetchall()
        return {(str(sha), str(other)) for sha, other in rows}

    def fetch(self, wanted: Sequence[tuple[FileTask, str, bool]]) -> dict[str, TaskResult]:
        """The cached results of ``(task, sha256, with YARA)``, by display path; tasks whose
        rows are missing (a concurrent scan replaced them) are left out."""
        out: dict[str, TaskResult] = {}
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = wanted[start : start + FETCH_CHUNK]
            wanted_files = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
                {
                    "idx": pa.array(range(len(chunk)), pa.int64()),
                    "sha256": pa.array([sha for _, sha, _ in chunk], pa.string()),
                    "name_class": pa.array([name_class(t.display) for t, _, _ in chunk]),
                    "place": pa.array([self.place(t) if y else None for t, _, y in chunk]),
                }
            )
            rows = self.case.con.execute(
                """
                SELECT t.idx, any_value(c.display), any_value(c.records),
                       any_value(c.records_zstd), any_value(c.findings),
                       any_value(y.display), any_value(y.findings)
                FROM wanted_files t
                JOIN scan_contents c ON c.sha256 = t.sha256 AND c.analysis_key = ?
                    AND c.name_class = t.name_class
                LEFT JOIN scan_yara y ON y.sha256 = t.sha256 AND y.rules_key = ?
                    AND y.place = t.place
                GROUP BY t.idx
                """,
                [self.analysis_key, self.rules_key],
            ).fetchall()
            for idx, c_display, records, zstd, findings, y_display, y_findings in rows:
                task, _, with_yara = chunk[int(idx)]
                if with_yara and self.rules_key and y_findings is None:
                    continue
                result = TaskResult(
                    _records_from_json(_records_text(records, zstd), c_display, task),
                    findings_from_json(findings, c_display, task.display),
                    0,
                    1,
                )
                if with_yara and y_findings is not None:
                    result.findings.extend(findings_from_json(y_findings, y_display, task.display))
                result.spans.append((task.display, 0, len(result.records)))
                out[task.display] = result
        return out

    def replay(
        self, items: Sequence[tuple[FileTask, str, bool]], missed: list[FileTask]
    ) -> Iterator[TaskResult]:
        """The cached results of unchanged files, fetched in chunks; a file whose rows went
        away meanwhile is appended to ``missed`` (to be read)."""
        for start in range(0, len(items), FETCH_CHUNK):
            chunk = items[start : start + FETCH_CHUNK]
            fetched = self.fetch(chunk)
            missed.extend(t for t, _, _ in chunk if t.display not in fetched)
            # this run records them now: the next re-scan links to its rows (taintline.scan.carry)
            for t, sha, _ in chunk:
                if t.display in fetched:
                    self.pending.adopted.append((storable(t.path), t.display))
                    self.settled[storable(t.path)] = sha
            yield from fetched.values()

    # -- what to remember ------------------------------------------------------------------
    def remember(
        self,
        task: FileTask,
        records: Sequence[FileRecord],
        findings: Sequence[Finding],
        *,
        analysis: bool,
        yara: bool,
    ) -> None:
        """Queue what one file gave (``findings``: the file's and its members'); ``analysis``
        and ``yara`` say which parts were computed now (and so are new to the cache)."""
        top = next((r for r in records if r.depth == 0 and r.path == task.display), None)
        if (
            top is None  # not read (unreadable, not regular): nothing to remember
            or not top.sha256
            or any(f.kind in TRANSIENT_KINDS for f in findings)
        ):
            self.forget([task])
            return
        if task.ctime_ns >= self.started_ns - RACY_NS:
            self.forget([task])  # changed too recently to trust (see the module docstring)
        else:
            self.settled[storable(task.path)] = top.sha256
            self.pending.identities.append(
                (
                    storable(task.path),
                    task.display,
                    task.size,
                    task.mtime_ns,
                    task.ctime_ns,
                    task.dev,
                    task.ino,
                    top.sha256,
                )
            )
        if analysis:
            self.pending.contents.append(
                (
                    top.sha256,
                    self.analysis_key,
                    name_class(task.display),
                    task.display,
                    _records_json(records, task.display),
                    findings_json([f for f in findings if f.kind not in YARA_KINDS]),
                )
            )
        if yara and self.rules_key:
            self.pending.yara.append(
                (
                    top.sha256,
                    self.rules_key,
                    self.place(task),
                    task.display,
                    findings_json([f for f in findings if f.kind in YARA_KINDS]),
                )
            )

    def forget(self, tasks: Sequence[FileTask]) -> None:
        """Tasks that were looked at but gave nothing to remember: their old identity goes."""
        for t in tasks:
            self.settled.pop(storable(t.path), None)
        self.pending.identities.extend((storable(t.path), None, 0, 0, 0, 0, 0, None) for t in tasks)

    def settle(self, task: FileTask, sha256: str) -> None:
        """A file whose identity and results the case already holds, recorded by this scan
        (linked to the rows of the run that read it)."""
        self.settled[storable(task.path)] = sha256

    def flush(self, run_id: str | None) -> None:
        """Write what was queued (in the caller's transaction when one is open)."""
        pending, self.pending = self.pending, _Pending()
        case = self.case
        recorded = case.now_naive()
        if pending.identities:
            rows = {r[0]: r for r in pending.identities}  # the last word on a path wins
            ids = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
                {
                    name: pa.array([r[i] for r in rows.values()], dtype)
                    for i, (name, dtype) in enumerate(
                        (
                            ("path", pa.string()),
                            ("display", pa.string()),
                            ("size", pa.int64()),
                            ("mtime_ns", pa.int64()),
                            ("ctime_ns", pa.int64()),
                            ("dev", pa.int64()),
                            ("ino", pa.int64()),
                            ("sha256", pa.string()),
                        )
                    )
                }
            )
            case.con.execute(
                "DELETE FROM scan_identities WHERE host = ? AND path IN (SELECT path FROM ids)",
                [self.host],
            )
            case.con.execute(
                "INSERT INTO scan_identities SELECT ?, path, display, size, mtime_ns, ctime_ns,"
                " dev, ino, sha256, ?, ?, ? FROM ids WHERE sha256 IS NOT NULL",
                [self.host, run_id, recorded, self.analysis_key],
            )
        if pending.adopted:
            adopted = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
                {
                    "path": pa.array([p for p, _ in pending.adopted], pa.string()),
                    "display": pa.array([d for _, d in pending.adopted], pa.string()),
                }
            )
            case.con.execute(
                "UPDATE scan_identities SET run_id = ?, analysis_key = ?, display = a.display"
                " FROM (SELECT DISTINCT ON (path) * FROM adopted) a"
                " WHERE scan_identities.host = ? AND scan_identities.path = a.path",
                [run_id, self.analysis_key, self.host],
            )
        if pending.contents:
            cols = list(zip(*pending.contents, strict=True))
            contents = pa.table(
                {
                    name: pa.array(list(col), pa.binary() if name == "records" else pa.string())
                    for name, col in zip(
                        ("sha256", "analysis_key", "name_class", "display", "records", "findings"),
                        cols,
                        strict=True,
                    )
                }
            )
            # --full replaces what was cached; otherwise the first word stays
            if not self.use:
                case.con.register("fresh_contents", contents)
                try:
                    case.con.execute(
                        "DELETE FROM scan_contents WHERE analysis_key = ? AND"
                        " (sha256, name_class) IN (SELECT (sha256, name_class) FROM"
                        " fresh_contents)",
                        [self.analysis_key],
                    )
                finally:
                    case.con.unregister("fresh_contents")
            case.insert_new(
                "scan_contents",
                "SELECT sha256, analysis_key, name_class, display, '', findings,"
                " ?::TIMESTAMP, records FROM rows",
                [recorded],
                inputs={"rows": contents},
            )
        if pending.yara:
            cols = list(zip(*pending.yara, strict=True))
            yara = pa.table(
                {
                    name: pa.array(list(col), pa.string())
                    for name, col in zip(
                        ("sha256", "rules_key", "place", "display", "findings"),
                        cols,
                        strict=True,
                    )
                }
            )
            if not self.use:
                case.con.register("fresh_yara", yara)
                try:
                    case.con.execute(
                        "DELETE FROM scan_yara WHERE (sha256, rules_key, place) IN"
                        " (SELECT (sha256, rules_key, place) FROM fresh_yara)"
                    )
                finally:
                    case.con.unregister("fresh_yara")
            case.insert_new(
                "scan_yara",
                "SELECT sha256, rules_key, place, display, findings, ?::TIMESTAMP FROM rows",
                [recorded],
                inputs={"rows": yara},
            )

    # -- what disappeared ------------------------------------------------------------------
    def disappeared(
        self, roots: Sequence[str], seen: Sequence[FileTask], *, all_known: bool = False
    ) -> list[str]:
        """Display paths of files remembered under ``roots`` (real paths of the scanned
        inputs) that this scan did not see; they are forgotten. Call after a complete walk.
        ``all_known``: every file seen is remembered (a tree as a run left it), so as many
        remembered as seen means none disappeared, which one count tells."""
        if not roots:
            return []
        if all_known and self.identities.count() == len(seen):
            return []
        walked = {storable(t.path) for t in seen}
        prefixes = tuple(under(r) for r in roots)
        exact = set(roots)
        gone = sorted(
            (
                (k.display or path, path)
                for path, k in self.identities.rows().items()
                if path not in walked and (path in exact or path.startswith(prefixes))
            ),
        )
        if gone:
            self.case.con.execute(
                "DELETE FROM scan_identities WHERE host = ?"
                " AND path IN (SELECT unnest(?::VARCHAR[]))",
                [self.host, [path for _, path in gone]],
            )
        return [display for display, _ in gone]
