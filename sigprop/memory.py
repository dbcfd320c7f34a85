"""Refuse work that cannot fit in memory, before allocating it.

Each part that allocates large arrays says how many bytes a call will need from its
arguments alone (:func:`sigprop.simulate.memory_estimate`,
:meth:`sigprop.charmlp.Model.memory_estimate`); :func:`check_fits` compares that with the
memory available now and raises a one-line ``ValueError`` naming the estimate. A new
subcommand or model does the same: estimate where the arrays are allocated, call
``check_fits(estimate, "what")`` at its boundary.

Examples
--------
>>> check_fits(1024, "a tiny run")
>>> check_fits(2 ** 80, "a huge run")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: a huge run needs about 1.21e+12 TB of memory, ... available; choose smaller sizes
"""
from __future__ import annotations

import os


def available_bytes() -> int | None:
    """Memory available to a new allocation now (``MemAvailable`` of ``/proc/meminfo``, else the
    free physical pages), or None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 kB'`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} TB"


def check_fits(nbytes: float, what: str, available: int | None = None) -> None:
    """Raise ``ValueError`` if ``nbytes`` exceeds the memory available (``available``, default
    :func:`available_bytes`); does nothing where the available memory is unknown."""
    available = available_bytes() if available is None else available
    if available is not None and nbytes > available:
        raise ValueError(f"{what} needs about {format_bytes(nbytes)} of memory, {format_bytes(available)} "
                         f"available; choose smaller sizes")
