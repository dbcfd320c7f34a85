"""A pre-LayerNorm GPT at initialisation: the pieces of its signal-propagation theory.

The network (``sigprop.gpt.model``)::

    x_0 = wte[idx] + wpe[t]
    a = x + attn(LN1(x)) Wo,     x' = a + phi(LN2(a) Wfc) Wfp,     logits = LNf(x_L) wte^T

with zero biases, LayerNorm gains 1 and weights ``N(0, s^2)`` stored ``(fan_in, fan_out)``.
The theory tracks, per token sequence, the ``T x T`` matrix ``K[t, t'] = E[x_t . x_t'] / d`` of
the residual stream (expectation over the initialisation, tokens fixed). What is derived here:

* :func:`layernorm_second_moment`: LayerNorm with its ``eps``. For a token whose ``d``
  coordinates are i.i.d. ``N(0, q)`` the variance LayerNorm computes is
  ``v = q chi^2_{d-1} / d``; its output has ``E[u^2] = E[v / (v + eps)]`` (not 1: at std 0.02
  the residual variance is ~1e-3 and ``eps = 1e-5`` costs a percent; at std 0.002 it is ~1e-5
  and half the signal). :func:`layernorm_expectation` integrates any such ``f(v)`` exactly
  over the chi-square law (generalised Gauss-Laguerre).
* :func:`linear_variance`: ``u W`` has per-coordinate second moment ``n_in s^2 E[u^2]``, and
  covariance ``s^2 (u_t . u_t')`` between positions: q, k, v are Gaussian *given* the
  LayerNorm outputs, with the positions' Gram matrix as covariance.
* :func:`attention_logit_variance`: ``Var(q . k / sqrt(n_h)) = q_q q_k``.
* :func:`uniform_attention_entropy`: near-uniform attention over ``n`` positions has entropy
  ``ln n - sigma^2 (mean of the diagonal of C - mean of C) / 2 + O(sigma^4)`` for logits of
  variance ``sigma^2`` whose keys have correlation matrix ``C`` over the prefix.
* :func:`prefix_mean_correlation`: the prefix assumption. Token ``s`` and ``s'`` share the
  token embedding when they are the same token, so at the first block two positions are
  correlated by ``rho = s_tok^2 / (s_tok^2 + s_pos^2)`` (= 1/2 at equal stds) when their
  tokens collide. With collision probability ``pi`` the mean correlation over an ``n``-position
  prefix is ``1/n + (1 - 1/n) pi rho``: the uniform-attention output variance does not fall as
  ``1/n`` but levels off at ``pi rho`` (real text: ``pi ~ 0.07`` for characters; i.i.d. tokens:
  ``1/V``).
* :func:`layernorm_jacobian_trace`: the backward pass through LayerNorm multiplies the gradient
  variance by ``(d - 2 + (1 - r)^2) / (d (v + eps))``, ``r = v / (v + eps)``: large when the
  residual stream is small (std 0.02: ~1/1e-3).
* :func:`tied_logit_shift`: the head is tied to the token embedding, so the logit of the
  *input* token is shifted by ``m = d s_e^2 (1 - 1/d) E[(v + eps)^(-1/2)]`` and the initial loss
  is ``E[log sum exp] - m P(next token = current token)``
  (:func:`sigprop.symbolic.crossentropy.expected_log_partition`).

Examples
--------
>>> from sigprop.symbolic.transformer import attention_logit_variance
>>> attention_logit_variance().expr
q_k*q_q
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation, numeric_function

v, eps, q, d = sp.symbols("v epsilon q d", positive=True)
n, n_h = sp.symbols("n n_h", positive=True, integer=True)
q_q, q_k, s_w, m2 = sp.symbols("q_q q_k s m_2", positive=True)
sigma2, c_diag, c_mean = sp.symbols("sigma^2 cbar_diag cbar", positive=True)
pi_, rho = sp.symbols("pi rho", nonnegative=True)
r = sp.Symbol("r", positive=True)


@functools.lru_cache(maxsize=None)
def layernorm_second_moment() -> Derivation:
    """``E[u^2] = E[v / (v + eps)]`` of a LayerNorm output; ``v = q chi^2_{d-1} / d``.

    ``numeric(v, epsilon)`` is the integrand; :func:`layernorm_expectation` integrates it.
    """
    k = d - 1
    x = sp.Symbol("x", positive=True)
    density = x ** (k / 2 - 1) * sp.exp(-x / 2) / (2 ** (k / 2) * sp.gamma(k / 2))
    f = v / (v + eps)
    expr = sp.Eq(sp.Symbol("E[u^2]"), sp.Integral(f.subs(v, q * x / d) * density, (x, 0, sp.oo)))
    limit = sp.limit(f.subs(v, q * (d - 1) / d), d, sp.oo)
    steps = (("LayerNorm subtracts the mean of the token's $d$ coordinates and divides by "
              "$\\sqrt{v + \\epsilon}$, $v$ their (biased) variance, so $\\sum_i u_i^2 = d\\,v / (v + \\epsilon)$ "
              "exactly and per coordinate", sp.Eq(sp.Symbol("u^2"), f)),
             ("For i.i.d. $N(0, q)$ coordinates $d v / q$ is chi-square with $d - 1$ degrees of freedom "
              "(the mean is removed), so", expr),
             ("For $d \\to \\infty$ ($v \\to q$):", sp.Eq(sp.Symbol("E[u^2]"), limit)),
             ("Any $E[f(v)]$ of this law is integrated exactly by generalised Gauss-Laguerre in "
              "$y = x/2$ (weight $y^{(d-3)/2} e^{-y}$); the theory uses $f = v/(v+\\epsilon)$, "
              "$\\sqrt{v/(v+\\epsilon)}$, $(v + \\epsilon)^{-1/2}$ and $1/(v + \\epsilon)$.", None),
             ("Between two positions with correlation $\\rho$ the LayerNorm outputs are "
              "$u_t \\cdot u_{t'}/d = \\hat\\rho\\,\\sqrt{v_t/(v_t+\\epsilon)}\\sqrt{v_{t'}/(v_{t'}+\\epsilon)}$ with "
              "$\\hat\\rho$ the sample correlation of $d - 1$ (centred) coordinate pairs, whose mean is "
              "$\\rho\\,(1 - (1 - \\rho^2)/(2(d-1))) + O(d^{-2})$ (Fisher 1915). Taking the product of the "
              "expectations of the separate factors, $E[u_t u_{t'}] = (1-1/d)K_{tt'}E[(v_t+\\epsilon)^{-1/2}]"
              "E[(v_{t'}+\\epsilon)^{-1/2}]$ instead, overstates it by about $2/d$ (3% at $d = 64$, measured: "
              "0.5054 against 0.4905 for two positions sharing a token embedding): the numerator and the norms "
              "are correlated.", None))
    return Derivation("layernorm_second_moment", expr, (v, eps), numeric_function((v, eps), f), steps=steps)


@functools.lru_cache(maxsize=None)
def _layernorm_integrands():
    return {"second_moment": layernorm_second_moment().numeric,
            "sqrt_second_moment": numeric_function((v, eps), sp.sqrt(v / (v + eps))),
            "inv_sqrt": numeric_function((v, eps), (v + eps) ** sp.Rational(-1, 2)),
            "inv": numeric_function((v, eps), 1 / (v + eps))}


@functools.lru_cache(maxsize=64)
def _laguerre(dof: int, n_nodes: int = 64):
    """Nodes ``y`` and weights for ``E[f(2 y)]``, ``2 y ~ chi^2_dof``: generalised Gauss-Laguerre;
    above 300 degrees of freedom (where Gamma overflows) Gauss-Legendre in the probability
    ``chi2.cdf`` instead (the law is then close to normal and smooth)."""
    from scipy.special import gammaln, roots_genlaguerre
    if dof <= 300:
        y, w = roots_genlaguerre(n_nodes, dof / 2 - 1)
        return y, w / np.exp(gammaln(dof / 2))
    from scipy.stats import chi2
    u, w = np.polynomial.legendre.leggauss(n_nodes)
    return chi2.ppf((u + 1) / 2, dof) / 2, w / 2


def layernorm_expectation(which: str, q_, d_: int, eps_: float) -> np.ndarray:
    """``E[f(v)]`` for ``v = q chi^2_{d-1} / d``, ``f`` one of ``"second_moment"`` (``v/(v+eps)``),
    ``"sqrt_second_moment"`` (``sqrt(v/(v+eps))``), ``"inv_sqrt"`` (``(v+eps)^-1/2``) or ``"inv"``
    (``1/(v+eps)``); ``q_`` an array.

    >>> float(layernorm_expectation("second_moment", 1.0, 10**6, 0.0))
    1.0
    """
    f = _layernorm_integrands()[which]
    q_ = np.asarray(q_, dtype=float)
    if d_ < 2:
        return f(q_, eps_)
    y, w = _laguerre(int(d_) - 1)
    vals = f(q_[..., None] * (2.0 * y / d_), eps_)
    return vals @ w


@functools.lru_cache(maxsize=None)
def linear_variance() -> Derivation:
    """``E[(u W)_j^2] = n_in s^2 m_2`` for ``W`` i.i.d. ``N(0, s^2)``, ``E[u_i^2] = m_2``; ``numeric(d, s, m_2)``."""
    i, j = sp.symbols("i j", integer=True)
    expr = d * s_w ** 2 * m2
    steps = (("$(uW)_j = \\sum_{i=1}^{n_{in}} u_i W_{ij}$ with independent zero-mean weights: the cross terms "
              "vanish and", sp.Eq(sp.Symbol("E[(uW)_j^2]"), expr)),
             ("Between positions, $E[(u_t W)_j (u_{t'} W)_j] = s^2\\, u_t \\cdot u_{t'}$: given the LayerNorm "
              "outputs, every column of $q$, $k$ and $v$ is Gaussian over the positions with covariance "
              "$s^2$ times their Gram matrix, exactly (not only for large $d$).", None))
    return Derivation("linear_variance", expr, (d, s_w, m2), numeric_function((d, s_w, m2), expr), steps=steps)


@functools.lru_cache(maxsize=None)
def attention_logit_variance() -> Derivation:
    """``Var(q . k / sqrt(n_h)) = q_q q_k`` for independent query and key weights; ``numeric(q_q, q_k)``."""
    term = q_q * q_k                                   # E[q_j^2 k_j^2] = E[q_j^2] E[k_j^2]
    expr = sp.simplify(n_h * term / n_h)
    steps = (("$z = \\sum_{j=1}^{n_h} q_j k_j / \\sqrt{n_h}$; the query and key weights are independent, "
              "so $E[q_j k_j q_{j'} k_{j'}] = 0$ for $j \\ne j'$ and $E[q_j^2 k_j^2] = q_q q_k$:",
              sp.Eq(sp.Symbol("Var(z)"), expr)),
             ("At GPT-2's std 0.02 and width $d$: $q_q = q_k = 0.0004\\, d\\, E[u^2]$, so for $d = 64$ the logits "
              "have std ~0.026 and attention is uniform to a few parts in $10^4$; at std 0.2 their std is ~2.6 "
              "and attention is nearly hard.", None))
    return Derivation("attention_logit_variance", expr, (q_q, q_k), numeric_function((q_q, q_k), expr),
                      steps=steps)


@functools.lru_cache(maxsize=None)
def uniform_attention_entropy() -> Derivation:
    """Entropy of softmax attention near uniform: ``ln n - sigma^2 (cbar_diag - cbar) / 2``;
    ``numeric(n, sigma^2, cbar_diag, cbar)``."""
    m = 4
    zs = sp.symbols(f"z1:{m + 1}")
    S = sum(sp.exp(z) for z in zs)
    H = sp.log(S) - sum(sp.exp(z) / S * z for z in zs)
    at0 = {z: 0 for z in zs}
    hess = sp.Matrix(m, m, lambda a, b: sp.simplify(sp.diff(H, zs[a], zs[b]).subs(at0)))
    expected = -(sp.eye(m) - sp.ones(m, m) / m) / m
    assert sp.simplify(hess - expected) == sp.zeros(m, m)
    expr = sp.log(n) - sigma2 * (c_diag - c_mean) / 2
    steps = (("The entropy of $p = \\mathrm{softmax}(z)$ over $n$ positions, "
              "$H = \\log \\sum_s e^{z_s} - \\sum_s p_s z_s$, has zero gradient at $z = 0$ and Hessian "
              f"(sympy, $n = {m}$)", sp.Eq(sp.Symbol("\\nabla^{2} H(0)"), hess, evaluate=False)),
             ("$= -(I - \\mathbf{1}\\mathbf{1}^T/n)/n$, so $H \\approx \\ln n - \\frac{1}{2n}\\sum_s (z_s - \\bar z)^2$. "
              "With logits of variance $\\sigma^2$ and key correlation matrix $C$ over the prefix, "
              "$E\\frac1n\\sum_s(z_s - \\bar z)^2 = \\sigma^2(\\bar C_{diag} - \\bar C)$:",
              sp.Eq(sp.Symbol("E[H]"), expr)),
             ("Correlated keys (repeated tokens, positions mixed by earlier attention) raise $\\bar C$ and so the "
              "entropy: a common shift of all logits does not change a softmax. Beyond small $\\sigma^2$ "
              "the theory evaluates $E[H]$ from the same Gaussian logits by sampling (below).", None))
    return Derivation("uniform_attention_entropy", expr, (n, sigma2, c_diag, c_mean),
                      numeric_function((n, sigma2, c_diag, c_mean), expr), steps=steps)


@functools.lru_cache(maxsize=None)
def entropy_fluctuation_gap() -> Derivation:
    """Mean entropy gained when the logits' correlation ``c`` fluctuates from network to network:
    ``3 sigma^4 Var(c) / 16`` for two positions (lowest order); ``numeric(sigma^2, Var_c)``."""
    z1, z2, delta, xi = sp.symbols("z_1 z_2 delta xi", real=True)
    c, cbar, var_c = sp.symbols("c cbar Var_c", real=True)
    S = sp.exp(z1) + sp.exp(z2)
    H = sp.log(S) - (sp.exp(z1) * z1 + sp.exp(z2) * z2) / S
    series = sp.expand(sp.series(H.subs({z1: delta / 2, z2: -delta / 2}), delta, 0, 6).removeO())
    series = sp.expand(sp.nsimplify(sp.simplify(series)))
    assert series == sp.log(2) - delta ** 2 / 8 + delta ** 4 / 64, series
    # delta = z_1 - z_2 ~ N(0, 2 sigma^2 (1 - c)): E[delta^k] = (2 sigma^2 (1 - c))^(k/2) E[xi^k], xi ~ N(0, 1)
    gauss = sp.exp(-xi ** 2 / 2) / sp.sqrt(2 * sp.pi)
    EH = sp.expand(sum(coef * (2 * sigma2 * (1 - c)) ** sp.Rational(k[0], 2)
                       * sp.integrate(xi ** k[0] * gauss, (xi, -sp.oo, sp.oo))
                       for k, coef in sp.Poly(series, delta).terms()))
    # average over c with mean cbar and variance Var_c: c -> cbar, c^2 -> cbar^2 + Var_c
    poly = sp.Poly(EH, c)
    averaged = sum(coef * {0: 1, 1: cbar, 2: cbar ** 2 + var_c}[k[0]] for k, coef in poly.terms())
    gap = sp.simplify(averaged - EH.subs(c, cbar))
    steps = (("Two positions: with $\\delta = z_1 - z_2$ the entropy of $\\mathrm{softmax}(z_1, z_2)$ is even in "
              "$\\delta$ (sympy series)", sp.Eq(sp.Symbol("H"), series + sp.O(delta ** 6))),
             ("For logits of variance $\\sigma^2$ and correlation $c$, $\\delta \\sim N(0, 2\\sigma^2(1 - c))$:",
              sp.Eq(sp.Symbol("E[H | c]"), sp.collect(EH, sigma2))),
             ("The first-order term is linear in $c$ (as the $n$-position formula above is in $C$), so it only sees "
              "the mean covariance; the fourth-order term is quadratic. When $c$ itself varies from network to "
              "network with mean $\\bar c$ and variance $\\mathrm{Var}_c$, the mean entropy exceeds the entropy at "
              "the mean covariance by", sp.Eq(sp.Symbol("E[H] - E[H | \\bar c]"), gap)),
             ("At GPT-2's std 0.02 ($\\sigma^2 \\approx 7\\cdot 10^{-4}$) this is below $10^{-7}$; at std 0.2 "
              "($\\sigma^2 \\approx 6.6$) the series is useless but the sign stays: one network's residual "
              "covariance after block 1 is set by its own few heads' nearly hard attention patterns. Measured "
              "(no residual scaling, i.i.d. tokens, block 2, $d = 64$, 4 heads, 128 networks): the LayerNorm "
              "outputs' correlation of a position pair has std 0.187 between networks around its mean 0.292; "
              "$d$ samples of the mean covariance (the Wishart spread) give 0.114. "
              "The numeric theory therefore carries a population of covariances, one per sampled network "
              "(`covariance='population'`), which gives 0.166: block 2's entropy is 1.508 from the mean "
              "covariance, 1.549 from the population, 1.565 +- 0.004 from the measured networks' own Gram "
              "matrices (fresh query and key weights: given the LayerNorm outputs the logits are exactly "
              "Gaussian, so this is exact), measured 1.560 +- 0.005. The rest (0.166 against 0.187) is the "
              "correlation between blocks that independent draws per block leave out: a network's "
              "embeddings are the same vectors in every block, and a head that attends hard copies them. "
              "It grows with depth when the residual scaling keeps each block's own contribution small "
              "(std 0.2 with residual scaling, block 12: spread measured 0.148, population 0.094, mean "
              "covariance 0.085), and the entropy of deep blocks stays 1-3% low (depth 48, block 31: 1.796 "
              "against 1.854 +- 0.014). Carrying each draw's sampled residual vectors from block to block "
              "(`covariance='carried'`; only the MLP's hidden layer stays mean-field) keeps it: depth 12, "
              "block 8, entropy 1.721 (population), 1.749 (carried), measured 1.765 +- 0.012.",
              None))
    return Derivation("entropy_fluctuation_gap", gap, (sigma2, var_c), numeric_function((sigma2, var_c), gap),
                      steps=steps)


@functools.lru_cache(maxsize=None)
def prefix_mean_correlation() -> Derivation:
    """Mean correlation over an ``n``-position prefix whose pairs collide with probability ``pi``
    (correlation ``rho`` when they do): ``1/n + (1 - 1/n) pi rho``; ``numeric(n, pi, rho)``."""
    s_tok, s_pos = sp.symbols("s_tok s_pos", positive=True)
    rho_same = s_tok ** 2 / (s_tok ** 2 + s_pos ** 2)
    expr = 1 / n + (1 - 1 / n) * pi_ * rho
    steps = (("At the first block $x_t = e_{idx_t} + p_t$; two positions share $e$ when their tokens are equal, "
              "so their correlation is", sp.Eq(rho, rho_same)),
             ("(1/2 at equal embedding stds) and 0 otherwise. Over the $n^2$ pairs of a prefix, $n$ are the diagonal "
              "and a fraction $\\pi$ (the collision probability) of the others collide:",
              sp.Eq(sp.Symbol("\\bar C"), expr)),
             ("Uniform attention then outputs variance $q_v \\bar C$ at position $t = n - 1$: "
              "$1/n$ for distinct tokens, levelling off at $\\pi\\rho$ for long prefixes. i.i.d. tokens "
              "uniform over $V$ have $\\pi = 1/V$; real text has $\\pi \\approx 0.07$ (characters), "
              "larger at short distances (doubled letters, spaces). The numeric theory "
              "(`sigprop.theory.transformer`) uses each sequence's exact equality pattern (`prefix='tokens'`), "
              "or this homogeneous model (`prefix='collision'`), or no repeats (`prefix='none'`, "
              "the assumption that real text breaks).", None))
    return Derivation("prefix_mean_correlation", expr, (n, pi_, rho), numeric_function((n, pi_, rho), expr),
                      steps=steps)


@functools.lru_cache(maxsize=None)
def layernorm_jacobian_trace() -> Derivation:
    """``tr(J^T J) / d = (d - 2 + (1 - r)^2) / (d (v + eps))``; ``numeric(d, r, v, epsilon)``."""
    a, b = sp.symbols("a b", real=True)
    w = sp.Matrix([a, b, -a - b])               # a LayerNorm output has zero mean (d = 3 example)
    dd = 3
    P = sp.eye(dd) - sp.ones(dd, dd) / dd
    M = P - w * w.T / dd
    r_w = (w.T * w)[0] / dd
    check = sp.simplify((M.T * M).trace() - ((dd - 2) + (1 - r_w) ** 2))
    assert check == 0
    expr = (d - 2 + (1 - r) ** 2) / (d * (v + eps))
    steps = (("$u = (x - \\bar x)/\\sigma$, $\\sigma^2 = v + \\epsilon$, has Jacobian "
              "$J = (P - w w^T/d)/\\sigma$ with $P = I - \\mathbf{1}\\mathbf{1}^T/d$ and $w = u$ "
              "($|w|^2 = d r$, $r = v/(v+\\epsilon)$, $Pw = w$). Then "
              "$\\mathrm{tr}\\,(P - ww^T/d)^2 = (d - 1) - 2r + r^2$ (checked by sympy at $d = 3$), and for a "
              "gradient with i.i.d. coordinates", sp.Eq(sp.Symbol("E|J^T g|^2 / (d E[g^2])"), expr)),
             ("With a small residual stream ($v \\sim 10^{-3}$ at std 0.02) the backward pass through each "
              "LayerNorm multiplies the branch's gradient by $\\sim 1/v$: the branches' small weights "
              "are compensated.", None))
    return Derivation("layernorm_jacobian_trace", expr, (d, r, v, eps), numeric_function((d, r, v, eps), expr),
                      steps=steps)


@functools.lru_cache(maxsize=None)
def tied_logit_shift() -> Derivation:
    """Mean of the input token's logit under a tied head; ``numeric(d, s, E[(v+eps)^-1/2])``."""
    s_e, inv_sigma = sp.symbols("s_e Ebar_sigma^{-1}", positive=True)
    expr = d * s_e ** 2 * (1 - 1 / d) * inv_sigma
    steps = (("$x_L = e_{idx} + (\\text{terms independent of } e_{idx} \\text{ or through random projections})$ and "
              "$\\mathrm{logit}_v = \\mathrm{LN}_f(x_L) \\cdot e_v$. For $v \\ne idx$ the logit has mean 0 and "
              "variance $s_e^2\\, d\\, E[u^2]$; for $v = idx$, $E[(e - \\bar e)\\cdot e] = d s_e^2 (1 - 1/d)$:",
              sp.Eq(sp.Symbol("m"), expr)),
             ("This first-order value is 3% high at $d = 32$ (numerator and norm share $|e|^2$); the theory "
              "uses the exact mean and variance, a three-dimensional integral over $|e_c|^2 \\sim s_e^2\\chi^2_{d-1}$, "
              "$e_c\\cdot r_c$ and $|r_c|^2$ (`input_logit_moments`, checked against Monte Carlo). "
              "The expected loss is $E[\\log\\sum_v e^{l_v}] - m\\,P(y = idx)$: one shifted logit in "
              "Frullani's integral (`crossentropy.expected_log_partition`), and $P(y = idx)$ is the batch's "
              "fraction of targets equal to their input (doubled characters; $1/V$ for i.i.d. tokens).", None))
    return Derivation("tied_logit_shift", expr, (d, s_e, inv_sigma), numeric_function((d, s_e, inv_sigma), expr),
                      steps=steps)


def input_logit_moments(d_: int, s_e: float, K_: float, eps_: float, n_nodes: int = 48):
    """``(E[z], Var z)`` of the input token's logit ``z = LN(e + r) . e`` (tied head), exactly.

    ``e`` ~ N(0, s_e^2 I_d) (the token's embedding), ``r`` ~ N(0, (K - s_e^2) I_d) the rest of
    the residual stream. Centred over coordinates, ``|e_c|^2 = s_e^2 A``, ``e_c . r_c =
    s_e s_r sqrt(A) Z``, ``|r_c|^2 = s_r^2 (Z^2 + B)`` with ``A ~ chi^2_{d-1}``, ``Z ~ N(0, 1)``,
    ``B ~ chi^2_{d-2}`` independent, and ``z = (|e_c|^2 + e_c . r_c) / sqrt(v + eps)``,
    ``v = |e_c + r_c|^2 / d``: a three-dimensional integral (Gauss-Laguerre x Hermite x Laguerre).
    The first-order formula ``m`` of :func:`tied_logit_shift` is its large-``d`` limit; at
    ``d = 32`` it is 3% high (the numerator and the norm share ``|e|^2``).

    >>> m, var = input_logit_moments(4096, 0.001, 2e-6, 0.0)    # large d: the first-order m
    >>> round(m / (4096 * 1e-6 / 2e-6 ** 0.5), 2)
    1.0
    """
    s_r2 = max(K_ - s_e ** 2, 0.0)
    ya, wa = _laguerre(d_ - 1, n_nodes)
    yb, wb = _laguerre(max(d_ - 2, 1), n_nodes)
    from numpy.polynomial.hermite_e import hermegauss
    zz, wz = hermegauss(n_nodes)
    wz = wz / np.sqrt(2 * np.pi)
    A = (2 * ya)[:, None, None]
    Z = zz[None, :, None]
    Bc = (2 * yb)[None, None, :] if d_ > 2 else np.zeros((1, 1, 1))
    ee = s_e ** 2 * A
    er = s_e * np.sqrt(s_r2) * np.sqrt(A) * Z
    rr = s_r2 * (Z ** 2 + Bc)
    z = (ee + er) / np.sqrt((ee + 2 * er + rr) / d_ + eps_)
    w = wa[:, None, None] * wz[None, :, None] * (wb[None, None, :] if d_ > 2 else 1.0)
    m = float(np.sum(w * z))
    return m, float(np.sum(w * z * z)) - m * m


def all_derivations() -> list:
    """The derivations of this module, in document order."""
    return [layernorm_second_moment(), linear_variance(), attention_logit_variance(), uniform_attention_entropy(),
            entropy_fluctuation_gap(), prefix_mean_correlation(), layernorm_jacobian_trace(), tied_logit_shift()]
