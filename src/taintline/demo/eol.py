"""Demo stage: X_TRADER found on the developer's home PC from the inventory, not only from the
scan: the inventory is matched against the campaign pack's end-of-life facts, and the
installer's graph node gets its end date before the cascade stage asks for root causes."""

from __future__ import annotations

from taintline.demo.context import DemoContext, StageResult
from taintline.demo.graph import short, write_story
from taintline.eol.service import EolOptions, run_eol
from taintline.model import NodeRef


def stage(ctx: DemoContext) -> StageResult:
    files = write_story(ctx.workdir / "graph")
    outcome = run_eol(ctx.case, EolOptions(inventories=[files.inventory]))
    ctx.shared.setdefault("graph_added", set()).add(files.inventory)
    lines = [
        f"taintline eol {files.inventory.name}: {outcome.observed} installed program(s) checked"
        f" against {outcome.products} product(s) with end-of-life data"
        f" (as of {outcome.as_of.isoformat()})"
    ]
    for row in outcome.summary:
        lines.append(
            f"  {row.product} {row.cycle or '?'}: {row.status}"
            + (f" since {row.eol_date.isoformat()}" if row.eol_date else "")
            + f", {row.hosts} host(s), {row.hosts_installed_after} installed after the end"
        )
    for f in sorted(outcome.findings, key=lambda f: -f.severity.rank):
        lines.append(f"  {str(f.severity).upper()} {f.kind}: {f.message}")
    for f in outcome.findings:
        if f.kind == "software.installed-after-end-of-life":
            node = NodeRef.parse(f.subject)
            lines.append(
                f"graph: {short(node)} now carries end_of_life {f.evidence.get('eol')}:"
                " the cascade lists it first among root-cause candidates"
            )
    return StageResult(
        title="End of life: retired software on the fleet",
        lines=tuple(lines),
        findings=len(outcome.findings),
    )
