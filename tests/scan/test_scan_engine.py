"""The engine: analysers through the contract, bundles, file facts, batches, the pool."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.model import Finding, Severity
from taintline.scan import analysers, store
from taintline.scan.engine import ScanOptions, scan_paths
from taintline.scan.interface import AnalysisContext, AnalysisResult, BundleMember, FileItem
from taintline.testing.archives import asar_bytes, zip_bytes

from .scanhelpers import kinds, run_scan


@dataclass(frozen=True, slots=True)
class FakeFacts:
    magic: str
    size: int
    blob: bytes


class FakeAnalyser:
    NAME = "fake"

    def applies(self, item: FileItem) -> bool:
        return item.data.startswith(b"FAKE")

    def analyse(self, item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
        finding = Finding("fake.anomaly", Severity.MEDIUM, item.path, "fake anomaly")
        return AnalysisResult(self.NAME, FakeFacts("FAKE", len(item.data), b"\x01\x02"), (finding,))


class BrokenAnalyser:
    NAME = "broken"

    def applies(self, item: FileItem) -> bool:
        return True

    def analyse(self, item: FileItem, ctx: AnalysisContext) -> AnalysisResult:
        if b"CRASH" in item.data:
            raise ValueError("parser fell over")
        return AnalysisResult(self.NAME, None)


class RecordingBundle:
    NAME = "bundle"

    def __init__(self) -> None:
        self.calls: dict[str, list[BundleMember]] = {}

    def analyse_bundle(
        self, root: str, members: Sequence[BundleMember], ctx: AnalysisContext
    ) -> tuple[Finding, ...]:
        self.calls[root] = list(members)
        if any("boom" in m.name for m in members):
            raise RuntimeError("bundle analyser bug")
        return ()


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> RecordingBundle:
    bundle = RecordingBundle()
    monkeypatch.setattr(analysers, "ANALYSERS", (FakeAnalyser(), BrokenAnalyser()))
    monkeypatch.setattr(analysers, "BUNDLE_ANALYSERS", (bundle,))
    return bundle


def test_analysers_facts_and_errors(tmp_path: Path, case: Case, fakes: RecordingBundle) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.fake").write_bytes(b"FAKE one")
    (root / "crash.bin").write_bytes(b"CRASH here")
    (root / "plain.txt").write_bytes(b"plain")
    result = run_scan(case, [root])
    got = kinds(result.findings)
    assert got["fake.anomaly"] == [f"{root}/a.fake"]
    assert got["error.analyser"] == [f"{root}/crash.bin"]
    error = next(f for f in result.findings if f.kind == "error.analyser")
    assert error.evidence["analyser"] == "broken"
    rows = {(r.path, r.analyser): r for r in store.file_facts(case, run_id=result.run_id)}
    fake = rows[(f"{root}/a.fake", "fake")]
    assert fake.facts == {"magic": "FAKE", "size": 8, "blob": "0102"}
    assert fake.sha256 == hashlib.sha256(b"FAKE one").hexdigest()
    assert rows[(f"{root}/plain.txt", "")].facts is None
    assert all(f.host == "testhost" for f in result.findings)


def test_bundles_folders_apps_and_containers(
    tmp_path: Path, case: Case, fakes: RecordingBundle
) -> None:
    app = tmp_path / "3CXDesktopApp"
    (app / "resources").mkdir(parents=True)
    (app / "resources" / "app.asar").write_bytes(
        asar_bytes({"node_modules/x/x.node": b"FAKE native", "boom.js": b"1"})
    )
    (app / "ffmpeg.dll").write_bytes(b"MZ dll")
    mac = tmp_path / "Mac.app" / "Contents"
    mac.mkdir(parents=True)
    (mac / "Info.plist").write_text("<plist/>")
    (tmp_path / "pkg.zip").write_bytes(zip_bytes({"lib/a.dll": b"MZ", "lib/b.dll": b"MZ"}))
    result = run_scan(case, [app, tmp_path / "Mac.app", tmp_path / "pkg.zip"])
    calls = fakes.calls
    asar = f"{app}/resources/app.asar"
    assert {m.path for m in calls[str(app)]} == {
        f"{app}/ffmpeg.dll",
        asar,
        f"{asar}!/node_modules/x/x.node",
        f"{asar}!/boom.js",
    }
    native = next(m for m in calls[str(app)] if m.name == "x.node")
    # a folder bundle's members are read back from the case: facts as JSON values (as a
    # re-scan gives them); a container's (judged in the worker) keep the typed record
    assert native.facts["fake"] == {"magic": "FAKE", "size": 11, "blob": "0102"}
    assert isinstance(next(m for m in calls[asar] if m.name == "x.node").facts["fake"], FakeFacts)
    assert {m.name for m in calls[asar]} == {"x.node", "boom.js"}
    assert {m.name for m in calls[str(tmp_path / "Mac.app")]} == {"Info.plist"}
    assert {m.path for m in calls[f"{tmp_path}/pkg.zip"]} == {
        f"{tmp_path}/pkg.zip!/lib/a.dll",
        f"{tmp_path}/pkg.zip!/lib/b.dll",
    }
    # the bundle analyser raised on the asar and the app folder: error findings, scan went on
    assert sorted(kinds(result.findings)["error.analyser"]) == sorted([str(app), asar])


def test_interrupted_scan_keeps_what_was_recorded(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taintline.scan import engine

    monkeypatch.setattr(engine, "BATCH_FILES", 1)
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}.txt").write_bytes(b"MARK %d" % i)
    rule = tmp_path / "r.yar"
    rule.write_text('rule mark { strings: $a = "MARK" condition: $a }')

    class StopAfterTwo:
        def __init__(self) -> None:
            self.done = 0

        def start(self, total_files: int, total_bytes: int) -> None:
            pass

        def advance(self, files: int, members: int, nbytes: int) -> None:
            self.done += files
            if self.done == 2:
                raise KeyboardInterrupt

    options = ScanOptions(workers=0, rule_files=(rule,), ensure_intel=False)
    with pytest.raises(KeyboardInterrupt):
        scan_paths([root], case, options, StopAfterTwo())
    assert len(case.findings(kinds=["yara"])) == 2
    status = case.con.execute("SELECT status FROM runs").fetchall()
    assert status == [("interrupted",)]


def test_process_pool_matches_in_process(tmp_path: Path, case: Case) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(10):
        (root / f"f{i}.zip").write_bytes(zip_bytes({f"m{i}.txt": b"POOLMARK %d" % i}))
    rule = tmp_path / "r.yar"
    rule.write_text('rule pool { strings: $a = "POOLMARK" condition: $a }')
    serial = run_scan(case, [root], rules=[rule], workers=0)
    pooled = run_scan(case, [root], rules=[rule], workers=2)
    assert sorted(f.subject for f in pooled.findings) == sorted(f.subject for f in serial.findings)
    assert len(pooled.findings) == 10
    assert pooled.members == serial.members == 10


def test_workers_started_before_the_walk_stop_when_it_finds_nothing(
    tmp_path: Path, case: Case
) -> None:
    """A first scan starts its workers before walking (nothing can be unchanged); when the
    walk finds no file they are stopped, and the scan still records its run."""
    import multiprocessing

    (tmp_path / "empty").mkdir()
    result = scan_paths(
        [tmp_path / "empty"], case, ScanOptions(workers=2, ensure_intel=False, use_rules=False)
    )
    assert result.files == 0 and result.run_id is not None
    assert multiprocessing.active_children() == []
    # and a first scan that does find files uses them
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.zip").write_bytes(zip_bytes({"m.txt": b"x"}))
    found = scan_paths(
        [tmp_path / "tree"], case, ScanOptions(workers=2, ensure_intel=False, use_rules=False)
    )
    assert found.files == 1 and found.members == 1
    assert multiprocessing.active_children() == []


def test_a_pool_started_by_the_caller_is_used_and_left_running(tmp_path: Path, case: Case) -> None:
    """``taintline scan`` into a new case file starts the workers before creating the case:
    scan_paths uses them (also when there is nothing to read) and leaves them to the caller."""
    from taintline.scan.engine import start_pool

    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.zip").write_bytes(zip_bytes({"m.txt": b"x"}))
    (tmp_path / "empty").mkdir()
    options = ScanOptions(workers=2, ensure_intel=False, use_rules=False)
    pool = start_pool(options)
    assert pool is not None
    try:
        assert scan_paths([tmp_path / "empty"], case, options, pool=pool).files == 0
        found = scan_paths([tmp_path / "tree"], case, options, pool=pool)
        assert found.files == 1 and found.members == 1
        pool.ping()  # still running
        with pytest.raises(ValueError, match="one scan"):
            scan_paths([tmp_path / "tree"], case, options, pool=pool)
    finally:
        pool.shutdown()
    assert start_pool(ScanOptions(workers=0)) is None


def test_a_walk_started_by_the_caller_is_used(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``taintline scan`` starts walking (in a thread) before it opens the case: scan_paths
    takes that walk's files and findings, refuses a walk of other paths, and a walk that
    fails raises its error in the scan."""
    from taintline.scan import engine
    from taintline.scan import walk as walk_module

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    (tree / "b.txt").write_bytes(b"b")
    options = ScanOptions(workers=0, ensure_intel=False, use_rules=False)
    walk = engine.start_walk([tree], options)
    (tree / "c.txt").write_bytes(b"c")  # after the walk: it may or may not see it
    result = scan_paths([tree], case, options, walk=walk)
    tasks, findings = walk.result()
    assert result.files == len(tasks) >= 2 and findings == []
    with pytest.raises(ValueError, match="not of the paths"):
        scan_paths([tmp_path], case, options, walk=engine.start_walk([tree], options))

    def broken(paths: object, limits: object) -> object:
        raise RuntimeError("the walk fell over")

    monkeypatch.setattr(walk_module, "walk_inputs", broken)
    with pytest.raises(RuntimeError, match="fell over"):
        scan_paths([tree], case, options)
    runs = case.con.execute("SELECT count(*) FROM runs").fetchone()
    assert runs == (1,)  # the failed scan recorded no run
