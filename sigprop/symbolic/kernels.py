"""Closed-form Gaussian moments and kernels of activations, derived with sympy.

Mean-field theory needs, for a pre-activation ``u ~ N(0, q)``,

* the moments ``E[phi(u)]``, ``E[phi(u)^2]``, ``E[phi'(u)^2]`` (the q-map and chi_1), and
* for two pre-activations ``(u1, u2)`` with covariance ``[[q1, q12], [q12, q2]]`` the
  kernels ``E[phi(u1) phi(u2)]`` and ``E[phi'(u1) phi'(u2)]`` (the c-map).

Where the integral has a closed form this module derives it:

* piecewise activations whose pieces are polynomials times ``exp(a x)`` (linear,
  ReLU, leaky ReLU, SELU, a user's hard-tanh) are integrated piece by piece by
  sympy (:func:`gaussian_expectation`);
* ReLU's arc-cosine kernel and erf's arcsine kernel are derived from Price's
  theorem, ``d/dq12 E[f(u1) g(u2)] = E[f'(u1) g'(u2)]``: the derivative kernel
  is a Gaussian integral sympy can do, and one more integration in ``q12``
  gives the kernel.

Activations without a closed form (tanh, GELU, softplus, ...) get ``None`` here;
the numeric theory integrates those by Gauss-Hermite quadrature.

Examples
--------
>>> from sigprop.symbolic.kernels import gaussian_moments, relu_kernel
>>> gm = gaussian_moments("relu")
>>> gm.m2.expr
q/2
>>> float(gm.dphi2.numeric(3.0))
0.5
>>> round(float(relu_kernel().numeric(1.0, 1.0, 0.0)), 12)   # 1/(2 pi)
0.159154943092
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..activations import Activation, get_activation, x
from ._base import Derivation, numeric_function

#: Variance of the pre-activation ``u ~ N(0, q)``.
q = sp.Symbol("q", positive=True)
q1, q2 = sp.symbols("q1 q2", positive=True)
#: Correlation coefficient of two pre-activations.
c = sp.Symbol("c", real=True)
s11, s22 = sp.symbols("s11 s22", positive=True)
s12 = sp.Symbol("s12", real=True)
#: Leaky ReLU's negative slope (the same symbol the activation's expression uses).
a = sp.Symbol("a", real=True)
u = sp.Symbol("u", real=True)
_t = sp.Symbol("t", real=True)


class erfcx(sp.Function):
    """Scaled complementary error function ``exp(y^2) erfc(y)``: lets ``exp(q/2) erfc(sqrt(q/2))``
    be evaluated for large ``q`` without ``inf * 0`` (numeric use only)."""

    def _eval_rewrite_as_erfc(self, y, **kwargs):
        return sp.exp(y**2) * sp.erfc(y)


def _numeric(symbols, expr):
    """Lambdify after rewriting ``exp(y^2) erfc(y)`` products into ``erfcx(y)`` (overflow-free)."""
    from scipy.special import erfcx as erfcx_np
    stable = expr
    if expr.has(sp.erf, sp.erfc):
        stable = sp.expand(expr.rewrite(sp.erfc))
        stable = stable.replace(sp.erfc, lambda y: sp.exp(-y**2) * erfcx(y))
        stable = sp.powsimp(sp.expand(stable), combine="exp")
    return numeric_function(symbols, stable, modules=({"erfcx": erfcx_np}, "scipy", "numpy"))


# ---------------------------------------------------------------------------------------------
# Gaussian expectations of piecewise polynomial-times-exponential functions
# ---------------------------------------------------------------------------------------------
def _is_poly_exp(piece) -> bool:
    """True if ``piece`` is a sum of ``c x^k exp(a x)`` terms (c, a free of x): integrals sympy does fast."""
    for term in sp.Add.make_args(sp.expand(piece)):
        if not term.has(x):
            continue
        _, dep = term.as_independent(x, as_Add=False)
        for f in sp.Mul.make_args(dep):
            base, expo = f.as_base_exp()
            if f == 1 or f == x:
                continue
            if base == x and expo.is_Integer and expo > 0:
                continue
            if isinstance(f, sp.exp) and f.args[0].is_polynomial(x) and sp.degree(f.args[0], x) <= 1:
                continue
            return False
    return True


def _pieces(expr):
    """``expr`` as ``[(piece, lo, hi), ...]`` over disjoint real intervals, or None if some piece
    is outside the cheap class (then no symbolic integration is attempted)."""
    expr = sp.piecewise_fold(expr.rewrite(sp.Piecewise)) if expr.has(sp.Heaviside, sp.Max, sp.Min, sp.Abs) \
        else sp.piecewise_fold(expr)
    if expr.has(sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta):
        return None
    args = expr.args if isinstance(expr, sp.Piecewise) else ((expr, sp.true),)
    out, covered = [], sp.S.EmptySet
    for piece, cond in args:
        if cond.free_symbols - {x} or not _is_poly_exp(piece):
            return None
        region = cond.as_set().intersect(sp.S.Reals) - covered
        covered = covered | region
        for part in (region.args if isinstance(region, sp.Union) else (region,)):
            if part is sp.S.Reals:
                out.append((piece, -sp.oo, sp.oo))
            elif isinstance(part, sp.Interval):
                if part.measure != 0:
                    out.append((piece, part.start, part.end))
            elif part is not sp.S.EmptySet and not isinstance(part, sp.FiniteSet):
                return None
    return out


def gaussian_expectation(f, variance=q):
    """``E[f(u)]`` for ``u ~ N(0, variance)``, integrated piece by piece by sympy.

    Parameters
    ----------
    f : sympy.Expr
        A function of :data:`sigprop.activations.x` whose pieces are polynomials
        times ``exp(a x)`` (piecewise-linear activations, SELU, their squares and
        derivatives).
    variance : sympy.Expr
        ``q`` (a positive symbol, the default) or a number.

    Returns
    -------
    sympy.Expr or None
        The closed form, or None when ``f`` is outside the class sympy integrates
        quickly (no attempt is made, so this never hangs).

    Examples
    --------
    >>> from sigprop.activations import x
    >>> gaussian_expectation(x**2)
    q
    """
    pieces = _pieces(sp.sympify(f))
    if pieces is None:
        return None
    # E[f(u)] = sum over pieces of int_lo^hi f(u) exp(-u^2 / (2 q)) / sqrt(2 pi q) du
    density = sp.exp(-u**2 / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)
    total = sp.S.Zero
    for piece, lo, hi in pieces:
        integrand = sp.expand(piece.subs(x, u))
        for term in sp.Add.make_args(integrand):
            total += sp.integrate(term * density, (u, lo, hi))
    return _tidy(total)


def _tidy(e):
    """Light simplification (cheap; full ``simplify`` can be slow on erf expressions)."""
    e = sp.expand(e)
    if e.has(sp.erf, sp.erfc):
        return sp.expand(e.rewrite(sp.erfc))
    return sp.factor(e) if e.free_symbols else e


# ---------------------------------------------------------------------------------------------
# Moments E[phi(u)], E[phi(u)^2], E[phi'(u)^2] as functions of q
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianMoments:
    """Closed-form Gaussian moments of one activation as functions of ``q``.

    Attributes
    ----------
    activation : str
        Canonical activation name.
    mean, m2, dphi2 : Derivation
        ``E[phi(u)]``, ``E[phi(u)^2]``, ``E[phi'(u)^2]`` for ``u ~ N(0, q)``;
        each ``.numeric(q)`` is vectorised over numpy arrays.
    """

    activation: str
    mean: Derivation
    m2: Derivation
    dphi2: Derivation

    def __getitem__(self, key):
        if key not in ("mean", "m2", "dphi2"):
            raise KeyError(key)
        return getattr(self, key)

    def keys(self):
        return ("mean", "m2", "dphi2")


_MOMENT_TEXT = {
    "mean": r"E[\phi(u)]",
    "m2": r"E[\phi(u)^2]",
    "dphi2": r"E[\phi'(u)^2]",
}


@functools.lru_cache(maxsize=None)
def _symbolic_moments(family_key: tuple) -> dict | None:
    """Moments in ``q`` and the activation's parameter symbols (cached per family expression)."""
    srepr_phi, srepr_dphi = family_key
    phi, dphi = sp.sympify(srepr_phi), sp.sympify(srepr_dphi)
    if phi.has(sp.erf) and sp.simplify(phi - sp.erf(x)) == 0:
        return _erf_moments()
    out = {}
    for key, f in (("mean", phi), ("m2", phi**2), ("dphi2", dphi**2)):
        e = gaussian_expectation(f, q)
        if e is None:
            return None
        out[key] = e
    return out


def _erf_moments() -> dict:
    """erf's moments from its kernels at ``s11 = s22 = s12 = q`` (odd, so the mean is 0)."""
    at_q = {s11: q, s22: q, s12: q}
    return {"mean": sp.S.Zero,
            "m2": sp.simplify(erf_kernel().expr.subs(at_q)),
            "dphi2": sp.simplify(erf_derivative_kernel().expr.subs(at_q))}


def _family_key(act: Activation) -> tuple:
    return (sp.srepr(act.expr_symbolic), sp.srepr(act.derivative_symbolic))


def _parameter_values(act: Activation) -> dict:
    """Parameter symbol -> exact value (integers and short decimals as rationals, else 17 digits)."""
    out = {}
    for s, v in zip(act.param_symbols, act.param_values):
        r = sp.nsimplify(repr(v), rational=True)
        out[s] = r if (r.q < 10**6 and float(r) == v) else sp.Float(v, 17)
    return out


def symbolic_moments(activation) -> dict | None:
    """``{"mean", "m2", "dphi2"}`` in ``q`` with the activation's parameters left as symbols
    (leaky ReLU: ``m2 = (1 + a^2) q / 2``), or None without a closed form."""
    act = get_activation(activation)
    return _symbolic_moments(_family_key(act))


def gaussian_moments(activation) -> GaussianMoments | None:
    """Closed-form ``E[phi(u)]``, ``E[phi(u)^2]``, ``E[phi'(u)^2]`` for ``u ~ N(0, q)``.

    Parameters
    ----------
    activation : str or Activation
        e.g. ``"relu"``, ``"leaky_relu(a=0.2)"``, ``"erf"``.

    Returns
    -------
    GaussianMoments or None
        None for activations without a closed form (tanh, GELU, ...).

    Examples
    --------
    >>> gm = gaussian_moments("leaky_relu(a=0.2)")
    >>> gm.m2.expr
    13*q/25
    >>> gaussian_moments("tanh") is None
    True
    """
    act = get_activation(activation)
    return _moments_for(act.name, act.key)


@functools.lru_cache(maxsize=None)
def _moments_for(name: str, key: str) -> GaussianMoments | None:
    act = get_activation(name)
    sym = _symbolic_moments(_family_key(act))
    if sym is None:
        return None
    values = _parameter_values(act)
    parts = {}
    for k, e in sym.items():
        e_val = _tidy(e.subs(values)) if values else e
        steps = (("For", sp.Eq(sp.Symbol(r"\phi(x)"), act.expr_symbolic)),
                 ("and $u \\sim N(0, q)$:", sp.Eq(sp.Symbol(_MOMENT_TEXT[k]), e)))
        parts[k] = Derivation(f"{k}[{act.name}]", e_val, (q,), _numeric((q,), e_val), steps=steps)
    return GaussianMoments(act.name, parts["mean"], parts["m2"], parts["dphi2"])


# ---------------------------------------------------------------------------------------------
# Kernels from Price's theorem
# ---------------------------------------------------------------------------------------------
def _definite(f, var, lo, hi):
    """``int_lo^hi f d var`` as antiderivative differences (no convergence side conditions)."""
    F = sp.integrate(f, var)
    return sp.simplify(F.subs(var, hi) - F.subs(var, lo))


_PRICE = ("Price's theorem: for jointly Gaussian $(u_1, u_2)$ with covariance "
          "$\\begin{pmatrix} s_{11} & s_{12} \\\\ s_{12} & s_{22} \\end{pmatrix}$, "
          "$\\partial_{s_{12}} E[f(u_1) g(u_2)] = E[f'(u_1) g'(u_2)]$. At $s_{12} = 0$ the two are "
          "independent, so $E[f(u_1) g(u_2)] = E[f(u_1)] E[g(u_2)]$ there, and integrating the "
          "derivative kernel in $s_{12}$ from 0 gives the kernel.")


@functools.lru_cache(maxsize=None)
def _relu_derivation():
    r = sp.Symbol("r", positive=True)                 # r = sqrt(s11 s22)
    p00 = 1 / (2 * sp.pi * sp.sqrt(r**2 - _t**2))      # bivariate density at (0, 0) when s12 = t
    # P(u1 > 0, u2 > 0) = 1/4 + int_0^s12 p(0, 0) dt   (Price: d/ds12 E[H H] = E[delta delta])
    orthant = sp.Rational(1, 4) + _definite(p00, _t, 0, s12)
    mean_relu = gaussian_expectation(sp.Piecewise((0, x <= 0), (x, True)), q)   # sqrt(q / (2 pi))
    start = sp.simplify(mean_relu.subs(q, s11) * mean_relu.subs(q, s22)).subs(sp.sqrt(s11 * s22), r)
    # E[relu(u1) relu(u2)] = E[relu]^2 + int_0^s12 P(u1 > 0, u2 > 0) dt   (Price again)
    kernel_s = start + _definite(orthant.subs(s12, _t), _t, 0, s12)
    # s12 = c sqrt(q1 q2), r = sqrt(q1 q2)
    to_c = {s12: c * sp.sqrt(q1 * q2), r: sp.sqrt(q1 * q2)}
    kernel_c = sp.expand(kernel_s.subs(to_c))
    orthant_c = sp.simplify(orthant.subs(to_c))
    target_k = sp.sqrt(q1 * q2) / (2 * sp.pi) * (sp.sqrt(1 - c**2) + (sp.pi - sp.acos(c)) * c)
    target_p = (sp.pi - sp.acos(c)) / (2 * sp.pi)
    # asin(c) = pi/2 - acos(c) turns the derived forms into the conventional ones
    assert sp.simplify((kernel_c - target_k).rewrite(sp.acos)) == 0
    assert sp.simplify((orthant_c - target_p).rewrite(sp.acos)) == 0
    return dict(p00=p00, orthant=orthant, start=start, kernel_s=kernel_s, kernel=target_k,
                dkernel=target_p, r=r)


def _clip_c(f):
    """Wrap ``f(..., c)`` so rounding just outside [-1, 1] (c = 1 + 1e-16) is not a nan."""
    def call(*args):
        args = list(args)
        args[-1] = np.clip(np.asarray(args[-1], dtype=float), -1.0, 1.0)
        return f(*args)
    call.__doc__ = f.__doc__
    return call


def relu_kernel() -> Derivation:
    """Arc-cosine kernel ``E[relu(u1) relu(u2)] = sqrt(q1 q2)/(2 pi) (sqrt(1-c^2) + (pi - arccos c) c)``.

    ``(u1, u2)`` centred bivariate normal with variances ``q1, q2`` and correlation ``c``;
    ``numeric(q1, q2, c)`` (c clipped to [-1, 1]).

    Examples
    --------
    >>> k = relu_kernel()
    >>> round(float(k.numeric(2.0, 2.0, 1.0)), 12)     # c = 1: E[relu(u)^2] = q/2
    1.0
    """
    d = _relu_derivation()
    steps = (
        (_PRICE, None),
        ("With $f = g = \\mathrm{relu}$, $f' = H$ (step) and $H' = \\delta$, so the derivative of the "
         "orthant probability is the bivariate density at the origin ($r = \\sqrt{s_{11} s_{22}}$, $t = s_{12}$):",
         sp.Eq(sp.Symbol(r"\partial_{s_{12}} P(u_1 > 0, u_2 > 0)"), d["p00"])),
        ("At $s_{12} = 0$ the orthant probability is $1/4$; integrating (Sheppard's formula):",
         sp.Eq(sp.Symbol(r"E[H(u_1) H(u_2)]"), d["orthant"])),
        ("At $s_{12} = 0$, $E[\\mathrm{relu}(u_1)]E[\\mathrm{relu}(u_2)]$ "
         "(each $\\sqrt{s/(2\\pi)}$, from the piecewise Gaussian integral):",
         sp.Eq(sp.Symbol(r"E[\mathrm{relu}(u_1)\mathrm{relu}(u_2)]|_{s_{12}=0}"), d["start"])),
        ("Integrating $E[H(u_1)H(u_2)]$ in $s_{12}$ from 0:",
         sp.Eq(sp.Symbol(r"E[\mathrm{relu}(u_1)\mathrm{relu}(u_2)]"), d["kernel_s"])),
        ("With $s_{12} = c\\sqrt{q_1 q_2}$, $r = \\sqrt{q_1 q_2}$ and $\\arcsin c = \\pi/2 - \\arccos c$ "
         "(sympy checks the two forms are equal):",
         sp.Eq(sp.Symbol(r"E[\mathrm{relu}(u_1)\mathrm{relu}(u_2)]"), d["kernel"])),
    )
    return Derivation("relu_kernel", d["kernel"], (q1, q2, c), _clip_c(numeric_function((q1, q2, c), d["kernel"])),
                      steps=steps)


def relu_derivative_kernel() -> Derivation:
    """``E[relu'(u1) relu'(u2)] = P(u1 > 0, u2 > 0) = (pi - arccos c)/(2 pi)``; ``numeric(c)``.

    Examples
    --------
    >>> float(relu_derivative_kernel().numeric(0.0))
    0.25
    """
    d = _relu_derivation()
    steps = ((_PRICE, None),
             ("Sheppard's orthant probability, derived in the ReLU kernel (above):",
              sp.Eq(sp.Symbol(r"E[\mathrm{relu}'(u_1)\mathrm{relu}'(u_2)]"), d["dkernel"])),)
    return Derivation("relu_derivative_kernel", d["dkernel"], (c,),
                      _clip_c(numeric_function((c,), d["dkernel"])), steps=steps)


def leaky_relu_kernel() -> Derivation:
    """``E[l(u1) l(u2)]`` for leaky ReLU ``l(u) = relu(u) - a relu(-u)``:
    ``(1 + a^2) K(c) - 2 a K(-c)`` with ``K`` the arc-cosine kernel; ``numeric(q1, q2, c, a)``.

    Examples
    --------
    >>> round(float(leaky_relu_kernel().numeric(1.0, 1.0, 0.3, 1.0)), 12)   # a = 1 is linear: q12
    0.3
    """
    K = _relu_derivation()["kernel"]
    # (u1, -u2) has correlation -c, and (-u1, -u2) has the distribution of (u1, u2); acos(-c) = pi - acos(c)
    K_minus = K.subs(c, -c).subs(sp.acos(-c), sp.pi - sp.acos(c))
    scale = sp.sqrt(q1 * q2) / (2 * sp.pi)
    inner = _collect_factor(((1 + a**2) * K - 2 * a * K_minus) / scale, [sp.sqrt(1 - c**2), sp.acos(c)])
    expr = scale * inner
    steps = (("Write $\\mathrm{leaky}(u) = \\mathrm{relu}(u) - a\\,\\mathrm{relu}(-u)$; $(u_1, -u_2)$ has "
              "correlation $-c$ and $(-u_1, -u_2)$ the law of $(u_1, u_2)$, so with $K$ the arc-cosine kernel:",
              sp.Eq(sp.Symbol(r"E[\mathrm{leaky}(u_1)\mathrm{leaky}(u_2)]"),
                    (1 + a**2) * sp.Function("K")(c) - 2 * a * sp.Function("K")(-c))),
             ("Substituting $K$:", sp.Eq(sp.Symbol(r"E[\mathrm{leaky}(u_1)\mathrm{leaky}(u_2)]"), expr)))
    return Derivation("leaky_relu_kernel", expr, (q1, q2, c, a),
                      _clip_c_at(numeric_function((q1, q2, c, a), expr), 2), steps=steps)


def leaky_relu_derivative_kernel() -> Derivation:
    """``E[l'(u1) l'(u2)] = (1 + a^2) P(c) + 2 a P(-c)``, ``P(c) = (pi - arccos c)/(2 pi)``;
    ``numeric(c, a)``.

    Examples
    --------
    >>> float(leaky_relu_derivative_kernel().numeric(0.7, 1.0))   # a = 1 is linear: 1
    1.0
    """
    P = _relu_derivation()["dkernel"]
    P_minus = P.subs(c, -c).subs(sp.acos(-c), sp.pi - sp.acos(c))
    expr = _collect_factor((1 + a**2) * P + 2 * a * P_minus, [sp.acos(c)])
    steps = (("$\\mathrm{leaky}'(u) = H(u) + a H(-u)$, so with $P(c) = E[H(u_1)H(u_2)]$:",
              sp.Eq(sp.Symbol(r"E[\mathrm{leaky}'(u_1)\mathrm{leaky}'(u_2)]"), expr)),)
    return Derivation("leaky_relu_derivative_kernel", expr, (c, a),
                      _clip_c_at(numeric_function((c, a), expr), 0), steps=steps)


def _collect_factor(e, terms):
    """Collect ``e`` in ``terms`` and factor each coefficient (readable kernels)."""
    parts = sp.collect(sp.expand(e), terms, evaluate=False)
    return sp.Add(*(sp.factor(coeff) * term for term, coeff in parts.items()))


def _clip_c_at(f, index):
    def call(*args):
        args = list(args)
        args[index] = np.clip(np.asarray(args[index], dtype=float), -1.0, 1.0)
        return f(*args)
    call.__doc__ = f.__doc__
    return call


@functools.lru_cache(maxsize=None)
def _erf_derivation():
    Sigma = sp.Matrix([[s11, s12], [s12, s22]])
    # E[exp(-u^T u)] = det(Sigma^{-1} + 2 I)^{-1/2} / sqrt(det Sigma) = det(I + 2 Sigma)^{-1/2}
    det_form = sp.factor(((Sigma.inv() + 2 * sp.eye(2)).det() * Sigma.det()))
    D = sp.expand((sp.eye(2) + 2 * Sigma).det())
    assert sp.simplify(det_form - D) == 0
    # erf'(x) = 2/sqrt(pi) exp(-x^2)
    derf = sp.diff(sp.erf(x), x)
    dkernel = (2 / sp.sqrt(sp.pi))**2 / sp.sqrt(D)
    # E[erf(u1) erf(u2)] = 0 + int_0^s12 E[erf'(u1) erf'(u2)] dt   (erf is odd: zero at s12 = 0)
    A = sp.Symbol("A", positive=True)                 # A = (1 + 2 s11)(1 + 2 s22)
    integral = _definite(4 / sp.pi / sp.sqrt(A - 4 * _t**2), _t, 0, s12)
    A_val = sp.factor(D + 4 * s12**2)
    kernel = integral.subs(A, A_val)
    target = 2 / sp.pi * sp.asin(2 * s12 / sp.sqrt((1 + 2 * s11) * (1 + 2 * s22)))
    assert sp.simplify(kernel - target) == 0
    # one-variable check of the Gaussian identity: E[exp(-u^2)] = 1/sqrt(1 + 2 q)
    one_d = sp.simplify(sp.integrate(sp.exp(-u**2) * sp.exp(-u**2 / (2 * q)) / sp.sqrt(2 * sp.pi * q),
                                     (u, -sp.oo, sp.oo)))
    return dict(derf=derf, D=D, dkernel=dkernel, kernel=target, one_d=one_d, A=A_val)


def erf_kernel() -> Derivation:
    """``E[erf(u1) erf(u2)] = (2/pi) asin(2 s12 / sqrt((1 + 2 s11)(1 + 2 s22)))``;
    ``numeric(s11, s22, s12)`` with ``s`` the covariance entries.

    Examples
    --------
    >>> import math
    >>> v = float(erf_kernel().numeric(1.0, 1.0, 1.0))
    >>> abs(v - 2 / math.pi * math.asin(2 / 3)) < 1e-15
    True
    """
    d = _erf_derivation()
    steps = (
        (_PRICE, None),
        ("$\\mathrm{erf}'(x) = $", d["derf"]),
        ("so $E[\\mathrm{erf}'(u_1)\\mathrm{erf}'(u_2)] = \\frac{4}{\\pi} E[e^{-u^T u}]$, and completing the "
         "square, $E[e^{-u^T u}] = \\det(\\Sigma^{-1} + 2I)^{-1/2} \\det(\\Sigma)^{-1/2} = \\det(I + 2\\Sigma)^{-1/2}$ "
         "with", sp.Eq(sp.Symbol(r"\det(I + 2\Sigma)"), d["D"])),
        ("(in one variable sympy integrates it directly: $E[e^{-u^2}]$ for $u \\sim N(0, q)$ is)", d["one_d"]),
        ("Hence the derivative kernel:", sp.Eq(sp.Symbol(r"E[\mathrm{erf}'(u_1)\mathrm{erf}'(u_2)]"), d["dkernel"])),
        ("erf is odd, so the kernel is 0 at $s_{12} = 0$; integrating in $s_{12}$:",
         sp.Eq(sp.Symbol(r"E[\mathrm{erf}(u_1)\mathrm{erf}(u_2)]"), d["kernel"])),
    )
    return Derivation("erf_kernel", d["kernel"], (s11, s22, s12),
                      numeric_function((s11, s22, s12), d["kernel"]), steps=steps)


def erf_derivative_kernel() -> Derivation:
    """``E[erf'(u1) erf'(u2)] = (4/pi) / sqrt((1 + 2 s11)(1 + 2 s22) - 4 s12^2)``; ``numeric(s11, s22, s12)``.

    Examples
    --------
    >>> import math
    >>> abs(float(erf_derivative_kernel().numeric(0.0, 0.0, 0.0)) - 4 / math.pi) < 1e-15
    True
    """
    d = _erf_derivation()
    expr = 4 / sp.pi / sp.sqrt(d["A"] - 4 * s12**2)
    assert sp.simplify(expr - d["dkernel"]) == 0
    steps = (("Derived with the erf kernel (above):",
              sp.Eq(sp.Symbol(r"E[\mathrm{erf}'(u_1)\mathrm{erf}'(u_2)]"), expr)),)
    return Derivation("erf_derivative_kernel", expr, (s11, s22, s12),
                      numeric_function((s11, s22, s12), expr), steps=steps)


# ---------------------------------------------------------------------------------------------
# One interface for the c-map: kernels in (q1, q2, c)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianKernels:
    """``E[phi(u1) phi(u2)]`` and ``E[phi'(u1) phi'(u2)]`` as ``numeric(q1, q2, c)`` for one activation."""

    activation: str
    phi: Derivation
    dphi: Derivation


def gaussian_kernels(activation) -> GaussianKernels | None:
    """Closed-form kernels in ``(q1, q2, c)`` for linear, ReLU, leaky ReLU and erf; None otherwise.

    Examples
    --------
    >>> gk = gaussian_kernels("relu")
    >>> float(gk.dphi.numeric(1.0, 1.0, 1.0))
    0.5
    >>> gaussian_kernels("tanh") is None
    True
    """
    act = get_activation(activation)
    return _kernels_for(act.name, act.key)


@functools.lru_cache(maxsize=None)
def _kernels_for(name, key):
    act = get_activation(name)
    fam = act.family if act.builtin else None
    values = _parameter_values(act)
    if fam == "linear":
        k, dk = c * sp.sqrt(q1 * q2), sp.S.One
    elif fam == "relu":
        k, dk = relu_kernel().expr, relu_derivative_kernel().expr
    elif fam == "leaky_relu":
        k, dk = leaky_relu_kernel().expr.subs(values), leaky_relu_derivative_kernel().expr.subs(values)
    elif fam == "erf":
        to_c = {s11: q1, s22: q2, s12: c * sp.sqrt(q1 * q2)}
        k, dk = erf_kernel().expr.subs(to_c), erf_derivative_kernel().expr.subs(to_c)
    else:
        return None
    syms = (q1, q2, c)
    return GaussianKernels(name,
                           Derivation(f"kernel[{name}]", k, syms, _clip_c_at(numeric_function(syms, k), 2)),
                           Derivation(f"derivative_kernel[{name}]", dk, syms,
                                      _clip_c_at(numeric_function(syms, dk), 2)))
