"""Fold the engines' hit groups into sightings, and sightings into findings and graph edges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from taintline.hunt.certs import NO_HOST
from taintline.hunt.indicators import IndicatorSet
from taintline.hunt.model import FileLocation, HitGroup, Sighting
from taintline.model import (
    Edge,
    EdgeKind,
    Finding,
    FindingSource,
    IndicatorType,
    NodeKind,
    NodeRef,
    Severity,
    iso,
)

#: At most this many files listed per sighting.
MAX_LOCATIONS = 20

#: Finding kind per indicator type.
FINDING_KINDS: dict[IndicatorType, str] = {
    IndicatorType.DOMAIN: "network.ioc.domain",
    IndicatorType.URL: "network.ioc.url",
    IndicatorType.IPV4: "network.ioc.ip",
    IndicatorType.IPV6: "network.ioc.ip",
    IndicatorType.CIDR: "network.ioc.cidr",
    IndicatorType.MD5: "network.ioc.file-hash",
    IndicatorType.SHA1: "network.ioc.file-hash",
    IndicatorType.SHA256: "network.ioc.file-hash",
}


def _time(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def fold(
    groups: Iterable[HitGroup], indicators: IndicatorSet, max_lines: int = 10
) -> list[Sighting]:
    """One sighting per (host, indicator), ordered by host then first contact."""
    by_key: dict[tuple[str, str, str], list[HitGroup]] = {}
    for g in groups:
        by_key.setdefault((g.host, g.indicator_type, g.indicator_value), []).append(g)
    out: list[Sighting] = []
    for (host, itype, value), items in by_key.items():
        firsts = [g.first_us for g in items if g.first_us is not None]
        lasts = [g.last_us for g in items if g.last_us is not None]
        per_file: dict[str, list[HitGroup]] = {}
        for g in items:
            per_file.setdefault(g.path, []).append(g)
        locations = []
        for path in sorted(per_file):
            gs = per_file[path]
            lines = sorted({ln for g in gs for ln in g.lines})[:max_lines]
            locations.append(
                FileLocation(
                    path=path,
                    first_line=min(g.min_line for g in gs),
                    last_line=max(g.max_line for g in gs),
                    count=sum(g.count for g in gs),
                    lines=tuple(lines),
                )
            )
        info = indicators.info.get(f"{itype}:{value}")
        out.append(
            Sighting(
                host=host,
                indicator_type=IndicatorType(itype),
                indicator_value=value,
                first_seen=_time(min(firsts)) if firsts else None,
                last_seen=_time(max(lasts)) if lasts else None,
                count=sum(g.count for g in items),
                sources=info.sources if info else (),
                campaign=info.campaign if info else None,
                fields=tuple(sorted({g.field for g in items})),
                observed=tuple(sorted({g.observed for g in items if g.observed}))[:5],
                locations=tuple(locations[:MAX_LOCATIONS]),
            )
        )
    out.sort(
        key=lambda s: (s.host, s.first_seen or datetime.max.replace(tzinfo=UTC), s.indicator_key)
    )
    return out


def to_finding(s: Sighting) -> Finding:
    campaign = f" ({s.campaign})" if s.campaign else ""
    when = iso(s.first_seen) or "an unknown time"
    if s.host == NO_HOST:
        message = (
            f"a certificate naming {s.indicator_type} indicator {s.indicator_value}{campaign}"
            f" was logged ({s.count} time(s), first {when}), but no connection in the given"
            " logs ties it to a host: add the ssl.log, files.log or conn.log of the same time"
        )
    else:
        message = (
            f"{s.host} contacted {s.indicator_type} indicator {s.indicator_value}{campaign}: "
            f"{s.count} time(s), first {when}, last {iso(s.last_seen) or 'unknown'}"
        )
    return Finding(
        kind=FINDING_KINDS.get(s.indicator_type, "network.ioc"),
        severity=Severity.HIGH,
        subject=s.host,
        message=message,
        source=FindingSource.HUNT,
        host=None if s.host == NO_HOST else s.host,
        time=s.first_seen,
        evidence={
            "first_seen": iso(s.first_seen),
            "last_seen": iso(s.last_seen),
            "count": s.count,
            "indicator": s.indicator_key,
            "sources": list(s.sources),
            "campaign": s.campaign,
            "fields": list(s.fields),
            "observed": list(s.observed),
            "locations": [loc.text() for loc in s.locations],
            "lines": {loc.path: list(loc.lines) for loc in s.locations},
        },
        indicators=(s.indicator_key,),
    )


def to_edge(s: Sighting) -> Edge:
    return Edge(
        kind=EdgeKind.OBSERVED_ON,
        src=NodeRef(NodeKind.INDICATOR, s.indicator_key),
        dst=NodeRef(NodeKind.HOST, s.host),
        source=", ".join(loc.path for loc in s.locations[:3]) or "hunt",
        valid_from=s.first_seen,
        valid_until=s.last_seen,
        attrs={"count": s.count, "fields": list(s.fields), "sources": list(s.sources)},
    )


def findings(sightings: Sequence[Sighting]) -> list[Finding]:
    return [to_finding(s) for s in sightings]
