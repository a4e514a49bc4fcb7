from __future__ import annotations

import base64
import csv
import re
import struct
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import yara_x

from taintline.case import Case
from taintline.intel import yara_rules
from taintline.intel.store import eol_map, ingest_pack, list_packs, load_yara_sources

from .conftest import build_ico_png, build_pe


def pack_rules(case: Case) -> yara_x.Rules:
    ingest_pack(case, "3cx-xtrader")
    return yara_rules.compile_sources(load_yara_sources(case))


def hits(rules: yara_x.Rules, data: bytes) -> set[str]:
    return {m.identifier for m in rules.scan(data).matching_rules}


def test_pack_loads_with_sources_and_eol(case: Case) -> None:
    (pack,) = [p for p in list_packs() if p.name == "3cx-xtrader"]
    report = ingest_pack(case, pack.name)
    assert not report.problems and not report.failed_files
    counts = case.indicator_counts_by_type()
    assert counts["sha256"] >= 50 and counts["domain"] >= 25 and counts["yara"] == 6
    assert eol_map(case) == {"x_trader": "2020-03-31"}
    (msi,) = case.indicators(
        value="59e1edf4d82fae4978e97512b0331b7eb21dd4b838b850ba46794d9c7a2c0983"
    )
    assert len(msi.sources) == 3
    assert case.indicators(value="https://sbmsa.wiki/blog/_insert")
    assert case.indicators(
        value="https://raw.githubusercontent.com/IconStorages/images/main/icon15.ico"
    )
    assert case.indicators(value="900b63ff9b06e0890bf642bdfcbfcc6ab7887c7a3c057c8e3fd6fba5ffc8e5d6")
    assert case.indicators(value="8538a6c5018f50fc")  # TT certificate serial
    assert case.indicators(value="Trading Technologies International, Inc")
    for statement in case.indicator_statements("domain", "journalide.org"):
        assert str(statement.context["reference"]).startswith("https://")


def test_every_pack_row_names_its_report() -> None:
    folder = resources.files("taintline.intel.packs").joinpath("3cx-xtrader")
    lines = [
        ln
        for ln in folder.joinpath("indicators.csv").read_text().splitlines()
        if not ln.startswith("#")
    ]
    rows = list(csv.DictReader(lines))
    assert rows and all(r["source"] and r["reference"].startswith("https://") for r in rows)


def test_pack_yara_rules_match_synthetic_samples(case: Case) -> None:
    rules = pack_rules(case)
    marker = b"\xfe\xed\xfa\xce" * 2 + b"\x00" * 32
    assert "taintline_3cx_feedface_in_certificate_table" in hits(rules, build_pe(b"cert" + marker))
    # the same bytes outside the certificate table, or no table at all: no match
    assert "taintline_3cx_feedface_in_certificate_table" not in hits(
        rules, build_pe(None, body=marker)
    )
    assert "taintline_3cx_feedface_in_certificate_table" not in hits(
        rules, build_pe(b"x" * 40, body=marker)
    )

    blob = base64.b64encode(bytes(range(120)))
    assert "taintline_3cx_ico_base64_after_iend" in hits(rules, build_ico_png(b"$" + blob))
    assert "taintline_3cx_ico_base64_after_iend" not in hits(rules, build_ico_png(b""))

    assert "taintline_3cx_rc4_key" in hits(rules, build_pe(None, body=b"3jB(2bsG#@c7"))
    assert "taintline_3cx_rc4_key" not in hits(rules, b"text that mentions 3jB(2bsG#@c7")

    loader = b"__tutma\x00https://raw.githubusercontent.com/IconStorages/images/main/icon%d.ico"
    assert "taintline_3cx_iconic_loader_strings" in hits(rules, build_pe(None, body=loader))
    assert "taintline_3cx_iconic_loader_strings" not in hits(rules, build_pe(None, body=b"__tutma"))

    macho = b"\xcf\xfa\xed\xfe" + b"\x00" * 28 + b"3cx_auth_id=1;__tutma=true sbmsa.wiki"
    assert "taintline_3cx_macos_updateagent_strings" in hits(rules, macho)

    tt = b"\x02\x09\x00\x85\x38\xa6\xc5\x01\x8f\x50\xfcTrading Technologies International, Inc"
    assert "taintline_xtrader_tt_certificate" in hits(rules, build_pe(tt))


def _pe32_with_certificate_table(table: bytes, *, directories: int = 16) -> bytes:
    """A minimal PE32 (not PE32+) header whose data directory 4 (the certificate table) points
    at ``table``, appended at the end of the file."""
    e_lfanew = 0x40
    optional_size = 96 + 8 * directories
    header = bytearray(e_lfanew + 24 + optional_size)
    header[0:2] = b"MZ"
    struct.pack_into("<I", header, 0x3C, e_lfanew)
    header[e_lfanew : e_lfanew + 4] = b"PE\0\0"
    struct.pack_into("<HH", header, e_lfanew + 4, 0x14C, 0)  # i386, no sections
    struct.pack_into("<H", header, e_lfanew + 20, optional_size)
    optional = e_lfanew + 24
    struct.pack_into("<H", header, optional, 0x10B)
    struct.pack_into("<I", header, optional + 92, directories)
    if directories > 4:
        struct.pack_into("<II", header, optional + 96 + 32, len(header), len(table))
    return bytes(header) + table


def test_pack_reads_the_certificate_table_of_pe32_too(case: Case) -> None:
    """The pack reads data directory 4 from the headers (no "pe" module): PE32 as well as the
    PE32+ samples above; a table that is not declared is not looked in."""
    rules = pack_rules(case)
    assert not any(re.search(r'^\s*import\s+"', s.text, re.M) for s in load_yara_sources(case))
    marker = b"\xfe\xed\xfa\xce" * 2
    assert "taintline_3cx_feedface_in_certificate_table" in hits(
        rules, _pe32_with_certificate_table(b"\0" * 16 + marker + b"\0" * 8)
    )
    undeclared = _pe32_with_certificate_table(b"\0" * 16 + marker, directories=4)
    assert "taintline_3cx_feedface_in_certificate_table" not in hits(rules, undeclared)
    tt = b"\x02\x09\x00\x85\x38\xa6\xc5\x01\x8f\x50\xfcTrading Technologies International, Inc"
    assert "taintline_xtrader_tt_certificate" in hits(rules, _pe32_with_certificate_table(tt))
    assert "taintline_xtrader_tt_certificate" not in hits(
        rules, _pe32_with_certificate_table(tt, directories=4)
    )


# -- the pack's snapshot in the user's cache folder ---------------------------------------------


def _pack_rows(case: Case) -> dict[str, list[tuple[object, ...]]]:
    from taintline.intel.store import PACK_TABLES

    return {
        t: case.con.execute(f"SELECT * EXCLUDE (added_at) FROM {t} ORDER BY ALL").fetchall()
        for t in PACK_TABLES
    }


def test_a_new_case_gets_the_pack_from_its_snapshot_with_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taintline.intel import store

    monkeypatch.setenv("TAINTLINE_CACHE_DIR", str(tmp_path / "cache"))
    read: list[str] = []
    real = store.ingest_pack
    monkeypatch.setattr(
        store, "ingest_pack", lambda case, name: read.append(name) or real(case, name)
    )
    with Case(tmp_path / "a.duckdb") as a:
        assert store.ensure_intel(a) is True
        first = _pack_rows(a)
    with Case(tmp_path / "b.duckdb", clock=lambda: datetime(2030, 1, 2, tzinfo=UTC)) as b:
        assert store.ensure_intel(b) is True
        assert _pack_rows(b) == first and all(first.values())
        stamps = b.con.execute("SELECT DISTINCT added_at FROM indicator_sources").fetchall()
        assert stamps == [(datetime(2030, 1, 2),)]  # added now, not when the snapshot was made
        assert store.ensure_intel(b) is False
    assert read == ["3cx-xtrader"]  # the files were read once; the second case took the copy
    # every table the pack fills is in the snapshot
    with Case(tmp_path / "c.duckdb") as c:
        real(c, "3cx-xtrader")
        filled = {
            t for t in c.tables() if c.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        }
        assert filled <= set(store.PACK_TABLES)


def test_a_damaged_snapshot_is_read_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taintline.intel import store

    monkeypatch.setenv("TAINTLINE_CACHE_DIR", str(tmp_path / "cache"))
    with Case(tmp_path / "a.duckdb") as a:
        store.ensure_intel(a)
        reference = _pack_rows(a)
    (snapshot,) = (tmp_path / "cache" / "packs").iterdir()
    part = snapshot / "eol_cycles.parquet"
    part.write_bytes(part.read_bytes()[:40])
    with Case(tmp_path / "b.duckdb") as b:
        assert store.ensure_intel(b) is True
        assert _pack_rows(b) == reference  # read from the pack's files, nothing half-copied


def test_a_case_with_other_intel_reads_the_pack_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case holding rows of its own in the pack's tables: the pack is read from its files
    (copying a snapshot could repeat rows the case has) and no snapshot is written from it."""
    from taintline.intel import store

    monkeypatch.setenv("TAINTLINE_CACHE_DIR", str(tmp_path / "cache"))
    rules = tmp_path / "mine.yar"
    rules.write_text('rule mine { strings: $a = "mine" condition: $a }\n')
    with Case(tmp_path / "a.duckdb") as a:
        store.ingest(a, [rules])
        # rows in the pack's tables but no indicator (the rule's name indicator removed)
        a.con.execute("DELETE FROM indicator_sources")
        assert store.ensure_intel(a) is True
        assert a.con.execute("SELECT count(*) FROM yara_sources").fetchall() == [(2,)]
    assert not (tmp_path / "cache" / "packs").exists()
