"""YARA parity: a generated rule set compiled and run by Debian's ``yara``/``yarac`` and by
taintline (import check + scan), compared file by file.

The set uses the five LOKI/THOR externals, the ``pe``, ``math`` and ``hash`` modules, nested
``include`` statements (resolved relative to the including file) and a few broken files.
Every file libyara accepts must import here, every file it refuses must fail here, and the
rules that match a harmless generated PE must be the same.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from taintline.intel import yara_rules
from taintline.limits import IntelLimits
from taintline.scan.rules import RuleScanner, RuleSource, compile_rules
from taintline.testing.pe import PESpec, build_pe

YARA = shutil.which("yara")
YARAC = shutil.which("yarac")
pytestmark = pytest.mark.skipif(
    YARA is None or YARAC is None, reason="Debian's yara package is not installed"
)

EXTERNAL_VALUES = {
    "filename": "sample.exe",
    "filepath": "/cases/host1/sample.exe",
    "extension": ".exe",
    "filetype": "EXE",
    "owner": "tester",
}


def _rule_bodies(tag: str, md5: str) -> dict[str, str]:
    """Candidate rules (name -> text), matching and not, over externals and modules."""
    return {
        f"ext_{tag}": (
            f'rule ext_{tag} {{ condition: extension == ".exe" and filename matches /^sample/ }}'
        ),
        f"path_{tag}": (
            f'rule path_{tag} {{ condition: filepath contains "host1" and owner == "tester" }}'
        ),
        f"type_{tag}": f'rule type_{tag} {{ condition: filetype == "EXE" and is_pe_file }}',
        f"math_{tag}": (
            f"rule math_{tag} {{ condition: math.entropy(0, filesize) >= 0.0 and filesize > 64 }}"
        ),
        f"hash_{tag}": f'rule hash_{tag} {{ condition: hash.md5(0, filesize) == "{md5}" }}',
        f"hashno_{tag}": (
            f'rule hashno_{tag} {{ condition: hash.sha256(0, filesize) == "{"0" * 64}" }}'
        ),
        f"pe_{tag}": f"rule pe_{tag} {{ condition: pe.number_of_sections >= 1 and pe.is_pe }}",
        f"str_{tag}": (
            f'rule str_{tag} {{ strings: $mz = "MZ" $re = /PE\\x00\\x00/ '
            "condition: $mz at 0 and $re }"
        ),
        f"owner_{tag}": f'rule owner_{tag} {{ condition: owner == "someone-else" }}',
        f"meta_{tag}": (
            f'rule meta_{tag} : loki {{ meta: score = 70 description = "x" '
            'condition: filename iequals "SAMPLE.EXE" }'
        ),
    }


def generate_rule_set(folder: Path, sample_md5: str, seed: int = 11) -> dict[str, set[str]]:
    """Write the rule set; returns file name -> public rule names it defines."""
    rng = random.Random(seed)
    lib = folder / "lib"
    lib.mkdir(parents=True)
    (lib / "names.yar").write_text(
        'private rule named_sample { condition: filename contains "sample" }\n'
    )
    (lib / "common.yar").write_text(
        'include "names.yar"\nimport "pe"\n'
        "private rule is_pe_file { condition: uint16(0) == 0x5A4D and pe.is_pe "
        "and named_sample }\n"
    )
    defined: dict[str, set[str]] = {}
    for n in range(6):
        bodies = _rule_bodies(f"f{n}", sample_md5)
        chosen = rng.sample(sorted(bodies), k=rng.randint(3, len(bodies)))
        if f"type_f{n}" not in chosen:
            chosen.append(f"type_f{n}")  # every file needs the include
        text = 'include "lib/common.yar"\nimport "math"\nimport "hash"\nimport "pe"\n\n'
        text += "\n".join(bodies[name] for name in sorted(chosen)) + "\n"
        (folder / f"set{n}.yar").write_text(text)
        defined[f"set{n}.yar"] = set(chosen)
    # Files that both must refuse.
    (folder / "broken_syntax.yar").write_text("rule broken { condition: and }\n")
    (folder / "undefined_external.yar").write_text(
        "rule undef { condition: not_an_external == 1 }\n"
    )
    (folder / "missing_include.yar").write_text(
        'include "lib/nowhere.yar"\nrule r { condition: true }\n'
    )
    return defined


def _defines() -> list[str]:
    return [arg for k, v in EXTERNAL_VALUES.items() for arg in ("-d", f"{k}={v}")]


def _yarac_accepts(rules: Path, tmp: Path) -> bool:
    done = subprocess.run(
        [str(YARAC), *_defines(), str(rules), str(tmp / "out.yarc")],
        capture_output=True,
        check=False,
        timeout=60,
        cwd=rules.parent,
    )
    return done.returncode == 0


def _yara_matches(rules: Path, sample: Path) -> set[str]:
    done = subprocess.run(
        [str(YARA), "-w", *_defines(), str(rules), str(sample)],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
        cwd=rules.parent,
    )
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def _our_matches(source: yara_rules.YaraSource, data: bytes) -> set[str]:
    compiled = compile_rules([RuleSource(source.origin, source.text, source.namespace)])
    assert compiled.data is not None and not compiled.problems
    scanner = RuleScanner(compiled.data, timeout_s=30)
    findings = scanner.scan(
        data,
        subject=EXTERNAL_VALUES["filepath"],
        name=EXTERNAL_VALUES["filename"],
        filetype=EXTERNAL_VALUES["filetype"],
        owner=EXTERNAL_VALUES["owner"],
    )
    return {str(f.evidence["rule"]) for f in findings if f.kind == "yara"}


def test_generated_rule_set_compiles_and_matches_like_libyara(tmp_path: Path) -> None:
    data = build_pe(PESpec())
    sample = tmp_path / "sample.exe"
    sample.write_bytes(data)
    folder = tmp_path / "rules"
    defined = generate_rule_set(folder, hashlib.md5(data).hexdigest())
    checked = 0
    for rules in sorted(folder.glob("*.yar")):
        libyara_ok = _yarac_accepts(rules, tmp_path)
        result = yara_rules.read(rules, IntelLimits())
        assert (not result.failed) == libyara_ok, (rules.name, result.problems)
        if not libyara_ok:
            continue
        checked += 1
        (source,) = result.yara
        # rule names come from the compiled rules: the file's own and the included ones
        assert set(source.rules) == defined[rules.name] | {"is_pe_file", "named_sample"}
        assert "include" not in source.text.replace("// taintline: include", "")
        assert _our_matches(source, data) == _yara_matches(rules, sample), rules.name
    assert checked == len(defined)


def test_the_generated_set_is_not_trivial(tmp_path: Path) -> None:
    """The comparison above means something: some rules match the sample, some do not."""
    data = build_pe(PESpec())
    sample = tmp_path / "sample.exe"
    sample.write_bytes(data)
    folder = tmp_path / "rules"
    defined = generate_rule_set(folder, hashlib.md5(data).hexdigest())
    matched = set().union(*(_yara_matches(folder / name, sample) for name in defined))
    everything = set().union(*defined.values())
    assert matched and everything - matched
    assert {n.split("_")[0] for n in matched} >= {"ext", "path", "type", "hash", "pe", "str"}


def test_include_errors_name_the_original_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "inc.yar").write_text("rule fine { condition: true }\n\nrule bad { condition: }\n")
    top = tmp_path / "top.yar"
    top.write_text('// top\ninclude "inc.yar"\nrule other { condition: true }\n')
    result = yara_rules.read(top, IntelLimits())
    assert result.failed
    (problem,) = result.problems
    assert problem.item.endswith("inc.yar") and problem.line == 3
    outside = tmp_path / "sub"
    outside.mkdir()
    (outside / "escape.yar").write_text('include "../inc.yar"\n')
    refused = yara_rules.read(outside / "escape.yar", IntelLimits())
    assert refused.failed and "outside the rule folder" in refused.problems[0].message
    (tmp_path / "loop.yar").write_text('include "loop.yar"\n')
    looped = yara_rules.read(tmp_path / "loop.yar", IntelLimits())
    assert looped.failed and "cycle" in looped.problems[0].message
