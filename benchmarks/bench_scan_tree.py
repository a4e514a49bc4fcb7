"""Benchmark ``taintline scan`` on a real software tree against Debian's ``yara -r -p 2``.

The tree is a virtual environment with ``pyspark[sql]`` installed by pip (built once under
/tmp and reused; ``--tree PATH`` points at an existing tree instead): about a thousand
megabytes, thousands of files, and 330 jars holding some 180,000 members, the shape that made
per-member overhead matter (issue 17). The rules are the generated 1,000-rule set of
``bench_scan.py`` (its generator); taintline also loads its shipped campaign pack into the
empty case, so yara is given the same two rule files. taintline's bytecode is compiled first
(as pip does when it installs a wheel). In one run, with a warm page cache:

* ``yara -r -p 2`` on the tree (the files as they are on disk);
* ``yara -r -p 2`` on the same bytes: the tree plus every ZIP (jar, wheel) extracted beside
  it, recursively (the extraction, cached under /tmp, is not timed);
* taintline's first scan (a new case; jars opened, hashes, rules, analysers, 2 workers; the
  rules compiled and the pack read: the benchmark's own user cache starts empty);
* taintline's first scan with ``--max-depth 0`` (containers not opened; a new case, the
  rules and the pack's rows found in the user cache the first scan filled);
* taintline's re-scan of the unchanged tree (same case);
* taintline's re-scan after ``intel add`` of 100 hash indicators;
* the retroactive match of 100,000 new hash indicators against the records the first scan
  stored (:func:`taintline.scan.retro.match_stored`, timed in a child process).

The three short runs (``yara -r -p 2`` on the tree, ``--max-depth 0``, the re-scan) run in
``--rounds`` rounds (3), each round yara first, and their medians are compared: the VM's CPU
speed drifts by tens of percent within minutes, which one run of each put on one side of a
ratio.

Each run's peak memory is printed twice: the largest single process (``ru_maxrss`` from
``wait4``, which covers the worker processes) and the largest sum over the process tree
(sampled every 50 ms). The CPU time other processes used during each run is printed too: on a
shared 2-core machine a busy neighbour moves a run a lot. Every number is printed, met or not.

    python benchmarks/bench_scan_tree.py              # the venv under /tmp (pip, once)
    python benchmarks/bench_scan_tree.py --tree DIR   # any existing tree
    python benchmarks/bench_scan_tree.py --quick      # 20 of this venv's jars (no pip)
    python benchmarks/bench_scan_tree.py --hash-costs # only: what each hash costs here
    python benchmarks/bench_scan_tree.py --per-member # only: where a jar member's CPU goes
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import _busy_cpu_seconds, _tree_rss, make_rules

ROOT = Path("/tmp/taintline-bench-tree")
MB = 1_000_000
#: What is installed into the benchmark's virtual environment.
REQUIREMENT = "pyspark[sql]"
PACK = Path(__file__).resolve().parents[1] / "src/taintline/intel/packs/3cx-xtrader/3cx_xtrader.yar"


# -- the tree ------------------------------------------------------------------------------


def build_venv(folder: Path) -> Path:
    """A virtual environment with ``pyspark[sql]`` under ``folder`` (reused when complete)."""
    marker = folder / ".complete"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"tree: creating a virtual environment with {REQUIREMENT} in {folder} (pip) ...")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--prefer-binary"]
    subprocess.run([*pip, REQUIREMENT], check=True)
    marker.write_text(REQUIREMENT)
    return folder


def quick_tree(folder: Path) -> Path:
    """20 jars of the running interpreter's pyspark, hard-linked (no download)."""
    jars = sorted(Path(sys.prefix).glob("lib/python3*/site-packages/pyspark/jars/*.jar"))
    if not jars:
        raise SystemExit("--quick needs pyspark in the running environment; use --tree PATH")
    if not folder.exists():
        folder.mkdir(parents=True)
        for jar in jars[::16][:20]:
            try:
                os.link(jar, folder / jar.name)
            except OSError:
                shutil.copy2(jar, folder / jar.name)
    return folder


def _files(tree: Path) -> list[Path]:
    out = []
    for d, _, names in os.walk(tree):
        for name in names:
            p = Path(d, name)
            if p.is_file() and not p.is_symlink():
                out.append(p)
    return out


def _safe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return not name.startswith(("/", "\\")) and ".." not in parts and ":" not in parts[0]


def extract_beside(tree: Path, out: Path) -> tuple[int, int]:
    """``out``: the tree hard-linked, plus every ZIP in it (by content) extracted beside it
    as ``NAME.x/``, recursively; returns (files, bytes) of ``out``. Cached."""
    marker = out / ".complete"
    if not marker.exists():
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(tree), str(out)], check=True)
        pending = _files(out)
        while pending:
            path = pending.pop()
            try:
                with path.open("rb") as fh:
                    if fh.read(4) != b"PK\x03\x04":
                        continue
                target = path.with_name(path.name + ".x")
                with zipfile.ZipFile(path) as zf:
                    for info in zf.infolist():
                        if info.is_dir() or not _safe(info.filename):
                            continue
                        dest = target / info.filename
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, dest.open("wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        pending.append(dest)
            except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError):
                continue
        marker.write_text("done")
    files = [p for p in _files(out) if p != marker]
    return len(files), sum(p.stat().st_size for p in files)


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    seconds: float
    #: largest single process (ru_maxrss of the child, covering its waited-for workers)
    max_rss: int
    #: largest sum of RSS over the process tree, sampled every 50 ms
    tree_rss: int
    rc: int
    others_cpu: float
    #: CPU seconds (user + system) of the run's whole process tree (from ``wait4``)
    cpu: float = 0.0
    output: str = ""


def run(name: str, cmd: list[str], *, stdout: Path | None = None) -> Run:
    """Run ``cmd`` as a child; wall time, peak memory, CPU the rest of the machine used."""
    busy0, own0 = _busy_cpu_seconds(), os.times()
    out = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()
    err_chunks: list[bytes] = []

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.05)

    def drain() -> None:
        assert proc.stderr is not None
        err_chunks.append(proc.stderr.read())

    threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stdout is not None:
        out.close()  # type: ignore[union-attr]
    own1 = os.times()
    contender = (own1.children_user - own0.children_user) + (
        own1.children_system - own0.children_system
    )
    bench = (own1.user - own0.user) + (own1.system - own0.system)
    others = max(0.0, _busy_cpu_seconds() - busy0 - contender - bench)
    err = b"".join(err_chunks).decode(errors="replace")
    if proc.returncode not in (0, 1):
        print(f"  {name}: exit {proc.returncode}: {err[-600:]}")
    cpu = usage.ru_utime + usage.ru_stime
    r = Run(name, seconds, usage.ru_maxrss * 1024, peak, proc.returncode, others, cpu, err)
    print(
        f"  {name}: {seconds:.2f} s ({cpu:.2f} CPU s), exit {r.rc}, peak {r.max_rss / MB:.0f} MB"
        f" (process) / {r.tree_rss / MB:.0f} MB (tree), other processes {others:.1f} CPU s",
        flush=True,
    )
    return r


def median_run(runs: list[Run]) -> Run:
    """The runs of one kind as one: median wall and CPU time (of the runs each round gave),
    the largest peaks, the most CPU the rest of the machine took."""
    if len(runs) == 1:
        return runs[0]

    def middle(values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    return Run(
        f"{runs[0].name} (median of {len(runs)})",
        middle([r.seconds for r in runs]),
        max(r.max_rss for r in runs),
        max(r.tree_rss for r in runs),
        max(r.rc for r in runs),
        max(r.others_cpu for r in runs),
        middle([r.cpu for r in runs]),
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def hash_costs() -> None:
    """MB/s of each hash on one core (CPU time), large buffers and 4 KiB ones."""
    data = os.urandom(256 * 1024 * 1024)
    small = [random.Random(i).randbytes(4096) for i in range(20_000)]
    print(f"hash costs on one core (CPU time; load average {_load()}):")
    total_large = total_small = 0.0
    for name in ("sha256", "sha1", "md5"):
        large = min(_cpu(lambda n=name: hashlib.new(n, data).hexdigest()) for _ in range(3))
        ctor = getattr(hashlib, name)
        each = min(_cpu(lambda c=ctor: [c(d).hexdigest() for d in small]) for _ in range(3))
        total_large += large
        total_small += each
        print(
            f"  {name:7} {len(data) / large / MB:7.0f} MB/s large buffers;"
            f" {each / len(small) * 1e6:5.1f} us per 4 KiB buffer"
        )
    print(
        f"  all 3   {len(data) / total_large / MB:7.0f} MB/s large buffers;"
        f" {total_small / len(small) * 1e6:5.1f} us per 4 KiB buffer"
    )


def per_member(rules_path: Path, jars: list[Path], rounds: int = 3) -> None:
    """Where a jar member's CPU goes, in one process (best of ``rounds``, CPU time): each step
    alone over the members of ``jars``, then the worker as a whole with and without rules."""
    import pickle

    from taintline.limits import ScanLimits
    from taintline.scan import rules as rules_mod
    from taintline.scan.containers import Budget, ContainerKind, Member, expand
    from taintline.scan.hashes import hash_bytes
    from taintline.scan.interface import AnalysisContext, TaskResult
    from taintline.scan.magic import sniff
    from taintline.scan.reuse import ReuseConfig
    from taintline.scan.walk import FileTask
    from taintline.scan.worker import Worker, WorkerConfig, base_name

    sources = rules_mod.read_rule_files([rules_path, PACK])
    compiled = rules_mod.compile_rules(sources).data
    blobs = [(str(j), j.read_bytes()) for j in jars]
    members: list[tuple[str, str, bytes]] = []

    def inflate() -> None:
        members.clear()
        for path, blob in blobs:
            for m in expand(blob, ContainerKind.ZIP, path, path, Budget(ScanLimits())):
                if isinstance(m, Member):
                    members.append((f"{path}!/{m.name}", base_name(m.name), m.data))

    def best(fn: object) -> float:
        return min(_cpu(fn) for _ in range(rounds)) / max(len(members), 1) * 1e6

    steps = {"read the members (zipfile directory, libdeflate, CRC-32)": best(inflate)}
    scanner = rules_mod.RuleScanner(compiled, 10) if compiled else None
    steps["MD5 + SHA-1 + SHA-256"] = best(lambda: [hash_bytes(d) for _, _, d in members])
    steps["magic sniff"] = best(lambda: [sniff(d, n) for _, n, d in members])
    if scanner is not None:
        steps["YARA, members back to back"] = best(
            lambda: [
                scanner.scan(d, subject=p, name=n, filetype="", owner="") for p, n, d in members
            ]
        )
        steps["YARA, empty buffer (the fixed cost)"] = best(
            lambda: [
                scanner.scan(b"", subject=p, name=n, filetype="", owner="") for p, n, _ in members
            ]
        )

    def worker_run(rules: bytes | None) -> TaskResult:
        config = WorkerConfig(rules, ScanLimits(), AnalysisContext(), reuse=ReuseConfig("k", True))
        worker = Worker(config, hash_threads=False)
        worker.run_batch([FileTask(blobs[0][0], blobs[0][0], "t", 1, "me")])  # imports
        out = TaskResult([], [], 0, 0)
        start = time.process_time()
        for path, _ in blobs:
            worker.run_task(FileTask(path, path, "t", 1, "me"), out)
        out.bytes_read = int((time.process_time() - start) * 1e9)  # (smuggled out)
        worker.close()
        return out

    for label, rules in (("worker, with the rules", compiled), ("worker, --no-rules", None)):
        runs = [worker_run(rules) for _ in range(rounds)]
        steps[label] = min(r.bytes_read for r in runs) / 1e3 / len(runs[0].records)
    result = worker_run(compiled)
    steps["pickle + unpickle of the records (to the parent)"] = (
        min(_cpu(lambda: pickle.loads(pickle.dumps(result, -1))) for _ in range(rounds))
        / len(result.records)
        * 1e6
    )
    print(
        f"per member, {len(members):,} members of {len(jars)} jars, one process, CPU time, best of"
        f" {rounds} (load average {_load()}):"
    )
    for label, micros in steps.items():
        print(f"  {label:55} {micros:7.1f} us")


def _cpu(fn: object) -> float:
    assert callable(fn)
    start = time.process_time()
    fn()
    return time.process_time() - start


def retro_child(case: Path, count: int) -> int:
    """In a child process: add ``count`` new hash indicators and time the retroactive match."""
    from datetime import UTC, datetime, timedelta

    from taintline.case import Case
    from taintline.model import Indicator, IndicatorType
    from taintline.scan.retro import match_stored

    rng = random.Random(17)
    with Case(case) as c:
        stored = c.con.execute(
            "SELECT count(*), count(DISTINCT sha256) FROM (SELECT DISTINCT run_id, host, path,"
            " sha256 FROM file_facts)"
        ).fetchall()[0]
        known = [r[0] for r in c.con.execute(
            "SELECT DISTINCT sha256 FROM file_facts WHERE sha256 IS NOT NULL LIMIT 100"
        ).fetchall()]  # fmt: skip
        values = [*known, *(rng.randbytes(32).hex() for _ in range(count - len(known)))]
        since = datetime.now(UTC) - timedelta(seconds=1)
        t = time.perf_counter()
        c.add_indicators(Indicator(IndicatorType.SHA256, v, "bench-retro") for v in values)
        added = time.perf_counter() - t
        t = time.perf_counter()
        result = match_stored(c, since=since)
        elapsed = time.perf_counter() - t
    print(
        f"retro: {len(values):,} new indicators (added in {added:.2f} s) x {stored[0]:,} stored"
        f" records ({stored[1]:,} distinct contents): matched in {elapsed:.3f} s,"
        f" {result.matched:,} records, {result.new_findings:,} new findings"
    )
    print(f"RETRO_SECONDS={elapsed:.4f} RECORDS={stored[0]}")
    return 0


# -- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, help="an existing tree instead of the pip venv")
    parser.add_argument("--quick", action="store_true", help="20 jars of this venv, no pip")
    parser.add_argument("--rules", type=int, default=1000, help="generated rules")
    parser.add_argument("--hash-costs", action="store_true", help="only the hash costs")
    parser.add_argument(
        "--per-member", action="store_true", help="only: where a jar member's CPU goes"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the short runs (yara on the tree, --max-depth 0, re-scan), interleaved",
    )
    parser.add_argument("--retro-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--retro-count", type=int, default=100_000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.retro_child:
        return retro_child(args.retro_child, args.retro_count)
    if args.hash_costs:
        hash_costs()
        return 0
    if args.per_member:
        work = ROOT / "quick"
        make_rules(work / "rules.yar", args.rules)
        per_member(work / "rules.yar", sorted(quick_tree(work / "tree").glob("*.jar")))
        return 0
    if not shutil.which("yara") or not shutil.which("yarac"):
        print("Debian's yara is not installed (apt-get install yara)")
        return 2
    print(f"load average at start: {_load()} (2 cores, shared with other work)", flush=True)
    work = ROOT / ("quick" if args.quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    if args.tree:
        tree = args.tree.resolve()
    elif args.quick:
        tree = quick_tree(work / "tree")
    else:
        tree = build_venv(ROOT / "venv")
    files = _files(tree)
    n_files, n_bytes = len(files), sum(p.stat().st_size for p in files)
    jars = sum(1 for p in files if p.suffix == ".jar")
    print(f"tree: {tree}: {n_files:,} files, {n_bytes / MB:,.0f} MB, {jars} jars")
    extracted = work / "extracted"
    t = time.perf_counter()
    x_files, x_bytes = extract_beside(tree, extracted)
    print(
        f"same bytes: {extracted}: {x_files:,} files, {x_bytes / MB:,.0f} MB"
        f" (the tree plus every ZIP extracted beside it; {time.perf_counter() - t:.0f} s,"
        " not timed)",
        flush=True,
    )

    rules = work / "rules.yar"
    make_rules(rules, args.rules)
    externals = ["filename", "filepath", "extension", "filetype", "owner"]
    defines = [arg for name in externals for arg in ("-d", f"{name}=")]
    compiled = work / "rules.yarc"
    subprocess.run(["yarac", *defines, str(rules), str(PACK), str(compiled)], check=True)
    print(f"rules: {args.rules + 1} generated rules + the shipped 3CX pack (both for both tools)")

    # taintline's bytecode compiled, as pip compiles it when it installs a wheel: an editable
    # install (or PYTHONDONTWRITEBYTECODE) would compile every changed module at every start
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            str(Path(__file__).resolve().parents[1] / "src"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )
    for folder in (tree, extracted):  # a warm page cache for everyone
        subprocess.run(
            f"find {folder} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True
        )

    taintline = [sys.executable, "-m", "taintline"]
    # compiled rules and the campaign pack's rows are cached per user (taintline.cachedir):
    # an empty cache of the benchmark's own, so the first scan compiles the rules and reads
    # the pack's files; the runs after it find both, as a second scan with the same rules does
    user_cache = work / "user-cache"
    shutil.rmtree(user_cache, ignore_errors=True)
    shutil.rmtree(work / "rules-cache", ignore_errors=True)  # the name of an earlier version
    os.environ["TAINTLINE_CACHE_DIR"] = str(user_cache)
    case = work / "case.duckdb"
    shallow = work / "case-depth0.duckdb"
    for old in (case, shallow):
        for leftover in (old, Path(f"{old}.wal")):
            leftover.unlink(missing_ok=True)

    def scan(into: Path, *extra: str) -> list[str]:
        return [
            *taintline, "scan", str(tree), "--case", str(into), "--workers", "2",
            "--rules", str(rules), "--format", "jsonl", "--output", "/dev/null", *extra,
        ]  # fmt: skip

    yara_same = run("yara -r -p 2, same bytes", ["yara", "-r", "-p", "2", *defines, "-C", str(compiled), str(extracted)])  # fmt: skip
    first = run("taintline first scan", scan(case))
    # the short runs in rounds, each round yara then taintline: this VM's CPU speed drifts by
    # tens of percent within minutes (other tenants), which a single run of each put on one
    # side of the ratio; the medians are compared
    rounds: dict[str, list[Run]] = {"yara": [], "depth0": [], "rescan": []}
    for n in range(1, max(1, args.rounds) + 1):
        print(f"round {n}:")
        rounds["yara"].append(run("yara -r -p 2, the tree", ["yara", "-r", "-p", "2", *defines, "-C", str(compiled), str(tree)]))  # fmt: skip
        for leftover in (shallow, Path(f"{shallow}.wal")):
            leftover.unlink(missing_ok=True)  # a first scan each round
        rounds["depth0"].append(run("taintline first scan --max-depth 0", scan(shallow, "--max-depth", "0")))  # fmt: skip
        rounds["rescan"].append(run("taintline re-scan, unchanged", scan(case)))
    yara_tree, depth0, rescan = (median_run(rounds[k]) for k in ("yara", "depth0", "rescan"))
    iocs = work / "hundred.txt"
    rng = random.Random(100)
    iocs.write_text("".join(f"{rng.randbytes(32).hex()}\n" for _ in range(100)))
    add = run("taintline intel add (100 hashes)", [*taintline, "intel", "add", str(iocs), "--case", str(case)])  # fmt: skip
    after = run("taintline re-scan, +100 indicators", scan(case))
    retro = run(
        "retroactive match (child)",
        [sys.executable, __file__, "--retro-child", str(case)],
        stdout=work / "retro.txt",
    )
    retro_text = (work / "retro.txt").read_text()
    print("  " + retro_text.splitlines()[0] if retro_text else "  (no retro output)")
    retro_s = float(retro_text.split("RETRO_SECONDS=")[1].split()[0]) if "RETRO_SECONDS=" in retro_text else float("nan")  # fmt: skip
    records = int(retro_text.split("RECORDS=")[1].split()[0]) if "RECORDS=" in retro_text else 0

    print()
    print(f"tree {n_files:,} files / {n_bytes / MB:,.0f} MB; same bytes {x_files:,} files / {x_bytes / MB:,.0f} MB; {args.rules + 1} rules + pack; 2 cores")  # fmt: skip
    print(
        f"{'run':50} {'seconds':>8} {'CPU s':>8} {'peak proc':>10} {'peak tree':>10}"
        f" {'others CPU':>11}"
    )
    for r in (yara_tree, yara_same, first, depth0, rescan, add, after, retro):
        print(
            f"{r.name:50} {r.seconds:8.2f} {r.cpu:8.2f} {r.max_rss / MB:8.0f}MB"
            f" {r.tree_rss / MB:8.0f}MB {r.others_cpu:10.1f}s"
        )
    print("(CPU s: user + system time of the run's process tree; others CPU: what the rest of")
    print(" the machine used meanwhile. On a busy machine compare CPU s: wall time is noise.)")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print()

    def compare(label: str, base: Run, ours: Run, target: float | None) -> None:
        ratio, by_cpu = base.seconds / ours.seconds, base.cpu / max(ours.cpu, 1e-9)
        goal = f" (target >= {target:g}x: {verdict(ratio >= target)})" if target else ""
        print(f"{label}: {ratio:.2f}x by wall time{goal}; {by_cpu:.2f}x by CPU time")

    compare("first scan vs yara on the same bytes", yara_same, first, 1.5)
    compare("--max-depth 0 vs yara on the tree", yara_tree, depth0, 1.0)
    compare("re-scan (unchanged) vs yara on the tree", yara_tree, rescan, 10)
    compare("re-scan (+100 indicators) vs yara on the tree", yara_tree, after, None)
    print(f"retroactive match: 100,000 indicators x {records:,} records in {retro_s:.3f} s (target < 2 s: {verdict(retro_s < 2)})")  # fmt: skip
    peak = max(r.tree_rss for r in (first, depth0, rescan, after, retro))
    print(f"taintline peak memory (process tree): {peak / MB:.0f} MB (target < 1000 MB: {verdict(peak < 1000 * MB)})")  # fmt: skip
    print(f"load average at end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
