"""``taintline verify BASELINE CANDIDATE``: is the candidate release what it should be?

:func:`verify` opens both sides (:mod:`taintline.release.sides`), pairs their files, has the
files it needs analysed, judges every difference (:mod:`taintline.release.compare`), matches the
candidate's files against the case's hash indicators, cross-checks provenance
(:mod:`taintline.release.provenance`), applies ``--expect`` rules, and records the findings
(source ``release``) in the case with ``contains`` edges from the candidate release to every
artifact it flags, so that ``cascade --from-findings`` starts from them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taintline.case import Case
from taintline.errors import Problem, TaintlineError
from taintline.limits import ScanLimits
from taintline.model import (
    Edge,
    EdgeKind,
    Finding,
    FindingSource,
    Node,
    NodeKind,
    NodeRef,
    Severity,
)
from taintline.release import expect as expect_mod
from taintline.release import provenance as prov_mod
from taintline.release.compare import (
    Judge,
    app_sample,
    app_signers,
    looks_native,
    needs_facts,
    pair,
    unrelated,
)
from taintline.release.kinds import ReleaseKind
from taintline.release.model import SEP, Release
from taintline.release.sides import Reader, SideProgress
from taintline.scan.interface import AnalysisContext


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    #: Two builds of one source: versions are equal by definition, anything left after
    #: normalising signatures, time stamps, checksums and build ids is a finding.
    rebuild: bool = False
    expectations: tuple[expect_mod.Expectation, ...] = ()
    provenance: tuple[Path, ...] = ()
    #: Expected builder ids for the provenance check (empty: any builder).
    builders: tuple[str, ...] = ()
    limits: ScanLimits = field(default_factory=ScanLimits)
    workers: int | None = None
    ca_bundle: Path | None = None
    #: Write findings (and the graph edges) into the case.
    record: bool = True
    #: Load the shipped campaign pack into an empty case first (as ``scan`` does).
    ensure_intel: bool = True


@dataclass(slots=True)
class VerifyResult:
    findings: list[Finding]
    baseline: Release
    candidate: Release
    run_id: str | None = None
    unrelated: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def rank_key(f: Finding) -> tuple[int, str, str]:
    return (-f.severity.rank, f.kind, f.subject)


def verify(
    baseline: str | Path | Release,
    candidate: str | Path | Release,
    case: Case,
    options: VerifyOptions | None = None,
    progress: SideProgress | None = None,
) -> VerifyResult:
    """Compare ``candidate`` with ``baseline`` (each a folder, an installer or archive, a
    manifest or an SBOM path, or an already read :class:`Release`)."""
    options = options or VerifyOptions()
    started = time.monotonic()
    problems: list[Problem] = []
    # the case's intel, the trust store and LIEF's import are prepared on a thread while the
    # folders are hashed (the main thread does not touch the case until it is ready)
    with ThreadPoolExecutor(1, thread_name_prefix="taintline-verify-prep") as prep:
        context = prep.submit(_prepare, case, options, problems)
        reader = Reader(context, options.limits, options.workers, progress, options.ca_bundle)
        base = (
            baseline if isinstance(baseline, Release) else reader.open(baseline, all_hashes=False)
        )
        cand = candidate if isinstance(candidate, Release) else reader.open(candidate)
        reader.analysis_context()  # joined (its errors raised) before the case is used again
    read_seconds = time.monotonic() - started
    result = compare_releases(base, cand, case, options, reader)
    result.problems = [*problems, *base.problems, *cand.problems]
    result.stats["read_seconds"] = round(read_seconds, 3)
    result.stats["seconds"] = round(time.monotonic() - started, 3)
    if options.record:
        _record(case, result, f"verify {base.label} {cand.label}")
    return result


def _prepare(case: Case, options: VerifyOptions, problems: list[Problem]) -> AnalysisContext:
    if options.ensure_intel:
        from taintline.intel.store import ensure_intel

        try:
            ensure_intel(case)
        except TaintlineError as exc:  # intel is a bonus here, not a requirement
            problems.append(Problem("intel", f"campaign intel not loaded: {exc.diagnostics()}"))
    from taintline.scan import lieflazy
    from taintline.scan.engine import build_context

    context = build_context(case, options.ca_bundle)
    lieflazy.ready()
    return context


def compare_releases(
    base: Release, cand: Release, case: Case | None, options: VerifyOptions, reader: Reader
) -> VerifyResult:
    judge = Judge(base, cand, rebuild=options.rebuild)
    pairing = pair(base, cand)
    for _ in range(options.limits.max_depth + 1):
        need_b, need_c = needs_facts(pairing, base, cand)
        before = sum(e.analysed for e in base.entries.values()) + sum(
            e.analysed for e in cand.entries.values()
        )
        reader.analyse(base, sorted(need_b))
        reader.analyse(cand, sorted(need_c))
        after = sum(e.analysed for e in base.entries.values()) + sum(
            e.analysed for e in cand.entries.values()
        )
        if after == before:
            break
        pairing = pair(base, cand)
    findings: list[Finding] = list(reader.errors)
    stats: dict[str, Any] = {
        "baseline_files": len(base.entries),
        "candidate_files": len(cand.entries),
        "same": len(pairing.same),
        "changed": len(pairing.changed),
        "added": len(pairing.added),
        "removed": len(pairing.removed),
        "moved": len(pairing.moved),
        "renamed": len(pairing.renamed),
    }
    if unrelated(pairing, base, cand):
        findings.append(
            judge.finding(
                ReleaseKind.UNRELATED,
                "",
                f"{base.label} and {cand.label} look like two different products: only"
                f" {len(pairing.same) + len(pairing.changed) + len(pairing.moved)} of"
                f" {max(len(base.entries), len(cand.entries))} files match by path or content;"
                " file-by-file differences not reported",
                old={"label": base.label, "product": base.product.name, "files": len(base.entries)},
                new={"label": cand.label, "product": cand.product.name, "files": len(cand.entries)},
            )
        )
        findings = [replace(findings[-1], subject=cand.label), *findings[:-1]]
        findings.sort(key=rank_key)
        return VerifyResult(findings, base, cand, unrelated=True, stats=stats)

    new_natives = [p for p in pairing.added if looks_native(cand.entries[p])]
    samples = {p: app_sample(pairing, cand, p) for p in new_natives}
    reader.analyse(cand, sorted({s for sample in samples.values() for s in sample}))

    per_file: list[Finding] = []
    for p in pairing.changed:
        per_file += judge.changed(p)
    for old, new in pairing.renamed:
        per_file += [_with_old_path(f, old) for f in judge.changed(new, old)]
    for p in pairing.added:
        signers = app_signers(cand, samples[p]) if p in samples else None
        per_file += judge.added(p, signers)
    per_file += [judge.removed(p) for p in pairing.removed]
    per_file += [judge.moved(o, n) for o, n in pairing.moved]
    for p in pairing.changed:
        if base.entries[p].container and cand.entries[p].container:
            under = sum(1 for f in per_file if str(f.evidence.get("path", "")).startswith(p + SEP))
            found = judge.container(p, under)
            if found is not None:
                per_file.append(found)
    findings += per_file
    if case is not None:
        findings += _indicator_matches(case, judge, pairing.candidate_paths)
        prov = prov_mod.Provenance()
        if options.provenance:
            prov = prov_mod.from_files(list(options.provenance))
        else:
            stated = prov_mod.from_case(case)
            if stated and prov_mod.relevant(stated, cand):
                prov = stated
        if prov:
            findings += prov_mod.check(prov, judge, options.builders)
            stats["provenance_statements"] = sum(len(v) for v in prov.by_digest.values())
    if options.expectations:
        findings = expect_mod.apply(findings, options.expectations)
    findings.sort(key=rank_key)
    return VerifyResult(findings, base, cand, stats=stats)


def _with_old_path(finding: Finding, old_path: str) -> Finding:
    evidence = dict(finding.evidence)
    evidence["old_path"] = old_path
    return replace(finding, evidence=evidence)


def _indicator_matches(case: Case, judge: Judge, paths: Sequence[str]) -> list[Finding]:
    from taintline.scan.hashes import HashedFile, match_hashes

    files = []
    for p in paths:
        e = judge.cand.entries[p]
        if e.sha256 or e.sha1 or e.md5:
            files.append(HashedFile(p, e.md5 or "", e.sha1 or "", e.sha256 or "", e.size or 0))
    out = []
    for hit in match_hashes(case, files):
        ev = dict(hit.evidence)
        f = judge.finding(
            ReleaseKind.INDICATOR_MATCH,
            hit.subject,
            f"shipped file {hit.message}",
            matches=ev.get("matches"),
        )
        out.append(replace(f, indicators=hit.indicators))
    return out


def _record(case: Case, result: VerifyResult, command: str) -> None:
    run_id = case.start_run(command)
    result.run_id = run_id
    status = "ok"
    try:
        with case.transaction():
            case.add_findings(result.findings, run_id=run_id, origin="verify")
            _graph_facts(case, result)
    except BaseException:
        status = "failed"
        raise
    finally:
        with contextlib.suppress(Exception):
            case.finish_run(run_id, status, {**result.stats, "findings": len(result.findings)})


def _graph_facts(case: Case, result: VerifyResult) -> None:
    """The candidate release ``contains`` each artifact it is flagged for (high or worse)."""
    from taintline.graph.readers.common import artifact_ref, release_ref

    cand = result.candidate
    if cand.product.name is None:
        return
    release = release_ref(cand.product.name, cand.product.version)
    nodes = [Node(release.kind, release.key, {"name": cand.product.name,
                                               "version": cand.product.version})]  # fmt: skip
    edges: list[Edge] = []
    for f in result.findings:
        sha = f.evidence.get("sha256")
        if f.source != FindingSource.RELEASE or not f.severity.at_least(Severity.HIGH):
            continue
        if not isinstance(sha, str) or len(sha) != 64:
            continue
        art: NodeRef = artifact_ref(sha)
        nodes.append(Node(NodeKind.ARTIFACT, art.key, {"name": str(f.evidence.get("path", ""))}))
        edges.append(Edge(EdgeKind.CONTAINS, release, art, f"verify:{cand.label}"))
    if edges:
        case.add_nodes(nodes, source="verify")
        case.add_edges(edges)
