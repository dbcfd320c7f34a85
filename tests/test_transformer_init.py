"""Pre-LN GPT at init: the measurement pass, the theory's pieces, and theory vs measurement."""
import math

import numpy as np
import pytest

from sigprop.compare import compare
from sigprop.gpt.init_stats import forward_backward, measure_at_init
from sigprop.gpt.model import GPTConfig, init_params
from sigprop.theory.transformer import collision_probability, predict_transformer


def _tiny(init="gpt2", embd=0.02, **kw):
    base = dict(n_layer=2, n_head=2, n_embd=8, block_size=5, vocab_size=7, init=init, embd_std=embd,
                dtype="float64")
    base.update(kw)
    return GPTConfig(**base)


def test_forward_matches_the_engine():
    from sigprop.gpt.net import Net
    cfg = _tiny(init="scaled(0.3)", embd=0.3)
    p = init_params(cfg, seed=3)
    idx = np.random.default_rng(0).integers(0, 7, (2, 5)).astype(np.int32)
    net = Net(cfg, batch=2)
    net.forward(p.theta, idx)
    _, logits, _ = forward_backward(p, cfg, idx, np.zeros((2, 5, 8)))
    np.testing.assert_allclose(logits.reshape(-1, 7), net.logits, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("init,embd", [("gpt2", 0.02), ("scaled(0.5)", 0.5)])
def test_backward_finite_differences(init, embd):
    """grads[0] . delta equals the central difference of sum(g * x_L) along delta (float64)."""
    cfg = _tiny(init=init, embd=embd)
    p = init_params(cfg, seed=1)
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 7, (2, 5))
    g = rng.standard_normal((2, 5, 8))
    x0 = p["wte"][idx] + p["wpe"][None]
    _, _, grads = forward_backward(p, cfg, idx, g, x0=x0)
    for _ in range(3):
        delta = rng.standard_normal(x0.shape)
        h = 1e-5 * np.sqrt(np.mean(x0 ** 2))
        fp = np.sum(g * forward_backward(p, cfg, idx, g, x0=x0 + h * delta)[0])
        fm = np.sum(g * forward_backward(p, cfg, idx, g, x0=x0 - h * delta)[0])
        fd = (fp - fm) / (2 * h)
        assert abs(np.sum(grads[0] * delta) - fd) <= 1e-6 * max(abs(fd), 1e-3)


def test_bivariate_kernel_matches_adaptive_quadrature():
    from sigprop.theory import bivariate_expectation, moments_of
    from sigprop.theory.transformer import bivariate_kernel
    m = moments_of("gelu_tanh")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1, 6, 400))
    S = 1.3 * A @ A.transpose(0, 2, 1) / 400
    S[0] = S[0] + 0.5          # correlated positions, as after attention mixes the prefix
    K = bivariate_kernel(m.phi, S, kinks=m.centers)
    for t, s in [(0, 1), (2, 5), (3, 4)]:
        q1, q2 = S[0, t, t], S[0, s, s]
        ref = bivariate_expectation(lambda a, b: m.phi(a) * m.phi(b), q1, q2, S[0, t, s] / math.sqrt(q1 * q2),
                                    kinks=m.centers, kinked=False)
        assert abs(K[0, t, s] / float(ref) - 1) < 2e-3


def test_layernorm_law_and_shifted_partition_against_monte_carlo():
    from scipy.special import logsumexp

    from sigprop.symbolic.crossentropy import expected_log_partition
    from sigprop.symbolic.transformer import layernorm_expectation
    rng = np.random.default_rng(0)
    d, eps, q = 64, 1e-5, 8e-6               # std 0.002: residual variance below eps
    x = rng.standard_normal((40_000, d)) * math.sqrt(q)
    v = x.var(axis=1)
    f = v / (v + eps)
    assert abs(f.mean() - layernorm_expectation("second_moment", q, d, eps)) < 4 * f.std() / math.sqrt(len(f))
    z = rng.standard_normal((100_000, 27)) * 0.6
    z[:, 0] = 1.3 + 0.9 * z[:, 0] / 0.6
    lse = logsumexp(z, axis=1)
    se = lse.std() / math.sqrt(len(lse))
    assert abs(lse.mean() - expected_log_partition(27, 0.6, 1.3, 0.9)) < 4 * se
    assert abs(lse.mean() - expected_log_partition(27, 0.6)) > 20 * se      # the shift matters


def test_sampled_entropy_matches_the_derived_small_logit_formula():
    from sigprop.symbolic.transformer import uniform_attention_entropy
    cfg = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=7, dtype="float64")
    idx = np.arange(16)[None] % 7
    pred = predict_transformer(cfg, idx, samples=1000, seed=0)
    n = np.arange(1, 17)
    sigma2 = pred.blocks["logit_var"][0]
    # first block, LayerNorm outputs: correlation 1/2 between equal tokens (all pairs t = s mod 7)
    same = (idx[0][:, None] == idx[0][None, :]).astype(float)
    C = np.where(same > 0, 0.5, 0.0) + 0.5 * np.eye(16)
    cbar = np.array([C[:k, :k].mean() for k in n])
    formula = uniform_attention_entropy().numeric(n, sigma2, 1.0, cbar)
    deficit_theory = np.log(n) - pred.positions["entropy"][0]
    deficit_formula = np.log(n) - formula
    np.testing.assert_allclose(deficit_theory[1:], deficit_formula[1:], rtol=0.1)


def test_tabulated_expectation_matches_adaptive_quadrature():
    from sigprop.theory import gaussian_expectation, moments_of
    from sigprop.theory.transformer import tabulated_expectation
    m = moments_of("gelu_tanh")
    rng = np.random.default_rng(0)
    for lo, hi in ((0.9, 1.0), (1e-6, 3.0)):
        q = np.exp(rng.uniform(math.log(lo), math.log(hi), 1000))
        for f in (m.phi, lambda h: m.phi(h) ** 2, lambda h: m.dphi(h) ** 2):
            exact = gaussian_expectation(f, q, m.centers)
            np.testing.assert_allclose(tabulated_expectation(f, q, m.centers), exact, rtol=1e-8)


def test_entropy_fluctuation_gap_against_quadrature():
    """Two positions, logit correlation c = 0.4 +- 0.3 (two values): the mean entropy minus the entropy at
    the mean correlation, by Gauss-Hermite quadrature, tends to 3 sigma^4 Var(c) / 16, its error O(sigma^2)."""
    from numpy.polynomial.hermite_e import hermegauss

    from sigprop.symbolic.transformer import entropy_fluctuation_gap
    xi, w = hermegauss(80)
    w = w / math.sqrt(2 * math.pi)

    def mean_entropy(sig2, c):
        delta = math.sqrt(2 * sig2 * (1 - c)) * xi
        p = 1 / (1 + np.exp(-delta))
        return float(w @ -(p * np.log(p) + (1 - p) * np.log1p(-p)))
    errors = []
    for sig2 in (0.04, 0.02, 0.01):
        gap = 0.5 * (mean_entropy(sig2, 0.1) + mean_entropy(sig2, 0.7)) - mean_entropy(sig2, 0.4)
        errors.append(gap / entropy_fluctuation_gap().numeric(sig2, 0.09) - 1)
    assert abs(errors[-1]) < 0.05
    assert 1.6 < errors[0] / errors[1] < 2.4 and 1.6 < errors[1] / errors[2] < 2.4     # O(sigma^2)


def test_population_covariance_fixes_block_two_entropy_at_std_0_2():
    """std 0.2 without residual scaling, i.i.d. tokens: the block-2 entropy of 128 networks against the
    theory (se of both combined). Each network's residual covariance after block 1 depends on its own
    4 heads' near-hard attention; the mean covariance misses that (z ~ -6.8), the population does not
    (z ~ -2.5: 1% low, the part the population's independent redraws of the d-dimensional Gram miss);
    carrying the sampled residual vectors from block to block keeps that part too."""
    x, y = _batches(16, 4)["iid"]
    cfg = GPTConfig(n_layer=2, n_head=4, n_embd=64, block_size=16, vocab_size=63, init="scaled(0.2)",
                    residual_scale=False, embd_std=0.2, dtype="float64")
    ms = measure_at_init(cfg, x, y, n_networks=128, seed=3)
    z = {}
    for cov in ("population", "carried", "mean"):
        th = predict_transformer(cfg, x, y, samples=256, seed=4, covariance=cov)
        se = np.hypot(ms.blocks.se["entropy"], th.blocks.se["entropy"])
        z[cov] = (th.blocks["entropy"] - ms.blocks["entropy"]) / se
    assert np.all(np.abs(z["population"]) < 4) and np.all(np.abs(z["carried"]) < 4), z
    assert abs(z["mean"][0]) < 4 and z["mean"][1] < -5, z


def _batches(T, B, seed=0):
    from sigprop.studies.transformer_init import token_batches
    return token_batches(63, T, B, seed)


def _check(cfg, x, y, networks, seed, **theory_kw):
    th = predict_transformer(cfg, x, y, samples=128, seed=seed, **theory_kw)
    ms = measure_at_init(cfg, x, y, n_networks=networks, seed=seed + 1)
    return compare(th.blocks, ms.blocks), compare(th.head_stats(), ms.head_stats())


@pytest.mark.parametrize("data", ["real", "iid"])
def test_theory_agrees_with_measurement_at_gpt2_init(data):
    """Every block quantity within the Bonferroni threshold (standard errors over 12 networks)."""
    x, y = _batches(16, 2)[data]
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=63)
    blocks, head = _check(cfg, x, y, 12, seed=11)
    assert blocks.agrees, blocks.format(all_rows=False)
    assert head.agrees, head.format()


def test_the_same_check_fails_a_wrong_theory():
    """Dropping LayerNorm's eps at std 0.002 (residual variance 8e-6 < eps) must be flagged."""
    x, y = _batches(16, 2)["real"]
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=63, init="scaled(0.002)",
                    embd_std=0.002)
    th = predict_transformer(cfg, x, y, samples=128, seed=5)
    ms = measure_at_init(cfg, x, y, n_networks=12, seed=6)
    right = compare(th.blocks, ms.blocks)
    assert right.agrees, right.format(all_rows=False)
    th_wrong = predict_transformer(cfg.replace(ln_eps=1e-12), x, y, samples=128, seed=5)
    wrong = compare(th_wrong.blocks, ms.blocks)
    assert not wrong.agrees
    assert {q for q, _, _ in wrong.breakdowns()} >= {"q_var", "mlp_pre_var"}


def test_collision_probability():
    idx = np.array([[0, 0, 1, 2]])
    assert collision_probability(idx) == pytest.approx(2 / 12)


def test_bad_input_is_refused_in_one_line():
    cfg = _tiny()
    with pytest.raises(ValueError, match="prefix"):
        predict_transformer(cfg, np.zeros((1, 5), int), prefix="nope")
    with pytest.raises(ValueError, match="token ids"):
        predict_transformer(cfg, np.full((1, 5), 9))
    with pytest.raises(ValueError, match="covariance"):
        predict_transformer(cfg, np.zeros((1, 5), int), covariance="nope")
    with pytest.raises(ValueError, match="n_networks"):
        measure_at_init(cfg, np.zeros((1, 5), int), n_networks=1)


#: Cells where theory and measurement disagree at 64 networks (the study's default grid, seed 0):
#: the limits of the theory, measured. strict: a fix of the theory makes these tests fail (XPASS),
#: so the marks go when the limit does. None at depth 12 since the theory carries a population of
#: covariances (covariance="population"); the three cells that failed before, max |z| before -> after
#: (threshold 4.12): std 0.2 without residual scaling, i.i.d. 6.44 -> 3.28 and real 5.64 -> 3.65 (the
#: block-2 entropy was 1.508 against 1.560 +- 0.008); gpt2 without residual scaling, real text,
#: 4.21 -> 4.07 (resid_var at block 7, 0.006035 against 0.005882 +- 3.7e-5: a fluctuation of these 64
#: networks, not of the theory: network seeds 7 and 11, 256 networks each, measure 0.006026 +- 2.4e-5 and
#: 0.006019 +- 2.3e-5, |z| < 0.7). What remains inside the threshold: at std 0.2 the entropy of blocks
#: >= 2 is still predicted 1-2.5% low (z down to -3.6: block 8, 1.721 against 1.765 +- 0.012, residual
#: scaling on, real text), the between-network spread the population misses (derivations/transformer.md).
#: Depth 48 (study, not this test; threshold 4.33): std 0.2 no scaling i.i.d. 6.44 -> 3.95, scaling on i.i.d.
#: 4.37 -> 4.23, gpt2 no scaling real 4.21 -> 4.07, but std 0.2 scaling on real 3.54 -> 4.36 (entropy of
#: block 30: 1.803 against 1.861 +- 0.013, 1.812 with the mean covariance): deep in a residual-scaled stack
#: the population does not help; covariance="carried" keeps the missing block-to-block persistence (that
#: cell 3.20 with it, entropy within 2 se at every block). Not the default: carried passes std 0.2 no
#: scaling i.i.d. (3.28), std 0.2 scaling real (3.90), std 0.002 scaling real (2.39), kaiming no scaling
#: i.i.d. (3.45), xavier scaling i.i.d. (3.03) at depth 12, but gpt2 no scaling real reaches 4.35 (resid_var
#: at block 7 0.006045 against the same 64 networks' 0.005882), and the rest of the grid is not run with it.
#: The whole depth-48 grid with the default (64 networks, seed 0, 2026-12-03): 19 of 20 cells agree (worst
#: kaiming no scaling real 3.76, std 0.002 no scaling real 3.76); the one that does not is std 0.2 with
#: residual scaling on real text, 4.36 against 4.33, the limit stated above.
KNOWN_LIMITS = {}


def _cells():
    for label in ("gpt2 (std 0.02)", "xavier", "kaiming", "std 0.002", "std 0.2"):
        for rs in (True, False):
            for data in ("real", "iid"):
                marks = ([pytest.mark.xfail(strict=True, reason=KNOWN_LIMITS[label, rs, data])]
                         if (label, rs, data) in KNOWN_LIMITS else [])
                yield pytest.param(label, rs, data, marks=marks, id=f"{label.split(' (')[0]}-rs{int(rs)}-{data}")


@pytest.mark.slow
@pytest.mark.parametrize("label,rs,data", list(_cells()))
def test_study_cells_agree_depth_12(label, rs, data):
    """The study's depth-12 grid as run by `sigprop study transformer-init --depths 12` (64 networks,
    512 theory draws per sequence, seed 0): every quantity of the cell within the Bonferroni threshold
    of all its comparisons. With 16-24 networks the standard errors of deep, few-direction quantities
    are too noisy for a normal threshold (z is heavier-tailed); 64 networks are the study's default."""
    from sigprop.compare import bonferroni_threshold
    from sigprop.studies.transformer_init import run_cell
    th, ms, parts = run_cell(label, rs, 12, data, _batches(32, 4), 64, 4, 32, 64, 512, seed=0)
    n = sum(c.n_comparisons for c in parts.values())
    z = max(c.max_abs_z for c in parts.values())
    assert z < bonferroni_threshold(n), {k: c.summary() for k, c in parts.items()}


def test_prefix_assumption_repeated_tokens_matter_on_real_text():
    """Attention output per position at block 1: the token-equality model agrees, 'no repeats' fails."""
    x, y = _batches(64, 3)["real"]
    cfg = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=64, vocab_size=63)
    ms = measure_at_init(cfg, x, y, n_networks=12, seed=3)
    verdict = {}
    for prefix in ("tokens", "collision", "none"):
        th = predict_transformer(cfg, x, y, prefix=prefix, samples=128, seed=2)
        verdict[prefix] = compare(th.position_stats(1), ms.position_stats(1), quantities=["attn_out_var"])
    assert verdict["tokens"].agrees, verdict["tokens"].format(all_rows=False)
    assert verdict["collision"].agrees, verdict["collision"].format(all_rows=False)
    assert not verdict["none"].agrees
