"""SPDX 3.0 JSON-LD SBOMs: packages, files and their relationships.

SPDX 3 is an RDF model; its JSON-LD serialisation is a ``@graph`` list of elements, each with
a ``type`` (``software_Package``, ``software_File``, ``Relationship``, ``SpdxDocument``,
``software_Sbom``...) and an ``spdxId``. A relationship goes ``from`` one element ``to`` a list
of others. spdx-tools only writes SPDX 3 (its reader is for SPDX 2), and a JSON-LD processor
would fetch the remote ``@context``, which an offline tool must not do; the elements used here
are plain JSON objects, so they are read directly (keys compacted by the SPDX context, as every
generator writes them; full IRIs are accepted too).

Mapping, as for SPDX 2: the document's ``rootElement`` packages are the release; packages and
files are artifacts (by SHA-256) or software (by purl, else name@version); ``contains`` is
``contains``; ``dependsOn`` and the linking relationships are ``depends_on``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import orjson

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import artifact_ref, norm, release_ref, software_ref
from taintline.graph.readers.sbomshape import Notes, kind_of
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef

_PACKAGE = {"software_package", "package"}
_FILE = {"software_file", "file"}
_RELATIONSHIP = {"relationship", "lifecyclescopedrelationship"}
_DOCUMENT = {"spdxdocument", "software_sbom", "sbom", "bom", "bundle"}
_DEPENDS = {"dependson", "hasstaticlink", "hasdynamiclink", "hasprovideddependency"}


def _type(element: dict[str, Any]) -> str:
    """``software_Package``, ``spdx:software_Package`` or a full IRI ``.../Software/Package``,
    in lower case without prefix."""
    value = element.get("type", element.get("@type"))
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    if not isinstance(value, str):
        return ""
    if "/" in value:
        parts = value.rstrip("/").split("/")
        value = parts[-1] if parts[-2].lower() not in ("software",) else f"software_{parts[-1]}"
    return value.rsplit(":", 1)[-1].lower()


def _id(element: dict[str, Any]) -> str | None:
    value = element.get("spdxId", element.get("@id"))
    return value if isinstance(value, str) and value else None


def _field(element: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in element:
            return element[name]
    return None


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _sha256(element: dict[str, Any]) -> str | None:
    for h in _field(element, "verifiedUsing") or ():
        if not isinstance(h, dict):
            continue
        algorithm, value = h.get("algorithm"), h.get("hashValue")
        if (
            isinstance(algorithm, str)
            and algorithm.rsplit("/", 1)[-1].replace("-", "").lower() == "sha256"
            and isinstance(value, str)
        ):
            return value.lower()
    return None


def _purl(element: dict[str, Any]) -> str | None:
    value = _field(element, "software_packageUrl", "packageUrl")
    if isinstance(value, str) and value:
        return value
    for ident in _field(element, "externalIdentifier") or ():
        if (
            isinstance(ident, dict)
            and str(ident.get("externalIdentifierType", "")).rsplit("/", 1)[-1] == "packageUrl"
            and isinstance(ident.get("identifier"), str)
        ):
            return str(ident["identifier"])
    return None


class Spdx3(GraphReader):
    name: ClassVar[str] = "spdx3"

    def sniff(self, head: bytes) -> bool:
        return (b'"@context"' in head and b"spdx.org/rdf/3" in head) or (
            b'"spdxId"' in head and b'"software_' in head
        )

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        notes = Notes(str(path))
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            out.problems.append(Problem(str(path), f"not valid JSON ({exc}); nothing read"))
            return out
        if isinstance(doc, dict):
            graph = doc.get("@graph", [doc])
        else:
            graph = doc
        if not isinstance(graph, list):
            out.problems.append(
                Problem(str(path), f"'@graph' is {kind_of(graph)}, not a list; nothing read")
            )
            return out
        source = path.name
        elements: dict[str, dict[str, Any]] = {}
        kinds: dict[str, str] = {}
        relationships: list[tuple[str, dict[str, Any]]] = []
        roots: list[str] = []
        for number, element in enumerate(graph, start=1):
            if not isinstance(element, dict):
                notes.error(f"element #{number}", f"is {kind_of(element)}, not an object; skipped")
                continue
            kind = _type(element)
            spdx_id = _id(element)
            label = f"{kind or 'element'} {spdx_id or f'#{number}'}"
            if kind in _RELATIONSHIP:
                relationships.append((label, element))
                continue
            if kind in _DOCUMENT:
                roots.extend(_ids(element.get("rootElement")))
                continue
            if kind not in _PACKAGE and kind not in _FILE:
                continue  # agents, creation info, licences, annotations: not graph facts
            if spdx_id is None:
                notes.error(label, "has no 'spdxId'; skipped")
                continue
            name = element.get("name")
            if not isinstance(name, str) or not name.strip():
                if name is not None:
                    notes.error(label, f"field 'name' is {kind_of(name)}, not text; skipped")
                    continue
                notes.deviation("element without a 'name', named by its spdxId", label)
                name = spdx_id
            elements[spdx_id] = {**element, "name": name}
            kinds[spdx_id] = "package" if kind in _PACKAGE else "file"
        refs: dict[str, NodeRef] = {}
        for spdx_id, element in elements.items():
            name = element["name"]
            version = _field(element, "software_packageVersion", "packageVersion")
            version = str(version) if isinstance(version, (str, int, float)) else None
            purl = _purl(element) if kinds[spdx_id] == "package" else None
            sha = _sha256(element)
            if sha:
                ref = artifact_ref(sha)
            elif purl:
                ref = NodeRef(NodeKind.SOFTWARE, norm(purl))
            else:
                ref = software_ref(name, version)
            refs[spdx_id] = ref
            attrs = {"name": name, "version": version, "purl": purl}
            out.nodes.append(
                Node(ref.kind, ref.key, attrs if kinds[spdx_id] == "package" else {"name": name})
            )
        described = list(roots)
        for label, rel in relationships:
            if str(rel.get("relationshipType", "")).rsplit("/", 1)[-1].lower() == "describes":
                described.extend(_ids(rel.get("to")))
            del label
        for spdx_id in dict.fromkeys(described):
            if kinds.get(spdx_id) != "package":
                continue
            element = elements[spdx_id]
            version = _field(element, "software_packageVersion", "packageVersion")
            release = release_ref(element["name"], version if isinstance(version, str) else None)
            out.nodes.append(
                Node(
                    release.kind,
                    release.key,
                    {"name": element["name"], "version": version, "sbom": path.name},
                )
            )
            out.edges.append(
                Edge(EdgeKind.CONTAINS, release, refs[spdx_id], source, None, None, ctx.recorded_at)
            )
            refs[spdx_id] = release
        unknown: list[str] = []
        for label, rel in relationships:
            kind = str(rel.get("relationshipType", "")).rsplit("/", 1)[-1].lower()
            frm = rel.get("from")
            to = _ids(rel.get("to"))
            if not isinstance(frm, str) or not to:
                notes.error(label, "needs a text 'from' and a 'to' list of ids; skipped")
                continue
            if kind == "contains":
                edge_kind = EdgeKind.CONTAINS
            elif kind in _DEPENDS:
                edge_kind = EdgeKind.DEPENDS_ON
            else:
                continue
            for target in to:
                if frm not in refs or target not in refs:
                    unknown.append(frm if frm not in refs else target)
                    continue
                out.edges.append(
                    Edge(edge_kind, refs[frm], refs[target], source, None, None, ctx.recorded_at)
                )
        for missing in unknown:
            notes.deviation(
                "relationship with an end that is no package or file of the document; skipped",
                f"id {missing[:60]!r}",
            )
        if not elements and not notes.errors:
            out.problems.append(Problem(str(path), "no software_Package or software_File element"))
        out.problems.extend(notes.errors)
        out.warnings.extend(notes.warnings())
        return out
