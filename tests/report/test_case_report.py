"""The person's report, without a browser: answers, aggregation, CSP, escaping, Markdown."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from taintline.case import Case
from taintline.cli.main import main
from taintline.graph.service import run_cascade
from taintline.graph.store import Seed
from taintline.model import Edge, EdgeKind, Finding, FindingSource, NodeRef, Severity
from taintline.report import RenderContext, casedata, render_findings
from taintline.report.html import json_for_script, render_report
from taintline.report.markdown import md, render_summary
from taintline.report.picture import draw, time_scale

T0 = datetime(2023, 1, 1, tzinfo=UTC)
BAD = "artifact:" + "a" * 64


def ref(text: str) -> NodeRef:
    return NodeRef.parse(text)


def edge(kind: EdgeKind, src: str, dst: str, day: int, source: str) -> Edge:
    when = T0 + timedelta(days=day)
    return Edge(kind, ref(src), ref(dst), source, when, None, when)


def small_case(c: Case) -> str:
    """A bad artifact installed on a build host, a build there, its release delivered to one
    customer after the build (tainted) and to another before (clean)."""
    c.add_edges(
        [
            edge(EdgeKind.INSTALLED_ON, BAD, "host:build-1", 2, "inventory.csv:2"),
            edge(EdgeKind.BUILT_ON, "build:b-7", "host:build-1", 10, "builds.csv:2"),
            edge(EdgeKind.PRODUCED, "build:b-7", "artifact:" + "b" * 64, 11, "builds.csv:2"),
            edge(EdgeKind.CONTAINS, "release:app@7", "artifact:" + "b" * 64, 11, "builds.csv:2"),
            edge(EdgeKind.DISTRIBUTED_TO, "release:app@7", "org:early", 5, "dist.csv:2"),
            edge(EdgeKind.DISTRIBUTED_TO, "release:app@7", "org:late", 20, "dist.csv:3"),
        ]
    )
    outcome = run_cascade(c, [Seed(ref(BAD), T0, "test seed")])
    return outcome.run_id


def test_four_answers_from_a_small_case(case: Case) -> None:
    run = small_case(case)
    data = casedata.from_case(case, run_id=run)
    affected, where, since, down = data.answers
    assert (affected.key, affected.verdict) == ("affected", "yes")
    assert "the cascade reached" in affected.sentence
    assert where.sentence.startswith("In 1 host(s), 1 build(s), 1 release(s)")
    assert since.verdict == "2023-01-03T00:00:00Z"
    assert "inventory.csv:2" in since.sentence and "installed_on" in since.sentence
    assert since.evidence[0].node is not None
    # the early customer got a clean copy; only the late one is a recipient
    assert [r.ref for r in data.recipients] == ["org:late"]
    assert down.verdict == "1 recipient(s)"
    assert "no notices written yet" in down.sentence


def test_notices_written_by_cascade_are_listed(case: Case, tmp_path: Path) -> None:
    from taintline.graph.downstream import downstream, write_notices
    from taintline.graph.store import record_notices

    small_case(case)
    outcome = run_cascade(case, [Seed(ref(BAD), T0, "again")], record_findings=False)
    files = write_notices(downstream(outcome.graph, outcome.result), tmp_path / "n", "us")
    record_notices(case, outcome.run_id, tmp_path / "n", files)
    data = casedata.from_case(case)  # newest run
    assert data.notices == [str(p) for p in files] and len(files) == 2
    assert f"2 notice file(s) written to {tmp_path / 'n'}" in data.answer("downstream").sentence


def test_not_affected_and_unknown(case: Case, tmp_path: Path) -> None:
    empty = casedata.from_case(case)
    assert empty.answer("affected").verdict == "unknown"
    assert "nothing was scanned" in empty.answer("affected").sentence
    assert empty.answer("downstream").verdict == "unknown"
    run = case.start_run("scan x")
    case.finish_run(run, "ok")
    case.add_findings([Finding("pe.unsigned", Severity.LOW, "x.exe", "unsigned")])
    assert casedata.from_case(case).answer("affected").verdict == "no"
    case.add_findings([Finding("error.malformed", Severity.LOW, "y.zip", "bad zip")])
    assert casedata.from_case(case).answer("affected").verdict == "unknown"


def chain_case(c: Case, n: int) -> str:
    """A long chain of hosts plus a fan of organisations: more nodes than are drawn."""
    edges = [edge(EdgeKind.INSTALLED_ON, BAD, "host:h0", 1, "inv.csv:1")]
    for i in range(1, n):
        edges.append(edge(EdgeKind.CONNECTED_TO, f"host:h{i - 1}", f"host:h{i}", i + 1, "a.csv"))
        edges.append(edge(EdgeKind.PART_OF, f"host:h{i}", f"org:o{i}", i + 2, "orgs.csv"))
    c.add_edges(edges)
    return run_cascade(c, [Seed(ref(BAD), T0, "seed")], record_findings=False).run_id


def test_large_cascades_are_aggregated_with_whole_explaining_paths(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = chain_case(case, 40)
    monkeypatch.setattr(casedata, "MAX_DRAWN", 30)
    monkeypatch.setattr(casedata, "AGGREGATED_DRAWN", 25)
    monkeypatch.setattr(casedata, "PER_KIND", 3)
    data = casedata.from_case(case, run_id=run)
    view = data.cascade
    assert view is not None and view.total == 80 and not view.complete
    drawn = {n.ref for n in view.nodes}
    assert 3 <= len(drawn) <= 25
    # every drawn node's explaining path is drawn with it (up to the seed)
    for n in view.nodes:
        if not n.is_root:
            assert n.parent is not None and n.parent_ref in drawn
    assert sum(b.count for b in view.buckets) == 80
    assert {k for _, _, k, _ in view.top_steps} >= {"host", "org"}
    assert any(s == "a.csv" for s, _ in view.top_sources)
    assert any("of 80 reached nodes are drawn" in line for line in data.aggregated)
    page = io.StringIO()
    picture = render_report(data, page)
    assert picture.nodes == len(view.nodes)
    assert page.getvalue().count('class="bucket"') == len(view.buckets)
    assert "This page aggregates" in page.getvalue()


def test_csp_allows_only_our_script_and_style(case: Case) -> None:
    small_case(case)
    out = io.StringIO()
    render_report(casedata.from_case(case), out)
    page = out.getvalue()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = csp.group(1).replace("&#39;", "'")
    assert "unsafe" not in policy and "default-src 'none'" in policy
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    for text in (scripts[0], styles[0]):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert " style=" not in page  # inline style attributes would need 'unsafe-inline'
    assert "http://" not in page and "https://" not in page


def test_hostile_names_in_node_data_cannot_close_the_script() -> None:
    hostile = '</script><script>alert(1)</script>&"'
    text = str(json_for_script([{"key": hostile}]))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == [{"key": hostile}]


def test_picture_escapes_names_and_draws_one_group_per_node(case: Case) -> None:
    case.add_edges(
        [edge(EdgeKind.INSTALLED_ON, BAD, "host:<img src=x onerror=alert(1)>", 3, "<b>x</b>.csv")]
    )
    run = run_cascade(case, [Seed(ref(BAD), T0)], record_findings=False).run_id
    data = casedata.from_case(case, run_id=run)
    assert data.cascade is not None
    picture = draw(data.cascade.nodes)
    svg = str(picture.svg)
    assert (picture.nodes, picture.edges) == (2, 1)
    assert svg.count('class="node') == 2 and svg.count('class="edge"') == 1
    assert "<img" not in svg and "&lt;img src=x" in svg
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;.csv" in svg


def test_time_axis_is_monotone_and_spreads_bursts() -> None:
    times = [T0 + timedelta(days=d) for d in (0, 1, 400, 401, 402)]
    times += [T0 + timedelta(days=400, hours=h) for h in range(1, 20)]
    scale = time_scale(times)
    xs = [scale.x(T0 + timedelta(hours=h)) for h in range(0, 403 * 24, 7)]
    assert xs == sorted(xs)
    # the busy days 400-402 get far more than their linear share (3/402) of the axis
    burst = scale.x(times[4]) - scale.x(times[2])
    assert burst > 0.2 * scale.width


HOSTILE = "<script>alert(1)</script>.dll"
MARKUP = "[red]x[/red].dll"


def hostile_findings() -> list[Finding]:
    return [
        Finding("ioc.hash", Severity.CRITICAL, f"dir/{HOSTILE}", "hash | match", host="ws-1"),
        Finding("ioc.hash", Severity.HIGH, f"dir/{MARKUP}", "[bold]x[/bold]", host="ws-2"),
        Finding(
            "network.ioc.domain",
            Severity.HIGH,
            "ws-3",
            "contacted",
            source=FindingSource.HUNT,
            host="ws-3",
            time=T0,
            indicators=("domain:[x](javascript:alert(1))",),
        ),
    ]


def test_markdown_summary_has_the_answers_and_literal_names(case: Case) -> None:
    case.add_findings(hostile_findings())
    out = io.StringIO()
    render_summary(casedata.from_case(case, title="t"), out)
    text = out.getvalue()
    assert "**Are we affected?** **yes**" in text
    assert "## Top findings" in text
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.dll" in html
    assert MARKUP in html
    assert "<a " not in html  # no link from the indicator text
    assert html.count("<tr>") == 4  # header + 3 findings: no cell broken by a '|'


def test_md_escapes_every_markdown_special() -> None:
    for raw in ("a|b", "*x*", "`x`", "[a](b)", "<x>", "# h", "1. x", "_y_"):
        html = MarkdownIt("commonmark").render(md(raw))
        assert raw.replace("<", "&lt;").replace(">", "&gt;") in html, raw


def test_report_markdown_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Case(tmp_path / "c.duckdb") as c:
        c.add_findings(hostile_findings())
    assert main(["report", "--case", str(tmp_path / "c.duckdb"), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# taintline report")
    assert "\\[red\\]x\\[/red\\]\\.dll" in out
    assert main(["report", "--case", str(tmp_path / "c.duckdb"), "--cascade-run", "nope",
                 "--format", "html"]) == 2  # fmt: skip


def test_findings_only_html_and_terminal_table_show_names_literally() -> None:
    findings = hostile_findings()
    page = io.StringIO()
    render_findings(findings, "html", page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.dll" in page.getvalue()
    assert MARKUP in page.getvalue()
    table = io.StringIO()
    render_findings(findings, "table", table, RenderContext(width=300))
    assert HOSTILE in table.getvalue() and MARKUP in table.getvalue()
    assert "[bold]x[/bold]" in table.getvalue()
