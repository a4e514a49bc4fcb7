"""SARIF 2.1.0: one run, one rule per finding kind, stable fingerprints.

Container paths (``setup.msi!/files.cab!/ffmpeg.dll``) are not URIs: the physical location
is the outermost file, the full path is a logical location, so code-scanning UIs show both.
Findings about hosts or network indicators (hunt) have only logical locations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote

import orjson

from taintline import __version__
from taintline.model import Finding, Severity, iso
from taintline.report.context import RenderContext

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/taintline/taintline"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning reads ``security-severity`` (0.0-10.0) from rule properties.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _uri(path: str) -> str:
    """A relative or file URI for the outermost file of a (container) path."""
    outer = path.split("!/", 1)[0]
    if outer.startswith("/"):
        return "file://" + quote(outer)
    return quote(str(PurePosixPath(outer)))


def _is_file_subject(f: Finding) -> bool:
    return f.source in ("scan", "release") or "!/" in f.subject


def build_log(findings: Sequence[Finding], ctx: RenderContext) -> dict[str, Any]:
    kinds = sorted({f.kind for f in findings})
    rule_index = {kind: i for i, kind in enumerate(kinds)}
    worst: dict[str, Severity] = {}
    example: dict[str, str] = {}
    for f in findings:
        if f.kind not in worst or f.severity.rank > worst[f.kind].rank:
            worst[f.kind] = f.severity
        example.setdefault(f.kind, f.message)
    rules = [
        {
            "id": kind,
            "name": "".join(part.capitalize() for part in kind.replace("-", ".").split(".")),
            "shortDescription": {"text": kind},
            "fullDescription": {"text": example[kind]},
            "defaultConfiguration": {"level": _LEVEL[worst[kind]]},
            "helpUri": f"{INFORMATION_URI}/blob/main/docs/findings.md",
            "properties": {
                "security-severity": _SECURITY_SEVERITY[worst[kind]],
                "tags": ["security", "supply-chain", kind.split(".", 1)[0]],
            },
        }
        for kind in kinds
    ]
    results: list[dict[str, Any]] = []
    for f in findings:
        logical: list[dict[str, Any]] = [
            {
                "fullyQualifiedName": f.subject,
                "kind": "resource" if _is_file_subject(f) else "object",
            }
        ]
        if f.host:
            logical.append({"name": f.host, "kind": "host"})
        location: dict[str, Any] = {"logicalLocations": logical}
        if _is_file_subject(f):
            location["physicalLocation"] = {"artifactLocation": {"uri": _uri(f.subject)}}
        properties: dict[str, Any] = {"severity": str(f.severity), "source": str(f.source)}
        if f.host:
            properties["host"] = f.host
        if f.time:
            properties["time"] = iso(f.time)
        if f.indicators:
            properties["indicators"] = list(f.indicators)
        if f.evidence:
            properties["evidence"] = dict(f.evidence)
        results.append(
            {
                "ruleId": f.kind,
                "ruleIndex": rule_index[f.kind],
                "level": _LEVEL[f.severity],
                "message": {"text": f.message or f.kind},
                "locations": [location],
                "partialFingerprints": {"taintline/v1": f.fingerprint},
                "properties": properties,
            }
        )
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "taintline",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "commandLine": " ".join(("taintline", ctx.command, *ctx.inputs)),
                    }
                ],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    log = build_log(findings, ctx)
    out.write(orjson.dumps(log, option=orjson.OPT_INDENT_2, default=str).decode())
    out.write("\n")
