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

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from taintline.compressed import SUFFIXES
from taintline.errors import Problem
from taintline.hunt.engines.interface import EngineResult, Progress
from taintline.hunt.engines.spark_engine import SparkEngine
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


def _numbered(spark: SparkSession, df: DataFrame) -> DataFrame:
    """``df`` (with ``path``) plus exact 1-based ``line`` numbers per file, without RDDs."""
    df = df.withColumn("_rid", F.monotonically_increasing_id()).withColumn(
        "_pid", F.spark_partition_id()
    )
    df = df.persist()
    spans = df.groupBy("path", "_pid").agg(F.min("_rid").alias("first"), F.count("*").alias("n"))
    rows = sorted(spans.collect(), key=lambda r: (r["path"], r["first"]))
    offsets: list[tuple[str, int, int]] = []
    seen: dict[str, int] = defaultdict(int)
    for row in rows:
        # The first line of this split is line seen+1 of its file.
        offsets.append((row["path"], int(row["_pid"]), seen[row["path"]] - int(row["first"]) + 1))
        seen[row["path"]] += int(row["n"])
    schema = T.StructType(
        [
            T.StructField("path", T.StringType()),
            T.StructField("_pid", T.IntegerType()),
            T.StructField("_off", T.LongType()),
        ]
    )
    table = spark.createDataFrame(offsets, schema)
    out = df.join(F.broadcast(table), ["path", "_pid"]).withColumn(
        "line", F.col("_rid") + F.col("_off")
    )
    return out.drop("_rid", "_pid", "_off")


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
    """One hunt run on the cluster behind ``spark``."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.engine = SparkEngine(spark)

    def run(
        self,
        inputs: Sequence[str],
        indicators: IndicatorSet,
        options: HuntOptions,
        progress: Progress | None = None,
    ) -> ClusterRun:
        spark = self.spark
        spark.conf.set("spark.sql.files.ignoreCorruptFiles", "true")
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.conf.set("spark.sql.ansi.enabled", "false")
        out = ClusterRun()
        listed, out.problems = _list(spark, [to_uri(t) for t in inputs])
        out.files = [p for p, _ in listed]
        text_paths = [p for p, _ in listed if not _is_parquet(p) and not _in_parquet(p)]
        parquet_roots = sorted({_parquet_root(p) for p, _ in listed if _in_parquet(p)})
        frames: list[DataFrame] = []
        labels: dict[str, dict[str, str]] = {}
        cached: list[DataFrame] = []
        if text_paths:
            frames += self._text(text_paths, options, out, labels, cached, progress)
        for root in parquet_roots:
            try:
                frame = self._parquet(root, options, out, labels)
            except Exception as exc:
                out.problems.append(Problem(root, f"cannot read as a log table: {_short(exc)}"))
                continue
            if frame is not None:
                frames.append(frame)
        try:
            self.engine._register(spark, indicators)
            if frames:
                cand = frames[0]
                for frame in frames[1:]:
                    cand = cand.unionByName(frame)
                cand.where("data").createOrReplaceTempView("cand")
                out.result.groups, per_file = self.engine._aggregate(
                    spark, self.engine._match(spark, indicators, labels), options
                )
                for stats in out.result.stats:
                    stats.hits = per_file.get(stats.path, 0)
        finally:
            for df in cached:
                df.unpersist()
        return out

    # -- text logs ---------------------------------------------------------------------
    def _text(
        self,
        paths: list[str],
        options: HuntOptions,
        out: ClusterRun,
        labels: dict[str, dict[str, str]],
        cached: list[DataFrame],
        progress: Progress | None,
    ) -> list[DataFrame]:
        spark = self.spark
        raw = (
            spark.read.option("lineSep", "\n")
            .text(paths)
            .select(
                F.col("_metadata.file_path").alias("path"),
                F.regexp_replace("value", "\r$", "").alias("value"),
            )
        )
        lines = _numbered(spark, raw)
        cached.append(lines)
        heads: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for row in (
            lines.where(F.col("line") <= HEAD_LINES).select("path", "line", "value").collect()
        ):
            heads[row["path"]].append((int(row["line"]), row["value"]))
        sources: dict[str, LogSource] = {}
        for path in paths:
            head = [v.encode("utf-8") for _, v in sorted(heads.get(path, []))]
            found = _describe(path, head, options)
            if isinstance(found, Problem):
                out.problems.append(found)
            else:
                sources[path] = found
                out.sources.append(found)
        skip = F.col("value").contains(_REPLACEMENT) | (
            F.octet_length("value") > int(options.max_line_bytes)
        )
        groups: dict[tuple[Any, ...], list[LogSource]] = defaultdict(list)
        for src in sources.values():
            groups[_layout_key(src)].append(src)
        parsed: list[DataFrame] = []
        for members in groups.values():
            names = [s.path for s in members]
            parsed.append(
                self.engine._parse(lines.where(F.col("path").isin(names)), members[0], skip)
            )
            for s in members:
                labels[s.path] = {str(f): ".".join(v) for f, v in s.fields.items()}
        if not parsed:
            return []
        allp = parsed[0]
        for frame in parsed[1:]:
            allp = allp.unionByName(frame)
        allp = allp.persist()
        cached.append(allp)
        counts = {
            r["path"]: r
            for r in lines.groupBy("path")
            .agg(
                F.count("*").alias("lines"),
                F.sum((F.col("value") == "").cast("long")).alias("blank"),
                F.sum(F.col("value").startswith("#").cast("long")).alias("hashes"),
            )
            .collect()
        }
        bad = {
            r["path"]: int(r["bad"] or 0)
            for r in allp.groupBy("path")
            .agg(F.sum(F.col("bad").cast("long")).alias("bad"))
            .collect()
        }
        for path in paths:
            known = sources.get(path)
            if known is None:
                continue
            crow = counts.get(path)
            stats = FileStats(path=path, format=str(known.format), kind=str(known.kind))
            if crow is not None:
                stats.lines, stats.blank = int(crow["lines"]), int(crow["blank"] or 0)
                if known.format is LogFormat.ZEEK_TSV:
                    stats.comments = int(crow["hashes"] or 0)
            stats.garbage = bad.get(path, 0)
            stats.records = max(
                0, stats.lines - stats.blank - stats.comments - stats.garbage - known.header_lines
            )
            out.result.stats.append(stats)
            if progress is not None:
                progress(known, stats)
        return [allp]

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
        df = table.select(F.col("_metadata.file_path").alias("path"), *cols)
        df = _numbered(spark, df)
        df = df.withColumn("bad", F.lit(False)).withColumn("data", F.lit(True))
        label = {str(f): c for f, c in chosen_real.items()}
        for row in df.groupBy("path").count().collect():
            labels[row["path"]] = label
            stats = FileStats(path=row["path"], format="parquet", kind=str(kind or LogKind.GENERIC))
            stats.lines = stats.records = int(row["count"])
            out.result.stats.append(stats)
        return df.select("path", "line", "bad", "data", *[f"f_{f}" for f in Field])


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
