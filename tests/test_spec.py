"""NetSpec validation and LayerStats persistence."""
import json
import math

import numpy as np
import pytest

from sigprop.spec import LayerStats, NetSpec


def test_from_init_kaiming_tanh_uses_gain_five_thirds():
    spec = NetSpec.from_init("kaiming", widths=[200] * 5, input_dim=30, activation="tanh")
    assert spec.depth == 5
    assert spec.sigma_w == pytest.approx((5 / 3,) * 5, rel=1e-15)
    # std(W) = gain / sqrt(fan_in): first layer sees the 30 inputs
    assert spec.weight_std[0] == pytest.approx(5 / 3 / math.sqrt(30), rel=1e-15)
    assert spec.init == "kaiming_normal"


def test_standard_normal_has_unit_weight_std_everywhere():
    spec = NetSpec.from_init("standard_normal", widths=[200, 100], input_dim=30, activation="tanh")
    assert spec.weight_std == pytest.approx((1.0, 1.0), rel=1e-15)
    assert spec.sigma_w == pytest.approx((math.sqrt(30), math.sqrt(200)), rel=1e-15)


def test_per_layer_activation_and_broadcast():
    spec = NetSpec(input_dim=4, widths=[3, 2], activation=["relu", "leaky_relu(0.2)"], sigma_w=[1.0, 2.0])
    assert spec.activation == ("relu", "leaky_relu(a=0.2)")
    assert spec.sigma_b == (0.0, 0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_dim=0, widths=[3]), "input_dim must be an integer >= 1, got 0"),
    (dict(input_dim=3, widths=[3, 0]), "widths must be >= 1, got 0 at layer 2"),
    (dict(input_dim=3, widths=[]), "widths must name at least one hidden layer"),
    (dict(input_dim=3, widths=[3], sigma_w=-1.0), "sigma_w must be a finite number >= 0, got -1.0 at layer 1"),
    (dict(input_dim=3, widths=[3], sigma_b=float("nan")), "sigma_b must be a finite number >= 0"),
    (dict(input_dim=3, widths=[3], sigma_w=float("inf")), "sigma_w must be a finite number >= 0"),
    (dict(input_dim=3, widths=[3, 3], sigma_w=[1.0, 1.0, 1.0]), "sigma_w needs 1 or 2 values"),
    (dict(input_dim=3, widths=[3], activation="tanhh"), "unknown activation 'tanhh'"),
    (dict(input_dim=3, widths=[3], weight_dist="cauchy"), "weight_dist must be one of"),
    (dict(input_dim=3, widths=[3], input_var=-2.0), "input_var must be a finite number >= 0"),
])
def test_bad_specs_raise_one_line_errors(kwargs, message):
    with pytest.raises(ValueError) as err:
        NetSpec(**kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_spec_json_round_trip_including_custom_activation():
    from sigprop.activations import register_activation
    register_activation("cube_root_ish", "x/(1 + x**2)**(1/3)")
    spec = NetSpec(input_dim=5, widths=[4, 3], activation=["cube_root_ish", "tanh"], sigma_w=[1.1, 0.3],
                   sigma_b=0.05, input_var=2.0, weight_dist="orthogonal", init="custom")
    again = NetSpec.from_json(spec.to_json())
    assert again == spec


def _stats():
    spec = NetSpec.from_init("xavier_uniform", widths=[8, 8, 8], input_dim=5, activation="tanh")
    rng = np.random.default_rng(0)
    values = {"q": rng.random(3) * 1e-300, "act_mean": np.array([np.inf, -np.inf, np.nan]),
              "grad_var": rng.standard_normal(3) * 1e300, "corr": np.array([0.1, 1 / 3, 2 / 3])}
    se = {"q": rng.random(3), "corr": np.array([np.nan, 0.0, 5e-324])}
    return LayerStats(values, se=se, spec=spec, source="simulation", seed=12345,
                      meta={"c0": 0.5, "n_networks": 64, "note": "ünïcode"})


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_layerstats_round_trip_is_exact(tmp_path, suffix):
    stats = _stats()
    path = stats.save(tmp_path / f"stats{suffix}")
    again = LayerStats.load(path)
    assert again.equals(stats)
    # bit-level equality of every float, not just closeness
    for k in stats.values:
        assert stats.values[k].tobytes() == again.values[k].tobytes()
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_layerstats_validates_shapes_and_source():
    spec = NetSpec(input_dim=3, widths=[3, 3])
    with pytest.raises(ValueError, match="has 3 values for 2 layers"):
        LayerStats({"q": [1, 2, 3]}, spec=spec)
    with pytest.raises(ValueError, match="source must be one of"):
        LayerStats({"q": [1, 2]}, source="guess")
    with pytest.raises(ValueError, match="standard error given for 'corr' but no values"):
        LayerStats({"q": [1, 2]}, se={"corr": [0, 0]})


def test_layerstats_load_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        LayerStats.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a sigprop LayerStats file"):
        LayerStats.load(bad)
    with pytest.raises(ValueError, match="saves to .json or .npz"):
        _stats().save(tmp_path / "x.csv")


def test_flags_mark_overflow_nan_and_vanished():
    s = LayerStats({"q": [1.0, np.inf, 0.0], "act_mean": [np.nan, 0.0, 1.0]})
    f = s.flags()
    assert list(f["q"]) == ["ok", "overflow", "vanished"]
    assert list(f["act_mean"]) == ["nan", "ok", "ok"]  # a zero mean is not a vanished signal
