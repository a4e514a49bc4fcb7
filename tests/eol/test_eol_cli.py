"""``taintline eol``: the output contract (table, jsonl, csv, sarif; -o; --fail-on; exit codes)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from tests.builders.endoflife import Cycle, Product, inventory_csv, product_markdown

from taintline.cli.main import main

SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "sarif-2.1.0-rtm.5.json").read_text())

PRODUCT = Product(
    name="widget",
    title="Widget",
    cycles=(
        Cycle("2", date(2021, 1, 1), eol=False),
        Cycle("1", date(2015, 1, 1), eol=date(2020, 6, 30)),
    ),
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    data = tmp_path / "widget.md"
    data.write_text(product_markdown(PRODUCT))
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        inventory_csv(
            [
                {
                    "host": "pc-1",
                    "software": "Widget",
                    "version": "1.4.2",
                    "installed_at": "2021-03-01",
                },
                {
                    "host": "pc-2",
                    "software": "Widget",
                    "version": "1.4",
                    "installed_at": "2019-03-01",
                },
                {
                    "host": "pc-3",
                    "software": "Widget",
                    "version": "2.0.1",
                    "installed_at": "2022-03-01",
                },
                {
                    "host": "[bold red]pc-4[/]",
                    "software": "Widget",
                    "version": "1.0",
                    "installed_at": "",
                },
            ]
        )
    )
    return data, inventory, tmp_path / "case.duckdb"


def _run(files: tuple[Path, Path, Path], *extra: str) -> int:
    data, inventory, case = files
    return main(
        [
            "eol",
            str(inventory),
            "--data",
            str(data),
            "--as-of",
            "2026-11-01",
            "--case",
            str(case),
            *extra,
        ]
    )


def test_table_grouped_by_product_with_host_counts(files, capsys) -> None:
    assert _run(files) == 1  # an install after the end of life is high: --fail-on high
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if "end-of-life" in ln]
    cells = [c.strip() for c in line.split("│") if c.strip()]
    assert cells[:6] == [
        "widget",
        "1",
        "end-of-life",
        "2020-06-30 (6 years 4 months ago)",
        "3",
        "1",
    ]
    assert "supported cycle(s) not shown" in out


def test_jsonl_csv_and_sarif(files, tmp_path: Path, capsys) -> None:
    assert _run(files, "--format", "jsonl", "--fail-on", "critical") == 0
    records = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    kinds = sorted((r["host"], r["kind"]) for r in records)
    assert kinds == [
        ("[bold red]pc-4[/]", "software.end-of-life"),
        ("pc-1", "software.installed-after-end-of-life"),
        ("pc-2", "software.end-of-life"),
    ]
    out = tmp_path / "eol.sarif"
    assert _run(files, "--format", "sarif", "-o", str(out)) == 1
    log = json.loads(out.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {
        "software.end-of-life",
        "software.installed-after-end-of-life",
    }
    assert _run(files, "--format", "csv", "--fail-on", "critical") == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("severity,kind,subject") and len(rows) == 4


def test_hostile_names_are_text_in_the_table(files, capsys) -> None:
    _, inventory, case = files
    inventory.write_text(
        inventory_csv([{"host": "h", "software": "Widget [link=http://x]", "version": "1.2"}])
    )
    assert _run(files, "--all") == 0
    assert main(["eol", "--case", str(case), "--format", "jsonl", "--as-of", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert "[link=http://x]" in out


def test_nothing_understood_exits_2(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage")
    case = tmp_path / "case.duckdb"
    assert main(["eol", str(junk), "--case", str(case)]) == 2
    err = capsys.readouterr().err
    assert "nothing read from" in err and "nothing to check" in err
    bad_data = tmp_path / "bad.md"
    bad_data.write_text("no front matter here\n")
    inventory = tmp_path / "inv.csv"
    inventory.write_text(inventory_csv([{"host": "h", "software": "X_TRADER", "version": "7.1"}]))
    assert main(["eol", str(inventory), "--data", str(bad_data), "--case", str(case)]) == 2
    assert "no YAML front matter" in capsys.readouterr().err
    assert main(["eol", "--as-of", "yesterday", "--case", str(case)]) == 2
