"""``taintline scan PATH...``: hashes, YARA and analysers over files, folders and containers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from taintline.case import Case
from taintline.cli.common import (
    DEFAULT_CASE,
    CaseOption,
    FailOn,
    FailOnOption,
    FormatOption,
    OutputOption,
    exit_code,
    output_stream,
    progress_enabled,
    stderr_console,
)
from taintline.errors import UsageError
from taintline.limits import ScanLimits
from taintline.report import OutputFormat, RenderContext, render_findings
from taintline.scan.engine import ScanOptions, scan_paths, start_pool, start_walk
from taintline.scan.hashes import HashType, hash_set
from taintline.terminal import labelled, printable

#: Paths of vanished files listed on the terminal (all of them are in the run's summary).
MAX_GONE_SHOWN = 20

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_DEFAULT = ScanLimits()
_ALL_HASHES = ",".join(h.value for h in HashType)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str, option: str) -> int:
    """``123``, ``64M``, ``2GiB``, ``1.5G`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"{option}: cannot read size {text!r} (examples: 500M, 2G, 1048576)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: int) -> str:
    """Bytes as the largest binary unit that divides them: 8589934592 -> ``8G``."""
    for unit in ("t", "g", "m", "k"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit.upper()}"
    return str(size)


def parse_hashes(text: str) -> frozenset[HashType]:
    """``--hashes sha256,sha1,md5``: names of :class:`HashType`, SHA-256 always included."""
    try:
        return hash_set(part for part in text.split(",") if part.strip())
    except ValueError:
        choices = ", ".join(h.value for h in HashType)
        raise UsageError(f"--hashes: cannot read {text!r}; choose from {choices}") from None


def scan_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files, folders, archives, installers.")],
    case: CaseOption = DEFAULT_CASE,
    fmt: FormatOption = OutputFormat.TABLE,
    output: OutputOption = None,
    fail_on: FailOnOption = FailOn.HIGH,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Worker processes (default: CPU count; 0: in-process)."),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="Extra YARA rule file (repeat for several)."),
    ] = None,
    no_rules: Annotated[
        bool, typer.Option("--no-rules", help="Hashes and analysers only, no YARA.")
    ] = False,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            help="PEM roots of a private PKI, trusted for code signing besides Microsoft's root program and Apple's root.",
        ),
    ] = None,
    max_depth: Annotated[
        int, typer.Option("--max-depth", help="Deepest container nesting opened.")
    ] = _DEFAULT.max_depth,
    max_total_bytes: Annotated[
        str,
        typer.Option("--max-total-bytes", help="Bytes extracted per top-level input (e.g. 8G)."),
    ] = format_size(_DEFAULT.max_total_bytes),
    max_file_size: Annotated[
        str, typer.Option("--max-file-size", help="Largest file or member read whole (e.g. 2G).")
    ] = format_size(_DEFAULT.max_file_bytes),
    max_ratio: Annotated[
        float, typer.Option("--max-ratio", help="Largest compression ratio (archive bombs).")
    ] = _DEFAULT.max_ratio,
    max_files: Annotated[
        int, typer.Option("--max-files", help="Most files/members per top-level input.")
    ] = _DEFAULT.max_files,
    yara_timeout: Annotated[
        int, typer.Option("--yara-timeout", help="Per-file YARA timeout in seconds.")
    ] = _DEFAULT.yara_timeout_s,
    host: Annotated[
        str | None, typer.Option("--host", help="Host name on findings (default: this machine).")
    ] = None,
    hashes: Annotated[
        str,
        typer.Option(
            "--hashes",
            help="Hashes to compute, comma-separated (sha256,sha1,md5); SHA-256 always.",
        ),
    ] = _ALL_HASHES,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read and analyse every file again (default: reuse what the case knows of unchanged files).",
        ),
    ] = False,
) -> int:
    """Find known-bad and tampered files: hashes, YARA rules, PE/Mach-O/ELF/image/Electron
    analysers, inside ZIP/tar/MSI/CAB/asar containers."""
    if workers is not None and workers < 0:
        raise UsageError("--workers must be 0 or more")
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    for rule_file in rules or []:
        if not rule_file.is_file():
            raise UsageError(f"--rules {rule_file}: no such file")
    if ca_bundle is not None and not ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {ca_bundle}: no such file")
    chosen = parse_hashes(hashes)
    limits = ScanLimits(
        max_depth=max_depth,
        max_total_bytes=parse_size(max_total_bytes, "--max-total-bytes"),
        max_file_bytes=parse_size(max_file_size, "--max-file-size"),
        max_ratio=max_ratio,
        max_files=max_files,
        yara_timeout_s=yara_timeout,
    )
    options = ScanOptions(
        limits=limits,
        workers=workers,
        rule_files=tuple(rules or ()),
        use_rules=not no_rules,
        ca_bundle=ca_bundle,
        host=host,
        hashes=chosen,
        full=full,
    )
    err = stderr_console()
    # a case file that does not exist yet remembers nothing: every file will be read, so the
    # workers start before the case is created (their imports overlap its migrations)
    pool = start_pool(options) if not case.exists() else None
    walk = start_walk(paths, options)  # in a thread, while the case opens
    try:
        with Case(case) as c:
            if progress_enabled(err):
                # rich's progress module only on a terminal (a re-scan takes under a second)
                from taintline.cli.scanmeter import live_meter

                with live_meter(err) as meter:
                    result = scan_paths(paths, c, options, meter, pool=pool, walk=walk)
            else:
                result = scan_paths(paths, c, options, pool=pool, walk=walk)
    finally:
        if pool is not None:
            pool.shutdown()
    for problem in result.problems:
        err.print(labelled("warning", "yellow", problem.one_line()), soft_wrap=True)
    err.print(result.reuse_summary(), markup=False, highlight=False)
    for gone in result.disappeared[:MAX_GONE_SHOWN]:
        err.print(printable(f"  gone: {gone}"), markup=False, highlight=False, soft_wrap=True)
    if len(result.disappeared) > MAX_GONE_SHOWN:
        err.print(f"  ... and {len(result.disappeared) - MAX_GONE_SHOWN:,} more", highlight=False)
    ctx = RenderContext(
        command="scan",
        title=f"taintline scan: {result.files} files, {result.members} members",
        inputs=tuple(str(p) for p in paths),
    )
    with output_stream(output) as stream:
        render_findings(result.findings, fmt, stream, ctx)
    return exit_code(result.findings, fail_on)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_cmd)
