"""Core records shared by every stage. Frozen, slotted, typed; no I/O here.

Times are timezone-aware UTC ``datetime`` values (naive values are refused by :func:`utc`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

JSONValue = Any
"""A JSON-serialisable value (kept loose on purpose: evidence is small free-form data)."""


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` suffix allowed) into UTC."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return utc(datetime.fromisoformat(text))


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` suffix, or ``None``."""
    if value is None:
        return None
    return utc(value).isoformat().replace("+00:00", "Z")


class IndicatorType(StrEnum):
    SHA256 = "sha256"
    SHA1 = "sha1"
    MD5 = "md5"
    DOMAIN = "domain"
    URL = "url"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    EMAIL = "email"
    FILENAME = "filename"
    #: A regular expression (RE2 syntax, case-sensitive) matched against scanned paths, as
    #: LOKI/THOR ``filename-iocs`` lists write them; never compared as a literal name.
    FILENAME_REGEX = "filename-regex"
    CERT_SERIAL = "cert_serial"
    CERT_THUMBPRINT = "cert_thumbprint"
    SIGNER = "signer"
    YARA = "yara"
    #: A STIX pattern that is not a single comparison (AND/OR across observations); kept whole.
    PATTERN = "pattern"
    #: An end-of-life record: value is ``product:cycle``.
    EOL = "eol"


HASH_TYPES = frozenset({IndicatorType.SHA256, IndicatorType.SHA1, IndicatorType.MD5})


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator as stated by one source.

    The case store keeps one indicator per ``(type, value)`` and one row per source that
    stated it, so the same hash from two reports is one indicator with two sources.
    """

    type: IndicatorType
    value: str
    source: str
    campaign: str | None = None
    confidence: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    description: str | None = None
    labels: tuple[str, ...] = ()
    context: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.type}:{self.value}"


class FindingSource(StrEnum):
    INTEL = "intel"
    SCAN = "scan"
    RELEASE = "release"
    HUNT = "hunt"
    GRAPH = "graph"
    CASCADE = "cascade"
    IMPORT = "import"
    EOL = "eol"


@dataclass(frozen=True, slots=True)
class Finding:
    """Something worth a defender's attention, or an ``error.*`` about one item.

    ``kind`` is a stable code from the catalogue in ``docs/findings.md`` (for example
    ``ioc.hash``, ``yara``, ``signature.appended-data``, ``image.trailing-data``,
    ``network.ioc``, ``error.archive-bomb``). ``subject`` names what it is about: a path
    inside containers (``setup.msi!/files.cab!/ffmpeg.dll``), an artifact sha256, a host.
    """

    kind: str
    severity: Severity
    subject: str
    message: str
    source: FindingSource = FindingSource.SCAN
    host: str | None = None
    time: datetime | None = None
    evidence: Mapping[str, JSONValue] = field(default_factory=dict)
    indicators: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """A stable identity: the same fact found twice (or on two machines) merges."""
        material = "\x1f".join(
            (
                self.kind,
                self.subject,
                self.host or "",
                self.source,
                ",".join(sorted(self.indicators)),
            )
        )
        return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class NodeKind(StrEnum):
    ORG = "org"
    HOST = "host"
    SOFTWARE = "software"
    ARTIFACT = "artifact"
    BUILD = "build"
    RELEASE = "release"
    INDICATOR = "indicator"
    ACCOUNT = "account"


class EdgeKind(StrEnum):
    INSTALLED_ON = "installed_on"  # software/artifact -> host
    BUILT_ON = "built_on"  # build -> host
    PRODUCED = "produced"  # build -> artifact
    CONTAINS = "contains"  # release/artifact -> artifact (also SBOM component inclusion)
    DEPENDS_ON = "depends_on"  # component -> component (SBOM dependency)
    DISTRIBUTED_TO = "distributed_to"  # release/artifact -> org/host
    PART_OF = "part_of"  # host -> org
    CONNECTED_TO = "connected_to"  # host -> host (authentication, lateral movement)
    OBSERVED_ON = "observed_on"  # indicator -> host (a sighting)
    USES = "uses"  # build -> artifact (build input / material)


@dataclass(frozen=True, slots=True)
class NodeRef:
    kind: NodeKind
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> NodeRef:
        kind, sep, key = text.partition(":")
        if not sep or not key:
            raise ValueError(f"expected KIND:KEY, got {text!r}")
        return cls(NodeKind(kind), key)


@dataclass(frozen=True, slots=True)
class Node:
    kind: NodeKind
    key: str
    attrs: Mapping[str, JSONValue] = field(default_factory=dict)

    @property
    def ref(self) -> NodeRef:
        return NodeRef(self.kind, self.key)


@dataclass(frozen=True, slots=True)
class Edge:
    """A time-bounded fact between two nodes, with where the fact came from.

    ``valid_from``/``valid_until`` bound when the relation held (event time; ``None`` means
    unbounded); ``recorded_at`` is when taintline learned it.
    """

    kind: EdgeKind
    src: NodeRef
    dst: NodeRef
    source: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    recorded_at: datetime | None = None
    confidence: float = 1.0
    attrs: Mapping[str, JSONValue] = field(default_factory=dict)
