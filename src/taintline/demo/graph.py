"""Demo stage: the whole X_TRADER -> 3CX -> customers cascade as generated (synthetic,
harmless) data files, read by the graph readers and explained by the cascade.

Dates follow the public story (``shared/intel/3cx-facts.md``): a trojanized, end-of-life
X_TRADER installer on an employee's personal machine (April 2022), a VPN login with the
employee's credentials two days later, the build hosts, the trojanized 18.12.407 / 18.12.416
releases (March 2023), their customers, and C2 sightings on customer hosts. Hashes are of
made-up bytes; host and customer names are invented.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from taintline.demo.context import DemoContext, StageResult
from taintline.graph.cascade import NEVER
from taintline.graph.downstream import downstream, write_notices
from taintline.graph.ingest import add_files
from taintline.graph.service import run_cascade, upstream
from taintline.graph.store import Seed, explain_path, from_us, record_notices
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef, iso


def _sha(text: str) -> str:
    return hashlib.sha256(f"taintline synthetic {text}".encode()).hexdigest()


XTRADER_SHA = _sha("X_TRADER_r7.17.90p608.exe")
XTRADER_SIGNED = datetime(2022, 2, 3, 10, 0, tzinfo=UTC)  # signed after its end of life
MSI = {v: _sha(f"3CXDesktopApp-{v}.msi") for v in ("18.11.1213", "18.12.407", "18.12.416")}
DMG_416 = _sha("3CXDesktopApp-18.12.416.dmg")
C2 = "domain:msstorageazure.com"


@dataclass(frozen=True, slots=True)
class StoryFiles:
    inventory: Path
    auth: Path
    builds: Path
    provenance: Path
    distribution: Path

    def all(self) -> list[Path]:
        return [self.inventory, self.auth, self.builds, self.provenance, self.distribution]


def write_story(folder: Path) -> StoryFiles:
    """Write the story's input files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    inventory = folder / "inventory.csv"
    inventory.write_text(
        "host,software,version,installed_at,removed_at,sha256\n"
        f"dev-home-pc,X_TRADER,7.17.90p608,2022-04-12T09:00:00Z,,{XTRADER_SHA}\n"
        "dev-home-pc,7-Zip,22.01,2022-01-05T12:00:00Z,,\n"
        # an old trader's machine that had X_TRADER long before it was trojanized: negative
        f"trader-old-pc,X_TRADER,7.17.90p608,2019-05-01T08:00:00Z,2020-11-30T17:00:00Z,{XTRADER_SHA}\n"
    )
    auth = folder / "auth.csv"
    auth.write_text(
        "time,src_host,dst_host,user,success\n"
        "2022-03-30T08:00:00Z,dev-laptop,corp-vpn,dev1,true\n"
        "2022-04-14T21:13:00Z,dev-home-pc,corp-vpn,dev1,true\n"
        "2022-04-20T02:00:00Z,corp-vpn,build-mac-01,dev1,false\n"
        "2022-05-20T03:41:00Z,corp-vpn,build-win-01,svc-build,true\n"
        "2022-06-02T04:10:00Z,corp-vpn,build-mac-01,svc-build,true\n"
    )
    builds = folder / "builds.csv"
    builds.write_text(
        "build_id,host,started,finished,outputs,release\n"
        f"win-18.11.1213,build-win-01,2022-05-09T10:00:00Z,2022-05-09T11:30:00Z,{MSI['18.11.1213']},3CXDesktopApp@18.11.1213\n"
        f"win-18.12.407,build-win-01,2023-03-07T09:00:00Z,2023-03-07T10:12:00Z,{MSI['18.12.407']},3CXDesktopApp@18.12.407\n"
        f"win-18.12.416,build-win-01,2023-03-13T06:00:00Z,2023-03-13T06:33:00Z,{MSI['18.12.416']},3CXDesktopApp@18.12.416\n"
    )
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "3CXDesktopApp-18.12.416.dmg", "digest": {"sha256": DMG_416}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://ci.example/electron-dmg@v1",
                "externalParameters": {"version": "18.12.416"},
                "resolvedDependencies": [
                    {
                        "uri": "git+https://git.example/desktopapp@refs/tags/18.12.416",
                        "digest": {"sha1": "0" * 40},
                    }
                ],
            },
            "runDetails": {
                "builder": {"id": "build-mac-01"},
                "metadata": {
                    "invocationId": "mac-18.12.416",
                    "startedOn": "2023-03-13T06:10:00Z",
                    "finishedOn": "2023-03-13T06:41:52Z",
                },
            },
        },
    }
    provenance = folder / "mac-18.12.416.intoto.jsonl"
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(orjson.dumps(statement)).decode(),
        "signatures": [],
    }
    provenance.write_bytes(orjson.dumps(envelope) + b"\n")
    distribution = folder / "distribution.csv"
    distribution.write_text(
        "customer,host,release,artifact,time\n"
        "acme-logistics,,3CXDesktopApp@18.11.1213,,2022-06-01T12:00:00Z\n"
        "acme-logistics,,3CXDesktopApp@18.12.407,,2023-03-09T08:00:00Z\n"
        "globex-shipping,,3CXDesktopApp@18.11.1213,,2022-07-15T12:00:00Z\n"
        "initech,initech-pc-7,3CXDesktopApp@18.12.416,,2023-03-22T14:05:00Z\n"
        f"umbrella-labs,,,{DMG_416},2023-03-20T09:30:00Z\n"
    )
    return StoryFiles(inventory, auth, builds, provenance, distribution)


def write_sbom(path: Path, ffmpeg_sha: str) -> Path:
    """A CycloneDX 1.6 SBOM of the 18.12.416 release, made with cyclonedx-python-lib."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    app = Component(
        name="3CXDesktopApp", version="18.12.416", type=ComponentType.APPLICATION, bom_ref="app"
    )
    parts = [
        Component(
            name="ffmpeg.dll",
            version="18.12.416",
            bom_ref="ffmpeg",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=ffmpeg_sha)],
        ),
        Component(
            name="d3dcompiler_47.dll",
            version="10.0",
            bom_ref="d3d",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=_sha("d3dcompiler_47"))],
        ),
    ]
    bom = Bom(components=parts)
    bom.metadata.component = app
    bom.register_dependency(app, parts)
    outputter = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6)
    path.write_text(outputter.output_as_string(indent=2))
    return path


def short(ref: NodeRef) -> str:
    if ref.kind is NodeKind.ARTIFACT and len(ref.key) > 16:
        return f"artifact:{ref.key[:12]}..."
    return str(ref)


def _sightings(ctx: DemoContext) -> int:
    """C2 sightings on customer hosts: hunt's ``observed_on`` edges if the hunt stage left
    some, else two synthetic ones written here."""
    row = ctx.case.con.execute("SELECT count(*) FROM edges WHERE kind = 'observed_on'").fetchone()
    if row and row[0]:
        return int(row[0])
    when = datetime(2023, 3, 29, 11, 2, tzinfo=UTC)  # 7 days after install: the dormancy
    ctx.case.add_nodes([Node(NodeKind.INDICATOR, C2, {"campaign": "3CX"})], source="demo")
    return ctx.case.add_edges(
        [
            Edge(
                EdgeKind.OBSERVED_ON,
                NodeRef(NodeKind.INDICATOR, C2),
                NodeRef(NodeKind.HOST, "initech-pc-7"),
                "demo hunt sighting (synthetic)",
                when,
                when,
            )
        ]
    )


def stage(ctx: DemoContext) -> StageResult:
    files = write_story(ctx.workdir / "graph")
    scan = ctx.shared.get("scan") or {}
    ffmpeg_sha = str(scan.get("ffmpeg_sha256") or _sha("ffmpeg.dll"))
    sbom = write_sbom(ctx.workdir / "graph" / "3cx-18.12.416.cdx.json", ffmpeg_sha)
    lines: list[str] = []
    done = ctx.shared.get("graph_added", set())  # the end-of-life stage added the inventory
    for added in add_files(ctx.case, [p for p in [*files.all(), sbom] if p not in done]):
        lines.append(
            f"graph add {added.path.name}: {added.format}, {added.read_edges} facts"
            + (f", {len(added.problems)} problem(s)" if added.problems else "")
        )
    ctx.case.add_nodes(
        [
            Node(
                NodeKind.ARTIFACT,
                XTRADER_SHA,
                {"name": "X_TRADER_r7.17.90p608.exe", "signed": iso(XTRADER_SIGNED)},
            )
        ],
        source="demo",
    )
    sightings = _sightings(ctx)
    lines.append(f"C2 sightings in the case: {sightings}")
    seed = Seed(NodeRef(NodeKind.ARTIFACT, XTRADER_SHA), XTRADER_SIGNED, "X_TRADER installer")
    outcome = run_cascade(ctx.case, [seed])
    result, graph = outcome.result, outcome.graph
    lines.append(
        f"cascade from the X_TRADER installer (signed {iso(XTRADER_SIGNED)}, after its"
        f" end of life): {int(result.reached.shape[0])} nodes reached"
    )
    order = sorted(
        result.reached.tolist(), key=lambda n: (int(result.arrival[n]), str(graph.ref(n)))
    )
    for node in order:
        ref = graph.ref(node)
        if ref.kind in (NodeKind.ARTIFACT, NodeKind.INDICATOR) and result.parent[node] >= 0:
            continue
        lines.append(
            f"  {iso(from_us(int(result.arrival[node]))) or 'always':22} {short(ref)}"
            f"  (conf {result.confidence[node]:.2f}, {int(result.hops[node])} facts)"
        )
    negatives = (
        NodeRef(NodeKind.HOST, "trader-old-pc"),  # X_TRADER removed in 2020
        NodeRef(NodeKind.BUILD, "win-18.11.1213"),  # finished before the lateral movement
        NodeRef(NodeKind.RELEASE, "3cxdesktopapp@18.11.1213"),
        NodeRef(NodeKind.ORG, "globex-shipping"),  # only got the clean release
    )
    not_reached = []
    for ref in negatives:
        idx = graph.index(ref)
        if idx is not None and result.arrival[idx] == NEVER:
            not_reached.append(str(ref))
    lines.append(
        "not reached (uninstalled before, built before, clean copies): " + ", ".join(not_reached)
    )
    target = NodeRef(NodeKind.HOST, "initech-pc-7")
    lines.append(f"why {target}:")
    for number, fact in enumerate(explain_path(ctx.case, outcome.run_id, target) or [], 1):
        lines.append(
            f"  {number}. {short(fact.frm)} --{fact.edge_kind}--> {short(fact.to)} from"
            f" {iso(fact.to_time)} [{fact.source}]"
        )
    recipients = downstream(graph, result)
    lines.append(f"passed downstream to {len(recipients)} recipient(s):")
    for rec in recipients:
        items = ", ".join(sorted({short(d.item) for d in rec.deliveries}))
        lines.append(f"  {rec.ref} from {iso(rec.first)}: {items}")
    written = write_notices(recipients, ctx.workdir / "notices", "3CX (demo)")
    record_notices(ctx.case, outcome.run_id, ctx.workdir / "notices", written)
    lines.append(f"notices (JSON + STIX 2.1): {len(written)} files in {ctx.workdir / 'notices'}")
    sighting = Seed(target, datetime(2023, 3, 29, 11, 2, tzinfo=UTC))
    roots = [u for u in upstream(ctx.case, sighting) if u.root_candidate]
    lines.append(
        f"root-cause candidates upstream of the C2 sighting on {target}: "
        + ", ".join(short(u.ref) for u in roots[:5])
    )
    if ctx.case.findings(kinds=["ioc.hash"]):
        found = run_cascade(ctx.case, from_findings=True, record_findings=False)
        got = downstream(found.graph, found.result)
        lines.append(
            f"cascade --from-findings ({len(found.seeds)} seeds: scan's ioc.hash findings,"
            f" sightings; the SBOM puts ffmpeg.dll in 18.12.416): recipients "
            + ", ".join(f"{r.ref} from {iso(r.first)}" for r in got)
        )
    ctx.shared["cascade_run_id"] = outcome.run_id
    return StageResult(
        title="Graph and cascade: from X_TRADER to 3CX's customers",
        lines=tuple(lines),
        findings=len(recipients),
    )
