"""Activations: one sympy expression each, everything else derived from it."""
import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from sigprop.activations import available_activations, get_activation, register_activation, x

BUILTINS = ["linear", "relu", "leaky_relu(a=0.2)", "tanh", "sigmoid", "erf", "gelu", "selu", "softplus", "swish"]


@pytest.mark.parametrize("name", BUILTINS)
def test_derivative_matches_central_difference(name):
    act = get_activation(name)
    h = np.linspace(-4, 4, 81) + 0.0123  # avoid the kinks at 0
    eps = 1e-6
    fd = (act.phi(h + eps) - act.phi(h - eps)) / (2 * eps)
    np.testing.assert_allclose(act.dphi(h), fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", BUILTINS)
def test_numeric_forms_are_finite_far_out(name):
    act = get_activation(name)
    h = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    with np.errstate(all="raise"):  # the wrappers must not leak floating-point warnings either
        assert np.all(np.isfinite(act.phi(h)))
        assert np.all(np.isfinite(act.dphi(h)))


@pytest.mark.parametrize("name", BUILTINS)
def test_numba_source_agrees_with_numpy_form(name):
    act = get_activation(name)
    namespace = {"math": math}
    exec(act.numba_source(), namespace)
    for h in [-30.0, -2.5, -0.3, 0.7, 3.1, 30.0]:
        assert namespace["phi"](h) == pytest.approx(float(act.phi(h)), rel=1e-14, abs=1e-300)
        assert namespace["dphi"](h) == pytest.approx(float(act.dphi(h)), rel=1e-12, abs=1e-300)


def test_dead_intervals_from_piecewise_derivative():
    assert get_activation("relu").dead_intervals == ((-math.inf, 0.0),)
    assert get_activation("leaky_relu").dead_intervals == ()
    assert get_activation("tanh").dead_intervals == ()
    assert get_activation("linear").dead_intervals == ()


def test_saturation_cutoffs_match_threshold_definition():
    lo, hi = get_activation("tanh").saturation_cutoffs(0.97)
    assert hi == pytest.approx(math.atanh(0.97), rel=1e-14) and lo == pytest.approx(-hi, rel=1e-14)
    # sigmoid has range (0, 1): saturated within 0.015 of either end
    lo, hi = get_activation("sigmoid").saturation_cutoffs(0.97)
    assert 1 / (1 + math.exp(-hi)) == pytest.approx(0.985, rel=1e-13)
    assert get_activation("relu").saturation_cutoffs() is None
    with pytest.raises(ValueError, match="threshold must be in"):
        get_activation("tanh").saturation_cutoffs(1.5)


def test_names_are_canonical_and_parameters_checked():
    assert get_activation("leaky_relu(0.2)") is get_activation("leaky_relu(a=0.2)")
    assert get_activation("leaky_relu(a=0.01)").name == "leaky_relu"  # the default is not spelled out
    assert get_activation("silu").name == "swish"
    with pytest.raises(ValueError, match="unknown activation 'tahn'"):
        get_activation("tahn")
    with pytest.raises(ValueError, match="has no parameter 'b'"):
        get_activation("leaky_relu(b=1)")
    with pytest.raises(ValueError, match="must be a finite number"):
        get_activation("leaky_relu(a='x')")
    with pytest.raises(ValueError, match="cannot read"):
        get_activation("relu(")


def test_conventional_gains():
    assert get_activation("tanh").init_gain == 5 / 3
    assert get_activation("relu").init_gain == pytest.approx(math.sqrt(2), rel=1e-15)
    assert get_activation("leaky_relu(a=0.5)").init_gain == pytest.approx(math.sqrt(2 / 1.25), rel=1e-15)


def test_register_user_activation_gets_every_derived_form():
    act = register_activation("softsign_test", x / (1 + sp.Abs(x)), bounds=(-1, 1))
    assert get_activation("softsign_test") is act
    h = np.array([-3.0, 0.5, 2.0])
    np.testing.assert_allclose(act.phi(h), h / (1 + np.abs(h)), rtol=1e-15)
    np.testing.assert_allclose(act.dphi(h), 1 / (1 + np.abs(h)) ** 2, rtol=1e-14)
    lo, hi = act.saturation_cutoffs(0.97)
    assert hi == pytest.approx(0.97 / 0.03, rel=1e-12)
    # its gain is 1/sqrt(E[phi(z)^2]) by quadrature of the same function
    m2 = stats.norm.expect(lambda z: (z / (1 + abs(z))) ** 2)
    assert act.gain == pytest.approx(1 / math.sqrt(m2), rel=1e-8)
    assert "softsign_test" in available_activations()


def test_register_rejects_bad_expressions():
    with pytest.raises(ValueError, match="one free symbol"):
        register_activation("two_vars", "x*y")
    with pytest.raises(ValueError, match="built-in"):
        register_activation("tanh", "x")
    with pytest.raises(ValueError, match="not finite"):
        register_activation("blowup", "1/x")
    register_activation("same_twice", "x/2")
    with pytest.raises(ValueError, match="already registered"):
        register_activation("same_twice", "x/3")
