"""The order-to-chaos phase diagram as a figure (a function of a theory.PhaseDiagram)."""
from __future__ import annotations

import numpy as np


def plot_phase_diagram(pd, edge_sigma_w=None, points=None):
    """Two panels over (sigma_w, sigma_b): the correlation depth scale xi_c and the correlation
    after ``pd.depth`` layers, with the edge of chaos (chi_1 = 1) drawn on both.

    Parameters
    ----------
    pd : sigprop.theory.PhaseDiagram
    edge_sigma_w : array, optional
        sigma_w on the edge of chaos for each ``pd.sigma_b`` (from ``theory.edge_of_chaos``);
        when None the chi_1 = 1 contour of ``pd.chi1`` is drawn instead.
    points : list of dict, optional
        Monte Carlo points ``{"sigma_w", "sigma_b", "c_depth"}``: drawn as circles filled with the
        measured correlation on the same colour scale as the theory map (agreement = no visible ring).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm

    from ._figure import subplots

    sw, sb = np.asarray(pd.sigma_w), np.asarray(pd.sigma_b)
    fig, axes = subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    axes = axes[0]
    xi = np.where(np.isfinite(pd.xi_c) & (pd.xi_c > 0), pd.xi_c, np.nan)
    m0 = axes[0].pcolormesh(sw, sb, xi, shading="auto", cmap="magma",
                            norm=LogNorm(vmin=max(np.nanmin(xi), 0.3), vmax=min(np.nanmax(xi), 1e3)))
    fig.colorbar(m0, ax=axes[0], label=r"correlation depth scale $\xi_c$ (layers)")
    axes[0].set_title(r"$\xi_c$: how deep correlations survive")
    m1 = axes[1].pcolormesh(sw, sb, pd.c_depth, shading="auto", cmap="viridis", vmin=-0.05, vmax=1.0)
    fig.colorbar(m1, ax=axes[1], label=f"correlation after {pd.depth} layers (c0 = {pd.c0:g})")
    axes[1].set_title(f"$c_{{{pd.depth}}}$: theory map, Monte Carlo circles")
    for ax in axes:
        if edge_sigma_w is not None:
            ax.plot(edge_sigma_w, sb, color="white", lw=2.2, ls="--", label=r"edge of chaos $\chi_1 = 1$")
        else:
            ax.contour(sw, sb, pd.chi1, levels=[1.0], colors="white", linewidths=2.2, linestyles="--")
        ax.set_xlabel(r"$\sigma_w$")
        ax.set_ylabel(r"$\sigma_b$")
        ax.set_xlim(sw.min(), sw.max())
        ax.set_ylim(sb.min(), sb.max())
        ax.text(0.04, 0.92, "ordered", transform=ax.transAxes, color="white", fontsize=11, weight="bold")
        ax.text(0.80, 0.06, "chaotic", transform=ax.transAxes, color="white", fontsize=11, weight="bold")
    if points:
        px = [p["sigma_w"] for p in points]
        py = [p["sigma_b"] for p in points]
        pc = [p["c_depth"] for p in points]
        axes[1].scatter(px, py, c=pc, cmap="viridis", vmin=-0.05, vmax=1.0, s=160, edgecolors="red",
                        linewidths=1.5, label="Monte Carlo (fill = measured)")
        axes[0].scatter(px, py, facecolors="none", edgecolors="red", s=160, linewidths=1.5)
    if edge_sigma_w is not None or points:
        axes[1].legend(loc="upper right", fontsize=8, framealpha=0.8)
    fig.suptitle(f"{pd.activation}: order-to-chaos phase diagram (mean-field theory, depth {pd.depth})")
    return fig
