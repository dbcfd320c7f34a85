"""Measure a GPT's signal at initialisation over many random networks (float64 numpy).

The same quantities as :func:`sigprop.theory.transformer.predict_transformer`, measured on
``n_networks`` independent initialisations of ``config`` on one token batch, with standard
errors over the networks (as :func:`sigprop.simulate.run`). The pass is written here in
numpy (float64, the layout of :mod:`sigprop.gpt.net`, checked against it in the tests) because
it needs the gradient with respect to each block's input for an arbitrary output gradient,
which the training engine does not expose; the backward is checked by finite differences.

Examples
--------
>>> import numpy as np
>>> from sigprop.gpt.model import GPTConfig
>>> from sigprop.gpt.init_stats import measure_at_init
>>> cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11)
>>> idx = np.arange(16).reshape(2, 8) % 11
>>> m = measure_at_init(cfg, idx, n_networks=3, seed=0)
>>> m.blocks.depth, sorted(m.blocks.se)[:2]
(2, ['attn_out_var', 'entropy'])
"""
from __future__ import annotations

import math

import numpy as np

from .model import init_params


def _layernorm(x, eps):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    return xc * rstd, rstd


def _layernorm_backward(du, u, rstd):
    # u = (x - mean) rstd (gain 1):  dx = rstd (du - mean(du) - u mean(du u))
    return rstd * (du - du.mean(-1, keepdims=True) - u * (du * u).mean(-1, keepdims=True))


def _heads(x, H):
    B, T, C = x.shape
    return x.reshape(B, T, H, C // H).transpose(0, 2, 1, 3)


def _merge(x):
    B, H, T, hs = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * hs)


def forward_backward(p, config, idx, g_out, x0=None, record=None):
    """One network's forward on ``idx`` (B, T) and the backward of ``sum(g_out * x_L)``.

    Parameters
    ----------
    p : Params (float64) or dict of arrays
    config : GPTConfig
    idx : array (B, T)
    g_out : array (B, T, d)
        Gradient at the last block's output.
    x0 : array (B, T, d), optional
        Replaces the embedding (for finite-difference checks).
    record : dict, optional
        Filled with the per-block statistics (see :func:`measure_at_init`).

    Returns
    -------
    (x_L, logits, grads) with ``grads[l]`` the gradient at block ``l``'s input (B, T, d).
    """
    from ..activations import get_activation
    act = get_activation(config.activation)
    L, H, eps = config.n_layer, config.n_head, config.ln_eps
    B, T = idx.shape
    d = config.n_embd
    hs = d // H
    x = p["wte"][idx] + p["wpe"][:T][None] if x0 is None else np.array(x0, dtype=float)
    mask = np.tril(np.ones((T, T), dtype=bool))
    cache = []
    rec = record if record is not None else {}
    for name in ("resid_var", "q_var", "k_var", "v_var", "logit_var", "mlp_pre_var", "gelu_mean", "gelu_sq"):
        rec[name] = np.zeros(L)
    rec["entropy_t"] = np.zeros((L, T))
    rec["attn_out_var_t"] = np.zeros((L, T))
    for l in range(L):
        h = f"h{l}."
        rec["resid_var"][l] = np.mean(x * x)
        u1, rstd1 = _layernorm(x, eps)
        qkv = u1 @ p[h + "qkv_w"] + p[h + "qkv_b"]
        q, k, v = (_heads(qkv[..., i * d:(i + 1) * d], H) for i in range(3))
        rec["q_var"][l], rec["k_var"][l], rec["v_var"][l] = (np.mean(a * a) for a in (q, k, v))
        z = q @ np.swapaxes(k, -1, -2) / math.sqrt(hs)
        rec["logit_var"][l] = np.mean(z[..., mask] ** 2)
        zm = np.where(mask, z, -np.inf)
        e = np.exp(zm - zm.max(-1, keepdims=True))
        P = e / e.sum(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.sum(np.where(P > 0, P * np.log(P), 0.0), axis=-1)    # (B, H, T)
        rec["entropy_t"][l] = ent.mean(axis=(0, 1))
        y = _merge(P @ v)
        o = y @ p[h + "proj_w"] + p[h + "proj_b"]
        rec["attn_out_var_t"][l] = np.mean(o * o, axis=(0, 2))
        a = x + o
        u2, rstd2 = _layernorm(a, eps)
        pre = u2 @ p[h + "fc_w"] + p[h + "fc_b"]
        f = act.phi(pre)
        rec["mlp_pre_var"][l] = np.mean(pre * pre)
        rec["gelu_mean"][l] = np.mean(f)
        rec["gelu_sq"][l] = np.mean(f * f)
        cache.append((u1, rstd1, q, k, v, P, u2, rstd2, pre, f))
        x = a + f @ p[h + "fcproj_w"] + p[h + "fcproj_b"]
    xL = x
    uf, _ = _layernorm(xL, eps)
    logits = uf @ p["wte"].T
    rec["final_resid_var"] = float(np.mean(xL * xL))
    rec["head_logit_var"] = float(np.mean(logits.var(axis=-1)))
    # backward of sum(g_out * x_L)
    g = np.array(g_out, dtype=float)
    grads = [None] * L
    for l in reversed(range(L)):
        h = f"h{l}."
        u1, rstd1, q, k, v, P, u2, rstd2, pre, f = cache[l]
        gf = g @ p[h + "fcproj_w"].T
        gpre = gf * act.dphi(pre)
        ga = g + _layernorm_backward(gpre @ p[h + "fc_w"].T, u2, rstd2)
        gy = _heads(ga @ p[h + "proj_w"].T, H)
        dv = np.swapaxes(P, -1, -2) @ gy
        dP = gy @ np.swapaxes(v, -1, -2)
        dz = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
        dq = dz @ k / math.sqrt(hs)
        dk = np.swapaxes(dz, -1, -2) @ q / math.sqrt(hs)
        gqkv = np.concatenate([_merge(dq), _merge(dk), _merge(dv)], axis=-1)
        g = ga + _layernorm_backward(gqkv @ p[h + "qkv_w"].T, u1, rstd1)
        grads[l] = g
    return xL, logits, grads


def measure_at_init(config, idx, targets=None, n_networks: int = 16, seed: int = 0):
    """The init statistics of ``n_networks`` random GPTs on one token batch, with standard errors.

    Parameters
    ----------
    config : GPTConfig
        Any dtype; the measurement runs in float64.
    idx : array (B, T) of int
    targets : array (B, T), optional
        For the loss (else the loss is NaN).
    n_networks : int
        Independent initialisations (>= 2); network ``i`` draws its parameters and its
        unit-variance output gradient from ``SeedSequence(seed).spawn(n)[i]``.
    seed : int

    Returns
    -------
    TransformerStats
        ``source="simulation"``; ``blocks`` carry standard errors over networks.
    """
    from ..spec import LayerStats
    from ..theory.transformer import BLOCK_QUANTITIES, TransformerStats

    if isinstance(n_networks, bool) or not isinstance(n_networks, (int, np.integer)) or n_networks < 2:
        raise ValueError(f"n_networks must be an integer >= 2, got {n_networks!r}")
    idx = np.asarray(idx)
    if idx.ndim != 2 or idx.shape[1] > config.block_size:
        raise ValueError(f"idx must have shape (batch, T <= {config.block_size}), got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= config.vocab_size):
        raise ValueError(f"token ids must be in [0, {config.vocab_size})")
    cfg = config.replace(dtype="float64")
    B, T = idx.shape
    per = {k: [] for k in BLOCK_QUANTITIES}
    per_t = {"entropy": [], "attn_out_var": []}
    head = {"final_resid_var": [], "logit_var": [], "loss": []}
    for child in np.random.SeedSequence(seed).spawn(int(n_networks)):
        rng = np.random.default_rng(child)
        p = init_params(cfg, rng=rng)
        g_out = rng.standard_normal((B, T, cfg.n_embd))
        rec = {}
        _, logits, grads = forward_backward(p, cfg, idx, g_out, record=rec)
        for k in ("resid_var", "q_var", "k_var", "v_var", "logit_var", "mlp_pre_var", "gelu_mean", "gelu_sq"):
            per[k].append(rec[k])
        per["entropy"].append(rec["entropy_t"].mean(1))
        per["attn_out_var"].append(rec["attn_out_var_t"].mean(1))
        per["grad_var"].append(np.array([np.mean(g * g) for g in grads]))
        per_t["entropy"].append(rec["entropy_t"])
        per_t["attn_out_var"].append(rec["attn_out_var_t"])
        head["final_resid_var"].append(rec["final_resid_var"])
        head["logit_var"].append(rec["head_logit_var"])
        if targets is not None:
            zmax = logits.max(-1, keepdims=True)
            lse = np.log(np.exp(logits - zmax).sum(-1)) + zmax[..., 0]
            head["loss"].append(float(np.mean(lse - np.take_along_axis(logits, np.asarray(targets)[..., None],
                                                                       -1)[..., 0])))
        else:
            head["loss"].append(math.nan)
    n = int(n_networks)

    def mean_se(a):
        a = np.asarray(a, dtype=float)
        return a.mean(0), a.std(0, ddof=1) / math.sqrt(n)
    vals, ses = {}, {}
    for k in BLOCK_QUANTITIES:
        vals[k], ses[k] = mean_se(per[k])
    pos, pos_se = {}, {}
    for k in per_t:
        pos[k], pos_se[k] = mean_se(per_t[k])
    hv, hse = {}, {}
    for k in head:
        m, s = mean_se(head[k])
        hv[k], hse[k] = float(m), float(s)
    meta = {"n_networks": n, "seed": seed, "config": config.to_dict(), "batch": B, "T": T}
    blocks = LayerStats(vals, se=ses, source="simulation", seed=seed, meta=meta)
    return TransformerStats(blocks, pos, pos_se, hv, hse, meta)
