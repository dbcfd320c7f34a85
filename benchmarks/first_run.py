"""First-run time of the CLI: numba compiles the engine's kernels on the first call in a fresh
cache (issue 13: the first ``sigprop simulate --activation tanh ...`` on a fresh install <= 6 s
wall, a new activation <= 4 s more, a cached run <= 1.5 s).

Each command runs as its own process (``python -m sigprop ...``), in the order below, with a
fresh empty kernel cache (``SIGPROP_CACHE_DIR`` and ``NUMBA_CACHE_DIR`` in a temporary folder):
the first simulate compiles everything, the second finds it cached, the next ones compile only
what a new activation (or dtype) needs. Sizes are small, so the times are start-up + compile.
Prints wall and CPU seconds (compile is single-threaded: on a loaded machine the CPU time is
the steadier figure) and the load average before and after.

Run: ``python benchmarks/first_run.py`` (``--gpt`` adds ``sigprop gpt train --steps 1`` in a
cache of its own; ``--repeat N`` runs the whole sequence N times, each in a fresh cache).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

SMALL = ["--depth", "3", "--width", "32", "--networks", "8", "--inputs", "4", "--no-progress"]

#: (label, sigprop arguments), run in this order in one fresh cache.
SIMULATE = [
    ("first run (fresh cache), tanh", ["simulate", "--activation", "tanh"] + SMALL),
    ("cached, tanh", ["simulate", "--activation", "tanh"] + SMALL),
    ("new activation: relu", ["simulate", "--activation", "relu"] + SMALL),
    ("new activation: leaky_relu(a=0.2)", ["simulate", "--activation", "leaky_relu(a=0.2)"] + SMALL),
    ("new activation: gelu (erf: numpy path)", ["simulate", "--activation", "gelu"] + SMALL),
    ("compare, new activation: swish", ["compare", "--activation", "swish", "--init", "kaiming"] + SMALL),
    ("new dtype: tanh float32", ["simulate", "--activation", "tanh", "--dtype", "float32"] + SMALL),
]
GPT = [
    ("gpt train --steps 1 (fresh cache)", ["gpt", "train", "--steps", "1", "--depth", "2", "--width", "32", "--heads", "2",
                                           "--block-size", "16", "--batch-size", "4", "--no-progress"]),
    ("gpt train --steps 1 (cached)", ["gpt", "train", "--steps", "1", "--depth", "2", "--width", "32", "--heads", "2",
                                      "--block-size", "16", "--batch-size", "4", "--no-progress"]),
]


def timed(args, env):
    """Wall and CPU seconds (user + system, of the child) of ``python -m sigprop args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # in the cache folder: `python -m` puts the working directory first on sys.path, and a
    # checkout's sigprop/ there would shadow the package under test (PYTHONPATH / installed)
    proc = subprocess.run([sys.executable, "-m", "sigprop"] + args, env=env, capture_output=True, text=True,
                          cwd=env["SIGPROP_CACHE_DIR"])
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"sigprop {' '.join(args)} failed:\n{proc.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sequence(commands, extra_env=None):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SIGPROP_CACHE_DIR=os.path.join(tmp, "kernels"), NUMBA_CACHE_DIR=os.path.join(tmp, "numba"),
                   **(extra_env or {}))
        os.mkdir(env["SIGPROP_CACHE_DIR"])
        for label, args in commands:
            rows.append((label, args) + timed(args, env))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpt", action="store_true", help="also time `sigprop gpt train --steps 1` (fresh cache, cached)")
    p.add_argument("--repeat", type=int, default=1, help="run the whole sequence this many times (default 1)")
    args = p.parse_args(argv)
    import numba
    print(f"numba {numba.__version__}, cpus {os.cpu_count()}, load average before {os.getloadavg()[0]:.2f}")
    commands = SIMULATE + (GPT if args.gpt else [])
    for r in range(args.repeat):
        rows = sequence(SIMULATE)
        if args.gpt:
            rows += sequence(GPT)
        print(f"{'run ' + str(r + 1):<40} {'wall s':>7} {'cpu s':>7}")
        for label, cmd, wall, cpu in rows:
            print(f"  {label:<38} {wall:7.2f} {cpu:7.2f}")
    print(f"load average after {os.getloadavg()[0]:.2f}; commands (each `python -m sigprop ...`):")
    for label, cmd in commands:
        print(f"  {label}: sigprop {' '.join(cmd)}")


if __name__ == "__main__":
    main()
