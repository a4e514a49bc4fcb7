"""Certificate (x509.log) sightings are tied to the host of the connection that carried the
certificate, through the ids Zeek writes: ``fingerprint`` <- ssl.log ``cert_chain_fps``
(Zeek 4.2+), or the file id ``id``/``fuid`` <- files.log (``rx_hosts``, ``conn_uids``) and
ssl.log ``cert_chain_fuids`` -> conn.log ``uid`` -> ``id.orig_h`` (older Zeek)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.hunt.conftest import T0

from taintline.case import Case
from taintline.hunt.certs import NO_HOST
from taintline.hunt.model import HuntOptions
from taintline.hunt.service import run_hunt
from taintline.hunt.synth import write_zeek_json, write_zeek_tsv, zeek_header, zeek_line
from taintline.model import FindingSource, Indicator, IndicatorType

FP = "6f1c0e0b5d3a9f2e4c7b8a1d0e9f8c7b6a5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"

#: x509.log before Zeek 4.2: the certificate's file id in ``id``.
OLD_X509 = (
    "ts",
    "id",
    "certificate.version",
    "certificate.serial",
    "certificate.subject",
    "san.dns",
)
#: files.log before Zeek 5: hosts as sets, the connections as ``conn_uids``.
OLD_FILES = ("ts", "fuid", "tx_hosts", "rx_hosts", "conn_uids", "source", "depth", "mime_type")
OLD_SSL = (
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "server_name",
    "cert_chain_fuids",
)


def _write(
    path: Path, name: str, fields: tuple[str, ...], records: list[dict[str, object]]
) -> None:
    body = "".join(zeek_line(fields, r) + "\n" for r in records)
    path.write_text(zeek_header(name, fields) + body + "#close\t2023-03-29-11-00-00\n")


def _cert(subject: str, **extra: object) -> dict[str, object]:
    return {
        "ts": T0 + 1,
        "certificate.version": 3,
        "certificate.serial": "0A1B",
        "certificate.subject": subject,
        **extra,
    }


@pytest.fixture
def cert_case(tmp_path: Path) -> Case:
    c = Case(tmp_path / "case.duckdb")
    c.add_indicators([Indicator(IndicatorType.DOMAIN, "pbxsources.com", "test-report")])
    yield c
    c.close()


def _hosts(case: Case, folder: Path, prefilter: bool) -> dict[str, int]:
    result = run_hunt(case, [folder], HuntOptions(prefilter=prefilter), record=False)
    assert not [p for f in result.files for p in f.problems], result.files
    return {s.host: s.count for s in result.sightings if s.indicator_key == "domain:pbxsources.com"}


@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "full-read"])
def test_fingerprint_ties_certificate_to_every_connection(
    cert_case: Case, tmp_path: Path, prefilter: bool
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_zeek_tsv(
        logs / "x509.log", "x509", [{**_cert("CN=cdn.pbxsources.com,O=X"), "fingerprint": FP}]
    )
    ssl = [
        {
            "ts": T0 + 2,
            "uid": "CS1",
            "id.orig_h": "10.1.0.5",
            "id.orig_p": 50000,
            "id.resp_h": "192.0.2.80",
            "id.resp_p": 443,
            "cert_chain_fps": f"{FP},{'e' * 64}",
        },
        {
            "ts": T0 + 90,
            "uid": "CS2",
            "id.orig_h": "10.1.0.5",
            "id.orig_p": 50001,
            "id.resp_h": "192.0.2.80",
            "id.resp_p": 443,
            "cert_chain_fps": FP,
        },
        {
            "ts": T0 + 95,
            "uid": "CS3",
            "id.orig_h": "10.1.0.6",
            "id.orig_p": 50002,
            "id.resp_h": "192.0.2.80",
            "id.resp_p": 443,
            "cert_chain_fps": FP,
        },
        {
            "ts": T0 + 99,
            "uid": "CS4",
            "id.orig_h": "10.1.0.7",
            "id.orig_p": 50003,
            "id.resp_h": "192.0.2.81",
            "id.resp_p": 443,
            "cert_chain_fps": "d" * 64,
        },
    ]
    write_zeek_tsv(logs / "ssl.log", "ssl", ssl)
    assert _hosts(cert_case, logs, prefilter) == {"10.1.0.5": 2, "10.1.0.6": 1}


def test_json_logs_tie_certificates_too(cert_case: Case, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_zeek_json(
        logs / "x509.json", [{"_path": "x509", **_cert("CN=a.pbxsources.com"), "fingerprint": FP}]
    )
    write_zeek_json(
        logs / "ssl.json",
        [
            {
                "_path": "ssl",
                "ts": T0 + 3,
                "uid": "CJ1",
                "id.orig_h": "10.2.0.9",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.9",
                "id.resp_p": 443,
                "cert_chain_fps": [FP],
            }
        ],
    )
    assert _hosts(cert_case, logs, True) == {"10.2.0.9": 1}


@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "full-read"])
def test_old_zeek_file_ids_through_files_ssl_and_conn(
    cert_case: Case, tmp_path: Path, prefilter: bool
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    _write(
        logs / "x509.log",
        "x509",
        OLD_X509,
        [
            _cert("CN=old.pbxsources.com", id="FkYbJ51cVq2Wq8bNS1"),
            _cert("CN=other.pbxsources.com", id="Fother000000000001"),
        ],
    )
    # files.log with the receiving host as a set
    _write(
        logs / "files.log",
        "files",
        OLD_FILES,
        [
            {
                "ts": T0 + 2,
                "fuid": "FkYbJ51cVq2Wq8bNS1",
                "tx_hosts": "192.0.2.80",
                "rx_hosts": "10.3.0.4",
                "conn_uids": "Cold1",
                "source": "SSL",
                "depth": 0,
                "mime_type": "application/x-x509-user-cert",
            },
        ],
    )
    # ssl.log naming the second certificate by file id; its host comes from the row
    _write(
        logs / "ssl.log",
        "ssl",
        OLD_SSL,
        [
            {
                "ts": T0 + 5,
                "uid": "Cold2",
                "id.orig_h": "10.3.0.8",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.81",
                "id.resp_p": 443,
                "cert_chain_fuids": "Fother000000000001",
            },
        ],
    )
    write_zeek_tsv(
        logs / "conn.log",
        "conn",
        [
            {
                "ts": T0 + 2,
                "uid": "Cold1",
                "id.orig_h": "10.3.0.4",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.80",
                "id.resp_p": 443,
                "proto": "tcp",
            },
        ],
    )
    assert _hosts(cert_case, logs, prefilter) == {"10.3.0.4": 1, "10.3.0.8": 1}


def test_files_log_without_host_resolves_the_connection_uid(
    cert_case: Case, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    _write(
        logs / "x509.log", "x509", OLD_X509, [_cert("CN=c.pbxsources.com", id="Fnohost00000000001")]
    )
    fields = ("ts", "fuid", "conn_uids", "source", "mime_type")
    _write(
        logs / "files.log",
        "files",
        fields,
        [
            {
                "ts": T0 + 2,
                "fuid": "Fnohost00000000001",
                "conn_uids": "Cconn1",
                "source": "SSL",
                "mime_type": "application/x-x509-user-cert",
            },
        ],
    )
    write_zeek_tsv(
        logs / "conn.log",
        "conn",
        [
            {
                "ts": T0 + 2,
                "uid": "Cconn1",
                "id.orig_h": "10.4.0.2",
                "id.orig_p": 1,
                "id.resp_h": "192.0.2.1",
                "id.resp_p": 443,
                "proto": "tcp",
            },
        ],
    )
    assert _hosts(cert_case, logs, True) == {"10.4.0.2": 1}


def test_unlinked_certificate_says_no_host_is_known(cert_case: Case, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_zeek_tsv(
        logs / "x509.log", "x509", [{**_cert("CN=lone.pbxsources.com"), "fingerprint": FP}]
    )
    result = run_hunt(cert_case, [logs], HuntOptions(), run_id="r1")
    assert [s.host for s in result.sightings] == [NO_HOST]
    finding = next(iter(cert_case.findings(source=FindingSource.HUNT)))
    assert (
        finding.host is None
        and "no connection in the given logs ties it to a host" in finding.message
    )
    assert "-" not in {s.host for s in result.sightings}
    # not a graph fact about a host called "(no host known)"
    assert not cert_case.con.execute("SELECT count(*) FROM nodes WHERE kind = 'host'").fetchone()[0]
