"""Findings and the per-product summary from a match table (:func:`taintline.eol.match.match`).

* ``software.end-of-life`` (medium; low when the software was removed since): a host (or a
  release, for an SBOM component) has software whose cycle reached its end of life;
* ``software.installed-after-end-of-life`` (high): ... and it was installed on or after that
  day: somebody fetched retired software, the X_TRADER pattern;
* ``software.end-of-support`` (low): active support has ended, security support has not.

One finding per host (or release) and software; the rows behind it (the same program seen in
two inventories) are folded into its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from taintline.case import aware_utc
from taintline.eol.match import Matches
from taintline.model import Finding, FindingSource, Severity

END_OF_LIFE = "software.end-of-life"
INSTALLED_AFTER = "software.installed-after-end-of-life"
END_OF_SUPPORT = "software.end-of-support"
KINDS = (INSTALLED_AFTER, END_OF_LIFE, END_OF_SUPPORT)

#: Matched rows past an end, folded per host (or release) and software: the per-row work is on
#: narrow columns and integer identities; the identity's facts are joined to the groups.
_FOLDED = """
SELECT r.host, r.container, r.node, r.id,
       min(r.installed_at) AS installed_at,
       CASE WHEN bool_or(r.removed_at IS NULL) THEN NULL ELSE max(r.removed_at) END AS removed_at,
       bool_or(coalesce(r.installed_at >= m.eol_date::TIMESTAMP, false)) AS installed_after_eol,
       min(r.installed_at) FILTER (WHERE r.installed_at >= m.eol_date::TIMESTAMP)
           AS installed_after_at,
       list(DISTINCT r.source ORDER BY r.source) FILTER (WHERE r.source IS NOT NULL) AS sources
FROM tl_rows r JOIN tl_ident_match m ON m.id = r.id
WHERE m.status IN ('end-of-life', 'end-of-support')
GROUP BY r.host, r.container, r.node, r.id
"""

_GROUPED = f"""
SELECT g.host, g.container, coalesce(g.node, concat_ws('@', m.name, m.version)) AS node,
       m.name, m.version, m.product, m.cycle, m.status, m.eol_date, m.eol_flag, m.eoas_date,
       m.eoas_flag, m.latest, m.cycle_source, m.cycle_origin, m.confidence, m.how,
       g.installed_at, g.removed_at, g.installed_after_eol, g.installed_after_at, g.sources
FROM ({_FOLDED}) g JOIN tl_ident_match m ON m.id = g.id
ORDER BY m.product, m.cycle, g.host NULLS LAST, g.container, 3
"""  # noqa: S608  (constant SQL)

_SUMMARY = """
WITH groups AS (
    SELECT product, cycle, status, any_value(eol_date) AS eol_date,
           any_value(eoas_date) AS eoas_date,
           coalesce(any_value(reason), CASE WHEN status = 'unknown'
               THEN 'no end-of-life date or flag for this cycle' END) AS reason,
           list(DISTINCT how ORDER BY how) AS matched_by,
           (dense_rank() OVER (ORDER BY product, cycle, status))::INTEGER AS grp
    FROM tl_ident_match GROUP BY product, cycle, status
), ident AS (
    SELECT m.id, g.grp, m.eol_date FROM tl_ident_match m
    JOIN groups g ON g.product = m.product AND g.cycle IS NOT DISTINCT FROM m.cycle
                 AND g.status = m.status
), per_host AS (
    SELECT i.grp, r.host, r.container,
           bool_or(coalesce(r.installed_at >= i.eol_date::TIMESTAMP, false)) AS after,
           count(*) AS n
    FROM tl_rows r JOIN ident i ON i.id = r.id
    GROUP BY i.grp, r.host, r.container
), counts AS (
    SELECT grp, count(DISTINCT host) AS hosts,
           count(DISTINCT host) FILTER (WHERE after) AS hosts_installed_after,
           count(DISTINCT container) AS releases, sum(n) AS rows
    FROM per_host GROUP BY grp
)
SELECT g.product, g.cycle, g.status, g.eol_date, g.eoas_date, g.reason, c.hosts,
       c.hosts_installed_after, c.releases, c.rows, g.matched_by
FROM groups g JOIN counts c ON c.grp = g.grp
ORDER BY CASE g.status WHEN 'end-of-life' THEN 0 WHEN 'end-of-support' THEN 1
                       WHEN 'unknown' THEN 2 ELSE 3 END,
         c.hosts DESC, g.product, g.cycle NULLS LAST
"""


@dataclass(frozen=True, slots=True)
class ProductRow:
    """One line of the table grouped by product: a cycle in one status, with host counts."""

    product: str
    cycle: str | None
    status: str
    eol_date: date | None
    eoas_date: date | None
    reason: str | None
    hosts: int
    hosts_installed_after: int
    releases: int
    rows: int
    matched_by: tuple[str, ...]


def summary(matches: Matches) -> list[ProductRow]:
    cur = matches.con
    return [
        ProductRow(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            int(r[6]),
            int(r[7]),
            int(r[8]),
            int(r[9]),
            tuple(r[10] or ()),
        )
        for r in cur.execute(_SUMMARY).fetchall()
    ]


def ago(since: date, as_of: date) -> str:
    """``"5 years 8 months"``, ``"3 months"``, ``"12 days"``, ``"today"``; ``in N days`` for
    the future."""
    days = (as_of - since).days
    if days == 0:
        return "today"
    if days < 0:
        return f"in {-days} days"
    months = (as_of.year - since.year) * 12 + as_of.month - since.month
    if as_of.day < since.day:
        months -= 1
    if months < 1:
        return f"{days} day{'s' * (days != 1)}"
    years, months = divmod(months, 12)
    parts = []
    if years:
        parts.append(f"{years} year{'s' * (years != 1)}")
    if months:
        parts.append(f"{months} month{'s' * (months != 1)}")
    return " ".join(parts)


def _day(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).date().isoformat() if value else None


def finding_count(matches: Matches) -> int:
    """How many findings :func:`findings` would make (counted in DuckDB, none built)."""
    row = matches.con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT r.host, r.container, r.node, r.id FROM tl_rows r"
        " JOIN tl_ident_match m ON m.id = r.id"
        " WHERE m.status IN ('end-of-life', 'end-of-support'))"
    ).fetchone()
    return int(row[0]) if row else 0


def findings(matches: Matches, as_of: date) -> list[Finding]:
    """The findings of every end-of-life and end-of-support match, worst kind per software."""
    result = matches.con.execute(_GROUPED)
    names = [d[0] for d in result.description or ()]
    out: list[Finding] = []
    for values in result.fetchall():
        out.append(_finding(dict(zip(names, values, strict=True)), as_of))
    return out


def _finding(r: dict[str, Any], as_of: date) -> Finding:
    eol: date | None = r["eol_date"]
    eoas: date | None = r["eoas_date"]
    installed: datetime | None = r["installed_at"]
    removed: datetime | None = r["removed_at"]
    what = f"{r['name'] or r['node']} {r['version'] or ''}".strip()
    cycle = f"{r['product']} {r['cycle']}"
    where = f"on {r['host']}" if r["host"] else f"in {r['container']}"
    evidence: dict[str, Any] = {
        "product": r["product"],
        "cycle": r["cycle"],
        "version": r["version"],
        "eol": eol.isoformat() if eol else (True if r["eol_flag"] else None),
        "eoas": eoas.isoformat() if eoas else (True if r["eoas_flag"] else None),
        "latest": r["latest"],
        "matched_by": r["how"],
        "confidence": round(float(r["confidence"]), 2),
        "installed_at": _day(installed),
        "removed_at": _day(removed),
        "sources": list(r["sources"] or []),
        "cycle_source": r["cycle_source"],
        "cycle_origin": r["cycle_origin"],
    }
    if r["container"]:
        evidence["release"] = r["container"]
    time: datetime | None
    if r["status"] == "end-of-support":
        kind, severity = END_OF_SUPPORT, Severity.LOW
        end = eoas
        message = f"{what} ({cycle}) {where}: active support ended " + (
            f"on {eoas.isoformat()} ({ago(eoas, as_of)} ago)" if eoas else "(date not published)"
        )
        if eol:
            message += f"; end of life {eol.isoformat()}"
    else:
        end = eol
        ended = (
            f"reached end of life on {eol.isoformat()} ({ago(eol, as_of)} ago)"
            if eol
            else "is past its end of life (date not published)"
        )
        if r["installed_after_eol"]:
            kind, severity = INSTALLED_AFTER, Severity.HIGH
            after: datetime | None = r["installed_after_at"]
            installed = after or installed
            message = (
                f"{what} ({cycle}) {where} was installed on {_day(installed)}, after it {ended}"
            )
        else:
            kind = END_OF_LIFE
            severity = Severity.LOW if removed and removed.date() <= as_of else Severity.MEDIUM
            message = f"{what} ({cycle}) {where} {ended}"
    if removed:
        message += f"; removed {_day(removed)}"
    if end is not None:
        evidence["days_since_end"] = (as_of - end).days
        start = datetime(end.year, end.month, end.day, tzinfo=UTC)
        time = max(start, aware_utc(installed) or start)
    else:
        time = aware_utc(installed)
    subject = r["node"] if r["host"] else f"release:{r['container']}!/{r['node']}"
    return Finding(
        kind=kind,
        severity=severity,
        subject=subject,
        message=message,
        source=FindingSource.EOL,
        host=r["host"],
        time=time,
        evidence={k: v for k, v in evidence.items() if v is not None and v != []},
    )
