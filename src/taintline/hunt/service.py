"""``run_hunt``: the library call behind ``taintline hunt`` (and the demo, and tests).

Discover the files, load the indicators, let the engine match, fold hits into sightings, and
(unless told not to) record them in the case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from taintline.case import Case
from taintline.errors import Problem
from taintline.hunt.engines import Progress, get_engine
from taintline.hunt.indicators import IndicatorSet, load_indicators
from taintline.hunt.model import FileStats, HuntOptions, LogSource, Sighting
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
    return fold(result.groups, indicators, options.max_lines), result.stats


def run_hunt(
    case: Case,
    paths: Iterable[Path],
    options: HuntOptions | None = None,
    *,
    progress: Progress | None = None,
    record: bool = True,
    run_id: str | None = None,
) -> HuntResult:
    opts = options or HuntOptions()
    found = discover(paths, opts.field_map)
    indicators = load_indicators(case)
    result = HuntResult(problems=list(found.problems), indicators=indicators.count())
    result.sightings, result.files = hunt_sources(found.sources, indicators, opts, progress)
    if record:
        result.saved = save(case, result.sightings, result.files, run_id)
    return result
