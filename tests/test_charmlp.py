"""The character MLP: forward against a numpy oracle, gradient check of every parameter,
initial loss against the derived expectation, training, resume, data handling."""
import math

import numpy as np
import pytest

from sigprop.activations import get_activation
from sigprop.charmlp import (Diagnostics, Params, TrainConfig, build_dataset, build_vocab, evaluate, load_words,
                            logits, resume, sample, split_words, train)
from sigprop.charmlp.diagnostics import _layer_values, activation_quantities, hist_edges, measure
from sigprop.charmlp.model import Model
from sigprop.charmlp.train import Data, _Workspace, _probe_stats, _streams, initial_params

_rng = np.random.default_rng(7)
WORDS = ["".join(_rng.choice(list("abcde"), size=_rng.integers(2, 7))) for _ in range(60)]
VOCAB = build_vocab(WORDS)   # ".abcde": V = 6


# ----------------------------------------------------------------------------------------------
# A plain numpy implementation of the same network (the oracle)
# ----------------------------------------------------------------------------------------------
def numpy_loss(params: Params, ctx, y, training=True, return_logits=False):
    m = params.model
    a = {k: v.astype(np.float64) for k, v in params.arrays().items()}
    act = m.activation
    x = a["C"][ctx].reshape(len(ctx), -1)
    for l in range(1, m.depth + 1):
        z = x @ a[f"W{l}"]
        if m.batch_norm:
            if training:
                mean, var = z.mean(axis=0), z.var(axis=0, ddof=1)
            else:
                mean, var = a[f"running_mean{l}"], a[f"running_var{l}"]
            h = a[f"gamma{l}"] * (z - mean) / np.sqrt(var + m.bn_eps) + a[f"beta{l}"]
        else:
            h = z + a[f"b{l}"]
        x = act.phi(h)
    lg = x @ a["W_out"] + a["b_out"]
    mx = lg.max(axis=1, keepdims=True)
    loss = np.mean(np.log(np.exp(lg - mx).sum(axis=1)) + mx[:, 0] - lg[np.arange(len(y)), y])
    return (loss, lg) if return_logits else loss


def small_params(activation="tanh", batch_norm=False, widths=(12, 3), dtype="float64", seed=0):
    """Layer 1 is 9 -> 12 (weights stored (in, out)), layer 2 12 -> 3 (stored (out, in)),
    output 3 -> 6 (stored (in, out)); every parameter jittered away from its init."""
    model = Model(VOCAB, 3, 3, widths, activation, batch_norm, dtype)
    rng = np.random.default_rng(seed)
    theta, bnstate = model.init_params(rng, "kaiming", output_fix=False)
    theta = theta + 0.3 * rng.standard_normal(theta.shape)
    bnstate = bnstate + 0.2 * np.abs(rng.standard_normal(bnstate.shape))
    return Params(model, theta, bnstate)


def small_batch(B=9, seed=1):
    X, Y = build_dataset(WORDS, 3, VOCAB)
    rows = np.random.default_rng(seed).choice(len(X), size=B, replace=False)
    return np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])


def kernel_loss_and_grad(params, ctx, y):
    m = params.model
    wk = _Workspace(m, len(ctx))
    grad = np.zeros_like(params.theta)
    bn = params.bnstate.copy()
    loss = m.kernels.loss_and_grad(params.theta, grad, bn, ctx, y, wk.ws, wk.tmp, wk.lay, m.n_embd, 0.0, m.bn_eps)
    return loss, grad


CASES = [("tanh", False), ("tanh", True), ("relu", False), ("relu", True)]


@pytest.mark.parametrize("activation,batch_norm", CASES)
def test_forward_matches_numpy_oracle(activation, batch_norm):
    p = small_params(activation, batch_norm)
    ctx, y = small_batch()
    loss, _ = kernel_loss_and_grad(p, ctx, y)
    assert loss == pytest.approx(numpy_loss(p, ctx, y), rel=1e-12)
    # evaluation mode (BatchNorm running statistics)
    _, lg = numpy_loss(p, ctx, y, training=False, return_logits=True)
    np.testing.assert_allclose(logits(p, ctx), lg, rtol=1e-12, atol=1e-12)
    assert evaluate(p, (ctx, y)) == pytest.approx(numpy_loss(p, ctx, y, training=False), rel=1e-12)


def _gradcheck_errors(params, ctx, y, analytic=None, eps=1e-5):
    """Per parameter array: norm-wise relative error ||a - n|| / (||a|| + ||n||) between the
    analytic gradient and central differences (L(theta + eps) - L(theta - eps)) / (2 eps)."""
    _, grad = kernel_loss_and_grad(params, ctx, y)
    if analytic is not None:
        grad = analytic(grad)
    theta = params.theta
    numeric = np.zeros_like(theta)
    for i in range(theta.size):
        old = theta[i]
        theta[i] = old + eps
        lp, _ = kernel_loss_and_grad(params, ctx, y)
        theta[i] = old - eps
        lm, _ = kernel_loss_and_grad(params, ctx, y)
        theta[i] = old
        numeric[i] = (lp - lm) / (2 * eps)
    m = params.model
    errors = {}
    for name, (off, shape, _) in m.param_index.items():
        a, n = grad[off:off + int(np.prod(shape))], numeric[off:off + int(np.prod(shape))]
        errors[name] = np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300)
    return errors, np.abs(grad - numeric).max()


@pytest.mark.parametrize("activation,batch_norm", CASES)
def test_gradient_check_every_parameter(activation, batch_norm):
    """float64, central differences with eps = 1e-5 (truncation ~eps^2, rounding ~1e-16/eps):
    relative error below 1e-6 for every parameter array (C, W, b or gamma/beta, W_out, b_out)."""
    p = small_params(activation, batch_norm)
    ctx, y = small_batch()
    errors, max_abs = _gradcheck_errors(p, ctx, y)
    assert max_abs < 1e-8
    expected = {"C", "W1", "W2", "W_out", "b_out"} | ({"gamma1", "beta1", "gamma2", "beta2"} if batch_norm
                                                      else {"b1", "b2"})
    assert set(errors) == expected
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_detects_a_wrong_gradient():
    """The same check fails when one gradient (W2) is off by a relative 1e-4."""
    p = small_params("tanh", True)
    ctx, y = small_batch()
    off, shape, _ = p.model.param_index["W2"]

    def wrong(g):
        g = g.copy()
        g[off:off + int(np.prod(shape))] *= 1 + 1e-4
        return g
    errors, _ = _gradcheck_errors(p, ctx, y, analytic=wrong)
    assert errors["W2"] > 1e-6
    assert max(v for k, v in errors.items() if k != "W2") < 1e-6


def test_float32_engine_agrees_with_float64():
    p64 = small_params("tanh", True)
    p32 = Params(Model.from_dict(dict(p64.model.to_dict(), dtype="float32")), p64.theta, p64.bnstate)
    ctx, y = small_batch(B=32)
    l64, g64 = kernel_loss_and_grad(p64, ctx, y)
    l32, g32 = kernel_loss_and_grad(p32, ctx, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5 * np.abs(g64).max())


# ----------------------------------------------------------------------------------------------
# Initial loss
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def names_data():
    return Data.build(TrainConfig())


def test_initial_loss_with_output_fix_matches_expectation(names_data):
    """With W_out = 0.01 N(0, 1) and b_out = 0 the logits are small, s^2 = Var(logit) ~ 0.01, and
    E[L] = ln V + s^2 (V - 1) / (2 V) + O(s^4) (sigprop.symbolic.crossentropy; the s^4 term is
    ~1e-4 here, below the standard error). Over 15 seeds the mean initial dev loss must lie within
    3 standard errors (of the 15 values) of that; the same check must reject plain ln V, which
    ignores the s^2 term (about 0.005, ~3.5 standard errors)."""
    crossentropy = pytest.importorskip("sigprop.symbolic.crossentropy")
    cfg = TrainConfig()
    Xd, Yd = names_data.arrays["dev"]
    Xd, Yd = Xd[:8000], Yd[:8000]
    V = len(names_data.vocab)
    losses, s2 = [], []
    for seed in range(15):
        p = initial_params(cfg.replace(seed=seed), names_data.vocab)
        losses.append(evaluate(p, (Xd, Yd)))
        s2.append(logits(p, Xd).var(axis=1).mean())
    losses = np.array(losses)
    mean, se = losses.mean(), losses.std(ddof=1) / np.sqrt(len(losses))
    predicted = float(crossentropy.initial_loss_series(2).numeric(V, math.sqrt(np.mean(s2))))
    ln_v = float(crossentropy.chance_loss().numeric(V))
    assert abs(mean - predicted) < 3 * se, (mean, predicted, se)
    assert abs(mean - ln_v) > 3 * se, "the check cannot tell the s^2 term from zero"
    assert abs(mean - ln_v) < 0.02


def test_initial_loss_without_fix_is_much_larger(names_data):
    cfg = TrainConfig(init="standard_normal", output_fix=False)
    Xd, Yd = names_data.arrays["dev"]
    unfixed = evaluate(initial_params(cfg, names_data.vocab), (Xd, Yd))
    fixed = evaluate(initial_params(cfg.replace(output_fix=True), names_data.vocab), (Xd, Yd))
    assert unfixed > 3 * math.log(27) and fixed < math.log(27) + 0.05


def test_step0_layer1_matches_theory(names_data):
    """Layer 1 at init: h = x_0 W_1, so E_W[q_1] = sigma_w^2 E[x_0^2] exactly, where step0_spec's
    input_var is the measured E[x_0^2] of this network's embedding. Per seed (12 seeds, width 2000,
    probe batch) d = q_1 measured / predicted - 1; the mean of d must be within 3 standard errors
    (over seeds) of 0, and the same check must reject a prediction 5% too high."""
    theory = pytest.importorskip("sigprop.theory")
    cfg = TrainConfig(layers=1, width=2000, steps=0)
    measured, predicted = [], []
    for seed in range(12):
        c = cfg.replace(seed=seed)
        p = initial_params(c, names_data.vocab)
        stats = _probe_stats(c, names_data, p, _streams(seed)[2])
        measured.append(stats.q[0])
        predicted.append(theory.predict(stats.spec).q[0])
    measured, predicted = np.array(measured), np.array(predicted)

    def z(pred):
        d = measured / pred - 1
        return abs(d.mean()) / (d.std(ddof=1) / np.sqrt(len(d)))
    assert z(predicted) < 3
    assert z(1.05 * predicted) > 3


# ----------------------------------------------------------------------------------------------
# Training, resume, sampling
# ----------------------------------------------------------------------------------------------
def test_short_training_lowers_the_loss(names_data):
    result = train(TrainConfig(steps=600, width=64, diag_every=200, seed=3), words=names_data.words,
                   progress=False)
    assert result.losses[0] > 3.2
    assert result.final_loss["dev"] < result.losses[0] - 0.4
    assert result.diagnostics.steps == [0, 200, 400]
    assert np.all(np.isfinite(result.losses))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_resume_is_bitwise_identical(tmp_path, batch_norm):
    cfg = TrainConfig(steps=300, width=24, n_embd=4, layers=2, diag_every=50, checkpoint_every=100,
                      batch_norm=batch_norm, dtype="float32", seed=5)
    full = train(cfg, words=WORDS, out=tmp_path / "full", progress=False)
    part = train(cfg, words=WORDS, out=tmp_path / "part", progress=False, until=200)
    assert part.diagnostics.steps == [0, 50, 100, 150]
    rest = resume(tmp_path / "part" / "checkpoint.npz", words=WORDS, out=tmp_path / "part", progress=False)
    assert np.array_equal(full.params.theta, rest.params.theta)
    assert np.array_equal(full.params.bnstate, rest.params.bnstate)
    assert np.array_equal(full.losses, rest.losses)
    assert full.diagnostics.equals(rest.diagnostics)
    assert not np.array_equal(full.params.theta, part.params.theta)


def test_resume_refuses_other_words(tmp_path):
    cfg = TrainConfig(steps=20, width=8, diag_every=10, checkpoint_every=10)
    train(cfg, words=WORDS, out=tmp_path, progress=False, until=10)
    with pytest.raises(ValueError, match="other words"):
        resume(tmp_path / "checkpoint.npz", words=WORDS[:-1], progress=False)


def test_sample_is_reproducible_and_in_vocabulary():
    p = small_params()
    a, b = sample(p, 20, seed=3), sample(p, 20, seed=3)
    assert a == b and len(a) == 20
    assert all(set(w) <= set(VOCAB[1:]) for w in a)
    assert sample(p, 20, seed=4) != a


def test_diagnostics_save_load_roundtrip(tmp_path):
    result = train(TrainConfig(steps=120, width=16, layers=2, diag_every=40), words=WORDS, progress=False)
    d = result.diagnostics
    assert d.init_stats is not None and d.init_stats.spec is not None
    for suffix in (".json", ".npz"):
        path = d.save(tmp_path / f"diag{suffix}")
        assert Diagnostics.load(path).equals(d)
    steps, ud = d.param_series("update_ratio")
    assert list(ud) == ["C", "W1", "W2", "W_out"] and ud["W1"].shape == (3,)
    assert d.series("act_std")[1].shape == (3, 2)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_measure_matches_numpy(activation):
    """The compiled layer summaries equal plain numpy on the same workspace."""
    p = small_params(activation, True, dtype="float64")
    ctx, y = small_batch(B=16)
    m = p.model
    wk = _Workspace(m, 16)
    grad = np.zeros_like(p.theta)
    m.kernels.loss_and_grad(p.theta, grad, p.bnstate.copy(), ctx, y, wk.ws, wk.tmp, wk.lay, 3, 0.0, m.bn_eps)
    values, _, hist, _, params = measure(m, p.theta, grad, wk.ws, wk.lay, 16, 0.1)
    act = get_activation(activation)
    cut = act.saturation_cutoffs() if act.bounds else None
    named_grad = m.named(grad)
    for l, (h, x, dp, gh) in enumerate(_layer_values(m, wk.ws, wk.lay, 16)):
        ref = {k: v.mean() for k, v in activation_quantities(h, x, dp, cut).items()}
        for k, v in ref.items():
            assert values[k][l] == pytest.approx(v, rel=1e-12, abs=1e-15), k
        assert values["pregrad_var"][l] == pytest.approx(gh.var(), rel=1e-10)
        assert values["wgrad_std"][l] == pytest.approx(named_grad[f"W{l + 1}"].std(), rel=1e-10)
        np.testing.assert_array_equal(hist[l], np.histogram(x, bins=hist_edges(act))[0])
    if activation == "relu":
        assert values["dead"].min() > 0.1 and "saturated" not in values
    assert set(params) == {"C", "W1", "W2", "W_out"}


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def test_embedded_dataset():
    words = load_words()
    assert 29000 < len(words) < 33000
    assert build_vocab(words) == "." + "abcdefghijklmnopqrstuvwxyz"
    assert words[:2] == ["emma", "liam"]


@pytest.mark.parametrize("content,message", [
    (None, "no such data file"),
    (b"\n  \n", "holds no words"),
    (b"anna\x00bob\n", "binary"),
    (b"ann\xe9\n", "not UTF-8"),
    (b"an.na\n", "contains '.'"),
])
def test_bad_dataset_files_raise_one_line_errors(tmp_path, content, message):
    path = tmp_path / "words.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as exc:
        load_words(path)
    assert "\n" not in str(exc.value)


def test_words_outside_the_vocabulary_raise():
    p = small_params()
    with pytest.raises(ValueError, match="outside the vocabulary") as exc:
        evaluate(p, ["abz"])
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="vocabulary indices"):
        evaluate(p, (np.full((2, 3), 99), np.zeros(2)))


def test_split_is_deterministic_and_partitions_the_words():
    words = [f"w{i}" for i in range(1000)]
    a, b = split_words(words, seed=1), split_words(words, seed=1)
    assert a == b
    assert split_words(words, seed=2)[0] != a[0]
    assert [len(s) for s in a] == [800, 100, 100]
    assert sorted(a[0] + a[1] + a[2]) == sorted(words)


def test_config_validation_and_json_roundtrip(tmp_path):
    cfg = TrainConfig(layers=2, width=[30, 20], activation="relu", init="xavier", batch_norm=True)
    assert cfg.widths == (30, 20) and cfg.init == "xavier_normal"
    assert TrainConfig.load(cfg.save(tmp_path / "c.json")) == cfg
    for bad in (dict(layers=0), dict(width=[3]), dict(lr=-1.0), dict(dtype="float16"), dict(activation="nope"),
                dict(batch_norm=True, batch_size=1), dict(init="scaled")):
        with pytest.raises(ValueError):
            TrainConfig(**{**dict(layers=2), **bad})
    assert cfg.replace(steps=10).decay_step == 5
    np.testing.assert_array_equal(TrainConfig(steps=4).lr_at(np.arange(4)), [0.1, 0.1, 0.01, 0.01])
