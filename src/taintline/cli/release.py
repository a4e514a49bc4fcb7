"""``taintline manifest`` and ``taintline verify``: the release gate (see docs/verify.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from taintline.case import Case
from taintline.cli.common import (
    DEFAULT_CASE,
    CaseOption,
    ExitCode,
    parse_severity,
    progress_enabled,
    stderr_console,
)
from taintline.errors import UsageError
from taintline.report import FORMATS, RenderContext, render_findings


class _Bar:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, total_files: int, total_bytes: int) -> None:
        self.task = self.progress.add_task("reading", total=total_bytes)

    def advance(self, files: int, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)


@contextmanager
def _progress() -> Iterator[_Bar | None]:
    err = stderr_console()
    if not progress_enabled(err):
        yield None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        yield _Bar(bar)


def manifest_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Release folders, installers, archives, or one SBOM with hashes."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the manifest here (default stdout)."),
    ] = None,
    from_case: Annotated[
        str | None,
        typer.Option(
            "--from-case",
            help="Describe an earlier scan from its facts in the case (a run id, or 'latest');"
            " no file is read.",
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Release label (default: the input's name).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Scan worker processes (0: in-process).")
    ] = None,
    case: CaseOption = DEFAULT_CASE,
) -> int:
    """Describe a known-good release: every file (containers opened) with hashes, type, version
    resource, signer and signature status, imports/exports, sections, overlay and hidden data."""
    from taintline.release.manifest import (
        dumps,
        manifest_from_case,
        manifest_from_paths,
        write_manifest,
    )
    from taintline.release.sbom import looks_like_sbom, read_sbom

    paths = paths or []
    if from_case is None and not paths:
        raise UsageError("give release PATH(s), or --from-case RUN_ID|latest")
    if from_case is not None and paths:
        raise UsageError("--from-case reads the case only: give no PATH with it")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    err = stderr_console()
    with Case(case) as c:
        if from_case is not None:
            release = manifest_from_case(c, None if from_case == "latest" else from_case, label)
        elif len(paths) == 1 and paths[0].is_file() and _head_is_sbom(paths[0], looks_like_sbom):
            release = read_sbom(paths[0])
        else:
            with _progress() as bar:
                release, errors = manifest_from_paths(
                    paths, c, label=label, workers=workers, progress=bar
                )
            for f in errors:
                err.print(f"warning: {f.subject}: {f.message}", markup=False, soft_wrap=True)
            if not release.entries:
                raise UsageError("nothing in the input(s) could be read as a release")
    if output is None:
        sys.stdout.write(dumps(release).decode() + "\n")
        sys.stdout.flush()
    else:
        write_manifest(release, output)
        err.print(f"{len(release.entries)} files described in {output}", markup=False)
    return ExitCode.CLEAN


def _head_is_sbom(path: Path, test: object) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return bool(head.lstrip()[:1] == b"{" and callable(test) and test(head))


def verify_cmd(
    baseline: Annotated[
        Path,
        typer.Argument(help="Known-good release: folder, installer, archive, manifest or SBOM."),
    ],
    candidate: Annotated[Path, typer.Argument(help="Release to check, in any of the same forms.")],
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Two builds of one source: must be identical after"
            " normalising signatures, time stamps, checksums and build ids.",
        ),
    ] = False,
    expect: Annotated[
        Path | None,
        typer.Option("--expect", help="YAML/JSON rules of expected changes (path globs, kinds)."),
    ] = None,
    provenance: Annotated[
        list[Path] | None,
        typer.Option("--provenance", help="in-toto/SLSA provenance (repeat for several)."),
    ] = None,
    builder: Annotated[
        list[str] | None,
        typer.Option("--builder", help="Expected builder id in the provenance (repeatable)."),
    ] = None,
    case: CaseOption = DEFAULT_CASE,
    fmt: Annotated[
        str, typer.Option("--format", help=f"Output format: {', '.join(FORMATS)}.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here (default stdout).")
    ] = None,
    fail_on: Annotated[
        str, typer.Option("--fail-on", help="Exit 1 when a finding is at least this severe.")
    ] = "high",
    workers: Annotated[
        int | None, typer.Option("--workers", help="Scan worker processes (0: in-process).")
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option("--ca-bundle", help="PEM CA bundle for Authenticode (default: certifi)."),
    ] = None,
) -> int:
    """Compare a candidate release with a known-good baseline (or two builds of one source) and
    rank every difference by danger; findings go into the case (source ``release``)."""
    from taintline.release.expect import read_expectations
    from taintline.release.verify import VerifyOptions, verify

    threshold = parse_severity(fail_on)
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for p in (baseline, candidate, *(provenance or ()), *([expect] if expect else [])):
        if not p.exists():
            raise UsageError(f"no such file or folder: {p}")
    if workers is not None and workers < 0:
        raise UsageError("--workers must be 0 or more")
    options = VerifyOptions(
        rebuild=rebuild,
        expectations=read_expectations(expect) if expect else (),
        provenance=tuple(provenance or ()),
        builders=tuple(builder or ()),
        workers=workers,
        ca_bundle=ca_bundle,
    )
    err = stderr_console()
    with Case(case) as c, _progress() as bar:
        result = verify(baseline, candidate, c, options, bar)
    for problem in result.problems:
        err.print(f"warning: {problem.one_line()}", markup=False, soft_wrap=True)
    stats = result.stats
    title = (
        f"taintline verify{' --rebuild' if rebuild else ''}: {result.candidate.label} against"
        f" {result.baseline.label} ({stats.get('changed', 0)} changed, {stats.get('added', 0)}"
        f" new, {stats.get('removed', 0)} removed, {stats.get('same', 0)} same)"
    )
    ctx = RenderContext(command="verify", title=title, inputs=(str(baseline), str(candidate)))
    if output is not None:
        with output.open("w", encoding="utf-8") as fh:
            render_findings(result.findings, fmt, fh, ctx)
    else:
        render_findings(result.findings, fmt, sys.stdout, ctx)
        sys.stdout.flush()
    worst = any(f.severity.at_least(threshold) for f in result.findings)
    return ExitCode.FINDINGS if worst else ExitCode.CLEAN


def register(app: typer.Typer) -> None:
    app.command("manifest")(manifest_cmd)
    app.command("verify")(verify_cmd)
