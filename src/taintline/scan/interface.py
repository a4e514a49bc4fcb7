"""The contract between the scan engine (walk, hashes, rules, workers) and the analysers.

An analyser is a module with pure functions: from one file's bytes (and where it sits) to a
typed, frozen record of facts, and from those facts to findings. The engine reads each file
once and hands the same buffer to the hashes, the YARA scanner and every analyser whose
``applies`` says yes. Facts are kept in the case (``file_facts`` table) so that release
verification can compare a known-good and a candidate release.

Analysers never import the engine, the CLI or each other; bundle-level checks (an Electron app
and the native libraries beside it) see the facts of every file in the bundle through
:class:`BundleAnalyser`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import PurePosixPath
from typing import Any, Protocol

from taintline.model import Finding
from taintline.scan.magic import FileType, sniff


def display_name(display: str) -> str:
    """The base name of a file on disk from its display path (``\\`` read as ``/``), as
    :class:`pathlib.PurePosixPath` gives it, without building a path object per file (0.3 s
    of a 9,177-file scan under the profiler)."""
    text = display.replace("\\", "/")
    tail = text.rpartition("/")[2]
    if tail and tail not in (".", ".."):
        return tail
    return PurePosixPath(text).name or display


@dataclass(frozen=True, slots=True)
class FileItem:
    """One file or container member, read once.

    ``path`` is the display path through containers (``setup.msi!/files.cab!/ffmpeg.dll``);
    ``name`` its base name; ``top`` the top-level input it came from. ``filetype`` is the
    magic table's answer when the engine already asked it (``sniffed``): analysers call
    :meth:`kind` instead of sniffing the same bytes again.
    """

    path: str
    name: str
    data: bytes
    top: str
    depth: int = 0
    sha256: str = ""
    sha1: str = ""
    md5: str = ""
    filetype: FileType | None = None
    sniffed: bool = False

    def kind(self) -> FileType | None:
        """:func:`taintline.scan.magic.sniff` of this item's bytes and name (the name only
        turns an OLE file named ``.msi`` into ``MSI``)."""
        return self.filetype if self.sniffed else sniff(self.data, self.name)


@dataclass(frozen=True, slots=True)
class AnalysisContext:
    """What an analyser may know besides the file: data from the case, loaded once per scan.

    ``eol`` maps a lower-cased product name to its end-of-life date (ISO text), from
    endoflife.date data or the campaign pack; ``signers`` and ``cert_serials`` are indicator
    values (lower-case; serials as lower-case hex without separators); ``trust_store_pem`` holds
    extra roots (``--ca-bundle``, a private PKI) trusted for code signing besides Microsoft's
    root program and Apple's root, which are always used.
    """

    eol: Mapping[str, str] = field(default_factory=dict)
    signers: frozenset[str] = frozenset()
    cert_serials: frozenset[str] = frozenset()
    trust_store_pem: bytes | None = None


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """``facts`` is the analyser's typed record (a frozen dataclass), ``findings`` what it
    derived from them. ``facts`` is ``None`` when the file turned out not to be of the format."""

    analyser: str
    facts: Any
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """What an analyser's ``applies`` can say yes to, declared by the analyser module as
    ``APPLIES_TO`` (optional: an analyser without it is asked about every buffer). The worker
    does not ask an analyser about a buffer its declaration rules out; the declaration must
    never rule out a buffer ``applies`` accepts (``tests/scan/test_scan_fastpaths.py`` holds
    every declaration against ``applies`` on files of every type).

    ``applies(item)`` implies: (``kinds`` is ``None``, or ``item.kind()`` is in ``kinds``, or
    ``item.name`` is in ``names``) and (``first_bytes`` is ``None`` or ``item.data[:1]`` is in
    ``first_bytes``).
    """

    kinds: frozenset[FileType | None] | None = None
    names: frozenset[str] = frozenset()
    first_bytes: frozenset[bytes] | None = None

    def admits(self, kind: FileType | None, name: str, first: bytes) -> bool:
        return (self.kinds is None or kind in self.kinds or name in self.names) and (
            self.first_bytes is None or first in self.first_bytes
        )


class Analyser(Protocol):
    """One format. Implementations are modules exposing these three names."""

    NAME: str

    def applies(self, item: FileItem) -> bool:
        """Cheap check (magic bytes, name) whether :meth:`analyse` should run."""
        ...

    def analyse(self, item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
        """Parse and judge one file. Must not raise on malformed input: a file that is
        broken in a way that matters becomes an ``error.*`` or anomaly finding."""
        ...


@dataclass(frozen=True, slots=True)
class BundleMember:
    """What a bundle-level analyser sees of each file in a folder/app/asar/archive."""

    path: str
    name: str
    sha256: str
    facts: Mapping[str, Any]  # analyser NAME -> facts record


class BundleAnalyser(Protocol):
    NAME: str

    def analyse_bundle(
        self, root: str, members: Sequence[BundleMember], ctx: AnalysisContext
    ) -> tuple[Finding, ...]:
        """Judge a whole bundle (e.g. an Electron app: an unsigned or differently signed
        native library inside a signed app)."""
        ...


# -- what a worker sends back (the engine collects it, the scan store writes it) ----------


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One scanned file or member, as the worker sends it back."""

    top: str
    path: str
    name: str
    size: int
    md5: str
    sha1: str
    sha256: str
    filetype: str
    depth: int
    #: analyser NAME -> its facts record (a frozen dataclass)
    facts: dict[str, Any] = field(default_factory=dict)
    #: analyser NAME -> the facts as JSON text (``dataclasses.asdict``)
    facts_json: dict[str, str] = field(default_factory=dict)


_RECORD_FIELDS = tuple(f.name for f in fields(FileRecord))
_record_values = attrgetter(*_RECORD_FIELDS)


def _task_result(
    records: list[tuple[Any, ...]],
    findings: list[Finding],
    bytes_read: int,
    files: int,
    spans: list[tuple[str, int, int]],
    reused: list[tuple[str, str, bool]],
) -> TaskResult:
    return TaskResult([FileRecord(*r) for r in records], findings, bytes_read, files, spans, reused)


@dataclass(slots=True)
class TaskResult:
    """What a worker sends back for one batch of files."""

    records: list[FileRecord]
    findings: list[Finding]
    bytes_read: int
    files: int
    #: (display path of the file on disk, first record index, end index) per task
    spans: list[tuple[str, int, int]] = field(default_factory=list)
    #: files read whose content the case already knew (incremental scans): (display path,
    #: SHA-256, whether the YARA results are known too; if not, ``findings`` holds the YARA
    #: findings computed now); their records and other findings come from the case
    reused: list[tuple[str, str, bool]] = field(default_factory=list)

    def __reduce__(self) -> tuple[Any, ...]:
        # Records travel to the parent as plain tuples: a frozen dataclass pickles through
        # Python-level state functions, about 30 us per record there and back, which a tree
        # of 180,000 jar members pays in full; a tuple costs about 5 us.
        return (
            _task_result,
            (
                [_record_values(r) for r in self.records],
                self.findings,
                self.bytes_read,
                self.files,
                self.spans,
                self.reused,
            ),
        )
