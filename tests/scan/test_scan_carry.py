"""Re-scans that link the stored rows of unchanged files instead of rebuilding them
(scan/carry.py) and bundle checks read back from the case (scan/bundles.py): the same findings
and rows as a fresh scan, for every reader of a run's rows (manifest, retro, export, report)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from taintline.case import Case
from taintline.interchange import export_case, import_jsonl
from taintline.model import Indicator, IndicatorType
from taintline.release.manifest import manifest_from_case, manifest_from_paths, to_document
from taintline.report.casedata import from_case
from taintline.scan import analysers, bundles, store
from taintline.scan.cache import ScanCache
from taintline.scan.engine import ScanOptions, ScanResult, scan_paths
from taintline.scan.retro import match_stored
from taintline.testing.archives import asar_bytes, zip_bytes
from taintline.testing.pe import build_pe

from .scanhelpers import run_rows, settle

RULE = 'rule marker_a { strings: $a = "taintline-marker-a" condition: $a }\n'


def _tree(root: Path) -> None:
    pe = build_pe()
    (root / "lib").mkdir(parents=True)
    for i in range(3):
        members = {f"org/x/C{j}.class": b"\xca\xfe\xba\xbe class %d %d" % (i, j) for j in range(4)}
        members["META-INF/marker.txt"] = b"taintline-marker-a in jar %d" % i
        (root / "lib" / f"j{i}.jar").write_bytes(zip_bytes(members))
    app = root / "App"
    (app / "resources").mkdir(parents=True)
    (app / "resources" / "app.asar").write_bytes(
        asar_bytes({"node_modules/x/x.node": pe, "main.js": b"1"})
    )
    (app / "ffmpeg.dll").write_bytes(pe)
    (root / "plain.txt").write_bytes(b"plain text")


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Display paths whose cached results were replayed (rebuilt in Python, not copied)."""
    seen: list[str] = []
    real = ScanCache.fetch

    def counting(self: ScanCache, wanted: Any) -> Any:
        seen.extend(t.display for t, _, _ in wanted)
        return real(self, wanted)

    monkeypatch.setattr(ScanCache, "fetch", counting)
    return seen


def _scan(case: Case, root: Path, rules: Path, **kw: Any) -> ScanResult:
    options = ScanOptions(
        workers=0, rule_files=(rules,), ensure_intel=False, **{"host": "ws-1", **kw}
    )
    return scan_paths([root], case, options)


def _view(result: ScanResult) -> list[tuple[str, str, str]]:
    return sorted((f.fingerprint, f.kind, f.message) for f in result.findings)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "tree"
    _tree(root)
    rules = tmp_path / "a.yar"
    rules.write_text(RULE)
    settle()
    return root, rules


def test_one_changed_jar_is_read_the_rest_copied(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        assert any(f.kind == "electron.native-libraries" for f in first.findings)
        again = _scan(case, root, rules)
        assert replays == [] and again.unchanged == again.files == first.files
        assert again.members == first.members and _view(again) == _view(first)
        assert run_rows(case, again.run_id) == run_rows(case, first.run_id)
        # one jar changes: only it is read, the others' rows are copied
        (root / "lib" / "j1.jar").write_bytes(
            zip_bytes({"org/x/New.class": b"\xca\xfe\xba\xbe new", "m.txt": b"taintline-marker-a"})
        )
        settle()
        third = _scan(case, root, rules)
        assert replays == [] and third.unchanged == first.files - 1
        with Case(tmp_path / "fresh.duckdb") as fresh:
            reference = _scan(fresh, root, rules)
            assert _view(third) == _view(reference)
            assert run_rows(case, third.run_id) == run_rows(fresh, reference.run_id)


def test_indicators_added_between_scans_match_copied_rows(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        member = f"{root}/lib/j2.jar!/org/x/C3.class"
        sha = case.con.execute(
            "SELECT sha256 FROM file_facts WHERE run_id = ? AND path = ?", [first.run_id, member]
        ).fetchone()
        assert sha is not None
        case.add_indicators(
            [
                Indicator(IndicatorType.SHA256, str(sha[0]), "feed-a"),
                Indicator(IndicatorType.FILENAME_REGEX, r"j0\.jar!/org/x/C1\.class$", "feed-b"),
            ]
        )
        again = _scan(case, root, rules)
        assert replays == [] and again.unchanged == again.files
        hits = {(f.kind, f.subject) for f in again.findings if f.kind.startswith("ioc.")}
        assert hits == {
            ("ioc.hash", member),
            ("ioc.filename", f"{root}/lib/j0.jar!/org/x/C1.class"),
        }
        with Case(tmp_path / "fresh.duckdb") as fresh:
            fresh.add_indicators(
                [
                    Indicator(IndicatorType.SHA256, str(sha[0]), "feed-a"),
                    Indicator(IndicatorType.FILENAME_REGEX, r"j0\.jar!/org/x/C1\.class$", "feed-b"),
                ]
            )
            assert _view(again) == _view(_scan(fresh, root, rules))


def test_imported_case_rescans_by_copying(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "a.duckdb") as a:
        first = _scan(a, root, rules)
        export_case(a, "jsonl", tmp_path / "a.jsonl")
    with Case(tmp_path / "b.duckdb") as b:
        import_jsonl(b, tmp_path / "a.jsonl")
        again = _scan(b, root, rules)
        assert replays == [] and again.unchanged == again.files == first.files
        assert _view(again) == _view(first)
        assert run_rows(b, again.run_id) == run_rows(b, first.run_id)


def test_identities_from_before_the_copy_are_replayed_once(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        # as a case written before identities named their analysis key (and so before
        # trees were remembered whole)
        case.con.execute("UPDATE scan_identities SET analysis_key = NULL")
        case.con.execute("DELETE FROM scan_tree_states")
        second = _scan(case, root, rules)
        assert len(replays) == first.files and second.unchanged == first.files
        replays.clear()
        third = _scan(case, root, rules)  # the replay adopted them: copied now
        assert replays == [] and third.unchanged == first.files
        assert _view(third) == _view(second) == _view(first)
        assert run_rows(case, third.run_id) == run_rows(case, first.run_id)


def test_cached_records_stored_as_text_before_compression_still_replay(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        blobs = case.con.execute(
            "SELECT sha256, name_class, records, records_zstd FROM scan_contents"
        ).fetchall()
        assert blobs and all(text == "" and blob for _, _, text, blob in blobs)
        # as a case written before scan/007: the records as JSON text
        for sha, name_class, _, blob in blobs:
            case.con.execute(
                "UPDATE scan_contents SET records = ?, records_zstd = NULL"
                " WHERE sha256 = ? AND name_class = ?",
                [zstandard.ZstdDecompressor().decompress(blob).decode(), sha, name_class],
            )
        case.con.execute("UPDATE scan_identities SET analysis_key = NULL")  # replay, not link
        case.con.execute("DELETE FROM scan_tree_states")  # nor link the tree whole
        second = _scan(case, root, rules)
        assert len(replays) == first.files and second.unchanged == first.files
        assert _view(second) == _view(first)
        assert run_rows(case, second.run_id) == run_rows(case, first.run_id)


def test_other_limits_are_never_copied(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        deep = _scan(case, root, rules)
        from taintline.limits import ScanLimits

        shallow = _scan(case, root, rules, limits=ScanLimits(max_depth=0))
        assert shallow.members == 0 and deep.members > 0
        again = _scan(case, root, rules)  # contents of both analyses are cached
        assert again.members == deep.members and _view(again) == _view(deep)
        assert run_rows(case, again.run_id) == run_rows(case, deep.run_id)


def test_linked_runs_use_the_trigger_paths_their_source_remembered(
    tmp_path: Path, tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle checks of a re-scan search only its own rows: for linked rows, the trigger
    paths the storing run remembered are used; a run that remembered none (or under other
    trigger definitions) is searched, with the same findings."""
    root, rules = tree
    searched: list[str] = []
    real = bundles._search

    def counting(case: Case, run_id: str) -> list[tuple[str, str]]:
        searched.append(run_id)
        return real(case, run_id)

    monkeypatch.setattr(bundles, "_search", counting)
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        assert searched == [first.run_id]
        remembered = case.con.execute(
            "SELECT json_extract(summary, '$.bundle_triggers') FROM runs WHERE run_id = ?",
            [first.run_id],
        ).fetchone()
        assert remembered is not None and f"{root}/App/resources/app.asar" in remembered[0]
        searched.clear()
        again = _scan(case, root, rules)
        assert searched == [again.run_id]  # its own rows only (none): the source is not searched
        assert any(f.kind == "electron.native-libraries" for f in again.findings)
        assert _view(again) == _view(first)
        # other trigger definitions: what the first run remembered is not used
        monkeypatch.setattr(bundles, "TRIGGER_KEY", "other")
        searched.clear()
        third = _scan(case, root, rules)
        assert searched == [third.run_id, first.run_id]
        assert _view(third) == _view(first)


def test_bundle_triggers_cover_the_shipped_bundle_analysers() -> None:
    assert {a.NAME for a in analysers.BUNDLE_ANALYSERS} == set(bundles.TRIGGERS)
    assert bundles.record_name("/t/a.jar", 0) == "a.jar"
    assert bundles.record_name("/t/a.jar!/org/x/C.class", 1) == "C.class"
    assert bundles.record_name("/t/a.zip!/b.zip!/c.dll", 2) == "c.dll"


def test_cli_start_up_does_not_import_pandas(tmp_path: Path) -> None:
    """The console script: a first scan imports pyarrow (on first use) but never pandas; a
    re-scan of the unchanged tree imports neither pyarrow nor numpy."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_bytes(b"a")
    (tmp_path / "t" / "b.zip").write_bytes(zip_bytes({"m.txt": b"member"}))
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('loaded:', sorted(m for m in ('pandas', 'pyarrow',"
        " 'numpy') if m in sys.modules)))\n"
        f"sys.argv = ['taintline', 'scan', {str(tmp_path / 't')!r}, '--no-rules', '--workers',"
        f" '0', '--case', {str(tmp_path / 'c.duckdb')!r}]\n"
        "from taintline.cli.main import run\n"
        "run()\n"
    )
    outputs = []
    for _ in range(2):
        settle()
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "loaded: ['numpy', 'pyarrow']" in outputs[0]
    assert "2 of 2 files unchanged, 0 read" in outputs[1] and "loaded: []" in outputs[1]


# -- links: a re-scan refers to the rows of the run that stored them ---------------------------


def _links(case: Case, run_id: str | None) -> list[tuple[Any, ...]]:
    return case.con.execute(
        "SELECT display, src_run, src_top, top, host FROM file_facts_links WHERE run_id = ?"
        " ORDER BY display",
        [run_id],
    ).fetchall()


def _stored_runs(case: Case) -> set[str]:
    """The runs that hold rows themselves."""
    return {
        str(r[0]) for r in case.con.execute("SELECT DISTINCT run_id FROM file_facts").fetchall()
    }


def test_rescans_link_to_the_run_that_holds_the_rows(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        second = _scan(case, root, rules)
        third = _scan(case, root, rules)
        assert replays == [] and third.unchanged == third.files == first.files
        # only the first run wrote rows; the others link to it, never to each other: one
        # link for the whole unchanged tree
        assert _stored_runs(case) == {str(first.run_id)}
        whole = [(None, first.run_id, str(root), str(root), "ws-1")]
        assert _links(case, second.run_id) == _links(case, third.run_id) == whole
        identities = case.con.execute("SELECT DISTINCT run_id FROM scan_identities").fetchall()
        assert identities == [(first.run_id,)]
        assert (
            run_rows(case, third.run_id)
            == run_rows(case, second.run_id)
            == run_rows(case, first.run_id)
        )
        assert _view(third) == _view(second) == _view(first)
        assert third.members == second.members == first.members > 0
        # a changed file is stored by the run that read it; the next scan links to all that
        # run stored (the file) and, file by file, to the rest of the first run
        plain = f"{root}/plain.txt"
        (root / "plain.txt").write_bytes(b"other text")
        settle()
        fourth = _scan(case, root, rules)
        fifth = _scan(case, root, rules)
        assert replays == [] and _stored_runs(case) == {first.run_id, fourth.run_id}
        links = _links(case, fifth.run_id)
        assert (None, fourth.run_id, str(root), str(root), "ws-1") in links
        by_file = {display: src for display, src, *_ in links if display is not None}
        assert len(by_file) == first.files - 1 and plain not in by_file
        assert set(by_file.values()) == {first.run_id}
        # a new file: the run that read it is linked whole too, beside the fourth
        (root / "lib" / "new.txt").write_bytes(b"new text")
        settle()
        sixth = _scan(case, root, rules)
        seventh = _scan(case, root, rules)
        assert replays == [] and seventh.unchanged == seventh.files == first.files + 1
        wholes = {src for display, src, *_ in _links(case, seventh.run_id) if display is None}
        assert wholes == {fourth.run_id, sixth.run_id}
        with Case(tmp_path / "fresh.duckdb") as fresh:
            reference = _scan(fresh, root, rules)
            assert run_rows(case, seventh.run_id) == run_rows(fresh, reference.run_id)
            assert run_rows(case, sixth.run_id) == run_rows(fresh, reference.run_id)
            assert _view(seventh) == _view(sixth) == _view(reference)
            assert seventh.members == reference.members
        (root / "lib" / "new.txt").unlink()
        eighth = _scan(case, root, rules)
        assert eighth.disappeared == (f"{root}/lib/new.txt",)
        assert run_rows(case, eighth.run_id) == run_rows(case, fifth.run_id)
        assert _view(eighth) == _view(fifth)


def test_manifest_of_a_linked_run_equals_a_fresh_one(
    tmp_path: Path, tree: tuple[Path, Path]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        again = _scan(case, root, rules)
        assert again.run_id not in _stored_runs(case) and _links(case, again.run_id)
        linked = to_document(manifest_from_case(case, again.run_id))
        assert linked == to_document(manifest_from_case(case, first.run_id))
        assert to_document(manifest_from_case(case)) == linked  # the latest run: linked
        # `taintline manifest PATH` scans into the case: the second time it links
        made, _ = manifest_from_paths([root], case, workers=0)
        remade, _ = manifest_from_paths([root], case, workers=0)
        assert len(_stored_runs(case)) == 2  # the scan run, the first manifest run
        assert to_document(remade) == to_document(made)
    with Case(tmp_path / "fresh.duckdb") as fresh:
        reference = _scan(fresh, root, rules)
        assert to_document(manifest_from_case(fresh, reference.run_id)) == linked


def test_retro_matching_names_the_linked_runs_and_hosts(
    tmp_path: Path, tree: tuple[Path, Path]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        a1 = _scan(case, root, rules)
        a2 = _scan(case, root, rules)  # linked
        b1 = _scan(case, root, rules, host="ws-2")  # identities are per host: read
        b2 = _scan(case, root, rules, host="ws-2")  # linked
        assert _stored_runs(case) == {a1.run_id, b1.run_id}
        member = f"{root}/lib/j2.jar!/org/x/C3.class"
        sha = case.con.execute(
            "SELECT sha256 FROM file_facts_all WHERE run_id = ? AND path = ?", [b2.run_id, member]
        ).fetchone()
        assert sha is not None
        case.add_indicators(
            [
                Indicator(IndicatorType.SHA256, str(sha[0]), "feed-a"),
                Indicator(IndicatorType.FILENAME_REGEX, r"j0\.jar!/org/x/C1\.class$", "feed-b"),
            ]
        )
        result = match_stored(case)
        found = {
            (f.kind, f.evidence["scan_run"], f.host, f.subject)
            for f in result.findings
            if f.kind.startswith("ioc.")
        }
        named = f"{root}/lib/j0.jar!/org/x/C1.class"
        assert found == {
            ("ioc.hash", a1.run_id, "ws-1", member),
            ("ioc.hash", a2.run_id, "ws-1", member),
            ("ioc.hash", b1.run_id, "ws-2", member),
            ("ioc.hash", b2.run_id, "ws-2", member),
            # a path: the latest run of each host that saw it
            ("ioc.filename", a2.run_id, "ws-1", named),
            ("ioc.filename", b2.run_id, "ws-2", named),
        }
        assert result.hosts == {"ws-1", "ws-2"} and result.matched == 6
        # a re-scan now finds the same ioc.hash and ioc.filename findings (same fingerprints)
        again = _scan(case, root, rules)
        scanned = {f.fingerprint for f in again.findings if f.kind.startswith("ioc.")}
        assert scanned == {
            f.fingerprint for f in result.findings if f.host == "ws-1" and f.kind.startswith("ioc.")
        }


def test_export_and_import_keep_the_links(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "a.duckdb") as a:
        first = _scan(a, root, rules)
        again = _scan(a, root, rules)
        export_case(a, "jsonl", tmp_path / "a.jsonl")
        rows = run_rows(a, again.run_id)
        links = _links(a, again.run_id)
    assert links and rows == _rows_of_fresh(tmp_path, root, rules)
    with Case(tmp_path / "b.duckdb") as b:
        imported = import_jsonl(b, tmp_path / "a.jsonl")
        assert imported.problems == [] and imported.counts["file_facts_link"] == len(links)
        assert _links(b, again.run_id) == links and run_rows(b, again.run_id) == rows
        assert _stored_runs(b) == {first.run_id}
        assert set(import_jsonl(b, tmp_path / "a.jsonl").counts.values()) == {0}
        export_case(b, "jsonl", tmp_path / "b.jsonl")
        third = _scan(b, root, rules)  # the imported identities: linked to the first run
        assert replays == [] and {src for _, src, *_ in _links(b, third.run_id)} == {first.run_id}
        assert run_rows(b, third.run_id) == rows
    exported = sorted((tmp_path / "a.jsonl").read_bytes().splitlines())
    assert sorted((tmp_path / "b.jsonl").read_bytes().splitlines()) == exported


def _rows_of_fresh(tmp_path: Path, root: Path, rules: Path) -> list[tuple[Any, ...]]:
    with Case(tmp_path / "fresh.duckdb") as fresh:
        return run_rows(fresh, _scan(fresh, root, rules).run_id)


def _as_before_links(path: Path, run_id: str | None) -> None:
    """Make the case at ``path`` one written before ``scan/005``: run ``run_id``'s linked rows
    copied (as re-scans did then), no link table, no view."""
    with Case(path) as case:
        case.con.execute(
            "INSERT INTO file_facts SELECT * FROM file_facts_all WHERE run_id = ?"
            " AND run_id IN (SELECT run_id FROM file_facts_links)",
            [run_id],
        )
        case.con.execute("DROP VIEW file_facts_all")
        case.con.execute("DROP VIEW file_facts_runs")
        case.con.execute("DROP TABLE file_facts_links")
        case.con.execute("UPDATE schema_versions SET version = 4 WHERE component = 'scan'")


def test_a_case_from_before_links_reads_and_rescans(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    path = tmp_path / "case.duckdb"
    with Case(path) as case:
        first = _scan(case, root, rules)
        copied = _scan(case, root, rules)
        rows = run_rows(case, copied.run_id)
    _as_before_links(path, copied.run_id)
    with Case(path, read_only=True) as old:  # not migrated: its readers read its own rows
        assert run_rows(old, copied.run_id) == rows
        assert len(store.file_facts(old, run_id=copied.run_id)) == len(rows)
        assert from_case(old).inputs_total == first.files
    with Case(path) as case:  # migrated now
        assert _stored_runs(case) == {first.run_id, copied.run_id}
        third = _scan(case, root, rules)
        assert replays == [] and third.unchanged == first.files
        assert {src for _, src, *_ in _links(case, third.run_id)} == {first.run_id}
        assert run_rows(case, third.run_id) == run_rows(case, copied.run_id) == rows
        assert _view(third) == _view(copied)


def test_a_case_of_the_first_link_schema_lists_its_linked_runs(
    tmp_path: Path, tree: tuple[Path, Path]
) -> None:
    root, rules = tree
    path = tmp_path / "case.duckdb"
    with Case(path) as case:
        first = _scan(case, root, rules)
        again = _scan(case, root, rules)
        # as a case of scan/005: links, but no view of the runs that have rows
        case.con.execute("DROP VIEW file_facts_runs")
        case.con.execute("UPDATE schema_versions SET version = 5 WHERE component = 'scan'")
    with Case(path, read_only=True) as old:
        for con in (old.con, old.cursor()):
            runs = {r[0] for r in con.execute("SELECT run_id FROM file_facts_runs").fetchall()}
            assert runs == {first.run_id, again.run_id}
    with Case(path) as case:  # migrated again
        assert to_document(manifest_from_case(case)) == to_document(
            manifest_from_case(case, first.run_id)
        )
        assert run_rows(case, again.run_id) == run_rows(case, first.run_id)


def test_a_run_remembers_its_member_counts_for_the_runs_that_link_it(
    tmp_path: Path, tree: tuple[Path, Path]
) -> None:
    root, rules = tree

    def remembered(case: Case, run_id: str | None) -> Any:
        row = case.con.execute("SELECT summary FROM runs WHERE run_id = ?", [run_id]).fetchone()
        assert row is not None
        return orjson.loads(row[0]).get("members_by_top")

    def remember(case: Case, run_id: str | None, counts: Any) -> None:
        row = case.con.execute("SELECT summary FROM runs WHERE run_id = ?", [run_id]).fetchone()
        assert row is not None
        summary = orjson.loads(row[0])
        summary.pop("members_by_top")
        if counts is not None:
            summary["members_by_top"] = counts
        case.con.execute(
            "UPDATE runs SET summary = ? WHERE run_id = ?", [orjson.dumps(summary).decode(), run_id]
        )

    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        assert remembered(case, first.run_id) == {str(root): first.members}
        # the links here, not the whole tree's (scan/treestate.py, which counts its own)
        case.con.execute("DELETE FROM scan_tree_states")
        again = _scan(case, root, rules)
        assert remembered(case, again.run_id) == {}  # it stored no row
        assert again.members == first.members
        # the linking scan takes the count the storing run remembered
        remember(case, first.run_id, {str(root): 12345})
        case.con.execute("DELETE FROM scan_tree_states")
        assert _scan(case, root, rules).members == 12345
        # a run from before the counts were remembered: its rows are counted
        remember(case, first.run_id, None)
        case.con.execute("DELETE FROM scan_tree_states")
        assert _scan(case, root, rules).members == first.members
