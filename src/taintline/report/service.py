"""``report_case``: the library call behind ``taintline report`` (render what a case knows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from taintline.case import Case
from taintline.model import Finding, Severity
from taintline.report import OutputFormat, RenderContext, render_findings

#: Formats that read the whole case (answers, cascade, contacts), not only the findings.
CASE_FORMATS = (OutputFormat.HTML, OutputFormat.MARKDOWN)


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    #: The findings the filters kept (what ``--fail-on`` judges).
    findings: list[Finding]
    #: How many findings the output holds (a case report caps its table).
    written: int


def report_case(
    case: Case,
    fmt: OutputFormat,
    out: TextIO,
    *,
    title: str = "taintline report",
    case_path: str = "",
    cascade_run: str | None = None,
    kind_prefix: str | None = None,
    min_severity: Severity | None = None,
) -> ReportOutcome:
    """Write ``case`` to ``out`` in ``fmt``. HTML and Markdown read the whole case (the four
    answers, the cascade run ``cascade_run`` or the newest, the contacts); the other formats
    write the findings. Raises :class:`~taintline.errors.UsageError` for an unknown run."""
    findings = case.findings(kind_prefix=kind_prefix, min_severity=min_severity)
    if fmt not in CASE_FORMATS:
        render_findings(findings, fmt, out, RenderContext(command="report", title=title))
        return ReportOutcome(findings, len(findings))
    from taintline.report import casedata

    data = casedata.from_case(
        case,
        title=title,
        case_path=case_path,
        run_id=cascade_run,
        kind_prefix=kind_prefix,
        min_severity=min_severity,
    )
    if fmt is OutputFormat.HTML:
        from taintline.report.html import render_report

        render_report(data, out)
    else:
        from taintline.report.markdown import render_summary

        render_summary(data, out)
    return ReportOutcome(findings, data.findings_total)
