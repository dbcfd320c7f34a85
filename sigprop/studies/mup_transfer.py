"""mup-transfer: does the best learning rate stay put as the width grows? SP vs muP, with Adam."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..commands._common import positive_int
from ..runfolder import prepare
from ..sweep import check_scheduler
from ._base import StudyResult, Table, Timer, option, save_figure

TITLE = "muP: learning-rate transfer across width (SP vs muP, Adam)"
SOURCE = ("Yang et al. 2022, Tensor Programs V (muTransfer): in muP the optimal learning rate is stable in width, "
          "in SP it shifts; the Xavier/He/muP source: tune on a small model and scale up")

#: Fraction of the steps at the end whose mean minibatch loss is the cell's loss.
TAIL = 0.2


def add_arguments(p):
    p.add_argument("--widths", type=positive_int, nargs="+", default=None,
                   help="hidden widths (default 64 128 256 512 1024; quick 64 128 256 512)")
    p.add_argument("--steps", type=positive_int, default=None, help="Adam steps per cell (default 500; quick 150)")
    p.add_argument("--seeds", type=positive_int, default=None, help="seeds per cell (default 3; quick 1)")
    p.add_argument("--workers", type=positive_int, default=1, help="processes for the sweep (default 1)")
    p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address for the sweep")


@functools.lru_cache(maxsize=2)
def _names_data(block_size: int, split_seed: int):
    """The embedded names, split and encoded once per process (every cell trains on them)."""
    from ..charmlp.train import Data, TrainConfig
    return Data.build(TrainConfig(block_size=block_size, split_seed=split_seed))


def train_cell(parametrization: str, width: int, log2_lr: float, seed: int, steps: int, layers: int,
               base_width: int, batch_size: int) -> dict:
    """One sweep cell: Adam at learning rate ``2**log2_lr`` (at the base width; muP scales it per
    tensor) for ``steps`` steps; the loss is the mean minibatch loss of the last ``TAIL`` of the steps
    (None when the run diverged)."""
    from ..charmlp import TrainConfig, train
    lr = 2.0 ** log2_lr
    cfg = TrainConfig(layers=layers, width=width, steps=steps, batch_size=batch_size, optimizer="adam", lr=lr,
                      lr_decayed=lr, parametrization=parametrization, base_width=base_width, output_fix=True,
                      seed=seed, diag_every=0, checkpoint_every=0)
    res = train(cfg, words=_names_data(cfg.block_size, cfg.split_seed), progress=False, final_eval=False)
    losses = np.asarray(res.losses, dtype=float)
    tail = losses[-max(1, int(round(TAIL * steps))):]
    loss = float(np.mean(tail))
    return {"loss": loss if math.isfinite(loss) else None, "seconds": res.seconds}


def _curves(sw, params, widths, lrs, seeds):
    """loss[parametrization][width] -> array (seeds, lrs) with nan for diverged cells."""
    out = {p: {w: np.full((len(seeds), len(lrs)), np.nan) for w in widths} for p in params}
    for cell, r in zip(sw.params, sw.results):
        v = r["loss"]
        out[cell["parametrization"]][cell["width"]][seeds.index(cell["seed"]), lrs.index(cell["log2_lr"])] = \
            np.nan if v is None else v
    return out


def run(out, quick=False, seed=0, widths=None, steps=None, seeds=None, workers=1, scheduler=None,
        overwrite=False) -> StudyResult:
    from ..mup import parabola_optimum
    from ..sweep import run_sweep
    widths = sorted(set(widths)) if widths else ([64, 128, 256, 512] if quick else [64, 128, 256, 512, 1024])
    for w in widths:
        option("widths", w, 64)
    if len(widths) < 2:
        raise ValueError(f"--widths needs at least 2 different widths, got {widths}")
    steps = option("steps", steps, 150 if quick else 500)
    n_seeds = option("seeds", seeds, 1 if quick else 3)
    workers = option("workers", workers, 1)
    if scheduler is not None:
        check_scheduler(scheduler)
    lrs = [float(v) for v in range(-12, -3)] if quick else [float(v) for v in range(-14, -3)]
    seed_list = list(range(seed, seed + n_seeds))
    params = ["sp", "mup"]
    layers, base_width, batch_size = 2, widths[0], 32
    config = {"study": "mup-transfer", "quick": quick, "seed": seed, "widths": widths, "steps": steps,
              "seeds": seed_list, "log2_lrs": lrs, "layers": layers, "base_width": base_width,
              "batch_size": batch_size, "optimizer": "adam", "loss": f"mean minibatch loss of the last {TAIL:g} "
              "of the steps", "activation": "tanh", "init": "kaiming + output fix"}
    prepare(out, config, overwrite=overwrite)
    with Timer() as t:
        grid = {"parametrization": params, "width": widths, "log2_lr": lrs, "seed": seed_list, "steps": [steps],
                "layers": [layers], "base_width": [base_width], "batch_size": [batch_size]}
        sw = run_sweep("sigprop.studies.mup_transfer:train_cell", grid, out / "sweep", workers=workers,
                       scheduler=scheduler, progress=False)
        curves = _curves(sw, params, widths, lrs, seed_list)
        optima = {}
        for p in params:
            for w in widths:
                c = curves[p][w]
                with np.errstate(all="ignore"):
                    mean = np.where(np.all(np.isfinite(c), axis=0), c.mean(axis=0), np.nan)
                opt = parabola_optimum(lrs, mean)
                per_seed = [parabola_optimum(lrs, row)["log2_lr"] for row in c]
                se = float(np.std(per_seed, ddof=1) / math.sqrt(len(per_seed))) if len(per_seed) > 1 else None
                optima[(p, w)] = dict(opt, mean=mean, se=se)
        figs = [save_figure(_figure(params, widths, lrs, optima, steps, base_width), out, "lr_transfer")]
    rows, numbers = [], {"optimum_log2_lr": {}, "shift_octaves": {}, "best_loss": {}}
    for p in params:
        for w in widths:
            o = optima[(p, w)]
            rows.append(["muP" if p == "mup" else "SP", w, o["log2_lr"], o["se"], o["best_grid"], o["loss"],
                         "yes" if o["interior"] else "no (edge of the grid or diverged neighbour)"])
        numbers["optimum_log2_lr"][p] = {str(w): optima[(p, w)]["log2_lr"] for w in widths}
        numbers["best_loss"][p] = {str(w): optima[(p, w)]["loss"] for w in widths}
        numbers["shift_octaves"][p] = optima[(p, widths[-1])]["log2_lr"] - optima[(p, widths[0])]["log2_lr"]
    numbers["cells_computed"] = sw.n_computed
    table = Table(["parametrization", "width", "optimal log2 lr", "se over seeds", "best grid log2 lr",
                   "loss at optimum", "interior"], rows,
                  caption=f"Adam, {layers} hidden tanh layers, {steps} steps, batch {batch_size}, base width "
                          f"{base_width}; optimum = vertex of the parabola through the 3 lowest points of the "
                          f"seed-mean curve")
    sh = numbers["shift_octaves"]
    best = numbers["best_loss"]
    wider_better = all(best["mup"][str(b)] <= best["mup"][str(a)] + 1e-3 for a, b in zip(widths, widths[1:]))
    summary = (
        f"Loss after {steps} Adam steps (mean minibatch loss over the last {TAIL:.0%}) against log2 of the "
        f"learning rate, {len(lrs)} rates one octave apart, widths {widths[0]}..{widths[-1]}, {n_seeds} "
        f"seed{'s' if n_seeds > 1 else ''}. The optimum (parabola through the three best points) moves by "
        f"{sh['sp']:+.2f} octaves in SP and {sh['mup']:+.2f} octaves in muP from width {widths[0]} to "
        f"{widths[-1]}. muP takes its per-tensor rates and its output init from derivations/mup.md "
        f"(Adam: hidden and output rates x n0/n, output std x n0/n), so one base learning rate serves every "
        f"width; in SP one rate for all tensors makes the hidden and output updates grow like n (the "
        f"coordinate check), so the best rate falls as the width grows. At the muP optimum "
        f"{'wider is better at every step of the width range' if wider_better else 'wider is not better at every step of the width range'} "
        f"(loss {best['mup'][str(widths[0])]:.4f} at {widths[0]} -> {best['mup'][str(widths[-1])]:.4f} at "
        f"{widths[-1]}).")
    return StudyResult("mup-transfer", TITLE, SOURCE, summary, figs, [table], numbers, config, t.seconds)


def _figure(params, widths, lrs, optima, steps, base_width):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(12, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    cmap = __import__("matplotlib").colormaps["viridis"]
    finite = [v for p in params for w in widths for v in optima[(p, w)]["mean"] if np.isfinite(v)]
    lo = min(finite) if finite else 0.0
    for ax, p in zip(axes, params):
        for i, w in enumerate(widths):
            o = optima[(p, w)]
            color = cmap(i / max(len(widths) - 1, 1))
            ax.plot(lrs, o["mean"], "o-", ms=3, color=color, label=f"width {w}")
            if math.isfinite(o["log2_lr"]):
                ax.plot([o["log2_lr"]], [o["loss"]], "*", ms=11, color=color, mec="k", mew=0.5)
        ax.set_title(("muP" if p == "mup" else "SP") + f" (Adam, {steps} steps; stars: fitted optimum)")
        ax.set_xlabel("log2 learning rate" + (f" (at base width {base_width})" if p == "mup" else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss")
    axes[0].set_ylim(lo - 0.05, lo + 1.0)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
