"""``sigprop theory``: mean-field predictions per layer for a network described on the command line."""
from __future__ import annotations

import math
import sys

from ._common import add_network_arguments, add_save_argument, spec_from_args


def add_arguments(p):
    add_network_arguments(p)
    p.add_argument("--init", default="kaiming",
                   help="init scheme giving sigma_w, e.g. kaiming, xavier_uniform, 'scaled(0.3)' (default kaiming)")
    p.add_argument("--c0", type=float, default=0.5, help="correlation of the two inputs tracked by corr (default 0.5)")
    from ..activations import DEFAULT_SATURATION_THRESHOLD as threshold
    p.add_argument("--threshold", type=float, default=threshold,
                   help=f"saturation threshold, |tanh(h)| > threshold (default {threshold})")
    p.add_argument("--json", action="store_true", help="print the LayerStats as JSON instead of a table")
    add_save_argument(p)


def _fmt(v: float, pct: bool = False) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if pct:
        return f"{100 * v:.2f}"
    return f"{v:.4g}"


def run(args) -> int:
    from .. import theory
    from .._io import dumps_json
    from ..runfolder import check_file_target
    spec = spec_from_args(args)
    if args.save is not None:
        check_file_target(args.save)
    stats = theory.predict(spec, c0=args.c0, threshold=args.threshold)
    if args.save is not None:
        stats.save(args.save)
    if args.json:
        try:
            sys.stdout.write(dumps_json(stats.to_dict(), indent=1) + "\n")
        except BrokenPipeError:           # `sigprop theory --json | head`
            pass
        return 0
    v = stats.values
    header = ("layer", "q", "act_std", "sat %", "dead %", "grad_var", "corr", "chi1")
    rows = [header]
    for i in range(stats.depth):
        act_std = math.sqrt(v["act_var"][i]) if v["act_var"][i] >= 0 else math.nan
        rows.append((str(i + 1), _fmt(v["q"][i]), _fmt(act_std), _fmt(v["saturated"][i], True),
                     _fmt(v["dead"][i], True), _fmt(v["grad_var"][i]), _fmt(v["corr"][i]), _fmt(v["chi1"][i])))
    widths = [max(len(r[k]) for r in rows) for k in range(len(header))]
    print(f"# {spec.activation[0]}, depth {spec.depth}, width {spec.widths[0]}, sigma_w {spec.sigma_w[0]:.4g} "
          f"({spec.init}), sigma_b {spec.sigma_b[0]:.4g}, c0 {args.c0:g}")
    for r in rows:
        print("  ".join(s.rjust(w) for s, w in zip(r, widths)))
    act, sw, sb = spec.activation[0], spec.sigma_w[0], spec.sigma_b[0]
    q_star = float(theory.fixed_point_q(act, sw, sb, q0=spec.sigma_w[0] ** 2 * spec.input_var + sb ** 2))
    chi = float(theory.chi1(act, sw, sb, q=q_star)) if math.isfinite(q_star) else math.nan
    xi_c = float(theory.depth_scales(act, sw, sb)[1]) if math.isfinite(q_star) else math.nan
    if not math.isfinite(q_star) or q_star == 0:
        phase = "length explodes" if q_star == math.inf else "length vanishes" if q_star == 0 else "undefined"
    else:
        phase = "critical" if math.isclose(chi, 1.0, rel_tol=1e-9) else ("chaotic" if chi > 1 else "ordered")
    print(f"fixed point q* = {_fmt(q_star)}, chi1(q*) = {_fmt(chi)} ({phase}), xi_c = {_fmt(xi_c)}")
    if args.save is not None:
        print(f"wrote {args.save}", file=sys.stderr)
    return 0
