"""Per-layer bars of measured quantities with the theory prediction marked on each bar."""
from __future__ import annotations

import numpy as np


def plot_bars_with_theory(measured, theory, labels, quantities=("act_std", "saturated"), title=None):
    """Grouped bars per layer: one colour per case (``measured[i]``, labelled ``labels[i]``),
    error bars from the measurement's standard errors, and the theory value of the same case
    as a black tick on each bar.

    Parameters
    ----------
    measured, theory : list of LayerStats (same length, same depth per pair)
    labels : list of str
    quantities : names; ``act_std`` is taken as sqrt(act_var) where absent, fractions are shown in %.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ._figure import finish, subplots

    def get(stats, q):
        if q == "act_std" and "act_std" not in stats.values:
            v = np.sqrt(stats["act_var"])
            se = stats.se.get("act_var")
            return v, (None if se is None else se / (2 * np.where(v > 0, v, np.nan)))
        return stats[q], stats.se.get(q)

    n = len(measured)
    fig, axes = subplots(1, len(quantities), figsize=(5.5 * len(quantities), 3.8))
    for ax, q in zip(axes[0], quantities):
        pct = q in ("saturated", "dead")
        scale = 100.0 if pct else 1.0
        width = 0.8 / n
        for i, (m, t, lab) in enumerate(zip(measured, theory, labels)):
            layers = np.arange(1, m.depth + 1)
            x = layers - 0.4 + width * (i + 0.5)
            v, se = get(m, q)
            ax.bar(x, scale * v, width=width * 0.95, color=f"C{i}", alpha=0.8, label=f"{lab} (measured)",
                   yerr=None if se is None else scale * se, capsize=2)
            tv, _ = get(t, q)
            ax.scatter(x, scale * tv, marker="_", s=300, color="k", zorder=3,
                       label="theory" if i == 0 else None)
        ax.set_xticks(np.arange(1, measured[0].depth + 1))
        ax.set_xlabel("layer")
        ax.set_ylabel(f"% {q}" if pct else q.replace("_", " "))
        ax.set_ylim(top=ax.get_ylim()[1] * 1.22)  # room for the legend above the bars
        ax.legend(fontsize=7, loc="upper center", ncol=n + 1)
    if title:
        fig.suptitle(title)
    return finish(fig, True)
