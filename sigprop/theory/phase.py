"""The order-to-chaos phase diagram: the whole ``(sigma_b, sigma_w)`` grid at once, from
interpolation tables of the Gaussian moments (:func:`phase_diagram`)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numba
import numpy as np

from .._jit import JIT
from .maps import _fixed_point, _recursions, _xi, bisect
from .moments import ActivationMoments, moments_of
from .quadrature import _SQRT_2PI, _normal_rule

#: Points of the Lagrange interpolation of the tables (degree 7: error ~ h^8, near double
#: precision at the table spacings below).
N_INTERP = 8


def _lagrange_weights(n):
    """``1 / prod_{k != j} (j - k)`` for the nodes ``0 .. n-1``."""
    return np.array([1.0 / math.prod(j - k for k in range(n) if k != j) for j in range(n)])


_WEIGHTS = _lagrange_weights(N_INTERP)


@numba.njit(**JIT)
def _basis(u, weights, out, dout, scratch):
    """Lagrange basis polynomials on the nodes ``0 .. n-1`` at ``u`` (``out``) and, if ``dout`` has
    room, their derivatives: ``prod_{k != j} (u - k)`` from prefix and suffix products (no
    division by ``u - k``, so ``u`` may sit on a node); ``scratch`` is (4, n + 1)."""
    n = weights.shape[0]
    left, dleft, right, dright = scratch[0], scratch[1], scratch[2], scratch[3]
    left[0], dleft[0], right[n], dright[n] = 1.0, 0.0, 1.0, 0.0
    for k in range(n):                    # left[j] = prod_{k < j} (u - k)
        left[k + 1] = left[k] * (u - k)
        dleft[k + 1] = dleft[k] * (u - k) + left[k]
    for k in range(n - 1, -1, -1):        # right[j] = prod_{k > j} (u - k), stored at j + 1
        right[k] = right[k + 1] * (u - k)
        dright[k] = dright[k + 1] * (u - k) + right[k + 1]
    for j in range(n):
        out[j] = weights[j] * left[j] * right[j + 1]
        if dout.shape[0] == n:
            dout[j] = weights[j] * (dleft[j] * right[j + 1] + left[j] * dright[j + 1])


@numba.njit(**JIT)
def _interp1(values, x0, h, slope_lo, slope_hi, x, out, weights):
    """Lagrange interpolation (:data:`N_INTERP` points) on a uniform grid; linear extrapolation
    beyond with the given end slopes."""
    n = values.shape[0]
    p = weights.shape[0]
    b = np.empty(p)
    db = np.empty(0)
    scratch = np.empty((4, p + 1))
    for k in range(x.shape[0]):
        t = (x[k] - x0) / h
        if not (t == t):
            out[k] = np.nan
        elif t <= 0.0:
            out[k] = values[0] + slope_lo * h * t
        elif t >= n - 1:
            out[k] = values[n - 1] + slope_hi * h * (t - (n - 1))
        else:
            i = min(max(int(t) - (p // 2 - 1), 0), n - p)
            _basis(t - i, weights, b, db, scratch)
            acc = 0.0
            for a in range(p):
                acc += b[a] * values[i + a]
            out[k] = acc


@numba.njit(**JIT)
def _interp2(values, x0, hx, y0, hy, x, y, out, dout, weights):
    """Tensor Lagrange interpolation (:data:`N_INTERP` points a direction) on a uniform grid,
    clamped to the grid, and its derivative in ``y``."""
    nx, ny = values.shape
    px = py = weights.shape[0]
    bx = np.empty(px)
    dbx = np.empty(0)
    by = np.empty(py)
    dby = np.empty(py)
    scratch = np.empty((4, px + 1))
    for k in range(x.shape[0]):
        tx = min(max((x[k] - x0) / hx, 0.0), nx - 1.0)
        ty = min(max((y[k] - y0) / hy, 0.0), ny - 1.0)
        if not (tx == tx and ty == ty):
            out[k] = np.nan
            dout[k] = np.nan
            continue
        i = min(max(int(tx) - (px // 2 - 1), 0), nx - px)
        j = min(max(int(ty) - (py // 2 - 1), 0), ny - py)
        _basis(tx - i, weights, bx, dbx, scratch)
        _basis(ty - j, weights, by, dby, scratch)
        v = 0.0
        dv = 0.0
        for a in range(px):
            row = 0.0
            drow = 0.0
            for c in range(py):
                row += by[c] * values[i + a, j + c]
                drow += dby[c] * values[i + a, j + c]
            v += bx[a] * row
            dv += bx[a] * drow
        out[k] = v
        dout[k] = dv / hy


class _Table1D:
    """``f(log q)`` on a uniform grid in ``log q``; Lagrange (degree 7) inside, linear outside.

    For the log-moment tables the linear extrapolation is a power law ``q^p``; Gaussian moments
    behave as integer or half-integer powers at ``q -> 0`` and ``q -> inf``, so an end slope
    within 1e-6 of a multiple of 1/2 is snapped to it (the table ends at 1e-12 and 1e12,
    where the corrections are of that size).
    """

    def __init__(self, x0, h, values, snap=False):
        values = np.ascontiguousarray(values, dtype=float)
        slopes = [(values[1] - values[0]) / h, (values[-1] - values[-2]) / h]
        if snap:
            slopes = [round(2 * p) / 2 if abs(p - round(2 * p) / 2) < 1e-6 else p for p in slopes]
        self.x0, self.h, self.values = float(x0), float(h), values
        self.slope_lo, self.slope_hi = float(slopes[0]), float(slopes[1])

    def __call__(self, q):
        q = np.asarray(q, dtype=float)
        with np.errstate(divide="ignore"):
            x = np.clip(np.log(q.reshape(-1)), -745.0, 710.0)
        out = np.empty(x.shape)
        _interp1(self.values, self.x0, self.h, self.slope_lo, self.slope_hi, np.ascontiguousarray(x), out,
                 _WEIGHTS)
        return out.reshape(q.shape)


#: q range of the one-variable tables (power-law extrapolation beyond).
_TABLE_Q = (1e-12, 1e12)
_TABLE_PER_DECADE = 64
#: theta range of the G table: below THETA_MIN, G(q, theta) = G(q, THETA_MIN) (error ~ (sqrt(q) THETA_MIN)^2).
_THETA_MIN = 1e-6
_THETA_STEP = 0.015
#: Largest q the two-variable table covers for q-dependent activations (cost grows with sqrt(q)).
_TABLE_Q_MAX = 1e3


@functools.lru_cache(maxsize=32)
def _moment_tables(name: str, key: str):
    """log E[phi^2], log E[phi'^2] and E[phi'' phi + phi'^2] as tables in log q."""
    moments = moments_of(name)
    h = math.log(10.0) / _TABLE_PER_DECADE
    x0, x1 = math.log(_TABLE_Q[0]), math.log(_TABLE_Q[1])
    n = int(round((x1 - x0) / h)) + 1
    q = np.exp(x0 + h * np.arange(n))
    with np.errstate(divide="ignore"):
        return (_Table1D(x0, h, np.log(moments.m2(q)), snap=True), _Table1D(x0, h, np.log(moments.dphi2(q)), snap=True),
                _Table1D(x0, h, moments.q_slope(q)))


def _theta_grid():
    y0, y1 = math.log(_THETA_MIN), math.log(math.pi)
    n = int(math.ceil((y1 - y0) / _THETA_STEP)) + 1
    hy = (y1 - y0) / (n - 1)
    return y0, hy, np.exp(y0 + hy * np.arange(n))


def _g_polar(moments: ActivationMoments, q: float, theta: np.ndarray) -> np.ndarray:
    """``G(q, theta) = (E[phi^2] - E[phi(u1) phi(u2)]) / (q (1 - cos theta))`` for all ``theta`` at once.

    In polar coordinates ``u1 = s r cos(t)``, ``u2 = s r cos(t - theta)`` (``s = sqrt q``,
    ``r`` Rayleigh, ``t`` uniform), so with ``f_r(t) = phi(s r cos t) = sum_n c_n(r) e^{int}``:
    ``E[phi^2] - E[phi(u1) phi(u2)] = sum_{n>=1} P_n (1 - cos n theta)``,
    ``P_n = 2 E_r[c_n(r)^2]``. The ``c_n`` come from an FFT in ``t`` (spectrally accurate for a
    smooth ``phi``), doubling the FFT length until the top quarter of the spectrum is negligible.
    """
    s = math.sqrt(q)
    z, w = _normal_rule(0.0, s, moments.centers)
    keep = z > 0                                   # symmetric rule: r = |z| on one side, weight x2
    # int_0^inf r e^{-r^2/2} g(r) dr = E_z[|z| sqrt(2 pi)/2 g(|z|)] over z ~ N(0, 1)
    r, wr = z[keep], 2.0 * w[keep] * z[keep] * _SQRT_2PI / 2.0
    wr = wr / wr.sum()
    n_fft = 1 << max(6, int(math.ceil(math.log2(max(4.0 * s * 9.0, 64.0)))))
    with np.errstate(all="ignore"):
        while True:
            t = 2.0 * math.pi * np.arange(n_fft) / n_fft
            f = moments.phi(s * r[:, None] * np.cos(t)[None, :])
            coef = np.fft.rfft(f, axis=1).real / n_fft
            power = 2.0 * (wr[:, None] * coef[:, 1:] ** 2).sum(axis=0)      # P_n, n >= 1
            total = power.sum()
            tail = power[-(power.size // 4):].sum()
            if not (tail > 1e-15 * total) or n_fft >= 1 << 18:
                break
            n_fft *= 2
        return _fejer_ratio(power.size, theta.tobytes()) @ power / q


@functools.lru_cache(maxsize=8)
def _fejer_ratio(n_modes: int, theta_bytes: bytes) -> np.ndarray:
    """``(1 - cos n theta)/(1 - cos theta) = (sin(n theta/2)/sin(theta/2))^2`` for ``n = 1..n_modes``."""
    theta = np.frombuffer(theta_bytes)
    n = np.arange(1, n_modes + 1)
    return (np.sin(np.outer(theta / 2.0, n)) / np.sin(theta / 2.0)[:, None]) ** 2


class _GTable:
    """``log G(q, theta)`` on a uniform grid in ``(log q, log theta)``."""

    def __init__(self, x0, hx, y0, hy, values):
        self.x0, self.hx, self.y0, self.hy = float(x0), float(hx), float(y0), float(hy)
        self.values = np.ascontiguousarray(values, dtype=float)
        self.x1 = self.x0 + self.hx * (self.values.shape[0] - 1)

    def __call__(self, q, theta):
        """``(G, d log G / d log theta)`` at the points."""
        q, theta = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(theta, dtype=float))
        with np.errstate(divide="ignore"):
            x = np.ascontiguousarray(np.log(q).reshape(-1))
            y = np.ascontiguousarray(np.log(theta).reshape(-1))
        v, dv = np.empty(x.shape), np.empty(x.shape)
        _interp2(self.values, self.x0, self.hx, self.y0, self.hy, x, y, v, dv, _WEIGHTS)
        return np.exp(v).reshape(q.shape), dv.reshape(q.shape)

    def covers(self, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(q)
        return (x >= self.x0 - 1e-9) & (x <= self.x1 + 1e-9) | (x < math.log(_TABLE_Q[0]))


@functools.lru_cache(maxsize=16)
def _g_table(name: str, key: str, i_lo: int, i_hi: int) -> _GTable:
    """The G table for log q in ``[i_lo, i_hi] * ln(10)/8`` (cached per activation and range)."""
    moments = moments_of(name)
    y0, hy, theta = _theta_grid()
    if moments.homogeneous:                           # G does not depend on q
        g = moments.gap(1.0, theta) / (2.0 * np.sin(theta / 2.0) ** 2)
        return _GTable(-745.0, 1455.0 / (N_INTERP - 1), y0, hy, np.tile(np.log(g), (N_INTERP, 1)))
    decade8 = math.log(10.0) / 8.0
    x0, x1 = i_lo * decade8, i_hi * decade8
    if moments.kinked:                                # no spectral accuracy: direct quadrature, coarser
        hx = math.log(10.0) / 4.0
        step = max(1, int(round(0.3 / hy)))
        theta_c = theta[::step]
        nx = max(N_INTERP, int(math.ceil((x1 - x0) / hx)) + 1)
        xs = x0 + hx * np.arange(nx)
        qq, tt = np.meshgrid(np.exp(xs), theta_c, indexing="ij")
        g = moments.gap(qq, tt) / (qq * 2.0 * np.sin(tt / 2.0) ** 2)
        return _GTable(x0, hx, y0, hy * step, np.log(g))
    hx = math.log(10.0) / 32.0
    nx = max(N_INTERP, int(math.ceil((x1 - x0) / hx)) + 1)
    xs = x0 + hx * np.arange(nx)
    values = np.array([np.log(_g_polar(moments, math.exp(xv), theta)) for xv in xs])
    return _GTable(x0, hx, y0, hy, values)


@dataclass
class PhaseDiagram:
    """Mean-field quantities over a ``(sigma_b, sigma_w)`` grid; arrays of shape ``(n_sb, n_sw)``.

    Attributes
    ----------
    q_star, chi1, chi_q, xi_q : the q fixed point, ``chi_1`` there, the q-map slope and its depth scale
    c_star, chi_c, xi_c : the stable correlation fixed point at ``q*``, the c-map slope there, its depth scale
    q_depth, c_depth : ``q`` and the correlation after ``depth`` layers from inputs of second moment ``q0``
        and correlation ``c0`` (the same recursion as :func:`predict`)
    in_table : False where a trajectory left the range of the interpolation tables
        (its ``c`` values used the table's edge: approximate)
    """

    activation: str
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    depth: int
    c0: float
    q0: float
    q_star: np.ndarray
    chi1: np.ndarray
    chi_q: np.ndarray
    xi_q: np.ndarray
    c_star: np.ndarray
    chi_c: np.ndarray
    xi_c: np.ndarray
    q_depth: np.ndarray
    c_depth: np.ndarray
    in_table: np.ndarray
    meta: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def phase_diagram(activation, sigma_w_grid, sigma_b_grid, depth: int = 100, c0: float = 0.5,
                  q0: float = 1.0) -> PhaseDiagram:
    """Order-to-chaos phase diagram over a grid, vectorised over all grid points.

    The q-map uses a table of ``log E[phi(u)^2]`` in ``log q`` (64 nodes per decade,
    degree-7 Lagrange interpolation, as the G table below: the results agree with
    :func:`predict` to about 1e-12); the correlation map uses a table of ``log G(q, theta)``,
    ``G = (E[phi^2] - E[phi(u1) phi(u2)]) / (q (1 - cos theta))``, ``c = cos theta``, in
    ``(log q, log theta)``: ``1 - c`` is iterated as ``q' (1 - c') = sigma_w^2 q (1 - c) G``,
    which keeps its digits as ``c -> 1``. Tables are built on first use per activation and
    q range (FFT in polar coordinates for smooth activations, one q for homogeneous ones,
    direct quadrature on a coarser grid for kinked ones such as SELU) and cached.

    Parameters
    ----------
    activation : str or Activation
    sigma_w_grid, sigma_b_grid : 1-d arrays
    depth : int
        Layers for ``q_depth``, ``c_depth``.
    c0, q0 : float
        Input correlation and second moment.

    Returns
    -------
    PhaseDiagram

    Examples
    --------
    >>> pd = phase_diagram("tanh", [0.5, 1.0, 2.0], [0.0], depth=50)
    >>> pd.chi1[0, :2].round(9).tolist()       # q* = 0 there: chi_1 = sigma_w^2 tanh'(0)^2
    [0.25, 1.0]
    >>> bool(pd.chi1[0, 2] > 1), bool(pd.c_star[0, 2] < 1)   # sigma_w = 2: chaotic
    (True, True)
    """
    moments = moments_of(activation)
    sw = np.asarray(sigma_w_grid, dtype=float).reshape(-1)
    sb = np.asarray(sigma_b_grid, dtype=float).reshape(-1)
    if sw.size == 0 or sb.size == 0 or np.any(~np.isfinite(sw)) or np.any(~np.isfinite(sb)) \
            or np.any(sw < 0) or np.any(sb < 0):
        raise ValueError("sigma_w and sigma_b grids must be non-empty, finite and >= 0")
    if isinstance(depth, bool) or int(depth) != depth or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    if not -1.0 <= c0 <= 1.0 or not q0 >= 0:
        raise ValueError(f"need -1 <= c0 <= 1 and q0 >= 0, got c0={c0}, q0={q0}")
    depth = int(depth)
    rec = _recursions()
    cov, chi = rec.covariance_map().numeric, rec.chi1().numeric
    log_m2, log_dphi2, slope = _moment_tables(moments.act.name, moments.act.key)
    SW, SB = np.meshgrid(sw, sb)                       # (n_sb, n_sw)
    sw2, sb2 = SW ** 2, SB ** 2

    def q_next(q):                                      # q' = sigma_w^2 E[phi^2] + sigma_b^2
        return cov(sw2, np.exp(log_m2(q)), sb2)

    with np.errstate(all="ignore"):
        # 1. lengths: trajectory range (for the G table) and the fixed point
        q = cov(sw2, q0, sb2)
        q_lo, q_hi = q.copy(), q.copy()
        for _ in range(depth - 1):
            q = q_next(q)
            q_lo, q_hi = np.fmin(q_lo, q), np.fmax(q_hi, q)
        q_star = _fixed_point(lambda x: cov(sw2[..., None] if x.ndim == 3 else sw2, np.exp(log_m2(x)),
                                            sb2[..., None] if x.ndim == 3 else sb2) - x, np.full(SW.shape, q0))
        finite = np.isfinite(q_star)
        lo = np.nanmin(np.concatenate([q_lo[q_lo > 0], q_star[finite & (q_star > 0)], [1.0]]))
        hi = np.nanmax(np.concatenate([q_hi[np.isfinite(q_hi)], q_star[finite], [1.0]]))
        decade8 = math.log(10.0) / 8.0
        i_lo = int(math.floor(math.log(max(lo, _TABLE_Q[0])) / decade8)) - 1
        i_hi = int(math.ceil(math.log(min(max(hi, lo), _TABLE_Q_MAX)) / decade8)) + 1
        table = _g_table(moments.act.name, moments.act.key, i_lo, max(i_hi, i_lo + 3))

        # 2. correlations: iterate delta = 1 - c with q
        q = cov(sw2, q0, sb2)
        # q_1 (1 - c_1) = sigma_w^2 q0 (1 - c0)
        delta = cov(sw2, q0 * (1.0 - c0), 0.0) / q
        inside = np.ones(SW.shape, dtype=bool)
        for _ in range(depth - 1):
            inside &= table.covers(q) | moments.homogeneous
            theta = 2.0 * np.arcsin(np.sqrt(np.clip(delta, 0.0, 2.0) / 2.0))
            G, _ = table(q, np.maximum(theta, _THETA_MIN))
            # gap = E[phi^2] - E[phi(u1) phi(u2)] = q (1 - c) G
            gap = q * delta * G
            q_new = q_next(q)
            # q' (1 - c') = sigma_w^2 gap  (the covariance map of the difference)
            delta = cov(sw2, gap, 0.0) / q_new
            q = q_new
        q_depth, c_depth = q, 1.0 - delta

        # 3. fixed-point slopes and depth scales
        chi1_ = chi(sw2, np.exp(log_dphi2(q_star)))
        chi_q = sw2 * slope(q_star)
        c_star, chi_c = np.ones(SW.shape), chi1_.copy()
        chaotic = (chi1_ > 1) & finite & (q_star > 0)
        if chaotic.any():
            qs, s2 = q_star[chaotic], sw2[chaotic]
            y_lo, y_hi = np.full(qs.shape, math.log(_THETA_MIN)), np.full(qs.shape, math.log(math.pi))
            below = s2 * table(qs, np.exp(y_lo))[0] <= 1
            # sigma_w^2 G(q*, theta*) = 1
            y_lo, y_hi = bisect(lambda y: s2 * table(qs, np.exp(y))[0] - 1.0, y_lo, y_hi, 52)
            theta_s = np.exp(0.5 * (y_lo + y_hi))
            G, dlogG = table(qs, theta_s)
            # chi_c = sigma_w^2 E[phi' phi'] = sigma_w^2 (G + tan(theta/2) dG/dtheta), with sigma_w^2 G = 1
            c_star[chaotic] = np.where(below, 1.0, np.cos(theta_s))
            chi_c[chaotic] = np.where(below, chi1_[chaotic], s2 * G * (1.0 + np.tan(theta_s / 2) / theta_s * dlogG))
        nonfinite = ~finite
        c_star[nonfinite], chi_c[nonfinite] = np.nan, np.nan
    meta = {"table_log_q": [table.x0, table.x1], "theta_min": _THETA_MIN}
    return PhaseDiagram(moments.act.name, sw, sb, depth, float(c0), float(q0), q_star, chi1_, chi_q, _xi(chi_q),
                        c_star, chi_c, _xi(chi_c), q_depth, c_depth, inside, meta)
