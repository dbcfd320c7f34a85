"""Layer-to-layer variance recursions, derived with sympy from independence.

The expectations are taken by a small exact engine, :func:`expectation`: a
polynomial in random symbols is expanded into monomials, and the expectation of
each monomial factors over independent groups (``E[W_i^2 x_i^2] = E[W_i^2] E[x_i^2]``).
A sum over ``n`` exchangeable units is handled by counting: ``E[(sum_i T_i)^2] =
n E[T_i^2] + n (n - 1) E[T_i T_j]`` (``i != j``), so the width stays a symbol.

Results (mean-field units: ``Var(W) = sigma_w^2 / n_in``, ``Var(b) = sigma_b^2``):

* :func:`forward_variance`  ``Var(y) = n_in Var(W) E[phi(h)^2] + Var(b)``
* :func:`backward_variance` ``Var(dL/dh_l) = n_{l+1} Var(W) E[phi'(h)^2] Var(dL/dh_{l+1})``
* :func:`covariance_map`    ``q_ab' = sigma_w^2 E[phi(u_a) phi(u_b)] + sigma_b^2``
* :func:`chi1`              ``chi_1 = sigma_w^2 E[phi'(u)^2]``
* :func:`xavier_compromise`, :func:`he_modes`, :func:`relu_depth_scaling`

Examples
--------
>>> from sigprop.symbolic.recursions import forward_variance
>>> d = forward_variance()
>>> d.expr
m2*n_in*var_w + var_b
>>> float(d.numeric(512, 2 / 512, 0.5, 0.0))
1.0
"""
from __future__ import annotations

import functools

import sympy as sp

from ._base import Derivation, numeric_function

n_in, n_out, n = sp.symbols("n_in n_out n", positive=True, integer=True)
var_w, var_b, var_g = sp.symbols("var_w var_b var_g", nonnegative=True)
m1, m2, dphi2 = sp.symbols("m1 m2 dphi2", real=True)
sigma_w2, sigma_b2 = sp.symbols("sigma_w2 sigma_b2", nonnegative=True)
cross_moment = sp.Symbol("cross_moment", real=True)
kappa = sp.Symbol("kappa", real=True)           # a correlation between units that will drop out

#: LaTeX for the symbols above (used by the document renderer).
LATEX_NAMES = {
    n_in: r"n_{\mathrm{in}}", n_out: r"n_{\mathrm{out}}", var_w: r"\mathrm{Var}(W)", var_b: r"\mathrm{Var}(b)",
    var_g: r"\mathrm{Var}(\partial L/\partial h_{l+1})", m1: r"E[\phi(h)]", m2: r"E[\phi(h)^2]",
    dphi2: r"E[\phi'(h)^2]", sigma_w2: r"\sigma_w^2", sigma_b2: r"\sigma_b^2",
    cross_moment: r"E[\phi(u_a)\phi(u_b)]", kappa: r"\kappa",
}


# ---------------------------------------------------------------------------------------------
# The expectation engine
# ---------------------------------------------------------------------------------------------
def expectation(expr, groups):
    """``E[expr]`` for a polynomial in random symbols that are independent across ``groups``.

    Parameters
    ----------
    expr : sympy.Expr
        Polynomial in the random symbols (other symbols are constants).
    groups : list of (tuple of Symbol, callable)
        Each group of mutually dependent random symbols with its joint moment
        function ``moment(exponents) -> sympy.Expr``; different groups are independent.

    Examples
    --------
    >>> W, X = sp.symbols("W X")
    >>> expectation((W * X)**2 + W, [((W,), zero_mean(sp.Symbol("v"))), ((X,), moments(0, sp.Symbol("s")))])
    s*v
    """
    rvs = [s for syms, _ in groups for s in syms]
    poly = sp.Poly(sp.expand(expr), *rvs)
    total = sp.S.Zero
    for monom, coeff in poly.terms():
        term, i = coeff, 0
        for syms, moment in groups:
            term *= moment(tuple(monom[i:i + len(syms)]))
            i += len(syms)
        total += term
    return sp.expand(total)


def zero_mean(variance):
    """Moments of one zero-mean variable (up to order 2): 1, 0, variance."""
    def moment(e):
        k, = e
        if k > 2:
            raise ValueError("moment of order > 2 requested")
        return (sp.S.One, sp.S.Zero, variance)[k]
    return moment


def moments(mean, second):
    """Moments of one variable with given mean and second moment (up to order 2)."""
    def moment(e):
        k, = e
        if k > 2:
            raise ValueError("moment of order > 2 requested")
        return (sp.S.One, mean, second)[k]
    return moment


def joint(known: dict, prefix: str = "mu"):
    """Joint moments of a dependent group: ``known[exponents]`` or a named unknown symbol."""
    def moment(e):
        if not any(e):
            return sp.S.One
        return known.get(e, sp.Symbol(f"{prefix}_{''.join(map(str, e))}"))
    return moment


def _exchangeable_square(T_i, T_j, b, groups, width):
    """``E[s]`` and ``E[s^2]`` for ``s = sum_{i=1}^{width} T_i + b`` with exchangeable terms
    (``T_j`` is a second, distinct unit)."""
    E = functools.partial(expectation, groups=groups)
    # E[s] = width E[T_i] + E[b]
    mean = width * E(T_i) + E(b)
    # E[s^2] = width E[T_i^2] + width (width - 1) E[T_i T_j] + 2 width E[T_i b] + E[b^2]
    parts = {"T_i^2": E(T_i**2), "T_i T_j": E(T_i * T_j), "T_i b": E(T_i * b), "b^2": E(b**2), "T_i": E(T_i)}
    second = width * parts["T_i^2"] + width * (width - 1) * parts["T_i T_j"] + 2 * width * parts["T_i b"] \
        + parts["b^2"]
    return sp.expand(mean), sp.expand(second), parts


def _S(text):
    """A display-only symbol (its name is LaTeX)."""
    return sp.Symbol(text)


# ---------------------------------------------------------------------------------------------
# Forward and backward variance
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def forward_variance() -> Derivation:
    """``Var(y) = n_in Var(W) E[phi(h)^2] + Var(b)`` from ``y = sum_i W_i phi(h_i) + b``.

    Assumptions: the ``W_i`` are i.i.d. with mean 0 and variance ``Var(W)``,
    independent of the inputs ``h`` and of the bias ``b`` (mean 0, variance
    ``Var(b)``). ``numeric(n_in, var_w, m2, var_b)``.

    Examples
    --------
    >>> float(forward_variance().numeric(100, 0.01, 1.0, 0.0))   # Var(W) = 1/n_in keeps Var(x) = 1
    1.0
    """
    W_i, W_j, x_i, x_j, b = sp.symbols("W_i W_j x_i x_j b", real=True)
    groups = [((W_i,), zero_mean(var_w)), ((W_j,), zero_mean(var_w)),
              ((x_i, x_j), joint({(1, 0): m1, (0, 1): m1, (2, 0): m2, (0, 2): m2, (1, 1): kappa})),
              ((b,), zero_mean(var_b))]
    mean, second, parts = _exchangeable_square(W_i * x_i, W_j * x_j, b, groups, n_in)
    variance = sp.expand(second - mean**2)
    expr = n_in * var_w * m2 + var_b
    assert sp.simplify(variance - expr) == 0
    T, y, E = _S("T_i"), _S("y"), lambda s: _S(f"E[{s}]")
    i = sp.Symbol("i", integer=True)
    steps = (
        ("A unit of the next layer sums $n_{\\mathrm{in}}$ weighted activations $x_i = \\phi(h_i)$ and a bias:",
         sp.Eq(y, sp.Sum(_S("W_i") * sp.Function("phi")(_S("h_i")), (i, 1, n_in)) + _S("b"))),
        ("Assume the $W_i$ i.i.d. with mean 0 and variance $\\mathrm{Var}(W)$, independent of the $h_i$ and of "
         "$b$ (mean 0, variance $\\mathrm{Var}(b)$). The activations of two units may be correlated "
         "($E[x_i x_j] = \\kappa$) and need not have mean 0 ($E[x_i] = E[\\phi(h)]$). "
         "Write $T_i = W_i x_i$; by independence each expectation factors:", None),
        ("", sp.Eq(E("T_i"), parts["T_i"])),
        ("", sp.Eq(E("T_i^2"), parts["T_i^2"])),
        ("", sp.Eq(E("T_i T_j"), parts["T_i T_j"])),
        ("", sp.Eq(E("T_i b"), parts["T_i b"])),
        ("Expanding the square of a sum of $n_{\\mathrm{in}}$ exchangeable terms ($n_{\\mathrm{in}}$ diagonal and "
         "$n_{\\mathrm{in}}(n_{\\mathrm{in}} - 1)$ off-diagonal pairs):",
         sp.Eq(E("y^2"), n_in * E("T_i^2") + n_in * (n_in - 1) * E("T_i T_j") + 2 * n_in * E("T_i b")
               + E("b^2"))),
        ("", sp.Eq(E("y^2"), second)),
        ("and $E[y] = n_{\\mathrm{in}} E[T_i] + E[b]$ =", mean),
        ("so the activation mean and the correlation between units drop out (they only meet "
         "$E[W_i] E[W_j] = 0$):", sp.Eq(_S(r"\mathrm{Var}(y)"), expr)),
        ("For a linear layer with zero-mean inputs $E[\\phi(h)^2] = \\mathrm{Var}(x)$, which gives "
         "$\\mathrm{Var}(y) = n_{\\mathrm{in}} \\mathrm{Var}(W) \\mathrm{Var}(x)$ and the LeCun/Xavier forward "
         "condition $\\mathrm{Var}(W) = 1/n_{\\mathrm{in}}$.", None),
    )
    return Derivation("forward_variance", expr, (n_in, var_w, m2, var_b),
                      numeric_function((n_in, var_w, m2, var_b), expr), steps=steps)


@functools.lru_cache(maxsize=None)
def backward_variance() -> Derivation:
    """``Var(dL/dh_l) = n_out Var(W) E[phi'(h_l)^2] Var(dL/dh_{l+1})``; ``numeric(n_out, var_w, dphi2, var_g)``.

    Backprop: ``dL/dh_{l,i} = phi'(h_{l,i}) sum_k W_{l+1,ik} dL/dh_{l+1,k}`` over the
    ``n_out = n_{l+1}`` units the unit feeds. Assumption (gradient independence):
    the weights used by backprop are independent of ``phi'(h_l)`` and of the
    incoming gradients, which are zero-mean.

    Examples
    --------
    >>> float(backward_variance().numeric(200, 2 / 100, 0.5, 1.0))   # fan_in init, n_out/n_in = 2
    2.0
    """
    W_k, W_m, g_k, g_m, d = sp.symbols("W_k W_m g_k g_m d", real=True)
    groups = [((W_k,), zero_mean(var_w)), ((W_m,), zero_mean(var_w)),
              ((g_k, g_m), joint({(2, 0): var_g, (0, 2): var_g, (1, 1): kappa, (1, 0): sp.S.Zero,
                                  (0, 1): sp.S.Zero}))]
    # sum_k W_k g_k, then multiply by d = phi'(h_i) (independent of the sum)
    mean_s, second_s, parts = _exchangeable_square(W_k * g_k, W_m * g_m, sp.S.Zero, groups, n_out)
    E_d, E_d2 = sp.Symbol("dphi1"), dphi2
    mean = E_d * mean_s
    second = E_d2 * second_s
    variance = sp.expand(second - mean**2)
    expr = n_out * var_w * dphi2 * var_g
    assert sp.simplify(variance - expr) == 0
    k = sp.Symbol("k", integer=True)
    g_i = _S(r"\partial L/\partial h_{l,i}")
    E = lambda s: _S(f"E[{s}]")  # noqa: E731
    steps = (
        ("Backpropagation through $h_{l+1} = \\phi(h_l) W_{l+1} + b_{l+1}$ gives, for unit $i$ of layer $l$ "
         "feeding $n_{\\mathrm{out}} = n_{l+1}$ units with gradients $g_k = \\partial L/\\partial h_{l+1,k}$:",
         sp.Eq(g_i, _S(r"\phi'(h_{l,i})") * sp.Sum(_S("W_{ik}") * _S("g_k"), (k, 1, n_out)))),
        ("Assume (gradient independence) the backward weights independent of $\\phi'(h_l)$ and of the $g_k$, "
         "the $g_k$ zero-mean with variance $\\mathrm{Var}(\\partial L/\\partial h_{l+1})$ and possibly correlated "
         "($E[g_k g_m] = \\kappa$). With $T_k = W_{ik} g_k$:", None),
        ("", sp.Eq(E("T_k^2"), parts["T_i^2"])),
        ("", sp.Eq(E("T_k T_m"), parts["T_i T_j"])),
        ("so $E[(\\sum_k T_k)^2] = n_{\\mathrm{out}} E[T_k^2] + n_{\\mathrm{out}}(n_{\\mathrm{out}}-1)E[T_k T_m]$ =",
         second_s),
        ("and multiplying by the independent factor $\\phi'(h_{l,i})^2$:",
         sp.Eq(_S(r"\mathrm{Var}(\partial L/\partial h_{l})"), expr)),
        ("The backward condition is therefore $n_{\\mathrm{out}} \\mathrm{Var}(W) E[\\phi'(h)^2] = 1$; for a "
         "linear layer $\\mathrm{Var}(W) = 1/n_{\\mathrm{out}}$.", None),
    )
    return Derivation("backward_variance", expr, (n_out, var_w, dphi2, var_g),
                      numeric_function((n_out, var_w, dphi2, var_g), expr), steps=steps)


@functools.lru_cache(maxsize=None)
def covariance_map() -> Derivation:
    """``q_ab' = sigma_w^2 E[phi(u_a) phi(u_b)] + sigma_b^2``: the covariance of one unit's
    pre-activations for two inputs ``a``, ``b`` (mean-field units); ``numeric(sigma_w2, cross_moment, sigma_b2)``.

    With ``a = b`` it is the q-map ``q' = sigma_w^2 E[phi(u)^2] + sigma_b^2``.

    Examples
    --------
    >>> float(covariance_map().numeric(2.0, 0.25, 0.1))
    0.6
    """
    W_i, W_j, b = sp.symbols("W_i W_j b", real=True)
    xa_i, xb_i, xa_j, xb_j = sp.symbols("xa_i xb_i xa_j xb_j", real=True)
    m2a, m2b = sp.symbols("m2a m2b", real=True)
    known = {(1, 1, 0, 0): cross_moment, (0, 0, 1, 1): cross_moment,
             (2, 0, 0, 0): m2a, (0, 2, 0, 0): m2b, (0, 0, 2, 0): m2a, (0, 0, 0, 2): m2b}
    groups = [((W_i,), zero_mean(var_w)), ((W_j,), zero_mean(var_w)),
              ((xa_i, xb_i, xa_j, xb_j), joint(known)), ((b,), zero_mean(var_b))]
    E = functools.partial(expectation, groups=groups)
    ya_terms = (W_i * xa_i, W_j * xa_j)
    yb_terms = (W_i * xb_i, W_j * xb_j)
    # E[y_a y_b] = n E[T_ai T_bi] + n (n - 1) E[T_ai T_bj] + n E[T_ai b] + n E[T_bi b] + E[b^2]
    diag, off = E(ya_terms[0] * yb_terms[0]), E(ya_terms[0] * yb_terms[1])
    cov = sp.expand(n * diag + n * (n - 1) * off + n * E(ya_terms[0] * b) + n * E(yb_terms[0] * b) + E(b**2))
    mean_a = sp.expand(n * E(ya_terms[0]) + E(b))
    assert mean_a == 0
    mean_field = {var_w: sigma_w2 / n, var_b: sigma_b2}
    expr = sigma_w2 * cross_moment + sigma_b2
    assert sp.simplify(cov.subs(mean_field) - expr) == 0
    E_ = lambda s: _S(f"E[{s}]")  # noqa: E731
    steps = (
        ("Two inputs $a$, $b$ through the same weights: $y_a = \\sum_i W_i \\phi(h_{a,i}) + b$, "
         "$y_b = \\sum_i W_i \\phi(h_{b,i}) + b$. With $T_{a,i} = W_i \\phi(h_{a,i})$, the same counting "
         "of diagonal ($i = j$) and off-diagonal pairs gives", None),
        ("", sp.Eq(E_("T_{a,i} T_{b,i}"), diag)),
        ("", sp.Eq(E_("T_{a,i} T_{b,j}"), off)),
        ("", sp.Eq(_S(r"\mathrm{Cov}(y_a, y_b)"), cov)),
        ("In mean-field units $\\mathrm{Var}(W) = \\sigma_w^2/n$, $\\mathrm{Var}(b) = \\sigma_b^2$, and "
         "$(h_a, h_b)$ jointly Gaussian with covariance $q_{ab}$ (a sum of many independent terms):",
         sp.Eq(_S("q_{ab}'"), expr)),
        ("The correlation map is $c' = q_{ab}'/\\sqrt{q_{aa}' q_{bb}'}$; with $a = b$ this is the q-map "
         "$q' = \\sigma_w^2 E[\\phi(u)^2] + \\sigma_b^2$, $u \\sim N(0, q)$.", None),
    )
    return Derivation("covariance_map", expr, (sigma_w2, cross_moment, sigma_b2),
                      numeric_function((sigma_w2, cross_moment, sigma_b2), expr), steps=steps)


@functools.lru_cache(maxsize=None)
def chi1() -> Derivation:
    """``chi_1 = sigma_w^2 E[phi'(u)^2]``: the mean squared singular value of the layer Jacobian,
    and the slope of the correlation map at ``c = 1``; ``numeric(sigma_w2, dphi2)``.

    Examples
    --------
    >>> float(chi1().numeric(2.0, 0.5))    # ReLU at Kaiming: exactly critical
    1.0
    """
    W, d = sp.symbols("W d", real=True)
    groups = [((W,), zero_mean(var_w)), ((d,), moments(sp.Symbol("dphi1"), dphi2))]
    # J_ij = W_ij phi'(h_i): E[sum_i J_ij^2] = n E[W^2 phi'(h)^2]   (squares only: no cross terms)
    column = sp.expand(n * expectation((W * d)**2, groups))
    expr = sp.expand(column.subs(var_w, sigma_w2 / n))
    assert sp.simplify(expr - sigma_w2 * dphi2) == 0
    # c-map slope: c' = (sigma_w^2 K(c q) + sigma_b^2) / q' with K' = E[phi' phi'] (Price's theorem)
    cc, qs = sp.Symbol("c"), sp.Symbol("q^*", positive=True)
    K = sp.Function("K")
    c_next = (sigma_w2 * K(cc * qs) + sigma_b2) / qs
    slope = sp.diff(c_next, cc)
    steps = (
        ("The Jacobian of one layer is $J_{ij} = \\partial h_{l+1,j}/\\partial h_{l,i} = W_{ij} \\phi'(h_{l,i})$. "
         "A small perturbation's squared length is multiplied on average by", None),
        ("", sp.Eq(_S(r"E[\sum_i J_{ij}^2]"), column)),
        ("which in mean-field units ($\\mathrm{Var}(W) = \\sigma_w^2/n$) is", sp.Eq(_S(r"\chi_1"), expr)),
        ("The same number is the slope of the correlation map at $c = 1$ at the fixed point $q^*$: with "
         "$K(q_{12}) = E[\\phi(u_1)\\phi(u_2)]$,", sp.Eq(_S(r"\partial c'/\partial c"), slope)),
        ("and by Price's theorem $K'(q_{12}) = E[\\phi'(u_1)\\phi'(u_2)]$, which at $c = 1$ is $E[\\phi'(u)^2]$: "
         "again $\\chi_1 = \\sigma_w^2 E[\\phi'(u)^2]$. $\\chi_1 < 1$: ordered (inputs' correlations go to 1, "
         "gradients vanish); $\\chi_1 > 1$: chaotic (nearby inputs decorrelate, gradients explode); "
         "$\\chi_1 = 1$: the edge of chaos.", None),
    )
    return Derivation("chi1", expr, (sigma_w2, dphi2), numeric_function((sigma_w2, dphi2), expr), steps=steps)


# ---------------------------------------------------------------------------------------------
# Initialisation rules from the two conditions
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def xavier_compromise() -> Derivation:
    """Glorot/Xavier: ``Var(W) = 2 / (n_in + n_out)``; ``numeric(n_in, n_out)``.

    The forward condition ``n_in Var(W) = 1`` and the backward condition
    ``n_out Var(W) = 1`` (linear / tanh-near-0 layers) hold together only when
    ``n_in = n_out``; averaging the two conditions gives the compromise, the
    harmonic mean of ``1/n_in`` and ``1/n_out``.

    Examples
    --------
    >>> float(xavier_compromise().numeric(100, 300))
    0.005
    """
    v = sp.Symbol("v", positive=True)
    forward = sp.Eq(n_in * v, 1)
    backward = sp.Eq(n_out * v, 1)
    # average the two conditions: (n_in + n_out) v / 2 = 1
    averaged = sp.Eq((forward.lhs + backward.lhs) / 2, 1)
    expr = sp.solve(averaged, v)[0]
    harmonic = 2 / (1 / (1 / n_in) + 1 / (1 / n_out))
    assert sp.simplify(expr - harmonic) == 0
    f_factor, b_factor = sp.simplify(n_in * expr), sp.simplify(n_out * expr)
    # Var(U(-a, a)) = a^2 / 3  ->  a = sqrt(3 Var(W))
    aa, t = sp.symbols("a t", positive=True)
    uniform_var = sp.integrate(t**2 / (2 * aa), (t, -aa, aa))
    limit = sp.solve(sp.Eq(uniform_var, expr), aa)[0]
    steps = (
        ("Forward (activations keep their variance, linear regime):", forward),
        ("Backward (gradients keep their variance):", backward),
        ("Both hold only if $n_{\\mathrm{in}} = n_{\\mathrm{out}}$. Glorot and Bengio (2010) average the two "
         "conditions:", averaged),
        ("so", sp.Eq(_S(r"\mathrm{Var}(W)"), expr)),
        ("which is the harmonic mean of the two single-direction variances $1/n_{\\mathrm{in}}$ and "
         "$1/n_{\\mathrm{out}}$. What it costs per layer: the forward variance is multiplied by",
         sp.Eq(_S(r"n_{\mathrm{in}}\mathrm{Var}(W)"), f_factor)),
        ("and the backward variance by", sp.Eq(_S(r"n_{\mathrm{out}}\mathrm{Var}(W)"), b_factor)),
        ("The two factors add up to 2, so neither drifts far when neighbouring widths are similar (both are 1 "
         "when they are equal), and their product $4 n_{\\mathrm{in}} n_{\\mathrm{out}}/(n_{\\mathrm{in}} + "
         "n_{\\mathrm{out}})^2 \\le 1$. For a uniform distribution $U(-a, a)$, $\\mathrm{Var} = $", uniform_var),
        ("so the Glorot-uniform limit is", sp.Eq(aa, limit)),
    )
    return Derivation("xavier_compromise", expr, (n_in, n_out), numeric_function((n_in, n_out), expr), steps=steps)


def he_modes() -> dict:
    """He/Kaiming for ReLU: ``fan_in`` (``Var(W) = 2/n_in``) keeps the forward variance,
    ``fan_out`` (``Var(W) = 2/n_out``) keeps the backward variance.

    Returns
    -------
    dict
        ``{"fan_in": Derivation, "fan_out": Derivation}``; each ``numeric(n_in, n_out)``
        is ``Var(W)``, and its steps give the per-layer factor it costs the other
        direction (``n_out/n_in`` for fan_in, ``n_in/n_out`` for fan_out).

    Examples
    --------
    >>> modes = he_modes()
    >>> float(modes["fan_in"].numeric(256, 512)), float(modes["fan_out"].numeric(256, 512))
    (0.0078125, 0.00390625)
    """
    return dict(_he_modes())


@functools.lru_cache(maxsize=None)
def _he_modes() -> dict:
    from .gains import variance_preserving_gain
    from .kernels import gaussian_moments, q
    relu = gaussian_moments("relu")
    gain2 = variance_preserving_gain("relu").expr ** 2                       # 2
    fwd, bwd = forward_variance().expr, backward_variance().expr
    # per-layer factors: Var(y)/q with E[relu(h)^2] = q/2, and Var(g_l)/Var(g_{l+1}) with E[relu'^2] = 1/2
    m2_over_q = sp.simplify(relu.m2.expr / q)
    dphi2_relu = relu.dphi2.expr
    out = {}
    for mode, fan, other in (("fan_in", n_in, n_out), ("fan_out", n_out, n_in)):
        v = gain2 / fan
        forward_factor = sp.simplify(fwd.subs({var_w: v, m2: m2_over_q, var_b: 0}))
        backward_factor = sp.simplify(bwd.subs({var_w: v, dphi2: dphi2_relu, var_g: 1}))
        L = 3
        ns = sp.symbols(f"n_0:{L + 1}", positive=True)
        # widths n_0 .. n_L: the per-layer cost multiplies and telescopes to n_L/n_0 (or its inverse)
        if mode == "fan_in":
            total = sp.prod([ns[l + 1] / ns[l] for l in range(L)])
        else:
            total = sp.prod([ns[l] / ns[l + 1] for l in range(L)])
        steps = (
            (f"ReLU's variance-preserving gain is $g^2 = 1/E[\\mathrm{{relu}}(z)^2] = {sp.latex(gain2)}$, "
             f"so {mode} sets", sp.Eq(_S(r"\mathrm{Var}(W)"), v)),
            ("With $E[\\mathrm{relu}(h)^2] = q/2$ the forward recursion multiplies $q$ per layer by",
             sp.Eq(_S(r"\mathrm{Var}(y)/q"), forward_factor)),
            ("and with $E[\\mathrm{relu}'(h)^2] = 1/2$ the backward recursion multiplies the gradient "
             "variance per layer by", sp.Eq(_S(r"\mathrm{Var}(g_l)/\mathrm{Var}(g_{l+1})"), backward_factor)),
            (f"Over a network of widths $n_0, \\dots, n_{L}$ the other direction's factors multiply and "
             "telescope (He et al. 2015): the total cost is a ratio of the first and last widths, not a "
             "power of the depth:", sp.Eq(_S(r"\prod_l \mathrm{factor}_l"), total)),
        )
        out[mode] = Derivation(f"he_{mode}", v, (n_in, n_out), numeric_function((n_in, n_out), v), steps=steps,
                               note=f"preserves the {'forward' if mode == 'fan_in' else 'backward'} variance; "
                                    f"costs the other direction a factor {sp.sstr(other / fan)} per layer")
    return out


@functools.lru_cache(maxsize=None)
def relu_depth_scaling() -> Derivation:
    """``q_L = (sigma_w^2 / 2)^L q_0`` for a bias-free ReLU stack; ``numeric(sigma_w2, L, q0)``.

    Kaiming (``sigma_w^2 = 2``) holds the variance; ``sigma_w = 0.3 sqrt(2)`` and
    ``3 sqrt(2)`` (scale 0.3 and 3 times Kaiming) shrink / grow it by ``0.09`` / ``9`` per layer.

    Examples
    --------
    >>> float(relu_depth_scaling().numeric(2 * 0.3**2, 20, 1.0))   # doctest: +ELLIPSIS
    1.21576...e-21
    """
    from .kernels import gaussian_moments, q
    L, q0 = sp.symbols("L q_0", positive=True)
    ql = sp.Symbol("q_l", positive=True)
    step_map = covariance_map().expr.subs({cross_moment: gaussian_moments("relu").m2.expr.subs(q, ql),
                                           sigma_b2: 0})
    ratio = sp.simplify(step_map / ql)
    expr = ratio**L * q0
    s = sp.Symbol("s", positive=True)
    steps = (
        ("The q-map with $E[\\mathrm{relu}(u)^2] = q/2$ and no bias:", sp.Eq(_S("q_{l+1}"), step_map)),
        ("a constant factor per layer, so after $L$ layers", sp.Eq(_S("q_L"), expr)),
        ("With the weights scaled by $s$ times Kaiming ($\\sigma_w^2 = 2 s^2$):",
         sp.Eq(_S("q_L"), expr.subs(sigma_w2, 2 * s**2))),
    )
    return Derivation("relu_depth_scaling", expr, (sigma_w2, L, q0), numeric_function((sigma_w2, L, q0), expr),
                      steps=steps)
