"""Width scaling of initialisation and learning rate: the abc-parametrisation, SP and muP.

A tensor of a network of width ``n`` is parametrised (Yang & Hu 2021, "Tensor Programs IV";
Yang et al. 2022, "Tensor Programs V") as

    W = n^(-a) w,    w_0 ~ N(0, n^(-2b)),    learning rate eta n^(-c),

with exponents ``(a, b, c)`` per kind of tensor. Five kinds are told apart by which of their
dimensions grows with ``n``: input weights (fan_in fixed, fan_out ~ n), hidden weights (both ~ n),
output weights (fan_in ~ n, fan_out fixed), hidden biases (fan_out ~ n) and the output bias.

The derivation (:func:`mup_exponents`) counts powers of ``n``. Coordinates of activations
are ``Theta(n^0)``; a sum of ``m`` independent zero-mean terms of size ``s`` is ``sqrt(m) s``
(central limit), a sum of ``m`` correlated terms is ``m s`` (law of large numbers). An update
``Delta W`` is an outer product with the layer's input ``x`` (SGD) or a function of it that keeps
its sign (Adam), so ``Delta W x`` is a correlated sum. Requiring every layer's pre-activations to
be ``Theta(1)`` at initialisation and every layer's own update ``Delta W x`` to be ``Theta(1)``
after a step ("maximal update"), with the output stable, fixes ``b`` and ``c`` for any choice of
the multipliers ``a``; ``a = 0`` gives Table 3 of Tensor Programs V. The standard
parametrisation (SP) is Kaiming/LeCun initialisation of every layer and one learning rate for all.

Training code calls :func:`scalings`: per kind of tensor, the factors by which the multiplier,
the initial std and the learning rate change between a base width ``n0`` and width ``n``
(all 1 at ``n = n0``, so a model tuned at its base width is the same model in SP and muP).
:func:`attention_logit_scale` derives the 1/d (muP) vs 1/sqrt(d) (SP) scaling of attention logits.

Examples
--------
>>> from sigprop.symbolic.mup import abc_table
>>> abc_table("mup", "adam")["hidden_weight"]
(0, 1/2, 1)
>>> s = scalings("mup", "adam").numeric(4.0)   # width 4 x the base width
>>> dict(zip(TENSORS, s[:, 2].tolist()))["hidden_weight"]   # its learning rate / base learning rate
0.25
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation

#: The kinds of tensor, in the row order of :func:`scalings`.
TENSORS = ("input_weight", "hidden_weight", "output_weight", "hidden_bias", "output_bias")
PARAMETRIZATIONS = ("sp", "mup")
OPTIMIZERS = ("sgd", "adam")

#: For each kind: does (fan_in, fan_out) grow with n?  (A bias is a weight with fan_in 1 on input 1.)
_GROWS = {"input_weight": (False, True), "hidden_weight": (True, True), "output_weight": (True, False),
          "hidden_bias": (False, True), "output_bias": (False, False)}

n = sp.Symbol("n", positive=True)                 # width
r = sp.Symbol("r", positive=True)                 # n / n0, the width relative to the base width
gamma = sp.Symbol("gamma", real=True)             # -log_n of the output layer's entries, (a + b)_out
d = sp.Symbol("d", positive=True)                 # head dimension
alpha = sp.Symbol("alpha", real=True)             # attention logits are q.k / d^alpha


#: LaTeX subscripts of the kinds (symbol names such as ``a_{\\mathrm{hid}}`` print as they are).
_LABEL = {"input_weight": r"\mathrm{in}", "hidden_weight": r"\mathrm{hid}", "output_weight": r"\mathrm{out}",
          "hidden_bias": r"\mathrm{hb}", "output_bias": r"\mathrm{ob}"}


def _sym(kind, letter):
    return sp.Symbol(f"{letter}_{{{_LABEL[kind]}}}", real=True)


def _check(parametrization, optimizer):
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, got {parametrization!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")


def _size_exponents(kind, a, b, c, g_out, optimizer):
    """log_n of (a) the layer's pre-activation at init and (b) its own update ``Delta W x``.

    ``g_out`` is log_n of the coordinates of dL/dh at the layer's output (0 at the logits,
    -gamma at every hidden layer: dL/dx_L = W_out^T dL/dlogits has entries n^-gamma, and a hidden
    layer with (a + b) = 1/2 passes it down unchanged, a sum of n random terms of size n^-1/2)."""
    grows_in, _ = _GROWS[kind]
    m = 1 if grows_in else 0                      # log_n of fan_in
    # init: sum of n^m independent terms of size n^-(a+b) (a bias: one term)
    init = sp.Rational(m, 2) - (a + b)
    # entries of Delta W = n^-a Delta w: SGD Delta w = eta n^-c n^-a x (x) g, Adam Delta w = eta n^-c sign-like
    dW = -(2 * a + c) + g_out if optimizer == "sgd" else -(a + c)
    # Delta W x: a correlated sum of n^m terms
    update = m + dW
    return init, update


@functools.lru_cache(maxsize=None)
def mup_exponents(optimizer: str) -> Derivation:
    """The maximal-update exponents ``(a, b, c)`` of every kind of tensor, with the multipliers
    ``a`` left free.

    Requirements (per kind): pre-activations ``Theta(1)`` at initialisation (for the output layer:
    ``O(1)``, and ``W_out,0 Delta x_L``, a correlated sum of ``n`` terms because ``Delta x_L``
    follows ``W_out,0^T dL/dlogits``, must stay ``O(1)``: ``gamma >= 1``; muP takes the largest
    output initialisation that is stable, ``gamma = 1``), and the layer's own update
    ``Delta W x = Theta(1)``.

    Returns
    -------
    Derivation
        ``expr`` is a 5 x 3 ``sympy.Matrix`` (rows :data:`TENSORS`, columns ``a, b, c``) in the
        free symbols ``a_{kind}``; ``symbols`` are those ``a``'s; ``numeric`` is None
        (use :func:`scalings`).
    """
    from .render import latex
    _check("mup", optimizer)
    rows, steps = [], []
    steps.append(("Sizes are powers of the width $n$. Per kind of tensor, with $W = n^{-a} w$, "
                  "$w_0 \\sim N(0, n^{-2b})$ and learning rate $\\eta n^{-c}$, write $\\log_n$ of the size of "
                  "the pre-activation at initialisation and of the layer's own update $\\Delta W x$ after "
                  f"one {optimizer.upper()} step. Hidden gradients $\\partial L/\\partial h$ have entries "
                  "$n^{-\\gamma}$, where $\\gamma = (a + b)_{\\mathrm{out}}$.", None))
    a_syms = []
    for kind in TENSORS:
        a, b, c = (_sym(kind, s) for s in "abc")
        a_syms.append(a)
        g_out = 0 if kind.startswith("output") else -gamma
        init, update = _size_exponents(kind, a, b, c, g_out, optimizer)
        if kind == "output_weight":
            # output: not Theta(1) at init but the largest stable: a + b = gamma, and gamma = 1 below
            eqs = [sp.Eq(a + b, gamma), sp.Eq(update, 0)]
        elif kind == "output_bias":
            eqs = [sp.Eq(init, 0), sp.Eq(update, 0)]
        else:
            eqs = [sp.Eq(init, 0), sp.Eq(update, 0)]
        sol = sp.solve(eqs, [b, c], dict=True)[0]
        steps.append((f"**{kind.replace('_', ' ')}** (${_LABEL[kind]}$): init size $n^{{{latex(init)}}}$, "
                      f"update size $n^{{{latex(update)}}}$; setting both exponents to 0 "
                      "(output weights: $a + b = \\gamma$):",
                      sp.Tuple(sp.Eq(b, sol[b]), sp.Eq(c, sol[c]))))
        rows.append([a, sol[b], sol[c]])
    M = sp.Matrix(rows)
    steps.append(("Stability of the logits: $\\Delta x_L$ follows $W_{\\mathrm{out},0}^T \\partial L/\\partial "
                  "\\mathrm{logits}$, so $W_{\\mathrm{out},0} \\Delta x_L$ is a correlated sum of $n$ terms of size "
                  "$n^{-\\gamma}$: it is $O(1)$ only if $1 - \\gamma \\le 0$. muP takes the largest stable output "
                  "initialisation, $\\gamma = 1$ (any $\\gamma > 1$, even a zero output layer, also works):",
                  sp.Eq(gamma, 1)))
    M = M.subs(gamma, 1)
    steps.append(("The exponents $(a, b, c)$, rows input weight, hidden weight, output weight, hidden bias, "
                  "output bias:", M))
    shift = sp.Symbol("theta", real=True)
    shifted = M.subs({a_: a_ + shift for a_ in a_syms})
    steps.append(("The family is invariant under $(a, b, c) \\to (a + \\theta, b - \\theta, c - "
                  + ("2\\theta" if optimizer == "sgd" else "\\theta")
                  + ")$ (a multiplier moved into the weights changes nothing the network computes); "
                  "with $a = 0$ (no multipliers, Kaiming-style) the table of Tensor Programs V follows.",
                  sp.simplify(shifted - M)))
    return Derivation(name=f"mup_exponents_{optimizer}", expr=M, symbols=tuple(a_syms), steps=tuple(steps))


def _sp_exponents():
    """SP: Kaiming/LeCun init of every layer (Var = 1/fan_in: b = 1/2 where fan_in ~ n), biases
    Theta(1), no multipliers, one learning rate (c = 0) for every tensor and both optimisers."""
    rows = []
    for kind in TENSORS:
        grows_in, _ = _GROWS[kind]
        rows.append([sp.S.Zero, sp.Rational(1, 2) if grows_in else sp.S.Zero, sp.S.Zero])
    return sp.Matrix(rows)


@functools.lru_cache(maxsize=None)
def abc_matrix(parametrization: str, optimizer: str) -> sp.Matrix:
    """The exponents ``(a, b, c)`` (5 x 3, rows :data:`TENSORS`) with no multipliers (``a = 0``)."""
    _check(parametrization, optimizer)
    if parametrization == "sp":
        return _sp_exponents()
    der = mup_exponents(optimizer)
    return der.expr.subs({a_: 0 for a_ in der.symbols})


def abc_table(parametrization: str, optimizer: str) -> dict:
    """``{kind: (a, b, c)}`` as sympy Rationals (no multipliers).

    Examples
    --------
    >>> abc_table("mup", "sgd")["input_weight"]
    (0, 0, -1)
    """
    M = abc_matrix(parametrization, optimizer)
    return {k: tuple(M[i, j] for j in range(3)) for i, k in enumerate(TENSORS)}


@functools.lru_cache(maxsize=None)
def update_exponents(parametrization: str, optimizer: str) -> dict:
    """``{kind: log_n of its own update Delta W x}`` at a fixed base learning rate: 0 everywhere in
    muP; in SP the wide layers' updates grow with width (what a coordinate check measures)."""
    M = abc_matrix(parametrization, optimizer)
    g = M[TENSORS.index("output_weight"), 0] + M[TENSORS.index("output_weight"), 1]
    out = {}
    for i, kind in enumerate(TENSORS):
        g_out = 0 if kind.startswith("output") else -g
        out[kind] = _size_exponents(kind, M[i, 0], M[i, 1], M[i, 2], g_out, optimizer)[1]
    return out


@functools.lru_cache(maxsize=None)
def scalings(parametrization: str, optimizer: str) -> Derivation:
    """The factors that turn a model tuned at base width ``n0`` into one of width ``n = r n0``.

    Returns
    -------
    Derivation
        ``expr`` is a 5 x 3 matrix in ``r``: rows :data:`TENSORS`, columns
        (multiplier, initial std, learning rate), each ``r^-a``, ``r^-b``, ``r^-c``: the value at
        width ``n`` is the value at ``n0`` times the factor. ``numeric(r)`` returns it as a float
        array of shape (5, 3). ``r`` is the growing dimension of the tensor over its value at the
        base width: fan_in for hidden and output weights, fan_out for input weights and biases.
    """
    M = abc_matrix(parametrization, optimizer)
    F = M.applyfunc(lambda e: r ** (-e))
    f = sp.lambdify((r,), F, "numpy")

    def numeric(ratio):
        ratio = float(ratio)
        if not ratio > 0:
            raise ValueError(f"width ratio must be > 0, got {ratio}")
        return np.asarray(f(ratio), dtype=float).reshape(len(TENSORS), 3)

    steps = (("Factors relative to the base width $n_0$, $r = n / n_0$ (columns: multiplier, init std, "
              "learning rate):", F),)
    return Derivation(name=f"scalings_{parametrization}_{optimizer}", expr=F, symbols=(r,), numeric=numeric,
                      steps=steps)


def _gaussian_moment(k: int) -> int:
    """E[z^k], z ~ N(0, 1)."""
    return 0 if k % 2 else int(sp.factorial2(k - 1)) if k else 1


def _expect(poly_expr, zs):
    """E[expr] for a polynomial in independent standard normals ``zs``."""
    p = sp.Poly(sp.expand(poly_expr), *zs)
    total = sp.S.Zero
    for powers, coeff in p.terms():
        term = coeff
        for k in powers:
            term *= _gaussian_moment(k)
        total += term
    return sp.simplify(total)


@functools.lru_cache(maxsize=None)
def attention_logit_scale(parametrization: str) -> Derivation:
    """The scale ``d^-alpha`` of attention logits ``q.k d^-alpha`` over a head of dimension ``d``.

    One coordinate pair: ``q_i = s z_1``, ``k_i = s (rho z_1 + sqrt(1 - rho^2) z_2)``. The logit
    sums ``d`` such pairs: mean ``d rho s^2``, variance ``d s^4 (1 + rho^2)``. At initialisation
    queries and keys are independent (``rho = 0``): the logit is ``Theta(d^(1/2 - alpha))``, so SP's
    ``1/sqrt(d)``. Training correlates them (``rho = Theta(1)``, the same law of large numbers as
    any update): the logit is ``Theta(d^(1 - alpha))``, so muP's ``1/d``.

    Returns
    -------
    Derivation
        ``expr = d**(-alpha)`` with the derived ``alpha``; ``numeric(d)`` is the scale.
    """
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, got {parametrization!r}")
    rho = sp.Symbol("rho", real=True)
    s = sp.Symbol("s", positive=True)
    z1, z2 = sp.symbols("z_1 z_2", real=True)
    q = s * z1
    k = s * (rho * z1 + sp.sqrt(1 - rho ** 2) * z2)
    mean1 = _expect(q * k, (z1, z2))
    var1 = sp.simplify(_expect((q * k) ** 2, (z1, z2)) - mean1 ** 2)
    mean, var = d * mean1, d * var1              # independent coordinate pairs
    size_init = sp.log(sp.sqrt(var.subs(rho, 0)) * d ** (-alpha)).expand(force=True)
    size_trained = sp.log(mean * d ** (-alpha)).expand(force=True)
    # log_d of the size: the coefficient of log(d)
    expo_init = sp.expand(size_init).coeff(sp.log(d))
    expo_trained = sp.expand(size_trained).coeff(sp.log(d))
    which = expo_init if parametrization == "sp" else expo_trained
    a_val = sp.solve(sp.Eq(which, 0), alpha)[0]
    expr = d ** (-a_val)
    from ._base import numeric_function
    steps = (
        ("One coordinate pair of a query and a key with correlation $\\rho$: $q_i = s z_1$, "
         "$k_i = s(\\rho z_1 + \\sqrt{1-\\rho^2} z_2)$. Mean and variance of $q_i k_i$:",
         sp.Tuple(mean1, var1)),
        ("The logit $q \\cdot k\\, d^{-\\alpha}$ sums $d$ independent pairs. At initialisation ($\\rho = 0$) its "
         "size is $d^{e}$ with", sp.Eq(sp.Symbol("e_init"), expo_init)),
        ("After training has correlated queries and keys ($\\rho = \\Theta(1)$) its size is $d^{e}$ with",
         sp.Eq(sp.Symbol("e_trained"), expo_trained)),
        ("SP keeps the logits $\\Theta(1)$ at initialisation; muP keeps them $\\Theta(1)$ once training has "
         f"aligned queries and keys ({'SP' if parametrization == 'sp' else 'muP'}):", sp.Eq(alpha, a_val)),
    )
    return Derivation(name=f"attention_logit_scale_{parametrization}", expr=expr, symbols=(d,),
                      numeric=numeric_function((d,), expr), value=None, steps=steps)
