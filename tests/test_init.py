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


# --- PyTorch's calculate_gain, its Kaiming keywords and nn.Linear's default (issue 14 item 11) -------
# The values below are the formulas of PyTorch's documentation of torch.nn.init.calculate_gain.
TORCH_DOC_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "conv_transpose1d": 1.0,
                   "conv_transpose2d": 1.0, "conv_transpose3d": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0,
                   "relu": math.sqrt(2.0), "selu": 3.0 / 4.0}


@pytest.mark.parametrize("name", sorted(TORCH_DOC_GAINS))
def test_calculate_gain_matches_pytorch_documentation(name):
    from sigprop import calculate_gain
    assert calculate_gain(name) == pytest.approx(TORCH_DOC_GAINS[name], rel=1e-15)


@pytest.mark.parametrize("slope", [None, 0.0, 0.2, 1.0, math.sqrt(5.0), -0.5])
def test_calculate_gain_leaky_relu_is_sqrt_2_over_1_plus_slope_squared(slope):
    from sigprop import calculate_gain
    a = 0.01 if slope is None else slope
    assert calculate_gain("leaky_relu", slope) == pytest.approx(math.sqrt(2.0 / (1.0 + a * a)), rel=1e-15)


@pytest.mark.parametrize("name", ["gelu", "erf", "swish", "softplus", "nope"])
def test_calculate_gain_raises_where_pytorch_does(name):
    from sigprop import calculate_gain, variance_preserving_gain
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        calculate_gain(name)
    if name != "nope":  # sigprop's derived gain exists for every activation
        assert variance_preserving_gain(name) > 1.0


def test_calculate_gain_agrees_with_torch_when_installed():
    torch = pytest.importorskip("torch")
    from sigprop import calculate_gain
    for name in TORCH_DOC_GAINS:
        assert calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15)
    for a in (0.01, 0.2, math.sqrt(5.0)):
        assert calculate_gain("leaky_relu", a) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", a),
                                                                rel=1e-15)


def test_kaiming_takes_pytorchs_nonlinearity_and_a_keywords():
    from sigprop.init import get_init
    # gain from nonlinearity, whatever the layer's activation
    assert get_init("kaiming_normal(nonlinearity='tanh')").sigma_w(64, 64, "relu") == pytest.approx(5.0 / 3.0)
    # a alone: PyTorch's default nonlinearity leaky_relu, std = sqrt(2/(1+a^2)) / sqrt(fan_in)
    std = get_init("kaiming_uniform", a=0.2).weight_std(50, 80)
    assert std == pytest.approx(math.sqrt(2.0 / 1.04) / math.sqrt(50.0), rel=1e-15)
    # fan_out mode: gain / sqrt(fan_out)
    assert get_init("kaiming_normal(mode='fan_out', nonlinearity='relu')").weight_std(50, 80) == \
        pytest.approx(math.sqrt(2.0 / 80.0), rel=1e-15)
    with pytest.raises(ValueError, match="nonlinearity must be one of PyTorch's"):
        get_init("kaiming_normal(nonlinearity='gelu')")


def test_torch_default_is_nn_linear_init():
    from sigprop import NetSpec
    from sigprop.init import get_init
    scheme = get_init("torch_default")
    # nn.Linear: kaiming_uniform_(a=sqrt 5): bound = gain sqrt(3 / fan_in) = 1/sqrt(fan_in), std = bound / sqrt 3
    for fan_in in (3, 30, 1000):
        assert scheme.weight_std(fan_in, 7) == pytest.approx(1.0 / math.sqrt(3.0 * fan_in), rel=1e-15)
        assert scheme.bias_std(fan_in) == pytest.approx(1.0 / math.sqrt(3.0 * fan_in), rel=1e-15)
    assert scheme.distribution == "uniform" and get_init("kaiming").bias_std(10) is None
    spec = NetSpec.from_init("torch_default", widths=[40, 20], input_dim=30)
    assert spec.sigma_w == pytest.approx((1 / math.sqrt(3.0),) * 2, rel=1e-15)
    assert spec.sigma_b == pytest.approx((1 / math.sqrt(90.0), 1 / math.sqrt(120.0)), rel=1e-15)
    assert NetSpec.from_init("torch_default", widths=[4], input_dim=3, sigma_b=0.0).sigma_b == (0.0,)


def test_torch_default_matches_nn_linear_when_installed():
    torch = pytest.importorskip("torch")
    from sigprop.init import get_init
    torch.manual_seed(0)
    lin = torch.nn.Linear(400, 300)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    # uniform draws: the bound is the maximum, up to sampling (120000 and 300 draws)
    assert np.abs(w).max() == pytest.approx(math.sqrt(3.0) * get_init("torch_default").weight_std(400, 300), rel=1e-3)
    assert np.abs(b).max() == pytest.approx(math.sqrt(3.0) * get_init("torch_default").bias_std(400), rel=2e-2)
