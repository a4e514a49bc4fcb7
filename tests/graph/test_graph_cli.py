from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stix2

from taintline.case import Case
from taintline.cli.main import main
from taintline.demo import graph as demo
from taintline.demo.context import DemoContext
from taintline.graph.downstream import downstream
from taintline.graph.ingest import add_files
from taintline.graph.service import run_cascade, upstream
from taintline.graph.store import Seed, explain_path, from_us
from taintline.model import Finding, FindingSource, NodeKind, NodeRef, Severity


@pytest.fixture
def story(tmp_path: Path) -> tuple[Path, demo.StoryFiles]:
    files = demo.write_story(tmp_path / "in")
    return tmp_path / "case.duckdb", files


def _seed() -> str:
    return f"artifact:{demo.XTRADER_SHA}@2022-02-03T10:00:00Z"


def test_graph_add_and_cascade_cli(story, capsys):
    case_path, files = story
    assert main(["graph", "add", *map(str, files.all()), "--case", str(case_path)]) == 0
    out = capsys.readouterr().out
    assert "inventory-csv" in out and "in-toto" in out and "builds-csv" in out
    assert main(["graph", "stats", "--case", str(case_path)]) == 0
    assert "distributed_to" in capsys.readouterr().out
    assert main(["cascade", "--seed", _seed(), "--case", str(case_path), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_node = {r["node"]: r for r in rows}
    assert by_node["host:dev-home-pc"]["time"] == "2022-04-12T09:00:00Z"
    assert by_node["host:corp-vpn"]["time"] == "2022-04-14T21:13:00Z"
    assert by_node["host:build-win-01"]["time"] == "2022-05-20T03:41:00Z"
    assert by_node["release:3cxdesktopapp@18.12.407"]["time"] == "2023-03-07T10:12:00Z"
    assert by_node["org:acme-logistics"]["time"] == "2023-03-09T08:00:00Z"
    # negatives: removed before the taint, built before the lateral movement, got a clean copy
    for absent in (
        "host:trader-old-pc",
        "release:3cxdesktopapp@18.11.1213",
        "build:win-18.11.1213",
        "org:globex-shipping",
        "host:build-mac-01x",
    ):
        assert absent not in by_node
    # --explain without seeds uses the last stored run
    assert main(["cascade", "--explain", "host:initech-pc-7", "--case", str(case_path)]) == 0
    text = capsys.readouterr().out
    assert "--installed_on" in text and "--distributed_to" in text and "distribution.csv:5" in text


def test_downstream_notices_validate_with_stix2(story, tmp_path, capsys):
    case_path, files = story
    assert main(["graph", "add", *map(str, files.all()), "--case", str(case_path)]) == 0
    notices = tmp_path / "notices"
    assert (
        main(
            [
                "cascade",
                "--seed",
                _seed(),
                "--downstream",
                "--notices",
                str(notices),
                "--case",
                str(case_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "org:acme-logistics" in out and "org:globex-shipping" not in out
    stix_files = sorted(notices.glob("*.stix.json"))
    assert [p.name for p in stix_files] == [
        "host-initech-pc-7.stix.json",
        "org-acme-logistics.stix.json",
        "org-umbrella-labs.stix.json",
    ]
    for path in stix_files:
        bundle = stix2.parse(path.read_text(), allow_custom=False)
        types = sorted({o.type for o in bundle.objects})
        assert types == ["identity", "indicator", "note", "report"]
    acme = json.loads((notices / "org-acme-logistics.json").read_text())
    assert acme["artifacts_sha256"] == [demo.MSI["18.12.407"]]
    assert acme["first_received"] == "2023-03-09T08:00:00Z"


def test_from_findings_and_upstream(case: Case, tmp_path: Path):
    files = demo.write_story(tmp_path)
    add_files(case, files.all())
    case.add_findings(
        [
            Finding(
                "ioc.hash",
                Severity.CRITICAL,
                "C:/Users/dev/Downloads/X_TRADER.exe",
                "bad",
                FindingSource.SCAN,
                host="dev-home-pc",
                evidence={"sha256": demo.XTRADER_SHA},
            ),
        ]
    )
    outcome = run_cascade(case, from_findings=True)
    dev = outcome.graph.index(NodeRef(NodeKind.HOST, "dev-home-pc"))
    assert dev is not None
    assert from_us(int(outcome.result.arrival[dev])) == datetime(2022, 4, 12, 9, tzinfo=UTC)
    path = explain_path(case, outcome.run_id, NodeRef(NodeKind.ORG, "acme-logistics"))
    assert path is not None and path[0].frm == NodeRef(NodeKind.ARTIFACT, demo.XTRADER_SHA)
    assert any(f.kind == "cascade.compromised" for f in case.findings())
    recipients = downstream(outcome.graph, outcome.result)
    assert {str(r.ref) for r in recipients} == {
        "org:acme-logistics",
        "org:umbrella-labs",
        "host:initech-pc-7",
    }
    ups = upstream(
        case, Seed(NodeRef(NodeKind.HOST, "initech-pc-7"), datetime(2023, 3, 29, tzinfo=UTC))
    )
    roots = [u.ref for u in ups if u.root_candidate]
    assert NodeRef(NodeKind.ARTIFACT, demo.XTRADER_SHA) in roots
    # a window that closes before the release existed explains nothing downstream of it
    early = upstream(
        case, Seed(NodeRef(NodeKind.HOST, "initech-pc-7"), datetime(2023, 3, 1, tzinfo=UTC))
    )
    assert early == []


def test_demo_stage(tmp_path: Path, case: Case):
    from rich.console import Console

    result = demo.stage(DemoContext(workdir=tmp_path, case=case, console=Console()))
    text = "\n".join(result.lines)
    assert "host:initech-pc-7" in text and "2022-04-14T21:13:00Z" in text
    assert result.findings == 3


def test_bad_seed_is_usage_error(story):
    case_path, _ = story
    assert main(["cascade", "--seed", "nonsense", "--case", str(case_path)]) == 2
    assert main(["cascade", "--case", str(case_path)]) == 2
    assert main(["graph", "add", "--case", str(case_path)]) == 2


def test_keys_meet_case_insensitively_and_findings_become_facts(story, capsys):
    from taintline.model import Edge, EdgeKind

    case_path, files = story
    assert main(["graph", "add", *map(str, files.all()), "--case", str(case_path)]) == 0
    with Case(case_path) as c:
        when = datetime(2023, 3, 29, 11, 2, tzinfo=UTC)
        c.add_edges(
            [
                Edge(
                    EdgeKind.OBSERVED_ON,
                    NodeRef(NodeKind.INDICATOR, "domain:c2.invalid"),
                    NodeRef(NodeKind.HOST, "INITECH-PC-7"),
                    "hunt",
                    when,
                    when,
                )
            ]
        )
        c.add_findings(
            [
                Finding(
                    "ioc.hash",
                    Severity.CRITICAL,
                    "x.exe",
                    "bad",
                    FindingSource.SCAN,
                    host="Dev-Home-PC",
                    evidence={"sha256": demo.XTRADER_SHA.upper()},
                )
            ]
        )
    assert main(["graph", "add", "--from-findings", "--case", str(case_path)]) == 0
    assert "findings: " in capsys.readouterr().out
    assert main(["graph", "show", "host:dev-home-pc", "--case", str(case_path)]) == 0
    assert "finding:" in capsys.readouterr().out
    with Case(case_path) as c:
        outcome = run_cascade(c, from_findings=True)
        graph = outcome.graph
        host = graph.index(NodeRef(NodeKind.HOST, "initech-pc-7"))
        assert host is not None and graph.index(NodeRef(NodeKind.HOST, "INITECH-PC-7")) == host
        # seeded by the sighting; the X_TRADER artifact (from the ioc.hash finding) is a seed too
        reached = {str(graph.ref(n)) for n in outcome.result.reached.tolist()}
        assert f"artifact:{demo.XTRADER_SHA}" in reached and "org:acme-logistics" in reached
        # the scan finding adds an open-start install: the host is affected "since always"
        dev = graph.index(NodeRef(NodeKind.HOST, "dev-home-pc"))
        assert from_us(int(outcome.result.arrival[dev])) is None
