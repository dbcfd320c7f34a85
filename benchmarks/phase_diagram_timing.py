"""Time :func:`sigprop.theory.phase_diagram` on an (n_sb x n_sw) grid.

The first call includes the one-time costs (numba kernels loaded from cache or
compiled, interpolation tables built for the activation); later calls reuse
them (steady state).

    python benchmarks/phase_diagram_timing.py --activation tanh --n 200 --depth 100 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--activation", default="tanh")
    p.add_argument("--n", type=int, default=200, help="grid points per axis (default 200)")
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--sigma-w", type=float, nargs=2, default=(0.5, 4.0), metavar=("MIN", "MAX"))
    p.add_argument("--sigma-b", type=float, nargs=2, default=(0.0, 1.0), metavar=("MIN", "MAX"))
    p.add_argument("--repeats", type=int, default=5, help="steady-state repeats (default 5)")
    p.add_argument("--json", default=None, help="also write the timings to this JSON file")
    args = p.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        p.error("--n and --repeats must be >= 1")

    t0 = time.perf_counter()
    from sigprop import theory
    t_import = time.perf_counter() - t0
    sw = np.linspace(*args.sigma_w, args.n)
    sb = np.linspace(*args.sigma_b, args.n)

    t0 = time.perf_counter()
    theory.phase_diagram(args.activation, sw, sb, depth=args.depth)
    first = time.perf_counter() - t0
    steady = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        theory.phase_diagram(args.activation, sw, sb, depth=args.depth)
        steady.append(time.perf_counter() - t0)

    result = {"activation": args.activation, "grid": [args.n, args.n], "points": args.n * args.n,
              "depth": args.depth, "import_s": t_import, "first_call_s": first, "steady_s": steady,
              "steady_median_s": statistics.median(steady), "steady_min_s": min(steady)}
    print(f"phase_diagram({args.activation!r}) on a {args.n} x {args.n} grid ({args.n * args.n} points), "
          f"depth {args.depth}")
    print(f"  import sigprop.theory   {t_import:8.3f} s")
    print(f"  first call              {first:8.3f} s   (tables + numba kernels)")
    print(f"  steady state, {args.repeats} runs   median {statistics.median(steady):.3f} s, "
          f"min {min(steady):.3f} s, max {max(steady):.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
