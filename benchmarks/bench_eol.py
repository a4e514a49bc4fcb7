"""Benchmark end-of-life matching.

1. Writes 500 generated endoflife.date product Markdown files (3-8 cycles each, some with
   purl/cpe identifiers) into /tmp and reads them into a case (``intel add`` of the folder).
2. Generates an inventory of 10 million rows (100,000 hosts x 100 programs; 60 % of the rows
   are products with end-of-life data, spelled several ways, some with a purl or a cpe, the
   rest unrelated software) as Arrow columns, and times :func:`taintline.eol.match.match`
   plus the per-product summary and the finding count, with the peak resident memory.
3. Baseline in the same run: a straightforward per-row Python matcher (normalise the name
   with ``re``, look the product up in a dict, resolve the cycle for every row) on a sample,
   extrapolated to the full size, and a check that both agree on the sample.

Usage: python benchmarks/bench_eol.py [--quick] [--rows N] [--hosts N] [--products N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from taintline.case import Case
from taintline.eol import findings as eol_findings
from taintline.eol.match import Catalogue, connect, match
from taintline.eol.versions import CycleIndex
from taintline.intel.store import eol_products, eol_records, ingest

# The builders the demo does not need live with the tests (tests/builders).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.builders.endoflife import Cycle, Product, product_markdown

OUT = Path("/tmp/taintline-bench-eol")
AS_OF = date(2026, 11, 1)


class PeakRss:
    """Samples this process's resident memory every 20 ms (peak of a phase)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(0.02)

    def __enter__(self) -> PeakRss:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def products(n: int, rng: np.random.Generator) -> list[Product]:
    out = []
    for i in range(n):
        majors = int(rng.integers(3, 9))
        minor_scheme = i % 3 == 0  # a third use major.minor cycles
        cycles = []
        for m in range(majors):
            name = f"{m + 1}.{int(rng.integers(0, 5))}" if minor_scheme else str(m + 1)
            start = date(2010 + m, 1 + i % 12, 1)
            end: date | bool = date(2013 + m * 2, 1 + i % 12, 28)
            if m == majors - 1:
                end = False  # the newest cycle is supported
            cycles.append(Cycle(name, start, eol=end, latest=f"{name}.9"))
        purls = (f"pkg:generic/vendor{i}/product{i}",) if i % 4 == 0 else ()
        cpes = (f"cpe:2.3:a:vendor{i}:product{i}",) if i % 5 == 0 else ()
        out.append(
            Product(f"product{i}", f"Product {i} Suite", tuple(cycles), purls=purls, cpes=cpes)
        )
    return out


def inventory(
    n_rows: int, n_hosts: int, catalogue: list[Product], rng: np.random.Generator
) -> pa.Table:
    """Dictionary-encoded columns built from pools (what a columnar reader would produce)."""
    names: list[str] = []
    versions: list[str] = []
    purls: list[str | None] = []
    cpes: list[str | None] = []
    for i, p in enumerate(catalogue):
        for c in p.cycles:
            for spelling in (p.title, f"product{i}", f"Product {i} Suite {c.name}.3 (x64)"):
                names.append(spelling)
                versions.append(f"{c.name}.3")
                purls.append(f"{p.purls[0]}@{c.name}.3" if p.purls else None)
                cpes.append(f"{p.cpes[0]}:{c.name}.3:*:*:*:*:*:*:*" if p.cpes else None)
        names.append(p.title)  # a version newer than every cycle
        versions.append("99.0")
        purls.append(None)
        cpes.append(None)
    known = len(names)
    for j in range(known * 2 // 3):  # unrelated software
        names.append(f"Unrelated Tool {j}")
        versions.append(f"{j % 7}.{j % 11}")
        purls.append(None)
        cpes.append(None)
    pool = len(names)
    is_known = rng.random(n_rows) < 0.6
    pick = np.where(
        is_known, rng.integers(0, known, n_rows), rng.integers(known, pool, n_rows)
    ).astype(np.int32)
    hosts = pa.array([f"host-{h:06d}" for h in range(n_hosts)], pa.string())
    host_idx = (np.arange(n_rows) % n_hosts).astype(np.int32)
    installed = np.datetime64("2012-01-01T00:00:00", "us") + rng.integers(
        0, 14 * 365 * 86_400, n_rows
    ).astype("timedelta64[s]").astype("timedelta64[us]")
    return pa.table(
        {
            "host": pa.DictionaryArray.from_arrays(pa.array(host_idx), hosts),
            "name": pa.DictionaryArray.from_arrays(pa.array(pick), pa.array(names, pa.string())),
            "version": pa.DictionaryArray.from_arrays(
                pa.array(pick), pa.array(versions, pa.string())
            ),
            "purl": pa.DictionaryArray.from_arrays(pa.array(pick), pa.array(purls, pa.string())),
            "cpe": pa.DictionaryArray.from_arrays(pa.array(pick), pa.array(cpes, pa.string())),
            "installed_at": pa.array(installed, pa.timestamp("us")),
        }
    )


def naive(rows: list[dict[str, object]], cat: Catalogue) -> dict[str, int]:
    """A per-row Python matcher: the way a quick script would do it (dict lookups, but every
    row normalised and resolved on its own)."""
    name_of: dict[str, str] = {}
    purl_of: dict[str, str] = {}
    cpe_of: dict[str, str] = {}
    for product, how, key in zip(
        *(cat.keys.column(c).to_pylist() for c in ("product", "how", "key")), strict=True
    ):
        if how == "name":
            name_of.setdefault(re.sub(r"[^a-z0-9]+", "", key.lower()), product)
        elif how == "purl":
            purl_of[key.lower()] = product
        else:
            cpe_of[":".join(key.lower().split(":")[2:5])] = product
    cycles: dict[str, list[str]] = {}
    for product, cycle in zip(
        cat.cycles.column("product").to_pylist(),
        cat.cycles.column("cycle").to_pylist(),
        strict=True,
    ):
        cycles.setdefault(product, []).append(cycle)
    counts: dict[str, int] = {}
    for row in rows:
        name = str(row["name"] or "")
        product = None
        if row["purl"]:
            product = purl_of.get(re.sub(r"[@?#].*$", "", str(row["purl"]).lower()))
        if product is None and row["cpe"]:
            product = cpe_of.get(":".join(str(row["cpe"]).lower().split(":")[2:5]))
        if product is None:
            product = name_of.get(re.sub(r"[^a-z0-9]+", "", name.lower()))
        if product is None:
            cleaned = re.sub(r"\([^)]*\)|\b\d+(\.\d+)+\S*", " ", name.lower())
            product = name_of.get(re.sub(r"[^a-z0-9]+", "", cleaned))
        if product is None:
            continue
        resolution = CycleIndex(cycles.get(product, [])).resolve(str(row["version"] or ""))
        key = f"{product}:{resolution.cycle}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--sample", type=int, default=100_000)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.hosts, args.products, args.sample = 200_000, 2_000, 100, 50_000
    rng = np.random.default_rng(7)
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "products").mkdir(parents=True)
    catalogue_products = products(args.products, rng)
    for p in catalogue_products:
        (OUT / "products" / f"{p.name}.md").write_text(product_markdown(p))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"(load average {load} when the run started; {os.cpu_count()} cores)")
    t0, c0 = time.perf_counter(), time.process_time()
    with Case(":memory:") as case:  # no fsync per file: the readers are measured
        report = ingest(case, [OUT / "products"])
        cat = Catalogue.build(eol_products(case), eol_records(case))
    t_data, c_data = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"end-of-life data: {len(report.files)} Markdown files, {cat.cycles.num_rows} cycles,"
        f" {len(report.problems)} problems, read in {t_data:.2f} s ({c_data:.2f} s CPU)"
    )
    t0 = time.perf_counter()
    table = inventory(args.rows, args.hosts, catalogue_products, rng)
    print(
        f"inventory: {table.num_rows:,} rows, {args.hosts:,} hosts, generated in {time.perf_counter() - t0:.1f} s"
    )
    with PeakRss() as rss:
        t0, c0 = time.perf_counter(), time.process_time()
        con = connect()
        matches = match(table, cat, AS_OF, con=con)
        t_match = time.perf_counter() - t0
        rows = eol_findings.summary(matches)
        n_findings = eol_findings.finding_count(matches)
        t_total, c_total = time.perf_counter() - t0, time.process_time() - c0
        matched = matches.count()
    eol_hosts = sum(r.hosts for r in rows if r.status == "end-of-life")
    print(
        f"taintline: matched {matched:,} of {table.num_rows:,} rows in {t_match:.2f} s,"
        f" with summary and finding count {t_total:.2f} s ({table.num_rows / t_total / 1e6:.2f} M rows/s);"
        f" {c_total:.2f} s CPU over all threads; peak RSS {rss.peak / 2**30:.2f} GiB"
        " (targets: < 30 s, < 2 GiB)"
    )
    print(
        f"  {len(rows)} product/cycle/status lines, {n_findings:,} findings,"
        f" {eol_hosts:,} host-cycle pairs past end of life"
    )
    sample = table.slice(0, args.sample)
    sample_rows = sample.to_pylist()
    t0, c0 = time.perf_counter(), time.process_time()
    counts = naive(sample_rows, cat)
    t_naive, c_naive = time.perf_counter() - t0, time.process_time() - c0
    per_row = t_naive / len(sample_rows)
    con2 = connect()
    m2 = match(sample, cat, AS_OF, con=con2)
    mine = {
        f"{p}:{c}": int(n)
        for p, c, n in con2.execute(
            "SELECT product, cycle, count(*) FROM tl_matches GROUP BY ALL"
        ).fetchall()
    }
    assert m2.count() == sum(counts.values())
    agree = mine == counts
    print(
        f"baseline (per-row Python): {len(sample_rows):,} rows in {t_naive:.2f} s"
        f" ({c_naive:.2f} s CPU) -> {per_row * table.num_rows:.0f} s extrapolated for"
        f" {table.num_rows:,} rows; taintline is {per_row * table.num_rows / t_total:.1f}x"
        f" faster (CPU: {c_naive / len(sample_rows) * table.num_rows / c_total:.1f}x);"
        f" same product/cycle counts on the sample: {agree}"
    )


if __name__ == "__main__":
    main()
