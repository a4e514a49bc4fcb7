"""SBOMs: CycloneDX 1.2-1.6 (JSON, XML; parsed by cyclonedx-python-lib), SPDX 2.2/2.3 (JSON,
tag-value; parsed by spdx-tools) and SPDX 3.0 (JSON-LD).

The product the SBOM describes (CycloneDX ``metadata.component``, SPDX ``DESCRIBES`` or SPDX 3
``rootElement``) becomes a ``release`` node ``name@version``; every component/package/file
becomes an ``artifact`` (keyed by its SHA-256 when the SBOM gives one) or a ``software`` node
(keyed by purl, else ``name@version``); a CycloneDX service (SaaSBOM) is a ``software`` node.
Inclusion (top-level components, nested components, SPDX ``CONTAINS``) becomes ``contains``,
dependencies ``depends_on``. SBOM relations carry no event time: they hold for the whole life
of the release.

Documents are read as generators write them: the common deviations from the specs are read
through with one warning per kind of deviation, an element that cannot be used is an error
naming it, and the rest of the file is still read (see :mod:`.sbomshape`).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import artifact_ref, norm, release_ref, software_ref
from taintline.graph.readers.sbomshape import (
    Notes,
    kind_of,
    spdx_created,
    spdx_library_words,
    tidy_cyclonedx,
    tidy_spdx2,
)
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef


def _component_ref(name: str, version: str | None, purl: str | None, sha256: str | None) -> NodeRef:
    if sha256:
        return artifact_ref(sha256)
    if purl:
        return NodeRef(NodeKind.SOFTWARE, norm(purl))
    return software_ref(name, version)


def _json_document(path: Path, data: bytes, what: str, out: GraphFacts) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        out.problems.append(Problem(str(path), f"not valid JSON ({exc}); nothing read"))
        return None
    if not isinstance(doc, dict):
        out.problems.append(
            Problem(str(path), f"a {what} document must be a JSON object, this is {kind_of(doc)}")
        )
        return None
    return doc


def _squeeze(exc: BaseException) -> str:
    """A library's message on one line, cut short (only shown after our own words)."""
    return " ".join(str(exc).split())[:160]


def _enum_text(value: Any) -> str | None:
    """A library enum as the spec's string (``library``, not ``ComponentType.LIBRARY``)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


class CycloneDx(GraphReader):
    name: ClassVar[str] = "cyclonedx"

    def sniff(self, head: bytes) -> bool:
        return (b'"bomFormat"' in head and b"CycloneDX" in head) or (
            b"cyclonedx.org/schema/bom" in head
        )

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        from cyclonedx.model import HashAlgorithm
        from cyclonedx.model.bom import Bom

        out = GraphFacts()
        notes = Notes(str(path))
        try:
            if data.lstrip().startswith(b"<"):
                element = ET.parse(io.BytesIO(data)).getroot()  # noqa: S314  (expat refuses bombs)
                bom = Bom.from_xml(element)  # type: ignore[attr-defined]
            else:
                doc = _json_document(path, data, "CycloneDX", out)
                if doc is None:
                    return out
                bom = Bom.from_json(tidy_cyclonedx(doc, notes))  # type: ignore[attr-defined]
        except ET.ParseError as exc:
            out.problems.append(Problem(str(path), f"not well-formed XML ({exc}); nothing read"))
            return out
        except Exception as exc:  # the library raises many types on bad input
            out.problems.append(
                Problem(
                    str(path),
                    "not a readable CycloneDX BOM: the CycloneDX library refused it"
                    f" ({type(exc).__name__}: {_squeeze(exc)})",
                )
            )
            return out
        out.problems.extend(notes.errors)
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
                "type": _enum_text(component.type),
            }
            out.nodes.append(Node(ref.kind, ref.key, attrs))
            if component.bom_ref and component.bom_ref.value:
                refs[str(component.bom_ref.value)] = ref
            return ref

        contained: set[tuple[NodeRef, NodeRef]] = set()

        def walk(parent: NodeRef | None, components: Iterable[Any]) -> None:
            for component in components:
                ref = node_for(component)
                if parent is not None:
                    contained.add((parent, ref))
                    out.edges.append(
                        Edge(EdgeKind.CONTAINS, parent, ref, source, None, None, ctx.recorded_at)
                    )
                walk(ref, component.components or ())

        def services(services_: Iterable[Any]) -> None:
            for service in services_:
                ref = software_ref(str(service.name), service.version)
                out.nodes.append(
                    Node(
                        ref.kind,
                        ref.key,
                        {"name": service.name, "version": service.version, "type": "service"},
                    )
                )
                if service.bom_ref and service.bom_ref.value:
                    refs[str(service.bom_ref.value)] = ref
                services(service.services or ())

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
        services(bom.services or ())
        unknown: list[str] = []
        for dep in bom.dependencies:
            src = refs.get(str(dep.ref.value))
            if src is None:
                unknown.append(str(dep.ref.value))
                continue
            for sub in dep.dependencies:
                dst = refs.get(str(sub.ref.value))
                if dst is None:
                    unknown.append(str(sub.ref.value))
                    continue
                if (src, dst) not in contained:  # else already a contains edge
                    out.edges.append(
                        Edge(EdgeKind.DEPENDS_ON, src, dst, source, None, None, ctx.recorded_at)
                    )
        for ref in unknown:
            notes.deviation(
                "dependency on a ref no component or service of the BOM has; skipped",
                f"ref {ref[:60]!r}",
            )
        out.warnings.extend(notes.warnings())
        return out


_TV_CREATED = re.compile(rb"^(Created:[ \t]*)(\S+)[ \t]*$", re.MULTILINE)


class Spdx(GraphReader):
    name: ClassVar[str] = "spdx"

    def sniff(self, head: bytes) -> bool:
        return b'"spdxVersion"' in head or b"SPDXVersion:" in head

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        from spdx_tools.spdx.parser.error import SPDXParsingError

        out = GraphFacts()
        notes = Notes(str(path))
        bare: list[dict[str, Any]] = []
        try:
            if data.lstrip().startswith((b"{", b"[")):
                from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import (
                    JsonLikeDictParser,
                )

                doc = _json_document(path, data, "SPDX", out)
                if doc is None:
                    return out
                tidy = tidy_spdx2(doc, path.name, notes)
                # spdx-tools refuses a file without checksums (SPDX 2.2 generators write
                # them): those are read from the checked document directly
                bare = [f for f in tidy["files"] if not f["checksums"]]
                tidy["files"] = [f for f in tidy["files"] if f["checksums"]]
                document = JsonLikeDictParser().parse(tidy)  # type: ignore[no-untyped-call]
            else:
                from spdx_tools.spdx.parser.tagvalue.parser import Parser

                def created(match: re.Match[bytes]) -> bytes:
                    fixed = spdx_created(match.group(2).decode("utf-8", "replace"), notes)
                    return match.group(1) + fixed.encode()

                text = _TV_CREATED.sub(created, data).decode("utf-8", "replace")
                document = Parser().parse(text)  # type: ignore[no-untyped-call]
        except SPDXParsingError as exc:
            messages = [spdx_library_words(m) for m in exc.get_messages()[:3]]  # type: ignore[no-untyped-call]
            out.problems.extend(notes.errors)
            out.problems.append(
                Problem(str(path), "not a readable SPDX document: " + "; ".join(messages))
            )
            return out
        except Exception as exc:  # the parsers raise many types on bad input
            out.problems.extend(notes.errors)
            out.problems.append(
                Problem(
                    str(path),
                    "not a readable SPDX document: the SPDX library refused it"
                    f" ({type(exc).__name__}: {_squeeze(exc)})",
                )
            )
            return out
        out.problems.extend(notes.errors)
        self._facts(path, document, ctx, out, [(f["SPDXID"], f["fileName"]) for f in bare])
        out.warnings.extend(notes.warnings())
        return out

    def _facts(
        self,
        path: Path,
        document: Any,
        ctx: ReadContext,
        out: GraphFacts,
        bare_files: list[tuple[str, str]],
    ) -> None:
        from spdx_tools.spdx.model.checksum import ChecksumAlgorithm
        from spdx_tools.spdx.model.relationship import RelationshipType

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
        files = [(f.spdx_id, f.name, sha_of(f.checksums)) for f in document.files]
        for spdx_id, name, sha in [*files, *((i, n, None) for i, n in bare_files)]:
            ref = _component_ref(name, None, None, sha)
            refs[spdx_id] = ref
            out.nodes.append(Node(ref.kind, ref.key, {"name": name}))
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
