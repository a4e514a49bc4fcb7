"""Vectorised classification of bare indicator values with Arrow compute (RE2 regexes).

Ingesting a million indicators one Python call per value is too slow for the targets in
``docs/intel.md``, so the common, already-canonical spellings are recognised column-wise:
hex hashes, dotted-quad IPv4, plain ASCII domains and simple http(s) URLs. Every value the
fast path does not accept (defanged, IDNA, IPv6, CIDR, ports, percent-escapes, anything odd)
is returned as "not classified" and goes through :mod:`taintline.intel.normalize` one by one.
The fast path only accepts values on which the slow path gives the same answer (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from taintline.intel.normalize import DOMAIN_RE, FILE_EXTENSIONS, IPV4_RE, URL_RE

FILE_EXT_RE = r"\.(?:" + "|".join(sorted(FILE_EXTENSIONS)) + r")$"


@dataclass(frozen=True, slots=True)
class Classified:
    """``types`` is null where the fast path did not decide; ``values`` are normalised there."""

    types: pa.Array
    values: pa.Array


_HASH_TYPES = {64: "sha256", 40: "sha1", 32: "md5"}
_NAMES = ("ipv4", "domain", "url")


def classify_array(raw: pa.Array) -> Classified:
    """Classify trimmed values; null type = hand the row to the slow path.

    Each pattern runs only on the values it can match: the hex test on values of a hash's
    length, the address, domain and URL patterns on the other values (a hex string has no
    dot, so none of them can match it). Same answers as one ``case_when`` over every
    pattern on every value, in that order of precedence, at about half the cost."""
    lower = pc.utf8_lower(raw)
    length = pc.binary_length(raw)
    hash_length = pc.fill_null(
        pc.is_in(length, value_set=pa.array(list(_HASH_TYPES), length.type)), False
    )
    is_hex = _where(hash_length, lower, lambda v: pc.match_substring_regex(v, r"^[0-9a-f]+$"))
    hash_type = pc.take(
        pa.array([None, *_HASH_TYPES.values()], pa.string()), _hash_index(is_hex, length)
    )
    rest = pc.and_(pc.is_valid(raw), pc.invert(is_hex))
    sub_raw, sub_lower = pc.filter(raw, rest), pc.filter(lower, rest)
    sub_length = pc.filter(length, rest)
    # Defanged, quoted or spaced values fail every pattern below; IDNA labels would pass the
    # domain pattern but must be checked by the idna package, so they go the slow way.
    not_slow = pc.invert(pc.fill_null(pc.match_substring(sub_lower, "xn--"), True))
    ipv4 = pc.match_substring_regex(sub_raw, IPV4_RE)
    domain = pc.and_(
        pc.and_(pc.match_substring_regex(sub_lower, DOMAIN_RE), pc.less_equal(sub_length, 253)),
        pc.invert(pc.match_substring_regex(sub_lower, FILE_EXT_RE)),
    )
    url = pc.match_substring_regex(sub_raw, URL_RE)
    conds = [pc.and_(not_slow, c) for c in (ipv4, domain, url)]
    struct = pa.StructArray.from_arrays(conds, names=list(_NAMES))
    sub_types = pc.case_when(struct, *[pa.scalar(n) for n in _NAMES])
    types = pc.replace_with_mask(hash_type, rest, sub_types) if len(sub_types) else hash_type
    use_lower = pc.is_in(types, value_set=pa.array(["sha256", "sha1", "md5", "domain"]))
    values = pc.if_else(pc.fill_null(use_lower, False), lower, raw)
    return Classified(types=types, values=values)


def _where(mask: pa.Array, values: pa.Array, test: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``test`` run only on the values where ``mask`` holds; false elsewhere."""
    if not pc.any(mask).as_py():
        return pa.array(np.zeros(len(values), dtype=bool))
    found = pc.fill_null(test(pc.filter(values, mask)), False)
    return pc.replace_with_mask(pa.array(np.zeros(len(values), dtype=bool)), mask, found)


def _hash_index(is_hex: pa.Array, length: pa.Array) -> pa.Array:
    """Index into ``[None, sha256, sha1, md5]``: 0 where the value is no hex hash."""
    position = pc.index_in(length, value_set=pa.array(list(_HASH_TYPES), length.type))
    return pc.if_else(is_hex, pc.add(position, 1), 0)


def agree_with_hint(types: pa.Array, hints: pa.Array) -> pa.Array:
    """Rows the fast path may keep: classified, and matching the stated type if any."""
    classified = pc.is_valid(types)
    same = pc.fill_null(pc.equal(types, hints), False)
    return pc.and_(classified, pc.or_(pc.is_null(hints), same))
