"""``sigprop simulate``: Monte Carlo measurement over an ensemble of random networks."""
from __future__ import annotations

import math
import sys

from ._common import (add_dtype_argument, add_network_arguments, add_save_argument, add_seed_argument, int_at_least,
                      spec_from_args)


def add_simulation_arguments(p, networks=1000, inputs=64):
    from ..activations import DEFAULT_SATURATION_THRESHOLD as threshold
    g = p.add_argument_group("simulation")
    g.add_argument("--networks", type=int_at_least(2), default=networks,
                   help=f"independent random networks (default {networks})")
    g.add_argument("--inputs", type=int_at_least(2), default=inputs,
                   help=f"inputs per network, in correlated pairs (default {inputs})")
    add_seed_argument(g)
    add_dtype_argument(g, "float64", old_flag="--float32", help="precision of the forward/backward pass")
    g.add_argument("--c0", type=float, default=0.5, help="initial correlation of input pairs (default 0.5)")
    g.add_argument("--threshold", type=float, default=threshold, help=f"saturation threshold (default {threshold})")
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return g


def add_arguments(p):
    add_network_arguments(p)
    p.add_argument("--init", default="kaiming", help="init scheme giving sigma_w (default kaiming)")
    add_simulation_arguments(p)
    p.add_argument("--json", action="store_true", help="print the LayerStats as JSON instead of a table")
    add_save_argument(p)


def check_simulation_arguments(args, specs=()):
    """Everything :func:`simulate_from_args` would refuse, checked before any work: the
    engine's arguments and, per spec, that the run fits in memory."""
    from ..memory import check_fits
    from ..simulate import memory_estimate
    from ..simulate.engine import _check_args
    for spec in specs:
        _check_args(spec, args.networks, args.inputs, args.seed, args.dtype, args.c0, args.threshold)
        check_fits(memory_estimate(spec, args.networks, args.inputs, args.dtype),
                   f"simulating {args.networks} networks of width {spec.widths[0]} and input dimension "
                   f"{spec.input_dim}")


def simulate_from_args(args, spec):
    from ..simulate import run as simulate
    return simulate(spec, args.networks, args.inputs, seed=args.seed, dtype=args.dtype, c0=args.c0,
                    threshold=args.threshold, progress=not args.no_progress)


def _fmt(v, se=None):
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if se is None or not math.isfinite(se) else f"{v:.4g}±{se:.2g}"


def run(args) -> int:
    from .._io import dumps_json
    from ..runfolder import check_file_target
    spec = spec_from_args(args)
    check_simulation_arguments(args, [spec])
    if args.save is not None:
        check_file_target(args.save)
    stats = simulate_from_args(args, spec)
    if args.save is not None:
        stats.save(args.save)
    if args.json:
        try:
            sys.stdout.write(dumps_json(stats.to_dict(), indent=1) + "\n")
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
    if args.save is not None:
        print(f"wrote {args.save}", file=sys.stderr)
    return 0
