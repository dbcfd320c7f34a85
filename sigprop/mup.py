"""SP and muP in practice: the coordinate check and learning-rate optima.

The width scalings come from :mod:`sigprop.symbolic.mup` (through
:meth:`sigprop.charmlp.model.Model.init_params` and :meth:`~sigprop.charmlp.model.Model.lr_multipliers`).

:func:`coord_check` trains the character MLP for a few steps on one fixed batch at a range of
widths and records, per layer, the mean absolute value of the pre-activations ``h_l``, the
activations ``x_l`` and the logits, and of their change since initialisation
(``Delta h_l = h_l(t) - h_l(0)``, ...). In muP every one of them is ``Theta(1)``: flat in width.
:meth:`CoordCheck.slopes` fits ``d log|x| / d log n`` per layer and step, per seed, and gives the
mean and its standard error over seeds; :meth:`CoordCheck.verdict` passes when every
``|slope| < 0.1`` at every step ``t >= 1``.

:func:`parabola_optimum` is the optimum of a loss-vs-log2-learning-rate curve (the parabola
through its three best points), used by the ``mup-transfer`` study.

Examples
--------
>>> cc = coord_check(widths=[32, 64], seeds=[0], steps=1, layers=1, progress=False)
>>> sorted({row["quantity"] for row in cc.rows})[:3]
['dh1', 'dlogits', 'dx1']
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: The verdict's bound on |d log|x| / d log n|.
SLOPE_TOLERANCE = 0.1


@dataclass(frozen=True)
class CoordCheckConfig:
    """Everything that determines a coordinate check (saved beside its results)."""

    parametrization: str = "mup"
    optimizer: str = "adam"
    widths: tuple = (64, 128, 256, 512, 1024, 2048, 4096)
    seeds: tuple = (0, 1, 2)
    steps: int = 5
    lr: float = 1e-2
    base_width: int = 64
    layers: int = 3
    activation: str = "tanh"
    init: str = "kaiming"
    output_fix: bool = True
    batch_size: int = 64
    dtype: str = "float32"
    batch_seed: int = 1234

    def __post_init__(self):
        from .charmlp.train import _int, _pos
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.parametrization not in ("sp", "mup"):
            raise ValueError(f"parametrization must be 'sp' or 'mup', got {self.parametrization!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        widths = tuple(_int("width", w, 1) for w in self.widths)
        if len(set(widths)) < 2:
            raise ValueError(f"a coordinate check needs at least 2 different widths, got {list(widths)}")
        set_("widths", tuple(sorted(set(widths))))
        seeds = tuple(_int("seed", s, 0) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct integers >= 0, got {list(seeds)}")
        set_("seeds", seeds)
        set_("steps", _int("steps", self.steps, 1))
        set_("lr", _pos("lr", self.lr))
        set_("base_width", _int("base_width", self.base_width, 1))
        set_("layers", _int("layers", self.layers, 1))
        set_("batch_size", _int("batch_size", self.batch_size, 1))
        set_("batch_seed", _int("batch_seed", self.batch_seed, 0))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"], d["seeds"] = list(self.widths), list(self.seeds)
        return d


def _quantities(layers):
    names = [f"h{l}" for l in range(1, layers + 1)] + [f"x{l}" for l in range(1, layers + 1)] + ["logits"]
    return names + ["d" + q for q in names]


@dataclass
class CoordCheck:
    """Result of :func:`coord_check`: tidy rows (one per width, seed, step and quantity)."""

    config: CoordCheckConfig
    rows: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def quantities(self) -> list:
        return _quantities(self.config.layers)

    def values(self, quantity: str, t: int) -> np.ndarray:
        """Array (seeds, widths) of the mean |quantity| at step ``t``."""
        cfg = self.config
        out = np.full((len(cfg.seeds), len(cfg.widths)), np.nan)
        si = {s: i for i, s in enumerate(cfg.seeds)}
        wi = {w: i for i, w in enumerate(cfg.widths)}
        for r in self.rows:
            if r["quantity"] == quantity and r["t"] == t:
                out[si[r["seed"]], wi[r["width"]]] = r["mean_abs"]
        return out

    def slopes(self) -> list:
        """Per quantity and step ``t >= 1``: the least-squares slope of log(mean |x|) on log(width)
        for every seed, their mean and standard error over seeds (nan with one seed)."""
        cfg = self.config
        logn = np.log(np.asarray(cfg.widths, dtype=float))
        out = []
        for q in self.quantities:
            for t in range(1, cfg.steps + 1):
                v = self.values(q, t)
                with np.errstate(divide="ignore", invalid="ignore"):
                    per_seed = np.array([np.polyfit(logn, np.log(row), 1)[0] if np.all(np.isfinite(np.log(row)))
                                         else np.nan for row in v])
                S = len(per_seed)
                mean = float(np.mean(per_seed))
                se = float(np.std(per_seed, ddof=1) / math.sqrt(S)) if S > 1 else float("nan")
                out.append({"quantity": q, "t": t, "slope": mean, "se": se, "per_seed": per_seed.tolist()})
        return out

    def verdict(self, tolerance: float = SLOPE_TOLERANCE) -> dict:
        """``{"passed": bool, "worst": slope row with the largest |slope|, "failing": [...]}``;
        passes when every mean slope at every step is finite and within ``tolerance`` of 0."""
        sl = self.slopes()
        bad = [s for s in sl if not (abs(s["slope"]) < tolerance)]
        worst = max(sl, key=lambda s: abs(s["slope"]) if math.isfinite(s["slope"]) else math.inf)
        return {"passed": not bad, "tolerance": tolerance, "worst": worst, "failing": bad}

    # --- output ---------------------------------------------------------------------------
    def to_csv(self) -> str:
        buf = io.StringIO()
        cols = ["parametrization", "optimizer", "width", "seed", "t", "quantity", "mean_abs"]
        w = csv.DictWriter(buf, cols, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r[k] for k in cols})
        return buf.getvalue()

    def to_dict(self) -> dict:
        v = self.verdict()
        return {"config": self.config.to_dict(), "rows": self.rows, "slopes": self.slopes(),
                "verdict": {"passed": v["passed"], "tolerance": v["tolerance"], "worst": v["worst"],
                            "n_failing": len(v["failing"])}, "seconds": self.seconds}

    def save(self, out, stem=None) -> list:
        """Write ``STEM.csv``, ``STEM.json`` and the figure ``STEM.png`` (``STEM`` =
        ``coord_check_<parametrization>_<optimizer>``); returns the paths."""
        from ._io import atomic_write_text, dumps_json
        out = Path(out)
        stem = stem or f"coord_check_{self.config.parametrization}_{self.config.optimizer}"
        paths = [atomic_write_text(out / f"{stem}.csv", self.to_csv()),
                 atomic_write_text(out / f"{stem}.json", dumps_json(self.to_dict(), indent=1) + "\n")]
        from .studies._base import save_figure
        paths.append(save_figure(plot_coord_check(self), out, stem))
        return paths

    def summary(self) -> str:
        """The verdict in one paragraph, with the largest slope per quantity kind."""
        v = self.verdict()
        cfg = self.config
        w = v["worst"]
        head = (f"{cfg.parametrization.upper() if cfg.parametrization == 'sp' else 'muP'} with "
                f"{cfg.optimizer.upper() if cfg.optimizer == 'sgd' else 'Adam'} (lr {cfg.lr:g} at base width "
                f"{cfg.base_width}), widths {cfg.widths[0]}..{cfg.widths[-1]}, {len(cfg.seeds)} seeds, t = 1.."
                f"{cfg.steps}: ")
        if v["passed"]:
            return head + (f"PASS, every |d log|x| / d log n| < {v['tolerance']} (largest: {w['quantity']} at "
                           f"t = {w['t']}, {w['slope']:+.3f} +- {w['se']:.3f}).")
        return head + (f"FAIL, {len(v['failing'])} of {len(self.slopes())} slopes have |slope| >= "
                       f"{v['tolerance']} (largest: {w['quantity']} at t = {w['t']}, {w['slope']:+.3f} +- "
                       f"{w['se']:.3f}).")


def _fixed_batch(cfg, data):
    X, Y = data.arrays["train"]
    rng = np.random.default_rng(cfg.batch_seed)
    rows = np.sort(rng.choice(X.shape[0], size=min(cfg.batch_size, X.shape[0]), replace=False))
    return np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])


def _setup(cfg: CoordCheckConfig, words=None):
    """(base TrainConfig at the narrowest width, Data, fixed batch ctx, y)."""
    from .charmlp.train import Data, TrainConfig
    base = TrainConfig(layers=cfg.layers, width=cfg.widths[0], activation=cfg.activation, init=cfg.init,
                       output_fix=cfg.output_fix, batch_size=cfg.batch_size, dtype=cfg.dtype,
                       parametrization=cfg.parametrization, base_width=cfg.base_width, optimizer=cfg.optimizer,
                       steps=cfg.steps, diag_every=0, checkpoint_every=0)
    data = Data.build(base, words)
    ctx, y = _fixed_batch(cfg, data)
    return base, data, ctx, y


def check_memory(config: CoordCheckConfig, words=None, _prepared=None) -> None:
    """Raise ``ValueError`` (one line) when the widest model of ``config`` cannot fit in memory;
    call it before writing any file."""
    from .charmlp.train import _model
    from .memory import check_fits
    if _prepared is None:
        base, data, ctx, _ = _setup(config, words)
        _prepared = (base, data, ctx.shape[0])
    base, data, B = _prepared
    widest = _model(base.replace(width=config.widths[-1]), data.vocab)
    check_fits(widest.memory_estimate(B) + 3 * 8 * widest.n_params,
               f"a coordinate check at width {config.widths[-1]} with {config.layers} layers")


def coord_check(config: CoordCheckConfig | None = None, progress: bool = True, words=None, **kwargs) -> CoordCheck:
    """Run a coordinate check.

    Parameters
    ----------
    config : CoordCheckConfig, optional
        Or its fields as keyword arguments.
    progress : bool
        Progress bar on stderr.
    words : list of str, optional
        Training words (default: the embedded names).

    Returns
    -------
    CoordCheck
    """
    import time

    from .charmlp import kernels as Kc
    from .charmlp.train import _Workspace, initial_params
    from .progress import Progress
    if config is None:
        config = CoordCheckConfig(**kwargs)
    elif kwargs:
        raise TypeError("give a CoordCheckConfig or keyword arguments, not both")
    cfg = config
    t0 = time.perf_counter()
    base, data, ctx, y = _setup(cfg, words)
    B = ctx.shape[0]
    check_memory(cfg, words, _prepared=(base, data, B))
    names = _quantities(cfg.layers)
    L = cfg.layers
    rows = []
    bar = Progress(len(cfg.widths) * len(cfg.seeds), "coord-check", enabled=progress)
    for width in cfg.widths:
        for seed in cfg.seeds:
            tc = base.replace(width=width, seed=seed)
            params = initial_params(tc, data.vocab)
            model = params.model
            K = model.kernels
            theta, bnstate = params.theta.copy(), params.bnstate.copy()
            grad = np.zeros_like(theta)
            mult = model.lr_multipliers(cfg.parametrization, cfg.optimizer, cfg.base_width)
            m, v = np.zeros_like(theta), np.zeros_like(theta)
            wk = _Workspace(model, B)
            first = None
            for t in range(cfg.steps + 1):
                if t > 0:
                    K.loss_and_grad(theta, grad, bnstate, ctx, y, wk.ws, wk.tmp, wk.lay, model.n_embd, 0.0,
                                    model.bn_eps)
                    if cfg.optimizer == "adam":
                        K.adam(theta, grad, m, v, mult, cfg.lr, t, tc.beta1, tc.beta2, tc.adam_eps, 0.0)
                    else:
                        K.sgd_scaled(theta, grad, cfg.lr, mult)
                K.forward(theta, bnstate, ctx, wk.ws, wk.lay, model.n_embd, True, 0.0, model.bn_eps)
                arrays = []
                for col in (Kc.H, Kc.X):
                    for r in range(L):
                        o, n = int(wk.lay[r, col]), int(wk.lay[r, Kc.N_OUT])
                        arrays.append(wk.ws[o:o + B * n].astype(np.float64))
                o = int(wk.lay[L, Kc.Z])
                arrays.append(wk.ws[o:o + B * model.V].astype(np.float64))
                if first is None:
                    first = arrays
                vals = [np.mean(np.abs(a)) for a in arrays] + [np.mean(np.abs(a - a0)) for a, a0 in zip(arrays, first)]
                for q, val in zip(names, vals):
                    rows.append({"parametrization": cfg.parametrization, "optimizer": cfg.optimizer, "width": width,
                                 "seed": seed, "t": t, "quantity": q, "mean_abs": float(val)})
            bar.update()
    bar.close()
    return CoordCheck(cfg, rows, time.perf_counter() - t0)


def plot_coord_check(cc: CoordCheck):
    """Log-log mean |x| vs width, one panel per step (top: values, bottom: change since init),
    one line per layer (mean over seeds)."""
    from matplotlib.figure import Figure
    cfg = cc.config
    T = cfg.steps
    fig = Figure(figsize=(2.6 * T + 1, 5.6))
    axes = fig.subplots(2, T, squeeze=False)
    L = cfg.layers
    for t in range(1, T + 1):
        for row, prefix in ((0, ""), (1, "d")):
            ax = axes[row, t - 1]
            for i, q in enumerate([f"h{l}" for l in range(1, L + 1)] + [f"x{l}" for l in range(1, L + 1)] + ["logits"]):
                v = np.nanmean(cc.values(prefix + q, t), axis=0)
                style = "-" if q.startswith("h") else ("--" if q.startswith("x") else "-")
                ax.loglog(cfg.widths, v, style, marker="o", ms=3, color="k" if q == "logits" else f"C{i % L}",
                          label=prefix + q)
            ax.set_title(f"t = {t}" + (" (change since init)" if prefix else ""), fontsize=9)
            ax.set_xlabel("width")
            if t == 1:
                ax.set_ylabel("mean |x|" if not prefix else "mean |x_t - x_0|")
    axes[0, -1].legend(fontsize=6, ncol=1)
    axes[1, -1].legend(fontsize=6, ncol=1)
    name = "muP" if cfg.parametrization == "mup" else "SP"
    v = cc.verdict()
    fig.suptitle(f"coordinate check: {name}, {cfg.optimizer}, lr {cfg.lr:g} (base width {cfg.base_width}): "
                 f"{'PASS' if v['passed'] else 'FAIL'} (largest |slope| {abs(v['worst']['slope']):.2f})")
    fig.tight_layout()
    return fig


def parabola_optimum(log2_lr, loss) -> dict:
    """The optimum of a loss-vs-log2-learning-rate curve: vertex of the parabola through the three
    lowest finite points (nan losses, diverged runs, are skipped).

    Returns ``{"log2_lr": vertex (or the best grid point when the three points are not convex or the
    vertex lies outside their range), "loss": the parabola's value there, "best_grid": best grid point,
    "interior": whether the best grid point has finite neighbours on both sides}``.

    Examples
    --------
    >>> round(parabola_optimum([-3, -2, -1, 0], [2.0, 1.25, 1.0, 1.25])["log2_lr"], 6)
    -1.0
    """
    x = np.asarray(log2_lr, dtype=float)
    y = np.asarray(loss, dtype=float)
    ok = np.isfinite(y)
    if ok.sum() < 1:
        return {"log2_lr": float("nan"), "loss": float("nan"), "best_grid": float("nan"), "interior": False}
    order = np.argsort(np.where(ok, y, np.inf))
    ib = int(order[0])
    interior = 0 < ib < len(x) - 1 and ok[ib - 1] and ok[ib + 1]
    best = {"log2_lr": float(x[ib]), "loss": float(y[ib]), "best_grid": float(x[ib]), "interior": bool(interior)}
    if ok.sum() < 3:
        return best
    idx = order[:3]
    a, b, c = np.polyfit(x[idx], y[idx], 2)
    if not a > 0:
        return best
    xv = -b / (2 * a)
    if not x[idx].min() <= xv <= x[idx].max():
        return best
    return {"log2_lr": float(xv), "loss": float(np.polyval([a, b, c], xv)), "best_grid": float(x[ib]),
            "interior": bool(interior)}
