"""A tree exactly as a finished run left it (scan/treestate.py): the re-scan links that run's
rows whole and does no per-file work, with the same findings and rows as a fresh scan; any
change to the tree, the rules or the analysis goes the per-file way."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from taintline.case import Case
from taintline.model import Indicator, IndicatorType
from taintline.scan import treestate
from taintline.scan.cache import ScanCache
from taintline.scan.engine import ScanOptions, ScanResult, scan_paths
from taintline.scan.treestate import fingerprints
from taintline.scan.walk import FileTask
from taintline.testing.archives import zip_bytes
from taintline.testing.pe import build_pe

from .scanhelpers import run_rows, settle

RULE_A = 'rule marker_a { strings: $a = "taintline-marker-a" condition: $a }\n'
RULE_B = 'rule marker_b { strings: $b = "taintline-marker-b" condition: $b }\n'


def _tree(root: Path) -> None:
    (root / "lib").mkdir(parents=True)
    for i in range(3):
        members = {f"org/x/C{j}.class": b"\xca\xfe\xba\xbe class %d %d" % (i, j) for j in range(3)}
        members["META-INF/marker.txt"] = b"taintline-marker-a in jar %d" % i
        (root / "lib" / f"j{i}.jar").write_bytes(zip_bytes(members))
    (root / "bin").mkdir()
    (root / "bin" / "ffmpeg.dll").write_bytes(build_pe())
    (root / "notes.txt").write_bytes(b"taintline-marker-b and nothing else")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "tree"
    _tree(root)
    rules = tmp_path / "rules.yar"
    rules.write_text(RULE_A)
    settle()
    return root, rules


@pytest.fixture
def paths_taken(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the scans went each way: whole trees linked, or files checked one by one."""
    taken = {"whole": 0, "per_file": 0}
    real_trees, real_unchanged = treestate.link_trees, ScanCache.unchanged

    def whole(*args: Any, **kw: Any) -> Any:
        taken["whole"] += 1
        return real_trees(*args, **kw)

    def per_file(self: ScanCache, tasks: Any) -> Any:
        taken["per_file"] += 1
        return real_unchanged(self, tasks)

    monkeypatch.setattr(treestate, "link_trees", whole)
    monkeypatch.setattr(ScanCache, "unchanged", per_file)
    return taken


def _scan(case: Case, paths: list[Path], rules: Path, **kw: Any) -> ScanResult:
    options = ScanOptions(
        workers=0, rule_files=(rules,), ensure_intel=False, **{"host": "ws-1", **kw}
    )
    return scan_paths(paths, case, options)


def _view(result: ScanResult) -> list[tuple[str, str, str, str]]:
    return sorted((f.fingerprint, f.kind, f.subject, f.message) for f in result.findings)


def _states(case: Case) -> list[tuple[str, str, int]]:
    rows = case.con.execute("SELECT top, run_id, files FROM scan_tree_states ORDER BY top")
    return [(str(t), str(r), int(n)) for t, r, n in rows.fetchall()]


def _fresh(tmp_path: Path, paths: list[Path], rules: Path, name: str) -> tuple[Case, ScanResult]:
    case = Case(tmp_path / f"{name}.duckdb")
    return case, _scan(case, paths, rules)


def test_an_unchanged_tree_is_linked_whole(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        assert first.unchanged == 0 and first.files == 5
        # the run remembered the tree: every file recorded, every result cached
        assert _states(case) == [(str(root), str(first.run_id), 5)]
        assert paths_taken == {"whole": 0, "per_file": 1}  # looked up one by one: none known
        second = _scan(case, [root], rules)
        assert paths_taken == {"whole": 1, "per_file": 1}  # no file was checked one by one
        assert second.unchanged == second.files == 5 and second.bytes_read == 0
        assert second.members == first.members == 12
        assert _view(second) == _view(first)
        assert any(f.kind == "yara" for f in second.findings)  # cached, not lost
        assert run_rows(case, second.run_id) == run_rows(case, first.run_id)
        links = case.con.execute(
            "SELECT top, display, src_run, src_top FROM file_facts_links WHERE run_id = ?",
            [second.run_id],
        ).fetchall()
        assert links == [(str(root), None, first.run_id, str(root))]
        # the state still names the run that holds the rows: a third scan links it too
        assert _states(case) == [(str(root), str(first.run_id), 5)]
        third = _scan(case, [root], rules)
        assert paths_taken["whole"] == 2 and _view(third) == _view(first)
        # the members are the count the state remembered, or counted when it has none
        case.con.execute("UPDATE scan_tree_states SET members = 999")
        assert _scan(case, [root], rules).members == 999
        case.con.execute("UPDATE scan_tree_states SET members = NULL")
        assert _scan(case, [root], rules).members == first.members


def test_after_a_change_the_tree_is_remembered_as_the_new_run_saw_it(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        (root / "lib" / "j1.jar").write_bytes(zip_bytes({"a/B.class": b"\xca\xfe\xba\xbe new"}))
        (root / "new.txt").write_bytes(b"taintline-marker-a new file")
        (root / "notes.txt").unlink()
        settle()
        second = _scan(case, [root], rules)
        assert paths_taken["whole"] == 0  # the fingerprint changed: file by file
        assert second.files - second.unchanged == 2 and second.disappeared
        assert _states(case) == [(str(root), str(second.run_id), 5)]
        third = _scan(case, [root], rules)
        assert paths_taken["whole"] == 1
        assert third.unchanged == 5 and third.members == second.members
        assert _view(third) == _view(second)
        assert run_rows(case, third.run_id) == run_rows(case, second.run_id)
        # the second run's links were copied and its own rows linked: never a link of a link
        sources = {
            r[0]
            for r in case.con.execute(
                "SELECT src_run FROM file_facts_links WHERE run_id = ?", [third.run_id]
            ).fetchall()
        }
        assert sources == {first.run_id, second.run_id}
        fresh_case, fresh = _fresh(tmp_path, [root], rules, "fresh")
        with fresh_case:
            assert _view(third) == _view(fresh)
            assert run_rows(case, third.run_id) == run_rows(fresh_case, fresh.run_id)


def test_a_file_rewritten_with_its_mtime_put_back_is_read(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        _scan(case, [root], rules)
        notes = root / "notes.txt"
        st = notes.stat()
        notes.write_bytes(b"taintline-marker-a and nothing else")  # same size
        os.utime(notes, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert notes.stat().st_size == st.st_size and notes.stat().st_mtime_ns == st.st_mtime_ns
        settle()
        second = _scan(case, [root], rules)
        assert paths_taken["whole"] == 0 and second.files - second.unchanged == 1
        assert any(f.kind == "yara" and f.subject.endswith("notes.txt") for f in second.findings)


def test_other_rules_go_file_by_file_and_each_rule_set_keeps_its_state(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    other = tmp_path / "other.yar"
    other.write_text(RULE_B)
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        with_b = _scan(case, [root], other)
        assert paths_taken["whole"] == 0  # new rules: YARA runs again, file by file
        assert with_b.bytes_read > 0
        assert [f.subject for f in with_b.findings if f.kind == "yara"] == [f"{root}/notes.txt"]
        assert len(_states(case)) == 2  # one per rule set
        again_a = _scan(case, [root], rules)
        again_b = _scan(case, [root], other)
        assert paths_taken["whole"] == 2
        assert _view(again_a) == _view(first) and _view(again_b) == _view(with_b)
        # --full reads everything, and remembers the tree as it saw it
        full = _scan(case, [root], rules, full=True)
        assert full.unchanged == 0 and _view(full) == _view(first)
        assert (str(root), str(full.run_id), 5) in _states(case)


def test_overlapping_inputs_are_never_linked_whole(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root, root / "lib"], rules)
        # each file once, under the first input that reaches it (twice, the second copy's
        # findings went to the first's cache entry: a re-scan then lost them)
        assert first.files == 5 and len(first.findings) == len(set(_view(first))) == 4
        assert _states(case) == []
        second = _scan(case, [root, root / "lib"], rules)
        assert paths_taken["whole"] == 0 and second.unchanged == second.files == first.files
        assert _view(second) == _view(first)
        alone = _scan(case, [root], rules)
        assert alone.unchanged == 5 and _view(alone) == _view(first)


def test_two_inputs_are_linked_whole_each(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root / "lib", root / "bin"], rules)
        assert [s[0] for s in _states(case)] == [str(root / "bin"), str(root / "lib")]
        second = _scan(case, [root / "lib", root / "bin"], rules)
        assert paths_taken["whole"] == 1 and second.unchanged == 4
        assert _view(second) == _view(first)
        assert run_rows(case, second.run_id) == run_rows(case, first.run_id)
        only_lib = _scan(case, [root / "lib"], rules)  # one of the two: its own state
        assert paths_taken["whole"] == 2 and only_lib.files == 3


def test_a_file_changed_during_the_scan_is_not_remembered(
    tmp_path: Path, paths_taken: dict[str, int]
) -> None:
    root = tmp_path / "tree"
    _tree(root)
    rules = tmp_path / "rules.yar"
    rules.write_text(RULE_A)
    settle()
    with Case(tmp_path / "case.duckdb") as case:
        # changed just now: its identity is not trusted, so the tree is not remembered
        os.utime(root / "notes.txt")
        first = _scan(case, [root], rules)
        assert first.unchanged == 0 and _states(case) == []
        settle()
        second = _scan(case, [root], rules)
        assert paths_taken["whole"] == 0 and second.files - second.unchanged == 1
        assert [s[1] for s in _states(case)] == [second.run_id]
        third = _scan(case, [root], rules)
        assert paths_taken["whole"] == 1 and _view(third) == _view(first)


def test_new_hash_indicators_match_the_linked_rows(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        sha = case.con.execute(
            "SELECT sha256 FROM file_facts WHERE run_id = ? AND path LIKE '%C1.class'"
            " ORDER BY path LIMIT 1",
            [first.run_id],
        ).fetchone()
        assert sha is not None
        case.add_indicators([Indicator(IndicatorType.SHA256, str(sha[0]), "test feed")])
        second = _scan(case, [root], rules)
        assert paths_taken["whole"] == 1
        hits = [f for f in second.findings if f.kind == "ioc.hash"]
        assert [h.subject for h in hits] == [f"{root}/lib/j0.jar!/org/x/C1.class"]


def test_a_case_without_the_state_table_migrates_and_scans(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        case.con.execute("DROP TABLE scan_tree_states")
        case.con.execute("UPDATE schema_versions SET version = 7 WHERE component = 'scan'")
    with Case(tmp_path / "case.duckdb") as case:
        assert _states(case) == []  # migrated again, empty
        second = _scan(case, [root], rules)
        assert paths_taken["whole"] == 0 and second.unchanged == 5
        assert _view(second) == _view(first)
        assert [s[1] for s in _states(case)] == [second.run_id]
        third = _scan(case, [root], rules)
        assert paths_taken["whole"] == 1 and _view(third) == _view(first)


def test_the_fingerprint_covers_every_part_of_an_identity() -> None:
    base = FileTask("/t/a", "t/a", "t", 10, "root", ("t",), False, 1, 2, 3, 4)
    same = fingerprints([base])
    assert (
        fingerprints([FileTask("/t/a", "t/a", "t", 10, "root", ("t",), False, 1, 2, 3, 4)]) == same
    )
    for change in (
        {"path": "/t/b"},
        {"top": "u"},
        {"size": 11},
        {"owner": "nobody"},
        {"mtime_ns": 9},
        {"ctime_ns": 9},
        {"dev": 9},
        {"ino": 9},
    ):
        changed = fingerprints([dataclasses.replace(base, **change)])
        assert list(changed.values()) != list(same.values()), change
    # the order of the walk is part of it
    other = dataclasses.replace(base, path="/t/b", ino=5)
    assert fingerprints([base, other]) != fingerprints([other, base])
    # a name that is not UTF-8 (kept by Python as lone surrogates) still digests
    odd = dataclasses.replace(base, path="/t/\udcff")
    assert fingerprints([odd]) != same
    # a walk longer than one slice of the digest: its last file counts too
    many = [dataclasses.replace(base, path=f"/t/{i}", ino=i) for i in range(40_000)]
    whole = fingerprints(many)
    assert fingerprints(list(many)) == whole
    assert fingerprints([*many[:-1], dataclasses.replace(many[-1], size=12)]) != whole


def test_hash_matches_hold_while_the_hash_indicators_are_unchanged(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    root, rules = tree
    dll = f"{root}/bin/ffmpeg.dll"
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        dll_sha = case.con.execute(
            "SELECT sha256 FROM file_facts WHERE run_id = ? AND path = ?", [first.run_id, dll]
        ).fetchone()
        assert dll_sha is not None
        case.add_indicators([Indicator(IndicatorType.SHA256, str(dll_sha[0]), "feed-a")])
        second = _scan(case, [root], rules)  # new indicators: matched against the records
        assert [f.subject for f in second.findings if f.kind == "ioc.hash"] == [dll]
        full = _scan(case, [root], rules, full=True)  # remembers the match with the tree
        assert [f.subject for f in full.findings if f.kind == "ioc.hash"] == [dll]
        third = _scan(case, [root], rules)  # the same indicators: the remembered match
        assert paths_taken["whole"] == 2
        assert [f.subject for f in third.findings if f.kind == "ioc.hash"] == [dll]
        assert [f.evidence for f in third.findings if f.kind == "ioc.hash"] == [
            f.evidence for f in full.findings if f.kind == "ioc.hash"
        ]
        case.con.execute("DELETE FROM indicator_sources WHERE type = 'sha256'")
        fourth = _scan(case, [root], rules)  # withdrawn: no longer a match
        assert paths_taken["whole"] == 3
        assert [f for f in fourth.findings if f.kind == "ioc.hash"] == []


def test_a_damaged_state_is_passed_by_file_by_file(
    tmp_path: Path, tree: tuple[Path, Path], paths_taken: dict[str, int]
) -> None:
    """A state whose findings or matched records do not read (a damaged or hostile case
    file) is not used: the scan goes file by file, with the same findings, and no error."""
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, [root], rules)
        damage = (
            ("findings", "not json"),
            ("findings", '[{"kind": 1}]'),
            ("hash_rows", '[["a", "b"]]'),
            ("hash_rows", "{}"),
        )
        for n, (column, value) in enumerate(damage):
            case.con.execute(f"UPDATE scan_tree_states SET {column} = ?", [value])
            again = _scan(case, [root], rules)
            assert paths_taken["whole"] == n, column  # not used
            assert again.unchanged == 5 and _view(again) == _view(first), (column, value)
            # that scan remembered the tree afresh: the next one links it whole
            assert _view(_scan(case, [root], rules)) == _view(first)
            assert paths_taken["whole"] == n + 1
