"""Figures of a character-MLP training run: functions of :class:`~sigprop.charmlp.Diagnostics`
(or of parameters) that return a matplotlib Figure.

Examples
--------
>>> from sigprop.charmlp import TrainConfig, train
>>> from sigprop.plots.training import plot_loss
>>> result = train(TrainConfig(steps=50, width=8, diag_every=25), words=["ab", "ba", "abba"], progress=False)
>>> fig = plot_loss(result.diagnostics)
>>> len(fig.axes)
1
"""
from __future__ import annotations

import numpy as np


from ._figure import finish, subplots


def _record_index(diag, step):
    if not diag.steps:
        raise ValueError("the diagnostics hold no recorded step")
    if step is None:
        return len(diag.steps) - 1
    if step not in diag.steps:
        raise ValueError(f"no diagnostics at step {step}; recorded steps: {diag.steps[0]} ... {diag.steps[-1]}")
    return diag.steps.index(step)


def plot_activation_histograms(diag, step=None, title=None, ax=None):
    """Histogram of every hidden layer's activations at a recorded step (default: the last),
    with mean, std and % saturated in the legend (makemore's per-layer histogram figure);
    drawn on ``ax`` if given. Returns the Figure."""
    i = _record_index(diag, step)
    stats, hist, edges = diag.stats[i], diag.hist[i], np.asarray(diag.hist_edges)
    centers = (edges[:-1] + edges[1:]) / 2
    fig, axes = subplots(figsize=(9, 4), ax=ax)
    own, ax = ax is None, axes[0, 0]
    for l in range(hist.shape[0]):
        density = hist[l] / max(hist[l].sum(), 1) / np.diff(edges)
        label = f"layer {l + 1}: mean {stats['act_mean'][l]:+.2f}, std {stats['act_std'][l]:.2f}"
        if "saturated" in stats.values:
            label += f", saturated {100 * stats['saturated'][l]:.1f}%"
        if "saturated" not in stats.values and "dead" in stats.values:
            label += f", dead {100 * stats['dead'][l]:.1f}%"
        ax.plot(centers, density, label=label)
    ax.set_xlabel("activation x = phi(h)")
    ax.set_ylabel("density")
    ax.set_title(title or f"activation distribution, step {diag.steps[i]}")
    ax.legend(fontsize=8)
    return finish(fig, own)


def plot_layer_bars(stats, title=None):
    """Bars per layer of a LayerStats: activation std, and % saturated (or % dead)."""
    layers = np.arange(1, stats.depth + 1)
    second = "saturated" if "saturated" in stats.values else "dead"
    fig, axes = subplots(1, 2, figsize=(9, 3.5))
    axes = axes[0]
    std = stats["act_std"] if "act_std" in stats.values else np.sqrt(stats["act_var"])
    axes[0].bar(layers, std, color="C0")
    axes[0].set_ylabel("activation std")
    axes[1].bar(layers, 100 * stats[second], color="C3")
    axes[1].set_ylabel(f"% {second}")
    for ax in axes:
        ax.set_xlabel("layer")
        ax.set_xticks(layers)
    fig.suptitle(title or f"per-layer statistics, step {stats.meta.get('step', '?')}")
    return finish(fig, True)


def plot_training_curves(diag, title=None):
    """Over training: weight-gradient std and activation std per layer, and the update:data
    ratio log10(std(lr grad) / std(W)) of every 2-d parameter with the 1e-3 guide line."""
    fig, axes = subplots(1, 3, figsize=(15, 4))
    axes = axes[0]
    steps, gstd = diag.series("wgrad_std")
    _, astd = diag.series("act_std")
    for l in range(gstd.shape[1]):
        axes[0].plot(steps, gstd[:, l], label=f"W{l + 1}")
        axes[1].plot(steps, astd[:, l], label=f"layer {l + 1}")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("std(dL/dW)")
    axes[1].set_ylabel("activation std")
    _, ud = diag.param_series("update_ratio")
    for name, v in ud.items():
        axes[2].plot(steps, v, label=name)
    axes[2].axhline(-3.0, color="k", ls="--", lw=1, label="1e-3")
    axes[2].set_ylabel("log10 update:data ratio")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle(title or "training diagnostics")
    return finish(fig, True)


def plot_loss(diag, window=1000, title=None, reference=None, ax=None):
    """Minibatch loss per step (faint) and its mean over windows of ``window`` steps; an
    optional horizontal ``reference`` (e.g. ln 27); drawn on ``ax`` if given. Returns the Figure."""
    losses = np.asarray(diag.losses)
    fig, axes = subplots(figsize=(8, 4), ax=ax)
    own, ax = ax is None, axes[0, 0]
    steps = np.arange(len(losses))
    ax.plot(steps, losses, color="C0", alpha=0.15, lw=0.5, label="minibatch")
    w = max(1, min(window, len(losses) // 10 or 1))
    n = len(losses) // w
    if n:
        ax.plot(steps[: n * w].reshape(n, w).mean(axis=1), losses[: n * w].reshape(n, w).mean(axis=1),
                color="C0", lw=2, label=f"mean of {w} steps")
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=f"{reference:.4f}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(title or "loss")
    ax.legend()
    return finish(fig, own)


def plot_weight_histograms(params, title=None, ax=None):
    """Histograms of every 2-d parameter (C, W1 ... W_out) of a :class:`~sigprop.charmlp.Params`;
    drawn on ``ax`` if given. Returns the Figure."""
    arrays = params.arrays()
    fig, axes = subplots(figsize=(9, 4), ax=ax)
    own, ax = ax is None, axes[0, 0]
    for name in params.model.weight_names():
        w = np.asarray(arrays[name], dtype=float).ravel()
        counts, edges = np.histogram(w, bins=80)
        ax.plot((edges[:-1] + edges[1:]) / 2, counts / counts.sum() / np.diff(edges),
                label=f"{name} {tuple(arrays[name].shape)}: std {w.std():.3g}")
    ax.set_xlabel("weight value")
    ax.set_ylabel("density")
    ax.set_title(title or "weight distributions")
    ax.legend(fontsize=8)
    return finish(fig, own)
