"""What the theory needs of an activation: its numeric forms, kinks, and Gaussian moments and
kernels, closed forms from :mod:`sigprop.symbolic.kernels` where sympy derived them and
quadrature (:mod:`.quadrature`) of the same integral otherwise."""
from __future__ import annotations

import functools
import math

import numpy as np
import sympy as sp

from ..activations import Activation, get_activation, x as _x
from .quadrature import bivariate_expectation, gaussian_expectation

class ActivationMoments:
    """Numeric forms, kinks and Gaussian moments/kernels of one activation.

    Closed forms derived in :mod:`sigprop.symbolic.kernels` are used where they exist;
    everything else is quadrature of the same integral.
    """

    def __init__(self, act: Activation):
        from ..symbolic.kernels import gaussian_kernels, gaussian_moments
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

    @functools.cached_property
    def scaling_limit(self):
        """``(a_plus, moments of leaky_relu(a_minus / a_plus))`` when ``phi(h) / h -> a_+ > 0`` as
        ``h -> +inf`` and ``-> a_-`` as ``h -> -inf`` (gelu, swish, softplus: ReLU), else None:
        at large ``q`` the activation acts as ``a_+ leaky_relu(a_-/a_+)``, whose kernels sympy
        derived in closed form (see :meth:`kernel_at_scale`)."""
        if self.closed_kernels is not None:
            return None
        try:
            phi = self.act.numeric_exprs()[0]
            a_plus, a_minus = sp.limit(phi / _x, _x, sp.oo), sp.limit(phi / _x, _x, -sp.oo)
            if not (a_plus.is_finite and a_minus.is_finite and a_plus.is_positive):
                return None
            a_plus, a_minus = float(a_plus), float(a_minus)
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            return None
        return a_plus, moments_of(f"leaky_relu(a={a_minus / a_plus!r})")

    def kernel_at_scale(self, q, c, m2, d2):
        """``E[phi(u1) phi(u2)]`` at variance ``q`` (scalar) from the closed form of the scaling
        limit, when ``phi`` is indistinguishable from it at this ``q``: its ``E[phi^2]`` (``m2``)
        and ``E[phi'^2]`` (``d2``) equal the limit's to rounding (2 ulps). The differences decay
        as ``1/q`` (``m2``, and the kernel) and ``1/sqrt(q)`` (``d2``), so this holds from about
        ``q = 1e33`` on for gelu. Otherwise None (use :meth:`kernel`)."""
        limit = self.scaling_limit
        if limit is None or not math.isfinite(q):
            return None
        a_plus, lim = limit
        s2 = a_plus * a_plus
        lim_m2, lim_d2 = s2 * float(lim.m2(q)), s2 * float(lim.dphi2(q))
        if abs(m2 - lim_m2) > 4e-16 * abs(m2) or abs(d2 - lim_d2) > 4e-16 * abs(d2):
            return None
        return s2 * float(lim.kernel(q, q, c))

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


_MOMENTS: dict = {}


def moments_of(activation) -> ActivationMoments:
    act = get_activation(activation)
    key = (act.name, act.key)
    if key not in _MOMENTS:
        _MOMENTS[key] = ActivationMoments(act)
    return _MOMENTS[key]
