"""THE signal-propagation picture: per-layer quantities vs depth, theory as lines and
measurements as points with error bars, several init schemes in one figure."""
from __future__ import annotations

import numpy as np

#: Quantities drawn on a log axis when all their values are positive (variances, moments).
LOG_QUANTITIES = ("q", "act_sq", "act_var", "grad_var", "chi1", "act_lognorm_var", "grad_lognorm_var")
_TITLES = {"q": "pre-activation second moment q", "act_var": "activation variance", "act_sq": "activation 2nd moment",
           "act_mean": "activation mean", "grad_var": "gradient variance Var(dL/dh)", "corr": "pre-activation correlation",
           "saturated": "saturated fraction", "dead": "dead fraction", "chi1": "chi1 = sigma_w^2 E[phi'^2]",
           "act_lognorm_var": "Var log ||x_l||^2", "grad_lognorm_var": "Var log ||dL/dh_l||^2"}


def _label(stats) -> str:
    spec = stats.spec
    if spec is None:
        return stats.source
    if spec.init and spec.init != "custom":
        return spec.init
    return f"sigma_w={spec.sigma_w[0]:.3g}"


def plot_layers(*stats, quantities=("act_var", "grad_var"), logy="auto", title=None, labels=None, ncols=None):
    """Per-layer quantities vs depth for any number of LayerStats.

    Parameters
    ----------
    *stats : LayerStats
        Theory (drawn as lines) and measurements (``simulation`` / ``training``: points with
        error bars of +-1 standard error). Stats with the same label (the spec's init
        scheme, or ``labels``) share a colour, so theory and measurement of one init pair up.
    quantities : sequence of str
        One panel per quantity (those a LayerStats lacks are skipped for it).
    logy : "auto", bool
        Log y axis; "auto" uses it for variance-like quantities whose values are all positive.
    title : str, optional
    labels : sequence of str, optional
        One label per LayerStats (default: ``spec.init``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from sigprop import LayerStats
    >>> t = LayerStats({"act_var": [1.0, 0.5, 0.25], "grad_var": [1.0, 1.0, 1.0]}, source="theory")
    >>> fig = plot_layers(t)
    >>> len(fig.axes)
    2
    """
    import matplotlib
    import matplotlib.ticker

    from ..spec import LayerStats
    from ._figure import subplots

    if not stats:
        raise ValueError("plot_layers needs at least one LayerStats")
    for s in stats:
        if not isinstance(s, LayerStats):
            raise ValueError(f"plot_layers takes LayerStats, got {type(s).__name__}")
    if isinstance(quantities, str):
        quantities = (quantities,)
    quantities = [q for q in quantities if any(q in s.values for s in stats)]
    if not quantities:
        raise ValueError("none of the requested quantities is in the given LayerStats")
    if labels is None:
        labels = [_label(s) for s in stats]
    elif len(labels) != len(stats):
        raise ValueError(f"labels needs one entry per LayerStats ({len(stats)}), got {len(labels)}")
    names = list(dict.fromkeys(labels))
    colours = {n: matplotlib.colormaps["tab10"](i % 10) for i, n in enumerate(names)}
    ncols = ncols or min(len(quantities), 3)
    nrows = -(-len(quantities) // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(5.2 * ncols + 1.8, 3.9 * nrows))
    for ax in axes.ravel()[len(quantities):]:
        ax.set_visible(False)
    for ax, q in zip(axes.ravel(), quantities):
        positive = True
        for s, lab in zip(stats, labels):
            if q not in s.values:
                continue
            y = np.asarray(s[q], dtype=float)
            layers = s.layers
            ok = np.isfinite(y)
            positive &= bool(np.all(y[ok] > 0))
            c = colours[lab]
            if s.source == "theory":
                ax.plot(layers[ok], y[ok], "-", color=c, lw=1.8, label=f"{lab} (theory)")
            else:
                se = s.se.get(q)
                err = None if se is None else np.where(np.isfinite(se[ok]), se[ok], 0.0)
                ax.errorbar(layers[ok], y[ok], yerr=err, fmt="o", ms=3.5, color=c, capsize=2, elinewidth=1,
                            label=f"{lab} ({s.source})")
            if not np.all(ok):  # mark overflow / nan layers on the x axis
                ax.plot(layers[~ok], np.full((~ok).sum(), np.nan), "x", color=c)
        use_log = (q in LOG_QUANTITIES and positive) if logy == "auto" else bool(logy)
        if use_log:
            ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(_TITLES.get(q, q), fontsize=10)
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    right = 1.0 - 1.8 / (5.2 * ncols + 1.8)   # keep a column for the legend inside the figure
    fig.tight_layout(rect=(0, 0, right, 1))
    # one legend beside the panels: one colour per init, line = theory, points = measured
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=colours[n], lw=1.8, marker="o", ms=3.5, label=n) for n in names]
    handles += [Line2D([], [], color="k", lw=1.8, label="theory"),
                Line2D([], [], color="k", lw=0, marker="o", ms=3.5, label="measured (+-1 SE)")]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=8, frameon=False)
    return fig
