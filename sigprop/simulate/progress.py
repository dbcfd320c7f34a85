"""A one-line progress bar on stderr (no dependency: a carriage-return line is all we need)."""
from __future__ import annotations

import sys
import time


class Progress:
    """``Progress(total, label).update(k)``: redraws at most 5 times a second, and only once
    the run has taken longer than ``delay`` seconds (short runs stay silent).

    Examples
    --------
    >>> bar = Progress(3, "demo", enabled=False)
    >>> bar.update(3); bar.close()
    """

    def __init__(self, total: int, label: str, enabled: bool = True, delay: float = 1.0, stream=None):
        self.total, self.label, self.enabled, self.delay = total, label, enabled, delay
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._shown = False

    def update(self, k: int = 1) -> None:
        self.done += k
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        if elapsed < self.delay or (now - self._last < 0.2 and self.done < self.total):
            return
        self._last = now
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r{self.label}: [{bar:<30}] {self.done}/{self.total} {elapsed:6.1f}s eta {eta:6.1f}s")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
