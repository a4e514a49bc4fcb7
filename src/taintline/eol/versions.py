"""Versions against release cycles: which cycle a version belongs to.

A cycle (``7``, ``3.11``, ``22.04``) is a version prefix in the product's own scheme: the
version's components, split at dots, dashes and letter/digit boundaries (``7.17.90p608`` is
``7 17 90 p 608``), must begin with the cycle's components. Numbers compare as numbers
(``22.04`` = ``22.4``); a Debian epoch (``1:``) and a leading ``v`` are dropped. When several
cycles fit (``2`` and ``2.5``) the longest wins. Written by hand: the version libraries
(packaging, semver) each accept one scheme only and refuse the rest (``7.17.90p608``,
``1:2.3-1ubuntu1``), and none knows about cycles.

A version that fits no cycle is ``unknown``, with the reason: newer than every known cycle
(the data may be older than the software: never "supported" by default), less precise than the
cycles (``3`` against ``3.11``), or simply no cycle of that name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Part = int | str

_PARTS = re.compile(r"\d+|[a-z]+")
_EPOCH = re.compile(r"^\d+:")
_LEADING_V = re.compile(r"^v(?=\d)")

#: Why a version got no cycle.
NO_VERSION = "no version"
NEWER = "newer than every known cycle"
COARSE = "version less precise than the product's cycles"
NO_CYCLE = "no matching cycle"


def parts(text: str) -> tuple[Part, ...]:
    """``"1:7.17.90p608"`` -> ``(7, 17, 90, "p", 608)``."""
    lowered = _LEADING_V.sub("", _EPOCH.sub("", text.strip().lower()))
    return tuple(int(p) if p.isdigit() else p for p in _PARTS.findall(lowered))


def _numeric_prefix(items: Sequence[Part]) -> tuple[int, ...]:
    out: list[int] = []
    for item in items:
        if not isinstance(item, int):
            break
        out.append(item)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Resolution:
    cycle: str | None
    #: Empty when a cycle was found, else why not (one of the module constants).
    reason: str = ""


class CycleIndex:
    """The cycles of one product, ready to resolve many versions."""

    def __init__(self, cycles: Iterable[str]) -> None:
        self._cycles = sorted(
            ((parts(c), c) for c in cycles if parts(c)), key=lambda x: (-len(x[0]), x[1])
        )

    def resolve(self, version: str | None) -> Resolution:
        have = parts(version or "")
        if not have:
            return Resolution(None, NO_VERSION)
        for cycle_parts, name in self._cycles:  # longest first
            if have[: len(cycle_parts)] == cycle_parts:
                return Resolution(name)
        if any(cycle_parts[: len(have)] == have for cycle_parts, _ in self._cycles):
            return Resolution(None, COARSE)
        number = _numeric_prefix(have)
        known = [_numeric_prefix(c) for c, _ in self._cycles]
        if number and known and all(k and number[: len(k)] > k for k in known):
            return Resolution(None, NEWER)
        return Resolution(None, NO_CYCLE)
