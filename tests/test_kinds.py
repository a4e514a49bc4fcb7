"""The finding-kind catalogue (``taintline.kinds.Kind``) against the code and the docs.

Every kind the code emits must be in the catalogue, and the docs' kind tables must list exactly
the catalogue's kinds with the catalogue's default severity. Each failure says what to add where.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from taintline.kinds import Kind, error_finding, kind_of, severity_of
from taintline.model import Finding, Severity

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "taintline"
DOCS = ROOT / "docs"

#: Families of kind codes; a dotted string literal in one of them is taken as a kind. New
#: families (``release.``, ``software.``...) are listed before their first kind lands.
FAMILIES = {code.split(".")[0] for code in Kind} | {"release", "software", "eol", "verify"}
#: Dotted literals in a kind family that are not kinds, with the reason.
NOT_KINDS = {
    "network.transport": "a Zeek conn.log field name (hunt/readers/fields.py)",
    **dict.fromkeys(
        "pe.timestamp pe.checksum pe.debug pe.signature elf.build-id macho.uuid macho.signature".split(),
        "a field normalised before comparing two builds (scan/reproducible.py)",
    ),
}
#: Calls whose first argument (or ``kind=``) is a finding kind.
KIND_CALLS = {"Finding", "error_finding", "LimitExceeded", "add"}
_SEVERITY_WORD = re.compile(r"\b(info|low|medium|high|critical)\b")


def _hint(code: str, severity: str = "Severity.?") -> str:
    name = re.sub(r"[^A-Z0-9]+", "_", code.upper())
    return f'add to Kind in src/taintline/kinds.py: {name} = ("{code}", {severity}, "<meaning>")'


def _emitted() -> dict[str, list[str]]:
    """Kind codes written in ``src/`` as string literals, with where."""
    names = "|".join(sorted(FAMILIES))
    family = re.compile(r"^(" + names + r")\.[a-z0-9][a-z0-9.-]*$")
    out: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            literals: list[ast.expr] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if family.match(node.value) and node.value not in NOT_KINDS:
                    literals.append(node)
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name in KIND_CALLS:
                    first = node.args[0] if node.args else None
                    # ``add`` is also a set's method (``out.add("::")``): only a dotted code counts.
                    plain = name != "add" or (
                        isinstance(first, ast.Constant)
                        and isinstance(first.value, str)
                        and "." in first.value
                    )
                    if first is not None and plain:
                        literals.append(first)
                    literals += [kw.value for kw in node.keywords if kw.arg == "kind"]
            for lit in literals:
                if isinstance(lit, ast.Constant) and isinstance(lit.value, str):
                    out.setdefault(lit.value, []).append(f"{where}:{lit.lineno}")
    return out


def _documented() -> list[tuple[str, str, str | None]]:
    """Rows of the docs' kind tables: (code, file, stated default severity or None).

    A kind may be described in two stages' tables (``error.malformed`` in scan and analysers).
    """
    out: list[tuple[str, str, str | None]] = []
    for path in sorted(DOCS.glob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|") or cells[0] != "kind":
                continue
            sev_col = cells.index("severity") if "severity" in cells else None
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            # A table without a severity column may state one for all rows right below it.
            after = " ".join(lines[j : j + 3])
            common = re.search(r"All are severity `(\w+)`", after)
            for row in rows:
                code = re.match(r"`([^`]+)`", row[0])
                assert code, f"{path.name}: kind cell without a `code`: {row[0]!r}"
                stated: str | None = None
                if sev_col is not None:
                    word = _SEVERITY_WORD.search(row[sev_col])
                    stated = word.group(1) if word else None
                elif "(" in row[0]:
                    word = _SEVERITY_WORD.search(row[0])
                    stated = word.group(1) if word else None
                elif common:
                    stated = common.group(1)
                out.append((code.group(1), path.name, stated))
    return out


def test_every_kind_emitted_in_src_is_in_the_catalogue() -> None:
    emitted = _emitted()
    assert emitted, "the scan of src/ found no kinds at all: the test is broken"
    missing = {code: where for code, where in emitted.items() if code not in set(Kind)}
    assert not missing, "\n".join(
        f"{code} (emitted at {', '.join(where)}): {_hint(code)}" for code, where in missing.items()
    )


def test_docs_kind_tables_match_the_catalogue() -> None:
    documented = _documented()
    problems = []
    for code, doc, stated in documented:
        if code not in set(Kind):
            sev = f"Severity.{stated.upper()}" if stated else "Severity.?"
            problems.append(f"{code} is in docs/{doc} but not in the catalogue: {_hint(code, sev)}")
        elif stated is None:
            problems.append(
                f"{code}: docs/{doc} states no severity (catalogue: {kind_of(code).severity})"
            )
        elif stated != kind_of(code).severity:
            problems.append(
                f"{code}: docs/{doc} says {stated}, Kind says {kind_of(code).severity}:"
                " make them agree (the catalogue holds the default severity)"
            )
    for member in Kind:
        if member.value not in {code for code, _, _ in documented}:
            problems.append(
                f"{member.value} is in the catalogue but in no docs kind table: add a row"
                f" | `{member.value}` | {member.severity} | {member.meaning} | ... | to the"
                " stage's table (docs/scan.md, analysers.md, hunt.md, cascade.md ...)"
            )
    assert not problems, "\n".join(problems)


def test_catalogue_codes_are_unique_and_well_formed() -> None:
    assert len({m.value for m in Kind}) == len(Kind)
    for member in Kind:
        assert re.fullmatch(r"[a-z0-9]+(\.[a-z0-9-]+)*", member.value), member.value
        assert isinstance(member.severity, Severity)
        assert member.meaning, member.name


def test_severity_lookup_uses_the_catalogue() -> None:
    # error.internal was missing from the old table and silently got "low" by default.
    assert severity_of("error.internal") is Kind.ERROR_INTERNAL.severity
    assert error_finding("error.archive-bomb", "x", "m").severity is Severity.MEDIUM
    assert error_finding(Kind.ERROR_NOT_REGULAR, "x", "m").severity is Severity.INFO
    with pytest.raises(ValueError, match=r"not in the catalogue: add it to Kind"):
        severity_of("error.made-up")


def test_a_kind_is_a_plain_string_in_findings() -> None:
    finding = Finding(Kind.IOC_HASH, Kind.IOC_HASH.severity, "a.dll", "m")
    assert finding.kind == "ioc.hash"
    assert f"{finding.kind}" == "ioc.hash"
