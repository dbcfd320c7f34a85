"""Figures as functions of results (STYLE 11): each takes LayerStats (or training
diagnostics) and returns a matplotlib Figure. matplotlib is imported inside the
functions with the Agg backend, so ``import sigprop`` stays fast and headless."""


def plot_layers(*stats, **kwargs):
    """Per-layer quantities vs depth, theory lines and measured points (see :mod:`sigprop.plots.layers`)."""
    from .layers import plot_layers as _plot_layers
    return _plot_layers(*stats, **kwargs)
