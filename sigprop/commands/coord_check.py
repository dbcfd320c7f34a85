"""``sigprop coord-check``: the muP coordinate check of the character MLP, SP and muP side by side.

Writes to ``--out``: config.json, and per parametrisation ``coord_check_<p>_<optimizer>.{csv,json,png,svg}``;
prints the fitted slopes and the verdict (muP should PASS, SP should FAIL).
"""
from __future__ import annotations

import sys

from ._common import add_dtype_argument, add_output_folder_argument, nonneg_int, positive_int


def add_arguments(p):
    from ..mup import SLOPE_TOLERANCE, CoordCheckConfig
    d = CoordCheckConfig()
    p.add_argument("--parametrization", nargs="+", choices=("sp", "mup"), default=["sp", "mup"],
                   help="parametrisations to check (default: sp mup)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=d.optimizer, help=f"(default {d.optimizer})")
    p.add_argument("--widths", type=positive_int, nargs="+", default=list(d.widths),
                   help="widths (default 64 128 ... 4096)")
    p.add_argument("--seeds", type=positive_int, default=len(d.seeds), help=f"seeds 0..N-1 (default {len(d.seeds)})")
    p.add_argument("--seed", type=nonneg_int, default=0, help="first seed (default 0)")
    p.add_argument("--steps", type=positive_int, default=d.steps, help=f"training steps t = 1..N (default {d.steps})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate at the base width (default {d.lr:g})")
    p.add_argument("--base-width", type=positive_int, default=d.base_width,
                   help=f"width at which muP equals SP (default {d.base_width})")
    p.add_argument("--depth", dest="layers", type=positive_int, default=d.layers,
                   help=f"hidden layers (default {d.layers})")
    p.add_argument("--activation", default=d.activation, help=f"(default {d.activation})")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help=f"rows of the fixed batch (default {d.batch_size})")
    p.add_argument("--no-output-fix", action="store_true",
                   help="output weights from the scheme at the base width (default: 0.01 N(0,1) there)")
    add_dtype_argument(p, d.dtype)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_output_folder_argument(p, "tables (CSV, JSON) and figures", default="coord-check")
    p.epilog = f"The verdict passes when every fitted |d log|x| / d log n| < {SLOPE_TOLERANCE}."


def run(args) -> int:
    from ..mup import CoordCheckConfig, check_memory, coord_check
    from ..runfolder import prepare
    configs = [CoordCheckConfig(parametrization=p, optimizer=args.optimizer, widths=tuple(args.widths),
                                seeds=tuple(range(args.seed, args.seed + args.seeds)), steps=args.steps, lr=args.lr,
                                base_width=args.base_width, layers=args.layers, activation=args.activation,
                                output_fix=not args.no_output_fix, batch_size=args.batch_size, dtype=args.dtype)
               for p in dict.fromkeys(args.parametrization)]
    from ..activations import get_activation
    get_activation(args.activation)
    for cfg in configs:
        check_memory(cfg)
    out = prepare(args.out, {"command": "coord-check", "checks": [c.to_dict() for c in configs]},
                  overwrite=args.overwrite)
    for cfg in configs:
        cc = coord_check(cfg, progress=not args.no_progress)
        cc.save(out)
        print(f"\n{cfg.parametrization}: fitted d log|x| / d log n, mean +- se over {len(cfg.seeds)} seeds "
              f"(columns t = 1..{cfg.steps}; dX = change since init)")
        by_q = {}
        for s in cc.slopes():
            by_q.setdefault(s["quantity"], []).append(f"{s['slope']:+.2f}+-{s['se']:.2f}")
        for q, cells in by_q.items():
            print(f"  {q:8s} " + "  ".join(cells))
        print(cc.summary())
        print(f"  ({cc.seconds:.1f} s)", file=sys.stderr)
    print(f"wrote {out}/")
    return 0
