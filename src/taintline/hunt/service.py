"""``run_hunt``: the library call behind ``taintline hunt`` (and the demo, and tests).

Discover the files, make sure the case has intel (the built-in campaign pack when it has
none), load the indicators, let the engine match, fold hits into sightings, and (unless told
not to) record them in the case under a run of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from taintline.case import Case
from taintline.errors import Problem
from taintline.hunt.certs import attach_hosts
from taintline.hunt.engines import Progress, get_engine
from taintline.hunt.indicators import IndicatorSet, load_indicators
from taintline.hunt.model import FileStats, HitGroup, HuntOptions, LogKind, LogSource, Sighting
from taintline.hunt.readers import discover
from taintline.hunt.sightings import fold
from taintline.hunt.store import Saved, save


@dataclass(slots=True)
class HuntResult:
    sightings: list[Sighting] = field(default_factory=list)
    files: list[FileStats] = field(default_factory=list)
    #: Inputs that could not be used at all (unknown format, missing file).
    problems: list[Problem] = field(default_factory=list)
    indicators: int = 0
    #: The case had no intel: the built-in campaign pack was loaded first.
    intel_loaded: bool = False
    #: No input could be read: nothing was hunted (the caller reports a usage error).
    no_input: bool = False
    run_id: str | None = None
    #: The case holds no network or hash indicator: nothing could match.
    nothing_to_match: bool = False
    #: What the case did not hold yet (all 0 on a re-run over the same logs).
    saved: Saved = field(default_factory=Saved)

    @property
    def new_findings(self) -> int:
        return self.saved.findings

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def garbage(self) -> int:
        return sum(f.garbage for f in self.files)


def hunt_sources(
    sources: list[LogSource],
    indicators: IndicatorSet,
    options: HuntOptions,
    progress: Progress | None = None,
) -> tuple[list[Sighting], list[FileStats]]:
    engine = get_engine(options.engine)
    result = engine.run(sources, indicators, options, progress)
    groups = attach_hosts(result.groups, sources, options)
    return fold(groups, indicators, options.max_lines), result.stats


def uses_cluster(inputs: Iterable[str | Path], options: HuntOptions) -> bool:
    """Whether ``--engine spark`` must list and read the inputs on the cluster: they are
    URIs, globs or Parquet tables, or the session is not a local one."""
    if options.engine != "spark":
        return False
    if options.spark is not None and not options.spark.is_local:
        return True
    from taintline.hunt.engines.spark_cluster import needs_cluster

    return needs_cluster(str(p) for p in inputs)


def _cluster_cert_hosts(
    groups: Sequence[HitGroup], sources: Sequence[LogSource], options: HuntOptions
) -> list[HitGroup]:
    """The certificate linkage of :mod:`taintline.hunt.certs` for the cluster path. It reads
    the SSL, files and conn logs on this machine, so it works for ``file:`` inputs (the
    driver sees them); a certificate whose logs only the cluster can read gets no host."""
    groups = [replace(g, path=_local(g.path)) for g in groups]
    try:
        return attach_hosts(groups, [replace(s, path=_local(s.path)) for s in sources], options)
    except OSError:
        x509 = [s for s in sources if s.kind is LogKind.X509]
        return attach_hosts(groups, [replace(s, path=_local(s.path)) for s in x509], options)


def _local(path: str) -> str:
    """A ``file:`` URI as the local path it names; anything else as it is."""
    if path.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(path).path)
    return path


def _hunt_cluster(
    inputs: Sequence[str],
    indicators: IndicatorSet,
    options: HuntOptions,
    progress: Progress | None,
    result: HuntResult,
) -> None:
    """The hunt with listing, reading and matching on the Spark cluster of
    ``options.spark``; only sightings and per-file counts come back."""
    from taintline.hunt.engines.spark_cluster import ClusterHunt
    from taintline.hunt.engines.spark_engine import HUNT_CONF
    from taintline.sparklocal import session_scope

    with session_scope(
        "taintline-hunt", options.spark, HUNT_CONF, max(1, options.threads)
    ) as spark:
        run = ClusterHunt(spark).run(inputs, indicators, options, progress)
    result.problems.extend(run.problems)
    result.files = run.result.stats
    groups = _cluster_cert_hosts(run.result.groups, run.sources, options)
    result.sightings = fold(groups, indicators, options.max_lines)


def run_hunt(
    case: Case,
    paths: Iterable[Path | str],
    options: HuntOptions | None = None,
    *,
    progress: Progress | None = None,
    record: bool = True,
    run_id: str | None = None,
    command: str = "hunt",
    bootstrap_intel: bool = True,
    on_sources: Callable[[list[LogSource]], None] | None = None,
) -> HuntResult:
    """Hunt ``paths`` for the case's indicators: the one pipeline behind ``taintline hunt``,
    the demo and the tests.

    Local inputs are discovered here and matched by ``options.engine``; URIs, globs, Parquet
    tables or a non-local Spark session send listing, reading and matching to the cluster
    (:func:`uses_cluster`). A case without intel first gets the built-in campaign pack
    (``bootstrap_intel``). With ``record``, results are saved under ``run_id``, or under a new
    run named ``command`` that is finished here (``done``, or ``failed`` if the hunt raised).
    ``on_sources`` is told the readable local inputs before hunting starts (a progress bar's
    total).
    """
    opts = options or HuntOptions()
    paths = list(paths)
    cluster = uses_cluster(paths, opts)
    result = HuntResult()
    sources: list[LogSource] = []
    if not cluster:
        found = discover([Path(p) for p in paths], opts.field_map)
        result.problems.extend(found.problems)
        if not found.sources:
            result.no_input = True
            return result
        sources = found.sources
        if on_sources is not None:
            on_sources(sources)
    if bootstrap_intel:
        from taintline.intel.store import ensure_intel

        result.intel_loaded = ensure_intel(case)
    indicators = load_indicators(case)
    result.indicators = indicators.count()
    result.nothing_to_match = indicators.empty
    own_run = record and run_id is None
    if own_run:
        run_id = case.start_run(command)
    result.run_id = run_id
    try:
        if cluster:
            _hunt_cluster([str(p) for p in paths], indicators, opts, progress, result)
        else:
            result.sightings, result.files = hunt_sources(sources, indicators, opts, progress)
        if record:
            result.saved = save(case, result.sightings, result.files, run_id)
    except BaseException:
        if own_run and run_id is not None:
            case.finish_run(run_id, "failed")
        raise
    if own_run and run_id is not None:
        summary = {"files": len(result.files), "lines": result.lines}
        case.finish_run(run_id, "done", {**summary, "sightings": len(result.sightings)})
    if cluster and not result.files:
        result.no_input = True
    return result
