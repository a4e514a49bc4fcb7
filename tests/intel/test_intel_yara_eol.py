from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yara_x

from taintline.case import Case
from taintline.intel import endoflife, yara_rules
from taintline.intel.store import eol_map, eol_records, ingest, load_yara_sources
from taintline.limits import IntelLimits

GOOD = 'rule demo_marker\n{\n    strings:\n        $a = "taintline-demo"\n    condition:\n        $a\n}\n'
BROKEN = "rule ok { condition: true }\n\nrule broken\n{\n    condition:\n        $missing and\n}\n"


def test_good_yara_compiles_and_is_stored(case: Case, write: Callable[[str, str], Path]) -> None:
    path = write("Demo Rules.yar", GOOD)
    report = ingest(case, [path])
    assert not report.failed_files
    assert report.files[0].format == "yara" and report.files[0].yara_rules == 1
    sources = load_yara_sources(case)
    assert [(s.namespace, s.rules, s.text) for s in sources] == [
        ("demo_rules", ("demo_marker",), GOOD)
    ]
    rules = yara_rules.compile_sources(sources)
    assert [m.identifier for m in rules.scan(b"xx taintline-demo xx").matching_rules] == [
        "demo_marker"
    ]
    assert [i.value for i in case.indicators(types=["yara"])] == ["demo_marker"]
    again = ingest(case, [path])
    assert again.files[0].new == 0 and len(load_yara_sources(case)) == 1


def test_broken_yara_names_file_and_line_and_adds_nothing(
    case: Case, write: Callable[[str, str], Path]
) -> None:
    path = write("broken.yar", BROKEN)
    report = ingest(case, [path])
    (failed,) = report.failed_files
    (problem,) = failed.problems
    assert problem.item == str(path) and problem.line == 7
    assert "does not compile" in problem.message
    assert load_yara_sources(case) == [] and case.indicator_count() == 0


def test_yara_sniff_by_content_not_extension(write: Callable[[str, str], Path]) -> None:
    assert yara_rules.sniff(GOOD.encode(), Path("rules.txt"))
    assert yara_rules.sniff(b'import "pe"\n', Path("x"))
    assert yara_rules.sniff(b"/* only a comment */", Path("x.yar"))
    assert not yara_rules.sniff(b"/* only a comment */", Path("x.txt"))
    assert not yara_rules.sniff(b"evil.com\nruler.example\n", Path("x.yar"))


def test_compile_error_helper() -> None:
    try:
        yara_x.compile(BROKEN)
    except yara_x.CompileError as exc:
        message, line = yara_rules.compile_error(exc)
    assert line == 7 and message.startswith("error[")


CYCLES = [
    {"cycle": "7", "releaseDate": "2015-01-01", "eol": "2020-03-31", "latest": "7.17.90"},
    {"cycle": "6", "releaseDate": "2010-01-01", "eol": True},
]


def test_endoflife_list_named_by_file(case: Case, write: Callable[[str, str], Path]) -> None:
    path = write("X_Trader.json", json.dumps(CYCLES))
    report = ingest(case, [path])
    assert report.files[0].format == "endoflife" and report.files[0].eol_records == 2
    records = eol_records(case, "x_trader")
    assert [(r.cycle, r.eol_date, r.eol_flag, r.latest) for r in records] == [
        ("6", None, True, None),
        ("7", date(2020, 3, 31), True, "7.17.90"),
    ]
    assert eol_map(case) == {"x_trader": "2020-03-31"}
    assert {i.value for i in case.indicators(types=["eol"])} == {"x_trader:7", "x_trader:6"}


def test_endoflife_wrapper_v1_and_open_cycles(
    case: Case, write: Callable[[str, str], Path]
) -> None:
    wrapper = write(
        "w.json",
        json.dumps(
            {
                "product": "Widget",
                "source": "vendor notice",
                "cycles": [
                    {"cycle": "1", "eol": "2019-01-01"},
                    {"cycle": "2", "eol": "2021-06-30"},
                ],
            }
        ),
    )
    v1 = write(
        "v1.json",
        json.dumps(
            {
                "schema_version": "1.2.0",
                "result": {
                    "name": "gadget",
                    "releases": [
                        {
                            "name": "3",
                            "releaseDate": "2020-01-01",
                            "isEol": False,
                            "eolFrom": None,
                            "latest": {"name": "3.4"},
                        },
                        {
                            "name": "2",
                            "releaseDate": "2018-01-01",
                            "isEol": True,
                            "eolFrom": "2022-01-01",
                        },
                    ],
                },
            }
        ),
    )
    ingest(case, [wrapper, v1])
    # widget: latest EOL across cycles; gadget: cycle 3 is still supported -> left out
    assert eol_map(case) == {"widget": "2021-06-30"}
    assert {r.source for r in eol_records(case, "widget")} == {"vendor notice"}
    assert [(r.cycle, r.latest, r.eol_flag) for r in eol_records(case, "gadget")] == [
        ("2", None, True),
        ("3", "3.4", False),
    ]


def test_endoflife_bad_cycles(write: Callable[[str, str], Path]) -> None:
    path = write(
        "p.json",
        json.dumps(
            [{"cycle": "1", "eol": "soon"}, {"cycle": None}, 5, {"cycle": "2", "eol": False}]
        ),
    )
    result = endoflife.read(path, IntelLimits())
    assert [p.line for p in result.problems] == [1, 2, 3]
    assert [(r.cycle, r.eol_flag) for r in result.eol] == [("2", False)]
    assert endoflife.read(write("n.json", '{"cycles": 3}'), IntelLimits()).failed


def test_rule_names_come_from_the_compiled_rules(
    case: Case, write: Callable[[str, str], Path]
) -> None:
    text = (
        "/*\nrule commented_out { condition: true }\n*/\n"
        "// rule also_commented { condition: true }\n"
        'private rule helper { strings: $a = "x" condition: $a }\n'
        'rule real_one : tag { condition: helper and filename != "" }\n'
        'rule s { meta: note = "rule in_a_string { condition: true }" condition: false }\n'
    )
    path = write("mixed.yar", text)
    report = ingest(case, [path])
    assert not report.failed_files
    values = sorted(i.value for i in case.indicators(types=["yara"]))
    # comments and strings are not rules; the LOKI/THOR externals (filename) compile
    assert values == ["helper", "real_one", "s"]
    (source,) = load_yara_sources(case)
    assert source.rules == ("helper", "real_one", "s")
    assert yara_rules.check(text, "ns", "mixed.yar") == source.rules
