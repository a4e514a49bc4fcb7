"""Type words of indicator files: which column or cell label names which indicator type, and
the values a labelled cell holds (several joined hashes of one file, ``ip:port``, a
``filename|sha256`` pair), each refused value with its reason.

Split from :mod:`taintline.intel.normalize`, whose functions give each value its one
canonical spelling; :mod:`taintline.intel.csvtext` reads CSV and text files with both.
"""

from __future__ import annotations

import re
from typing import Any

from taintline.intel.normalize import (
    HASH_LENGTHS,
    classify,
    normalize_hash,
    normalize_ip,
    normalize_with_hint,
    refang,
    strip_invisible,
)
from taintline.model import IndicatorType

#: Type names used by CSV headers, MISP and others, mapped to ours.
TYPE_ALIASES: dict[str, IndicatorType] = {
    **{t.value: t for t in IndicatorType},
    "sha-256": IndicatorType.SHA256,
    "sha_256": IndicatorType.SHA256,
    "filehash-sha256": IndicatorType.SHA256,
    "sha-1": IndicatorType.SHA1,
    "sha_1": IndicatorType.SHA1,
    "filehash-sha1": IndicatorType.SHA1,
    "filehash-md5": IndicatorType.MD5,
    "hostname": IndicatorType.DOMAIN,
    "host": IndicatorType.DOMAIN,
    "fqdn": IndicatorType.DOMAIN,
    "domain-name": IndicatorType.DOMAIN,
    "uri": IndicatorType.URL,
    "url_path": IndicatorType.URL,
    "url-path": IndicatorType.URL,
    "uri_path": IndicatorType.URL,
    "urlpath": IndicatorType.URL,
    "ip": IndicatorType.IPV4,
    "ip-dst": IndicatorType.IPV4,
    "ip-src": IndicatorType.IPV4,
    "ipv4-addr": IndicatorType.IPV4,
    "ipv6-addr": IndicatorType.IPV6,
    "ip-network": IndicatorType.CIDR,
    "email-addr": IndicatorType.EMAIL,
    "file": IndicatorType.FILENAME,
    "file-name": IndicatorType.FILENAME,
    "file_name": IndicatorType.FILENAME,
    "path": IndicatorType.FILENAME,
    "serial": IndicatorType.CERT_SERIAL,
    "x509-serial": IndicatorType.CERT_SERIAL,
    "thumbprint": IndicatorType.CERT_THUMBPRINT,
    "x509-fingerprint-sha1": IndicatorType.CERT_THUMBPRINT,
    "x509-fingerprint-sha256": IndicatorType.CERT_THUMBPRINT,
    "signer-name": IndicatorType.SIGNER,
    "filename_regex": IndicatorType.FILENAME_REGEX,
    "filename regex": IndicatorType.FILENAME_REGEX,
    "path-regex": IndicatorType.FILENAME_REGEX,
    "domain_name": IndicatorType.DOMAIN,
    "ip_address": IndicatorType.IPV4,
    "ip-address": IndicatorType.IPV4,
    "ipaddress": IndicatorType.IPV4,
    "ipv4_address": IndicatorType.IPV4,
    "ipv6_address": IndicatorType.IPV6,
    "email_address": IndicatorType.EMAIL,
    "e-mail": IndicatorType.EMAIL,
    "filename": IndicatorType.FILENAME,
    "file_path": IndicatorType.FILENAME,
    "filepath": IndicatorType.FILENAME,
    "cert_serial_number": IndicatorType.CERT_SERIAL,
    "serial_number": IndicatorType.CERT_SERIAL,
}


def type_from_name(name: str) -> IndicatorType | None:
    return TYPE_ALIASES.get(name.strip().lower())


class Rejected(ValueError):
    """A value refused, with the class of reason it is counted under (``reason``, the same
    for every value refused for the same cause) and what exactly was wrong (``detail``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


#: Type words that name no single type: the value's own shape decides.
AUTO_LABELS = frozenset(
    {
        "ioc",
        "iocs",
        "indicator",
        "indicators",
        "observable",
        "value",
        "c2",
        "cnc",
        "c&c",
        "c2 server",
        "network",
        "infrastructure",
        "ioc_value",
    }
)
#: Type words for "some file hash": the length decides which.
HASH_LABELS = frozenset(
    {"hash", "hashes", "filehash", "file_hash", "file hash", "hash_value", "checksum"}
)
#: Type words for things taintline does not match on: counted and skipped, never guessed at.
UNMATCHED_LABELS = frozenset(
    {
        "mutex",
        "mutant",
        "registry",
        "regkey",
        "registry-key",
        "registry_key",
        "ssdeep",
        "imphash",
        "tlsh",
        "authentihash",
        "ja3",
        "ja3s",
        "ja4",
        "jarm",
        "user-agent",
        "useragent",
        "user_agent",
        "cve",
        "vulnerability",
        "yara",
        "sigma",
        "snort",
        "suricata",
        "asn",
        "as",
        "email-subject",
        "subject",
        "text",
        "comment",
        "pdb",
        "btc",
        "bitcoin",
        "wallet",
        "process",
        "command",
        "commandline",
        "command-line",
        "named-pipe",
        "pipe",
        "service",
        "scheduled-task",
        "mitre",
        "technique",
        "attack-pattern",
        "threat-actor",
        "malware",
        "campaign",
    }
)
#: Type words for links to the reports themselves: kept as the source's reference.
REFERENCE_LABELS = frozenset(
    {
        "reference",
        "references",
        "report",
        "link",
        "source",
        "source_url",
        "report_url",
        "blog",
        "article",
        "external-reference",
        "external_reference",
    }
)
#: Type words for an address with its port (``198.51.100.7:443``).
IP_PORT_LABELS = frozenset(
    {"ip_port", "ip:port", "ip-port", "ipport", "ip|port", "ip-dst|port", "ip-src|port", "socket"}
)


def label_kind(word: str) -> str | None:
    """What a type word means: ``type`` (one of ours, see :func:`type_from_name`), ``auto``,
    ``hash``, ``ip_port``, ``composite`` (``filename|sha256``), ``unmatched``, ``reference``;
    ``None`` for a word taintline does not know."""
    lowered = word.strip().lower()
    if lowered in TYPE_ALIASES:
        return "type"
    if lowered in AUTO_LABELS:
        return "auto"
    if lowered in HASH_LABELS:
        return "hash"
    if lowered in IP_PORT_LABELS:
        return "ip_port"
    if lowered in REFERENCE_LABELS:
        return "reference"
    if lowered in UNMATCHED_LABELS:
        return "unmatched"
    if "|" in lowered:
        parts = lowered.split("|")
        if all(p in TYPE_ALIASES or p in HASH_LABELS or p == "port" for p in parts):
            return "composite"
    return None


Labelled = tuple[IndicatorType, str, dict[str, Any]]


def values_for_label(word: str | None, raw: str) -> list[Labelled]:
    """The indicators one cell states under a type word (``None``: no type column).

    Several values joined in one cell (``sha256 sha1 md5`` of one file, comma-, semicolon- or
    space-separated) each become an indicator, linked by a ``together_with`` context entry.
    Raises :class:`Rejected` with the reason class for anything it cannot use.
    """
    text = strip_invisible(raw).strip().strip("\"'").strip()
    if not text:
        raise Rejected("no value")
    kind = label_kind(word) if word else "auto"
    lowered = (word or "").strip().lower()
    if kind is None:
        raise Rejected(f"unknown type word {lowered!r}", text[:80])
    if kind == "unmatched":
        raise Rejected(f"type {lowered!r} is not matched by taintline", text[:80])
    if kind == "reference":
        raise Rejected("report link (kept as the source's reference)", text[:80])
    if kind == "composite":
        return _link(_composite(lowered, text))
    if kind == "ip_port":
        return [_ip_port(text)]
    try:
        return [_one(kind, lowered, text)]
    except ValueError as first:
        tokens = [t for t in _JOINED.split(text) if t]
        if len(tokens) < 2:
            raise _rejected(kind, lowered, first) from None
        try:
            found = [
                _one("hash" if kind == "type" and _hash_word(lowered) else kind, lowered, t)
                for t in tokens
            ]
        except ValueError:
            raise _rejected(kind, lowered, first) from None
        return _link(found)


_JOINED = re.compile(r"[\s,;|]+")


def _hash_word(lowered: str) -> bool:
    return TYPE_ALIASES.get(lowered) in HASH_LENGTHS


def _one(kind: str, lowered: str, text: str) -> Labelled:
    if kind == "type":
        got_type, got = normalize_with_hint(TYPE_ALIASES[lowered], text)
        context: dict[str, Any] = {}
        if got_type is not TYPE_ALIASES[lowered] and TYPE_ALIASES[lowered] is IndicatorType.DOMAIN:
            context["retyped_from"] = "domain"
        return got_type, got, context
    if kind == "hash":
        got_type, got = normalize_hash(refang(text))
        return got_type, got, {}
    got_type, got = classify(text)
    return got_type, got, {}


def _rejected(kind: str, lowered: str, exc: ValueError) -> Rejected:
    if kind == "type":
        return Rejected(f"not a valid {TYPE_ALIASES[lowered]} value", str(exc))
    if kind == "hash":
        return Rejected("not a valid hash", str(exc))
    return Rejected("not a recognised indicator", str(exc))


def _link(found: list[Labelled]) -> list[Labelled]:
    if len(found) < 2:
        return found
    together = [f"{t}:{v}" for t, v, _ in found]
    return [(t, v, {**ctx, "together_with": together}) for t, v, ctx in found]


def _composite(lowered: str, text: str) -> list[Labelled]:
    words = lowered.split("|")
    values = text.split("|", len(words) - 1)
    if len(values) != len(words):
        raise Rejected(f"{lowered} value without {len(words)} '|'-separated parts", text[:80])
    found: list[Labelled] = []
    context: dict[str, Any] = {}
    for part, value in zip(words, values, strict=True):
        if part == "port":
            context["port"] = value.strip()
            continue
        try:
            found.append(_one("hash" if part in HASH_LABELS else "type", part, value))
        except ValueError as exc:
            raise Rejected(f"not a valid {lowered} value", str(exc)) from None
    return [(t, v, {**context, **ctx}) for t, v, ctx in found]


_IP_PORT = re.compile(r"^\[?(?P<ip>[0-9A-Fa-f:.]+?)\]?[:|](?P<port>[0-9]{1,5})$")


def _ip_port(text: str) -> Labelled:
    clean = refang(text)
    match = _IP_PORT.match(clean)
    try:
        if match is None:
            kind, ip = normalize_ip(clean)  # an address without its port is fine too
            return kind, ip, {}
        kind, ip = normalize_ip(match.group("ip"))
    except ValueError as exc:
        raise Rejected("not a valid ip:port value", str(exc)) from None
    return kind, ip, {"port": match.group("port")}
