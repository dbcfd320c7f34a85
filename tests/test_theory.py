"""Numeric mean-field theory: quadrature, maps, fixed points, edge of chaos, predict, phase diagram, CLI.

Oracles are independent of sigprop.theory: scipy.integrate.quad on the defining
integrals, scipy.optimize.brentq on quad-based maps, and formulas from the
literature typed here as test oracles (arc-cosine kernel).
"""
import io
import json
import math
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from scipy import integrate, optimize

from sigprop import LayerStats, NetSpec, theory
from sigprop.activations import get_activation

SMOOTH_AND_KINKED = ["tanh", "erf", "sigmoid", "gelu", "swish", "softplus", "selu", "relu"]
Q_GRID = [1e-4, 1e-3, 0.03, 1.0, 10.0, 100.0, 1e3]


def quad_expect(f, q):
    """E[f(u)], u ~ N(0, q), by adaptive quad on the h axis, split at 0 and at the activation
    and Gaussian scales (so that quad itself is accurate to ~1e-13)."""
    s = math.sqrt(q)
    H = 12.0 * s
    cuts = sorted({p for p in (0.25, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, s, 2 * s, 4 * s) if p < H})
    edges = [-H] + [-p for p in reversed(cuts)] + [0.0] + cuts + [H]
    dens = lambda h: f(h) * math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
    with warnings.catch_warnings():      # quad may report round-off at epsrel=1e-13: it is still ~1e-13
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(integrate.quad(dens, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
                   for a, b in zip(edges[:-1], edges[1:]))


def _scalar(f):
    return lambda h: float(f(np.array(h)))


# ---------------------------------------------------------------------------------------------
# Quadrature
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SMOOTH_AND_KINKED)
def test_quadrature_matches_scipy_quad_for_q_from_1e_4_to_1e3(name):
    act = get_activation(name)
    calc = theory._calculus(act)
    q = np.array(Q_GRID)
    for label, f in [("E[phi]", act.phi), ("E[phi^2]", lambda h: act.phi(h) ** 2),
                     ("E[phi'^2]", lambda h: act.dphi(h) ** 2)]:
        got = theory.gaussian_expectation(f, q, calc.centers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.array([quad_expect(_scalar(f), qi) for qi in q])
        if label == "E[phi]":
            # relative where nonzero: tanh and erf are odd, SELU's mean vanishes at q = 1 by design
            scale = np.sqrt(theory.gaussian_expectation(lambda h: act.phi(h) ** 2, q, calc.centers))
            zero = np.abs(ref) < 1e-12 * scale
            assert np.all(np.abs(got[zero]) < 1e-14 * scale[zero]), (name, got)
            got, ref = got[~zero], ref[~zero]
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0, err_msg=f"{name} {label}")


def test_plain_gauss_hermite_would_fail_the_same_check():
    """The 1e-9 criterion has teeth: a fixed 40-point Gauss-Hermite rule misses it for tanh at large q."""
    z, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / math.sqrt(2 * math.pi)
    q = 1e3
    gh = float(np.sum(w * np.tanh(math.sqrt(q) * z) ** 2))
    ref = quad_expect(lambda h: math.tanh(h) ** 2, q)
    assert abs(gh - ref) / ref > 1e-9
    ours = float(theory.gaussian_expectation(lambda h: np.tanh(h) ** 2, q))
    assert abs(ours - ref) / ref < 1e-9


def test_bivariate_quadrature_matches_closed_form_kernels():
    from sigprop.symbolic.kernels import gaussian_kernels
    q1 = np.array([1e-3, 0.5, 1.0, 3.0, 100.0, 2.0])
    q2 = np.array([1e-3, 2.0, 1.0, 0.7, 100.0, 50.0])
    for name in ["relu", "leaky_relu(a=0.2)", "erf"]:
        act, gk = get_activation(name), gaussian_kernels(name)
        for c in [-0.999, -0.5, 0.0, 0.3, 0.9, 0.999999, 1.0]:
            k = theory.bivariate_expectation(lambda a, b: act.phi(a) * act.phi(b), q1, q2, c)
            d = theory.bivariate_expectation(lambda a, b: act.dphi(a) * act.dphi(b), q1, q2, c)
            scale = np.sqrt(np.abs(gk.phi.numeric(q1, q1, 1.0) * gk.phi.numeric(q2, q2, 1.0)))
            np.testing.assert_allclose(k, gk.phi.numeric(q1, q2, c), rtol=0, atol=1e-10 * scale.max() + 0,
                                       err_msg=f"{name} kernel c={c}")
            np.testing.assert_allclose(k / scale, gk.phi.numeric(q1, q2, c) / scale, rtol=0, atol=1e-10)
            np.testing.assert_allclose(d, gk.dphi.numeric(q1, q2, c), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} derivative kernel c={c}")


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_relu(a=0.2)", "erf", "selu"])
def test_closed_form_moments_agree_with_quadrature(name):
    calc = theory._calculus(name)
    assert calc.closed_moments is not None
    q = np.logspace(-2, 2, 9)
    for key, f in [("mean", calc.phi), ("m2", lambda h: calc.phi(h) ** 2), ("dphi2", lambda h: calc.dphi(h) ** 2)]:
        closed = calc.closed_moments[key].numeric(q)
        quad = theory.gaussian_expectation(f, q, calc.centers)
        scale = np.maximum(np.abs(quad), 1e-300) if key != "mean" else np.sqrt(q)
        np.testing.assert_array_less(np.abs(closed - quad) / scale, 1e-10, err_msg=f"{name} {key}")


# ---------------------------------------------------------------------------------------------
# Maps and fixed points
# ---------------------------------------------------------------------------------------------
def test_relu_at_kaiming_preserves_q_and_linear_map_is_affine():
    q = np.array([1e-6, 0.3, 1.0, 7.0, 1e6])
    np.testing.assert_allclose(theory.q_map("relu", math.sqrt(2.0), 0.0, q), q, rtol=1e-14)
    np.testing.assert_allclose(theory.q_map("linear", 0.7, 0.4, q), 0.49 * q + 0.16, rtol=1e-14)
    # fixed point of the linear map q = 0.49 q + 0.16
    assert float(theory.fixed_point_q("linear", 0.7, 0.4)) == pytest.approx(0.16 / 0.51, rel=1e-12)


def test_tanh_vanishing_fixed_point_is_zero():
    q = theory.fixed_point_q("tanh", [0.5, 1.0], 0.0)
    assert q.tolist() == [0.0, 0.0]
    assert float(theory.fixed_point_q("tanh", 1.5, 0.0)) > 0.1


@pytest.mark.parametrize("name,sw,sb", [("tanh", 2.0, 0.3), ("tanh", 1.2, 0.05), ("sigmoid", 3.0, 0.2),
                                        ("gelu", 1.1, 0.5)])
def test_fixed_point_q_against_brentq_on_quad_map(name, sw, sb):
    act = get_activation(name)
    m2 = lambda q: quad_expect(lambda h: float(act.phi(h)) ** 2, q)  # noqa: E731
    ref = optimize.brentq(lambda q: sw ** 2 * m2(q) + sb ** 2 - q, 1e-3, 50.0, xtol=1e-14, rtol=1e-13)
    assert float(theory.fixed_point_q(name, sw, sb)) == pytest.approx(ref, rel=1e-10)


def test_edge_of_chaos_tanh_sigma_b_zero_is_one_and_chi1_is_one_on_the_edge():
    assert float(theory.edge_of_chaos("tanh", 0.0)) == pytest.approx(1.0, abs=1e-9)
    sb = np.array([0.1, 0.3, 1.0])
    sw = theory.edge_of_chaos("tanh", sb)
    np.testing.assert_allclose(theory.chi1("tanh", sw, sb), 1.0, rtol=1e-9)
    assert np.all(np.diff(sw) > 0)


def test_edge_of_chaos_tanh_against_independent_brentq():
    """sigma_b^2 = 0.05: nested brentq on quad-based q-map and chi_1 (Schoenholz et al. 2017, Fig. 1)."""
    sb2 = 0.05

    def m2(q):
        return quad_expect(lambda h: math.tanh(h) ** 2, q)

    def dphi2(q):
        return quad_expect(lambda h: (1 - math.tanh(h) ** 2) ** 2, q)

    def chi1_minus_one(sw):
        q_star = optimize.brentq(lambda q: sw ** 2 * m2(q) + sb2 - q, 1e-6, 100.0, xtol=1e-13, rtol=1e-12)
        return sw ** 2 * dphi2(q_star) - 1.0

    ref = optimize.brentq(chi1_minus_one, 1.05, 2.0, xtol=1e-11, rtol=1e-11)
    assert 1.2 < ref < 1.5
    assert float(theory.edge_of_chaos("tanh", math.sqrt(sb2))) == pytest.approx(ref, rel=1e-8)


def test_relu_edge_of_chaos_is_sqrt2():
    np.testing.assert_allclose(theory.edge_of_chaos("relu", [0.0, 0.5]), math.sqrt(2.0), rtol=1e-9)


@pytest.mark.parametrize("name", ["tanh", "gelu", "selu", "sigmoid"])
def test_c_equal_one_is_a_fixed_point_of_the_c_map(name):
    q = np.array([0.1, 1.0, 5.0])
    np.testing.assert_allclose(theory.c_map(name, 1.7, 0.2, q, 1.0), 1.0, rtol=1e-12)


def test_relu_c_map_is_the_arc_cosine_map():
    """Oracle: Cho & Saul's arc-cosine kernel, E[relu(u1) relu(u2)] = q (sqrt(1-c^2) + (pi - acos c) c)/(2 pi)."""
    q, sw, sb = 1.3, 1.2, 0.4
    c = np.linspace(-0.95, 1.0, 9)
    k = q * (np.sqrt(1 - c ** 2) + (np.pi - np.arccos(c)) * c) / (2 * np.pi)
    ref = (sw ** 2 * k + sb ** 2) / (sw ** 2 * q / 2 + sb ** 2)
    np.testing.assert_allclose(theory.c_map("relu", sw, sb, q, c), ref, rtol=1e-13)
    # the quadrature path gives the same map
    act = get_activation("relu")
    kq = theory.bivariate_expectation(lambda a, b: act.phi(a) * act.phi(b), q, q, c)
    np.testing.assert_allclose(kq, k, rtol=1e-10, atol=1e-14)


def test_chaotic_correlation_fixed_point_and_depth_scales():
    sw, sb = 2.5, 0.1
    q_star = float(theory.fixed_point_q("tanh", sw, sb))
    c_star = float(theory.fixed_point_c("tanh", sw, sb))
    assert 0 < c_star < 1
    assert float(theory.c_map("tanh", sw, sb, q_star, c_star)) == pytest.approx(c_star, rel=1e-9)
    # chi_c is the slope of the c-map at c*: compare with a central difference of c_map
    h = 1e-5
    slope = (theory.c_map("tanh", sw, sb, q_star, c_star + h) - theory.c_map("tanh", sw, sb, q_star, c_star - h)) / (2 * h)
    xi_q, xi_c = theory.depth_scales("tanh", sw, sb)
    assert float(xi_c) == pytest.approx(-1 / math.log(float(slope)), rel=1e-6)
    # xi_q from the slope of the q-map at q*
    hq = 1e-5 * q_star
    qslope = (theory.q_map("tanh", sw, sb, q_star + hq) - theory.q_map("tanh", sw, sb, q_star - hq)) / (2 * hq)
    assert float(xi_q) == pytest.approx(-1 / math.log(float(qslope)), rel=1e-6)
    # ordered phase: c* = 1 and chi_c = chi_1; critical: xi_c infinite
    assert float(theory.fixed_point_c("tanh", 0.8, 0.1)) == 1.0
    assert math.isinf(float(theory.depth_scales("tanh", 1.0, 0.0)[1]))


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------
def test_predict_relu_dead_half_and_kaiming_keeps_q():
    s = theory.predict(NetSpec.uniform(depth=6, width=64, activation="relu", init="kaiming"))
    assert s.source == "theory" and s.meta["c0"] == 0.5
    np.testing.assert_allclose(s.dead, 0.5, rtol=1e-15)
    np.testing.assert_allclose(s.q, 2.0, rtol=1e-13)          # q_1 = 2 input_var, E[relu(h)^2] = q/2 = 1
    np.testing.assert_allclose(s.act_sq, 1.0, rtol=1e-13)
    np.testing.assert_allclose(s.chi1, 1.0, rtol=1e-13)
    assert np.all(np.isnan(s.saturated))


def test_predict_tanh_saturated_fraction_is_the_gaussian_tail_probability():
    spec = NetSpec.uniform(depth=3, width=200, activation="tanh", init="kaiming")
    s = theory.predict(spec, threshold=0.97)
    cut = math.atanh(0.97)
    for q, sat in zip(s.q, s.saturated):
        pdf = lambda h: math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
        tail = 2 * integrate.quad(pdf, cut, np.inf, epsabs=0, epsrel=1e-12)[0]
        assert sat == pytest.approx(tail, rel=1e-10)


def test_predict_against_an_independent_layer_loop():
    """Mixed activations, widths and scales; oracle: quad moments and the recursions written out here."""
    spec = NetSpec(input_dim=30, widths=[40, 20, 50], activation=["tanh", "relu", "sigmoid"],
                   sigma_w=[1.3, 1.6, 0.9], sigma_b=[0.1, 0.0, 0.3], input_var=0.7)
    s = theory.predict(spec, c0=0.2)
    acts = spec.activations()
    q_prev_m2, q, d2 = spec.input_var, [], []
    for l, act in enumerate(acts):
        ql = spec.sigma_w[l] ** 2 * q_prev_m2 + spec.sigma_b[l] ** 2
        q.append(ql)
        q_prev_m2 = quad_expect(lambda h: float(act.phi(h)) ** 2, ql)
        d2.append(quad_expect(lambda h: float(act.dphi(h)) ** 2, ql))
    np.testing.assert_allclose(s.q, q, rtol=1e-10)
    g = [d2[-1]]
    for l in (1, 0):
        g.insert(0, spec.widths[l + 1] * spec.sigma_w[l + 1] ** 2 / spec.widths[l] * d2[l] * g[0])
    np.testing.assert_allclose(s.grad_var, g, rtol=1e-10)
    np.testing.assert_allclose(s.chi1, np.array(spec.sigma_w) ** 2 * np.array(d2), rtol=1e-10)
    # first-layer correlation: (sigma_w^2 c0 input_var + sigma_b^2) / q_1
    assert s.corr[0] == pytest.approx((1.3 ** 2 * 0.2 * 0.7 + 0.01) / q[0], rel=1e-14)


def test_predict_exploding_and_vanishing_networks_return_flags_not_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no RuntimeWarning may escape either
        boom = theory.predict(NetSpec(input_dim=16, widths=[16] * 1000, activation="relu", sigma_w=100.0,
                                      sigma_b=1.0))
        fade = theory.predict(NetSpec(input_dim=16, widths=[16] * 300, activation="tanh", sigma_w=0.2))
        hot = theory.predict(NetSpec(input_dim=16, widths=[16] * 200, activation="tanh", sigma_w=100.0))
    assert "overflow" in boom.flags()["q"] and "overflow" in boom.flags()["grad_var"]
    assert "vanished" in fade.flags()["q"] and fade.q[-1] == 0.0
    assert np.all(np.isfinite(hot.q)) and np.isinf(hot.grad_var[0])
    assert hot.saturated[-1] > 0.98          # P(|h| > atanh 0.97), h ~ N(0, 9920)


def test_predict_rejects_bad_arguments():
    spec = NetSpec.uniform(depth=2, width=8)
    with pytest.raises(ValueError, match="c0"):
        theory.predict(spec, c0=1.5)
    with pytest.raises(ValueError, match="threshold"):
        theory.predict(spec, threshold=1.0)
    with pytest.raises(ValueError, match="NetSpec"):
        theory.predict({"widths": [3]})


# ---------------------------------------------------------------------------------------------
# Phase diagram
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "erf", "relu"])
def test_phase_diagram_agrees_with_the_direct_functions(name):
    """Tables interpolate log E[phi^2] (64 nodes per decade) and log G (error ~1e-8 relative), so
    q* and c agree to ~1e-9 / 1e-7; xi_c uses the interpolant's derivative (~1e-6)."""
    sw, sb = np.array([0.7, 1.3, 2.2, 3.0]), np.array([0.0, 0.2, 0.6])
    pd = theory.phase_diagram(name, sw, sb, depth=30, c0=0.4)
    assert pd.q_star.shape == (3, 4) and pd.in_table.all()
    for i, j in [(0, 0), (1, 2), (2, 3), (1, 1)]:
        q_star = float(theory.fixed_point_q(name, sw[j], sb[i]))
        if not math.isfinite(q_star):
            assert pd.q_star[i, j] == q_star
            continue
        assert pd.q_star[i, j] == pytest.approx(q_star, rel=1e-8, abs=1e-300)
        assert pd.chi1[i, j] == pytest.approx(float(theory.chi1(name, sw[j], sb[i])), rel=1e-8)
        assert pd.c_star[i, j] == pytest.approx(float(theory.fixed_point_c(name, sw[j], sb[i])), abs=1e-6)
        xi_c = float(theory.depth_scales(name, sw[j], sb[i])[1])
        assert pd.xi_c[i, j] == pytest.approx(xi_c, rel=1e-4)
        net = theory.predict(NetSpec(input_dim=8, widths=[8] * 30, activation=name, sigma_w=sw[j], sigma_b=sb[i]),
                             c0=0.4)
        assert pd.c_depth[i, j] == pytest.approx(net.corr[-1], abs=1e-6)
        assert pd.q_depth[i, j] == pytest.approx(net.q[-1], rel=1e-8)


def test_phase_diagram_tanh_boundary_is_the_edge_of_chaos():
    sb = np.array([0.0, 0.3, 0.8])
    eoc = theory.edge_of_chaos("tanh", sb)
    sw = np.concatenate([eoc * 0.97, eoc * 1.03])
    pd = theory.phase_diagram("tanh", sw, sb, depth=10)
    for i in range(3):
        assert pd.chi1[i, i] < 1 < pd.chi1[i, 3 + i]
        assert pd.c_star[i, i] == 1.0 and pd.c_star[i, 3 + i] < 1.0


def test_phase_diagram_rejects_bad_grids():
    with pytest.raises(ValueError, match="grids"):
        theory.phase_diagram("tanh", [], [0.0])
    with pytest.raises(ValueError, match="depth"):
        theory.phase_diagram("tanh", [1.0], [0.0], depth=0)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _cli(*argv):
    from sigprop.cli import main
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["theory", *argv])
    return rc, buf.getvalue()


def test_cli_table_json_and_out(tmp_path):
    rc, text = _cli("--depth", "4", "--width", "64", "--activation", "tanh")
    assert rc == 0 and "fixed point q*" in text and "sat %" in text
    rc, text = _cli("--depth", "3", "--width", "32", "--activation", "relu", "--json")
    stats = LayerStats.from_dict(json.loads(text))
    assert stats.source == "theory" and stats.depth == 3
    np.testing.assert_allclose(stats.dead, 0.5)
    out = tmp_path / "t.npz"
    rc, _ = _cli("--depth", "3", "--init", "scaled(0.3)", "--out", str(out))
    assert rc == 0 and LayerStats.load(out).meta["threshold"] == 0.97


@pytest.mark.parametrize("argv", [["--activation", "nope"], ["--c0", "2"], ["--out", "x.txt"], ["--depth", "0"],
                                  ["--threshold", "1.5"]])
def test_cli_bad_arguments_are_one_line_errors(argv, capsys):
    rc, _ = _cli(*argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "error" in err


def test_tanh_second_moment_at_q1_matches_mpmath_value():
    """Independent 25-digit oracle: mpmath quadrature in sigprop.symbolic.tanh."""
    from sigprop.symbolic.tanh import tanh_second_moment_unit
    ref = tanh_second_moment_unit().value
    assert float(theory._calculus("tanh").m2(1.0)) == pytest.approx(ref, rel=2e-15)


def test_theory_is_a_package_with_the_same_public_names():
    # issue 14 item 14: five concerns in five modules, the public API unchanged
    import importlib
    import inspect

    import sigprop.theory as T
    for module in ("quadrature", "moments", "maps", "network", "phase"):
        importlib.import_module(f"sigprop.theory.{module}")
    names = ["predict", "phase_diagram", "PhaseDiagram", "q_map", "c_map", "fixed_point_q", "fixed_point_c", "chi1",
             "edge_of_chaos", "depth_scales", "gaussian_expectation", "bivariate_expectation", "N_GL", "Z_MAX",
             "moments_of", "ActivationMoments", "_calculus"]
    namespace = {}
    exec(f"from sigprop.theory import {', '.join(names)}", namespace)
    assert all(namespace[n] is getattr(T, n) for n in names)
    assert set(T.__all__) <= set(dir(T))
    # one bisection: no other halving loop in the package
    halving = [m for m in ("maps", "phase", "network", "moments", "quadrature")
               if "mid = 0.5 *" in inspect.getsource(importlib.import_module(f"sigprop.theory.{m}"))]
    assert halving == ["maps"] and inspect.getsource(T.maps.bisect).count("mid = 0.5 *") == 1


def _count_calls(monkeypatch, cls, name):
    calls = []
    original = getattr(cls, name)

    def counted(self, *args, **kwargs):
        if self.closed_kernels is None:               # quadrature, not a derived closed form
            calls.append(1)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(cls, name, counted)
    return calls


def test_deep_exploding_nets_stop_integrating_once_in_the_scaling_regime_or_overflowed(monkeypatch):
    # issue 14 item 9: gelu at sigma_w = 3, depth 1000 overflows at layer 469; the bivariate
    # quadrature ran at every finite layer (32-45 s), now only until gelu is ReLU to rounding
    from sigprop.theory.moments import ActivationMoments
    kernels = _count_calls(monkeypatch, ActivationMoments, "kernel")
    m2 = _count_calls(monkeypatch, ActivationMoments, "m2")
    spec = NetSpec(input_dim=100, widths=[100] * 1000, activation="gelu", sigma_w=3.0, sigma_b=0.0)
    s = theory.predict(spec)
    first_inf = int(np.argmax(~np.isfinite(s.q)))
    assert 400 < first_inf < 1000 and np.all(np.isinf(s.q[first_inf:]))
    assert len(kernels) < 80                          # not one per finite layer (469)
    assert len(m2) < first_inf + 5                    # overflowed layers reuse their limits


def test_scaling_regime_kernel_agrees_with_quadrature(monkeypatch):
    from sigprop.theory.moments import ActivationMoments
    spec = NetSpec(input_dim=100, widths=[100] * 110, activation="gelu", sigma_w=3.0, sigma_b=0.0)
    fast = theory.predict(spec)
    monkeypatch.setattr(ActivationMoments, "kernel_at_scale", lambda *args: None)
    full = theory.predict(spec)
    for k in full.values:
        assert np.array_equal(np.isfinite(fast[k]), np.isfinite(full[k])), k
        ok = np.isfinite(full[k])
        assert np.allclose(fast[k][ok], full[k][ok], rtol=1e-14, atol=0), k
    # the distance from c = 1, the quantity the correlation map moves, to 1e-11
    assert np.allclose(1 - fast.corr, 1 - full.corr, rtol=1e-11, atol=0)


def test_phase_diagram_tables_are_as_exact_as_predict():
    # issue 14 item 9: with cubic tables c after 100 layers was off by up to 1.1e-6 (0.7% relative
    # on the chaotic sigma_b = 0 row); degree-7 interpolation brings the tables to predict's digits
    sw, sb, depth = np.array([0.9, 1.2, 1.5, 2.0, 3.0, 4.0]), np.array([0.0, 0.05, 0.3, 1.0]), 100
    pd = theory.phase_diagram("tanh", sw, sb, depth=depth, c0=0.5, q0=1.0)
    for j, b in enumerate(sb):
        for i, w in enumerate(sw):
            p = theory.predict(NetSpec(input_dim=4, widths=[4] * depth, activation="tanh", sigma_w=w, sigma_b=b), c0=0.5)
            assert pd.q_depth[j, i] == pytest.approx(p.q[-1], rel=1e-12, abs=0), (w, b)
            assert abs(pd.c_depth[j, i] - p.corr[-1]) < 1e-11, (w, b)
            if p.corr[-1] < 1:        # the chaotic row keeps its relative digits too
                assert (1 - pd.c_depth[j, i]) == pytest.approx(1 - p.corr[-1], rel=1e-11), (w, b)
    SW, SB = np.meshgrid(sw, sb)
    assert np.allclose(pd.c_star, theory.fixed_point_c("tanh", SW, SB), rtol=0, atol=1e-11)
    assert np.allclose(pd.xi_c, theory.depth_scales("tanh", SW, SB)[1], rtol=1e-10, atol=0)
