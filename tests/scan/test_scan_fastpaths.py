"""The throughput paths give the same answers as the plain ones: threaded hashes, chunked
byte counts, prefetching, largest-first scheduling, and the pool started before the rules."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from taintline.case import Case
from taintline.limits import ScanLimits
from taintline.model import Finding
from taintline.scan import analysers, measure
from taintline.scan.hashes import THREADED_MIN, hash_bytes, start_hashes
from taintline.scan.interface import AnalysisContext, BundleMember
from taintline.scan.walk import FileTask
from taintline.scan.worker import Worker, WorkerConfig

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
