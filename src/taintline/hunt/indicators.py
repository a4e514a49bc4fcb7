"""The indicators a hunt looks for, as plain tables both engines join against.

Loaded once from the case (view ``indicators``). Values are already normalised by the intel
readers (lower-case domains without trailing dot, canonical IP text, ``scheme://host/path``
URLs); here they are only re-keyed for matching:

* domains: exact value, plus the 8-character tail used as a cheap pre-filter (a query can only
  end in ``evil.com`` if its last 8 characters are those of ``evil.com``);
* URLs: ``host/path?query`` without the scheme (logs rarely know it); an indicator whose path
  ends in ``/`` or that names a GitHub repository (``github.com/OWNER/REPO``) matches every
  URL below it, on ``github.com`` and on ``raw.githubusercontent.com`` (the 3CX icon files);
* IPs exact, CIDR ranges by network, hashes exact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from taintline.case import Case, IndicatorSummary
from taintline.model import IndicatorType

#: Length of the domain-tail pre-filter key.
TAIL = 8

HUNT_TYPES = (
    IndicatorType.DOMAIN,
    IndicatorType.URL,
    IndicatorType.IPV4,
    IndicatorType.IPV6,
    IndicatorType.CIDR,
    IndicatorType.MD5,
    IndicatorType.SHA1,
    IndicatorType.SHA256,
)

_GITHUB_HOSTS = ("github.com", "raw.githubusercontent.com")


def url_key(value: str) -> str:
    """``scheme://host/path?query`` -> ``host/path?query`` (host lower-cased, no fragment)."""
    text = value.split("#", 1)[0]
    if "://" in text:
        text = text.split("://", 1)[1]
    host, slash, rest = text.partition("/")
    host = host.lower().rstrip(".")
    if host.endswith(":80") or host.endswith(":443"):
        host = host.rsplit(":", 1)[0]
    return f"{host}/{rest}" if slash else f"{host}/"


def url_prefixes(key: str) -> list[str]:
    """URL keys this indicator covers as a prefix (empty: exact match only)."""
    host, _, path = key.partition("/")
    path = path.split("?", 1)[0]
    out: list[str] = []
    if path.endswith("/") and path != "/":
        out.append(key.split("?", 1)[0])
    parts = [p for p in path.split("/") if p]
    if host in _GITHUB_HOSTS and len(parts) == 2:
        owner, repo = parts
        out.extend(f"{h}/{owner}/{repo}/" for h in _GITHUB_HOSTS)
    return out


@dataclass(slots=True)
class IndicatorSet:
    """Indicators by matching method; ``info`` holds sources and campaign per ``type:value``."""

    domains: list[str] = field(default_factory=list)
    urls: list[tuple[str, str]] = field(default_factory=list)  # (key, indicator value)
    url_prefixes: list[tuple[str, str]] = field(default_factory=list)
    ips: list[tuple[str, str]] = field(default_factory=list)  # (address, type)
    cidrs: list[str] = field(default_factory=list)
    hashes: list[tuple[str, str]] = field(default_factory=list)  # (value, type)
    info: dict[str, IndicatorSummary] = field(default_factory=dict)
    #: ``type:value`` keys that cannot be matched (a CIDR range that is not one).
    skipped: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.domains or self.urls or self.url_prefixes or self.ips or self.cidrs or self.hashes
        )

    def count(self) -> int:
        return len(self.info)

    # -- tables (Arrow, read by both engines) ---------------------------------------------
    def domain_table(self) -> pa.Table:
        return pa.table({"value": pa.array(self.domains, pa.string())})

    def tail_keys(self) -> tuple[list[str], dict[int, list[str]]]:
        """Tails for the pre-filter: 8-character tails, and whole values of shorter domains
        (by length). A trailing-dot spelling (``evil.com.``) is covered too."""
        tails: set[str] = set()
        short: dict[int, set[str]] = {}
        # URL indicators' hosts go through the same tail filter (exact URLs are compared later).
        for value in [*self.domains, *self.url_hosts()]:
            for spelled in (value, value + "."):
                if len(spelled) >= TAIL:
                    tails.add(spelled[-TAIL:])
                else:
                    short.setdefault(len(spelled), set()).add(spelled)
        return sorted(tails), {n: sorted(v) for n, v in sorted(short.items())}

    def url_table(self) -> pa.Table:
        return pa.table(
            {
                "key": pa.array([k for k, _ in self.urls], pa.string()),
                "value": pa.array([v for _, v in self.urls], pa.string()),
                "has_query": pa.array(["?" in k for k, _ in self.urls], pa.bool_()),
            }
        )

    def url_prefix_table(self) -> pa.Table:
        return pa.table(
            {
                "prefix": pa.array([k for k, _ in self.url_prefixes], pa.string()),
                "value": pa.array([v for _, v in self.url_prefixes], pa.string()),
            }
        )

    def url_hosts(self) -> list[str]:
        hosts = {k.split("/", 1)[0] for k, _ in self.urls}
        hosts.update(k.split("/", 1)[0] for k, _ in self.url_prefixes)
        return sorted(hosts)

    def ip_table(self) -> pa.Table:
        return pa.table(
            {
                "value": pa.array([v for v, _ in self.ips], pa.string()),
                "type": pa.array([t for _, t in self.ips], pa.string()),
            }
        )

    def hash_table(self) -> pa.Table:
        return pa.table(
            {
                "value": pa.array([v for v, _ in self.hashes], pa.string()),
                "type": pa.array([t for _, t in self.hashes], pa.string()),
            }
        )

    def cidr_first_labels(self) -> tuple[list[str], bool, list[str], bool]:
        """Pre-filter keys: first octets of v4 networks (``all4`` when a network is wider than
        a /8) and first hextets of v6 networks (``all6`` when wider than a /16)."""
        v4: set[str] = set()
        v6: set[str] = set()
        all4 = all6 = False
        for text in self.cidrs:
            net = ipaddress.ip_network(text, strict=False)
            if net.version == 4:
                if net.prefixlen < 8:
                    all4 = True
                else:
                    v4.add(str(net.network_address).split(".")[0])
            elif net.prefixlen < 16:
                all6 = True
            else:
                first = net.network_address.exploded.split(":")[0].lstrip("0")
                # Zeek and most tools print compressed addresses: "::1" has an empty first label.
                v6.update((first,) if first else ("", "0"))
        return sorted(v4), all4, sorted(v6), all6

    def match_cidrs(self, addresses: Iterable[str]) -> list[tuple[str, str]]:
        """(address, network) for every address inside a CIDR indicator.

        Done here, with :mod:`ipaddress`, on the few distinct addresses that passed the
        pre-filter: DuckDB's ``inet`` extension is not bundled (and cannot be downloaded
        offline) and Spark has no 128-bit integer type for IPv6 range bounds; one
        implementation for both engines keeps their answers identical.
        """
        by_prefix: dict[tuple[int, int], dict[int, str]] = {}
        for text in self.cidrs:
            net = ipaddress.ip_network(text, strict=False)
            by_prefix.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = text
        out: list[tuple[str, str]] = []
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address.strip().strip("[]"))
            except ValueError:
                continue
            value = int(ip)
            for (version, prefix), nets in by_prefix.items():
                if version != ip.version:
                    continue
                bits = ip.max_prefixlen - prefix
                hit = nets.get((value >> bits) << bits)
                if hit is not None:
                    out.append((address, hit))
        return out


def load_indicators(case: Case) -> IndicatorSet:
    """Every network and file-hash indicator in the case, keyed for matching."""
    found = IndicatorSet()
    for summary in case.indicators(types=HUNT_TYPES):
        key = f"{summary.type}:{summary.value}"
        found.info[key] = summary
        value = summary.value
        if summary.type is IndicatorType.DOMAIN:
            found.domains.append(value)
        elif summary.type is IndicatorType.URL:
            ukey = url_key(value)
            found.urls.append((ukey, value))
            found.url_prefixes.extend((p, value) for p in url_prefixes(ukey))
        elif summary.type in (IndicatorType.IPV4, IndicatorType.IPV6):
            found.ips.append((value, str(summary.type)))
        elif summary.type is IndicatorType.CIDR:
            try:  # an imported case can hold anything: a bad range is skipped, not fatal
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                found.skipped.append(key)
                continue
            found.cidrs.append(value)
        else:
            found.hashes.append((value.lower(), str(summary.type)))
    return found
