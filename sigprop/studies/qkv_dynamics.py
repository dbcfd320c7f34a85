"""qkv-dynamics (arXiv 2510.09423): layerwise Q/K/V weight std of a GPT through training, and its recipes.

A resumable sweep (:mod:`sigprop.sweep`) trains the GPT of :mod:`sigprop.gpt` on the shipped corpus,
several seeds of the GPT-2 recipe and one seed of each other recipe, recording the Q/K/V diagnostics
of :mod:`sigprop.gpt.diagnostics` at log-spaced steps. The analysis functions below are pure
functions of those records (tested on synthetic data); ``run`` draws the figures and tables.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from ..commands._common import positive_int
from ._base import StudyResult, Table, Timer, option, save_figure

TITLE = "Q/K/V weight dynamics of a GPT through training (depth-dependent equilibration?)"
SOURCE = ("Han 2025, arXiv 2510.09423: in a from-scratch 12-layer GPT-2-style model the layerwise Q/K/V weight "
          "variance shows 'depth-dependent equilibration into narrow bands: shallow layers expand rapidly while "
          "deeper layers change more gradually'; recipes: std about 0.02, residual scaling, warmup")

#: Recipe name -> changes to the GPT-2 training configuration (std recipes set every init std,
#: embeddings included; residual scaling and warmup as in GPT-2).
RECIPES = {
    "gpt2": {},
    "no-resid-scale": {"residual_scale": False},
    "no-warmup": {"warmup": 0},
    "std-0.002": {"init": "scaled(0.002)", "embd_std": 0.002},
    "std-0.2": {"init": "scaled(0.2)", "embd_std": 0.2},
    "xavier": {"init": "xavier"},
    "kaiming": {"init": "kaiming"},
}
BLOCKS = ("q", "k", "v")
#: Model and run sizes: the full study (12 layers as in the paper) and the quick one of `sigprop report`.
SIZES = {
    "full": {"n_layer": 12, "n_embd": 128, "n_head": 4, "block_size": 64, "batch_size": 16, "steps": 500},
    "quick": {"n_layer": 6, "n_embd": 32, "n_head": 2, "block_size": 32, "batch_size": 8, "steps": 100},
}
#: Recorded steps per run (log-spaced) and the number of seeds of the GPT-2 recipe.
N_RECORDS = 24
N_SEEDS = 3


def record_steps(steps: int, n: int = N_RECORDS) -> list:
    """About ``n`` log-spaced steps in ``[0, steps - 1]`` (0 and the last step included)."""
    if steps < 1 or n < 2:
        raise ValueError(f"need steps >= 1 and n >= 2, got {steps} and {n}")
    raw = np.unique(np.round(np.logspace(0, math.log10(steps), n)).astype(int) - 1)
    return sorted(set(raw.tolist()) | {0, steps - 1})


def train_cell(recipe: str, seed: int, steps: int, n_layer: int, n_embd: int, n_head: int, block_size: int,
               batch_size: int, warmup: int) -> dict:
    """One training run (a sweep cell): losses, evals and the per-layer Q/K/V records.

    Returns
    -------
    dict
        ``steps`` (recorded), ``{b}_std``, ``{b}_drift``, ``{b}_step``, ``{b}_step_corr`` as
        (records, layers) lists for ``b`` in q, k, v; ``hist`` (layer 0 and the last layer:
        ``"h{l}.{b}" -> [{"edges", "counts"}, ...]`` per record); ``losses`` (per step), ``evals``,
        ``config`` (the training configuration), ``seconds``.
    """
    from ..gpt.train import GPTTrainConfig, train
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    settings = dict(n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size, batch_size=batch_size,
                    steps=steps, warmup=warmup, seed=seed, eval_every=max(steps // 10, 1), eval_batches=4,
                    diag_every=0, checkpoint_every=0, diag_steps=record_steps(steps), diag_dynamics=True,
                    hist_layers=(0, n_layer - 1))
    cfg = GPTTrainConfig(**{**settings, **RECIPES[recipe]})
    res = train(cfg, progress=False)
    d = res.diagnostics
    out = {"steps": d.steps, "losses": res.losses.tolist(), "evals": [list(e) for e in res.evals],
           "config": cfg.to_dict(), "seconds": res.seconds}
    for b in BLOCKS:
        for k in ("std", "drift", "step", "step_corr"):
            out[f"{b}_{k}"] = d.series(f"{b}_{k}").tolist()
    out["hist"] = {key: [h[key] for h in d.histograms] for key in (d.histograms[0] if d.histograms else {})}
    return out


def add_arguments(p):
    p.add_argument("--steps", type=positive_int, default=None,
                   help=f"training steps per run (default {SIZES['full']['steps']}; quick {SIZES['quick']['steps']})")
    p.add_argument("--workers", type=positive_int, default=1, help="processes for the training sweep (default 1)")
    p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address for the training sweep")


@contextlib.contextmanager
def _blas_threads(n: int):
    """numpy's OpenBLAS on ``n`` threads inside the block (restored after; no-op if not found):
    the quick model's GEMMs (n_embd 32) are too small to share, and spinning BLAS threads on a
    loaded machine made the quick study 3x slower."""
    from ..gpt.bench import _openblas_calls
    calls = _openblas_calls()
    if calls is None:
        yield
        return
    old = int(calls[0]())
    calls[1](n)
    try:
        yield
    finally:
        calls[1](old)


def _sweeps(out, size: dict, seed: int, workers: int, scheduler, progress: bool):
    from ..sweep import run_sweep
    fixed = {k: [v] for k, v in size.items()}
    fixed["warmup"] = [max(size["steps"] // 10, 1)]
    fn = "sigprop.studies.qkv_dynamics:train_cell"
    dyn = run_sweep(fn, {"recipe": ["gpt2"], "seed": [seed + i for i in range(N_SEEDS)], **fixed},
                    out / "dynamics_sweep", workers=workers, scheduler=scheduler, progress=progress)
    rec = run_sweep(fn, {"recipe": [r for r in RECIPES if r != "gpt2"], "seed": [seed], **fixed},
                    out / "recipe_sweep", workers=workers, scheduler=scheduler, progress=progress)
    return dyn, rec


def run(out, quick=False, seed=0, steps=None, workers=1, scheduler=None, overwrite=False) -> StudyResult:
    from ..runfolder import prepare
    from ..sweep import check_scheduler
    size = dict(SIZES["quick" if quick else "full"])
    size["steps"] = option("steps", steps, size["steps"], lo=10)
    workers = option("workers", workers, 1)
    if scheduler is not None:
        check_scheduler(scheduler)
    config = {"study": "qkv-dynamics", "quick": quick, "seed": seed, **size, "warmup": max(size["steps"] // 10, 1),
              "recipes": RECIPES, "n_seeds": N_SEEDS, "record_steps": record_steps(size["steps"])}
    out = prepare(out, config, overwrite=overwrite)
    with Timer() as t:
        with _blas_threads(1) if quick else contextlib.nullcontext():
            dyn, rec = _sweeps(out, size, seed, workers, scheduler, progress=not quick)
        named = [(p["recipe"], r) for p, r in zip(rec.params, rec.results)]
        figs, tables, numbers, summary = analyse(dyn.results, named, size, out)
    numbers["train_seconds"] = float(sum(r["seconds"] for r in dyn.results + rec.results))
    return StudyResult("qkv-dynamics", TITLE, SOURCE, summary, figs, tables, numbers, config, t.seconds)


# ----------------------------------------------------------------------------------------------
# Metrics: pure functions of the records (steps (R,), values (R, L) with R records and L layers)
# ----------------------------------------------------------------------------------------------
def at_step(steps, values, t: float) -> np.ndarray:
    """Per layer, ``values`` linearly interpolated at step ``t``: (R, L) -> (L,)."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    return np.array([np.interp(t, steps, values[:, l]) for l in range(values.shape[1])])


def growth_rate(steps, std, t_early: float) -> np.ndarray:
    """Early growth rate per layer: ``ln(std(t_early) / std(0)) / t_early`` (per step)."""
    std = np.asarray(std, float)
    return np.log(at_step(steps, std, t_early) / std[0]) / t_early


def t_fraction(steps, std, fraction: float = 0.9) -> np.ndarray:
    """Per layer, the first step at which ``|std - std(0)|`` reaches ``fraction`` of the final
    change ``|std(T) - std(0)|`` (linear interpolation between records; nan when there is no change)."""
    steps, std = np.asarray(steps, float), np.asarray(std, float)
    out = np.full(std.shape[1], np.nan)
    for l in range(std.shape[1]):
        change = np.abs(std[:, l] - std[0, l])
        target = fraction * change[-1]
        if not np.isfinite(target) or target <= 0:
            continue
        i = int(np.argmax(change >= target))          # first record at or past the target
        if i == 0:
            out[l] = steps[0]
            continue
        c0, c1 = change[i - 1], change[i]
        out[l] = steps[i - 1] + (target - c0) / (c1 - c0) * (steps[i] - steps[i - 1])
    return out


def layer_spread(std) -> np.ndarray:
    """max over layers / min over layers of the std at each record: (R, L) -> (R,)."""
    std = np.asarray(std, float)
    return std.max(axis=1) / std.min(axis=1)


def mean_se(samples, axis=0):
    """Mean and standard error (ddof 1) over ``axis`` (the seeds); se is nan for one sample."""
    a = np.asarray(samples, float)
    n = a.shape[axis]
    se = a.std(axis=axis, ddof=1) / math.sqrt(n) if n > 1 else np.full(np.delete(a.shape, axis), np.nan)
    return a.mean(axis=axis), se


def thirds(values) -> tuple:
    """(mean over the first third of the layers, mean over the last third)."""
    v = np.asarray(values, float)
    k = max(len(v) // 3, 1)
    return float(v[:k].mean()), float(v[-k:].mean())


def rank_correlation(x, y) -> float:
    """Spearman rank correlation (no ties expected)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


# ----------------------------------------------------------------------------------------------
# Item 5: Adam's per-coordinate step of ~lr, drift when the gradient sign persists, random walk else
# ----------------------------------------------------------------------------------------------
def signal_fraction(corr, lag, beta1: float) -> np.ndarray:
    """Persistent (drift) fraction ``f`` of the gradient from the correlation of two Adam steps ``lag`` apart.

    Model: per coordinate the gradient is a persistent part ``mu`` plus white noise ``sigma``
    (``f = mu^2 / (mu^2 + sigma^2)``). Adam's step is ``lr m/sqrt(v)``: ``m`` carries ``mu`` and the
    noise averaged with variance ``c sigma^2``, ``c = (1 - beta1)/(1 + beta1)``, correlated as
    ``beta1^lag``; ``v = mu^2 + sigma^2``. So the step correlation is
    ``(f + (1 - f) c x) / (f + (1 - f) c)`` with ``x = beta1^lag``, solved here for ``f`` (clipped to [0, 1]).
    """
    c = (1 - beta1) / (1 + beta1)
    x = beta1 ** np.asarray(lag, float)
    corr = np.asarray(corr, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = c * (corr - x) / (1 - c * x - corr * (1 - c))
    return np.clip(f, 0.0, 1.0)


def adam_step_rms(f, beta1: float):
    """rms of Adam's normalised step ``m/sqrt(v)`` for drift fraction ``f``: sqrt(f + (1 - f) c)."""
    c = (1 - beta1) / (1 + beta1)
    return np.sqrt(np.asarray(f, float) + (1 - np.asarray(f, float)) * c)


def adam_drift(lr, f, beta1: float, shrink=None) -> np.ndarray:
    """Predicted rms distance from init ``rms(D_t)``, t = 0..S, of one weight block under the model.

    Per coordinate the gradient is a persistent part plus white noise, ``f`` the persistent share of
    its second moment, and ``v`` holds their sum, so Adam's step is ``lr_t mhat_t`` in units of
    ``sqrt(v)``, ``mhat_t = m_t / (1 - beta1^(t+1))``, ``m_t = beta1 m_(t-1) + (1 - beta1) g_t``.
    The persistent part (a fixed sign pattern) adds ``lr sqrt(f)`` per step (drift); the noise adds a
    momentum-correlated random walk, computed exactly from the weights of each step's noise in
    ``D`` (bias correction included: the first ~1/(1 - beta1) steps move like a drift). With f = 0
    and t >> 1/(1 - beta1) it is ``sum lr^2``: steps of ``lr`` adding up like independent ones.
    ``D_(t+1) = shrink_t D_t + lr_t mhat_t``; ``lr``, ``f``, ``shrink`` are per-step arrays (S,).
    """
    lr, f = np.asarray(lr, float), np.asarray(f, float)
    S = len(lr)
    shrink = np.ones_like(lr) if shrink is None else np.asarray(shrink, float)
    m = np.zeros(S)          # m_t's weight on the noise of each step s <= t
    d = np.zeros(S)          # D_t's weight on the noise of each step
    drift = 0.0
    out = np.zeros(S + 1)
    for t in range(S):
        m *= beta1
        m[t] += (1 - beta1) * math.sqrt(1 - f[t])
        d *= shrink[t]
        d += lr[t] / (1 - beta1 ** (t + 1)) * m
        drift = shrink[t] * drift + lr[t] * math.sqrt(f[t])
        out[t + 1] = math.sqrt(drift ** 2 + d @ d)
    return out


def momentum_walk(step_rms, beta1: float, shrink=None) -> np.ndarray:
    """rms of ``D_t`` (t = 0..S) for steps of rms ``step_rms`` (S,) correlated as ``beta1^|t-s|``
    (stationary momentum noise): a random walk with a measured step size."""
    u = np.asarray(step_rms, float)
    shrink = np.ones_like(u) if shrink is None else np.asarray(shrink, float)
    walk, cross = 0.0, 0.0    # cross = sum_{s<t} u_s beta1^(t-s), decayed
    out = np.zeros(len(u) + 1)
    for t in range(len(u)):
        walk = shrink[t] ** 2 * walk + u[t] ** 2 + 2 * u[t] * shrink[t] * cross
        cross = beta1 * (shrink[t] * cross + u[t])
        out[t + 1] = math.sqrt(walk)
    return out


#: The model variants compared with the measured drift (name -> what sets the step statistics).
MODELS = {"walk": "random walk, steps of lr (f = 0): lr schedule and steps only",
          "sign": "drift fraction f from the measured step-sign correlation (records >= 10 steps apart)",
          "walk_measured": "random walk with the measured Adam step rms",
          "drift_only": "pure drift (f = 1): every step in the same direction"}


def adam_model(cell: dict, block: str, min_lag: int = 10) -> dict:
    """The model's predictions for one run and block (:data:`MODELS`), each the rms drift from
    init at the recorded steps (R, L), plus ``f`` per record and layer (from the measured step
    correlations of records ``min_lag`` or more steps apart; earlier records take the first
    estimate) and ``std`` / ``std_walk``: the std predicted by the walk with the measured step
    rms / by the walk from the lr schedule alone, ``sqrt((W_0 decay)^2 + D^2)`` (D uncorrelated with W_0)."""
    from ..gpt.train import GPTTrainConfig
    cfg = GPTTrainConfig.from_dict(cell["config"])
    steps = np.asarray(cell["steps"], int)
    corr = np.asarray(cell[f"{block}_step_corr"], float)
    std = np.asarray(cell[f"{block}_std"], float)
    step_rms = np.asarray(cell[f"{block}_step"], float)
    lags = np.diff(steps, prepend=steps[0])
    f = signal_fraction(corr, lags[:, None], cfg.beta1)
    f[(lags < min_lag) | ~np.isfinite(corr).all(axis=1)] = np.nan
    for l in range(f.shape[1]):                     # backfill the short-lag records
        col = f[:, l]
        good = np.flatnonzero(np.isfinite(col))
        col[:] = np.interp(np.arange(len(col)), good, col[good]) if len(good) else 0.0
    lr = np.array([cfg.lr_at(s) for s in range(cfg.steps)])
    shrink = 1 - lr * cfg.weight_decay
    keep = np.concatenate([[1.0], np.cumprod(shrink)])[steps]     # W_0's surviving factor
    L = std.shape[1]
    out = {k: np.zeros((len(steps), L)) for k in MODELS}
    zeros, ones = np.zeros_like(lr), np.ones_like(lr)
    walk = adam_drift(lr, zeros, cfg.beta1, shrink)[steps]        # these two: the same for every layer
    drift_only = adam_drift(lr, ones, cfg.beta1, shrink)[steps]
    d_measured = np.zeros((len(steps), L))
    for l in range(L):
        t = np.arange(cfg.steps)
        d = {"walk": walk,
             "sign": adam_drift(lr, np.interp(t, steps, f[:, l]), cfg.beta1, shrink)[steps],
             "walk_measured": momentum_walk(np.interp(t, steps, step_rms[:, l]), cfg.beta1, shrink)[steps],
             "drift_only": drift_only}
        d_measured[:, l] = d["walk_measured"]
        for k in MODELS:   # measured drift is rms(W_t - W_0): the Adam displacement plus the decay of W_0
            out[k][:, l] = np.sqrt(d[k] ** 2 + ((1 - keep) * std[0, l]) ** 2)
    out["f"] = f
    out["std"] = np.sqrt((keep[:, None] * std[0]) ** 2 + d_measured ** 2)
    out["std_walk"] = np.sqrt((keep[:, None] * std[0]) ** 2 + walk[:, None] ** 2)
    return out


# ----------------------------------------------------------------------------------------------
# Analysis: tables, figures and the verdict from the sweep results
# ----------------------------------------------------------------------------------------------
def _pm(mean, se, digits=3) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}g}" if not np.isfinite(se) else f"{mean:.{digits}g} ± {se:.2g}"


def diverged(cell: dict) -> bool:
    """Non-finite losses, or a final train loss above the initial loss."""
    loss = np.asarray(cell["losses"], float)
    final = np.asarray(cell["evals"], float)[-1, 1] if cell["evals"] else loss[-1]
    return bool(not np.all(np.isfinite(loss)) or not np.isfinite(final) or final > loss[0])


def block_metrics(cells: list, block: str, t_early: float) -> dict:
    """Per-seed (S, L) growth rate (per step), t50, t90, final/initial std, and (S, R) spread, of one block."""
    out = {k: [] for k in ("growth", "t50", "t90", "final_ratio", "spread", "late_over_early")}
    for c in cells:
        steps, std = np.asarray(c["steps"], float), np.asarray(c[f"{block}_std"], float)
        out["growth"].append(growth_rate(steps, std, t_early))
        out["t50"].append(t_fraction(steps, std, 0.5))
        out["t90"].append(t_fraction(steps, std, 0.9))
        out["final_ratio"].append(std[-1] / std[0])
        out["spread"].append(layer_spread(std))
        half = at_step(steps, std, steps[-1] / 2)
        out["late_over_early"].append(np.abs(np.log(std[-1] / half)) / np.abs(np.log(half / std[0])))
    return {k: np.array(v) for k, v in out.items()}


def analyse(dyn: list, rec: list, size: dict, out):
    """Figures, tables, headline numbers and the summary paragraph from the sweep results
    (``dyn``: the GPT-2 runs over seeds; ``rec``: ``(recipe, run)`` pairs of the other recipes)."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from ..plots._figure import subplots

    def figure(nrows, ncols, **kw):      # pyplot.subplots' squeezed axes, without pyplot (backend untouched)
        fig, axes = subplots(nrows, ncols, **kw)
        return fig, (axes.reshape(-1) if 1 in (nrows, ncols) else axes)
    cmap = matplotlib.colormaps

    L, T = size["n_layer"], size["steps"]
    t_early = max(T // 10, 1)                      # the end of warmup
    steps = np.asarray(dyn[0]["steps"], float)
    colors = cmap["viridis"](np.linspace(0, 0.95, L))
    figs, tables, numbers = [], [], {}
    M = {b: block_metrics(dyn, b, t_early) for b in BLOCKS}
    stds = {b: np.array([c[f"{b}_std"] for c in dyn], float) for b in BLOCKS}    # (S, R, L)

    # (a) std vs step, one line per layer coloured by depth
    fig, axes = figure(1, 3, figsize=(15, 4.2), sharey=False)
    for ax, b in zip(axes, BLOCKS):
        mean = stds[b].mean(axis=0)
        for l in range(L):
            ax.plot(steps + 1, mean[:, l], color=colors[l], lw=1.4, label=f"layer {l}" if l in (0, L - 1) else None)
        walk = np.mean([adam_model(c, b)["std_walk"] for c in dyn], axis=(0, 2))
        ax.plot(steps + 1, walk, "k--", lw=1.5, label="Adam random walk, steps of lr (item 5)")
        ax.set_xscale("log")
        ax.set_xlabel("step + 1")
        ax.set_title(f"{b.upper()} weight std (mean of {len(dyn)} seeds)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("std of the block")
    sm = ScalarMappable(cmap="viridis", norm=Normalize(0, L - 1))
    fig.colorbar(sm, ax=axes, label="layer (depth)", fraction=0.02)
    figs.append(save_figure(fig, out, "qkv_std_vs_step"))

    # (b) layer x step heat map of the relative change from init
    fig, axes = figure(1, 3, figsize=(15, 4.2))
    rel = {b: (stds[b] / stds[b][:, :1] - 1).mean(axis=0) for b in BLOCKS}
    vmax = max(np.nanmax(np.abs(r)) for r in rel.values())
    for ax, b in zip(axes, BLOCKS):
        im = ax.imshow(rel[b].T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ticks = np.arange(0, len(steps), 3)
        ax.set_xticks(ticks, [str(int(steps[i])) for i in ticks], fontsize=7)
        ax.set_xlabel("step (log-spaced records)")
        ax.set_title(f"{b.upper()}: std / std(0) - 1")
    axes[0].set_ylabel("layer")
    fig.colorbar(im, ax=axes, fraction=0.02)
    figs.append(save_figure(fig, out, "relative_change_heatmap"))

    # (c) histograms of one shallow and one deep layer at several steps (first seed)
    hist = dyn[0]["hist"]
    picks = sorted({0, int(np.searchsorted(steps, t_early)), int(np.searchsorted(steps, T / 3)), len(steps) - 1})
    fig, axes = figure(2, 3, figsize=(15, 7))
    for row, l in enumerate((0, L - 1)):
        for ax, b in zip(axes[row], BLOCKS):
            for j, i in enumerate(picks):
                h = hist[f"h{l}.{b}"][i]
                e, cnt = np.asarray(h["edges"]), np.asarray(h["counts"], float)
                dens = cnt / (cnt.sum() * np.diff(e))
                floor = 0.5 / (cnt.sum() * np.diff(e).max())          # empty bins: half a count
                ax.stairs(np.maximum(dens, floor), e, color=cmap["plasma"](j / max(len(picks) - 1, 1) * 0.85),
                          label=f"step {int(steps[i])}")
            ax.set_yscale("log")
            ax.set_ylim(bottom=floor)
            ax.set_title(f"layer {l} {b.upper()} weights (density)")
            ax.legend(fontsize=7)
    figs.append(save_figure(fig, out, "weight_histograms"))

    # per-layer table and the depth figure
    rows = []
    for l in range(L):
        row = [l]
        for b in BLOCKS:
            g, gse = mean_se(M[b]["growth"] * 100)
            t5, t5se = mean_se(M[b]["t50"])
            t9, t9se = mean_se(M[b]["t90"])
            fr, frse = mean_se(M[b]["final_ratio"])
            row += [_pm(g[l], gse[l]), _pm(t5[l], t5se[l]), _pm(t9[l], t9se[l]), _pm(fr[l], frse[l])]
        rows.append(row)
    cols = ["layer"] + [f"{b.upper()} {k}" for b in BLOCKS for k in ("growth/100 steps", "t50", "t90", "final/init")]
    tables.append(Table(cols, rows, caption=(
        f"per layer, mean ± se over {len(dyn)} seeds: early growth rate ln(std({t_early})/std(0)) per 100 steps, "
        f"the steps where 50% and 90% of the final change are reached, final std / initial std")))

    fig, axes = figure(1, 3, figsize=(15, 4.2))
    for j, b in enumerate(BLOCKS):
        for ax, key, scale in ((axes[0], "growth", 100), (axes[1], "t90", 1)):
            m, se = mean_se(M[b][key] * scale)
            ax.errorbar(np.arange(L), m, yerr=se, fmt="o-", color=f"C{j}", capsize=3, label=b.upper())
        m, se = mean_se(M[b]["spread"])
        axes[2].plot(steps + 1, m, color=f"C{j}", label=b.upper())
        axes[2].fill_between(steps + 1, m - se, m + se, color=f"C{j}", alpha=0.25)
    axes[0].set(xlabel="layer", ylabel="ln growth per 100 steps", title=f"early growth rate (first {t_early} steps)")
    axes[1].set(xlabel="layer", ylabel="step", title="t90: 90% of the final change")
    axes[2].set(xscale="log", xlabel="step + 1", ylabel="max/min over layers", title="spread of the std across layers")
    for ax in axes:
        ax.legend(fontsize=8)
    figs.append(save_figure(fig, out, "equilibration_metrics"))

    srows = []
    for b in BLOCKS:
        thirds_g = np.array([thirds(g * 100) for g in M[b]["growth"]])          # (S, 2): shallow, deep
        thirds_t = np.array([thirds(t) for t in M[b]["t90"]])
        thirds_h = np.array([thirds(t) for t in M[b]["t50"]])
        thirds_c = np.array([thirds(r - 1) for r in M[b]["final_ratio"]])
        rho = np.array([rank_correlation(np.arange(L), g) for g in M[b]["growth"]])
        sp = M[b]["spread"]
        leo = M[b]["late_over_early"].mean(axis=1)
        vals = {"growth_shallow": mean_se(thirds_g[:, 0]), "growth_deep": mean_se(thirds_g[:, 1]),
                "growth_shallow_minus_deep": mean_se(thirds_g[:, 0] - thirds_g[:, 1]),
                "rank_corr_growth_depth": mean_se(rho),
                "t50_shallow": mean_se(thirds_h[:, 0]), "t50_deep": mean_se(thirds_h[:, 1]),
                "t50_shallow_minus_deep": mean_se(thirds_h[:, 0] - thirds_h[:, 1]),
                "t90_shallow": mean_se(thirds_t[:, 0]), "t90_deep": mean_se(thirds_t[:, 1]),
                "t90_shallow_minus_deep": mean_se(thirds_t[:, 0] - thirds_t[:, 1]),
                "change_shallow": mean_se(thirds_c[:, 0]), "change_deep": mean_se(thirds_c[:, 1]),
                "spread_init": mean_se(sp[:, 0]), "spread_peak": mean_se(sp.max(axis=1)),
                "spread_final": mean_se(sp[:, -1]), "late_over_early_change": mean_se(leo)}
        numbers[b] = {k: [float(v[0]), float(v[1])] for k, v in vals.items()}
        srows.append([b.upper()] + [_pm(*vals[k]) for k in vals])
    tables.append(Table(["block", "growth shallow", "growth deep", "shallow - deep", "rank corr(growth, depth)",
                         "t50 shallow", "t50 deep", "shallow - deep", "t90 shallow", "t90 deep", "shallow - deep",
                         "final/init - 1 shallow", "deep",
                         "spread at init", "peak spread", "final spread", "late/early |dln std|"], srows,
                        caption=(f"depth dependence, mean ± se over {len(dyn)} seeds; shallow / deep: mean over the "
                                 f"first / last third of the layers; growth: ln(std({t_early})/std(0)) per 100 steps; "
                                 f"spread: max/min std over layers; late/early: |ln std(T)/std(T/2)| over "
                                 f"|ln std(T/2)/std(0)|, mean over layers")))

    # item 4: recipes (the GPT-2 row is the first seed of the dynamics sweep)
    runs = [("gpt2", dyn[0])] + list(rec)
    rrows = []
    fig, axes = figure(2, 2, figsize=(13, 8.5))
    for j, (name, c) in enumerate(runs):
        loss = np.asarray(c["losses"], float)
        w = max(len(loss) // 50, 1)
        n = len(loss) // w
        curve = loss[: n * w].reshape(n, w).mean(axis=1)
        axes[0, 0].plot(np.arange(n) * w, curve, color=f"C{j}", label=name)
        st = np.asarray(c["steps"], float)
        div = diverged(c)
        finals = {b: np.asarray(c[f"{b}_std"], float) for b in BLOCKS}
        with np.errstate(invalid="ignore", divide="ignore"):
            axes[0, 1].plot(st + 1, layer_spread(finals["q"]), color=f"C{j}", label=name)
            axes[1, 0].plot(np.arange(L), finals["q"][-1] / finals["q"][0], "o-", color=f"C{j}", label=name)
            axes[1, 1].plot(np.arange(L), finals["v"][-1] / finals["v"][0], "o-", color=f"C{j}", label=name)
            t50 = t_fraction(st, finals["q"], 0.5)
        ev = np.asarray(c["evals"], float)
        rrows.append([name, float(finals["q"][0].mean()), float(loss[0]), float(ev[-1, 2]) if len(ev) else None,
                      "yes" if div else "no"] +
                     [float(layer_spread(finals[b])[-1]) for b in BLOCKS] +
                     [float(np.mean(finals[b][-1] / finals[b][0])) for b in BLOCKS] +
                     [float(np.subtract(*thirds(t50))) if np.all(np.isfinite(t50)) else None])
    axes[0, 0].set(xlabel="step", ylabel="train loss (minibatch, smoothed)", title="loss curves")
    axes[0, 1].set(xscale="log", xlabel="step + 1", ylabel="max/min over layers", title="Q std spread across layers")
    axes[1, 0].set(xlabel="layer", ylabel="std(T)/std(0)", title="Q: final / initial std", yscale="log")
    axes[1, 1].set(xlabel="layer", ylabel="std(T)/std(0)", title="V: final / initial std", yscale="log")
    for ax in axes.ravel():
        ax.legend(fontsize=7)
    fig.tight_layout()
    figs.append(save_figure(fig, out, "recipes"))
    fig, axes = figure(1, 3, figsize=(15, 4.3))
    for ax, b in zip(axes, BLOCKS):
        for j, (name, c) in enumerate(runs):
            st, sd = np.asarray(c["steps"], float), np.asarray(c[f"{b}_std"], float)
            with np.errstate(invalid="ignore", divide="ignore"):
                ax.plot(st + 1, sd[:, 0] / sd[0, 0], "-", color=f"C{j}", label=f"{name}")
                ax.plot(st + 1, sd[:, -1] / sd[0, -1], "--", color=f"C{j}")
        ax.set(xscale="log", yscale="log", xlabel="step + 1", ylabel="std / std(0)",
               title=f"{b.upper()}: layer 0 (solid) and layer {L - 1} (dashed) per recipe")
    axes[0].legend(fontsize=7)
    figs.append(save_figure(fig, out, "recipes_qkv"))
    tables.append(Table(["recipe", "Q init std", "initial loss", "final val loss", "diverged",
                         "Q final spread", "K final spread", "V final spread", "Q final/init", "K final/init",
                         "V final/init", "Q t50 shallow - deep"], rrows,
                        caption=f"recipes, one seed each ({size['n_layer']} layers, {T} steps); spread: max/min std "
                                f"over layers; final/init: mean over layers; t50: step of half the final change, "
                                f"first third of the layers minus last third"))
    numbers["recipes"] = {r[0]: {"final_val": r[3], "diverged": r[4] == "yes"} for r in rrows}

    # item 5: the Adam drift / random-walk model
    fig, axes = figure(2, 3, figsize=(15, 8))
    mrows = []
    late = steps >= t_early
    styles = {"walk": "-", "sign": ":", "walk_measured": "--", "drift_only": "-."}
    for j, b in enumerate(BLOCKS):
        per_seed = [adam_model(c, b) for c in dyn]
        meas = np.array([c[f"{b}_drift"] for c in dyn], float)          # (S, R, L)
        fits = {}
        for k in MODELS:
            pred = np.array([m[k] for m in per_seed])
            logerr = np.abs(np.log10(pred[:, late] / meas[:, late])).reshape(len(dyn), -1)
            # walk and drift_only predict the same distance for every layer: no correlation to speak of
            r = (np.array([np.corrcoef(p[-1], q[-1])[0, 1] for p, q in zip(pred, meas)])
                 if k in ("sign", "walk_measured") else np.full(len(dyn), np.nan))
            fits[k] = {"final_pred_over_meas": mean_se((pred[:, -1] / meas[:, -1]).mean(axis=1)),
                       "median_abs_log10_err": mean_se(np.median(logerr, axis=1)),
                       "corr_over_layers": mean_se(r)}
            mrows.append([b.upper(), k] + [_pm(*v) for v in fits[k].values()])
        dstd_meas = stds[b][:, -1] - stds[b][:, 0]
        dstd_pred = np.array([m["std"][-1] for m in per_seed]) - stds[b][:, 0]
        numbers[f"adam_model_{b}"] = {k: {kk: [float(x) for x in vv] for kk, vv in v.items()} for k, v in fits.items()}
        numbers[f"adam_model_{b}"]["std_change_walk_measured_over_meas"] = [float(x) for x in mean_se(
            dstd_pred.mean(axis=1) / dstd_meas.mean(axis=1))]
        walk_std = np.array([m["std_walk"] for m in per_seed])
        numbers[f"adam_model_{b}"]["std_change_walk_over_meas"] = [float(x) for x in mean_se(
            (walk_std[:, -1] - stds[b][:, 0]).mean(axis=1) / dstd_meas.mean(axis=1))]
        numbers[f"adam_model_{b}"]["t90_walk"] = [float(x) for x in mean_se(
            [np.nanmean(t_fraction(steps, w, 0.9)) for w in walk_std])]
        numbers[f"adam_model_{b}"]["t90_measured"] = [float(x) for x in mean_se(np.nanmean(M[b]["t90"], axis=1))]
        numbers[f"adam_model_{b}"]["mean_f"] = [float(x) for x in mean_se([m["f"][late].mean() for m in per_seed])]
        ax = axes[0, j]
        for l in (0, L - 1):
            ax.plot(steps[1:] + 1, meas[0, 1:, l], "o", color=colors[l], ms=4, label=f"layer {l} measured")
            for k, ls in styles.items():
                ax.plot(steps[1:] + 1, per_seed[0][k][1:, l], ls, color=colors[l], lw=1.2,
                        label=k if l == 0 else None)
        ax.set(xscale="log", yscale="log", xlabel="step + 1", ylabel="rms(W - W0)",
               title=f"{b.upper()}: distance from init, seed {0}: data and models")
        ax.legend(fontsize=7)
        ax = axes[1, j]
        ax.plot(dstd_meas.ravel(), dstd_pred.ravel(), "o", color=f"C{j}", ms=4)
        lim = [min(dstd_meas.min(), dstd_pred.min()), max(dstd_meas.max(), dstd_pred.max())]
        ax.plot(lim, lim, "k:", lw=1)
        ax.set(xlabel="measured std(T) - std(0)", ylabel="walk with measured step rms",
               title=f"{b.upper()}: final std change, every layer and seed")
    fig.tight_layout()
    figs.append(save_figure(fig, out, "adam_model"))
    tables.append(Table(["block", "model", "final drift pred/meas", "median |log10 pred/meas|",
                         "corr over layers"], mrows,
                        caption=(f"Adam model (item 5): rms distance from init, predicted / measured, mean over "
                                 f"layers, ± se over {len(dyn)} seeds; median over records from step {t_early} on; "
                                 f"models: " + "; ".join(f"{k}: {v}" for k, v in MODELS.items()))))
    summary = _verdict(numbers, L, T, t_early, len(dyn), size, runs, rrows)
    return figs, tables, numbers, summary



def _verdict(numbers: dict, L: int, T: int, t_early: int, n_seeds: int, size: dict, runs, rrows) -> str:
    """The summary paragraph: what the numbers say, against the paper's claims."""
    cfg = runs[0][1]["config"]
    def pm(v, d=3):
        return _pm(v[0], v[1], d)
    lines = [f"Model: {L} layers, n_embd {size['n_embd']}, {size['n_head']} heads, block {size['block_size']}, "
             f"batch {size['batch_size']}, {T} steps of AdamW (lr {cfg['lr']:g}, warmup {cfg['warmup']}, cosine to "
             f"{cfg['min_lr']:g}, betas {cfg['beta1']:g}/{cfg['beta2']:g}, weight decay {cfg['weight_decay']:g}) "
             f"on the "
             f"shipped Shakespeare corpus, GPT-2 init (std 0.02, residual projections / sqrt(2L)), "
             f"{n_seeds} seeds; Q/K/V std per layer at {len(record_steps(T))} log-spaced steps."]
    from scipy.stats import t as student_t
    crit = float(student_t.ppf(0.975, n_seeds - 1)) if n_seeds > 1 else math.inf   # 95%, two-sided

    def sig(v):
        return v[0] / v[1] if v[1] > 0 else math.copysign(math.inf, v[0])
    early, half, sooner, narrow = [], [], [], []
    for b in BLOCKS:
        n = numbers[b]
        dg, dt = n["growth_shallow_minus_deep"], n["t90_shallow_minus_deep"]
        early.append(sig(dg) > crit)
        sooner.append(sig(dt) < -crit)
        half.append(sig(n["t50_shallow_minus_deep"]) < -crit)
        narrow.append(n["spread_final"][0] < n["spread_peak"][0] - 2 * max(n["spread_peak"][1], 1e-12))
        lines.append(
            f"{b.upper()}: in the first {t_early} steps ln std grows by {pm(n['growth_shallow'], 2)} per 100 steps in "
            f"the first third of the layers and {pm(n['growth_deep'], 2)} in the last third (difference "
            f"{sig(dg):+.1f} se; rank correlation of growth with depth {pm(n['rank_corr_growth_depth'], 2)}); half "
            f"of the final change is reached at step {pm(n['t50_shallow'])} (shallow) vs {pm(n['t50_deep'])} (deep) "
            f"({sig(n['t50_shallow_minus_deep']):+.1f} se), 90% at {pm(n['t90_shallow'])} vs {pm(n['t90_deep'])} "
            f"({sig(dt):+.1f} se); total change final/init - 1 {pm(n['change_shallow'], 2)} vs "
            f"{pm(n['change_deep'], 2)}; spread of the std across layers (max/min) {pm(n['spread_init'])} at init, "
            f"{pm(n['spread_peak'])} at its peak, {pm(n['spread_final'])} at the end; late/early change "
            f"{pm(n['late_over_early_change'], 2)}.")
    names = lambda flags: ", ".join(b.upper() for b, f in zip(BLOCKS, flags) if f) or "none"  # noqa: E731
    verdict = (f"Against the paper ('shallow layers expand rapidly while deeper layers change more gradually'): "
               f"shallow layers grow faster in the first {t_early} steps for {names(early)}, reach half of their final "
               f"change sooner for {names(half)} and 90% of it sooner for {names(sooner)} (at the 95% level: "
               f"Student t with {n_seeds - 1} degrees of freedom, "
               f"|difference| > {crit:.2f} se). "
               + ("This agrees with the paper for every block. " if all(early + half + sooner) else
                  "Where a block is missing from both lists the data disagree with the paper. "
                  if not any(early + half + sooner) else
                  "The agreement is partial: see the per-block numbers above and figure equilibration_metrics. "))
    bands = ("'Equilibration into narrow bands': the spread across layers narrows after its peak (by > 2 se) for "
             + names(narrow) + ("" if all(narrow) else "; for " + names([not x for x in narrow])
                                + " it does not: the layers fan out rather than gather into narrower bands within "
                                  "this run")
             + "; a late/early change ratio below 1 means each layer slows down (figure equilibration_metrics).")
    fits = {b: numbers[f"adam_model_{b}"] for b in BLOCKS}

    def ratio(k):
        return ", ".join(f"{b.upper()} {pm(fits[b][k]['final_pred_over_meas'], 2)}" for b in BLOCKS)

    def judged(k):   # within 2 se of 1, or the direction of the miss, per block
        out = []
        for b in BLOCKS:
            m, se = fits[b][k]["final_pred_over_meas"]
            out.append("fits" if abs(m - 1) <= 2 * se or abs(m - 1) < 0.1 else "overshoots" if m > 1 else "undershoots")
        return ", ".join(f"{b.upper()} {w}" for b, w in zip(BLOCKS, out))
    err = {k: np.mean([fits[b][k]["median_abs_log10_err"][0] for b in BLOCKS]) for k in MODELS}
    best = min(err, key=err.get)
    model = ("Adam model (item 5): each coordinate moves about lr per step; with persistent step signs (drift) "
             "the distance from init grows like sum(lr), without (random walk; Adam's momentum correlates steps over "
             "~1/(1 - beta1) steps and shrinks their rms to lr sqrt((1-beta1)/(1+beta1))) like sqrt(sum lr^2). "
             f"Predicted / measured rms(W_T - W_0), mean over layers: random walk from the lr schedule alone "
             f"{ratio('walk')} ({judged('walk')}); pure drift {ratio('drift_only')}; walk plus the drift fraction f "
             f"measured from the step-sign correlation of records >= 10 steps apart (mean f "
             + ", ".join(pm(fits[b]["mean_f"], 2) for b in BLOCKS) + f") {ratio('sign')} ({judged('sign')}); "
             f"random walk with the measured Adam step rms {ratio('walk_measured')} ({judged('walk_measured')}; "
             "correlation over layers " + ", ".join(pm(fits[b]["walk_measured"]["corr_over_layers"], 2) for b in BLOCKS)
             + f"). Smallest median |log10 error| over the records: {best} ({err[best]:.3f}; "
             + ", ".join(f"{k} {v:.3f}" for k, v in err.items()) + "). With std^2 = (decayed std_0)^2 + D^2 "
             "(D uncorrelated with W_0) the measured-step walk's std change is "
             + ", ".join(f"{b.upper()} {pm(fits[b]['std_change_walk_measured_over_meas'], 2)}" for b in BLOCKS)
             + " of the measured one, the lr-only walk's "
             + ", ".join(f"{b.upper()} {pm(fits[b]['std_change_walk_over_meas'], 2)}" for b in BLOCKS)
             + "; the lr-only walk reaches 90% of its final std change at step "
             + ", ".join(f"{b.upper()} {pm(fits[b]['t90_walk'])}" for b in BLOCKS) + " (measured, mean over layers: "
             + ", ".join(f"{b.upper()} {pm(fits[b]['t90_measured'])}" for b in BLOCKS)
             + ")" + ("" if not all(np.isfinite(fits[b]["t90_walk"][0]) for b in BLOCKS) else
                      ": the slowing down is that of the cosine lr decay" if all(
                          abs(fits[b]["t90_walk"][0] - fits[b]["t90_measured"][0]) < 0.1 * T for b in BLOCKS) else
                      ": the lr schedule alone does not time the slowing down (more than 10% of the run apart)")
             + " (figures adam_model and qkv_std_vs_step, black).")
    div = [r[0] for r in rrows if r[4] == "yes"]
    best = min((r for r in rrows if r[3] is not None), key=lambda r: r[3])
    recipes = (f"Recipes (one seed each): {'diverged: ' + ', '.join(div) if div else 'none diverged'}; lowest final "
               f"val loss {best[3]:.3f} ({best[0]}); "
               + ", ".join(f"{r[0]} {r[3]:.3f}" for r in rrows if r[3] is not None)
               + ".")
    return "\n\n".join([" ".join(lines), verdict + bands, model, recipes])
