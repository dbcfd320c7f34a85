"""Per-layer diagnostics of the character MLP during training.

Every ``diag_every`` steps the trainer measures, on that step's minibatch, for
every hidden layer ``l`` (``h`` is what enters ``phi``: the linear output, or
BatchNorm's output when there is one):

=================  ==========================================================
q                  ``E[h^2]`` (the mean-field q)
pre_std            ``std(h)``
act_mean           ``E[x]``, ``x = phi(h)``
act_sq, act_var    ``E[x^2]``, ``Var[x]``
act_std            ``std(x)``
saturated          fraction of ``h`` beyond the activation's saturation
                   cut-offs (``|tanh h| > 0.97``); bounded activations only
dead               fraction with ``phi'(h) = 0`` (ReLU: ``h <= 0``)
pregrad_var        ``Var(dL/dh)`` of the real loss (not theory's unit-variance
                   backward pass)
wgrad_std          ``std(dL/dW_l)``
wdata_std          ``std(W_l)``
grad_data          ``std(dL/dW_l) / std(W_l)``
update_ratio       ``log10(std(lr dL/dW_l) / std(W_l))`` (about -3 is healthy)
=================  ==========================================================

as a :class:`~sigprop.spec.LayerStats` with ``source="training"``, plus
histograms of ``x`` on fixed bins, the gradient and update statistics of every
2-d parameter (``C``, ``W1`` ... ``W_out``), and the minibatch loss of every step.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import (atomic_write_npz, atomic_write_text, dumps_json, finite_or_none, nonfinite_marks, read_checked,
                  with_nonfinite)
from ..activations import DEFAULT_SATURATION_THRESHOLD
from ..spec import LayerStats

#: Number of histogram bins of the activations.
HIST_BINS = 100
#: Histogram range of an unbounded activation (a bounded one uses its bounds).
UNBOUNDED_RANGE = (-5.0, 5.0)
_FORMAT = "sigprop.charmlp.Diagnostics"


def hist_edges(activation) -> np.ndarray:
    """The fixed bin edges of activation histograms for ``activation``."""
    lo, hi = activation.bounds if activation.bounds is not None else UNBOUNDED_RANGE
    return np.linspace(lo, hi, HIST_BINS + 1)


def _layer_values(model, ws, lay, B):
    """Per hidden layer: (h, x, phi'(h), dL/dh) as (B, n) float64 arrays from the workspace."""
    from . import kernels as K
    out = []
    for r in range(model.depth):
        n = int(lay[r, K.N_OUT])

        def get(col):
            o = int(lay[r, col])
            return ws[o:o + B * n].reshape(B, n).astype(np.float64)
        out.append((get(K.H), get(K.X), get(K.DPHI), get(K.GH)))
    return out


def activation_quantities(h, x, dp, cutoffs):
    """Per-example layer averages of the forward quantities (each row of the result is one example)."""
    mean_x = x.mean()
    per_example = {
        "q": (h * h).mean(axis=1),
        "act_mean": x.mean(axis=1),
        "act_sq": (x * x).mean(axis=1),
        "act_var": ((x - mean_x) ** 2).mean(axis=1),
        "dead": (dp == 0.0).mean(axis=1),
    }
    if cutoffs is not None:
        lo, hi = cutoffs
        per_example["saturated"] = ((h < lo) | (h > hi)).mean(axis=1)
    return per_example


def layer_quantity_names(activation, with_grad=True) -> list:
    """Quantities :func:`measure` records for ``activation``."""
    names = ["q", "pre_std", "act_mean", "act_sq", "act_var", "act_std"]
    if activation.bounds is not None:
        names.append("saturated")
    names.append("dead")
    if with_grad:
        names += ["pregrad_var", "wgrad_std", "wdata_std", "grad_data", "update_ratio"]
    return names


def measure(model, theta, grad, ws, lay, B, lr, threshold=DEFAULT_SATURATION_THRESHOLD, with_se=False, cutoffs=False):
    """Diagnostics of the pass held in the workspace (``B`` rows) and ``grad`` (None: forward only).

    Returns
    -------
    values : dict of quantity -> (L,) array
    se : dict of quantity -> (L,) array
        Standard errors over the examples of the batch (per-example layer averages), when
        ``with_se``; they do not include network-to-network variation.
    hist : (L, HIST_BINS) int64 counts of ``x``; outside : (L, 2) counts below / above the range
    params : dict of parameter name -> (grad_std, data_std, update_ratio) of every 2-d parameter
    """
    from . import kernels as K
    act = model.activation
    if cutoffs is False:
        cutoffs = act.saturation_cutoffs(threshold) if act.bounds is not None else None
    edges = hist_edges(act)
    L = model.depth
    names = layer_quantity_names(act, grad is not None)
    values = {k: np.full(L, np.nan) for k in names}
    se = {}
    hist = np.zeros((L, HIST_BINS), dtype=np.int64)
    outside = np.zeros((L, 2), dtype=np.int64)
    summary = np.zeros(9)
    lo, hi = cutoffs if cutoffs is not None else (-np.inf, np.inf)
    kernels = model.kernels
    for l in range(L):
        kernels.layer_summary(ws, lay, l, B, lo, hi, edges[0], edges[-1], summary, hist[l], outside[l])
        mh, q, vh, mx, x2, vx, sat, dead, vg = summary
        values["q"][l], values["pre_std"][l] = q, np.sqrt(vh)
        values["act_mean"][l], values["act_sq"][l], values["act_var"][l] = mx, x2, vx
        values["act_std"][l] = np.sqrt(vx)
        values["dead"][l] = dead
        if cutoffs is not None:
            values["saturated"][l] = sat
        if grad is not None:
            values["pregrad_var"][l] = vg
    if with_se and B > 1:
        with np.errstate(all="ignore"):
            for l, (h, x, dp, gh) in enumerate(_layer_values(model, ws, lay, B)):
                for k, v in activation_quantities(h, x, dp, cutoffs).items():
                    se.setdefault(k, np.full(L, np.nan))[l] = v.std(ddof=1) / np.sqrt(B)
    params = {}
    if grad is not None:
        for name in model.weight_names():
            off, shape, _ = model.param_index[name]
            n = int(np.prod(shape))
            g_std = kernels.vector_std(grad, off, n)
            w_std = kernels.vector_std(theta, off, n)
            with np.errstate(all="ignore"):
                params[name] = (g_std, w_std, np.log10(lr * g_std / w_std))
        for l in range(L):
            g_std, w_std, ud = params[f"W{l + 1}"]
            values["wgrad_std"][l], values["wdata_std"][l] = g_std, w_std
            with np.errstate(all="ignore"):
                values["grad_data"][l] = g_std / w_std
            values["update_ratio"][l] = ud
    return values, se, hist, outside, params


@dataclass
class Diagnostics:
    """Diagnostics of one training run.

    Attributes
    ----------
    steps : list of int
        Steps at which layers were measured (after that step's forward/backward pass).
    stats : list of LayerStats
        One per recorded step (``source="training"``, ``meta["step"]``).
    hist_edges : ndarray (HIST_BINS + 1,)
    hist : ndarray (n_records, L, HIST_BINS)
        Counts of the activations ``x_l`` on ``hist_edges``.
    hist_outside : ndarray (n_records, L, 2)
        Counts below / above the histogram range.
    param_names : list of str
        The 2-d parameters (``C``, ``W1`` ... ``W_out``).
    param_stats : ndarray (n_records, n_params, 3)
        ``std(grad)``, ``std(data)``, ``log10(std(lr grad)/std(data))`` per parameter.
    losses : ndarray (steps done,)
        Minibatch loss of every step.
    init_stats : LayerStats or None
        Forward quantities at initialisation on a larger probe batch, with standard errors
        over its examples (comparable with ``sigprop.theory.predict``).
    meta : dict
    """

    steps: list = field(default_factory=list)
    stats: list = field(default_factory=list)
    hist_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hist: list = field(default_factory=list)
    hist_outside: list = field(default_factory=list)
    param_names: list = field(default_factory=list)
    param_stats: list = field(default_factory=list)
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    init_stats: LayerStats | None = None
    meta: dict = field(default_factory=dict)

    def record(self, step, stats, hist, outside, params):
        self.steps.append(int(step))
        self.stats.append(stats)
        self.hist.append(np.asarray(hist, dtype=np.int64))
        self.hist_outside.append(np.asarray(outside, dtype=np.int64))
        self.param_stats.append(np.array([params[n] for n in self.param_names], dtype=float))

    @property
    def depth(self) -> int:
        return self.stats[0].depth if self.stats else 0

    def series(self, quantity) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of a per-layer quantity over training; values (n_records, L)."""
        if not self.stats:
            return np.zeros(0, dtype=int), np.zeros((0, 0))
        return np.asarray(self.steps), np.stack([s[quantity] for s in self.stats])

    def param_series(self, which="update_ratio") -> tuple[np.ndarray, dict]:
        """``(steps, {param name: values})`` for ``which`` in grad_std, data_std, update_ratio."""
        col = {"grad_std": 0, "data_std": 1, "update_ratio": 2}[which]
        arr = np.stack(self.param_stats) if self.param_stats else np.zeros((0, len(self.param_names), 3))
        return np.asarray(self.steps), {n: arr[:, i, col] for i, n in enumerate(self.param_names)}

    def at(self, step) -> LayerStats:
        """The LayerStats recorded at ``step``."""
        try:
            return self.stats[self.steps.index(int(step))]
        except ValueError:
            raise KeyError(f"no diagnostics at step {step}; recorded: {self.steps[:5]}...") from None

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain data (JSON-ready; floats exact through ``repr``)."""
        return {
            "format": _FORMAT, "version": 1, "meta": self.meta,
            "steps": list(self.steps),
            "stats": [s.to_dict() for s in self.stats],
            "hist_edges": np.asarray(self.hist_edges).tolist(),
            "hist": [h.tolist() for h in self.hist],
            "hist_outside": [h.tolist() for h in self.hist_outside],
            "param_names": list(self.param_names),
            "param_stats": [finite_or_none(p) for p in self.param_stats],
            "losses": finite_or_none(np.asarray(self.losses, dtype=float)),
            "init_stats": None if self.init_stats is None else self.init_stats.to_dict(),
            # strict JSON: inf/nan are null above, what they were is kept here
            "nonfinite": {"losses": nonfinite_marks(self.losses),
                          "param_stats": [nonfinite_marks(p) for p in self.param_stats]},
        }

    @classmethod
    def from_dict(cls, d) -> "Diagnostics":
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise ValueError("not a sigprop character-MLP diagnostics file (missing format tag)")
        marks = d.get("nonfinite") or {}
        return cls(steps=[int(s) for s in d["steps"]], stats=[LayerStats.from_dict(s) for s in d["stats"]],
                   hist_edges=np.asarray(d["hist_edges"], dtype=float),
                   hist=[np.asarray(h, dtype=np.int64) for h in d["hist"]],
                   hist_outside=[np.asarray(h, dtype=np.int64) for h in d["hist_outside"]],
                   param_names=list(d["param_names"]),
                   param_stats=[with_nonfinite(p, m) for p, m in
                                zip(d["param_stats"], marks.get("param_stats", [None] * len(d["param_stats"])))],
                   losses=with_nonfinite(d["losses"], marks.get("losses")),
                   init_stats=None if d.get("init_stats") is None else LayerStats.from_dict(d["init_stats"]),
                   meta=d.get("meta", {}))

    def to_npz_dict(self, prefix="diag/") -> dict:
        header = self.to_dict()
        for k in ("hist", "hist_outside", "param_stats", "losses", "hist_edges", "nonfinite"):
            header.pop(k)
        arrays = {f"{prefix}header": np.array(dumps_json(header)),
                  f"{prefix}hist_edges": np.asarray(self.hist_edges, dtype=float),
                  f"{prefix}losses": np.asarray(self.losses, dtype=float)}
        L = self.depth
        arrays[f"{prefix}hist"] = np.stack(self.hist) if self.hist else np.zeros((0, L, HIST_BINS), np.int64)
        arrays[f"{prefix}hist_outside"] = np.stack(self.hist_outside) if self.hist_outside else np.zeros((0, L, 2), np.int64)
        arrays[f"{prefix}param_stats"] = (np.stack(self.param_stats) if self.param_stats
                                          else np.zeros((0, len(self.param_names), 3)))
        return arrays

    @classmethod
    def from_npz(cls, z, prefix="diag/") -> "Diagnostics":
        d = json.loads(str(z[f"{prefix}header"]))
        d["hist_edges"] = z[f"{prefix}hist_edges"]
        d["losses"] = z[f"{prefix}losses"]
        d["hist"] = list(z[f"{prefix}hist"])
        d["hist_outside"] = list(z[f"{prefix}hist_outside"])
        d["param_stats"] = list(z[f"{prefix}param_stats"])
        return cls.from_dict(d)

    def save(self, path) -> Path:
        """Write to ``.json`` or ``.npz`` (by extension), atomically and losslessly."""
        path = Path(path)
        if path.suffix == ".json":
            return atomic_write_text(path, dumps_json(self.to_dict()))
        if path.suffix == ".npz":
            return atomic_write_npz(path, **self.to_npz_dict())
        raise ValueError(f"Diagnostics saves to .json or .npz, got {path.name!r}")

    @classmethod
    def load(cls, path) -> "Diagnostics":
        def from_npz(path):
            with np.load(path, allow_pickle=False) as z:
                return cls.from_npz(z)
        return read_checked(path, "diagnostics", {".json": lambda p: cls.from_dict(json.loads(p.read_text())),
                                                  ".npz": from_npz})

    def equals(self, other) -> bool:
        """Exact equality, NaN equal to NaN (what a save/load round trip or a resumed run preserves)."""
        if not isinstance(other, Diagnostics):
            return False
        arr_eq = lambda a, b: len(a) == len(b) and all(  # noqa: E731
            np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
        return (self.steps == other.steps and len(self.stats) == len(other.stats)
                and all(a.equals(b) for a, b in zip(self.stats, other.stats))
                and np.array_equal(self.hist_edges, other.hist_edges)
                and arr_eq(self.hist, other.hist) and arr_eq(self.hist_outside, other.hist_outside)
                and self.param_names == other.param_names and arr_eq(self.param_stats, other.param_stats)
                and np.array_equal(self.losses, other.losses, equal_nan=True)
                and ((self.init_stats is None and other.init_stats is None)
                     or (self.init_stats is not None and self.init_stats.equals(other.init_stats)))
                and self.meta == other.meta)
