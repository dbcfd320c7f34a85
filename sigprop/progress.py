"""The one progress bar of sigprop: the Monte Carlo engine, the trainer and sweeps use it.

On a terminal it redraws one line in place (carriage return, at most 5 times a second);
when stderr is not a terminal (a log file, CI, a pipe) it writes a plain line at most
every ``log_every`` seconds and never a carriage return. Short runs (under ``delay``
seconds) stay silent. A new long-running command shows progress with it:
``bar = Progress(total, "label", enabled=...)``, then ``bar.update(k)`` (or
``bar.moveto(done, note)``) and ``bar.close()``.

Examples
--------
>>> import io
>>> log = io.StringIO()
>>> bar = Progress(4, "demo", delay=0, stream=log)
>>> bar.update(2); bar.moveto(4, note="loss 1.5"); bar.close()
>>> "\\r" in log.getvalue(), log.getvalue().splitlines()[-1].startswith("demo: 4/4")
(False, True)
"""
from __future__ import annotations

import math
import sys
import time


class Progress:
    """A progress line for ``total`` items of work (see the module docstring).

    Parameters
    ----------
    total : int
    label : str
    enabled : bool
        False: record nothing on screen (the counters still work).
    delay : float
        Seconds before the first line (short runs stay silent).
    stream : file, optional
        Default ``sys.stderr``.
    start : int
        Items already done (a resumed run); the rate counts only this run's.
    log_every : float
        Seconds between lines when the stream is not a terminal.
    """

    def __init__(self, total: int, label: str, enabled: bool = True, delay: float = 1.0, stream=None,
                 start: int = 0, log_every: float = 10.0):
        self.total, self.label, self.enabled, self.delay = int(total), label, enabled, delay
        self.stream = sys.stderr if stream is None else stream
        self.done = self.start = int(start)
        self.note = ""
        self.t0 = time.perf_counter()
        self._last = -math.inf
        self._shown = False
        self._written = None
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.every = 0.2 if self.tty else log_every

    def update(self, k: int = 1, note: str | None = None) -> None:
        """``k`` more items done."""
        self.moveto(self.done + k, note)

    def moveto(self, done: int, note: str | None = None, force: bool = False) -> None:
        """``done`` items done in all (with an optional note such as the recent loss)."""
        self.done = int(done)
        if note is not None:
            self.note = note
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = now - self.t0
        finished = self.done >= self.total
        if not force and (elapsed < self.delay or (now - self._last < self.every and not finished)):
            return
        self._last = now
        self._write(elapsed)

    def _write(self, elapsed: float) -> None:
        frac = self.done / self.total if self.total else 1.0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else math.nan
        left = (self.total - self.done) / rate if rate > 0 else math.nan
        bar = f"[{'#' * int(24 * frac):<24}] " if self.tty else ""
        line = (f"{self.label}: {bar}{self.done}/{self.total} {elapsed:.0f}s"
                + (f", {left:.0f}s left" if math.isfinite(left) else "") + (f", {self.note}" if self.note else ""))
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()
        self._shown = True
        self._written = self.done

    def close(self) -> None:
        """End the line (terminal) or write the final state (log), if anything was shown."""
        if not (self.enabled and self._shown):
            return
        if self.tty:
            self._write(time.perf_counter() - self.t0)
            self.stream.write("\n")
        elif self._written != self.done:        # a log ends with the final state, written once
            self._write(time.perf_counter() - self.t0)
        self.stream.flush()
