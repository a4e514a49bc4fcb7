"""Sections of the HTML report that come from other stages' tables in the case."""

from __future__ import annotations

import duckdb

from taintline.case import Case
from taintline.report.html import CascadeRow


def cascade_rows(case: Case, limit: int = 500, run_id: str | None = None) -> tuple[CascadeRow, ...]:
    """The newest (or the given) cascade run's reached nodes with their explaining paths, if any.

    A case without a cascade (or an older schema) simply has no cascade section.
    """
    from taintline.graph import report_rows

    try:
        rows = report_rows(case, limit=limit, run_id=run_id)
    except duckdb.Error:
        return ()
    return tuple(CascadeRow(str(r[0]), str(r[1]), str(r[2]), tuple(r[3])) for r in rows)
