"""What a scan knows besides the files: the analysis context and the campaign intel, loaded
once per scan from the case (``build_context`` is also used by release verification)."""

from __future__ import annotations

from pathlib import Path

from taintline.case import Case
from taintline.errors import Problem, TaintlineError
from taintline.model import IndicatorType
from taintline.scan.interface import AnalysisContext


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
