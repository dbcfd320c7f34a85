"""The vectorisable exp / expm1 / tanh that the character MLP's kernels use instead of libm.

Reference: mpmath at 40 digits. Tolerances are in units in the last place (ulp)
of the correctly rounded result, of float64 or (for float32 arguments in
compiled code) float32: 4 ulp (the reduction and Taylor polynomial are good to
about 1-2 ulp; 4 leaves room for the final division of tanh).
"""
import math

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")

from sigprop.charmlp import vmath  # noqa: E402

ULP_TOL = 4.0


def _max_ulp_error(f, ref, xs):
    mpmath.mp.dps = 40
    worst = 0.0
    for x in xs:
        y = f(float(x))
        r = ref(mpmath.mpf(float(x)))
        if r == 0:
            assert y == 0
            continue
        worst = max(worst, float(abs(mpmath.mpf(y) - r) / mpmath.mpf(math.ulp(float(r)))))
    return worst


def _max_ulp_error32(f, ref, xs):
    """Same, for a compiled loop over a float32 array, in float32 ulps."""
    mpmath.mp.dps = 40
    xs = np.asarray(xs, dtype=np.float32)
    ys = np.empty_like(xs)
    f(xs, ys)
    worst = 0.0
    for x, y in zip(xs, ys):
        r = ref(mpmath.mpf(float(x)))
        if r == 0:
            assert y == 0
            continue
        ulp = float(np.spacing(np.abs(np.float32(float(r)))))
        worst = max(worst, float(abs(mpmath.mpf(float(y)) - r) / mpmath.mpf(ulp)))
    return worst


def _points(seed, lo_exp, hi_exp, n=1500):
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(lo_exp, hi_exp, n)


def test_tanh_within_4_ulp():
    xs = np.concatenate([_points(0, -20, 1.4), np.linspace(-25, 25, 501), [0.625, 22.0, -22.0]])
    assert _max_ulp_error(vmath.tanh, mpmath.tanh, xs) <= ULP_TOL


def test_exp_and_expm1_within_4_ulp():
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.uniform(-740.0, 709.0, 1500), _points(2, -20, 0)])
    assert _max_ulp_error(vmath.exp, mpmath.exp, xs) <= ULP_TOL
    assert _max_ulp_error(vmath.expm1, mpmath.expm1, xs) <= ULP_TOL


def test_special_values():
    inf, nan = math.inf, math.nan
    assert vmath.tanh(inf) == 1.0 and vmath.tanh(-inf) == -1.0 and math.isnan(vmath.tanh(nan))
    assert vmath.exp(inf) == inf and vmath.exp(-inf) == 0.0 and math.isnan(vmath.exp(nan))
    assert vmath.exp(710.0) == inf and vmath.exp(-746.0) == 0.0
    assert vmath.expm1(-1000.0) == -1.0 and math.isnan(vmath.expm1(nan))
    # subnormal results keep gradual underflow
    assert vmath.exp(-745.0) == math.exp(-745.0)


def test_the_check_detects_a_wrong_function():
    """The same 4-ulp check rejects a tanh that is off by a relative 1e-14 (about 50 ulp)."""
    wrong = lambda x: vmath.tanh(x) * (1 + 1e-14)  # noqa: E731
    assert _max_ulp_error(wrong, mpmath.tanh, np.linspace(0.1, 3, 50)) > ULP_TOL


def test_other_names_are_the_standard_math_functions():
    assert vmath.erf is math.erf and vmath.log is math.log and vmath.pi == math.pi


def _compiled(fn):
    import numba

    @numba.njit
    def loop(xs, ys):
        for i in range(xs.shape[0]):
            ys[i] = fn(xs[i])
    return loop


def test_float32_arguments_compute_in_float32_within_4_ulp():
    import numba
    tanh, exp, expm1 = _compiled(vmath.tanh), _compiled(vmath.exp), _compiled(vmath.expm1)
    xs = np.concatenate([_points(3, -10, 1.1), np.linspace(-12, 12, 801)])
    assert _max_ulp_error32(tanh, mpmath.tanh, xs) <= ULP_TOL
    rng = np.random.default_rng(4)
    xe = np.concatenate([rng.uniform(-103.0, 88.0, 1500), _points(5, -10, 0)])
    assert _max_ulp_error32(exp, mpmath.exp, xe) <= ULP_TOL
    assert _max_ulp_error32(expm1, mpmath.expm1, xe) <= ULP_TOL
    # the float32 path really computes in float32 (and float64 in float64)
    probe = numba.njit(lambda x: vmath.tanh(x))
    probe(np.float32(0.5))
    probe(0.5)
    assert [sig.return_type for sig in probe.nopython_signatures] == [numba.float32, numba.float64]
    special = np.array([np.inf, -np.inf, np.nan, 100.0, -200.0, 0.0], dtype=np.float32)
    out = np.empty_like(special)
    tanh(special, out)
    assert out[0] == 1 and out[1] == -1 and np.isnan(out[2]) and out[3] == 1 and out[4] == -1 and out[5] == 0
    exp(special, out)
    assert out[0] == np.inf and out[1] == 0 and np.isnan(out[2]) and out[3] == np.inf and out[4] == 0
