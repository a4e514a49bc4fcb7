"""Benchmark: taintline hunt (DuckDB engine) over generated Zeek DNS/HTTP logs.

Generates ``--lines`` log lines (half dns.log, half http.log, Zeek TSV, under /tmp) and
100,000 indicators, then measures in the same run:

* taintline's DuckDB engine (the full ``hunt`` path: counting pass, candidate query, exact
  matching, line numbers, sightings);
* a plain Python baseline: read each line, split on tabs, look the query/Host and each of its
  parent domains up in a ``set``.

Prints lines/s for both, the ratio, both answers' hit counts, and peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from taintline.hunt.indicators import IndicatorSet
from taintline.hunt.model import HuntOptions
from taintline.hunt.readers import discover
from taintline.hunt.service import hunt_sources
from taintline.hunt.synth import FIELDS, zeek_header


def generate(folder: Path, lines: int, files_per_kind: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    per_file = lines // 2 // files_per_kind
    for kind in ("dns", "http"):
        for part in range(files_per_kind):
            path = folder / f"{kind}.2023-03-29-{part:02d}-00-00.log"
            body = folder / f".{kind}{part}.body"
            start = part * per_file
            if kind == "dns":
                select = f"""
                  SELECT printf('%.6f', 1680000000 + i * 0.01) AS ts, 'C' || (i * 7919 % 1000003)::VARCHAR AS uid,
                    '10.' || (i % 7)::VARCHAR || '.' || (i % 251)::VARCHAR || '.' || (i % 13)::VARCHAR, (1024 + i % 60000)::VARCHAR,
                    '10.0.0.53', '53', 'udp', (i % 65535)::VARCHAR, '0.000412',
                    CASE WHEN i % 2000 = 0 THEN 'cdn' || (i % 97)::VARCHAR || '.evil' || (i % 100000)::VARCHAR || '.com'
                         ELSE 'www' || (i % 9)::VARCHAR || '.site' || (i % 500000)::VARCHAR || '.example.org' END,
                    '1', 'C_INTERNET', '1', 'A', '0', 'NOERROR', 'F', 'F', 'T', 'T', '0', '93.184.216.34', '60.000000', 'F'
                  FROM range({start}, {start + per_file}) t(i)"""
            else:
                select = f"""
                  SELECT printf('%.6f', 1680000000 + i * 0.01), 'C' || (i * 7919 % 1000003)::VARCHAR,
                    '10.' || (i % 7)::VARCHAR || '.' || (i % 251)::VARCHAR || '.' || (i % 13)::VARCHAR, (1024 + i % 60000)::VARCHAR,
                    '93.184.' || (i % 200)::VARCHAR || '.' || (i % 250)::VARCHAR, '80', '1', 'GET',
                    CASE WHEN i % 5000 = 0 THEN 'dl.evil' || (i % 100000)::VARCHAR || '.com'
                         ELSE 'static' || (i % 50)::VARCHAR || '.shop' || (i % 400000)::VARCHAR || '.example.net' END,
                    '/assets/' || (i % 1000)::VARCHAR || '/app.js?v=' || (i % 17)::VARCHAR, '-', '1.1', 'Mozilla/5.0', '-', '0', (i % 90000)::VARCHAR,
                    '200', 'OK', '-', '-', '(empty)', '-', '-', '-', '-', '-', '-', 'F' || (i % 999)::VARCHAR, '-', 'application/javascript'
                  FROM range({start}, {start + per_file}) t(i)"""
            con.execute(
                f"COPY ({select}) TO '{body}' (FORMAT csv, DELIMITER '\t', HEADER false, QUOTE '')"
            )
            with path.open("wb") as out:
                out.write(zeek_header(kind, FIELDS[kind]).encode())
                with body.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
                out.write(b"#close\t2023-03-29-11-00-00\n")
            body.unlink()


def indicators(count: int) -> IndicatorSet:
    ind = IndicatorSet()
    ind.domains = [f"evil{i}.com" for i in range(count - 2000)]
    ind.ips = [(f"198.51.{i // 250}.{i % 250}", "ipv4") for i in range(1000)]
    ind.urls = [(f"evil{i}.com/gate{i}.php", f"http://evil{i}.com/gate{i}.php") for i in range(990)]
    ind.cidrs = [f"203.0.{i}.0/24" for i in range(10)]
    return ind


def baseline(paths: list[Path], domains: set[str], ips: set[str]) -> tuple[int, int]:
    """Plain Python: split each line, check the name and its parent domains, and both IPs."""
    lines = hits = 0
    for path in paths:
        col = 9 if path.name.startswith("dns") else 8
        with path.open("rb") as handle:
            for raw in handle:
                lines += 1
                if raw[:1] == b"#":
                    continue
                parts = raw.split(b"\t")
                if parts[2] in ips or parts[4] in ips:
                    hits += 1
                    continue
                name = parts[col].decode().lower().rstrip(".")
                labels = name.split(".")
                for i in range(len(labels) - 1):
                    if ".".join(labels[i:]) in domains:
                        hits += 1
                        break
    return lines, hits


def peak_mb() -> float:
    """This process's peak RSS plus that of the largest worker process (the pre-filter runs
    two workers at once, so the sum bounds the whole hunt's peak from above)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own + 2 * child


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="1 million lines instead of 20 million"
    )
    parser.add_argument("--lines", type=int, default=20_000_000)
    parser.add_argument("--indicators", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/taintline-bench-hunt"))
    parser.add_argument("--keep", action="store_true", help="keep the generated logs")
    args = parser.parse_args(argv)
    total = 1_000_000 if args.quick else args.lines
    files = 2 if args.quick else 8
    t = time.perf_counter()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    generate(args.dir, total, files)
    size = sum(p.stat().st_size for p in args.dir.iterdir())
    print(
        f"generated {total:,} records in {2 * files} Zeek TSV files ({size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f}s"
    )
    ind = indicators(args.indicators)
    found = discover([args.dir])
    # A private, empty cache: the first run compiles the literal set (cold), the second
    # loads it from the cache (warm: the same intel hunted again, the normal case).
    cache = Path(tempfile.mkdtemp(prefix="taintline-bench-cache-"))
    os.environ["XDG_CACHE_HOME"] = str(cache)
    runs = {}
    for label in ("cold", "warm"):
        t = time.perf_counter()
        sightings, stats = hunt_sources(
            found.sources, ind, HuntOptions(memory_limit="1GB", threads=2)
        )
        elapsed = time.perf_counter() - t
        lines = sum(s.lines for s in stats)
        hits = sum(s.hits for s in stats)
        runs[label] = lines / elapsed
        print(
            f"taintline (duckdb, {label} literal cache): {lines:,} lines in {elapsed:.2f}s = "
            f"{lines / elapsed / 1e6:.2f} M lines/s; {hits:,} matching records, "
            f"{len(sightings):,} sightings; peak RSS {peak_mb():.0f} MB"
        )
    shutil.rmtree(cache, ignore_errors=True)
    rate = runs["warm"]
    paths = sorted(p for p in args.dir.iterdir() if p.suffix == ".log")
    t = time.perf_counter()
    b_lines, b_hits = baseline(paths, set(ind.domains), {v for v, _ in ind.ips})
    b_elapsed = time.perf_counter() - t
    b_rate = b_lines / b_elapsed
    print(
        f"python set-lookup baseline: {b_lines:,} lines in {b_elapsed:.2f}s = {b_rate / 1e6:.2f} M lines/s; {b_hits:,} matching records"
    )
    print(
        f"ratio taintline/baseline: warm {rate / b_rate:.2f}x, cold {runs['cold'] / b_rate:.2f}x;"
        f" peak RSS (this process + 2 x largest worker) {peak_mb():.0f} MB"
    )
    print(
        f"targets (warm): >= 3.0 M lines/s {'met' if rate >= 3e6 else 'NOT met'}; >= 4x baseline "
        f"{'met' if rate >= 4 * b_rate else 'NOT met'}; peak < 2 GB {'met' if peak_mb() < 2048 else 'NOT met'}"
    )
    if hits != b_hits:
        print(f"note: hit counts differ ({hits} vs {b_hits})", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(args.dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
