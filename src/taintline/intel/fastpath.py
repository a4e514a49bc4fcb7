"""Vectorised classification of bare indicator values with Arrow compute (RE2 regexes).

Ingesting a million indicators one Python call per value is too slow for the targets in
``docs/intel.md``, so the common, already-canonical spellings are recognised column-wise:
hex hashes, dotted-quad IPv4, plain ASCII domains and simple http(s) URLs. Every value the
fast path does not accept (defanged, IDNA, IPv6, CIDR, ports, percent-escapes, anything odd)
is returned as "not classified" and goes through :mod:`taintline.intel.normalize` one by one.
The fast path only accepts values on which the slow path gives the same answer (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from taintline.intel.normalize import DOMAIN_RE, FILE_EXTENSIONS, IPV4_RE, URL_RE

FILE_EXT_RE = r"\.(?:" + "|".join(sorted(FILE_EXTENSIONS)) + r")$"


@dataclass(frozen=True, slots=True)
class Classified:
    """``types`` is null where the fast path did not decide; ``values`` are normalised there."""

    types: pa.Array
    values: pa.Array


def classify_array(raw: pa.Array) -> Classified:
    """Classify trimmed values; null type = hand the row to the slow path."""
    lower = pc.utf8_lower(raw)
    length = pc.binary_length(raw)
    # Defanged, quoted or spaced values fail every pattern below; IDNA labels would pass the
    # domain pattern but must be checked by the idna package, so they go the slow way.
    slow = pc.fill_null(pc.match_substring(lower, "xn--"), True)
    is_hex = pc.match_substring_regex(lower, r"^[0-9a-f]+$")
    sha256 = pc.and_(is_hex, pc.equal(length, 64))
    sha1 = pc.and_(is_hex, pc.equal(length, 40))
    md5 = pc.and_(is_hex, pc.equal(length, 32))
    ipv4 = pc.match_substring_regex(raw, IPV4_RE)
    domain = pc.and_(
        pc.and_(pc.match_substring_regex(lower, DOMAIN_RE), pc.less_equal(length, 253)),
        pc.invert(pc.match_substring_regex(lower, FILE_EXT_RE)),
    )
    url = pc.match_substring_regex(raw, URL_RE)
    not_slow = pc.invert(slow)
    conds = [pc.and_(not_slow, c) for c in (sha256, sha1, md5, ipv4, domain, url)]
    names = ["sha256", "sha1", "md5", "ipv4", "domain", "url"]
    struct = pa.StructArray.from_arrays(conds, names=names)
    types = pc.case_when(struct, *[pa.scalar(n) for n in names])
    use_lower = pc.is_in(types, value_set=pa.array(["sha256", "sha1", "md5", "domain"]))
    values = pc.if_else(pc.fill_null(use_lower, False), lower, raw)
    return Classified(types=types, values=values)


def agree_with_hint(types: pa.Array, hints: pa.Array) -> pa.Array:
    """Rows the fast path may keep: classified, and matching the stated type if any."""
    classified = pc.is_valid(types)
    same = pc.fill_null(pc.equal(types, hints), False)
    return pc.and_(classified, pc.or_(pc.is_null(hints), same))
