from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What a renderer may need besides the findings."""

    #: The command that produced the findings (``scan``, ``hunt``), for SARIF's run/tool info.
    command: str = "taintline"
    #: A title for human-readable formats.
    title: str = "taintline findings"
    #: The inputs given to the command (SARIF artifacts / invocation).
    inputs: tuple[str, ...] = ()
    #: Extra columns for the table renderer, as evidence keys.
    extra_columns: tuple[str, ...] = field(default_factory=tuple)
    #: Force a terminal width (tests); ``None`` lets rich decide.
    width: int | None = None
