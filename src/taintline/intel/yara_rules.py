"""YARA: the one module that names namespaces, compiles sources and reads rule names.

The intel reader (``sniff``/``read``) and the scanner (:mod:`taintline.scan.rules`) both
compile through :func:`new_compiler` (the LOKI/THOR external variables declared) and name
namespaces with :func:`namespace_for`. Rule names are taken from the compiled rules, never
from the text: a ``rule x`` inside a ``/* ... */`` comment is not a rule.

YARA rule files are compiled with yara-x on import and stored with their source text.

A file that does not compile adds nothing; its Problem names the file and the line of the
first error. Each rule name also becomes a ``yara`` indicator (so ``intel list`` shows it and
findings can refer to it); the rule text itself lives in the ``yara_sources`` table, and
:func:`taintline.intel.store.load_yara_sources` hands it to the scanner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yara_x

from taintline.intel.interface import ReadResult, YaraSource
from taintline.limits import IntelLimits
from taintline.model import Indicator, IndicatorType

NAME = "yara"

_RULE_BYTES = re.compile(rb"(?m)^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+[A-Za-z_]\w*[\s:{]")
_IMPORT_BYTES = re.compile(rb'(?m)^[ \t]*(?:import|include)[ \t]+"')
_LOCATION = re.compile(r"-->\s*(?:.*?):(\d+):(\d+)")
_EXTENSIONS = frozenset({".yar", ".yara", ".rule", ".rules"})


def sniff(head: bytes, path: Path) -> bool:
    if b"\x00" in head:
        return False
    if _RULE_BYTES.search(head) or _IMPORT_BYTES.search(head):
        return True
    # A file that opens with a long comment block: trust the extension.
    return path.suffix.lower() in _EXTENSIONS and head.lstrip()[:2] in (b"/*", b"//")


#: External variables of LOKI/THOR-style rule sets; the scanner sets them for every file.
EXTERNALS: tuple[str, ...] = ("filename", "filepath", "extension", "filetype", "owner")


def namespace_for(name: str) -> str:
    """A YARA namespace from a file name or stem: lower-case word characters."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower()
    return stem if stem and not stem[0].isdigit() else f"ns_{stem}"


def new_compiler() -> yara_x.Compiler:
    """A yara-x compiler with the external variables declared (as empty strings)."""
    compiler = yara_x.Compiler()
    for name in EXTERNALS:
        compiler.define_global(name, "")
    return compiler


def rule_names(rules: yara_x.Rules) -> tuple[str, ...]:
    """The names of the compiled rules, in source order."""
    return tuple(rule.identifier for rule in rules)


def compile_error(exc: Exception) -> tuple[str, int | None]:
    """(one-line message, line number) from a yara-x compile error."""
    text = str(exc)
    match = _LOCATION.search(text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else "compile error"
    detail = ""
    for ln in lines[1:]:
        stripped = ln.lstrip("|").strip()
        if stripped.startswith(("^", "-")) and not stripped.startswith("-->"):
            detail = stripped.lstrip("^-").strip()
            break
    message = f"{head}: {detail}" if detail else head
    return message, int(match.group(1)) if match else None


def check(text: str, namespace: str, origin: str) -> yara_x.Rules:
    """Compile one source alone; raises ``yara_x.CompileError`` if it does not compile."""
    compiler = new_compiler()
    compiler.new_namespace(namespace)
    compiler.add_source(text, origin=origin)
    return compiler.build()


def compile_sources(sources: Iterable[YaraSource]) -> yara_x.Rules:
    """One ``Rules`` object for many sources, each in its own namespace."""
    compiler = new_compiler()
    for source in sources:
        compiler.new_namespace(source.namespace)
        compiler.add_source(source.text, origin=source.origin)
    return compiler.build()


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    size = path.stat().st_size
    if size > limits.max_yara_bytes:
        return ReadResult.failure(
            NAME,
            item,
            f"{size} bytes is over the {limits.max_yara_bytes}-byte limit for YARA files",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return ReadResult.failure(NAME, item, f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    return read_text(text, item, namespace_for(path.stem), source=path.name)


def read_text(text: str, origin: str, namespace: str, *, source: str) -> ReadResult:
    try:
        compiled = check(text, namespace, origin)
    except yara_x.CompileError as exc:
        message, line = compile_error(exc)
        return ReadResult.failure(NAME, origin, f"YARA does not compile: {message}", line)
    names = rule_names(compiled)
    result = ReadResult(format=NAME)
    result.yara.append(YaraSource(namespace, origin, text, names, source))
    for rule in names:
        result.indicators.append(
            Indicator(
                type=IndicatorType.YARA,
                value=rule,
                source=source,
                description=f"YARA rule {rule} ({namespace})",
                context={"namespace": namespace, "origin": origin},
            )
        )
    return result
