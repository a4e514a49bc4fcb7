"""Hostile input never raises: random truncations, byte flips and junk for every analyser."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.analysers.isolated import Isolated
from tests.builders import elf as elf_builder

from taintline.case import Case
from taintline.scan.engine import ScanOptions, scan_paths
from taintline.testing import archives
from taintline.testing import image as image_builder
from taintline.testing import macho as macho_builder
from taintline.testing.pe import DEFAULT_VERSION_INFO, PESpec, build_pe
from taintline.testing.signing import SPC_CAB_DATA, SPC_PE_IMAGE_DATA, catalog_bytes


@cache
def seeds() -> tuple[bytes, ...]:
    return (
        build_pe(PESpec(dll=True, exports=("A", "B"), version_info=DEFAULT_VERSION_INFO)),
        macho_builder.thin(signature="developer-id"),
        macho_builder.fat(
            [
                macho_builder.thin(signature="adhoc"),
                macho_builder.thin(cpu=macho_builder.CPU_X86_64),
            ]
        ),
        elf_builder.elf64(),
        image_builder.ico([image_builder.png(16, 16), image_builder.bmp()[14:]]),
        image_builder.png(),
        image_builder.jpeg(),
        image_builder.gif(),
        image_builder.bmp(),
        archives.asar_bytes(
            {"a.js": b"x" * 300, "d/b.js": b"y"},
            integrity=True,
            block_size=64,
            links={"l": "../../x"},
        ),
        catalog_bytes({"a.dll": (SPC_PE_IMAGE_DATA, bytes(32))}),
        b"PKCX" + catalog_bytes({"b.txt": (SPC_CAB_DATA, bytes(32))}),
        archives.msi_like(
            {"disk1.cab": {"a": b"b"}}, {"\x05DigitalSignature": b"\x30\x03\x02\x01\x01"}
        ),
    )


#: The analysers run in a spawned child, as in the scan's worker processes: LIEF once
#: segfaulted on a flipped certificate table and took the whole test process with it.
ISOLATED = Isolated()


@pytest.fixture(scope="module", autouse=True)
def _child() -> Iterator[None]:
    yield
    ISOLATED.close()
    # a buffer that killed the child must not kill a scan: the worker pool turns it into an
    # error.worker-crash finding for that file and the scan goes on
    for number, data in enumerate(ISOLATED.crashes[:3]):
        _scan_survives(data, number)


def _scan_survives(data: bytes, number: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"crasher{number}.bin"
        path.write_bytes(data)
        (Path(tmp) / "after.txt").write_bytes(b"scanned after the crash\n")
        with Case(Path(tmp) / "case.duckdb") as case:
            options = ScanOptions(workers=1, use_rules=False, ensure_intel=False)
            result = scan_paths([tmp], case, options)
        kinds = {(Path(f.subject).name, f.kind) for f in result.findings}
        assert (path.name, "error.worker-crash") in kinds, kinds


def _check(data: bytes) -> None:
    wrong = ISOLATED.check(data)
    assert not wrong, wrong


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.integers(0, 12), st.integers(0, 1 << 16))
def test_truncation(seed: int, cut: int) -> None:
    data = seeds()[seed]
    _check(data[: cut % (len(data) + 1)])


@FUZZ
@given(
    st.integers(0, 12),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=12),
)
def test_byte_flips(seed: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seeds()[seed])
    for pos, value in flips:
        data[pos % len(data)] = value
    _check(bytes(data))


@FUZZ
@given(
    st.sampled_from(
        [
            b"MZ",
            b"\x7fELF",
            b"\xcf\xfa\xed\xfe",
            b"\xca\xfe\xba\xbe\0\0\0\2",
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"GIF89a",
            b"BM",
            b"\0\0\1\0\1\0",
        ]
    ),
    st.binary(max_size=512),
)
def test_magic_then_junk(magic: bytes, junk: bytes) -> None:
    _check(magic + junk)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 1 << 16),
)
def test_signed_pe_certificate_table_flips(
    signed_dll: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(signed_dll)
    start = len(data) - 4700  # inside the certificate table of the tiny signed DLL
    for pos, value in flips:
        data[max(start, 0) + pos % (len(data) - max(start, 0))] = value
    _check(bytes(data))
    _check(bytes(data[: cut % (len(data) + 1)]))
