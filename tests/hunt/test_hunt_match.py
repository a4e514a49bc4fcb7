from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.hunt.conftest import make_logs

from taintline.case import Case
from taintline.hunt.certs import NO_HOST
from taintline.hunt.model import Field, HuntOptions
from taintline.hunt.service import run_hunt
from taintline.model import EdgeKind, FindingSource


def _keys(result):
    return {(s.host, s.indicator_key) for s in result.sightings}


def test_every_match_kind(hunt_case: Case, tmp_path: Path) -> None:
    paths = make_logs(tmp_path / "logs")
    result = run_hunt(
        hunt_case, [tmp_path / "logs"], HuntOptions(field_map={Field.DOMAIN: "dns.question.name"})
    )
    keys = _keys(result)
    expected = {
        ("10.0.0.1", "domain:evil.com"),  # a.b.evil.com, EVIL.com., and the rotated gzip file
        ("10.0.0.3", "domain:pbxsources.com"),  # subdomain
        ("10.0.0.5", "url:https://github.com/IconStorages/images"),  # icon repository path
        ("10.0.0.6", "url:http://bad.example/payload.bin"),  # URL without its query string
        ("10.0.0.8", "cidr:198.51.100.0/24"),
        ("10.0.0.9", "ipv4:203.0.113.7"),  # indicator on the originator side: host is the responder
        ("fd00::10", "cidr:2001:db8:bad::/48"),
        ("fd00::11", "ipv6:2001:db8:1::66"),
        ("10.0.0.13", "domain:pbxsources.com"),  # TLS SNI (Zeek JSON)
        ("10.0.0.15", "sha256:" + "a" * 64),  # files.log hash, upper-case in the log
        # certificate SAN: x509.log has no hosts, and no ssl.log here names the certificate
        (NO_HOST, "domain:evil.com"),
        ("10.0.0.16", "domain:evil.com"),  # JSON Lines with --map
        ("10.0.0.18", "url:http://bad.example/payload.bin"),  # proxy CSV, full URL
    }
    assert keys == expected
    # Negatives: notevil.com, another GitHub owner, a different query string, a near CIDR.
    hosts = {s.host for s in result.sightings}
    assert "10.0.0.2" not in hosts and "10.0.0.7" not in hosts and "10.0.0.12" not in hosts
    assert not any(s.indicator_key.endswith("gate.php?id=7") for s in result.sightings)

    evil = next(s for s in result.sightings if s.host == "10.0.0.1")
    assert evil.count == 3
    assert evil.first_seen == datetime(2023, 3, 29, 9, 40, tzinfo=UTC)
    assert evil.last_seen == datetime(2023, 3, 29, 10, 40, tzinfo=UTC)
    assert evil.sources == ("test-report",)
    assert {loc.path for loc in evil.locations} == {str(paths["dns"]), str(paths["dns_rot"])}
    plain = next(loc for loc in evil.locations if loc.path == str(paths["dns"]))
    assert plain.lines == (9, 12)  # 8 header lines, then records
    pbx = next(s for s in result.sightings if s.host == "10.0.0.3")
    assert pbx.sources == ("second-report", "test-report")


def test_results_are_recorded(hunt_case: Case, tmp_path: Path) -> None:
    make_logs(tmp_path / "logs")
    result = run_hunt(hunt_case, [tmp_path / "logs" / "dns.log"], run_id="r1")
    assert result.new_findings == 2
    findings = hunt_case.findings(source=FindingSource.HUNT)
    assert {f.host for f in findings} == {"10.0.0.1", "10.0.0.3"}
    f = next(f for f in findings if f.host == "10.0.0.1")
    assert f.kind == "network.ioc.domain"
    assert f.evidence["count"] == 2 and f.evidence["last_seen"] == "2023-03-29T09:40:03Z"
    edges = hunt_case.edges(EdgeKind.OBSERVED_ON)
    assert {(str(e.src), str(e.dst)) for e in edges} == {
        ("indicator:domain:evil.com", "host:10.0.0.1"),
        ("indicator:domain:pbxsources.com", "host:10.0.0.3"),
    }
    e = next(e for e in edges if e.dst.key == "10.0.0.1")
    assert e.valid_from == datetime(2023, 3, 29, 9, 40, tzinfo=UTC)
    assert e.valid_until == datetime(2023, 3, 29, 9, 40, 3, tzinfo=UTC)
    rows = hunt_case.con.execute("SELECT host, count FROM hunt_sightings ORDER BY host").fetchall()
    assert rows == [("10.0.0.1", 2), ("10.0.0.3", 1)]


def test_since_until(hunt_case: Case, tmp_path: Path) -> None:
    make_logs(tmp_path / "logs")
    logs = [tmp_path / "logs" / "dns.log", tmp_path / "logs" / "dns.2023-03-29-10-00-00.log.gz"]
    late = run_hunt(
        hunt_case, logs, HuntOptions(since=datetime(2023, 3, 29, 10, 0, tzinfo=UTC)), record=False
    )
    assert [(s.host, s.count) for s in late.sightings] == [("10.0.0.1", 1)]
    early = run_hunt(
        hunt_case,
        logs,
        HuntOptions(
            since=datetime(2023, 3, 29, 9, 40, 1, tzinfo=UTC),
            until=datetime(2023, 3, 29, 9, 40, 3, tzinfo=UTC),
        ),
        record=False,
    )
    assert [(s.host, s.count) for s in early.sightings] == [("10.0.0.1", 1)]


def test_run_hunt_owns_the_intel_bootstrap_and_the_run_record(tmp_path: Path) -> None:
    """The CLI, the demo and these tests run one pipeline: run_hunt loads the built-in pack
    into a case without intel and records a finished run of its own."""
    make_logs(tmp_path / "logs")
    with Case(tmp_path / "empty.duckdb") as case:
        result = run_hunt(case, [tmp_path / "logs"], command="hunt (test)")
        assert result.intel_loaded and result.indicators > 0
        assert not result.nothing_to_match
        assert result.run_id is not None
        row = case.con.execute(
            "SELECT command, status, finished IS NOT NULL FROM runs WHERE run_id = ?",
            [result.run_id],
        ).fetchone()
        assert row == ("hunt (test)", "done", True)
        again = run_hunt(case, [tmp_path / "logs"], record=False)
        assert not again.intel_loaded and again.run_id is None
    with Case(tmp_path / "other.duckdb") as other:
        nothing = run_hunt(other, [tmp_path / "missing.log"])
    assert nothing.no_input and nothing.problems and nothing.run_id is None
