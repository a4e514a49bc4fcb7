"""The hunt on a Spark cluster, with the data where it lives.

The local Spark path (:class:`~taintline.hunt.engines.spark_engine.SparkEngine`) opens every
file on the driver for its byte-level accounting and numbers lines with the RDD API. Neither
works on a cluster: the driver may not see the files, and Spark Connect has no RDDs. Here
every step runs on the cluster and only small results come home:

1. **Listing** with Spark's ``binaryFile`` source (its content column is never read), so
   ``hdfs://``, ``s3a://``, ``abfss://``, ``file://`` URIs and glob patterns work as Spark
   reads them.
2. **Lines** with the ``text`` source; exact line numbers without RDDs: every row gets
   ``monotonically_increasing_id()`` (consecutive inside one split of one file), the driver
   receives one row per (file, split) with its first id and row count, and turns them into
   per-file offsets (a small broadcast table).
3. **Headers**: the first :data:`HEAD_LINES` lines of each file come home; the same log
   readers as the local path (:data:`~taintline.hunt.readers.READERS`) describe each file.
4. **Accounting** (lines, blank, ``#`` lines, garbage) is one aggregation per file on the
   cluster. Invalid UTF-8 is counted where Spark's decoder left U+FFFD; an over-long line by
   its UTF-8 length. A damaged compressed file is read up to the damage
   (``spark.sql.files.ignoreCorruptFiles``); a file of which nothing could be read is a
   problem, never a silent zero.
5. **Matching and grouping** are the local Spark engine's own joins; only the per-host
   sightings and per-file counts are collected.

Parquet inputs (``*.parquet`` files or folders of them: Zeek logs converted by common
pipelines) are read as tables: their column names (``id.orig_h``, ``id_orig_h`` or a struct
``id`` with ``orig_h``) are mapped like Zeek's, and their row order gives the line numbers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from taintline.compressed import SUFFIXES
from taintline.errors import Problem
from taintline.hunt.engines import spark_match
from taintline.hunt.engines.interface import EngineResult, Progress, count_records
from taintline.hunt.engines.spark_engine import CAND_FIELDS, layout_columns, parsed_input
from taintline.hunt.indicators import IndicatorSet
from taintline.hunt.model import Field, FileStats, HuntOptions, LogFormat, LogKind, LogSource
from taintline.hunt.readers import READERS
from taintline.hunt.readers.fields import (
    ZEEK_FIELDS,
    kind_from_fields,
    kind_from_path,
    pick_columns,
)

#: Lines of each file sent to the driver for the readers to describe it.
HEAD_LINES = 100

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_GLOB = re.compile(r"[*?\[{]")
_REPLACEMENT = "\ufffd"


def is_uri(text: str) -> bool:
    """``hdfs://...``, ``s3a://...``, ``file:/...`` (not a Windows drive letter)."""
    return bool(_SCHEME.match(text)) and not re.match(r"^[A-Za-z]:[\\/]", text)


def needs_cluster(inputs: Iterable[str]) -> bool:
    """Inputs only Spark can resolve: URIs, glob patterns, Parquet tables."""
    return any(is_uri(t) or _GLOB.search(t) or _is_parquet(t) for t in inputs)


def _is_parquet(text: str) -> bool:
    return text.rstrip("/").lower().endswith(".parquet")


def to_uri(text: str) -> str:
    """A local path as an absolute ``file:`` URI (glob characters kept as they are)."""
    if is_uri(text):
        return text
    return "file://" + str(Path(text).absolute())


@dataclass(slots=True)
class ClusterRun:
    result: EngineResult = field(default_factory=EngineResult)
    problems: list[Problem] = field(default_factory=list)
    #: Every file the cluster listed, as it names them.
    files: list[str] = field(default_factory=list)
    #: The text logs as the readers described them (their layouts).
    sources: list[LogSource] = field(default_factory=list)


def _list(spark: SparkSession, uris: Sequence[str]) -> tuple[list[tuple[str, int]], list[Problem]]:
    found: dict[str, int] = {}
    problems: list[Problem] = []
    for uri in uris:
        try:
            rows = (
                spark.read.format("binaryFile")
                .option("recursiveFileLookup", "true")
                .load(uri)
                .select("path", "length")
                .collect()
            )
        except Exception as exc:
            problems.append(Problem(uri, f"cannot list: {_short(exc)}"))
            continue
        if not rows:
            problems.append(Problem(uri, "no files match"))
        for row in rows:
            found.setdefault(str(row["path"]), int(row["length"]))
    return sorted(found.items()), problems


def _short(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(exc).__name__


#: Bits of ``monotonically_increasing_id()`` that count rows inside one partition.
_ROW_BITS = 33


def _with_ids(df: DataFrame) -> DataFrame:
    """``df`` (with ``path``) plus the split it came from (``_pid``, ``_blk``: partition and
    byte offset of the split in its file) and a row id ``_rid`` (consecutive inside a split).
    The same plan over the same files gives the same ids: :func:`_fix_splits` keeps Spark
    from cutting the files differently between two passes."""
    return (
        df.withColumn("_blk", F.col("_metadata.file_block_start"))
        .withColumn("_rid", F.monotonically_increasing_id())
        .withColumn("_pid", F.spark_partition_id())
    )


def _offsets(rows: Sequence[Any]) -> tuple[list[tuple[str, int, int, int]], dict[str, int]]:
    """Per split ``(path, _pid, _blk, offset)`` so that ``_rid + offset`` is the 1-based line
    number in its file, from one row per split (``path, _pid, _blk, first, n``); and the
    lines per file."""
    out: list[tuple[str, int, int, int]] = []
    seen: dict[str, int] = defaultdict(int)
    for row in sorted(rows, key=lambda r: (r["path"], r["_blk"], r["first"])):
        path = str(row["path"])
        out.append((path, int(row["_pid"]), int(row["_blk"]), seen[path] - int(row["first"]) + 1))
        seen[path] += int(row["n"])
    return out, dict(seen)


def _numbered(df: DataFrame, table: DataFrame) -> DataFrame:
    """``df`` from :func:`_with_ids` with exact line numbers (``line``), joined with the
    small offsets table (broadcast); rows of splits not in it are dropped."""
    out = df.join(F.broadcast(table), ["path", "_pid", "_blk"]).withColumn(
        "line", F.col("_rid") + F.col("_off")
    )
    return out.drop("_rid", "_pid", "_blk", "_off")


def _offset_frame(
    spark: SparkSession, rows: list[tuple[str, int, int, int]], grp: dict[str, int] | None = None
) -> DataFrame:
    """The offsets as a small table; with ``grp``, each file's layout number too."""
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    table = {
        "path": pa.array(cols[0], pa.string()),
        "_pid": pa.array(cols[1], pa.int32()),
        "_blk": pa.array(cols[2], pa.int64()),
        "_off": pa.array(cols[3], pa.int64()),
    }
    if grp is not None:
        table["_grp"] = pa.array([grp[p] for p in cols[0]], pa.int32())
    return spark_match.frame(spark, pa.table(table))


def _describe(path: str, head: list[bytes], opts: HuntOptions) -> LogSource | Problem:
    if not any(line.strip() for line in head):
        return Problem(path, "empty file, or nothing could be read (damaged compression?)")
    if any(b"\0" in line for line in head[:5]):
        return Problem(path, "binary file, not a log")
    name = Path(re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:/*", "/", path))
    for reader in READERS:
        if reader.sniff(head, name):
            found = reader.describe(name, head, opts.field_map)
            if isinstance(found, Problem):
                return Problem(path, found.message, found.line)
            # Spark picks the codec from the name ending (it cannot peek at magic bytes on
            # the cluster): .gz, .bz2 and, with a native zstd codec, .zst.
            return replace(found, path=path, compression=SUFFIXES.get(Path(path).suffix.lower()))
    return Problem(path, "not a log format taintline reads (Zeek TSV/JSON, JSON Lines, CSV)")


def _layout_key(src: LogSource) -> tuple[Any, ...]:
    fields = tuple(sorted((str(k), v) for k, v in src.fields.items()))
    return (src.format, src.columns, fields, src.delimiter, src.null_values, src.header_lines)


class ClusterHunt:
    """One hunt run on the cluster behind ``spark``: a counting pass over the text logs
    (lines, blank and ``#`` lines, the first lines of each file and the line-number offsets
    per split, in one aggregation), one over the Parquet tables, and one matching pass
    (:mod:`.spark_match`) that also counts garbage lines. Nothing is cached; every pass is
    one job over the input."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def run(
        self,
        inputs: Sequence[str],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None = None,
    ) -> ClusterRun:
        spark = self.spark
        settings = {
            "spark.sql.files.ignoreCorruptFiles": "true",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.ansi.enabled": "false",
            # The same splits in every pass: the row ids of one pass number the lines of the
            # next. With one "minimum partition", a split is spark.sql.files.maxPartitionBytes
            # long whatever the session's parallelism or the set of files read.
            "spark.sql.files.minPartitionNum": "1",
            # A generated method over HotSpot's 8,000-byte limit is never JIT-compiled and
            # runs interpreted (the parse-and-match stage was 2x slower): split it instead.
            "spark.sql.codegen.hugeMethodLimit": "8000",
        }
        before = {k: spark.conf.get(k, None) for k in settings}
        for key, value in settings.items():
            spark.conf.set(key, value)
        try:
            return self._run(inputs, indicators, options, progress)
        finally:
            for key, old in before.items():
                if old is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, old)

    def _run(
        self,
        inputs: Sequence[str],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None,
    ) -> ClusterRun:
        spark = self.spark
        out = ClusterRun()
        listed, out.problems = _list(spark, [to_uri(t) for t in inputs])
        out.files = [p for p, _ in listed]
        text_paths = [p for p, _ in listed if not _is_parquet(p) and not _in_parquet(p)]
        parquet_roots = sorted({_parquet_root(p) for p, _ in listed if _in_parquet(p)})
        frames: list[DataFrame] = []
        labels: dict[str, dict[str, str]] = {}
        header: dict[str, int] = {}
        if text_paths:
            frames += self._text(text_paths, options, out, labels, header)
        for root in parquet_roots:
            try:
                frame = self._parquet(root, options, out, labels)
            except Exception as exc:
                out.problems.append(Problem(root, f"cannot read as a log table: {_short(exc)}"))
                continue
            if frame is not None:
                frames.append(frame)
        per_file: dict[str, int] = {}
        garbage: dict[str, int] = {}
        if frames:
            cand = frames[0]
            for frame in frames[1:]:
                cand = cand.unionByName(frame)
            cand.createOrReplaceTempView("cand")
            v6 = spark_match.has_v6_networks(indicators)
            v6_hits = (
                indicators.match_cidrs(spark_match.v6_candidates(spark, indicators)) if v6 else []
            )
            keys = spark_match.key_table(spark, indicators, v6_hits)
            hits = spark_match.hits(
                spark, indicators, keys, spark_match.label_table(spark, labels), v6
            )
            out.result.groups, per_file, garbage = spark_match.aggregate(spark, hits, options)
        for stats in out.result.stats:
            stats.hits = per_file.get(stats.path, 0)
            if stats.format != "parquet":
                stats.garbage = garbage.get(stats.path, 0)
                count_records(stats, header.get(stats.path, 0))
        if progress is not None:
            by_path = {s.path: s for s in out.sources}
            for stats in out.result.stats:
                if stats.path in by_path:
                    progress(by_path[stats.path], stats)
        return out

    # -- text logs ---------------------------------------------------------------------
    def _text(
        self,
        paths: list[str],
        options: HuntOptions,
        out: ClusterRun,
        labels: dict[str, dict[str, str]],
        header: dict[str, int],
    ) -> list[DataFrame]:
        spark = self.spark
        value = F.col("value")
        raw = _with_ids(
            spark.read.option("lineSep", "\n")
            .text(paths)
            .select(
                F.col("_metadata.file_path").alias("path"),
                # A CR before the LF is not part of the line (the regex only where one is).
                F.when(value.endswith("\r"), F.regexp_replace(value, "\r$", ""))
                .otherwise(value)
                .alias("value"),
                F.col("_metadata"),
            )
        ).drop("_metadata")
        # One pass: per split its first row id, lines, blank and # lines, and first lines.
        splits = (
            raw.groupBy("path", "_pid", "_blk")
            .agg(
                F.min("_rid").alias("first"),
                F.count("*").alias("n"),
                F.sum((value == "").cast("long")).alias("blank"),
                F.sum(value.startswith("#").cast("long")).alias("hashes"),
                F.min_by(F.struct("_rid", "value"), "_rid", HEAD_LINES).alias("head"),
            )
            .collect()
        )
        offsets, line_counts = _offsets(splits)
        heads: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        blank: dict[str, int] = defaultdict(int)
        hashes: dict[str, int] = defaultdict(int)
        for row in splits:
            path = str(row["path"])
            blank[path] += int(row["blank"] or 0)
            hashes[path] += int(row["hashes"] or 0)
            heads[path] += [(int(row["_blk"]), int(h["_rid"]), h["value"]) for h in row["head"]]
        sources: dict[str, LogSource] = {}
        for path in paths:
            head = [v.encode("utf-8") for _, _, v in sorted(heads.get(path, []))[:HEAD_LINES]]
            found = _describe(path, head, options)
            if isinstance(found, Problem):
                out.problems.append(found)
            else:
                sources[path] = found
                out.sources.append(found)
        if not sources:
            return []
        for path, src in sources.items():
            stats = FileStats(path=path, format=str(src.format), kind=str(src.kind))
            stats.lines, stats.blank = line_counts.get(path, 0), blank[path]
            if src.format is LogFormat.ZEEK_TSV:
                stats.comments = hashes[path]
            header[path] = src.header_lines
            labels[path] = {str(f): ".".join(v) for f, v in src.fields.items()}
            out.result.stats.append(stats)
        # Every layout is parsed in the same pass: each row takes its file's layout (_grp).
        groups: dict[tuple[Any, ...], list[LogSource]] = defaultdict(list)
        for src in sources.values():
            groups[_layout_key(src)].append(src)
        layouts = [members[0] for members in groups.values()]
        grp = {s.path: i for i, members in enumerate(groups.values()) for s in members}
        table = _offset_frame(spark, [o for o in offsets if o[0] in grp], grp)
        lines = _numbered(raw, table)
        return [_parse_all(lines, layouts, options)]

    # -- Parquet tables ----------------------------------------------------------------
    def _parquet(
        self,
        root: str,
        options: HuntOptions,
        out: ClusterRun,
        labels: dict[str, dict[str, str]],
    ) -> DataFrame | None:
        spark = self.spark
        try:
            table = spark.read.parquet(root)
            types = _flat_types(table.schema)
        except Exception as exc:
            out.problems.append(Problem(root, f"cannot read as Parquet: {_short(exc)}"))
            return None
        by_alias = {_zeek_alias(n): n for n in types}
        chosen = pick_columns(by_alias, ZEEK_FIELDS, options.field_map)
        if not chosen:
            out.problems.append(
                Problem(root, "Parquet table without any column taintline hunts on")
            )
            return None
        chosen_real = {f: by_alias[c] for f, c in chosen.items()}
        base = root.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
        kind = kind_from_path(base) or kind_from_fields(by_alias)
        cols: list[Column] = []
        for f in Field:
            real = chosen_real.get(f)
            if real is None:
                cols.append(F.lit(None).cast("string").alias(f"f_{f}"))
            else:
                cols.append(_as_text(*types[real]).alias(f"f_{f}"))
        df = _with_ids(table.select(F.col("_metadata.file_path").alias("path"), *cols, "_metadata"))
        df = df.drop("_metadata")
        splits = (
            df.groupBy("path", "_pid", "_blk")
            .agg(F.min("_rid").alias("first"), F.count("*").alias("n"))
            .collect()
        )
        offsets, counts = _offsets(splits)
        df = _numbered(df, _offset_frame(spark, offsets))
        df = df.withColumn("bad", F.lit(False)).withColumn("data", F.lit(True))
        label = {str(f): c for f, c in chosen_real.items()}
        for path, count in sorted(counts.items()):
            labels[path] = label
            stats = FileStats(path=path, format="parquet", kind=str(kind or LogKind.GENERIC))
            stats.lines = stats.records = count
            out.result.stats.append(stats)
        return df.select("path", "line", "bad", "data", *[f"f_{f}" for f in Field])


def _parse_all(lines: DataFrame, layouts: list[LogSource], options: HuntOptions) -> DataFrame:
    """Candidate columns of every row under its file's layout (``_grp`` indexes ``layouts``),
    in one projection: the files are read once, whatever the number of layouts."""
    value = F.col("value")
    df = lines.withColumn("blank", value == "").withColumn(
        # Invalid UTF-8 (Spark's decoder left U+FFFD) and over-long lines are garbage.
        "skip",
        value.contains(_REPLACEMENT) | (F.octet_length(value) > int(options.max_line_bytes)),
    )
    grp = F.col("_grp")
    tsv = [i for i, s in enumerate(layouts) if s.format is LogFormat.ZEEK_TSV]
    if tsv:
        df = df.withColumn("_arr", F.when(grp.isin(tsv), parsed_input(layouts[tsv[0]], value)))
    parsed: dict[int, Column | None] = {}
    for i, src in enumerate(layouts):
        if src.format is LogFormat.ZEEK_TSV:
            parsed[i] = F.col("_arr")
        elif src.format is LogFormat.CSV:
            df = df.withColumn(f"_csv{i}", F.when(grp == i, parsed_input(src, value)))
            parsed[i] = F.col(f"_csv{i}")
        else:
            parsed[i] = None
    bad: Column | None = None
    data: Column | None = None
    fields: list[Column | None] = [None] * len(CAND_FIELDS)
    for i, src in enumerate(layouts):
        b, d, cols = layout_columns(src, F.col("line"), F.col("blank"), F.col("skip"), parsed[i])
        bad = F.when(grp == i, b) if bad is None else bad.when(grp == i, b)
        data = F.when(grp == i, d) if data is None else data.when(grp == i, d)
        for j, c in enumerate(cols):
            prev = fields[j]
            fields[j] = F.when(grp == i, c) if prev is None else prev.when(grp == i, c)
    assert bad is not None and data is not None
    return df.select(
        "path",
        "line",
        bad.alias("bad"),
        data.alias("data"),
        *[c.alias(f"f_{f}") for f, c in zip(CAND_FIELDS, fields, strict=True) if c is not None],
    )


def _in_parquet(path: str) -> bool:
    return any(part.lower().endswith(".parquet") for part in path.split("/"))


def _parquet_root(path: str) -> str:
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part.lower().endswith(".parquet"):
            return "/".join(parts[: i + 1])
    return path


def _flat_types(
    schema: T.StructType, prefix: tuple[str, ...] = ()
) -> dict[str, tuple[tuple[str, ...], T.DataType]]:
    """Leaf columns by dotted name, with their path (a column named ``id.orig_h`` and a
    struct ``id`` with ``orig_h`` both become ``id.orig_h``) and type."""
    out: dict[str, tuple[tuple[str, ...], T.DataType]] = {}
    for f in schema.fields:
        path = (*prefix, f.name)
        if isinstance(f.dataType, T.StructType):
            out.update(_flat_types(f.dataType, path))
        else:
            out.setdefault(".".join(path), (path, f.dataType))
    return out


_ZEEK_NAMES = {n.replace(".", "_"): n for names in ZEEK_FIELDS.values() for n in names}


def _zeek_alias(name: str) -> str:
    """``id_orig_h`` (a converter's spelling) -> ``id.orig_h`` (Zeek's)."""
    return _ZEEK_NAMES.get(name, name)


def _as_text(path: tuple[str, ...], dtype: T.DataType) -> Column:
    col = F.col(f"`{path[0]}`")
    for part in path[1:]:
        col = col.getField(part)
    if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
        return (
            (F.unix_micros(col.cast("timestamp")) / F.lit(1_000_000))
            .cast("decimal(20,6)")
            .cast("string")
        )
    if isinstance(dtype, T.ArrayType):
        return F.array_join(col.cast("array<string>"), ",")
    return col.cast("string")
