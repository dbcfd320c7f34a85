"""``sigprop compare``: theory vs simulation for one or more init schemes, with the overlay
figure, the z-score table, the LayerStats and the exact configuration written to ``--out``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ._common import add_network_arguments, spec_from_args
from .simulate import add_simulation_arguments, simulate_from_args


def add_arguments(p):
    add_network_arguments(p, depth=20, width=200)
    p.add_argument("--init", nargs="+", default=["standard_normal", "kaiming", "xavier"],
                   help="init schemes to compare (default: standard_normal kaiming xavier)")
    add_simulation_arguments(p, networks=200, inputs=32)
    p.add_argument("--quantities", nargs="+", default=None,
                   help="quantities to compare (default: all that theory predicts)")
    p.add_argument("--plot", nargs="+", default=["act_var", "grad_var", "saturated", "corr"],
                   help="quantities in the figure (default: act_var grad_var saturated corr)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="family-wise error for the Bonferroni z threshold (default 0.01)")
    p.add_argument("--out", default=None, help="folder for figure, table, LayerStats and config.json")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def run(args) -> int:
    from .. import theory
    from .._io import atomic_write_text
    from ..compare import compare
    from ..plots.layers import plot_layers
    if args.sigma_w is not None:
        raise ValueError("compare takes --init schemes; use `sigprop simulate --sigma-w` for a single sigma_w")
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        config = {k: v for k, v in vars(args).items() if k != "func"}
        config["argv"] = sys.argv[1:]
        atomic_write_text(out / "config.json", json.dumps(config, indent=1))
    all_stats, tables, summaries = [], [], {}
    for init in args.init:
        spec = spec_from_args(args, init=init)
        predicted = theory.predict(spec, c0=args.c0, threshold=args.threshold)
        measured = simulate_from_args(args, spec)
        comparison = compare(predicted, measured, quantities=args.quantities, alpha=args.alpha)
        all_stats += [predicted, measured]
        tables.append((spec.init, comparison))
        summaries[spec.init] = comparison.summary()
        print(f"== {spec.init}: {spec.activation[0]}, depth {spec.depth}, width {spec.widths[0]}, "
              f"sigma_w {spec.sigma_w[0]:.4g}")
        print(comparison.format(all_rows=False))
        if out is not None:
            predicted.save(out / f"theory_{_safe(spec.init)}.json")
            measured.save(out / f"simulation_{_safe(spec.init)}.json")
    if out is not None:
        header = "init," + tables[0][1].to_csv().splitlines()[0]
        lines = [header] + [f"{init},{line}" for init, c in tables for line in c.to_csv().splitlines()[1:]]
        atomic_write_text(out / "table.csv", "\n".join(lines) + "\n")
        atomic_write_text(out / "table.json", json.dumps({init: c.to_dict() for init, c in tables}, indent=1))
        fig = plot_layers(*all_stats, quantities=args.plot,
                          title=f"{args.activation}, depth {args.depth}, width {args.width}: theory (lines) "
                                f"vs {args.networks} networks (points ± SE)")
        for ext in ("png", "svg"):
            fig.savefig(out / f"figure.{ext}", dpi=120)
        print(f"wrote {out}/: figure.png, figure.svg, table.csv, table.json, theory_*.json, simulation_*.json, "
              "config.json", file=sys.stderr)
    return 0
