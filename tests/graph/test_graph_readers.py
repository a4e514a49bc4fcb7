from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from taintline.graph.ingest import add_files, read_file
from taintline.graph.interface import ReadContext
from taintline.model import EdgeKind, NodeKind, NodeRef

CTX = ReadContext(recorded_at=datetime(2024, 1, 1, tzinfo=UTC), host="laptop-1")
SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def edges_of(facts, kind):
    return sorted((str(e.src), str(e.dst)) for e in facts.edges if e.kind == kind)


# -- CycloneDX, generated with cyclonedx-python-lib --------------------------------------------


def _bom():
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    app = Component(
        name="3CXDesktopApp", version="18.12.416", type=ComponentType.APPLICATION, bom_ref="app"
    )
    ffmpeg = Component(
        name="ffmpeg.dll",
        version="1.0",
        bom_ref="ffmpeg",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=SHA_A)],
    )
    d3d = Component(
        name="d3dcompiler_47.dll",
        version="10",
        bom_ref="d3d",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=SHA_B)],
    )
    electron = Component(
        name="electron",
        version="19.0.0",
        bom_ref="electron",
        purl=PackageURL(type="npm", name="electron", version="19.0.0"),
        components=[d3d],
    )
    bom = Bom(components=[ffmpeg, electron])
    bom.metadata.component = app
    bom.register_dependency(app, [ffmpeg, electron])
    bom.register_dependency(electron, [ffmpeg])
    return bom


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("version", ["1.4", "1.5", "1.6"])
def test_cyclonedx_from_the_library(tmp_path: Path, fmt: str, version: str):
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    outputter = make_outputter(
        _bom(),
        OutputFormat.JSON if fmt == "json" else OutputFormat.XML,
        SchemaVersion.from_version(version),
    )
    path = tmp_path / f"bom.{fmt}"
    path.write_text(outputter.output_as_string())
    name, facts = read_file(path, CTX)
    assert name == "cyclonedx"
    assert not facts.problems
    release = "release:3cxdesktopapp@18.12.416"
    assert edges_of(facts, EdgeKind.CONTAINS) == sorted(
        [
            (release, f"artifact:{SHA_A}"),
            (release, "software:pkg:npm/electron@19.0.0"),
            ("software:pkg:npm/electron@19.0.0", f"artifact:{SHA_B}"),
        ]
    )
    assert edges_of(facts, EdgeKind.DEPENDS_ON) == [
        ("software:pkg:npm/electron@19.0.0", f"artifact:{SHA_A}")
    ]


# -- SPDX, generated with spdx-tools ---------------------------------------------------------


def _spdx_document():
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        Package,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )

    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name="app",
        document_namespace="https://example.invalid/spdx/app-1",
        creators=[Actor(ActorType.TOOL, "taintline-test")],
        created=datetime(2023, 3, 13),
    )
    app = Package(
        spdx_id="SPDXRef-app",
        name="3CXDesktopApp",
        version="18.12.407",
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
    )
    lib = Package(
        spdx_id="SPDXRef-ffmpeg",
        name="ffmpeg.dll",
        version="1.0",
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm.SHA256, SHA_C)],
    )
    dep = Package(
        spdx_id="SPDXRef-zlib",
        name="zlib",
        version="1.2.13",
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
    )
    rels = [
        Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-app"),
        Relationship("SPDXRef-app", RelationshipType.CONTAINS, "SPDXRef-ffmpeg"),
        Relationship("SPDXRef-ffmpeg", RelationshipType.DEPENDS_ON, "SPDXRef-zlib"),
    ]
    return Document(creation_info=info, packages=[app, lib, dep], relationships=rels)


@pytest.mark.parametrize("fmt", ["json", "tag"])
def test_spdx_from_the_library(tmp_path: Path, fmt: str):
    from spdx_tools.spdx.writer.write_anything import write_file

    path = tmp_path / ("app.spdx.json" if fmt == "json" else "app.spdx")
    write_file(_spdx_document(), str(path), validate=True)
    renamed = tmp_path / "sbom-without-extension"
    renamed.write_bytes(path.read_bytes())  # detection is by content, not by name
    name, facts = read_file(renamed, CTX)
    assert name == "spdx"
    assert not facts.problems
    release = "release:3cxdesktopapp@18.12.407"
    assert (release, f"artifact:{SHA_C}") in edges_of(facts, EdgeKind.CONTAINS)
    assert edges_of(facts, EdgeKind.DEPENDS_ON) == [(f"artifact:{SHA_C}", "software:zlib@1.2.13")]


# -- osquery --------------------------------------------------------------------------------


def test_osqueryi_json_programs(tmp_path: Path):
    path = tmp_path / "programs.json"
    path.write_bytes(
        orjson.dumps(
            [
                {
                    "name": "X_TRADER",
                    "version": "7.17.90p608",
                    "install_date": "20220412",
                    "publisher": "Trading Technologies",
                    "identifying_number": "{X}",
                },
                {
                    "name": "7-Zip",
                    "version": "22.01",
                    "install_date": "",
                    "publisher": "Igor Pavlov",
                    "identifying_number": "",
                },
            ]
        )
    )
    name, facts = read_file(path, CTX)
    assert name == "osquery"
    xt = next(e for e in facts.edges if e.src.key == "x_trader@7.17.90p608")
    assert xt.dst == NodeRef(NodeKind.HOST, "laptop-1") and xt.valid_from == t("2022-04-12")


def test_osquery_daemon_differential_closes_on_removed(tmp_path: Path):
    rows = [
        {
            "name": "pack_inv_deb_packages",
            "hostIdentifier": "Build-01",
            "unixTime": 1650000000,
            "action": "added",
            "columns": {
                "name": "xz-utils",
                "version": "5.6.1-1",
                "arch": "amd64",
                "revision": "1",
                "maintainer": "x",
            },
        },
        {
            "name": "pack_inv_deb_packages",
            "hostIdentifier": "Build-01",
            "unixTime": 1650086400,
            "action": "removed",
            "columns": {
                "name": "xz-utils",
                "version": "5.6.1-1",
                "arch": "amd64",
                "revision": "1",
                "maintainer": "x",
            },
        },
        {
            "name": "procs",
            "hostIdentifier": "build-01",
            "unixTime": 1650000000,
            "action": "snapshot",
            "snapshot": [
                {
                    "pid": "4",
                    "name": "sshd",
                    "path": "/usr/sbin/sshd",
                    "cmdline": "sshd",
                    "start_time": "1649990000",
                }
            ],
        },
        "not json at all",
    ]
    path = tmp_path / "osqueryd.results.log"
    path.write_bytes(
        b"\n".join(orjson.dumps(r) if isinstance(r, dict) else r.encode() for r in rows)
    )
    name, facts = read_file(path, CTX)
    assert name == "osquery"
    xz = [e for e in facts.edges if e.src.key == "xz-utils@5.6.1-1"]
    assert len(xz) == 1
    assert xz[0].valid_from == datetime.fromtimestamp(1650000000, UTC)
    assert xz[0].valid_until == datetime.fromtimestamp(1650086400, UTC)
    assert xz[0].dst.key == "build-01"
    assert any(e.src.key == "sshd" for e in facts.edges)
    assert [p.line for p in facts.problems] == [4]


# -- in-toto / SLSA --------------------------------------------------------------------------


def _v02():
    return {
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": "app.msi", "digest": {"sha256": SHA_A}}],
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "predicate": {
            "builder": {"id": "build-win-01"},
            "buildType": "https://example.invalid/msbuild@v1",
            "metadata": {
                "buildInvocationId": "inv-407",
                "buildStartedOn": "2023-03-07T09:00:00Z",
                "buildFinishedOn": "2023-03-07T10:00:00Z",
            },
            "materials": [{"uri": "pkg:nuget/ffmpeg@1.0", "digest": {"sha256": SHA_B}}],
        },
    }


def test_slsa_v02_statement(tmp_path: Path):
    path = tmp_path / "prov.json"
    path.write_bytes(orjson.dumps(_v02(), option=orjson.OPT_INDENT_2))
    name, facts = read_file(path, CTX)
    assert name == "in-toto" and not facts.problems
    built = next(e for e in facts.edges if e.kind == EdgeKind.BUILT_ON)
    assert (str(built.src), str(built.dst)) == ("build:inv-407", "host:build-win-01")
    assert (built.valid_from, built.valid_until) == (t("2023-03-07T09:00"), t("2023-03-07T10:00"))
    produced = next(e for e in facts.edges if e.kind == EdgeKind.PRODUCED)
    assert produced.dst.key == SHA_A and produced.valid_from == t("2023-03-07T10:00")
    assert edges_of(facts, EdgeKind.USES) == [("build:inv-407", f"artifact:{SHA_B}")]


def test_slsa_v1_in_dsse_envelopes_jsonl(tmp_path: Path):
    v1 = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app.dmg", "digest": {"sha256": SHA_C}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "x",
                "externalParameters": {},
                "resolvedDependencies": [{"uri": "git+https://git.invalid/app"}],
            },
            "runDetails": {
                "builder": {"id": "build-mac-01"},
                "metadata": {
                    "invocationId": "mac-416",
                    "startedOn": "2023-03-13T06:10:00Z",
                    "finishedOn": "2023-03-13T06:41:52Z",
                },
            },
        },
    }
    lines = [
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(orjson.dumps(v1)).decode(),
            "signatures": [],
        },
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": "%%%not base64%%%",
            "signatures": [],
        },
    ]
    path = tmp_path / "a.intoto.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    name, facts = read_file(path, CTX)
    assert name == "in-toto"
    assert edges_of(facts, EdgeKind.PRODUCED) == [("build:mac-416", f"artifact:{SHA_C}")]
    assert edges_of(facts, EdgeKind.USES) == [
        ("build:mac-416", "software:git+https://git.invalid/app")
    ]
    assert len(facts.problems) == 1 and facts.problems[0].line == 2


# -- CSV tables and Zeek --------------------------------------------------------------------


def test_inventory_builds_distribution_auth_csv(tmp_path: Path):
    inv = tmp_path / "inv.csv"
    inv.write_text(
        "Host,Software,Version,Installed_At,Removed_At\n"
        "DEV-PC,X_TRADER,7.17,2022-04-12T09:00:00Z,\n"
        "old-pc,X_TRADER,7.17,2019-01-01,2020-01-01\n"
        "bad,thing,1,not-a-date,\n"
    )
    builds = tmp_path / "builds.csv"
    builds.write_text(
        "build_id,host,started,finished,outputs,release\n"
        f"b1,build-01,2023-03-07T09:00:00Z,2023-03-07T10:00:00Z,{SHA_A};{SHA_B},App@1.0\n"
        "b2,build-01,2023-03-08T09:00:00Z,2023-03-07T10:00:00Z,,App@1.1\n"
    )
    dist = tmp_path / "dist.csv"
    dist.write_text(
        "customer,release,time\nAcme,App@1.0,2023-03-09T08:00:00Z\n,App@1.0,2023-03-09\n"
    )
    dist_json = tmp_path / "dist.jsonl"
    dist_json.write_bytes(
        orjson.dumps({"host": "pc-9", "artifact": SHA_A, "time": "2023-03-10T00:00:00Z"})
    )
    auth = tmp_path / "auth.csv"
    auth.write_text(
        "time,src_host,dst_host,user,success\n"
        "2022-04-14T21:13:00Z,dev-pc,vpn,dev1,true\n"
        "2022-04-15T21:13:00Z,dev-pc,dc,dev1,false\n"
    )
    names = {p.name: read_file(p, CTX) for p in (inv, builds, dist, dist_json, auth)}
    assert {k: v[0] for k, v in names.items()} == {
        "inv.csv": "inventory-csv",
        "builds.csv": "builds-csv",
        "dist.csv": "distribution-csv",
        "dist.jsonl": "distribution-json",
        "auth.csv": "auth-csv",
    }
    inv_facts = names["inv.csv"][1]
    assert [e.dst.key for e in inv_facts.edges] == ["dev-pc", "old-pc"]
    assert inv_facts.edges[1].valid_until == t("2020-01-01")
    assert [p.line for p in inv_facts.problems] == [4]
    b = names["builds.csv"][1]
    assert len(edges_of(b, EdgeKind.PRODUCED)) == 2
    assert edges_of(b, EdgeKind.CONTAINS) == [
        ("release:app@1.0", f"artifact:{SHA_A}"),
        ("release:app@1.0", f"artifact:{SHA_B}"),
    ]
    assert len(b.problems) == 1  # finished before started
    d = names["dist.csv"][1]
    assert edges_of(d, EdgeKind.DISTRIBUTED_TO) == [("release:app@1.0", "org:acme")]
    assert d.edges[0].valid_from == d.edges[0].valid_until == t("2023-03-09T08:00")
    assert len(d.problems) == 1
    assert edges_of(names["dist.jsonl"][1], EdgeKind.DISTRIBUTED_TO) == [
        (f"artifact:{SHA_A}", "host:pc-9")
    ]
    assert edges_of(names["auth.csv"][1], EdgeKind.CONNECTED_TO) == [("host:dev-pc", "host:vpn")]


def test_zeek_conn_tsv_and_json(tmp_path: Path):
    tsv = tmp_path / "conn.log"
    tsv.write_text(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\n"
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\n"
        "1681500000.5\tC1\t10.0.0.5\t50000\t10.0.0.9\t3389\ttcp\t60.0\n"
        "broken line\n"
    )
    name, facts = read_file(tsv, CTX)
    assert name == "zeek-conn"
    e = facts.edges[0]
    assert (str(e.src), str(e.dst)) == ("host:10.0.0.5", "host:10.0.0.9")
    assert (e.valid_until - e.valid_from).total_seconds() == 60
    assert len(facts.problems) == 1
    js = tmp_path / "conn.json"
    js.write_bytes(
        orjson.dumps(
            {
                "ts": 1681500000.5,
                "uid": "C1",
                "id.orig_h": "10.0.0.5",
                "id.orig_p": 1,
                "id.resp_h": "10.0.0.7",
                "id.resp_p": 22,
            }
        )
    )
    assert read_file(js, CTX)[0] == "zeek-conn"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\x01garbage",
        b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "compo',
        b"SPDXVersion: SPDX-2.3\nnonsense",
        b"[{" * 10000,
    ],
)
def test_hostile_input_is_a_problem_not_a_crash(tmp_path: Path, content: bytes, case):
    path = tmp_path / "input"
    path.write_bytes(content)
    _name, facts = read_file(path, CTX)
    assert facts.problems
    results = add_files(case, [path, tmp_path / "missing.csv"])
    assert all(r.problems for r in results)
    assert case.con.execute("SELECT count(*) FROM edges").fetchall()[0][0] == 0


def test_osquery_apps_and_rpm_rows(tmp_path: Path):
    path = tmp_path / "mixed.json"
    path.write_bytes(
        orjson.dumps(
            [
                {
                    "name": "3CX Desktop App.app",
                    "bundle_identifier": "com.electron.3cx-desktop-app",
                    "bundle_short_version": "18.12.416",
                    "path": "/Applications/3CX Desktop App.app",
                },
            ]
        )
    )
    rpm = tmp_path / "rpm.log"
    rpm.write_bytes(
        orjson.dumps(
            {
                "name": "pack/inv/rpm_packages",
                "hostIdentifier": "web-01",
                "unixTime": 1700000000,
                "action": "snapshot",
                "snapshot": [
                    {
                        "name": "xz-libs",
                        "version": "5.6.0",
                        "release": "1.fc40",
                        "arch": "x86_64",
                        "sha1": "0" * 40,
                        "install_time": "1709000000",
                    }
                ],
            }
        )
    )
    _, apps = read_file(path, CTX)
    assert edges_of(apps, EdgeKind.INSTALLED_ON) == [
        ("software:3cx desktop app.app@18.12.416", "host:laptop-1")
    ]
    name, facts = read_file(rpm, CTX)
    assert name == "osquery"
    (edge,) = facts.edges
    assert str(edge.src) == "software:xz-libs@5.6.0-1.fc40" and edge.dst.key == "web-01"
    assert edge.valid_from == datetime.fromtimestamp(1709000000, UTC)


def test_out_of_range_times_and_huge_fields_are_problems(tmp_path: Path):
    inv = tmp_path / "inv.csv"
    inv.write_text(
        "host,software,installed_at\npc,x,99999999999\npc,y,1e400\n"
        + "pc,z,"
        + "9" * 200_000
        + "\n"
    )
    name, facts = read_file(inv, CTX)
    assert name == "inventory-csv"
    assert [e.src.key for e in facts.edges] == ["x"]  # rows before the bad line are kept
    assert [p.line for p in facts.problems] == [3, 4]
    zeek = tmp_path / "conn.json"
    zeek.write_bytes(
        orjson.dumps({"ts": 1e300, "id.orig_h": "a", "id.resp_h": "b"})
        + b"\n"
        + orjson.dumps({"ts": 1.0e9, "id.orig_h": "a", "id.resp_h": "c"})
    )
    name, facts = read_file(zeek, CTX)
    assert name == "zeek-conn" and len(facts.problems) == 1 and len(facts.edges) == 1


@pytest.mark.parametrize(
    ("name", "header", "good", "missing", "bad_time"),
    [
        (
            "inventory",
            "host,software,version,installed_at",
            "pc-1,X_TRADER,7.17,2022-01-01",
            ",X_TRADER,7.17,2022-01-01",
            "pc-2,X_TRADER,7.17,yesterday-ish",
        ),
        (
            "builds",
            "build_id,host,started,finished,outputs",
            f"B1,build-1,2023-01-01T00:00Z,2023-01-01T01:00Z,{SHA_A}",
            f",build-1,2023-01-01T00:00Z,2023-01-01T01:00Z,{SHA_A}",
            f"B2,build-1,2023-01-01T00:00Z,not-a-time,{SHA_A}",
        ),
        (
            "auth",
            "src_host,dst_host,time",
            "dev-pc,vpn,2022-04-14T21:13:00Z",
            "dev-pc,,2022-04-14T21:13:00Z",
            "dev-pc,dc,2022-13-45T99:00:00Z",
        ),
    ],
)
def test_csv_table_rows_report_problems_with_their_line(
    tmp_path: Path, name: str, header: str, good: str, missing: str, bad_time: str
) -> None:
    path = tmp_path / f"{name}.csv"
    huge = "x" * 200_000  # over the csv module's field limit: the rest of the file is skipped
    path.write_text(f'{header}\n{good}\n{missing}\n{bad_time}\n{good}\n"{huge}\n{good}\n')
    _, facts = read_file(path, CTX)
    problems = [(p.line, p.message.split(":")[0].split(" (")[0]) for p in facts.problems]
    assert problems[:2] == [(3, problems[0][1]), (4, "bad time")]
    assert problems[0][1].startswith("row without")
    assert problems[2][1] == "malformed CSV" and len(problems) == 3
    # the good rows before the malformed one give edges whose source names their line
    sources = sorted({e.source for e in facts.edges})
    assert sources == [f"{name}.csv:2", f"{name}.csv:5"]
    if name == "auth":  # no end time: the connection is an instant
        assert all(e.valid_until == e.valid_from for e in facts.edges)


@pytest.mark.parametrize(
    ("name", "good"),
    [
        (
            "dist.jsonl",
            {"customer": "acme", "release": "app@1.0", "time": "2023-03-09T08:00:00Z"},
        ),
        (
            "osqueryd.results.log",
            {
                "name": "procs",
                "hostIdentifier": "build-01",
                "unixTime": 1650000000,
                "action": "snapshot",
                "snapshot": [{"pid": "4", "name": "sshd", "path": "/usr/sbin/sshd"}],
            },
        ),
    ],
)
def test_json_readers_report_records_that_are_not_objects(
    tmp_path: Path, name: str, good: dict[str, object]
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\n".join([orjson.dumps(good), b"[1, 2]", b"42", b"{broken"]))
    _, facts = read_file(path, CTX)
    assert facts.edges
    assert [(p.line, p.message.split(":")[0]) for p in facts.problems] == [
        (2, "record is not an object"),
        (3, "record is not an object"),
        (4, "bad JSON"),
    ]
