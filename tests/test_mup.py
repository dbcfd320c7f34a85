"""muP: the derived exponents against the published tables, the scalings training uses."""
import numpy as np
import pytest
import sympy as sp

from sigprop.symbolic import mup as M

n = sp.Symbol("n", positive=True)
k = sp.Integer(7)          # a fixed (width-independent) dimension: vocabulary, input size

# (fan_in, fan_out) of each kind as functions of the width n
FANS = {"input_weight": (k, n), "hidden_weight": (n, n), "output_weight": (n, k), "hidden_bias": (1, n),
        "output_bias": (1, k)}

# Tensor Programs V (Yang et al. 2022), Table 3, no multipliers: initial variance and learning rate
# (relative to eta) as functions of fan_in and fan_out.
PUBLISHED_MUP = {
    # kind:           (init variance,          SGD learning rate,   Adam learning rate)
    "input_weight":  (lambda i, o: 1 / i,     lambda i, o: o,      lambda i, o: 1),
    "hidden_bias":   (lambda i, o: 1 / i,     lambda i, o: o,      lambda i, o: 1),
    "output_bias":   (lambda i, o: 1 / i,     lambda i, o: o,      lambda i, o: 1),
    "output_weight": (lambda i, o: 1 / i**2,  lambda i, o: 1 / i,  lambda i, o: 1 / i),
    "hidden_weight": (lambda i, o: 1 / i,     lambda i, o: 1,      lambda i, o: 1 / i),
}
# SP (same paper): variance 1/fan_in for every tensor, one learning rate
PUBLISHED_SP = {kind: (lambda i, o: 1 / i, lambda i, o: 1, lambda i, o: 1) for kind in PUBLISHED_MUP}


def _log_n(expr):
    """The exponent e of expr = const * n^e."""
    e = sp.simplify(n * sp.diff(sp.log(expr), n))
    assert e.free_symbols == set(), expr
    return e


@pytest.mark.parametrize("parametrization,published", [("mup", PUBLISHED_MUP), ("sp", PUBLISHED_SP)])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_derived_exponents_equal_tensor_programs_v_table_3(parametrization, published, optimizer):
    table = M.abc_table(parametrization, optimizer)
    assert set(table) == set(published)
    for kind, (a, b, c) in table.items():
        fi, fo = FANS[kind]
        var, lr_sgd, lr_adam = published[kind]
        lr = lr_sgd if optimizer == "sgd" else lr_adam
        assert a == 0, kind
        assert -2 * b == _log_n(sp.sympify(var(fi, fo))), (kind, "init")
        assert -c == _log_n(sp.sympify(lr(fi, fo))), (kind, "lr")


def test_a_wrong_table_is_caught():
    # the comparison has power: swapping Adam's and SGD's hidden learning rate fails it
    fi, fo = FANS["hidden_weight"]
    assert -M.abc_table("mup", "adam")["hidden_weight"][2] != _log_n(sp.sympify(PUBLISHED_MUP["hidden_weight"][1](fi, fo)))


def test_multiplier_symmetry_leaves_the_network_unchanged():
    # (a, b, c) -> (a + t, b - t, c - 2t) for SGD and (a + t, b - t, c - t) for Adam
    for opt, dc in (("sgd", 2), ("adam", 1)):
        d = M.mup_exponents(opt)
        t = sp.Rational(1, 3)
        base = d.expr.subs({a: 0 for a in d.symbols})
        moved = d.expr.subs({a: t for a in d.symbols})
        assert moved - base == sp.Matrix([[t, -t, -dc * t]] * len(M.TENSORS))


def test_updates_are_theta_one_in_mup_and_grow_in_sp():
    for opt in M.OPTIMIZERS:
        assert all(v == 0 for v in M.update_exponents("mup", opt).values())
    assert M.update_exponents("sp", "adam")["hidden_weight"] == 1
    assert M.update_exponents("sp", "adam")["output_weight"] == 1
    assert M.update_exponents("sp", "sgd")["hidden_weight"] == sp.Rational(1, 2)


def test_scalings_are_one_at_the_base_width_and_powers_of_the_ratio():
    for p in M.PARAMETRIZATIONS:
        for o in M.OPTIMIZERS:
            f = M.scalings(p, o).numeric
            assert np.array_equal(f(1.0), np.ones((5, 3)))
            t = M.abc_matrix(p, o)
            expected = np.array([[8.0 ** -float(t[i, j]) for j in range(3)] for i in range(5)])
            np.testing.assert_allclose(f(8.0), expected, rtol=1e-15)
    with pytest.raises(ValueError, match="width ratio"):
        M.scalings("mup", "adam").numeric(0.0)
    with pytest.raises(ValueError, match="parametrization"):
        M.scalings("ntk", "adam")


def test_attention_logit_scale():
    assert M.attention_logit_scale("sp").expr == 1 / sp.sqrt(M.d)
    assert M.attention_logit_scale("mup").expr == 1 / M.d
    assert M.attention_logit_scale("mup").numeric(64.0) == pytest.approx(1 / 64)
    assert M.attention_logit_scale("sp").numeric(64.0) == pytest.approx(1 / 8)


def test_attention_moments_against_monte_carlo():
    # mean and variance of q_i k_i used in the derivation, against sampling (4 standard errors)
    rng = np.random.default_rng(0)
    rho, s, N = 0.6, 1.3, 400_000
    z1, z2 = rng.standard_normal((2, N))
    prod = (s * z1) * (s * (rho * z1 + np.sqrt(1 - rho**2) * z2))
    mean_se = prod.std() / np.sqrt(N)
    assert abs(prod.mean() - rho * s**2) < 4 * mean_se
    var_se = np.sqrt(np.mean((prod - prod.mean()) ** 4) / N)    # se of the sample variance, approx.
    assert abs(prod.var() - s**4 * (1 + rho**2)) < 4 * var_se


def test_gpt_parametrization_scales_init_rates_and_attention():
    from sigprop.gpt.model import GPTConfig
    base = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=8, vocab_size=11)
    sp_wide = base.replace(n_embd=128)
    mup_wide = base.replace(n_embd=128, parametrization="mup", base_width=32)
    mup_base = base.replace(parametrization="mup", base_width=32)
    # at the base width muP is SP
    assert mup_base.attn_scale == base.attn_scale == pytest.approx(1 / 4)
    assert [f for f, _ in mup_base.lr_segments()] == [1.0]
    assert mup_base.weight_std("h0.qkv_w") == base.weight_std("h0.qkv_w")
    # 4 x wider: hidden std x 1/2 of the base std, hidden Adam rate x 1/4, attention 1/d scaled to the base
    assert sp_wide.attn_scale == pytest.approx(1 / 8) and mup_wide.attn_scale == pytest.approx(4 / 64)
    assert mup_wide.weight_std("h1.fc_w") == pytest.approx(base.weight_std("h1.fc_w") / 2)
    assert mup_wide.weight_std("wte") == sp_wide.weight_std("wte")
    # the tied readout: muP's output std factor 1/r moved into a logit multiplier (1 at the base width)
    assert base.output_multiplier == sp_wide.output_multiplier == mup_base.output_multiplier == 1.0
    assert mup_wide.output_multiplier == pytest.approx(1 / 4)
    groups = dict(mup_wide.lr_segments())
    assert set(groups) == {1.0, 0.25}
    covered = sorted((int(a), int(b)) for segs in groups.values() for a, b, _ in segs)
    assert covered[0][0] == 0 and covered[-1][1] == mup_wide.n_params
    assert all(b == c for (_, b), (c, _) in zip(covered, covered[1:]))      # a partition of theta
    off = mup_wide.offsets()
    a, b, _ = off["h0.qkv_w"]
    assert any(s <= a and b <= e for s, e, _ in groups[0.25])
    with pytest.raises(ValueError, match="parametrization"):
        GPTConfig(parametrization="ntk")


def test_gpt_trains_in_mup_and_equals_sp_at_the_base_width():
    from sigprop.gpt.train import GPTTrainConfig, train
    small = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4, warmup=2, lr=3e-3, steps=6,
                 eval_every=0, diag_every=0, checkpoint_every=0, dtype="float64")
    sp_run = train(GPTTrainConfig(**small), progress=False)
    at_base = train(GPTTrainConfig(**small, parametrization="mup", base_width=32), progress=False)
    np.testing.assert_array_equal(sp_run.params.theta, at_base.params.theta)
    wide = train(GPTTrainConfig(**dict(small, n_embd=64), parametrization="mup", base_width=32), progress=False)
    assert np.all(np.isfinite(wide.losses)) and wide.losses[-1] < wide.losses[0]
