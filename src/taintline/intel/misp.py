"""MISP event JSON: one event (``{"Event": ...}``), a list of them, or ``{"response": [...]}``.

* Attributes and the attributes of Objects are read; composite types are split
  (``ip-dst|port`` -> the IP with the port in its context, ``domain|ip`` -> both,
  ``filename|sha256`` and friends -> the file name and the hash).
* ``to_ids`` is respected: an attribute with ``to_ids: false`` is, in MISP's own terms, not
  meant for detection, so it is kept as **context only** (``ReadResult.context_only``, stored
  apart from the indicators: ``intel show`` finds it, no matcher ever reads it). Matching on
  it would turn context (a victim's IP, a sandbox domain) into alerts.
* Tags (event and attribute) become labels; galaxy clusters become labels and context, and a
  ``threat-actor`` or campaign cluster names the indicator's campaign.
* ``first_seen``/``last_seen`` become valid_from/valid_until; the organisation that created
  the event (``Orgc``) is the source.
* Types we do not match on (ssdeep, text, links, ...) are skipped and counted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from taintline.errors import Problem
from taintline.intel.interface import ReadResult, YaraSource, load_json
from taintline.intel.normalize import normalize, normalize_ip
from taintline.limits import IntelLimits
from taintline.model import Indicator, IndicatorType, parse_time

NAME = "misp"

_SNIFF = re.compile(rb'"(?:Event|Attribute)"\s*:\s*[{\[]')

_SIMPLE_TYPES: dict[str, IndicatorType] = {
    "md5": IndicatorType.MD5,
    "sha1": IndicatorType.SHA1,
    "sha256": IndicatorType.SHA256,
    "domain": IndicatorType.DOMAIN,
    "hostname": IndicatorType.DOMAIN,
    "url": IndicatorType.URL,
    "ip-src": IndicatorType.IPV4,
    "ip-dst": IndicatorType.IPV4,
    "filename": IndicatorType.FILENAME,
    "email": IndicatorType.EMAIL,
    "email-src": IndicatorType.EMAIL,
    "email-dst": IndicatorType.EMAIL,
    "x509-fingerprint-sha1": IndicatorType.CERT_THUMBPRINT,
    "x509-fingerprint-sha256": IndicatorType.CERT_THUMBPRINT,
}
#: Composite types: the parts, in order (``None`` = kept as context under that name).
_COMPOSITE: dict[str, tuple[IndicatorType | str, ...]] = {
    "ip-src|port": (IndicatorType.IPV4, "port"),
    "ip-dst|port": (IndicatorType.IPV4, "port"),
    "domain|ip": (IndicatorType.DOMAIN, IndicatorType.IPV4),
    "hostname|port": (IndicatorType.DOMAIN, "port"),
    "filename|md5": (IndicatorType.FILENAME, IndicatorType.MD5),
    "filename|sha1": (IndicatorType.FILENAME, IndicatorType.SHA1),
    "filename|sha256": (IndicatorType.FILENAME, IndicatorType.SHA256),
}
_CAMPAIGN_GALAXIES = ("threat-actor", "campaign", "mitre-intrusion-set", "tool")


def sniff(head: bytes, path: Path) -> bool:
    stripped = head.lstrip()
    return stripped[:1] in (b"{", b"[") and _SNIFF.search(head) is not None


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    doc = load_json(path, NAME, limits)
    if isinstance(doc, ReadResult):
        return doc
    events = _events(doc)
    if events is None:
        return ReadResult.failure(
            NAME,
            item,
            "not a MISP event (expected {'Event': {...}}, a list, or {'response': [...]})",
        )
    result = ReadResult(format=NAME)
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict):
            return ReadResult.failure(NAME, item, f"event {number} is not an object")
        problem = _event(event, result, item, path.name)
        if problem:
            return ReadResult.failure(NAME, item, f"event {number}: {problem}")
    return result


def _events(doc: Any) -> list[Any] | None:
    if isinstance(doc, dict) and "response" in doc:
        doc = doc["response"]
    if isinstance(doc, dict) and "Event" in doc:
        return [doc["Event"]]
    if isinstance(doc, list):
        return [e.get("Event", e) if isinstance(e, dict) else e for e in doc]
    if isinstance(doc, dict) and "Attribute" in doc:
        return [doc]
    return None


def _names(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        return []
    return [str(t["name"]) for t in tags if isinstance(t, dict) and t.get("name")]


def _clusters(galaxies: Any) -> list[tuple[str, str]]:
    """(galaxy type, cluster value) pairs."""
    out: list[tuple[str, str]] = []
    if not isinstance(galaxies, list):
        return out
    for galaxy in galaxies:
        if not isinstance(galaxy, dict):
            continue
        for cluster in galaxy.get("GalaxyCluster") or []:
            if isinstance(cluster, dict) and cluster.get("value"):
                kind = str(cluster.get("type") or galaxy.get("type") or "")
                out.append((kind, str(cluster["value"])))
    return out


def _true(flag: Any) -> bool:
    if isinstance(flag, str):
        return flag.strip().lower() in ("1", "true", "yes")
    return bool(flag)


def _event(event: dict[str, Any], result: ReadResult, item: str, default_source: str) -> str | None:
    attributes = event.get("Attribute") or []
    objects = event.get("Object") or []
    if not isinstance(attributes, list):
        return "'Attribute' is not a list"
    if not isinstance(objects, list):
        return "'Object' is not a list"
    org = event.get("Orgc") or event.get("Org") or {}
    source = str(org.get("name")) if isinstance(org, dict) and org.get("name") else default_source
    labels = _names(event.get("Tag"))
    clusters = _clusters(event.get("Galaxy"))
    base = {"misp_event": event.get("uuid"), "event_info": event.get("info")}
    pairs: list[tuple[dict[str, Any], str | None]] = [(a, None) for a in attributes]
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("Attribute") or [], list):
            return "an Object without an attribute list"
        pairs.extend((a, str(obj.get("name") or "object")) for a in obj.get("Attribute") or [])
    for number, (attribute, object_name) in enumerate(pairs, start=1):
        if not isinstance(attribute, dict):
            result.problems.append(Problem(item, "attribute is not an object", number))
            continue
        try:
            _attribute(attribute, object_name, result, source, labels, clusters, base)
        except (ValueError, TypeError) as exc:
            kind = attribute.get("type")
            result.problems.append(Problem(item, f"attribute {kind}: {exc}", number))
    return None


def _attribute(
    attribute: dict[str, Any],
    object_name: str | None,
    result: ReadResult,
    source: str,
    event_labels: list[str],
    event_clusters: list[tuple[str, str]],
    base: dict[str, Any],
) -> None:
    kind = attribute.get("type")
    value = attribute.get("value")
    if not isinstance(kind, str) or not isinstance(value, str):
        raise ValueError("needs a string 'type' and 'value'")
    for_detection = _true(attribute.get("to_ids", False))
    if kind == "yara" and not for_detection:
        result.skip("misp yara attributes with to_ids=false")
        return
    if kind == "yara":
        result.yara.append(
            YaraSource(
                namespace=f"misp_{attribute.get('uuid', 'rule')}".replace("-", "_"),
                origin=f"misp attribute {attribute.get('uuid', '')}",
                text=value,
                source=source,
            )
        )
        return
    parts: tuple[IndicatorType | str, ...]
    if kind in _SIMPLE_TYPES:
        parts = (_SIMPLE_TYPES[kind],)
        values = [value]
    elif kind in _COMPOSITE:
        parts = _COMPOSITE[kind]
        values = value.split("|", len(parts) - 1)
        if len(values) != len(parts):
            raise ValueError(f"composite value needs {len(parts)} parts: {value!r}")
    else:
        result.skip(f"misp type {kind}")
        return
    clusters = event_clusters + _clusters(attribute.get("Galaxy"))
    campaign = next((v for k, v in clusters if k in _CAMPAIGN_GALAXIES), None)
    labels = tuple(
        dict.fromkeys(event_labels + _names(attribute.get("Tag")) + [v for _, v in clusters])
    )
    context: dict[str, Any] = {**base, "category": attribute.get("category"), "misp_type": kind}
    if object_name:
        context["object"] = object_name
    if clusters:
        context["galaxies"] = [f"{k}={v}" for k, v in clusters]
    found: list[tuple[IndicatorType, str]] = []
    for part, text in zip(parts, values, strict=True):
        if not isinstance(part, IndicatorType):  # (IndicatorType is a str enum: test it first)
            context[part] = text
        elif part in (IndicatorType.IPV4, IndicatorType.IPV6):
            found.append(normalize_ip(text))
        else:
            found.append(normalize(part, text))
    if len(found) > 1:
        context["together_with"] = [f"{t}:{v}" for t, v in found]
    first_seen = attribute.get("first_seen")
    last_seen = attribute.get("last_seen")
    target = result.indicators if for_detection else result.context_only
    if not for_detection:
        context["to_ids"] = False
    for got_type, got_value in found:
        target.append(
            Indicator(
                type=got_type,
                value=got_value,
                source=source,
                campaign=campaign,
                valid_from=parse_time(first_seen)
                if isinstance(first_seen, str) and first_seen
                else None,
                valid_until=parse_time(last_seen)
                if isinstance(last_seen, str) and last_seen
                else None,
                description=str(attribute.get("comment") or base.get("event_info") or "") or None,
                labels=labels,
                context={k: v for k, v in context.items() if v is not None},
            )
        )
