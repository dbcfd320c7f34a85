#!/usr/bin/env python3
"""GPT training-step speed: sigprop vs PyTorch eager vs the bare GEMM floor, side by side in one run.

Configs: the default (n_layer 12, n_head 4, n_embd 128, block_size 64, batch 16) and a small one
(n_embd 64, block_size 32) where framework overhead dominates. Every contender uses the same
number of threads (numba, numpy's BLAS, PyTorch; printed). Times are medians over ``--repeat``
rounds of ``--steps`` steps, the contenders taking turns (see sigprop/gpt/bench.py). Also the
start time of one training step in a fresh process with an empty kernel cache (first run) and
with that cache filled, and with ``--val-steps N`` the val loss of sigprop and PyTorch after N
steps of the same run (same config, initial weights, batches and schedule).

Goals (issue 9): sigprop at least as fast as PyTorch at the default config, >= 2x faster at the
small one, <= 1.5x the GEMM floor at the default config. The GEMM floor holds every matrix
product of a step, the attention's per-head products included; "GEMM floor w/o attention" (the
floor as printed until stop 17) leaves those out.

Usage::

    python benchmarks/gpt_speed.py [--dtype float32] [--repeat 7] [--steps 3] [--threads N]
                                   [--clock wall|cpu] [--breakdown] [--val-steps N] [--no-start-times]
                                   [--blas-timeout E]

``--clock cpu`` times by the process's CPU time: with ``--threads 1`` that is the work each
contender does, unaffected by other processes on a loaded machine (with more threads it counts
spin-waiting too). ``--breakdown`` also prints sigprop's ms per step in every kernel and in the
BLAS products (summed over the two micro-batches' threads, so they add up to about twice the
step's wall time). ``--blas-timeout E`` lets numpy's OpenBLAS workers sleep after 2**E spinning
cycles instead of OpenBLAS's ~0.1 s, so that they leave the cores to the numba kernels between
two products (process-wide, all contenders alike).
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeat", type=int, default=7, help="timed rounds, median kept (default 7)")
    p.add_argument("--steps", type=int, default=3, help="training steps per contender per round (default 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every contender (default: cores)")
    p.add_argument("--val-steps", type=int, default=0, help="also train both N steps and compare val losses")
    p.add_argument("--pause", type=float, default=None,
                   help="seconds of rest before each contender's timed steps, so that the threads of the one before "
                        "(OpenBLAS, OpenMP) have gone to sleep (default: sigprop.gpt.bench.PAUSE, 0.3)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time, or process CPU time (meaningful with --threads 1 on a loaded machine)")
    p.add_argument("--breakdown", action="store_true", help="also print sigprop's time per operation")
    p.add_argument("--blas-timeout", type=int, default=None, metavar="E",
                   help="numpy's OpenBLAS workers spin 2**E cycles after a product before sleeping "
                        "(4..30; OpenBLAS default 28, ~0.1 s; every contender in this process)")
    p.add_argument("--no-start-times", action="store_true", help="skip the fresh/cached start times")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.steps < 1 or args.threads < 1 or args.val_steps < 0 \
            or (args.pause is not None and not args.pause >= 0):
        p.error("--repeat, --steps and --threads must be >= 1, --val-steps and --pause >= 0")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))   # before numpy and torch load their BLAS

    from sigprop.gpt import bench
    from sigprop.gpt.model import GPTConfig
    if args.pause is None:
        args.pause = bench.PAUSE
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    threads = bench.set_threads(args.threads, torch=have_torch)
    if args.blas_timeout is not None:
        if not 4 <= args.blas_timeout <= 30:
            p.error("--blas-timeout must be in [4, 30]")
        threads["BLAS spin 2^"] = args.blas_timeout if bench.set_blas_thread_timeout(args.blas_timeout) else "unchanged"
    print(f"threads: {', '.join(f'{k} {v}' for k, v in threads.items())} (cores: {os.cpu_count()}); "
          f"dtype {args.dtype}; {args.clock} clock; median of {args.repeat} rounds x {args.steps} steps, "
          f"contenders interleaved"
          + ("" if have_torch else "; PyTorch not importable: its rows are missing"))
    batch = 16
    configs = {"default (L12 H4 C128 T64 B16)": GPTConfig(dtype=args.dtype),
               "small   (L12 H4 C64  T32 B16)": GPTConfig(n_embd=64, block_size=32, dtype=args.dtype)}
    for title, cfg in configs.items():
        ms = bench.speed_table(cfg, batch, args.repeat, args.steps, torch=have_torch, cpu=args.clock == "cpu",
                               pause=args.pause)
        print(bench.format_table(title, ms))
        if args.breakdown:
            print(bench.format_breakdown("  sigprop per operation", bench.breakdown(
                cfg, batch, args.repeat, args.steps, cpu=args.clock == "cpu")))

    if not args.no_start_times:
        first, cached = bench.start_times(args.dtype)
        print(f"start to one training step (python -c, default config, {args.dtype}): "
              f"first run (empty SIGPROP_CACHE_DIR) {first:.1f} s, cached {cached:.1f} s")

    if args.val_steps:
        if not have_torch:
            print("--val-steps needs PyTorch")
            return 2
        r = bench.val_comparison(args.val_steps, dtype=args.dtype)
        tc = r["config"]
        print(f"after {tc.steps} steps (default config, lr {tc.lr} warmup {tc.warmup} cosine to {tc.min_lr}, "
              f"seed {tc.seed}, {tc.eval_batches} fixed batches): ln(vocab) {r['ln_vocab']:.3f}, "
              f"unigram val {r['unigram']:.3f}")
        for name in ("sigprop", "torch"):
            tr, va, s = r[name]
            print(f"  {name:8s} train {tr:.4f}  val {va:.4f}  ({s:.1f} s wall, run one after the other: not a speed figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
