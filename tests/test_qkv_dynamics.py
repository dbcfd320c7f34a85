"""The qkv-dynamics study: its metrics on synthetic data, the Adam model against a simulated Adam,
the trainer's new Q/K/V records against the weights themselves, and the quick path end to end."""
import json
import math

import numpy as np
import pytest

from sigprop.studies import qkv_dynamics as qd


# ---------------------------------------------------------------- metrics on synthetic data
def test_growth_rate_of_exponential_growth_is_its_rate():
    steps = np.array(qd.record_steps(500))
    rates = np.array([0.0, 1e-3, 5e-3, -2e-3])
    std = 0.02 * np.exp(np.outer(steps, rates))
    t_early = 98                                   # a recorded step: no interpolation error
    assert t_early in steps
    np.testing.assert_allclose(qd.growth_rate(steps, std, t_early), rates, atol=1e-12)


def test_t90_of_exponential_relaxation():
    steps = np.arange(1001.0)
    tau = np.array([20.0, 100.0, 300.0])
    A = np.array([0.01, -0.005, 0.02])             # growth and shrinkage alike
    std = 0.02 + A * (1 - np.exp(-steps[:, None] / tau))
    exact = -tau * np.log(1 - 0.9 * (1 - np.exp(-steps[-1] / tau)))
    # linear interpolation between records 1 step apart: error below max|change''| / 8 per unit change
    np.testing.assert_allclose(qd.t_fraction(steps, std, 0.9), exact, atol=0.05)
    # piecewise linear: exact; no change: nan
    np.testing.assert_allclose(qd.t_fraction([0, 10, 20], [[1.0], [1.5], [2.0]], 0.9), [18.0])
    assert np.isnan(qd.t_fraction([0, 10], [[1.0], [1.0]])[0])


def test_spread_mean_se_and_thirds():
    std = np.array([[1.0, 2.0, 4.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(qd.layer_spread(std), [4.0, 1.0])
    m, se = qd.mean_se([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    np.testing.assert_allclose(m, [3.0, 6.0])
    np.testing.assert_allclose(se, [2.0 / math.sqrt(3), 4.0 / math.sqrt(3)])
    assert qd.thirds([6.0, 6.0, 1.0, 1.0, 2.0, 3.0]) == (6.0, 2.5)
    assert qd.rank_correlation([0, 1, 2, 3], [10.0, 5.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_signal_fraction_inverts_the_step_correlation():
    beta1, c = 0.9, 0.1 / 1.9
    for f in (0.0, 0.05, 0.3, 1.0):
        for lag in (2, 10, 50):
            x = beta1 ** lag
            corr = (f + (1 - f) * c * x) / (f + (1 - f) * c)
            assert qd.signal_fraction(corr, lag, beta1) == pytest.approx(f, abs=1e-12)


def _simulated_adam(f, lr, beta1, n, seed, stationary=False):
    """Adam's step on a gradient mu + sigma xi per coordinate (mu of random sign, f = mu^2 / (mu^2 + sigma^2))
    with v at its mean (the model's assumption): bias-corrected from m = 0, or (``stationary``) without bias
    correction from m in its stationary law. Returns D (S + 1, n) and the steps (S, n)."""
    rng = np.random.default_rng(seed)
    mu = math.sqrt(f) * rng.choice([-1.0, 1.0], n)
    sigma = math.sqrt(1 - f)
    c = (1 - beta1) / (1 + beta1)
    m = mu + math.sqrt(c) * sigma * rng.standard_normal(n) if stationary else np.zeros(n)
    D = np.zeros((len(lr) + 1, n))
    steps = np.zeros((len(lr), n))
    for t, a in enumerate(lr):
        m = beta1 * m + (1 - beta1) * (mu + sigma * rng.standard_normal(n))
        steps[t] = a * (m if stationary else m / (1 - beta1 ** (t + 1)))     # v = mu^2 + sigma^2 = 1
        D[t + 1] = D[t] + steps[t]
    return D, steps


def _within(pred, D, checks, k):
    """pred[t]^2 vs the sample mean of D[t]^2 over coordinates, in standard errors."""
    for t in checks:
        ms, se = np.mean(D[t] ** 2), np.std(D[t] ** 2, ddof=1) / math.sqrt(D.shape[1])
        assert abs(pred[t] ** 2 - ms) < k * se, (t, pred[t] ** 2, ms, se)


LR = np.concatenate([np.linspace(1e-4, 1e-3, 30), 1e-3 * np.cos(np.linspace(0, 1.4, 170))])
CHECKS = [2, 8, 20, 60, 120, 200]          # 6 comparisons per model: 3.8 se keeps a Bonferroni 1e-3 level


@pytest.mark.parametrize("f", [0.0, 0.2])
def test_adam_model_predicts_a_simulated_adams_drift(f):
    beta1, n = 0.9, 4000
    D, _ = _simulated_adam(f, LR, beta1, n, seed=3)
    _within(qd.adam_drift(LR, np.full(len(LR), f), beta1), D, CHECKS, 3.8)
    # a wrong model fails: the other f, and (for f = 0) the walk without Adam's bias correction
    other = qd.adam_drift(LR, np.full(len(LR), 0.2 - f), beta1)
    t = CHECKS[-1]
    se = np.std(D[t] ** 2, ddof=1) / math.sqrt(n)
    assert abs(other[t] ** 2 - np.mean(D[t] ** 2)) > 10 * se
    if f == 0:
        stationary = qd.momentum_walk(LR * math.sqrt((1 - beta1) / (1 + beta1)), beta1)
        assert abs(stationary[2] ** 2 - np.mean(D[2] ** 2)) > 10 * np.std(D[2] ** 2, ddof=1) / math.sqrt(n)


def test_momentum_walk_and_signal_fraction_on_stationary_momentum():
    beta1, n, f = 0.9, 4000, 0.2
    c = (1 - beta1) / (1 + beta1)
    D, steps = _simulated_adam(0.0, LR, beta1, n, seed=5, stationary=True)
    _within(qd.momentum_walk(LR * math.sqrt(c), beta1), D, CHECKS, 3.8)
    # f recovered from the cosine of two steps 10 apart (the per-coordinate rms step is adam_step_rms)
    _, steps = _simulated_adam(f, LR, beta1, n, seed=7, stationary=True)
    a, b = steps[100] / LR[100], steps[110] / LR[110]
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    f_hat = qd.signal_fraction(cos, 10, beta1)
    # se of f_hat from the spread of the per-coordinate products (delta method through the formula)
    prod = a * b / np.mean(a * a)
    se_cos = np.std(prod, ddof=1) / math.sqrt(n)
    h = 1e-4
    slope = (qd.signal_fraction(cos + h, 10, beta1) - qd.signal_fraction(cos - h, 10, beta1)) / (2 * h)
    assert abs(f_hat - f) < 3.5 * abs(slope) * se_cos, (f_hat, slope * se_cos)
    rms = np.sqrt(np.mean(a * a))
    rms_se = np.std(a * a, ddof=1) / math.sqrt(n) / (2 * rms)
    assert abs(rms - float(qd.adam_step_rms(f, beta1))) < 3.5 * rms_se


def test_adam_drift_weight_decay_and_pure_drift():
    lr = np.full(50, 1e-3)
    np.testing.assert_allclose(qd.adam_drift(lr, np.ones(50), 0.9), 1e-3 * np.arange(51), rtol=1e-12)
    shrink = np.full(50, 0.99)
    expect = [1e-3 * sum(0.99 ** k for k in range(t)) for t in range(51)]
    np.testing.assert_allclose(qd.adam_drift(lr, np.ones(50), 0.9, shrink), expect, rtol=1e-12)


# ---------------------------------------------------------------- the trainer's records
def _cfg(**kw):
    from sigprop.gpt.train import GPTTrainConfig
    base = dict(n_layer=2, n_head=2, n_embd=16, block_size=8, batch_size=4, steps=6, warmup=0, lr=1e-3, min_lr=1e-3,
                eval_every=0, diag_every=0, diag_steps=[0, 1, 3, 5], diag_dynamics=True, hist_layers=[1])
    return GPTTrainConfig(**{**base, **kw})


def test_recorded_qkv_std_drift_and_histograms_match_the_weights():
    from sigprop.gpt.train import initial_params, train
    cfg = _cfg()
    res = train(cfg, progress=False)
    d = res.diagnostics
    assert d.steps == [0, 1, 3, 5]
    C = cfg.n_embd
    theta0 = initial_params(cfg, len(res.corpus.vocab))
    # constant lr: the run of 3 steps is the first 3 steps of this one (the record at step 3 is before its update)
    short = train(cfg.replace(steps=3, diag_steps=[]), progress=False)
    for l in range(cfg.n_layer):
        w, w0 = short.params[f"h{l}.qkv_w"].astype(np.float64), theta0[f"h{l}.qkv_w"].astype(np.float64)
        for j, b in enumerate("qkv"):
            cols = slice(j * C, (j + 1) * C)
            assert d.series(f"{b}_std")[2, l] == pytest.approx(np.std(w[:, cols]), rel=1e-12)
            assert d.series(f"{b}_drift")[2, l] == pytest.approx(np.sqrt(np.mean((w[:, cols] - w0[:, cols]) ** 2)),
                                                                 rel=1e-9)
            if l == 1:
                h = d.histograms[2][f"h1.{b}"]
                counts, edges = np.histogram(w[:, cols].astype(np.float32).astype(np.float64), bins=len(h["counts"]),
                                             range=(h["edges"][0], h["edges"][-1]))
                assert h["counts"] == counts.tolist() and sum(h["counts"]) == C * C
    # step 0: no drift yet; Adam's first step is lr g/(|g| + eps) per coordinate: rms at most lr, and near
    # lr (coordinates whose gradient is not far above eps = 1e-8 move less); nothing to correlate with
    assert np.all(d.series("q_drift")[0] == 0)
    first = np.concatenate([d.series(f"{b}_step")[0] for b in "qkv"])
    assert np.all(first <= cfg.lr * (1 + 1e-6)) and np.all(first > 0.95 * cfg.lr)
    assert np.all(d.series("q_step")[1:] < 1.5 * cfg.lr)
    assert np.all(np.isnan(d.series("v_step_corr")[0])) and np.all(np.abs(d.series("v_step_corr")[1:]) <= 1)
    assert d.histograms[0].keys() == {"h1.q", "h1.k", "h1.v"}


def test_new_diagnostics_settings_are_checked_and_old_records_load():
    from sigprop.gpt.diagnostics import Diagnostics
    with pytest.raises(ValueError, match="diag step must be an integer >= 0"):
        _cfg(diag_steps=[-1])
    with pytest.raises(ValueError, match="hist_layers must be layers below n_layer 2"):
        _cfg(hist_layers=[2])
    with pytest.raises(ValueError, match="diag_steps must be a list"):
        _cfg(diag_steps="0,1")
    assert _cfg(diag_steps=[5, 1, 1]).diag_steps == (1, 5)
    old = {"format": "sigprop.gpt.Diagnostics", "steps": [0], "stats": [{"values": {"q_std": [0.02]},
                                                                          "source": "training"}],
           "grad_norm": [{}], "update_ratio": [{}]}
    from sigprop.spec import LayerStats
    old["stats"] = [LayerStats({"q_std": [0.02]}, source="training").to_dict()]
    assert Diagnostics.from_dict(old).histograms == [{}]


# ---------------------------------------------------------------- the study end to end
def test_quick_study_runs_end_to_end_and_resumes(tmp_path):
    from sigprop.cli import main
    out = tmp_path / "qkv"
    assert main(["study", "qkv-dynamics", "--quick", "--steps", "12", "--out", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    per_layer, depth, recipes, model = res["tables"]
    L = qd.SIZES["quick"]["n_layer"]
    assert len(per_layer["rows"]) == L and [r[0] for r in recipes["rows"]] == list(qd.RECIPES)
    for b in qd.BLOCKS:
        assert np.all(np.isfinite(res["numbers"][b]["spread_final"]))
        assert res["numbers"][b]["spread_final"][0] >= 1
    assert {"qkv_std_vs_step.png", "relative_change_heatmap.png", "weight_histograms.png",
            "equilibration_metrics.png", "recipes.png", "recipes_qkv.png", "adam_model.png"} <= set(res["figures"])
    cells = sorted((out / "dynamics_sweep" / "cells").glob("*.json"))
    assert len(cells) == qd.N_SEEDS
    cell = json.loads(cells[0].read_text())["result"]
    assert cell["steps"] == qd.record_steps(12) and np.array(cell["q_std"]).shape == (len(cell["steps"]), L)
    # the final/init column of the per-layer table is the mean over seeds of the records
    ratios = np.array([[np.array(json.loads(p.read_text())["result"]["q_std"])[-1, l]
                        / np.array(json.loads(p.read_text())["result"]["q_std"])[0, l] for l in range(L)]
                       for p in cells])
    assert float(per_layer["rows"][0][4].split(" ± ")[0]) == pytest.approx(ratios[:, 0].mean(), rel=2e-3)
    # run again: every cell is read back, nothing retrained, same numbers
    mtime = cells[0].stat().st_mtime_ns
    assert main(["study", "qkv-dynamics", "--quick", "--steps", "12", "--out", str(out)]) == 0
    assert cells[0].stat().st_mtime_ns == mtime
    assert json.loads((out / "result.json").read_text())["numbers"]["q"] == res["numbers"]["q"]


def test_record_steps_are_log_spaced_and_bounded():
    s = qd.record_steps(500)
    assert s[0] == 0 and s[-1] == 499 and s == sorted(set(s))
    assert len(s) >= 20 and s[5] < 10 and s[-2] > 300
    with pytest.raises(ValueError):
        qd.record_steps(0)
    with pytest.raises(ValueError, match="unknown recipe"):
        qd.train_cell("nope", 0, 10, 1, 8, 1, 4, 2, 1)
