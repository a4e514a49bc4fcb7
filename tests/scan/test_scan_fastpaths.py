"""The throughput paths give the same answers as the plain ones: threaded hashes, chunked
byte counts, prefetching, largest-first scheduling, and the pool started before the rules."""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import random
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taintline.case import Case
from taintline.limits import ScanLimits
from taintline.model import Finding
from taintline.scan import analysers, containers, measure
from taintline.scan.containers import Budget
from taintline.scan.containers import zip as zip_container
from taintline.scan.hashes import (
    HASH_CHUNK,
    THREADED_MIN,
    Hashes,
    HashType,
    hash_bytes,
    hash_set,
    hash_stream,
    start_hashes,
)
from taintline.scan.interface import AnalysisContext, BundleMember, FileRecord
from taintline.scan.rules import extension_of
from taintline.scan.walk import FileTask
from taintline.scan.worker import Worker, WorkerConfig, base_name
from taintline.testing.image import png as image_png

from .scanhelpers import kinds, run_scan


@pytest.mark.parametrize("size", [0, 1, 4097, THREADED_MIN - 1, THREADED_MIN, 3 * THREADED_MIN + 5])
def test_threaded_hashes_match_hashlib(size: int) -> None:
    data = random.Random(size).randbytes(size)
    with ThreadPoolExecutor(3) as pool:
        threaded = start_hashes(data, pool).result()
    inline = start_hashes(data, None).result()
    assert threaded == inline == hash_bytes(data)
    assert threaded.md5 == hashlib.md5(data).hexdigest()
    assert threaded.sha1 == hashlib.sha1(data).hexdigest()
    assert threaded.sha256 == hashlib.sha256(data).hexdigest()
    assert threaded.size == size


def _plain_entropy(data: bytes) -> float:
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    value = float(-(p * np.log2(p)).sum())
    return round(abs(value), 3) if math.isfinite(value) else 0.0


@pytest.mark.parametrize("size", [0, 1, 1000, 256 * 1024, 256 * 1024 + 1, 1_500_000])
def test_chunked_byte_counts_and_entropy(size: int) -> None:
    rng = random.Random(size)
    for data in (
        rng.randbytes(size),
        bytes(size),
        bytes(rng.choice(b"ab \n") for _ in range(size)),
    ):
        expected = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
        assert (measure.byte_counts(data) == expected).all()
        assert measure.entropy(data) == _plain_entropy(data)
        assert measure.entropy(memoryview(data)) == _plain_entropy(data)


def test_base64_alphabet_ratio() -> None:
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\r\n"
    for data in (random.Random(3).randbytes(5000), b"QUJD\r\n$%" * 99, b"\xff" * 10):
        ratio = round(sum(1 for b in data if b in alphabet) / len(data), 3)
        assert measure.base64_info(data)["alphabet_ratio"] == ratio


def test_worker_with_and_without_hash_threads(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(1).randbytes(2 * THREADED_MIN))
    small = tmp_path / "small.txt"
    small.write_bytes(b"small")
    tasks = [FileTask(str(p), str(p), str(p), p.stat().st_size, "me") for p in (big, small)]
    # a missing file in the batch: the prefetch of it must not fail the batch
    tasks.insert(1, FileTask(str(tmp_path / "gone"), str(tmp_path / "gone"), "gone", 1, "me"))
    config = WorkerConfig(None, ScanLimits(), AnalysisContext())
    results = []
    for threads in (True, False):
        worker = Worker(config, hash_threads=threads)
        try:
            results.append(worker.run_batch(tasks))
        finally:
            worker.close()
    threaded, plain = results
    assert threaded.records == plain.records
    assert [r.sha256 for r in plain.records] == [
        hashlib.sha256(big.read_bytes()).hexdigest(),
        hashlib.sha256(b"small").hexdigest(),
    ]
    assert kinds(plain.findings) == {"error.unreadable": [str(tmp_path / "gone")]}


class _OrderBundle:
    NAME = "order"

    def __init__(self) -> None:
        self.calls: dict[str, list[str]] = {}

    def analyse_bundle(
        self, root: str, members: Sequence[BundleMember], ctx: AnalysisContext
    ) -> tuple[Finding, ...]:
        self.calls[root] = [m.path for m in members]
        return ()


def test_pool_bundles_in_walk_order(
    tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool scans the largest files first and finishes in any order; the bundle analysers
    (in the parent) still see the members in walk order, as with ``--workers 0``."""
    root = tmp_path / "tree"
    root.mkdir()
    rng = random.Random(5)
    for i in range(12):
        (root / f"f{i:02d}.bin").write_bytes(rng.randbytes(rng.randint(1, 400_000)))
    bundle = _OrderBundle()
    monkeypatch.setattr(analysers, "BUNDLE_ANALYSERS", (bundle,))
    serial = run_scan(case, [root], workers=0, use_rules=False)
    in_process = dict(bundle.calls)
    bundle.calls.clear()
    pooled = run_scan(case, [root], workers=2, use_rules=False)
    assert bundle.calls == in_process
    assert in_process[str(root)] == sorted(in_process[str(root)])
    assert pooled.files == serial.files == 12


def test_pool_shut_down_when_the_rules_do_not_compile(tmp_path: Path, case: Case) -> None:
    """The workers start before the rules compile; a bad rule file still ends the scan at
    once (no worker left waiting for its configuration)."""
    from taintline.errors import InputError

    (tmp_path / "a.txt").write_bytes(b"a")
    bad = tmp_path / "bad.yar"
    bad.write_text("rule broken {")
    with pytest.raises(InputError):
        run_scan(case, [tmp_path / "a.txt"], rules=[bad], workers=2)


# -- ZIP members through libdeflate ----------------------------------------------------------


def _zips_of_every_kind() -> tuple[bytes, bytes]:
    """A ZIP with members of every compression zipfile writes, and one whose member has a
    data descriptor (written to a stream that cannot seek)."""
    rng = random.Random(5)
    text = b" ".join(rng.choice([b"alpha", b"beta", b"gamma\n"]) for _ in range(200_000))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("stored.bin", rng.randbytes(300_000), zipfile.ZIP_STORED)
        zf.writestr("deflated.txt", text, zipfile.ZIP_DEFLATED)
        zf.writestr("empty.txt", b"", zipfile.ZIP_DEFLATED)
        zf.writestr("empty-stored", b"", zipfile.ZIP_STORED)
        zf.writestr("bzip2.txt", text[:50_000], zipfile.ZIP_BZIP2)
        zf.writestr("lzma.txt", text[:50_000], zipfile.ZIP_LZMA)
        zf.writestr("ünïcode/名前.txt", b"utf-8 name", zipfile.ZIP_DEFLATED)
    unseekable = _Unseekable()
    with zipfile.ZipFile(unseekable, "w") as zf, zf.open("streamed.txt", "w") as fh:
        fh.write(b"streamed " * 9000)
    streamed = bytes(unseekable.data)
    assert zipfile.ZipFile(io.BytesIO(streamed)).infolist()[0].flag_bits & 0x08
    return buffer.getvalue(), streamed


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)


_REAL_FAST = zip_container._zip_member_fast


def test_zip_fast_path_decodes_the_local_name_as_zipfile_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """zipfile decodes the local header's name by the local header's UTF-8 flag: a local
    header that drops the flag names another file, and zipfile refuses the member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ñame.txt", b"content", zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    flags = int.from_bytes(data[6:8], "little")
    assert flags & 0x800
    data = data[:6] + (flags & ~0x800).to_bytes(2, "little") + data[8:]
    fast, slow, used = _expand_both(data, monkeypatch)
    assert fast == slow and used == 0
    assert [item[0] for item in fast] == ["error.truncated-archive"]


def _expand_both(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], int]:
    """``expand`` with the fast path, then with zipfile only; and how often the fast path
    produced a member."""
    used = 0
    real = _REAL_FAST

    def counting(*args: Any) -> bytes | None:
        nonlocal used
        out = real(*args)
        used += out is not None
        return out

    def view(items: list[Any]) -> list[Any]:
        return [
            (i.name, i.data) if isinstance(i, containers.Member) else (i.kind, i.subject, i.message)
            for i in items
        ]

    monkeypatch.setattr(zip_container, "_zip_member_fast", counting)
    fast = view(
        list(containers.expand(data, containers.ContainerKind.ZIP, "z", "z", Budget(ScanLimits())))
    )
    monkeypatch.setattr(zip_container, "_zip_member_fast", lambda *args: None)
    slow = view(
        list(containers.expand(data, containers.ContainerKind.ZIP, "z", "z", Budget(ScanLimits())))
    )
    return fast, slow, used


def test_zip_fast_path_gives_zipfiles_members(monkeypatch: pytest.MonkeyPatch) -> None:
    base, streamed = _zips_of_every_kind()
    for data in (base, streamed):
        fast, slow, used = _expand_both(data, monkeypatch)
        assert fast == slow
        assert all(len(item) == 2 for item in fast), fast  # members only, no errors
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            expected = [(i.filename, zf.read(i)) for i in zf.infolist()]
            fast_kinds = sum(
                i.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for i in zf.infolist()
            )
        assert fast == expected
        assert used == fast_kinds  # bzip2 and lzma members went through zipfile


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def _central_entry(data: bytes, name: bytes) -> int:
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        name_len = int.from_bytes(data[offset + 28 : offset + 30], "little")
        if data[offset + 46 : offset + 46 + name_len] == name:
            return offset
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise AssertionError(name)


def _simple_zip() -> bytes:
    buffer = io.BytesIO()
    rng = random.Random(9)
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.txt", b"hello zip " * 20_000, zipfile.ZIP_DEFLATED)
        zf.writestr("b.bin", rng.randbytes(50_000), zipfile.ZIP_STORED)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        "crc-deflated",
        "crc-stored",
        "size-larger",
        "size-smaller",
        "local-name",
        "local-signature",
        "truncated-data",
        "deflate-garbage",
        "flag-patched-data",
        "flag-strong-encryption",
    ],
)
def test_zip_fast_path_leaves_damaged_members_to_zipfile(
    damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _simple_zip()
    a, b = _central_entry(data, b"a.txt"), _central_entry(data, b"b.bin")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        a_info = zf.getinfo("a.txt")
    a_body = a_info.header_offset + 30 + len("a.txt")
    if damage == "crc-deflated":
        data = _patch(data, a + 16, b"\x00\x00\x00\x00")
    elif damage == "crc-stored":
        data = _patch(data, b + 16, b"\x01\x02\x03\x04")
    elif damage == "size-larger":
        data = _patch(data, a + 24, (a_info.file_size + 100).to_bytes(4, "little"))
    elif damage == "size-smaller":
        data = _patch(data, a + 24, (a_info.file_size - 100).to_bytes(4, "little"))
    elif damage == "local-name":
        data = _patch(data, a_info.header_offset + 30, b"X")
    elif damage == "local-signature":
        data = _patch(data, a_info.header_offset, b"PK\x09\x09")
    elif damage == "flag-patched-data":
        data = _patch(data, a + 8, b"\x20")
    elif damage == "flag-strong-encryption":
        data = _patch(data, a + 8, b"\x40")
    elif damage == "truncated-data":
        data = data[: a_body + a_info.compress_size // 2]
    else:
        data = _patch(data, a_body, b"\xff" * 64)
    fast, slow, used = _expand_both(data, monkeypatch)
    assert fast == slow
    # the intact member took the fast path (a truncated ZIP has no central directory left)
    assert used == (0 if damage == "truncated-data" else 1)
    errors = [item for item in fast if len(item) == 3]
    assert all(kind.startswith("error.") for kind, _, _ in errors)
    if damage == "size-larger":
        # zipfile reads to the end of the compressed data: the member is intact, no error
        assert not errors and ("a.txt", b"hello zip " * 20_000) in fast
    else:
        assert errors, fast  # zipfile noticed the damage and said so


_FUZZ_BASE = _simple_zip()


def _header_offsets(data: bytes) -> list[int]:
    """Offsets of the header fields that matter: flags, method, CRC-32, sizes, name and extra
    lengths, local header offset (central directory) and their local header twins."""
    spots: list[int] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            central = _central_entry(data, info.filename.encode())
            spots += [central + o for o in (8, 9, 10, *range(16, 34), *range(42, 46))]
            local = info.header_offset
            spots += [local + o for o in (6, 7, 8, *range(14, 30))]
    return spots


_FUZZ_SPOTS = _header_offsets(_FUZZ_BASE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(_FUZZ_SPOTS), st.integers(0, len(_FUZZ_BASE) - 1)),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=6,
    ),
    cut=st.one_of(st.none(), st.integers(0, len(_FUZZ_BASE))),
)
def test_zip_fast_path_agrees_with_zipfile_on_damaged_zips(
    edits: list[tuple[int, int]], cut: int | None
) -> None:
    """Whatever the damage, the fast path either gives zipfile's answer or steps aside."""
    data = bytearray(_FUZZ_BASE)
    for offset, value in edits:
        data[offset] = value
    damaged = bytes(data[:cut] if cut is not None else data)
    with pytest.MonkeyPatch.context() as mp:
        fast, slow, _ = _expand_both(damaged, mp)
    assert fast == slow


@pytest.mark.parametrize("size", [0, 5, HASH_CHUNK, HASH_CHUNK + 1, THREADED_MIN + 7])
@pytest.mark.parametrize(
    "which", [["sha256"], ["sha256", "md5"], ["sha1"], ["md5", "sha1", "sha256"]]
)
def test_chosen_hashes_only_and_sha256_always(size: int, which: list[str]) -> None:
    data = random.Random(size).randbytes(size)
    chosen = hash_set(which)
    expected = Hashes(
        hashlib.md5(data).hexdigest() if "md5" in which else "",
        hashlib.sha1(data).hexdigest() if "sha1" in which else "",
        hashlib.sha256(data).hexdigest(),
        size,
    )
    assert hash_bytes(data, chosen) == expected
    assert hash_stream(io.BytesIO(data), 1 << 20, which=chosen) == expected
    with ThreadPoolExecutor(3) as pool:
        assert start_hashes(data, pool, chosen).result() == expected


def test_hash_names_are_checked() -> None:
    assert hash_set(["MD5 "]) == {HashType.MD5, HashType.SHA256}
    with pytest.raises(ValueError):
        hash_set(["sha512"])


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab./\\-_ .", max_size=12))
def test_fast_names_agree_with_pathlib(name: str) -> None:
    assert base_name(name) == PurePosixPath(name).name
    plain = PurePosixPath(name).name
    assert extension_of(plain) == PurePosixPath(plain).suffix.lower()
    assert extension_of(name) == PurePosixPath(name).suffix.lower()


def test_task_results_travel_as_tuples_and_arrive_whole(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/y/A.class", b"\xca\xfe\xba\xbe\0\0\0\x34" + b"\0" * 40)
        zf.writestr("icon.png", image_png())
    worker = Worker(WorkerConfig(None, ScanLimits(), AnalysisContext()), hash_threads=False)
    result = worker.run_batch(
        [FileTask(str(archive), "a.zip", "a.zip", archive.stat().st_size, "")]
    )
    back = pickle.loads(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == result
    assert [type(r) for r in back.records] == [FileRecord] * 3
    assert back.records[2].facts == result.records[2].facts != {}


def test_a_worker_process_imports_no_duckdb_pyarrow_or_pandas() -> None:
    """What a scan worker imports (each of them, at every scan's start) stays small."""
    import subprocess
    import sys

    code = (
        "import sys, taintline.scan.worker, taintline.scan.analysers\n"
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'pandas', 'lief') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
