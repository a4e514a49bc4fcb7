"""The guard the PE, ELF and Mach-O analysers share around LIEF."""

from __future__ import annotations

import warnings

import pytest

from taintline.model import Finding, Severity
from taintline.scan import lieflazy


def _raise() -> int:
    raise ValueError("bad header")


def _warn_then_parse() -> int:
    warnings.warn("unknown enum value 0x99", RuntimeWarning, stacklevel=1)
    return 7


def _found(facts: int) -> list[Finding]:
    return [Finding("pe.demo", Severity.INFO, "x.dll", f"facts are {facts}")]


def test_exception_is_an_analyser_error_naming_the_format() -> None:
    result = lieflazy.guarded("pe", "PE", "x.dll", _raise, _found, "unparsable")
    assert result.facts is None
    [finding] = result.findings
    assert finding.kind == "error.analyser"
    assert finding.message == "PE analysis failed: ValueError: bad header"
    assert finding.evidence == {"analyser": "pe"}


def test_none_is_malformed_with_the_given_message() -> None:
    result = lieflazy.guarded("elf", "ELF", "a.so", lambda: None, _found, "header truncated")
    assert result.facts is None
    assert [(f.kind, f.message, f.subject) for f in result.findings] == [
        ("error.malformed", "header truncated", "a.so")
    ]


def test_facts_and_findings_pass_through_and_warnings_are_silenced() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the guard would raise here
        result = lieflazy.guarded("macho", "Mach-O", "a", _warn_then_parse, _found, "-")
    assert result.analyser == "macho"
    assert result.facts == 7
    assert [f.message for f in result.findings] == ["facts are 7"]


@pytest.mark.parametrize(
    ("value", "name"),
    [("CHARACTERISTICS.DLL", "DLL"), ("MACHINE_TYPES.AMD64", "AMD64"), ("PLAIN", "PLAIN")],
)
def test_enum_name(value: str, name: str) -> None:
    assert lieflazy.enum_name(value) == name


def test_attr_text_survives_undecodable_and_bytes_names() -> None:
    class Obj:
        raw = b"caf\xc3\xa9\xff"

        @property
        def bad(self) -> str:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    assert lieflazy.attr_text(Obj(), "bad") == "<undecodable>"
    assert lieflazy.attr_text(Obj(), "raw") == "café\ufffd"
