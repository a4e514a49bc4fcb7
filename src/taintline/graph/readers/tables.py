"""Plain tables analysts already have: host inventories, builds, distribution records and
authentication/connection logs (CSV; distribution records also as JSON / JSON Lines).

Column names are matched case-insensitively with a few common aliases (documented in
``docs/cascade.md``). One module, four readers: they share the row handling.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import (
    CSV_ERROR,
    artifact_ref,
    csv_header,
    csv_rows,
    first_json,
    host_ref,
    is_sha256,
    json_objects,
    json_records,
    org_ref,
    parse_when,
    pick,
    release_ref,
    software_ref,
)
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef

HOST = ("host", "hostname", "computer", "machine", "device")
SOFTWARE = ("software", "program", "package", "product", "name")
INSTALLED = ("installed_at", "install_date", "installed", "first_seen")
REMOVED = ("removed_at", "uninstalled_at", "removed", "last_seen")
BUILD = ("build_id", "build")
RECIPIENT = ("customer", "recipient", "org", "organisation", "organization", "tenant")
ITEM = ("release", "artifact", "sha256", "version")
WHEN = ("time", "timestamp", "date", "delivered_at", "downloaded_at", "ts")
SRC = ("src_host", "source_host", "from_host", "src", "client", "workstation")
DST = ("dst_host", "dest_host", "destination_host", "to_host", "dst", "target", "server")


def _has(header: set[str], names: tuple[str, ...]) -> bool:
    return any(n in header for n in names)


def _digests(text: str | None) -> list[str]:
    if not text:
        return []
    parts = text.replace(";", " ").replace(",", " ").replace("|", " ").split()
    return [p.lower().removeprefix("sha256:") for p in parts]


class _Rows:
    """The data rows of one CSV file. A malformed file, and every problem a reader reports with
    :meth:`problem`, goes to ``out.problems`` with the current line number."""

    def __init__(self, path: Path, data: bytes, out: GraphFacts) -> None:
        self.path = path
        self.data = data
        self.out = out
        self.line = 0

    def __iter__(self) -> Iterator[dict[str, str]]:
        for line, row in csv_rows(self.data):
            self.line = line
            if CSV_ERROR in row:
                self.problem(row[CSV_ERROR])
                continue
            yield row

    @property
    def source(self) -> str:
        """``file:line`` of the current row, the provenance of the edges it gives."""
        return f"{self.path.name}:{self.line}"

    def problem(self, message: str) -> None:
        self.out.problems.append(Problem(str(self.path), message, self.line))

    def times(self, row: dict[str, str], *columns: tuple[str, ...]) -> list[datetime | None] | None:
        """One time per alias list in ``columns`` (``None`` where empty); ``None`` and a
        problem when one of them does not parse."""
        try:
            return [parse_when(pick(row, *aliases)) for aliases in columns]
        except ValueError as exc:
            self.problem(f"bad time: {exc}")
            return None


class InventoryCsv(GraphReader):
    """``host, software, version, installed_at[, removed_at][, sha256][, purl][, cpe]
    [, publisher]`` -> installed_on."""

    name: ClassVar[str] = "inventory-csv"

    def sniff(self, head: bytes) -> bool:
        h = csv_header(head)
        return (
            _has(h, HOST)
            and _has(h, SOFTWARE)
            and not _has(h, BUILD)
            and not _has(h, RECIPIENT)
            and not _has(h, ("release",))
        )

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        rows = _Rows(path, data, out)
        for row in rows:
            host = pick(row, *HOST)
            name = pick(row, *SOFTWARE)
            if not host or not name:
                rows.problem("row without host or software")
                continue
            times = rows.times(row, INSTALLED, REMOVED)
            if times is None:
                continue
            start, end = times
            version = pick(row, "version")
            sha = pick(row, "sha256", "hash")
            attrs = {"name": name, "version": version}
            for column in ("purl", "cpe", "publisher"):
                value = pick(row, column)
                if value:
                    attrs[column] = value
            if sha and is_sha256(sha):
                ref = artifact_ref(sha)
                out.nodes.append(Node(ref.kind, ref.key, {**attrs, "sha256": ref.key}))
                soft = software_ref(name, version)
                out.nodes.append(Node(soft.kind, soft.key, attrs))
            else:
                ref = software_ref(name, version)
                out.nodes.append(Node(ref.kind, ref.key, attrs))
            out.edges.append(
                Edge(
                    EdgeKind.INSTALLED_ON,
                    ref,
                    host_ref(host),
                    source=rows.source,
                    valid_from=start,
                    valid_until=end,
                    recorded_at=ctx.recorded_at,
                )
            )
        return out


class BuildsCsv(GraphReader):
    """``build_id, host, started, finished, outputs, release`` -> built_on, produced, contains."""

    name: ClassVar[str] = "builds-csv"

    def sniff(self, head: bytes) -> bool:
        h = csv_header(head)
        return _has(h, BUILD) and _has(h, HOST)

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        rows = _Rows(path, data, out)
        for row in rows:
            build_id = pick(row, *BUILD)
            host = pick(row, *HOST)
            if not build_id or not host:
                rows.problem("row without build_id or host")
                continue
            times = rows.times(
                row, ("started", "start", "started_at"), ("finished", "end", "finished_at")
            )
            if times is None:
                continue
            started, finished = times
            if started and finished and finished < started:
                rows.problem("build finished before it started")
                continue
            source = rows.source
            build = NodeRef(NodeKind.BUILD, build_id.strip())
            out.nodes.append(
                Node(build.kind, build.key, {"host": host, "started": str(started or "")})
            )
            out.edges.append(
                Edge(
                    EdgeKind.BUILT_ON,
                    build,
                    host_ref(host),
                    source,
                    started,
                    finished,
                    ctx.recorded_at,
                )
            )
            release_name = pick(row, "release")
            release = release_ref(release_name) if release_name else None
            if release is not None:
                out.nodes.append(Node(release.kind, release.key, {"name": release_name}))
            for digest in _digests(pick(row, "outputs", "output_digests", "sha256", "digests")):
                if not is_sha256(digest):
                    rows.problem(f"not a sha256: {digest[:80]}")
                    continue
                art = artifact_ref(digest)
                out.nodes.append(Node(art.kind, art.key, {"build": build_id}))
                out.edges.append(
                    Edge(EdgeKind.PRODUCED, build, art, source, finished, None, ctx.recorded_at)
                )
                if release is not None:
                    out.edges.append(
                        Edge(EdgeKind.CONTAINS, release, art, source, None, None, ctx.recorded_at)
                    )
        return out


def _distribution_row(
    path: Path, line: int, row: dict[str, object], ctx: ReadContext, out: GraphFacts
) -> None:
    customer = pick(row, *RECIPIENT)
    host = pick(row, *HOST)
    release = pick(row, "release")
    artifact = pick(row, "artifact", "sha256")
    if not (customer or host) or not (release or artifact):
        out.problems.append(
            Problem(str(path), "record without recipient or release/artifact", line)
        )
        return
    try:
        when = parse_when(pick(row, *WHEN))
    except ValueError as exc:
        out.problems.append(Problem(str(path), f"bad time: {exc}", line))
        return
    source = f"{path.name}:{line}"
    items: list[NodeRef] = []
    if release:
        items.append(release_ref(release, pick(row, "version")))
    if artifact:
        if not is_sha256(artifact):
            out.problems.append(Problem(str(path), f"not a sha256: {artifact[:80]}", line))
            return
        items.append(artifact_ref(artifact))
    recipient = host_ref(host) if host else org_ref(str(customer))
    if host and customer:
        out.edges.append(
            Edge(
                EdgeKind.PART_OF,
                host_ref(host),
                org_ref(customer),
                source,
                None,
                None,
                ctx.recorded_at,
            )
        )
    for item in items:
        out.nodes.append(Node(item.kind, item.key, {}))
        out.edges.append(
            Edge(EdgeKind.DISTRIBUTED_TO, item, recipient, source, when, when, ctx.recorded_at)
        )
    if customer:
        out.nodes.append(Node(NodeKind.ORG, org_ref(customer).key, {"name": customer}))


class DistributionCsv(GraphReader):
    """``customer|host, release|artifact, time`` -> distributed_to (+ part_of)."""

    name: ClassVar[str] = "distribution-csv"

    def sniff(self, head: bytes) -> bool:
        h = csv_header(head)
        return (
            (_has(h, RECIPIENT) or _has(h, HOST))
            and _has(h, ("release", "artifact"))
            and not _has(h, BUILD)
        )

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        rows = _Rows(path, data, out)
        for row in rows:
            _distribution_row(path, rows.line, dict(row), ctx, out)
        return out


class DistributionJson(GraphReader):
    """The same records as JSON (an array) or JSON Lines (update-server / download logs)."""

    name: ClassVar[str] = "distribution-json"

    def sniff(self, head: bytes) -> bool:
        first = first_json(head)
        if not isinstance(first, dict):
            return False
        keys = {str(k).lower() for k in first}
        return bool(keys & set(RECIPIENT + HOST)) and bool(keys & {"release", "artifact", "sha256"})

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        for number, record in json_objects(path, json_records(data), out.problems):
            row = {str(k).lower(): v for k, v in record.items()}
            _distribution_row(path, number, row, ctx, out)
        return out


class AuthCsv(GraphReader):
    """Logins/connections between hosts: ``src_host, dst_host, time[, end][, user][, success]``
    -> connected_to (lateral movement)."""

    name: ClassVar[str] = "auth-csv"

    def sniff(self, head: bytes) -> bool:
        h = csv_header(head)
        return _has(h, SRC) and _has(h, DST)

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        rows = _Rows(path, data, out)
        for row in rows:
            src, dst = pick(row, *SRC), pick(row, *DST)
            if not src or not dst:
                rows.problem("row without source or destination")
                continue
            success = (pick(row, "success", "result", "outcome") or "true").lower()
            if success in {"false", "0", "no", "failure", "failed", "denied"}:
                continue  # a failed login passes nothing
            times = rows.times(row, (*WHEN, "start", "login"), ("end", "logout", "until"))
            if times is None:
                continue
            start, end = times[0], times[1] or times[0]
            attrs = {k: v for k, v in (("user", pick(row, "user", "account")),) if v}
            out.edges.append(
                Edge(
                    EdgeKind.CONNECTED_TO,
                    host_ref(src),
                    host_ref(dst),
                    rows.source,
                    start,
                    end,
                    ctx.recorded_at,
                    attrs=attrs,
                )
            )
        return out
