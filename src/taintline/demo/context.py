"""What a demo stage gets and gives back. Each module of ``taintline.demo`` has a
``stage(ctx) -> StageResult`` function; ``taintline.demo`` runs them in story order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from taintline.case import Case


@dataclass(slots=True)
class DemoContext:
    workdir: Path
    case: Case
    console: Console
    #: Facts one stage leaves for later stages (e.g. paths of generated files).
    shared: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class StageResult:
    title: str
    lines: tuple[str, ...]
    findings: int = 0
