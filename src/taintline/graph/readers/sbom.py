"""SBOMs: CycloneDX 1.4-1.6 (JSON, XML; parsed by cyclonedx-python-lib) and SPDX 2.3 (JSON,
tag-value; parsed by spdx-tools).

The product the SBOM describes (CycloneDX ``metadata.component``, SPDX ``DESCRIBES``) becomes
a ``release`` node ``name@version``; every component/package/file becomes an ``artifact``
(keyed by its SHA-256 when the SBOM gives one) or a ``software`` node (keyed by purl, else
``name@version``). Inclusion (top-level components, nested components, SPDX ``CONTAINS``)
becomes ``contains``, dependencies ``depends_on``. SBOM relations carry no event time: they
hold for the whole life of the release.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import artifact_ref, norm, release_ref, software_ref
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef


def _component_ref(name: str, version: str | None, purl: str | None, sha256: str | None) -> NodeRef:
    if sha256:
        return artifact_ref(sha256)
    if purl:
        return NodeRef(NodeKind.SOFTWARE, norm(purl))
    return software_ref(name, version)


class CycloneDx(GraphReader):
    name: ClassVar[str] = "cyclonedx"

    def detect(self, head: bytes) -> bool:
        return (b'"bomFormat"' in head and b"CycloneDX" in head) or (
            b"cyclonedx.org/schema/bom" in head
        )

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        from cyclonedx.model import HashAlgorithm
        from cyclonedx.model.bom import Bom

        out = GraphFacts()
        try:
            if data.lstrip().startswith(b"<"):
                element = ET.parse(io.BytesIO(data)).getroot()  # noqa: S314  (expat refuses bombs)
                bom = Bom.from_xml(element)  # type: ignore[attr-defined]
            else:
                bom = Bom.from_json(orjson.loads(data))  # type: ignore[attr-defined]
        except Exception as exc:  # the library raises many types on bad input
            out.problems.append(Problem(str(path), f"not a readable CycloneDX BOM: {exc}"))
            return out
        source = f"{path.name}"
        refs: dict[str, NodeRef] = {}

        def node_for(component: Any) -> NodeRef:
            sha = None
            for h in component.hashes or ():
                if h.alg == HashAlgorithm.SHA_256:
                    sha = str(h.content).lower()
            purl = str(component.purl) if component.purl else None
            ref = _component_ref(str(component.name), component.version, purl, sha)
            attrs = {
                "name": component.name,
                "version": component.version,
                "purl": purl,
                "cpe": str(component.cpe) if component.cpe else None,
                "type": str(component.type) if component.type else None,
            }
            out.nodes.append(Node(ref.kind, ref.key, attrs))
            if component.bom_ref and component.bom_ref.value:
                refs[str(component.bom_ref.value)] = ref
            return ref

        def walk(parent: NodeRef | None, components: Iterable[Any]) -> None:
            for component in components:
                ref = node_for(component)
                if parent is not None:
                    out.edges.append(
                        Edge(EdgeKind.CONTAINS, parent, ref, source, None, None, ctx.recorded_at)
                    )
                walk(ref, component.components or ())

        root: NodeRef | None = None
        meta = bom.metadata
        if meta is not None and meta.component is not None:
            c = meta.component
            root = release_ref(str(c.name), c.version)
            out.nodes.append(
                Node(root.kind, root.key, {"name": c.name, "version": c.version, "sbom": path.name})
            )
            if c.bom_ref and c.bom_ref.value:
                refs[str(c.bom_ref.value)] = root
            walk(root, c.components or ())
        walk(root, bom.components)
        for dep in bom.dependencies:
            src = refs.get(str(dep.ref.value))
            if src is None:
                continue
            for sub in dep.dependencies:
                dst = refs.get(str(sub.ref.value))
                if dst is None:
                    out.problems.append(
                        Problem(str(path), f"dependency on unknown ref {sub.ref.value}")
                    )
                    continue
                if src != root:  # the root's direct dependencies are already contains edges
                    out.edges.append(
                        Edge(EdgeKind.DEPENDS_ON, src, dst, source, None, None, ctx.recorded_at)
                    )
        return out


class Spdx(GraphReader):
    name: ClassVar[str] = "spdx"

    def detect(self, head: bytes) -> bool:
        return b'"spdxVersion"' in head or b"SPDXVersion:" in head

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        from spdx_tools.spdx.model.checksum import ChecksumAlgorithm
        from spdx_tools.spdx.model.relationship import RelationshipType
        from spdx_tools.spdx.parser.error import SPDXParsingError

        out = GraphFacts()
        try:
            if data.lstrip().startswith(b"{"):
                from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import (
                    JsonLikeDictParser,
                )

                document = JsonLikeDictParser().parse(orjson.loads(data))  # type: ignore[no-untyped-call]
            else:
                from spdx_tools.spdx.parser.tagvalue.parser import Parser

                document = Parser().parse(data.decode("utf-8", "replace"))  # type: ignore[no-untyped-call]
        except SPDXParsingError as exc:
            messages = "; ".join(exc.get_messages()[:3])  # type: ignore[no-untyped-call]
            out.problems.append(Problem(str(path), f"not a readable SPDX document: {messages}"))
            return out
        except Exception as exc:  # the parsers raise many types on bad input
            out.problems.append(Problem(str(path), f"not a readable SPDX document: {exc}"))
            return out
        source = path.name
        refs: dict[str, NodeRef] = {}
        packages: dict[str, Any] = {}

        def sha_of(checksums: Iterable[Any]) -> str | None:
            for c in checksums:
                if c.algorithm == ChecksumAlgorithm.SHA256:
                    return str(c.value).lower()
            return None

        for pkg in document.packages:
            purl = next(
                (
                    str(r.locator)
                    for r in pkg.external_references
                    if str(r.reference_type).lower() == "purl"
                ),
                None,
            )
            cpe = next(
                (
                    str(r.locator)
                    for r in pkg.external_references
                    if str(r.reference_type).lower() in ("cpe23type", "cpe22type")
                ),
                None,
            )
            ref = _component_ref(pkg.name, pkg.version, purl, sha_of(pkg.checksums))
            refs[pkg.spdx_id] = ref
            packages[pkg.spdx_id] = pkg
            attrs = {"name": pkg.name, "version": pkg.version, "purl": purl}
            if cpe:
                attrs["cpe"] = cpe
            out.nodes.append(Node(ref.kind, ref.key, attrs))
        for f in document.files:
            ref = _component_ref(f.name, None, None, sha_of(f.checksums))
            refs[f.spdx_id] = ref
            out.nodes.append(Node(ref.kind, ref.key, {"name": f.name}))
        doc_id = document.creation_info.spdx_id
        for rel in document.relationships:
            a, b = rel.spdx_element_id, str(rel.related_spdx_element_id)
            kind = rel.relationship_type
            if kind == RelationshipType.DESCRIBES and a == doc_id and b in packages:
                pkg = packages[b]
                release = release_ref(pkg.name, pkg.version)
                out.nodes.append(
                    Node(
                        release.kind,
                        release.key,
                        {"name": pkg.name, "version": pkg.version, "sbom": path.name},
                    )
                )
                old = refs[b]
                refs[b] = release
                out.edges.append(
                    Edge(EdgeKind.CONTAINS, release, old, source, None, None, ctx.recorded_at)
                )
        for rel in document.relationships:
            a, b = rel.spdx_element_id, str(rel.related_spdx_element_id)
            if a not in refs or b not in refs:
                continue
            kind = rel.relationship_type
            if kind == RelationshipType.CONTAINS:
                edge = (EdgeKind.CONTAINS, refs[a], refs[b])
            elif kind == RelationshipType.CONTAINED_BY:
                edge = (EdgeKind.CONTAINS, refs[b], refs[a])
            elif kind == RelationshipType.DEPENDS_ON:
                edge = (EdgeKind.DEPENDS_ON, refs[a], refs[b])
            elif kind == RelationshipType.DEPENDENCY_OF:
                edge = (EdgeKind.DEPENDS_ON, refs[b], refs[a])
            else:
                continue
            out.edges.append(Edge(edge[0], edge[1], edge[2], source, None, None, ctx.recorded_at))
        return out
