"""Benchmark: incremental re-scans and retroactive filename-regex matching (issue 17).

Generates (under /tmp) a tree of many small files and jars full of small members (a share of
them the same class in several jars) and the generated 1,000-rule set of ``bench_scan.py``,
then times, in one run:

* ``taintline scan`` of the tree, first time (2 workers; the baseline of the re-scans);
* ``yara -r -p 2`` on the tree (classic YARA, rules precompiled with ``yarac``), if installed;
* the re-scan of the unchanged tree (nothing read);
* the re-scan after 100 rules were added (YARA only: every file read, no hash or analyser);
* the re-scan after 1 % of the files changed;
* the retroactive match of 100 new filename regexes against every stored record;
* the command line: ``taintline --help`` (start-up alone) and ``taintline scan`` re-scanning
  the unchanged tree (start-up included), each in a child process, with their CPU time.

    python benchmarks/bench_rescan.py           # 15,000 files + 100 jars of 200 members
    python benchmarks/bench_rescan.py --quick   # 2,000 files + 10 jars
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_scan import make_rules
from taintline.case import Case
from taintline.model import Indicator, IndicatorType
from taintline.scan.cache import RACY_NS
from taintline.scan.engine import ScanOptions, ScanResult, scan_paths
from taintline.scan.retro import match_stored


def make_tree(root: Path, files: int, jars: int, members: int) -> None:
    rng = random.Random(17)
    classes = [rng.randbytes(rng.randint(600, 6000)) for _ in range(members * 2)]
    for i in range(files):
        sub = root / f"pkg{i // 300:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        size = rng.randint(512, 48 * 1024)
        data = rng.randbytes(size) if i % 3 else (b"word %d " % i) * (size // 8)
        (sub / f"mod{i}.{'py' if i % 3 == 0 else 'so'}").write_bytes(data)
    for j in range(jars):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for k in range(members):
                # half the members are shared with other jars (the same class in two jars)
                body = classes[k] if k % 2 else classes[members + (j * members + k) % members]
                zf.writestr(f"org/example/j{j}/C{k}.class", b"\xca\xfe\xba\xbe\0\0\0\x34" + body)
        (root / f"lib{j:03d}.jar").write_bytes(buffer.getvalue())


def timed_scan(case: Case, tree: Path, rules: Path) -> tuple[float, ScanResult]:
    options = ScanOptions(workers=2, rule_files=(rules,), ensure_intel=False, host="bench")
    started = time.perf_counter()
    result = scan_paths([tree], case, options)
    return time.perf_counter() - started, result


def yara_baseline(tree: Path, rules: Path, folder: Path) -> float | None:
    if not shutil.which("yara") or not shutil.which("yarac"):
        return None
    compiled = folder / "rules.yarc"
    externals = ("filename", "filepath", "extension", "filetype", "owner")
    defines = [arg for name in externals for arg in ("-d", f"{name}=")]
    subprocess.run(["yarac", *defines, str(rules), str(compiled)], check=True)
    started = time.perf_counter()
    subprocess.run(
        ["yara", "-C", "-r", "-p", "2", *defines, str(compiled), str(tree)],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def child(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of a child process; its last line on stderr is
    shown."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, _, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - started
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    if lines:
        print(f"  ({lines[-1]})")
    return took, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    files, jars, members = (2_000, 10, 200) if args.quick else (15_000, 100, 200)
    folder = Path(tempfile.mkdtemp(prefix="taintline-bench-rescan-"))
    try:
        tree = folder / "tree"
        make_tree(tree, files, jars, members)
        rules = folder / "rules.yar"
        make_rules(rules, 1000)
        more = folder / "more.yar"
        more.write_text(
            rules.read_text()
            + "\n".join(
                f'rule added_{i} {{ strings: $a = "added-rule-{i}-marker" condition: $a }}'
                for i in range(100)
            )
        )
        time.sleep(RACY_NS / 1e9)
        print(f"tree: {files:,} files + {jars} jars of {members} members; 1,000+ rules")
        print(f"load average: {os.getloadavg()[0]:.2f} (machine shared with other work)")
        with Case(folder / "case.duckdb") as case:
            first, r1 = timed_scan(case, tree, rules)
            print(
                f"taintline first scan: {first:.2f} s ({r1.files:,} files, {r1.members:,} members)"
            )
            base = yara_baseline(tree, rules, folder)
            if base is not None:
                print(f"yara -r -p 2 on the tree: {base:.2f} s")
            again, r2 = timed_scan(case, tree, rules)
            line = f"re-scan, unchanged: {again:.2f} s ({r2.reuse_summary()});"
            line += f" {first / again:.1f}x faster than the first scan"
            if base is not None:
                line += f", {base / again:.1f}x faster than yara (target 10x)"
            print(line)
            newrules, r3 = timed_scan(case, tree, more)
            print(
                f"re-scan after 100 new rules (YARA only): {newrules:.2f} s"
                f" ({r3.reuse_summary()}); {first / newrules:.1f}x faster than the first scan"
            )
            rng = random.Random(5)
            changed = rng.sample(sorted(tree.rglob("*.so")), files // 100)
            for path in changed:
                path.write_bytes(path.read_bytes() + b"changed")
            time.sleep(RACY_NS / 1e9)
            edited, r4 = timed_scan(case, tree, more)
            print(
                f"re-scan after {len(changed)} files changed: {edited:.2f} s"
                f" ({r4.reuse_summary()}); {first / edited:.1f}x faster than the first scan"
            )
            records = case.con.execute("SELECT count(DISTINCT path) FROM file_facts").fetchall()
            since = datetime.now(UTC) - timedelta(seconds=1)
            case.add_indicators(
                Indicator(IndicatorType.FILENAME_REGEX, rf"\\pkg0{i:02d}\\mod\d+7\.so$", "bench")
                for i in range(100)
            )
            started = time.perf_counter()
            retro = match_stored(case, since=since)
            took = time.perf_counter() - started
            print(
                f"retroactive match of 100 filename regexes against {records[0][0]:,} stored"
                f" paths: {took:.3f} s ({retro.summary()})"
            )
        print(
            f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
        cli = [sys.executable, "-m", "taintline"]
        start_up = child([*cli, "--help"])
        print(f"taintline --help (CLI start-up): {start_up[0]:.2f} s, {start_up[1]:.2f} CPU s")
        case_path, out = str(folder / "case.duckdb"), os.devnull
        args = ["scan", str(tree), "--case", case_path, "--workers", "2", "--rules", str(more)]
        rescan = child([*cli, *args, "--host", "bench", "--format", "jsonl", "--output", out])
        line = f"taintline scan, re-scan of the unchanged tree from the command line: {rescan[0]:.2f} s"
        line += f", {rescan[1]:.2f} CPU s"
        if base is not None:
            line += f"; yara -r -p 2 / this: {base / rescan[0]:.1f}x (target 10x)"
        print(line)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
