"""The progress reporter: a redrawn bar on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import io

import pytest

from core.progress import NullProgress, ProgressReporter, format_duration


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def reporter(*, tty: bool, interval_s: float | None = None):
    stream, clock = io.StringIO(), Clock()
    return ProgressReporter(label="scan", stream=stream, tty=tty, interval_s=interval_s, clock=clock), stream, clock


@pytest.mark.parametrize("seconds,text", [(0, "0:00"), (59.6, "1:00"), (61, "1:01"), (3600, "1:00:00"),
                                          (3723, "1:02:03"), (None, "--:--"), (float("inf"), "--:--")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_rate_and_eta_count_work_not_cached_items():
    p, _, clock = reporter(tty=False)
    p.start(10)
    p.advance(4, outcome="cached")
    assert p.rate is None and p.eta_s is None
    clock.t += 10
    p.advance(2)  # 2 analysed in 10 s
    assert p.rate == pytest.approx(0.2)
    assert p.eta_s == pytest.approx(4 / 0.2)
    p.advance(outcome="failed")
    assert p.position == 7 and p.counts == {"done": 2, "cached": 4, "failed": 1}
    assert p.status().startswith("7/10 calls (70%), 4 cached, 1 failed, 0.30 calls/s, ETA 0:10")
    with pytest.raises(ValueError):
        p.advance(outcome="skipped")


def test_plain_lines_are_periodic():
    p, stream, clock = reporter(tty=False, interval_s=10)
    p.start(100)
    for _ in range(30):  # 30 items, one per second
        clock.t += 1
        p.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # at 10 s, 20 s, 30 s
    assert all(line.startswith("scan: ") and "\r" not in line for line in lines)
    assert lines[0].startswith("scan: 10/100 calls (10%)")
    p.finish()
    p.finish()  # idempotent
    final = stream.getvalue().splitlines()
    assert len(final) == 4 and final[-1].startswith("scan: 30/100 calls")


def test_tty_bar_is_redrawn_in_place():
    p, stream, clock = reporter(tty=True)
    p.start(4)
    for _ in range(4):
        clock.t += 1
        p.advance(note="20261107-080000_9828963560")
    out = stream.getvalue()
    assert "\n" not in out and out.count("\r\x1b[K") >= 4
    assert "[########################]" in out and "4/4 calls (100%)" in out and "ETA 0:00" in out
    p.message("failed x: bad file")
    p.finish()
    out = stream.getvalue()
    assert "\r\x1b[Kscan: failed x: bad file\n" in out  # the bar is cleared, the message stays
    assert out.endswith("\n")


def test_tty_redraws_are_throttled():
    p, stream, clock = reporter(tty=True, interval_s=0.5)
    p.start(1000)
    before = stream.getvalue().count("\r")
    for _ in range(16):
        clock.t += 0.125  # exact in binary floating point
        p.advance()
    assert stream.getvalue().count("\r") - before == 4  # 2 s of items at one redraw per 0.5 s


def test_unknown_total():
    p, stream, clock = reporter(tty=True)
    p.start(None)
    clock.t += 1
    p.advance()
    assert "1/? calls" in stream.getvalue() and "ETA --:--" in stream.getvalue()


def test_tty_follows_the_stream():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert ProgressReporter(stream=Tty()).tty
    assert not ProgressReporter(stream=io.StringIO()).tty


def test_null_progress_is_silent():
    p = NullProgress()
    p.start(3)
    p.advance()
    p.message("x")
    p.finish()
    assert p.position == 1
