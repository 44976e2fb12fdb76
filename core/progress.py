"""A small progress reporter: a redrawn bar on a terminal, plain periodic lines elsewhere.

On a TTY (an operator watching ``callqa scan``) one status line is redrawn in place with a
bar, the counts, the rate and the ETA. When stderr is not a terminal (systemd, cron, a pipe)
the same facts are written as a plain line every ``interval_s`` seconds and once at the end,
so logs stay readable and small.

Items are counted by outcome: ``done`` and ``failed`` items are work and drive the rate and
the ETA; ``cached`` items were skipped and only move the position.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import TextIO

OUTCOMES = ("done", "cached", "failed")


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour); ``--:--`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressReporter:
    """Report progress of a batch of items on ``stream`` (stderr by default).

    Parameters
    ----------
    label : str
        Prefix of every line (``scan``).
    unit : str
        What is counted (``calls``).
    stream : text stream, optional
        Where to write; ``sys.stderr`` when omitted.
    tty : bool, optional
        Force the bar (True) or plain lines (False); by default ``stream.isatty()``.
    interval_s : float, optional
        Seconds between plain lines (default 10) or between bar redraws (default 0.1).
    clock : callable
        Monotonic time source in seconds (for tests).
    """

    def __init__(self, *, label: str = "scan", unit: str = "calls", stream: TextIO | None = None,
                 tty: bool | None = None, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, width: int = 24) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(tty if tty is not None else getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s if interval_s is not None else (0.1 if self.tty else 10.0)
        self.clock = clock
        self.width = width
        self.total: int | None = None
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self._t0 = clock()
        self._last_emit: float | None = None
        self._drawn = False
        self._finished = False
        self._note: str | None = None

    # --- numbers -----------------------------------------------------------------------------
    @property
    def position(self) -> int:
        return sum(self.counts.values())

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self._t0

    @property
    def rate(self) -> float | None:
        """Items of work (done + failed) per second so far; None before any."""
        work = self.counts["done"] + self.counts["failed"]
        elapsed = self.elapsed_s
        return work / elapsed if work and elapsed > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, assuming the remaining items all need work."""
        if self.total is None:
            return None
        left = max(0, self.total - self.position)
        if left == 0:
            return 0.0
        rate = self.rate
        return left / rate if rate else None

    def status(self) -> str:
        """The one-line summary: position, percentage, outcomes, rate and ETA."""
        total = "?" if self.total is None else str(self.total)
        parts = [f"{self.position}/{total} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.position / self.total:.0f}%)"
        if self.counts["cached"]:
            parts.append(f"{self.counts['cached']} cached")
        if self.counts["failed"]:
            parts.append(f"{self.counts['failed']} failed")
        rate = self.rate
        parts.append(f"{rate:.2f} {self.unit}/s" if rate else f"-- {self.unit}/s")
        parts.append(f"ETA {format_duration(self.eta_s)}")
        parts.append(f"elapsed {format_duration(self.elapsed_s)}")
        return ", ".join(parts)

    def bar(self) -> str:
        if not self.total:
            return "[" + "?" * self.width + "]"
        filled = min(self.width, int(self.width * self.position / self.total))
        return "[" + "#" * filled + "." * (self.width - filled) + "]"

    # --- events ------------------------------------------------------------------------------
    def start(self, total: int | None = None) -> None:
        """Begin (again) with ``total`` items; resets the clock and the counts."""
        self.total = total
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self._t0 = self.clock()
        self._last_emit = None
        self._finished = False
        if self.tty:
            self._emit(force=True)

    def set_total(self, total: int | None) -> None:
        self.total = total

    def advance(self, n: int = 1, *, outcome: str = "done", note: str | None = None) -> None:
        """Count ``n`` items that ended with ``outcome`` (``done``, ``cached`` or ``failed``)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome={outcome!r}; one of {', '.join(OUTCOMES)}")
        self.counts[outcome] += n
        self._note = note
        self._emit(force=False)

    def message(self, text: str) -> None:
        """Write a line that stays (a failure, a warning) without breaking the bar."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"{self.label}: {text}\n")
        self._drawn = False
        if self.tty:
            self._emit(force=True)
        self.stream.flush()

    def finish(self) -> None:
        """Write the final status (and end the bar's line)."""
        if self._finished:
            return
        self._finished = True
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self._drawn = False
        else:
            self.stream.write(f"{self.label}: {self.status()}\n")
        self.stream.flush()

    # --- output ------------------------------------------------------------------------------
    def _emit(self, *, force: bool) -> None:
        now = self.clock()
        if not force and self._last_emit is not None and now - self._last_emit < self.interval_s:
            return
        if not force and self._last_emit is None and not self.tty:
            # plain lines: the first one after one interval, not on the very first item
            if now - self._t0 < self.interval_s:
                return
        self._last_emit = now
        if self.tty:
            self._draw()
        else:
            self.stream.write(f"{self.label}: {self.status()}\n")
            self.stream.flush()

    def _draw(self) -> None:
        line = f"{self.label} {self.bar()} {self.status()}" + (f"  {self._note}" if self._note else "")
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._drawn = True


class NullProgress(ProgressReporter):
    """Reports nothing (library use, tests)."""

    def __init__(self) -> None:
        super().__init__(stream=io.StringIO(), tty=False)

    def _emit(self, *, force: bool) -> None:
        return

    def message(self, text: str) -> None:
        return

    def finish(self) -> None:
        return
