"""endoflife.date product data: release cycles and their end-of-life dates.

Accepted shapes:

* the classic API (``/api/<product>.json``): a list of cycles
  ``[{"cycle": "7", "releaseDate": "2015-01-01", "eol": "2020-03-31" | true | false,
  "latest": "7.17"}, ...]``; the product name comes from the file name (``x_trader.json``);
* the same list inside a wrapper ``{"product": "...", "cycles": [...], "source": "...",
  "description": "..."}`` (how taintline's packs ship EOL facts);
* the v1 API: ``{"result": {"name": "...", "releases": [{"name": "7", "releaseDate": ...,
  "eolFrom": "2020-03-31", "isEol": true, "latest": {"name": "7.17"}}]}}``.

Each cycle is stored in ``eol_cycles`` and as an ``eol`` indicator ``product:cycle``.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from taintline.errors import Problem
from taintline.intel.interface import EolRecord, ReadResult, load_json
from taintline.limits import IntelLimits
from taintline.model import Indicator, IndicatorType

NAME = "endoflife"

_SNIFF = re.compile(rb'"(?:cycle|eolFrom|isEol)"\s*:')


def sniff(head: bytes, path: Path) -> bool:
    stripped = head.lstrip()
    return stripped[:1] in (b"{", b"[") and _SNIFF.search(head) is not None


def _date(value: Any, field: str) -> date | None:
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a date string, got {value!r}")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ValueError(f"{field} is not a YYYY-MM-DD date: {value!r}") from None


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    doc = load_json(path, NAME, limits)
    if isinstance(doc, ReadResult):
        return doc
    product = path.stem
    source = "endoflife.date"
    description: str | None = None
    cycles: Any = doc
    if isinstance(doc, dict):
        if isinstance(doc.get("result"), dict):
            doc = doc["result"]
        product = str(doc.get("product") or doc.get("name") or product)
        source = str(doc.get("source") or source)
        description = doc.get("description") if isinstance(doc.get("description"), str) else None
        cycles = doc.get("cycles", doc.get("releases"))
    if not isinstance(cycles, list):
        return ReadResult.failure(NAME, item, "no list of release cycles found")
    product = product.strip().lower()
    result = ReadResult(format=NAME)
    for number, cycle in enumerate(cycles, start=1):
        if not isinstance(cycle, dict):
            result.problems.append(Problem(item, "cycle is not an object", number))
            continue
        try:
            record = _cycle(cycle, product, source, description)
        except ValueError as exc:
            result.problems.append(Problem(item, str(exc), number))
            continue
        result.eol.append(record)
        context: dict[str, Any] = {
            "product": record.product,
            "cycle": record.cycle,
            "eol": record.eol_date.isoformat() if record.eol_date else record.eol_flag,
        }
        if record.release_date:
            context["release_date"] = record.release_date.isoformat()
        if record.latest:
            context["latest"] = record.latest
        when = (
            record.eol_date.isoformat() if record.eol_date else ("yes" if record.eol_flag else "no")
        )
        result.indicators.append(
            Indicator(
                type=IndicatorType.EOL,
                value=record.key,
                source=source,
                description=description or f"{record.product} {record.cycle}: end of life {when}",
                context=context,
            )
        )
    return result


def _cycle(cycle: dict[str, Any], product: str, source: str, description: str | None) -> EolRecord:
    name = cycle.get("cycle", cycle.get("name"))
    if not isinstance(name, (str, int, float)) or isinstance(name, bool) or str(name).strip() == "":
        raise ValueError(f"cycle needs a name, got {name!r}")
    eol = cycle.get("eol", cycle.get("eolFrom"))
    flag: bool | None
    if isinstance(eol, bool):
        flag, eol_date = eol, None
    else:
        eol_date = _date(eol, "eol")
        flag = (
            True
            if eol_date
            else cycle.get("isEol")
            if isinstance(cycle.get("isEol"), bool)
            else None
        )
    latest = cycle.get("latest")
    if isinstance(latest, dict):
        latest = latest.get("name")
    return EolRecord(
        product=product,
        cycle=str(name).strip().lower(),
        source=source,
        release_date=_date(cycle.get("releaseDate"), "releaseDate"),
        eol_date=eol_date,
        eol_flag=flag,
        latest=str(latest) if latest is not None else None,
        description=description,
    )
