"""A release from an SBOM that carries file hashes: CycloneDX JSON (components with ``hashes``,
nested components included) or SPDX 2.x JSON (``files`` with ``checksums``, and packages with
a ``packageFileName``).

Only the hashes and paths are read here, so the JSON is walked directly (the full object models
of cyclonedx-python-lib and spdx-tools validate far more than this needs and refuse SBOMs with
small unrelated mistakes); an SBOM entry is hashes only: ``analysed`` is false and a comparison
with it can say that a file changed, not how.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from taintline.errors import InputError, Problem
from taintline.release.model import Entry, Product, Release

_CDX_ALGS = {"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5"}
_SPDX_ALGS = {"SHA256": "sha256", "SHA1": "sha1", "MD5": "md5"}
MAX_SBOM_BYTES = 1024**3


def looks_like_sbom(head: bytes) -> bool:
    return (b'"bomFormat"' in head and b"CycloneDX" in head) or b'"spdxVersion"' in head


def _digests(items: Any, algs: dict[str, str], key_alg: str, key_value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        if not isinstance(item, dict):
            continue
        alg = algs.get(str(item.get(key_alg, "")).upper())
        value = str(item.get(key_value, "")).lower()
        if alg and value and all(c in "0123456789abcdef" for c in value):
            out[alg] = value
    return out


def _cdx_components(items: Any) -> Iterator[dict[str, Any]]:
    for item in items or ():
        if isinstance(item, dict):
            yield item
            yield from _cdx_components(item.get("components"))


def _clean(path: str) -> str:
    text = path.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.lstrip("/")


def read_sbom(path: Path) -> Release:
    try:
        data = path.read_bytes()
        if len(data) > MAX_SBOM_BYTES:
            raise InputError(str(path), "SBOM too large")
        doc = orjson.loads(data)
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(str(path), f"SBOM is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(str(path), "SBOM is not a JSON object")
    problems: list[Problem] = []
    entries: dict[str, Entry] = {}
    product = Product()
    if doc.get("bomFormat") == "CycloneDX":
        meta = (doc.get("metadata") or {}).get("component") or {}
        if isinstance(meta, dict):
            product = Product(meta.get("name"), meta.get("version"))
        for comp in _cdx_components(doc.get("components")):
            digests = _digests(comp.get("hashes"), _CDX_ALGS, "alg", "content")
            name = comp.get("name")
            props = {
                str(p.get("name")): str(p.get("value"))
                for p in comp.get("properties") or ()
                if isinstance(p, dict)
            }
            where = props.get("taintline:path") or props.get("path") or name
            if not isinstance(where, str) or not where:
                continue
            if not digests:
                problems.append(Problem(str(path), f"component {where[:80]!r} has no hashes"))
                continue
            rel = _clean(where)
            entries[rel] = Entry(rel, sha256=digests.get("sha256"), sha1=digests.get("sha1"),
                                 md5=digests.get("md5"))  # fmt: skip
    elif "spdxVersion" in doc:
        product = Product(doc.get("name") if isinstance(doc.get("name"), str) else None, None)
        for file in doc.get("files") or ():
            if not isinstance(file, dict) or not isinstance(file.get("fileName"), str):
                continue
            digests = _digests(file.get("checksums"), _SPDX_ALGS, "algorithm", "checksumValue")
            rel = _clean(file["fileName"])
            if not digests:
                problems.append(Problem(str(path), f"file {rel[:80]!r} has no checksums"))
                continue
            entries[rel] = Entry(rel, sha256=digests.get("sha256"), sha1=digests.get("sha1"),
                                 md5=digests.get("md5"))  # fmt: skip
        for pkg in doc.get("packages") or ():
            if not isinstance(pkg, dict):
                continue
            if product.version is None and isinstance(pkg.get("versionInfo"), str):
                product = Product(pkg.get("name") or product.name, pkg["versionInfo"])
            fname = pkg.get("packageFileName")
            digests = _digests(pkg.get("checksums"), _SPDX_ALGS, "algorithm", "checksumValue")
            if isinstance(fname, str) and digests:
                rel = _clean(fname)
                entries.setdefault(rel, Entry(rel, sha256=digests.get("sha256"),
                                              sha1=digests.get("sha1"), md5=digests.get("md5")))  # fmt: skip
    else:
        raise InputError(str(path), "neither a CycloneDX nor an SPDX JSON document")
    if not entries:
        raise InputError(str(path), "the SBOM lists no file with a hash; nothing to verify")
    return Release(
        label=str(product.name or path.stem),
        source="sbom",
        product=product,
        entries=entries,
        problems=problems,
    )
