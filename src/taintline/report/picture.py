"""The cascade as one inline SVG, drawn here on the server side.

Time runs left to right (one axis for the cascade and the hosts' indicator contacts), one lane
per node kind, each node at its earliest compromise time, each explaining fact an edge from
the parent labelled with the fact's kind and source. Nodes compromised "since always" (seeds
with no known start) sit in a column of their own left of the axis. Inside a lane, nodes whose
labels would overlap go to the next row (greedy interval packing).

Written by hand: the page must not load third-party JavaScript nor reach the network, and no
Python SVG library lays out a time-lane graph; the markup is small. Every text goes through
``markupsafe.escape``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

from taintline.model import iso
from taintline.report.casedata import Bucket, Contact, PicNode, _short

#: Lane order: where a compromise comes from to where it goes.
LANES = ("software", "host", "build", "artifact", "release", "org", "indicator", "account")
LANE_TITLE = {
    "software": "software",
    "host": "hosts",
    "build": "builds",
    "artifact": "artifacts",
    "release": "releases",
    "org": "organisations",
    "indicator": "indicators",
    "account": "accounts",
}

LEFT = 150  # lane titles
ALWAYS_W = 70  # the "any time" column
PLOT_W = 1000
RIGHT = 200  # room for labels of the last nodes
ROW_H = 24
LANE_PAD = 10
AXIS_H = 34
CHAR_W = 7.0


@dataclass(frozen=True, slots=True)
class Picture:
    svg: Markup
    nodes: int
    edges: int
    width: int
    height: int


#: Share of the axis that is plain linear time; the rest spreads events evenly by rank, so a
#: burst of events in one week is not crushed next to a quiet year.
LINEAR_SHARE = 0.35
MAX_KNOTS = 2000


@dataclass(frozen=True, slots=True)
class TimeScale:
    """A monotone time axis: piecewise linear through knots placed at a blend of linear time
    and the rank of the events' times (quiet stretches are compressed, bursts spread out)."""

    lo: datetime
    hi: datetime
    x0: float
    width: float
    knots: tuple[float, ...]  # seconds since lo
    pos: tuple[float, ...]  # 0..1

    def x(self, when: datetime | None) -> float:
        if when is None:
            return LEFT + ALWAYS_W / 2
        sec = (when - self.lo).total_seconds()
        i = bisect.bisect_left(self.knots, sec)
        if i <= 0:
            frac = self.pos[0]
        elif i >= len(self.knots):
            frac = self.pos[-1]
        else:
            a, b = self.knots[i - 1], self.knots[i]
            pa, pb = self.pos[i - 1], self.pos[i]
            frac = pa + (pb - pa) * ((sec - a) / (b - a) if b > a else 0.0)
        return self.x0 + frac * self.width

    @property
    def compressed(self) -> bool:
        return len(self.knots) > 2


def time_scale(times: Sequence[datetime | None]) -> TimeScale:
    exact = [t for t in times if t is not None]
    if not exact:
        now = datetime.now(UTC)
        exact = [now - timedelta(days=1), now]
    lo, hi = min(exact), max(exact)
    # Knots at whole hours: events minutes apart (a burst of sightings) share one knot.
    known = sorted({t.replace(minute=0, second=0, microsecond=0) for t in exact})
    span = hi - lo
    span = max(span, timedelta(hours=2))
    pad = span * 0.03
    lo, hi = lo - pad, lo + span + pad
    total = (hi - lo).total_seconds()
    if len(known) > MAX_KNOTS:  # quantiles keep the shape
        step = (len(known) - 1) / (MAX_KNOTS - 1)
        known = [known[round(i * step)] for i in range(MAX_KNOTS)]
    secs = [0.0, *((t - lo).total_seconds() for t in known), total]
    n = len(secs) - 1
    pos = [
        LINEAR_SHARE * (sec / total) + (1 - LINEAR_SHARE) * (i / n) for i, sec in enumerate(secs)
    ]
    return TimeScale(lo, hi, LEFT + ALWAYS_W + 10, PLOT_W, tuple(secs), tuple(pos))


_TICK_LEVELS = ("year", "month", "week", "day", "6h", "hour")
TICK_GAP = 58.0


def _floor(t: datetime, level: str) -> datetime:
    if level == "year":
        return datetime(t.year, 1, 1, tzinfo=UTC)
    if level == "month":
        return datetime(t.year, t.month, 1, tzinfo=UTC)
    day = datetime(t.year, t.month, t.day, tzinfo=UTC)
    if level == "week":
        return day - timedelta(days=day.weekday())
    if level == "day":
        return day
    if level == "6h":
        return day + timedelta(hours=t.hour - t.hour % 6)
    return t.replace(minute=0, second=0, microsecond=0)


def _next(t: datetime, level: str) -> datetime:
    if level == "year":
        return t.replace(year=t.year + 1)
    if level == "month":
        return t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1)
    return t + {
        "week": timedelta(days=7),
        "day": timedelta(days=1),
        "6h": timedelta(hours=6),
    }.get(level, timedelta(hours=1))


def _tick_text(t: datetime, level: str) -> str:
    if level == "year":
        return f"{t.year}"
    if level == "month":
        return t.strftime("%Y-%m")
    if level in ("week", "day"):
        return t.strftime("%m-%d")
    return t.strftime("%m-%d %H:00")


def _ticks(scale: TimeScale) -> list[tuple[datetime, str]]:
    """Tick marks at calendar boundaries, coarse ones first, a finer one only where the axis
    has room for it (the compressed axis gives bursts more room)."""
    taken: list[float] = []
    out: list[tuple[datetime, str]] = []
    span = scale.hi - scale.lo
    for level in _TICK_LEVELS:
        approx = {
            "year": timedelta(days=365),
            "month": timedelta(days=30),
            "week": timedelta(days=7),
            "day": timedelta(days=1),
            "6h": timedelta(hours=6),
        }.get(level, timedelta(hours=1))
        if span / approx > 3000:
            continue
        t = _next(_floor(scale.lo, level), level)
        while t < scale.hi:
            x = scale.x(t)
            if all(abs(x - other) >= TICK_GAP for other in taken):
                taken.append(x)
                out.append((t, _tick_text(t, level)))
            t = _next(t, level)
    out.sort()
    return out


def _label(node: PicNode) -> str:
    return _short(node.ref, 30).partition(":")[2] or node.ref


#: Rows a lane may take with labels; beyond, its nodes are drawn without them (the name is in
#: the node's tooltip and panel).
MAX_LANE_ROWS = 6


def _pack(nodes: Sequence[PicNode], scale: TimeScale, labelled: bool) -> tuple[dict[int, int], int]:
    row_of: dict[int, int] = {}
    ends: list[float] = []
    for node in sorted(nodes, key=lambda n: (scale.x(n.time), n.index)):
        x = scale.x(node.time)
        width = 16 + (CHAR_W * len(_label(node)) if labelled else 0)
        for row, end in enumerate(ends):
            if end < x - 6:
                ends[row] = x + width
                row_of[node.index] = row
                break
        else:
            ends.append(x + width)
            row_of[node.index] = len(ends) - 1
    return row_of, len(ends)


def _lane_rows(nodes: Sequence[PicNode], scale: TimeScale) -> tuple[dict[int, int], bool]:
    """Row of each node inside its lane (labels must not overlap), and whether labels fit."""
    rows, count = _pack(nodes, scale, labelled=True)
    if count <= MAX_LANE_ROWS:
        return rows, True
    rows, count = _pack(nodes, scale, labelled=False)
    if count > 2 * MAX_LANE_ROWS:  # a dense stretch: circles may overlap, the lane stays low
        ordered = sorted(nodes, key=lambda n: (scale.x(n.time), n.index))
        rows = {n.index: i % (2 * MAX_LANE_ROWS) for i, n in enumerate(ordered)}
    return rows, False


def _f(value: float) -> str:
    return f"{value:.1f}"


def draw(
    nodes: Sequence[PicNode],
    contacts: Sequence[Contact] = (),
    buckets: Sequence[Bucket] = (),
) -> Picture:
    """The SVG of the cascade's drawn nodes, their explaining edges, the lanes' bucket counts
    (when aggregated) and the hosts' indicator contacts, on one time axis."""
    times: list[datetime | None] = [n.time for n in nodes]
    times += [t for c in contacts for t in (c.first, c.last)]
    times += [t for b in buckets for t in (b.start, b.end)]
    scale = time_scale(times)
    kinds = {n.kind for n in nodes} | {b.kind for b in buckets}
    lanes = [k for k in LANES if k in kinds] + sorted(kinds - set(LANES))
    parts: list[str] = []
    pos: dict[int, tuple[float, float]] = {}
    y = AXIS_H
    lane_boxes: list[tuple[str, float, float]] = []
    unlabelled: set[int] = set()
    for lane in lanes:
        members = [n for n in nodes if n.kind == lane]
        rows, labelled = _lane_rows(members, scale)
        if not labelled:
            unlabelled.update(n.index for n in members)
        n_rows = max([*rows.values(), 0]) + 1
        height = n_rows * ROW_H + 2 * LANE_PAD
        lane_boxes.append((lane, y, height))
        for n in members:
            pos[n.index] = (scale.x(n.time), y + LANE_PAD + rows[n.index] * ROW_H + ROW_H / 2)
        y += height
    cascade_bottom = y
    contact_rows: list[tuple[Contact, float, bool]] = []
    if contacts:
        y += 26
        previous = None
        for c in contacts:
            contact_rows.append((c, y + ROW_H / 2, c.host != previous))
            previous = c.host
            y += ROW_H
    height = int(y + AXIS_H)
    width = int(scale.x0 + scale.width + RIGHT)

    # lanes, the "any time" column and the grid
    for i, (lane, top, h) in enumerate(lane_boxes):
        parts.append(
            f'<rect class="lane{" alt" if i % 2 else ""}" x="0" y="{_f(top)}" width="{width}"'
            f' height="{_f(h)}"/>'
            f'<text class="lane-title" x="10" y="{_f(top + 18)}">{escape(LANE_TITLE.get(lane, lane))}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{_f(LEFT + ALWAYS_W / 2)}" y="{AXIS_H - 12}"'
        ' text-anchor="middle">any time</text>'
        f'<line class="always-sep" x1="{_f(LEFT + ALWAYS_W + 2)}" y1="{AXIS_H}"'
        f' x2="{_f(LEFT + ALWAYS_W + 2)}" y2="{height - AXIS_H}"/>'
    )
    for tick, text in _ticks(scale):
        tx = _f(scale.x(tick))
        parts.append(
            f'<line class="grid" x1="{tx}" y1="{AXIS_H}" x2="{tx}" y2="{height - AXIS_H}"/>'
            f'<text class="tick" x="{tx}" y="{AXIS_H - 12}" text-anchor="middle">{escape(text)}</text>'
            f'<text class="tick" x="{tx}" y="{height - 12}" text-anchor="middle">{escape(text)}</text>'
        )

    # aggregated counts per lane and time bucket
    if buckets:
        box = {lane: (top, h) for lane, top, h in lane_boxes}
        most: dict[str, int] = {}
        for b in buckets:
            most[b.kind] = max(most.get(b.kind, 0), b.count)
        for b in buckets:
            top, h = box[b.kind]
            bar = max(2.0, (h - 8) * b.count / most[b.kind])
            x1, x2 = scale.x(b.start), scale.x(b.end)
            parts.append(
                f'<rect class="bucket" x="{_f(x1)}" y="{_f(top + h - 4 - bar)}"'
                f' width="{_f(max(1.0, x2 - x1 - 1))}" height="{_f(bar)}"><title>'
                f"{escape(f'{b.count:,} {LANE_TITLE.get(b.kind, b.kind)} reached from {iso(b.start)} to {iso(b.end)}')}"
                "</title></rect>"
            )

    # explaining edges (drawn under the nodes)
    edges = 0
    for n in nodes:
        if n.parent is None or n.fact is None or n.parent not in pos:
            continue
        (x1, y1), (x2, y2) = pos[n.parent], pos[n.index]
        mid = (x1 + x2) / 2
        source = n.fact.source or "no source"
        text = f"{n.fact.edge_kind} · {source}"
        parts.append(
            f'<g class="edge{" quiet" if n.index in unlabelled else ""}" id="e-{n.index}"'
            f' data-i="{n.index}">'
            f'<path d="M{_f(x1)},{_f(y1)} C{_f(mid)},{_f(y1)} {_f(mid)},{_f(y2)} {_f(x2)},{_f(y2)}"/>'
            f'<text x="{_f(mid)}" y="{_f((y1 + y2) / 2 - 3)}" text-anchor="middle">{escape(text)}</text>'
            f"<title>{escape(f'{n.parent_ref} --{n.fact.edge_kind}--> {n.ref} [{source}]')}</title></g>"
        )
        edges += 1

    # nodes
    for n in nodes:
        x, cy = pos[n.index]
        cls = f"node k-{escape(n.kind)}" + (" root" if n.is_root else "")
        tip = f"{n.ref}\nearliest: {iso(n.time) or 'any time'}\nconfidence {n.confidence:.2f}"
        parts.append(
            f'<g class="{cls}" id="n-{n.index}" data-i="{n.index}" tabindex="0" role="button">'
            f'<circle cx="{_f(x)}" cy="{_f(cy)}" r="{7 if n.is_root else 6}"/>'
            + (
                ""
                if n.index in unlabelled
                else f'<text x="{_f(x + 10)}" y="{_f(cy + 4)}">{escape(_label(n))}</text>'
            )
            + f"<title>{escape(tip)}</title></g>"
        )

    # hosts' indicator contacts (hunt sightings) under the lanes, same axis
    if contact_rows:
        reached_at = {n.key.lower(): n for n in nodes if n.kind == "host"}
        parts.append(
            f'<rect class="lane contacts" x="0" y="{_f(cascade_bottom)}" width="{width}"'
            f' height="{_f(y - cascade_bottom)}"/>'
            f'<text class="lane-title" x="10" y="{_f(cascade_bottom + 18)}">indicator contact</text>'
        )
        for c, cy, first_of_host in contact_rows:
            x1, x2 = scale.x(c.first), scale.x(c.last or c.first)
            if first_of_host:
                parts.append(
                    f'<text class="host-label" x="{LEFT - 4}" y="{_f(cy + 4)}"'
                    f' text-anchor="end">{escape(_short(c.host, 22))}</text>'
                )
                reached = reached_at.get(c.host.lower())
                if reached is not None:
                    rx = scale.x(reached.time)
                    when = iso(reached.time) or "any time"
                    parts.append(
                        f'<path class="reached-mark" d="M{_f(rx)},{_f(cy - 7)} l6,7 l-6,7 l-6,-7 z">'
                        f"<title>{escape(f'cascade reached {reached.ref} at {when}')}</title></path>"
                    )
            tip = (
                f"{c.host} contacted {c.indicator}: first {iso(c.first)}, last {iso(c.last)},"
                f" {c.count} time(s)"
            )
            parts.append(
                f'<g class="contact"><line x1="{_f(x1)}" y1="{_f(cy)}" x2="{_f(max(x2, x1 + 3))}"'
                f' y2="{_f(cy)}"/><circle cx="{_f(x1)}" cy="{_f(cy)}" r="3.5"/>'
                f'<circle cx="{_f(x2)}" cy="{_f(cy)}" r="3.5"/>'
                f'<text x="{_f(max(x2, x1) + 8)}" y="{_f(cy + 4)}">{escape(_short(c.indicator, 48))}</text>'
                f"<title>{escape(tip)}</title></g>"
            )
    svg = (
        f'<svg id="cascade-svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="cascade over time"'
        f' data-nodes="{len(nodes)}" data-edges="{edges}">' + "".join(parts) + "</svg>"
    )
    return Picture(Markup(svg), len(nodes), edges, width, height)  # noqa: S704  (escaped above)
