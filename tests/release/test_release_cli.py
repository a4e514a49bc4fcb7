"""The CLI of the release stage: exit codes, formats, errors without tracebacks, provenance,
``--expect`` and the cascade starting from verify's findings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson
import pytest
from tests.release.conftest import Releases, make

from taintline.case import Case
from taintline.cli.main import main
from taintline.graph.service import run_cascade
from taintline.graph.store import seeds_from_findings
from taintline.model import Edge, EdgeKind, Node, NodeKind, NodeRef
from taintline.testing import archives, releases


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_exit_codes_and_formats(
    rel: Releases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make("zip", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("zip", rel.tampered, tmp_path, "DemoApp-18.12.416")
    bumped = make("zip", rel.bumped, tmp_path, "DemoApp-18.12.416-clean")
    case = str(tmp_path / "c.duckdb")
    code, out, _ = _cli(
        capsys,
        "verify",
        str(base),
        str(cand),
        "--case",
        case,
        "--workers",
        "0",
        "--format",
        "jsonl",
    )
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["severity"] for x in lines[:3]] == ["critical"] * 3  # dangerous first
    code, out, _ = _cli(capsys, "verify", str(base), str(bumped), "--case", case, "--workers", "0")
    assert code == 0
    sarif = tmp_path / "out.sarif"
    code, _, _ = _cli(
        capsys,
        "verify",
        str(base),
        str(cand),
        "--case",
        case,
        "--workers",
        "0",
        "--format",
        "sarif",
        "-o",
        str(sarif),
        "--fail-on",
        "critical",
    )
    assert code == 1
    doc = json.loads(sarif.read_text())
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} >= {
        "release.changed-same-version",
        "release.hidden-signature-data",
        "release.new-native-foreign-signer",
    }


def test_cli_bad_inputs_exit_2_without_traceback(
    rel: Releases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make("msi", rel.base, tmp_path, "DemoApp-18.12.407")
    bad = tmp_path / "DemoApp-18.12.416.msi"
    bad.write_bytes(archives.truncated(releases.as_msi(rel.tampered), keep=0.1))
    case = str(tmp_path / "c.duckdb")
    code, _, err = _cli(capsys, "verify", str(base), str(bad), "--case", case, "--workers", "0")
    assert code == 2
    assert "nothing could be read" in err and "Traceback" not in err
    future = tmp_path / "future.manifest.json"
    future.write_bytes(
        orjson.dumps({"schema": "taintline.release-manifest", "schema_version": 9, "files": []})
    )
    code, _, err = _cli(capsys, "verify", str(future), str(base), "--case", case)
    assert code == 2
    assert "schema version 9 is not supported" in err
    code, _, err = _cli(capsys, "verify", str(base), str(tmp_path / "nope"), "--case", case)
    assert code == 2 and "no such file" in err
    code, _, err = _cli(capsys, "manifest", "--case", case)
    assert code == 2


def test_cli_manifest_then_verify(
    rel: Releases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    case = str(tmp_path / "c.duckdb")
    out = tmp_path / "release.manifest.json"
    code, _, _ = _cli(
        capsys, "manifest", str(base), "-o", str(out), "--case", case, "--workers", "0"
    )
    assert code == 0 and out.is_file()
    code, stdout, _ = _cli(capsys, "manifest", "--from-case", "latest", "--case", case)
    assert code == 0
    assert json.loads(stdout)["files"] == json.loads(out.read_text())["files"]
    expect = tmp_path / "expect.yaml"
    expect.write_text(
        "expect:\n"
        "  - path: 'ffmpeg.dll'\n    kinds: [release.changed-same-version]\n    reason: known\n"
        "  - path: 'd3dcompiler_47.dll'\n"
        "  - path: '*.app/*/libupdate.dylib'\n"
    )
    code, stdout, _ = _cli(
        capsys,
        "verify",
        str(out),
        str(cand),
        "--case",
        case,
        "--workers",
        "0",
        "--expect",
        str(expect),
        "--format",
        "jsonl",
    )
    assert code == 0, stdout  # every dangerous change was expected
    assert all(json.loads(line)["severity"] in ("info", "low") for line in stdout.splitlines())
    expect.write_text("expect:\n  - path: x\n    kinds: [release.nonsense]\n")
    code, _, err = _cli(
        capsys, "verify", str(out), str(cand), "--case", case, "--expect", str(expect)
    )
    assert code == 2 and "unknown kind" in err


def _statement(subjects: dict[str, str], builder: str) -> dict[str, object]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects.items()],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {"buildType": "https://example.com/build/v1"},
            "runDetails": {"builder": {"id": builder}, "metadata": {"invocationId": "run-1"}},
        },
    }


def test_provenance_cross_check(
    rel: Releases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    built = {p: hashlib.sha256(d).hexdigest() for p, d in rel.tampered.items() if "/" not in p}
    built["ffmpeg.dll"] = hashlib.sha256(rel.bumped["ffmpeg.dll"]).hexdigest()  # what CI built
    prov = tmp_path / "prov.intoto.jsonl"
    prov.write_bytes(orjson.dumps(_statement(built, "https://ci.example.com/builder")) + b"\n")
    case = str(tmp_path / "c.duckdb")
    code, stdout, _ = _cli(
        capsys,
        "verify",
        str(base),
        str(cand),
        "--case",
        case,
        "--workers",
        "0",
        "--provenance",
        str(prov),
        "--builder",
        "https://other.example.com",
        "--format",
        "jsonl",
    )
    rows = [json.loads(line) for line in stdout.splitlines()]
    got = {(r["kind"], r["evidence"]["path"]) for r in rows}
    assert ("release.provenance-mismatch", "ffmpeg.dll") in got
    assert ("release.provenance-missing", "resources") not in got  # folders are not files
    assert ("release.provenance-builder", "DemoApp.exe") in got
    # the app bundle's files are no statement's subject
    assert any(k == "release.provenance-missing" and p.startswith("Demo App.app/") for k, p in got)
    assert code == 1


def test_cascade_starts_from_verify_findings(rel: Releases, tmp_path: Path) -> None:
    from taintline.release.verify import VerifyOptions, verify

    base = make("folder", rel.base, tmp_path, "DemoApp-18.12.407")
    cand = make("folder", rel.tampered, tmp_path, "DemoApp-18.12.416")
    with Case(tmp_path / "c.duckdb") as case:
        release = NodeRef(NodeKind.RELEASE, "demoapp@18.12.416")
        customer = NodeRef(NodeKind.ORG, "initech")
        case.add_nodes([Node(release.kind, release.key), Node(customer.kind, customer.key)])
        case.add_edges([Edge(EdgeKind.DISTRIBUTED_TO, release, customer, "test")])
        verify(base, cand, case, VerifyOptions(ensure_intel=False, workers=0))
        ffmpeg = hashlib.sha256(rel.tampered["ffmpeg.dll"]).hexdigest()
        seeds = {str(s.ref) for s in seeds_from_findings(case)}
        assert f"artifact:{ffmpeg}" in seeds
        outcome = run_cascade(case, from_findings=True, record_findings=False)
        reached = {str(outcome.graph.ref(n)) for n in outcome.result.reached.tolist()}
        assert {"release:demoapp@18.12.416", "org:initech"} <= reached
