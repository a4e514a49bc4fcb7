"""Run every analyser over one buffer in a child process, as the scan's workers do: a native
parser (LIEF) that segfaults on a hostile input kills that child, not the test run."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from taintline.model import Finding
from taintline.scan.analysers import ANALYSERS
from taintline.scan.interface import AnalysisContext, AnalysisResult, FileItem


def analyse_all(data: bytes) -> list[str]:
    """What is wrong with the analysers' answers on ``data`` (empty: nothing)."""
    item = FileItem(path="fuzz", name="fuzz", data=data, top="fuzz")
    ctx = AnalysisContext()
    wrong: list[str] = []
    for analyser in ANALYSERS:
        if not analyser.applies(item):
            continue
        result = analyser.analyse(item, ctx)
        if not (isinstance(result, AnalysisResult) and result.analyser == analyser.NAME):
            wrong.append(f"{analyser.NAME}: not its AnalysisResult: {result!r}")
            continue
        if not all(isinstance(f, Finding) for f in result.findings):
            wrong.append(f"{analyser.NAME}: a finding that is no Finding")
        # error.analyser means an unexpected exception was caught: a bug to fix
        wrong += [
            f"{analyser.NAME}: {f.message}" for f in result.findings if f.kind == "error.analyser"
        ]
    return wrong


class Isolated:
    """One spawned child that runs :func:`analyse_all`; replaced when a buffer kills it."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        #: Buffers that killed the child (kept so a test can show them to the scan).
        self.crashes: list[bytes] = []

    def check(self, data: bytes) -> list[str]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self._pool.submit(analyse_all, data).result(timeout=300)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.crashes.append(data)
            return []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
