"""Matching inventories and SBOMs to products and cycles; findings; the graph."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from tests.builders.endoflife import (
    Cycle,
    Product,
    cyclonedx_sbom,
    inventory_csv,
    osquery_results,
    product_markdown,
    spdx_json,
    v1_json,
)

from taintline.case import Case
from taintline.eol.findings import ago
from taintline.eol.match import OBSERVATION_SCHEMA, Catalogue, match
from taintline.eol.service import EolOptions, run_eol
from taintline.eol.versions import COARSE, NEWER, NO_CYCLE, NO_VERSION, CycleIndex
from taintline.graph.service import upstream
from taintline.graph.store import Seed
from taintline.model import NodeKind, NodeRef, Severity

AS_OF = date(2026, 11, 1)

STRUTS = Product(
    name="apache-struts",
    title="Apache Struts",
    purls=("pkg:maven/org.apache.struts/struts2-core",),
    cpes=("cpe:2.3:a:apache:struts",),
    cycles=(
        Cycle("6", date(2022, 6, 2), eol=False),
        Cycle("2.5", date(2016, 5, 5), eol=date(2024, 4, 30)),
        Cycle("2.3", date(2011, 12, 8), eol=date(2019, 5, 14)),
    ),
)
NODE = Product(
    name="nodejs",
    title="Node.js",
    aliases=("node",),
    cycles=(
        Cycle("22", date(2024, 4, 24), eoas=date(2025, 10, 21), eol=date(2027, 4, 30)),
        Cycle("18", date(2022, 4, 19), eoas=date(2023, 10, 18), eol=date(2025, 4, 30)),
        Cycle("16", date(2021, 4, 20), eol=date(2023, 9, 11)),
    ),
)
UBUNTU = Product(
    name="ubuntu",
    title="Ubuntu",
    cycles=(
        Cycle("22.04", date(2022, 4, 21), eol=date(2027, 4, 1)),
        Cycle("18.04", date(2018, 4, 26), eol=date(2023, 5, 31)),
    ),
)
NOEND = Product(
    name="forever-db", title="Forever DB", cycles=(Cycle("3", date(2020, 1, 1), eol=False),)
)
FLAGGED = Product(name="oldlib", title="OldLib", cycles=(Cycle("1", eol=True),))


def test_cycle_index_schemes() -> None:
    index = CycleIndex(["2.5", "2.3", "6", "2"])
    assert index.resolve("2.5.33").cycle == "2.5"  # patch level
    assert index.resolve("2.5").cycle == "2.5"  # no patch level
    assert index.resolve("2.50.1").cycle == "2"  # 2.50 is not 2.5
    assert index.resolve("v6.1.0").cycle == "6"
    assert index.resolve("1:2.3.37-1ubuntu1").cycle == "2.3"  # Debian epoch and revision
    assert index.resolve("7.0.0").reason == NEWER
    assert index.resolve(None).reason == NO_VERSION
    assert index.resolve("1.3").reason == NO_CYCLE
    assert CycleIndex(["3.11", "3.12"]).resolve("3").reason == COARSE
    assert CycleIndex(["22.04"]).resolve("22.4.3").cycle == "22.04"  # numbers as numbers
    assert CycleIndex(["7"]).resolve("7.17.90p608").cycle == "7"


def test_ago() -> None:
    assert ago(date(2020, 3, 31), date(2026, 11, 1)) == "6 years 7 months"
    assert ago(date(2026, 10, 20), date(2026, 11, 1)) == "12 days"
    assert ago(date(2026, 11, 1), date(2026, 11, 1)) == "today"


def _catalogue() -> Catalogue:
    from taintline.intel.endoflife import cycle_record, product_record

    products, records = [], []
    for p in (STRUTS, NODE, UBUNTU, NOEND, FLAGGED):
        doc = {"title": p.title, "aliases": list(p.aliases)}
        doc["identifiers"] = [{"purl": u} for u in p.purls] + [{"cpe": c} for c in p.cpes]
        products.append(product_record(p.name, "test", doc))
        for c in p.cycles:
            fields = {"cycle": c.name, "eol": c.eol, "releaseDate": c.release, "eoas": c.eoas}
            records.append(cycle_record(fields, p.name, "test"))
    return Catalogue.build(products, records)


def _match(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    table = pa.Table.from_pylist(rows, schema=OBSERVATION_SCHEMA)
    out = match(table, _catalogue(), AS_OF).to_arrow().to_pylist()
    return sorted(out, key=lambda r: (str(r["host"]), str(r["name"])))


def test_exact_product_cycle_and_end_date_by_purl_cpe_and_name() -> None:
    got = _match(
        [
            {
                "host": "a",
                "name": "struts2-core",
                "purl": "pkg:maven/org.apache.struts/struts2-core@2.5.30?type=jar",
            },
            {
                "host": "b",
                "name": "something",
                "cpe": "cpe:2.3:a:apache:struts:2.3.37:*:*:*:*:*:*:*",
            },
            {"host": "c", "name": "Node.js", "version": "18.19.0"},
            {"host": "d", "name": "node", "version": "22.1.0"},
            {"host": "e", "name": "Ubuntu 18.04.6 LTS (x86_64)", "version": "18.04.6"},
            {"host": "f", "name": "unrelated", "version": "1.0"},
        ]
    )
    facts = [
        (r["host"], r["product"], r["how"], r["cycle"], r["eol_date"], r["status"]) for r in got
    ]
    assert facts == [
        ("a", "apache-struts", "purl", "2.5", date(2024, 4, 30), "end-of-life"),
        ("b", "apache-struts", "cpe", "2.3", date(2019, 5, 14), "end-of-life"),
        ("c", "nodejs", "name", "18", date(2025, 4, 30), "end-of-life"),
        ("d", "nodejs", "name", "22", date(2027, 4, 30), "end-of-support"),
        ("e", "ubuntu", "cleaned-name", "18.04", date(2023, 5, 31), "end-of-life"),
    ]
    assert [r["confidence"] for r in got] == [0.95, 0.90, 0.80, 0.80, 0.60]
    assert got[0]["version"] == "2.5.30" and got[1]["version"] == "2.3.37"  # from purl / cpe


def test_newer_unknown_no_end_date_and_flag_only() -> None:
    got = _match(
        [
            {"host": "a", "name": "Apache Struts", "version": "7.0.3"},
            {"host": "b", "name": "Forever DB", "version": "3.2"},
            {"host": "c", "name": "OldLib", "version": "1.4"},
            {"host": "d", "name": "Apache Struts", "version": ""},
        ]
    )
    by_host = {r["host"]: r for r in got}
    assert (by_host["a"]["status"], by_host["a"]["reason"]) == ("unknown", NEWER)
    assert (by_host["b"]["status"], by_host["b"]["eol_date"]) == ("supported", None)
    assert (by_host["c"]["status"], by_host["c"]["eol_date"], by_host["c"]["eol_flag"]) == (
        "end-of-life",
        None,
        True,
    )
    assert (by_host["d"]["status"], by_host["d"]["reason"]) == ("unknown", NO_VERSION)


def test_installed_after_end_of_life_flag() -> None:
    got = _match(
        [
            {
                "host": "late",
                "name": "node",
                "version": "16.20.2",
                "installed_at": datetime(2024, 1, 2),
            },
            {
                "host": "early",
                "name": "node",
                "version": "16.20.2",
                "installed_at": datetime(2023, 1, 2),
            },
        ]
    )
    assert {r["host"]: r["installed_after_eol"] for r in got} == {"late": True, "early": False}


@pytest.fixture
def eol_data(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "products"
    folder.mkdir()
    (folder / "apache-struts.md").write_text(product_markdown(STRUTS))
    (folder / "ubuntu.md").write_text(product_markdown(UBUNTU))
    (folder / "forever-db.md").write_text(product_markdown(NOEND))
    node = tmp_path / "nodejs.json"
    node.write_bytes(v1_json(NODE))
    return [folder, node]


def test_inventories_and_sboms_end_to_end(case: Case, tmp_path: Path, eol_data: list[Path]) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        inventory_csv(
            [
                {
                    "host": "web-01",
                    "software": "Node.js",
                    "version": "16.20.2",
                    "installed_at": "2024-02-01T10:00:00Z",
                },
                {
                    "host": "web-02",
                    "software": "Node.js",
                    "version": "16.14.0",
                    "installed_at": "2022-03-01T10:00:00Z",
                },
                {
                    "host": "web-03",
                    "software": "Node.js",
                    "version": "24.0.0",
                    "installed_at": "2025-06-01T10:00:00Z",
                },
                {"host": "db-01", "software": "Forever DB", "version": "3.1", "installed_at": ""},
            ]
        )
    )
    osq = tmp_path / "osquery.log"
    osq.write_bytes(
        osquery_results(
            "ws-7",
            "pack_inventory_programs",
            [
                {
                    "name": "Node.js",
                    "version": "18.19.0",
                    "install_date": "20240105",
                    "publisher": "Node.js Foundation",
                    "identifying_number": "{X}",
                }
            ],
            1_790_000_000,
        )
        + osquery_results(
            "mac-3",
            "pack_inventory_homebrew_packages",
            [
                {
                    "name": "node@18",
                    "version": "18.20.4",
                    "path": "/opt/homebrew/Cellar/node@18/18.20.4",
                    "prefix": "/opt/homebrew",
                    "type": "formula",
                }
            ],
            1_790_000_000,
        )
        + osquery_results(
            "srv-9",
            "pack_inventory_deb_packages",
            [
                {
                    "name": "nodejs",
                    "version": "18.19.1+dfsg-6ubuntu5",
                    "arch": "amd64",
                    "revision": "6ubuntu5",
                    "maintainer": "Ubuntu",
                }
            ],
            1_790_000_000,
        )
    )
    cdx = tmp_path / "shop.cdx.json"
    cdx.write_text(
        cyclonedx_sbom(
            "shop",
            "4.2.0",
            [
                {
                    "name": "struts2-core",
                    "version": "2.5.30",
                    "purl": "pkg:maven/org.apache.struts/struts2-core@2.5.30",
                },
                {"name": "weird-name", "cpe": "cpe:2.3:a:apache:struts:2.3.37:*:*:*:*:*:*:*"},
            ],
        )
    )
    spdx = tmp_path / "shop.spdx.json"
    spdx.write_bytes(
        spdx_json(
            "billing",
            "1.0",
            [{"name": "struts", "purl": "pkg:maven/org.apache.struts/struts2-core@2.5.33"}],
        )
    )
    outcome = run_eol(
        case, EolOptions(as_of=AS_OF, data=eol_data, inventories=[inventory, osq, cdx, spdx])
    )
    assert not outcome.problems, outcome.problems
    got = {(f.kind, f.host or f.subject.split("!/")[0]): f for f in outcome.findings}
    assert set(got) == {
        ("software.installed-after-end-of-life", "web-01"),
        ("software.end-of-life", "web-02"),
        ("software.end-of-life", "ws-7"),
        ("software.end-of-life", "mac-3"),
        ("software.end-of-life", "srv-9"),
        ("software.end-of-life", "release:shop@4.2.0"),
        ("software.end-of-life", "release:billing@1.0"),
    }
    after = got[("software.installed-after-end-of-life", "web-01")]
    assert after.severity is Severity.HIGH
    assert after.evidence["eol"] == "2023-09-11" and after.evidence["cycle"] == "16"
    assert after.evidence["days_since_end"] == (AS_OF - date(2023, 9, 11)).days
    assert after.evidence["sources"] == ["inventory.csv:2"]
    assert after.time == datetime(2024, 2, 1, 10, tzinfo=UTC)
    assert got[("software.end-of-life", "web-02")].severity is Severity.MEDIUM
    assert got[("software.end-of-life", "ws-7")].evidence["cycle"] == "18"
    shop = [f for f in outcome.findings if f.subject.startswith("release:shop@4.2.0")]
    assert sorted((f.evidence["matched_by"], f.evidence["cycle"]) for f in shop) == [
        ("cpe", "2.3"),
        ("purl", "2.5"),
    ]
    rows = {(r.product, r.cycle, r.status): r for r in outcome.summary}
    assert rows[("nodejs", "16", "end-of-life")].hosts == 2
    assert rows[("nodejs", "16", "end-of-life")].hosts_installed_after == 1
    assert rows[("nodejs", "18", "end-of-life")].hosts == 3
    assert rows[("nodejs", None, "unknown")].reason == NEWER
    assert rows[("forever-db", "3", "supported")].hosts == 1
    assert rows[("apache-struts", "2.5", "end-of-life")].releases == 2
    # the findings are in the case; a second run merges them (same fingerprints)
    stored = case.findings(source="eol")
    assert len(stored) == len(outcome.findings)
    again = run_eol(case, EolOptions(as_of=AS_OF))
    assert len(case.findings(source="eol")) == len(again.findings) == len(stored)


def test_eol_nodes_are_root_cause_candidates_first(case: Case, tmp_path: Path) -> None:
    from taintline.demo.graph import write_story
    from taintline.graph.ingest import add_files

    files = write_story(tmp_path / "story")
    add_files(case, [f for f in files.all() if f != files.inventory])
    outcome = run_eol(case, EolOptions(as_of=AS_OF, inventories=[files.inventory]))
    (finding,) = [f for f in outcome.findings if f.host == "dev-home-pc"]
    assert finding.kind == "software.installed-after-end-of-life"
    assert finding.evidence["product"] == "x_trader" and finding.evidence["eol"] == "2020-03-31"
    assert outcome.marked_nodes == 1
    target = Seed(NodeRef(NodeKind.HOST, "build-win-01"), datetime(2023, 3, 8, tzinfo=UTC))
    candidates = [u for u in upstream(case, target) if u.root_candidate]
    assert candidates[0].flagged and candidates[0].end_of_life == "2020-03-31"
    assert candidates[0].ref.kind is NodeKind.ARTIFACT
    (node,) = [n for n in case.nodes(NodeKind.ARTIFACT) if n.key == candidates[0].ref.key]
    assert node.attrs["end_of_life"] == "2020-03-31" and node.attrs["name"] == "X_TRADER"
