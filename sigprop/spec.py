"""The shared currency: :class:`NetSpec` describes a network, :class:`LayerStats` answers for it.

Conventions (used by theory, simulation and training alike)
-----------------------------------------------------------
A network maps an input ``x_0`` of dimension ``input_dim`` (components with
second moment ``input_var``) through ``L = len(widths)`` layers::

    h_l = x_{l-1} @ W_l + b_l,      x_l = phi_l(h_l),      l = 1..L

with ``W_l`` of shape ``(n_{l-1}, n_l)``, ``std(W_l) = sigma_w[l] / sqrt(n_{l-1})``
and ``std(b_l) = sigma_b[l]``. The backward pass starts from an output gradient
``dL/dx_L`` with i.i.d. unit-variance entries, so ``grad_var[l] = Var(dL/dh_l)``.

Layer quantities (per layer ``l = 1..L``; see :data:`QUANTITIES`) are stored in
arrays of length ``L``; index 0 is layer 1.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path


import numpy as np

from ._io import (atomic_write_npz, atomic_write_text, dumps_json, finite_or_none, from_fields, nonfinite_marks,
                  read_checked, with_nonfinite)

#: Quantities a LayerStats may carry, with their meaning. Other names are allowed
#: (training diagnostics add their own), these are the shared ones.
QUANTITIES = {
    "q": "pre-activation second moment E[h_l^2] (the mean-field q_l)",
    "act_mean": "activation mean E[phi(h_l)]",
    "act_sq": "activation second moment E[phi(h_l)^2]",
    "act_var": "activation variance Var[phi(h_l)]",
    "saturated": "fraction of units with phi(h_l) within (1 - threshold) of its bounds",
    "dead": "fraction of units with phi'(h_l) = 0",
    "grad_var": "backward gradient variance Var[dL/dh_l] for unit-variance dL/dx_L",
    "corr": "correlation of h_l between two inputs of initial correlation c0",
    "chi1": "sigma_w^2 E[phi'(h_l)^2]: the per-layer gradient (and perturbation) growth factor",
}

SOURCES = ("theory", "simulation", "training")
_FORMAT_VERSION = 1


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@dataclass(frozen=True)
class NetSpec:
    """A fully-connected network to predict, simulate or train.

    Parameters
    ----------
    input_dim : int
        Dimension of the input ``x_0``.
    widths : sequence of int
        Hidden widths ``n_1..n_L``.
    activation : str or sequence of str
        One activation for every layer, or one per layer (names as in
        :func:`sigprop.activations.get_activation`).
    sigma_w, sigma_b : float or sequence of float
        Mean-field weight and bias scales, one for all layers or one per layer:
        ``std(W_l) = sigma_w / sqrt(n_{l-1})``, ``std(b_l) = sigma_b``.
    input_var : float
        Second moment of each input component (default 1).
    weight_dist : {"normal", "uniform", "orthogonal"}
        How weights are drawn (simulation and training).
    init : str, optional
        Name of the init scheme that produced sigma_w (informational; see
        :meth:`from_init`).

    Examples
    --------
    >>> spec = NetSpec.from_init("kaiming", widths=[200] * 5, input_dim=30, activation="tanh")
    >>> spec.depth, round(spec.sigma_w[0], 4)
    (5, 1.6667)
    >>> NetSpec(input_dim=10, widths=[0], activation="tanh", sigma_w=1.0)
    Traceback (most recent call last):
    ...
    ValueError: widths must be >= 1, got 0 at layer 1
    """

    input_dim: int
    widths: tuple
    activation: tuple = ("tanh",)
    sigma_w: tuple = (1.0,)
    sigma_b: tuple = (0.0,)
    input_var: float = 1.0
    weight_dist: str = "normal"
    init: str | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if isinstance(self.input_dim, bool) or not isinstance(self.input_dim, (int, np.integer)) or self.input_dim < 1:
            raise ValueError(f"input_dim must be an integer >= 1, got {self.input_dim!r}")
        set_("input_dim", int(self.input_dim))
        widths = self.widths
        if isinstance(widths, (int, np.integer)):
            widths = (widths,)
        widths = tuple(widths)
        if not widths:
            raise ValueError("widths must name at least one hidden layer")
        for i, w in enumerate(widths, 1):
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)):
                raise ValueError(f"widths must be integers, got {w!r} at layer {i}")
            if w < 1:
                raise ValueError(f"widths must be >= 1, got {w} at layer {i}")
        set_("widths", tuple(int(w) for w in widths))
        depth = len(widths)

        def per_layer(name, value, check):
            vals = (value,) if isinstance(value, (str, int, float, np.integer, np.floating)) else tuple(value)
            if len(vals) == 1:
                vals = vals * depth
            if len(vals) != depth:
                raise ValueError(f"{name} needs 1 or {depth} values (one per layer), got {len(vals)}")
            return tuple(check(v, i) for i, v in enumerate(vals, 1))

        def check_std(name):
            def check(v, i):
                if not _is_number(v) or not math.isfinite(v) or v < 0:
                    raise ValueError(f"{name} must be a finite number >= 0, got {v!r} at layer {i}")
                return float(v)
            return check

        def check_act(v, i):
            from .activations import get_activation
            return get_activation(v).name

        set_("activation", per_layer("activation", self.activation, check_act))
        set_("sigma_w", per_layer("sigma_w", self.sigma_w, check_std("sigma_w")))
        set_("sigma_b", per_layer("sigma_b", self.sigma_b, check_std("sigma_b")))
        if not _is_number(self.input_var) or not math.isfinite(self.input_var) or self.input_var < 0:
            raise ValueError(f"input_var must be a finite number >= 0, got {self.input_var!r}")
        set_("input_var", float(self.input_var))
        from .init import DISTRIBUTIONS
        if self.weight_dist not in DISTRIBUTIONS:
            raise ValueError(f"weight_dist must be one of {', '.join(DISTRIBUTIONS)}, got {self.weight_dist!r}")

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_init(cls, init, widths, input_dim: int, activation="tanh", sigma_b=None, input_var=1.0, **init_params):
        """Build a spec whose per-layer ``sigma_w`` comes from a named init scheme.

        ``init`` is a name such as ``"kaiming"``, ``"xavier_uniform"``, ``"scaled(0.3)"``
        or an :class:`~sigprop.init.InitScheme`; extra keywords set its parameters.
        ``sigma_b=None`` takes the scheme's bias std (``torch_default``: ``1/sqrt(3 fan_in)``;
        the simulation draws biases normal with that std) and 0 for every other scheme.
        """
        from .init import get_init
        scheme = get_init(init, **init_params)
        spec = cls(input_dim=input_dim, widths=widths, activation=activation, sigma_w=1.0,
                   sigma_b=0.0 if sigma_b is None else sigma_b,
                   input_var=input_var, weight_dist=scheme.distribution, init=scheme.name)
        fans = (spec.input_dim,) + spec.widths
        sw = tuple(scheme.sigma_w(fans[i], fans[i + 1], spec.activation[i]) for i in range(spec.depth))
        if sigma_b is None and scheme.bias_std(fans[0]) is not None:
            spec = spec.replace(sigma_b=[scheme.bias_std(fans[i]) for i in range(spec.depth)])
        return cls(input_dim=spec.input_dim, widths=spec.widths, activation=spec.activation, sigma_w=sw,
                   sigma_b=spec.sigma_b, input_var=spec.input_var, weight_dist=scheme.distribution, init=scheme.name)

    @classmethod
    def uniform(cls, depth: int, width: int, activation="tanh", init="kaiming", input_dim=None, **kw):
        """A stack of ``depth`` layers of the same ``width`` (input_dim defaults to width)."""
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
        return cls.from_init(init, widths=[width] * int(depth), input_dim=width if input_dim is None else input_dim,
                             activation=activation, **kw)

    def replace(self, **changes) -> "NetSpec":
        """A copy with some fields changed (validated again)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(changes)
        return NetSpec(**d)

    # --- derived --------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def fan_in(self) -> tuple:
        """``n_{l-1}`` for each layer."""
        return (self.input_dim,) + self.widths[:-1]

    @property
    def weight_std(self) -> tuple:
        """``std(W_l) = sigma_w[l] / sqrt(n_{l-1})``."""
        return tuple(s / math.sqrt(n) for s, n in zip(self.sigma_w, self.fan_in))

    def activations(self) -> list:
        from .activations import get_activation
        return [get_activation(a) for a in self.activation]

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("widths", "activation", "sigma_w", "sigma_b"):
            d[k] = list(d[k])
        from .activations import get_activation
        custom = {a: str(get_activation(a).expr) for a in set(self.activation) if not get_activation(a).builtin}
        if custom:
            d["custom_activations"] = custom
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetSpec":
        d = dict(d)
        custom = d.pop("custom_activations", {})
        if custom:
            from .activations import register_activation
            for name, expr in custom.items():
                register_activation(name, expr)
        return from_fields(cls, d)

    def to_json(self) -> str:
        return dumps_json(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "NetSpec":
        return cls.from_dict(json.loads(text))


def _as_array(v, depth, name) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"quantity {name!r} must be a 1-d array (one value per layer), got shape {a.shape}")
    if depth is not None and a.shape[0] != depth:
        raise ValueError(f"quantity {name!r} has {a.shape[0]} values for {depth} layers")
    return a


@dataclass
class LayerStats:
    """Per-layer quantities of one network ensemble, from theory, simulation or training.

    Parameters
    ----------
    values : dict of str -> array (L,)
        Quantity name -> per-layer values (see :data:`QUANTITIES`).
    se : dict of str -> array (L,)
        Standard errors of the same quantities (absent for theory).
    spec : NetSpec, optional
        The network the numbers are about.
    source : {"theory", "simulation", "training"}
    seed : int, optional
    meta : dict
        JSON-serialisable settings that produced the numbers (``threshold``,
        ``c0``, ``n_networks``, ``step``, ...).

    Examples
    --------
    >>> s = LayerStats({"q": [1.0, 0.5]}, source="theory")
    >>> s.q, s.depth
    (array([1. , 0.5]), 2)
    """

    values: dict
    se: dict = field(default_factory=dict)
    spec: NetSpec | None = None
    source: str = "theory"
    seed: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        depth = self.spec.depth if self.spec is not None else None
        vals = {}
        for k, v in self.values.items():
            vals[k] = _as_array(v, depth, k)
            depth = vals[k].shape[0]
        self.values = vals
        ses = {}
        for k, v in self.se.items():
            if k not in vals:
                raise ValueError(f"standard error given for {k!r} but no values")
            ses[k] = _as_array(v, depth, f"se of {k}")
        self.se = ses
        if self.seed is not None:
            self.seed = int(self.seed)

    def __getattr__(self, name):
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"LayerStats has no quantity {name!r}; it has: {', '.join(values) or 'none'}")

    def __getitem__(self, name) -> np.ndarray:
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"LayerStats has no quantity {name!r}; it has: {', '.join(self.values) or 'none'}") from None

    @property
    def depth(self) -> int:
        if self.spec is not None:
            return self.spec.depth
        return next(iter(self.values.values())).shape[0] if self.values else 0

    @property
    def layers(self) -> np.ndarray:
        """Layer numbers 1..L."""
        return np.arange(1, self.depth + 1)

    @property
    def quantities(self) -> list:
        return list(self.values)

    def flags(self) -> dict:
        """Per-quantity per-layer regime flags: ``'ok'``, ``'overflow'`` (inf), ``'nan'`` or
        ``'vanished'`` (exactly 0 where the quantity is a variance/second moment).

        Exploding and vanishing signals are results, not errors: this is where they show.
        """
        out = {}
        for k, v in self.values.items():
            f = np.full(v.shape, "ok", dtype=object)
            f[np.isinf(v)] = "overflow"
            f[np.isnan(v)] = "nan"
            if k in ("q", "act_sq", "act_var", "grad_var"):
                f[v == 0.0] = "vanished"
            out[k] = f
        return out

    def _repr_html_(self) -> str:
        """A table per layer for Jupyter: ``value ± standard error`` where there is one."""
        from ._html import table_html

        def cell(k, i):
            v = self.values[k][i]
            se = self.se.get(k)
            return f"{v:.4g}" if se is None or not math.isfinite(se[i]) else f"{v:.4g} ± {se[i]:.2g}"
        spec = "" if self.spec is None else (f"{self.spec.activation[0]}, depth {self.spec.depth}, "
                                             f"width {self.spec.widths[0]}, init {self.spec.init}")
        caption = f"LayerStats ({self.source}{', ' + spec if spec else ''})"
        rows = [[i + 1] + [cell(k, i) for k in self.values] for i in range(self.depth)]
        return table_html(["layer"] + list(self.values), rows, caption)

    def equals(self, other: "LayerStats") -> bool:
        """Exact equality (NaN equals NaN): what a save/load round trip must preserve."""
        if not isinstance(other, LayerStats):
            return False
        same = lambda a, b: a.keys() == b.keys() and all(  # noqa: E731
            a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=True) for k in a)
        return (same(self.values, other.values) and same(self.se, other.se) and self.spec == other.spec
                and self.source == other.source and self.seed == other.seed and self.meta == other.meta)

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-data form for strict JSON: finite floats exactly (``repr``), every inf/nan as
        ``None`` (JSON ``null``) with what it was under ``nonfinite``
        (``{"values": {"q": {"4": "inf"}}, "se": {...}}``, by layer index from 0)."""
        marks = {part: {k: m for k, v in arrays.items() if (m := nonfinite_marks(v))}
                 for part, arrays in (("values", self.values), ("se", self.se))}
        d = {
            "format": "sigprop.LayerStats", "version": _FORMAT_VERSION,
            "source": self.source, "seed": self.seed, "meta": finite_or_none(self.meta),
            "spec": None if self.spec is None else self.spec.to_dict(),
            "values": {k: finite_or_none(v) for k, v in self.values.items()},
            "se": {k: finite_or_none(v) for k, v in self.se.items()},
        }
        if marks["values"] or marks["se"]:
            d["nonfinite"] = {part: m for part, m in marks.items() if m}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LayerStats":
        if not isinstance(d, dict) or d.get("format") != "sigprop.LayerStats":
            raise ValueError("not a sigprop LayerStats file (missing format tag)")
        if d.get("version") != _FORMAT_VERSION:
            raise ValueError(f"LayerStats format version {d.get('version')} is not supported (expected {_FORMAT_VERSION})")
        spec = None if d.get("spec") is None else NetSpec.from_dict(d["spec"])
        marks = d.get("nonfinite", {})
        values = {k: with_nonfinite(v, marks.get("values", {}).get(k)) for k, v in d["values"].items()}
        se = {k: with_nonfinite(v, marks.get("se", {}).get(k)) for k, v in d.get("se", {}).items()}
        return cls(values=values, se=se, spec=spec, source=d["source"], seed=d.get("seed"), meta=d.get("meta", {}))

    def save(self, path) -> Path:
        """Write to ``.json`` or ``.npz`` (by extension), atomically."""
        path = Path(path)
        if path.suffix == ".json":
            return atomic_write_text(path, dumps_json(self.to_dict(), indent=1))
        if path.suffix == ".npz":
            header = self.to_dict()
            header.pop("nonfinite", None)       # the arrays below keep inf/nan themselves
            arrays = {f"values/{k}": v for k, v in self.values.items()}
            arrays.update({f"se/{k}": v for k, v in self.se.items()})
            header["values"] = list(self.values)
            header["se"] = list(self.se)
            return atomic_write_npz(path, __header__=np.array(dumps_json(header)), **arrays)
        raise ValueError(f"LayerStats saves to .json or .npz, got {path.name!r}")

    @classmethod
    def load(cls, path) -> "LayerStats":
        """Read a file written by :meth:`save`."""
        def from_npz(path):
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["__header__"]))
                header["values"] = {k: z[f"values/{k}"] for k in header["values"]}
                header["se"] = {k: z[f"se/{k}"] for k in header["se"]}
            return cls.from_dict(header)
        return read_checked(path, "LayerStats", {".json": lambda p: cls.from_dict(json.loads(p.read_text())),
                                                 ".npz": from_npz})
