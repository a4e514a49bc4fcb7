"""Certificate sightings tied to the host that received the certificate.

A certificate that names an indicator (its subject CN or a SAN) is logged in Zeek's
``x509.log``, which has no connection columns: only the certificate's id, ``fingerprint``
(Zeek 4.2 and later) or ``id`` (the file id, ``fuid``, before). The connection that carried
it is found through the other logs of the same run:

* ``ssl.log``: ``cert_chain_fps`` / ``client_cert_chain_fps`` (fingerprints) or
  ``cert_chain_fuids`` / ``client_cert_chain_fuids`` (file ids) list the certificates of the
  connection, and the row has the connection's ``uid`` and ``id.orig_h``;
* ``files.log``: ``fuid`` is the certificate's file id; the receiving host is ``id.orig_h``
  (Zeek 5 and later) or ``rx_hosts`` (before), the connection ``uid`` or ``conn_uids``;
* a connection ``uid`` without a host is looked up in ``conn.log`` / ``ssl.log``.

Zeek logs each certificate once (per day, by default) while every connection that presents
it is in ``ssl.log``: so a sighting gets one hit per *connection*, on the host that made it.
A certificate no connection ties to a host is reported with host :data:`NO_HOST`, saying so,
never the ``-`` placeholder of a missing column.

The engines mark such hits with host ``cert-id:<id>`` (:data:`CERT_HOST_PREFIX`); this
module, shared by both engines, replaces them. It reads only the SSL, files and conn logs
among the inputs, line by line, and only lines containing one of the wanted ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from taintline.hunt.model import HitGroup, HuntOptions, LogFormat, LogKind, LogSource
from taintline.hunt.readers.textio import iter_lines
from taintline.model import parse_time, utc

#: Host value the engines give a hit that only has a certificate id.
CERT_HOST_PREFIX = "cert-id:"
#: Host of a certificate sighting no connection in the inputs ties to a host.
NO_HOST = "(no host known)"

_CHAIN_COLUMNS = (
    "cert_chain_fps",
    "client_cert_chain_fps",
    "cert_chain_fuids",
    "client_cert_chain_fuids",
)
_HOST_COLUMNS = ("id.orig_h", "rx_hosts")
_UID_COLUMNS = ("uid", "conn_uids")


@dataclass(frozen=True, slots=True)
class Link:
    """One connection record that carried a certificate."""

    cert_id: str
    host: str | None
    uid: str | None
    us: int | None
    path: str
    line: int
    via: str


def _us(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value) * 1_000_000)
    except (TypeError, ValueError):
        pass
    try:
        return int(utc(parse_time(str(value))).timestamp() * 1_000_000)
    except ValueError:
        return None


def _records(src: LogSource, wanted: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of the lines of ``src`` that contain one of ``wanted``."""
    path = Path(src.path)
    nulls = set(src.null_values)
    try:
        for number, raw in enumerate(iter_lines(path), start=1):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line or line.startswith("#") or not any(w in line for w in wanted):
                continue
            if src.format is LogFormat.ZEEK_TSV or src.format is LogFormat.CSV:
                values = line.split(src.delimiter)
                if len(values) != len(src.columns):
                    continue
                yield (
                    number,
                    {
                        c: (None if v in nulls else v)
                        for c, v in zip(src.columns, values, strict=True)
                    },
                )
            else:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield number, record
    except OSError:
        return  # a damaged file: what was read stays; the engine reported the damage


def _items(value: Any, set_separator: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split(set_separator) if v]


def _has(src: LogSource, names: Iterable[str]) -> bool:
    if src.format is LogFormat.ZEEK_TSV or src.format is LogFormat.CSV:
        return any(n in src.columns for n in names)
    return True  # JSON: keys are known per record


def find_links(sources: Sequence[LogSource], ids: set[str]) -> dict[str, list[Link]]:
    """Every connection record in ``sources`` that carried one of the certificates ``ids``."""
    wanted = sorted(ids)
    links: dict[str, list[Link]] = {}
    for src in sources:
        if src.kind not in (LogKind.SSL, LogKind.FILES) and not _has(src, _CHAIN_COLUMNS):
            continue
        for number, record in _records(src, wanted):
            host = next((str(record[c]) for c in _HOST_COLUMNS if record.get(c)), None)
            if host is not None and not record.get("id.orig_h"):
                host = (_items(record["rx_hosts"], src.set_separator) or [host])[0]  # a set
            uids = [u for c in _UID_COLUMNS for u in _items(record.get(c), src.set_separator)]
            hits: list[tuple[str, str]] = []
            for column in _CHAIN_COLUMNS:
                hits.extend(
                    (cert, column)
                    for cert in _items(record.get(column), src.set_separator)
                    if cert in ids
                )
            fuid = record.get("fuid")
            if isinstance(fuid, str) and fuid in ids:
                hits.append((fuid, "files.log fuid"))
            for cert, via in hits:
                links.setdefault(cert, []).append(
                    Link(
                        cert_id=cert,
                        host=host,
                        uid=uids[0] if uids else None,
                        us=_us(record.get("ts")),
                        path=src.path,
                        line=number,
                        via=via,
                    )
                )
    missing = {link.uid for ls in links.values() for link in ls if link.host is None and link.uid}
    if missing:
        hosts = _hosts_of_uids(sources, missing)
        for cert, ls in links.items():
            links[cert] = [
                Link(
                    link.cert_id,
                    hosts.get(link.uid or ""),
                    link.uid,
                    link.us,
                    link.path,
                    link.line,
                    link.via,
                )
                if link.host is None
                else link
                for link in ls
            ]
    return links


def _hosts_of_uids(sources: Sequence[LogSource], uids: set[str]) -> dict[str, str]:
    """Connection uid -> originating host, from conn.log / ssl.log rows."""
    out: dict[str, str] = {}
    wanted = sorted(uids)
    for src in sources:
        if src.kind not in (LogKind.CONN, LogKind.SSL):
            continue
        for _, record in _records(src, wanted):
            uid, host = record.get("uid"), record.get("id.orig_h")
            if isinstance(uid, str) and uid in uids and host:
                out.setdefault(uid, str(host))
    return out


def _in_window(us: int | None, options: HuntOptions) -> bool:
    if us is None:
        return options.since is None and options.until is None
    if options.since is not None and us < int(utc(options.since).timestamp() * 1_000_000):
        return False
    return not (options.until is not None and us > int(utc(options.until).timestamp() * 1_000_000))


def attach_hosts(
    groups: Sequence[HitGroup], sources: Sequence[LogSource], options: HuntOptions
) -> list[HitGroup]:
    """Replace the engines' ``cert-id:`` hosts by the hosts of the connections that carried
    each certificate (one hit per connection), or by :data:`NO_HOST`."""
    x509 = {s.path for s in sources if s.kind is LogKind.X509}
    pending = [g for g in groups if g.host.startswith(CERT_HOST_PREFIX) and g.path in x509]
    if not pending:
        return list(groups)
    ids = {g.host[len(CERT_HOST_PREFIX) :] for g in pending}
    links = find_links(sources, ids)
    marked = {id(g) for g in pending}
    out: list[HitGroup] = [g for g in groups if id(g) not in marked]
    for g in pending:
        cert = g.host[len(CERT_HOST_PREFIX) :]
        by_host: dict[tuple[str, str, str], list[Link]] = {}
        for link in links.get(cert, []):
            if link.host and _in_window(link.us, options):
                by_host.setdefault((link.host, link.path, link.via), []).append(link)
        if not by_host:
            out.append(_with_host(g, NO_HOST))
            continue
        for (host, path, via), ls in sorted(by_host.items()):
            times = [link.us for link in ls if link.us is not None]
            lines = sorted(link.line for link in ls)
            out.append(
                HitGroup(
                    host=host,
                    indicator_type=g.indicator_type,
                    indicator_value=g.indicator_value,
                    field=f"{g.field} via {via}",
                    path=path,
                    first_us=min(times) if times else None,
                    last_us=max(times) if times else None,
                    count=len(ls),
                    min_line=lines[0],
                    max_line=lines[-1],
                    lines=tuple(lines[: options.max_lines]),
                    observed=g.observed,
                )
            )
            # The x509.log record itself, as a location of the same sighting (count 0: the
            # connections are what is counted).
            out.append(_with_host(g, host, count=0))
    return out


def _with_host(g: HitGroup, host: str, count: int | None = None) -> HitGroup:
    return HitGroup(
        host=host,
        indicator_type=g.indicator_type,
        indicator_value=g.indicator_value,
        field=g.field,
        path=g.path,
        first_us=g.first_us if count is None else None,
        last_us=g.last_us if count is None else None,
        count=g.count if count is None else count,
        min_line=g.min_line,
        max_line=g.max_line,
        lines=g.lines,
        observed=g.observed,
    )
