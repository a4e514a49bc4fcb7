"""Run taintline's benchmarks: ``python benchmarks/run.py [--quick] [STAGE...]``.

Each stage is a script ``benchmarks/bench_<stage>.py`` that generates its own corpus under
/tmp, measures taintline and a baseline in the same run, and prints numbers and ratios.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stages", nargs="*", help=f"stages to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    stages = args.stages or available()
    unknown = sorted(set(stages) - set(available()))
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(unknown)}")
    status = 0
    for stage in stages:
        print(f"=== {stage} ===", flush=True)
        cmd = [sys.executable, str(HERE / f"bench_{stage}.py")]
        if args.quick:
            cmd.append("--quick")
        status |= subprocess.run(cmd, check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
