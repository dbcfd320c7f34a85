"""The character MLP's SP/muP parametrisations and its hand-written AdamW."""
import numpy as np
import pytest

from sigprop.charmlp import TrainConfig, train
from sigprop.charmlp.model import OUTPUT_FIX_SCALE, Model
from sigprop.charmlp.train import initial_params, load_checkpoint

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"] * 20


def adam_reference(theta, g, m, v, lr, t, b1, b2, eps, wd):
    """AdamW as written in Loshchilov & Hutter's Algorithm 2 / PyTorch's AdamW, plain numpy."""
    theta = theta * (1 - lr * wd)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g**2
    mhat = m / (1 - b1**t)
    vhat = v / (1 - b2**t)
    return theta - lr * mhat / (np.sqrt(vhat) + eps), m, v


def test_adam_kernel_matches_numpy_in_float64():
    K = Model(".ab", 3, 4, [8]).kernels
    rng = np.random.default_rng(0)
    N = 1000
    theta, g = rng.standard_normal(N), rng.standard_normal(N) * 1e-2
    m, v = rng.standard_normal(N) * 1e-3, rng.random(N) * 1e-4
    mult = rng.choice([0.25, 1.0, 4.0], N)
    lr, t, b1, b2, eps, wd = 3e-3, 7, 0.9, 0.95, 1e-8, 0.1
    th_k, m_k, v_k = theta.copy(), m.copy(), v.copy()
    K.adam(th_k, g, m_k, v_k, mult, lr, t, b1, b2, eps, wd)
    th_r, m_r, v_r = adam_reference(theta, g, m, v, lr * mult, t, b1, b2, eps, wd)
    np.testing.assert_allclose(m_k, m_r, rtol=1e-13, atol=0)   # a few ulps (fused multiply-add)
    np.testing.assert_allclose(v_k, v_r, rtol=1e-13, atol=0)   # a few ulps (fused multiply-add)
    # theta to a few ulps of itself: 1e-15 relative, while the update is 1e-3 to 1e-2 of theta
    np.testing.assert_allclose(th_k, th_r, rtol=4 * np.finfo(float).eps, atol=0)


def test_one_adam_training_step_matches_numpy_in_float64():
    cfg = TrainConfig(layers=2, width=16, steps=1, batch_size=8, lr=1e-2, optimizer="adam", dtype="float64",
                      parametrization="mup", base_width=8, weight_decay=0.01, diag_every=0, checkpoint_every=0,
                      seed=3)
    p0 = initial_params(cfg, "".join(sorted(set(".".join(WORDS) + "."))))
    res = train(cfg, words=WORDS, progress=False)
    # the same step by hand: the gradient of that batch from the kernels' loss_and_grad (checked against
    # finite differences in test_charmlp.py), then AdamW in numpy
    from sigprop.charmlp.train import Data, _streams, _Workspace
    data = Data.build(cfg, WORDS)
    model = p0.model
    _, batch_rng, _ = _streams(cfg.seed)
    raw = batch_rng.bit_generator.random_raw(cfg.batch_size).reshape(1, -1)
    wk = _Workspace(model, cfg.batch_size)
    K = model.kernels
    Xtr, Ytr = data.arrays["train"]
    K.draw_batch(raw[0], Xtr, Ytr, wk.ctx, wk.y)
    grad = np.zeros_like(p0.theta)
    bn = p0.bnstate.copy()
    K.loss_and_grad(p0.theta, grad, bn, wk.ctx, wk.y, wk.ws, wk.tmp, wk.lay, model.n_embd, cfg.bn_momentum,
                    model.bn_eps)
    mult = model.lr_multipliers("mup", "adam", 8)
    z = np.zeros_like(grad)
    expected, _, _ = adam_reference(p0.theta, grad, z, z, cfg.lr * mult, 1, cfg.beta1, cfg.beta2, cfg.adam_eps,
                                    cfg.weight_decay)
    np.testing.assert_allclose(res.params.theta, expected, rtol=4 * np.finfo(float).eps,
                               atol=4 * np.finfo(float).eps * cfg.lr)   # a few ulps of theta or of the step
    assert np.max(np.abs(expected - p0.theta)) > 1e-3   # a real step
    assert np.any(mult != 1.0)


def test_mup_equals_sp_at_the_base_width_and_scales_from_there():
    vocab = ".abc"
    sp = Model(vocab, 3, 10, [64, 64], "tanh")
    mup = Model(vocab, 3, 10, [256, 256], "tanh")
    # at base width: identical parameters and unit learning-rate factors
    a = sp.init_params(np.random.default_rng(1), "kaiming", False)[0]
    b = sp.init_params(np.random.default_rng(1), "kaiming", False, "mup", 64)[0]
    assert np.array_equal(a, b)
    assert np.all(sp.lr_multipliers("mup", "adam", 64) == 1.0)
    # 4 x the base width: W_out std 1/sqrt(64) * (1/4), hidden and input unchanged (Kaiming), Adam rates
    th_sp = mup.init_params(np.random.default_rng(2), "kaiming", False)[0]
    th_mu = mup.init_params(np.random.default_rng(2), "kaiming", False, "mup", 64)[0]
    n_sp, n_mu = mup.named(th_sp), mup.named(th_mu)
    np.testing.assert_allclose(n_mu["W_out"], n_sp["W_out"] * (1 / np.sqrt(64) / 4) / (1 / np.sqrt(256)))
    for k in ("C", "W1", "W2", "b_out"):
        assert np.array_equal(n_mu[k], n_sp[k]), k
    mult = mup.named(mup.lr_multipliers("mup", "adam", 64).astype(np.float32))
    assert np.all(mult["W2"] == 0.25) and np.all(mult["W_out"] == 0.25)
    assert np.all(mult["W1"] == 1.0) and np.all(mult["b1"] == 1.0) and np.all(mult["C"] == 1.0)
    mult = mup.named(mup.lr_multipliers("mup", "sgd", 64).astype(np.float32))
    assert np.all(mult["W1"] == 4.0) and np.all(mult["b2"] == 4.0) and np.all(mult["W_out"] == 0.25)
    assert np.all(mult["W2"] == 1.0) and np.all(mult["b_out"] == 1.0)
    # the makemore output fix: 0.01 at the base width, x n0/n beyond
    th = mup.init_params(np.random.default_rng(2), "kaiming", True, "mup", 64)[0]
    th0 = mup.init_params(np.random.default_rng(2), "kaiming", True)[0]
    np.testing.assert_allclose(mup.named(th)["W_out"], mup.named(th0)["W_out"] / 4)
    assert OUTPUT_FIX_SCALE == 0.01


def test_sgd_sp_default_is_unchanged_and_bad_options_are_one_line_errors():
    cfg = TrainConfig(layers=1, width=16, steps=20, diag_every=0, checkpoint_every=0)
    assert cfg.optimizer == "sgd" and cfg.parametrization == "sp"
    # muP at its own width with SGD runs the scaled kernel with unit multipliers: same numbers
    a = train(cfg, words=WORDS, progress=False)
    b = train(cfg.replace(parametrization="mup"), words=WORDS, progress=False)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-6)
    for kw, msg in ((dict(optimizer="lion"), "optimizer"), (dict(parametrization="ntk"), "parametrization"),
                    (dict(base_width=0), "base_width"), (dict(beta2=1.0), "beta2"),
                    (dict(weight_decay=0.1), "weight_decay")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig(**kw)


def test_adam_run_resumes_bitwise(tmp_path):
    cfg = TrainConfig(layers=2, width=32, steps=60, batch_size=16, lr=3e-3, optimizer="adam", parametrization="mup",
                      base_width=16, diag_every=20, checkpoint_every=20, seed=5)
    full = train(cfg, words=WORDS, progress=False)
    train(cfg, words=WORDS, out=tmp_path, progress=False, until=40)
    ck = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ck["step"] == 40 and set(ck["opt_state"]) == {"m", "v"} and np.any(ck["opt_state"]["v"] > 0)
    rest = train(cfg, words=WORDS, out=tmp_path, progress=False, resume_from=tmp_path / "checkpoint.npz")
    assert np.array_equal(rest.params.theta, full.params.theta)
    assert np.array_equal(rest.losses, full.losses)
