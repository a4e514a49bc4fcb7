"""The per-member shortcuts of the worker give the answers of the plain path (issue 17):
analysers not asked where their declared ``APPLIES_TO`` rules a buffer out, and a
container's members scanned by YARA in chunks before they are hashed and analysed."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders import elf

from taintline.limits import ScanLimits
from taintline.scan import magic
from taintline.scan import rules as rules_mod
from taintline.scan import worker as worker_mod
from taintline.scan.analysers import ANALYSERS
from taintline.scan.interface import AnalysisContext, AppliesTo, FileItem, TaskResult
from taintline.scan.reuse import ReuseConfig
from taintline.scan.walk import FileTask
from taintline.scan.worker import Worker, WorkerConfig
from taintline.testing import archives, image, macho, pe

from .test_scan_magic import SAMPLES

#: Names under which every sample is also tried: the names some declarations look at, a
#: name that turns OLE into MSI, and plain ones.
NAMES = ("Info.plist", "setup.msi", "a.dll", "A.class", "", "info.plist")

GATED = [a for a in ANALYSERS if getattr(a, "APPLIES_TO", None) is not None]


def _extra_samples() -> list[bytes]:
    rng = random.Random(17)
    found: list[bytes] = [
        archives.info_plist({"Resources/app.asar": "00" * 32}),
        archives.info_plist({"Resources/app.asar": "00" * 32}, binary=True),
        b"PKCX" + rng.randbytes(200),
        b"\x30\x82\x01\x00" + bytes.fromhex("06092b0601040182370a01") + rng.randbytes(100),
        archives.asar_bytes({"a.js": b"1"}, integrity=True),
        b"",
    ]
    # every first byte, and every row of the magic table's own prefix, with random tails
    found += [bytes([b]) + rng.randbytes(600) for b in range(256)]
    for _, _, first in magic.TABLE:
        for byte in first or b"":
            found.append(bytes([byte]) + rng.randbytes(40))
    return found


def _all_samples() -> list[tuple[str, bytes]]:
    out = [(name, data) for data, name, *_ in SAMPLES.values()]
    datas = [data for data, *_ in SAMPLES.values()] + _extra_samples()
    out += [(name, data) for data in datas for name in NAMES]
    return out


def _item(name: str, data: bytes) -> FileItem:
    return FileItem(name or "x", name, data, "top", 1, "", "", "", magic.sniff(data, name), True)


def test_every_declaration_admits_what_its_analyser_applies_to() -> None:
    assert {a.NAME for a in GATED} >= {"pe", "macho", "elf", "image", "release", "plist"}
    samples = _all_samples()
    for analyser in GATED:
        gate: AppliesTo = analyser.APPLIES_TO  # type: ignore[attr-defined]
        applied = ruled_out = 0
        for name, data in samples:
            item = _item(name, data)
            admitted = gate.admits(item.kind(), name, data[:1])
            if analyser.applies(item):
                applied += 1
                assert admitted, (analyser.NAME, name, data[:16])
            ruled_out += not admitted
        # not vacuous: each analyser applies to some sample, and its gate rules some out
        assert applied and ruled_out, analyser.NAME


_PREFIXES = [b"", b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\x04\x00\x00\x00", b"PKCX", b"\x30"]


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(_PREFIXES + list(magic.MACHO_MAGICS)),
    tail=st.binary(max_size=300),
    name=st.sampled_from(NAMES),
)
def test_declarations_hold_on_arbitrary_bytes(prefix: bytes, tail: bytes, name: str) -> None:
    data = prefix + tail
    item = _item(name, data)
    for analyser in GATED:
        if analyser.applies(item):
            assert analyser.APPLIES_TO.admits(item.kind(), name, data[:1]), analyser.NAME  # type: ignore[attr-defined]


# -- members in chunks ----------------------------------------------------------------------

#: One rule reads the file name (the YARA memo by content is then off), one only the bytes.
RULES_WITH_NAMES = """
rule marker_in_member { strings: $m = "chunk-marker" condition: $m and filename != "" }
rule any_pe { condition: uint16(0) == 0x5A4D }
"""
RULES_BYTES_ONLY = """
rule marker_in_member { strings: $m = "chunk-marker" condition: $m }
"""


def _java_class(i: int) -> bytes:
    return b"\xca\xfe\xba\xbe" + struct.pack(">HHH", 0, 52, i) + bytes(40) + b"%d" % i


def _container() -> bytes:
    """A jar-like ZIP: many classes (some the same bytes), marked members, a nested ZIP that
    holds a PE and more marked members, images, a Mach-O, an ELF, an Info.plist, a traversal
    member, and more classes after the nested ZIP."""
    members: dict[str, bytes] = {}
    for i in range(30):
        members[f"com/example/C{i}.class"] = _java_class(i % 7)
    members["META-INF/MANIFEST.MF"] = b"Manifest-Version: 1.0\nchunk-marker\n"
    members["lib/inner.jar"] = archives.zip_bytes(
        {"x/Inner.class": _java_class(3), "x/a.dll": pe.build_pe(), "x/m.txt": b"chunk-marker"}
    )
    members["img/a.png"] = image.png()
    members["native/libx.dylib"] = macho.thin()
    members["native/libx.so"] = elf.elf64()
    members["Contents/Info.plist"] = archives.info_plist({"Resources/app.asar": "00" * 32})
    for i in range(30, 45):
        members[f"com/example/D{i}.class"] = _java_class(i)
    members["docs/chunk-marker.txt"] = b"chunk-marker " * 50
    return archives.traversal_zip(members)


def _scan(tmp_path: Path, rules: str | None, limits: ScanLimits, externals: bool) -> TaskResult:
    path = tmp_path / "app.jar"
    if not path.exists():
        path.write_bytes(_container())
    compiled = (
        rules_mod.compile_rules([rules_mod.RuleSource("t.yar", rules)]).data if rules else None
    )
    config = WorkerConfig(compiled, limits, AnalysisContext(), reuse=ReuseConfig("k", externals))
    worker = Worker(config, hash_threads=False)
    try:
        return worker.run_batch([FileTask(str(path), "app.jar", "app.jar", 1, "me")])
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("rules", "externals"),
    [(RULES_WITH_NAMES, True), (RULES_BYTES_ONLY, False), (None, False)],
    ids=["rules-read-names", "rules-read-bytes", "no-rules"],
)
@pytest.mark.parametrize(
    "limits",
    [
        ScanLimits(),
        ScanLimits(max_depth=1),  # the nested ZIP is not opened
        ScanLimits(max_files=40),  # the member count runs out inside the container
        ScanLimits(max_total_bytes=6_000),  # the byte budget runs out after the nested ZIP
    ],
    ids=["defaults", "depth-1", "files-40", "bytes-6000"],
)
def test_members_in_chunks_give_what_member_by_member_scanning_gives(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rules: str | None,
    externals: bool,
    limits: ScanLimits,
) -> None:
    results = []
    for members, size in ((1, 1), (3, 1 << 30), (256, 8 << 20)):  # (1, 1): one by one
        monkeypatch.setattr(worker_mod, "CHUNK_MEMBERS", members)
        monkeypatch.setattr(worker_mod, "CHUNK_BYTES", size)
        results.append(_scan(tmp_path, rules, limits, externals))
    one_by_one = results[0]
    assert len(one_by_one.records) > 5
    for chunked in results[1:]:
        assert chunked.records == one_by_one.records
        assert chunked.findings == one_by_one.findings
        assert chunked.spans == one_by_one.spans
    if rules is not None and limits == ScanLimits():
        marked = {f.subject for f in one_by_one.findings if f.kind == "yara"}
        assert marked >= {
            "app.jar!/META-INF/MANIFEST.MF",
            "app.jar!/lib/inner.jar!/x/m.txt",
            "app.jar!/docs/chunk-marker.txt",
        }
        assert ("app.jar!/lib/inner.jar!/x/a.dll" in marked) == externals  # any_pe
        assert "error.path-traversal" in {f.kind for f in one_by_one.findings}


def test_no_declaration_means_every_buffer_is_asked(tmp_path: Path) -> None:
    """The worker with every declaration removed (every analyser asked about everything)
    records the same facts and findings."""
    gated = _scan(tmp_path, None, ScanLimits(), False)
    config = WorkerConfig(None, ScanLimits(), AnalysisContext(), reuse=ReuseConfig("k", False))
    worker = Worker(config, hash_threads=False)
    worker._gates = tuple(None for _ in worker._gates)
    plain = worker.run_batch([FileTask(str(tmp_path / "app.jar"), "app.jar", "app.jar", 1, "me")])
    worker.close()
    assert plain.records == gated.records
    assert plain.findings == gated.findings
    assert {name for r in plain.records for name in r.facts} >= {"pe", "macho", "elf", "image"}


def test_externals_set_only_when_they_change_are_always_current() -> None:
    """One scanner across buffers whose name, extension, path, type and owner change in every
    combination sees each buffer's own values."""
    text = """
    rule by_name { condition: filename == "a.dll" }
    rule by_extension { condition: extension == ".dll" }
    rule by_path { condition: filepath contains "/x/" }
    rule by_type { condition: filetype == "EXE" }
    rule by_owner { condition: owner == "root" }
    """
    compiled = rules_mod.compile_rules([rules_mod.RuleSource("e.yar", text)]).data
    assert compiled is not None
    rng = random.Random(3)
    combos = [
        (name, path, ftype, owner)
        for name in ("a.dll", "b.dll", "a.txt", "A.DLL", "noext", "")
        for path in ("/x/", "/y/")
        for ftype in ("EXE", "")
        for owner in ("root", "me")
    ]
    shared = rules_mod.RuleScanner(compiled, 5)
    for name, path, ftype, owner in [rng.choice(combos) for _ in range(400)]:
        found = shared.scan(b"data", subject=path + name, name=name, filetype=ftype, owner=owner)
        expected = {
            "by_name": name == "a.dll",
            "by_extension": name.lower().endswith(".dll"),
            "by_path": path == "/x/",
            "by_type": ftype == "EXE",
            "by_owner": owner == "root",
        }
        assert {f.evidence["rule"] for f in found} == {r for r, hit in expected.items() if hit}
