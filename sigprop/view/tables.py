"""Interpolation tables of the Gaussian expectations the page's JavaScript recursion needs.

For an activation ``phi`` and ``u ~ N(0, q)`` the per-layer recursion of
:func:`sigprop.theory.predict` needs ``E[phi(u)^2]`` (the q-map), ``E[phi'(u)^2]``
(chi_1 and the backward pass), ``Var[phi(u)]`` (the activation-variance panel) and
the correlation kernel ``E[phi(u1) phi(u2)]`` at equal variances and correlation
``c``. All of them come from :mod:`sigprop.theory` (its quadrature and the closed
forms sympy derived): :func:`~sigprop.theory.q_map`, :func:`~sigprop.theory.chi1`,
:func:`~sigprop.theory.gaussian_expectation` and :func:`~sigprop.theory.c_map`.

Grids and interpolation
-----------------------
* One-variable tables: ``log E[phi^2]``, ``log E[phi'^2]``, ``log Var[phi]`` on a
  uniform grid in ``x = log q``, ``q`` in ``[1e-12, 1e12]`` (:data:`PER_DECADE_1D` nodes
  per decade); beyond the ends a power law with the end slope snapped to a multiple of
  1/2 (Gaussian moments behave as such powers at ``q -> 0`` and ``q -> inf``).
* The correlation kernel as the c-map at ``sigma_w = 1, sigma_b = 0``,
  ``k(q, c) = E[phi(u1) phi(u2)] / E[phi(u)^2]`` (odd activations store ``k / c``, which
  keeps the relative accuracy of a correlation that decays to 0, and is even in ``c``)
  on a uniform grid in ``(log q, v)`` for each sign of ``c`` (one half for odd ``phi``):
  ``|c| = cos(theta)``, ``theta = sinh(v W) / s``, ``s = sqrt(1 + q)``,
  ``W = asinh(pi s / 2)``, ``v`` in ``[0, 1]`` (``theta`` in ``[0, pi/2]``). The angle is
  resolved on the scale ``1/sqrt(q)`` on which a saturating ``phi(sqrt(q) z)`` changes as
  ``|c| -> 1``, and the stored value is even in ``v`` (it depends on ``cos theta``), so
  stencils reflect at ``v = 0``.
  Homogeneous activations (linear, ReLU, leaky ReLU) have one ``q`` column; the others
  cover ``q`` in :data:`KERNEL_Q` (below: the value at the lower end, an error of order
  ``q``; above: the page flags the correlation as outside the table).
* Interpolation: 6-point Lagrange (degree 5) on the uniform grids, the stencil clamped
  inside the grid. :func:`interpolation_error` measures the error where it is largest,
  at cell midpoints, against direct evaluation.

The JavaScript in ``page.js`` runs the same interpolation on these tables.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np

from .. import theory
from ..activations import get_activation

#: The activations the page covers (every built-in family with its default parameters).
ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "erf", "gelu", "selu", "softplus", "swish")
#: q range of the one-variable tables (power law beyond).
MOMENT_Q = (1e-12, 1e12)
PER_DECADE_1D = 16
#: q range of the correlation-kernel table for q-dependent activations.
KERNEL_Q = (1e-8, 1e6)
PER_DECADE_2D = 12
N_V = 49
#: Points per Lagrange stencil.
STENCIL = 6
_VERSION = 1


def _grid(lo, hi, per_decade):
    x0, x1 = math.log(lo), math.log(hi)
    h = math.log(10.0) / per_decade
    n = int(round((x1 - x0) / h)) + 1
    return x0, h, n


def theta_of(q, v):
    """Angle ``theta`` of the table coordinate ``v`` at variance ``q`` (see the module docstring)."""
    s = np.sqrt(1.0 + np.asarray(q, dtype=float))
    return np.sinh(np.asarray(v, dtype=float) * np.arcsinh(math.pi / 2 * s)) / s


def v_of(q, theta):
    """Inverse of :func:`theta_of`."""
    s = np.sqrt(1.0 + np.asarray(q, dtype=float))
    return np.arcsinh(np.asarray(theta, dtype=float) * s) / np.arcsinh(math.pi / 2 * s)


def is_odd(act) -> bool:
    """``phi(-h) = -phi(h)`` (checked numerically on a grid)."""
    h = np.linspace(0.05, 6.0, 40)
    with np.errstate(all="ignore"):
        return bool(np.allclose(act.phi(-h), -act.phi(h), rtol=1e-13, atol=1e-15))


def _moments(act, q):
    """``E[phi^2]``, ``E[phi'^2]`` and ``Var[phi]`` at the variances ``q`` (all from theory)."""
    m2 = theory.q_map(act, 1.0, 0.0, q)               # sigma_w = 1, sigma_b = 0: E[phi(u)^2]
    dphi2 = theory.chi1(act, 1.0, 0.0, q=q)           # E[phi'(u)^2]
    phi0 = float(act.phi(np.array([0.0]))[0])
    # Var[phi] = E[(phi - phi(0))^2] - E[phi - phi(0)]^2: no cancellation of a constant part
    d2 = theory.gaussian_expectation(lambda h: (act.phi(h) - phi0) ** 2, q)
    d1 = theory.gaussian_expectation(lambda h: act.phi(h) - phi0, q)
    return m2, dphi2, d2 - d1 * d1


def _kernel_values(act, odd, q, v, half):
    """The stored kernel value at ``(q, v)`` (broadcast) on half 0 (``c >= 0``) or 1 (``c <= 0``):
    ``k`` or, for odd ``phi``, ``k / c``."""
    q, v = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(v, dtype=float))
    c = np.cos(theta_of(q, v)) * (1.0 if half == 0 else -1.0)
    k = theory.c_map(act, 1.0, 0.0, q, np.clip(c, -1.0, 1.0))
    if not odd:
        return k
    with np.errstate(all="ignore"):
        r = k / c
    at_zero = np.abs(c) < 1e-6
    if np.any(at_zero):
        # k / c -> dk/dc at c = 0: q E[phi'(u)]^2 / E[phi(u)^2] (first Hermite coefficient)
        qz = q[at_zero]
        r[at_zero] = qz * theory.gaussian_expectation(act.dphi, qz) ** 2 / theory.q_map(act, 1.0, 0.0, qz)
    return r


def _snapped(slope):
    s = round(2 * slope) / 2
    return s if abs(slope - s) < 1e-5 else slope


def build(name: str) -> dict:
    """All tables of one activation, as plain numbers and lists (what the page embeds).

    Examples
    --------
    >>> t = build("relu")
    >>> t["kernel"]["nx"], t["odd"]          # homogeneous: one q column
    (1, False)
    """
    act = get_activation(name)
    x0, h, n = _grid(*MOMENT_Q, PER_DECADE_1D)
    q = np.exp(x0 + h * np.arange(n))
    m2, dphi2, var = _moments(act, q)
    moments = {}
    for key, val in (("log_m2", m2), ("log_dphi2", dphi2), ("log_var", var)):
        with np.errstate(divide="ignore"):
            lv = np.log(val)
        if not np.all(np.isfinite(lv)):
            raise ValueError(f"{name}: {key} is not finite on the table grid")
        moments[key] = {"values": lv, "slope_lo": _snapped((lv[1] - lv[0]) / h),
                        "slope_hi": _snapped((lv[-1] - lv[-2]) / h)}
    homogeneous = theory._calculus(act).homogeneous
    odd = is_odd(act)
    v = np.linspace(0.0, 1.0, N_V)
    if homogeneous:
        kx0, kh, kn = 0.0, 1.0, 1
    else:
        kx0, kh, kn = _grid(*KERNEL_Q, PER_DECADE_2D)
    kq = np.exp(kx0 + kh * np.arange(kn))
    kernel = np.stack([_kernel_values(act, odd, kq[:, None], v[None, :], half)
                       for half in range(1 if odd else 2)], axis=1)          # (nx, halves, nv)
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"{name}: correlation kernel is not finite on the table grid")
    cut = act.saturation_cutoffs() if act.bounds is not None else None
    return {
        "name": act.name, "odd": odd, "homogeneous": bool(homogeneous),
        "moment_grid": {"x0": x0, "h": h, "n": n}, "moments": moments,
        "kernel": {"x0": kx0, "h": kh, "nx": kn, "nv": N_V, "values": kernel,
                   "q_max": math.inf if homogeneous else KERNEL_Q[1]},
        "saturation_cutoffs": None if cut is None else [float(cut[0]), float(cut[1])],
        "dead_intervals": [[float(a), float(b)] for a, b in act.dead_intervals],
        "init_gain": float(act.init_gain),
    }


# ---------------------------------------------------------------------------------------------
# The interpolation the page runs (numpy form, used to measure its error)
# ---------------------------------------------------------------------------------------------
def _lagrange_weights(t):
    """Weights of the 6 nodes ``0..5`` at positions ``t`` (array): shape ``t.shape + (6,)``."""
    nodes = np.arange(STENCIL, dtype=float)
    t = np.asarray(t, dtype=float)[..., None]
    w = np.ones(t.shape[:-1] + (STENCIL,))
    for j in range(STENCIL):
        for m in range(STENCIL):
            if m != j:
                w[..., j] *= (t[..., 0] - nodes[m]) / (nodes[j] - nodes[m])
    return w


def _stencil(t, n, reflect=False):
    """First node index and offset of the 6-point stencil around grid position ``t``."""
    i = np.floor(t).astype(int) - (STENCIL // 2 - 1)
    lo = -(STENCIL // 2 - 1) if reflect else 0
    i = np.clip(i, lo, n - STENCIL)
    return i, t - i


def interp1(table, grid, x):
    """Table value at ``x = log q`` (power law beyond the ends)."""
    vals = np.asarray(table["values"], dtype=float)
    t = (np.asarray(x, dtype=float) - grid["x0"]) / grid["h"]
    n = grid["n"]
    tc = np.clip(t, 0.0, n - 1.0)
    i, u = _stencil(tc, n)
    idx = i[..., None] + np.arange(STENCIL)
    out = np.sum(_lagrange_weights(u) * vals[idx], axis=-1)
    out = np.where(t < 0, vals[0] + table["slope_lo"] * grid["h"] * t, out)
    return np.where(t > n - 1, vals[-1] + table["slope_hi"] * grid["h"] * (t - (n - 1)), out)


def interp_kernel(kern, q, v, half=0):
    """Stored kernel value at ``(q, v)`` on a half: ``log q`` clamped to the table, ``v`` reflected at 0."""
    vals = np.asarray(kern["values"], dtype=float)[:, half, :]
    q, v = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(v, dtype=float))
    nv = kern["nv"]
    tv = np.clip(v, 0.0, 1.0) * (nv - 1)
    j, uv = _stencil(tv, nv, reflect=True)
    jdx = np.abs(j[..., None] + np.arange(STENCIL))
    wv = _lagrange_weights(uv)
    if kern["nx"] == 1:
        return np.sum(wv * vals[0][jdx], axis=-1)
    nx = kern["nx"]
    tx = np.clip((np.log(q) - kern["x0"]) / kern["h"], 0.0, nx - 1.0)
    i, ux = _stencil(tx, nx)
    wx = _lagrange_weights(ux)
    idx = i[..., None] + np.arange(STENCIL)
    rows = vals[idx[..., :, None], jdx[..., None, :]]               # S + (6, 6)
    return np.einsum("...i,...j,...ij->...", wx, wv, rows)


def interpolation_error(tables: dict, stride: int = 3) -> dict:
    """Largest interpolation errors, at cell midpoints (where Lagrange errors peak), against direct evaluation.

    Returns ``{"moments_rel": max relative error of E[phi^2], E[phi'^2], Var[phi] over every
    midpoint, "kernel_abs": max absolute error of the stored kernel value over every
    ``stride``-th midpoint in each direction}``.
    """
    act = get_activation(tables["name"])
    g = tables["moment_grid"]
    xm = g["x0"] + g["h"] * (np.arange(g["n"] - 1) + 0.5)
    exact = _moments(act, np.exp(xm))
    rel = 0.0
    for key, ex in zip(("log_m2", "log_dphi2", "log_var"), exact):
        got = np.exp(interp1(tables["moments"][key], g, xm))
        rel = max(rel, float(np.max(np.abs(got / ex - 1.0))))
    k = tables["kernel"]
    vm = (np.arange(k["nv"] - 1) + 0.5) / (k["nv"] - 1)
    xk = k["x0"] + k["h"] * (np.arange(max(k["nx"] - 1, 1)) + (0.5 if k["nx"] > 1 else 0.0))
    xk, vm = xk[::stride], vm[::stride] if k["nx"] > 1 else vm
    qq, vv = np.meshgrid(np.exp(xk), vm, indexing="ij")
    kernel_abs = 0.0
    for half in range(1 if tables["odd"] else 2):
        exact_k = _kernel_values(act, tables["odd"], qq, vv, half)
        kernel_abs = max(kernel_abs, float(np.max(np.abs(interp_kernel(k, qq, vv, half) - exact_k))))
    return {"moments_rel": rel, "kernel_abs": kernel_abs}


# ---------------------------------------------------------------------------------------------
# Shipped tables and the disk cache
# ---------------------------------------------------------------------------------------------
#: Tables of every built-in activation, shipped with the package (building them all takes
#: minutes); regenerate with ``python -m sigprop.view.tables`` after a change to an activation,
#: to the theory's integrals or to the grids. ``tests/test_view.py`` recomputes sample nodes.
SHIPPED = Path(__file__).parent / "data" / "tables.npz"


def _cache_dir() -> Path:
    root = os.environ.get("SIGPROP_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "sigprop" / "kernels"
    return base / "view"


def fingerprint(name: str) -> str:
    """Identifies the tables of an activation: its expression and parameters, and the grids."""
    act = get_activation(name)
    grids = (MOMENT_Q, PER_DECADE_1D, KERNEL_Q, PER_DECADE_2D, N_V, STENCIL)
    text = f"{_VERSION}|{act.name}|{act.key}|{grids!r}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _arrays(data: dict) -> dict:
    out = {f"{k}_values": np.asarray(v["values"], dtype=float) for k, v in data["moments"].items()}
    # float32 as the page embeds it (relative rounding 6e-8, below the interpolation error)
    out["kernel_values"] = np.asarray(data["kernel"]["values"], dtype=np.float32)
    return out


def _shipped(name: str):
    import json
    if not SHIPPED.is_file():
        return None
    with np.load(SHIPPED) as z:
        meta = json.loads(str(z["meta"]))
        entry = meta.get(name)
        if entry is None or entry["fingerprint"] != fingerprint(name):
            return None
        for k in entry["moments"]:
            entry["moments"][k]["values"] = z[f"{name}/{k}_values"].tolist()
        entry["kernel"]["values"] = z[f"{name}/kernel_values"].tolist()
    return entry


def write_shipped(path=SHIPPED, names=ACTIVATIONS) -> Path:
    """Build (or take from the cache) the tables of ``names`` and write them as one ``.npz``."""
    import io
    import json
    from .._io import atomic_write_bytes
    meta, arrays = {}, {}
    for name in names:
        data = load(name)
        for k, v in _arrays(data).items():
            arrays[f"{name}/{k}"] = v
        entry = json.loads(json.dumps(data))
        for k in entry["moments"]:
            entry["moments"][k]["values"] = None
        entry["kernel"]["values"] = None
        entry["fingerprint"] = fingerprint(name)
        meta[name] = entry
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load(name: str) -> dict:
    """:func:`build` and :func:`interpolation_error` of one activation: from the disk cache, the
    shipped tables, or built (a minute or so) and cached."""
    import json
    fp = fingerprint(name)
    path = _cache_dir() / f"{name}-{fp}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    data = _shipped(name)
    if data is None:
        data = build(name)
        data["error"] = interpolation_error(data)
        data = _plain(data)
    try:
        from .._io import atomic_write_text
        atomic_write_text(path, json.dumps(data))
    except OSError:
        pass                                    # a read-only cache only costs time
    return data


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return _plain(obj.item())
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    return obj


if __name__ == "__main__":
    print(f"wrote {write_shipped()}")
