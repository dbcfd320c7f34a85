"""Float64 finite-difference checks of every hand-written GPT backward: each operation on its own,
then the whole model on every entry of every parameter tensor.

Derivatives are 4-point central differences, (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h
with h = 1e-3: truncation O(h^4) and round-off about 1e-16 |f| / h, both near 1e-12 here.
The error of an entry is |fd - g| / max(|fd|, |g|, 1e-3 max|g of its tensor|): relative, except
that an entry more than 1000 times smaller than its tensor's largest gradient is compared on that
scale. Without the floor the key bias, whose gradient is exactly 0 (softmax ignores a constant
shift of a row), would compare round-off with round-off.
Every check requires a worst error <= 1e-6 and prints it (pytest -s shows the figures).
"""
import numpy as np
import pytest

from sigprop.gpt.model import GPTConfig, init_params, load_kernels
from sigprop.gpt.net import Net

K = load_kernels()
H_STEP = 1e-3
TOL = 1e-6


def fd(f, x, h=H_STEP, entries=None):
    """4-point central differences of scalar f() with respect to the entries of array x (in place)."""
    flat = x.reshape(-1)
    idx = range(flat.size) if entries is None else entries
    out = []
    for k in idx:
        x0 = flat[k]
        vals = []
        for s in (2, 1, -1, -2):
            flat[k] = x0 + s * h
            vals.append(f())
        flat[k] = x0
        out.append((-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h))
    return np.array(out)


def rel_error(numeric, analytic):
    numeric, analytic = np.asarray(numeric, float).ravel(), np.asarray(analytic, float).ravel()
    floor = 1e-3 * max(np.abs(analytic).max(), 1e-300)
    return float((np.abs(numeric - analytic) / np.maximum(np.maximum(np.abs(numeric), np.abs(analytic)), floor)).max())


def check(name, numeric, analytic):
    err = rel_error(numeric, analytic)
    print(f"  {name}: worst relative error {err:.2e}")
    assert err <= TOL, f"{name}: finite differences disagree, worst relative error {err:.2e}"
    return err


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The checks run thousands of tiny forwards: one thread spares a parallel launch per kernel
    (results do not depend on the thread count)."""
    import numba
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(n)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_layernorm(rng):
    N, C = 5, 8
    x, w, b = rng.normal(size=(N, C)), rng.normal(size=C), rng.normal(size=C)
    R, dres = rng.normal(size=(N, C)), rng.normal(size=(N, C))
    out, mean, rstd = np.empty((N, C)), np.empty(N), np.empty(N)

    def f():
        K.layernorm_forward(x, w, b, 1e-5, out, mean, rstd)
        return float((out * R).sum())
    f()
    dx, dw, db = np.empty((N, C)), np.empty(C), np.empty(C)
    K.layernorm_backward(R, x, mean, rstd, w, dres, dx, dw, db, np.empty((2 * K.CHUNKS, C)))
    check("layernorm dx", fd(f, x), dx - dres)
    check("layernorm dw", fd(f, w), dw)
    check("layernorm db", fd(f, b), db)


@pytest.mark.parametrize("T,H,scale", [(1, 1, None), (5, 2, None), (9, 4, None), (5, 2, 0.37), (5, 2, "mup")])
def test_attention(rng, T, H, scale):
    """SP's scale 1/sqrt(hs), muP's 1/hs and another one (the logit scale is the kernel's parameter)."""
    B, C = 2, 8
    hs = C // H
    scale = {None: 1 / np.sqrt(hs), "mup": 1 / hs}.get(scale, scale)
    qkv = rng.normal(size=(B * T, 3 * C))
    R = rng.normal(size=(B * T, C))
    att, y = np.empty((B, H, T, T)), np.empty((B * T, C))
    heads, sda = np.empty((7, B * H, T, hs)), np.empty((B * H, T, T))

    def f():
        K.attention_forward(qkv, B, T, H, scale, att, y, heads)
        return float((y * R).sum())
    f()
    np.testing.assert_allclose(np.triu(att, 1), 0)
    np.testing.assert_allclose(att.sum(-1), 1, rtol=1e-12)
    dqkv = np.empty_like(qkv)
    K.attention_backward(R, qkv, att, B, T, H, scale, dqkv, heads, sda)
    check(f"attention T={T} H={H} scale={scale:.3g} dqkv", fd(f, qkv), dqkv)


def test_attention_against_plain_numpy(rng):
    """The kernel's output equals a direct masked-softmax formula (an independent oracle)."""
    B, T, H, C = 2, 7, 2, 8
    hs = C // H
    qkv = rng.normal(size=(B * T, 3 * C))
    att, y = np.empty((B, H, T, T)), np.empty((B * T, C))
    K.attention_forward(qkv, B, T, H, 1 / np.sqrt(hs), att, y, np.empty((4, B * H, T, hs)))
    q, k, v = (qkv[:, i * C:(i + 1) * C].reshape(B, T, H, hs).transpose(0, 2, 1, 3) for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hs)
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(att, p, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(y, (p @ v).transpose(0, 2, 1, 3).reshape(B * T, C), rtol=1e-12, atol=1e-14)


def test_attention_float32_large_logits(rng):
    """Regression: the softmax's running max must be taken over the scaled logits. With the unscaled
    first logit as the start value, a large q.k made every exp underflow in float32 (0/0 = nan): a
    run at init std 0.2 went nan at its second step."""
    B, T, H, C = 1, 4, 1, 8
    scale = 1 / np.sqrt(C)
    qkv = rng.normal(size=(B * T, 3 * C))
    qkv[:, :C] *= 30.0                           # large queries
    qkv[0, C:2 * C] = qkv[:, :C].mean(0) * 3.0   # key 0 aligned with every query: a large first logit
    att, y = np.empty((B, H, T, T), np.float32), np.empty((B * T, C), np.float32)
    K.attention_forward(qkv.astype(np.float32), B, T, H, scale, att, y, np.empty((4, B * H, T, C), np.float32))
    q, k = qkv[:, :C], qkv[:, C:2 * C]
    s = np.where(np.tril(np.ones((T, T), bool)), q @ k.T * scale, -np.inf)
    assert (q @ k.T)[:, 0].max() * (1 - scale) > 100    # the old start value would have underflowed exp
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    assert np.isfinite(att).all() and np.isfinite(y).all()
    np.testing.assert_allclose(att[0, 0], p, atol=1e-5)


def test_activation_and_bias(rng):
    N, C = 4, 6
    pre0, b = rng.normal(size=(N, C)) * 2, rng.normal(size=C)
    R = rng.normal(size=(N, C))
    pre, out = np.empty((N, C)), np.empty((N, C))

    def f():
        pre[...] = pre0
        K.activation_forward(pre, b, out)
        return float((out * R).sum())
    f()
    dpre, db = np.empty((N, C)), np.empty(C)
    K.activation_backward(R, pre, dpre, db, np.empty((K.CHUNKS, C)))
    check("gelu dpre", fd(f, pre0), dpre)
    check("gelu db", fd(f, b), db)
    # the tanh-approximate GELU itself (GPT-2): x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    f()
    x = pre0 + b
    ref = x / 2 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    assert np.abs(out - ref).max() <= 1e-14 * np.abs(ref).max()


def test_activation_float32_stays_float32(rng):
    """The float32 kernels compute the GELU in float32 (the sympy constants cast to the argument's
    type, not promoting it to float64) and agree with the float64 kernel to float32 rounding:
    a few ulps of the formula's largest term."""
    import numba
    N, C = 64, 48
    pre64, b64 = rng.normal(size=(N, C)) * 3, rng.normal(size=C)
    out64 = np.empty((N, C))
    pre32, b32 = pre64.astype(np.float32), b64.astype(np.float32)
    out32 = np.empty((N, C), np.float32)
    pre64[...] = pre32 + b32   # the same inputs (their float32 sum) in float64
    x = pre32 + b32
    K.activation_forward(pre64, np.zeros(C), out64)
    K.activation_forward(pre32, b32, out32)
    sig = numba.typeof(np.float32(0))
    K.phi_dphi(np.float32(0.5))
    assert K.phi_dphi.overloads[(sig,)].signature.return_type == numba.types.UniTuple(sig, 2)
    # rounding bound per entry: a few ulps of the formula's largest term (x^3 in phi'; 1 - tanh^2
    # cancels, so phi' near its tails has absolute, not relative, float32 accuracy)
    bound = 8 * np.finfo(np.float32).eps * (1 + np.abs(x).astype(np.float64) ** 3)
    assert (np.abs(out32 - out64) <= bound).all()
    assert (np.abs(pre32 - pre64) <= bound).all()
    assert np.abs(x).max() > 6   # the inputs reach the tails


def test_bias_and_residual(rng):
    N, C = 5, 3
    res, y0, b = rng.normal(size=(N, C)), rng.normal(size=(N, C)), rng.normal(size=C)
    R = rng.normal(size=(N, C))
    out, y = np.empty((N, C)), np.empty((N, C))

    def f():
        y[...] = y0
        K.bias_forward(y, b)
        K.residual_forward(res, y, b, out)     # out = res + (y0 + b) + b
        return float((out * R).sum())
    f()
    db = np.empty(C)
    K.bias_backward(R, db, np.empty((K.CHUNKS, C)))
    check("bias db (used twice)", fd(f, b), 2 * db)
    check("residual d res", fd(f, res), R)


def test_embedding(rng):
    B, T, V, C = 2, 4, 5, 3
    idx = rng.integers(0, V, size=(B, T)).astype(np.int32)
    wte, wpe = rng.normal(size=(V, C)), rng.normal(size=(T, C))
    R = rng.normal(size=(B * T, C))
    out = np.empty((B * T, C))

    def f():
        K.embedding_forward(idx, wte, wpe, out)
        return float((out * R).sum())
    f()
    dwte, dwpe = np.zeros((V, C)), np.zeros((T, C))
    K.embedding_backward(R, idx, dwte, dwpe)
    check("embedding dwte", fd(f, wte), dwte)
    check("embedding dwpe", fd(f, wpe), dwpe)


def test_crossentropy(rng):
    N, V = 6, 5
    logits = rng.normal(size=(N, V)) * 3
    targets = rng.integers(0, V, size=N).astype(np.int32)
    probs, losses = np.empty((N, V)), np.empty(N)

    def f():
        K.crossentropy_forward(logits, targets, probs, losses)
        return K.mean_of(losses)
    loss = f()
    ref = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(N), targets])
    assert abs(loss - ref) < 1e-14
    dlogits = np.empty((N, V))
    K.crossentropy_backward(probs, targets, 1.0 / N, dlogits)
    check("cross-entropy dlogits", fd(f, logits), dlogits)


def test_adamw_against_numpy_reference(rng):
    """One AdamW step equals the plain formula (decoupled decay on the decayed segments only)."""
    n = 50
    theta, grad = rng.normal(size=n), rng.normal(size=n)
    m, v = rng.normal(size=n) * 0.1, rng.random(n) * 0.01
    segments = np.array([[0, 20, 1], [20, 35, 0], [35, 50, 1]], np.int64)
    lr, b1, b2, eps, wd, t, scale = 3e-3, 0.9, 0.95, 1e-8, 0.1, 7, 0.5
    decay = np.zeros(n, bool)
    decay[:20] = decay[35:] = True
    g = grad * scale
    m_ref, v_ref = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    p = np.where(decay, theta * (1 - lr * wd), theta)
    p_ref = p - lr / (1 - b1 ** t) * m_ref / (np.sqrt(v_ref) / np.sqrt(1 - b2 ** t) + eps)
    K.adamw_update(theta, grad, m, v, segments, lr, b1, b2, eps, wd, t, scale)
    np.testing.assert_allclose(m, m_ref, rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(v, v_ref, rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(theta, p_ref, rtol=1e-14, atol=1e-16)


def _model_check(cfg, seed, h):
    rng = np.random.default_rng(seed)
    params = init_params(cfg, seed=seed)
    B = 2
    net = Net(cfg, B)
    idx = rng.integers(0, cfg.vocab_size, size=(B, cfg.block_size)).astype(np.int32)
    targets = rng.integers(0, cfg.vocab_size, size=(B, cfg.block_size)).astype(np.int32)
    theta = params.theta
    grad = np.empty_like(theta)
    net.forward(theta, idx, targets)
    net.backward(theta, grad)
    f = lambda: net.forward(theta, idx, targets)  # noqa: E731
    numeric = fd(f, theta, h=h)
    worst = 0.0
    for name, (a, b, _) in cfg.offsets().items():
        worst = max(worst, check(f"{cfg.init} {name}", numeric[a:b], grad[a:b]))
    return worst


@pytest.mark.parametrize("init,embd_std,h", [("gpt2", 0.02, 3e-4), ("scaled(0.3)", 0.5, H_STEP)])
def test_whole_model_every_entry(init, embd_std, h):
    """Every entry of every tensor of a 2-block model (both GPT-2's small init and an O(1) one).
    With GPT-2's init the step is 3e-4: 1e-3 would be 5% of a typical weight (0.02)."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=7, init=init, embd_std=embd_std,
                    dtype="float64")
    print(f"\nwhole model, init {init}: worst {_model_check(cfg, seed=3, h=h):.2e}")


def test_whole_model_every_entry_mup():
    """muP at 2x the base width: attention logits ~1/d and the tied head's output multiplier 1/r."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=8, block_size=6, vocab_size=7, init="scaled(0.3)", embd_std=0.5,
                    parametrization="mup", base_width=4, dtype="float64")
    assert cfg.output_multiplier == 0.5
    print(f"\nwhole model, muP r=2: worst {_model_check(cfg, seed=4, h=H_STEP):.2e}")


def test_whole_model_sampled_entries_default_width():
    """A wider model (n_embd 32, 4 heads, 3 blocks): 60 random entries of every tensor larger than 60."""
    cfg = GPTConfig(n_layer=3, n_head=4, n_embd=32, block_size=8, vocab_size=13, init="scaled(0.2)", embd_std=0.5,
                    dtype="float64")
    rng = np.random.default_rng(11)
    params = init_params(cfg, seed=5)
    net = Net(cfg, 2)
    idx, targets = rng.integers(0, 13, size=(2, 2, 8)).astype(np.int32)
    theta = params.theta
    grad = np.empty_like(theta)
    net.forward(theta, idx, targets)
    net.backward(theta, grad)
    f = lambda: net.forward(theta, idx, targets)  # noqa: E731
    for name, (a, b, _) in cfg.offsets().items():
        entries = np.arange(a, b) if b - a <= 60 else np.sort(rng.choice(np.arange(a, b), 60, replace=False))
        check(f"wide {name}", fd(f, theta, entries=entries), grad[entries])


def test_a_wrong_gradient_fails_the_check():
    """The check has power: a backward that forgets the LayerNorm's mean term is caught."""
    rng = np.random.default_rng(0)
    N, C = 3, 4
    x, w, b, R = rng.normal(size=(N, C)), rng.normal(size=C), rng.normal(size=C), rng.normal(size=(N, C))
    out, mean, rstd = np.empty((N, C)), np.empty(N), np.empty(N)

    def f():
        K.layernorm_forward(x, w, b, 1e-5, out, mean, rstd)
        return float((out * R).sum())
    f()
    wrong = (R * w) * rstd[:, None]        # d xhat only: misses -mean(g) - xhat mean(g xhat)
    assert rel_error(fd(f, x), wrong) > 1e-2
