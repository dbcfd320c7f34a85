"""The Monte Carlo engine alone and beside a second copy of itself: no collapse under load.

Runs case (a) of ``engine_speed.py`` (default depth 20, width 512, 1024 inputs, 4 networks)
in a fresh process alone, then in two processes started at the same moment, and prints
the times and the ratio (slower of the pair / alone). Two processes on a machine whose
cores one of them fills should each take about twice their alone time; the goal is a
ratio <= 2.5 (oversubscribed, spin-waiting BLAS threads made it up to 100x).

Each process loads (or compiles) its kernels and runs once untimed before the timed run;
the pair waits for both to be ready, then starts together. Times are medians of
``--repeat`` rounds, each round measuring alone and paired one after the other.

Run: ``python benchmarks/engine_under_load.py`` (``--quick`` for 2 networks).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

_CHILD = r"""
import sys, time
from sigprop import NetSpec
from sigprop.simulate import run
depth, width, n_inputs, n_networks = map(int, sys.argv[1:5])
spec = NetSpec.uniform(depth=depth, width=width, activation="tanh", init="kaiming")
run(spec, 2, n_inputs, seed=1)                 # load / compile, warm the buffers
print("ready", flush=True)
sys.stdin.readline()                           # wait for the start signal
t = time.perf_counter()
run(spec, n_networks, n_inputs, seed=0)
print(time.perf_counter() - t, flush=True)
"""


def timed_together(n_procs: int, depth=20, width=512, n_inputs=1024, n_networks=4) -> list:
    """Seconds of the timed run of each of ``n_procs`` engine processes started together."""
    args = [sys.executable, "-c", _CHILD, str(depth), str(width), str(n_inputs), str(n_networks)]
    procs = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
             for _ in range(n_procs)]
    try:
        for p in procs:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"engine process failed to start (said {line!r})")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        return [float(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()


def measure(repeat=1, **case) -> dict:
    """``alone`` and ``paired`` seconds (medians over ``repeat`` rounds; paired = the slower of
    the two), and ``ratio`` = paired / alone."""
    alone, paired = [], []
    for _ in range(repeat):
        alone.append(timed_together(1, **case)[0])
        paired.append(max(timed_together(2, **case)))
    a, p = float(np.median(alone)), float(np.median(paired))
    return {"alone": a, "paired": p, "ratio": p / a, "alone_all": alone, "paired_all": paired}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 networks instead of 4")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    case = dict(depth=20, width=512, n_inputs=1024, n_networks=2 if args.quick else 4)
    load = os.getloadavg()[0]
    r = measure(args.repeat, **case)
    print(f"case (a) d{case['depth']} w{case['width']} in{case['n_inputs']} nets{case['n_networks']}, "
          f"cpus {os.cpu_count()}, load average before {load:.2f}, median of {args.repeat}")
    print(f"alone  {r['alone']:8.3f} s   ({', '.join(f'{t:.3f}' for t in r['alone_all'])})")
    print(f"paired {r['paired']:8.3f} s   (slower of two at once: {', '.join(f'{t:.3f}' for t in r['paired_all'])})")
    print(f"ratio  {r['ratio']:8.2f}     goal <= 2.5 {'ok' if r['ratio'] <= 2.5 else 'MISS'}")


if __name__ == "__main__":
    main()
