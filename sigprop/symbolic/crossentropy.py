"""Expected cross-entropy of a softmax classifier at initialisation.

With ``V`` classes and logits ``l_j = s z_j``, ``z_j`` i.i.d. ``N(0, 1)``, the loss on
target ``y`` is ``L = log sum_j exp(l_j) - l_y``. Its expectation

* is exactly ``ln V`` at ``s = 0`` (uniform prediction: :func:`chance_loss`),
* grows as ``ln V + s^2 (V - 1)/(2V) + O(s^4)`` for small ``s``
  (:func:`initial_loss_series`, derived with sympy to any even order), and
* is computed for any ``s`` by :func:`expected_initial_loss` from an exact
  one-dimensional representation (below).

Examples
--------
>>> from sigprop.symbolic.crossentropy import chance_loss, expected_initial_loss
>>> float(chance_loss().numeric(27))
3.295836866004329
>>> round(float(expected_initial_loss(27, 0.0)), 12)
3.295836866004
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from sympy.utilities.iterables import multiset_partitions

from ._base import Derivation, numeric_function

V = sp.Symbol("V", positive=True, integer=True)
s = sp.Symbol("s", nonnegative=True)


@functools.lru_cache(maxsize=None)
def chance_loss() -> Derivation:
    """``ln V``: the cross-entropy of a uniform prediction over ``V`` classes; ``numeric(V)``.

    Examples
    --------
    >>> chance_loss().expr
    log(V)
    """
    p_uniform = sp.exp(0) / (V * sp.exp(0))
    expr = -sp.log(p_uniform)
    expr = sp.expand_log(expr, force=True)
    steps = (("With all logits equal (for example all 0, the limit $s \\to 0$) the softmax is uniform:",
              sp.Eq(sp.Symbol("p_y"), p_uniform)),
             ("so the loss of every example is", sp.Eq(sp.Symbol("L"), expr)),
             ("For the 27 characters of the names data set (26 letters and the end token) "
              f"$\\ln 27 = {float(expr.subs(V, 27)):.15f}$.", None))
    return Derivation("chance_loss", expr, (V,), numeric_function((V,), expr), steps=steps)


def _gaussian_moment(k: int):
    """``E[z^k]`` for ``z ~ N(0, 1)``: ``(k - 1)!!`` for even ``k``, else 0."""
    return sp.S.Zero if k % 2 else sp.factorial2(k - 1)


def _expect_product(orders: tuple):
    """``E[prod_m mu_{k_m}]`` with ``mu_k = (1/V) sum_j z_j^k`` (z_j i.i.d. N(0,1)), exactly in ``V``.

    ``sum over index tuples`` = sum over set partitions of the factors into equal-index
    blocks: a partition with ``b`` blocks has ``V (V-1) ... (V-b+1)`` index assignments.
    """
    r = len(orders)
    total = sp.S.Zero
    for blocks in multiset_partitions(list(range(r))):
        term = sp.ff(V, len(blocks))
        for block in blocks:
            term *= _gaussian_moment(sum(orders[m] for m in block))
        total += term
    return sp.factor(total / V**r)


@functools.lru_cache(maxsize=None)
def initial_loss_series(order: int = 4) -> Derivation:
    """Small-``s`` expansion of ``E[L]`` up to ``s^order`` (even), exact in ``V``; ``numeric(V, s)``.

    ``log sum_j e^{s z_j} = ln V + log(1 + sum_k s^k mu_k / k!)`` with the empirical
    moments ``mu_k = (1/V) sum_j z_j^k``; the log is expanded in ``s`` by sympy and
    the expectation of each product of ``mu``'s is exact (set partitions of indices).

    Examples
    --------
    >>> d = initial_loss_series(2)
    >>> sp.simplify(d.expr - (sp.log(V) + s**2 * (V - 1) / (2 * V)))
    0
    """
    if order < 2 or order % 2:
        raise ValueError(f"series order must be an even integer >= 2, got {order}")
    mu = sp.symbols(f"mu1:{order + 1}")
    w = sum(s**k * mu[k - 1] / sp.factorial(k) for k in range(1, order + 1))
    # log(1 + w) to O(s^{order+1})
    log_series = sp.expand(sp.series(sp.log(1 + w), s, 0, order + 1).removeO())
    poly = sp.Poly(log_series, *mu)
    expected = sp.S.Zero
    table = []
    for monom, coeff in poly.terms():
        orders = tuple(k + 1 for k, e in enumerate(monom) for _ in range(e))
        value = _expect_product(orders)
        table.append((sp.Mul(*(mu[k - 1] for k in orders)), value))
        expected += coeff * value
    expected = sp.collect(sp.expand(expected), s, sp.factor)
    expr = sp.log(V) + expected
    examples = sorted(table, key=lambda t: sp.default_sort_key(t[0]))[:8]
    # E[l_y] = 0, so E[L] = E[log sum_j exp(l_j)]
    steps = (
        ("The loss is $L = \\log \\sum_j e^{l_j} - l_y$ and $E[l_y] = 0$. With $l_j = s z_j$ and the empirical "
         "moments $\\mu_k = \\frac{1}{V}\\sum_j z_j^k$:",
         sp.Eq(sp.Symbol(r"\log \sum_j e^{s z_j}"), sp.log(V) + sp.log(1 + sp.Symbol(r"\sum_k s^k \mu_k / k!")))),
        (f"Expanding the logarithm to order $s^{{{order}}}$ (sympy):", sp.Eq(sp.Symbol("\\log(1 + w)"), log_series)),
        ("Each product of empirical moments has an exact expectation: summing over which indices coincide "
         "(set partitions; a partition into $b$ blocks has $V(V-1)\\cdots(V-b+1)$ index choices) with "
         "$E[z^{2m}] = (2m-1)!!$ and odd moments 0. For example:", None),
    ) + tuple(("", sp.Eq(sp.Symbol(f"E[{sp.latex(m)}]"), v)) for m, v in examples) + (
        ("so", sp.Eq(sp.Symbol("E[L]"), expr)),
        ("The series is exact in $V$ and asymptotic in $s$; it is accurate while $s \\lesssim 0.5$ (compare "
         "the table below with the exact numeric value).", None),
    )
    return Derivation(f"initial_loss_series_{order}", expr, (V, s), numeric_function((V, s), expr), steps=steps)


# ---------------------------------------------------------------------------------------------
# The exact expectation for any s
# ---------------------------------------------------------------------------------------------
def _gumbel_tail(w):
    """``1 - G(w) = 1 - exp(-e^w)``, accurate where it is tiny (w -> -inf)."""
    with np.errstate(over="ignore"):
        return -np.expm1(-np.exp(w))


@functools.lru_cache(maxsize=None)
def _nodes():
    from numpy.polynomial.hermite_e import hermegauss
    from numpy.polynomial.legendre import leggauss
    z, wz = hermegauss(160)
    t, wt = leggauss(200)
    return z, wz / np.sqrt(2 * np.pi), t, wt


_W_LO, _W_HI = -40.0, 4.0   # 1 - G(w) < 5e-18 below w_lo, G(w) < 5e-24 above w_hi


def _smoothed_tail(u, s_):
    """``D(u) = 1 - M(u) = E[1 - G(u + s z)]``, ``z ~ N(0, 1)``, for an array ``u``.

    Gauss-Hermite in ``z`` for ``s <= 1`` (the integrand varies on the scale 1/s >= 1);
    for ``s > 1`` the Gaussian in ``w = u + s z`` is wide, and Gauss-Legendre over the
    band where ``G`` moves, plus the normal tail where ``1 - G = 1``, is used.
    """
    from scipy.special import ndtr
    z, wz, t, wt = _nodes()
    u = np.asarray(u, dtype=float)
    if s_ <= 1.0:
        return _gumbel_tail(u[:, None] + s_ * z[None, :]) @ wz
    w = (_W_HI - _W_LO) / 2 * t + (_W_HI + _W_LO) / 2
    ww = wt * (_W_HI - _W_LO) / 2
    # D(u) = P(u + s z > w_hi) + int_{w_lo}^{w_hi} (1 - G(w)) N(w; u, s^2) dw
    density = np.exp(-0.5 * ((w[None, :] - u[:, None]) / s_) ** 2) / (np.sqrt(2 * np.pi) * s_)
    return ndtr((u - _W_HI) / s_) + (density * _gumbel_tail(w)[None, :]) @ ww


def _expected_loss_one(V_: int, s_: float, h: float = 0.02, shift: float = 0.0, s_shift: float | None = None) -> float:
    # E[log S] = int (G(u) - M(u)^V) du   (Frullani: log S = int_0^inf (e^{-t} - e^{-tS}) dt/t, t = e^u)
    # with one logit N(shift, s_shift^2) instead: int (G(u) - M(u)^(V-1) M_shifted(u + shift)) du
    shifted = shift != 0.0 or (s_shift is not None and s_shift != s_)
    s1 = s_ if s_shift is None else s_shift
    u_lo = -(max(s_, s1)**2 / 2 + np.log(V_) + 38.0 + max(shift, 0.0))   # tail < 1e-16 below
    u_hi = _W_HI + 9.0 * max(s_, s1) + 1.0 + max(-shift, 0.0)              # M(u) <= Phi((w_hi - u)/s) + 5e-24 above
    # nodes u_lo + k h (np.arange(lo, hi, h) spaces them by fl(lo + h) - lo, off by ~1e-15 near |lo| = 40)
    u = u_lo + h * np.arange(int(np.ceil((u_hi - u_lo) / h)) + 1)
    D = np.clip(_smoothed_tail(u, s_), 0.0, 1.0)
    # G - M^V = (1 - M^V) - (1 - G), each computed without cancellation near u -> -inf
    with np.errstate(divide="ignore"):
        if shifted:
            D1 = np.clip(_smoothed_tail(u + shift, s1), 0.0, 1.0)
            F = -np.expm1((V_ - 1) * np.log1p(-D) + np.log1p(-D1)) - _gumbel_tail(u)
        else:
            F = -np.expm1(V_ * np.log1p(-D)) - _gumbel_tail(u)
    # trapezoid rule: the integrand is smooth and negligible at both ends (spectral accuracy)
    return float(h * (F.sum() - 0.5 * (F[0] + F[-1])))


def expected_initial_loss(V, s):
    """Expected cross-entropy ``E[L]`` for ``V`` classes and i.i.d. ``N(0, s^2)`` logits, any ``s``.

    Computed from the exact representation (Frullani's integral for the logarithm,
    ``log S = int_0^inf (e^{-t} - e^{-t S}) dt / t``, and independence of the logits):

    ``E[L] = int_{-inf}^{inf} (G(u) - M_s(u)^V) du``,  ``G(u) = exp(-e^u)``,
    ``M_s(u) = E[G(u + s z)]``,

    a one-dimensional integral of one-dimensional Gaussian integrals, done by
    the trapezoid rule (step 0.02) over Gauss-Hermite / Gauss-Legendre inner
    quadratures. Halving the step and raising the node counts (240 Hermite,
    400 Legendre) changes the result by less than 3e-13 for ``V <= 10^4``,
    ``s <= 20``; it agrees with 2-D quadrature for ``V = 2`` to 1e-12 and with
    Monte Carlo for ``V = 27`` (tests/test_symbolic.py).

    Parameters
    ----------
    V : int
        Number of classes (>= 1).
    s : float or array_like
        Logit standard deviation(s) (>= 0).

    Returns
    -------
    float or numpy.ndarray
        ``E[L]`` in nats, the shape of ``s``.

    Examples
    --------
    >>> round(float(expected_initial_loss(2, 1.0)), 6)     # 2-D quadrature: 0.902661907720
    0.902662
    """
    if isinstance(V, bool) or not float(V).is_integer() or V < 1:
        raise ValueError(f"number of classes V must be an integer >= 1, got {V!r}")
    s_arr = np.asarray(s, dtype=float)
    if not np.all(np.isfinite(s_arr)) or np.any(s_arr < 0):
        raise ValueError(f"logit std s must be finite and >= 0, got {s!r}")
    if s_arr.size and np.max(s_arr) > 50:
        raise ValueError(f"logit std s must be <= 50 (the loss is then about s * E[max z]), got {np.max(s_arr)}")
    flat = [_expected_loss_one(int(V), float(v)) for v in s_arr.ravel()]
    out = np.array(flat, dtype=float).reshape(s_arr.shape)
    return out[()] if out.ndim == 0 else out


def expected_log_partition(V, s, shift=0.0, s_shift=None) -> float:
    """``E[log sum_j exp(l_j)]`` for ``V - 1`` logits i.i.d. ``N(0, s^2)`` and one ``N(shift, s_shift^2)``.

    The same Frullani representation as :func:`expected_initial_loss` with the shifted
    logit's factor ``M_{s_shift}(u + shift)`` in place of one ``M_s(u)``
    (``s_shift`` defaults to ``s``); at ``shift = 0, s_shift = s`` it is that function.
    A tied-embedding language model at init has such a logit: its input token's
    (:mod:`sigprop.symbolic.transformer`).

    Examples
    --------
    >>> a = expected_log_partition(27, 0.5, 0.0)
    >>> bool(abs(a - expected_initial_loss(27, 0.5)) < 1e-12)
    True
    """
    if isinstance(V, bool) or not float(V).is_integer() or V < 1:
        raise ValueError(f"number of classes V must be an integer >= 1, got {V!r}")
    s1 = s if s_shift is None else s_shift
    for name, v in (("s", s), ("s_shift", s1)):
        if not (np.isfinite(v) and 0 <= v <= 50):
            raise ValueError(f"logit std {name} must be in [0, 50], got {v!r}")
    if not (np.isfinite(shift) and abs(shift) <= 200):
        raise ValueError(f"shift must be finite and |shift| <= 200, got {shift!r}")
    return _expected_loss_one(int(V), float(s), shift=float(shift), s_shift=float(s1))
