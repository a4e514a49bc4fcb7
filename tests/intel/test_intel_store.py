from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import stix2

from taintline.case import Case
from taintline.intel import csvtext, store
from taintline.intel.store import ensure_intel, ingest
from taintline.limits import IntelLimits
from taintline.model import Indicator, IndicatorType

SHA = "fad482ded2e25ce9e1dd3d3ecc3227af714bdfbbde04347dbc1b21d6a3670405"


def test_same_indicator_from_two_sources_is_one_with_two_sources(
    case: Case, write: Callable[[str, str], Path]
) -> None:
    bundle = stix2.Bundle(
        stix2.Indicator(
            pattern=f"[file:hashes.'SHA-256' = '{SHA}']",
            pattern_type="stix",
            valid_from="2023-03-29T00:00:00Z",
        )
    )
    stix_path = write("vendor.json", bundle.serialize())
    csv_path = write("list.txt", f"{SHA.upper()}\njournalide[.]org\n")
    misp_path = write(
        "event.json",
        json.dumps(
            {
                "Event": {
                    "Orgc": {"name": "ORG"},
                    "Attribute": [{"type": "domain", "value": "JOURNALIDE.org", "to_ids": True}],
                }
            }
        ),
    )
    report = ingest(case, [stix_path, csv_path, misp_path])
    assert [f.format for f in report.files] == ["stix", "csv", "misp"]
    assert report.new == 4 and report.new_indicators == 2 and report.duplicates == 0
    assert case.indicator_counts_by_type() == {"domain": 1, "sha256": 1}
    (sha,) = case.indicators(value=SHA)
    assert sha.sources == ("list.txt", "vendor.json")
    (domain,) = case.indicators(value="journalide.org")
    assert domain.sources == ("ORG", "list.txt")
    again = ingest(case, [csv_path])
    assert again.new == 0 and again.duplicates == 2


def test_duplicates_within_one_file(case: Case, write: Callable[[str, str], Path]) -> None:
    path = write("dups.txt", "evil.com\nEVIL.COM.\nevil[.]com\n")
    report = ingest(case, [path])
    assert report.files[0].read_by_type == {"domain": 3}
    assert report.new == 1 and report.duplicates == 2


def test_duplicates_far_apart_and_across_sources(
    case: Case, write: Callable[[str, str], Path]
) -> None:
    """A value repeated far apart in a big file (other chunks, other Arrow tables) is still
    one row; new statements and new indicators are counted exactly, in an empty case and in
    one that already holds some of them."""
    values = [f"h{i}.example.com" for i in range(60_000)]
    path = write("many.txt", "\n".join([*values, values[0], values[59_999].upper()]) + "\n")
    report = ingest(case, [path])
    assert report.new == 60_000 and report.duplicates == 2
    assert report.new_indicators == 60_000
    assert case.indicator_count() == 60_000
    rows = ["value,source", "h1.example.com,A", "h1.example.com,B", "h1.example.com,A"]
    rows += ["fresh.example,A", "fresh.example,B", "h2.example.com,many.txt"]
    report = ingest(case, [write("sources.csv", "\n".join(rows) + "\n")])
    assert (report.new, report.new_indicators, report.duplicates) == (4, 1, 2)
    assert case.indicator_statements("domain", "h1.example.com")[0].source == "A"
    assert case.indicator_count() == 60_001


def test_source_override(case: Case, write: Callable[[str, str], Path]) -> None:
    path = write("x.txt", "evil.com\n")
    ingest(case, [path], source="Partner feed")
    assert case.indicators()[0].sources == ("Partner feed",)


def test_oversize_file_refused_before_reading(
    case: Case, write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write("huge.txt", "evil.com\n" * 100)

    def must_not_read(*args: object) -> None:
        raise AssertionError("the reader must not be called")

    monkeypatch.setattr(csvtext, "read", must_not_read)
    report = ingest(case, [path], limits=IntelLimits(max_file_bytes=64))
    (problem,) = report.problems
    assert report.files[0].failed and "over the 64-byte intel file limit" in problem.message
    assert case.indicator_count() == 0


def test_a_file_failing_while_stored_is_rolled_back(
    case: Case, write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write("good.txt", "kept.example\n")
    eol = write(
        "p.json", json.dumps({"product": "p", "cycles": [{"cycle": "1", "eol": "2020-01-01"}]})
    )

    def broken(*args: object) -> int:
        raise duckdb.ConstraintException("simulated failure")

    monkeypatch.setattr(store, "_store_eol", broken)
    report = ingest(case, [good, eol])
    assert not report.files[0].failed and report.files[1].failed
    assert "nothing from this file kept" in report.files[1].problems[0].message
    # the EOL file's indicator was written before the failure and rolled back with it
    assert [i.value for i in case.indicators()] == ["kept.example"]


def test_bad_inputs_each_give_one_line(
    case: Case, write: Callable[[str, str | bytes], Path], tmp_path: Path
) -> None:
    files = [
        write("empty.txt", ""),
        write("binary.bin", b"\x00\x01\x02garbage"),
        write("cut.json", '{"type": "bundle", "objects": [{"type": "indicator", "pattern'),
        tmp_path / "missing.txt",
        tmp_path / "empty-folder",
    ]
    files[-1].mkdir()
    report = ingest(case, files)
    assert all(f.failed for f in report.files)
    assert [len(f.problems) for f in report.files] == [1, 1, 1, 1, 1]
    assert all("\n" not in p.message for p in report.problems)


def test_format_detected_from_content_not_extension(
    case: Case, write: Callable[[str, str], Path]
) -> None:
    misp_as_txt = write(
        "event.txt",
        json.dumps(
            {
                "Event": {
                    "Attribute": [
                        {"type": "md5", "value": "0eeb1c0133eb4d571178b2d9d14ce3e9", "to_ids": True}
                    ]
                }
            }
        ),
    )
    yara_as_json = write("rules.json", "rule r { condition: true }\n")
    text_as_yar = write("list.yar", "evil.com\n")
    report = ingest(case, [misp_as_txt, yara_as_json, text_as_yar])
    assert [f.format for f in report.files] == ["misp", "yara", "csv"]


def test_ensure_intel_loads_pack_once(case: Case) -> None:
    assert ensure_intel(case) is True
    count = case.indicator_count()
    assert count > 100
    assert ensure_intel(case) is False
    assert case.indicator_count() == count


def _folder_of_small_files(folder: Path) -> Path:
    """Small files that share statements, indicators and end-of-life keys."""
    from datetime import date

    from tests.builders import endoflife as eol

    folder.mkdir()
    (folder / "a.txt").write_text("evil.com\n1.2.3.4\nshared.example\n")
    (folder / "b.csv").write_text(
        "value,source\nshared.example,A\nshared.example,B\nevil.com,a.txt\n"
    )
    (folder / "c.txt").write_text("evil.com\nnew.example\n")
    for name, cycles in (("alpha", ("1", "2")), ("beta", ("1",)), ("alpha-again", ("2", "3"))):
        product = eol.Product(
            "alpha" if name.startswith("alpha") else name,
            name.title(),
            tuple(
                eol.Cycle(c, release=date(2020, 1, int(c)), eol=date(2022, 1, int(c)))
                for c in cycles
            ),
        )
        (folder / f"{name}.md").write_text(eol.product_markdown(product))
    return folder


@pytest.mark.parametrize("broken_group", [False, True], ids=["grouped", "group-fails"])
def test_small_files_stored_together_count_as_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_group: bool
) -> None:
    """Small files share one transaction and one INSERT per table; the per-file counts and
    the case's contents are those of storing them one after the other (GROUP_FILES = 1);
    when the grouped store fails, each file is stored on its own."""
    folder = _folder_of_small_files(tmp_path / "feeds")

    def run(name: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with Case(tmp_path / f"{name}.duckdb") as case:
            case.add_indicators([Indicator(IndicatorType.DOMAIN, "evil.com", "a.txt")])
            report = ingest(case, [folder])
            per_file = [
                (Path(f.path).name, f.new, f.duplicates, f.new_indicators, f.eol_records, f.failed)
                for f in report.files
            ]
            rows = case.con.execute(
                "SELECT type, value, source FROM indicator_sources UNION ALL"
                " SELECT product, cycle, source FROM eol_cycles ORDER BY ALL"
            ).fetchall()
        return per_file, rows

    monkeypatch.setattr(store, "GROUP_FILES", 1)
    expected = run("one-by-one")
    monkeypatch.setattr(store, "GROUP_FILES", 64)
    one_by_one = store._store_one
    alone: list[str] = []

    def store_one(case: Case, file_report: store.FileReport, result: object) -> None:
        alone.append(Path(file_report.path).name)
        one_by_one(case, file_report, result)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_store_one", store_one)
    if broken_group:

        def fail(*args: object) -> None:
            raise RuntimeError("store failed")

        monkeypatch.setattr(Case, "store_indicator_groups", fail)
    assert run("grouped") == expected
    assert len(alone) == (6 if broken_group else 0)  # grouped, or each file on its own
    names = [row[0] for row in expected[0]]
    assert names == sorted(names) and len(names) == 6
    assert {row[0]: row[1:5] for row in expected[0]}["b.csv"] == (2, 1, 0, 0)
