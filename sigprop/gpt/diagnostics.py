"""What a GPT training run records every ``diag_every`` steps.

Per layer (a :class:`~sigprop.spec.LayerStats` of source ``"training"`` per recorded step):

* ``q_std``, ``k_std``, ``v_std``: std of the Q, K and V column blocks of the fused ``qkv_w``;
* ``proj_std``, ``fc_std``, ``fcproj_std``: std of the block's other weight matrices;
* ``resid_var_in``, ``resid_var_mid``, ``resid_var_out``: variance (over tokens and channels) of
  the residual stream entering the block, after its attention and after its MLP;
* ``attn_entropy`` (mean over heads) and ``attn_entropy_h{j}`` per head: entropy of the
  attention rows in nats, averaged over batch and positions (``ln(t+1)`` would be uniform);
* ``grad_norm_{qkv,proj,fc,fcproj}``: the norm of the weight gradients of the block.

Per parameter tensor (dicts ``name -> value``): the gradient norm and the update:data ratio
``std(theta_after - theta_before) / std(theta_before)`` of that step's AdamW update.

With ``diag_dynamics`` (:func:`qkv_dynamics`), per layer and for each of the Q, K, V blocks ``b``:

* ``b_drift``: rms of ``W - W_0`` (the distance travelled from the initial weights);
* ``b_step``: rms of the Adam part of this step's update (the update minus the weight decay);
* ``b_step_corr``: cosine between this step's Adam update and the one at the previous recorded
  step (nan at the first record of a run or of a resumed run).

With ``hist_layers`` (:func:`qkv_histograms`), the histograms of the Q, K, V blocks of those layers.
"""
from __future__ import annotations

import math

import numpy as np

from ..spec import LayerStats

#: Weight matrices of a block and the short names their per-layer quantities use.
BLOCK_WEIGHTS = (("qkv_w", "qkv"), ("proj_w", "proj"), ("fc_w", "fc"), ("fcproj_w", "fcproj"))


def _var(x: np.ndarray) -> float:
    return float(np.var(x, dtype=np.float64))


def _std(x: np.ndarray) -> float:
    return float(np.std(x, dtype=np.float64))


def attention_entropy(att: np.ndarray) -> np.ndarray:
    """Mean entropy (nats) of the attention rows of each head: att (B, H, T, T) -> (H,)."""
    p = att.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)   # (B, H, T)
    return ent.mean(axis=(0, 2))


def layer_stats(net, params, grad_views: dict, step: int) -> LayerStats:
    """Per-layer diagnostics of the last forward/backward of ``net`` at ``params``."""
    cfg = params.config
    C, L, H = cfg.n_embd, cfg.n_layer, cfg.n_head
    values: dict = {k: [] for k in ("q_std", "k_std", "v_std", "proj_std", "fc_std", "fcproj_std",
                                    "resid_var_in", "resid_var_mid", "resid_var_out", "attn_entropy")}
    for j in range(H):
        values[f"attn_entropy_h{j}"] = []
    for _, short in BLOCK_WEIGHTS:
        values[f"grad_norm_{short}"] = []
    for l in range(L):
        w = params[f"h{l}.qkv_w"]
        values["q_std"].append(_std(w[:, :C]))
        values["k_std"].append(_std(w[:, C:2 * C]))
        values["v_std"].append(_std(w[:, 2 * C:]))
        values["proj_std"].append(_std(params[f"h{l}.proj_w"]))
        values["fc_std"].append(_std(params[f"h{l}.fc_w"]))
        values["fcproj_std"].append(_std(params[f"h{l}.fcproj_w"]))
        values["resid_var_in"].append(_var(net.x[l]))
        values["resid_var_mid"].append(_var(net.a[l]))
        values["resid_var_out"].append(_var(net.x[l + 1]))
        ent = attention_entropy(net.att[l])
        values["attn_entropy"].append(float(ent.mean()))
        for j in range(H):
            values[f"attn_entropy_h{j}"].append(float(ent[j]))
        for name, short in BLOCK_WEIGHTS:
            values[f"grad_norm_{short}"].append(float(np.linalg.norm(grad_views[f"h{l}.{name}"].astype(np.float64))))
    return LayerStats(values, source="training", meta={"step": int(step)})


#: The three column blocks of the fused ``qkv_w`` (n_embd columns each), in storage order.
QKV = ("q", "k", "v")


def qkv_dynamics(config, before: np.ndarray, after: np.ndarray, theta0: np.ndarray, shrink: float,
                 previous: dict) -> dict:
    """Per-layer drift from init, Adam step size and step-direction correlation of the Q/K/V blocks.

    Parameters
    ----------
    config : GPTConfig
    before, after : array
        The flat parameters before (float64 copy) and after one AdamW update.
    theta0 : array
        The initial parameters (float64).
    shrink : float
        ``1 - lr * weight_decay`` of that update: the Adam part is ``after - shrink * before``.
    previous : dict
        ``(layer, block) -> previous recorded Adam step`` (flat); updated in place.

    Returns
    -------
    dict
        ``{b}_drift``, ``{b}_step``, ``{b}_step_corr`` for ``b`` in q, k, v -> list over layers.
    """
    C = config.n_embd
    offsets = config.offsets()
    out = {f"{b}_{k}": [] for b in QKV for k in ("drift", "step", "step_corr")}
    for l in range(config.n_layer):
        a, b_, shape = offsets[f"h{l}.qkv_w"]
        w0, wb = theta0[a:b_].reshape(shape), before[a:b_].reshape(shape)
        wa = after[a:b_].reshape(shape).astype(np.float64)
        for j, name in enumerate(QKV):
            cols = slice(j * C, (j + 1) * C)
            # Adam step = W_after - (1 - lr wd) W_before
            step = (wa[:, cols] - shrink * wb[:, cols]).ravel()
            out[f"{name}_drift"].append(float(np.sqrt(np.mean((wb[:, cols] - w0[:, cols]) ** 2))))
            out[f"{name}_step"].append(float(np.sqrt(np.mean(step ** 2))))
            prev = previous.get((l, name))
            norm = np.linalg.norm(step) * (np.linalg.norm(prev) if prev is not None else 0.0)
            out[f"{name}_step_corr"].append(float(step @ prev / norm) if norm > 0 else math.nan)
            previous[(l, name)] = step
    return out


def qkv_histograms(params, layers, bins: int = 60) -> dict:
    """``"h{l}.{b}" -> {"edges", "counts"}``: histogram of the Q, K, V block ``b`` of each layer
    in ``layers`` over ``bins`` equal bins spanning +-max|w| of that block."""
    C = params.config.n_embd
    out = {}
    for l in layers:
        w = params[f"h{l}.qkv_w"]
        for j, name in enumerate(QKV):
            block = w[:, j * C:(j + 1) * C].astype(np.float64)
            top = float(np.max(np.abs(block)))
            top = top if math.isfinite(top) and top > 0 else 1.0
            counts, edges = np.histogram(block, bins=bins, range=(-top, top))
            out[f"h{l}.{name}"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return out


def tensor_grad_norms(grad_views: dict) -> dict:
    return {name: float(np.linalg.norm(g.astype(np.float64).ravel())) for name, g in grad_views.items()}


def update_ratios(before: np.ndarray, after: np.ndarray, offsets: dict) -> dict:
    """name -> std(after - before) / std(before) per tensor (None where std(before) is 0)."""
    out = {}
    for name, (a, b, _) in offsets.items():
        s = _std(before[a:b])
        d = _std(after[a:b].astype(np.float64) - before[a:b])
        out[name] = d / s if s > 0 and math.isfinite(d) else None
    return out


class Diagnostics:
    """The records of a run: ``steps``, per-layer ``stats`` (LayerStats), per-tensor ``grad_norm``
    and ``update_ratio`` dicts and weight ``histograms`` (:func:`qkv_histograms`, empty unless
    asked for), each one entry per recorded step."""

    def __init__(self):
        self.steps: list = []
        self.stats: list = []
        self.grad_norm: list = []
        self.update_ratio: list = []
        self.histograms: list = []

    def add(self, step, stats, grad_norm, update_ratio, histograms=None):
        self.steps.append(int(step))
        self.stats.append(stats)
        self.grad_norm.append(grad_norm)
        self.update_ratio.append(update_ratio)
        self.histograms.append(histograms or {})

    def series(self, quantity: str) -> np.ndarray:
        """(recorded steps, layers) array of one per-layer quantity."""
        return np.array([s[quantity] for s in self.stats]) if self.stats else np.zeros((0, 0))

    def to_dict(self) -> dict:
        return {"format": "sigprop.gpt.Diagnostics", "steps": self.steps,
                "stats": [s.to_dict() for s in self.stats], "grad_norm": self.grad_norm,
                "update_ratio": self.update_ratio, "histograms": self.histograms}

    @classmethod
    def from_dict(cls, d) -> "Diagnostics":
        if d.get("format") != "sigprop.gpt.Diagnostics":
            raise ValueError("not a sigprop GPT diagnostics record")
        out = cls()
        hists = d.get("histograms") or [{}] * len(d["steps"])   # absent in records of older runs
        for step, s, g, u, h in zip(d["steps"], d["stats"], d["grad_norm"], d["update_ratio"], hists):
            out.add(step, LayerStats.from_dict(s), g, u, h)
        return out
