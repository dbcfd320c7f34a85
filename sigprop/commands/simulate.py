"""``sigprop simulate``: Monte Carlo measurement over an ensemble of random networks."""
from __future__ import annotations

import json
import math
import sys

from ._common import add_network_arguments, spec_from_args


def add_simulation_arguments(p, networks=1000, inputs=64):
    g = p.add_argument_group("simulation")
    g.add_argument("--networks", type=int, default=networks, help=f"independent random networks (default {networks})")
    g.add_argument("--inputs", type=int, default=inputs, help=f"inputs per network, in correlated pairs (default {inputs})")
    g.add_argument("--seed", type=int, default=0, help="seed: same seed, same numbers (default 0)")
    g.add_argument("--float32", action="store_true", help="run the forward/backward pass in float32")
    g.add_argument("--c0", type=float, default=0.5, help="initial correlation of input pairs (default 0.5)")
    g.add_argument("--threshold", type=float, default=0.97, help="saturation threshold (default 0.97)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return g


def add_arguments(p):
    add_network_arguments(p)
    p.add_argument("--init", default="kaiming", help="init scheme giving sigma_w (default kaiming)")
    add_simulation_arguments(p)
    p.add_argument("--json", action="store_true", help="print the LayerStats as JSON instead of a table")
    p.add_argument("--out", default=None, help="also save the LayerStats to FILE (.json or .npz)")


def simulate_from_args(args, spec):
    import numpy as np
    from ..simulate import run as simulate
    return simulate(spec, args.networks, args.inputs, seed=args.seed,
                    dtype=np.float32 if args.float32 else np.float64, c0=args.c0, threshold=args.threshold,
                    progress=not args.no_progress)


def _fmt(v, se=None):
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if se is None or not math.isfinite(se) else f"{v:.4g}±{se:.2g}"


def run(args) -> int:
    if args.out is not None and not str(args.out).endswith((".json", ".npz")):
        raise ValueError(f"--out must end in .json or .npz, got {args.out!r}")
    spec = spec_from_args(args)
    stats = simulate_from_args(args, spec)
    if args.out is not None:
        stats.save(args.out)
    if args.json:
        try:
            sys.stdout.write(json.dumps(stats.to_dict(), indent=1) + "\n")
        except BrokenPipeError:
            pass
        return 0
    cols = ("q", "act_var", "saturated", "dead", "grad_var", "corr", "chi1", "act_lognorm_var")
    rows = [("layer",) + cols]
    for i in range(stats.depth):
        rows.append((str(i + 1),) + tuple(_fmt(stats[c][i], stats.se[c][i]) for c in cols))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    print(f"# {spec.activation[0]}, depth {spec.depth}, width {spec.widths[0]}, sigma_w {spec.sigma_w[0]:.4g} "
          f"({spec.init}), sigma_b {spec.sigma_b[0]:.4g}; {args.networks} networks x {args.inputs} inputs, "
          f"seed {args.seed} (value ± standard error across networks)")
    for r in rows:
        print("  ".join(s.rjust(w) for s, w in zip(r, widths)))
    bad = {q: [l + 1 for l, f in enumerate(fl) if f != "ok"] for q, fl in stats.flags().items()
           if q != "saturated" and any(f != "ok" for f in fl)}
    if bad:
        print("flags (overflow / nan / vanished): " + "; ".join(f"{q} layers {v[0]}-{v[-1]}" for q, v in bad.items()))
    if args.out is not None:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
