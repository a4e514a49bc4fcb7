"""MD5, SHA-1 and SHA-256 of each buffer, and matching against hash indicators.

SHA-256 is always computed (it names content everywhere in the case); MD5 and SHA-1 are
computed by default too, because feeds still publish them, and can be left out with
``--hashes`` (:class:`HashType`): a hash that was not computed is stored as NULL and never
matches (the scan says which hash indicators it could not check).

hashlib uses OpenSSL (SHA-256 and SHA-1 with the CPU's SHA instructions, about 1.1 GB/s each
here; MD5 is the slowest at about 0.45 GB/s; ``docs/scan.md`` has this machine's numbers).
:func:`hash_bytes` hashes a buffer in one pass, the hashes fed the same chunk in turn while it
is in cache. When the caller has a core to spare, :func:`start_hashes` hashes a large buffer on
threads instead, one per hash, each with a single ``update`` over the whole buffer: hashlib
releases the GIL for the whole call, so the hashes run while the calling thread scans the same
bytes with YARA (yara-x holds the GIL for a whole scan).

The scan workers import this module: it must stay free of DuckDB and pyarrow (those are
imported where the parent matches hashes against the case).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from enum import StrEnum
from os import PathLike
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from taintline.kinds import error_finding
from taintline.model import Finding, Severity
from taintline.terminal import storable

if TYPE_CHECKING:
    from taintline.case import Case

#: Chunk fed to the hashes in turn (fits in L2 cache).
HASH_CHUNK = 256 * 1024


class HashType(StrEnum):
    """The file hashes a scan can compute (``--hashes``); SHA-256 is always one of them."""

    SHA256 = "sha256"
    SHA1 = "sha1"
    MD5 = "md5"


#: What a scan computes unless told otherwise: all three (feeds still publish MD5 and SHA-1).
ALL_HASHES: frozenset[HashType] = frozenset(HashType)


def hash_set(chosen: Iterable[HashType | str] = ALL_HASHES) -> frozenset[HashType]:
    """``chosen`` as a set of :class:`HashType`, SHA-256 always added (``ValueError`` for a
    name that is not a hash type)."""
    return frozenset({HashType.SHA256, *(HashType(str(h).strip().lower()) for h in chosen)})


@dataclass(frozen=True, slots=True)
class Hashes:
    """A buffer's hashes; a hash that was not computed (``--hashes``) is ``""``."""

    md5: str
    sha1: str
    sha256: str
    size: int


_CONSTRUCTORS: dict[HashType, Callable[[], Any]] = {
    HashType.MD5: hashlib.md5,
    HashType.SHA1: hashlib.sha1,
    HashType.SHA256: hashlib.sha256,
}
#: The field order of :class:`Hashes`.
_ORDER = (HashType.MD5, HashType.SHA1, HashType.SHA256)


def _result(digests: dict[HashType, str], size: int) -> Hashes:
    return Hashes(
        digests.get(HashType.MD5, ""),
        digests.get(HashType.SHA1, ""),
        digests.get(HashType.SHA256, ""),
        size,
    )


def hash_bytes(data: bytes | memoryview, which: frozenset[HashType] = ALL_HASHES) -> Hashes:
    """The hashes ``which`` of ``data`` in one pass (SHA-256 always)."""
    size = len(data)
    if size <= HASH_CHUNK:  # the common case in trees of small files: no chunking, no views
        return Hashes(
            hashlib.md5(data).hexdigest() if HashType.MD5 in which else "",
            hashlib.sha1(data).hexdigest() if HashType.SHA1 in which else "",
            hashlib.sha256(data).hexdigest(),
            size,
        )
    states = [_CONSTRUCTORS[h]() for h in _ORDER if h in which or h is HashType.SHA256]
    view = memoryview(data)
    for start in range(0, size, HASH_CHUNK):
        chunk = view[start : start + HASH_CHUNK]
        for state in states:
            state.update(chunk)
    kinds = [h for h in _ORDER if h in which or h is HashType.SHA256]
    return _result({h: s.hexdigest() for h, s in zip(kinds, states, strict=True)}, size)


#: Buffers at least this large are hashed on threads by :func:`start_hashes`.
THREADED_MIN = 512 * 1024


def _digest(kind: HashType, data: bytes | memoryview, started: threading.Semaphore) -> str:
    h = _CONSTRUCTORS[kind]()
    started.release()
    h.update(data)  # one call: the GIL is released for all of it
    return str(h.hexdigest())


class HashJob:
    """The hashes of one buffer, being computed; :meth:`result` waits for them."""

    __slots__ = ("_done", "_futures", "_size")

    def __init__(
        self,
        size: int,
        futures: dict[HashType, Future[str]] | None = None,
        done: Hashes | None = None,
    ) -> None:
        self._size = size
        self._futures = futures or {}
        self._done = done

    def ready(self) -> Hashes | None:
        """The hashes if already computed (small buffers are hashed at once), else ``None``."""
        return self._done

    def result(self) -> Hashes:
        if self._done is None:
            self._done = _result({h: f.result() for h, f in self._futures.items()}, self._size)
            self._futures = {}
        return self._done


def start_hashes(
    data: bytes | memoryview, executor: Executor | None, which: frozenset[HashType] = ALL_HASHES
) -> HashJob:
    """Start hashing ``data``: on ``executor`` (a thread per hash) when it is large, else here."""
    if executor is None or len(data) < THREADED_MIN:
        return HashJob(len(data), done=hash_bytes(data, which))
    started = threading.Semaphore(0)
    kinds = [h for h in _ORDER if h in which or h is HashType.SHA256]
    futures = {h: executor.submit(_digest, h, data, started) for h in kinds}
    # Wait until every thread is inside (or just before) its update: a thread that has not
    # started yet needs the GIL to start, and yara-x would hold it for the whole scan.
    for _ in futures:
        started.acquire()
    return HashJob(len(data), futures)


def hash_stream(
    stream: BinaryIO, chunk_size: int = 4 * 1024 * 1024, which: frozenset[HashType] = ALL_HASHES
) -> Hashes:
    """The hashes ``which`` of everything ``stream`` yields, in bounded memory."""
    kinds = [h for h in _ORDER if h in which or h is HashType.SHA256]
    states = [_CONSTRUCTORS[h]() for h in kinds]
    size = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        size += n
        for start in range(0, n, HASH_CHUNK):
            chunk = view[start : min(start + HASH_CHUNK, n)]
            for state in states:
                state.update(chunk)
    return _result({h: s.hexdigest() for h, s in zip(kinds, states, strict=True)}, size)


@dataclass(frozen=True, slots=True)
class HashedFile:
    """What the matcher needs of a scanned file (any object with these attributes will do:
    the scan passes its records as they are, see :class:`Hashed`)."""

    path: str
    md5: str
    sha1: str
    sha256: str
    size: int


class Hashed(Protocol):
    """A file as :func:`match_hashes` reads it (a :class:`HashedFile`, a scan record)."""

    @property
    def path(self) -> str: ...
    @property
    def md5(self) -> str: ...
    @property
    def sha1(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...


_LABELS = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5"}


def match_hashes(case: Case, files: Sequence[Hashed]) -> list[Finding]:
    """``ioc.hash`` findings (critical) for files whose MD5, SHA-1 or SHA-256 is a hash
    indicator in ``case``; one finding per file naming every indicator and its sources.

    The join runs in DuckDB against ``indicator_sources`` (a hash join on type and value), so
    millions of indicators cost no Python memory.
    """
    if not files:
        return []
    from taintline.case import rows_relation  # here: the workers import this module too

    columns: dict[str, tuple[str, list[Any]]] = {
        "idx": ("BIGINT", list(range(len(files)))),
        "md5": ("VARCHAR", [f.md5 for f in files]),
        "sha1": ("VARCHAR", [f.sha1 for f in files]),
        "sha256": ("VARCHAR", [f.sha256 for f in files]),
    }
    # a few files (a re-scan's linked matches) need no pyarrow (see Case's rows_relation)
    with rows_relation(case.con, columns) as (batch, params):
        rows = case.con.execute(
            f"""
            WITH batch AS (SELECT * FROM {batch}), h AS (
                SELECT idx, 'sha256' AS type, sha256 AS value FROM batch
                UNION ALL SELECT idx, 'sha1', sha1 FROM batch
                UNION ALL SELECT idx, 'md5', md5 FROM batch
            )
            SELECT h.idx, s.type, s.value,
                   list(DISTINCT s.source ORDER BY s.source),
                   any_value(s.campaign) FILTER (WHERE s.campaign IS NOT NULL),
                   any_value(s.description) FILTER (WHERE s.description IS NOT NULL)
            FROM h JOIN indicator_sources s ON s.type = h.type AND s.value = h.value
            GROUP BY h.idx, s.type, s.value
            ORDER BY h.idx, s.type
            """,  # noqa: S608  (a relation name or a SELECT of placeholders)
            params,
        ).fetchall()
    by_file: dict[int, list[tuple[str, str, list[str], str | None, str | None]]] = {}
    for idx, type_, value, sources, campaign, description in rows:
        by_file.setdefault(int(idx), []).append(
            (type_, value, list(sources), campaign, description)
        )
    findings: list[Finding] = []
    for idx, matches in sorted(by_file.items()):
        f = files[idx]
        sources = sorted({s for m in matches for s in m[2]})
        campaigns = sorted({m[3] for m in matches if m[3]})
        which = ", ".join(_LABELS.get(m[0], m[0]) for m in matches)
        message = f"{which} matches a known-bad file indicator (sources: {', '.join(sources)})"
        if campaigns:
            message += f"; campaign: {', '.join(campaigns)}"
        findings.append(
            Finding(
                kind="ioc.hash",
                severity=Severity.CRITICAL,
                subject=f.path,
                message=message,
                evidence={
                    "md5": f.md5,
                    "sha1": f.sha1,
                    "sha256": f.sha256,
                    "size": f.size,
                    "matches": [
                        {
                            "indicator": f"{m[0]}:{m[1]}",
                            "sources": m[2],
                            "campaign": m[3],
                            "description": m[4],
                        }
                        for m in matches
                    ],
                },
                indicators=tuple(f"{m[0]}:{m[1]}" for m in matches),
            )
        )
    return findings


def unchecked_hash_findings(
    case: Case, inputs: Sequence[str | PathLike[str]], hashes: frozenset[HashType]
) -> list[Finding]:
    """One ``error.hash-unchecked`` finding per input when the case holds hash indicators of a
    type the scan does not compute (``--hashes``): those indicators could not match there."""
    left_out = [h for h in (HashType.MD5, HashType.SHA1) if h not in hashes]
    if not left_out:
        return []
    counts = case.indicator_counts_by_type()
    unchecked = {str(h): counts[h] for h in left_out if counts.get(h)}
    if not unchecked:
        return []
    what = " and ".join(f"{n} {_LABELS[h]}" for h, n in unchecked.items())
    computed = ", ".join(_LABELS[h] for h in ("sha256", "sha1", "md5") if h in hashes)
    return [
        error_finding(
            "error.hash-unchecked",
            storable(str(path)),
            f"{what} indicator(s) in the case were not checked against these files: --hashes"
            f" computed only {computed}",
            not_computed=sorted(unchecked),
            indicators=unchecked,
        )
        for path in inputs
    ]
