"""YARA with yara-x: compile once in the parent, ship the serialised rules to every worker.

Rule sets written for LOKI/THOR-style scanners use the external variables ``filename``,
``filepath``, ``extension``, ``filetype`` and ``owner``; they are declared (as empty strings)
before any source is added and set for every file scanned. ``extension`` is lower-case with
its dot (``.exe``), ``filetype`` an upper-case magic-based type (``EXE``, ``ZIP``...; see
:func:`taintline.scan.walk.filetype`), ``owner`` the file owner's user name.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import orjson

from taintline.cachedir import cache_dir
from taintline.errors import InputError, Problem
from taintline.lazy import LazyModule
from taintline.limits import IntelLimits
from taintline.model import Finding, Severity

if TYPE_CHECKING:
    import yara_x

    from taintline.case import Case
else:
    # compiling and scanning only: a re-scan that reads no file never needs it
    yara_x = LazyModule("yara_x")


#: Matches kept per pattern by the scanner, and offsets reported per pattern in a finding.
MAX_MATCHES_PER_PATTERN = 1000
MAX_OFFSETS_REPORTED = 10
MAX_PATTERNS_REPORTED = 32


@dataclass(frozen=True, slots=True)
class RuleSource:
    """One YARA source: where it came from (shown in errors) and its text."""

    origin: str
    text: str
    namespace: str = "default"


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """Serialised rules (``None`` when there are no rules) and what could not be compiled."""

    data: bytes | None
    count: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)


_NS_CLEAN = re.compile(r"[^A-Za-z0-9_]")


def namespace_for(origin: str) -> str:
    stem = PurePosixPath(origin.replace("\\", "/")).name.split(".", 1)[0] or "rules"
    name = _NS_CLEAN.sub("_", stem)
    return name if name[:1].isalpha() or name[:1] == "_" else f"r_{name}"


def read_rule_files(paths: Sequence[Path], limits: IntelLimits | None = None) -> list[RuleSource]:
    """YARA sources from ``--rules`` files; an unreadable or oversized file is an input error."""
    # imported here: the intel package pulls in pyarrow, which a scan worker (it only needs
    # RuleScanner) would otherwise import for nothing, about 0.2 s per worker
    from taintline.intel.yara_rules import IncludeError, flatten

    limits = limits or IntelLimits()
    sources: list[RuleSource] = []
    for path in paths:
        try:
            size = path.stat().st_size
            if size > limits.max_yara_bytes:
                raise InputError(str(path), f"YARA file larger than {limits.max_yara_bytes} bytes")
            text = flatten(path, limits).text  # includes inlined, as on import
        except OSError as exc:
            raise InputError(str(path), f"cannot read rules: {exc.strerror or exc}") from exc
        except IncludeError as exc:
            raise InputError(f"{exc.origin}:{exc.line}", f"YARA include refused: {exc}") from exc
        sources.append(RuleSource(str(path), text, namespace_for(str(path))))
    return sources


def case_rule_sources(case: Case) -> list[RuleSource]:
    """YARA sources the case holds (added by ``taintline intel``), each in its namespace, in
    the order they were added (as :func:`taintline.intel.store.load_yara_sources` reads them;
    queried here, as every scan asks, without importing the intel store)."""
    rows = case.con.execute(
        "SELECT namespace, origin, text FROM yara_sources ORDER BY added_at, namespace"
    ).fetchall()
    return [
        RuleSource(str(origin), str(text), namespace_for(namespace or origin))
        for namespace, origin, text in rows
    ]


def compile_rules(sources: Iterable[RuleSource], *, strict: Sequence[str] = ()) -> CompiledRules:
    """Compile every source into one rule set, each in its own namespace.

    A source that does not compile is left out with a :class:`Problem` (the others still
    work), unless its origin is in ``strict`` (the user's ``--rules`` files), which raises
    :class:`InputError`.

    The compiled rules are kept in the user's cache folder (:func:`rules_cache_dir`), keyed
    by the sources, ``strict`` and yara-x's version: a scan with the same rules as an earlier
    one does not compile them again (1,000 rules: about 0.25 s before any worker can start).
    """
    sources = list(sources)
    key = _compile_key(sources, strict)
    cached = _cache_read(key)
    if cached is not None:
        return cached
    compiled = _compile(sources, strict)
    _cache_write(key, compiled)
    return compiled


def rules_cache_dir() -> Path:
    """Where compiled rules are kept (:func:`taintline.cachedir.cache_dir`)."""
    return cache_dir("rules")


#: Compiled rule sets kept; the least recently used beyond these are deleted.
RULES_CACHE_ENTRIES = 8
_CACHE_MAGIC = b"taintline-rules-1\n"


def _compile_key(sources: Sequence[RuleSource], strict: Sequence[str]) -> str:
    from taintline.scan.reuse import yara_version

    h = hashlib.sha256()
    for part in (yara_version(), *sorted(strict)):
        h.update(part.encode("utf-8", "surrogateescape") + b"\x00")
    for source in sources:
        for part in (source.namespace, source.origin, source.text):
            data = part.encode("utf-8", "surrogateescape")
            h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _cache_read(key: str) -> CompiledRules | None:
    """The cached compilation of ``key``; None when absent, unreadable or not intact (a
    cache file is checked against its own digest before it is used)."""
    path = rules_cache_dir() / f"{key}.bin"
    try:
        blob = path.read_bytes()
        head, _, rest = blob.partition(b"\n\n")
        meta = orjson.loads(head[len(_CACHE_MAGIC) :]) if head.startswith(_CACHE_MAGIC) else None
        if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(rest).hexdigest():
            return None
        problems = tuple(
            Problem(str(p[0]), str(p[1]), p[2] if isinstance(p[2], int) else None)
            for p in meta.get("problems", [])
        )
        os.utime(path)  # recently used
        return CompiledRules(rest or None, int(meta.get("count", 0)), problems)
    except (OSError, ValueError, TypeError, IndexError, orjson.JSONDecodeError):
        return None


def _cache_write(key: str, compiled: CompiledRules) -> None:
    """Keep ``compiled`` (written to a temporary file, then renamed: a reader never sees
    half of it); a cache that cannot be written is no error."""
    folder = rules_cache_dir()
    data = compiled.data or b""
    meta = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "count": compiled.count,
        "problems": [[p.item, p.message, p.line] for p in compiled.problems],
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as out:
            out.write(_CACHE_MAGIC + orjson.dumps(meta) + b"\n\n" + data)
        Path(out.name).replace(folder / f"{key}.bin")
        entries = sorted(folder.glob("*.bin"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[RULES_CACHE_ENTRIES:]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def _compile(sources: Sequence[RuleSource], strict: Sequence[str]) -> CompiledRules:
    from taintline.intel.yara_rules import new_compiler

    compiler = new_compiler()  # the externals and options the import check uses too
    problems: list[Problem] = []
    added = 0
    used_namespaces: dict[str, int] = {}
    for source in sources:
        base = source.namespace
        used_namespaces[base] = used_namespaces.get(base, 0) + 1
        namespace = base if used_namespaces[base] == 1 else f"{base}_{used_namespaces[base]}"
        compiler.new_namespace(namespace)
        try:
            compiler.add_source(source.text, origin=source.origin)
        except yara_x.CompileError as exc:
            if source.origin in strict:
                raise InputError(source.origin, f"YARA rules do not compile: {exc}") from exc
            problems.append(Problem(source.origin, f"YARA rules left out: {exc}"))
            continue
        added += 1
    if not added:
        return CompiledRules(None, 0, tuple(problems))
    rules = compiler.build()
    count = sum(1 for _ in rules)
    buffer = io.BytesIO()
    rules.serialize_into(buffer)
    return CompiledRules(buffer.getvalue(), count, tuple(problems))


def _severity(meta: dict[str, Any]) -> Severity:
    """From the rule's metadata: ``severity`` if it names one, else a THOR-style ``score``."""
    text = meta.get("severity")
    if isinstance(text, str):
        try:
            return Severity(text.lower())
        except ValueError:
            pass
    score = meta.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        if score >= 80:
            return Severity.HIGH
        if score >= 60:
            return Severity.MEDIUM
        return Severity.LOW
    return Severity.HIGH


def extension_of(name: str) -> str:
    """``PurePosixPath(name).suffix``, lower-case; without building a path for a plain name
    (called for every file and member)."""
    if "/" in name or name in ("", ".", ".."):
        return PurePosixPath(name).suffix.lower()
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


class RuleScanner:
    """One per worker process: a yara-x scanner over the deserialised rules."""

    def __init__(self, data: bytes, timeout_s: int) -> None:
        self.rules = yara_x.Rules.deserialize_from(io.BytesIO(data))
        self.scanner = yara_x.Scanner(self.rules)
        self.scanner.set_timeout(max(int(timeout_s), 1))
        self.scanner.max_matches_per_pattern(MAX_MATCHES_PER_PATTERN)
        #: the externals last set on the scanner (set again only when they change: the owner
        #: and often the type are the same for every member of a container, the extension
        #: for most of them; compared inline, this runs for every buffer)
        self._name: str | None = None
        self._path: str | None = None
        self._extension: str | None = None
        self._filetype: str | None = None
        self._owner: str | None = None

    def scan(
        self, data: bytes, *, subject: str, name: str, filetype: str, owner: str
    ) -> list[Finding]:
        scanner = self.scanner
        if name != self._name:
            scanner.set_global("filename", name)
            self._name = name
            extension = extension_of(name)
            if extension != self._extension:
                scanner.set_global("extension", extension)
                self._extension = extension
        if subject != self._path:
            scanner.set_global("filepath", subject)
            self._path = subject
        if filetype != self._filetype:
            scanner.set_global("filetype", filetype)
            self._filetype = filetype
        if owner != self._owner:
            scanner.set_global("owner", owner)
            self._owner = owner
        try:
            results = scanner.scan(data)
        except yara_x.TimeoutError:
            return [
                Finding(
                    kind="error.yara-timeout",
                    severity=Severity.LOW,
                    subject=subject,
                    message="YARA scan timed out; rules not fully evaluated for this file",
                )
            ]
        except yara_x.ScanError as exc:
            return [
                Finding(
                    kind="error.yara",
                    severity=Severity.LOW,
                    subject=subject,
                    message=f"YARA scan failed: {exc}",
                )
            ]
        return [_rule_finding(rule, subject) for rule in results.matching_rules]


def _rule_finding(rule: Any, subject: str) -> Finding:
    meta: dict[str, Any] = {}
    for key, value in rule.metadata:
        meta[str(key)] = value.hex() if isinstance(value, bytes) else value
    strings: list[dict[str, Any]] = []
    for pattern in rule.patterns:
        matches = pattern.matches
        if not matches:
            continue
        if len(strings) < MAX_PATTERNS_REPORTED:
            strings.append(
                {
                    "id": pattern.identifier,
                    "count": len(matches),
                    "offsets": [m.offset for m in matches[:MAX_OFFSETS_REPORTED]],
                }
            )
    qualified = f"{rule.namespace}.{rule.identifier}"
    description = meta.get("description")
    message = f"YARA rule {qualified} matched"
    if isinstance(description, str) and description:
        message += f": {description}"
    return Finding(
        kind="yara",
        severity=_severity(meta),
        subject=subject,
        message=message,
        evidence={
            "rule": rule.identifier,
            "namespace": rule.namespace,
            "tags": list(rule.tags),
            "meta": meta,
            "strings": strings,
        },
        indicators=(f"yara:{rule.identifier}",),
    )
