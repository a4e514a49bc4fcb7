"""One magic table: the walker (YARA's ``filetype``, which container opens) and every analyser
judge the same bytes the same way, through :mod:`taintline.scan.magic`."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders import elf

from taintline.limits import ScanLimits
from taintline.scan import magic
from taintline.scan.analysers import ANALYSERS
from taintline.scan.containers import ContainerKind, container_kind, container_kind_of
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.scan.magic import FileType
from taintline.scan.walk import FileTask
from taintline.scan.worker import Worker, WorkerConfig
from taintline.testing import archives, image, macho, pe


def _java_class() -> bytes:
    # magic, minor 0, major 52 (Java 8), then a constant pool count; enough for the header
    return b"\xca\xfe\xba\xbe" + struct.pack(">HHH", 0, 52, 1) + b"\0" * 40


def _tar_named_like_an_exe() -> bytes:
    # a tar's first header starts with the member name: it must not pass for a PE
    return archives.tar_bytes({"MZ-not-a-program.txt": b"hello"})


#: name -> (bytes, file name, expected type, expected container, analysers that apply);
#: ``release`` (scan/reproducible.py) normalises every native binary for ``verify``
SAMPLES: dict[str, tuple[bytes, str, FileType | None, ContainerKind | None, set[str]]] = {
    "pe": (pe.build_pe(), "a.dll", FileType.EXE, None, {"pe", "release"}),
    "dos-only": (b"MZ" + b"\0" * 100, "old.com", FileType.EXE, None, {"release"}),
    "elf": (elf.elf64(), "a.so", FileType.ELF, None, {"elf", "release"}),
    "macho": (macho.thin(), "a", FileType.MACHO, None, {"macho", "release"}),
    "fat-macho": (macho.fat([macho.thin()]), "u", FileType.MACHO, None, {"macho", "release"}),
    "java-class": (_java_class(), "A.class", FileType.CLASS, None, set()),
    "png": (image.png(), "a.png", FileType.PNG, None, {"image"}),
    "jpeg": (image.jpeg(), "a.jpg", FileType.JPEG, None, {"image"}),
    "gif": (image.gif(), "a.gif", FileType.GIF, None, {"image"}),
    "bmp": (image.bmp(), "a.bmp", FileType.BMP, None, {"image"}),
    "ico": (image.ico(), "icon3.ico", FileType.ICO, None, {"image"}),
    "ico-any-name": (image.ico(), "icon3.bin", FileType.ICO, None, {"image"}),
    "zip": (archives.zip_bytes({"a.txt": b"x"}), "a.zip", FileType.ZIP, ContainerKind.ZIP, set()),
    "tar": (archives.tar_bytes({"a.txt": b"x"}), "a.tar", FileType.TAR, ContainerKind.TAR, set()),
    "tar-MZ": (_tar_named_like_an_exe(), "a.tar", FileType.TAR, ContainerKind.TAR, set()),
    "tgz": (
        archives.tar_bytes({"a.txt": b"x"}, compression="gz"),
        "a.tgz",
        FileType.GZIP,
        ContainerKind.COMPRESSED,
        set(),
    ),
    "msi": (
        archives.msi_like({"files.cab": {"a.txt": b"x"}}),
        "setup.msi",
        FileType.MSI,
        ContainerKind.OLE,
        {"signed"},  # scan/signed.py: MSI/OLE signatures
    ),
    "ole": (
        archives.msi_like({"files.cab": {"a.txt": b"x"}}),
        "doc.bin",
        FileType.OLE,
        ContainerKind.OLE,
        {"signed"},  # scan/signed.py: MSI/OLE signatures
    ),
    "cab": (archives.cab_bytes({"a.txt": b"x"}), "a.cab", FileType.CAB, ContainerKind.CAB, set()),
    "asar": (
        archives.asar_bytes({"a.js": b"1"}),
        "app.asar",
        FileType.ASAR,
        ContainerKind.ASAR,
        {"asar"},  # scan/asar.py: integrity of the archive itself
    ),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\n", "a.pdf", FileType.PDF, None, set()),
    "text": (b"just some text\n", "a.txt", None, None, set()),
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_the_walker_and_every_analyser_agree_with_the_magic_table(
    sample: str, tmp_path: Path
) -> None:
    data, name, expected, container, applying = SAMPLES[sample]
    assert magic.sniff(data, name) is expected
    assert container_kind(data) is container

    # the walker: what a worker records as YARA's filetype for this file on disk
    path = tmp_path / name
    path.write_bytes(data)
    worker = Worker(WorkerConfig(None, ScanLimits(), AnalysisContext()), hash_threads=False)
    result = worker.run_batch([FileTask(str(path), name, name, len(data), "")])
    top = next(r for r in result.records if r.path == name)
    assert top.filetype == (expected or "")
    # containers were opened (members recorded) exactly when the table says so
    assert any(r.depth > 0 for r in result.records) == (container is not None)

    # every analyser: applies exactly to its own types
    item = FileItem(path=name, name=name, data=data, top=name)
    assert {a.NAME for a in ANALYSERS if a.applies(item)} == applying
    assert set(top.facts) <= applying  # an analyser may find nothing to record (unsigned)


def test_fat_macho_and_java_class_are_told_apart_by_the_header() -> None:
    fat_header = b"\xca\xfe\xba\xbe" + struct.pack(">I", 2) + b"\0" * 40
    fat64_header = b"\xca\xfe\xba\xbf" + struct.pack(">I", 2) + b"\0" * 40
    java = _java_class()
    assert magic.sniff(fat_header) is FileType.MACHO
    assert magic.sniff(fat64_header) is FileType.MACHO
    assert magic.sniff(java) is FileType.CLASS
    # 30 and 31 architectures: once CLASS for the walker but Mach-O for the analyser
    for count in (30, 31):
        data = b"\xca\xfe\xba\xbe" + struct.pack(">I", count) + b"\0" * 40
        assert magic.sniff(data) is FileType.MACHO
    # no architectures at all: neither a usable fat file nor a class file
    assert magic.sniff(b"\xca\xfe\xba\xbe" + b"\0" * 44) is None


def test_an_executable_with_ustar_at_257_stays_an_executable() -> None:
    data = bytearray(pe.build_pe())
    data[257:262] = b"ustar"  # inside the section table's padding: no valid tar checksum
    assert magic.is_pe(bytes(data))
    assert magic.sniff(bytes(data)) is FileType.EXE
    assert container_kind(bytes(data)) is None


def _sniff_every_row(data: bytes, name: str = "") -> FileType | None:
    """The magic table tried row by row, without the first-byte shortcut (the reference)."""
    head = bytes(data[:512])
    for filetype, test, _ in magic.TABLE:
        if test(head):
            if filetype is FileType.OLE and name.lower().endswith((".msi", ".msp", ".msm")):
                return FileType.MSI
            if filetype is FileType.ICO:
                return magic._icon_kind(head)
            return filetype
    return None


def test_every_rows_test_fails_on_any_other_first_byte() -> None:
    """The shortcut may skip a row only where its test could never pass: each sample of each
    type, given every other first byte, fails that type's test."""
    for data, _, expected, _, _ in SAMPLES.values():
        for filetype, test, first in magic.TABLE:
            if first is None or filetype is not expected:
                continue
            assert test(data[:512])
            for byte in set(range(256)) - set(first):
                assert not test(bytes([byte]) + data[1:512]), (filetype, byte)


@settings(max_examples=300, deadline=None)
@given(
    head=st.sampled_from([b"", *(s[0][:16] for s in SAMPLES.values())]),
    tail=st.binary(max_size=600),
    name=st.sampled_from(["", "a.msi", "x.bin", "Setup.MSM"]),
)
def test_first_byte_shortcut_agrees_with_the_whole_table(
    head: bytes, tail: bytes, name: str
) -> None:
    data = head + tail
    assert magic.sniff(data, name) is _sniff_every_row(data, name)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_analysers_agree_with_the_engines_sniffed_type(sample: str) -> None:
    """The worker hands analysers the type it sniffed once; they decide as if they sniffed."""
    data, name, _, _, applying = SAMPLES[sample]
    sniffed = FileItem(
        path=name, name=name, data=data, top=name, filetype=magic.sniff(data, name), sniffed=True
    )
    assert {a.NAME for a in ANALYSERS if a.applies(sniffed)} == applying
    assert container_kind_of(sniffed.kind()) is container_kind(data)
