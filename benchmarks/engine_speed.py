"""Speed of the Monte Carlo engine against plain numpy and torch doing the same work.

Three comparisons, printed side by side (time in seconds, ratio = other / engine, so a
ratio above 1 means the engine is faster):

(a) GEMM-bound: few wide networks (default depth 20, width 512, 1024 inputs each). The
    reference is the bare numpy matmuls of the same shapes (forward ``x @ W`` and backward
    ``g @ W.T`` per layer, weights drawn beforehand): the engine's goal is at most 1.25x
    that time, i.e. ratio >= 0.8.
(b) Many small networks (default 10,000 networks, depth 20, width 64, 16 inputs): a
    straightforward numpy loop over networks (per layer: draw W, GEMM, tanh, the same
    statistics; backward likewise). Goal: ratio >= 5.
(c) torch (CPU), if importable: the same simulations as (a) and (b) written in torch.
    Goal: ratio >= 1.

Every contender computes the same statistics (pre-activation second moment, activation
mean / second moment, saturated and dead fractions, phi'^2, pair correlation sums,
log-norms, gradient second moment), per network, from its own random numbers.

Run: ``python benchmarks/engine_speed.py`` (``--quick`` for a smaller run). Compile time is
reported separately (first call in a fresh cache vs a cached call) and excluded from the
timings, which are the best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def _best(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


# --- (a) bare matmuls of the engine's shapes ---------------------------------------------------------
def bare_matmul(depth, width, n_inputs, n_networks, dtype=np.float64):
    rng = np.random.default_rng(0)
    # cast after scaling: a float32 array divided by a numpy float64 scalar is float64 (NEP 50)
    weights = [(rng.standard_normal((width, width)) / np.sqrt(width)).astype(dtype) for _ in range(depth)]
    x0 = rng.standard_normal((n_inputs, width)).astype(dtype)

    def go():
        for _ in range(n_networks):
            x = x0
            for w in weights:
                x = x @ w          # forward GEMM
            g = x0
            for w in reversed(weights):
                g = g @ w.T        # backward GEMM
    return go


# --- the same simulation in a plain numpy loop --------------------------------------------------------
def numpy_loop(depth, width, n_inputs, n_networks, sigma_w, seed=0, c0=0.5, threshold=0.97):
    lo, hi = -np.arctanh(threshold), np.arctanh(threshold)
    std = sigma_w / np.sqrt(width)
    pairs = n_inputs // 2

    def go():
        out = np.empty((n_networks, depth, 13))
        for k, child in enumerate(np.random.SeedSequence(seed).spawn(n_networks)):
            rng = np.random.default_rng(child)
            xa = rng.standard_normal((pairs, width))
            x = np.vstack([xa, c0 * xa + np.sqrt(1 - c0 ** 2) * rng.standard_normal((pairs, width))])
            weights, dphi = [], []
            for l in range(depth):
                w = rng.standard_normal((width, width)) * std
                h = x @ w
                x = np.tanh(h)
                d = 1.0 - x * x
                sq = (x * x).sum(axis=1)
                out[k, l, 0] = (h * h).mean()
                out[k, l, 1] = x.mean()
                out[k, l, 2] = sq.mean() / width
                out[k, l, 3] = ((h < lo) | (h > hi)).mean()
                out[k, l, 4] = (h == -np.inf).mean()
                out[k, l, 5] = (d * d).mean()
                out[k, l, 6] = (h[:pairs] * h[pairs:]).mean()
                logs = np.log(sq)
                out[k, l, 7] = logs.mean()
                out[k, l, 8] = (logs * logs).mean()
                weights.append(w)
                dphi.append(d)
            g = rng.standard_normal((n_inputs, width))
            for l in range(depth - 1, -1, -1):
                g = g * dphi[l]
                gs = (g * g).sum(axis=1)
                out[k, l, 9] = gs.mean() / width
                lg = np.log(gs)
                out[k, l, 10] = lg.mean()
                out[k, l, 11] = (lg * lg).mean()
                g = g @ weights[l].T
        return out
    return go


# --- torch ------------------------------------------------------------------------------------------
def torch_loop(depth, width, n_inputs, n_networks, sigma_w, seed=0, c0=0.5, threshold=0.97, batch=1):
    """The same simulation in torch; ``batch`` networks at a time with batched matmuls."""
    import torch
    lo, hi = -float(np.arctanh(threshold)), float(np.arctanh(threshold))
    std = sigma_w / np.sqrt(width)
    pairs = n_inputs // 2
    torch.manual_seed(seed)

    def go():
        out = torch.empty((n_networks, depth, 13), dtype=torch.float64)
        with torch.no_grad():
            for k0 in range(0, n_networks, batch):
                nb = min(batch, n_networks - k0)
                xa = torch.randn(nb, pairs, width, dtype=torch.float64)
                x = torch.cat([xa, c0 * xa + (1 - c0 ** 2) ** 0.5 * torch.randn(nb, pairs, width, dtype=torch.float64)], 1)
                weights, dphi = [], []
                o = out[k0:k0 + nb]
                for l in range(depth):
                    w = torch.randn(nb, width, width, dtype=torch.float64) * std
                    h = torch.bmm(x, w)
                    x = torch.tanh(h)
                    d = 1.0 - x * x
                    sq = (x * x).sum(-1)
                    o[:, l, 0] = (h * h).mean((1, 2))
                    o[:, l, 1] = x.mean((1, 2))
                    o[:, l, 2] = sq.mean(-1) / width
                    o[:, l, 3] = ((h < lo) | (h > hi)).double().mean((1, 2))
                    o[:, l, 4] = (h == -float("inf")).double().mean((1, 2))
                    o[:, l, 5] = (d * d).mean((1, 2))
                    o[:, l, 6] = (h[:, :pairs] * h[:, pairs:]).mean((1, 2))
                    logs = torch.log(sq)
                    o[:, l, 7] = logs.mean(-1)
                    o[:, l, 8] = (logs * logs).mean(-1)
                    weights.append(w)
                    dphi.append(d)
                g = torch.randn(nb, n_inputs, width, dtype=torch.float64)
                for l in range(depth - 1, -1, -1):
                    g = g * dphi[l]
                    gs = (g * g).sum(-1)
                    o[:, l, 9] = gs.mean(-1) / width
                    lg = torch.log(gs)
                    o[:, l, 10] = lg.mean(-1)
                    o[:, l, 11] = (lg * lg).mean(-1)
                    g = torch.bmm(g, weights[l].transpose(1, 2))
        return out
    return go


def engine(depth, width, n_inputs, n_networks, activation="tanh"):
    from sigprop import NetSpec
    from sigprop.simulate import run
    spec = NetSpec.uniform(depth=depth, width=width, activation=activation, init="kaiming")
    run(spec, 2, n_inputs, seed=1)  # compile / load from cache
    return lambda: run(spec, n_networks, n_inputs, seed=0)


# --- --breakdown: where the engine's time goes, against each phase's floor ---------------------------
def copy_bandwidth(n_bytes, repeat=20):
    """Bytes per second that ``np.copyto`` moves (read + write) on arrays of ``n_bytes``."""
    src = np.ones(max(1, n_bytes // 8))
    dst = np.empty_like(src)
    t = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeat))
    return 2 * src.nbytes / t


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def gemm_floors(depth, width, n_inputs, n_networks, batch, dtype=np.float64, repeat=3):
    """Seconds of the bare forward and backward GEMMs of a run, ``batch`` networks per call,
    weights drawn beforehand: the faster of numpy's own call (BLAS threads as they are) and
    the engine's split of the same call over its threads (BLAS single-threaded)."""
    from sigprop.simulate.engine import _matmul, compute_threads
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((batch, width, width)) / np.sqrt(width)).astype(dtype)
    x = rng.standard_normal((batch, n_inputs, width)).astype(dtype)
    out = np.empty_like(x)
    steps = -(-n_networks // batch)
    floors = []
    for ww, n in ((w, depth), (w.transpose(0, 2, 1), max(depth - 1, 1))):
        plain = min(_timed(lambda: [np.matmul(x, ww, out=out) for _ in range(n * steps)]) for _ in range(repeat))
        with compute_threads():
            split = min(_timed(lambda: [_matmul(x, ww, out) for _ in range(n * steps)]) for _ in range(repeat))
        floors.append(min(plain, split))
    return floors


def normal_ns(n=2 ** 22, repeat=5):
    """Nanoseconds per standard normal: the engine's generator (one thread, rows of 512) and
    numpy's ``Generator.standard_normal``."""
    from sigprop.simulate import kernels as K
    out = np.empty((n // 512, 512))
    rows = np.arange(out.shape[0])
    draw = lambda: K.fill_rows_serial(out, np.uint64(1), np.uint64(2), K.TAG_WEIGHT, 1, rows, K.DIST_NORMAL, 1.0)
    draw()
    rng = np.random.default_rng(0)
    z = np.empty(n)
    ours = min(_timed(draw) for _ in range(repeat))
    theirs = min(_timed(lambda: rng.standard_normal(out=z)) for _ in range(repeat))
    return 1e9 * ours / n, 1e9 * theirs / n


def breakdown(case, repeat, activation="tanh"):
    """Rows (phase, seconds, floor seconds) of one engine run of ``case``: the median over
    ``repeat`` runs of each phase (sigprop.simulate.engine.PHASES)."""
    from sigprop import NetSpec
    from sigprop.simulate import engine as E
    spec = NetSpec.uniform(depth=case["depth"], width=case["width"], activation=activation, init="kaiming")
    E.run(spec, 2, case["n_inputs"], seed=1)  # compile / load
    runs, walls, cpus = [], [], []
    for _ in range(repeat):
        E.PHASES = {}
        c0 = os.times()
        walls.append(_timed(lambda: E.run(spec, case["n_networks"], case["n_inputs"], seed=0)))
        c1 = os.times()
        cpus.append(c1.user + c1.system - c0.user - c0.system)
        runs.append(E.PHASES)
    E.PHASES = None
    plan = E._Plan(spec, case["n_inputs"], np.dtype(np.float64), 0.5, 0.97)
    batch = min(plan.batch, case["n_networks"])
    depth, width, n_in, n_net = case["depth"], case["width"], case["n_inputs"], case["n_networks"]
    fwd, bwd = gemm_floors(depth, width, n_in, n_net, batch)
    one = batch * n_in * width * 8                       # bytes of one layer's h (a batch)
    piece, n_ws = E._pieces(plan.widths, n_in, 8, plan.batch, n_net)
    # phi'(h) of every layer is kept for the backward pass, so the elementwise passes stream all of
    # it: their floor is the copy bandwidth of arrays that size (one thread's networks; for wide
    # networks that is main memory, not the cache a single layer fits in)
    resident = depth * min(piece or batch, batch) * n_in * width * 8
    bw = copy_bandwidth(resident, repeat=5)
    per_run = n_net / batch
    floors = {
        # every weight, input and output-gradient number written once
        "random draws": (depth * batch * width * width + 2 * batch * n_in * width) * 8 * per_run / bw,
        "forward GEMMs": fwd,
        # read h, write phi(h) and phi'(h)
        "activation + statistics": 3 * one * depth * per_run / bw,
        "backward GEMMs": bwd,
        # read dL/dx and phi'(h), write dL/dh
        "backward elementwise": 3 * one * depth * per_run / bw,
        "reductions": float("nan"),
    }
    # threads that simulate pieces of networks at once each charge their own phases: their sum is
    # thread-seconds; divided by the number of such threads it is comparable with the wall-time floors
    share = n_ws if piece else 1
    rows = [(name, float(np.median([r.get(name, 0.0) for r in runs])) / share, floors[name]) for name in E.PHASE_NAMES]
    return rows, float(np.median(walls)), (bw, resident), float(np.median(cpus)), (piece, n_ws)


def print_breakdown(label, rows, wall, bw, cpu, pieces):
    bw, resident = bw
    print(f"\n{label}: wall {wall:.3f} s (median), process CPU {cpu:.3f} s (CPU / wall {cpu / wall:.2f}), "
          f"copy bandwidth {bw / 1e9:.1f} GB/s (arrays of {resident / 2 ** 20:.0f} MB: phi' of every layer of "
          f"one thread's networks)")
    if pieces[0]:
        print(f"  ({pieces[1]} threads each simulate {pieces[0]} network(s) at a time: phase times are "
              f"thread-seconds / {pieces[1]})")
    print(f"  {'phase':<26} {'time s':>8} {'floor s':>8} {'x floor':>8} {'share':>6}")
    for name, t, floor in rows:
        ratio = f"{t / floor:8.2f}" if floor == floor and floor > 0 else f"{'-':>8}"
        print(f"  {name:<26} {t:8.3f} {floor:8.3f} {ratio} {t / wall:6.0%}")
    total, floor = sum(r[1] for r in rows), sum(r[2] for r in rows if r[2] == r[2])
    print(f"  {'sum of phases':<26} {total:8.3f} {floor:8.3f} {total / floor:8.2f}")


def compile_times():
    """Seconds for a first call in a fresh kernel cache, and for the same call once cached
    (each in a new process, so both include numba's start-up)."""
    code = ("import time; t = time.perf_counter(); from sigprop import NetSpec; from sigprop.simulate import run; "
            "run(NetSpec.uniform(depth=3, width=32, activation='tanh', init='kaiming'), 2, 4, 0); "
            "run(NetSpec.uniform(depth=3, width=256, activation='tanh', init='kaiming'), 2, 4, 0); "
            "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SIGPROP_CACHE_DIR=tmp, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))
        first = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.split()[-1])
        cached = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout.split()[-1])
    return first, cached


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (a quick look, not the goal sizes)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    p.add_argument("--breakdown", action="store_true",
                   help="only print where the engine's time goes in (a) and (b), phase by phase, against floors")
    args = p.parse_args(argv)
    import numba
    import sigprop.simulate  # noqa: F401 (sets the threading layer it prefers)
    a = dict(depth=20, width=512, n_inputs=1024, n_networks=2 if args.quick else 4)
    b = dict(depth=20, width=64, n_inputs=16, n_networks=1000 if args.quick else 10000)
    print(f"load average at start: {_load()}")
    if args.breakdown:
        print(f"numba {numba.__version__}, threads {numba.get_num_threads()}, cpus {os.cpu_count()}; "
              "floors: GEMMs = bare numpy matmuls of the same (batched) shapes; elementwise = bytes moved / "
              "copy bandwidth")
        for label, case in (("(a) " + _fmt(a), a), ("(b) " + _fmt(b), b)):
            print_breakdown(label, *breakdown(case, args.repeat))
        ours, theirs = normal_ns()
        print(f"\nrandom normals, one thread: engine (Philox + ziggurat) {ours:.2f} ns each, "
              f"numpy Generator.standard_normal {theirs:.2f} ns each")
        print(f"load average at end: {_load()}")
        return
    sw = 5.0 / 3.0
    print(f"numba {numba.__version__}, threads {numba.get_num_threads()}, layer {numba.config.THREADING_LAYER}, "
          f"cpus {os.cpu_count()}")
    rows = []
    t_engine_a = _best(engine(**a), args.repeat)
    t_bare = _best(bare_matmul(**a), args.repeat)
    rows.append(("(a) GEMM-bound " + _fmt(a), "bare numpy matmul", t_engine_a, t_bare, 0.8))
    t_engine_b = _best(engine(**b), args.repeat)
    t_numpy = _best(numpy_loop(sigma_w=sw, **b), 1)
    rows.append(("(b) small networks " + _fmt(b), "numpy loop", t_engine_b, t_numpy, 5.0))
    try:
        import torch
        torch.set_num_threads(numba.get_num_threads())
        rows.append(("(c) torch, config (a)", f"torch {torch.__version__}", t_engine_a,
                     _best(torch_loop(sigma_w=sw, **a), args.repeat), 1.0))
        rows.append(("(c) torch, config (b)", "torch, 1 network per step", t_engine_b,
                     _best(torch_loop(sigma_w=sw, **b), 1), 1.0))
        rows.append(("(c) torch, config (b)", "torch, 100 networks batched", t_engine_b,
                     _best(torch_loop(sigma_w=sw, batch=100, **b), 1), 1.0))
    except ImportError:
        rows.append(("(c) torch", "not importable", float("nan"), float("nan"), 1.0))
    print(f"{'case':<52} {'reference':<28} {'engine s':>9} {'ref s':>9} {'ratio':>7} {'goal':>6}")
    for case, ref, te, tr, goal in rows:
        ratio = tr / te
        ok = "ok" if ratio >= goal else "MISS"
        print(f"{case:<52} {ref:<28} {te:9.3f} {tr:9.3f} {ratio:7.2f} {'>=' + str(goal):>6} {ok}")
    print(f"load average at end: {_load()}")
    if not args.no_compile:
        first, cached = compile_times()
        print(f"compile: first run in a fresh cache {first:.1f} s, cached {cached:.1f} s "
              "(new process each: tanh, small and wide schedules)")


def _load():
    """The 1, 5 and 15 minute load averages (other processes on the cores make timings noisy)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cpus"
    except OSError:
        return "unknown"


def _fmt(d):
    return f"d{d['depth']} w{d['width']} in{d['n_inputs']} nets{d['n_networks']}"


if __name__ == "__main__":
    main()
