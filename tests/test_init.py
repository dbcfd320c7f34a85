"""Init schemes: per-layer sigma_w rules and samplers."""
import math

import numpy as np
import pytest

from sigprop.init import get_init, sample_weights


@pytest.mark.parametrize("name, fan_in, fan_out, expected_std", [
    ("standard_normal", 30, 200, 1.0),
    ("scaled(0.3)", 30, 200, 0.3),
    ("lecun", 30, 200, 1 / math.sqrt(30)),
    ("xavier", 30, 200, math.sqrt(2 / 230)),
    ("glorot_uniform(gain=2.0)", 30, 200, 2 * math.sqrt(2 / 230)),
    ("kaiming", 30, 200, (5 / 3) / math.sqrt(30)),                 # tanh: PyTorch gain 5/3
    ("kaiming(mode='fan_out')", 30, 200, (5 / 3) / math.sqrt(200)),
    ("kaiming(gain=1.0)", 30, 200, 1 / math.sqrt(30)),
    ("orthogonal", 30, 200, 1 / math.sqrt(200)),
    ("mup", 30, 200, (5 / 3) / math.sqrt(30)),
])
def test_weight_std_rules(name, fan_in, fan_out, expected_std):
    scheme = get_init(name)
    assert scheme.weight_std(fan_in, fan_out, "tanh") == pytest.approx(expected_std, rel=1e-14)
    assert scheme.sigma_w(fan_in, fan_out, "tanh") == pytest.approx(expected_std * math.sqrt(fan_in), rel=1e-14)


@pytest.mark.parametrize("distribution", ["normal", "uniform", "orthogonal"])
def test_samplers_have_the_stated_entry_variance(distribution):
    # entry variance estimated from 300*200 entries; SE of a sample variance ~ var*sqrt(2/N) (normal),
    # smaller for uniform; allow 5 SE of the normal case.
    rng = np.random.default_rng(1)
    std = 0.37
    w = sample_weights(rng, distribution, std, 300, 200)
    n = w.size
    assert w.shape == (300, 200)
    assert abs(w.var() - std ** 2) < 5 * std ** 2 * math.sqrt(2 / n)


@pytest.mark.parametrize("fan_in, fan_out", [(50, 50), (80, 30), (30, 80)])
def test_orthogonal_is_semi_orthogonal(fan_in, fan_out):
    w = sample_weights(np.random.default_rng(2), "orthogonal", 1 / math.sqrt(max(fan_in, fan_out)), fan_in, fan_out)
    gram = w @ w.T if fan_in <= fan_out else w.T @ w
    # entry std 1/sqrt(max fan) is exactly what orthonormal rows (or columns) of length max fan have
    np.testing.assert_allclose(gram, np.eye(min(fan_in, fan_out)), atol=1e-12)


def test_mup_output_and_learning_rate_scaling():
    mup = get_init("mup")
    assert mup.output_weight_std(512, 27) == pytest.approx(1 / 512)
    assert mup.lr_scale("hidden", 1024, 256) == 1.0
    assert mup.lr_scale("output", 1024, 256) == pytest.approx(0.25)
    assert mup.lr_scale("input", 1024, 256) == pytest.approx(4.0)
    assert get_init("kaiming").lr_scale("output", 1024, 256) == 1.0


def test_bad_init_names_and_parameters():
    with pytest.raises(ValueError, match="unknown init scheme 'kaimng'"):
        get_init("kaimng")
    with pytest.raises(ValueError, match="needs a std"):
        get_init("scaled")
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        get_init("kaiming(mode='both')")
    with pytest.raises(ValueError, match="gain must be a finite number >= 0"):
        get_init("xavier(gain=-1)")
    with pytest.raises(ValueError, match="unknown weight distribution"):
        sample_weights(np.random.default_rng(0), "cauchy", 1.0, 2, 2)


def test_names_round_trip():
    for name in ["kaiming_normal(mode='fan_out')", "scaled(std=0.3)", "xavier_uniform(gain=2.0)", "orthogonal"]:
        assert get_init(get_init(name).name) == get_init(name)
