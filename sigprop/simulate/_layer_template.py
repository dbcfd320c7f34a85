"""Template of the activation-specific kernels (the part that evaluates phi and phi').

Not imported as is: :func:`sigprop.simulate.engine.load_kernels` writes a module that
defines ``activate_row(code, h, b, x, d)`` (``h += b``, ``x = phi(h)``, ``d = phi'(h)`` for
one row, from the sympy-printed scalar code of the network's activations, one SIMD loop per
activation) followed by this file's text, and imports that module; numba caches it on disk.
"""
import numba

from sigprop._jit import JIT
from sigprop.simulate.kernels import pair_stats


@numba.njit(**JIT)
def activate_stats_batch(h, b, code, x, d, sat_lo, sat_hi, dead_lo, dead_hi, rowstats, t0, t1):
    """For each network i and pair of rows: h += b[i], x = phi(h), d = phi'(h) on both rows,
    then their statistics while they are in cache. Arrays (B, R, n), b (B, n); tasks
    t0 <= t < t1 of B * ceil(R / 2) (a pair of rows each: the engine runs ranges of tasks on
    its threads; serial, not a parfor, which would cost about a second more to compile)."""
    n_net, n_rows, _ = h.shape
    n_pairs = n_rows // 2
    tasks = n_rows - n_pairs
    for t in range(t0, min(t1, n_net * tasks)):
        i = t // tasks
        a = t % tasks
        activate_row(code, h[i, a + n_pairs], b[i], x[i, a + n_pairs], d[i, a + n_pairs])  # noqa: F821
        if a < n_pairs:
            activate_row(code, h[i, a], b[i], x[i, a], d[i, a])  # noqa: F821 (defined by the generated header)
        pair_stats(h[i], x[i], d[i], sat_lo, sat_hi, dead_lo, dead_hi, rowstats[i], a)
