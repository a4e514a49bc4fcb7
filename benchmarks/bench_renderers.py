"""Renderer benchmark: every output format writing 100,000 findings (``bench_report`` times
the person's HTML/Markdown report on a big case).

    python benchmarks/bench_renderers.py            # 100,000 findings (and a 10,000 run for the ratio)
    python benchmarks/bench_renderers.py --quick    # 10,000 and 1,000, for a smoke run

The findings are a realistic mix: hunt sightings (a host that contacted an indicator, the
shape that becomes STIX sightings), scan hash hits inside containers and ``error.*`` findings
(STIX file observables and notes). Every format (table, jsonl, csv, sarif, stix, html) writes
to a file under /tmp. Measured in the same run:

* the baseline: ``orjson`` dumping the same findings as plain dicts (a lower bound for any
  writer of them);
* each format at N and at N/10: a linear renderer takes about 10x as long for 10x the
  findings (the old STIX renderer took 0.8 s for 49 findings and 300 s for 2,814).

Target (issue 12): every format under 30 s for 100,000 findings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from taintline.model import Finding, FindingSource, Severity, iso
from taintline.report import FORMATS, RenderContext, render_findings

WORKDIR = Path("/tmp/taintline-bench-renderers")
TARGET_S = 30.0


def findings(n: int) -> list[Finding]:
    t0 = datetime(2023, 3, 29, 9, 40, tzinfo=UTC)
    out: list[Finding] = []
    for i in range(n):
        when = t0 + timedelta(seconds=i)
        kind = i % 4
        if kind in (0, 1):  # hunt sighting: host x indicator
            host = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
            key = f"domain:c2-{i % 500}.example.net" if kind == 0 else f"ipv4:203.0.113.{i % 250}"
            out.append(
                Finding(
                    kind="network.ioc.domain" if kind == 0 else "network.ioc.ip",
                    severity=Severity.HIGH,
                    subject=host,
                    message=f"{host} contacted {key}: 3 time(s)",
                    source=FindingSource.HUNT,
                    host=host,
                    time=when,
                    evidence={
                        "first_seen": iso(when),
                        "last_seen": iso(when + timedelta(minutes=5)),
                        "count": 3,
                        "indicator": key,
                        "locations": [f"/logs/dns.{i % 24:02d}.log:{i}"],
                    },
                    indicators=(key,),
                )
            )
        elif kind == 2:  # scan: a known-bad hash inside an installer
            digest = f"{i:064x}"
            out.append(
                Finding(
                    kind="ioc.hash",
                    severity=Severity.CRITICAL,
                    subject=f"/srv/share/setup-{i}.msi!/files.cab!/ffmpeg-{i}.dll",
                    message="SHA-256 matches a known-bad file indicator",
                    source=FindingSource.SCAN,
                    host="fileserver-1",
                    time=when,
                    evidence={"sha256": digest, "size": 1000 + i},
                    indicators=(f"sha256:{digest}",),
                )
            )
        else:  # an error about one item
            out.append(
                Finding(
                    kind="error.archive-bomb",
                    severity=Severity.MEDIUM,
                    subject=f"/srv/share/bundle-{i}.zip!/member-{i}.bin",
                    message="compression ratio over the limit; not extracted",
                    source=FindingSource.SCAN,
                    host="fileserver-1",
                    time=when,
                    evidence={"ratio": 1500.0},
                )
            )
    return out


def _baseline(items: list[Finding], path: Path) -> float:
    start = time.perf_counter()
    with path.open("wb") as out:
        for f in items:
            out.write(
                orjson.dumps(
                    {
                        "kind": f.kind,
                        "severity": f.severity,
                        "subject": f.subject,
                        "message": f.message,
                        "host": f.host,
                        "time": f.time,
                        "evidence": f.evidence,
                        "indicators": f.indicators,
                    }
                )
            )
            out.write(b"\n")
    return time.perf_counter() - start


def _render(fmt: str, items: list[Finding], path: Path) -> float:
    start = time.perf_counter()
    with path.open("w", encoding="utf-8") as out:
        render_findings(items, fmt, out, RenderContext(command="report", title="bench"))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 findings")
    parser.add_argument("--formats", nargs="*", default=list(FORMATS), help="formats to run")
    args = parser.parse_args(argv)
    n = 10_000 if args.quick else 100_000
    small = n // 10
    WORKDIR.mkdir(parents=True, exist_ok=True)
    big, little = findings(n), findings(small)
    base = _baseline(big, WORKDIR / "baseline.jsonl")
    print(f"findings: {n:,} (ratio run: {small:,}); load average {os.getloadavg()[0]:.2f}")
    print(f"baseline orjson dicts: {base:7.2f} s")
    print(
        f"{'format':7} {'time':>9} {'x baseline':>11} {'time N/10':>10} {'N vs N/10':>10} {'MB':>7}"
    )
    failed = []
    for fmt in args.formats:
        _render(fmt, little[:100], WORKDIR / f"warm.{fmt}")  # imports (stix2, jinja2)
        t_small = _render(fmt, little, WORKDIR / f"small.{fmt}")
        path = WORKDIR / f"out.{fmt}"
        t_big = _render(fmt, big, path)
        size = path.stat().st_size / 1e6
        growth = t_big / t_small if t_small > 0 else float("nan")
        mark = "" if t_big < TARGET_S * n / 100_000 else "  NOT MET"
        if mark:
            failed.append(fmt)
        print(
            f"{fmt:7} {t_big:8.2f}s {t_big / base:10.1f}x {t_small:9.2f}s {growth:9.1f}x"
            f" {size:7.1f}{mark}",
            flush=True,
        )
    target = f"target: every format under {TARGET_S * n / 100_000:.0f} s for {n:,} findings"
    print(f"{target}: {'met' if not failed else 'NOT met for ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
