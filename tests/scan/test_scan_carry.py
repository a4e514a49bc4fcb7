"""Re-scans that copy the stored rows of unchanged files in SQL (scan/carry.py) and bundle
checks read back from the case (scan/bundles.py): the same findings and rows as a fresh scan."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from taintline.case import Case
from taintline.interchange import export_case, import_jsonl
from taintline.model import Indicator, IndicatorType
from taintline.scan import analysers, bundles
from taintline.scan import cache as cache_mod
from taintline.scan.cache import ScanCache
from taintline.scan.engine import ScanOptions, ScanResult, scan_paths
from taintline.testing.archives import asar_bytes, zip_bytes
from taintline.testing.pe import build_pe

RULE = 'rule marker_a { strings: $a = "taintline-marker-a" condition: $a }\n'


def _settle() -> None:
    time.sleep(cache_mod.RACY_NS / 1e9 + 0.02)


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
    options = ScanOptions(workers=0, rule_files=(rules,), ensure_intel=False, host="ws-1", **kw)
    return scan_paths([root], case, options)


def _view(result: ScanResult) -> list[tuple[str, str, str]]:
    return sorted((f.fingerprint, f.kind, f.message) for f in result.findings)


def _rows(case: Case, run_id: str | None) -> list[tuple[Any, ...]]:
    return case.con.execute(
        "SELECT top, path, sha256, sha1, md5, size, filetype, depth, analyser, facts::VARCHAR"
        " FROM file_facts WHERE run_id = ? ORDER BY path, analyser",
        [run_id],
    ).fetchall()


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "tree"
    _tree(root)
    rules = tmp_path / "a.yar"
    rules.write_text(RULE)
    _settle()
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
        assert _rows(case, again.run_id) == _rows(case, first.run_id)
        # one jar changes: only it is read, the others' rows are copied
        (root / "lib" / "j1.jar").write_bytes(
            zip_bytes({"org/x/New.class": b"\xca\xfe\xba\xbe new", "m.txt": b"taintline-marker-a"})
        )
        _settle()
        third = _scan(case, root, rules)
        assert replays == [] and third.unchanged == first.files - 1
        with Case(tmp_path / "fresh.duckdb") as fresh:
            reference = _scan(fresh, root, rules)
            assert _view(third) == _view(reference)
            assert _rows(case, third.run_id) == _rows(fresh, reference.run_id)


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
        assert _rows(b, again.run_id) == _rows(b, first.run_id)


def test_identities_from_before_the_copy_are_replayed_once(
    tmp_path: Path, tree: tuple[Path, Path], replays: list[str]
) -> None:
    root, rules = tree
    with Case(tmp_path / "case.duckdb") as case:
        first = _scan(case, root, rules)
        # as a case written before identities named their analysis key
        case.con.execute("UPDATE scan_identities SET analysis_key = NULL")
        second = _scan(case, root, rules)
        assert len(replays) == first.files and second.unchanged == first.files
        replays.clear()
        third = _scan(case, root, rules)  # the replay adopted them: copied now
        assert replays == [] and third.unchanged == first.files
        assert _view(third) == _view(second) == _view(first)
        assert _rows(case, third.run_id) == _rows(case, first.run_id)


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
        assert _rows(case, again.run_id) == _rows(case, deep.run_id)


def test_bundle_triggers_cover_the_shipped_bundle_analysers() -> None:
    assert {a.NAME for a in analysers.BUNDLE_ANALYSERS} == set(bundles.TRIGGERS)
    assert bundles.record_name("/t/a.jar", 0) == "a.jar"
    assert bundles.record_name("/t/a.jar!/org/x/C.class", 1) == "C.class"
    assert bundles.record_name("/t/a.zip!/b.zip!/c.dll", 2) == "c.dll"


def test_cli_start_up_does_not_import_pandas(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_bytes(b"a")
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('pandas loaded:', 'pandas' in sys.modules))\n"
        f"sys.argv = ['taintline', 'scan', {str(tmp_path / 't')!r}, '--no-rules', '--workers',"
        f" '0', '--case', {str(tmp_path / 'c.duckdb')!r}]\n"
        "from taintline.cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "pandas loaded: False" in done.stdout
