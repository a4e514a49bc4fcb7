"""Writing the case's intel out: JSON Lines (one statement per line), CSV (one indicator per
row, sources joined) and STIX 2.1 (a bundle built and validated by the ``stix2`` library).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import stix2

from taintline.case import INDICATOR_COLUMNS, Case, indicator_from_row
from taintline.csvsafe import SafeWriter
from taintline.errors import UsageError
from taintline.model import Indicator, IndicatorType, iso

EXPORT_FORMATS = ("jsonl", "csv", "stix")

#: Namespace for deterministic STIX ids: the same indicator always gets the same id.
_NAMESPACE = uuid.UUID("6f1c1a52-8f43-4d8c-9a57-4e0a6c0f7d21")

_STIX_PATHS: dict[IndicatorType, str] = {
    IndicatorType.SHA256: "file:hashes.'SHA-256'",
    IndicatorType.SHA1: "file:hashes.'SHA-1'",
    IndicatorType.MD5: "file:hashes.MD5",
    IndicatorType.DOMAIN: "domain-name:value",
    IndicatorType.URL: "url:value",
    IndicatorType.IPV4: "ipv4-addr:value",
    IndicatorType.IPV6: "ipv6-addr:value",
    IndicatorType.EMAIL: "email-addr:value",
    IndicatorType.FILENAME: "file:name",
    IndicatorType.CERT_SERIAL: "x509-certificate:serial_number",
    IndicatorType.SIGNER: "x509-certificate:subject",
}


def iter_statements(case: Case) -> Iterator[Indicator]:
    """Every (indicator, source) statement in the case, ordered by type, value and source."""
    cursor = case.con.execute(
        f"SELECT {INDICATOR_COLUMNS} FROM indicator_sources"  # noqa: S608  (a constant)
        " ORDER BY type, value, source"
    )
    while rows := cursor.fetchmany(10_000):
        for r in rows:
            yield indicator_from_row(r)


def stix_pattern(kind: IndicatorType, value: str) -> str | None:
    """The STIX pattern for one indicator (``None`` for types STIX patterns do not cover)."""
    if kind is IndicatorType.PATTERN:
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    if kind is IndicatorType.CIDR:
        path = "ipv6-addr:value" if ":" in value else "ipv4-addr:value"
        return f"[{path} = '{escaped}']"
    if kind is IndicatorType.CERT_THUMBPRINT:
        algorithm = "SHA-256" if len(value) == 64 else "SHA-1"
        return f"[x509-certificate:hashes.'{algorithm}' = '{escaped}']"
    object_path = _STIX_PATHS.get(kind)
    return f"[{object_path} = '{escaped}']" if object_path else None


def _reference(statement: Indicator) -> dict[str, str]:
    reference = {
        "source_name": statement.source,
        "description": statement.description or f"stated by {statement.source}",
    }
    url = statement.context.get("reference") if statement.context else None
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        reference["url"] = url
    return reference


def _stable_id(kind: str, key: str) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, key)}"


def build_stix_bundle(case: Case, *, now: datetime | None = None) -> stix2.Bundle:
    """A STIX 2.1 bundle: one indicator per (type, value) with its sources as external
    references, one campaign per campaign name and ``indicates`` relationships. The ``stix2``
    library validates every object (patterns included) as it is built."""
    now = now or datetime.now(UTC)
    objects: list[Any] = []
    identity = stix2.Identity(
        id=_stable_id("identity", "taintline"),
        name="taintline export",
        identity_class="system",
        created=now,
        modified=now,
    )
    objects.append(identity)
    campaigns: dict[str, stix2.Campaign] = {}
    by_key: dict[tuple[str, str], list[Indicator]] = {}
    for statement in iter_statements(case):
        by_key.setdefault((str(statement.type), statement.value), []).append(statement)
    for summary in case.indicators():
        pattern = stix_pattern(summary.type, summary.value)
        if pattern is None:
            continue
        statements = by_key.get((str(summary.type), summary.value), [])
        labels = sorted({label for s in statements for label in s.labels})
        valid_from = summary.valid_from or now
        kwargs: dict[str, Any] = {}
        if summary.valid_until and summary.valid_until > valid_from:
            kwargs["valid_until"] = summary.valid_until
        if summary.confidence is not None:
            kwargs["confidence"] = summary.confidence
        if summary.description:
            kwargs["description"] = summary.description
        if labels:
            kwargs["labels"] = labels
        indicator = stix2.Indicator(
            id=_stable_id("indicator", f"{summary.type}:{summary.value}"),
            created_by_ref=identity.id,
            created=now,
            modified=now,
            name=f"{summary.type} {summary.value}"[:250],
            pattern=pattern,
            pattern_type="stix",
            valid_from=valid_from,
            external_references=[_reference(s) for s in statements],
            **kwargs,
        )
        objects.append(indicator)
        if summary.campaign:
            campaign = campaigns.get(summary.campaign)
            if campaign is None:
                campaign = stix2.Campaign(
                    id=_stable_id("campaign", summary.campaign),
                    name=summary.campaign,
                    created=now,
                    modified=now,
                    created_by_ref=identity.id,
                )
                campaigns[summary.campaign] = campaign
                objects.append(campaign)
            objects.append(
                stix2.Relationship(
                    id=_stable_id("relationship", f"{indicator.id}>{campaign.id}"),
                    relationship_type="indicates",
                    source_ref=indicator.id,
                    target_ref=campaign.id,
                    created=now,
                    modified=now,
                )
            )
    return stix2.Bundle(objects=objects, id=_stable_id("bundle", iso(now) or ""))


def export_intel(case: Case, fmt: str, out: TextIO) -> int:
    """Write the case's intel to ``out``; returns how many records were written."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown intel export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    count = 0
    if fmt == "jsonl":
        from taintline.interchange import indicator_to_dict

        for statement in iter_statements(case):
            out.write(
                orjson.dumps(indicator_to_dict(statement), option=orjson.OPT_SORT_KEYS).decode()
            )
            out.write("\n")
            count += 1
    elif fmt == "csv":
        writer = SafeWriter(out)  # names and notes from feeds: no spreadsheet formulas
        writer.writerow(
            [
                "type",
                "value",
                "sources",
                "campaign",
                "confidence",
                "valid_from",
                "valid_until",
                "description",
            ]
        )
        for s in case.indicators():
            writer.writerow(
                [
                    s.type,
                    s.value,
                    "; ".join(s.sources),
                    s.campaign or "",
                    "" if s.confidence is None else s.confidence,
                    iso(s.valid_from) or "",
                    iso(s.valid_until) or "",
                    s.description or "",
                ]
            )
            count += 1
    else:
        bundle = build_stix_bundle(case)
        # stix2's own pretty printer is quadratic in the bundle size (key ordering); serialise
        # compactly with stix2 and indent with orjson.
        text = bundle.serialize()
        out.write(orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode())
        out.write("\n")
        count = len(bundle.objects)
    return count
