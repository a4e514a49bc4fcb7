"""in-toto attestations with SLSA provenance (v0.2 and v1 predicates), bare statements or in
DSSE envelopes (``payload`` base64), one JSON document or JSON Lines (``.intoto.jsonl``).

- build node keyed by the invocation id (or, without one, by the statement's sha256);
- ``build -built_on-> host`` (the builder id) from start to finish;
- ``build -produced-> artifact`` for every subject sha256 digest, from the finish time;
- ``build -uses-> artifact|software`` for every material / resolved dependency.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any, ClassVar

import orjson

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import (
    artifact_ref,
    host_ref,
    is_sha256,
    json_objects,
    json_records,
    norm,
    parse_when,
)
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef

STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
PROVENANCE = ("https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1")


def _statement(record: dict[str, Any]) -> dict[str, Any]:
    envelope = record.get("dsseEnvelope", record)
    if isinstance(envelope, dict) and "payload" in envelope:
        try:
            payload = base64.b64decode(str(envelope["payload"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"DSSE payload is not base64: {exc}") from None
        try:
            decoded = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"DSSE payload is not JSON: {exc}") from None
        if not isinstance(decoded, dict):
            raise ValueError("DSSE payload is not a statement")
        return decoded
    return record


class InToto(GraphReader):
    name: ClassVar[str] = "in-toto"

    def sniff(self, head: bytes) -> bool:
        return (b"in-toto.io/Statement" in head and b"predicateType" in head) or (
            b'"payloadType"' in head and b"in-toto" in head
        )

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        records = list(json_records(data))
        if (
            len(records) > 1
            and data.lstrip().startswith(b"{")
            and isinstance(records[0][1], ValueError)
        ):
            # a pretty-printed single document rather than JSON Lines
            try:
                records = [(1, orjson.loads(data))]
            except orjson.JSONDecodeError as exc:
                records = [(1, ValueError(f"bad JSON: {exc}"))]
        for number, record in json_objects(path, records, out.problems):
            try:
                self._one(path, number, _statement(record), ctx, out)
            except (ValueError, TypeError, KeyError) as exc:
                out.problems.append(Problem(str(path), f"bad attestation: {exc}", number))
        return out

    def _one(
        self, path: Path, number: int, st: dict[str, Any], ctx: ReadContext, out: GraphFacts
    ) -> None:
        if st.get("_type") not in STATEMENT_TYPES:
            raise ValueError(f"not an in-toto statement (_type {st.get('_type')!r})")
        ptype = str(st.get("predicateType") or "")
        pred = st.get("predicate") or {}
        if not isinstance(pred, dict):
            raise ValueError("predicate is not an object")
        if ptype.startswith(PROVENANCE[1]):
            run = pred.get("runDetails") or {}
            meta = run.get("metadata") or {}
            builder = (run.get("builder") or {}).get("id")
            invocation = meta.get("invocationId")
            started, finished = meta.get("startedOn"), meta.get("finishedOn")
            materials = (pred.get("buildDefinition") or {}).get("resolvedDependencies") or []
            build_type = (pred.get("buildDefinition") or {}).get("buildType")
        elif ptype.startswith(PROVENANCE[0]):
            meta = pred.get("metadata") or {}
            builder = (pred.get("builder") or {}).get("id")
            invocation = meta.get("buildInvocationId")
            started, finished = meta.get("buildStartedOn"), meta.get("buildFinishedOn")
            materials = pred.get("materials") or []
            build_type = pred.get("buildType")
        else:
            raise ValueError(f"unsupported predicate type {ptype!r}")
        if not builder:
            raise ValueError("provenance without builder id")
        t0, t1 = parse_when(started), parse_when(finished)
        digest = hashlib.sha256(orjson.dumps(st, option=orjson.OPT_SORT_KEYS)).hexdigest()
        build = NodeRef(NodeKind.BUILD, str(invocation or f"in-toto:{digest[:16]}"))
        source = f"{path.name}:{number}"
        out.nodes.append(
            Node(
                build.kind,
                build.key,
                {"builder": builder, "buildType": build_type, "predicateType": ptype},
            )
        )
        host = host_ref(str(builder))
        out.nodes.append(Node(host.kind, host.key, {"builder": builder}))
        out.edges.append(Edge(EdgeKind.BUILT_ON, build, host, source, t0, t1, ctx.recorded_at))
        for subject in st.get("subject") or []:
            sha = str(((subject or {}).get("digest") or {}).get("sha256") or "")
            if not is_sha256(sha):
                out.problems.append(
                    Problem(str(path), f"subject without sha256: {subject!r:.80}", number)
                )
                continue
            art = artifact_ref(sha)
            out.nodes.append(Node(art.kind, art.key, {"name": subject.get("name")}))
            out.edges.append(Edge(EdgeKind.PRODUCED, build, art, source, t1, None, ctx.recorded_at))
        for material in materials:
            if not isinstance(material, dict):
                continue
            sha = str((material.get("digest") or {}).get("sha256") or "")
            uri = material.get("uri") or material.get("name")
            if is_sha256(sha):
                ref = artifact_ref(sha)
            elif uri:
                ref = NodeRef(NodeKind.SOFTWARE, norm(str(uri)))
            else:
                continue
            out.nodes.append(Node(ref.kind, ref.key, {"uri": uri}))
            out.edges.append(Edge(EdgeKind.USES, build, ref, source, t0, t1, ctx.recorded_at))
