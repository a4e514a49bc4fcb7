"""Literal pre-filter for Zeek TSV logs: find the few lines that can match, at memory speed.

Parsing every line of a multi-GB log (DuckDB's CSV reader, Arrow's) runs at ~1.5-2 million
lines/s on this machine, and almost every line is benign. A line can only match an indicator
if the indicator's text (or, for URLs and CIDR ranges, its host or network prefix) occurs in
it, case-insensitively: a query for ``a.b.evil.com`` contains ``evil.com``; a connection to
``203.0.113.9`` contains ``203.0.113.``. So one pass per file runs Hyperscan (Intel's
multi-literal matcher, the engine behind Suricata's pattern matching) over large blocks and
keeps only the lines holding such a literal, with their true line numbers. The exact
matching (parent domains, URL keys, CIDR membership) then runs in DuckDB on those lines
alone, with the same SQL as the full path; the literal set is a superset by construction, so
the answer is the same.

The same pass accounts for every line, as the full path does: comment (``#``) lines, blank
lines, and garbage (wrong number of fields, stray carriage returns, invalid UTF-8, over-long
lines). Well-formed blocks are recognised from byte counts alone (``bytes.count`` of tabs and
newlines); only a block whose counts disagree is split and checked line by line.

A literal set that would pass too many lines (a /8 network, a one-letter domain) floods the
pre-filter: the file is then read in full by DuckDB instead (``PrefilterResult.flooded``).
Hyperscan is written in C, not in this repository; what is ours is the line bookkeeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import hyperscan
import numpy as np
import numpy.typing as npt

from taintline.compressed import Expansion, compression_of
from taintline.hunt.readers.textio import DEFAULT_EXPANSION, Damage, decompressed_blocks

try:
    hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    _AVAILABLE = True
except hyperscan.error:  # pragma: no cover - e.g. an old CPU: every file takes the full path
    _AVAILABLE = False

BLOCK = 8 << 20
NL, TAB, HASH = 0x0A, 0x09, 0x23
#: Stop collecting candidates beyond this share of a file's lines (plus a small floor):
#: the pre-filter is not selective for this indicator set, read the file in full instead.
FLOOD_SHARE = 0.02
FLOOD_FLOOR = 50_000
#: Keep at most this many garbage line numbers per file (the count is always exact).
MAX_GARBAGE_LINES = 20
#: Below this much input, worker processes cost more than they save.
POOL_MIN_BYTES = 64 << 20
#: A block with more ``#`` lines than this is checked line by line.
MAX_FAST_COMMENTS = 64


def available() -> bool:
    """Whether this platform's hyperscan build can run here (it needs SSSE3 on x86-64)."""
    return _AVAILABLE


def literals(
    domains: Iterable[str],
    url_hosts: Iterable[str],
    ips: Iterable[str],
    cidrs: Iterable[str],
    hashes: Iterable[str],
) -> list[bytes] | None:
    """The literals a matching line must contain one of (``None``: no useful pre-filter).

    Domains and URL hosts as themselves, IPs as themselves, hashes as themselves; a CIDR
    range as the text of its whole leading octets (``203.0.113.`` for a /24; a /20 becomes
    16 third-octet prefixes) or, for IPv6, its first hextet (Zeek writes addresses
    compressed, so longer IPv6 prefixes have several spellings). Networks wider than a /8
    (v4) or /16 (v6) give ``None``.
    """
    out: set[str] = set()
    out.update(d.lower() for d in domains if d)
    out.update(h.lower() for h in url_hosts if h)
    out.update(i.lower() for i in ips if i)
    out.update(h.lower() for h in hashes if h)
    for text in cidrs:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            whole, rest = divmod(net.prefixlen, 8)
            if whole == 0:
                return None
            octets = str(net.network_address).split(".")
            if whole == 4:  # a /32 is one address: "10.0.0.1", no trailing dot
                out.add(str(net.network_address))
            elif rest == 0:
                out.add(".".join(octets[:whole]) + ".")
            else:
                first = int(octets[whole])
                for k in range(first, first + (1 << (8 - rest))):
                    out.add(".".join([*octets[:whole], str(k)]) + ("." if whole < 3 else ""))
        else:
            if net.prefixlen < 16:
                return None
            first = int(net.network_address) >> 112
            out.add(format(first, "x") + ":")
            if first == 0:  # Zeek writes compressed addresses: "::1", "::ffff:1.2.3.4"
                out.add("::")
    return sorted(s.encode() for s in out if s)


@dataclass(frozen=True, slots=True)
class Matcher:
    """A compiled literal set, serialisable to worker processes."""

    blob: bytes
    count: int

    def database(self) -> object:
        """The loaded database (with its scratch space), loaded once per process."""
        key = hashlib.sha256(self.blob).digest()
        db = _LOADED.get(key)
        if db is None:
            db = hyperscan.loadb(self.blob, hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)
            _LOADED.clear()
            _LOADED[key] = db
        return db


_LOADED: dict[bytes, Any] = {}


def _cache_dir() -> Path | None:
    if os.environ.get("TAINTLINE_CACHE", "").lower() in ("0", "off", "no"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "taintline"


def compile_matcher(patterns: list[bytes]) -> Matcher:
    """Compile (about 30 us per literal) or load the same set from the user's cache."""
    assert hyperscan is not None
    digest = hashlib.sha256(b"hs1\0" + b"\0".join(patterns)).hexdigest()[:32]
    cache = _cache_dir()
    cached = cache / f"hunt-{digest}.hsdb" if cache is not None else None
    if cached is not None:
        try:
            blob = cached.read_bytes()
            hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)  # a damaged cache file is simply rebuilt
            return Matcher(blob, len(patterns))
        except (OSError, hyperscan.error):
            pass
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=patterns,
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[hyperscan.HS_FLAG_CASELESS] * len(patterns),
        literal=True,
    )
    blob = hyperscan.dumpb(db)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(blob)
            tmp.replace(cached)
        except OSError:
            pass
    return Matcher(blob, len(patterns))


@dataclass(slots=True)
class PrefilterResult:
    path: str
    lines: int = 0
    blank: int = 0
    comments: int = 0
    garbage: int = 0
    #: (line number, why) for the first garbage lines.
    garbage_lines: list[tuple[int, str]] = field(default_factory=list)
    #: Candidate lines (without their newline) and their line numbers, in file order.
    candidates: list[bytes] = field(default_factory=list)
    candidate_lines: list[int] = field(default_factory=list)
    flooded: bool = False
    damage: str | None = None
    cut_line: bool = False
    error: str | None = None


class _Flood(Exception):
    pass


class _Pass:
    """Per-block work. A block is ``buf[:end]``: whole lines, each ending in a newline."""

    def __init__(self, db: object, ncols: int, max_line: int, result: PrefilterResult) -> None:
        self.db = db
        self.tabs_per_line = ncols - 1
        self.max_line = max_line
        self.result = result
        self.base = 0  # lines before the current block
        self.limit = FLOOD_FLOOR
        self.ends: list[int] = []

    def feed(self, buf: bytearray, end: int) -> None:
        arr = np.frombuffer(buf, np.uint8, count=end)
        newlines = np.flatnonzero(arr == NL)
        bad = self._check(buf, end, arr, newlines)
        self._scan(buf, end, newlines, bad)
        self.base += len(newlines)

    def long_line(self) -> None:
        """A line longer than the read buffer was skipped (it is garbage)."""
        self._garbage(self.base + 1, "unparsable line")
        self.base += 1

    def _garbage(self, line: int, why: str) -> None:
        res = self.result
        res.garbage += 1
        if len(res.garbage_lines) < MAX_GARBAGE_LINES:
            res.garbage_lines.append((line, why))

    def _check(
        self, buf: bytearray, end: int, arr: npt.NDArray[np.uint8], newlines: npt.NDArray[np.intp]
    ) -> set[int]:
        """Lines of this block that are not data (block-relative, 0-based).

        Fast path, from byte counts only (NumPy, several GB/s): an ASCII block without
        carriage returns and without lines over ``max_line`` bytes, whose tabs outside its few
        ``#`` lines number exactly ``data lines * (columns - 1)``, holds only well-formed
        records (a blank or short line would leave the count short)."""
        if buf.find(b"\r", 0, end) != -1 or int(arr.max(initial=0)) >= 0x80:
            return self._check_lines(buf, end)
        if len(newlines) and int(np.diff(newlines, prepend=-1).max()) - 1 > self.max_line:
            return self._check_lines(buf, end)
        hashes: list[int] = []
        if buf.find(b"#", 0, end) != -1:
            found = np.flatnonzero(arr == HASH)
            at_start = found[(found == 0) | (arr[np.maximum(found - 1, 0)] == NL)]
            if len(at_start) > MAX_FAST_COMMENTS:
                return self._check_lines(buf, end)
            hashes = [int(h) for h in at_start]
        comment_tabs = sum(buf.count(b"\t", h, buf.find(b"\n", h, end)) for h in hashes)
        tabs = int(np.count_nonzero(arr == TAB))
        if tabs - comment_tabs != (len(newlines) - len(hashes)) * self.tabs_per_line:
            return self._check_lines(buf, end)
        self.result.comments += len(hashes)
        return {int(i) for i in np.searchsorted(newlines, hashes)}

    def _check_lines(self, buf: bytearray, end: int) -> set[int]:
        res = self.result
        skip: set[int] = set()
        for index, raw in enumerate(bytes(buf[:end]).split(b"\n")[:-1]):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            why = None
            if not line:
                res.blank += 1
                skip.add(index)
                continue
            if line.startswith(b"#"):
                res.comments += 1
                skip.add(index)
                continue
            if len(raw) > self.max_line or b"\r" in line or line.count(b"\t") != self.tabs_per_line:
                why = "unparsable line"
            elif not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    why = "not valid UTF-8"
            if why is not None:
                skip.add(index)
                self._garbage(self.base + index + 1, why)
        return skip

    def _scan(
        self, buf: bytearray, end: int, newlines: npt.NDArray[np.intp], bad: set[int]
    ) -> None:
        ends = self.ends
        ends.clear()
        limit = self.limit

        def on_match(_id: int, _start: int, stop: int, _flags: int, _ctx: object) -> bool | None:
            ends.append(stop)
            return True if len(ends) > limit else None

        try:
            self.db.scan(memoryview(buf)[:end], match_event_handler=on_match)  # type: ignore[attr-defined]
        except hyperscan.ScanTerminated:
            raise _Flood from None
        if not ends:
            return
        res = self.result
        lines = np.unique(np.searchsorted(newlines, np.asarray(ends, dtype=np.intp) - 1))
        for index in lines.tolist():
            if index in bad:
                continue
            start = int(newlines[index - 1]) + 1 if index else 0
            stop = int(newlines[index])
            if stop - start > self.max_line:
                self._garbage(self.base + index + 1, "unparsable line")
                continue
            line = bytes(buf[start:stop])
            res.candidates.append(line[:-1] if line.endswith(b"\r") else line)
            res.candidate_lines.append(self.base + index + 1)
        if len(res.candidates) > limit:
            raise _Flood


class _Decompressed:
    """``readinto`` over the decompressed bytes of every gzip member, bzip2 stream or zstd
    frame, in bounded steps; a damaged stream, or one expanding past its limit, ends the
    data, recording why (what came before stays)."""

    def __init__(self, handle: BinaryIO, name: str, damage: Damage, limit: Expansion) -> None:
        self.chunks = decompressed_blocks(handle, name, damage, limit, BLOCK)
        self.pending = b""
        self.offset = 0

    def readinto(self, view: memoryview) -> int:
        while self.offset >= len(self.pending):
            nxt = next(self.chunks, None)
            if nxt is None:
                return 0
            self.pending, self.offset = nxt, 0
        n = min(len(view), len(self.pending) - self.offset)
        view[:n] = self.pending[self.offset : self.offset + n]
        self.offset += n
        return n


def _read_blocks(
    path: Path, result: PrefilterResult, work: _Pass, limit: Expansion = DEFAULT_EXPANSION
) -> None:
    """Feed ``work`` with blocks of whole lines, read into one reused buffer (no per-block
    allocation). A last line without a newline gets one; a line longer than the buffer is
    skipped as garbage; a damaged compressed stream leaves its cut last line as garbage."""
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as raw:
        name = compression_of(raw.read(4))
        raw.seek(0)
        damage = Damage()
        reader: Any = raw if name is None else _Decompressed(raw, name, damage, limit)
        have = 0
        skipping = False
        while True:
            got = reader.readinto(view[have:])
            if not got:
                break
            size = have + got
            if skipping:
                nl = buf.find(b"\n", 0, size)
                if nl == -1:
                    have = 0
                    continue
                skipping = False
                work.long_line()
                buf[: size - nl - 1] = buf[nl + 1 : size]
                size -= nl + 1
            cut = buf.rfind(b"\n", 0, size) + 1
            if cut == 0:
                if size == len(buf):
                    skipping, have = True, 0
                else:
                    have = size
                continue
            work.feed(buf, cut)
            have = size - cut
            buf[:have] = buf[cut:size]
        result.damage = damage.message
        if skipping:
            work.long_line()
        elif have:
            if result.damage is not None:
                result.cut_line = True
            else:
                buf[have] = NL
                work.feed(buf, have + 1)


def prefilter_file(
    path: str,
    ncols: int,
    matcher: Matcher,
    max_line: int,
    limit: Expansion = DEFAULT_EXPANSION,
) -> PrefilterResult:
    """One pass over one Zeek TSV file (plain, gzip, bzip2 or zstd): line accounting and
    candidates."""
    result = PrefilterResult(path=path)
    try:
        size = Path(path).stat().st_size
        work = _Pass(matcher.database(), ncols, max_line, result)
        work.limit = max(FLOOD_FLOOR, int(size / 100 * FLOOD_SHARE))
        _read_blocks(Path(path), result, work, limit)
        result.lines = work.base + (1 if result.cut_line else 0)
        if result.cut_line:
            result.garbage += 1
    except _Flood:
        result.flooded = True
        result.candidates.clear()
        result.candidate_lines.clear()
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
    return result


def _warm() -> bool:
    """Run in each new worker: by then it has imported this module (hyperscan, NumPy)."""
    return True


def prefilter_many(
    jobs: list[tuple[str, int]],
    patterns: list[bytes],
    max_line: int,
    workers: int,
    limit: Expansion = DEFAULT_EXPANSION,
) -> Iterator[PrefilterResult]:
    """``prefilter_file`` over many files, in file order, in ``workers`` processes when the
    input is large enough to pay for starting them. The workers start (and import) while
    this process compiles the literal set."""
    total = 0
    for path, _ in jobs:
        with contextlib.suppress(OSError):
            total += Path(path).stat().st_size
    if workers <= 1 or len(jobs) < 2 or total < POOL_MIN_BYTES:
        matcher = compile_matcher(patterns)
        for path, ncols in jobs:
            yield prefilter_file(path, ncols, matcher, max_line, limit)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: the parent holds a DuckDB connection (with its own threads), never fork that.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        warm = [pool.submit(_warm) for _ in range(workers)]
        matcher = compile_matcher(patterns)
        for started in warm:
            started.result()
        futures = [
            pool.submit(prefilter_file, path, ncols, matcher, max_line, limit)
            for path, ncols in jobs
        ]
        for future in futures:
            yield future.result()
