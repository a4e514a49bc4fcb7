"""SBOMs as generators write them: the fields the SBOM readers use, checked and tidied before
the spec libraries see them.

Real SBOMs deviate from their spec in a handful of common ways (a ``created`` time with
fractional seconds, files without checksums, a package without ``downloadLocation``, a lower
case enum value...). spdx-tools and cyclonedx-python-lib refuse a whole document for any of
them, with messages in their own words ("expected string or bytes-like object"). So each
document is first reduced to the fields the readers use, and each field checked here:

- a deviation the reader can read through is fixed and noted: one warning per kind of
  deviation, naming how many elements and the first of them;
- an element the reader cannot use (a package without an id, a name that is an object) is
  an error naming the file, the element and the problem in words, and is left out; the rest
  of the document is read.

This is hand-written because no library offers a tolerant mode; the libraries still parse the
tidied document (and every XML or tag-value input).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from taintline.errors import Problem
from taintline.model import parse_time

_SPDX_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass(slots=True)
class Notes:
    """Deviations (warnings, one per kind) and unusable elements (errors) of one file."""

    path: str
    _deviations: dict[str, list[str]] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)

    def deviation(self, what: str, element: str) -> None:
        """``what`` is the kind of deviation and what the reader did about it."""
        self._deviations.setdefault(what, []).append(element)

    def error(self, element: str, problem: str) -> None:
        self.errors.append(Problem(self.path, f"{element}: {problem}"))

    def warnings(self) -> list[Problem]:
        out: list[Problem] = []
        for what, elements in self._deviations.items():
            more = f" and {len(elements) - 1} more" if len(elements) > 1 else ""
            out.append(Problem(self.path, f"{what} ({elements[0]}{more})"))
        return out


def kind_of(value: object) -> str:
    """A JSON value's kind in words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def objects(
    doc: dict[str, Any], key: str, label: str, notes: Notes
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, element) for each object in the list ``doc[key]``; a missing list is empty,
    anything else is an error, as is each element that is not an object."""
    value = doc.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        notes.error(f"'{key}'", f"is {kind_of(value)}, not a list; none read")
        return
    for number, element in enumerate(value, start=1):
        if isinstance(element, dict):
            yield number, element
        else:
            notes.error(f"{label} #{number}", f"is {kind_of(element)}, not an object; skipped")


def text(
    element: dict[str, Any],
    key: str,
    label: str,
    notes: Notes,
    *,
    default: str | None = None,
    missing: str | None = None,
) -> str | None:
    """``element[key]`` as text. A number is read as text (a deviation). Missing: the
    ``default`` with the deviation ``missing`` noted, or ``None`` if there is no default.
    Anything else: an error (``None``)."""
    value = element.get(key)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        notes.deviation(f"'{key}' given as a number, read as text", label)
        return str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            notes.deviation(missing or f"'{key}' missing", label)
            return default
        return None
    notes.error(label, f"field '{key}' is {kind_of(value)}, not text")
    return None


def spdx_created(value: object, notes: Notes) -> str:
    """SPDX 2's ``created`` as the spec's ``YYYY-MM-DDThh:mm:ssZ``."""
    if isinstance(value, str) and _SPDX_TIME.match(value):
        return value
    if isinstance(value, str):
        try:
            when = parse_time(value.strip())
        except ValueError:
            pass
        else:
            notes.deviation(
                "'created' not in SPDX's YYYY-MM-DDThh:mm:ssZ form (fractional seconds, an"
                " offset or a date only); read to the second in UTC",
                f"created {value[:40]!r}",
            )
            return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    notes.deviation(
        "'created' missing or unreadable; ignored (it is not used)", f"created {str(value)[:40]!r}"
    )
    return "1970-01-01T00:00:00Z"


# -- SPDX 2.2 / 2.3 JSON ------------------------------------------------------------------------

_SPDX_ALGORITHMS = {
    "SHA1",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
    "SHA3_256",
    "SHA3_384",
    "SHA3_512",
    "BLAKE2B_256",
    "BLAKE2B_384",
    "BLAKE2B_512",
    "BLAKE3",
    "MD2",
    "MD4",
    "MD5",
    "MD6",
    "ADLER32",
}


def _enum_name(value: str) -> str:
    return value.strip().replace("-", "_").upper()


def _checksums(element: dict[str, Any], label: str, notes: Notes) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for _, c in objects(element, "checksums", f"{label} checksum", notes):
        algorithm, value = c.get("algorithm"), c.get("checksumValue")
        if not isinstance(algorithm, str) or not isinstance(value, str):
            notes.deviation("checksum without text 'algorithm' and 'checksumValue'; skipped", label)
            continue
        if _enum_name(algorithm) not in _SPDX_ALGORITHMS:
            notes.deviation(f"unknown checksum algorithm {algorithm[:20]!r}; skipped", label)
            continue
        out.append({"algorithm": _enum_name(algorithm), "checksumValue": value.strip()})
    return out


def _external_refs(element: dict[str, Any], label: str, notes: Notes) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for _, r in objects(element, "externalRefs", f"{label} external reference", notes):
        category, kind, locator = (
            r.get("referenceCategory"),
            r.get("referenceType"),
            r.get("referenceLocator"),
        )
        if not all(isinstance(v, str) and v.strip() for v in (category, kind, locator)):
            notes.deviation("external reference missing a category, type or locator", label)
            continue
        assert isinstance(category, str) and isinstance(kind, str) and isinstance(locator, str)
        name = _enum_name(category)
        if name not in {"SECURITY", "PACKAGE_MANAGER", "PERSISTENT_ID", "OTHER"}:
            notes.deviation(f"unknown reference category {category[:20]!r}, read as OTHER", label)
            name = "OTHER"
        out.append({"referenceCategory": name, "referenceType": kind, "referenceLocator": locator})
    return out


def tidy_spdx2(doc: dict[str, Any], file_name: str, notes: Notes) -> dict[str, Any]:
    """The document reduced to what the SPDX reader uses, each field checked."""
    version = doc.get("spdxVersion")
    if version not in ("SPDX-2.2", "SPDX-2.3"):
        notes.deviation(
            "'spdxVersion' is not SPDX-2.2 or SPDX-2.3; read as SPDX-2.3",
            f"spdxVersion {str(version)[:20]!r}",
        )
        version = "SPDX-2.3"
    out: dict[str, Any] = {"spdxVersion": version}
    out["SPDXID"] = (
        text(
            doc,
            "SPDXID",
            "document",
            notes,
            default="SPDXRef-DOCUMENT",
            missing="document 'SPDXID' missing, read as SPDXRef-DOCUMENT",
        )
        or "SPDXRef-DOCUMENT"
    )
    out["name"] = text(doc, "name", "document", notes, default=file_name) or file_name
    out["dataLicense"] = "CC0-1.0"  # not used; SPDX 2 allows no other value
    out["documentNamespace"] = (
        text(
            doc,
            "documentNamespace",
            "document",
            notes,
            default=f"https://taintline.invalid/{file_name}",
        )
        or f"https://taintline.invalid/{file_name}"
    )
    info = doc.get("creationInfo")
    if not isinstance(info, dict):
        notes.deviation("'creationInfo' missing; not used", "document")
        info = {}
    creators = info.get("creators")
    if not isinstance(creators, list) or not all(isinstance(c, str) for c in creators):
        notes.deviation("'creators' missing or not a list of text; not used", "creationInfo")
        creators = ["Tool: unknown"]
    out["creationInfo"] = {
        "created": spdx_created(info.get("created"), notes),
        "creators": creators or ["Tool: unknown"],
    }
    described = doc.get("documentDescribes")
    if isinstance(described, list):
        out["documentDescribes"] = [d for d in described if isinstance(d, str)]
    packages: list[dict[str, Any]] = []
    for number, p in objects(doc, "packages", "package", notes):
        label = f"package #{number}"
        spdx_id = text(p, "SPDXID", label, notes)
        if spdx_id is None:
            notes.error(label, "has no text 'SPDXID'; skipped")
            continue
        label = f"package {spdx_id}"
        if "name" in p and not isinstance(p["name"], (str, int, float)):
            notes.error(label, f"field 'name' is {kind_of(p['name'])}, not text; skipped")
            continue
        name = text(p, "name", label, notes, default=spdx_id)
        pkg: dict[str, Any] = {"SPDXID": spdx_id, "name": name}
        version_info = p.get("versionInfo")
        if version_info is not None:
            v = text(p, "versionInfo", label, notes)
            if v is not None:
                pkg["versionInfo"] = v
        pkg["downloadLocation"] = text(
            p,
            "downloadLocation",
            label,
            notes,
            default="NOASSERTION",
            missing="package without 'downloadLocation' (required by SPDX 2), read as NOASSERTION",
        )
        pkg["checksums"] = _checksums(p, label, notes)
        pkg["externalRefs"] = _external_refs(p, label, notes)
        files = p.get("hasFiles")
        if isinstance(files, list):
            pkg["hasFiles"] = [f for f in files if isinstance(f, str)]
        if isinstance(p.get("filesAnalyzed"), bool):
            pkg["filesAnalyzed"] = p["filesAnalyzed"]
        packages.append(pkg)
    out["packages"] = packages
    files_out: list[dict[str, Any]] = []
    for number, f in objects(doc, "files", "file", notes):
        label = f"file #{number}"
        spdx_id = text(f, "SPDXID", label, notes)
        if spdx_id is None:
            notes.error(label, "has no text 'SPDXID'; skipped")
            continue
        label = f"file {spdx_id}"
        file_name_value = text(f, "fileName", label, notes)
        if file_name_value is None:
            notes.error(label, "has no text 'fileName'; skipped")
            continue
        if "checksums" not in f or not f.get("checksums"):
            notes.deviation(
                "file without checksums (SPDX 2 requires a SHA1); read by its name", label
            )
        files_out.append(
            {
                "SPDXID": spdx_id,
                "fileName": file_name_value,
                "checksums": _checksums(f, label, notes),
            }
        )
    out["files"] = files_out
    relationships: list[dict[str, Any]] = []
    for number, r in objects(doc, "relationships", "relationship", notes):
        label = f"relationship #{number}"
        a, b, kind = r.get("spdxElementId"), r.get("relatedSpdxElement"), r.get("relationshipType")
        if not (isinstance(a, str) and isinstance(b, str) and isinstance(kind, str)):
            notes.error(
                label,
                "needs text 'spdxElementId', 'relatedSpdxElement' and 'relationshipType'; skipped",
            )
            continue
        name = _enum_name(kind)
        if name != kind:
            notes.deviation("relationship type not in upper case, read as such", label)
        relationships.append(
            {"spdxElementId": a, "relatedSpdxElement": b, "relationshipType": name}
        )
    out["relationships"] = relationships
    return out


def spdx_library_words(message: str) -> str:
    """spdx-tools' message about one element, in words ("field 'name' has the wrong type")."""
    found = re.findall(r"(?:SetterError|Error while (?:constructing|parsing)) (\w+)", message)
    fields = re.findall(r"parameter (\w+)=", message)
    if fields:
        where = found[0].lower() if found else "document"
        return (
            f"{where}: field(s) {', '.join(sorted(set(fields)))} have the wrong type or are missing"
        )
    required = re.search(r"missing \d+ required positional arguments?: (.*?)(?:['\"]\]|$)", message)
    if required:
        names = re.findall(r"'(\w+)'", required.group(1))
        return "required field(s) missing: " + ", ".join(names)
    unknown = re.search(r"Invalid (\w+): (\S+)", message)
    if unknown:
        return f"unknown {unknown.group(1)} {unknown.group(2)[:40]!r}"
    return re.sub(r"\s+", " ", message)[:200]


# -- CycloneDX JSON ----------------------------------------------------------------------------

CDX_TYPES = {
    "application",
    "container",
    "cryptographic-asset",
    "data",
    "device",
    "device-driver",
    "file",
    "firmware",
    "framework",
    "library",
    "machine-learning-model",
    "operating-system",
    "platform",
}
CDX_HASHES = {
    "BLAKE2b-256",
    "BLAKE2b-384",
    "BLAKE2b-512",
    "BLAKE3",
    "MD5",
    "SHA-1",
    "SHA-256",
    "SHA-384",
    "SHA-512",
    "SHA3-256",
    "SHA3-384",
    "SHA3-512",
}
_CDX_HASH_BY_KEY = {h.replace("-", "").upper(): h for h in CDX_HASHES}


def _purl_ok(text_value: str) -> bool:
    from packageurl import PackageURL

    try:
        PackageURL.from_string(text_value)
    except ValueError:
        return False
    return True


def _cdx_component(c: dict[str, Any], label: str, notes: Notes) -> dict[str, Any] | None:
    name = text(c, "name", label, notes)
    if name is None:
        if "name" not in c or c.get("name") in ("", None):
            notes.error(label, "has no 'name'; skipped")
        return None
    label = f"component {name[:60]!r}"
    out: dict[str, Any] = {"name": name}
    kind = c.get("type")
    if isinstance(kind, str) and kind.strip().lower() in CDX_TYPES:
        if kind != kind.strip().lower():
            notes.deviation("component type not in lower case, read as such", label)
        out["type"] = kind.strip().lower()
    else:
        notes.deviation("component type missing or unknown, read as library", label)
        out["type"] = "library"
    for key in ("version", "group", "bom-ref", "cpe"):
        if key in c and c[key] is not None:
            value = text(c, key, label, notes)
            if value is not None:
                out[key] = value
    purl = c.get("purl")
    if purl is not None:
        if isinstance(purl, str) and _purl_ok(purl):
            out["purl"] = purl
        else:
            notes.deviation("'purl' is not a package URL; ignored", label)
    hashes: list[dict[str, str]] = []
    for _, h in objects(c, "hashes", f"{label} hash", notes):
        alg, content = h.get("alg"), h.get("content")
        key = alg.replace("-", "").upper() if isinstance(alg, str) else ""
        if key not in _CDX_HASH_BY_KEY or not isinstance(content, str) or not content.strip():
            notes.deviation("hash with an unknown algorithm or no content; skipped", label)
            continue
        if _CDX_HASH_BY_KEY[key] != alg:
            notes.deviation("hash algorithm not spelled as the spec does, read as such", label)
        hashes.append({"alg": _CDX_HASH_BY_KEY[key], "content": content.strip()})
    if hashes:
        out["hashes"] = hashes
    nested = [
        tidy
        for number, n in objects(c, "components", f"{label} component", notes)
        if (tidy := _cdx_component(n, f"{label} component #{number}", notes)) is not None
    ]
    if nested:
        out["components"] = nested
    return out


def _cdx_service(s: dict[str, Any], label: str, notes: Notes) -> dict[str, Any] | None:
    name = text(s, "name", label, notes)
    if name is None:
        if s.get("name") in ("", None):
            notes.error(label, "has no 'name'; skipped")
        return None
    label = f"service {name[:60]!r}"
    out: dict[str, Any] = {"name": name}
    for key in ("version", "group", "bom-ref"):
        if key in s and s[key] is not None:
            value = text(s, key, label, notes)
            if value is not None:
                out[key] = value
    nested = [
        tidy
        for number, n in objects(s, "services", f"{label} service", notes)
        if (tidy := _cdx_service(n, f"{label} service #{number}", notes)) is not None
    ]
    if nested:
        out["services"] = nested
    return out


def tidy_cyclonedx(doc: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """The BOM reduced to what the CycloneDX reader uses, each field checked."""
    version = doc.get("specVersion")
    if not isinstance(version, str) or version not in {"1.2", "1.3", "1.4", "1.5", "1.6"}:
        notes.deviation(
            "'specVersion' missing or unknown, read as 1.6", f"specVersion {str(version)[:10]!r}"
        )
        version = "1.6"
    out: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": version}
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("component"), dict):
        root = _cdx_component(meta["component"], "metadata component", notes)
        if root is not None:
            out["metadata"] = {"component": root}
    elif meta is not None and not isinstance(meta, dict):
        notes.error("'metadata'", f"is {kind_of(meta)}, not an object; not read")
    out["components"] = [
        tidy
        for number, c in objects(doc, "components", "component", notes)
        if (tidy := _cdx_component(c, f"component #{number}", notes)) is not None
    ]
    out["services"] = [
        tidy
        for number, s in objects(doc, "services", "service", notes)
        if (tidy := _cdx_service(s, f"service #{number}", notes)) is not None
    ]
    dependencies: list[dict[str, Any]] = []
    for number, d in objects(doc, "dependencies", "dependency", notes):
        ref = d.get("ref")
        if not isinstance(ref, str) or not ref:
            notes.error(f"dependency #{number}", "has no text 'ref'; skipped")
            continue
        targets = d.get("dependsOn") or []
        if not isinstance(targets, list):
            notes.error(f"dependency {ref[:60]!r}", "'dependsOn' is not a list; skipped")
            continue
        kept = [t for t in targets if isinstance(t, str) and t]
        if len(kept) != len(targets):
            notes.deviation("dependency target that is not text; skipped", f"dependency {ref!r}")
        dependencies.append({"ref": ref, "dependsOn": kept})
    out["dependencies"] = dependencies
    return out
