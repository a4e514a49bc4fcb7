"""Screenshot of a taintline HTML report in Debian's headless chromium (for docs/report.png).

``python tools/report_screenshot.py REPORT.html OUT.png [--node KIND:KEY] [--width W --height H]``
runs ``taintline demo`` first when REPORT.html is ``demo``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report")
    parser.add_argument("out", type=Path)
    parser.add_argument("--node", default=None, help="click this node (KIND:KEY) first")
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=1400)
    args = parser.parse_args(argv)
    report = Path(args.report)
    if args.report == "demo":
        from rich.console import Console

        from taintline.demo import run_demo

        work = Path(tempfile.mkdtemp(prefix="taintline-shot-"))
        run_demo(Console(file=open("/dev/null", "w")), work, keep=True)  # noqa: SIM115
        report = work / "report.html"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={args.width},{args.height}",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(report.resolve().as_uri())
        if args.node is not None:
            index = driver.execute_script(
                "var ref = arguments[0];"
                " return JSON.parse(document.getElementById('tl-nodes').textContent)"
                ".findIndex(function (n) { return n.k + ':' + n.key === ref; })",
                args.node,
            )
            driver.find_element("id", f"n-{index}").click()
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
