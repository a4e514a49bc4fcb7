"""Records the hunt speaks: what a log file is, what was seen in it, and per-file counts.

No I/O here. Readers produce :class:`LogSource` values (a description of one file: its
format, its columns and which of them carry the fields the matcher needs); engines turn
them into :class:`HitGroup` rows; :mod:`taintline.hunt.sightings` folds those into
:class:`Sighting` values, one per (host, indicator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from taintline.compressed import Expansion
from taintline.errors import Problem
from taintline.model import IndicatorType
from taintline.sparklocal import SparkSettings


class LogKind(StrEnum):
    DNS = "dns"
    HTTP = "http"
    SSL = "ssl"
    CONN = "conn"
    FILES = "files"
    X509 = "x509"
    GENERIC = "generic"


class LogFormat(StrEnum):
    ZEEK_TSV = "zeek-tsv"
    ZEEK_JSON = "zeek-json"
    JSONL = "jsonl"
    CSV = "csv"


class Field(StrEnum):
    """The common fields every reader maps its columns onto (the ``--map`` keys)."""

    TS = "ts"
    #: The host the defender cares about (the connection's originator by default).
    SRC = "src"
    DST = "dst"
    DST_PORT = "dst_port"
    #: An explicit host name/identity; when present it names the host instead of ``src``.
    HOST = "host"
    #: A DNS query, an HTTP Host header, a domain column of a proxy log.
    DOMAIN = "domain"
    #: TLS server name indication.
    SNI = "sni"
    #: The HTTP request target (path and query), joined to ``domain`` into a URL.
    URI = "uri"
    #: A full URL (proxy logs).
    URL = "url"
    #: Certificate subject (``CN=...``) and subject alternative names (comma separated).
    CERT_SUBJECT = "cert_subject"
    CERT_SAN = "cert_san"
    #: A certificate's id in ``x509.log`` (``fingerprint``; ``id``, the file id, before Zeek
    #: 4.2): ties a certificate sighting to the connection that carried it
    #: (:mod:`taintline.hunt.certs`).
    CERT_ID = "cert_id"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"


#: ``--map`` accepts these extra spellings for a field.
FIELD_ALIASES: dict[str, Field] = {
    "query": Field.DOMAIN,
    "server_name": Field.SNI,
    "src_ip": Field.SRC,
    "dst_ip": Field.DST,
    "port": Field.DST_PORT,
    "time": Field.TS,
    "timestamp": Field.TS,
    "subject": Field.CERT_SUBJECT,
    "san": Field.CERT_SAN,
}


def parse_field_name(text: str) -> Field:
    key = text.strip().lower()
    if key in FIELD_ALIASES:
        return FIELD_ALIASES[key]
    return Field(key)


@dataclass(frozen=True, slots=True)
class LogSource:
    """One log file as a reader understood it.

    ``columns`` are the physical columns of a delimited file (Zeek TSV, CSV), in order;
    ``fields`` maps each common field to a column name (a one-item tuple, delimited files) or
    a key path (JSON files: ``("dns", "question", "name")`` for nested objects,
    ``("id.orig_h",)`` for Zeek's flat dotted keys).
    """

    path: str
    format: LogFormat
    kind: LogKind
    fields: dict[Field, tuple[str, ...]]
    columns: tuple[str, ...] = ()
    delimiter: str = "\t"
    #: Values that mean "no value" (Zeek's ``-`` and ``(empty)``).
    null_values: tuple[str, ...] = ()
    #: Separator inside set/vector values (Zeek's ``set_separator``).
    set_separator: str = ","
    #: Lines before the data that a reader skips on purpose (a CSV header line).
    header_lines: int = 0
    #: ``gzip``, ``bzip2`` or ``zstd`` (by the magic bytes), ``None`` for a plain file.
    compression: str | None = None


@dataclass(slots=True)
class FileStats:
    """What happened to one file: every line is accounted for.

    ``lines == records + comments + blank + garbage`` (``comments`` are Zeek ``#`` header and
    footer lines; ``garbage`` are lines that could not be parsed: wrong field count, invalid
    UTF-8, invalid JSON, over-long).
    """

    path: str
    format: str = ""
    kind: str = ""
    lines: int = 0
    records: int = 0
    comments: int = 0
    blank: int = 0
    garbage: int = 0
    hits: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HitGroup:
    """Matched records of one file, grouped by (host, indicator, matched field).

    Times are microseconds since the epoch (UTC); ``lines`` holds the smallest line numbers
    (at most the engine's cap) and ``min_line``/``max_line`` the full range.
    """

    host: str
    indicator_type: str
    indicator_value: str
    field: str
    path: str
    first_us: int | None
    last_us: int | None
    count: int
    min_line: int
    max_line: int
    lines: tuple[int, ...]
    observed: str

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> HitGroup:
        """From an engine's grouped row: host, type, value, field, path, first, last, count,
        min line, max line, line list, observed (the column order both engines select)."""
        return cls(
            host=r[0],
            indicator_type=r[1],
            indicator_value=r[2],
            field=r[3],
            path=r[4],
            first_us=r[5],
            last_us=r[6],
            count=int(r[7]),
            min_line=int(r[8]),
            max_line=int(r[9]),
            lines=tuple(int(x) for x in r[10]),
            observed=r[11] or "",
        )


@dataclass(frozen=True, slots=True)
class FileLocation:
    path: str
    first_line: int
    last_line: int
    count: int
    lines: tuple[int, ...]

    def text(self) -> str:
        span = (
            f"{self.first_line}"
            if self.first_line == self.last_line
            else f"{self.first_line}-{self.last_line}"
        )
        return f"{self.path}:{span}"


@dataclass(frozen=True, slots=True)
class Sighting:
    """One indicator seen for one host: when first and last, how often, where in which logs."""

    host: str
    indicator_type: IndicatorType
    indicator_value: str
    first_seen: datetime | None
    last_seen: datetime | None
    count: int
    sources: tuple[str, ...]
    campaign: str | None
    fields: tuple[str, ...]
    observed: tuple[str, ...]
    locations: tuple[FileLocation, ...]

    @property
    def indicator_key(self) -> str:
        return f"{self.indicator_type}:{self.indicator_value}"


@dataclass(frozen=True, slots=True)
class HuntOptions:
    since: datetime | None = None
    until: datetime | None = None
    engine: str = "duckdb"
    memory_limit: str = "2GB"
    threads: int = 2
    field_map: dict[Field, str] = field(default_factory=dict)
    #: At most this many line numbers kept per (sighting, file).
    max_lines: int = 10
    #: Over-long lines (bytes) are garbage.
    max_line_bytes: int = 1 << 20
    #: A compressed log is read up to this many expanded bytes, or until it expands more
    #: than ``max_expansion_ratio`` times (past 64 MiB): a compression bomb is a problem
    #: for that file (the lines before the limit are hunted), never a full disk.
    max_expanded_bytes: int = 256 << 30
    max_expansion_ratio: float = 1000.0
    #: Zeek TSV files: find candidate lines with the literal pre-filter
    #: (:mod:`taintline.hunt.prefilter`) and parse only those; False parses every line.
    prefilter: bool = True
    #: Where ``--engine spark`` runs (None: a local session on this machine).
    spark: SparkSettings | None = None

    @property
    def expansion(self) -> Expansion:
        return Expansion(max_bytes=self.max_expanded_bytes, max_ratio=self.max_expansion_ratio)
