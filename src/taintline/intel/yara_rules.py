"""YARA rule files: compiled with yara-x on import, as the scan compiles them, and stored.

* Rule sets written for LOKI/THOR use the external variables ``filename``, ``filepath``,
  ``extension``, ``filetype`` and ``owner``: :func:`new_compiler` declares them (and the
  relaxed regular-expression syntax libyara accepts) for the import check **and** for the scan
  (:mod:`taintline.scan.rules` uses the same function), so a file that compiles at scan time
  compiles on import and the other way round.
* ``include "other.yar"`` is resolved the way libyara resolves it (relative to the including
  file), within the including file's folder, and the included text is stored inline: the
  stored source is self-contained. A compile error names the original file and line.
* Rule names come from the compiled rules (``yara_x.Rules``), not from a text pattern.

A file that does not compile adds nothing; its Problem names the file and the line of the
first error. Each rule name also becomes a ``yara`` indicator (so ``intel list`` shows it and
findings can refer to it); the rule text itself lives in the ``yara_sources`` table, and
:func:`taintline.intel.store.load_yara_sources` hands it to the scanner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

from taintline.intel.interface import ReadResult, YaraSource
from taintline.lazy import LazyModule
from taintline.limits import IntelLimits
from taintline.model import Indicator, IndicatorType

if TYPE_CHECKING:
    import yara_x
else:
    # compiling and scanning only: a re-scan that reads no file never needs it
    yara_x = LazyModule("yara_x")

NAME = "yara"

#: External variables LOKI/THOR-style rules use; declared (as empty strings) whenever rules are
#: compiled, set per file at scan time (:class:`taintline.scan.rules.RuleScanner`).
EXTERNALS: tuple[str, ...] = ("filename", "filepath", "extension", "filetype", "owner")
#: Nested ``include`` depth accepted.
MAX_INCLUDE_DEPTH = 16

_RULE = re.compile(r"(?m)^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+([A-Za-z_][A-Za-z0-9_]*)")
_RULE_BYTES = re.compile(rb"(?m)^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+[A-Za-z_]\w*[\s:{]")
_IMPORT_BYTES = re.compile(rb'(?m)^[ \t]*(?:import|include)[ \t]+"')
_INCLUDE = re.compile(r'^[ \t]*include[ \t]+"(?P<target>[^"\n]+)"[ \t]*(?://.*)?$')
_LOCATION = re.compile(r"-->\s*(?:.*?):(\d+):(\d+)")
_EXTENSIONS = frozenset({".yar", ".yara", ".rule", ".rules"})


def new_compiler() -> yara_x.Compiler:
    """A yara-x compiler set up as taintline compiles every rule set: the LOKI/THOR externals
    declared, libyara's relaxed regex syntax accepted, ``include`` refused (sources reaching
    the compiler are self-contained, see :func:`flatten`)."""
    compiler = yara_x.Compiler(relaxed_re_syntax=True, includes_enabled=False)
    for name in EXTERNALS:
        compiler.define_global(name, "")
    return compiler


def sniff(head: bytes, path: Path) -> bool:
    if b"\x00" in head:
        return False
    if _RULE_BYTES.search(head) or _IMPORT_BYTES.search(head):
        return True
    # A file that opens with a long comment block: trust the extension.
    return path.suffix.lower() in _EXTENSIONS and head.lstrip()[:2] in (b"/*", b"//")


def namespace_for(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower()
    return stem if stem and not stem[0].isdigit() else f"ns_{stem}"


def rule_names(text: str) -> tuple[str, ...]:
    """Rule names by a text pattern (only a fallback for sources that were never compiled)."""
    return tuple(_RULE.findall(text))


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


def check(text: str, namespace: str, origin: str) -> tuple[str, ...]:
    """Compile one source alone; the names of its rules, as compiled. Raises
    ``yara_x.CompileError`` if it does not compile."""
    compiler = new_compiler()
    compiler.new_namespace(namespace)
    compiler.add_source(text, origin=origin)
    return tuple(rule.identifier for rule in compiler.build())


def compile_sources(sources: Iterable[YaraSource]) -> yara_x.Rules:
    """One ``Rules`` object for many sources, each in its own namespace."""
    compiler = new_compiler()
    for source in sources:
        compiler.new_namespace(source.namespace)
        compiler.add_source(source.text, origin=source.origin)
    return compiler.build()


class IncludeError(ValueError):
    """An ``include`` that cannot be followed: (file, line, message)."""

    def __init__(self, origin: str, line: int, message: str) -> None:
        super().__init__(message)
        self.origin = origin
        self.line = line


@dataclass(frozen=True, slots=True)
class Flattened:
    """A rule file with its includes inlined, and where each of its lines came from."""

    text: str
    #: (file, line in that file) for every line of ``text``.
    origins: tuple[tuple[str, int], ...]

    def where(self, line: int | None) -> tuple[str, int | None] | None:
        if line is None or not 1 <= line <= len(self.origins):
            return None
        return self.origins[line - 1]


def flatten(path: Path, limits: IntelLimits) -> Flattened:
    """``path``'s text with every ``include`` replaced by the included file's text.

    Includes are resolved relative to the including file (as libyara does) and must stay in
    the top file's folder (a rule file cannot pull ``/etc/passwd`` into the case); cycles,
    depth over :data:`MAX_INCLUDE_DEPTH` and a total over ``limits.max_yara_bytes`` are
    refused. Written by hand because yara-x resolves includes against a search path, not
    against the including file, and stores nothing of them.
    """
    root = path.resolve().parent
    lines: list[str] = []
    origins: list[tuple[str, int]] = []
    total = 0

    def add(current: Path, shown: str, stack: tuple[Path, ...]) -> None:
        nonlocal total
        data = current.read_bytes()
        total += len(data)
        if total > limits.max_yara_bytes:
            raise IncludeError(shown, 1, f"rules with includes over {limits.max_yara_bytes} bytes")
        if b"\x00" in data:
            raise IncludeError(shown, 1, "binary data (compiled rules?), not YARA source text")
        # libyara takes any bytes; yara-x takes text: bytes that are not UTF-8 (a Latin-1
        # comment, as some published rule files have) become U+FFFD.
        text = data.decode("utf-8", errors="replace")
        if "include" not in text:  # most rule files: no line to look at one by one
            split = text.splitlines()
            lines.extend(split)
            origins.extend(zip(repeat(shown), range(1, len(split) + 1), strict=False))
            return
        for number, line in enumerate(text.splitlines(), start=1):
            match = _INCLUDE.match(line)
            if match is None:
                lines.append(line)
                origins.append((shown, number))
                continue
            target = (current.parent / match.group("target")).resolve()
            name = match.group("target")
            if not target.is_relative_to(root):
                raise IncludeError(shown, number, f"include {name!r} outside the rule folder")
            if target in stack:
                raise IncludeError(shown, number, f"include {name!r} is a cycle")
            if len(stack) >= MAX_INCLUDE_DEPTH:
                raise IncludeError(shown, number, f"includes nested over {MAX_INCLUDE_DEPTH} deep")
            if not target.is_file():
                raise IncludeError(shown, number, f"included file {name!r} not found")
            lines.append(f"// taintline: include {name}")
            origins.append((shown, number))
            add(target, str(target), (*stack, target))

    add(path, str(path), (path.resolve(),))
    return Flattened("\n".join(lines) + "\n", tuple(origins))


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
        flat = flatten(path, limits)
    except IncludeError as exc:
        return ReadResult.failure(NAME, exc.origin, f"YARA include refused: {exc}", exc.line)
    return read_text(flat.text, item, namespace_for(path.stem), source=path.name, flat=flat)


def read_text(
    text: str, origin: str, namespace: str, *, source: str, flat: Flattened | None = None
) -> ReadResult:
    try:
        names = check(text, namespace, origin)
    except yara_x.CompileError as exc:
        message, line = compile_error(exc)
        where = flat.where(line) if flat is not None else None
        if where is not None:
            origin, line = where
        return ReadResult.failure(NAME, origin, f"YARA does not compile: {message}", line)
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
