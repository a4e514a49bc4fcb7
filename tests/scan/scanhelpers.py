from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taintline.case import Case
from taintline.limits import ScanLimits
from taintline.model import Finding
from taintline.scan.cache import RACY_NS
from taintline.scan.engine import ScanOptions, ScanResult, scan_paths


def run_scan(
    case: Case,
    paths: Sequence[Path | str],
    *,
    limits: ScanLimits | None = None,
    rules: Sequence[Path] = (),
    workers: int = 0,
    use_rules: bool = True,
) -> ScanResult:
    options = ScanOptions(
        limits=limits or ScanLimits(),
        workers=workers,
        rule_files=tuple(rules),
        use_rules=use_rules,
        ensure_intel=False,
        host="testhost",
    )
    return scan_paths(list(paths), case, options)


def run_rows(case: Case, run_id: str | None) -> list[tuple[Any, ...]]:
    """Every row a run saw (its own and its linked ones, ``file_facts_all``), in one order:
    what two runs of the same tree are compared by."""
    rows: list[tuple[Any, ...]] = case.con.execute(
        "SELECT top, path, sha256, sha1, md5, size, filetype, depth, analyser, facts::VARCHAR"
        " FROM file_facts_all WHERE run_id = ? ORDER BY top, path, analyser",
        [run_id],
    ).fetchall()
    return rows


def kinds(findings: Sequence[Finding]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.kind, []).append(f.subject)
    return out


def write_rules(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def settle() -> None:
    """Files written just now are not trusted by identity (racily clean): wait past that."""
    time.sleep(RACY_NS / 1e9 + 0.02)
