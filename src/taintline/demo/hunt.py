"""Demo stage: hunt synthetic network logs for the 3CX campaign's C2 domains and icon files.

The logs are made up here (Zeek ``dns.log`` as TSV, rotated and gzip-compressed, ``http.log``
as TSV, ``ssl.log`` as Zeek JSON, and endpoint DNS events as ECS JSON Lines). Three hosts
behave like a trojanised 3CXDesktopApp (fetch ``iconN.ico`` from the IconStorages repository,
then resolve and contact the C2 domain hidden in it, seven days after installation); the rest
only browse benign sites.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import orjson

from taintline.demo.context import DemoContext, StageResult
from taintline.hunt.model import HuntOptions
from taintline.hunt.render import render_timeline
from taintline.hunt.service import run_hunt
from taintline.hunt.synth import write_zeek_json, write_zeek_tsv
from taintline.model import Indicator, IndicatorType

T0 = datetime(2023, 3, 29, 11, 0, tzinfo=UTC).timestamp()

#: (host, icon number, C2 domain queried) for the "infected" hosts.
INFECTED = (
    ("10.20.1.15", 1, "msstorageazure.com"),
    ("10.20.1.42", 15, "cdn.pbxsources.com"),
    ("10.20.3.7", 12, "azureonlinestorage.com"),
)
BENIGN = ("10.20.1.16", "10.20.2.8", "10.20.2.9", "10.20.4.30")
BENIGN_SITES = ("www.example.org", "update.example.com", "notmsstorageazure.com", "cdn.example.net")


def _dns(i: int, ts: float, host: str, query: str) -> dict[str, object]:
    return {
        "ts": ts, "uid": f"Cdns{i}", "id.orig_h": host, "id.orig_p": 51000 + i,
        "id.resp_h": "10.20.0.53", "id.resp_p": 53, "proto": "udp", "trans_id": 4000 + i,
        "query": query, "qclass": 1, "qclass_name": "C_INTERNET", "qtype": 1, "qtype_name": "A",
        "rcode": 0, "rcode_name": "NOERROR", "answers": "192.0.2.80",
    }  # fmt: skip


def write_logs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    dns_early: list[dict[str, object]] = []
    dns_late: list[dict[str, object]] = []
    http: list[dict[str, object]] = []
    ssl: list[dict[str, object]] = []
    n = 0
    for round_ in range(6):
        base = T0 + round_ * 600
        for host in BENIGN + tuple(h for h, _, _ in INFECTED):
            for site in BENIGN_SITES[: 2 + round_ % 3]:
                n += 1
                (dns_early if round_ < 3 else dns_late).append(_dns(n, base + n, host, site))
    for k, (host, icon, c2) in enumerate(INFECTED):
        at = T0 + 900 + k * 400
        http.append({
            "ts": at, "uid": f"Chttp{k}", "id.orig_h": host, "id.orig_p": 52000 + k,
            "id.resp_h": "185.199.108.133", "id.resp_p": 443, "trans_depth": 1, "method": "GET",
            "host": "raw.githubusercontent.com", "uri": f"/IconStorages/images/main/icon{icon}.ico",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) 3CXDesktopApp/18.12.416",
            "status_code": 200, "status_msg": "OK",
        })  # fmt: skip
        for j in range(3):
            n += 1
            (dns_early if j == 0 else dns_late).append(_dns(n, at + 60 + j * 1800, host, c2))
            ssl.append({
                "ts": at + 61 + j * 1800, "uid": f"Cssl{k}{j}", "id.orig_h": host,
                "id.orig_p": 53000 + j, "id.resp_h": "192.0.2.80", "id.resp_p": 443,
                "version": "TLSv12", "server_name": c2, "established": True,
            })  # fmt: skip
    for b, host in enumerate(BENIGN):
        http.append({
            "ts": T0 + 50 + b, "uid": f"Cweb{b}", "id.orig_h": host, "id.orig_p": 54000 + b,
            "id.resp_h": "185.199.108.133", "id.resp_p": 443, "method": "GET",
            "host": "raw.githubusercontent.com", "uri": "/example/dotfiles/main/README.md",
        })  # fmt: skip
    dns_early.sort(key=lambda r: float(str(r["ts"])))
    dns_late.sort(key=lambda r: float(str(r["ts"])))
    paths = [
        folder / "dns.2023-03-29-11-00-00.log.gz",
        folder / "dns.log",
        folder / "http.log",
        folder / "ssl.log",
        folder / "endpoint-dns.jsonl",
    ]
    write_zeek_tsv(paths[0], "dns", dns_early, compress=True)
    write_zeek_tsv(paths[1], "dns", dns_late, close=False)  # the current, still-open log
    write_zeek_tsv(paths[2], "http", http)
    write_zeek_json(paths[3], ssl)
    # Endpoint DNS events (an EDR export in Elastic Common Schema): these name the host.
    events = [
        {"@timestamp": "2023-03-29T11:02:00Z", "host": {"name": "initech-pc-7"},
         "dns": {"question": {"name": "msstorageazure.com"}}},
        {"@timestamp": "2023-03-29T11:03:00Z", "host": {"name": "initech-pc-8"},
         "dns": {"question": {"name": "www.example.org"}}},
    ]  # fmt: skip
    paths[4].write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return paths


def _ensure_intel(ctx: DemoContext) -> str:
    from taintline.intel.store import ensure_intel

    if ensure_intel(ctx.case):
        return "loaded the built-in 3CX intel pack"
    if ctx.case.indicator_count() == 0:
        ctx.case.add_indicators(
            Indicator(IndicatorType.DOMAIN, d, "demo", campaign="3CX")
            for d in ("msstorageazure.com", "pbxsources.com", "azureonlinestorage.com")
        )
        return "added three C2 domains (no intel pack available)"
    return f"using the case's {ctx.case.indicator_count()} indicators"


def stage(ctx: DemoContext) -> StageResult:
    intel_note = _ensure_intel(ctx)
    paths = write_logs(ctx.workdir / "logs")
    result = run_hunt(ctx.case, [ctx.workdir / "logs"], HuntOptions(), command="hunt (demo)")
    ctx.shared["hunt"] = {"sightings": len(result.sightings), "logs": [str(p) for p in paths]}
    buffer = io.StringIO()
    render_timeline(result.sightings, result.files, buffer, width=max(80, ctx.console.width - 4))
    hosts = sorted({s.host for s in result.sightings})
    lines = [
        f"{intel_note}; hunting {len(paths)} synthetic logs ({result.lines} lines: Zeek dns.log"
        " TSV rotated+gzip, http.log TSV, ssl.log JSON, endpoint DNS JSON Lines)",
        *buffer.getvalue().rstrip().splitlines(),
        f"{len(hosts)} host(s) contacted the campaign's infrastructure: {', '.join(hosts)};"
        f" {len(BENIGN)} hosts with only benign traffic (incl. notmsstorageazure.com) stayed clean."
        " Each sighting is now an observed_on edge for the cascade.",
    ]
    return StageResult(
        "hunt: which hosts talked to the attackers, and when", tuple(lines), len(result.sightings)
    )
