"""Gains: the weight scale that keeps the forward variance fixed, and SELU's self-normalising constants.

For ``z ~ N(0, 1)`` the variance-preserving gain of an activation is
``g = 1 / sqrt(E[phi(z)^2])``: with ``Var(W) = g^2 / n_in`` a layer fed unit-variance
pre-activations produces unit-variance pre-activations (see
:func:`sigprop.symbolic.recursions.forward_variance`).

* Closed forms come from :func:`sigprop.symbolic.kernels.symbolic_moments`
  (piecewise polynomial/exponential activations and erf): ReLU ``sqrt(2)``,
  leaky ReLU ``sqrt(2/(1+a^2))``, linear 1, SELU 1.
* Everything else (tanh, GELU, ...) is integrated numerically with mpmath's
  tanh-sinh quadrature at 25 digits (scipy's adaptive quadrature as a fallback
  for expressions mpmath cannot evaluate); ``.expr`` is then a sympy Float.

Examples
--------
>>> from sigprop.symbolic.gains import variance_preserving_gain
>>> variance_preserving_gain("relu").expr
sqrt(2)
>>> round(variance_preserving_gain("tanh").value, 10)
1.5925374197
"""
from __future__ import annotations

import functools

import sympy as sp

from ..activations import get_activation, x
from ._base import Derivation

z = sp.Symbol("z", real=True)

#: Digits of the SELU constants.
SELU_DIGITS = 30


@functools.lru_cache(maxsize=None)
def _selu_moments():
    """``E[selu(z)]`` and ``E[selu(z)^2]``, ``z ~ N(0, 1)``, in the symbols ``lam``, ``alpha``."""
    from ..activations import _FAMILIES
    from .kernels import gaussian_expectation
    lam, alpha = sp.Symbol("lam", real=True), sp.Symbol("alpha", real=True)
    selu = _FAMILIES["selu"].build(lam=lam, alpha=alpha)
    mean = gaussian_expectation(selu, sp.S.One)
    second = gaussian_expectation(selu**2, sp.S.One)
    return lam, alpha, selu, mean, second


@functools.lru_cache(maxsize=None)
def selu_constants() -> dict:
    """SELU's ``lambda`` and ``alpha`` from its fixed point ``E[selu(z)] = 0``, ``E[selu(z)^2] = 1``.

    The two Gaussian integrals are done by sympy piece by piece (closed forms in
    ``erfc``), and the pair of equations is solved by ``nsolve`` at 40 digits.

    Returns
    -------
    dict
        ``{"lambda": sympy.Float, "alpha": sympy.Float}`` with 30 significant digits.

    Examples
    --------
    >>> k = selu_constants()
    >>> float(k["lambda"]), float(k["alpha"])
    (1.0507009873554805, 1.6732632423543772)
    """
    lam, alpha, _, mean, second = _selu_moments()
    # E[selu] = lam * (...) = 0 does not depend on lam: solve alpha from it, then lam from E[selu^2] = 1
    mean_over_lam = sp.expand(mean / lam)
    sol = sp.nsolve([mean_over_lam, second - 1], [lam, alpha], [1.05, 1.67], prec=SELU_DIGITS + 10)
    return {"lambda": sp.Float(sol[0], SELU_DIGITS), "alpha": sp.Float(sol[1], SELU_DIGITS)}


def selu_derivation() -> Derivation:
    """The SELU fixed-point equations and their solution (for the rendered document).

    ``expr`` is ``(lambda, alpha)`` as a sympy Tuple; ``value`` is None.
    """
    lam, alpha, selu, mean, second = _selu_moments()
    k = selu_constants()
    steps = (
        ("SELU is", sp.Eq(sp.Symbol(r"\mathrm{selu}(x)"), selu)),
        ("Its Gaussian moments for $z \\sim N(0, 1)$, integrated piece by piece by sympy:",
         sp.Eq(sp.Symbol(r"E[\mathrm{selu}(z)]"), mean)),
        ("", sp.Eq(sp.Symbol(r"E[\mathrm{selu}(z)^2]"), second)),
        ("Self-normalisation asks for the fixed point $(0, 1)$ of the (mean, second moment) map: "
         "$E[\\mathrm{selu}(z)] = 0$ and $E[\\mathrm{selu}(z)^2] = 1$. The first equation does not involve "
         "$\\lambda$ and fixes $\\alpha$; the second then fixes $\\lambda$. Solved by Newton's method "
         f"(sympy nsolve) at {SELU_DIGITS + 10} digits:",
         sp.Eq(lam, k["lambda"])),
        ("", sp.Eq(alpha, k["alpha"])),
    )
    return Derivation("selu_constants", sp.Tuple(k["lambda"], k["alpha"]), (), None, steps=steps,
                      note="Klambauer et al. (2017) report lambda = 1.0507009873554805, "
                           "alpha = 1.6732632423543772.")


# ---------------------------------------------------------------------------------------------
# Variance-preserving gains
# ---------------------------------------------------------------------------------------------
def gaussian_second_moment_numeric(expr, dps: int = 25):
    """``E[f(z)^2]`` for ``z ~ N(0, 1)`` by mpmath tanh-sinh quadrature at ``dps`` digits.

    ``expr`` is a sympy expression in :data:`sigprop.activations.x`. Returns an
    ``mpmath.mpf``, or None if mpmath cannot evaluate the expression.

    Examples
    --------
    >>> import sympy as sp
    >>> from sigprop.activations import x
    >>> float(gaussian_second_moment_numeric(x**2))   # E[z^4] = 3
    3.0
    """
    import mpmath as mp
    try:
        f = sp.lambdify(x, expr, "mpmath")
        with mp.workdps(dps):
            # split where Gaussian mass and kinks are: 0 and a few scales out
            cuts = [-mp.inf, -12, -8, -4, -2, -1, 0, 1, 2, 4, 8, 12, mp.inf]
            val = mp.quad(lambda t: f(t)**2 * mp.npdf(t), cuts)
            return +val
    except Exception:  # noqa: BLE001 - any failure to evaluate in mpmath means: use scipy instead
        return None


def _second_moment_scipy(act):
    """``E[phi(z)^2]`` by scipy's adaptive quadrature in float64 (fallback)."""
    import numpy as np
    from scipy.integrate import quad
    pdf = lambda t: np.exp(-t * t / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    f = lambda t: float(act.phi(np.array(t))) ** 2 * pdf(t)   # noqa: E731
    return sum(quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=400)[0]
               for lo, hi in ((-np.inf, 0.0), (0.0, np.inf)))


def variance_preserving_gain(activation) -> Derivation:
    """``g = 1 / sqrt(E[phi(z)^2])``, ``z ~ N(0, 1)``: the gain that keeps ``Var(h)`` at 1.

    Parameters
    ----------
    activation : str or Activation

    Returns
    -------
    Derivation
        ``expr`` exact where a closed form exists (``sqrt(2)`` for ReLU), else a
        sympy Float; ``value`` the float gain; ``note`` says how it was obtained.

    Examples
    --------
    >>> variance_preserving_gain("leaky_relu(a=0.2)").expr     # sqrt(2 / (1 + 0.2^2))
    5*sqrt(13)/13
    """
    act = get_activation(activation)
    return _gain_for(act.name, act.key)


@functools.lru_cache(maxsize=None)
def _gain_for(name: str, key: str) -> Derivation:
    from .kernels import _parameter_values, symbolic_moments
    act = get_activation(name)
    m2_symbol = sp.Symbol(r"E[\phi(z)^2]")
    sym = symbolic_moments(act)
    if sym is not None:
        m2_general = sym["m2"].subs(sp.Symbol("q", positive=True), 1)
        values = _parameter_values(act)
        note = "closed form (sympy)"
        if act.builtin and act.family == "selu" and _is_default_selu(act):
            # evaluate at the 30-digit constants: E[selu(z)^2] = 1 is the equation they solve
            k = selu_constants()
            values = {s: k["lambda" if s.name == "lam" else "alpha"] for s in act.param_symbols}
        m2 = m2_general.subs(values)
        if m2.has(sp.Float):
            m2 = sp.N(m2, SELU_DIGITS)
        if m2.is_Float and abs(m2 - 1) < sp.Float(10) ** (-(SELU_DIGITS - 5)):
            note = (f"closed form (sympy) at the {SELU_DIGITS}-digit constants: |E[phi(z)^2] - 1| < "
                    f"1e-{SELU_DIGITS - 5}, the condition the SELU constants solve, so g = 1")
            m2 = sp.S.One
        # g = 1 / sqrt(E[phi(z)^2])
        gain = sp.radsimp(1 / sp.sqrt(m2)) if m2.is_Rational else 1 / sp.sqrt(m2)
        # display with positive parameter symbols (sqrt(lam^2) = lam, not |lam|)
        pos = {p_: sp.Symbol(p_.name, positive=True) for p_ in act.param_symbols}
        steps = (("For", sp.Eq(sp.Symbol(r"\phi(x)"), act.expr_symbolic.subs(pos))),
                 ("and $z \\sim N(0, 1)$:", sp.Eq(m2_symbol, m2_general.subs(pos))),
                 ("so the variance-preserving gain $g = 1/\\sqrt{E[\\phi(z)^2]}$ is",
                  sp.Eq(sp.Symbol("g"), sp.simplify(1 / sp.sqrt(m2_general.subs(pos))))))
        if values and gain.free_symbols == set():
            at = ", ".join(f"{p_.name} = {act.params[p_.name]!r}" for p_ in act.param_symbols)
            steps += ((f"At {at}:", sp.Eq(sp.Symbol("g"), gain)),)
        return Derivation(f"gain[{name}]", gain, (), None, float(gain), steps, note)
    m2_mp = gaussian_second_moment_numeric(act.expr)
    if m2_mp is not None:
        m2_val = sp.Float(m2_mp, 20)
        note = "numeric: mpmath tanh-sinh quadrature at 25 digits (shown to 20)"
    else:
        m2_val = sp.Float(_second_moment_scipy(act), 15)
        note = "numeric: scipy adaptive quadrature, relative tolerance 1e-13"
    gain = 1 / sp.sqrt(m2_val)
    steps = (("For", sp.Eq(sp.Symbol(r"\phi(x)"), act.expr_symbolic)),
             ("and $z \\sim N(0, 1)$ (numerically):", sp.Eq(m2_symbol, m2_val)),
             ("so", sp.Eq(sp.Symbol("g"), gain)))
    return Derivation(f"gain[{name}]", gain, (), None, float(gain), steps, note)


def _is_default_selu(act) -> bool:
    k = selu_constants()
    p = act.params
    return p.get("lam") == float(k["lambda"]) and p.get("alpha") == float(k["alpha"])


def gain_table() -> list[dict]:
    """Derived variance-preserving gains beside PyTorch's conventional ``calculate_gain`` values.

    Returns
    -------
    list of dict
        One row per activation with keys ``activation``, ``m2`` (``E[phi(z)^2]``,
        sympy), ``gain`` (derived, sympy: symbolic in ``a`` for leaky ReLU),
        ``value`` (float, None when symbolic), ``pytorch`` (sympy or None when
        PyTorch uses the derived value), ``in_pytorch`` (False where PyTorch's
        ``calculate_gain`` has no value: it raises), ``note``.

    Examples
    --------
    >>> rows = {r["activation"]: r for r in gain_table()}
    >>> rows["relu"]["gain"], rows["tanh"]["pytorch"]
    (sqrt(2), 5/3)
    """
    from ..init import PYTORCH_NONLINEARITIES
    from .kernels import symbolic_moments
    rows = []
    for name in ("linear", "relu", "leaky_relu", "tanh", "selu", "sigmoid", "erf", "gelu", "swish", "softplus"):
        act = get_activation(name)
        if name == "leaky_relu":
            m2 = symbolic_moments(act)["m2"].subs(sp.Symbol("q", positive=True), 1)
            gain = sp.sqrt(sp.factor(1 / m2))
            rows.append(dict(activation="leaky_relu(a)", m2=m2, gain=gain, value=None, pytorch=None, in_pytorch=True,
                             note="closed form (sympy); PyTorch uses the same formula"))
            continue
        d = variance_preserving_gain(act)
        m2 = d.steps[1][1].rhs
        conv = act.conventional_gain
        pytorch = None if conv is None else sp.nsimplify(conv, rational=True)
        if pytorch is not None and d.expr.is_number and sp.simplify(pytorch - d.expr) == 0:
            pytorch = None
        rows.append(dict(activation=name, m2=m2, gain=d.expr, value=d.value, pytorch=pytorch,
                         in_pytorch=name in PYTORCH_NONLINEARITIES, note=d.note))
    return rows
