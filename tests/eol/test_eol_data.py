"""End-of-life data in every shape: classic API, v1 API, product Markdown, folders, the pack."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from tests.builders.endoflife import (
    Cycle,
    Product,
    classic_json,
    product_markdown,
    v1_json,
)

from taintline.case import Case
from taintline.intel.store import eol_products, eol_records, ingest, ingest_pack

STRUTS = Product(
    name="apache-struts",
    title="Apache Struts",
    aliases=("struts",),
    purls=("pkg:maven/org.apache.struts/struts2-core",),
    cpes=("cpe:/a:apache:struts", "cpe:2.3:a:apache:struts"),
    cycles=(
        Cycle("6", date(2022, 6, 2), eol=False, latest="6.8.0", latest_date=date(2025, 9, 15)),
        Cycle("2.5", date(2016, 5, 5), eol=date(2024, 4, 30), latest="2.5.33"),
        Cycle("2.3", date(2011, 12, 8), eol=date(2019, 5, 14), eoas=date(2018, 1, 1)),
        Cycle("2.2", date(2010, 6, 29), eol=True, latest="2.2.3.1"),
    ),
)


def _facts(case: Case) -> list[tuple[object, ...]]:
    return [
        (r.product, r.cycle, r.release_date, r.eol_date, r.eol_flag, r.latest)
        for r in eol_records(case, "apache-struts")
    ]


EXPECTED = [
    ("apache-struts", "2.2", date(2010, 6, 29), None, True, "2.2.3.1"),
    ("apache-struts", "2.3", date(2011, 12, 8), date(2019, 5, 14), True, None),
    ("apache-struts", "2.5", date(2016, 5, 5), date(2024, 4, 30), True, "2.5.33"),
    ("apache-struts", "6", date(2022, 6, 2), None, False, "6.8.0"),
]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("apache-struts.json", classic_json(STRUTS)),
        ("struts-v1.json", v1_json(STRUTS)),
        ("apache-struts.md", product_markdown(STRUTS).encode()),
    ],
    ids=["classic", "v1", "markdown"],
)
def test_every_shape_gives_the_same_cycles(
    case: Case, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = ingest(case, [path])
    (file,) = report.files
    assert not file.failed and not file.problems, file.problems
    assert file.eol_records == 4
    assert _facts(case) == EXPECTED
    (cycle_23,) = [r for r in eol_records(case) if r.cycle == "2.3"]
    assert cycle_23.eoas_date == date(2018, 1, 1)
    # each cycle keeps where it came from
    assert all(r.origin and r.origin.startswith(str(path)) for r in eol_records(case))
    assert {r.source for r in eol_records(case)} == {"endoflife.date"}


def test_identifiers_and_names_from_v1_and_markdown(tmp_path: Path) -> None:
    v1, md = tmp_path / "a.json", tmp_path / "apache-struts.md"
    v1.write_bytes(v1_json(STRUTS))
    md.write_text(product_markdown(STRUTS))
    for path in (v1, md):
        with Case(tmp_path / f"{path.name}.duckdb") as single:
            ingest(single, [path])
            (product,) = eol_products(single)
            assert product.product == "apache-struts"
            assert product.purls == ("pkg:maven/org.apache.struts/struts2-core",)
            assert set(product.cpes) == {"cpe:/a:apache:struts", "cpe:2.3:a:apache:struts"}
            assert "struts" in product.names and "Apache Struts" in product.names


def test_markdown_numbers_stay_version_text(case: Case, tmp_path: Path) -> None:
    product = Product(
        "python",
        "Python",
        cycles=(Cycle("3.10", date(2021, 10, 4), eol=date(2026, 10, 31)), Cycle("2.7", eol=True)),
    )
    path = tmp_path / "python.md"
    path.write_text(product_markdown(product, quote_cycles=False))
    report = ingest(case, [path])
    assert not report.files[0].problems
    assert [r.cycle for r in eol_records(case, "python")] == ["3.10", "2.7"]


def test_folder_of_markdown_files_bad_one_reported_rest_read(case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "products"
    folder.mkdir()
    (folder / "apache-struts.md").write_text(product_markdown(STRUTS))
    (folder / "no-releases.md").write_text(
        "---\ntitle: Nothing\npermalink: /nothing\n---\n\nText\n"
    )
    (folder / "not-front-matter.md").write_text("title: X\nreleases:\n  - releaseCycle: '1'\n")
    (folder / "unclosed.md").write_text("---\ntitle: X\nreleases:\n  - releaseCycle: '1'\n")
    (folder / "list.md").write_text("---\n- a\n- b\n---\n")
    (folder / "broken-yaml.md").write_text("---\ntitle: [unclosed\nreleases: 1\n---\n")
    report = ingest(case, [folder])
    by_name = {Path(f.path).name: f for f in report.files}
    assert not by_name["apache-struts.md"].failed
    assert by_name["apache-struts.md"].eol_records == 4
    messages = {n: [p.one_line() for p in f.problems] for n, f in by_name.items() if f.failed}
    assert set(messages) == {
        "no-releases.md",
        "not-front-matter.md",
        "unclosed.md",
        "list.md",
        "broken-yaml.md",
    }
    assert all(len(lines) == 1 for lines in messages.values()), messages
    assert "product file without releases" in messages["no-releases.md"][0]
    assert "no YAML front matter" in messages["not-front-matter.md"][0]
    assert "YAML is not front matter" in messages["unclosed.md"][0]
    assert "not a mapping" in messages["list.md"][0]
    assert "not valid YAML" in messages["broken-yaml.md"][0]
    # nothing from a Markdown file was ever taken as an IOC list
    assert {f.format for f in report.files} == {"endoflife-md"}
    assert case.indicator_counts_by_type() == {"eol": 4}


def test_cycle_without_dates_is_a_problem_line_and_the_rest_is_read(
    case: Case, tmp_path: Path
) -> None:
    text = product_markdown(STRUTS).replace(
        '  - releaseCycle: "2.5"\n    releaseDate: 2016-05-05\n    eol: 2024-04-30 # as announced\n',
        '  - releaseCycle: "2.5"\n    eol: null\n',
    )
    path = tmp_path / "apache-struts.md"
    path.write_text(text)
    report = ingest(case, [path])
    (problem,) = report.files[0].problems
    line = text.splitlines().index('  - releaseCycle: "2.5"') + 1
    assert problem.line == line
    assert "cycle '2.5' has no dates and no end-of-life flag" in problem.message
    assert [r.cycle for r in eol_records(case)] == ["2.2", "2.3", "6"]


def test_json_cycle_with_a_bad_date_is_one_problem(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "thing.json"
    path.write_text('[{"cycle": "1", "eol": "soon"}, {"cycle": "2", "eol": "2020-01-01"}, 5]')
    report = ingest(case, [path])
    assert [p.one_line() for p in report.files[0].problems] == [
        f"{path}:1: eol is not a YYYY-MM-DD date: 'soon'",
        f"{path}:3: release cycle is not a mapping",
    ]
    assert [r.cycle for r in eol_records(case)] == ["2"]


def test_product_json_without_any_usable_cycle_fails(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text('{"result": {"name": "empty", "releases": []}}')
    report = ingest(case, [path])
    assert report.files[0].failed
    assert report.files[0].problems[0].message == "no usable release cycle"


def test_pack_cycles_keep_their_source_and_names(case: Case) -> None:
    ingest_pack(case, "3cx-xtrader")
    (record,) = eol_records(case, "x_trader")
    assert record.eol_date == date(2020, 3, 31)
    assert record.source.startswith("Trading Technologies")
    assert record.origin == "pack 3cx-xtrader/x_trader-eol.json#1"
    (product,) = eol_products(case)
    assert "X_TRADER" in product.names
