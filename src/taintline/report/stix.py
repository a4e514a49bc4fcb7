"""STIX 2.1 bundle of findings, built and validated with the ``stix2`` library.

- every indicator a finding refers to becomes an ``indicator`` (with a STIX pattern);
- hunt findings on a host become ``sighting`` objects of that indicator, sighted at an
  ``identity`` (identity_class ``system``) for the host, with first/last seen and count;
- file findings become a ``file`` observable (name, hashes when known) plus a ``note`` that
  says what was found (kind, severity, evidence summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

import stix2

from taintline.model import Finding, iso
from taintline.report.context import RenderContext

_PATTERN = {
    "sha256": "[file:hashes.'SHA-256' = '{v}']",
    "sha1": "[file:hashes.'SHA-1' = '{v}']",
    "md5": "[file:hashes.MD5 = '{v}']",
    "domain": "[domain-name:value = '{v}']",
    "url": "[url:value = '{v}']",
    "ipv4": "[ipv4-addr:value = '{v}']",
    "ipv6": "[ipv6-addr:value = '{v}']",
    "cidr": "[ipv4-addr:value = '{v}']",
    "filename": "[file:name = '{v}']",
}

IDENTITY = stix2.Identity(
    id="identity--6b5c7e2a-3d0c-5c8e-9a59-2b1f6f1b9a10",
    name="taintline",
    identity_class="system",
    created="2026-01-01T00:00:00Z",
    modified="2026-01-01T00:00:00Z",
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern_for(key: str) -> str | None:
    """A STIX pattern for an indicator key ``type:value``; ``None`` for types without one."""
    type_, _, value = key.partition(":")
    template = _PATTERN.get(type_)
    if template is None or not value:
        return None
    if type_ == "cidr" and ":" in value:
        template = "[ipv6-addr:value = '{v}']"
    return template.format(v=_escape(value))


def build_bundle(findings: Sequence[Finding], ctx: RenderContext) -> stix2.Bundle:
    objects: list[Any] = [IDENTITY]
    indicators: dict[str, stix2.Indicator] = {}
    hosts: dict[str, stix2.Identity] = {}
    for f in findings:
        for key in f.indicators:
            if key in indicators:
                continue
            pattern = pattern_for(key)
            if pattern is None:
                continue
            indicators[key] = stix2.Indicator(
                name=key,
                pattern=pattern,
                pattern_type="stix",
                valid_from=f.time or "1970-01-01T00:00:00Z",
                created_by_ref=IDENTITY.id,
                indicator_types=["malicious-activity"],
            )
    objects.extend(indicators.values())
    for f in findings:
        if f.host and f.indicators:
            if f.host not in hosts:
                hosts[f.host] = stix2.Identity(
                    name=f.host, identity_class="system", created_by_ref=IDENTITY.id
                )
                objects.append(hosts[f.host])
            for key in f.indicators:
                if key not in indicators:
                    continue
                extra: dict[str, Any] = {}
                last = f.evidence.get("last_seen")
                if f.time:
                    extra["first_seen"] = f.time
                    extra["last_seen"] = last or f.time
                count = f.evidence.get("count")
                if isinstance(count, int) and count >= 0:
                    extra["count"] = min(count, 999_999_999)
                objects.append(
                    stix2.Sighting(
                        sighting_of_ref=indicators[key].id,
                        where_sighted_refs=[hosts[f.host].id],
                        created_by_ref=IDENTITY.id,
                        description=f"{f.kind}: {f.message}",
                        **extra,
                    )
                )
            continue
        refs: list[str] = []
        if "!/" in f.subject or f.source in ("scan", "release"):
            hashes = {
                name: f.evidence[field]
                for field, name in (("sha256", "SHA-256"), ("sha1", "SHA-1"), ("md5", "MD5"))
                if isinstance(f.evidence.get(field), str) and f.evidence[field]
            }
            sco = stix2.File(name=f.subject.rsplit("/", 1)[-1] or f.subject, hashes=hashes or None)
            objects.append(sco)
            refs.append(sco.id)
        refs.extend(indicators[k].id for k in f.indicators if k in indicators)
        if not refs:
            refs.append(IDENTITY.id)
        objects.append(
            stix2.Note(
                abstract=f"{f.severity} {f.kind}",
                content=f"{f.subject}: {f.message}"
                + (f" (host {f.host})" if f.host else "")
                + (f" at {iso(f.time)}" if f.time else ""),
                object_refs=refs,
                created_by_ref=IDENTITY.id,
                labels=[f.kind, str(f.severity)],
            )
        )
    return stix2.Bundle(objects=objects, allow_custom=False)


def render(findings: Sequence[Finding], out: TextIO, ctx: RenderContext) -> None:
    out.write(build_bundle(findings, ctx).serialize(pretty=True))
    out.write("\n")
