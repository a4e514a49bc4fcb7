"""Compiled rules kept in the user's cache folder (scan/rules.py): the same rules are not
compiled twice, a damaged cache file is never used, and what did not compile is still said."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yara_x

from taintline.errors import InputError
from taintline.scan import rules as rules_mod
from taintline.scan.rules import RuleScanner, RuleSource, compile_rules

GOOD = RuleSource("a.yar", 'rule a { strings: $a = "cached-marker" condition: $a }', "a")
BAD = RuleSource("bad.yar", "rule b { condition: nonsense( }", "bad")


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """How many times yara-x compiled; the cache in a fresh folder."""
    monkeypatch.setenv("TAINTLINE_CACHE_DIR", str(tmp_path / "cache"))
    counted: list[int] = []
    real = rules_mod._compile

    def counting(*args: object, **kw: object) -> rules_mod.CompiledRules:
        counted.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(rules_mod, "_compile", counting)
    return counted


def _matches(compiled: rules_mod.CompiledRules) -> list[str]:
    assert compiled.data is not None
    scanner = RuleScanner(compiled.data, 5)
    found = scanner.scan(b"xx cached-marker xx", subject="s", name="n", filetype="", owner="")
    return [f.kind for f in found]


def test_the_same_rules_are_compiled_once(builds: list[int]) -> None:
    first = compile_rules([GOOD, BAD])
    again = compile_rules([GOOD, BAD])
    assert len(builds) == 1
    assert again == first and again.count == 1
    assert [p.item for p in again.problems] == ["bad.yar"]  # still said, from the cache
    assert _matches(again) == _matches(first) == ["yara"]
    # other text, another namespace or another strict list: compiled again
    compile_rules([GOOD])
    compile_rules([RuleSource(GOOD.origin, GOOD.text, "other")])
    compile_rules([GOOD], strict=("a.yar",))
    assert len(builds) == 4


def test_a_damaged_or_truncated_cache_file_is_compiled_again(builds: list[int]) -> None:
    first = compile_rules([GOOD])
    (entry,) = rules_mod.rules_cache_dir().glob("*.bin")
    blob = entry.read_bytes()
    for damaged in (blob[:-10], blob[:-1] + bytes([blob[-1] ^ 1]), b"", b"\x00" * 100):
        entry.write_bytes(damaged)
        again = compile_rules([GOOD])
        assert again == first
        assert again.data is not None
        yara_x.Rules.deserialize_from(io.BytesIO(again.data))
    assert len(builds) == 5


def test_strict_sources_that_fail_are_never_cached(builds: list[int]) -> None:
    for _ in range(2):
        with pytest.raises(InputError):
            compile_rules([BAD], strict=("bad.yar",))
    assert len(builds) == 2
    assert not list(rules_mod.rules_cache_dir().glob("*.bin"))


def test_an_unwritable_cache_is_no_error(
    builds: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TAINTLINE_CACHE_DIR", str(blocker))
    assert compile_rules([GOOD]).count == 1
    assert compile_rules([GOOD]).count == 1
    assert len(builds) == 2


def test_old_entries_are_pruned(builds: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules_mod, "RULES_CACHE_ENTRIES", 3)
    for i in range(5):
        compile_rules([RuleSource(f"r{i}.yar", f"rule r{i} {{ condition: true }}", "r")])
    assert len(list(rules_mod.rules_cache_dir().glob("*.bin"))) == 3
