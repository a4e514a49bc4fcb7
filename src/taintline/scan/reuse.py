"""What the scan may reuse instead of recomputing: keys, and moving results to another path.

Incremental scanning (see :mod:`taintline.scan.cache` for the tables) keys what was computed
about one content (SHA-256) by what could change it:

* the **analysis key**: :data:`ANALYSER_VERSION`, the scan limits (they decide which members
  are opened), the hash types computed (``--hashes``) and the analysis context (end-of-life data, signer and serial indicators, extra
  trust roots: analysers judge with them);
* the **rules key**: the digest of the YARA rule sources (in order), yara-x's version and the
  timeout; when
  a rule source names one of the external variables (``filename``, ``filepath``, ...), the
  file's display path and owner are part of the key too, since the rules then see them.

A result computed for one path is moved to another (the same DLL loose and inside a ZIP, a
renamed file) by :func:`rebase`: the old path is replaced by the new one in the subject, the
message and the evidence (facts are moved the same way by :func:`rebase_text`).

Imported by the scan workers: no DuckDB, no pyarrow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from taintline.limits import ScanLimits
from taintline.model import Finding
from taintline.scan.interface import AnalysisContext

#: Bump when an analyser, a container reader or the worker changes what it records or finds
#: for the same bytes: every cached analysis (facts, findings, members) is then recomputed on
#: the next scan (YARA results are keyed by the rule set and stay valid). History: 1 = the
#: first cached analyses (issue 17).
ANALYSER_VERSION = 1

#: Finding kinds that come from the YARA scanner (kept apart from the analysis: new rules
#: re-run YARA only).
YARA_KINDS = frozenset({"yara", "error.yara", "error.yara-timeout"})

#: Kinds that say the analysis did not finish for a passing reason: never cached.
TRANSIENT_KINDS = frozenset(
    {"error.internal", "error.worker-crash", "error.unreadable", "error.not-regular"}
)

#: External variables a rule may read (see :mod:`taintline.scan.rules`).
_EXTERNALS = re.compile(rb"\b(?:filename|filepath|extension|filetype|owner)\b")

#: Container-name suffixes that change a file's type (an OLE file named .msi is an MSI).
_MSI_NAMES = (".msi", ".msp", ".msm")


def _digest(*parts: bytes | str) -> str:
    # one update of the joined parts (the same digest as one update per piece): this runs for
    # every file of a re-scan whose rules read external variables
    chunks: list[bytes] = []
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        chunks.append(len(data).to_bytes(8, "little"))
        chunks.append(data)
    return hashlib.sha256(b"".join(chunks)).hexdigest()[:32]


def analysis_key(context: AnalysisContext, limits: ScanLimits, hashes: Iterable[str] = ()) -> str:
    """The key of every cached analysis of this scan (see the module docstring); ``hashes``
    are the hash types computed (``--hashes``: a record without MD5 must not stand in for
    one with it)."""
    ctx = orjson.dumps(
        {
            "eol": dict(sorted(context.eol.items())),
            "signers": sorted(context.signers),
            "serials": sorted(context.cert_serials),
            "trust": hashlib.sha256(context.trust_store_pem or b"").hexdigest(),
        }
    )
    bounds = orjson.dumps(
        [
            limits.max_depth,
            limits.max_total_bytes,
            limits.max_file_bytes,
            limits.max_ratio,
            limits.max_files,
        ]
    )
    return _digest(str(ANALYSER_VERSION), ctx, bounds, ",".join(sorted(str(h) for h in hashes)))


def rules_key(sources: Sequence[tuple[str, str, str]], compiler: str, limits: ScanLimits) -> str:
    """The key of a rule set: its sources (namespace, origin, text, in order), the compiler's
    version and the YARA timeout (``''``: no rules, nothing to cache). Keyed by text, not by
    the compiled bytes, so a scan that needs to read nothing need not compile the rules."""
    if not sources:
        return ""
    parts = [part for source in sources for part in source]
    return _digest(compiler, str(limits.yara_timeout_s), *parts)


def yara_version() -> str:
    """The installed yara-x's version (compiled rules may differ between versions)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("yara-x")
    except PackageNotFoundError:  # pragma: no cover - yara-x is a dependency
        return "unknown"


def rules_read_externals(sources: Iterable[str]) -> bool:
    """Whether any rule source names an external variable (then YARA results depend on the
    path and owner, not only on the bytes). Conservative: a mention anywhere counts."""
    return any(_EXTERNALS.search(s.encode("utf-8", "surrogateescape")) for s in sources)


def yara_place(externals: bool, display: str, owner: str) -> str:
    """What besides the bytes and the rules one top-level file's YARA results depend on:
    nothing (``''``), or its path and owner when the rules read external variables."""
    return _digest(display, owner) if externals else ""


def name_class(name: str) -> str:
    """What of a file's name its analysis depends on: ``msi`` for an OLE file named .msi."""
    return "msi" if name.lower().endswith(_MSI_NAMES) else ""


@dataclass(frozen=True, slots=True)
class ReuseConfig:
    """What a worker needs to skip work: the contents whose analysis (``sha256|name_class``)
    and YARA results under this scan's rules (``sha256|place``) the case already holds."""

    rules_key: str
    externals: bool
    known_contents: frozenset[str] = frozenset()
    known_yara: frozenset[str] = frozenset()


# -- moving results from one path to another ----------------------------------------------


def _json_text(value: str) -> str:
    return orjson.dumps(value).decode()[1:-1]


def rebase_text(text: str, old: str, new: str) -> str:
    """``text`` (JSON) with the JSON-escaped ``old`` path replaced by ``new``."""
    if old == new:
        return text
    return text.replace(_json_text(old), _json_text(new))


def rebase(findings: Sequence[Finding], old: str, new: str) -> list[Finding]:
    """Findings computed for the file at ``old`` (and its members), moved to ``new``."""
    if old == new:
        return list(findings)
    out: list[Finding] = []
    for f in findings:
        subject = new + f.subject[len(old) :] if f.subject.startswith(old) else f.subject
        evidence = f.evidence
        if evidence:
            text = orjson.dumps(dict(evidence), default=str).decode()
            moved = rebase_text(text, old, new)
            if moved != text:
                evidence = orjson.loads(moved)
        out.append(
            dataclasses.replace(
                f, subject=subject, message=f.message.replace(old, new), evidence=evidence
            )
        )
    return out


def belongs_to(subject: str, display: str) -> bool:
    """Is ``subject`` the file ``display`` or one of its members?"""
    return subject == display or subject.startswith(display + "!/")
