"""The GPT against an independent PyTorch implementation (skipped when PyTorch is not importable).

Same weights and batch -> the same loss and every gradient entry (sigprop.gpt.torch_reference
uses PyTorch's library operations and autograd, none of our kernels); our AdamW kernel against
torch.optim.AdamW.

Tolerances are relative to the largest gradient entry of the tensor compared, not to each entry:
many entries are (near) zero for structural reasons (the rows of wpe beyond T, wte rows of tokens
absent from the batch, which only the tied head reaches, entries that cancel), where an entrywise
relative error is meaningless, while the rounding error of every entry is a sum of products of
terms no larger than the tensor's scale. In float64 the two implementations differ by rounding
only: unit roundoff 1.1e-16 times reduction lengths of at most a few hundred and a few dozen
chained operations gives ~1e-13, so 1e-9 (the issue's target) is far outside rounding and far
inside any real mistake (a wrong scale, mask or missing term changes the gradient at O(1)).
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sigprop.gpt.model import GPTConfig, Params, init_params  # noqa: E402
from sigprop.gpt.net import Net  # noqa: E402
from sigprop.gpt.torch_reference import TorchGPT, adamw, flat_grad, loss_and_grad  # noqa: E402

F64_TOL = 1e-9

# (n_layer, n_head, n_embd, block_size, vocab, init, batch, T): 1-3 layers, 1-4 heads, T 1..16
# (including T < block_size), vocab 7..65, GPT-2 init and a larger init under which every path
# (attention scores, GELU curvature, LayerNorm statistics, biases) is O(1).
CONFIGS = [
    (1, 1, 4, 1, 7, "gpt2", 3, 1),
    (1, 2, 8, 6, 7, "scaled(0.3)", 2, 6),
    (2, 2, 8, 8, 11, "gpt2", 2, 8),
    (2, 3, 12, 9, 13, "scaled(0.3)", 3, 7),
    (3, 4, 16, 16, 65, "gpt2", 2, 16),
    (3, 4, 16, 16, 65, "scaled(0.3)", 2, 16),
    (2, 1, 6, 12, 19, "scaled(0.3)", 1, 12),
]


def _params(n_layer, n_head, n_embd, block, vocab, init, dtype="float64", seed=0):
    """Init; for the large init also O(1) embeddings and random biases and LayerNorm gains/shifts."""
    large = init != "gpt2"
    cfg = GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block, vocab_size=vocab,
                    init=init, embd_std=0.5 if large else 0.02, dtype="float64")
    p = init_params(cfg, seed=seed)
    if large:
        rng = np.random.default_rng(seed + 100)
        for name, shape, _ in cfg.layout():
            if len(shape) == 1:
                p[name][...] += 0.3 * rng.standard_normal(shape)
    return p.astype(dtype)


def _batch(vocab, B, T, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, size=(2, B, T)).astype(np.int32)


def _ours(p, idx, targets):
    B, T = idx.shape
    net = Net(p.config, B, T)
    loss = net.forward(p.theta, idx, targets)
    grad = np.empty_like(p.theta)
    net.backward(p.theta, grad)
    return loss, grad.astype(np.float64)


def _worst_relative(cfg, g, ref):
    """max over tensors of max|g - ref| / max|ref| (and the tensor where it occurs)."""
    worst, where = 0.0, None
    for name, (a, b, _) in cfg.offsets().items():
        scale = np.abs(ref[a:b]).max()
        assert scale > 0, f"{name}: the reference gradient is identically zero, the comparison would be vacuous"
        err = np.abs(g[a:b] - ref[a:b]).max() / scale
        if err > worst:
            worst, where = err, name
    return worst, where


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
@pytest.mark.parametrize("case", CONFIGS, ids=lambda c: "L{}H{}C{}T{}V{}-{}".format(*c[:5], c[5]))
def test_float64_loss_and_every_gradient_entry_match_pytorch(case, attention):
    *model, B, T = case
    p = _params(*model)
    idx, targets = _batch(p.config.vocab_size, B, T)
    loss, grad = _ours(p, idx, targets)
    ref_loss, ref_grad = loss_and_grad(p, idx, targets, attention=attention)
    assert abs(loss - ref_loss) <= 1e-12 * ref_loss, (loss, ref_loss)
    worst, where = _worst_relative(p.config, grad, ref_grad)
    print(f"{case} {attention}: loss {loss:.6f} |dloss| {abs(loss - ref_loss):.1e}, "
          f"worst gradient error {worst:.1e} (of the tensor's max) in {where}")
    assert worst <= F64_TOL, (worst, where)


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_mup_model_matches_pytorch_in_float64(attention):
    """muP at 4x the base width: attention logits ~1/d and the tied head's 1/r multiplier, in both."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11, init="scaled(0.3)", embd_std=0.5,
                    parametrization="mup", base_width=4, dtype="float64")
    assert cfg.output_multiplier == 0.25 and cfg.attn_scale != 1 / math.sqrt(cfg.head_size)
    p = init_params(cfg, seed=2)
    idx, targets = _batch(cfg.vocab_size, 2, 8)
    loss, grad = _ours(p, idx, targets)
    ref_loss, ref_grad = loss_and_grad(p, idx, targets, attention=attention)
    assert abs(loss - ref_loss) <= 1e-12 * ref_loss, (loss, ref_loss)
    worst, where = _worst_relative(cfg, grad, ref_grad)
    assert worst <= F64_TOL, (worst, where)


def test_the_comparison_detects_a_small_change():
    """The check is sharp: gradients at weights moved by 1e-6 in one QKV entry (a perturbation far
    smaller than any plausible bug) already fail it, and the two PyTorch attentions pass it."""
    p = _params(2, 2, 8, 8, 11, "scaled(0.3)")
    idx, targets = _batch(11, 2, 8)
    _, grad = _ours(p, idx, targets)
    q = p.copy()
    q["h1.qkv_w"][3, 5] += 1e-6
    _, moved = loss_and_grad(q, idx, targets)
    assert _worst_relative(p.config, grad, moved)[0] > 100 * F64_TOL
    _, manual = loss_and_grad(p, idx, targets, attention="manual")
    _, sdpa = loss_and_grad(p, idx, targets, attention="sdpa")
    assert _worst_relative(p.config, sdpa, manual)[0] <= F64_TOL


def test_float32_as_accurate_as_pytorch_float32():
    """Our float32 pass against the float64 truth (PyTorch float64 on the same float32-rounded
    weights). Float32 rounding (unit roundoff 6e-8) grows with reduction lengths (up to
    B*T = 64 rows, 4C = 64 columns) and depth, so a fixed bound would be a guess; instead the
    tolerance is PyTorch's own float32 error on the same problem: ours must be within 4x of it
    (plus a floor of 20 float32 ulps of the tensor's max, for tensors where PyTorch happens to be
    nearly exact). Loss: 1e-5 relative (~100 ulps)."""
    p64 = _params(3, 4, 16, 16, 65, "scaled(0.3)")
    p32 = p64.astype("float32")
    truth = p32.astype("float64")          # the float32 weights, exactly
    idx, targets = _batch(65, 4, 16)
    loss32, grad32 = _ours(p32, idx, targets)
    ref_loss, ref = loss_and_grad(truth, idx, targets)
    model = TorchGPT(p32)                  # PyTorch in float32 on the same weights
    _, tloss = model(torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(targets.astype(np.int64)))
    tloss.backward()
    torch32 = flat_grad(model)
    ours_err, where = _worst_relative(p32.config, grad32, ref)
    torch_err, _ = _worst_relative(p32.config, torch32, ref)
    print(f"float32: ours {ours_err:.1e} (in {where}), PyTorch float32 {torch_err:.1e}; "
          f"loss error ours {abs(loss32 - ref_loss):.1e}, PyTorch {abs(tloss.item() - ref_loss):.1e}")
    assert abs(loss32 - ref_loss) <= 1e-5 * ref_loss
    assert ours_err <= max(4 * torch_err, 20 * np.finfo(np.float32).eps)


# ----------------------------------------------------------------------------------------------
# AdamW
# ----------------------------------------------------------------------------------------------
def test_decay_flags_are_the_two_dimensional_tensors():
    """torch_reference.adamw decays the 2-D tensors; our layout must mark the same ones."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=4, vocab_size=7)
    assert [decay for _, _, decay in cfg.layout()] == [len(shape) == 2 for _, shape, _ in cfg.layout()]


@pytest.mark.parametrize("step, grad_scale, weight_decay", [(1, 1.0, 0.1), (7, 0.37, 0.1), (50, 1.0, 0.0)])
def test_adamw_update_matches_torch_optim_adamw(step, grad_scale, weight_decay):
    """One update from random theta, grad, m, v at step ``step`` (bias corrections of that step):
    theta, m and v agree to 1e-12 relative to each tensor's largest update (m, v: largest entry);
    the two differ only in the order of a handful of float64 operations per entry."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=4, vocab_size=7, dtype="float64")
    n = cfg.n_params
    rng = np.random.default_rng(step)
    theta, grad, m = rng.standard_normal((3, n))
    m *= 0.1
    v = rng.exponential(size=n) * 10.0 ** rng.uniform(-17, -1, size=n)   # sqrt(v) from ~eps to ~0.3
    lr, b1, b2, eps = 3e-3, 0.9, 0.95, 1e-8
    K = Net(cfg, 1).K
    ours = [a.copy() for a in (theta, grad, m, v)]
    K.adamw_update(ours[0], ours[1], ours[2], ours[3], cfg.decay_segments(), lr, b1, b2, eps, weight_decay,
                   step, grad_scale)
    model = TorchGPT(Params(cfg, theta))
    opt = adamw(model, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
    tensors = model.tensors()
    for name, (a, b, shape) in cfg.offsets().items():
        t = tensors[name]
        t.grad = torch.from_numpy(grad[a:b].reshape(shape) * grad_scale)   # what clip_grad_norm_ does
        opt.state[t] = {"step": torch.tensor(float(step - 1), dtype=torch.float64),
                        "exp_avg": torch.from_numpy(m[a:b].reshape(shape).copy()),
                        "exp_avg_sq": torch.from_numpy(v[a:b].reshape(shape).copy())}
    opt.step()
    worst = {}
    for name, (a, b, shape) in cfg.offsets().items():
        t = tensors[name]
        ref_theta = t.detach().numpy().reshape(-1)
        ref_m = opt.state[t]["exp_avg"].numpy().reshape(-1)
        ref_v = opt.state[t]["exp_avg_sq"].numpy().reshape(-1)
        update = ref_theta - theta[a:b]
        errs = (np.abs(ours[0][a:b] - ref_theta).max() / np.abs(update).max(),
                np.abs(ours[2][a:b] - ref_m).max() / np.abs(ref_m).max(),
                np.abs(ours[3][a:b] - ref_v).max() / np.abs(ref_v).max())
        worst[name] = max(errs)
    name = max(worst, key=worst.get)
    print(f"AdamW step {step}: worst error {worst[name]:.1e} in {name}")
    assert worst[name] <= 1e-12, (name, worst[name])
    assert np.all(ours[1] == grad)   # the gradient is read, not scaled in place


def test_adamw_comparison_detects_a_wrong_decay_flag():
    """Sharpness: decaying a bias (which PyTorch's groups do not) moves it by lr*wd*theta, far
    beyond the tolerance, so a wrong segment table would be caught."""
    cfg = GPTConfig(n_layer=1, n_head=1, n_embd=4, block_size=2, vocab_size=7, dtype="float64")
    rng = np.random.default_rng(0)
    theta, grad = rng.standard_normal((2, cfg.n_params))
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    K = Net(cfg, 1).K
    right, wrong = theta.copy(), theta.copy()
    seg = cfg.decay_segments()
    K.adamw_update(right, grad.copy(), m.copy(), v.copy(), seg, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, 1.0)
    all_decay = np.array([[0, cfg.n_params, 1]], dtype=np.int64)
    K.adamw_update(wrong, grad.copy(), m.copy(), v.copy(), all_decay, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, 1.0)
    a, b, _ = cfg.offsets()["h0.qkv_b"]
    update = np.abs(right[a:b] - theta[a:b]).max()
    assert np.abs(wrong[a:b] - right[a:b]).max() > 1e6 * 1e-12 * update   # a million times the tolerance


def test_pytorch_training_step_matches_ours_in_float64():
    """Three full steps (forward, backward, clip, AdamW) of both, same batches and schedule: the
    parameters agree to 1e-9 of each tensor's total change (clipping active: grad_clip 0.1).
    Looser in practice than a single gradient (~1e-11 rather than ~1e-15): Adam's early updates
    are ~lr g/(|g| + eps), so a gradient entry near zero turns its rounding into a relative
    error of its update."""
    from sigprop.gpt.torch_reference import train_step
    p = _params(2, 2, 8, 8, 11, "scaled(0.3)")
    cfg = p.config
    theta0 = p.theta.copy()
    model = TorchGPT(p)
    opt = adamw(model, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    net = Net(cfg, 2)
    K = net.K
    grad, m, v = (np.zeros_like(p.theta) for _ in range(3))
    partial = np.zeros(K.CHUNKS)
    clip, lrs = 0.1, (1e-2, 5e-3, 2e-3)
    for step, lr in enumerate(lrs):
        idx, targets = _batch(11, 2, 8, seed=10 + step)
        net.forward(p.theta, idx, targets)
        net.backward(p.theta, grad)
        norm = math.sqrt(K.sum_of_squares(grad, partial))
        scale = min(1.0, clip / (norm + 1e-6))
        assert scale < 1
        K.adamw_update(p.theta, grad, m, v, cfg.decay_segments(), lr, 0.9, 0.95, 1e-8, 0.1, step + 1, scale)
        train_step(model, opt, torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(targets.astype(np.int64)),
                   lr, clip)
    from sigprop.gpt.torch_reference import flat_params
    ref = flat_params(model)
    worst, where = _worst_relative(cfg, p.theta - theta0, ref - theta0)
    print(f"3 training steps: worst parameter error {worst:.1e} of the tensor's change, in {where}")
    assert worst <= F64_TOL


def test_training_run_through_train_matches_pytorch_in_float64():
    """sigprop.gpt.train.train (batches, warmup + cosine schedule, clipping, AdamW, fixed-window
    evaluation) against the PyTorch loop of the speed benchmark on the shipped corpus: after 12
    float64 steps the train and val losses agree to 1e-9 relative."""
    from sigprop.gpt.bench import val_comparison
    r = val_comparison(12, n_layer=2, n_head=2, n_embd=16, block_size=16, batch_size=4, warmup=4, lr=1e-2,
                       eval_batches=2, dtype="float64")
    (ours_train, ours_val, _), (ref_train, ref_val, _) = r["sigprop"], r["torch"]
    print(f"12 steps: val {ours_val:.12f} (sigprop) {ref_val:.12f} (PyTorch)")
    assert ours_val < r["ln_vocab"] - 0.1                 # it trained
    assert abs(ours_train - ref_train) <= 1e-9 * ref_train
    assert abs(ours_val - ref_val) <= 1e-9 * ref_val
