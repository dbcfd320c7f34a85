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
    and ``update_ratio`` dicts, each one entry per recorded step."""

    def __init__(self):
        self.steps: list = []
        self.stats: list = []
        self.grad_norm: list = []
        self.update_ratio: list = []

    def add(self, step, stats, grad_norm, update_ratio):
        self.steps.append(int(step))
        self.stats.append(stats)
        self.grad_norm.append(grad_norm)
        self.update_ratio.append(update_ratio)

    def series(self, quantity: str) -> np.ndarray:
        """(recorded steps, layers) array of one per-layer quantity."""
        return np.array([s[quantity] for s in self.stats]) if self.stats else np.zeros((0, 0))

    def to_dict(self) -> dict:
        return {"format": "sigprop.gpt.Diagnostics", "steps": self.steps,
                "stats": [s.to_dict() for s in self.stats], "grad_norm": self.grad_norm,
                "update_ratio": self.update_ratio}

    @classmethod
    def from_dict(cls, d) -> "Diagnostics":
        if d.get("format") != "sigprop.gpt.Diagnostics":
            raise ValueError("not a sigprop GPT diagnostics record")
        out = cls()
        for step, s, g, u in zip(d["steps"], d["stats"], d["grad_norm"], d["update_ratio"]):
            out.add(step, LayerStats.from_dict(s), g, u)
        return out
