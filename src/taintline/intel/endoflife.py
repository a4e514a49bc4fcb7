"""endoflife.date product data as JSON: release cycles and their end-of-life dates.

Accepted shapes:

* the classic API (``/api/<product>.json``): a list of cycles
  ``[{"cycle": "7", "releaseDate": "2015-01-01", "eol": "2020-03-31" | true | false,
  "support": ..., "lts": ..., "latest": "7.17", "latestReleaseDate": ...}, ...]``; the
  product name comes from the file name (``x_trader.json``);
* the same list inside a wrapper ``{"product": "...", "cycles": [...], "source": "...",
  "description": "...", "title": "...", "aliases": [...], "identifiers": [...]}`` (how
  taintline's packs ship EOL facts);
* the v1 API (``/api/v1/products/<product>``): ``{"result": {"name": "...", "label": "...",
  "aliases": [...], "identifiers": [{"type": "purl", "id": "pkg:..."}], "releases": [{"name":
  "7", "releaseDate": ..., "isEol": true, "eolFrom": "2020-03-31", "isEoas": ..., "eoasFrom":
  ..., "isLts": ..., "latest": {"name": "7.17", "date": ...}}]}}``.

The product Markdown files of the endoflife.date repository are read by
:mod:`taintline.intel.endoflife_md`; both build their records with :func:`cycle_record` and
:func:`product_record`, so every shape means the same thing. Each cycle is stored in
``eol_cycles`` and as an ``eol`` indicator ``product:cycle``; each product's names and
identifiers in ``eol_products``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from taintline.errors import Problem
from taintline.intel.interface import EolProduct, EolRecord, ReadResult, load_json
from taintline.limits import IntelLimits
from taintline.model import Indicator, IndicatorType

NAME = "endoflife"

_SNIFF = re.compile(rb'"(?:cycle|eolFrom|isEol)"\s*:|"(?:releases|cycles)"\s*:\s*\[')


def sniff(head: bytes, path: Path) -> bool:
    stripped = head.lstrip()
    return stripped[:1] in (b"{", b"[") and _SNIFF.search(head) is not None


# -- shared by every shape -------------------------------------------------------------------


def _date(value: Any, field: str) -> date | None:
    """A date from ISO text or a YAML date; ``None`` for null and for booleans (flags)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a date, got {type(value).__name__} {str(value)[:40]!r}")
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{field} is not a YYYY-MM-DD date: {text[:40]!r}") from None


def _date_or_flag(value: Any, field: str, flag: Any = None) -> tuple[date | None, bool | None]:
    """endoflife.date's ``date | true | false`` fields (and v1's ``isX`` + ``xFrom`` pairs)."""
    if isinstance(value, bool):
        return None, value
    when = _date(value, field)
    if when is not None:
        return when, True
    return None, flag if isinstance(flag, bool) else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def cycle_record(
    fields: Mapping[str, Any],
    product: str,
    source: str,
    *,
    description: str | None = None,
    origin: str | None = None,
) -> EolRecord:
    """One cycle from the fields of any shape (classic ``cycle``, Markdown ``releaseCycle``,
    v1 ``name``). Raises ``ValueError`` with a one-line reason for a cycle that cannot be used:
    no name, a date that is not a date, or no dates and no flags at all."""
    name = fields.get("cycle", fields.get("releaseCycle", fields.get("name")))
    if isinstance(name, bool) or not isinstance(name, str | int | float) or not str(name).strip():
        raise ValueError(f"release cycle needs a name, got {str(name)[:40]!r}")
    cycle = str(name).strip().lower()
    eol_value = fields["eol"] if "eol" in fields else fields.get("eolFrom")
    eol_date, eol_flag = _date_or_flag(eol_value, "eol", fields.get("isEol"))
    eoas_value = fields.get("eoas", fields.get("support", fields.get("eoasFrom")))
    eoas_date, eoas_flag = _date_or_flag(eoas_value, "eoas", fields.get("isEoas"))
    release_date = _date(fields.get("releaseDate"), "releaseDate")
    latest = fields.get("latest")
    latest_date = _date(fields.get("latestReleaseDate"), "latestReleaseDate")
    if isinstance(latest, Mapping):
        latest_date = latest_date or _date(latest.get("date"), "latest.date")
        latest = latest.get("name")
    lts_value = fields.get("lts", fields.get("isLts"))
    lts = True if _date(lts_value, "lts") else lts_value if isinstance(lts_value, bool) else None
    if eol_date is None and eol_flag is None and release_date is None and eoas_date is None:
        raise ValueError(f"cycle {cycle!r} has no dates and no end-of-life flag")
    return EolRecord(
        product=product,
        cycle=cycle,
        source=source,
        release_date=release_date,
        eol_date=eol_date,
        eol_flag=eol_flag,
        latest=_text(latest),
        description=description,
        eoas_date=eoas_date,
        eoas_flag=eoas_flag,
        latest_date=latest_date,
        lts=lts,
        origin=origin,
    )


def _identifiers(value: Any) -> tuple[list[str], list[str]]:
    """purls and cpes from ``[{"purl": ...}, {"cpe": ...}]`` (Markdown) or ``[{"type": "purl",
    "id": ...}]`` (v1). Other identifier types (repology) are not used for matching."""
    purls: list[str] = []
    cpes: list[str] = []
    if not isinstance(value, list):
        return purls, cpes
    for entry in value:
        if not isinstance(entry, Mapping):
            continue
        if "type" in entry and "id" in entry:
            pairs: Iterable[tuple[Any, Any]] = [(entry["type"], entry["id"])]
        else:
            pairs = entry.items()
        for kind, ident in pairs:
            text = _text(ident)
            if text is None:
                continue
            if str(kind).lower() == "purl" and text.lower().startswith("pkg:"):
                purls.append(text)
            elif str(kind).lower() == "cpe" and text.lower().startswith("cpe:"):
                cpes.append(text)
    return purls, cpes


def _names(values: Sequence[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        for item in items:
            text = _text(item)
            if text:
                text = text.strip("/")  # permalinks and alternate URLs: "/node"
                if text and text not in out:
                    out.append(text)
    return tuple(out)


def product_record(
    product: str, source: str, doc: Mapping[str, Any], origin: str | None = None
) -> EolProduct:
    """A product's names and identifiers from a wrapper, v1 ``result`` or front matter."""
    title = _text(doc.get("title", doc.get("label")))
    purls, cpes = _identifiers(doc.get("identifiers"))
    names = _names(
        [
            product,
            title,
            doc.get("permalink"),
            doc.get("aliases"),
            doc.get("names"),
            doc.get("alternate_urls"),
        ]
    )
    return EolProduct(
        product=product,
        source=source,
        title=title,
        names=names,
        purls=tuple(dict.fromkeys(purls)),
        cpes=tuple(dict.fromkeys(cpes)),
        origin=origin,
    )


def add_cycles(
    result: ReadResult,
    cycles: Sequence[Any],
    product: str,
    source: str,
    item: str,
    *,
    description: str | None = None,
    line_of: Sequence[int | None] | None = None,
) -> None:
    """Read every cycle into ``result``: a bad cycle is a problem, the others are kept."""
    for number, fields in enumerate(cycles, start=1):
        line = line_of[number - 1] if line_of is not None else number
        if not isinstance(fields, Mapping):
            where = f"release #{number} " if line is None else ""
            result.problems.append(Problem(item, f"{where}release cycle is not a mapping", line))
            continue
        try:
            record = cycle_record(
                fields, product, source, description=description, origin=f"{item}#{number}"
            )
        except ValueError as exc:
            where = f"release #{number}: " if line is None else ""
            result.problems.append(Problem(item, f"{where}{exc}", line))
            continue
        result.eol.append(record)
        result.indicators.append(_indicator(record))


def _indicator(record: EolRecord) -> Indicator:
    context: dict[str, Any] = {
        "product": record.product,
        "cycle": record.cycle,
        "eol": record.eol_date.isoformat() if record.eol_date else record.eol_flag,
    }
    if record.release_date:
        context["release_date"] = record.release_date.isoformat()
    if record.latest:
        context["latest"] = record.latest
    if record.eoas_date:
        context["eoas"] = record.eoas_date.isoformat()
    when = (
        record.eol_date.isoformat()
        if record.eol_date
        else ("yes" if record.eol_flag else "no" if record.eol_flag is False else "unknown")
    )
    return Indicator(
        type=IndicatorType.EOL,
        value=record.key,
        source=record.source,
        description=record.description or f"{record.product} {record.cycle}: end of life {when}",
        context=context,
    )


# -- the JSON shapes ----------------------------------------------------------------------------


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    doc = load_json(path, NAME, limits)
    if isinstance(doc, ReadResult):
        return doc
    product = path.stem
    source = "endoflife.date"
    description: str | None = None
    cycles: Any = doc
    meta: Mapping[str, Any] = {}
    if isinstance(doc, dict):
        if isinstance(doc.get("result"), dict):
            doc = doc["result"]
        meta = doc
        product = str(doc.get("product") or doc.get("name") or product)
        source = str(doc.get("source") or source)
        description = doc.get("description") if isinstance(doc.get("description"), str) else None
        cycles = doc.get("cycles", doc.get("releases"))
    if not isinstance(cycles, list):
        return ReadResult.failure(NAME, item, "no list of release cycles found")
    product = product.strip().lower()
    result = ReadResult(format=NAME)
    add_cycles(result, cycles, product, source, item, description=description)
    result.eol_products.append(product_record(product, source, meta, origin=item))
    if not result.eol:
        result.failed = True
        result.problems.append(Problem(item, "no usable release cycle"))
    return result
