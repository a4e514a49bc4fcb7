"""STIX 2.1 bundles (and bare lists of STIX objects).

* ``indicator`` objects with ``pattern_type: stix``: the common single-comparison patterns
  (``[file:hashes.'SHA-256' = '...']``, ``[domain-name:value = '...']``, url, ipv4/ipv6 incl.
  CIDR, e-mail, file name) are recognised by one regular expression (the fast path); every
  other pattern is parsed by the real STIX pattern parser (``stix2-patterns``). A compound
  pattern (AND/OR, several observations, qualifiers) is kept whole as a ``pattern`` indicator
  and each of its equality atoms is also extracted as an indicator, with the pattern in its
  context. A pattern that does not parse is a Problem.
* cyber-observable objects: ``file`` (hashes, name), ``domain-name``, ``url``, ``ipv4-addr``,
  ``ipv6-addr``, ``email-addr``.
* ``campaign``/``intrusion-set``/``malware`` names reach an indicator through ``relationship``
  objects (either direction): the campaign (else intrusion set) name becomes its campaign; all
  names are kept in its context. The source is the ``identity`` named by ``created_by_ref``,
  else the file name. ``valid_from``, ``valid_until``, ``confidence``, ``labels`` and
  ``indicator_types`` are kept.

JSON is parsed with orjson (small files) or streamed element by element
(:mod:`taintline.intel.jsonstream`) — never with ``stix2.parse``, which is ~100x slower; the
``stix2`` library validates what we *write* (``intel export --format stix``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from taintline.errors import Problem
from taintline.intel.interface import ReadResult
from taintline.intel.jsonstream import JsonStreamError, iter_top_level
from taintline.intel.normalize import normalize, normalize_hash, normalize_ip, normalize_with_hint
from taintline.limits import IntelLimits
from taintline.model import IndicatorType, parse_time

NAME = "stix"

_SNIFF = re.compile(rb'"type"\s*:\s*"(?:bundle|indicator)"|"spec_version"\s*:\s*"2\.')
#: Files up to this size are parsed whole with orjson; bigger ones are streamed.
WHOLE_FILE_BYTES = 64 * 1024 * 1024

_SIMPLE = re.compile(
    r"""^\s*\[\s*(?:
        file:hashes\.(?:'(?P<qalg>[A-Za-z0-9_-]+)'|(?P<alg>[A-Za-z0-9_]+))
        | (?P<obj>domain-name|url|ipv4-addr|ipv6-addr|email-addr):value
        | (?P<fname>file:name)
    )\s*=\s*'(?P<val>(?:[^'\\]|\\.)*)'\s*\]\s*$""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")

HASH_ALGORITHMS: dict[str, IndicatorType] = {
    "sha-256": IndicatorType.SHA256,
    "sha256": IndicatorType.SHA256,
    "sha-1": IndicatorType.SHA1,
    "sha1": IndicatorType.SHA1,
    "md5": IndicatorType.MD5,
}
_VALUE_TYPES: dict[str, IndicatorType] = {
    "domain-name": IndicatorType.DOMAIN,
    "url": IndicatorType.URL,
    "ipv4-addr": IndicatorType.IPV4,
    "ipv6-addr": IndicatorType.IPV6,
    "email-addr": IndicatorType.EMAIL,
}
_GROUP_TYPES = ("campaign", "intrusion-set", "malware")


def sniff(head: bytes, path: Path) -> bool:
    stripped = head.lstrip()
    return stripped[:1] in (b"{", b"[") and _SNIFF.search(head) is not None


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def _iter_objects(path: Path, limits: IntelLimits) -> Iterator[dict[str, Any]]:
    if path.stat().st_size <= WHOLE_FILE_BYTES:
        try:
            doc = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise JsonStreamError(f"invalid JSON ({exc}); truncated?") from None
        if isinstance(doc, dict) and doc.get("type") == "bundle":
            objects = doc.get("objects", [])
            if not isinstance(objects, list):
                raise JsonStreamError("bundle 'objects' is not a list")
        elif isinstance(doc, dict):
            objects = [doc]
        elif isinstance(doc, list):
            objects = doc
        else:
            raise JsonStreamError("not a STIX bundle, object or list of objects")
        yield from objects
        return
    with path.open("rb") as handle:
        single: dict[str, Any] = {}
        for kind, value in iter_top_level(handle, "objects"):
            if kind == "item":
                yield value
            else:
                name, field_value = value
                single[name] = field_value
        if single.get("type") not in (None, "bundle"):
            yield single


#: One output row: type, value, confidence, valid_from, valid_until, description, labels,
#: stix id, created_by_ref, extra context (or None).
Row = tuple[
    str,
    str,
    int | None,
    datetime | None,
    datetime | None,
    str | None,
    list[str] | None,
    str,
    str | None,
    dict[str, Any] | None,
]
Meta = tuple[int | None, datetime | None, datetime | None, str | None, list[str] | None]


class _Times:
    """Parses STIX timestamps to naive UTC, remembering repeated strings (bundles repeat them)."""

    def __init__(self) -> None:
        self.cache: dict[str, datetime] = {}

    def __call__(self, text: Any) -> datetime | None:
        if text is None:
            return None
        found = self.cache.get(text) if isinstance(text, str) else None
        if found is None:
            if not isinstance(text, str):
                raise ValueError(f"timestamp is not a string: {text!r}")
            found = parse_time(text).replace(tzinfo=None)  # naive UTC, as the case stores it
            if len(self.cache) < 100_000:
                self.cache[text] = found
        return found


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    result = ReadResult(format=NAME)
    rows: list[Row] = []
    batches: list[pa.Table] = []
    names: dict[str, tuple[str, str]] = {}  # id -> (type, name) for campaigns etc. and identities
    relations: list[tuple[str, str]] = []
    times = _Times()
    index = 0
    try:
        for index, obj in enumerate(_iter_objects(path, limits), start=1):
            if not isinstance(obj, dict):
                result.problems.append(Problem(item, "STIX object is not a JSON object", index))
                continue
            kind = obj.get("type")
            try:
                if kind == "indicator":
                    _indicator(obj, rows, result, item, index, times)
                elif kind in _GROUP_TYPES or kind == "identity":
                    name = obj.get("name")
                    if isinstance(name, str) and isinstance(obj.get("id"), str):
                        names[obj["id"]] = (str(kind), name)
                elif kind == "relationship":
                    src, dst = obj.get("source_ref"), obj.get("target_ref")
                    if isinstance(src, str) and isinstance(dst, str):
                        relations.append((src, dst))
                elif kind in _VALUE_TYPES or kind == "file":
                    _observable(obj, rows, result, item, index)
                elif not isinstance(kind, str):
                    result.problems.append(Problem(item, "STIX object without a 'type'", index))
                else:
                    result.skip(f"stix {kind} objects")
            except (ValueError, TypeError) as exc:
                result.problems.append(Problem(item, f"{kind} {obj.get('id', '')}: {exc}", index))
            if len(rows) >= BATCH_ROWS:
                # Columnar as we go: a million row tuples would cost ~1 GB of Python objects.
                batches.append(_batch(rows))
                rows = []
    except JsonStreamError as exc:
        return ReadResult.failure(NAME, item, str(exc))
    except OSError as exc:
        return ReadResult.failure(NAME, item, f"cannot read: {exc.strerror or exc}")
    if rows:
        batches.append(_batch(rows))
    if not batches:
        return result
    result.tables.append(_finish(pa.concat_tables(batches), names, relations, path.name))
    return result


def _strings(items: Any) -> list[str]:
    if type(items) is not list:
        return []
    return [x if type(x) is str else str(x) for x in items]


def _meta(obj: dict[str, Any], times: _Times) -> Meta:
    get = obj.get
    confidence = get("confidence")
    if confidence is not None and (type(confidence) is not int or not 0 <= confidence <= 100):
        raise ValueError(f"confidence must be an integer 0-100, got {confidence!r}")
    labels = get("labels")
    kinds = get("indicator_types")
    merged = (_strings(labels) + _strings(kinds)) if (labels or kinds) else None
    description = get("description") or get("name")
    valid_from = get("valid_from")
    valid_until = get("valid_until")
    return (
        confidence,
        None if valid_from is None else times(valid_from),
        None if valid_until is None else times(valid_until),
        description if description is None or type(description) is str else str(description),
        merged or None,
    )


def _add(
    rows: list[Row],
    kind: IndicatorType,
    value: str,
    obj: dict[str, Any],
    meta: Meta,
    extra: dict[str, Any] | None = None,
) -> None:
    created_by = obj.get("created_by_ref")
    rows.append(
        (
            kind,  # a str enum: Arrow takes it as the string
            value,
            meta[0],
            meta[1],
            meta[2],
            meta[3],
            meta[4],
            str(obj.get("id") or ""),
            created_by if isinstance(created_by, str) else None,
            extra,
        )
    )


def _indicator(
    obj: dict[str, Any], rows: list[Row], result: ReadResult, item: str, index: int, times: _Times
) -> None:
    pattern = obj.get("pattern")
    pattern_type = obj.get("pattern_type", "stix")
    if pattern_type != "stix":
        result.skip(f"stix indicators with pattern_type {pattern_type}")
        return
    if not isinstance(pattern, str):
        raise ValueError("indicator without a pattern string")
    meta = _meta(obj, times)
    match = _SIMPLE.match(pattern)
    if match is None:
        return _compound(obj, pattern, rows, result, item, index, meta)
    qalg, alg, object_type, fname, raw = match.groups()
    if "\\" in raw:
        raw = _unescape(raw)
    alg = qalg or alg
    if alg is not None:
        hash_type = HASH_ALGORITHMS.get(alg.lower())
        if hash_type is None:
            return _compound(obj, pattern, rows, result, item, index, meta)
        kind, value = normalize_hash(raw, hash_type)
    elif fname:
        kind, value = normalize(IndicatorType.FILENAME, raw)
    else:
        kind, value = _value_atom(object_type, raw)
        if object_type == "domain-name" and kind is not IndicatorType.DOMAIN:
            _retyped(result, item, index, obj, kind, value)
    _add(rows, kind, value, obj, meta)
    return None


def _value_atom(object_type: str, raw: str) -> tuple[IndicatorType, str]:
    kind = _VALUE_TYPES[object_type]
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        return normalize_ip(raw)
    if kind is IndicatorType.DOMAIN:
        # An IP address in a domain-name object happens in published bundles: it is kept as
        # the IP it is (the caller warns), not dropped.
        return normalize_with_hint(kind, raw)
    return normalize(kind, raw)


def _retyped(
    result: ReadResult, item: str, index: int, obj: dict[str, Any], kind: IndicatorType, value: str
) -> None:
    result.warn(
        item,
        f"{obj.get('id', '')}: domain-name value {value} is an IP address; kept as {kind}",
        index,
    )


def _atom_type(object_type: str, path: list[Any]) -> IndicatorType | None:
    """Our indicator type for one comparison's object path, if we keep such atoms."""
    if object_type == "file" and len(path) == 2 and path[0] == "hashes":
        return HASH_ALGORITHMS.get(str(path[1]).lower())
    if object_type == "file" and path == ["name"]:
        return IndicatorType.FILENAME
    if object_type in _VALUE_TYPES and path == ["value"]:
        return _VALUE_TYPES[object_type]
    if object_type == "x509-certificate":
        if path == ["serial_number"]:
            return IndicatorType.CERT_SERIAL
        if path == ["subject"]:
            return IndicatorType.SIGNER
        if len(path) == 2 and path[0] == "hashes":
            return IndicatorType.CERT_THUMBPRINT
    return None


def _compound(
    obj: dict[str, Any],
    pattern: str,
    rows: list[Row],
    result: ReadResult,
    item: str,
    index: int,
    meta: Meta,
) -> None:
    # imported here: the pattern grammar (antlr4) is a few hundredths of a second of start-up
    # for every command that only sniffs STIX
    from stix2patterns.v21.pattern import Pattern

    try:
        inspected = Pattern(pattern).inspect()
    except Exception as exc:  # the ANTLR parser raises many kinds; each is one Problem
        result.problems.append(
            Problem(item, f"indicator {obj.get('id', '')}: invalid STIX pattern: {exc}", index)
        )
        return
    atoms: list[tuple[IndicatorType, str]] = []
    total = 0
    for object_type, comparisons in inspected.comparisons.items():
        for path, op, literal in comparisons:
            total += 1
            kind = _atom_type(object_type, list(path))
            if kind is None or op not in ("=", "ISSUBSET"):
                continue
            if not (isinstance(literal, str) and literal.startswith("'") and literal.endswith("'")):
                continue
            raw = _unescape(literal[1:-1])
            try:
                if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
                    atoms.append(normalize_ip(raw))
                elif kind is IndicatorType.DOMAIN:
                    atoms.append(normalize_with_hint(kind, raw))
                    if atoms[-1][0] is not IndicatorType.DOMAIN:
                        _retyped(result, item, index, obj, atoms[-1][0], atoms[-1][1])
                else:
                    atoms.append(normalize(kind, raw))
            except ValueError as exc:
                result.problems.append(
                    Problem(item, f"indicator {obj.get('id', '')}: {exc}", index)
                )
    simple = total == 1 and not inspected.observation_ops and not inspected.qualifiers
    if simple and len(atoms) == 1:
        _add(rows, atoms[0][0], atoms[0][1], obj, meta)
        return
    whole = " ".join(pattern.split())
    _add(rows, IndicatorType.PATTERN, whole, obj, meta)
    for kind, value in atoms:
        _add(rows, kind, value, obj, meta, {"pattern": whole, "compound": True})


def _observable(
    obj: dict[str, Any], rows: list[Row], result: ReadResult, item: str, index: int
) -> None:
    kind = str(obj["type"])
    meta: Meta = (None, None, None, None, None)
    extra = {"observable": True}
    if kind == "file":
        hashes = obj.get("hashes") or {}
        if not isinstance(hashes, dict):
            raise ValueError("file 'hashes' is not an object")
        for algorithm, raw in hashes.items():
            hash_type = HASH_ALGORITHMS.get(str(algorithm).lower())
            if hash_type is None:
                continue
            try:
                got_type, value = normalize_hash(str(raw), hash_type)
            except ValueError as exc:
                result.problems.append(Problem(item, f"{obj.get('id', '')}: {exc}", index))
                continue
            _add(rows, got_type, value, obj, meta, extra)
        name = obj.get("name")
        if isinstance(name, str) and name.strip():
            _add(rows, IndicatorType.FILENAME, name.strip(), obj, meta, extra)
        return
    raw = obj.get("value")
    if not isinstance(raw, str):
        raise ValueError(f"{kind} without a string 'value'")
    got_type, value = _value_atom(kind, raw)
    if kind == "domain-name" and got_type is not IndicatorType.DOMAIN:
        _retyped(result, item, index, obj, got_type, value)
    _add(rows, got_type, value, obj, meta, extra)


_SAFE_ID = r"^[a-z0-9-]+--[0-9a-fA-F-]+$"


#: Rows are turned into Arrow columns every this many rows while reading.
BATCH_ROWS = 100_000


def _batch(rows: list[Row]) -> pa.Table:
    """Columns from row tuples (vectorised where it matters): everything except the sources
    and the relationship-derived campaigns, which need the whole bundle (see :func:`_finish`)."""
    (
        types,
        values,
        confidence,
        valid_from,
        valid_until,
        description,
        labels,
        ids,
        created_by,
        extras,
    ) = zip(*rows, strict=True)
    stix_ids = pa.array(ids, pa.string())
    safe = pc.fill_null(pc.match_substring_regex(stix_ids, _SAFE_ID), False)
    plain = pc.binary_join_element_wise('{"stix_id":"', stix_ids, '"}', "")
    contexts = [
        None if extra is None else orjson.dumps({"stix_id": sid, **extra}).decode()
        for sid, extra in zip(ids, extras, strict=True)
    ]
    unsafe = pc.invert(safe)
    if pc.any(unsafe).as_py():
        fixed = [
            orjson.dumps({"stix_id": sid}).decode() if bad else None
            for sid, bad in zip(ids, unsafe.to_pylist(), strict=True)
        ]
        plain = pc.coalesce(pa.array(fixed, pa.string()), plain)
    return pa.table(
        {
            "type": pa.array(types, pa.string()),
            "value": pa.array(values, pa.string()),
            "created_by": pa.array(created_by, pa.string()),
            "campaign": pa.nulls(len(rows), pa.string()),
            "confidence": pa.array(confidence, pa.int32()),
            "valid_from": pa.array(valid_from, pa.timestamp("us")),
            "valid_until": pa.array(valid_until, pa.timestamp("us")),
            "description": pa.array(description, pa.string()),
            "labels": pa.array(labels, pa.list_(pa.string())),
            "context": pc.coalesce(pa.array(contexts, pa.string()), plain),
            "stix_id": stix_ids,
        }
    )


def _finish(
    table: pa.Table,
    names: dict[str, tuple[str, str]],
    relations: list[tuple[str, str]],
    default_source: str,
) -> pa.Table:
    """Sources (the identity named by created_by_ref, else the file name) and the campaign /
    intrusion set / malware names reached through relationships (either direction)."""
    identities = {k: v[1] for k, v in names.items() if v[0] == "identity"}
    source_col: pa.ChunkedArray | pa.Array = pa.nulls(table.num_rows, pa.string())
    if identities:
        keys = pa.array(list(identities), pa.string())
        index = pc.index_in(table.column("created_by"), value_set=keys)
        source_col = pc.take(pa.array(list(identities.values()), pa.string()), index)
    source_col = pc.fill_null(source_col, default_source)
    related: dict[str, dict[str, list[str]]] = {}
    for src, dst in relations:
        for a, b in ((src, dst), (dst, src)):
            target = names.get(b)
            if target is not None and target[0] in _GROUP_TYPES:
                related.setdefault(a, {}).setdefault(target[0], []).append(target[1])
    campaign_col = table.column("campaign")
    context_col = table.column("context")
    if related:
        ids = table.column("stix_id")
        hit = pc.fill_null(pc.is_in(ids, value_set=pa.array(list(related), pa.string())), False)
        positions = pc.indices_nonzero(hit).to_pylist()
        if positions:
            campaigns: list[str | None] = [None] * table.num_rows
            contexts: list[str | None] = [None] * table.num_rows
            hit_ids = pc.take(ids, positions).to_pylist()
            hit_ctx = pc.take(context_col, positions).to_pylist()
            for pos, stix_id, old in zip(positions, hit_ids, hit_ctx, strict=True):
                groups = related[stix_id]
                context: dict[str, Any] = orjson.loads(old) if old else {"stix_id": stix_id}
                named = groups.get("campaign") or groups.get("intrusion-set")
                campaigns[pos] = named[0] if named else None
                context.update({k.replace("-", "_"): sorted(set(v)) for k, v in groups.items()})
                contexts[pos] = orjson.dumps(context).decode()
            campaign_col = pa.array(campaigns, pa.string())
            context_col = pc.coalesce(pa.array(contexts, pa.string()), context_col)
    return pa.table(
        {
            "type": table.column("type"),
            "value": table.column("value"),
            "source": source_col,
            "campaign": campaign_col,
            "confidence": table.column("confidence"),
            "valid_from": table.column("valid_from"),
            "valid_until": table.column("valid_until"),
            "description": table.column("description"),
            "labels": table.column("labels"),
            "context": context_col,
        }
    )
