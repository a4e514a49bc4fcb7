"""Provenance cross-check: every shipped file of the candidate must be the subject of an
in-toto/SLSA provenance statement with the same SHA-256, made by an expected builder.

Statements come from ``--provenance FILE`` (read with the graph stage's in-toto reader, DSSE
envelopes included) or from the case (``produced`` edges of builds that carry a ``builder``,
as ``taintline graph add provenance.intoto.jsonl`` records them). Statements in the case are
only used when one of them names a file of this candidate (by digest or name): a case about
other software says nothing about this release.

The shipped files are the files of a folder (top level of the release, containers not opened)
or the installer/archive itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from taintline.case import Case
from taintline.errors import InputError, Problem
from taintline.model import EdgeKind, Finding, NodeKind
from taintline.release.compare import Judge
from taintline.release.kinds import ReleaseKind
from taintline.release.model import SEP, Release


@dataclass(slots=True)
class Provenance:
    #: sha256 -> [(subject name, builder id, where stated)]
    by_digest: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    #: subject base name -> digests stated for it
    by_name: dict[str, set[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, sha256: str, name: str | None, builder: str, where: str) -> None:
        self.by_digest.setdefault(sha256, []).append((name or "", builder, where))
        if name:
            self.by_name.setdefault(_base(name), set()).add(sha256)

    def __bool__(self) -> bool:
        return bool(self.by_digest)


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def from_files(paths: Sequence[Path]) -> Provenance:
    from taintline.graph.interface import ReadContext
    from taintline.graph.readers.intoto import InToto

    prov = Provenance()
    reader = InToto()
    ctx = ReadContext(recorded_at=datetime.now(UTC))
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
        facts = reader.read(path, data, ctx)
        prov.problems.extend(facts.problems)
        builders = {
            n.key: str(n.attrs.get("builder", "")) for n in facts.nodes if n.kind is NodeKind.BUILD
        }
        names = {n.key: n.attrs.get("name") for n in facts.nodes if n.kind is NodeKind.ARTIFACT}
        for e in facts.edges:
            if e.kind is EdgeKind.PRODUCED:
                name = names.get(e.dst.key)
                prov.add(
                    e.dst.key,
                    name if isinstance(name, str) else None,
                    builders.get(e.src.key, ""),
                    e.source,
                )
        if not facts.edges and not facts.problems:
            raise InputError(str(path), "no in-toto/SLSA provenance statement in it")
    return prov


def from_case(case: Case) -> Provenance:
    prov = Provenance()
    rows = case.con.execute(
        """
        SELECT e.dst_key, json_extract_string(a.attrs, '$.name'),
               json_extract_string(b.attrs, '$.builder'), e.source
        FROM edges e
        JOIN nodes b ON b.kind = 'build' AND b.key = e.src_key
        LEFT JOIN nodes a ON a.kind = 'artifact' AND a.key = e.dst_key
        WHERE e.kind = 'produced' AND e.dst_kind = 'artifact'
          AND json_extract_string(b.attrs, '$.builder') IS NOT NULL
        """
    ).fetchall()
    for sha, name, builder, source in rows:
        prov.add(str(sha), name, str(builder or ""), str(source or "case"))
    return prov


def shipped(cand: Release) -> list[tuple[str, str | None]]:
    """(path, sha256) of what is shipped: the folder's files, or the archive itself."""
    if cand.archive:
        return [("", cand.input_sha256)]
    return [(p, e.sha256) for p, e in sorted(cand.entries.items()) if SEP not in p]


def relevant(prov: Provenance, cand: Release) -> bool:
    for path, sha in shipped(cand):
        name = _base(path) if path else cand.label
        if (sha and sha in prov.by_digest) or name in prov.by_name:
            return True
    return False


def check(prov: Provenance, judge: Judge, builders: Sequence[str] = ()) -> list[Finding]:
    cand = judge.cand
    out: list[Finding] = []
    for path, sha in shipped(cand):
        name = _base(path) if path else cand.label
        stated = prov.by_digest.get(sha or "", [])
        subject_path = path or cand.label
        if not stated:
            others = sorted(prov.by_name.get(name, set()) - {sha or ""})
            if others:
                out.append(
                    _finding(
                        judge,
                        cand,
                        path,
                        ReleaseKind.PROVENANCE_MISMATCH,
                        f"provenance names {name} with another digest: the shipped file is"
                        " not the one that was built",
                        old={"sha256": others},
                        new={"sha256": sha},
                    )
                )
            else:
                out.append(
                    _finding(
                        judge,
                        cand,
                        path,
                        ReleaseKind.PROVENANCE_MISSING,
                        "no provenance statement covers this shipped file",
                        new={"sha256": sha, "path": subject_path},
                    )
                )
            continue
        if builders:
            by = sorted({b for _, b, _ in stated})
            if not set(by) & set(builders):
                out.append(
                    _finding(
                        judge,
                        cand,
                        path,
                        ReleaseKind.PROVENANCE_BUILDER,
                        f"built by {', '.join(by) or 'an unnamed builder'}, not by an"
                        f" expected builder ({', '.join(builders)})",
                        old={"builders": list(builders)},
                        new={"builders": by},
                    )
                )
    return out


def _finding(
    judge: Judge, cand: Release, path: str, kind: ReleaseKind, message: str, **kw: object
) -> Finding:
    if path:
        return judge.finding(kind, path, message, **kw)  # type: ignore[arg-type]
    f = judge.finding(kind, "", message, **kw)  # type: ignore[arg-type]
    from dataclasses import replace

    ev = dict(f.evidence)
    ev["path"] = cand.label
    if cand.input_sha256:
        ev["sha256"] = cand.input_sha256
    return replace(f, subject=cand.label, evidence=ev)
