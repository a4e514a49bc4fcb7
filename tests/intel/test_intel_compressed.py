"""Compressed intel files: every reader takes gzip, bzip2 and zstd input (known by its magic
bytes, whatever the name) as it takes the plain file, ``intel add FOLDER`` included; a
compression bomb or a cut-off stream is a clear failure of that file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.builders import endoflife as eol
from tests.builders.sboms import compress

from taintline.case import Case
from taintline.intel.interface import ReadResult
from taintline.intel.store import ingest, read_file
from taintline.limits import IntelLimits

SHA = "3" * 64
PRODUCT = eol.Product(
    "exampledb",
    "Example DB",
    (
        eol.Cycle("2.0", release=date(2022, 1, 1), eol=False, latest="2.0.3"),
        eol.Cycle("1.0", release=date(2020, 1, 1), eol=date(2023, 6, 30)),
    ),
    purls=("pkg:generic/exampledb",),
)


def _stix() -> bytes:
    stamp = "2023-03-30T00:00:00.000Z"
    objects = [
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--00000000-0000-4000-8000-000000000001",
            "created": stamp,
            "modified": stamp,
            "pattern": f"[file:hashes.'SHA-256' = '{SHA}']",
            "pattern_type": "stix",
            "valid_from": stamp,
        },
        {
            "type": "domain-name",
            "spec_version": "2.1",
            "id": "domain-name--00000000-0000-4000-8000-000000000002",
            "value": "evil.example",
        },
    ]
    return json.dumps(
        {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": objects}
    ).encode()


def _misp() -> bytes:
    attributes = [
        {"type": "sha256", "value": SHA, "to_ids": True},
        {"type": "domain", "value": "evil.example", "to_ids": True},
        {"type": "ip-src", "value": "10.0.0.5", "to_ids": False},
        {"type": "yara", "value": "rule misp_rule { condition: true }", "to_ids": True},
    ]
    return json.dumps(
        {"Event": {"info": "test", "Orgc": {"name": "Org"}, "Attribute": attributes}}
    ).encode()


#: name -> (file name, content, the reader's format name)
SAMPLES: dict[str, tuple[str, bytes, str]] = {
    "csv": (
        "iocs.csv",
        f"type,value,note\nsha256,{SHA},x\ndomain,evil[.]example,y\n".encode(),
        "csv",
    ),
    "text": ("iocs.txt", b"evil.example\n203.0.113.7\n# comment\n", "csv"),
    "stix": ("bundle.json", _stix(), "stix"),
    "misp": ("event.json", _misp(), "misp"),
    "yara": (
        "rules.yar",
        b'rule one { strings: $a = "x" condition: $a }\nrule two { condition: true }\n',
        "yara",
    ),
    "eol-json": ("exampledb.json", eol.classic_json(PRODUCT), "endoflife"),
    "eol-md": ("exampledb.md", eol.product_markdown(PRODUCT).encode(), "endoflife-md"),
}
COMPRESSIONS = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}


def summary(result: ReadResult) -> dict[str, Any]:
    """What a result states, independent of where it was read from."""
    rows = {(str(i.type), i.value, i.source) for i in result.indicators}
    for table in result.tables:
        rows |= set(
            zip(*(table.column(c).to_pylist() for c in ("type", "value", "source")), strict=True)
        )
    return {
        "format": result.format,
        "failed": result.failed,
        "rows": sorted(rows),
        "context": sorted((str(i.type), i.value) for i in result.context_only),
        "yara": [(y.namespace, y.rules) for y in result.yara],
        "eol": sorted((e.product, e.cycle, e.eol_date, e.latest) for e in result.eol),
        "products": sorted((p.product, p.purls) for p in result.eol_products),
        "problems": [p.message for p in result.problems],
    }


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("sample", SAMPLES)
def test_each_reader_reads_each_compression_as_the_plain_file(
    tmp_path: Path, sample: str, compression: str
) -> None:
    name, content, fmt = SAMPLES[sample]
    plain = tmp_path / "plain" / name
    plain.parent.mkdir()
    plain.write_bytes(content)
    expected = summary(read_file(plain, IntelLimits()))
    assert expected["format"] == fmt and not expected["failed"]
    assert expected["rows"] or expected["eol"]
    packed = tmp_path / (name + COMPRESSIONS[compression])
    packed.write_bytes(compress(content, compression))
    result = read_file(packed, IntelLimits())
    assert summary(result) == expected
    # what names the file names the compressed file, never the temporary expanded copy
    origins = [y.origin for y in result.yara] + [e.origin for e in result.eol]
    origins += [p.origin for p in result.eol_products]
    origins += [str(i.context.get("origin")) for i in result.indicators if str(i.type) == "yara"]
    origins += [p.item for p in result.problems]
    assert all(str(o).startswith((str(packed), "misp attribute")) for o in origins if o)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_compression_is_known_by_content_not_name(tmp_path: Path, compression: str) -> None:
    name, content, _ = SAMPLES["csv"]
    disguised = tmp_path / name  # compressed, but named like a plain CSV file
    disguised.write_bytes(compress(content, compression))
    rows = summary(read_file(disguised, IntelLimits()))["rows"]
    assert ("sha256", SHA, "iocs.csv") in rows and ("domain", "evil.example", "iocs.csv") in rows


def test_intel_add_folder_reads_compressed_files(tmp_path: Path) -> None:
    folder = tmp_path / "feeds"
    (folder / "sub").mkdir(parents=True)
    for (sample, (name, content, _)), compression in zip(
        SAMPLES.items(), list(COMPRESSIONS) * 3, strict=False
    ):
        target = folder / ("sub" if sample == "yara" else "") / (name + COMPRESSIONS[compression])
        target.write_bytes(compress(content, compression))
    (folder / "notes.gz").write_bytes(compress(b"not intel", "gzip"))  # no intel ending inside
    with Case(tmp_path / "case.duckdb") as case:
        report = ingest(case, [folder])
        assert not report.failed_files, [f.failure for f in report.failed_files]
        assert len(report.files) == len(SAMPLES)
        assert report.left_out == {str(folder): 1}
        assert case.indicator_statements("sha256", SHA)
        assert {i.value for i in case.indicators(types=["yara"])} >= {"one", "two"}
        cycles = case.con.execute("SELECT count(*) FROM eol_cycles").fetchone()
        assert cycles == (2,)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_bomb_and_cut_streams_fail_that_file_only(tmp_path: Path, compression: str) -> None:
    bomb = tmp_path / f"bomb.csv{COMPRESSIONS[compression]}"
    bomb.write_bytes(compress(b"evil.example\n" * 400_000, compression))  # 5.2 MB expanded
    assert bomb.stat().st_size < 100_000
    result = read_file(bomb, IntelLimits(max_file_bytes=200_000))
    assert result.failed and not result.tables
    message = result.problems[0].message
    assert f"{compression} data expands to more than the limit of 200,000 bytes" in message
    assert "compression bomb" in message and result.problems[0].item == str(bomb)
    cut = tmp_path / f"cut.csv{COMPRESSIONS[compression]}"
    cut.write_bytes(compress(SAMPLES["csv"][1] * 50, compression)[:-12])
    good = tmp_path / "good.csv"
    good.write_bytes(SAMPLES["csv"][1])
    with Case(tmp_path / "case.duckdb") as case:
        report = ingest(case, [cut, good])
        by_path = {f.path: f for f in report.files}
        assert by_path[str(cut)].failed
        assert "nothing read" in by_path[str(cut)].failure
        assert f"{compression}" in by_path[str(cut)].failure
        assert not by_path[str(good)].failed and by_path[str(good)].new == 2
