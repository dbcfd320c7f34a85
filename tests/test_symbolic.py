"""The sympy derivations: literature constants, closed forms against quadrature, recursions
against simulation, and the initial cross-entropy against Monte Carlo."""
import math

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import dblquad, quad
from scipy.special import ndtr

from sigprop.activations import get_activation, register_activation, x
from sigprop.symbolic import crossentropy as C
from sigprop.symbolic import kernels as K
from sigprop.symbolic import recursions as R
from sigprop.symbolic import tanh as T
from sigprop.symbolic.gains import gain_table, selu_constants, variance_preserving_gain

# Klambauer et al. (2017), "Self-Normalizing Neural Networks", eq. (14)-(15) / their code
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772

SQ2PI = math.sqrt(2 * math.pi)


# --------------------------------------------------------------------------------------------
# Independent numerical oracles (plain scipy quadrature of the activation's numpy form)
# --------------------------------------------------------------------------------------------
def gauss_1d(f, q, breaks=(0.0,)):
    """E[f(u)], u ~ N(0, q), adaptive quadrature split at the kinks."""
    r = math.sqrt(q)
    g = lambda z: float(f(r * z)) * math.exp(-z * z / 2) / SQ2PI  # noqa: E731
    cuts = [-np.inf] + sorted(b / r for b in breaks) + [np.inf]
    return sum(quad(g, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=400)[0] for lo, hi in zip(cuts[:-1], cuts[1:]))


def gauss_2d(f, g, q1, q2, c, kink_at_zero=True):
    """E[f(u1) g(u2)] with u1 = sqrt(q1) z1, u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2): nested quadrature."""
    a1, a2, s = math.sqrt(q1), math.sqrt(q2), math.sqrt(1 - c * c)
    pdf = lambda z: math.exp(-z * z / 2) / SQ2PI  # noqa: E731

    def inner(z1):
        k = -c * z1 / s                     # u2 changes sign at z2 = k
        h = lambda z2: float(g(a2 * (c * z1 + s * z2))) * pdf(z2)  # noqa: E731
        cuts = [(-np.inf, k), (k, np.inf)] if kink_at_zero else [(-np.inf, np.inf)]
        return float(f(a1 * z1)) * pdf(z1) * sum(quad(h, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
                                                 for lo, hi in cuts)
    cuts = [(-np.inf, 0.0), (0.0, np.inf)]
    return sum(quad(inner, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)[0] for lo, hi in cuts)


def close(value, reference, tol=1e-10):
    return abs(value - reference) <= tol * max(1.0, abs(reference))


# --------------------------------------------------------------------------------------------
# Gains and SELU
# --------------------------------------------------------------------------------------------
def test_relu_gain_is_exactly_sqrt2():
    d = variance_preserving_gain("relu")
    assert d.expr == sp.sqrt(2)
    assert d.value == math.sqrt(2)


def test_leaky_relu_gain_is_symbolic_in_the_slope():
    a = sp.Symbol("a", real=True)
    row = {r["activation"]: r for r in gain_table()}["leaky_relu(a)"]
    assert sp.simplify(row["gain"] - sp.sqrt(2 / (1 + a**2))) == 0
    # a concrete slope: exact value sqrt(2 / (1 + 1/25))
    assert sp.simplify(variance_preserving_gain("leaky_relu(a=0.2)").expr - sp.sqrt(sp.Rational(50, 26))) == 0


def test_linear_and_selu_gains_are_one():
    assert variance_preserving_gain("linear").expr == 1
    d = variance_preserving_gain("selu")
    assert d.expr == 1 and d.value == 1.0


def test_selu_constants_match_the_literature():
    k = selu_constants()
    assert isinstance(k["lambda"], sp.Float) and k["lambda"]._prec >= 30 * 3.32
    assert abs(float(k["lambda"]) - SELU_LAMBDA) <= 1e-15 * SELU_LAMBDA
    assert abs(float(k["alpha"]) - SELU_ALPHA) <= 1e-15 * SELU_ALPHA


def test_selu_constants_solve_the_fixed_point_by_independent_quadrature():
    k = selu_constants()
    lam, alpha = float(k["lambda"]), float(k["alpha"])
    selu = lambda h: lam * (h if h > 0 else alpha * math.expm1(h))  # noqa: E731
    assert abs(gauss_1d(selu, 1.0)) < 1e-13
    assert abs(gauss_1d(lambda h: selu(h) ** 2, 1.0) - 1.0) < 1e-13


def test_get_activation_selu_uses_the_derived_constants():
    act = get_activation("selu")
    assert act.params == {"lam": SELU_LAMBDA, "alpha": SELU_ALPHA}
    h = np.array([-2.0, -0.5, 0.5, 2.0])
    expected = SELU_LAMBDA * np.where(h > 0, h, SELU_ALPHA * np.expm1(h))
    np.testing.assert_allclose(act.phi(h), expected, rtol=1e-15)
    assert act.gain == 1.0 and act.init_gain == 0.75


@pytest.mark.parametrize("name", ["tanh", "gelu", "sigmoid", "softplus", "swish", "erf"])
def test_gains_agree_with_quadrature(name):
    act = get_activation(name)
    m2 = gauss_1d(lambda h: float(act.phi(h)) ** 2, 1.0)
    assert close(variance_preserving_gain(name).value, 1 / math.sqrt(m2), 1e-12)


def test_pytorch_conventions_sit_beside_the_derived_gains():
    rows = {r["activation"]: r for r in gain_table()}
    assert rows["tanh"]["pytorch"] == sp.Rational(5, 3)
    assert rows["selu"]["pytorch"] == sp.Rational(3, 4)
    assert rows["relu"]["pytorch"] is None          # PyTorch uses the derived sqrt(2)
    assert rows["erf"]["gain"] == sp.sqrt(2) * sp.sqrt(sp.pi) / (2 * sp.sqrt(sp.asin(sp.Rational(2, 3))))


def test_user_piecewise_activation_gets_a_closed_form():
    hardtanh = register_activation("hardtanh_sym_test", sp.Piecewise((-1, x < -1), (x, x <= 1), (1, True)),
                                   bounds=(-1, 1))
    d = variance_preserving_gain(hardtanh)
    assert not d.expr.is_Float                        # exact: built from erf and exp(-1/2)
    m2 = gauss_1d(lambda h: float(np.clip(h, -1, 1)) ** 2, 1.0, breaks=(-1.0, 1.0))
    assert close(d.value, 1 / math.sqrt(m2), 1e-12)


def test_no_symbolic_integration_is_attempted_outside_the_cheap_class():
    for name in ("tanh", "gelu", "softplus", "swish", "sigmoid"):
        assert K.gaussian_moments(name) is None
    assert K.gaussian_expectation(sp.tanh(x) ** 2) is None


# --------------------------------------------------------------------------------------------
# tanh
# --------------------------------------------------------------------------------------------
def _tanh_m2_reference():
    # E[tanh(z)^2] = 1 - E[sech(z)^2]: a different integrand than the code's (tanh^2 via mpmath)
    return 1.0 - gauss_1d(lambda h: 1.0 / math.cosh(h) ** 2 if abs(h) < 300 else 0.0, 1.0)


def test_tanh_second_moment_unit():
    ref = _tanh_m2_reference()
    d = T.tanh_second_moment_unit()
    assert abs(d.value - ref) < 1e-13
    assert abs(d.value - 0.39429449039784) < 1e-13
    assert abs(T.tanh_gain().value - 1 / math.sqrt(ref)) < 1e-12
    assert abs(T.tanh_gain().value - 1.5925374197228) < 1e-12
    assert abs(variance_preserving_gain("tanh").value - T.tanh_gain().value) < 1e-15


@pytest.mark.slow
def test_tanh_second_moment_unit_to_25_digits():
    import mpmath as mp
    with mp.workdps(50):
        ref = 1 - 2 * mp.quad(lambda t: mp.sech(t) ** 2 * mp.npdf(t), [0, 1, 2, 4, 8, 16, mp.inf])
        assert abs(mp.mpf(str(T.tanh_second_moment_unit().expr)) - ref) < mp.mpf(10) ** -24


def test_tanh_series_coefficients_and_accuracy():
    q = sp.Symbol("q", positive=True)
    d = T.tanh_second_moment_series(4)
    assert sp.expand(d.expr - (q - 2 * q**2 + sp.Rational(17, 3) * q**3 - sp.Rational(62, 3) * q**4)) == 0
    m2 = lambda q_: gauss_1d(lambda h: math.tanh(h) ** 2, q_)  # noqa: E731
    # asymptotic: at small q the truncation error is about the next term (1382/15 q^5)
    for q_ in (0.005, 0.01, 0.02):
        err = abs(float(d.numeric(q_)) - m2(q_))
        assert err < 1.2 * 1382 / 15 * q_**5
    # and it is not convergent: at q = 1 more terms are worse
    errs = [abs(float(T.tanh_second_moment_series(k).numeric(1.0)) - m2(1.0)) for k in (2, 4, 6)]
    assert errs[0] < errs[1] < errs[2]


def test_tanh_fixed_point_for_pytorch_gain():
    fp = T.tanh_fixed_point(5 / 3)
    g2 = 25 / 9
    m2 = gauss_1d(lambda h: math.tanh(h) ** 2, fp.q_star)
    assert abs(g2 * m2 - fp.q_star) < 1e-12
    sech4 = gauss_1d(lambda h: 1.0 / math.cosh(h) ** 4 if abs(h) < 150 else 0.0, fp.q_star)
    assert abs(fp.chi1 - g2 * sech4) < 1e-12
    assert fp.chi1 > 1.0                       # chaotic side
    sat = 2 * ndtr(-math.atanh(0.97) / math.sqrt(fp.q_star))
    assert abs(fp.saturated - sat) < 1e-12
    # at the derived gain the fixed point is q = 1
    assert abs(T.tanh_fixed_point(T.tanh_gain().value).q_star - 1.0) < 1e-12
    assert T.tanh_fixed_point(1.0).q_star == 0.0


def test_tanh_decay_with_gain_one():
    l, q0 = sp.symbols("l q_0", positive=True)
    assert sp.simplify(T.tanh_decay_gain_one().expr - q0 / (1 + 2 * l * q0)) == 0
    q = T.iterate_q_map(1.0, 200)
    assert 0.95 < q[-1] * 2 * 200 < 1.1          # q_l ~ 1/(2l), slowly approached (log corrections)


# --------------------------------------------------------------------------------------------
# Gaussian moments and kernels against quadrature
# --------------------------------------------------------------------------------------------
QS = (0.01, 0.3, 1.0, 3.0, 10.0)


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu(a=0.2)", "leaky_relu(a=-0.5)", "selu", "erf"])
def test_gaussian_moments_agree_with_quadrature(name):
    act = get_activation(name)
    gm = K.gaussian_moments(act)
    assert gm is not None
    for q in QS:
        assert close(float(gm.mean.numeric(q)), gauss_1d(act.phi, q)), (name, "mean", q)
        assert close(float(gm.m2.numeric(q)), gauss_1d(lambda h: float(act.phi(h)) ** 2, q)), (name, "m2", q)
        assert close(float(gm.dphi2.numeric(q)), gauss_1d(lambda h: float(act.dphi(h)) ** 2, q)), (name, "dphi2", q)
    # vectorised over q
    out = gm.m2.numeric(np.array(QS))
    assert out.shape == (len(QS),)


def test_erf_moment_closed_forms_are_the_stated_ones():
    q = K.q
    gm = K.gaussian_moments("erf")
    assert sp.simplify(gm.m2.expr - 2 / sp.pi * sp.asin(2 * q / (1 + 2 * q))) == 0
    assert sp.simplify(gm.dphi2.expr - 4 / (sp.pi * sp.sqrt(1 + 4 * q))) == 0


def test_selu_moments_stay_finite_for_huge_q():
    gm = K.gaussian_moments("selu")
    q = np.array([1e3, 1e6, 1e12])
    for part in (gm.mean, gm.m2, gm.dphi2):
        assert np.all(np.isfinite(part.numeric(q)))
    lam = SELU_LAMBDA
    # far out the positive half dominates: E[selu^2] -> lam^2 q / 2
    assert close(float(gm.m2.numeric(1e12)) / (lam**2 * 1e12 / 2), 1.0, 1e-5)


CS = (-0.9, -0.3, 0.0, 0.5, 0.95)


def _relu(h):
    return h if h > 0 else 0.0


def _step(h):
    return 1.0 if h > 0 else 0.0


@pytest.mark.parametrize("q1,q2", [(1.0, 1.0), (0.5, 2.0)])
def test_relu_kernel_against_2d_quadrature(q1, q2):
    k = K.relu_kernel().numeric
    for c in CS:
        assert close(float(k(q1, q2, c)), gauss_2d(_relu, _relu, q1, q2, c)), c


def test_relu_kernel_symbolic_form():
    q1, q2, c = K.q1, K.q2, K.c
    target = sp.sqrt(q1 * q2) / (2 * sp.pi) * (sp.sqrt(1 - c**2) + (sp.pi - sp.acos(c)) * c)
    assert sp.simplify(K.relu_kernel().expr - target) == 0
    assert sp.simplify(K.relu_derivative_kernel().expr - (sp.pi - sp.acos(c)) / (2 * sp.pi)) == 0


def test_relu_derivative_kernel_is_the_orthant_probability():
    k = K.relu_derivative_kernel().numeric
    for c in CS:
        s = math.sqrt(1 - c * c)
        # P(z1 > 0, c z1 + s z2 > 0) = int_0^inf phi(z1) Phi(c z1 / s) dz1
        ref = quad(lambda z: math.exp(-z * z / 2) / SQ2PI * ndtr(c * z / s), 0, np.inf, epsabs=1e-15,
                   epsrel=1e-13)[0]
        assert close(float(k(c)), ref), c


def test_leaky_relu_kernels_against_2d_quadrature():
    a = 0.2
    leaky = lambda h: h if h > 0 else a * h  # noqa: E731
    dleaky = lambda h: 1.0 if h > 0 else a  # noqa: E731
    k, dk = K.leaky_relu_kernel().numeric, K.leaky_relu_derivative_kernel().numeric
    for c in (-0.6, 0.0, 0.8):
        assert close(float(k(0.7, 1.3, c, a)), gauss_2d(leaky, leaky, 0.7, 1.3, c)), c
        assert close(float(dk(c, a)), gauss_2d(dleaky, dleaky, 1.0, 1.0, c)), c


@pytest.mark.parametrize("s11,s22,s12", [(1.0, 1.0, 0.5), (0.5, 2.0, -0.6), (3.0, 3.0, 2.9), (0.1, 0.2, 0.0)])
def test_erf_kernels_against_2d_quadrature(s11, s22, s12):
    c = s12 / math.sqrt(s11 * s22)
    derf = lambda h: 2 / math.sqrt(math.pi) * math.exp(-h * h)  # noqa: E731
    ref = gauss_2d(math.erf, math.erf, s11, s22, c, kink_at_zero=False)
    dref = gauss_2d(derf, derf, s11, s22, c, kink_at_zero=False)
    assert close(float(K.erf_kernel().numeric(s11, s22, s12)), ref)
    assert close(float(K.erf_derivative_kernel().numeric(s11, s22, s12)), dref)


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu(a=0.2)", "erf"])
def test_kernels_at_c_equal_one_are_the_moments(name):
    gk, gm = K.gaussian_kernels(name), K.gaussian_moments(name)
    for q in (0.2, 1.0, 5.0):
        assert close(float(gk.phi.numeric(q, q, 1.0)), float(gm.m2.numeric(q)), 1e-13)
        assert close(float(gk.dphi.numeric(q, q, 1.0)), float(gm.dphi2.numeric(q)), 1e-13)
    # rounding just above 1 is not a nan
    assert np.isfinite(gk.phi.numeric(1.0, 1.0, 1.0 + 1e-15))
    assert K.gaussian_kernels("tanh") is None


# --------------------------------------------------------------------------------------------
# Recursions
# --------------------------------------------------------------------------------------------
def test_recursion_formulas():
    assert sp.expand(R.forward_variance().expr - (R.n_in * R.var_w * R.m2 + R.var_b)) == 0
    assert sp.expand(R.backward_variance().expr - R.n_out * R.var_w * R.dphi2 * R.var_g) == 0
    assert sp.expand(R.covariance_map().expr - (R.sigma_w2 * R.cross_moment + R.sigma_b2)) == 0
    assert sp.expand(R.chi1().expr - R.sigma_w2 * R.dphi2) == 0
    assert float(R.forward_variance().numeric(512, 2 / 512, 0.5, 0.1)) == pytest.approx(1.1, rel=1e-15)
    assert float(R.chi1().numeric(2.0, 0.5)) == 1.0


def test_xavier_compromise():
    d = R.xavier_compromise()
    n_in, n_out = R.n_in, R.n_out
    assert sp.simplify(d.expr - 2 / (n_in + n_out)) == 0
    # the harmonic mean of the single-direction variances 1/n_in (forward) and 1/n_out (backward)
    harmonic_mean = lambda u, v: 2 / (1 / u + 1 / v)  # noqa: E731
    assert sp.simplify(d.expr - harmonic_mean(1 / n_in, 1 / n_out)) == 0
    assert float(d.numeric(100, 300)) == pytest.approx(0.005, rel=1e-15)
    assert sp.simplify(n_in * d.expr + n_out * d.expr) == 2


def test_he_modes_cost_the_other_direction_n_out_over_n_in():
    modes = R.he_modes()
    assert modes["fan_in"].expr == 2 / R.n_in and modes["fan_out"].expr == 2 / R.n_out
    fan_in_steps = {str(s[1].lhs): s[1].rhs for s in modes["fan_in"].steps if isinstance(s[1], sp.Eq)}
    assert fan_in_steps[r"\mathrm{Var}(y)/q"] == 1
    assert sp.simplify(fan_in_steps[r"\mathrm{Var}(g_l)/\mathrm{Var}(g_{l+1})"] - R.n_out / R.n_in) == 0
    fan_out_steps = {str(s[1].lhs): s[1].rhs for s in modes["fan_out"].steps if isinstance(s[1], sp.Eq)}
    assert sp.simplify(fan_out_steps[r"\mathrm{Var}(y)/q"] - R.n_in / R.n_out) == 0
    assert fan_out_steps[r"\mathrm{Var}(g_l)/\mathrm{Var}(g_{l+1})"] == 1


def test_relu_depth_scaling():
    d = R.relu_depth_scaling()
    assert float(d.numeric(2.0, 20, 1.0)) == 1.0
    assert float(d.numeric(2 * 0.3**2, 20, 1.0)) == pytest.approx(0.09**20, rel=1e-12)


# Monte Carlo checks of the two variance recursions for a finite width, with activations that have a
# non-zero mean and are correlated across units (the derivation says neither matters). Two comparisons
# at k = 4 standard errors: a false alarm has probability < 1.3e-4.
K_SE = 4.0


def _forward_sample(rng, N, n, var_w, var_b):
    common = rng.standard_normal((N, 1))
    xs = 1.0 + 0.5 * common + 0.3 * rng.standard_normal((N, n))   # mean 1, correlated units
    W = rng.standard_normal((N, n)) * math.sqrt(var_w)
    b = rng.standard_normal(N) * math.sqrt(var_b)
    y = np.sum(W * xs, axis=1) + b
    m2 = 1.0 + 0.25 + 0.09            # E[x^2] = mean^2 + Var
    return y, m2


def _var_and_se(y):
    d = (y - y.mean()) ** 2
    return d.mean(), d.std(ddof=1) / math.sqrt(len(y))


def test_forward_variance_against_monte_carlo():
    rng = np.random.default_rng(20240611)
    n, var_w, var_b = 8, 0.05, 0.2
    y, m2 = _forward_sample(rng, 400_000, n, var_w, var_b)
    v, se = _var_and_se(y)
    predicted = float(R.forward_variance().numeric(n, var_w, m2, var_b))
    assert abs(v - predicted) < K_SE * se, (v, predicted, se)


def test_forward_variance_check_rejects_a_wrong_formula():
    rng = np.random.default_rng(20240611)
    n, var_w, var_b = 8, 0.05, 0.2
    y, _ = _forward_sample(rng, 400_000, n, var_w, var_b)
    v, se = _var_and_se(y)
    wrong = n * var_w * (0.25 + 0.09) + var_b      # Var(x) instead of E[x^2]
    assert abs(v - wrong) > K_SE * se


def test_backward_variance_against_monte_carlo():
    rng = np.random.default_rng(7)
    N, n_out, var_w, var_g = 400_000, 6, 0.1, 2.0
    h = rng.standard_normal(N) * 1.3
    d = np.where(h > 0, 1.0, 0.2)                   # leaky ReLU derivative, independent of W and g
    common = rng.standard_normal((N, 1))
    g = math.sqrt(var_g) * (0.6 * common + 0.8 * rng.standard_normal((N, n_out)))   # correlated, var_g
    W = rng.standard_normal((N, n_out)) * math.sqrt(var_w)
    grad = d * np.sum(W * g, axis=1)
    v, se = _var_and_se(grad)
    dphi2 = 0.5 * 1.0 + 0.5 * 0.04
    predicted = float(R.backward_variance().numeric(n_out, var_w, dphi2, var_g))
    assert abs(v - predicted) < K_SE * se, (v, predicted, se)


# --------------------------------------------------------------------------------------------
# Expected initial cross-entropy
# --------------------------------------------------------------------------------------------
def test_chance_loss_is_ln_v():
    assert C.chance_loss().expr == sp.log(C.V)
    assert float(C.chance_loss().numeric(27)) == math.log(27) == pytest.approx(3.295836866004329, abs=1e-15)
    assert abs(float(C.expected_initial_loss(27, 0.0)) - math.log(27)) < 1e-13


def test_series_leading_terms():
    V, s = C.V, C.s
    d = C.initial_loss_series(4)
    assert sp.simplify(d.expr - (sp.log(V) + s**2 * (V - 1) / (2 * V) - s**4 * (V - 1) / (4 * V**2))) == 0


def test_series_against_the_exact_numeric_at_small_s():
    s = np.array([0.01, 0.03, 0.1])
    exact = C.expected_initial_loss(27, s)
    c6 = abs(float(C.initial_loss_series(6).numeric(27, 1.0) - C.initial_loss_series(4).numeric(27, 1.0)))
    err4 = np.abs(exact - C.initial_loss_series(4).numeric(27, s))
    # the error of the s^4 series is the s^6 term, up to higher orders and the numeric's ~1e-13
    assert np.all(err4 <= 1.05 * c6 * s**6 + 2e-13)
    assert err4[-1] > 0.9 * c6 * s[-1] ** 6       # and it is really there
    err2 = np.abs(exact - C.initial_loss_series(2).numeric(27, s))
    assert np.all(err2 > 0.9 * (26 / (4 * 27**2)) * s**4)


@pytest.mark.parametrize("s_", [0.7, 3.0])
def test_expected_loss_against_2d_quadrature_for_two_classes(s_):
    f = lambda b, a: np.logaddexp(s_ * a, s_ * b) * math.exp(-(a * a + b * b) / 2) / (2 * math.pi)  # noqa: E731
    ref = dblquad(f, -14, 14, -14, 14, epsabs=1e-13, epsrel=1e-13)[0]
    assert abs(float(C.expected_initial_loss(2, s_)) - ref) < 1e-10


# Monte Carlo: 4 values of s at k = 4 standard errors (false alarm < 2.6e-4 in total).
MC_S = np.array([0.5, 1.0, 2.0, 5.0])


def _mc_loss(V, s, N=100_000, seed=12345):
    rng = np.random.default_rng(seed)
    logits = s * rng.standard_normal((N, V))
    loss = np.logaddexp.reduce(logits, axis=1) - logits[:, 0]   # target class 0
    return loss.mean(), loss.std(ddof=1) / math.sqrt(N)


def test_expected_loss_against_monte_carlo():
    exact = C.expected_initial_loss(27, MC_S)
    assert exact.shape == MC_S.shape
    for s_, e in zip(MC_S, exact):
        m, se = _mc_loss(27, s_)
        assert abs(m - e) < K_SE * se, (s_, m, e, se)


def test_monte_carlo_check_rejects_a_wrong_answer():
    # forgetting the (V - 1)/V factor: ln V + s^2/2 at s = 1
    m, se = _mc_loss(27, 1.0)
    assert abs(m - (math.log(27) + 0.5)) > K_SE * se


def test_expected_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="V must be an integer"):
        C.expected_initial_loss(2.5, 1.0)
    with pytest.raises(ValueError, match="logit std"):
        C.expected_initial_loss(27, -1.0)


def test_tanh_fixed_point_takes_q_chi_and_c_from_the_theory():
    # one q-map, fixed point and c-map (sigprop.theory); an independent 2-D Gauss-Hermite oracle checks c*
    import inspect

    from numpy.polynomial.hermite_e import hermegauss

    from sigprop import theory
    fp = T.tanh_fixed_point(5 / 3, sigma_b=0.3)
    assert fp.q_star == float(theory.fixed_point_q("tanh", 5 / 3, 0.3))
    assert fp.chi1 == float(theory.chi1("tanh", 5 / 3, 0.3, q=fp.q_star))
    assert "brentq" not in inspect.getsource(T) and "hermegauss" not in inspect.getsource(T)
    z, w = hermegauss(160)
    w = w / math.sqrt(2 * math.pi)

    def c_map(c):   # c' = (sigma_w^2 E[tanh(u1) tanh(u2)] + sigma_b^2) / q*
        r = math.sqrt(fp.q_star)
        u1 = r * z[:, None]
        u2 = r * (c * z[:, None] + math.sqrt(1 - c * c) * z[None, :])
        return (25 / 9 * np.einsum("i,j,ij->", w, w, np.tanh(u1) * np.tanh(u2)) + 0.09) / fp.q_star
    assert 0.1 < fp.c_star < 0.99 and abs(c_map(fp.c_star) - fp.c_star) < 1e-9
    assert abs(T.tanh_fixed_point(5 / 3).c_star) < 1e-12            # odd tanh, no bias: c* = 0
