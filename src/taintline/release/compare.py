"""Baseline against candidate: pairing files, then judging each difference. Pure functions over
:class:`~taintline.release.model.Release` values (the caller makes sure the entries it asks
about are analysed, see :func:`needs_facts`).

Pairing: by path; then, among files only one side has, by name and content (a moved file), then
by content alone (a renamed one). Members of a container whose bytes did not change are not
looked at (they cannot differ), nor members of a removed container.

Judging, worst first (the rules and their severities are in ``docs/verify.md``): a native binary
that changed while its version stayed the same is the 3CX ``ffmpeg.dll``; data hidden in a
certificate table whose signature still verifies is its ``d3dcompiler_47.dll``; a new native
library signed by someone else than the app's other binaries, or unsigned, is the pattern of a
planted ``libffmpeg.dylib``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from taintline.model import Finding, FindingSource, Severity
from taintline.release.kinds import SEVERITY, ReleaseKind
from taintline.release.model import SEP, Binary, Entry, Release

_NATIVE_NAME = re.compile(r"\.(dll|exe|sys|ocx|so(\.\d+)*|dylib|node)$", re.IGNORECASE)
#: At most this many of the app's own binaries are asked who signed them.
APP_SIGNER_SAMPLE = 16


@dataclass(slots=True)
class Pairing:
    same: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: same content at another path: (baseline path, candidate path)
    moved: list[tuple[str, str]] = field(default_factory=list)
    #: another path and other content, paired by a base name that only one file on each
    #: side has (a folder against an installer, a reorganised tree): (baseline, candidate)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def candidate_paths(self) -> list[str]:
        """The candidate's files the comparison looked at (for indicator matching)."""
        moved = (c for _, c in (*self.moved, *self.renamed))
        return sorted([*self.same, *self.changed, *self.added, *moved])


def _ancestors(path: str) -> Iterable[str]:
    parts = path.split(SEP)
    for i in range(1, len(parts)):
        yield SEP.join(parts[:i])


def pair(base: Release, cand: Release) -> Pairing:
    b, c = base.entries, cand.entries
    same_containers = {p for p in b.keys() & c.keys() if b[p].sha256 and b[p].sha256 == c[p].sha256}
    removed_top = set(b.keys() - c.keys())

    def skipped(path: str) -> bool:
        return any(a in same_containers or a in removed_top for a in _ancestors(path))

    out = Pairing()
    for path in sorted(b.keys() | c.keys()):
        if SEP in path and skipped(path):
            continue
        old, new = b.get(path), c.get(path)
        if old is not None and new is not None:
            if old.sha256 and old.sha256 == new.sha256:
                out.same.append(path)
            else:
                out.changed.append(path)
        elif new is not None:
            out.added.append(path)
        else:
            out.removed.append(path)
    by_name_content: dict[tuple[str, str], list[str]] = {}
    by_content: dict[str, list[str]] = {}
    for path in out.removed:
        e = b[path]
        if e.sha256:
            by_name_content.setdefault((e.name, e.sha256), []).append(path)
            by_content.setdefault(e.sha256, []).append(path)
    still_added: list[str] = []
    taken: set[str] = set()
    for path in out.added:
        e = c[path]
        if not e.sha256:
            still_added.append(path)
            continue
        olds = [p for p in by_name_content.get((e.name, e.sha256), []) if p not in taken]
        olds = olds or [p for p in by_content.get(e.sha256, []) if p not in taken]
        if olds:
            taken.add(olds[0])
            out.moved.append((olds[0], path))
        else:
            still_added.append(path)
    out.removed = [p for p in out.removed if p not in taken]
    # then by a base name unique on both sides among what is left
    old_names: dict[str, list[str]] = {}
    for path in out.removed:
        old_names.setdefault(b[path].name, []).append(path)
    new_names: dict[str, list[str]] = {}
    for path in still_added:
        new_names.setdefault(c[path].name, []).append(path)
    for name, news in new_names.items():
        olds = old_names.get(name, [])
        if len(news) == 1 and len(olds) == 1:
            out.renamed.append((olds[0], news[0]))
            taken.add(olds[0])
            still_added.remove(news[0])
    out.renamed.sort(key=lambda pair: pair[1])
    out.added = still_added
    out.removed = [p for p in out.removed if p not in taken]
    return out


def unrelated(pairing: Pairing, base: Release, cand: Release) -> bool:
    """Two different products rather than two releases of one: under a fifth of the files
    match by path or content."""
    matched = len(pairing.same) + len(pairing.changed) + len(pairing.moved)
    matched += len(pairing.renamed) // 2  # a shared name is weaker evidence than a path
    total = max(matched
                + max(len(pairing.added), len(pairing.removed)), 1)  # fmt: skip
    if not base.entries or not cand.entries:
        return False
    return matched / total < 0.2 and not (len(pairing.same) and len(pairing.same) == matched)


def looks_native(e: Entry) -> bool:
    return e.native or (not e.analysed and bool(_NATIVE_NAME.search(e.name)))


def needs_facts(pairing: Pairing, base: Release, cand: Release) -> tuple[set[str], set[str]]:
    """Paths whose analysis the judging needs: (baseline, candidate)."""
    need_b: set[str] = set()
    need_c: set[str] = set()
    for p in pairing.changed:
        if looks_native(base.entries[p]) or looks_native(cand.entries[p]):
            need_b.add(p)
            need_c.add(p)
        if base.entries[p].container or cand.entries[p].container:
            need_b.add(p)
            need_c.add(p)
    for p in pairing.added:
        if looks_native(cand.entries[p]) or cand.entries[p].container:
            need_c.add(p)
    for old, new in pairing.renamed:
        if looks_native(base.entries[old]) or looks_native(cand.entries[new]):
            need_b.add(old)
            need_c.add(new)
    return need_b, need_c


def app_sample(pairing: Pairing, cand: Release, new_path: str) -> list[str]:
    """The app's own binaries (present in both releases) that say who signs this app: those
    beside ``new_path`` first, else anywhere; at most :data:`APP_SIGNER_SAMPLE`, in path order."""
    folder = new_path.rsplit("/", 1)[0] if "/" in new_path else ""
    renamed = (new for _, new in pairing.renamed)
    paired = [
        p for p in (*pairing.same, *pairing.changed, *renamed) if looks_native(cand.entries[p])
    ]
    near = [p for p in paired if (p.rsplit("/", 1)[0] if "/" in p else "") == folder]
    return (near or paired)[:APP_SIGNER_SAMPLE]


# -- judging ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judge:
    base: Release
    cand: Release
    rebuild: bool = False

    def finding(
        self,
        kind: ReleaseKind,
        path: str,
        message: str,
        *,
        severity: Severity | None = None,
        old: Mapping[str, Any] | None = None,
        new: Mapping[str, Any] | None = None,
        **evidence: Any,
    ) -> Finding:
        entry = self.cand.entries.get(path) or self.base.entries.get(path)
        ev: dict[str, Any] = {"path": path}
        if entry is not None and path in self.cand.entries and entry.sha256:
            ev["sha256"] = entry.sha256
        if old is not None:
            ev["old"] = dict(old)
        if new is not None:
            ev["new"] = dict(new)
        ev.update({k: v for k, v in evidence.items() if v is not None})
        subject = self.cand.subject(path) if path in self.cand.entries else self.base.subject(path)
        return Finding(
            kind=str(kind),
            severity=severity or SEVERITY[kind],
            subject=subject,
            message=message,
            source=FindingSource.RELEASE,
            evidence=ev,
        )

    # versions ---------------------------------------------------------------------------
    def version_of(self, release: Release, e: Entry) -> tuple[str, str | None]:
        """(where the version comes from, the version): the file's own version resource, else
        its app bundle's Info.plist, else the release's product version."""
        if e.binary is not None and e.binary.version:
            v = e.binary.version
            text = v.get("FileVersion") or v.get("ProductVersion")
            if text:
                return "version resource", f"{text} (product {v.get('ProductVersion', '-')})"
        bundle = _bundle_version(release, e.path)
        if bundle is not None:
            return "bundle Info.plist", bundle
        return "release", release.product.version

    # one changed file -------------------------------------------------------------------
    def changed(self, path: str, old_path: str | None = None) -> list[Finding]:
        """Judge the candidate's ``path`` against the baseline's ``old_path`` (default: the same
        path)."""
        old, new = self.base.entries[old_path or path], self.cand.entries[path]
        if old.container and new.container:
            return []  # judged by its members (see :meth:`container`)
        if old.binary is not None and new.binary is not None:
            return self._changed_binary(path, old, new)
        if looks_native(old) or looks_native(new):
            return [
                self.finding(
                    ReleaseKind.NATIVE_CHANGED,
                    path,
                    "native binary changed; one side has hashes only, so how is unknown",
                    old=_hashes(old),
                    new=_hashes(new),
                )
            ]
        kind = ReleaseKind.REBUILD_DIFFERS if self.rebuild else ReleaseKind.CHANGED
        return [
            self.finding(
                kind,
                path,
                "file differs between the two builds" if self.rebuild else "file changed",
                old=_hashes(old),
                new=_hashes(new),
            )
        ]

    def _changed_binary(self, path: str, old: Entry, new: Entry) -> list[Finding]:
        ob, nb = old.binary, new.binary
        assert ob is not None and nb is not None
        out: list[Finding] = []
        out += self._signature(path, ob, nb)
        reproducible = bool(ob.normalised_sha256) and ob.normalised_sha256 == nb.normalised_sha256
        if reproducible:
            return out  # only signatures, time stamps, checksums or build ids differ
        if _imports(ob) != _imports(nb):
            out.append(
                self.finding(
                    ReleaseKind.IMPORTS_CHANGED,
                    path,
                    f"imports/exports changed: {_imports_text(ob)} -> {_imports_text(nb)}",
                    old=_imports_json(ob),
                    new=_imports_json(nb),
                )
            )
        if nb.overlay_size > ob.overlay_size:
            out.append(
                self.finding(
                    ReleaseKind.OVERLAY_GROWN,
                    path,
                    f"data after the image grew from {ob.overlay_size} to {nb.overlay_size} bytes",
                    old={"overlay_size": ob.overlay_size},
                    new={"overlay_size": nb.overlay_size},
                )
            )
        _, v_old = self.version_of(self.base, old)
        where_new, v_new = self.version_of(self.cand, new)
        signer_old, signer_new = ob.signature.signer, nb.signature.signer
        old_view = {"sha256": old.sha256, "version": v_old, "signer": signer_old, "size": old.size}
        sections = _changed_sections(ob, nb)
        new_view = {"sha256": new.sha256, "version": v_new, "signer": signer_new, "size": new.size}
        if self.rebuild or (v_old is not None and v_old == v_new):
            signer_text = (
                f"signer unchanged: {signer_new or 'unsigned'}"
                if signer_old == signer_new
                else f"signer also changed: {signer_old or 'unsigned'} -> {signer_new or 'unsigned'}"
            )
            lead = "two builds of one source differ after normalising; " if self.rebuild else ""
            out.append(
                self.finding(
                    ReleaseKind.CHANGED_SAME_VERSION,
                    path,
                    f"{lead}native {nb.role} changed while its {where_new} stayed"
                    f" {v_new or '-'} ({signer_text})",
                    old=old_view,
                    new=new_view,
                    sections_changed=sections,
                )
            )
        elif v_old is None or v_new is None:
            out.append(
                self.finding(
                    ReleaseKind.NATIVE_CHANGED,
                    path,
                    f"native {nb.role} changed; no version to tell a release bump from tampering",
                    old=old_view,
                    new=new_view,
                    sections_changed=sections,
                )
            )
        elif not out:
            out.append(
                self.finding(
                    ReleaseKind.VERSION_BUMPED,
                    path,
                    f"native {nb.role} rebuilt with its {where_new} bumped: {v_old} -> {v_new}",
                    old=old_view,
                    new=new_view,
                    sections_changed=sections,
                )
            )
        return out

    def _signature(self, path: str, ob: Binary, nb: Binary) -> list[Finding]:
        out: list[Finding] = []
        os_, ns = ob.signature, nb.signature
        if ns.hidden_bytes > os_.hidden_bytes:
            verifies = ns.status == "verifies"
            out.append(
                self.finding(
                    ReleaseKind.HIDDEN_SIGNATURE_DATA,
                    path,
                    f"{ns.hidden_bytes} bytes hidden in the certificate table after the signature"
                    + (
                        " and the signature still verifies"
                        if verifies
                        else f" (signature {ns.status})"
                    ),
                    severity=None if verifies else Severity.HIGH,
                    old={"hidden_bytes": os_.hidden_bytes, "status": os_.status},
                    new={"hidden_bytes": ns.hidden_bytes, "status": ns.status, "signer": ns.signer},
                )
            )
        if os_.signed and ns.signed and (os_.signer != ns.signer or os_.chain != ns.chain):
            out.append(
                self.finding(
                    ReleaseKind.SIGNER_CHANGED,
                    path,
                    f"signer changed: {os_.signer or '-'} -> {ns.signer or '-'}",
                    old={"signer": os_.signer, "chain": list(os_.chain), "team_id": os_.team_id},
                    new={"signer": ns.signer, "chain": list(ns.chain), "team_id": ns.team_id},
                )
            )
        good = ("verifies", "signed")
        if os_.status in good and ns.status not in good:
            what = "signature removed" if ns.status == "unsigned" else f"signature {ns.status}"
            out.append(
                self.finding(
                    ReleaseKind.SIGNATURE_BROKEN,
                    path,
                    f"{what} (was: {os_.status}, {os_.signer or '-'})",
                    old={"status": os_.status, "signer": os_.signer},
                    new={"status": ns.status, "signer": ns.signer},
                )
            )
        return out

    # new and removed files ----------------------------------------------------------------
    def added(self, path: str, app_signers: set[str] | None) -> list[Finding]:
        new = self.cand.entries[path]
        nb = new.binary
        if nb is None and not looks_native(new):
            what = "container" if new.container else "file"
            return [self.finding(ReleaseKind.ADDED, path, f"new {what}", new=_hashes(new))]
        view = {"sha256": new.sha256, "size": new.size}
        if nb is None:
            return [self.finding(ReleaseKind.NEW_NATIVE, path, "new native binary", new=view)]
        view |= {"role": nb.role, "format": nb.format, "signature": nb.signature.status,
                 "signer": nb.signature.signer}  # fmt: skip
        out = self._signature(path, Binary(nb.format, nb.role), nb)
        signer = nb.signature.signer if nb.signature.status in ("verifies", "signed") else None
        if app_signers and signer not in app_signers:
            how = f"signed by {signer}" if signer else f"{nb.signature.status}"
            out.append(
                self.finding(
                    ReleaseKind.NEW_NATIVE_FOREIGN,
                    path,
                    f"new native {nb.role} is {how}, while the app's binaries are signed by"
                    f" {', '.join(sorted(app_signers))}",
                    new=view,
                    app_signers=sorted(app_signers),
                )
            )
        else:
            out.append(
                self.finding(
                    ReleaseKind.NEW_NATIVE,
                    path,
                    f"new native {nb.role} ({nb.signature.status}"
                    f"{', ' + signer if signer else ''})",
                    new=view,
                )
            )
        return out

    def removed(self, path: str) -> Finding:
        old = self.base.entries[path]
        return self.finding(ReleaseKind.REMOVED, path, "file removed", old=_hashes(old))

    def moved(self, old_path: str, new_path: str) -> Finding:
        e = self.cand.entries[new_path]
        return self.finding(
            ReleaseKind.MOVED,
            new_path,
            f"same content moved from {old_path}",
            old={"path": old_path},
            new={"path": new_path, "sha256": e.sha256},
        )

    def container(self, path: str, member_findings: int) -> Finding | None:
        """A container whose bytes changed while none of its members did: its metadata (time
        stamps, member order, compression) only."""
        if member_findings:
            return None
        old, new = self.base.entries[path], self.cand.entries[path]
        return self.finding(
            ReleaseKind.CONTAINER_METADATA,
            path,
            "container bytes changed but every member is the same (time stamps, order,"
            " compression)",
            old=_hashes(old),
            new=_hashes(new),
        )


def app_signers(cand: Release, sample: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for p in sample:
        b = cand.entries[p].binary
        if b is not None and b.signature.status in ("verifies", "signed") and b.signature.signer:
            out.add(b.signature.signer)
    return out


def _bundle_version(release: Release, path: str) -> str | None:
    """CFBundleShortVersionString (or CFBundleVersion) of the nearest ``*.app`` holding
    ``path``."""
    marker = ".app/"
    end = path.rfind(marker)
    while end >= 0:
        plist = release.entries.get(path[: end + len(marker)] + "Contents/Info.plist")
        if plist is not None and plist.bundle:
            found = plist.bundle.get("CFBundleShortVersionString") or plist.bundle.get(
                "CFBundleVersion"
            )
            if found:
                return found
        end = path.rfind(marker, 0, end)
    return None


def _hashes(e: Entry) -> dict[str, Any]:
    return {"sha256": e.sha256, "size": e.size, "type": e.filetype or None}


def _imports(b: Binary) -> tuple[Any, ...]:
    return (b.imports, b.import_count, b.exports, b.export_count)


def _imports_json(b: Binary) -> dict[str, Any]:
    return {"libraries": list(b.imports), "functions": b.import_count,
            "exports": b.export_count, "exports_sample": list(b.exports)}  # fmt: skip


def _imports_text(b: Binary) -> str:
    return f"{len(b.imports)} libraries/{b.import_count} imports/{b.export_count} exports"


def _changed_sections(ob: Binary, nb: Binary) -> list[str] | None:
    old = dict(ob.sections)
    changed = [n for n, h in nb.sections if old.get(n) != h]
    return changed or None
