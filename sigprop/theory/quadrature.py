"""Quadrature of Gaussian expectations: one variable ``E[f(u)]``, ``u ~ N(0, q)``, and two
``E[g(u1, u2)]`` for correlated centred pairs, on graded Gauss-Legendre panels.

``E[f(m + sigma Z)]`` is integrated by composite Gauss-Legendre on panels in ``z``: fixed
panels on the Gaussian scale (``|z| <= 12``) plus panels graded geometrically (ratio 2)
towards each kink of the activation, from the activation's own scale (``|h| = 1/4``,
i.e. ``|z| = 1/(4 sigma)``) up to ``|z| = 2``. The integrand is then smooth on every panel
whatever ``q``: at large ``q`` ``tanh(sqrt(q) z)`` becomes a step in ``z``, which plain
Gauss-Hermite resolves slowly, and ReLU's kink at 0 is a panel end. The number of panels
grows with ``log2 q``, not ``q``. Bivariate expectations nest two such rules (the inner
one graded around the kink in ``z2``, which moves with ``z1``).
"""
from __future__ import annotations

import functools
import math

import numpy as np

#: Gauss-Legendre nodes per panel.
N_GL = 10
#: Integration range in z (the N(0,1) mass beyond is 2e-33).
Z_MAX = 12.0
_GAUSS_BREAKS = np.array([-12.0, -9.0, -7.0, -5.5, -4.0, -3.0, -2.0, -1.0, 0.0,
                          1.0, 2.0, 3.0, 4.0, 5.5, 7.0, 9.0, 12.0])
#: Finest graded panel, in units of the activation's scale h (|h| = 1/4 around a kink).
_H_FINEST = 0.25
#: Graded panels stop at |z - z_kink| = 2 (the Gaussian panels take over).
_Z_GRADED = 2.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_CHUNK = 2_000_000   # nodes per vectorised batch (memory bound)


@functools.lru_cache(maxsize=None)
def _gauss_legendre(n: int):
    t, w = np.polynomial.legendre.leggauss(n)
    return t, w


def _normal_rule(m, sigma, kinks=(0.0,), n=N_GL, scale=None):
    """Nodes ``z`` and weights ``w`` (shape ``S + (M,)``) with ``sum w f(m + sigma z) ~ E[f(m + sigma Z)]``.

    ``m`` and ``sigma`` broadcast to ``S``. Panels: the Gaussian-scale ones plus, around each
    kink ``h_k`` of ``f`` (``z_k = (h_k - m)/sigma``), breakpoints ``z_k +- d0 2^j`` with
    ``d0 = 1/(4 scale)`` (``scale`` defaults to ``sigma``; capped below at 1e-15: finer
    structure carries no mass).
    """
    m, sigma = np.broadcast_arrays(np.asarray(m, dtype=float), np.asarray(sigma, dtype=float))
    scale = sigma if scale is None else np.broadcast_to(np.asarray(scale, dtype=float), m.shape)
    shape = m.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig = np.where(sigma > 1e-300, sigma, 1e-300)
        d0 = np.maximum(_H_FINEST / np.where(scale > 1e-300, scale, 1e-300), 1e-15)
        finest = np.nanmin(d0) if d0.size and np.any(np.isfinite(d0)) else _Z_GRADED
        levels = max(0, int(math.ceil(math.log2(_Z_GRADED / finest)))) if finest < _Z_GRADED else 0
        offsets = d0[..., None] * 2.0 ** np.arange(levels)          # S + (levels,)
        parts = [np.broadcast_to(_GAUSS_BREAKS, shape + _GAUSS_BREAKS.shape)]
        for hk in kinks:
            zk = np.clip((hk - m) / sig, -Z_MAX, Z_MAX)
            zk = np.where(np.isfinite(zk), zk, 0.0)[..., None]
            parts += [zk, zk - offsets, zk + offsets]
        breaks = np.sort(np.clip(np.concatenate(parts, axis=-1), -Z_MAX, Z_MAX), axis=-1)
    lo, hi = breaks[..., :-1], breaks[..., 1:]
    half, mid = (hi - lo) / 2.0, (hi + lo) / 2.0
    t, wt = _gauss_legendre(n)
    # z = mid + half t on each panel; weight = half w_t phi(z)
    z = (mid[..., None] + half[..., None] * t).reshape(shape + (-1,))
    w = (half[..., None] * wt).reshape(shape + (-1,)) * np.exp(-0.5 * z * z) / _SQRT_2PI
    return z, w


def _rule_size(sigma, kinks) -> int:
    """Number of nodes :func:`_normal_rule` uses for the finest sigma of a batch."""
    sig = float(np.nanmax(np.asarray(sigma, dtype=float), initial=1e-300))
    d0 = max(_H_FINEST / max(sig, 1e-300), 1e-15) if math.isfinite(sig) else 1e-15
    levels = max(0, int(math.ceil(math.log2(_Z_GRADED / d0)))) if d0 < _Z_GRADED else 0
    return (len(_GAUSS_BREAKS) - 1 + len(kinks) * (2 * levels + 1)) * N_GL


def gaussian_expectation(f, q, kinks=(0.0,)):
    """``E[f(u)]`` for ``u ~ N(0, q)``, vectorised over ``q``.

    Parameters
    ----------
    f : callable
        Vectorised ``f(h)`` (numpy arrays in, arrays out).
    q : float or array
        Variances (``q >= 0``; ``inf`` gives what ``f`` gives at infinity).
    kinks : sequence of float
        Points where ``f`` is not smooth (panel ends); 0 is also where a
        built-in activation changes fastest.

    Returns
    -------
    ndarray of the shape of ``q``

    Examples
    --------
    >>> import numpy as np
    >>> v = gaussian_expectation(lambda h: h ** 2, np.array([0.5, 2.0]))
    >>> np.allclose(v, [0.5, 2.0], rtol=1e-13)
    True
    """
    q = np.asarray(q, dtype=float)
    flat = q.reshape(-1)
    out = np.empty(flat.shape)
    per = max(1, _CHUNK // max(_rule_size(np.sqrt(np.abs(flat)), kinks), 1))
    with np.errstate(all="ignore"):
        for i in range(0, flat.size, per):
            s = np.sqrt(flat[i:i + per])
            z, w = _normal_rule(0.0, s, kinks)
            out[i:i + per] = np.sum(w * f(s[:, None] * z), axis=-1)
    return out.reshape(q.shape)


def bivariate_expectation(g, q1, q2, c, kinks=(0.0,), kinked=True, theta=None):
    """``E[g(u1, u2)]`` for centred ``(u1, u2)`` with variances ``q1, q2`` and correlation ``c``.

    ``u1 = sqrt(q1) z1``, ``u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2)``: an outer rule in
    ``z1`` (graded at the kinks on the finer of the two scales) and, for each ``z1``, an
    inner rule in ``z2`` graded around the kinks of ``u2`` (which move with ``z1``).
    ``g(h1, h2)`` receives ``h1`` of shape ``(..., n1, 1)`` and ``h2`` of shape
    ``(..., n1, n2)``, so a factor that depends on ``h1`` only is evaluated once per node.
    ``kinked=False`` says ``g`` is smooth at ``kinks`` (they only mark where it changes
    fastest); a kink smoothed by the inner integral leaves a transition of width
    ``sqrt(1 - c^2)/|c|`` in ``z1``, which the outer rule then resolves.

    ``theta`` (optional, same shape as ``c``) gives the angle ``c = cos(theta)`` directly,
    so that ``sqrt(1 - c^2) = sin(theta)`` keeps its digits when ``c`` rounds to 1.

    Examples
    --------
    >>> v = bivariate_expectation(lambda a, b: a * b, 2.0, 0.5, 0.3)   # covariance
    >>> abs(float(v) - 0.3) < 1e-13
    True
    """
    if theta is not None:
        c = np.cos(np.asarray(theta, dtype=float))
    q1, q2, c = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q1, q2, c)))
    shape = q1.shape
    q1, q2, c = (v.reshape(-1) for v in (q1, q2, c))
    out = np.empty(q1.shape)
    with np.errstate(all="ignore"):
        s1, s2 = np.sqrt(q1), np.sqrt(q2)
        c = np.clip(c, -1.0, 1.0)
        if theta is None:
            r = np.sqrt(np.maximum(1.0 - c * c, 0.0))
        else:
            r = np.abs(np.broadcast_to(np.sin(np.asarray(theta, dtype=float)), shape).reshape(-1))
        s_outer = np.maximum(s1, s2 * np.abs(c))
        if kinked and kinks:
            # the inner integral smooths a kink of u2 over sqrt(1 - c^2)/|c| in z1
            s_outer = np.maximum(s_outer, np.where(r > 0, np.abs(c) / np.maximum(r, 1e-300), 0.0))
        n1 = _rule_size(s_outer, kinks)
        n2 = _rule_size(s2 * r, kinks)
        per = max(1, _CHUNK // (n1 * n2))
        for i in range(0, q1.size, per):
            sl = slice(i, i + per)
            z1, w1 = _normal_rule(0.0, s1[sl], kinks, scale=s_outer[sl])       # (B, n1)
            m = (s2[sl] * c[sl])[:, None] * z1                                 # u2 = m + sigma z2
            sig = np.broadcast_to((s2[sl] * r[sl])[:, None], m.shape)
            z2, w2 = _normal_rule(m, sig, kinks)                               # (B, n1, n2)
            h1 = (s1[sl][:, None] * z1)[..., None]
            h2 = m[..., None] + sig[..., None] * z2
            inner = np.sum(w2 * g(h1, h2), axis=-1)                            # (B, n1)
            out[sl] = np.sum(w1 * inner, axis=-1)
    return out.reshape(shape)

