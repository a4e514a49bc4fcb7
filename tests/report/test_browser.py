"""The demo report in a real headless browser: Debian's chromium driven by Selenium through
Debian's chromium-driver (no browser download).

Skipped, with the reason, where that browser or Selenium is missing; CI installs both and sets
``TAINTLINE_REQUIRE_BROWSER=1``, which turns the skip into a failure there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from taintline.case import Case
from taintline.cli.main import main
from taintline.model import Indicator, IndicatorType
from taintline.report import RenderContext, render_findings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE = ("<script>alert(1)</script>.dll", "[red]x[/red].dll")


def _missing() -> str:
    if importlib.util.find_spec("selenium") is None:
        return "the selenium package (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return "Debian's chromium (apt-get install chromium)"
    if not CHROMEDRIVER.exists():
        return "Debian's chromium-driver (apt-get install chromium-driver)"
    return ""


MISSING = _missing()
if MISSING and os.environ.get("TAINTLINE_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"browser tests required but {MISSING} is missing")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING), reason=f"browser tests need {MISSING}"),
]


def story_run(case_path: Path) -> str:
    with Case(case_path, read_only=True) as c:
        row = c.con.execute("SELECT run_id FROM cascade_runs ORDER BY started LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo case, plus a scan of two files with hostile names, rendered by the CLI."""
    from taintline.demo import run_demo
    from taintline.scan.engine import ScanOptions, scan_paths

    work = tmp_path_factory.mktemp("demo")
    run_demo(Console(file=io.StringIO()), work, keep=True)
    case_path = work / "demo-case.duckdb"
    hostile_dir = work / "hostile"
    hostile_dir.mkdir()
    with Case(case_path) as c:
        for i, name in enumerate(HOSTILE):
            body = f"harmless test bytes {i}".encode()
            # "/" cannot be in a POSIX file name: the first is a file "script>.dll" in a folder
            # "<script>alert(1)<", shown as the path the name makes.
            (hostile_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (hostile_dir / name).write_bytes(body)
            c.add_indicators(
                [Indicator(IndicatorType.SHA256, hashlib.sha256(body).hexdigest(), "test list")]
            )
        scan_paths([hostile_dir], c, ScanOptions(workers=0, host="ws-hostile"))
        subjects = [f.subject for f in c.findings() if f.subject.endswith(HOSTILE)]
    run_id = story_run(case_path)
    out = work / "report.html"
    args = ["report", "--case", str(case_path), "--format", "html", "-o", str(out)]
    assert main([*args, "--cascade-run", run_id, "--title", "taintline demo"]) == 0
    with Case(case_path, read_only=True) as c:
        counts = c.con.execute(
            "SELECT count(*), count(parent_kind) FROM cascade_reached WHERE run_id = ?", [run_id]
        ).fetchone()
    assert counts is not None
    return {
        "path": out,
        "case": case_path,
        "run_id": run_id,
        "nodes": int(counts[0]),
        "edges": int(counts[1]),
        "subjects": subjects,
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1200",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, demo_report: dict[str, Any]) -> Any:
    browser.get(demo_report["path"].resolve().as_uri())
    return browser


def test_no_console_errors_and_the_script_ran(page: Any) -> None:
    logs = page.get_log("browser")
    errors = [e for e in logs if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    # Our inline script ran (its CSP hash matched) and nothing was fetched.
    assert page.execute_script("return document.documentElement.dataset.ready") == "1"
    assert page.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_the_four_answers_come_first(page: Any) -> None:
    from selenium.webdriver.common.by import By

    answers = page.find_elements(By.CSS_SELECTOR, "#answers .answer")
    assert [a.get_attribute("id") for a in answers] == [
        "answer-affected",
        "answer-where",
        "answer-since",
        "answer-downstream",
    ]
    assert answers[0].find_element(By.CSS_SELECTOR, ".verdict").text == "yes"
    assert answers[2].find_element(By.CSS_SELECTOR, ".verdict").text == "2022-04-12T09:00:00Z"
    assert "3 recipient" in answers[3].text
    # its evidence is one click away, and that evidence link selects the node
    answers[2].find_element(By.TAG_NAME, "summary").click()
    link = answers[2].find_element(By.CSS_SELECTOR, "a[data-node]")
    link.click()
    panel = page.find_element(By.ID, "node-panel").text
    assert "host:dev-home-pc" in panel
    assert "inventory.csv:2" in panel


def test_picture_has_one_node_per_reached_node_and_one_edge_per_fact(
    page: Any, demo_report: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By

    nodes = page.find_elements(By.CSS_SELECTOR, "#cascade-svg g.node")
    edges = page.find_elements(By.CSS_SELECTOR, "#cascade-svg g.edge")
    assert len(nodes) == demo_report["nodes"] == 17
    assert len(edges) == demo_report["edges"] == 16
    labels = " ".join(e.text for e in edges)
    assert "built_on · builds.csv:4" in labels
    # indicator contacts share the axis: 10 (host, indicator) pairs from the hunt
    assert len(page.find_elements(By.CSS_SELECTOR, "#cascade-svg g.contact")) == 10


def test_clicking_a_node_shows_its_facts_and_highlights_its_path(
    page: Any, demo_report: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By

    target = next(
        g
        for g in page.find_elements(By.CSS_SELECTOR, "#cascade-svg g.node")
        if g.find_element(By.TAG_NAME, "text").text == "initech-pc-7"
    )
    target.click()
    panel = page.find_element(By.ID, "node-panel").text
    assert "host:initech-pc-7" in panel
    assert "2023-03-22T14:05:00Z" in panel
    assert "0.64" in panel  # confidence
    assert "distribution.csv:5" in panel  # the source of the explaining fact
    assert "Explaining path (7 facts" in panel
    assert "auth.csv:5" in panel  # corp-vpn -> build-win-01, earlier on the path
    assert len(page.find_elements(By.CSS_SELECTOR, "#cascade-svg g.edge.on")) == 7
    assert len(page.find_elements(By.CSS_SELECTOR, "#cascade-svg g.node.on")) == 8
    # the page does not print every node's path: this fact is written once (its edge's title)
    source = demo_report["path"].read_text()
    assert source.count("host:corp-vpn --connected_to--&gt; host:build-win-01") == 1


def test_pan_and_zoom_change_the_view(page: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    svg = page.find_element(By.ID, "cascade-svg")

    def view() -> str:
        return str(page.execute_script("return arguments[0].getAttribute('viewBox')", svg))

    before = view()
    page.find_element(By.CSS_SELECTOR, "button[data-zoom='in']").click()
    zoomed = view()
    assert float(zoomed.split()[2]) < float(before.split()[2])
    ActionChains(page).move_to_element(svg).click_and_hold().move_by_offset(
        80, 0
    ).release().perform()
    panned = view()
    assert float(panned.split()[0]) < float(zoomed.split()[0])
    page.find_element(By.CSS_SELECTOR, "button[data-zoom='reset']").click()
    assert view() == before


def test_hostile_file_names_are_literal_text(page: Any, demo_report: dict[str, Any]) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    assert len(demo_report["subjects"]) == 2
    cells = [td.text for td in page.find_elements(By.CSS_SELECTOR, "#findings td.subject")]
    for name in HOSTILE:
        assert any(cell.endswith("/" + name) for cell in cells), name
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text
    # only the page's two scripts: the node data and our own code
    assert page.execute_script("return document.scripts.length") == 2
    assert page.execute_script("return document.querySelectorAll('#findings script').length") == 0


def test_hostile_file_names_are_literal_in_the_terminal_table(demo_report: dict[str, Any]) -> None:
    with Case(demo_report["case"], read_only=True) as c:
        findings = c.findings()
    buf = io.StringIO()
    render_findings(findings, "table", buf, RenderContext(width=400))
    text = buf.getvalue()
    for name in HOSTILE:
        assert name in text


def test_screenshot(page: Any, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    assert page.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
