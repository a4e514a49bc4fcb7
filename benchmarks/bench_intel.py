"""Intel ingestion benchmark: 1,000,000 indicators from CSV and from a STIX 2.1 bundle.

    python benchmarks/bench_intel.py            # full size (1M indicators)
    python benchmarks/bench_intel.py --quick    # 50k, for a smoke run

Each measured ingest runs in its own child process (fresh case under /tmp) so its peak
memory (ru_maxrss) is its own. Baselines are measured in the same run:

* CSV: the plain ``csv`` module reading the file into a ``set`` of lower-cased values (no
  validation, no storage: a lower bound for a naive Python reader), and taintline's own
  per-value Python path (``classify`` + ``Case.add_indicators``) on a slice, extrapolated;
* STIX: ``stix2.parse`` on a 20k-object slice and full ``stix2-patterns`` validation per
  pattern on a 5k slice, both extrapolated to the full size.

Targets (docs/intel.md): >= 200,000 indicators/s from CSV, >= 20,000/s from STIX, peak
memory < 1 GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

WORKDIR = Path("/tmp/taintline-bench-intel")


def _values(n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for i in range(n):
        r = rng.random()
        if r < 0.40:
            out.append(("sha256", f"{rng.getrandbits(256):064x}"))
        elif r < 0.55:
            out.append(("sha1", f"{rng.getrandbits(160):040x}"))
        elif r < 0.70:
            out.append(("md5", f"{rng.getrandbits(128):032x}"))
        elif r < 0.85:
            out.append(("domain", f"host{i}.ex{rng.randrange(1000)}ample.com"))
        elif r < 0.95:
            out.append(
                (
                    "ipv4",
                    f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                )
            )
        else:
            out.append(("url", f"https://cdn{i}.example.net/path/{i}/file.bin"))
    # a sprinkle of values only the slow path handles (defanged, upper-case, IDNA)
    for j in range(0, n, 1000):
        kind, value = out[j]
        if kind == "domain":
            out[j] = (kind, value.replace(".", "[.]", 1))
        elif kind == "sha256":
            out[j] = (kind, value.upper())
    return out


def make_csv(path: Path, values: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        handle.write("# benchmark IOC list\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["value", "type", "description"])
        for i, (kind, value) in enumerate(values):
            writer.writerow([value, kind, f"row {i}"])


_STIX_PATHS = {
    "sha256": "file:hashes.'SHA-256'",
    "sha1": "file:hashes.'SHA-1'",
    "md5": "file:hashes.MD5",
    "domain": "domain-name:value",
    "ipv4": "ipv4-addr:value",
    "url": "url:value",
}


def make_stix(path: Path, values: list[tuple[str, str]]) -> None:
    """Written with orjson (the stix2 library would take minutes for a million objects)."""
    with path.open("wb") as handle:
        handle.write(
            b'{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":['
        )
        campaign = "campaign--00000000-0000-4000-8000-000000000001"
        handle.write(
            orjson.dumps(
                {
                    "type": "campaign",
                    "spec_version": "2.1",
                    "id": campaign,
                    "created": "2023-03-30T00:00:00.000Z",
                    "modified": "2023-03-30T00:00:00.000Z",
                    "name": "Benchmark campaign",
                }
            )
        )
        for i, (kind, value) in enumerate(values):
            ident = f"indicator--{i:08x}-0000-4000-8000-{i:012x}"
            if i % 1000 == 1:
                pattern = f"[{_STIX_PATHS[kind]} = '{value}'] AND [file:name = 'f{i}.exe']"
            else:
                pattern = f"[{_STIX_PATHS[kind]} = '{value}']"
            obj = {
                "type": "indicator",
                "spec_version": "2.1",
                "id": ident,
                "created": "2023-03-30T00:00:00.000Z",
                "modified": "2023-03-30T00:00:00.000Z",
                "name": f"indicator {i}",
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": "2023-03-30T00:00:00Z",
                "confidence": 70,
                "indicator_types": ["malicious-activity"],
            }
            handle.write(b"," + orjson.dumps(obj))
            if i % 10_000 == 0:
                rel = {
                    "type": "relationship",
                    "spec_version": "2.1",
                    "id": f"relationship--{i:08x}-0000-4000-8000-{i:012x}",
                    "created": "2023-03-30T00:00:00.000Z",
                    "modified": "2023-03-30T00:00:00.000Z",
                    "relationship_type": "indicates",
                    "source_ref": ident,
                    "target_ref": campaign,
                }
                handle.write(b"," + orjson.dumps(rel))
        handle.write(b"]}")


def child(kind: str, path: Path, case_path: Path) -> None:
    """Run one ingest in this (child) process and print a JSON result line."""
    from taintline.case import Case
    from taintline.intel.store import ingest

    case_path.unlink(missing_ok=True)
    with Case(case_path) as case:
        start = time.perf_counter()
        report = ingest(case, [path])
        elapsed = time.perf_counter() - start
        stored = case.indicator_count()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "kind": kind,
                "seconds": elapsed,
                "read": sum(f.read_total for f in report.files),
                "stored": stored,
                "problems": len(report.problems),
                "maxrss_mb": maxrss_mb,
            }
        )
    )


def run_child(kind: str, path: Path) -> dict[str, float]:
    case_path = WORKDIR / f"case-{kind}.duckdb"
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(case_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    case_path.unlink(missing_ok=True)
    return result


def baseline_csv_set(path: Path) -> float:
    start = time.perf_counter()
    seen: set[str] = set()
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            if row and not row[0].startswith("#"):
                seen.add(row[0].strip().lower())
    return time.perf_counter() - start


def baseline_python_path(values: list[tuple[str, str]], sample: int) -> float:
    """taintline's own per-value path (classify + Indicator + add_indicators) on a slice."""
    from taintline.case import Case
    from taintline.intel.normalize import classify
    from taintline.model import Indicator

    case_path = WORKDIR / "case-python.duckdb"
    case_path.unlink(missing_ok=True)
    start = time.perf_counter()
    with Case(case_path) as case:
        batch = []
        for _, value in values[:sample]:
            try:
                kind, norm = classify(value)
            except ValueError:
                continue
            batch.append(Indicator(type=kind, value=norm, source="bench.csv"))
        case.add_indicators(batch)
    elapsed = time.perf_counter() - start
    case_path.unlink(missing_ok=True)
    return elapsed


def baseline_stix2_parse(path: Path, sample: int) -> float:
    import stix2

    from taintline.intel.jsonstream import iter_top_level

    objects = []
    with path.open("rb") as handle:
        for kind, obj in iter_top_level(handle, "objects"):
            if kind == "item" and obj.get("type") == "indicator":
                objects.append(obj)
                if len(objects) >= sample:
                    break
    text = json.dumps(
        {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000009", "objects": objects}
    )
    start = time.perf_counter()
    stix2.parse(text, allow_custom=False)
    return time.perf_counter() - start


def baseline_pattern_validation(values: list[tuple[str, str]], sample: int) -> float:
    from stix2patterns.validator import run_validator

    patterns = [f"[{_STIX_PATHS[k]} = '{v}']" for k, v in values[:sample]]
    start = time.perf_counter()
    for pattern in patterns:
        run_validator(pattern, stix_version="2.1")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50k indicators instead of 1M")
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "PATH", "CASE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0

    n = 50_000 if args.quick else 1_000_000
    WORKDIR.mkdir(parents=True, exist_ok=True)
    values = _values(n)
    csv_path, stix_path = WORKDIR / "iocs.csv", WORKDIR / "bundle.json"
    t = time.perf_counter()
    make_csv(csv_path, values)
    make_stix(stix_path, values)
    print(
        f"generated {n:,} indicators in {time.perf_counter() - t:.1f}s: "
        f"CSV {csv_path.stat().st_size / 1e6:.0f} MB, STIX {stix_path.stat().st_size / 1e6:.0f} MB (under {WORKDIR})"
    )

    results = {}
    for kind, path in (("csv", csv_path), ("stix", stix_path)):
        r = run_child(kind, path)
        results[kind] = r
        rate = r["read"] / r["seconds"]
        print(
            f"taintline {kind:4}: {r['read']:,} indicators read, {r['stored']:,} stored, "
            f"{r['problems']} problems in {r['seconds']:.2f}s = {rate:,.0f} indicators/s; "
            f"peak RSS {r['maxrss_mb']:.0f} MB"
        )

    csv_rate = results["csv"]["read"] / results["csv"]["seconds"]
    stix_rate = results["stix"]["read"] / results["stix"]["seconds"]

    base_set = baseline_csv_set(csv_path)
    set_rate = n / base_set
    print(
        f"baseline csv module + set (no validation, no storage): {base_set:.2f}s = {set_rate:,.0f} values/s"
        f" -> taintline is {csv_rate / set_rate:.2f}x of it"
    )
    sample = min(n, 200_000)
    python_path = baseline_python_path(values, sample)
    python_rate = sample / python_path
    print(
        f"baseline per-value Python path (classify + add_indicators), {sample:,}-row slice: "
        f"{python_rate:,.0f} indicators/s ({n:,} extrapolated {n / python_rate:.1f}s)"
        f" -> vectorised CSV path is {csv_rate / python_rate:.1f}x faster"
    )

    parse_sample = min(n, 20_000)
    parse_time = baseline_stix2_parse(stix_path, parse_sample)
    parse_rate = parse_sample / parse_time
    print(
        f"baseline stix2.parse on a {parse_sample:,}-object slice: {parse_time:.2f}s = {parse_rate:,.0f} objects/s"
        f" ({n:,} extrapolated {n / parse_rate:.0f}s) -> taintline STIX is {stix_rate / parse_rate:.1f}x faster"
    )
    val_sample = min(n, 5_000)
    val_time = baseline_pattern_validation(values, val_sample)
    val_rate = val_sample / val_time
    print(
        f"baseline stix2-patterns validation per pattern, {val_sample:,} patterns: "
        f"{val_time / val_sample * 1e6:.0f} us/pattern = {val_rate:,.0f}/s ({n:,} extrapolated {n / val_rate:.0f}s)"
        f" -> fast path is {stix_rate / val_rate:.1f}x faster"
    )

    ok_csv = csv_rate >= 200_000
    ok_stix = stix_rate >= 20_000
    ok_mem = max(r["maxrss_mb"] for r in results.values()) < 1024
    print(
        f"targets: CSV >= 200,000/s {'PASS' if ok_csv else 'MISS'}; STIX >= 20,000/s "
        f"{'PASS' if ok_stix else 'MISS'}; peak memory < 1 GB {'PASS' if ok_mem else 'MISS'}"
    )
    shutil.rmtree(WORKDIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
