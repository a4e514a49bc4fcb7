"""The one small interface every intel reader speaks.

A reader is a module with three names (listed in the explicit tuple ``readers.READERS``):

* ``NAME``: a short format name (``stix``, ``misp``, ``csv``, ``yara``, ``endoflife``);
* ``sniff(head: bytes, path: Path) -> bool``: whether the file is in this format, decided
  from its first bytes (the extension only breaks ties);
* ``read(path: Path, limits: IntelLimits) -> ReadResult``: everything the file states.

A file a reader cannot use at all comes back as a failed :class:`ReadResult` (one
:class:`~taintline.errors.Problem`, nothing else), never as an exception that ends the run.
A single bad value (an invalid hash on line 7) is a Problem next to the good values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from taintline.errors import Problem
from taintline.lazy import LazyModule
from taintline.limits import IntelLimits
from taintline.model import Indicator

if TYPE_CHECKING:
    import pyarrow as pa
else:
    pa = LazyModule("pyarrow")


@dataclass(frozen=True, slots=True)
class YaraSource:
    """One YARA file: the namespace its rules compile into, where it came from, its text."""

    namespace: str
    origin: str
    text: str
    rules: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class EolRecord:
    """One release cycle of a product (endoflife.date): when it came out and when support ended.

    ``eol_date`` is ``None`` when the source gives only a flag (``eol: true``) or the cycle is
    still supported (``eol_flag`` is ``False``). ``eoas_*`` is the end of active support
    (endoflife.date's ``eoas``/``support``: bug fixes stop, security fixes go on until
    ``eol``). ``source`` names who published the fact; ``origin`` the file (and record) it was
    read from.
    """

    product: str
    cycle: str
    source: str
    release_date: date | None = None
    eol_date: date | None = None
    eol_flag: bool | None = None
    latest: str | None = None
    description: str | None = None
    eoas_date: date | None = None
    eoas_flag: bool | None = None
    latest_date: date | None = None
    lts: bool | None = None
    origin: str | None = None

    @property
    def key(self) -> str:
        return f"{self.product}:{self.cycle}"


@dataclass(frozen=True, slots=True)
class EolProduct:
    """How to recognise a product in inventories and SBOMs: its names and its identifiers.

    ``names`` holds the product id, its title and aliases as published; ``purls`` package URLs
    without a version (``pkg:maven/org.apache.struts/struts2-core``); ``cpes`` CPE 2.2 or 2.3
    names without a version (``cpe:2.3:a:apache:struts``).
    """

    product: str
    source: str
    title: str | None = None
    names: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    cpes: tuple[str, ...] = ()
    origin: str | None = None


#: Problems (and warnings) kept per file; the counts by reason stay exact beyond it.
MAX_PROBLEMS_KEPT = 100_000


@dataclass(slots=True)
class ReadResult:
    """What one file states. ``failed`` means the file could not be used: nothing from it is
    stored, and ``problems`` says why."""

    format: str
    indicators: list[Indicator] = field(default_factory=list)
    #: Arrow tables with the columns of ``Case.add_indicator_table`` (the fast paths).
    tables: list[pa.Table] = field(default_factory=list)
    yara: list[YaraSource] = field(default_factory=list)
    eol: list[EolRecord] = field(default_factory=list)
    eol_products: list[EolProduct] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Things deliberately not imported, by reason (e.g. ``"stix report objects": 12``).
    skipped: dict[str, int] = field(default_factory=dict)
    #: Values refused, counted by reason class (``"unknown type word 'indicator'": 31``); each
    #: one is also a Problem (up to :data:`MAX_PROBLEMS_KEPT` per file).
    rejected: dict[str, int] = field(default_factory=dict)
    #: Values kept after a correction the source should know about (an IP address in a
    #: ``domain-name`` object, re-typed), one line each.
    warnings: list[Problem] = field(default_factory=list)
    #: Statements kept as context only (MISP ``to_ids: false``): ``intel show`` finds them,
    #: nothing ever matches on them.
    context_only: list[Indicator] = field(default_factory=list)
    failed: bool = False

    @classmethod
    def failure(cls, fmt: str, item: str, message: str, line: int | None = None) -> ReadResult:
        return cls(format=fmt, problems=[Problem(item, message, line)], failed=True)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def reject(self, item: str, reason: str, detail: str = "", line: int | None = None) -> None:
        """Count one refused value under its reason class (and keep it as a Problem)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(Problem(item, f"{reason}: {detail}" if detail else reason, line))

    def warn(self, item: str, message: str, line: int | None = None) -> None:
        if len(self.warnings) < MAX_PROBLEMS_KEPT:
            self.warnings.append(Problem(item, message, line))

    @property
    def statement_count(self) -> int:
        return len(self.indicators) + sum(int(t.num_rows) for t in self.tables)

    @property
    def nothing_read(self) -> bool:
        """Whether the file stated nothing at all taintline could use."""
        return not (
            self.statement_count
            or self.yara
            or self.eol
            or self.eol_products
            or self.context_only
            or self.failed
        )


def load_json(path: Path, fmt: str, limits: IntelLimits) -> Any:
    """The parsed JSON document of a reader that needs the whole file (MISP, endoflife.date),
    or the failed :class:`ReadResult` that says why not (over ``max_json_bytes``, not JSON):
    callers check ``isinstance(doc, ReadResult)`` first."""
    import orjson

    size = path.stat().st_size
    if size > limits.max_json_bytes:
        return ReadResult.failure(
            fmt, str(path), f"{size} bytes is over the {limits.max_json_bytes}-byte JSON limit"
        )
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return ReadResult.failure(fmt, str(path), f"invalid JSON ({exc}); truncated?")


class Reader(Protocol):
    """The shape of a reader module (checked by mypy where ``READERS`` is declared)."""

    NAME: str

    def sniff(self, head: bytes, path: Path) -> bool: ...

    def read(self, path: Path, limits: IntelLimits) -> ReadResult: ...
