"""Throughput of the format analysers on generated fixtures, with the baseline measured in the
same run: one SHA-256 pass over the same buffers (what every scanned file costs anyway).

    python benchmarks/bench_analysers.py [--quick]

Prints files/s and MB/s per analyser, the ratio to the hash baseline, and peak memory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from taintline.scan.analysers import ANALYSERS
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing import image, macho
from taintline.testing.pe import (
    DEFAULT_VERSION_INFO,
    PESpec,
    append_inside_certificate_table,
    build_pe,
)
from taintline.testing.signing import make_identity, osslsigncode_path, sign_pe

# The builders the demo does not need live with the tests (tests/builders).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.builders import elf


def corpus(copies: int) -> dict[str, list[bytes]]:
    dll = build_pe(PESpec(dll=True, exports=("A", "B"), version_info=DEFAULT_VERSION_INFO,
                          extra_sections=((".data", os.urandom(256 * 1024)),)))  # fmt: skip
    pe_files = [dll]
    if osslsigncode_path():
        with tempfile.TemporaryDirectory() as tmp:
            signed = sign_pe(dll, make_identity(Path(tmp)))
        pe_files += [signed, append_inside_certificate_table(signed, os.urandom(4096))]
    images = [
        image.ico([image.png(64, 64), image.png(32, 32)]),
        image.with_trailing(image.png(128, 128)),
        image.jpeg() * 1,
        image.gif(),
        image.bmp(256, 256),
    ]
    machos = [
        macho.thin(signature="developer-id"),
        macho.fat([macho.thin(signature="adhoc"), macho.thin()]),
    ]
    elfs = [elf.elf64(overlay=os.urandom(64 * 1024))]
    groups = {"pe": pe_files, "image": images, "macho": machos, "elf": elfs}
    return {k: v * copies for k, v in groups.items()}


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small corpus")
    args = parser.parse_args(argv)
    copies = 20 if args.quick else 400
    groups = corpus(copies)
    ctx = AnalysisContext()
    by_name = {a.NAME: a for a in ANALYSERS}
    print(
        f"analyser benchmark ({'quick' if args.quick else 'full'}; {copies} copies of each fixture)"
    )
    print(
        f"{'analyser':8} {'files':>6} {'MB':>8} {'files/s':>10} {'MB/s':>9} {'sha256 MB/s':>12} {'ratio':>7}"
    )
    for name, files in groups.items():
        analyser = by_name[name]
        items = [FileItem(f"f{i}", f"f{i}", data, "bench") for i, data in enumerate(files)]
        size_mb = sum(len(d) for d in files) / 1e6

        def run(items: list[FileItem] = items, analyser: object = analyser) -> None:
            for item in items:
                if analyser.applies(item):  # type: ignore[attr-defined]
                    analyser.analyse(item, ctx)  # type: ignore[attr-defined]

        def baseline(files: list[bytes] = files) -> None:
            for data in files:
                hashlib.sha256(data).digest()

        t_base = timed(baseline)
        t_run = timed(run)
        mbps = size_mb / t_run
        base_mbps = size_mb / max(t_base, 1e-9)
        print(
            f"{name:8} {len(files):6d} {size_mb:8.1f} {len(files) / t_run:10.0f} {mbps:9.1f}"
            f" {base_mbps:12.1f} {mbps / base_mbps:7.3f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
