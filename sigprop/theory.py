"""Numeric mean-field theory: q-map, c-map, chi_1, edge of chaos, depth scales, per-layer predictions.

For a pre-activation ``u ~ N(0, q)`` the theory needs Gaussian expectations of the
activation and its derivatives; for two inputs it needs bivariate ones over
``(u1, u2)`` with variances ``q1, q2`` and correlation ``c``. Where sympy derived
a closed form (:mod:`sigprop.symbolic.kernels`: linear, ReLU, leaky ReLU, erf,
SELU moments) the lambdified formula is called; otherwise the integral is done
by quadrature here, never by a retyped formula. The recursions themselves
(forward / backward variance, covariance map, chi_1) are the lambdified results
of :mod:`sigprop.symbolic.recursions`.

Quadrature
----------
``E[f(m + sigma Z)]`` is integrated by composite Gauss-Legendre on panels in
``z``: fixed panels on the Gaussian scale (``|z| <= 12``) plus panels graded
geometrically (ratio 2) towards each kink of the activation, from the
activation's own scale (``|h| = 1/4``, i.e. ``|z| = 1/(4 sigma)``) up to
``|z| = 2``. The integrand is then smooth on every panel whatever ``q``: at
large ``q`` ``tanh(sqrt(q) z)`` becomes a step in ``z``, which plain
Gauss-Hermite resolves slowly, and ReLU's kink at 0 is a panel end. The
number of panels grows with ``log2 q``, not ``q``. Bivariate expectations
nest two such rules (the inner one graded around the kink in ``z2``, which
moves with ``z1``).

Conventions are those of :mod:`sigprop.spec`: ``q_l = E[h_l^2]``,
``chi1 = sigma_w^2 E[phi'(h)^2]``, ``grad_var[l] = Var(dL/dh_l)`` for unit
variance ``dL/dx_L``.

Examples
--------
>>> from sigprop import theory
>>> round(float(theory.q_map("relu", 2 ** 0.5, 0.0, 3.0)), 12)   # Kaiming ReLU keeps q
3.0
>>> round(float(theory.edge_of_chaos("tanh", 0.0)), 9)         # tanh, sigma_b = 0: sigma_w = 1
1.0
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .activations import DEFAULT_SATURATION_THRESHOLD, Activation, get_activation, x as _x

# ---------------------------------------------------------------------------------------------
# Quadrature rules
# ---------------------------------------------------------------------------------------------
#: Gauss-Legendre nodes per panel.
N_GL = 10
#: Integration range in z (the N(0,1) mass beyond is 2e-33).
Z_MAX = 12.0
_GAUSS_BREAKS = np.array([-12.0, -9.0, -7.0, -5.5, -4.0, -3.0, -2.0, -1.0, 0.0,
                          1.0, 2.0, 3.0, 4.0, 5.5, 7.0, 9.0, 12.0])
#: Finest graded panel, in units of the activation's scale h (|h| = 1/4 around a kink).
_H_FINEST = 0.25
#: Graded panels stop at |z - z_kink| = 2 (the Gaussian panels take over).
_Z_GRADED = 2.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_CHUNK = 2_000_000   # nodes per vectorised batch (memory bound)


@functools.lru_cache(maxsize=None)
def _gauss_legendre(n: int):
    t, w = np.polynomial.legendre.leggauss(n)
    return t, w


def _normal_rule(m, sigma, kinks=(0.0,), n=N_GL, scale=None):
    """Nodes ``z`` and weights ``w`` (shape ``S + (M,)``) with ``sum w f(m + sigma z) ~ E[f(m + sigma Z)]``.

    ``m`` and ``sigma`` broadcast to ``S``. Panels: the Gaussian-scale ones plus, around each
    kink ``h_k`` of ``f`` (``z_k = (h_k - m)/sigma``), breakpoints ``z_k +- d0 2^j`` with
    ``d0 = 1/(4 scale)`` (``scale`` defaults to ``sigma``; capped below at 1e-15: finer
    structure carries no mass).
    """
    m, sigma = np.broadcast_arrays(np.asarray(m, dtype=float), np.asarray(sigma, dtype=float))
    scale = sigma if scale is None else np.broadcast_to(np.asarray(scale, dtype=float), m.shape)
    shape = m.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig = np.where(sigma > 1e-300, sigma, 1e-300)
        d0 = np.maximum(_H_FINEST / np.where(scale > 1e-300, scale, 1e-300), 1e-15)
        finest = np.nanmin(d0) if d0.size and np.any(np.isfinite(d0)) else _Z_GRADED
        levels = max(0, int(math.ceil(math.log2(_Z_GRADED / finest)))) if finest < _Z_GRADED else 0
        offsets = d0[..., None] * 2.0 ** np.arange(levels)          # S + (levels,)
        parts = [np.broadcast_to(_GAUSS_BREAKS, shape + _GAUSS_BREAKS.shape)]
        for hk in kinks:
            zk = np.clip((hk - m) / sig, -Z_MAX, Z_MAX)
            zk = np.where(np.isfinite(zk), zk, 0.0)[..., None]
            parts += [zk, zk - offsets, zk + offsets]
        breaks = np.sort(np.clip(np.concatenate(parts, axis=-1), -Z_MAX, Z_MAX), axis=-1)
    lo, hi = breaks[..., :-1], breaks[..., 1:]
    half, mid = (hi - lo) / 2.0, (hi + lo) / 2.0
    t, wt = _gauss_legendre(n)
    # z = mid + half t on each panel; weight = half w_t phi(z)
    z = (mid[..., None] + half[..., None] * t).reshape(shape + (-1,))
    w = (half[..., None] * wt).reshape(shape + (-1,)) * np.exp(-0.5 * z * z) / _SQRT_2PI
    return z, w


def _rule_size(sigma, kinks) -> int:
    """Number of nodes :func:`_normal_rule` uses for the finest sigma of a batch."""
    sig = float(np.nanmax(np.asarray(sigma, dtype=float), initial=1e-300))
    d0 = max(_H_FINEST / max(sig, 1e-300), 1e-15) if math.isfinite(sig) else 1e-15
    levels = max(0, int(math.ceil(math.log2(_Z_GRADED / d0)))) if d0 < _Z_GRADED else 0
    return (len(_GAUSS_BREAKS) - 1 + len(kinks) * (2 * levels + 1)) * N_GL


def gaussian_expectation(f, q, kinks=(0.0,)):
    """``E[f(u)]`` for ``u ~ N(0, q)``, vectorised over ``q``.

    Parameters
    ----------
    f : callable
        Vectorised ``f(h)`` (numpy arrays in, arrays out).
    q : float or array
        Variances (``q >= 0``; ``inf`` gives what ``f`` gives at infinity).
    kinks : sequence of float
        Points where ``f`` is not smooth (panel ends); 0 is also where a
        built-in activation changes fastest.

    Returns
    -------
    ndarray of the shape of ``q``

    Examples
    --------
    >>> import numpy as np
    >>> v = gaussian_expectation(lambda h: h ** 2, np.array([0.5, 2.0]))
    >>> np.allclose(v, [0.5, 2.0], rtol=1e-13)
    True
    """
    q = np.asarray(q, dtype=float)
    flat = q.reshape(-1)
    out = np.empty(flat.shape)
    per = max(1, _CHUNK // max(_rule_size(np.sqrt(np.abs(flat)), kinks), 1))
    with np.errstate(all="ignore"):
        for i in range(0, flat.size, per):
            s = np.sqrt(flat[i:i + per])
            z, w = _normal_rule(0.0, s, kinks)
            out[i:i + per] = np.sum(w * f(s[:, None] * z), axis=-1)
    return out.reshape(q.shape)


def bivariate_expectation(g, q1, q2, c, kinks=(0.0,), kinked=True, theta=None):
    """``E[g(u1, u2)]`` for centred ``(u1, u2)`` with variances ``q1, q2`` and correlation ``c``.

    ``u1 = sqrt(q1) z1``, ``u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2)``: an outer rule in
    ``z1`` (graded at the kinks on the finer of the two scales) and, for each ``z1``, an
    inner rule in ``z2`` graded around the kinks of ``u2`` (which move with ``z1``).
    ``g(h1, h2)`` receives ``h1`` of shape ``(..., n1, 1)`` and ``h2`` of shape
    ``(..., n1, n2)``, so a factor that depends on ``h1`` only is evaluated once per node.
    ``kinked=False`` says ``g`` is smooth at ``kinks`` (they only mark where it changes
    fastest); a kink smoothed by the inner integral leaves a transition of width
    ``sqrt(1 - c^2)/|c|`` in ``z1``, which the outer rule then resolves.

    ``theta`` (optional, same shape as ``c``) gives the angle ``c = cos(theta)`` directly,
    so that ``sqrt(1 - c^2) = sin(theta)`` keeps its digits when ``c`` rounds to 1.

    Examples
    --------
    >>> v = bivariate_expectation(lambda a, b: a * b, 2.0, 0.5, 0.3)   # covariance
    >>> abs(float(v) - 0.3) < 1e-13
    True
    """
    if theta is not None:
        c = np.cos(np.asarray(theta, dtype=float))
    q1, q2, c = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q1, q2, c)))
    shape = q1.shape
    q1, q2, c = (v.reshape(-1) for v in (q1, q2, c))
    out = np.empty(q1.shape)
    with np.errstate(all="ignore"):
        s1, s2 = np.sqrt(q1), np.sqrt(q2)
        c = np.clip(c, -1.0, 1.0)
        if theta is None:
            r = np.sqrt(np.maximum(1.0 - c * c, 0.0))
        else:
            r = np.abs(np.broadcast_to(np.sin(np.asarray(theta, dtype=float)), shape).reshape(-1))
        s_outer = np.maximum(s1, s2 * np.abs(c))
        if kinked and kinks:
            # the inner integral smooths a kink of u2 over sqrt(1 - c^2)/|c| in z1
            s_outer = np.maximum(s_outer, np.where(r > 0, np.abs(c) / np.maximum(r, 1e-300), 0.0))
        n1 = _rule_size(s_outer, kinks)
        n2 = _rule_size(s2 * r, kinks)
        per = max(1, _CHUNK // (n1 * n2))
        for i in range(0, q1.size, per):
            sl = slice(i, i + per)
            z1, w1 = _normal_rule(0.0, s1[sl], kinks, scale=s_outer[sl])       # (B, n1)
            m = (s2[sl] * c[sl])[:, None] * z1                                 # u2 = m + sigma z2
            sig = np.broadcast_to((s2[sl] * r[sl])[:, None], m.shape)
            z2, w2 = _normal_rule(m, sig, kinks)                               # (B, n1, n2)
            h1 = (s1[sl][:, None] * z1)[..., None]
            h2 = m[..., None] + sig[..., None] * z2
            inner = np.sum(w2 * g(h1, h2), axis=-1)                            # (B, n1)
            out[sl] = np.sum(w1 * inner, axis=-1)
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------
# What the theory needs of an activation (all derived from its sympy expression)
# ---------------------------------------------------------------------------------------------
class _Calculus:
    """Numeric forms, kinks and Gaussian moments/kernels of one activation.

    Closed forms derived in :mod:`sigprop.symbolic.kernels` are used where they exist;
    everything else is quadrature of the same integral.
    """

    def __init__(self, act: Activation):
        from .symbolic.kernels import gaussian_kernels, gaussian_moments
        self.act = act
        self.phi, self.dphi = act.phi, act.dphi
        self.closed_moments = gaussian_moments(act)
        self.closed_kernels = gaussian_kernels(act)
        self.breaks, self.kinked = _breakpoints(act)
        self.centers = tuple(sorted(set((0.0,) + self.breaks)))

    @functools.cached_property
    def d2phi(self):
        """``phi''`` by sympy differentiation of the derivative (no Dirac deltas: see :func:`depth_scales`)."""
        return self.act._lambdify(sp.diff(self.act.derivative_symbolic, _x))

    @functools.cached_property
    def homogeneous(self) -> bool:
        """``phi(l h) = l phi(h)`` for ``l > 0`` (linear, ReLU, leaky ReLU): kernels do not depend on q."""
        h = np.linspace(-3.0, 3.0, 13) + 0.1
        with np.errstate(all="ignore"):
            return all(np.allclose(self.phi(lam * h), lam * self.phi(h), rtol=1e-12, atol=1e-14)
                       for lam in (0.37, 2.9))

    # --- one-variable expectations, u ~ N(0, q) ---------------------------------------------
    def expect(self, f, q):
        return gaussian_expectation(f, q, self.centers)

    def mean(self, q):
        if self.closed_moments is not None:
            return _closed(self.closed_moments.mean, q)
        return self.expect(self.phi, q)

    def m2(self, q):
        if self.closed_moments is not None:
            return _closed(self.closed_moments.m2, q)
        return self.expect(lambda h: self.phi(h) ** 2, q)

    def dphi2(self, q):
        if self.closed_moments is not None:
            return _closed(self.closed_moments.dphi2, q)
        return self.expect(lambda h: self.dphi(h) ** 2, q)

    def q_slope(self, q):
        """``E[phi''(u) phi(u) + phi'(u)^2] = d E[phi(u)^2] / d q`` (heat equation)."""
        d2 = self.d2phi
        return self.expect(lambda h: d2(h) * self.phi(h) + self.dphi(h) ** 2, q)

    # --- two-variable expectations ------------------------------------------------------------
    def kernel(self, q1, q2, c):
        """``E[phi(u1) phi(u2)]``."""
        if self.closed_kernels is not None:
            return _closed(self.closed_kernels.phi, q1, q2, c)
        phi = self.phi
        return bivariate_expectation(lambda a, b: phi(a) * phi(b), q1, q2, c, self.centers, self.kinked)

    def dkernel(self, q1, q2, c):
        """``E[phi'(u1) phi'(u2)]``."""
        if self.closed_kernels is not None:
            return _closed(self.closed_kernels.dphi, q1, q2, c)
        dphi = self.dphi
        return bivariate_expectation(lambda a, b: dphi(a) * dphi(b), q1, q2, c, self.centers, self.kinked)

    def gap(self, q, theta):
        """``E[(phi(u1) - phi(u2))^2]/2 = E[phi^2] - E[phi(u1) phi(u2)]`` at equal variances and
        correlation ``c = cos(theta)``, integrated as a difference (no cancellation as ``c -> 1``)."""
        phi = self.phi
        return bivariate_expectation(lambda a, b: 0.5 * (phi(a) - phi(b)) ** 2, q, q, None,
                                     self.centers, self.kinked, theta=theta)


def _closed(derivation, *args):
    with np.errstate(all="ignore"):
        return np.asarray(derivation.numeric(*args), dtype=float)


def _breakpoints(act: Activation):
    """Finite boundaries of the Piecewise conditions of ``phi`` and ``phi'``, and whether
    ``phi'`` jumps at one of them (a kink: softplus's ``Max``/``Abs`` pieces join smoothly)."""
    points = set()
    for e in (act.expr, act.derivative):
        try:
            e = sp.piecewise_fold(e.rewrite(sp.Piecewise))
            for pw in e.atoms(sp.Piecewise) | ({e} if isinstance(e, sp.Piecewise) else set()):
                for _, cond in pw.args:
                    if cond is sp.true:
                        continue
                    for b in cond.as_set().boundary:
                        if b.is_real and b.is_finite:
                            points.add(float(b))
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            continue
    kinked = False
    with np.errstate(all="ignore"):
        for b in points:
            eps = 1e-7 * max(1.0, abs(b))
            lo, hi = float(act.dphi(b - eps)), float(act.dphi(b + eps))
            if not abs(hi - lo) <= 1e-5 * (1.0 + abs(lo) + abs(hi)):
                kinked = True
    return tuple(sorted(points)), kinked


_CALCULUS: dict = {}


def _calculus(activation) -> _Calculus:
    act = get_activation(activation)
    key = (act.name, act.key)
    if key not in _CALCULUS:
        _CALCULUS[key] = _Calculus(act)
    return _CALCULUS[key]


# ---------------------------------------------------------------------------------------------
# Maps, fixed points, chi_1, edge of chaos, depth scales
# ---------------------------------------------------------------------------------------------
def _recursions():
    from .symbolic import recursions
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
    calc = _calculus(activation)
    sw, sb, q = (_nonneg(n, v) for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("q", q)))
    # q' = sigma_w^2 E[phi(u)^2] + sigma_b^2 (covariance map with a = b)
    return _recursions().covariance_map().numeric(sw ** 2, calc.m2(q), sb ** 2)


def c_map(activation, sigma_w, sigma_b, q, c):
    """The correlation map at equal variances ``q``:
    ``c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / (sigma_w^2 E[phi(u)^2] + sigma_b^2)``.

    Examples
    --------
    >>> round(float(c_map("tanh", 1.5, 0.1, 0.8, 1.0)), 12)   # c = 1 is a fixed point
    1.0
    """
    calc = _calculus(activation)
    sw, sb, q = (_nonneg(n, v) for n, v in (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("q", q)))
    c = np.asarray(c, dtype=float)
    if np.any(np.abs(c) > 1):
        raise ValueError(f"correlation c must be in [-1, 1], got {c!r}")
    cm = _recursions().covariance_map().numeric
    with np.errstate(all="ignore"):
        # c' = q12' / q',  q12' = sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2
        return cm(sw ** 2, calc.kernel(q, q, c), sb ** 2) / cm(sw ** 2, calc.m2(q), sb ** 2)


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
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            fm = F(np.exp(mid))
            lo, hi = np.where(fm > 0, mid, lo), np.where(fm > 0, hi, mid)
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
    calc = _calculus(activation)
    sw, sb, q0 = np.broadcast_arrays(*(_nonneg(n, v) for n, v in
                                       (("sigma_w", sigma_w), ("sigma_b", sigma_b), ("q0", q0))))
    cm = _recursions().covariance_map().numeric

    def F(q):
        return cm(sw[..., None] ** 2, calc.m2(q), sb[..., None] ** 2) - q if q.ndim > sw.ndim else \
            cm(sw ** 2, calc.m2(q), sb ** 2) - q
    return _fixed_point(F, q0)


def chi1(activation, sigma_w, sigma_b, q=None):
    """``chi_1 = sigma_w^2 E[phi'(u)^2]`` at ``u ~ N(0, q)``; at the fixed point ``q*`` if ``q`` is None.

    Examples
    --------
    >>> round(float(chi1("relu", 2 ** 0.5, 0.0, q=1.0)), 12)
    1.0
    """
    calc = _calculus(activation)
    sw = _nonneg("sigma_w", sigma_w)
    q = fixed_point_q(activation, sigma_w, sigma_b) if q is None else _nonneg("q", q)
    return _recursions().chi1().numeric(sw ** 2, calc.dphi2(q))


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
    calc = _calculus(activation)
    sb2 = _nonneg("sigma_b", sigma_b) ** 2
    shape = sb2.shape
    sb2 = sb2.reshape(-1)
    lo_t, hi_t = math.log(q_range[0]), math.log(q_range[1])
    t = np.linspace(lo_t, hi_t, 241)

    def sw2_of(q):             # sigma_w^2 that makes q a fixed point
        return (q - sb2[:, None]) / calc.m2(q)

    def H(log_off):            # chi_1 - 1 at the fixed point q = sigma_b^2 + exp(log_off)
        q = sb2[:, None] + np.exp(log_off)
        return _recursions().chi1().numeric(sw2_of(q), calc.dphi2(q)) - 1.0

    with np.errstate(all="ignore"):
        grid = np.broadcast_to(t, (sb2.size, t.size))
        h = H(grid)
        change = np.sign(h[:, 1:]) != np.sign(h[:, :-1])
        found = change.any(axis=1)
        i = np.argmax(change, axis=1)
        lo, hi = t[i], t[i + 1]
        h_lo = h[np.arange(sb2.size), i]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            hm = H(mid[:, None])[:, 0]
            same = np.sign(hm) == np.sign(h_lo)
            lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
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
    calc = _calculus(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    qs = fixed_point_q(activation, sw, sb) if q is None else np.broadcast_to(_nonneg("q", q), sw.shape)
    shape = sw.shape
    sw2, qs = (sw ** 2).reshape(-1), np.array(qs, dtype=float).reshape(-1)
    ch = _recursions().chi1().numeric(sw2, calc.dphi2(qs))
    out = np.ones(sw2.shape)
    todo = np.flatnonzero((ch > 1) & np.isfinite(qs) & (qs > 0))
    if todo.size:
        s2, qq = sw2[todo], qs[todo]

        def excess(log_theta):       # sigma_w^2 G(q, theta) - 1
            theta = np.exp(log_theta)
            one_minus_c = 2.0 * np.sin(theta / 2) ** 2
            return s2 * calc.gap(qq, theta) / (qq * one_minus_c) - 1.0
        lo, hi = np.full(todo.size, math.log(1e-8)), np.full(todo.size, math.log(math.pi))
        below = excess(lo) <= 0          # root under theta = 1e-8: c* = 1 to double precision
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            pos = excess(mid) > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
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
    calc = _calculus(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    qs = fixed_point_q(activation, sw, sb)
    cs = fixed_point_c(activation, sw, sb, q=qs)
    with np.errstate(all="ignore"):
        chi_q = sw ** 2 * calc.q_slope(qs)
        chi_c = _recursions().chi1().numeric(sw ** 2, calc.dkernel(qs, qs, cs))
    return _xi(chi_q), _xi(chi_c)


# ---------------------------------------------------------------------------------------------
# Per-layer predictions for a NetSpec
# ---------------------------------------------------------------------------------------------
def _normal_cdf(x):
    from scipy.special import ndtr
    return ndtr(x)


def predict(spec, c0: float = 0.5, threshold: float = DEFAULT_SATURATION_THRESHOLD):
    """Mean-field predictions, layer by layer, for a network.

    Parameters
    ----------
    spec : NetSpec
        Widths, activation, ``sigma_w``, ``sigma_b`` per layer, ``input_var``.
    c0 : float
        Correlation of the two raw inputs whose pre-activation correlation ``corr`` tracks
        (both with second moment ``input_var``).
    threshold : float
        Saturation threshold (``|tanh(h)| > threshold``); see
        :meth:`~sigprop.activations.Activation.saturation_cutoffs`.

    Returns
    -------
    LayerStats
        ``source="theory"`` with ``q, act_mean, act_sq, act_var, saturated, dead,
        grad_var, corr, chi1`` (``saturated`` is NaN for unbounded activations).
        Exploding or vanishing signals give ``inf``/``nan``/0, never an error.

    Notes
    -----
    Forward: ``q_1 = sigma_w^2 input_var + sigma_b^2``, ``q_{l+1} = sigma_w^2 E[phi(h_l)^2] + sigma_b^2``;
    correlation: ``q12_1 = sigma_w^2 c0 input_var + sigma_b^2``, ``q12_{l+1} = sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2``.
    Backward: ``grad_var[L] = E[phi'(h_L)^2]`` and
    ``grad_var[l] = n_{l+1} (sigma_{w,l+1}^2 / n_l) E[phi'(h_l)^2] grad_var[l+1]`` (the next layer's
    weights carry the gradient). ``chi1[l] = sigma_{w,l}^2 E[phi'(h_l)^2]``.

    Examples
    --------
    >>> from sigprop import NetSpec
    >>> s = predict(NetSpec.uniform(depth=3, width=100, activation="relu", init="kaiming"))
    >>> s.q.round(12).tolist(), s.act_sq.round(12).tolist(), s.dead.tolist()   # Kaiming keeps E[x^2]
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    """
    from .spec import LayerStats, NetSpec
    if not isinstance(spec, NetSpec):
        raise ValueError(f"predict needs a NetSpec, got {type(spec).__name__}")
    c0 = float(c0)
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0}")
    threshold = float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"saturation threshold must be in (0, 1), got {threshold}")
    rec = _recursions()
    forward, cov, backward, chi = (rec.forward_variance().numeric, rec.covariance_map().numeric,
                                   rec.backward_variance().numeric, rec.chi1().numeric)
    L = spec.depth
    fan_in, widths = spec.fan_in, spec.widths
    out = {k: np.empty(L) for k in ("q", "act_mean", "act_sq", "act_var", "saturated", "dead",
                                    "grad_var", "corr", "chi1")}
    dphi2 = np.empty(L)
    m2_prev, cross_prev = spec.input_var, c0 * spec.input_var
    previous = None                               # (calc, q, c) -> results, reused at a fixed point
    with np.errstate(all="ignore"):
        for l, act in enumerate(spec.activations()):
            calc = _calculus(act)
            sw2, sb2, n_in = spec.sigma_w[l] ** 2, spec.sigma_b[l] ** 2, fan_in[l]
            # q_l = n_in Var(W) E[x^2] + Var(b),  Var(W) = sigma_w^2 / n_in
            q = np.float64(forward(n_in, sw2 / n_in, m2_prev, sb2))
            # q12_l = sigma_w^2 E[x_a x_b] + sigma_b^2
            c = float(np.float64(cov(sw2, cross_prev, sb2)) / q)
            q = float(q)
            if c > 1.0 and c - 1.0 < 1e-12:
                c = 1.0
            if previous is not None and previous[0] is calc and _same(previous[1], q) and _same(previous[2], c, 1e-15):
                mean, m2, d2, cross = previous[3]
            elif not np.isfinite(q):              # overflowed: the limits the integrands give at h = +-inf
                mean, m2, d2 = (float(calc.mean(q)), float(calc.m2(q)), float(calc.dphi2(q)))
                if q == math.inf and act.bounds is None:
                    m2 = math.inf
                cross = math.nan
            else:
                mean, m2, d2 = (float(calc.mean(q)), float(calc.m2(q)), float(calc.dphi2(q)))
                cross = float(calc.kernel(q, q, c)) if np.isfinite(c) and np.isfinite(q) else math.nan
                previous = (calc, q, c, (mean, m2, d2, cross))
            s = np.sqrt(np.float64(q))                   # numpy division: q = 0 gives inf, not an error
            out["q"][l], out["corr"][l] = q, c
            out["act_mean"][l], out["act_sq"][l] = mean, m2
            out["act_var"][l] = max(m2 - mean * mean, 0.0) if np.isfinite(m2 - mean * mean) else m2 - mean * mean
            cut = act.saturation_cutoffs(threshold)
            # P(h < h_lo) + P(h > h_hi), h ~ N(0, q)
            out["saturated"][l] = math.nan if cut is None else float(_normal_cdf(cut[0] / s) + _normal_cdf(-cut[1] / s))
            # P(h in a dead interval)
            out["dead"][l] = float(sum(_normal_cdf(b / s) - _normal_cdf(a / s) for a, b in act.dead_intervals))
            out["chi1"][l] = float(chi(sw2, d2))
            dphi2[l] = d2
            m2_prev, cross_prev = m2, cross
        # backward: grad_var[L] = E[phi'(h_L)^2] Var(dL/dx_L), Var(dL/dx_L) = 1
        g = dphi2[L - 1]
        out["grad_var"][L - 1] = g
        for l in range(L - 2, -1, -1):
            n_out, n_l = widths[l + 1], widths[l]
            # Var(dL/dh_l) = n_{l+1} Var(W_{l+1}) E[phi'(h_l)^2] Var(dL/dh_{l+1})
            g = float(backward(n_out, spec.sigma_w[l + 1] ** 2 / n_l, dphi2[l], g))
            out["grad_var"][l] = g
    meta = {"c0": c0, "threshold": threshold, "method": "mean-field",
            "quadrature": f"graded Gauss-Legendre, {N_GL} nodes per panel"}
    return LayerStats(out, spec=spec, source="theory", meta=meta)


def _same(a, b, atol=0.0) -> bool:
    """Equal to double precision (a converged fixed point): reuse the layer's integrals."""
    return a == b or (abs(a - b) <= max(4e-16 * max(abs(a), abs(b)), atol))


# ---------------------------------------------------------------------------------------------
# Phase diagram: the whole (sigma_b, sigma_w) grid at once, from interpolation tables
# ---------------------------------------------------------------------------------------------
import numba  # noqa: E402  (after the pure-numpy part; used by the table interpolation kernels)

from ._jit import JIT  # noqa: E402


@numba.njit(**JIT)
def _lagrange4(v0, v1, v2, v3, u):
    """Cubic through 4 uniform nodes at offsets 0..3, evaluated at ``u``."""
    return (-(u - 1.0) * (u - 2.0) * (u - 3.0) / 6.0 * v0 + u * (u - 2.0) * (u - 3.0) / 2.0 * v1
            - u * (u - 1.0) * (u - 3.0) / 2.0 * v2 + u * (u - 1.0) * (u - 2.0) / 6.0 * v3)


@numba.njit(**JIT)
def _dlagrange4(v0, v1, v2, v3, u):
    """Derivative in ``u`` of :func:`_lagrange4`."""
    return (-((u - 2.0) * (u - 3.0) + (u - 1.0) * (u - 3.0) + (u - 1.0) * (u - 2.0)) / 6.0 * v0
            + ((u - 2.0) * (u - 3.0) + u * (u - 3.0) + u * (u - 2.0)) / 2.0 * v1
            - ((u - 1.0) * (u - 3.0) + u * (u - 3.0) + u * (u - 1.0)) / 2.0 * v2
            + ((u - 1.0) * (u - 2.0) + u * (u - 2.0) + u * (u - 1.0)) / 6.0 * v3)


@numba.njit(**JIT)
def _interp1(values, x0, h, slope_lo, slope_hi, x, out):
    """Cubic (4-point Lagrange) interpolation on a uniform grid; linear extrapolation beyond
    with the given end slopes."""
    n = values.shape[0]
    for k in range(x.shape[0]):
        t = (x[k] - x0) / h
        if not (t == t):
            out[k] = np.nan
        elif t <= 0.0:
            out[k] = values[0] + slope_lo * h * t
        elif t >= n - 1:
            out[k] = values[n - 1] + slope_hi * h * (t - (n - 1))
        else:
            i = min(max(int(t) - 1, 0), n - 4)
            out[k] = _lagrange4(values[i], values[i + 1], values[i + 2], values[i + 3], t - i)


@numba.njit(**JIT)
def _interp2(values, x0, hx, y0, hy, x, y, out, dout):
    """Bicubic (4x4 Lagrange) interpolation on a uniform grid, clamped to the grid, and its
    derivative in ``y``."""
    nx, ny = values.shape
    for k in range(x.shape[0]):
        tx = min(max((x[k] - x0) / hx, 0.0), nx - 1.0)
        ty = min(max((y[k] - y0) / hy, 0.0), ny - 1.0)
        if not (tx == tx and ty == ty):
            out[k] = np.nan
            dout[k] = np.nan
            continue
        i = min(max(int(tx) - 1, 0), nx - 4)
        j = min(max(int(ty) - 1, 0), ny - 4)
        u, w = tx - i, ty - j
        r0 = _lagrange4(values[i, j], values[i, j + 1], values[i, j + 2], values[i, j + 3], w)
        r1 = _lagrange4(values[i + 1, j], values[i + 1, j + 1], values[i + 1, j + 2], values[i + 1, j + 3], w)
        r2 = _lagrange4(values[i + 2, j], values[i + 2, j + 1], values[i + 2, j + 2], values[i + 2, j + 3], w)
        r3 = _lagrange4(values[i + 3, j], values[i + 3, j + 1], values[i + 3, j + 2], values[i + 3, j + 3], w)
        d0 = _dlagrange4(values[i, j], values[i, j + 1], values[i, j + 2], values[i, j + 3], w)
        d1 = _dlagrange4(values[i + 1, j], values[i + 1, j + 1], values[i + 1, j + 2], values[i + 1, j + 3], w)
        d2 = _dlagrange4(values[i + 2, j], values[i + 2, j + 1], values[i + 2, j + 2], values[i + 2, j + 3], w)
        d3 = _dlagrange4(values[i + 3, j], values[i + 3, j + 1], values[i + 3, j + 2], values[i + 3, j + 3], w)
        out[k] = _lagrange4(r0, r1, r2, r3, u)
        dout[k] = _lagrange4(d0, d1, d2, d3, u) / hy


class _Table1D:
    """``f(log q)`` on a uniform grid in ``log q``; cubic inside, linear outside.

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
        _interp1(self.values, self.x0, self.h, self.slope_lo, self.slope_hi, np.ascontiguousarray(x), out)
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
    calc = _calculus(name)
    h = math.log(10.0) / _TABLE_PER_DECADE
    x0, x1 = math.log(_TABLE_Q[0]), math.log(_TABLE_Q[1])
    n = int(round((x1 - x0) / h)) + 1
    q = np.exp(x0 + h * np.arange(n))
    with np.errstate(divide="ignore"):
        return (_Table1D(x0, h, np.log(calc.m2(q)), snap=True), _Table1D(x0, h, np.log(calc.dphi2(q)), snap=True),
                _Table1D(x0, h, calc.q_slope(q)))


def _theta_grid():
    y0, y1 = math.log(_THETA_MIN), math.log(math.pi)
    n = int(math.ceil((y1 - y0) / _THETA_STEP)) + 1
    hy = (y1 - y0) / (n - 1)
    return y0, hy, np.exp(y0 + hy * np.arange(n))


def _g_polar(calc: _Calculus, q: float, theta: np.ndarray) -> np.ndarray:
    """``G(q, theta) = (E[phi^2] - E[phi(u1) phi(u2)]) / (q (1 - cos theta))`` for all ``theta`` at once.

    In polar coordinates ``u1 = s r cos(t)``, ``u2 = s r cos(t - theta)`` (``s = sqrt q``,
    ``r`` Rayleigh, ``t`` uniform), so with ``f_r(t) = phi(s r cos t) = sum_n c_n(r) e^{int}``:
    ``E[phi^2] - E[phi(u1) phi(u2)] = sum_{n>=1} P_n (1 - cos n theta)``,
    ``P_n = 2 E_r[c_n(r)^2]``. The ``c_n`` come from an FFT in ``t`` (spectrally accurate for a
    smooth ``phi``), doubling the FFT length until the top quarter of the spectrum is negligible.
    """
    s = math.sqrt(q)
    z, w = _normal_rule(0.0, s, calc.centers)
    keep = z > 0                                   # symmetric rule: r = |z| on one side, weight x2
    # int_0^inf r e^{-r^2/2} g(r) dr = E_z[|z| sqrt(2 pi)/2 g(|z|)] over z ~ N(0, 1)
    r, wr = z[keep], 2.0 * w[keep] * z[keep] * _SQRT_2PI / 2.0
    wr = wr / wr.sum()
    n_fft = 1 << max(6, int(math.ceil(math.log2(max(4.0 * s * 9.0, 64.0)))))
    with np.errstate(all="ignore"):
        while True:
            t = 2.0 * math.pi * np.arange(n_fft) / n_fft
            f = calc.phi(s * r[:, None] * np.cos(t)[None, :])
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
        _interp2(self.values, self.x0, self.hx, self.y0, self.hy, x, y, v, dv)
        return np.exp(v).reshape(q.shape), dv.reshape(q.shape)

    def covers(self, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(q)
        return (x >= self.x0 - 1e-9) & (x <= self.x1 + 1e-9) | (x < math.log(_TABLE_Q[0]))


@functools.lru_cache(maxsize=16)
def _g_table(name: str, key: str, i_lo: int, i_hi: int) -> _GTable:
    """The G table for log q in ``[i_lo, i_hi] * ln(10)/8`` (cached per activation and range)."""
    calc = _calculus(name)
    y0, hy, theta = _theta_grid()
    if calc.homogeneous:                           # G does not depend on q
        g = calc.gap(1.0, theta) / (2.0 * np.sin(theta / 2.0) ** 2)
        return _GTable(-745.0, 1455.0 / 3.0, y0, hy, np.tile(np.log(g), (4, 1)))
    decade8 = math.log(10.0) / 8.0
    x0, x1 = i_lo * decade8, i_hi * decade8
    if calc.kinked:                                # no spectral accuracy: direct quadrature, coarser
        hx = math.log(10.0) / 4.0
        step = max(1, int(round(0.3 / hy)))
        theta_c = theta[::step]
        nx = max(4, int(math.ceil((x1 - x0) / hx)) + 1)
        xs = x0 + hx * np.arange(nx)
        qq, tt = np.meshgrid(np.exp(xs), theta_c, indexing="ij")
        g = calc.gap(qq, tt) / (qq * 2.0 * np.sin(tt / 2.0) ** 2)
        return _GTable(x0, hx, y0, hy * step, np.log(g))
    hx = math.log(10.0) / 32.0
    nx = max(4, int(math.ceil((x1 - x0) / hx)) + 1)
    xs = x0 + hx * np.arange(nx)
    values = np.array([np.log(_g_polar(calc, math.exp(xv), theta)) for xv in xs])
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
    cubic interpolation); the correlation map uses a table of ``log G(q, theta)``,
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
    calc = _calculus(activation)
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
    log_m2, log_dphi2, slope = _moment_tables(calc.act.name, calc.act.key)
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
        table = _g_table(calc.act.name, calc.act.key, i_lo, max(i_hi, i_lo + 3))

        # 2. correlations: iterate delta = 1 - c with q
        q = cov(sw2, q0, sb2)
        # q_1 (1 - c_1) = sigma_w^2 q0 (1 - c0)
        delta = cov(sw2, q0 * (1.0 - c0), 0.0) / q
        inside = np.ones(SW.shape, dtype=bool)
        for _ in range(depth - 1):
            inside &= table.covers(q) | calc.homogeneous
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
            for _ in range(52):                        # sigma_w^2 G(q*, theta*) = 1
                mid = 0.5 * (y_lo + y_hi)
                pos = s2 * table(qs, np.exp(mid))[0] > 1
                y_lo, y_hi = np.where(pos, mid, y_lo), np.where(pos, y_hi, mid)
            theta_s = np.exp(0.5 * (y_lo + y_hi))
            G, dlogG = table(qs, theta_s)
            # chi_c = sigma_w^2 E[phi' phi'] = sigma_w^2 (G + tan(theta/2) dG/dtheta), with sigma_w^2 G = 1
            c_star[chaotic] = np.where(below, 1.0, np.cos(theta_s))
            chi_c[chaotic] = np.where(below, chi1_[chaotic], s2 * G * (1.0 + np.tan(theta_s / 2) / theta_s * dlogG))
        nonfinite = ~finite
        c_star[nonfinite], chi_c[nonfinite] = np.nan, np.nan
    meta = {"table_log_q": [table.x0, table.x1], "theta_min": _THETA_MIN}
    return PhaseDiagram(calc.act.name, sw, sb, depth, float(c0), float(q0), q_star, chi1_, chi_q, _xi(chi_q),
                        c_star, chi_c, _xi(chi_c), q_depth, c_depth, inside, meta)
