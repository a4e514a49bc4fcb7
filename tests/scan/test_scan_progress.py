"""The scan's progress meter: rates and the time left from what the workers sent back (the
arithmetic, with a clock the test moves; no timing)."""

from __future__ import annotations

import pytest

from taintline.scan.progress import ScanMeter, describe


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rates_and_eta_follow_the_results() -> None:
    clock = _Clock()
    meter = ScanMeter(clock)
    meter.start(total_files=100, total_bytes=1_000_000)
    first = meter.reading()
    assert (first.files, first.members, first.bytes_done, first.elapsed) == (0, 0, 0, 0.0)
    assert first.eta_s is None  # no rate yet
    assert "ETA ?" in describe(first)

    clock.now += 4.0
    meter.advance(files=10, members=2_000, nbytes=250_000)
    r = meter.reading()
    assert r.elapsed == 4.0
    assert r.files_per_s == pytest.approx(2.5)
    assert r.members_per_s == pytest.approx(500.0)
    assert r.bytes_per_s == pytest.approx(62_500.0)
    assert r.eta_s == pytest.approx(12.0)  # 750,000 bytes left at 62,500 per second
    assert describe(r) == (
        "10/100 files 2/s | 2,000 members 500/s | 250.0kB/1.0MB 62.5kB/s | ETA 0:00:12"
    )

    clock.now += 6.0  # results add up; rates are since the start
    meter.advance(files=40, members=0, nbytes=250_000)
    r = meter.reading()
    assert (r.files, r.members, r.bytes_done) == (50, 2_000, 500_000)
    assert r.bytes_per_s == pytest.approx(50_000.0)
    assert r.eta_s == pytest.approx(10.0)

    clock.now += 10.0
    meter.advance(files=50, members=0, nbytes=500_000)
    done = meter.reading()
    assert done.eta_s == 0.0
    assert done.files_per_s == pytest.approx(5.0)
    clock.now += 30.0  # recording and bundle checks after the last file: the rates stay
    assert meter.reading() == done


def test_a_result_of_no_bytes_gives_no_eta_and_a_long_one_is_shown_in_hours() -> None:
    clock = _Clock()
    meter = ScanMeter(clock)
    meter.start(total_files=2, total_bytes=10_000_000_000)
    clock.now += 5.0
    meter.advance(files=1, members=0, nbytes=0)  # an unreadable file: no bytes
    assert meter.reading().eta_s is None
    clock.now += 5.0
    meter.advance(files=0, members=0, nbytes=1_000_000)
    r = meter.reading()
    assert r.eta_s == pytest.approx(99_990.0)
    assert describe(r).endswith("ETA 27:46:30")


def test_an_empty_scan_is_done_at_once() -> None:
    meter = ScanMeter(_Clock())
    meter.start(0, 0)
    assert meter.reading().eta_s == 0.0


def test_the_terminal_meter_draws_rates_while_a_scan_advances() -> None:
    import io

    from rich.console import Console

    from taintline.cli.scanmeter import live_meter

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with live_meter(console) as meter:
        meter.start(3, 3_000_000)
        meter.advance(2, 40, 2_000_000)
        meter.advance(1, 0, 1_000_000)
        assert meter.files == 3 and meter.members == 40 and meter.bytes_done == 3_000_000
    assert "files" in out.getvalue()
