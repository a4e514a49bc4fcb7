"""Benchmark: retroactive matching of new hash indicators against stored file records.

Fills a case with ``--records`` stored file records (as scans on many hosts leave them, one
row per record) and adds ``--indicators`` new hash indicators (a third SHA-256, a third SHA-1,
a third MD5; 0.1 % of them match a record), then measures in the same run:

* taintline: :func:`taintline.scan.retro.match_stored` (DuckDB hash joins, findings recorded);
* a plain Python baseline: the indicator values in a ``set``, every record's three hashes
  looked up in it (no findings built).

Target (issue 17): 100,000 indicators against 200,000 records in under 2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from taintline.case import Case
from taintline.model import Indicator, IndicatorType
from taintline.scan.retro import match_stored


def fill(case: Case, records: int) -> None:
    case.con.execute(
        f"""
        INSERT INTO file_facts
        SELECT 'run' || (i % 50)::VARCHAR, 'host-' || (i % 2000)::VARCHAR, '/opt/app',
               '/opt/app/lib/file' || i::VARCHAR || '.dll',
               sha256(i::VARCHAR), substr(sha256('s1' || i::VARCHAR), 1, 40), md5(i::VARCHAR),
               1000 + i, 'pe', 0, '', NULL, now()::TIMESTAMP
        FROM range({records}) t(i)
        """
    )


def indicators(count: int, records: int) -> list[Indicator]:
    out = []
    for i in range(count):
        hit = i % 1000 == 0
        n = (i * 7919) % records if hit else records + i
        if i % 3 == 0:
            out.append(
                Indicator(
                    IndicatorType.SHA256, hashlib.sha256(str(n).encode()).hexdigest(), "bench"
                )
            )
        elif i % 3 == 1:
            out.append(
                Indicator(
                    IndicatorType.SHA1, hashlib.sha256(f"s1{n}".encode()).hexdigest()[:40], "bench"
                )
            )
        else:
            out.append(
                Indicator(IndicatorType.MD5, hashlib.md5(str(n).encode()).hexdigest(), "bench")
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 records, 10,000 indicators")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--indicators", type=int, default=100_000)
    args = parser.parse_args(argv)
    records = 20_000 if args.quick else args.records
    count = 10_000 if args.quick else args.indicators
    folder = Path(tempfile.mkdtemp(prefix="taintline-bench-retro-"))
    try:
        with Case(folder / "case.duckdb") as case:
            fill(case, records)
            ind = indicators(count, records)
            since = datetime.now(UTC) - timedelta(seconds=1)
            case.add_indicators(ind)
            t = time.perf_counter()
            result = match_stored(case, since=since)
            elapsed = time.perf_counter() - t
            rows = case.con.execute("SELECT sha256, sha1, md5 FROM file_facts").fetchall()
        t = time.perf_counter()
        values = {i.value for i in ind}
        hits = sum(1 for r in rows if r[0] in values or r[1] in values or r[2] in values)
        base = time.perf_counter() - t
        print(
            f"taintline retroactive match: {count:,} new indicators x {records:,} stored records"
            f" in {elapsed:.3f} s; {result.matched:,} records matched, {result.new_findings:,}"
            f" findings recorded"
        )
        print(f"python set-lookup baseline (no findings built): {base:.3f} s; {hits:,} records")
        print(
            f"ratio taintline/baseline time: {elapsed / base:.2f}x; target < 2 s:"
            f" {'met' if elapsed < 2 else 'NOT met'}; peak RSS"
            f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
