"""JSON Lines logs: Zeek's JSON writer (flat dotted keys like ``id.orig_h``) and any other
one-object-per-line source (Elastic Common Schema, Suricata EVE, cloud DNS logs) through
``--map field=path`` (``query=dns.question.name``: nested objects or a flat dotted key).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from taintline.errors import Problem
from taintline.hunt.model import Field, LogFormat, LogKind, LogSource
from taintline.hunt.readers.fields import (
    GENERIC_FIELDS,
    ZEEK_FIELDS,
    kind_from_fields,
    kind_from_path,
)
from taintline.hunt.readers.textio import compression_of_path

FORMAT = LogFormat.JSONL


def _objects(head: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for line in head:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def sniff(head: list[bytes], path: Path) -> bool:
    for line in head:
        text = line.strip()
        if text:
            return text.startswith(b"{")
    return False


def _lookup(obj: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    """The key path under which ``name`` (``a.b.c``) exists in ``obj``: flat key or nested."""
    if name in obj:
        return (name,)
    lowered = {k.lower(): k for k in obj}
    if name.lower() in lowered:
        return (lowered[name.lower()],)
    parts = name.split(".")
    node: Any = obj
    path: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return None
        if part in node:
            path.append(part)
            node = node[part]
            continue
        # A flat dotted key below this level ("tls": {"client.server_name": ...}).
        rest = ".".join(parts[i:])
        if rest in node:
            path.append(rest)
            return tuple(path)
        return None
    return tuple(path)


def _flat_keys(obj: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in obj.items():
        name = f"{prefix}{key}"
        keys.append(name)
        if isinstance(value, Mapping):
            keys.extend(_flat_keys(value, name + "."))
    return keys


def describe(path: Path, head: list[bytes], field_map: Mapping[Field, str]) -> LogSource | Problem:
    objects = _objects(head)
    if not objects:
        return Problem(str(path), "no JSON object in the first lines")
    keys: set[str] = set()
    for obj in objects:
        keys.update(_flat_keys(obj))
    zeek = "id.orig_h" in keys or "_path" in keys or ("uid" in keys and "ts" in keys)
    candidates = ZEEK_FIELDS if zeek else GENERIC_FIELDS
    chosen: dict[Field, tuple[str, ...]] = {}
    for fld, name in field_map.items():
        for obj in objects:
            found = _lookup(obj, name)
            if found:
                chosen[fld] = found
                break
        else:
            chosen[fld] = tuple(name.split("."))  # absent in the sample: nested path
    for fld, names in candidates.items():
        if fld in chosen:
            continue
        for name in names:
            found = next((p for p in (_lookup(o, name) for o in objects) if p), None)
            if found is not None and found not in chosen.values():
                chosen[fld] = found
                break
    path_name = next((str(o["_path"]) for o in objects if "_path" in o), None)
    kind = kind_from_path(path_name) or kind_from_fields(keys)
    if kind is not LogKind.X509:  # "id" and "fingerprint" mean other things elsewhere
        chosen.pop(Field.CERT_ID, None)
    return LogSource(
        path=str(path),
        format=LogFormat.ZEEK_JSON if zeek else FORMAT,
        kind=kind,
        fields=chosen,
        compression=compression_of_path(path),
    )
