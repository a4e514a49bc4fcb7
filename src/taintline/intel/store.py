"""Intel in the case: ingesting files, and what other stages read back.

``ingest`` reads each file with the reader its content calls for and stores what it states
in **one transaction per file** (small files in groups of :data:`GROUP_FILES`, counted per
file as one by one, each stored alone again if the group fails): a file that fails
(truncated JSON, a YARA syntax error, over the size limit) adds nothing, and a failure while
storing rolls that file back. A single bad value inside an otherwise good file is a Problem
and the rest of the file is kept.

Long file: the ingest loop, the per-file and grouped stores and the read-back queries share
the FileReport accounting; split apart, each would re-derive it.

Other stages call :func:`load_yara_sources`, :func:`eol_map` and :func:`ensure_intel`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from taintline.cachedir import cache_dir
from taintline.case import INDICATOR_COLUMNS, Case, indicator_from_row
from taintline.compressed import (
    CompressedInputError,
    Expansion,
    compression_of_file,
    expand_to,
    plain_name,
)
from taintline.errors import Problem, UsageError
from taintline.intel.interface import EolProduct, EolRecord, ReadResult, YaraSource
from taintline.lazy import LazyModule
from taintline.limits import IntelLimits
from taintline.model import Indicator

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = LazyModule("pyarrow")
    pc = LazyModule("pyarrow.compute")

#: Campaign packs shipped inside the package (``taintline/intel/packs/<name>/``).
PACKS_PACKAGE = "taintline.intel.packs"
DEFAULT_PACK = "3cx-xtrader"


@dataclass(slots=True)
class FileReport:
    path: str
    format: str | None
    #: Indicator statements read, by indicator type.
    read_by_type: dict[str, int] = field(default_factory=dict)
    #: (type, value, source) statements new to the case.
    new: int = 0
    #: Statements the case (or this file) already had.
    duplicates: int = 0
    #: Indicators (type, value) new to the case.
    new_indicators: int = 0
    yara_rules: int = 0
    #: Rule names, as the compiled rules give them.
    rule_names: tuple[str, ...] = ()
    eol_records: int = 0
    #: Statements kept as context only (never matched), e.g. MISP ``to_ids: false``.
    context_only: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    #: Refused values by reason class (``"unknown type word 'indicator'": 31``).
    rejected: dict[str, int] = field(default_factory=dict)
    failed: bool = False
    #: Why the file failed as a whole, in one line (empty when it did not).
    failure: str = ""

    @property
    def read_total(self) -> int:
        return sum(self.read_by_type.values())


@dataclass(slots=True)
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    #: Per folder given: files in it left out for their name ending.
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files if f.failed]

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.files for p in f.problems]

    def read_by_type(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for f in self.files:
            for kind, n in f.read_by_type.items():
                total[kind] = total.get(kind, 0) + n
        return dict(sorted(total.items()))

    @property
    def new(self) -> int:
        return sum(f.new for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def new_indicators(self) -> int:
        return sum(f.new_indicators for f in self.files)


def read_file(path: Path, limits: IntelLimits, *, fmt: str | None = None) -> ReadResult:
    """Read one file with the reader its content calls for. Never raises for bad input.

    A gzip, bzip2 or zstd compressed file (known by its magic bytes, whatever its name) is
    expanded, streamed and bounded by ``limits.max_file_bytes`` and
    ``limits.max_expansion_ratio``, into a temporary file named without its compression
    ending (``iocs.csv.gz`` -> ``iocs.csv``), which every reader then reads as it reads a
    plain file; what the result names is given the original path back."""
    item = str(path)
    compression = compression_of_file(path) if path.is_file() else None
    if compression is None:
        return _read_plain(path, limits, fmt)
    with tempfile.TemporaryDirectory(prefix="taintline-intel-") as tmp:
        plain = Path(tmp) / plain_name(path.name)
        try:
            with plain.open("wb") as out:
                expand_to(
                    path,
                    out,
                    Expansion(
                        max_bytes=limits.max_file_bytes, max_ratio=limits.max_expansion_ratio
                    ),
                )
        except CompressedInputError as exc:
            return ReadResult.failure(fmt or "?", item, f"{exc}; nothing read")
        except OSError as exc:
            return ReadResult.failure(fmt or "?", item, f"cannot read: {exc.strerror or exc}")
        result = _read_plain(plain, limits, fmt)
        _rename(result, str(plain), item)
        return result


def _read_plain(path: Path, limits: IntelLimits, fmt: str | None) -> ReadResult:
    # the readers (STIX, CSV, Markdown parsers) are imported when a file is read: a scan
    # only needs this module's case queries (eol_map), not their start-up time
    from taintline.intel.readers import SNIFF_BYTES, detect, reader_named

    item = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return ReadResult.failure(fmt or "?", item, f"cannot read: {exc.strerror or exc}")
    if path.is_dir():
        return ReadResult.failure(fmt or "?", item, "folder without files to read")
    if not path.is_file():
        return ReadResult.failure(fmt or "?", item, "not a regular file")
    if size > limits.max_file_bytes:
        return ReadResult.failure(
            fmt or "?",
            item,
            f"file is {size} bytes, over the {limits.max_file_bytes}-byte intel file limit; not read",
        )
    if fmt is not None:
        reader = reader_named(fmt)
        if reader is None:
            raise UsageError(f"unknown intel format {fmt!r}")
    else:
        try:
            with path.open("rb") as handle:
                head = handle.read(SNIFF_BYTES)
        except OSError as exc:
            return ReadResult.failure("?", item, f"cannot read: {exc.strerror or exc}")
        if not head.strip():
            return ReadResult.failure("?", item, "empty file")
        reader = detect(head, path)
        if reader is None:
            return ReadResult.failure("?", item, "not a format taintline reads (binary data?)")
    try:
        return reader.read(path, limits)
    except OSError as exc:
        return ReadResult.failure(reader.NAME, item, f"cannot read: {exc.strerror or exc}")
    except MemoryError:
        return ReadResult.failure(reader.NAME, item, "out of memory while reading; split the file")
    except Exception as exc:  # a reader bug on hostile input fails this file, not the batch
        return ReadResult.failure(
            reader.NAME, item, f"reader failed ({type(exc).__name__}: {exc}); file not imported"
        )


#: File name endings read when a folder is given (other files in it are counted, not read).
FOLDER_EXTENSIONS = frozenset(
    {
        ".yar",
        ".yara",
        ".rule",
        ".rules",
        ".csv",
        ".tsv",
        ".txt",
        ".ioc",
        ".iocs",
        ".list",
        ".lst",
        ".json",
        ".stix",
        ".misp",
    }
)


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], dict[str, int]]:
    """Files to read: each file as given; each folder walked recursively (sorted, without
    following symbolic links, so no loops; hidden entries such as ``.git`` left out) for the
    intel file endings, plus endoflife.date product pages (``.md``, but not ``README.md``).
    A folder with nothing to read is returned itself, so it is reported (never a silent zero).

    Returns the files and, per folder, how many files were left out for their ending."""
    files: list[Path] = []
    left_out: dict[str, int] = {}
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            files.append(path)
            continue
        found: list[Path] = []
        for folder, dirs, names in os.walk(path, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                entry = Path(folder) / name
                if name.startswith(".") or entry.is_symlink():
                    continue
                if _intel_file(entry):
                    found.append(entry)
                else:
                    left_out[str(path)] = left_out.get(str(path), 0) + 1
        files.extend(sorted(found) or [path])
    return files, left_out


def _intel_file(path: Path) -> bool:
    path = path.with_name(plain_name(path.name))  # iocs.csv.gz is read as iocs.csv is
    suffix = path.suffix.lower()
    if suffix in FOLDER_EXTENSIONS:
        return True
    # endoflife.date products/*.md are read (a broken one is reported); a collection's own
    # documentation (README.md, LICENSE.md...) is not intel.
    return suffix == ".md" and path.stem.upper() not in _DOC_STEMS


_DOC_STEMS = frozenset(
    {"README", "LICENSE", "CHANGELOG", "CHANGES", "CONTRIBUTING", "SECURITY", "CODE_OF_CONDUCT"}
)


def _nothing_read(result: ReadResult) -> str:
    """One line saying why a file gave nothing: the refusals by reason class, biggest first."""
    if result.rejected:
        classes = sorted(result.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
        parts = [f"{n} row{'s' if n != 1 else ''}: {reason}" for reason, n in classes[:5]]
        if len(classes) > 5:
            parts.append(f"{len(classes) - 5} more reason(s)")
        return "nothing could be read (" + "; ".join(parts) + ")"
    if result.skipped:
        parts = [f"{n} {reason}" for reason, n in sorted(result.skipped.items())]
        return "nothing taintline matches on (skipped: " + "; ".join(parts) + ")"
    return "no indicators, rules or records found in this file"


def _with_source(result: ReadResult, source: str) -> None:
    result.indicators = [dataclasses.replace(i, source=source) for i in result.indicators]
    result.tables = [
        t.set_column(
            t.schema.get_field_index("source"),
            "source",
            pa.array([source] * t.num_rows, pa.string()),
        )
        if "source" in t.column_names
        else t.append_column("source", pa.array([source] * t.num_rows, pa.string()))
        for t in result.tables
    ]
    result.yara = [dataclasses.replace(y, source=source) for y in result.yara]
    result.eol = [dataclasses.replace(e, source=source) for e in result.eol]
    result.context_only = [dataclasses.replace(i, source=source) for i in result.context_only]
    result.eol_products = [dataclasses.replace(e, source=source) for e in result.eol_products]


def _rename(result: ReadResult, old: str, new: str) -> None:
    """Name ``new`` wherever the result names the file ``old`` (problems, origins)."""

    def origin(indicator: Indicator) -> Indicator:
        if indicator.context.get("origin") != old:
            return indicator
        return dataclasses.replace(indicator, context={**indicator.context, "origin": new})

    result.indicators = [origin(i) for i in result.indicators]
    result.context_only = [origin(i) for i in result.context_only]
    result.problems = [
        dataclasses.replace(p, item=new) if p.item == old else p for p in result.problems
    ]
    result.warnings = [
        dataclasses.replace(p, item=new) if p.item == old else p for p in result.warnings
    ]
    result.yara = [
        dataclasses.replace(y, origin=new) if y.origin == old else y for y in result.yara
    ]
    result.eol = [
        dataclasses.replace(e, origin=new + e.origin[len(old) :])
        if e.origin and e.origin.startswith(old)
        else e
        for e in result.eol
    ]
    result.eol_products = [
        dataclasses.replace(e, origin=new) if e.origin == old else e for e in result.eol_products
    ]


def _count_types(result: ReadResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for indicator in result.indicators:
        counts[str(indicator.type)] = counts.get(str(indicator.type), 0) + 1
    for table in result.tables:
        for entry in pc.value_counts(table.column("type")).to_pylist():
            counts[entry["values"]] = counts.get(entry["values"], 0) + int(entry["counts"])
    return dict(sorted(counts.items()))


def store_result(case: Case, result: ReadResult) -> tuple[int, int, int, int]:
    """Write one file's result in the caller's transaction.

    Returns (new statements, new indicators, yara sources stored, eol records stored)."""
    new, new_indicators = case.store_indicators(result.indicators, result.tables)
    yara = sum(_store_yara(case, y) for y in result.yara)
    eol = _store_eol(case, result.eol) if result.eol else 0
    if result.eol_products:
        _store_eol_products(case, result.eol_products)
    return new, new_indicators, yara, eol


def store_context(case: Case, statements: Sequence[Indicator]) -> int:
    """Store context-only statements (``intel_context``, which no matcher reads); returns how
    many were new."""
    if not statements:
        return 0
    import orjson

    added_at = case.now_naive()
    before = case.con.execute("SELECT count(*) FROM intel_context").fetchone()
    for s in statements:
        case.con.execute(
            "INSERT INTO intel_context SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM intel_context"
            " WHERE type = ? AND value = ? AND source = ?)",
            [
                str(s.type),
                s.value,
                s.source,
                s.campaign,
                s.confidence,
                s.valid_from.replace(tzinfo=None) if s.valid_from else None,
                s.valid_until.replace(tzinfo=None) if s.valid_until else None,
                s.description,
                list(s.labels),
                orjson.dumps(dict(s.context)).decode() if s.context else None,
                added_at,
                str(s.type),
                s.value,
                s.source,
            ],
        )
    after = case.con.execute("SELECT count(*) FROM intel_context").fetchone()
    return int(after[0] if after else 0) - int(before[0] if before else 0)


def context_statements(case: Case, value: str) -> list[Indicator]:
    """Context-only statements about ``value`` (any type), for ``intel show``."""
    try:
        rows = case.con.execute(
            f"SELECT {INDICATOR_COLUMNS} FROM intel_context WHERE value = ?"  # noqa: S608
            " ORDER BY type, source",
            [value],
        ).fetchall()
    except duckdb.CatalogException:
        return []  # a case opened read-only before its intel/003 migration ran
    return [indicator_from_row(r) for r in rows]


def _store_yara(case: Case, source: YaraSource) -> int:
    digest = hashlib.sha256(source.text.encode()).hexdigest()
    row = case.con.execute("SELECT 1 FROM yara_sources WHERE sha256 = ?", [digest]).fetchone()
    if row:
        return 0
    namespace = source.namespace
    taken = case.con.execute(
        "SELECT 1 FROM yara_sources WHERE namespace = ?", [namespace]
    ).fetchone()
    if taken:
        namespace = f"{namespace}_{digest[:8]}"
    case.con.execute(
        "INSERT INTO yara_sources VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            digest,
            namespace,
            source.origin,
            source.source,
            list(source.rules),
            source.text,
            case.now_naive(),
        ],
    )
    return 1


def _store_eol(case: Case, records: Sequence[EolRecord], *, count: bool = True) -> int:
    """One statement over an Arrow table (``executemany`` costs a statement per row);
    returns how many records were new (0 without ``count``)."""
    before = case.con.execute("SELECT count(*) FROM eol_cycles").fetchone() if count else None
    rows = list({(r.product, r.cycle, r.source): r for r in records}.values())
    new_rows = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
        {
            "product": pa.array([r.product for r in rows], pa.string()),
            "cycle": pa.array([r.cycle for r in rows], pa.string()),
            "release_date": pa.array([r.release_date for r in rows], pa.date32()),
            "eol_date": pa.array([r.eol_date for r in rows], pa.date32()),
            "eol_flag": pa.array([r.eol_flag for r in rows], pa.bool_()),
            "latest": pa.array([r.latest for r in rows], pa.string()),
            "source": pa.array([r.source for r in rows], pa.string()),
            "description": pa.array([r.description for r in rows], pa.string()),
            "eoas_date": pa.array([r.eoas_date for r in rows], pa.date32()),
            "eoas_flag": pa.array([r.eoas_flag for r in rows], pa.bool_()),
            "latest_date": pa.array([r.latest_date for r in rows], pa.date32()),
            "lts": pa.array([r.lts for r in rows], pa.bool_()),
            "origin": pa.array([r.origin for r in rows], pa.string()),
        }
    )
    case.con.execute(
        "INSERT INTO eol_cycles (product, cycle, release_date, eol_date, eol_flag, latest,"
        " source, description, added_at, eoas_date, eoas_flag, latest_date, lts, origin)"
        " SELECT product, cycle, release_date, eol_date, eol_flag, latest, source, description,"
        " ?, eoas_date, eoas_flag, latest_date, lts, origin FROM new_rows"
        " ON CONFLICT (product, cycle, source) DO UPDATE SET release_date = excluded.release_date,"
        " eol_date = excluded.eol_date, eol_flag = excluded.eol_flag, latest = excluded.latest,"
        " description = excluded.description, eoas_date = excluded.eoas_date,"
        " eoas_flag = excluded.eoas_flag, latest_date = excluded.latest_date,"
        " lts = excluded.lts, origin = excluded.origin",
        [case.now_naive()],
    )
    if not count:
        return 0
    after = case.con.execute("SELECT count(*) FROM eol_cycles").fetchone()
    return int(after[0] if after else 0) - int(before[0] if before else 0)


def _store_eol_products(case: Case, products: Sequence[EolProduct]) -> None:
    rows = list({(p.product, p.source): p for p in products}.values())
    new_rows = pa.table(  # noqa: F841  (read by DuckDB's replacement scan)
        {
            "product": pa.array([p.product for p in rows], pa.string()),
            "source": pa.array([p.source for p in rows], pa.string()),
            "title": pa.array([p.title for p in rows], pa.string()),
            "names": pa.array([list(p.names) for p in rows], pa.list_(pa.string())),
            "purls": pa.array([list(p.purls) for p in rows], pa.list_(pa.string())),
            "cpes": pa.array([list(p.cpes) for p in rows], pa.list_(pa.string())),
            "origin": pa.array([p.origin for p in rows], pa.string()),
        }
    )
    case.con.execute(
        "INSERT INTO eol_products SELECT product, source, title, names, purls, cpes, origin, ?"
        " FROM new_rows ON CONFLICT (product, source) DO UPDATE SET title = excluded.title,"
        " names = excluded.names, purls = excluded.purls, cpes = excluded.cpes,"
        " origin = excluded.origin",
        [case.now_naive()],
    )


def ingest(
    case: Case,
    paths: Iterable[Path],
    *,
    source: str | None = None,
    limits: IntelLimits | None = None,
    fmt: str | None = None,
    on_file: Callable[[FileReport], None] | None = None,
    display: Callable[[Path], str] = str,
) -> IngestReport:
    """Read and store intel files, one transaction per file (or per group of small files).
    ``source`` overrides the
    source name every statement is attributed to (default: what the file says, else its name).
    ``display`` names a file in reports and problems (packs show ``pack/file``)."""
    limits = limits or IntelLimits()
    files, left_out = expand_paths(Path(p) for p in paths)
    report = IngestReport(left_out=left_out)
    group: list[tuple[FileReport, ReadResult]] = []

    def done(file_report: FileReport) -> None:
        report.files.append(file_report)
        if on_file is not None:
            on_file(file_report)

    def flush() -> None:
        if group:
            _store_group(case, group)
            for file_report, _ in group:
                done(file_report)
            group.clear()

    for path in files:
        result = read_file(Path(path), limits, fmt=fmt)
        # Give Arrow's freed scratch memory (batches, concatenations) back before DuckDB
        # inserts: with a million indicators that is a few hundred MB of peak.
        pa.default_memory_pool().release_unused()
        if source:
            _with_source(result, source)
        shown = display(Path(path))
        if shown != str(path):
            _rename(result, str(path), shown)
        file_report = FileReport(
            path=shown,
            format=result.format,
            problems=list(result.problems),
            warnings=list(result.warnings),
            skipped=dict(result.skipped),
            rejected=dict(result.rejected),
            failed=result.failed,
            rule_names=tuple(r for y in result.yara for r in y.rules),
        )
        if result.failed:
            file_report.failure = result.problems[0].message if result.problems else "not read"
        elif result.nothing_read:
            # No silent zero: a file of which nothing could be used is a failure.
            file_report.failed = True
            file_report.failure = _nothing_read(result)
        else:
            file_report.read_by_type = _count_types(result)
            if _groupable(result):
                group.append((file_report, result))
                if len(group) >= GROUP_FILES:
                    flush()
                continue
            flush()
            _store_one(case, file_report, result)
        flush()
        done(file_report)
    flush()
    return report


#: Small files (an endoflife.date product page, a short IOC list) are stored this many at a
#: time, in one transaction and one INSERT per table; a failure while storing a group
#: stores its files again one transaction each, so one bad file still adds nothing alone.
GROUP_FILES = 64
#: A file is small when it states at most this many indicators and end-of-life records.
GROUP_MAX_ROWS = 5_000


def _groupable(result: ReadResult) -> bool:
    rows = result.statement_count + len(result.eol) + len(result.eol_products)
    return rows <= GROUP_MAX_ROWS and not (result.yara or result.context_only)


def _store_one(case: Case, file_report: FileReport, result: ReadResult) -> None:
    """One file in its own transaction; a store failure fails that file only."""
    try:
        with case.transaction():
            new, new_indicators, yara, eol = store_result(case, result)
            file_report.context_only = store_context(case, result.context_only)
    except Exception as exc:  # one file's store failure never ends the batch
        file_report.failed = True
        file_report.failure = f"could not store (nothing from this file kept): {exc}"
        file_report.problems.append(Problem(file_report.path, file_report.failure))
    else:
        _counted(file_report, new, new_indicators, eol)
        file_report.yara_rules = sum(len(y.rules) for y in result.yara) if yara else 0


def _counted(file_report: FileReport, new: int, new_indicators: int, eol: int) -> None:
    file_report.new = new
    file_report.duplicates = file_report.read_total - new
    file_report.new_indicators = new_indicators
    file_report.eol_records = eol


def _store_group(case: Case, group: Sequence[tuple[FileReport, ReadResult]]) -> None:
    """Small files stored together, counted per file as one after the other would be."""
    if len(group) == 1:
        _store_one(case, *group[0])
        return
    try:
        with case.transaction():
            counts = case.store_indicator_groups([(r.indicators, r.tables) for _, r in group])
            eol_new = _store_eol_group(case, [r.eol for _, r in group])
            products = [p for _, r in group for p in r.eol_products]
            if products:
                _store_eol_products(case, products)
    except Exception:  # store them one by one: the file at fault fails alone
        for file_report, result in group:
            _store_one(case, file_report, result)
        return
    for (file_report, _), (new, new_indicators), eol in zip(group, counts, eol_new, strict=True):
        _counted(file_report, new, new_indicators, eol)


def _store_eol_group(case: Case, groups: Sequence[Sequence[EolRecord]]) -> list[int]:
    """End-of-life records of several files in one statement; per file, the records new to
    the case (a key is new for the first file that states it; the last file's values win,
    as storing them one after the other would)."""
    records = [r for g in groups for r in g]
    if not records:
        return [0] * len(groups)
    products = sorted({r.product for r in records})
    held = {
        (p, c, s)
        for p, c, s in case.con.execute(
            "SELECT product, cycle, source FROM eol_cycles WHERE list_contains(?, product)",
            [products],
        ).fetchall()
    }
    counts = []
    for g in groups:
        fresh = {(r.product, r.cycle, r.source) for r in g} - held
        held |= fresh
        counts.append(len(fresh))
    _store_eol(case, records, count=False)
    return counts


# -- packs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    description: str
    files: tuple[str, ...]


def _packs_root() -> resources.abc.Traversable:
    return resources.files(PACKS_PACKAGE)


def list_packs() -> list[PackInfo]:
    import orjson

    out: list[PackInfo] = []
    for entry in sorted(_packs_root().iterdir(), key=lambda e: e.name):
        manifest = entry.joinpath("pack.json")
        if entry.is_dir() and manifest.is_file():
            meta = orjson.loads(manifest.read_bytes())
            out.append(
                PackInfo(entry.name, str(meta.get("description", "")), tuple(meta.get("files", [])))
            )
    return out


def ingest_pack(
    case: Case,
    name: str,
    *,
    limits: IntelLimits | None = None,
    on_file: Callable[[FileReport], None] | None = None,
) -> IngestReport:
    """Load a shipped campaign pack (all its files) into the case."""
    packs = {p.name: p for p in list_packs()}
    pack = packs.get(name)
    if pack is None:
        choices = ", ".join(sorted(packs)) or "none"
        raise UsageError(f"no intel pack named {name!r}; available: {choices}")
    folder = _packs_root().joinpath(name)
    with resources.as_file(folder) as real:
        return ingest(
            case,
            [Path(real) / f for f in pack.files],
            limits=limits,
            on_file=on_file,
            display=lambda p: f"pack {name}/{p.name}",
        )


def ensure_intel(case: Case) -> bool:
    """Load the built-in pack when the case has no intel yet; True if it was loaded.

    Into a case without any intel, the pack's rows are copied from a snapshot in the user's
    cache folder when there is one (:func:`_load_pack_snapshot`), and a snapshot is written
    after reading the pack otherwise: a scan into a new case reads the pack's files through
    the readers, which imports pyarrow and numpy, about 0.4 s (more with the scan's workers
    starting beside it) before any worker can start."""
    # any indicator at all (not a count: the indicators view groups every statement)
    if case.con.execute("SELECT 1 FROM indicator_sources LIMIT 1").fetchone() is not None:
        return False
    empty = not any(
        case.con.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()  # noqa: S608  (constants)
        for t in PACK_TABLES
    )
    key = _pack_key(case, DEFAULT_PACK) if empty else None
    if key is not None and _load_pack_snapshot(case, key):
        return True
    ingest_pack(case, DEFAULT_PACK)
    if key is not None:
        _save_pack_snapshot(case, key)
    return True


#: The tables a pack fills (a test checks that reading the shipped pack fills no other).
PACK_TABLES = ("indicator_sources", "yara_sources", "eol_cycles", "eol_products")


def _pack_key(case: Case, name: str) -> str:
    """What a pack's rows follow from: the pack's files, the intel readers' code and the
    tables' columns (another version of either reads or stores the pack differently)."""
    h = hashlib.sha256(name.encode())
    folders = (
        _packs_root().joinpath(name),
        resources.files("taintline.intel"),
        resources.files("taintline"),  # the model, the case, the limits
    )
    for folder in folders:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_file() and not entry.name.endswith((".pyc", ".pyo")):
                data = entry.read_bytes()
                h.update(entry.name.encode() + len(data).to_bytes(8, "little") + data)
    columns = case.con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'main' AND list_contains(?, table_name)"
        " ORDER BY table_name, ordinal_position",
        [list(PACK_TABLES)],
    ).fetchall()
    h.update(repr(columns).encode())
    return h.hexdigest()[:32]


def _snapshot_dir(key: str) -> Path:
    return cache_dir("packs") / key


def _load_pack_snapshot(case: Case, key: str) -> bool:
    """Copy the pack's rows from its snapshot (one Parquet file per table, read by DuckDB,
    ``added_at`` now); False, with nothing stored, when there is none or it cannot be read."""
    folder = _snapshot_dir(key)
    if not (folder / "complete").is_file():
        return False
    try:
        with case.transaction() as con:
            for table in PACK_TABLES:
                con.execute(
                    f"INSERT INTO {table} SELECT * REPLACE (?::TIMESTAMP AS added_at)"  # noqa: S608
                    " FROM read_parquet(?)",
                    [case.now_naive(), str(folder / f"{table}.parquet")],
                )
    except duckdb.Error:
        return False
    return True


def _save_pack_snapshot(case: Case, key: str) -> None:
    """Write the pack's rows (the case held nothing else in these tables) as a snapshot:
    into a temporary folder, renamed when complete; a cache that cannot be written is no
    error."""
    final = _snapshot_dir(key)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-"))
        for table in PACK_TABLES:
            target = str(work / f"{table}.parquet").replace("'", "''")
            case.con.execute(f"COPY {table} TO '{target}' (FORMAT parquet)")
        (work / "complete").write_text(key)
        try:
            work.rename(final)
        except OSError:  # another process wrote it first
            shutil.rmtree(work, ignore_errors=True)
    except (OSError, duckdb.Error):
        return


# -- read back ---------------------------------------------------------------------------


def load_yara_sources(case: Case) -> list[YaraSource]:
    """Every stored YARA source, in the order they were added (namespace, origin, text)."""
    rows = case.con.execute(
        "SELECT namespace, origin, text, rules, source FROM yara_sources ORDER BY added_at, namespace"
    ).fetchall()
    return [YaraSource(r[0], r[1], r[2], tuple(r[3] or ()), r[4]) for r in rows]


_EOL_COLUMNS = (
    "product, cycle, source, release_date, eol_date, eol_flag, latest, description,"
    " eoas_date, eoas_flag, latest_date, lts, origin"
)


def eol_records(case: Case, product: str | None = None) -> list[EolRecord]:
    sql = f"SELECT {_EOL_COLUMNS} FROM eol_cycles"  # noqa: S608  (constant columns)
    params: list[str] = []
    if product is not None:
        sql += " WHERE product = ?"
        params.append(product.lower())
    sql += " ORDER BY product, release_date NULLS LAST, cycle, source"
    return [EolRecord(*r) for r in case.con.execute(sql, params).fetchall()]


def eol_products(case: Case) -> list[EolProduct]:
    """Every product's names and identifiers (one row per product and source)."""
    rows = case.con.execute(
        "SELECT product, source, title, names, purls, cpes, origin FROM eol_products"
        " ORDER BY product, source"
    ).fetchall()
    return [
        EolProduct(r[0], r[1], r[2], tuple(r[3] or ()), tuple(r[4] or ()), tuple(r[5] or ()), r[6])
        for r in rows
    ]


def eol_map(case: Case) -> dict[str, str]:
    """Lower-cased product -> its end-of-life date (ISO), the latest EOL date across cycles.

    A product with a cycle that is still supported (``eol: false``) or whose EOL is only a
    flag without a date is left out: it has no date after which signing it is suspicious.
    """
    return case.eol_dates()
