"""``taintline manifest``: a known-good release described, deterministically, as JSON.

The document (schema ``taintline.release-manifest``, version :data:`SCHEMA_VERSION`, shipped as
``release/schema/manifest-1.schema.json`` and documented in ``docs/verify.md``) lists every
file and container member of the release in path order with its hashes, type and, for native
binaries, the facts a comparison needs (version resource, signer and signature status, imports
and exports, section hashes, overlay and hidden-data sizes, the normalised hash for rebuild
checks). Nothing in it depends on the time or the machine it was made on.

Three ways to make one: from files (a scan, :func:`manifest_from_paths`), from an earlier scan's
facts in the case without reading the files again (:func:`manifest_from_case`), from an SBOM
that carries hashes (:mod:`taintline.release.sbom`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from taintline.case import Case
from taintline.errors import InputError, TaintlineError
from taintline.release.facts import entry_of
from taintline.release.model import (
    SEP,
    Binary,
    Entry,
    Product,
    Release,
    Signature,
    product_from_label,
)

SCHEMA = "taintline.release-manifest"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schema" / f"manifest-{SCHEMA_VERSION}.schema.json"
#: Largest manifest read (a release of a million files is about 1 GB of JSON).
MAX_MANIFEST_BYTES = 2 * 1024**3


class ManifestError(InputError):
    """A manifest that cannot be used (wrong schema or version, not JSON, no files)."""


# -- writing -----------------------------------------------------------------------------------


def _binary_json(b: Binary) -> dict[str, Any]:
    return {
        "format": b.format,
        "role": b.role,
        "version": dict(sorted(b.version.items())),
        "signature": {
            "status": b.signature.status,
            "signer": b.signature.signer,
            "issuer": b.signature.issuer,
            "chain": list(b.signature.chain),
            "team_id": b.signature.team_id,
            "hidden_bytes": b.signature.hidden_bytes,
        },
        "imports": list(b.imports),
        "import_count": b.import_count,
        "exports": list(b.exports),
        "export_count": b.export_count,
        "sections": [{"name": n, "sha256": h} for n, h in b.sections],
        "overlay_size": b.overlay_size,
        "timestamp": b.timestamp,
        "normalised_sha256": b.normalised_sha256,
    }


def entry_json(e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": e.path,
        "size": e.size,
        "sha256": e.sha256,
        "sha1": e.sha1,
        "md5": e.md5,
        "type": e.filetype,
        "analysed": e.analysed,
    }
    if e.binary is not None:
        out["binary"] = _binary_json(e.binary)
    if e.bundle:
        out["bundle"] = dict(sorted(e.bundle.items()))
    return out


def to_document(release: Release) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "label": release.label,
        "source": release.source,
        "product": {"name": release.product.name, "version": release.product.version},
        "input_sha256": release.input_sha256,
        "archive": release.archive,
        "files": [entry_json(release.entries[p]) for p in sorted(release.entries)],
    }


def dumps(release: Release) -> bytes:
    """The manifest as deterministic JSON: keys in a fixed order (``schema`` first, so a reader
    knows the document from its first line), files in path order, two-space indent."""
    return orjson.dumps(to_document(release), option=orjson.OPT_INDENT_2)


def write_manifest(release: Release, path: Path) -> None:
    """Write atomically (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(dumps(release) + b"\n")
    tmp.replace(path)


# -- reading -----------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _binary_from(doc: Mapping[str, Any]) -> Binary:
    sig = doc.get("signature") if isinstance(doc.get("signature"), dict) else {}
    assert isinstance(sig, dict)
    version = doc.get("version") if isinstance(doc.get("version"), dict) else {}
    assert isinstance(version, dict)
    return Binary(
        format=str(doc.get("format", "")),
        role=str(doc.get("role", "other")),
        version={str(k): str(v) for k, v in version.items()},
        signature=Signature(
            status=str(sig.get("status") or "unsigned"),
            signer=_str(sig.get("signer")),
            issuer=_str(sig.get("issuer")),
            chain=tuple(str(c) for c in sig.get("chain") or () if isinstance(c, str)),
            team_id=_str(sig.get("team_id")),
            hidden_bytes=_int(sig.get("hidden_bytes")),
        ),
        imports=tuple(str(x) for x in doc.get("imports") or () if isinstance(x, str)),
        import_count=_int(doc.get("import_count")),
        exports=tuple(str(x) for x in doc.get("exports") or () if isinstance(x, str)),
        export_count=_int(doc.get("export_count")),
        sections=tuple(
            (str(s.get("name", "")), str(s.get("sha256", "")))
            for s in doc.get("sections") or ()
            if isinstance(s, dict)
        ),
        overlay_size=_int(doc.get("overlay_size")),
        timestamp=_str(doc.get("timestamp")),
        normalised_sha256=_str(doc.get("normalised_sha256")),
    )


def _hex(value: Any, length: int) -> str | None:
    text = _str(value)
    if text is None:
        return None
    text = text.lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a hex digest of {length} characters: {text[:80]!r}")
    return text


def from_document(doc: Any, where: str) -> Release:
    """A :class:`Release` from a parsed manifest; :class:`ManifestError` when unusable. A bad
    file record is a problem of that record (the others are kept)."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ManifestError(where, f'not a taintline release manifest (no "schema": {SCHEMA!r})')
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            where,
            f"manifest schema version {version!r} is not supported; this taintline reads"
            f" version {SCHEMA_VERSION} (re-create the manifest with this version)",
        )
    files = doc.get("files")
    if not isinstance(files, list):
        raise ManifestError(where, 'manifest has no "files" list')
    from taintline.errors import Problem

    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    for number, item in enumerate(files, start=1):
        try:
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise ValueError("file record without a path")
            path = item["path"]
            binary = item.get("binary")
            bundle = item.get("bundle")
            entries[path] = Entry(
                path=path,
                size=item["size"] if isinstance(item.get("size"), int) else None,
                sha256=_hex(item.get("sha256"), 64),
                sha1=_hex(item.get("sha1"), 40),
                md5=_hex(item.get("md5"), 32),
                filetype=str(item.get("type") or ""),
                binary=_binary_from(binary) if isinstance(binary, dict) else None,
                bundle={str(k): str(v) for k, v in bundle.items()}
                if isinstance(bundle, dict)
                else None,
                analysed=bool(item.get("analysed")),
            )
        except (ValueError, TypeError) as exc:
            problems.append(Problem(where, f"file record {number}: {exc}"))
    product = doc.get("product") if isinstance(doc.get("product"), dict) else {}
    assert isinstance(product, dict)
    return Release(
        label=_str(doc.get("label")) or Path(where).name,
        source=_str(doc.get("source")) or "manifest",
        product=Product(_str(product.get("name")), _str(product.get("version"))),
        entries=entries,
        input_sha256=_hex(doc.get("input_sha256"), 64) if doc.get("input_sha256") else None,
        archive=bool(doc.get("archive")),
        problems=problems,
    )


def read_manifest(path: Path) -> Release:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(str(path), f"manifest of {size} bytes is too large")
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(str(path), f"not JSON: {exc}") from None
    return from_document(doc, str(path))


def looks_like_manifest(head: bytes) -> bool:
    return SCHEMA.encode() in head


# -- from scan facts ----------------------------------------------------------------------------


def relative(path: str, top: str) -> str | None:
    """The path of a scanned file relative to its top-level input; ``None`` for the input
    itself (an installer or archive given as the release)."""
    if path == top:
        return None
    for sep in ("/", SEP):
        prefix = top.rstrip("/") + sep
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def release_from_rows(
    rows: Sequence[
        tuple[str, str, str | None, str | None, str | None, int | None, str | None, str, Any]
    ],
    label: str,
    source: str,
    tops: Sequence[str],
) -> Release:
    """Rows of ``(top, path, sha256, sha1, md5, size, filetype, analyser, facts)`` (one per
    file and analyser, as ``file_facts`` holds them) -> a release. With several tops, each
    one's files are prefixed with its base name."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for top, path, sha256, sha1, md5, size, ftype, analyser, facts in rows:
        slot = grouped.setdefault(
            (top, path),
            {"sha256": sha256, "sha1": sha1, "md5": md5, "size": size, "type": ftype, "facts": {}},
        )
        if analyser:
            slot["facts"][analyser] = orjson.loads(facts) if isinstance(facts, str) else facts
    several = len(set(tops)) > 1
    entries: dict[str, Entry] = {}
    input_sha: str | None = None
    archive = False
    for (top, path), slot in grouped.items():
        rel = relative(path, top)
        if rel is None:
            input_sha = slot["sha256"]
            archive = True
            if not several:
                continue
            rel = ""
        if several:
            base = Path(top.rstrip("/")).name
            rel = base if not rel else f"{base}{SEP if path.startswith(top + SEP) else '/'}{rel}"
        entries[rel] = entry_of(
            rel,
            size=slot["size"],
            sha256=slot["sha256"],
            sha1=slot["sha1"],
            md5=slot["md5"],
            filetype=slot["type"],
            facts=slot["facts"],
        )
    product = product_from_label(label)
    return Release(
        label=label,
        source=source,
        product=product,
        entries=entries,
        input_sha256=input_sha if not several else None,
        archive=archive and not several,
    )


def label_of(paths: Sequence[str]) -> str:
    names = [Path(str(p).rstrip("/")).name or str(p) for p in paths]
    return names[0] if len(names) == 1 else "release"


def manifest_from_case(case: Case, run_id: str | None = None, label: str | None = None) -> Release:
    """The release an earlier ``scan`` saw, from its facts in the case (no file is read).
    ``run_id`` defaults to the latest scan run with facts."""
    if run_id is None:
        row = case.con.execute(
            "SELECT f.run_id FROM file_facts_runs f JOIN runs r USING (run_id)"
            " ORDER BY r.started DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise TaintlineError("the case holds no scan facts: run `taintline scan PATH` first")
        run_id = str(row[0])
    rows = case.con.execute(
        "SELECT top, path, sha256, sha1, md5, size, filetype, analyser, facts::VARCHAR"
        " FROM file_facts_all WHERE run_id = ? ORDER BY path, analyser",
        [run_id],
    ).fetchall()
    if not rows:
        raise TaintlineError(f"scan run {run_id!r} has no file facts in the case")
    tops = sorted({r[0] for r in rows})
    return release_from_rows(rows, label or label_of(tops), "case", tops)


def manifest_from_paths(
    paths: Sequence[str | Path],
    case: Case,
    *,
    label: str | None = None,
    workers: int | None = None,
    progress: Any = None,
) -> tuple[Release, list[Any]]:
    """Scan ``paths`` (hashes and analysers, containers opened, no YARA) into ``case`` and
    describe what was found. Returns the release and the scan's ``error.*`` findings."""
    from taintline.scan.engine import ScanOptions, scan_paths

    result = scan_paths(
        [str(p) for p in paths],
        case,
        ScanOptions(workers=workers, use_rules=False, ensure_intel=False),
        progress,
    )
    errors = [f for f in result.findings if f.kind.startswith("error.")]
    if result.run_id is None:  # pragma: no cover - record=True always gives a run
        raise TaintlineError("scan recorded nothing")
    rows = case.con.execute(
        "SELECT top, path, sha256, sha1, md5, size, filetype, analyser, facts::VARCHAR"
        " FROM file_facts_all WHERE run_id = ? ORDER BY path, analyser",
        [result.run_id],
    ).fetchall()
    tops = [str(p) for p in paths]
    release = release_from_rows(rows, label or label_of(tops), "files", tops)
    return release, errors
