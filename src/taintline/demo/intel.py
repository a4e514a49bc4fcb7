"""Demo stage 1: load the built-in 3CX / X_TRADER pack and say what the case now knows."""

from __future__ import annotations

from taintline.demo.context import DemoContext, StageResult
from taintline.intel.store import DEFAULT_PACK, eol_map, ingest_pack, load_yara_sources


def stage(ctx: DemoContext) -> StageResult:
    report = ingest_pack(ctx.case, DEFAULT_PACK)
    counts = ctx.case.indicator_counts_by_type()
    sources = ctx.case.con.execute(
        "SELECT source, count(*) FROM indicator_sources GROUP BY source ORDER BY count(*) DESC, source"
    ).fetchall()
    multi = ctx.case.con.execute(
        "SELECT count(*) FROM indicators WHERE len(sources) > 1"
    ).fetchone()
    yara = load_yara_sources(ctx.case)
    eol = eol_map(ctx.case)
    ctx.shared["intel"] = {"pack": DEFAULT_PACK, "indicators": sum(counts.values()), "eol": eol}
    lines = [
        f"loaded pack {DEFAULT_PACK}: {report.new} statements, {sum(counts.values())} indicators"
        f" ({multi[0] if multi else 0} stated by more than one report)",
        "by type: " + ", ".join(f"{n} {t}" for t, n in counts.items()),
        "sources: " + "; ".join(f"{s} ({n})" for s, n in sources),
        f"YARA: {sum(len(y.rules) for y in yara)} rules compiled with yara-x"
        + (f" ({', '.join(r for y in yara for r in y.rules)})" if yara else ""),
        "end of life: " + (", ".join(f"{p} {d}" for p, d in eol.items()) or "none"),
    ]
    problems = report.problems
    if problems:
        lines.append(
            f"{len(problems)} problem(s): " + "; ".join(p.one_line() for p in problems[:3])
        )
    return StageResult(title="Threat intel: the 3CX / X_TRADER pack", lines=tuple(lines))
