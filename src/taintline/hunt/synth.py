"""Writers for synthetic Zeek logs (used by the demo, the tests and the benchmark).

Only harmless, made-up records: the field layouts are Zeek's own (``dns.log``, ``http.log``,
``ssl.log``, ``conn.log``, ``files.log``, ``x509.log``).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

FIELDS: dict[str, tuple[str, ...]] = {
    "dns": (
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "trans_id",
        "rtt",
        "query",
        "qclass",
        "qclass_name",
        "qtype",
        "qtype_name",
        "rcode",
        "rcode_name",
        "AA",
        "TC",
        "RD",
        "RA",
        "Z",
        "answers",
        "TTLs",
        "rejected",
    ),
    "http": (
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "trans_depth",
        "method",
        "host",
        "uri",
        "referrer",
        "version",
        "user_agent",
        "origin",
        "request_body_len",
        "response_body_len",
        "status_code",
        "status_msg",
        "info_code",
        "info_msg",
        "tags",
        "username",
        "password",
        "proxied",
        "orig_fuids",
        "orig_filenames",
        "orig_mime_types",
        "resp_fuids",
        "resp_filenames",
        "resp_mime_types",
    ),
    "ssl": (
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "version",
        "cipher",
        "curve",
        "server_name",
        "resumed",
        "last_alert",
        "next_protocol",
        "established",
        "ssl_history",
        "cert_chain_fps",
        "client_cert_chain_fps",
        "sni_matches_cert",
    ),
    "conn": (
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "service",
        "duration",
        "orig_bytes",
        "resp_bytes",
        "conn_state",
        "local_orig",
        "local_resp",
        "missed_bytes",
        "history",
        "orig_pkts",
        "orig_ip_bytes",
        "resp_pkts",
        "resp_ip_bytes",
        "tunnel_parents",
    ),
    "files": (
        "ts",
        "fuid",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "source",
        "depth",
        "analyzers",
        "mime_type",
        "filename",
        "duration",
        "local_orig",
        "is_orig",
        "seen_bytes",
        "total_bytes",
        "missing_bytes",
        "overflow_bytes",
        "timedout",
        "parent_fuid",
        "md5",
        "sha1",
        "sha256",
        "extracted",
        "extracted_cutoff",
        "extracted_size",
    ),
    "x509": (
        "ts",
        "fingerprint",
        "certificate.version",
        "certificate.serial",
        "certificate.subject",
        "certificate.issuer",
        "certificate.not_valid_before",
        "certificate.not_valid_after",
        "certificate.key_alg",
        "certificate.sig_alg",
        "certificate.key_type",
        "certificate.key_length",
        "certificate.exponent",
        "certificate.curve",
        "san.dns",
        "san.uri",
        "san.email",
        "san.ip",
        "basic_constraints.ca",
        "basic_constraints.path_len",
        "host_cert",
        "client_cert",
    ),
}


def zeek_header(path_name: str, fields: Sequence[str], opened: str = "2023-03-29-10-00-00") -> str:
    types = "\t".join("time" if f == "ts" else "string" for f in fields)
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        f"#path\t{path_name}\n#open\t{opened}\n#fields\t" + "\t".join(fields) + "\n"
        f"#types\t{types}\n"
    )


def zeek_line(fields: Sequence[str], record: Mapping[str, Any]) -> str:
    values = []
    for name in fields:
        value = record.get(name)
        if value is None:
            values.append("-")
        elif value == "":
            values.append("(empty)")
        elif isinstance(value, float):
            values.append(f"{value:.6f}")
        else:
            values.append(str(value))
    return "\t".join(values)


def write_zeek_tsv(
    path: Path,
    log: str,
    records: Iterable[Mapping[str, Any]],
    *,
    compress: bool = False,
    close: bool = True,
    extra_lines: Mapping[int, str] | None = None,
) -> int:
    """Write a Zeek TSV log; ``extra_lines`` inserts raw lines before record N (0-based).
    Returns the number of records written."""
    fields = FIELDS[log]
    parts = [zeek_header(log, fields)]
    count = 0
    extra = dict(extra_lines or {})
    for i, record in enumerate(records):
        if i in extra:
            parts.append(extra.pop(i) + "\n")
        parts.append(zeek_line(fields, record) + "\n")
        count += 1
    for line in extra.values():
        parts.append(line + "\n")
    if close:
        parts.append("#close\t2023-03-29-11-00-00\n")
    data = "".join(parts).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return count


def write_zeek_json(
    path: Path, records: Iterable[Mapping[str, Any]], *, compress: bool = False
) -> int:
    lines = [orjson.dumps(dict(r)) for r in records]
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)
    return len(lines)
