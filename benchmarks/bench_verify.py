"""Benchmark ``taintline verify`` against ``sha256sum`` and Debian's ``diffoscope``.

Generates (once, cached under /tmp) two releases of a made-up desktop app of at least 5,000
files and 1 GB each: resources of mixed sizes, signed and unsigned PE libraries padded to
megabytes, an Electron ``app.asar`` with hundreds of members, a macOS app bundle. The candidate
is the baseline plus honest churn (a version-bumped executable and Info.plist, changed,
added, removed and moved resources, a changed asar member) and the three 3CX tricks
(``ffmpeg.dll`` changed under the same version, ``d3dcompiler_47.dll`` with data hidden in its
certificate table, a new unsigned ``libupdate.dylib``). Then times, in this one run, with the
page cache warm for all of them (the trees are read once first):

* ``taintline verify BASELINE CANDIDATE --format jsonl`` (fresh case);
* ``sha256sum`` over both trees (``find -print0 | xargs -0 sha256sum``), the target's baseline;
* ``diffoscope BASELINE CANDIDATE`` with a time limit (``--limit``, default 600 s).

It prints each time, the ratios, peak memory (the largest RSS sum over the process tree), the
CPU other processes used meanwhile (noise on a shared machine), and the first lines of
taintline's output: the dangerous changes must come first.

    python benchmarks/bench_verify.py            # 2 x (5,000+ files, 1 GB+)
    python benchmarks/bench_verify.py --quick    # 2 x (600 files, 100 MB), diffoscope 120 s
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import Run, run  # the shared process-tree timer

ROOT = Path("/tmp/taintline-bench-verify")
MB = 1_000_000
THREE = {
    "release.changed-same-version",
    "release.hidden-signature-data",
    "release.new-native-foreign-signer",
}


def _random(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def make_releases(root: Path, files: int, total: int) -> tuple[Path, Path]:
    """Baseline and candidate folders (cached: rebuilt only when the sizes change)."""
    from taintline.testing import archives, pe, releases
    from taintline.testing.signing import sign_pe

    base, cand = root / "DemoApp-18.12.407", root / "DemoApp-18.12.416"
    marker = root / f"ready-{files}-{total}"
    if marker.exists():
        return base, cand
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = random.Random(14)
    signers = releases.make_signers(root / "pki")
    app = releases.release_files(signers, version="18.12.407")
    bad = releases.release_files(signers, version="18.12.416", tamper=True)
    layout: dict[str, bytes | int] = dict(app)
    # 40 signed native libraries of 1-4 MB (padding in a data section)
    for i in range(40):
        size = rng.randint(1, 4) * MB
        spec = pe.PESpec(dll=True, exports=(f"fn{i}",), extra_sections=((".pad", b"\0" * size),),
                         version_info={"FileVersion": "2.1.0.0", "ProductVersion": "2.1.0.0"})  # fmt: skip
        layout[f"lib/native{i:02d}.dll"] = sign_pe(
            pe.build_pe(spec), signers.vendor, timestamp=False
        )
    # an asar with 400 small members
    layout["resources/bundle.asar"] = archives.asar_bytes(
        {
            f"dist/chunk{i:03d}.js": f"// chunk {i}\n".encode() * rng.randint(10, 400)
            for i in range(400)
        }
    )
    used = sum(len(v) for v in layout.values() if isinstance(v, bytes))
    n_res = files - len(layout)
    # resources: a few big ones, the rest small, summing to ``total``
    big = max(4, n_res // 500)
    left = max(total - used, n_res * 1000)
    big_size = left // 2 // big
    small_size = (left - big * big_size) // max(n_res - big, 1)
    for i in range(n_res):
        size = big_size if i < big else rng.randint(small_size // 2, small_size * 3 // 2)
        layout[f"resources/{i % 50:02d}/res{i:05d}.bin"] = size
    for rel, content in layout.items():
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else _random(rng, content))
    shutil.copytree(base, cand)
    # honest churn
    bumped = releases.release_files(signers, version="18.12.416")
    for rel in ("DemoApp.exe", f"{releases.APP}/Contents/Info.plist", "resources/app.asar"):
        (cand / rel).write_bytes(bumped[rel])
    resources = sorted(p for p in cand.rglob("res*.bin"))
    for p in resources[100:150]:
        p.write_bytes(_random(rng, p.stat().st_size))
    for p in resources[200:210]:
        p.unlink()
    for i, p in enumerate(resources[300:310]):
        p.rename(p.with_name(f"moved{i}.bin"))
    for i in range(20):
        (cand / f"resources/new/extra{i}.bin").parent.mkdir(parents=True, exist_ok=True)
        (cand / f"resources/new/extra{i}.bin").write_bytes(_random(rng, 50_000))
    # the three tricks
    for rel in (
        "ffmpeg.dll",
        "d3dcompiler_47.dll",
        f"{releases.APP}/Contents/Frameworks/libupdate.dylib",
    ):
        (cand / rel).write_bytes(bad[rel])
    marker.touch()
    return base, cand


def _tree(path: Path) -> tuple[int, int]:
    n = size = 0
    for p in path.rglob("*"):
        if p.is_file():
            n += 1
            size += p.stat().st_size
    return n, size


def _show(r: Run, extra: str = "") -> str:
    return (
        f"{r.seconds:8.2f} s  peak {r.peak_rss / 2**20:7.0f} MiB  (other processes used"
        f" {r.others_cpu:.1f} CPU s meanwhile){extra}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--limit", type=float, default=None, help="diffoscope time limit (s)")
    args = parser.parse_args()
    files, total = (600, 100 * MB) if args.quick else (5200, 1200 * MB)
    limit = args.limit or (120.0 if args.quick else 600.0)
    started = time.perf_counter()
    base, cand = make_releases(ROOT / ("quick" if args.quick else "full"), files, total)
    nb, sb = _tree(base)
    nc, sc = _tree(cand)
    print(f"releases: {nb} files / {sb / MB:.0f} MB and {nc} files / {sc / MB:.0f} MB"
          f" (ready in {time.perf_counter() - started:.0f} s)")  # fmt: skip
    sha_cmd = f"find '{base}' '{cand}' -type f -print0 | xargs -0 sha256sum > /dev/null"
    run("warm-up", sha_cmd, shell=True)  # read everything once: the page cache is warm for all
    with tempfile.TemporaryDirectory(prefix="taintline-bench-verify-") as tmp:
        out = Path(tmp) / "verify.jsonl"
        cmd = [sys.executable, "-m", "taintline", "verify", str(base), str(cand), "--case",
               str(Path(tmp) / "case.duckdb"), "--format", "jsonl", "-o", str(out)]  # fmt: skip
        env = dict(os.environ)
        tl = run("taintline verify", cmd, env=env)
        lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        sha = run("sha256sum", sha_cmd, shell=True)
        diffo_out = Path(tmp) / "diffoscope.txt"
        diffo_cmd = (
            f"timeout --signal=KILL {limit:.0f} diffoscope --no-progress --text '{diffo_out}'"
            f" '{base}' '{cand}' > /dev/null 2>&1; true"
        )
        diffo = run("diffoscope", diffo_cmd, shell=True) if shutil.which("diffoscope") else None
        diffo_lines = sum(1 for _ in diffo_out.open(errors="replace")) if diffo_out.exists() else 0
    print(f"taintline verify : {_show(tl)}  exit {tl.rc}")
    print(f"sha256sum (both) : {_show(sha)}")
    timed_out = diffo is not None and diffo.seconds >= limit - 1
    if diffo is not None:
        print(f"diffoscope       : {_show(diffo)}"
              + (f"  TIME LIMIT {limit:.0f} s reached (killed)" if timed_out else "")
              + f", {diffo_lines} lines of unranked output")  # fmt: skip
    ratio = tl.seconds / sha.seconds
    print(
        f"taintline / sha256sum = {ratio:.2f}x  (target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})"
    )
    if diffo is not None:
        speed = diffo.seconds / tl.seconds
        more = ">= " if timed_out else ""
        print(f"diffoscope / taintline = {more}{speed:.1f}x  (target >= 10x:"
              f" {'met' if speed >= 10 else 'NOT met'})")  # fmt: skip
    peak_ok = tl.peak_rss < 2**30
    print(
        f"taintline peak memory {tl.peak_rss / 2**20:.0f} MiB (target < 1 GiB: {'met' if peak_ok else 'NOT met'})"
    )
    print("taintline's first lines:")
    for row in lines[:5]:
        print(f"  {row['severity']:8} {row['kind']:36} {row['evidence'].get('path')}")
    first = {row["kind"] for row in lines[:3]}
    print(f"dangerous changes first: {'yes' if first == THREE else 'NO'}"
          f" ({len(lines)} findings in all)")  # fmt: skip
    return 0 if first == THREE else 1


if __name__ == "__main__":
    sys.exit(main())
