"""The length and correlation maps, their fixed points, chi_1, the edge of chaos and the depth
scales (Poole et al. 2016, Schoenholz et al. 2017), vectorised over their parameters; the
recursions are the lambdified results of :mod:`sigprop.symbolic.recursions`."""
from __future__ import annotations

import math

import numpy as np

from .moments import moments_of

def _recursions():
    from ..symbolic import recursions
    return recursions


def _nonneg(name, v):
    a = np.asarray(v, dtype=float)
    if np.any(np.isnan(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be >= 0, got {v!r}")
    return a


def q_map(activation, sigma_w, sigma_b, q):
    """The length map ``q' = sigma_w^2 E[phi(u)^2] + sigma_b^2``, ``u ~ N(0, q)`` (vectorised).

    Examples
    --------
    >>> round(float(q_map("linear", 0.5, 1.0, 4.0)), 12)
    2.0
    """
    moments = moments_of(activation)
    sw, sb, q = (_nonneg(n, v) for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("q", q)))
    # q' = sigma_w^2 E[phi(u)^2] + sigma_b^2 (covariance map with a = b)
    return _recursions().covariance_map().numeric(sw ** 2, moments.m2(q), sb ** 2)


def c_map(activation, sigma_w, sigma_b, q, c):
    """The correlation map at equal variances ``q``:
    ``c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / (sigma_w^2 E[phi(u)^2] + sigma_b^2)``.

    Examples
    --------
    >>> round(float(c_map("tanh", 1.5, 0.1, 0.8, 1.0)), 12)   # c = 1 is a fixed point
    1.0
    """
    moments = moments_of(activation)
    sw, sb, q = (_nonneg(n, v) for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("q", q)))
    c = np.asarray(c, dtype=float)
    if np.any(np.abs(c) > 1):
        raise ValueError(f"correlation c must be in [-1, 1], got {c!r}")
    cm = _recursions().covariance_map().numeric
    with np.errstate(all="ignore"):
        # c' = q12' / q',  q12' = sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2
        return cm(sw ** 2, moments.kernel(q, q, c), sb ** 2) / cm(sw ** 2, moments.m2(q), sb ** 2)


def bisect(f, lo, hi, iterations: int):
    """Vectorised bisection for ``f(lo) > 0 >= f(hi)``: ``(lo, hi)`` after ``iterations``
    halvings. The theory's one bisection: fixed points in ``log q``, the edge of chaos in
    ``log q``, ``c*`` in ``log theta`` (here and in :mod:`.phase`)."""
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        pos = f(mid) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return lo, hi


def _fixed_point(F, q0, decades=60, steps_per_decade=2, iterations=64):
    """The fixed point of an increasing map that iteration from ``q0`` reaches, vectorised.

    ``F(q) = map(q) - q``: from ``q0`` search up (``F > 0``) or down (``F < 0``) in steps of
    ``10^(1/steps_per_decade)`` for the first sign change, then bisect in ``log q``.
    No sign change within ``decades``: ``inf`` upwards, 0 downwards.
    """
    q0 = np.asarray(q0, dtype=float)
    with np.errstate(all="ignore"):
        f0 = F(q0)
        rel = f0 / np.maximum(q0, 1e-300)
        done = np.abs(rel) <= 1e-13                      # q0 is (numerically) fixed already
        up = f0 > 0
        k = np.arange(1, decades * steps_per_decade + 1) / steps_per_decade
        direction = np.where(up, 1.0, -1.0)
        grid = q0[..., None] * 10.0 ** (direction[..., None] * k)      # S + (K,)
        fg = F(grid)
        # a crossing must clear the rounding of F (|F| ~ 1e-13 q near a tangency such as q* = 0)
        tol = 1e-13 * grid
        crossed = np.where(up[..., None], fg <= -tol, fg >= tol)
        found = crossed.any(axis=-1)
        idx = np.argmax(crossed, axis=-1)
        b = np.take_along_axis(grid, idx[..., None], -1)[..., 0]
        a = np.where(idx > 0, np.take_along_axis(grid, np.maximum(idx - 1, 0)[..., None], -1)[..., 0], q0)
        lo, hi = np.minimum(a, b), np.maximum(a, b)      # F(lo) > 0 >= F(hi) (stable root)
        lo, hi = np.log(lo), np.log(hi)
        lo, hi = bisect(lambda t: F(np.exp(t)), lo, hi, iterations)
        root = np.exp(0.5 * (lo + hi))
        out = np.where(found, root, np.where(up, np.inf, 0.0))
        out = np.where(done, q0, out)
        out = np.where(np.isnan(f0), np.nan, out)
    return out


def fixed_point_q(activation, sigma_w, sigma_b, q0=1.0):
    """The fixed point ``q*`` of the q-map that iteration from ``q0`` reaches (vectorised).

    Returns ``inf`` when the length explodes and 0 when it vanishes (e.g. tanh with
    ``sigma_b = 0``, ``sigma_w <= 1``).

    Examples
    --------
    >>> round(float(fixed_point_q("relu", 1.0, 1.0)), 10)      # q = q/2 + 1
    2.0
    """
    moments = moments_of(activation)
    sw, sb, q0 = np.broadcast_arrays(*(_nonneg(n, v) for n, v in
                                       (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("q0", q0))))
    cm = _recursions().covariance_map().numeric

    def F(q):
        return cm(sw[..., None] ** 2, moments.m2(q), sb[..., None] ** 2) - q if q.ndim > sw.ndim else \
            cm(sw ** 2, moments.m2(q), sb ** 2) - q
    return _fixed_point(F, q0)


def chi1(activation, sigma_w, sigma_b, q=None):
    """``chi_1 = sigma_w^2 E[phi'(u)^2]`` at ``u ~ N(0, q)``; at the fixed point ``q*`` if ``q`` is None.

    Examples
    --------
    >>> round(float(chi1("relu", 2 ** 0.5, 0.0, q=1.0)), 12)
    1.0
    """
    moments = moments_of(activation)
    sw = _nonneg("sigma_w", sigma_w)
    q = fixed_point_q(activation, sigma_w, sigma_b) if q is None else _nonneg("q", q)
    return _recursions().chi1().numeric(sw ** 2, moments.dphi2(q))


def edge_of_chaos(activation, sigma_b, q_range=(1e-30, 1e30)):
    """``sigma_w`` on the edge of chaos, ``chi_1(q*) = 1``, for each ``sigma_b`` (vectorised).

    Parametrised by the fixed point itself: at ``q = q*``, ``sigma_w^2 = (q - sigma_b^2)/E[phi(u)^2]``
    and ``chi_1 = (q - sigma_b^2) E[phi'(u)^2]/E[phi(u)^2]``; the root in ``q`` of ``chi_1 = 1``
    gives ``sigma_w``. Where the root sits at an end of ``q_range`` (tanh with ``sigma_b = 0``:
    ``q* -> 0``; ReLU: ``q* -> inf``) the limit is returned.

    Examples
    --------
    >>> round(float(edge_of_chaos("relu", 0.5)), 9)
    1.414213562
    """
    moments = moments_of(activation)
    sb2 = _nonneg("sigma_b", sigma_b) ** 2
    shape = sb2.shape
    sb2 = sb2.reshape(-1)
    lo_t, hi_t = math.log(q_range[0]), math.log(q_range[1])
    t = np.linspace(lo_t, hi_t, 241)

    def sw2_of(q):             # sigma_w^2 that makes q a fixed point
        return (q - sb2[:, None]) / moments.m2(q)

    def H(log_off):            # chi_1 - 1 at the fixed point q = sigma_b^2 + exp(log_off)
        q = sb2[:, None] + np.exp(log_off)
        return _recursions().chi1().numeric(sw2_of(q), moments.dphi2(q)) - 1.0

    with np.errstate(all="ignore"):
        grid = np.broadcast_to(t, (sb2.size, t.size))
        h = H(grid)
        change = np.sign(h[:, 1:]) != np.sign(h[:, :-1])
        found = change.any(axis=1)
        i = np.argmax(change, axis=1)
        lo, hi = t[i], t[i + 1]
        sign = np.sign(h[np.arange(sb2.size), i])          # of H at lo: keep lo on that side
        lo, hi = bisect(lambda t: sign * H(t[:, None])[:, 0], lo, hi, 60)
        log_root = np.where(found, 0.5 * (lo + hi), np.where(np.abs(h[:, 0]) < np.abs(h[:, -1]), lo_t, hi_t))
        q = sb2 + np.exp(log_root)
        sw = np.sqrt(sw2_of(q[:, None])[:, 0])
    return sw.reshape(shape)


def fixed_point_c(activation, sigma_w, sigma_b, q=None, iterations=52):
    """The stable fixed point ``c*`` of the correlation map at ``q*`` (or at the given ``q``).

    Ordered phase (``chi_1 <= 1``): ``c* = 1``. Chaotic phase: ``c* < 1`` solves
    ``sigma_w^2 G(q, c) = 1`` with ``G = (E[phi^2] - E[phi(u1) phi(u2)]) / (q (1 - c))``,
    since ``1 - c' = sigma_w^2 G (1 - c)`` at ``q = q*``; bisection in ``log theta``,
    ``c = cos theta``.

    Examples
    --------
    >>> float(fixed_point_c("tanh", 0.8, 0.1))
    1.0
    """
    moments = moments_of(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    qs = fixed_point_q(activation, sw, sb) if q is None else np.broadcast_to(_nonneg("q", q), sw.shape)
    shape = sw.shape
    sw2, qs = (sw ** 2).reshape(-1), np.array(qs, dtype=float).reshape(-1)
    ch = _recursions().chi1().numeric(sw2, moments.dphi2(qs))
    out = np.ones(sw2.shape)
    todo = np.flatnonzero((ch > 1) & np.isfinite(qs) & (qs > 0))
    if todo.size:
        s2, qq = sw2[todo], qs[todo]

        def excess(log_theta):       # sigma_w^2 G(q, theta) - 1
            theta = np.exp(log_theta)
            one_minus_c = 2.0 * np.sin(theta / 2) ** 2
            return s2 * moments.gap(qq, theta) / (qq * one_minus_c) - 1.0
        lo, hi = np.full(todo.size, math.log(1e-8)), np.full(todo.size, math.log(math.pi))
        below = excess(lo) <= 0          # root under theta = 1e-8: c* = 1 to double precision
        lo, hi = bisect(excess, lo, hi, iterations)
        out[todo] = np.where(below, 1.0, np.cos(np.exp(0.5 * (lo + hi))))
    out[np.isnan(qs)] = np.nan
    return out.reshape(shape)


def _xi(chi):
    """Depth scale ``xi = -1/log(chi)`` (inf where ``chi >= 1``)."""
    with np.errstate(all="ignore"):
        return np.where(chi < 1, -1.0 / np.log(chi), np.inf)


def depth_scales(activation, sigma_w, sigma_b):
    """Depth scales ``(xi_q, xi_c)`` of Schoenholz et al. (2017), vectorised.

    ``xi_q^-1 = -log chi_q``, ``chi_q = sigma_w^2 E[phi''(u) phi(u) + phi'(u)^2]`` at ``q*``
    (the slope of the q-map; ``phi''`` by sympy, without the Dirac terms of kinks, which
    vanish where ``phi = 0`` at the kink as for ReLU and SELU);
    ``xi_c^-1 = -log chi_c``, ``chi_c = sigma_w^2 E[phi'(u1) phi'(u2)]`` at ``(q*, c*)``
    (``chi_1`` when ``c* = 1``). Infinite at criticality.

    Examples
    --------
    >>> xi_q, xi_c = depth_scales("tanh", 1.0, 0.0)
    >>> bool(np.isinf(xi_c))
    True
    """
    moments = moments_of(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    qs = fixed_point_q(activation, sw, sb)
    cs = fixed_point_c(activation, sw, sb, q=qs)
    with np.errstate(all="ignore"):
        chi_q = sw ** 2 * moments.q_slope(qs)
        chi_c = _recursions().chi1().numeric(sw ** 2, moments.dkernel(qs, qs, cs))
    return _xi(chi_q), _xi(chi_c)
