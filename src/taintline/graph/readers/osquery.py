"""osquery results: ``osqueryi --json`` arrays and the daemon's result logs (one JSON object a
line: ``name``, ``hostIdentifier``, ``unixTime``, ``columns`` and ``action`` added/removed, or
``snapshot`` rows) for the programs, apps, deb_packages, rpm_packages, homebrew_packages and processes tables.

Installed software becomes ``software -installed_on-> host`` from its install time (or, when
the table has none, open-ended: the earliest possible time); a differential ``removed`` row
closes the matching edge at that time. Processes become ``installed_on`` edges from the
process start time (the binary was on the host and running).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import (
    artifact_ref,
    first_json,
    host_ref,
    is_sha256,
    json_objects,
    json_records,
    parse_when,
    software_ref,
)
from taintline.model import Edge, EdgeKind, Node, NodeRef


@dataclass(frozen=True, slots=True)
class _Row:
    ref: NodeRef
    attrs: dict[str, Any]
    installed: datetime | None


def _table(columns: dict[str, Any], query_name: str = "") -> str | None:
    keys = set(columns)
    name = query_name.lower()
    for table in (
        "deb_packages",
        "rpm_packages",
        "homebrew_packages",
        "programs",
        "processes",
        "apps",
    ):
        if table in name:
            return table
    if {"pid", "cmdline"} & keys and "name" in keys:
        return "processes"
    if "bundle_identifier" in keys or "bundle_short_version" in keys:
        return "apps"
    if "prefix" in keys and "path" in keys and "version" in keys:
        return "homebrew_packages"
    if "install_time" in keys or ("release" in keys and "arch" in keys and "sha1" in keys):
        return "rpm_packages"
    if "maintainer" in keys or ("revision" in keys and "arch" in keys):
        return "deb_packages"
    if "install_date" in keys or "identifying_number" in keys or "publisher" in keys:
        return "programs"
    return None


def _row(table: str, c: dict[str, Any]) -> _Row | None:
    name = str(c.get("name") or "").strip()
    if not name:
        return None
    if table == "programs":
        when = parse_when(c.get("install_date"))
        version = c.get("version")
        attrs = {"name": name, "version": version, "publisher": c.get("publisher")}
    elif table == "apps":
        version = c.get("bundle_short_version") or c.get("bundle_version")
        when = None
        attrs = {
            "name": name,
            "version": version,
            "bundle": c.get("bundle_identifier"),
            "path": c.get("path"),
        }
    elif table == "homebrew_packages":
        version = c.get("version")
        when = None
        attrs = {"name": name, "version": version, "path": c.get("path"), "type": c.get("type")}
    elif table == "deb_packages":
        version = c.get("version")
        when = None
        attrs = {"name": name, "version": version, "arch": c.get("arch")}
    elif table == "rpm_packages":
        version = "-".join(str(x) for x in (c.get("version"), c.get("release")) if x)
        when = parse_when(c.get("install_time"))
        attrs = {"name": name, "version": version, "arch": c.get("arch"), "sha1": c.get("sha1")}
    else:  # processes
        version = None
        when = parse_when(c.get("start_time"))
        attrs = {
            "name": name,
            "path": c.get("path"),
            "pid": c.get("pid"),
            "cmdline": str(c.get("cmdline") or "")[:512],
        }
        sha = str(c.get("sha256") or "")
        if is_sha256(sha):
            return _Row(artifact_ref(sha), attrs, when)
    attrs["table"] = table
    return _Row(software_ref(name, str(version) if version else None), attrs, when)


class Osquery(GraphReader):
    name: ClassVar[str] = "osquery"

    def sniff(self, head: bytes) -> bool:
        first = first_json(head)
        if not isinstance(first, dict):
            return False
        if "hostIdentifier" in first or ("columns" in first and "action" in first):
            return True
        if "snapshot" in first and "name" in first:
            return True
        return head.lstrip().startswith(b"[") and _table(first) is not None

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        open_edges: dict[tuple[NodeRef, NodeRef], int] = {}
        for number, record in json_objects(path, json_records(data), out.problems):
            try:
                self._record(path, number, record, ctx, out, open_edges)
            except (ValueError, TypeError) as exc:
                out.problems.append(Problem(str(path), f"bad record: {exc}", number))
        return out

    def _record(
        self,
        path: Path,
        number: int,
        record: dict[str, Any],
        ctx: ReadContext,
        out: GraphFacts,
        open_edges: dict[tuple[NodeRef, NodeRef], int],
    ) -> None:
        daemon = "columns" in record or "snapshot" in record
        host_name = record.get("hostIdentifier") if daemon else (record.get("host") or ctx.host)
        host_name = host_name or ctx.host
        if not host_name:
            raise ValueError("no host: use --host for osqueryi output")
        host = host_ref(str(host_name))
        seen = parse_when(record.get("unixTime")) if daemon else None
        action = str(record.get("action") or "snapshot")
        if "snapshot" in record:
            rows = [r for r in record.get("snapshot") or [] if isinstance(r, dict)]
        elif daemon:
            rows = [record["columns"]] if isinstance(record.get("columns"), dict) else []
        else:
            rows = [record]
        for columns in rows:
            table = _table(columns, str(record.get("name") or ""))
            if table is None:
                raise ValueError("unknown osquery table")
            row = _row(table, columns)
            if row is None:
                continue
            out.nodes.append(Node(row.ref.kind, row.ref.key, row.attrs))
            key = (row.ref, host)
            if action == "removed":
                index = open_edges.pop(key, None)
                if index is not None:
                    old = out.edges[index]
                    out.edges[index] = Edge(
                        old.kind,
                        old.src,
                        old.dst,
                        old.source,
                        old.valid_from,
                        seen,
                        old.recorded_at,
                        attrs=old.attrs,
                    )
                else:
                    out.edges.append(
                        Edge(
                            EdgeKind.INSTALLED_ON,
                            row.ref,
                            host,
                            f"{path.name}:{number}",
                            row.installed,
                            seen,
                            ctx.recorded_at,
                            attrs={"action": "removed"},
                        )
                    )
                continue
            if key in open_edges:
                continue
            start = row.installed if row.installed else (seen if action == "added" else None)
            out.edges.append(
                Edge(
                    EdgeKind.INSTALLED_ON,
                    row.ref,
                    host,
                    f"{path.name}:{number}",
                    start,
                    None,
                    ctx.recorded_at,
                    attrs={"table": table, "observed": str(seen or "")},
                )
            )
            open_edges[key] = len(out.edges) - 1
