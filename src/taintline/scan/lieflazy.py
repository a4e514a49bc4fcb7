"""LIEF, imported on first use, and what the PE, ELF and Mach-O analysers share around it.

Importing LIEF costs about 0.85 s of CPU. The scan's parent process only needs the analyser
modules for their facts classes (results coming back from the workers) and for the bundle
analysers, and a worker that sees no executable never needs LIEF at all; so the PE, ELF and
Mach-O analysers import LIEF inside the functions that parse, after calling :func:`ready`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

from taintline.model import Finding, Severity
from taintline.scan.interface import AnalysisResult

Facts = TypeVar("Facts")


@functools.cache
def ready() -> None:
    """Import LIEF once and silence its logging (hostile input makes it chatty)."""
    import lief

    lief.logging.disable()


def attr_text(obj: object, attr: str) -> str:
    """A string attribute of a LIEF object; LIEF raises UnicodeDecodeError for names that are
    not UTF-8 (hostile input), and some names come back as bytes."""
    try:
        value = getattr(obj, attr)
    except UnicodeDecodeError:
        return "<undecodable>"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def enum_name(value: object) -> str:
    """``CHARACTERISTICS.DLL`` -> ``DLL``: the member name of a LIEF enum value."""
    return str(value).rsplit(".", 1)[-1]


def guarded(
    name: str,
    label: str,
    path: str,
    parse: Callable[[], Facts | None],
    findings: Callable[[Facts], Sequence[Finding]],
    unparsable: str,
) -> AnalysisResult:
    """Run an analyser's ``parse`` on hostile input: LIEF's warnings about unknown enum values
    are silenced, an exception is an ``error.analyser`` finding and ``None`` (the magic was
    there, the format was not) an ``error.malformed`` one with the message ``unparsable``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            facts = parse()
    except Exception as exc:  # a parser bug on hostile input must not end the scan
        message = f"{label} analysis failed: {type(exc).__name__}: {exc}"
        error = Finding("error.analyser", Severity.LOW, path, message, evidence={"analyser": name})
        return AnalysisResult(name, None, (error,))
    if facts is None:
        malformed = Finding(
            "error.malformed", Severity.LOW, path, unparsable, evidence={"format": name}
        )
        return AnalysisResult(name, None, (malformed,))
    return AnalysisResult(name, facts, tuple(findings(facts)))
