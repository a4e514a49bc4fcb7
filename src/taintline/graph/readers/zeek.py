"""Zeek ``conn.log`` (TSV with ``#fields`` header, or JSON lines) -> connected_to edges between
the originating and responding hosts (keyed by IP address), from ``ts`` to ``ts + duration``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from taintline.errors import Problem
from taintline.graph.interface import GraphFacts, GraphReader, ReadContext
from taintline.graph.readers.common import (
    first_json,
    first_line,
    host_ref,
    json_records,
    parse_when,
)
from taintline.model import Edge, EdgeKind


class ZeekConn(GraphReader):
    name: ClassVar[str] = "zeek-conn"

    def sniff(self, head: bytes) -> bool:
        if first_line(head).startswith("#separator") and b"#path\tconn" in head:
            return True
        first = first_json(head)
        return isinstance(first, dict) and "id.orig_h" in first and "id.resp_h" in first

    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        out = GraphFacts()
        if data.lstrip().startswith(b"#"):
            records = self._tsv(path, data, out)
        else:
            records = []
            for number, rec in json_records(data):
                if isinstance(rec, dict):
                    records.append((number, rec))
                else:
                    out.problems.append(Problem(str(path), "not a conn.log record", number))
        for number, rec in records:
            orig, resp = rec.get("id.orig_h"), rec.get("id.resp_h")
            if not orig or not resp or orig == "-" or resp == "-":
                out.problems.append(Problem(str(path), "record without endpoints", number))
                continue
            try:
                start = parse_when(rec.get("ts"))
                duration = rec.get("duration")
                seconds = float(duration) if duration not in (None, "-", "") else 0.0
            except (ValueError, TypeError) as exc:
                out.problems.append(Problem(str(path), f"bad time: {exc}", number))
                continue
            end = start + timedelta(seconds=seconds) if start else None
            attrs = {
                k: rec[k]
                for k in ("uid", "id.resp_p", "proto", "service", "conn_state")
                if rec.get(k) not in (None, "-")
            }
            out.edges.append(
                Edge(
                    EdgeKind.CONNECTED_TO,
                    host_ref(str(orig)),
                    host_ref(str(resp)),
                    f"{path.name}:{number}",
                    start,
                    end,
                    ctx.recorded_at,
                    attrs=attrs,
                )
            )
        return out

    @staticmethod
    def _tsv(path: Path, data: bytes, out: GraphFacts) -> list[tuple[int, dict[str, str]]]:
        fields: list[str] = []
        rows: list[tuple[int, dict[str, str]]] = []
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if raw.startswith("#fields"):
                fields = raw.split("\t")[1:]
                continue
            if raw.startswith("#") or not raw.strip():
                continue
            values = raw.split("\t")
            if not fields or len(values) != len(fields):
                out.problems.append(Problem(str(path), "row does not match #fields", number))
                continue
            rows.append((number, dict(zip(fields, values, strict=True))))
        return rows
