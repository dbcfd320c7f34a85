"""GPT training: initial loss and logit scale, bitwise reproducibility and resume, the CLI."""
import json
import math

import numpy as np
import pytest

from sigprop.cli import main
from sigprop.gpt.data import load_corpus
from sigprop.gpt.model import GPTConfig, init_params
from sigprop.gpt.net import Net, SplitNet
from sigprop.gpt.train import GPTTrainConfig, load_checkpoint, resume, train

SMALL = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, warmup=5, lr=3e-3)


def test_initial_loss_and_logit_scale():
    """At GPT-2's init the loss is within 0.05 of ln V, and the logits' mean square (the input
    token's own column left out: the tied head makes it large) matches the init's prediction
    sigma_wte^2 |lnf(x)|^2 = sigma^2 C (1 - eps rstd^2), averaged over 8 independent inits;
    tolerance 4 standard errors over the inits."""
    corpus = load_corpus(block_size=64)
    cfg = GPTConfig(vocab_size=len(corpus.vocab), n_layer=4)
    net = Net(cfg, 8)
    starts = np.arange(8) * 1000
    x = np.stack([corpus.train[s:s + 64] for s in starts]).astype(np.int32)
    y = np.stack([corpus.train[s + 1:s + 65] for s in starts]).astype(np.int32)
    ratios, losses = [], []
    for seed in range(8):
        p = init_params(cfg, seed=seed)
        losses.append(net.forward(p.theta, x, y))
        own = np.zeros_like(net.logits, bool)
        own[np.arange(own.shape[0]), x.reshape(-1)] = True
        measured = float(np.mean(net.logits.astype(np.float64)[~own] ** 2))
        rstd = net.lnf_stats[1].astype(np.float64)
        predicted = cfg.embd_std ** 2 * cfg.n_embd * float(np.mean(1 - cfg.ln_eps * rstd ** 2))
        ratios.append(measured / predicted)
    assert abs(np.mean(losses) - math.log(cfg.vocab_size)) < 0.05
    r = np.array(ratios)
    se = r.std(ddof=1) / np.sqrt(len(r))
    print(f"\nlogit mean square / prediction: {r.mean():.4f} +- {se:.4f}; loss {np.mean(losses):.4f} "
          f"vs ln V {math.log(cfg.vocab_size):.4f}")
    assert abs(r.mean() - 1) < 4 * se + 1e-3


def test_same_seed_same_run_and_bitwise_resume(tmp_path):
    cfg = GPTTrainConfig(**SMALL, steps=12, eval_every=6, diag_every=4, checkpoint_every=6, seed=3)
    a = train(cfg, progress=False)
    b = train(cfg, progress=False)
    assert np.array_equal(a.losses, b.losses) and np.array_equal(a.params.theta, b.params.theta)
    # stop after 6 steps (a checkpoint), continue to 12: the same bits as the uninterrupted run
    half = train(cfg.replace(steps=6), out=tmp_path / "run", progress=False)
    assert half.step == 6
    ckpt = tmp_path / "run" / "checkpoint.npz"
    cont = resume(ckpt, steps=12, progress=False)
    assert np.array_equal(cont.params.theta, a.params.theta)
    assert np.array_equal(cont.losses, a.losses)
    assert cont.evals == a.evals
    assert cont.diagnostics.steps == a.diagnostics.steps == [0, 4, 8]
    np.testing.assert_array_equal(cont.diagnostics.series("q_std"), a.diagnostics.series("q_std"))


def test_training_lowers_the_loss_below_unigram():
    cfg = GPTTrainConfig(**SMALL, steps=150, eval_every=150, diag_every=0, seed=1)
    r = train(cfg, progress=False)
    s = r.summary()
    assert s["final"]["val"] < s["unigram_val_loss"] < s["ln_vocab"]


def test_diagnostics_record_qkv_and_residual(tmp_path):
    cfg = GPTTrainConfig(**SMALL, steps=3, eval_every=0, diag_every=2, seed=0)
    r = train(cfg, out=tmp_path / "d", progress=False)
    def strict(c):
        raise ValueError(f"non-strict JSON constant {c}")
    d = json.loads((tmp_path / "d" / "diagnostics.json").read_text(), parse_constant=strict)
    json.loads((tmp_path / "d" / "summary.json").read_text(), parse_constant=strict)
    assert d["steps"] == [0, 2]
    s0 = r.diagnostics.stats[0]
    np.testing.assert_allclose(s0["q_std"], 0.02, rtol=0.1)   # N(0, 0.02) at step 0, 32 x 32 entries
    assert (s0["resid_var_out"] > 0).all() and s0.depth == 2
    # at init attention is near uniform: entropy close to the mean of ln(t + 1) over positions
    uniform = np.mean(np.log(np.arange(1, 17)))
    np.testing.assert_allclose(s0["attn_entropy"], uniform, rtol=0.02)


def test_checkpoint_checks(tmp_path):
    cfg = GPTTrainConfig(**SMALL, steps=2, eval_every=0, diag_every=0)
    train(cfg, out=tmp_path / "c", progress=False)
    ckpt = tmp_path / "c" / "checkpoint.npz"
    z = dict(np.load(ckpt))
    z["theta"] = z["theta"].copy()
    z["theta"][0] = np.nan
    bad = tmp_path / "bad.npz"
    np.savez(bad, **z)
    with pytest.raises(ValueError, match="not finite"):
        load_checkpoint(bad)
    with pytest.raises(ValueError, match="no such file"):
        load_checkpoint(tmp_path / "missing.npz")


def test_cli_train_sample_and_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["gpt", "train", "--depth", "1", "--width", "16", "--heads", "2", "--block-size", "8", "--steps", "4",
            "--eval-every", "2", "--sample-chars", "20", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert {"config.json", "checkpoint.npz", "diagnostics.json", "summary.json", "samples.txt"} <= \
        {p.name for p in out.iterdir()}
    assert main(["gpt", "sample", "--checkpoint", str(out / "checkpoint.npz"), "-n", "15"]) == 0
    capsys.readouterr()
    for bad in (["--width", "30", "--heads", "4"], ["--steps", "0"], ["--init", "nonsense"]):
        assert main(["gpt", "train", "--out", str(tmp_path / "x")] + bad) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err and "Traceback" not in err
    assert main(["gpt", "train", "--width", "100000", "--heads", "4", "--out", str(tmp_path / "big")]) == 2
    assert "TB of memory" in capsys.readouterr().err and not (tmp_path / "big").exists()
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["gpt", "train", "--data", str(empty), "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "y").exists()



def test_same_bits_on_any_number_of_threads():
    """A batch is cut into a fixed number of micro-batches (run one after the other on 1 thread,
    at once on 2), every sum over rows is split into fixed chunks and every attention head is one
    task, so a training run gives bitwise the same losses and parameters on 1 and 2 numba threads."""
    import numba
    cfg = GPTTrainConfig(**SMALL, steps=4, eval_every=0, diag_every=0, seed=5)
    n = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            runs.append(train(cfg, progress=False))
    finally:
        numba.set_num_threads(n)
    assert np.array_equal(runs[0].losses, runs[1].losses)
    assert np.array_equal(runs[0].params.theta, runs[1].params.theta)


def test_blas_thread_timeout_setting_keeps_products_right():
    """bench.set_blas_thread_timeout restarts numpy's OpenBLAS thread pool; products computed on the
    restarted pool equal those before, and a bad exponent is refused before anything changes."""
    import os
    from sigprop.gpt.bench import set_blas_thread_timeout
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 400))
    before = a @ b
    saved = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    with pytest.raises(ValueError, match="timeout exponent"):
        set_blas_thread_timeout(3)
    try:
        changed = set_blas_thread_timeout(4)
        assert changed in (True, False)
        if changed:
            assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"
        assert np.array_equal(a @ b, before)
    finally:
        set_blas_thread_timeout(int(saved) if saved and 4 <= int(saved) <= 30 else 28)   # as before (28: OpenBLAS's default)
        if saved is None:
            os.environ.pop("OPENBLAS_THREAD_TIMEOUT", None)
        else:
            os.environ["OPENBLAS_THREAD_TIMEOUT"] = saved
    assert np.array_equal(a @ b, before)


@pytest.mark.parametrize("batch", [1, 3, 4])
def test_micro_batches_give_the_batch_mean(batch):
    """SplitNet (the batch cut into micro-batches, each through its own Net on its own thread)
    gives the batch's mean loss and its gradient as one Net over the whole batch does, to float64
    rounding; the buffers the diagnostics read are the whole batch's; the gradient's sum of
    squares and the AdamW step split over the threads are bitwise the serial kernels'."""
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11, dtype="float64")
    p = init_params(cfg, seed=3)
    idx, targets = np.random.default_rng(batch).integers(0, 11, size=(2, batch, 8)).astype(np.int32)
    one, split = Net(cfg, batch), SplitNet(cfg, batch)
    assert len(split.nets) == min(batch, 2)
    loss_one, loss_split = one.forward(p.theta, idx, targets), split.forward(p.theta, idx, targets)
    assert loss_split == pytest.approx(loss_one, rel=1e-14)
    g_one, g_split = np.empty_like(p.theta), np.full_like(p.theta, np.nan)
    one.backward(p.theta, g_one)
    split.backward(p.theta, g_split)
    np.testing.assert_allclose(g_split, g_one, rtol=1e-12, atol=1e-15)
    for name in ("logits", "probs"):   # row-wise: equal up to BLAS's blocking of the products
        np.testing.assert_allclose(getattr(split, name), getattr(one, name), rtol=1e-13, atol=1e-15)
    for name in ("x", "a", "att"):
        for l, (s, o) in enumerate(zip(getattr(split, name), getattr(one, name))):
            np.testing.assert_allclose(s, o, rtol=1e-13, atol=1e-15, err_msg=f"{name}[{l}]")
    K = one.K
    partial = np.empty(K.CHUNKS)
    assert split.sum_of_squares(g_split, partial) == K.sum_of_squares(g_split, partial)
    state = [p.theta.copy(), np.zeros_like(p.theta), np.zeros_like(p.theta)]
    serial = [a.copy() for a in state]
    args = (cfg.decay_segments(), 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, 0.5)
    split.adamw_update(state[0], g_split, state[1], state[2], *args)
    K.adamw_update(serial[0], g_split, serial[1], serial[2], *args)
    for a, b in zip(state, serial):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="token batch must have shape"):
        split.forward(p.theta, idx[:, :4])


def test_ctrl_c_finishes_the_step_under_way_and_resumes_bitwise(tmp_path, monkeypatch):
    """A Ctrl-C (SIGINT) arriving right after a step's AdamW update lets that step finish (its
    loss recorded, its step counted), writes the checkpoint and raises KeyboardInterrupt; resuming
    from it gives the uninterrupted run's bits. (Interrupting at once would save the updated
    parameters under the previous step count, and the resumed run would apply the step twice.)"""
    import os
    import signal
    from sigprop.gpt import net as net_module
    cfg = GPTTrainConfig(**SMALL, steps=8, eval_every=4, diag_every=0, seed=4)
    whole = train(cfg, progress=False)
    update = net_module.SplitNet.adamw_update
    calls = []

    def update_then_interrupt(self, *args):
        update(self, *args)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(net_module.SplitNet, "adamw_update", update_then_interrupt)
    # Python's own Ctrl-C handler, whatever the test runner's process was started with (a job in
    # the background ignores SIGINT, and then training does not catch it either)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, out=tmp_path / "run", progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored after training
    finally:
        signal.signal(signal.SIGINT, before)
    monkeypatch.undo()
    ckpt = tmp_path / "run" / "checkpoint.npz"
    assert load_checkpoint(ckpt).step == 3
    cont = resume(ckpt, progress=False)
    assert np.array_equal(cont.params.theta, whole.params.theta)
    assert np.array_equal(cont.losses, whole.losses)


def test_deferred_interrupt_leaves_an_ignored_sigint_alone():
    """A process that ignores SIGINT (started in the background) keeps ignoring it in training."""
    import signal
    from sigprop._threads import deferred_interrupt
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_interrupt() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and not stop.requested
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with deferred_interrupt():
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
