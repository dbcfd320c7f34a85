"""Figures without pyplot: the user's matplotlib backend is never changed or used.

A plot function makes its figure with :func:`subplots` (a plain
``matplotlib.figure.Figure``, drawn and saved by the Agg canvas whatever the backend, not
registered with pyplot), or draws on an axes the caller gives (``ax=``) and returns that
axes' figure. Only the ``sigprop`` command picks a backend (Agg) for itself.
"""
from __future__ import annotations


def subplots(nrows=1, ncols=1, figsize=None, ax=None, **kwargs):
    """``(fig, axes)`` like ``pyplot.subplots`` (axes always a 2-d array) without pyplot;
    with ``ax`` given (one panel only), ``(ax.figure, [[ax]])``."""
    import numpy as np
    from matplotlib.figure import Figure
    if ax is not None:
        if nrows * ncols != 1:
            raise ValueError("ax= takes a plot with a single panel")
        return ax.figure, np.array([[ax]])
    layout = kwargs.pop("layout", None)
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def finish(fig, own: bool, rect=None):
    """``tight_layout`` on a figure this module made (a caller's figure is left as it is)."""
    if own and fig.get_layout_engine() is None:
        fig.tight_layout(rect=rect) if rect is not None else fig.tight_layout()
    return fig
