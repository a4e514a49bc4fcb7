"""Property: a CSV/text IOC list built from known values in any published shape (random column
order and delimiter, type words, defanging, joined cells, BOM, CRLF, zero-width and bidi
marks, notes with report links) yields exactly those values."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taintline.intel.store import read_file
from taintline.limits import IntelLimits

REPORT = "https://reports.example/2023/analysis"
MARKS = ("\u200b", "\u200e", "\u200f", "\u202a", "\u2066", "\ufeff")
TYPE_WORDS = {
    "sha256": ("sha256", "SHA-256", "hash", "FileHash-SHA256"),
    "sha1": ("sha1", "SHA-1", "hash"),
    "md5": ("md5", "MD5", "hash"),
    "domain": ("domain", "hostname", "FQDN", "domain-name"),
    "ipv4": ("ip", "IPv4", "ip-dst"),
    "url": ("url", "URI", "url_path"),
}

label = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8)
hex_of = {
    kind: st.text("0123456789abcdef", min_size=size, max_size=size)
    for kind, size in (("sha256", 64), ("sha1", 40), ("md5", 32))
}
domain = st.builds(
    lambda a, b, t: f"{a}-{b}.{t}", label, label, st.sampled_from(["example", "test", "org", "net"])
)
ipv4 = st.builds(
    lambda a, b, c, d: f"{a}.{b}.{c}.{d}",
    st.integers(1, 223),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
)
url = st.builds(lambda d, p: f"https://{d}/{p}/file.bin", domain, label)
known = st.one_of(
    *(st.tuples(st.just(k), s) for k, s in hex_of.items()),
    st.tuples(st.just("domain"), domain),
    st.tuples(st.just("ipv4"), ipv4),
    st.tuples(st.just("url"), url),
)


@st.composite
def spelled(draw: st.DrawFn, item: tuple[str, str]) -> str:
    """One way a feed writes the value: defanged, case changed, with invisible marks."""
    kind, value = item
    text = value
    if kind in hex_of and draw(st.booleans()):
        text = text.upper()
    if kind in ("domain", "url", "ipv4") and draw(st.booleans()):
        dot = draw(st.sampled_from(["[.]", "(.)", "[dot]", "{.}"]))
        host_end = text.find("/", 8) if kind == "url" else len(text)
        text = text[:host_end].replace(".", dot) + text[host_end:]
    if kind == "url":
        scheme = draw(st.sampled_from(["https://", "hxxps://", "hxxps[://]", "https[:]//", ""]))
        text = scheme + text.removeprefix("https://")
    if draw(st.booleans()):
        text = draw(st.sampled_from(MARKS)) + text + draw(st.sampled_from(MARKS))
    return text


def _canonical(kind: str, value: str) -> tuple[str, str]:
    return kind, value.lower() if kind != "url" else value


@st.composite
def feed(draw: st.DrawFn) -> tuple[str, set[tuple[str, str]]]:
    items = draw(st.lists(known, min_size=1, max_size=8, unique_by=lambda kv: kv[1]))
    shape = draw(st.sampled_from(["typed", "headerless", "joined"]))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    expected = {_canonical(k, v) for k, v in items}
    if shape == "typed":
        columns = draw(st.permutations(["type", "value", "note"]))
        names = {
            "type": "Type",
            "value": draw(st.sampled_from(["Value", "Data", "IOC"])),
            "note": "Note",
        }
        if names["value"] == "Data":
            names["type"] = "Indicator"  # the "Indicator,Data,Note" shape
        writer.writerow([names[c] for c in columns])
        for n, item in enumerate(items):
            cells = {
                "type": draw(st.sampled_from(TYPE_WORDS[item[0]])),
                "value": draw(spelled(item)),
                "note": draw(st.sampled_from([f"row {n}", f"see {REPORT}", ""])),
            }
            writer.writerow([cells[c] for c in columns])
    elif shape == "headerless":
        for n, item in enumerate(items):
            note = draw(st.sampled_from(["", f"note {n}", f"from {REPORT}"]))
            writer.writerow([draw(spelled(item)), note] if note else [draw(spelled(item))])
    else:
        hashes = [i for i in items if i[0] in hex_of]
        others = [i for i in items if i[0] not in hex_of]
        joiner = draw(st.sampled_from([" ", ",", ";"]))
        # a hash column (one file's hashes joined in a cell), a value column, report links
        writer.writerow(["hashes", "indicator", "reference"])
        if hashes:
            writer.writerow([joiner.join(draw(spelled(h)) for h in hashes), "", REPORT])
        for item in others:
            writer.writerow(["", draw(spelled(item)), REPORT])
    text = out.getvalue()
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text, expected


@settings(
    max_examples=int(os.environ.get("TAINTLINE_PROPERTY_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(feed())
def test_any_shape_yields_exactly_the_known_values(case: tuple[str, set[tuple[str, str]]]) -> None:
    text, expected = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feed.csv"
        path.write_bytes(text.encode("utf-8"))
        result = read_file(path, IntelLimits())
    got = {(str(r["type"]), str(r["value"])) for t in result.tables for r in t.to_pylist()}
    assert got == expected, (text, result.problems)
    assert not result.rejected, result.problems
