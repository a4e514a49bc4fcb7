"""Propagation rules as data: which stored fact passes compromise to which node, and when.

Every rule says, for one edge kind, whether compromise travels along the edge (``forward``,
source -> destination) or against it (``reverse``), how the edge's times bound that, and a
confidence factor. The engine never looks at edge kinds itself: :func:`taintline.graph.cascade.
compile_arcs` turns edges and this table into arcs ``(from, to, lo, hi, factor)`` and the
propagation is the same for every arc::

    a node compromised at time a passes compromise over an arc if a <= hi,
    and the other end is compromised from max(a, lo)

``lo``/``hi`` come from the edge's ``valid_from``/``valid_until`` (``window``) or are both the
edge's ``valid_from`` (``instant``: a one-off event such as a download or a login, which passes
compromise only if the source was already compromised at that moment). ``docs/cascade.md`` has
the table with the reasoning for each rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from taintline.model import EdgeKind


class Direction(StrEnum):
    FORWARD = "forward"  # source -> destination
    REVERSE = "reverse"  # destination -> source


class Behaviour(StrEnum):
    #: Passes compromise while the relation holds: a <= valid_until; arrival max(a, valid_from).
    WINDOW = "window"
    #: A one-off event at valid_from: passes compromise if a <= valid_from; arrival valid_from.
    INSTANT = "instant"


@dataclass(frozen=True, slots=True)
class Rule:
    edge: EdgeKind
    direction: Direction
    behaviour: Behaviour
    #: Multiplied into the confidence of everything reached over this rule (0 < factor <= 1).
    factor: float
    why: str

    def __post_init__(self) -> None:
        if not 0.0 < self.factor <= 1.0:
            raise ValueError(f"rule factor must be in (0, 1], got {self.factor}")

    @property
    def name(self) -> str:
        return f"{self.edge}/{self.direction}"


#: The default table. Order matters only for tie-breaking between equally good explanations.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        EdgeKind.INSTALLED_ON,
        Direction.FORWARD,
        Behaviour.WINDOW,
        1.0,
        "a compromised artifact/software compromises the host from max(compromise, install)"
        " if the host still had it (compromise <= removal)",
    ),
    Rule(
        EdgeKind.BUILT_ON,
        Direction.REVERSE,
        Behaviour.WINDOW,
        1.0,
        "a compromised host taints every build still running on it (finished >= compromise)"
        " from max(compromise, build start)",
    ),
    Rule(
        EdgeKind.PRODUCED,
        Direction.FORWARD,
        Behaviour.WINDOW,
        1.0,
        "a tainted build taints its outputs from max(taint, build finished)",
    ),
    Rule(
        EdgeKind.USES,
        Direction.REVERSE,
        Behaviour.WINDOW,
        0.9,
        "a tainted build input (material) taints builds that used it while they ran",
    ),
    Rule(
        EdgeKind.CONTAINS,
        Direction.REVERSE,
        Behaviour.WINDOW,
        1.0,
        "a tainted artifact taints every release/package that contains it",
    ),
    Rule(
        EdgeKind.DEPENDS_ON,
        Direction.REVERSE,
        Behaviour.WINDOW,
        0.8,
        "a tainted dependency taints the component that depends on it",
    ),
    Rule(
        EdgeKind.DISTRIBUTED_TO,
        Direction.FORWARD,
        Behaviour.INSTANT,
        1.0,
        "a release/artifact delivered at time d compromises the recipient at d if it was"
        " already tainted at d (earlier deliveries got a clean copy)",
    ),
    Rule(
        EdgeKind.CONNECTED_TO,
        Direction.FORWARD,
        Behaviour.WINDOW,
        0.8,
        "lateral movement: a login/connection from a compromised host compromises the"
        " destination at the connection time (if the source was compromised by then)",
    ),
    Rule(
        EdgeKind.PART_OF,
        Direction.FORWARD,
        Behaviour.WINDOW,
        1.0,
        "an organisation is affected from the first compromise of one of its hosts",
    ),
    Rule(
        EdgeKind.OBSERVED_ON,
        Direction.FORWARD,
        Behaviour.WINDOW,
        0.9,
        "a sighting of an indicator on a host marks the host compromised from the sighting",
    ),
)


def rules_as_rows(rules: tuple[Rule, ...] = DEFAULT_RULES) -> list[dict[str, object]]:
    """The rule table as plain rows (stored with every cascade run, printed in docs)."""
    return [
        {
            "edge": str(r.edge),
            "direction": str(r.direction),
            "behaviour": str(r.behaviour),
            "factor": r.factor,
            "why": r.why,
        }
        for r in rules
    ]
