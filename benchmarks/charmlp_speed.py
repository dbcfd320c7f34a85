#!/usr/bin/env python3
"""Training speed of the character MLP engine against numpy, PyTorch eager and the bare GEMMs.

The model is makemore part 3's: context 3, embedding 10, one tanh hidden layer of
200, batch 32, SGD; with and without BatchNorm. Each contender runs the same
loop (draw a minibatch, forward, cross-entropy, backward, update):

* engine   sigprop.charmlp kernels (numba, hand-written gradients), float32 and float64
* numpy    a straightforward numpy implementation written below (not the engine)
* torch    PyTorch eager on the CPU with autograd, if importable (threads: --torch-threads)
* GEMMs    only the six matrix products of one step (forward 2, backward 4) with np.dot into
           preallocated arrays, same shapes and dtype: the floor any implementation built on
           BLAS calls pays

Times are the best of ``--repeat`` rounds (per-step microseconds; ``--steps`` steps per run of
the engine and the GEMMs, a tenth of that for numpy and PyTorch); the contenders take turns
in every round.
On a shared machine they are noisy; OPENBLAS_CORETYPE (printed) changes numpy's and
the GEMM floor's kernels.

Usage::

    python benchmarks/charmlp_speed.py [--steps 20000] [--repeat 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

BLOCK, EMBD, HIDDEN, BATCH, LR = 3, 10, 200, 32, 0.1


def _data():
    from sigprop.charmlp import build_dataset, build_vocab, load_words
    words = load_words()
    vocab = build_vocab(words)
    X, Y = build_dataset(words, BLOCK, vocab)
    return X, Y, len(vocab)


def _time_all(contenders, repeat):
    """Best per-step time of each (runner, steps), the contenders taking turns in every round so
    that a busy spell on a shared machine hits them alike."""
    for run, steps in contenders.values():
        run(min(steps, 200))  # warm-up (and compilation)
    best = {name: np.inf for name in contenders}
    for _ in range(repeat):
        for name, (run, steps) in contenders.items():
            t = time.perf_counter()
            run(steps)
            best[name] = min(best[name], (time.perf_counter() - t) / steps)
    return best


# ----------------------------------------------------------------------------------------------
def engine_runner(X, Y, dtype, batch_norm):
    from sigprop.charmlp import TrainConfig
    from sigprop.charmlp.train import _Workspace, initial_params
    from sigprop.charmlp.data import build_vocab, load_words
    cfg = TrainConfig(width=HIDDEN, n_embd=EMBD, block_size=BLOCK, batch_norm=batch_norm, dtype=dtype)
    params = initial_params(cfg, build_vocab(load_words()))
    model = params.model
    wk = _Workspace(model, BATCH)
    grad = np.zeros_like(params.theta)
    rng = np.random.Generator(np.random.PCG64(0))
    K = model.kernels

    def run(n):
        raw = rng.bit_generator.random_raw(n * BATCH).reshape(n, BATCH)
        lrs = np.full(n, LR)
        losses = np.zeros(n)
        K.train_steps(params.theta, grad, params.bnstate, X, Y, raw, lrs, losses, wk.ws, wk.tmp, wk.ctx, wk.y,
                      wk.lay, model.n_embd, cfg.bn_momentum, cfg.bn_eps)
    return run


def numpy_runner(X, Y, V, dtype, batch_norm):
    rng = np.random.default_rng(0)
    D = BLOCK * EMBD
    C = rng.standard_normal((V, EMBD)).astype(dtype)
    W1 = (rng.standard_normal((D, HIDDEN)) * (5 / 3) / np.sqrt(D)).astype(dtype)
    b1 = np.zeros(HIDDEN, dtype)
    g, beta = np.ones(HIDDEN, dtype), np.zeros(HIDDEN, dtype)
    W2 = (0.01 * rng.standard_normal((HIDDEN, V))).astype(dtype)
    b2 = np.zeros(V, dtype)
    rows = np.arange(BATCH)

    def run(n):
        for _ in range(n):
            ix = rng.integers(0, X.shape[0], BATCH)
            ctx, y = X[ix], Y[ix]
            emb = C[ctx].reshape(BATCH, D)
            z = emb @ W1
            if batch_norm:
                mean = z.mean(0)
                var = z.var(0, ddof=1)
                istd = 1.0 / np.sqrt(var + 1e-5)
                xhat = (z - mean) * istd
                hpre = g * xhat + beta
            else:
                hpre = z + b1
            h = np.tanh(hpre)
            logits = h @ W2 + b2
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            # backward
            dlogits = p
            dlogits[rows, y] -= 1
            dlogits /= BATCH
            dW2 = h.T @ dlogits
            db2 = dlogits.sum(0)
            dh = dlogits @ W2.T
            dhpre = dh * (1 - h * h)
            if batch_norm:
                dbeta = dhpre.sum(0)
                dg = (dhpre * xhat).sum(0)
                dz = g * istd / BATCH * (BATCH * dhpre - dbeta - BATCH / (BATCH - 1) * xhat * dg)
            else:
                dz = dhpre
                db1 = dz.sum(0)
            dW1 = emb.T @ dz
            demb = (dz @ W1.T).reshape(BATCH, BLOCK, EMBD)
            dC = np.zeros_like(C)
            np.add.at(dC, ctx, demb)
            C[...] -= LR * dC
            W1[...] -= LR * dW1
            W2[...] -= LR * dW2
            b2[...] -= LR * db2
            if batch_norm:
                g[...] -= LR * dg
                beta[...] -= LR * dbeta
            else:
                b1[...] -= LR * db1
    return run


def torch_runner(X, Y, V, batch_norm, threads):
    import torch
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    D = BLOCK * EMBD
    Xt, Yt = torch.from_numpy(X.astype(np.int64)), torch.from_numpy(Y.astype(np.int64))
    C = torch.randn((V, EMBD), generator=gen)
    W1 = torch.randn((D, HIDDEN), generator=gen) * (5 / 3) / D ** 0.5
    b1 = torch.zeros(HIDDEN)
    g, beta = torch.ones(HIDDEN), torch.zeros(HIDDEN)
    W2 = torch.randn((HIDDEN, V), generator=gen) * 0.01
    b2 = torch.zeros(V)
    params = [C, W1, W2, b2] + ([g, beta] if batch_norm else [b1])
    for p in params:
        p.requires_grad = True

    def run(n):
        for _ in range(n):
            ix = torch.randint(0, Xt.shape[0], (BATCH,), generator=gen)
            emb = C[Xt[ix]].view(BATCH, -1)
            z = emb @ W1
            if batch_norm:
                z = g * (z - z.mean(0, keepdim=True)) / torch.sqrt(z.var(0, keepdim=True) + 1e-5) + beta
            else:
                z = z + b1
            h = torch.tanh(z)
            loss = torch.nn.functional.cross_entropy(h @ W2 + b2, Yt[ix])
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= LR * p.grad
    return run


def gemm_runner(V, dtype):
    rng = np.random.default_rng(0)
    D = BLOCK * EMBD
    R = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    emb, W1, h, W2, dl, dz = R(BATCH, D), R(D, HIDDEN), R(BATCH, HIDDEN), R(HIDDEN, V), R(BATCH, V), R(BATCH, HIDDEN)
    o1, o2, o3, o4, o5, o6 = (np.empty(s, dtype) for s in
                              ((BATCH, HIDDEN), (BATCH, V), (HIDDEN, V), (BATCH, HIDDEN), (D, HIDDEN), (BATCH, D)))
    hT, W2T, embT, W1T = h.T, W2.T, emb.T, W1.T

    def run(n):
        for _ in range(n):
            np.dot(emb, W1, out=o1)      # z = emb W1
            np.dot(h, W2, out=o2)        # logits = h W2
            np.dot(hT, dl, out=o3)       # dW2 = h^T dlogits
            np.dot(dl, W2T, out=o4)      # dh = dlogits W2^T
            np.dot(embT, dz, out=o5)     # dW1 = emb^T dz
            np.dot(dz, W1T, out=o6)      # demb = dz W1^T
    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20000, help="steps per timed run of the engine (default 20000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs, best kept (default 3)")
    p.add_argument("--torch-threads", type=int, default=1, help="PyTorch intra-op threads (default 1, like the engine)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    X, Y, V = _data()
    slow_steps = max(args.steps // 10, 200)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    contenders = {}
    for bn in (False, True):
        tag = "bn" if bn else "plain"
        for dt in ("float32", "float64"):
            contenders[f"engine {dt} {tag}"] = (engine_runner(X, Y, dt, bn), args.steps)
        contenders[f"numpy float32 {tag}"] = (numpy_runner(X, Y, V, np.float32, bn), slow_steps)
        if have_torch:
            contenders[f"torch float32 {tag}"] = (torch_runner(X, Y, V, bn, args.torch_threads), slow_steps)
    for dt, name in ((np.float32, "float32"), (np.float64, "float64")):
        contenders[f"GEMM floor {name}"] = (gemm_runner(V, dt), args.steps)
    results = _time_all(contenders, args.repeat)

    floor32, eng32 = results["GEMM floor float32"], results["engine float32 plain"]
    print(f"character MLP (block {BLOCK}, embedding {EMBD}, hidden {HIDDEN} tanh, batch {BATCH}); "
          f"best of {args.repeat}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    print(f"{'contender':28s} {'us/step':>9s} {'steps/s':>10s} {'200k steps':>11s} {'/GEMM f32':>10s} "
          f"{'/engine f32':>12s}")
    for name, t in results.items():
        print(f"{name:28s} {t * 1e6:9.1f} {1 / t:10,.0f} {2e5 * t:10.1f}s {t / floor32:10.2f} {t / eng32:12.2f}")
    bn_cost = results["engine float32 bn"] / eng32 - 1
    print(f"BatchNorm adds {100 * bn_cost:.0f}% to the engine's float32 step")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({k: v * 1e6 for k, v in results.items()}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
