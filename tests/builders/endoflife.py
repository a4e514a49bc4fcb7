"""Builders for end-of-life data in endoflife.date's published shapes, and for inventories and
SBOMs to match against them. Everything is generated here from a small description (no file of
the project is copied): the classic API list, the v1 API document and a product Markdown file
with YAML front matter written the way the project writes them (quoted cycles, bare dates,
``# comments``, one ``- key: value`` mapping per identifier).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import orjson

DateOrFlag = date | bool | None


@dataclass(frozen=True, slots=True)
class Cycle:
    name: str
    release: date | None = None
    eol: DateOrFlag = None
    eoas: DateOrFlag = None
    latest: str | None = None
    latest_date: date | None = None
    lts: bool | None = None


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    title: str
    cycles: tuple[Cycle, ...]
    purls: tuple[str, ...] = ()
    cpes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    extra_front_matter: dict[str, str] = field(default_factory=dict)


def _json_value(value: DateOrFlag) -> object:
    return value.isoformat() if isinstance(value, date) else value


def classic_json(product: Product) -> bytes:
    """``/api/<product>.json``: a list of cycles (``support`` is the end of active support)."""
    rows = []
    for c in product.cycles:
        row: dict[str, object] = {"cycle": c.name}
        if c.release:
            row["releaseDate"] = c.release.isoformat()
        row["eol"] = _json_value(c.eol)
        if c.eoas is not None:
            row["support"] = _json_value(c.eoas)
        if c.latest:
            row["latest"] = c.latest
        if c.latest_date:
            row["latestReleaseDate"] = c.latest_date.isoformat()
        if c.lts is not None:
            row["lts"] = c.lts
        rows.append(row)
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2)


def v1_json(product: Product) -> bytes:
    """``/api/v1/products/<product>``: ``result`` with identifiers and ``releases``."""
    releases = []
    for c in product.cycles:
        releases.append(
            {
                "name": c.name,
                "codename": None,
                "label": c.name,
                "releaseDate": c.release.isoformat() if c.release else None,
                "isLts": bool(c.lts),
                "ltsFrom": None,
                "isEoas": c.eoas is True or isinstance(c.eoas, date),
                "eoasFrom": c.eoas.isoformat() if isinstance(c.eoas, date) else None,
                "isEol": c.eol is True or isinstance(c.eol, date),
                "eolFrom": c.eol.isoformat() if isinstance(c.eol, date) else None,
                "isMaintained": not (c.eol is True or isinstance(c.eol, date)),
                "latest": {
                    "name": c.latest,
                    "date": c.latest_date.isoformat() if c.latest_date else None,
                    "link": None,
                }
                if c.latest
                else None,
            }
        )
    identifiers = [{"id": p, "type": "purl"} for p in product.purls] + [
        {"id": c, "type": "cpe"} for c in product.cpes
    ]
    doc = {
        "schema_version": "1.2.0",
        "generated_at": "2026-11-01T00:00:00+00:00",
        "result": {
            "name": product.name,
            "label": product.title,
            "aliases": list(product.aliases),
            "category": "app",
            "tags": ["app"],
            "identifiers": identifiers,
            "releases": releases,
        },
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def _yaml_value(value: DateOrFlag) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return "null"


def product_markdown(product: Product, *, quote_cycles: bool = True) -> str:
    """A ``products/<name>.md`` file: YAML front matter, then Markdown prose."""
    lines = [
        "---",
        f"title: {product.title}",
        "category: app",
        f"permalink: /{product.name}",
    ]
    if product.aliases:
        lines.append("alternate_urls:")
        lines += [f"  - /{a}" for a in product.aliases]
    lines += [f"{k}: {v}" for k, v in product.extra_front_matter.items()]
    if product.purls or product.cpes:
        lines += ["", "identifiers:"]
        lines += [f"  - purl: {p}" for p in product.purls]
        lines += [f"  - cpe: {c}" for c in product.cpes]
    lines += ["", "# dates from the vendor's announcements", "releases:"]
    for c in product.cycles:
        name = f'"{c.name}"' if quote_cycles else c.name
        lines.append(f"  - releaseCycle: {name}")
        if c.release:
            lines.append(f"    releaseDate: {c.release.isoformat()}")
        if c.eoas is not None:
            lines.append(f"    eoas: {_yaml_value(c.eoas)}")
        lines.append(f"    eol: {_yaml_value(c.eol)} # as announced")
        if c.lts is not None:
            lines.append(f"    lts: {_yaml_value(c.lts)}")
        if c.latest:
            lines.append(f'    latest: "{c.latest}"')
        if c.latest_date:
            lines.append(f"    latestReleaseDate: {c.latest_date.isoformat()}")
        lines.append("")
    lines += [
        "---",
        "",
        f"> [{product.title}](https://example.invalid/) is a product used in tests.",
        "",
        "| Release | Released | End of life |",
        "|---------|----------|-------------|",
        "| 1.0 | 2020 | 2021 |",
        "",
    ]
    return "\n".join(lines)


# -- inventories and SBOMs ------------------------------------------------------------------


def inventory_csv(rows: Sequence[dict[str, str]]) -> str:
    """An analyst's inventory CSV (``host, software, version, installed_at, ...``)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def osquery_results(host: str, query: str, rows: Sequence[dict[str, str]], unix_time: int) -> bytes:
    """osqueryd's results log: one snapshot record per query."""
    record = {
        "name": query,
        "hostIdentifier": host,
        "calendarTime": "Sat Nov  1 00:00:00 2026 UTC",
        "unixTime": unix_time,
        "epoch": 0,
        "counter": 0,
        "numerics": False,
        "snapshot": list(rows),
        "action": "snapshot",
    }
    return orjson.dumps(record) + b"\n"


def cyclonedx_sbom(release: str, version: str, components: Sequence[dict[str, str]]) -> str:
    """A CycloneDX 1.6 JSON SBOM made with cyclonedx-python-lib; each component may carry
    ``purl`` and ``cpe``."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    app = Component(name=release, version=version, type=ComponentType.APPLICATION, bom_ref="app")
    parts = [
        Component(
            name=c["name"],
            version=c.get("version"),
            bom_ref=f"c{number}",
            purl=PackageURL.from_string(c["purl"]) if c.get("purl") else None,
            cpe=c.get("cpe"),
        )
        for number, c in enumerate(components)
    ]
    bom = Bom(components=parts)
    bom.metadata.component = app
    bom.register_dependency(app, parts)
    return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)


def spdx_json(release: str, version: str, packages: Sequence[dict[str, str]]) -> bytes:
    """An SPDX 2.3 JSON document: the release package DESCRIBES-d, the others CONTAINS-ed,
    with ``purl`` and ``cpe23Type`` external references."""
    pkgs: list[dict[str, object]] = [
        {
            "SPDXID": "SPDXRef-release",
            "name": release,
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
        }
    ]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-release",
        }
    ]
    for number, p in enumerate(packages):
        refs = []
        if p.get("purl"):
            refs.append(
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": p["purl"],
                }
            )
        if p.get("cpe"):
            refs.append(
                {
                    "referenceCategory": "SECURITY",
                    "referenceType": "cpe23Type",
                    "referenceLocator": p["cpe"],
                }
            )
        spdx_id = f"SPDXRef-pkg{number}"
        entry: dict[str, object] = {
            "SPDXID": spdx_id,
            "name": p["name"],
            "downloadLocation": "NOASSERTION",
            "externalRefs": refs,
        }
        if p.get("version"):
            entry["versionInfo"] = p["version"]
        pkgs.append(entry)
        relationships.append(
            {
                "spdxElementId": "SPDXRef-release",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": spdx_id,
            }
        )
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{release}-{version}",
        "documentNamespace": f"https://example.invalid/spdx/{release}-{version}",
        "creationInfo": {"created": "2026-11-01T00:00:00Z", "creators": ["Tool: taintline-tests"]},
        "packages": pkgs,
        "relationships": relationships,
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
