"""tanh: its Gaussian second moment, variance-preserving gain, and what PyTorch's gain 5/3 does.

``E[tanh(sqrt(q) z)^2]`` has no closed form. This module gives

* its small-``q`` series from the Taylor series of ``tanh^2`` and the Gaussian
  moments ``E[z^{2k}] = (2k-1)!!`` (asymptotic, not convergent:
  :func:`tanh_second_moment_series`);
* its value at ``q = 1`` to 25 digits by mpmath quadrature
  (:func:`tanh_second_moment_unit`) and the gain ``1/sqrt`` of it;
* the variance fixed point of the q-map for a given gain and ``chi_1`` there
  (:func:`tanh_fixed_point`), which is what the 5/3 convention buys and costs.

Examples
--------
>>> from sigprop.symbolic.tanh import tanh_second_moment_series, tanh_second_moment_unit
>>> tanh_second_moment_series(3).expr
17*q**3/3 - 2*q**2 + q
>>> round(tanh_second_moment_unit().value, 13)
0.3942944903978
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..activations import DEFAULT_SATURATION_THRESHOLD, get_activation, x
from ._base import Derivation, numeric_function

q = sp.Symbol("q", positive=True)


@functools.lru_cache(maxsize=None)
def tanh_second_moment_series(order: int = 6) -> Derivation:
    """``E[tanh(sqrt(q) z)^2] = q - 2 q^2 + 17/3 q^3 - ...`` to ``q^order``; ``numeric(q)``.

    Each ``x^{2k}`` of the Taylor series of ``tanh(x)^2`` becomes ``q^k (2k-1)!!``.
    The Taylor series converges only for ``|x| < pi/2`` while ``z`` is unbounded, so
    the result is an asymptotic series: the coefficients grow factorially and, at any
    fixed ``q > 0``, adding terms eventually makes it worse.

    Examples
    --------
    >>> d = tanh_second_moment_series(2)
    >>> float(d.numeric(0.01))
    0.0098
    """
    if order < 1:
        raise ValueError(f"series order must be >= 1, got {order}")
    taylor = sp.series(sp.tanh(x)**2, x, 0, 2 * order + 1).removeO()
    coeffs = [taylor.coeff(x, 2 * k) for k in range(1, order + 1)]
    # E[(sqrt(q) z)^{2k}] = q^k (2k - 1)!!
    terms = [cf * sp.factorial2(2 * k - 1) * q**k for k, cf in enumerate(coeffs, start=1)]
    expr = sp.Add(*terms)
    ratios = [abs(terms[k + 1].coeff(q, k + 2) / terms[k].coeff(q, k + 1)) for k in range(len(terms) - 1)]
    steps = (
        ("Taylor series of $\\tanh^2$ (sympy):", sp.Eq(sp.tanh(x)**2, taylor + sp.Order(x**(2 * order + 2)))),
        ("Replace $x^{2k}$ by $E[(\\sqrt{q} z)^{2k}] = q^k (2k-1)!!$:",
         sp.Eq(sp.Symbol(r"E[\tanh(\sqrt{q} z)^2]"), expr + sp.Order(q**(order + 1)))),
        ("The ratios of successive coefficients grow without bound ("
         + ", ".join(f"{float(r):.3g}" for r in ratios)
         + "): $\\tanh$ has poles at $\\pm i\\pi/2$, so its series converges only for $|x| < \\pi/2$, "
         "and the Gaussian moments grow like $(2k-1)!!$. The series is asymptotic, not convergent: "
         "good for small $q$ (errors below), useless at $q \\approx 1$.", None),
    )
    return Derivation(f"tanh_second_moment_series_{order}", expr, (q,), numeric_function((q,), expr), steps=steps)


def _second_moment(q_: float) -> float:
    """``E[tanh(sqrt(q) z)^2]``: the q-map of :mod:`sigprop.theory` at ``sigma_w = 1, sigma_b = 0``."""
    from .. import theory
    return float(theory.q_map("tanh", 1.0, 0.0, q_))


@functools.lru_cache(maxsize=None)
def tanh_second_moment_unit() -> Derivation:
    """``E[tanh(z)^2]``, ``z ~ N(0, 1)``, to 25 digits (mpmath tanh-sinh quadrature).

    ``value`` = 0.39429449039784117...; ``expr`` a sympy Float with 25 digits.

    Examples
    --------
    >>> tanh_second_moment_unit().expr
    0.3942944903978411744164598
    """
    from .gains import gaussian_second_moment_numeric
    v = gaussian_second_moment_numeric(sp.tanh(x), dps=30)
    expr = sp.Float(v, 25)
    steps = (("No closed form; by mpmath's tanh-sinh quadrature at 30 digits (shown to 25):",
              sp.Eq(sp.Symbol(r"E[\tanh(z)^2]"), expr)),)
    return Derivation("tanh_second_moment_unit", expr, (), None, float(expr), steps,
                      note="mpmath quad, 30 working digits")


@functools.lru_cache(maxsize=None)
def tanh_gain() -> Derivation:
    """Variance-preserving gain of tanh, ``1/sqrt(E[tanh(z)^2]) = 1.5925374197...``.

    Examples
    --------
    >>> round(tanh_gain().value, 10)
    1.5925374197
    """
    m2 = tanh_second_moment_unit().expr
    expr = sp.Float(1 / sp.sqrt(m2), 20)
    steps = (("The gain that maps $q = 1$ to $q = 1$, $g = 1/\\sqrt{E[\\tanh(z)^2]}$:", sp.Eq(sp.Symbol("g"), expr)),)
    return Derivation("tanh_gain", expr, (), None, float(expr), steps)


@dataclass(frozen=True)
class TanhFixedPoint:
    """The q-map fixed point of a tanh network and what it implies.

    Attributes
    ----------
    gain, sigma_b : float
        ``sigma_w`` (the gain in Kaiming units) and the bias std.
    q_star : float
        Fixed point of ``q = gain^2 E[tanh(sqrt(q) z)^2] + sigma_b^2`` (0 if none is positive).
    chi1 : float
        ``gain^2 E[sech^4(sqrt(q*) z)]``.
    act_std : float
        ``sqrt(E[tanh(sqrt(q*) z)^2])``: the activations' standard deviation.
    saturated : float
        ``P(|tanh(h)| > threshold)`` for ``h ~ N(0, q*)``.
    threshold : float
    c_star : float
        Stable fixed point of the correlation map (1 when chi1 <= 1; to about 1e-14, the
        bisection of :func:`sigprop.theory.fixed_point_c`).
    """

    gain: float
    sigma_b: float
    q_star: float
    chi1: float
    act_std: float
    saturated: float
    threshold: float
    c_star: float


def tanh_fixed_point(gain: float = 5 / 3, sigma_b: float = 0.0, threshold: float = DEFAULT_SATURATION_THRESHOLD) -> TanhFixedPoint:
    """Variance fixed point ``q*`` of a deep tanh network with ``sigma_w = gain`` and ``chi_1`` there.

    Parameters
    ----------
    gain : float
        ``sigma_w`` in mean-field units (``std(W) = gain / sqrt(fan_in)``); 5/3 is PyTorch's.
    sigma_b : float
        Bias standard deviation.
    threshold : float
        Saturation threshold on ``|tanh(h)|``.

    Examples
    --------
    >>> fp = tanh_fixed_point(5 / 3)
    >>> round(fp.q_star, 6), round(fp.chi1, 6)
    (1.17848, 1.209831)
    """
    from scipy.special import erfc

    from .. import theory
    if not (gain > 0 and math.isfinite(gain)) or not (sigma_b >= 0 and math.isfinite(sigma_b)):
        raise ValueError(f"gain must be > 0 and sigma_b >= 0, got gain={gain}, sigma_b={sigma_b}")
    # q* of q = g^2 E[tanh(sqrt(q) z)^2] + sigma_b^2, chi_1 there and the stable c*: from the theory
    q_star = float(theory.fixed_point_q("tanh", gain, sigma_b))
    chi = float(theory.chi1("tanh", gain, sigma_b, q=q_star))
    c_star = float(theory.fixed_point_c("tanh", gain, sigma_b, q=q_star))
    act_std = math.sqrt(_second_moment(q_star)) if q_star > 0 else 0.0
    _, h_hi = get_activation("tanh").saturation_cutoffs(threshold)
    # P(|h| > h_hi) for h ~ N(0, q*)
    saturated = float(erfc(h_hi / math.sqrt(2 * q_star))) if q_star > 0 else 0.0
    return TanhFixedPoint(gain, sigma_b, q_star, chi, act_std, saturated, threshold, c_star)


@functools.lru_cache(maxsize=None)
def tanh_decay_gain_one() -> Derivation:
    """With gain 1 and no bias, ``q_l ~ 1/(2 l)``: from ``q' = q - 2 q^2 + O(q^3)``; ``numeric(l, q0)``.

    Examples
    --------
    >>> round(float(tanh_decay_gain_one().numeric(100, 1.0)), 6)
    0.004975
    """
    l, q0 = sp.symbols("l q_0", positive=True)
    Q = sp.Function("q")
    series = tanh_second_moment_series(2).expr
    # q_{l+1} - q_l = -2 q_l^2 + ...  ->  dq/dl = -2 q^2
    ode = sp.Eq(Q(l).diff(l), (series - q).subs(q, Q(l)))
    sol = sp.dsolve(ode, Q(l), ics={Q(0): q0})
    expr = sp.simplify(sol.rhs)
    steps = (("With gain 1 the q-map is $q' = E[\\tanh(\\sqrt{q} z)^2] = q - 2q^2 + O(q^3)$: 0 is the only fixed "
              "point, approached slowly. As a differential equation in depth:", ode),
             ("whose solution", sp.Eq(Q(l), expr)),
             ("decays like $1/(2l)$: a power law, not exponentially.", None))
    return Derivation("tanh_decay_gain_one", expr, (l, q0), numeric_function((l, q0), expr), steps=steps)


def iterate_q_map(gain: float, depth: int, q0: float = 1.0, sigma_b: float = 0.0) -> np.ndarray:
    """``q_1 .. q_depth`` of the tanh q-map of :mod:`sigprop.theory`, from ``q_0``.

    Examples
    --------
    >>> np.round(iterate_q_map(1.0, 2), 6).tolist()
    [0.394294, 0.23645]
    """
    from .. import theory
    out, q_ = [], float(q0)
    for _ in range(int(depth)):
        q_ = float(theory.q_map("tanh", gain, sigma_b, q_))
        out.append(q_)
    return np.array(out)
