"""Benchmark ``taintline scan`` against Debian's ``yara -r -p 2`` and ``sha256sum``.

Generates (once, cached under /tmp) a mixed corpus (PE-like binaries, ZIPs, images, text;
random and compressible content) of at least 2 GB and a ruleset of at least 1,000 generated
YARA rules valid for both yara-x and classic YARA (some use the external variables), then
times, in this one run:

* ``taintline scan`` with hashes + rules + analysers, 2 workers;
* ``yara -r -p 2`` (classic YARA, rules precompiled with ``yarac``), same rules;
* ``taintline scan --no-rules`` (hashes + analysers), 2 workers;
* ``sha256sum`` over the same files (``find -print0 | xargs -0 sha256sum``).

Every contender runs twice and the second run is kept (the page cache is warm for all of
them; the corpus is also read once before the first run). Peak memory is the largest sum of
RSS over the contender's whole process tree, sampled every 50 ms from /proc. The CPU time
other processes used during each run is printed too: on a shared 2-core machine a busy
neighbour easily moves a run by 30%.

    python benchmarks/bench_scan.py            # 2 GB corpus, 1,000+ rules
    python benchmarks/bench_scan.py --quick    # 150 MB corpus, 1,000+ rules
    python benchmarks/bench_scan.py --breakdown  # also: where the CPU time goes, on one core
    python benchmarks/bench_scan.py --clean-env-only  # only the clean-environment count

It also scans a real, clean Python environment (``--clean-env``, default: the running
interpreter's virtual environment when it has ``pyspark`` installed: real jars carrying macOS
``.jnilib`` and Windows DLLs, ELF libraries, wheels' native code), with archives opened, and
prints its timing next to ``sha256sum`` over the same tree and the count of findings by
severity: on clean software anything at medium or above is a false alarm.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import string
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path("/tmp/taintline-bench-scan")
MB = 1_000_000


# -- corpus ----------------------------------------------------------------------------------

WORDS = [
    "".join(random.Random(i).choices(string.ascii_lowercase, k=random.Random(i).randint(2, 10)))
    for i in range(4000)
]


def _text(rng: random.Random, size: int) -> bytes:
    out: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(WORDS, k=rng.randint(4, 16))) + "\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def _pe(rng: random.Random, size: int) -> bytes:
    from taintline.testing.pe import PESpec, build_pe

    body = rng.randbytes(size // 2) + _text(rng, size - size // 2)
    return build_pe(PESpec(dll=rng.random() < 0.5, extra_sections=((".data", body),)))


def _image(rng: random.Random) -> tuple[str, bytes]:
    from taintline.testing import image

    choice = rng.randrange(4)
    if choice == 0:
        return "png", image.png(rng.randint(8, 256), rng.randint(8, 256))
    if choice == 1:
        data = image.ico()
        return "ico", image.with_trailing(data) if rng.random() < 0.1 else data
    if choice == 2:
        return "jpg", image.jpeg() + rng.randbytes(rng.randint(0, 1 << 17))
    return "gif", image.gif()


def _zip(rng: random.Random, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        written = 0
        index = 0
        while written < size:
            part = min(size - written, rng.randint(64 * 1024, 4 * MB))
            if rng.random() < 0.5:
                zf.writestr(f"lib/mod{index}.bin", rng.randbytes(part), zipfile.ZIP_STORED)
            else:
                zf.writestr(f"doc/file{index}.txt", _text(rng, part), zipfile.ZIP_DEFLATED)
            written += part
            index += 1
    return buffer.getvalue()


def make_corpus(folder: Path, total: int) -> tuple[int, int]:
    marker = folder / ".complete"
    if marker.exists() and marker.read_text() == str(total):
        files = [p for p in folder.rglob("*") if p.is_file() and p.name != ".complete"]
        return len(files), sum(p.stat().st_size for p in files)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(2023)
    written = count = 0
    while written < total:
        sub = folder / f"d{count // 200:03d}"
        sub.mkdir(exist_ok=True)
        pick = rng.random()
        if pick < 0.35:
            name, data = f"bin{count}.dll", _pe(rng, rng.randint(256 * 1024, 8 * MB))
        elif pick < 0.55:
            name, data = f"pkg{count}.zip", _zip(rng, rng.randint(MB, 24 * MB))
        elif pick < 0.70:
            name, data = f"blob{count}.dat", rng.randbytes(rng.randint(64 * 1024, 6 * MB))
        elif pick < 0.88:
            name, data = f"log{count}.txt", _text(rng, rng.randint(16 * 1024, 4 * MB))
        else:
            ext, data = _image(rng)
            name = f"img{count}.{ext}"
        if rng.random() < 0.02:  # plant a marker some rules look for
            data += b"TAINTLINE_BENCH_MARKER"
        (sub / name).write_bytes(data)
        written += len(data)
        count += 1
    marker.write_text(str(total))
    return count, written


# -- rules -----------------------------------------------------------------------------------


def _ident(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))


def make_rules(path: Path, n_rules: int) -> None:
    """``n_rules`` distinct rules (text strings, wide/nocase strings, hex patterns with
    wildcards and jumps, counts, offsets, file size, externals), valid for YARA 4 and yara-x."""
    rng = random.Random(7)
    rules: list[str] = []
    for i in range(n_rules):
        kind = i % 6
        strings: list[str] = []
        for j in range(rng.randint(1, 4)):
            flavour = rng.randrange(4)
            if flavour == 0:
                strings.append(f'$s{j} = "{_ident(rng, rng.randint(8, 16))}"')
            elif flavour == 1:
                strings.append(f'$s{j} = "{_ident(rng, rng.randint(8, 14))}" wide ascii')
            elif flavour == 2:
                strings.append(f'$s{j} = "{_ident(rng, rng.randint(8, 12))}" nocase')
            else:
                head = " ".join(f"{rng.randrange(256):02X}" for _ in range(4))
                tail = " ".join(f"{rng.randrange(256):02X}" for _ in range(3))
                strings.append(f"$s{j} = {{ {head} ?? [1-4] {tail} }}")
        if kind == 0:
            condition = "any of them"
        elif kind == 1:
            condition = "uint16(0) == 0x5A4D and any of them"
        elif kind == 2:
            condition = f"filesize < {rng.randint(1, 64)}MB and all of them"
        elif kind == 3:
            condition = "#s0 > 2 or ($s0 at 0 and any of them)"
        elif kind == 4:
            condition = 'extension == ".dll" and any of them'
        else:
            condition = 'filename contains "bench" and 2 of them' if len(strings) > 1 else "$s0"
        meta = f'description = "generated rule {i}" score = {rng.randint(40, 90)}'
        rules.append(
            f"rule bench_{i:05d} : generated {{\n  meta: {meta}\n"
            f"  strings:\n    " + "\n    ".join(strings) + f"\n  condition:\n    {condition}\n}}\n"
        )
    rules.append('rule bench_marker { strings: $m = "TAINTLINE_BENCH_MARKER" condition: $m }\n')
    path.write_text("\n".join(rules))


# -- measuring -------------------------------------------------------------------------------


def _tree_rss(pid: int) -> int:
    """RSS of ``pid`` and all its descendants, found through ``/proc/PID/task/TID/children``
    (cheap: scanning all of /proc every sample cost 15% of a core, taken from contenders that
    keep both cores busy but not from single-threaded ones)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * page
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as fh:
                    stack.extend(int(child) for child in fh.read().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


def _busy_cpu_seconds() -> float:
    """CPU time all processes on the machine have used (user + system, every core)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    seconds: float
    peak_rss: int
    rc: int
    #: CPU seconds used during the run by processes other than the contender (noise)
    others_cpu: float = 0.0


def run(
    name: str, cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None
) -> Run:
    peak = 0
    busy0, own0 = _busy_cpu_seconds(), os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    own1 = os.times()
    contender = (own1.children_user - own0.children_user) + (
        own1.children_system - own0.children_system
    )
    bench = (own1.user - own0.user) + (own1.system - own0.system)  # the RSS sampler
    others = max(0.0, _busy_cpu_seconds() - busy0 - contender - bench)
    if proc.returncode not in (0, 1):
        print(f"  {name}: exit {proc.returncode}: {err.decode(errors='replace')[-400:]}")
    return Run(name, seconds, peak, proc.returncode, others)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpus (150 MB)")
    parser.add_argument("--rules", type=int, default=1000, help="number of generated rules")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the parts of the work on one core (adds about a minute)",
    )
    parser.add_argument(
        "--clean-env",
        type=Path,
        default=None,
        help="a clean environment to scan for the false-alarm count (default: this venv, if it"
        " has pyspark)",
    )
    parser.add_argument(
        "--clean-env-only", action="store_true", help="only the clean-environment measurement"
    )
    args = parser.parse_args()
    env_path = args.clean_env or _default_clean_env()
    if args.clean_env_only:
        if env_path is None:
            print("no clean environment: pass --clean-env PATH (a venv with pyspark installed)")
            return 2
        clean_environment(env_path)
        return 0
    total = 150 * MB if args.quick else 2_100 * MB
    base = ROOT / ("quick" if args.quick else "full")
    corpus = base / "corpus"
    base.mkdir(parents=True, exist_ok=True)

    if not shutil.which("yara") or not shutil.which("yarac"):
        print("Debian's yara is not installed (apt-get install yara)")
        return 2
    print(f"corpus: generating/reusing {total / MB:.0f} MB in {corpus} ...", flush=True)
    t0 = time.perf_counter()
    n_files, n_bytes = make_corpus(corpus, total)
    print(f"corpus: {n_files} files, {n_bytes / MB:.1f} MB ({time.perf_counter() - t0:.1f}s)")
    rules = base / "rules.yar"
    make_rules(rules, args.rules)
    externals = ["filename", "filepath", "extension", "filetype", "owner"]
    defines = [arg for name in externals for arg in ("-d", f"{name}=")]
    compiled = base / "rules.yarc"
    subprocess.run(["yarac", *defines, str(rules), str(compiled)], check=True)
    print(f"rules: {args.rules + 1} generated rules ({rules.stat().st_size / 1000:.0f} kB)")

    # warm the page cache for everyone: read every file once
    subprocess.run(
        f"find {corpus} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True
    )

    case = base / "bench-case.duckdb"
    taintline = [sys.executable, "-m", "taintline"]
    contenders = {
        "taintline scan (hashes+rules+analysers, 2 workers)": [
            *taintline, "scan", str(corpus), "--case", str(case), "--workers", "2",
            "--rules", str(rules), "--format", "jsonl", "--output", "/dev/null",
        ],
        "yara -r -p 2 (Debian, precompiled)": [
            "yara", "-r", "-p", "2", *defines, "-C", str(compiled), str(corpus),
        ],
        "taintline scan --no-rules (hashes+analysers, 2 workers)": [
            *taintline, "scan", str(corpus), "--case", str(case), "--workers", "2",
            "--no-rules", "--format", "jsonl", "--output", "/dev/null",
        ],
        "sha256sum (find | xargs -0 sha256sum)": (
            f"find {corpus} -type f -print0 | xargs -0 sha256sum > /dev/null"
        ),
    }  # fmt: skip
    results: dict[str, Run] = {}
    for name, cmd in contenders.items():
        for attempt in (1, 2):
            for leftover in (case, Path(str(case) + ".wal")):
                leftover.unlink(missing_ok=True)
            r = run(name, cmd, shell=isinstance(cmd, str))
            print(
                f"  {name}: run {attempt}: {r.seconds:.1f}s (exit {r.rc};"
                f" other processes used {r.others_cpu:.1f} CPU s)",
                flush=True,
            )
        results[name] = r  # the second, warm run

    names = list(contenders)
    full, yara, nohash, sha = (results[n] for n in names)
    print()
    print(f"corpus {n_bytes / MB:.0f} MB, {n_files} files; {args.rules + 1} YARA rules; 2 cores")
    print(
        f"{'contender':58} {'seconds':>8} {'MB/s':>8} {'files/s':>8} {'peak RSS':>9}"
        f" {'others CPU':>10}"
    )
    for r in results.values():
        print(
            f"{r.name:58} {r.seconds:8.1f} {n_bytes / MB / r.seconds:8.1f}"
            f" {n_files / r.seconds:8.1f} {r.peak_rss / MB:7.0f}MB {r.others_cpu:9.1f}s"
        )
    print("(others CPU: CPU seconds other processes used during the kept run; noise if large)")
    ratio_yara = yara.seconds / full.seconds
    ratio_sha = sha.seconds / nohash.seconds
    peak = max(full.peak_rss, nohash.peak_rss)
    print()
    print(
        f"full scan vs yara -r -p 2: {ratio_yara:.2f}x  (target >= 1.0: {'met' if ratio_yara >= 1 else 'MISSED'})"
    )
    print(
        f"hash-only scan vs sha256sum: {ratio_sha:.2f}x  (target >= 2.0: {'met' if ratio_sha >= 2 else 'MISSED'})"
    )
    print(
        f"peak memory of taintline: {peak / MB:.0f} MB  (target < 1000 MB: {'met' if peak < 1000 * MB else 'MISSED'})"
    )
    if args.breakdown:
        breakdown(corpus, rules, yara.seconds, sha.seconds)
    if env_path is not None:
        clean_environment(env_path)
    return 0


def _default_clean_env() -> Path | None:
    prefix = Path(sys.prefix)
    if prefix == Path(sys.base_prefix):
        return None  # not a virtual environment
    if not list(prefix.glob("lib/python3*/site-packages/pyspark")):
        return None
    return prefix


def clean_environment(path: Path) -> None:
    """Scan a clean environment (archives opened, analysers on, no rules), twice; keep the
    warm run; print timings against sha256sum and the findings by severity."""
    import json
    from collections import Counter

    work = ROOT / "clean-env"
    work.mkdir(parents=True, exist_ok=True)
    case = work / "case.duckdb"
    out = work / "findings.jsonl"
    n_files = sum(len(files) for _, _, files in os.walk(path))
    n_bytes = sum(
        (Path(d) / f).stat().st_size
        for d, _, files in os.walk(path)
        for f in files
        if (Path(d) / f).is_file() and not (Path(d) / f).is_symlink()
    )
    print()
    print(f"clean environment: {path} ({n_files} files, {n_bytes / MB:.0f} MB on disk)", flush=True)
    cmd = [
        sys.executable, "-m", "taintline", "scan", str(path), "--case", str(case),
        "--workers", "2", "--no-rules", "--format", "jsonl", "--output", str(out),
    ]  # fmt: skip
    sha = f"find {path} -type f -print0 | xargs -0 sha256sum > /dev/null"
    kept: dict[str, Run] = {}
    for name, command in (("taintline scan --no-rules (archives opened)", cmd), ("sha256sum", sha)):
        for attempt in (1, 2):
            for leftover in (case, Path(str(case) + ".wal")):
                leftover.unlink(missing_ok=True)
            r = run(name, command, shell=isinstance(command, str))
            print(f"  {name}: run {attempt}: {r.seconds:.1f}s (exit {r.rc};"
                  f" other processes used {r.others_cpu:.1f} CPU s)", flush=True)  # fmt: skip
        kept[name] = r
    severities: Counter[str] = Counter()
    loud: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "severity" not in record:
            continue
        severities[record["severity"]] += 1
        if record["severity"] in ("medium", "high", "critical"):
            loud[str(record.get("kind"))] += 1
    scan, base = kept.values()
    print(f"{'contender':46} {'seconds':>8} {'MB/s':>8} {'peak RSS':>9} {'others CPU':>10}")
    for r in kept.values():
        print(f"{r.name:46} {r.seconds:8.1f} {n_bytes / MB / r.seconds:8.1f}"
              f" {r.peak_rss / MB:7.0f}MB {r.others_cpu:9.1f}s")  # fmt: skip
    print(f"scan vs sha256sum on the clean environment: {base.seconds / scan.seconds:.2f}x"
          " (the scan also opens every archive and runs the analysers)")  # fmt: skip
    order = ("critical", "high", "medium", "low", "info")
    print("findings by severity: " + ", ".join(f"{s} {severities.get(s, 0)}" for s in order))
    noisy = sum(loud.values())
    print(f"false alarms (medium or above on clean software): {noisy}"
          f" (target 0: {'met' if noisy == 0 else 'MISSED'})")  # fmt: skip
    for kind, count in loud.most_common(10):
        print(f"  {kind}: {count}")


def breakdown(corpus: Path, rules: Path, yara_seconds: float, sha_seconds: float) -> None:
    """Where a full scan's CPU time goes, measured on one core in this process: the files on
    disk (what ``yara -r`` and ``sha256sum`` read) apart from the container members (what only
    taintline reads), for the YARA rules, the three hashes and inflating the members."""
    from taintline.limits import ScanLimits
    from taintline.scan import rules as rules_mod
    from taintline.scan.hashes import hash_bytes
    from taintline.scan.walk import Budget, FileTask, Member, container_kind, expand, walk_inputs

    limits = ScanLimits()
    compiled = rules_mod.compile_rules(rules_mod.read_rule_files([rules]))
    scanner = rules_mod.RuleScanner(compiled.data, limits.yara_timeout_s)
    cost = dict.fromkeys(("files", "members"), 0.0)
    parts: dict[str, float] = {}

    def timed(key: str, fn: Any) -> Any:
        start = time.perf_counter()
        out = fn()
        parts[key] = parts.get(key, 0.0) + time.perf_counter() - start
        return out

    def one(data: bytes, name: str, where: str) -> None:
        cost[where] += len(data)
        timed(f"hashes ({where})", lambda: hash_bytes(data))
        timed(
            f"yara-x ({where})",
            lambda: scanner.scan(data, subject=name, name=name, filetype="", owner=""),
        )
        kind = container_kind(data)
        if kind is not None:
            produced = timed(
                "inflate/extract members",
                lambda: list(expand(data, kind, name, name, Budget(limits))),
            )
            for member in produced:
                if isinstance(member, Member):
                    one(member.data, member.name, "members")

    for task in walk_inputs([str(corpus)], limits):
        if isinstance(task, FileTask):
            one(Path(task.path).read_bytes(), task.display, "files")
    print()
    print(
        f"one-core breakdown: files on disk {cost['files'] / MB:.0f} MB,"
        f" container members {cost['members'] / MB:.0f} MB"
    )
    for key, seconds in parts.items():
        print(f"  {key:34} {seconds:6.2f} CPU s")
    ideal_yara = parts["yara-x (files)"] / 2
    ideal_hash = parts["hashes (files)"] / 2
    print(
        f"yara-x over the same files as yara -r, ideal on 2 cores: {ideal_yara:.1f} s"
        f" ({yara_seconds / ideal_yara:.1f}x yara -r -p 2)"
    )
    print(
        f"MD5+SHA-1+SHA-256 over the same files as sha256sum, ideal on 2 cores: {ideal_hash:.1f} s"
        f" ({sha_seconds / ideal_hash:.1f}x sha256sum)"
    )
    print(
        f"hashes + yara-x over files and members alone, ideal on 2 cores:"
        f" {sum(v for k, v in parts.items() if k.startswith(('hashes', 'yara-x'))) / 2:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
