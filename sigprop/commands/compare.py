"""``sigprop compare``: theory vs simulation for one or more init schemes, with the overlay
figure, the z-score table, the LayerStats and the exact configuration written to ``--out``."""
from __future__ import annotations

import sys

from ._common import add_network_arguments, add_output_folder_argument, spec_from_args
from .simulate import add_simulation_arguments, check_simulation_arguments, simulate_from_args


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
    add_output_folder_argument(p, "figure, table, LayerStats and config.json", default=None)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _check_names(option, names, known):
    for n in names or ():
        if n not in known:
            raise ValueError(f"{option}: unknown quantity {n!r}; known: {', '.join(known)}")


def run(args) -> int:
    from .. import theory
    from .._io import atomic_write_text, dumps_json
    from ..compare import compare
    from ..plots.layers import plot_layers
    from ..runfolder import prepare
    from ..simulate import SIM_QUANTITIES
    from ..spec import QUANTITIES
    if args.sigma_w is not None:
        raise ValueError("compare takes --init schemes; use `sigprop simulate --sigma-w` for a single sigma_w")
    # every argument is checked before anything is simulated or written
    specs = [spec_from_args(args, init=init) for init in args.init]
    check_simulation_arguments(args, specs)
    _check_names("--quantities", args.quantities, list(QUANTITIES))
    _check_names("--plot", args.plot, list(dict.fromkeys(list(QUANTITIES) + list(SIM_QUANTITIES))))
    if not 0.0 < args.alpha < 1.0:
        raise ValueError(f"--alpha must be in (0, 1), got {args.alpha}")
    out = None
    if args.out:
        config = {k: v for k, v in vars(args).items() if k not in ("func", "command", "no_progress", "overwrite")}
        config["argv"] = sys.argv[1:]
        out = prepare(args.out, config, overwrite=args.overwrite)
    all_stats, tables, summaries = [], [], {}
    for spec in specs:
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
        atomic_write_text(out / "table.json", dumps_json({init: c.to_dict() for init, c in tables}, indent=1))
        fig = plot_layers(*all_stats, quantities=args.plot,
                          title=f"{args.activation}, depth {args.depth}, width {args.width}: theory (lines) "
                                f"vs {args.networks} networks (points ± SE)")
        for ext in ("png", "svg"):
            fig.savefig(out / f"figure.{ext}", dpi=120)
        print(f"wrote {out}/: figure.png, figure.svg, table.csv, table.json, theory_*.json, simulation_*.json, "
              "config.json", file=sys.stderr)
    return 0
