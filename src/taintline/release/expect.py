"""``--expect FILE``: the changes a release is expected to make, so a CI gate fails only on the
others. YAML or JSON::

    expect:
      - path: "resources/app.asar!/dist/*.js"   # glob over the path inside the release
        kinds: [release.changed, release.added]  # optional; default: any kind
        reason: "front-end rebuilt every release"

A finding that matches a rule becomes ``info`` with ``evidence.expected`` naming the reason; an
indicator match or a provenance digest mismatch is never expected.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from taintline.errors import InputError
from taintline.model import Finding, Severity
from taintline.release.kinds import NOT_EXPECTABLE, ReleaseKind


@dataclass(frozen=True, slots=True)
class Expectation:
    path: str
    kinds: tuple[str, ...] = ()
    reason: str = "expected change"

    def matches(self, finding: Finding) -> bool:
        path = str(finding.evidence.get("path", ""))
        if self.kinds and finding.kind not in self.kinds:
            return False
        return fnmatch.fnmatchcase(path, self.path)


def read_expectations(path: Path) -> tuple[Expectation, ...]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"not YAML/JSON: {exc}") from None
    rules = doc.get("expect") if isinstance(doc, dict) else doc
    if not isinstance(rules, list):
        raise InputError(str(path), 'expected a list of rules under "expect"')
    known = {k.value for k in ReleaseKind}
    out: list[Expectation] = []
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict) or not isinstance(rule.get("path"), str):
            raise InputError(str(path), f'rule {number}: needs a "path" glob')
        kinds = rule.get("kinds") or []
        if isinstance(kinds, str):
            kinds = [kinds]
        if not isinstance(kinds, list) or any(k not in known for k in kinds):
            bad = [k for k in kinds if k not in known] if isinstance(kinds, list) else kinds
            raise InputError(str(path), f"rule {number}: unknown kind(s) {bad!r}")
        out.append(Expectation(rule["path"], tuple(kinds), str(rule.get("reason") or "expected")))
    return tuple(out)


def apply(findings: Sequence[Finding], rules: Sequence[Expectation]) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        rule = None
        if f.kind not in NOT_EXPECTABLE:
            rule = next((r for r in rules if r.matches(f)), None)
        if rule is None:
            out.append(f)
            continue
        evidence = dict(f.evidence)
        evidence["expected"] = rule.reason
        evidence["severity_before"] = str(f.severity)
        out.append(replace(f, severity=Severity.INFO, evidence=evidence,
                           message=f"expected ({rule.reason}): {f.message}"))  # fmt: skip
    return out
