"""The scan's meter on a terminal (imported only there: rich's progress module is a few
hundredths of a second of start-up, and a re-scan of an unchanged tree takes under a second)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID
from rich.text import Text

from taintline.scan.progress import ScanMeter, describe


class _LiveMeter(ScanMeter):
    """The scan's meter on stderr: a bar of bytes and one line of rates and ETA, redrawn by
    rich several times a second (so the rates and the ETA move while a large file is scanned)."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, total_files: int, total_bytes: int) -> None:
        super().start(total_files, total_bytes)
        self.task = self.progress.add_task("scan", total=total_bytes or None)

    def advance(self, files: int, members: int, nbytes: int) -> None:
        super().advance(files, members, nbytes)
        if self.task is not None:
            self.progress.update(self.task, completed=self.bytes_done)


class _MeterColumn(ProgressColumn):
    def __init__(self) -> None:
        super().__init__()
        self.meter: ScanMeter | None = None

    def render(self, task: Task) -> Text:
        return Text(describe(self.meter.reading()) if self.meter is not None else "")


@contextmanager
def live_meter(console: Console) -> Iterator[ScanMeter]:
    """A bar of bytes and a line of rates and ETA on ``console``, gone when the scan ends."""
    line = _MeterColumn()
    with Progress(BarColumn(bar_width=10), line, console=console, transient=True) as bar:
        line.meter = _LiveMeter(bar)
        yield line.meter
