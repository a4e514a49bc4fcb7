"""STIX 2.1 bundle of findings, in linear time.

- every indicator a finding refers to becomes an ``indicator`` (with a STIX pattern);
- hunt findings on a host become ``sighting`` objects of that indicator, sighted at an
  ``identity`` (identity_class ``system``) for the host, with first/last seen and count;
- file findings become a ``file`` observable (name, hashes when known) plus a ``note`` that
  says what was found (kind, severity, evidence summary).

The objects are written as plain dicts, not built with the ``stix2`` library: its object
constructors validate every property and parse every pattern with an ANTLR grammar (tens of
milliseconds each) and its pretty serializer searches the whole bundle for each key it writes
(quadratic: 2,814 findings took over 300 s). Here each object is a handful of fixed keys,
ids are deterministic (UUIDv5 of what the object says, so the same findings give the same
bundle), patterns come from the fixed templates below with their values escaped, and the
tests check the output with ``stix2.parse`` and the pattern validator, including hostile
values. 100,000 findings take seconds (``benchmarks/bench_renderers.py``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from taintline.model import Finding, iso, parse_time
from taintline.report.context import RenderContext

_PATTERN = {
    "sha256": "[file:hashes.'SHA-256' = '{v}']",
    "sha1": "[file:hashes.'SHA-1' = '{v}']",
    "md5": "[file:hashes.MD5 = '{v}']",
    "domain": "[domain-name:value = '{v}']",
    "url": "[url:value = '{v}']",
    "ipv4": "[ipv4-addr:value = '{v}']",
    "ipv6": "[ipv6-addr:value = '{v}']",
    "cidr": "[ipv4-addr:value = '{v}']",
    "filename": "[file:name = '{v}']",
}

#: taintline's own identity (the creator of every object).
IDENTITY_ID = "identity--6b5c7e2a-3d0c-5c8e-9a59-2b1f6f1b9a10"
IDENTITY: dict[str, Any] = {
    "type": "identity",
    "spec_version": "2.1",
    "id": IDENTITY_ID,
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "taintline",
    "identity_class": "system",
}
#: Namespace of our SDO/SRO ids (a fixed UUID of taintline's).
_NS = uuid.UUID("0f3c5f6e-52a4-4bb2-9a1c-8f1d6f0e7c21")
#: The STIX 2.1 namespace for deterministic SCO ids (spec section 2.9).
_SCO_NS = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
_MAX_COUNT = 999_999_999


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _text(value: str) -> str:
    """A string JSON can carry: undecodable bytes of a file name (kept by Python as lone
    surrogates) become ``\\xNN`` escapes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def pattern_for(key: str) -> str | None:
    """A STIX pattern for an indicator key ``type:value``; ``None`` for types without one."""
    type_, _, value = key.partition(":")
    template = _PATTERN.get(type_)
    if template is None or not value:
        return None
    if type_ == "cidr" and ":" in value:
        template = "[ipv6-addr:value = '{v}']"
    return template.format(v=_escape(_text(value)))


def _stamp(when: datetime) -> str:
    """STIX timestamps: UTC, ``Z``, milliseconds (what ``created``/``modified`` require)."""
    moment = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uuid5(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))`` (SHA-1, as UUIDv5 is defined) at a third of the
    cost: it is called per object."""
    raw = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _id(kind: str, *parts: str) -> str:
    return f"{kind}--{_uuid5(_NS, _text(chr(31).join((kind, *parts))))}"


def _last_seen(f: Finding) -> datetime | None:
    """The evidence's ``last_seen`` when it is a time not before the finding's own time
    (imported findings can carry anything)."""
    text = f.evidence.get("last_seen")
    if not isinstance(text, str) or f.time is None:
        return f.time
    try:
        last = parse_time(text)
    except ValueError:
        return f.time
    return last if last >= f.time else f.time


def build_objects(findings: Sequence[Finding], now: datetime | None = None) -> list[dict[str, Any]]:
    """The bundle's objects, in a stable order: our identity, the indicators, then per
    finding its host identity and sightings, or its file observable and note."""
    created = _stamp(now or datetime.now(UTC))
    common = {"spec_version": "2.1", "created": created, "modified": created}
    objects: list[dict[str, Any]] = [IDENTITY]
    indicators: dict[str, str] = {}
    for f in findings:
        for key in f.indicators:
            if key in indicators:
                continue
            pattern = pattern_for(key)
            if pattern is None:
                continue
            indicators[key] = _id("indicator", key)
            objects.append(
                {
                    "type": "indicator",
                    "id": indicators[key],
                    **common,
                    "created_by_ref": IDENTITY_ID,
                    "name": _text(key),
                    "indicator_types": ["malicious-activity"],
                    "pattern": pattern,
                    "pattern_type": "stix",
                    "pattern_version": "2.1",
                    "valid_from": _stamp(f.time) if f.time else "1970-01-01T00:00:00.000Z",
                }
            )
    hosts: dict[str, str] = {}
    seen: set[str] = set()
    for f in findings:
        if f.host and f.indicators:
            host_id = hosts.get(f.host)
            if host_id is None:
                host_id = hosts[f.host] = _id("identity", "host", f.host)
                objects.append(
                    {
                        "type": "identity",
                        "id": host_id,
                        **common,
                        "created_by_ref": IDENTITY_ID,
                        "name": _text(f.host),
                        "identity_class": "system",
                    }
                )
            last = _last_seen(f)
            for key in f.indicators:
                if key not in indicators:
                    continue
                sighting: dict[str, Any] = {
                    "type": "sighting",
                    "id": _id("sighting", f.fingerprint, key),
                    **common,
                    "created_by_ref": IDENTITY_ID,
                    "description": _text(f"{f.kind}: {f.message}"),
                    "sighting_of_ref": indicators[key],
                    "where_sighted_refs": [host_id],
                }
                if f.time is not None:
                    sighting["first_seen"] = _stamp(f.time)
                    sighting["last_seen"] = _stamp(last or f.time)
                count = f.evidence.get("count")
                if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                    sighting["count"] = min(count, _MAX_COUNT)
                if sighting["id"] not in seen:  # the same finding twice in the input
                    seen.add(sighting["id"])
                    objects.append(sighting)
            continue
        refs: list[str] = []
        if "!/" in f.subject or f.source in ("scan", "release"):
            hashes = {
                name: _text(f.evidence[field])
                for field, name in (("sha256", "SHA-256"), ("sha1", "SHA-1"), ("md5", "MD5"))
                if isinstance(f.evidence.get(field), str) and f.evidence[field]
            }
            sco: dict[str, Any] = {
                "type": "file",
                "spec_version": "2.1",
                "name": _text(f.subject.rsplit("/", 1)[-1] or f.subject),
            }
            if hashes:
                sco["hashes"] = hashes
            contributing = {k: sco[k] for k in ("hashes", "name") if k in sco}
            canonical = orjson.dumps(contributing, option=orjson.OPT_SORT_KEYS).decode()
            sco = {"type": "file", "id": f"file--{_uuid5(_SCO_NS, canonical)}", **sco}
            if sco["id"] not in seen:
                seen.add(sco["id"])
                objects.append(sco)
            refs.append(sco["id"])
        refs.extend(indicators[k] for k in f.indicators if k in indicators)
        if not refs:
            refs.append(IDENTITY_ID)
        note_id = _id("note", f.fingerprint, f.message)
        if note_id in seen:
            continue
        seen.add(note_id)
        objects.append(
            {
                "type": "note",
                "id": note_id,
                **common,
                "created_by_ref": IDENTITY_ID,
                "abstract": _text(f"{f.severity} {f.kind}"),
                "content": _text(
                    f"{f.subject}: {f.message}"
                    + (f" (host {f.host})" if f.host else "")
                    + (f" at {iso(f.time)}" if f.time else "")
                ),
                "object_refs": refs,
                "labels": [_text(f.kind), str(f.severity)],
            }
        )
    return objects


def build_bundle(
    findings: Sequence[Finding], ctx: RenderContext | None = None, now: datetime | None = None
) -> dict[str, Any]:
    objects = build_objects(findings, now)
    ids = "\x1f".join(o["id"] for o in objects)
    return {"type": "bundle", "id": f"bundle--{_uuid5(_NS, ids)}", "objects": objects}


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    bundle = build_bundle(findings, ctx)
    out.write(orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode())
    out.write("\n")
