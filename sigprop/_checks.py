"""Argument checks shared by the configs (one message per kind of bad value, raised as ValueError)."""
import math

import numpy as np

_REAL = (int, float, np.integer, np.floating)


def integer(name: str, v, lo: int) -> int:
    """``v`` as an int, refusing bools, non-integers and values below ``lo``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _finite(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, _REAL) and math.isfinite(v)


def positive(name: str, v, allow_zero: bool = False) -> float:
    """``v`` as a float, refusing non-finite, negative and (unless ``allow_zero``) zero values."""
    if not _finite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {v!r}")
    return float(v)


def in_range(name: str, v, lo: float = 0.0, hi: float = math.inf, allow_lo: bool = True) -> float:
    """``v`` as a float in ``[lo, hi]`` (``(lo, hi]`` when not ``allow_lo``), finite."""
    if not _finite(v) or v < lo or v > hi or (v == lo and not allow_lo):
        raise ValueError(f"{name} must be a finite number in {'[' if allow_lo else '('}{lo}, {hi}], got {v!r}")
    return float(v)
