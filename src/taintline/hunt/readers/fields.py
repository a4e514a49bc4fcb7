"""Which source columns carry which common field, and which log kind a set of columns is.

Zeek's names come first; then the names other tools use (Elastic Common Schema, Suricata
EVE, Squid/W3C proxy logs, firewall CSV exports). Matching is case-insensitive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from taintline.hunt.model import Field, LogKind

ZEEK_FIELDS: dict[Field, tuple[str, ...]] = {
    Field.TS: ("ts",),
    Field.SRC: ("id.orig_h", "rx_hosts"),
    Field.DST: ("id.resp_h", "tx_hosts"),
    Field.DST_PORT: ("id.resp_p",),
    Field.DOMAIN: ("query", "host"),
    Field.SNI: ("server_name",),
    Field.URI: ("uri",),
    Field.CERT_SUBJECT: ("certificate.subject", "subject"),
    Field.CERT_SAN: ("san.dns",),
    #: Only kept for x509 logs (``id`` means other things elsewhere): see ``cert_fields``.
    Field.CERT_ID: ("fingerprint", "id"),
    Field.MD5: ("md5",),
    Field.SHA1: ("sha1",),
    Field.SHA256: ("sha256",),
}

GENERIC_FIELDS: dict[Field, tuple[str, ...]] = {
    Field.TS: ("@timestamp", "timestamp", "ts", "time", "datetime", "date", "event.created"),
    Field.SRC: (
        "source.ip",
        "src_ip",
        "src",
        "srcip",
        "src_addr",
        "client.ip",
        "client_ip",
        "c-ip",
        "id.orig_h",
        "sourceaddress",
        "source_address",
    ),
    Field.DST: (
        "destination.ip",
        "dst_ip",
        "dest_ip",
        "dst",
        "dstip",
        "dst_addr",
        "server.ip",
        "s-ip",
        "id.resp_h",
        "destinationaddress",
        "destination_address",
    ),
    Field.DST_PORT: (
        "destination.port",
        "dst_port",
        "dest_port",
        "dport",
        "id.resp_p",
        "s-port",
        "port",
    ),
    Field.HOST: ("host.name", "hostname", "host_name", "computer", "device", "endpoint"),
    Field.DOMAIN: (
        "dns.question.name",
        "query",
        "qname",
        "rrname",
        "url.domain",
        "destination.domain",
        "domain",
        "cs-host",
        "host",
        "http.hostname",
    ),
    Field.SNI: ("tls.client.server_name", "server_name", "sni", "tls.sni"),
    Field.URL: ("url.full", "url.original", "url", "request_url", "cs-uri", "request"),
    Field.URI: ("uri", "url.path", "cs-uri-stem", "http.url"),
    Field.CERT_SUBJECT: ("tls.server.subject", "certificate.subject", "subject"),
    Field.CERT_SAN: ("san.dns", "tls.server.x509.alternative_names"),
    Field.MD5: ("file.hash.md5", "hash.md5", "md5"),
    Field.SHA1: ("file.hash.sha1", "hash.sha1", "sha1"),
    Field.SHA256: ("file.hash.sha256", "hash.sha256", "sha256"),
}

_KIND_BY_PATH = {kind.value: kind for kind in LogKind}


def cert_fields(chosen: dict[Field, str], kind: LogKind) -> dict[Field, str]:
    """``chosen`` without the certificate id unless the log is an x509 log."""
    if kind is not LogKind.X509:
        chosen.pop(Field.CERT_ID, None)
    return chosen


def kind_from_path(name: str | None) -> LogKind | None:
    if not name:
        return None
    return _KIND_BY_PATH.get(name.strip().lower())


def kind_from_fields(names: Iterable[str]) -> LogKind:
    have = {n.lower() for n in names}
    if have & {"query", "qname", "dns.question.name", "rrname"}:
        return LogKind.DNS
    if have & {"server_name", "tls.client.server_name", "sni"}:
        return LogKind.SSL
    if have & {"certificate.subject", "san.dns"}:
        return LogKind.X509
    if have & {"md5", "sha1", "sha256", "file.hash.sha256", "hash.sha256"}:
        return LogKind.FILES
    if have & {"uri", "url", "url.full", "url.original", "cs-uri", "cs-uri-stem", "method"}:
        return LogKind.HTTP
    if have & {"conn_state", "duration", "orig_bytes", "network.transport"}:
        return LogKind.CONN
    return LogKind.GENERIC


def pick_columns(
    available: Iterable[str],
    candidates: Mapping[Field, tuple[str, ...]],
    field_map: Mapping[Field, str],
) -> dict[Field, str]:
    """Map each common field to the first available column (explicit ``--map`` wins)."""
    by_lower: dict[str, str] = {}
    for name in available:
        by_lower.setdefault(name.lower(), name)
    chosen: dict[Field, str] = {}
    used: set[str] = set()
    for fld, name in field_map.items():
        if name.lower() in by_lower:
            chosen[fld] = by_lower[name.lower()]
            used.add(chosen[fld])
    for fld, names in candidates.items():
        if fld in chosen:
            continue
        for name in names:
            real = by_lower.get(name)
            if real is not None and real not in used:
                chosen[fld] = real
                used.add(real)
                break
    return chosen
