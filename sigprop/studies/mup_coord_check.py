"""mup-coord-check: the coordinate check of the character MLP in SP and muP (Adam)."""
from __future__ import annotations

from ..commands._common import positive_int
from ..runfolder import prepare
from ._base import StudyResult, Table, Timer, option

TITLE = "muP: coordinate check (activation size per layer vs width, SP vs muP, Adam)"
SOURCE = ("the Xavier/He/muP source (\"the check is a coordinate check across widths\"); Yang et al. 2022, "
          "Tensor Programs V, coordinate check; derivations/mup.md")


def add_arguments(p):
    p.add_argument("--widths", type=positive_int, nargs="+", default=None,
                   help="widths (default 64 128 ... 4096; quick 64 ... 1024)")
    p.add_argument("--seeds", type=positive_int, default=None, help="seeds (default 3; quick 2)")


def run(out, quick=False, seed=0, widths=None, seeds=None, overwrite=False) -> StudyResult:
    from ..mup import SLOPE_TOLERANCE, CoordCheckConfig, check_memory, coord_check
    from ..symbolic.mup import update_exponents
    widths = tuple(sorted(set(widths))) if widths else tuple(64 * 2 ** k for k in range(5 if quick else 7))
    n_seeds = option("seeds", seeds, 2 if quick else 3)
    configs = [CoordCheckConfig(parametrization=p, optimizer="adam", widths=widths,
                                seeds=tuple(range(seed, seed + n_seeds))) for p in ("sp", "mup")]
    for cfg in configs:
        check_memory(cfg)
    prepare(out, {"study": "mup-coord-check", "quick": quick, "checks": [c.to_dict() for c in configs]},
            overwrite=overwrite)
    figs, checks = [], {}
    with Timer() as t:
        for cfg in configs:
            cc = coord_check(cfg, progress=False)
            figs.append(cc.save(out)[2])
            checks[cfg.parametrization] = cc
    L = configs[0].layers
    kinds = ([f"h{l}" for l in range(1, L + 1)] + [f"x{l}" for l in range(1, L + 1)] + ["logits"])
    kinds += ["d" + q for q in kinds]
    rows = []
    slopes = {p: {(s["quantity"], s["t"]): s for s in cc.slopes()} for p, cc in checks.items()}
    T = configs[0].steps
    for q in kinds:
        row = [q]
        for p in ("sp", "mup"):
            for tt in (1, T):
                s = slopes[p][(q, tt)]
                row.append(f"{s['slope']:+.3f} +- {s['se']:.3f}")
        rows.append(row)
    table = Table(["quantity", "SP t=1", f"SP t={T}", "muP t=1", f"muP t={T}"], rows,
                  caption=f"fitted d log mean|x| / d log width, mean +- standard error over {n_seeds} seeds; "
                          f"h: pre-activations, x: activations, d: change since initialisation")
    upd = update_exponents("sp", "adam")
    summary = (checks["sp"].summary() + "\n\n" + checks["mup"].summary() + "\n\n"
               f"The character MLP ({L} hidden tanh layers, fixed batch of {configs[0].batch_size}, learning rate "
               f"{configs[0].lr:g} at base width {configs[0].base_width}) trained for t = 1..{T} Adam steps at "
               f"every width. The derivation (derivations/mup.md) predicts SP's own updates Delta W x to grow like "
               f"n^{upd['hidden_weight']} (hidden) and n^{upd['output_weight']} (output) at a fixed rate and muP's "
               f"to stay n^0: the hidden pre-activation changes and the logits of SP grow with slopes near 1, "
               f"and tanh caps the activations themselves; every muP slope is within {SLOPE_TOLERANCE} of 0.")
    numbers = {p: {"passed": cc.verdict()["passed"], "worst": cc.verdict()["worst"],
                   "seconds": round(cc.seconds, 2)} for p, cc in checks.items()}
    return StudyResult("mup-coord-check", TITLE, SOURCE, summary, figs, [table], numbers,
                       {"checks": [c.to_dict() for c in configs]}, t.seconds)
