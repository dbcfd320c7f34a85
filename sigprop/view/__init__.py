"""The offline interactive page: one self-contained HTML file driven by sigprop's own theory.

:func:`write` embeds, per built-in activation, interpolation tables of the Gaussian
expectations the mean-field recursion needs (:mod:`sigprop.view.tables`, made by
:mod:`sigprop.theory`), the init schemes' ``sigma_w`` rules (from :mod:`sigprop.init`),
the finite-width laws (:mod:`sigprop.finite_width`), the edge of chaos
(:func:`sigprop.theory.edge_of_chaos`) and Monte Carlo samples for a few presets; the
recursion formulas themselves are printed to JavaScript by sympy from
:mod:`sigprop.symbolic.recursions`. The page's JavaScript (``page.js``) runs the
recursion of :func:`sigprop.theory.predict` on every control change. No network, no
library: the file opens from disk.
"""
from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from . import tables as _tables

_HERE = Path(__file__).parent

#: Init schemes on the page: key -> (label, init name for :func:`sigprop.init.get_init`).
INITS = {
    "standard_normal": ("standard normal", "standard_normal"),
    "lecun": ("LeCun normal", "lecun_normal"),
    "xavier_normal": ("Xavier normal", "xavier_normal"),
    "xavier_uniform": ("Xavier uniform", "xavier_uniform"),
    "kaiming_in": ("Kaiming normal, fan_in", "kaiming_normal(mode='fan_in')"),
    "kaiming_out": ("Kaiming normal, fan_out", "kaiming_normal(mode='fan_out')"),
    "orthogonal": ("orthogonal", "orthogonal"),
    "mup": ("muP (hidden layers)", "mup"),
    "scaled": ("free std (slider)", "scaled(1.0)"),
}

#: Width slider values: 8 .. 4096, four per octave, and the presets' 200.
WIDTHS = sorted({int(round(8 * 2 ** (k / 4))) for k in range(37)} | {200})

#: Presets with Monte Carlo samples: (label, state). ``std`` matters for the free-std init only.
PRESETS = [
    ("makemore: tanh, standard normal, 5 x 200", dict(act="tanh", init="standard_normal", depth=5, width=200)),
    ("makemore: tanh, Kaiming (5/3), 5 x 200", dict(act="tanh", init="kaiming_in", depth=5, width=200)),
    ("Xavier/He source: ReLU std 0.3 x He, 20 x 512", dict(act="relu", init="scaled", std=0.3 * math.sqrt(2 / 512),
                                                          depth=20, width=512)),
    ("Xavier/He source: ReLU He, 20 x 512", dict(act="relu", init="scaled", std=math.sqrt(2 / 512), depth=20,
                                                 width=512)),
    ("Xavier/He source: ReLU std 3 x He, 20 x 512", dict(act="relu", init="scaled", std=3 * math.sqrt(2 / 512),
                                                        depth=20, width=512)),
    ("tanh, Xavier uniform, 50 x 128", dict(act="tanh", init="xavier_uniform", depth=50, width=128)),
    ("SELU, LeCun, 50 x 128", dict(act="selu", init="lecun", depth=50, width=128)),
]


def _b64(a, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _init_rules(activations) -> dict:
    """``sigma_w = a n^p`` for a stack of equal widths ``n``, read off :mod:`sigprop.init` and checked."""
    from ..init import get_init
    out = {}
    for key, (label, name) in INITS.items():
        scheme = get_init(name)
        rules = {}
        for act in activations:
            a = scheme.sigma_w(1, 1, act)
            p = math.log(scheme.sigma_w(1024, 1024, act) / a) / math.log(1024)
            p = round(2 * p) / 2
            for n in (WIDTHS[0], 100, WIDTHS[-1]):
                if not math.isclose(a * n ** p, scheme.sigma_w(n, n, act), rel_tol=1e-12):
                    raise AssertionError(f"init {name}: sigma_w is not a n^p for {act}")
            rules[act] = {"a": a, "p": p}
        out[key] = {"label": label, "name": scheme.name, "distribution": scheme.distribution, "rules": rules}
    return out


def _recursions_js() -> str:
    """The derived recursions as JavaScript functions (sympy's JavaScript printer)."""
    import sympy as sp
    from ..symbolic import recursions as rec
    parts = []
    for d in (rec.forward_variance(), rec.backward_variance(), rec.covariance_map(), rec.chi1()):
        args = ", ".join(str(s) for s in d.symbols)
        parts.append(f"{d.name}: function ({args}) {{ return {sp.jscode(d.expr)}; }}")
    return "{\n" + ",\n".join(parts) + "\n}"


def _finite_width() -> dict:
    from scipy import special
    from .. import finite_width
    out = {}
    for act in finite_width.SUPPORTED:
        out[act] = {"layer": [finite_width.layer_variance(act, n) for n in WIDTHS],
                    "input": [float(special.polygamma(1, n / 2.0)) for n in WIDTHS]}
    return out


def _edge(activations) -> dict:
    from .. import theory
    sb = np.linspace(0.0, 2.0, 41)
    out = {}
    for act in activations:
        sw = theory.edge_of_chaos(act, sb)
        keep = np.isfinite(sw)
        out[act] = {"sigma_b": sb[keep].tolist(), "sigma_w": sw[keep].tolist()}
    return out


def _spec_of(state, inits):
    from ..spec import NetSpec
    name = inits[state["init"]]["name"] if state["init"] != "scaled" else f"scaled({state['std']!r})"
    return NetSpec.uniform(depth=state["depth"], width=state["width"], activation=state["act"], init=name,
                           sigma_b=state.get("sb", 0.0))


def _presets(inits, activations, networks, seed) -> list:
    from .. import theory
    from .montecarlo import samples
    out = []
    for label, st in PRESETS:
        if st["act"] not in activations:
            continue
        state = {"sb": 0.0, "std": 0.1, "c0": 0.5}
        state.update(st)
        if state["width"] not in WIDTHS:
            state["width"] = min(WIDTHS, key=lambda n: abs(n - state["width"]))
        spec = _spec_of(state, inits)
        q = theory.predict(spec).q
        out.append({"label": label, "state": state, "mc": samples(spec, q, networks=networks, seed=seed)})
    return out


def _plain(x):
    return _tables._plain(x)


def build_data(activations=_tables.ACTIVATIONS, presets: bool = True, networks: int = 64, seed: int = 0) -> dict:
    """Everything the page embeds, as plain JSON-able data."""
    acts = {}
    errors = {}
    for name in activations:
        t = _tables.load(name)
        errors[name] = t["error"]
        mom = {k: {"values": _b64(v["values"], "<f8"), "slope_lo": v["slope_lo"], "slope_hi": v["slope_hi"]}
               for k, v in t["moments"].items()}
        k = dict(t["kernel"])
        k["values"] = _b64(np.asarray(k["values"], dtype=float).reshape(-1), "<f4")
        k["q_max"] = 1e308 if k["q_max"] == "inf" else k["q_max"]
        acts[name] = {"odd": t["odd"], "homogeneous": t["homogeneous"], "moment_grid": t["moment_grid"],
                      "moments": mom, "kernel": k, "saturation_cutoffs": t["saturation_cutoffs"],
                      "dead_intervals": t["dead_intervals"]}      # +-inf as "inf" strings (JSON)
    inits = _init_rules(activations)
    return _plain({
        "activations": acts, "inits": inits, "widths": WIDTHS, "input_var": 1.0,
        "finite_width": _finite_width(), "edge_of_chaos": _edge(activations),
        "presets": _presets(inits, activations, networks, seed) if presets else [],
        "errors": errors,
        "tables": {"moment_q": list(_tables.MOMENT_Q), "per_decade_1d": _tables.PER_DECADE_1D,
                   "kernel_q": list(_tables.KERNEL_Q), "per_decade_2d": _tables.PER_DECADE_2D,
                   "n_v": _tables.N_V, "stencil": _tables.STENCIL},
    })


_DECODE_JS = """
for (const a of Object.values(DATA.activations)) {
  for (const m of Object.values(a.moments)) m.values = decode(m.values, "f64");
  a.kernel.values = decode(a.kernel.values, "f32");
  a.dead_intervals = a.dead_intervals.map(iv => iv.map(v => v === "-inf" ? -Infinity : v === "inf" ? Infinity : v));
}
"""


def write(path, activations=_tables.ACTIVATIONS, presets: bool = True, networks: int = 64, seed: int = 0) -> Path:
    """Write the interactive page to ``path`` (one HTML file, everything inline).

    Parameters
    ----------
    path : str or Path
        The ``.html`` file to write (atomically).
    activations : sequence of str
        Built-in activations to include (default: all).
    presets : bool
        Include the presets with their Monte Carlo samples.
    networks, seed : int
        Monte Carlo networks per preset and the seed.

    Returns
    -------
    Path of the page.

    Examples
    --------
    >>> import tempfile, os
    >>> p = write(os.path.join(tempfile.mkdtemp(), "v.html"), activations=["relu"], presets=False)
    >>> p.stat().st_size < 2_000_000
    True
    """
    if not str(path).endswith((".html", ".htm")):
        raise ValueError(f"the view is an HTML file: path must end in .html, got {str(path)!r}")
    bad = [a for a in activations if a not in _tables.ACTIVATIONS]
    if bad:
        raise ValueError(f"the view covers the built-in activations {', '.join(_tables.ACTIVATIONS)}; got {bad[0]!r}")
    if isinstance(networks, bool) or int(networks) != networks or networks < 2:
        raise ValueError(f"networks must be an integer >= 2, got {networks!r}")
    data = build_data(tuple(activations), presets=presets, networks=int(networks), seed=int(seed))
    html = (_HERE / "page.html").read_text()
    js = (_HERE / "page.js").read_text()
    # the decoding runs once, after page.js defines decode()
    js = js.replace('window.addEventListener("DOMContentLoaded", init);',
                    _DECODE_JS + 'window.addEventListener("DOMContentLoaded", init);')
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    html = html.replace("/*DATA*/", payload).replace("/*RECURSIONS*/", _recursions_js()).replace("/*PAGE_JS*/", js)
    return atomic_write_text(path, html)
