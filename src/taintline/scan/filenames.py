"""``filename-regex`` indicators (LOKI/THOR filename IOCs) matched against scanned paths.

Kept small and apart from the walk and the containers: the scan engine hands it the display
paths of what it recorded (files and container members, ``setup.msi!/disk1.cab!/ffmpeg.dll``)
and gets ``ioc.filename`` findings back. A regex is never compared as a literal name.

* Each path is tried as written and in Windows form (``/`` and ``!/`` as ``\\``), since the
  published regexes are written for Windows paths (``\\\\AppData\\\\...\\.dll``).
* Matching is case-sensitive, as LOKI reads these files, and runs in Arrow's RE2 kernels:
  linear time whatever the pattern, so a hostile regex cannot hang a scan. One combined
  pass finds the candidate paths; only those are tried regex by regex.
* A third field of the LOKI line (a false-positive regex) suppresses the match.
* Severity from the score, as for THOR-style YARA rules: >= 80 high, >= 60 medium, else low.

The dialect is RE2's (through Arrow), both here and in the retroactive match of stored paths
(:mod:`taintline.scan.retro`), so the two always agree. It differs from Python's ``re`` in a
few places: ``\\d`` and ``\\w`` are ASCII only (``re`` also takes other Unicode digits and
letters), ``$`` matches only at the very end (``re`` also before a final newline), and there are
no look-arounds or back-references (such a regex is refused when it is imported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from taintline.lazy import LazyModule
from taintline.model import Finding, IndicatorType, Severity, utc

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = LazyModule("pyarrow")
    pc = LazyModule("pyarrow.compute")

if TYPE_CHECKING:
    from taintline.case import Case

KIND = "ioc.filename"


@dataclass(frozen=True, slots=True)
class PathRule:
    regex: str
    sources: tuple[str, ...]
    score: int | None = None
    false_positive: str | None = None
    description: str | None = None


def _severity(score: int | None) -> Severity:
    if score is None or score >= 80:
        return Severity.HIGH
    if score >= 60:
        return Severity.MEDIUM
    return Severity.LOW


class FilenameRules:
    """The case's filename-regex indicators, loaded once per scan."""

    def __init__(self, rules: Sequence[PathRule]) -> None:
        self.rules = tuple(rules)
        self._combined: str | None = None
        if len(self.rules) > 1:
            combined: str | None = "|".join(f"(?:{r.regex})" for r in self.rules)
            try:
                pc.match_substring_regex(pa.array([""], pa.string()), str(combined))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                combined = None  # over RE2's program size: every regex is tried on its own
            self._combined = combined

    @classmethod
    def from_case(cls, case: Case, since: datetime | None = None) -> FilenameRules:
        """Every filename-regex indicator of the case; with ``since``, only the regexes a
        source stated at or after that time (each with all its sources, as a scan names it)."""
        regex = str(IndicatorType.FILENAME_REGEX)
        after = utc(since).replace(tzinfo=None) if since is not None else None
        rows = case.con.execute(
            "SELECT value, list(DISTINCT source ORDER BY source),"
            " any_value(description) FILTER (WHERE description IS NOT NULL),"
            " any_value(context) FILTER (WHERE context IS NOT NULL)"
            " FROM indicator_sources WHERE type = ? AND (?::TIMESTAMP IS NULL OR value IN"
            " (SELECT value FROM indicator_sources WHERE type = ? AND added_at >= ?))"
            " GROUP BY value ORDER BY value",
            [regex, after, regex, after],
        ).fetchall()
        rules: list[PathRule] = []
        for value, sources, description, context in rows:
            ctx: dict[str, Any] = orjson.loads(context) if context else {}
            score = ctx.get("score")
            fp = ctx.get("false_positive_regex")
            rules.append(
                PathRule(
                    regex=value,
                    sources=tuple(sources),
                    score=score if isinstance(score, int) else None,
                    false_positive=fp if isinstance(fp, str) and fp else None,
                    description=description,
                )
            )
        return cls(rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match_array(self, paths: pa.Array) -> list[Finding]:
        """:meth:`match` of an Arrow column of paths (a re-scan's copied rows): only the paths
        the combined pattern may match become Python strings."""
        if not self.rules or not len(paths):
            return []
        combined = self.rules[0].regex if len(self.rules) == 1 else self._combined
        if combined is not None:
            windows = pc.replace_substring(pc.replace_substring(paths, "!/", "\\"), "/", "\\")
            try:
                hit = pc.or_(
                    pc.match_substring_regex(paths, combined),
                    pc.match_substring_regex(windows, combined),
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                hit = pa.array([True] * len(paths))
            paths = pc.filter(paths, pc.fill_null(hit, False))
        return self.match([str(p) for p in paths.to_pylist()])

    def match(self, paths: Sequence[str]) -> list[Finding]:
        """``ioc.filename`` findings for the paths any rule matches (one per path and rule)."""
        if not self.rules or not paths:
            return []
        windows = [p.replace("!/", "\\").replace("/", "\\") for p in paths]
        forms = pa.array([*paths, *windows], pa.string())
        n = len(paths)
        candidates: Sequence[int] = range(n)
        if self._combined is not None:
            hit = pc.match_substring_regex(forms, self._combined).to_pylist()
            candidates = range(n) if hit is None else [i for i in range(n) if hit[i] or hit[n + i]]
            if not candidates:
                return []
            forms = pa.array(
                [*(paths[i] for i in candidates), *(windows[i] for i in candidates)], pa.string()
            )
        index = list(candidates)
        m = len(index)
        findings: list[Finding] = []
        for rule in self.rules:
            try:
                hits = pc.match_substring_regex(forms, rule.regex).to_pylist()
                fps = (
                    pc.match_substring_regex(forms, rule.false_positive).to_pylist()
                    if rule.false_positive
                    else None
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue  # checked on import; a case written by an older version may differ
            for j in range(m):
                if not (hits[j] or hits[m + j]):
                    continue
                if fps is not None and (fps[j] or fps[m + j]):
                    continue
                findings.append(_finding(paths[index[j]], rule))
        return findings


def _finding(path: str, rule: PathRule) -> Finding:
    message = f"path matches a filename IOC regex (sources: {', '.join(rule.sources)})"
    if rule.description:
        message += f": {rule.description}"
    return Finding(
        kind=KIND,
        severity=_severity(rule.score),
        subject=path,
        message=message,
        evidence={
            "regex": rule.regex,
            "score": rule.score,
            "false_positive_regex": rule.false_positive,
            "sources": list(rule.sources),
            "description": rule.description,
        },
        indicators=(f"{IndicatorType.FILENAME_REGEX}:{rule.regex}",),
    )
