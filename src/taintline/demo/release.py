"""Demo stage: verify a tampered "3CX Desktop App" release against the clean one before it ships.

Both releases are generated (:mod:`taintline.testing.releases`: harmless bytes, throw-away
signing keys). The candidate repeats the three tricks of the real 18.12.416 build: a native
library changed under the same version and signer (``ffmpeg.dll``), a signed library with bytes
hidden inside its certificate table (``d3dcompiler_47.dll``), a new unsigned library in the app
bundle (``libupdate.dylib``). ``verify`` ranks those three on top; the cascade then starts from
its findings and reaches the customers who received the release (from the graph stage).
"""

from __future__ import annotations

from collections import Counter

from taintline.demo.context import DemoContext, StageResult
from taintline.model import Severity

BASE = "3CXDesktopApp-18.12.407"
CANDIDATE = "3CXDesktopApp-18.12.416"


def stage(ctx: DemoContext) -> StageResult:
    from taintline.graph.service import run_cascade
    from taintline.graph.store import seeds_from_findings
    from taintline.release.verify import VerifyOptions, verify
    from taintline.testing import releases
    from taintline.testing.signing import osslsigncode_path

    title = "Release gate: verify 18.12.416 against 18.12.407 before it ships"
    if osslsigncode_path() is None:
        return StageResult(title, ("(note: osslsigncode not installed: no signed release built)",))
    folder = ctx.workdir / "release"
    signers = releases.make_signers(folder / "pki")
    base = releases.write_folder(releases.release_files(signers, version="18.12.407"),
                                 folder / BASE)  # fmt: skip
    cand = releases.write_folder(
        releases.release_files(signers, version="18.12.416", tamper=True), folder / CANDIDATE
    )
    result = verify(base, cand, ctx.case, VerifyOptions(workers=0, ensure_intel=False))
    lines = [
        f"baseline {base}",
        f"candidate {cand}",
        f"{result.stats['changed']} changed, {result.stats['added']} new,"
        f" {result.stats['removed']} removed, {result.stats['same']} unchanged files",
        "ranked, worst first:",
    ]
    for f in result.findings[:6]:
        lines.append(f"  {str(f.severity).upper()} {f.kind}: {f.evidence.get('path')}: {f.message}")
    counts = Counter(str(f.severity) for f in result.findings)
    lines.append("findings: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    seeds = [s for s in seeds_from_findings(ctx.case) if s.why.startswith("finding release.")]
    if seeds:
        outcome = run_cascade(ctx.case, seeds, record_findings=False)
        reached = sorted(
            str(outcome.graph.ref(n))
            for n in outcome.result.reached.tolist()
            if str(outcome.graph.ref(n)).startswith(("org:", "host:", "release:"))
        )
        lines.append(
            f"cascade from verify's {len(seeds)} flagged file(s) reaches: "
            + (", ".join(reached) or "nothing in the graph")
        )
    ctx.shared["release"] = {"run_id": result.run_id, "findings": len(result.findings)}
    top = sum(1 for f in result.findings if f.severity is Severity.CRITICAL)
    lines.append(f"{top} critical: this release must not ship")
    return StageResult(title, tuple(lines), len(result.findings))
