"""Per-layer mean-field predictions for a :class:`~sigprop.spec.NetSpec` (:func:`predict`)."""
from __future__ import annotations

import math

import numpy as np

from ..activations import DEFAULT_SATURATION_THRESHOLD
from .maps import _recursions
from .moments import moments_of
from .quadrature import N_GL

def _normal_cdf(x):
    from scipy.special import ndtr
    return ndtr(x)


def predict(spec, c0: float = 0.5, threshold: float = DEFAULT_SATURATION_THRESHOLD):
    """Mean-field predictions, layer by layer, for a network.

    Parameters
    ----------
    spec : NetSpec
        Widths, activation, ``sigma_w``, ``sigma_b`` per layer, ``input_var``.
    c0 : float
        Correlation of the two raw inputs whose pre-activation correlation ``corr`` tracks
        (both with second moment ``input_var``).
    threshold : float
        Saturation threshold (``|tanh(h)| > threshold``); see
        :meth:`~sigprop.activations.Activation.saturation_cutoffs`.

    Returns
    -------
    LayerStats
        ``source="theory"`` with ``q, act_mean, act_sq, act_var, saturated, dead,
        grad_var, corr, chi1`` (``saturated`` is NaN for unbounded activations).
        Exploding or vanishing signals give ``inf``/``nan``/0, never an error.

    Notes
    -----
    Forward: ``q_1 = sigma_w^2 input_var + sigma_b^2``, ``q_{l+1} = sigma_w^2 E[phi(h_l)^2] + sigma_b^2``;
    correlation: ``q12_1 = sigma_w^2 c0 input_var + sigma_b^2``, ``q12_{l+1} = sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2``.
    Backward: ``grad_var[L] = E[phi'(h_L)^2]`` and
    ``grad_var[l] = n_{l+1} (sigma_{w,l+1}^2 / n_l) E[phi'(h_l)^2] grad_var[l+1]`` (the next layer's
    weights carry the gradient). ``chi1[l] = sigma_{w,l}^2 E[phi'(h_l)^2]``.

    Examples
    --------
    >>> from sigprop import NetSpec
    >>> s = predict(NetSpec.uniform(depth=3, width=100, activation="relu", init="kaiming"))
    >>> s.q.round(12).tolist(), s.act_sq.round(12).tolist(), s.dead.tolist()   # Kaiming keeps E[x^2]
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    """
    from ..spec import LayerStats, NetSpec
    if not isinstance(spec, NetSpec):
        raise ValueError(f"predict needs a NetSpec, got {type(spec).__name__}")
    c0 = float(c0)
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0}")
    threshold = float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"saturation threshold must be in (0, 1), got {threshold}")
    rec = _recursions()
    forward, cov, backward, chi = (rec.forward_variance().numeric, rec.covariance_map().numeric,
                                   rec.backward_variance().numeric, rec.chi1().numeric)
    L = spec.depth
    fan_in, widths = spec.fan_in, spec.widths
    out = {k: np.empty(L) for k in ("q", "act_mean", "act_sq", "act_var", "saturated", "dead",
                                    "grad_var", "corr", "chi1")}
    dphi2 = np.empty(L)
    m2_prev, cross_prev = spec.input_var, c0 * spec.input_var
    previous = None                               # (moments, q, c) -> results, reused at a fixed point
    overflowed = None                             # (moments, inf) -> results, reused once q overflowed
    with np.errstate(all="ignore"):
        for l, act in enumerate(spec.activations()):
            moments = moments_of(act)
            sw2, sb2, n_in = spec.sigma_w[l] ** 2, spec.sigma_b[l] ** 2, fan_in[l]
            # q_l = n_in Var(W) E[x^2] + Var(b),  Var(W) = sigma_w^2 / n_in
            q = np.float64(forward(n_in, sw2 / n_in, m2_prev, sb2))
            # q12_l = sigma_w^2 E[x_a x_b] + sigma_b^2
            c = float(np.float64(cov(sw2, cross_prev, sb2)) / q)
            q = float(q)
            if c > 1.0 and c - 1.0 < 1e-12:
                c = 1.0
            if previous is not None and previous[0] is moments and _same(previous[1], q) and _same(previous[2], c, 1e-15):
                mean, m2, d2, cross = previous[3]
            elif not np.isfinite(q):              # overflowed: the limits the integrands give at h = +-inf
                if overflowed is not None and overflowed[0] is moments and overflowed[1] == q:
                    mean, m2, d2 = overflowed[2]  # the same limits again: nothing left to integrate
                else:
                    mean, m2, d2 = (float(moments.mean(q)), float(moments.m2(q)), float(moments.dphi2(q)))
                    if q == math.inf and act.bounds is None:
                        m2 = math.inf
                    overflowed = (moments, q, (mean, m2, d2))
                cross = math.nan
            else:
                mean, m2, d2 = (float(moments.mean(q)), float(moments.m2(q)), float(moments.dphi2(q)))
                cross = moments.kernel_at_scale(q, c, m2, d2) if np.isfinite(c) else math.nan
                if cross is None:    # not (yet) in the scaling regime of an exploding net: quadrature
                    cross = float(moments.kernel(q, q, c))
                previous = (moments, q, c, (mean, m2, d2, cross))
            s = np.sqrt(np.float64(q))                   # numpy division: q = 0 gives inf, not an error
            out["q"][l], out["corr"][l] = q, c
            out["act_mean"][l], out["act_sq"][l] = mean, m2
            out["act_var"][l] = max(m2 - mean * mean, 0.0) if np.isfinite(m2 - mean * mean) else m2 - mean * mean
            cut = act.saturation_cutoffs(threshold)
            # P(h < h_lo) + P(h > h_hi), h ~ N(0, q)
            out["saturated"][l] = math.nan if cut is None else float(_normal_cdf(cut[0] / s) + _normal_cdf(-cut[1] / s))
            # P(h in a dead interval)
            out["dead"][l] = float(sum(_normal_cdf(b / s) - _normal_cdf(a / s) for a, b in act.dead_intervals))
            out["chi1"][l] = float(chi(sw2, d2))
            dphi2[l] = d2
            m2_prev, cross_prev = m2, cross
        # backward: grad_var[L] = E[phi'(h_L)^2] Var(dL/dx_L), Var(dL/dx_L) = 1
        g = dphi2[L - 1]
        out["grad_var"][L - 1] = g
        for l in range(L - 2, -1, -1):
            n_out, n_l = widths[l + 1], widths[l]
            # Var(dL/dh_l) = n_{l+1} Var(W_{l+1}) E[phi'(h_l)^2] Var(dL/dh_{l+1})
            g = float(backward(n_out, spec.sigma_w[l + 1] ** 2 / n_l, dphi2[l], g))
            out["grad_var"][l] = g
    meta = {"c0": c0, "threshold": threshold, "method": "mean-field",
            "quadrature": f"graded Gauss-Legendre, {N_GL} nodes per panel"}
    return LayerStats(out, spec=spec, source="theory", meta=meta)


def _same(a, b, atol=0.0) -> bool:
    """Equal to double precision (a converged fixed point): reuse the layer's integrals."""
    return a == b or (abs(a - b) <= max(4e-16 * max(abs(a), abs(b)), atol))
