"""The graph-reader contract (GUAC-style: detect -> parse -> neutral nodes and edges).

A reader looks at the first bytes of a file to say whether it is its format, then turns the
file into :class:`GraphFacts`: typed nodes and time-bounded edges, each edge carrying its
source (the file and record), its event time (``valid_from``/``valid_until``) and the time it
was recorded. A record it cannot use is a :class:`~taintline.errors.Problem`; the rest of the
file is still read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from taintline.errors import Problem
from taintline.model import Edge, Node


@dataclass(frozen=True, slots=True)
class ReadContext:
    #: When the facts were recorded (the time of ``graph add``).
    recorded_at: datetime
    #: Host the file describes when the file itself does not say (``osqueryi --json``).
    host: str | None = None


@dataclass(slots=True)
class GraphFacts:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Deviations from the format's spec read through (one per kind): shown, not failures.
    warnings: list[Problem] = field(default_factory=list)


class GraphReader(ABC):
    #: Stable format name shown to users (``graph add --format NAME`` forces it).
    name: ClassVar[str]

    @abstractmethod
    def sniff(self, head: bytes) -> bool:
        """Whether ``head`` (the first bytes of a file) looks like this reader's format."""

    @abstractmethod
    def read(self, path: Path, data: bytes, ctx: ReadContext) -> GraphFacts:
        """Parse the whole file (``data`` is its content) into nodes and edges."""
