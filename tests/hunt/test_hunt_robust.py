"""Any indicator set and any Zeek log gives sightings or a per-file problem, never a
traceback, in both the literal pre-filter and the full read."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from tests.hunt.conftest import T0

from taintline.case import Case
from taintline.cli.main import main
from taintline.hunt.model import HuntOptions
from taintline.hunt.service import run_hunt
from taintline.hunt.synth import write_zeek_tsv, zeek_header
from taintline.model import Indicator, IndicatorType

#: Every prefix size class: the pre-filter keys a v4 range by whole leading octets (none for
#: /0-/7), a v6 range by its first hextet (none below /16; "::" spelled for a zero hextet).
NETWORKS = (
    "10.0.0.0/8",
    "10.128.0.0/9",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "192.168.32.0/20",
    "198.51.100.0/24",
    "198.51.100.128/25",
    "203.0.113.6/31",
    "203.0.113.7/32",
    "2001:db8::/32",
    "2001:db8:bad::/48",
    "2001:db8:bad:1::/64",
    "2001:db8:bad:1::42/128",
    "::/16",
    "64:ff9b::/96",
)
WIDE = ("0.0.0.0/0", "8.0.0.0/7", "::/0", "fe80::/10")

#: (originator, responder) pairs; hosts inside and just outside every range above.
PAIRS = [
    ("10.9.9.9", "192.0.2.1"),
    ("10.200.0.1", "10.64.1.1"),
    ("172.31.255.255", "172.32.0.1"),
    ("192.168.47.1", "192.168.48.1"),
    ("198.51.100.200", "198.51.101.1"),
    ("203.0.113.6", "203.0.113.8"),
    ("203.0.113.7", "9.9.9.9"),
    ("fd00::1", "2001:db8:bad:1::42"),
    ("fd00::2", "2001:db8:bad:2::1"),
    ("fd00::3", "2001:db9::1"),
    ("fd00::4", "::1"),
    ("fd00::5", "64:ff9b::c000:201"),
    ("fe80::1", "8.8.8.8"),
]


def _expected(networks: tuple[str, ...]) -> set[tuple[str, str]]:
    """(host, cidr:network) as the hunt defines it: the originator when the responder is in
    the range, the responder when the originator is."""
    out = set()
    for text in networks:
        net = ipaddress.ip_network(text)
        for orig, resp in PAIRS:
            for addr, host in ((resp, orig), (orig, resp)):
                ip = ipaddress.ip_address(addr)
                if ip.version == net.version and ip in net:
                    out.add((host, f"cidr:{text}"))
    return out


def _logs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_zeek_tsv(
        folder / "conn.log",
        "conn",
        [
            {
                "ts": T0 + i,
                "uid": f"C{i}",
                "id.orig_h": orig,
                "id.orig_p": 40000 + i,
                "id.resp_h": resp,
                "id.resp_p": 443,
                "proto": "tcp",
            }
            for i, (orig, resp) in enumerate(PAIRS)
        ],
    )
    return folder


@pytest.mark.parametrize("networks", [NETWORKS, NETWORKS + WIDE], ids=["narrow", "with-wide"])
def test_every_range_size_in_prefilter_and_full_read(
    tmp_path: Path, networks: tuple[str, ...]
) -> None:
    logs = _logs(tmp_path / "logs")
    extra = [
        Indicator(IndicatorType.DOMAIN, "evil.example", "t"),
        Indicator(IndicatorType.URL, "http://bad.example/x", "t"),
        Indicator(IndicatorType.IPV4, "9.9.9.9", "t"),
        Indicator(IndicatorType.IPV6, "2001:db9::1", "t"),
        Indicator(IndicatorType.SHA256, "b" * 64, "t"),
        # an imported case can hold a range that is none: skipped, not fatal
        Indicator(IndicatorType.CIDR, "10.0.0.0/33", "t"),
    ]
    with Case(tmp_path / "case.duckdb") as case:
        case.add_indicators([*(Indicator(IndicatorType.CIDR, n, "t") for n in networks), *extra])
        got = {}
        for prefilter in (True, False):
            result = run_hunt(case, [logs], HuntOptions(prefilter=prefilter), record=False)
            assert not [p for f in result.files for p in f.problems]
            got[prefilter] = {
                (s.host, s.indicator_key)
                for s in result.sightings
                if s.indicator_type is IndicatorType.CIDR
            }
    assert got[True] == got[False] == _expected(networks)


#: Zeek logs without host, domain, IP or hash columns (shapes as Zeek writes them).
HEADERLESS_LOGS = {
    "loaded_scripts": (
        ("name",),
        ["/opt/zeek/share/zeek/base/init-bare.zeek", "  /opt/zeek/x.zeek"],
    ),
    "capture_loss": (
        ("ts", "ts_delta", "peer", "gaps", "acks", "percent_lost"),
        [f"{T0:.6f}\t60.000100\tzeek\t0\t0\t0.0", f"{T0 + 60:.6f}\t60.000200\tzeek\t3\t90\t3.3"],
    ),
    "packet_filter": (
        ("ts", "node", "filter", "init", "success", "failure_reason"),
        [f"{T0:.6f}\tzeek\tip or not ip\tT\tT\t-"],
    ),
    "stats": (
        ("ts", "peer", "mem", "pkts_proc", "bytes_recv"),
        [f"{T0:.6f}\tzeek\t512\t1000\t80000"],
    ),
}


def _write_raw(path: Path, name: str, fields: tuple[str, ...], rows: list[str]) -> None:
    path.write_text(
        zeek_header(name, fields)
        + "".join(r + "\n" for r in rows)
        + "#close\t2023-03-29-11-00-00\n"
    )


@pytest.mark.parametrize("full_read", [False, True], ids=["prefilter", "full-read"])
def test_logs_without_matchable_columns(
    tmp_path: Path, full_read: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--full-read`` on loaded_scripts.log & co. ended the run with a DuckDB
    CatalogException (``_rej does not exist``)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, (fields, rows) in HEADERLESS_LOGS.items():
        _write_raw(logs / f"{name}.log", name, fields, rows)
    _logs(logs)
    case = str(tmp_path / "case.duckdb")
    iocs = tmp_path / "iocs.txt"
    iocs.write_text("10.0.0.0/8\n")
    assert main(["intel", "add", str(iocs), "--case", case]) == 0
    args = ["hunt", str(logs), "--case", case, "--format", "jsonl"]
    code = main([*args, "--full-read"] if full_read else args)
    out = capsys.readouterr()
    assert code == 1, out.err  # the conn.log sighting; the other files read without a problem
    assert "10.9.9.9" in out.out
    assert "internal error" not in out.err and "warning" not in out.err


@pytest.mark.parametrize(
    "declared", ["\\t", "\\x09", "\t"], ids=["backslash-t", "backslash-x09", "real-tab"]
)
def test_separator_header_spellings(tmp_path: Path, declared: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    fields = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "query")
    header = zeek_header("dns", fields).replace("#separator \\x09", f"#separator {declared}")
    row = f"{T0:.6f}\tC1\t10.5.0.1\t5353\t10.0.0.53\t53\tudp\twww.evil.example"
    (logs / "dns.log").write_text(header + row + "\n")
    with Case(tmp_path / "case.duckdb") as case:
        case.add_indicators([Indicator(IndicatorType.DOMAIN, "evil.example", "t")])
        result = run_hunt(case, [logs], HuntOptions(), record=False)
    assert not result.problems, result.problems
    assert [(s.host, s.indicator_key) for s in result.sightings] == [
        ("10.5.0.1", "domain:evil.example")
    ]
