"""What a scan knows besides the files: the analysis context and the campaign intel, loaded
once per scan from the case (``build_context`` is also used by release verification), and
the rules and the keys of what may be reused (:func:`prepare`, while the walk runs)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from taintline.case import Case
from taintline.errors import Problem, TaintlineError
from taintline.limits import ScanLimits
from taintline.model import IndicatorType
from taintline.scan import rules as rules_mod
from taintline.scan.hashes import HashType
from taintline.scan.interface import AnalysisContext
from taintline.scan.reuse import ReuseConfig, rules_key, rules_read_externals, yara_version


def _normal_serial(value: str) -> str:
    text = value.strip().lower().replace(":", "").replace(" ", "").replace("-", "")
    if text.startswith("0x"):
        text = text[2:]
    return text.lstrip("0") or "0"


def build_context(case: Case, ca_bundle: Path | None = None) -> AnalysisContext:
    """What the analysers may know from the case, loaded once per scan."""
    eol = {str(k).lower(): str(v) for k, v in case.eol_dates().items()}
    signers = frozenset(v.lower() for v in case.indicator_values(IndicatorType.SIGNER))
    serials = frozenset(_normal_serial(v) for v in case.indicator_values(IndicatorType.CERT_SERIAL))
    # Microsoft's and Apple's code-signing roots are always trusted (scan/trust.py); a
    # --ca-bundle adds a private PKI's roots to them
    trust = ca_bundle.read_bytes() if ca_bundle is not None else None
    return AnalysisContext(eol=eol, signers=signers, cert_serials=serials, trust_store_pem=trust)


def ensure_intel(case: Case) -> Problem | None:
    """Load the shipped campaign pack into an empty case; a failure is a warning, not fatal."""
    if case.con.execute("SELECT 1 FROM indicator_sources LIMIT 1").fetchone() is not None:
        return None  # a case with intel (the intel store is not even imported)
    from taintline.intel.store import ensure_intel

    try:
        ensure_intel(case)
    except TaintlineError as exc:
        return Problem("intel", f"campaign intel not loaded: {exc.diagnostics()}")
    return None


@dataclass(slots=True)
class Prepared:
    """What a scan knows before it looks at any file: the intel, rules, context and keys."""

    problems: list[Problem]
    sources: list[rules_mod.RuleSource]
    user: list[rules_mod.RuleSource]
    context: AnalysisContext
    hashes: frozenset[HashType]
    reuse: ReuseConfig


def prepare(
    case: Case,
    *,
    ensure: bool,
    rule_files: Sequence[Path] | None,
    ca_bundle: Path | None,
    hashes: Iterable[HashType],
    limits: ScanLimits,
) -> Prepared:
    """The campaign intel loaded when ``ensure`` (into an empty case), the case's and the
    user's rules (none when ``rule_files`` is None: ``--no-rules``), the analysis context and
    the keys of the cached results."""
    problems: list[Problem] = []
    if ensure and (problem := ensure_intel(case)) is not None:
        problems.append(problem)
    sources: list[rules_mod.RuleSource] = []
    user: list[rules_mod.RuleSource] = []
    if rule_files is not None:
        sources = [*rules_mod.case_rule_sources(case)]
        user = rules_mod.read_rule_files(list(rule_files))
    context = build_context(case, ca_bundle)
    chosen = frozenset({HashType.SHA256, *hashes})
    # the rules are keyed by their text (and yara-x's version): a re-scan that needs to read
    # nothing does not even compile them
    texts = [(s.namespace, s.origin, s.text) for s in (*sources, *user)]
    reuse = ReuseConfig(
        rules_key(texts, yara_version(), limits),
        rules_read_externals(t for _, _, t in texts),
    )
    return Prepared(problems, sources, user, context, chosen, reuse)
