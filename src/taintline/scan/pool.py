"""The scan's worker processes: a pool started before the rules are compiled, and the loop that
runs batches on it and survives workers that die (see :mod:`taintline.scan.engine`)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from taintline.errors import TaintlineError
from taintline.kinds import error_finding
from taintline.scan import store
from taintline.scan.interface import TaskResult
from taintline.scan.walk import FileTask
from taintline.scan.worker import WorkerConfig, _init_worker_from_queue, _ping, _run_in_worker


class WorkerPool:
    """The scan's worker processes (``spawn``: a clean interpreter each; yara-x holds the GIL,
    so processes, not threads).

    Started as soon as the walk found files, before the rules are compiled: each worker imports
    the engine while the parent prepares, then waits in its initializer for the
    :class:`WorkerConfig`, sent through a queue by :meth:`configure`. :meth:`restart` replaces
    a pool broken by a dying worker (same configuration).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        # hash threads overlap hashing with YARA only where a core would otherwise idle
        self.hash_threads = workers < (os.cpu_count() or 1)
        self.context = get_context("spawn")
        self.config: WorkerConfig | None = None
        self.queue: Any = None
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        self.queue = self.context.Queue()
        # a worker that dies before taking its copy leaves it in the pipe: never wait at exit
        # for the queue's feeder thread to deliver it
        self.queue.cancel_join_thread()
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self.context,
            initializer=_init_worker_from_queue,
            initargs=(self.queue, self.hash_threads),
        )
        for _ in range(self.workers):
            executor.submit(_ping)  # each submit starts one process (spawned on demand)
        if self.config is not None:
            self._send(self.config)
        return executor

    def _send(self, config: WorkerConfig | None) -> None:
        for _ in range(self.workers):
            self.queue.put(config)

    def configure(self, config: WorkerConfig) -> None:
        self.config = config
        self._send(config)

    def submit(self, batch: list[FileTask]) -> Future[TaskResult]:
        try:
            return self.executor.submit(_run_in_worker, batch)
        except BrokenProcessPool as exc:  # broke before this submit: fail like a running task
            failed: Future[TaskResult] = Future()
            failed.set_exception(exc)
            return failed

    def ping(self) -> None:
        self.executor.submit(_ping).result()

    def restart(self) -> None:
        self.shutdown()
        self.executor = self._start()

    def shutdown(self) -> None:
        if self.config is None:
            self._send(None)  # never configured (the scan failed first): let the workers go
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.queue.close()


def run_pool(
    pool: WorkerPool,
    batches: list[list[FileTask]],
    collect: Callable[[TaskResult], None],
    recorder: store.Recorder,
) -> None:
    """Run ``batches`` on the pool; survive workers that die (see module docstring)."""
    pending: deque[list[FileTask]] = deque(batches)
    quarantine: deque[list[FileTask]] = deque()
    retried: set[str] = set()
    completed = 0
    max_inflight = pool.workers * 3

    def check_pool_starts() -> None:
        """After a break before anything completed: can workers start at all? Otherwise
        every file would be retried on a fresh pool, one by one, for nothing."""
        try:
            pool.ping()
        except BrokenProcessPool as exc:
            raise TaintlineError(
                "scan worker processes cannot start (run with --workers 0 to see why)"
            ) from exc

    inflight: dict[Future[TaskResult], list[FileTask]] = {}
    tail_flushed = False
    try:
        while pending or quarantine or inflight:
            if quarantine:
                # after a crash: one file at a time, so the file that kills a worker is known
                if not inflight:
                    batch = quarantine.popleft()
                    inflight[pool.submit(batch)] = batch
            else:
                while pending and len(inflight) < max_inflight:
                    batch = pending.popleft()
                    inflight[pool.submit(batch)] = batch
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken: list[list[FileTask]] = []
            for future in done:
                batch = inflight.pop(future)
                try:
                    collect(future.result())
                    completed += 1
                except BrokenProcessPool:
                    broken.append(batch)
                except Exception as exc:  # e.g. a result that cannot be sent back
                    recorder.add(
                        [],
                        [
                            error_finding(
                                "error.worker-crash",
                                t.display,
                                f"worker failed: {type(exc).__name__}: {exc}",
                            )
                            for t in batch
                        ],
                    )
            if not pending and not quarantine and inflight and not tail_flushed:
                # the last batches are running: what came back so far is written now, while
                # the workers finish, instead of after them (the end of a scan is serial)
                recorder.flush()
                tail_flushed = True
            if not broken:
                continue
            broken.extend(inflight.values())
            inflight.clear()
            pool.restart()
            if not completed:
                check_pool_starts()
            for batch in broken:
                if len(batch) == 1 and batch[0].path in retried:
                    recorder.add(
                        [],
                        [
                            error_finding(
                                "error.worker-crash",
                                batch[0].display,
                                "a worker process died while scanning this file; skipped",
                            )
                        ],
                    )
                    continue
                for task in batch:
                    quarantine.append([task])
                    retried.add(task.path)
    finally:  # interrupted: drop what has not started (the caller shuts the pool down)
        for future in inflight:
            future.cancel()
