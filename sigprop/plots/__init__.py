"""Figures as functions of results (STYLE 11): each takes LayerStats (or training
diagnostics) and returns a matplotlib Figure. matplotlib is imported inside the
functions, so ``import sigprop`` stays fast; figures are made without pyplot
(:mod:`sigprop.plots._figure`), so the user's backend, ``plt.show()`` and notebooks
are left alone; single-panel plots also draw on a given ``ax=``."""


def plot_layers(*stats, **kwargs):
    """Per-layer quantities vs depth, theory lines and measured points (see :mod:`sigprop.plots.layers`)."""
    from .layers import plot_layers as _plot_layers
    return _plot_layers(*stats, **kwargs)
