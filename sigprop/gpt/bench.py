"""Speed of a GPT training step: sigprop against PyTorch eager and the bare GEMM floor (benchmarks/gpt_speed.py).

Contenders, each running whole training steps on the same batches:

* ``sigprop``       :meth:`Net.forward`, :meth:`Net.backward`, global-norm clipping
                    (``kernels.sum_of_squares``) and ``kernels.adamw_update``: the step of
                    :func:`sigprop.gpt.train.train`
* ``torch manual``  :func:`sigprop.gpt.torch_reference.TorchGPT` (PyTorch eager, autograd) with
                    the attention written out, ``clip_grad_norm_`` and ``torch.optim.AdamW``
* ``torch sdpa``    the same with ``F.scaled_dot_product_attention(is_causal=True)``
* ``GEMM floor``    only the matrix products of one step (per block: the QKV, projection, MLP and
                    MLP-projection products forward, their dX and dW backward, and the attention's
                    two T x T products forward and four backward over the (batch, head) stack; the
                    tied head forward and its two backward products), numpy into preallocated
                    outputs, per-layer weights and activations like the Net's: what any BLAS-based
                    implementation pays.
* ``GEMM floor w/o attention``  the same without the attention's products (the floor as
                    stated until stop 17; at the default config they are 0.60 of the step's
                    7.9 G multiply-adds).

Contenders take turns (their order rotating every round) so that load from other processes
hits them alike; each gets the median over rounds of its per-step time.
"""
from __future__ import annotations

import glob
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from .model import GPTConfig, init_params
from .net import SplitNet

#: The step's optimiser settings (GPTTrainConfig's defaults).
LR, BETAS, EPS, WEIGHT_DECAY, GRAD_CLIP = 1e-3, (0.9, 0.95), 1e-8, 0.1, 1.0


# ----------------------------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------------------------
def _openblas_calls():
    """(get, set) of the OpenBLAS numpy loaded, or None when it cannot be found."""
    import ctypes
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for get, set_ in (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                          ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                          ("openblas_get_num_threads", "openblas_set_num_threads")):
            if hasattr(lib, get) and hasattr(lib, set_):
                return getattr(lib, get), getattr(lib, set_)
    return None


def _openblas_lib():
    """ctypes handle of the OpenBLAS numpy loaded, or None."""
    import ctypes
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    return ctypes.CDLL(libs[0]) if libs else None


def set_blas_thread_timeout(exponent: int) -> bool:
    """Let numpy's OpenBLAS worker threads spin about ``2**exponent`` CPU cycles after a product
    before they sleep (OpenBLAS's ``OPENBLAS_THREAD_TIMEOUT``, 4..30; its default 28 is ~0.1 s).

    While a worker spins it holds a core that the numba kernels between two products could use
    (after one product a worker used 17-29 ms of CPU within the next 50 ms, measured on the
    shared 2-core machine). Process-wide: sets the variable, makes OpenBLAS read it again and
    restarts its thread pool (OpenBLAS exports ``openblas_read_env`` and
    ``blas_thread_shutdown_``; the pool starts again at the next product). Returns False when
    numpy's OpenBLAS is not found or lacks these calls (nothing changed)."""
    if not 4 <= int(exponent) <= 30:
        raise ValueError(f"the OpenBLAS thread timeout exponent must be in [4, 30], got {exponent}")
    lib = _openblas_lib()
    if lib is None or not (hasattr(lib, "openblas_read_env") and hasattr(lib, "blas_thread_shutdown_")):
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(int(exponent))
    lib.openblas_read_env()
    lib.blas_thread_shutdown_()
    return True


def set_threads(n: int, torch=True) -> dict:
    """Use ``n`` threads in numba, numpy's BLAS and (if importable) PyTorch; the counts in effect."""
    import numba
    from .model import load_kernels
    load_kernels()   # picks numba's threading layer before the first parallel launch
    numba.set_num_threads(n)
    out = {"numba": numba.get_num_threads()}
    calls = _openblas_calls()
    if calls is not None:
        calls[1](n)
        out["BLAS"] = int(calls[0]())
    else:
        out["BLAS"] = f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    if torch:
        try:
            import torch as _t
            _t.set_num_threads(n)
            out["torch"] = _t.get_num_threads()
        except ImportError:
            pass
    return out


# ----------------------------------------------------------------------------------------------
# Contenders: each returns run(n), n training steps
# ----------------------------------------------------------------------------------------------
def random_batches(config: GPTConfig, batch: int, count: int = 4, seed: int = 0) -> list:
    """``count`` (idx, targets) int32 pairs (batch, block_size) of random tokens."""
    rng = np.random.default_rng(seed)
    return [tuple(rng.integers(0, config.vocab_size, size=(2, batch, config.block_size)).astype(np.int32))
            for _ in range(count)]


def sigprop_runner(config: GPTConfig, batches: list, seed: int = 0):
    """n training steps of sigprop (the step of :func:`sigprop.gpt.train.train`)."""
    theta = init_params(config, seed=seed).theta
    net = SplitNet(config, batches[0][0].shape[0])
    K = net.K
    grad, m, v = (np.zeros_like(theta) for _ in range(3))
    partial = np.zeros(K.CHUNKS)
    segments = config.decay_segments()
    state = {"step": 0}

    def run(n):   # every kernel through net.K (breakdown swaps in a timed stand-in)
        for _ in range(n):
            x, y = batches[state["step"] % len(batches)]
            net.forward(theta, x, y)
            net.backward(theta, grad)
            norm = math.sqrt(net.sum_of_squares(grad, partial))
            scale = min(1.0, GRAD_CLIP / (norm + 1e-6)) if math.isfinite(norm) else 1.0
            state["step"] += 1
            net.adamw_update(theta, grad, m, v, segments, LR, *BETAS, EPS, WEIGHT_DECAY, state["step"], scale)
    run.net, run.K = net, K
    return run


def torch_runner(config: GPTConfig, batches: list, attention: str = "manual", seed: int = 0):
    """n training steps of the PyTorch reference (the same init, batches and optimiser)."""
    import torch
    from .torch_reference import TorchGPT, adamw, train_step
    model = TorchGPT(init_params(config, seed=seed), attention=attention)
    opt = adamw(model, LR, BETAS, EPS, WEIGHT_DECAY)
    tb = [tuple(torch.from_numpy(a.astype(np.int64)) for a in xy) for xy in batches]
    state = {"step": 0}

    def run(n):
        for _ in range(n):
            x, y = tb[state["step"] % len(tb)]
            train_step(model, opt, x, y, LR, GRAD_CLIP)
            state["step"] += 1
    return run


def gemm_floor_runner(config: GPTConfig, batch: int, seed: int = 0, attention: bool = True):
    """n steps of only the matrix products of a training step (shapes and memory layout of the Net's):
    the linear layers' and the head's, and the attention's six per-head products (S = Q K^T,
    Y = A V; dA = dY V^T, dV = A^T dY, dQ = dS K, dK = dS^T Q) as numpy matmuls over the stack
    of (batch, head) pairs (``attention=False``: without them)."""
    rng = np.random.default_rng(seed)
    dt = config.np_dtype
    C, V, N = config.n_embd, config.vocab_size, batch * config.block_size
    T, BH, hs = config.block_size, batch * config.n_head, config.n_embd // config.n_head
    R = lambda *s: rng.standard_normal(s).astype(dt)  # noqa: E731
    E = lambda *s: np.empty(s, dt)  # noqa: E731
    products = []   # (a, b, out): out = a @ b
    for _ in range(config.n_layer):
        qkv_w, proj_w, fc_w, fcproj_w = R(C, 3 * C), R(C, C), R(C, 4 * C), R(4 * C, C)
        ln1, atty, ln2, fc_out = R(N, C), R(N, C), R(N, C), R(N, 4 * C)
        dqkv, dx, dfc_pre = R(N, 3 * C), R(N, C), R(N, 4 * C)
        products += [
            (ln1, qkv_w, E(N, 3 * C)), (atty, proj_w, E(N, C)),          # forward
            (ln2, fc_w, E(N, 4 * C)), (fc_out, fcproj_w, E(N, C)),
            (fc_out.T, dx, E(4 * C, C)), (dx, fcproj_w.T, E(N, 4 * C)),  # backward: dW, dX
            (ln2.T, dfc_pre, E(C, 4 * C)), (dfc_pre, fc_w.T, E(N, C)),
            (atty.T, dx, E(C, C)), (dx, proj_w.T, E(N, C)),
            (ln1.T, dqkv, E(C, 3 * C)), (dqkv, qkv_w.T, E(N, C))]
        if not attention:
            continue
        q, k, v, dy, att, ds = R(BH, T, hs), R(BH, T, hs), R(BH, T, hs), R(BH, T, hs), R(BH, T, T), R(BH, T, T)
        products += [
            (q, k.transpose(0, 2, 1), E(BH, T, T)), (att, v, E(BH, T, hs)),           # attention forward
            (dy, v.transpose(0, 2, 1), E(BH, T, T)), (att.transpose(0, 2, 1), dy, E(BH, T, hs)),
            (ds, k, E(BH, T, hs)), (ds.transpose(0, 2, 1), q, E(BH, T, hs))]          # and backward
    wte, lnf, dlogits = R(V, C), R(N, C), R(N, V)
    products += [(lnf, wte.T, E(N, V)), (dlogits, wte, E(N, C)), (dlogits.T, lnf, E(V, C))]

    def run(n):
        for _ in range(n):
            for a, b, out in products:
                np.matmul(a, b, out=out)
    return run


#: Seconds of rest before each contender's timed steps: the threads of the one before (numpy's
#: OpenBLAS workers spin about 0.1 s after a product, OpenMP's for a while after a parallel region)
#: go to sleep first instead of taking a core from it.
PAUSE = 0.3


def time_interleaved(contenders: dict, repeat: int, steps: int, clock=time.perf_counter,
                     pause: float = PAUSE) -> dict:
    """name -> list of per-step seconds, one per round; every round runs each contender for
    ``steps`` steps, in an order rotated by one each round, after ``pause`` seconds of rest. A
    warm-up round comes first. ``clock``: wall time (``time.perf_counter``) or the process's CPU
    time (``time.process_time``: on one thread the work done, whatever else loads the machine)."""
    for run in contenders.values():
        run(1)
    names = list(contenders)
    times = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(pause)
            t = clock()
            contenders[name](steps)
            times[name].append((clock() - t) / steps)
    return times


def speed_table(config: GPTConfig, batch: int, repeat: int, steps: int, torch: bool = True,
                cpu: bool = False, pause: float = PAUSE) -> dict:
    """Median ms/step of every contender for one config (see the module docstring); ``cpu``:
    process CPU time instead of wall time; ``pause``: seconds of rest before each contender's
    timed steps (:func:`time_interleaved`)."""
    batches = random_batches(config, batch)
    contenders = {"sigprop": sigprop_runner(config, batches)}
    if torch:
        contenders["torch manual"] = torch_runner(config, batches, "manual")
        contenders["torch sdpa"] = torch_runner(config, batches, "sdpa")
    contenders["GEMM floor"] = gemm_floor_runner(config, batch)
    contenders["GEMM floor w/o attention"] = gemm_floor_runner(config, batch, attention=False)
    times = time_interleaved(contenders, repeat, steps, time.process_time if cpu else time.perf_counter, pause)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def format_table(title: str, ms: dict) -> str:
    lines = [title, f"  {'contender':24s} {'ms/step':>9s} {'/ sigprop':>10s} {'/ GEMM floor':>13s}"]
    for name, t in ms.items():
        lines.append(f"  {name:24s} {t:9.2f} {t / ms['sigprop']:10.2f} {t / ms['GEMM floor']:13.2f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Time per operation
# ----------------------------------------------------------------------------------------------
class _Timed:
    """Stands for a module: its callables accumulate wall time into ``acc[label]``."""

    def __init__(self, module, acc, only=None, label=None, clock=time.perf_counter):
        self._module, self._acc, self._only, self._label, self._clock = module, acc, only, label, clock

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if not callable(attr) or (self._only is not None and name not in self._only):
            return attr
        label = self._label or name

        def timed(*args, **kwargs):
            t = self._clock()
            out = attr(*args, **kwargs)
            self._acc[label] = self._acc.get(label, 0.0) + self._clock() - t
            return out
        return timed


def breakdown(config: GPTConfig, batch: int, repeat: int, steps: int, cpu: bool = False) -> dict:
    """op -> median over ``repeat`` rounds of ms per training step spent in it (every kernel by
    name, every BLAS product of the Net as ``GEMM (BLAS)``, ``total`` the whole step, ``other``
    the rest: Python between the calls). Timing each call adds a little per call. With ``cpu``
    the clock is the process's CPU time (on one thread: the work, whatever else loads the machine;
    on more threads it counts spin-waiting too), else wall time. The micro-batches run on threads
    of their own (:class:`~sigprop.gpt.net.SplitNet`): an op's time is summed over them."""
    clock = time.process_time if cpu else time.perf_counter
    from . import net as net_module
    batches = random_batches(config, batch)
    acc = {}
    runner = sigprop_runner(config, batches)
    kernels = runner.net.K
    timed = _Timed(kernels, acc, clock=clock)
    runner.net.K = runner.K = timed
    for sub in runner.net.nets:   # the micro-batches' nets (their times add up over their threads)
        sub.K = timed
    rounds = []
    saved = net_module.np
    net_module.np = _Timed(np, acc, only=("matmul",), label="GEMM (BLAS)", clock=clock)
    try:
        runner(1)
        for _ in range(repeat):
            acc.clear()
            t = clock()
            runner(steps)
            total = clock() - t
            row = {name: 1e3 * s / steps for name, s in acc.items()}
            row["other"] = 1e3 * total / steps - sum(row.values())
            row["total"] = 1e3 * total / steps
            rounds.append(row)
    finally:
        net_module.np = saved
        runner.net.K = runner.K = kernels
        for sub in runner.net.nets:
            sub.K = kernels
    out = {name: statistics.median(r.get(name, 0.0) for r in rounds) for name in rounds[0]}
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "total", -kv[1])))


def format_breakdown(title: str, ms: dict) -> str:
    lines = [title]
    for name, t in ms.items():
        lines.append(f"    {name:24s} {t:8.2f} ms/step {100 * t / ms['total']:5.1f} %")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Compile time
# ----------------------------------------------------------------------------------------------
def one_step(dtype: str = "float32", batch: int = 16) -> None:
    """One training step of the default config (what a first ``sigprop gpt train`` step compiles)."""
    config = GPTConfig(dtype=dtype)
    sigprop_runner(config, random_batches(config, batch, count=1))(1)


def start_times(dtype: str = "float32") -> tuple:
    """Wall seconds of ``python -c "one training step"`` with a fresh empty SIGPROP_CACHE_DIR
    (first run: code generation and numba compilation) and again with the same folder (cached start)."""
    code = f"from sigprop.gpt.bench import one_step; one_step({dtype!r})"
    with tempfile.TemporaryDirectory(prefix="sigprop-cache-") as cache:
        env = dict(os.environ, SIGPROP_CACHE_DIR=cache)
        out = []
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            out.append(time.perf_counter() - t)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Same training run in both
# ----------------------------------------------------------------------------------------------
def val_comparison(steps: int, **overrides) -> dict:
    """Train sigprop and the PyTorch reference for ``steps`` steps on the shipped corpus from the
    same initial weights, batches and learning-rate schedule; train and val losses of both on
    the fixed windows of :func:`sigprop.gpt.train.evaluate`."""
    import torch
    from .data import batch_starts, get_batch, load_corpus, unigram_loss
    from .torch_reference import TorchGPT, adamw, evaluate, train_step
    from .train import GPTTrainConfig, TrainResult, train
    tc = GPTTrainConfig(steps=steps, eval_every=steps, diag_every=0, checkpoint_every=0, **overrides)
    corpus = load_corpus(tc.data, tc.block_size)
    params = init_params(tc.model(len(corpus.vocab)), seed=tc.seed)
    model = TorchGPT(params)                      # copies the initial weights
    t = time.perf_counter()
    state = train(tc, progress=False, corpus=corpus, state=TrainResult(tc, corpus, params.copy()))
    ours_s = time.perf_counter() - t
    _, ours_train, ours_val = state.evals[-1]
    opt = adamw(model, tc.lr, (tc.beta1, tc.beta2), tc.eps, tc.weight_decay)
    B, T = tc.batch_size, tc.block_size
    x, y = np.empty((B, T), np.int32), np.empty((B, T), np.int32)
    t = time.perf_counter()
    for step in range(steps):
        get_batch(corpus.train, batch_starts(len(corpus.train), T, B, tc.seed, step), T, x, y)
        train_step(model, opt, torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64)),
                   tc.lr_at(step), tc.grad_clip)
    torch_s = time.perf_counter() - t
    return {"config": tc, "unigram": unigram_loss(corpus), "ln_vocab": math.log(len(corpus.vocab)),
            "sigprop": (ours_train, ours_val, ours_s),
            "torch": (evaluate(model, corpus.train, B, tc.eval_batches),
                      evaluate(model, corpus.val, B, tc.eval_batches), torch_s)}
