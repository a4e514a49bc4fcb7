from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.hunt.synth import write_zeek_json, write_zeek_tsv
from taintline.model import Indicator, IndicatorType

T0 = 1680082800.0  # 2023-03-29T09:40:00Z

INDICATORS = [
    Indicator(IndicatorType.DOMAIN, "evil.com", "test-report", campaign="test"),
    Indicator(IndicatorType.DOMAIN, "pbxsources.com", "test-report", campaign="test"),
    Indicator(IndicatorType.DOMAIN, "pbxsources.com", "second-report", campaign="test"),
    Indicator(IndicatorType.URL, "https://github.com/IconStorages/images", "test-report"),
    Indicator(IndicatorType.URL, "http://bad.example/payload.bin", "test-report"),
    Indicator(IndicatorType.URL, "http://bad.example/gate.php?id=7", "test-report"),
    Indicator(IndicatorType.IPV4, "203.0.113.7", "test-report"),
    Indicator(IndicatorType.IPV6, "2001:db8:1::66", "test-report"),
    Indicator(IndicatorType.CIDR, "198.51.100.0/24", "test-report"),
    Indicator(IndicatorType.CIDR, "2001:db8:bad::/48", "test-report"),
    Indicator(IndicatorType.SHA256, "a" * 64, "test-report"),
]


def dns(i: int, host: str, query: str, resp: str = "10.0.0.53") -> dict[str, object]:
    return {
        "ts": T0 + i,
        "uid": f"C{i}",
        "id.orig_h": host,
        "id.orig_p": 40000 + i,
        "id.resp_h": resp,
        "id.resp_p": 53,
        "proto": "udp",
        "query": query,
        "qclass": 1,
        "qclass_name": "C_INTERNET",
        "answers": "",
    }


def make_logs(folder: Path) -> dict[str, Path]:
    """One file per reader and match kind; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    paths["dns"] = folder / "dns.log"
    write_zeek_tsv(
        paths["dns"],
        "dns",
        [
            dns(0, "10.0.0.1", "a.b.evil.com"),
            dns(1, "10.0.0.2", "notevil.com"),
            dns(2, "10.0.0.2", "www.example.org"),
            dns(3, "10.0.0.1", "EVIL.com."),
            dns(4, "10.0.0.3", "x.pbxsources.com"),
        ],
    )
    paths["dns_rot"] = folder / "dns.2023-03-29-10-00-00.log.gz"
    write_zeek_tsv(
        paths["dns_rot"],
        "dns",
        [dns(3600, "10.0.0.1", "evil.com"), dns(3601, "10.0.0.4", "benign.org")],
        compress=True,
    )
    paths["http"] = folder / "http.log"
    write_zeek_tsv(
        paths["http"],
        "http",
        [
            {
                "ts": T0 + 10,
                "uid": "H1",
                "id.orig_h": "10.0.0.5",
                "id.orig_p": 50000,
                "id.resp_h": "185.199.108.133",
                "id.resp_p": 443,
                "method": "GET",
                "host": "raw.githubusercontent.com",
                "uri": "/IconStorages/images/main/icon7.ico",
            },
            {
                "ts": T0 + 11,
                "uid": "H2",
                "id.orig_h": "10.0.0.6",
                "id.orig_p": 50001,
                "id.resp_h": "192.0.2.10",
                "id.resp_p": 80,
                "method": "GET",
                "host": "bad.example",
                "uri": "/payload.bin?cache=1",
            },
            {
                "ts": T0 + 12,
                "uid": "H3",
                "id.orig_h": "10.0.0.6",
                "id.orig_p": 50002,
                "id.resp_h": "192.0.2.10",
                "id.resp_p": 80,
                "method": "GET",
                "host": "bad.example",
                "uri": "/gate.php?id=8",
            },
            {
                "ts": T0 + 13,
                "uid": "H4",
                "id.orig_h": "10.0.0.7",
                "id.orig_p": 50003,
                "id.resp_h": "192.0.2.11",
                "id.resp_p": 80,
                "method": "GET",
                "host": "raw.githubusercontent.com",
                "uri": "/OtherOrg/images/main/icon7.ico",
            },
        ],
    )
    paths["conn"] = folder / "conn.log"
    write_zeek_tsv(
        paths["conn"],
        "conn",
        [
            {
                "ts": T0 + 20,
                "uid": "K1",
                "id.orig_h": "10.0.0.8",
                "id.orig_p": 1,
                "id.resp_h": "198.51.100.23",
                "id.resp_p": 443,
                "proto": "tcp",
            },
            {
                "ts": T0 + 21,
                "uid": "K2",
                "id.orig_h": "203.0.113.7",
                "id.orig_p": 2,
                "id.resp_h": "10.0.0.9",
                "id.resp_p": 22,
                "proto": "tcp",
            },
            {
                "ts": T0 + 22,
                "uid": "K3",
                "id.orig_h": "fd00::10",
                "id.orig_p": 3,
                "id.resp_h": "2001:db8:bad::1",
                "id.resp_p": 443,
                "proto": "tcp",
            },
            {
                "ts": T0 + 23,
                "uid": "K4",
                "id.orig_h": "fd00::11",
                "id.orig_p": 4,
                "id.resp_h": "2001:db8:1::66",
                "id.resp_p": 443,
                "proto": "tcp",
            },
            {
                "ts": T0 + 24,
                "uid": "K5",
                "id.orig_h": "10.0.0.12",
                "id.orig_p": 5,
                "id.resp_h": "198.51.101.1",
                "id.resp_p": 443,
                "proto": "tcp",
            },
        ],
    )
    paths["ssl"] = folder / "ssl.json"
    write_zeek_json(
        paths["ssl"],
        [
            {
                "_path": "ssl",
                "ts": T0 + 30,
                "uid": "S1",
                "id.orig_h": "10.0.0.13",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.50",
                "id.resp_p": 443,
                "server_name": "cdn.pbxsources.com",
            },
            {
                "_path": "ssl",
                "ts": T0 + 31,
                "uid": "S2",
                "id.orig_h": "10.0.0.14",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.51",
                "id.resp_p": 443,
                "server_name": "example.net",
            },
        ],
    )
    paths["files"] = folder / "files.log"
    write_zeek_tsv(
        paths["files"],
        "files",
        [
            {
                "ts": T0 + 40,
                "fuid": "F1",
                "uid": "H9",
                "id.orig_h": "10.0.0.15",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.60",
                "id.resp_p": 80,
                "sha256": "A" * 64,
                "md5": "b" * 32,
            }
        ],
    )
    paths["x509"] = folder / "x509.log"
    write_zeek_tsv(
        paths["x509"],
        "x509",
        [
            {
                "ts": T0 + 50,
                "fingerprint": "ff",
                "certificate.subject": "CN=www.example.com,O=Example",
                "san.dns": "alt.example.com,login.evil.com",
            }
        ],
    )
    paths["ecs"] = folder / "ecs.jsonl"
    paths["ecs"].write_text(
        '{"@timestamp": "2023-03-29T09:41:00Z", "source": {"ip": "10.0.0.16"}, "dns": {"question": {"name": "api.evil.com"}}}\n'
        '{"@timestamp": "2023-03-29T09:41:01Z", "source": {"ip": "10.0.0.17"}, "dns": {"question": {"name": "safe.org"}}}\n'
    )
    paths["proxy"] = folder / "proxy.csv"
    paths["proxy"].write_text(
        "timestamp,src_ip,dst_ip,url,action\n"
        '2023-03-29T09:42:00Z,10.0.0.18,192.0.2.70,"http://bad.example/payload.bin",allowed\n'
        "2023-03-29T09:42:01Z,10.0.0.19,192.0.2.71,https://www.example.org/,allowed\n"
    )
    return paths


@pytest.fixture
def hunt_case(tmp_path: Path) -> Case:
    c = Case(tmp_path / "case.duckdb")
    c.add_indicators(INDICATORS)
    yield c
    c.close()


__all__ = ["INDICATORS", "T0", "dns", "gzip", "make_logs"]
