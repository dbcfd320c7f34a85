"""Initialization schemes, named and parameterised as PyTorch users know them.

Every scheme answers one question per layer: the weight standard deviation
``std(W_ij)`` for a layer with ``fan_in`` inputs and ``fan_out`` outputs. sigprop
states it in mean-field units, ``sigma_w = std(W) * sqrt(fan_in)``, so that the
forward variance recursion reads ``q_l = sigma_w^2 E[phi(h_{l-1})^2] + sigma_b^2``.
A scheme also says how weights are drawn (normal, uniform or orthogonal) and
draws them (:meth:`InitScheme.sample`), and muP adds its output-layer and
learning-rate scalings.

============================  ==========================================  ============
name                          std(W)                                      distribution
============================  ==========================================  ============
standard_normal               1  (the un-scaled init of the sources)      normal
scaled(std)                   std                                         normal
lecun_normal / lecun_uniform  1/sqrt(fan_in)                              normal/uniform
xavier_normal(gain)           gain sqrt(2/(fan_in+fan_out))               normal
xavier_uniform(gain)          same variance, U(-a, a), a = sqrt(3) std    uniform
kaiming_normal(mode, gain)    gain/sqrt(fan_mode), gain from activation   normal
kaiming_uniform(mode, gain)   same variance                               uniform
orthogonal(gain)              gain x (semi-)orthogonal matrix             orthogonal
mup(gain)                     hidden gain/sqrt(fan_in); output 1/fan_in   normal
============================  ==========================================  ============

``glorot_*`` and ``he_*`` are aliases; ``kaiming`` means ``kaiming_normal``,
``xavier`` ``xavier_normal``. ``gain=None`` in Kaiming and muP takes the
activation's :attr:`~sigprop.activations.Activation.init_gain` (5/3 for tanh,
sqrt 2 for ReLU).

Example
-------
>>> from sigprop.init import get_init
>>> round(get_init("kaiming").weight_std(200, 200, "tanh"), 6)   # (5/3)/sqrt(200)
0.117851
>>> get_init("xavier_uniform").distribution
'uniform'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._naming import call_name, format_call, parse_call
from .activations import get_activation

DISTRIBUTIONS = ("normal", "uniform", "orthogonal")


def _check_positive(name, key, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"init {name!r}: {key} must be a finite number >= 0, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class InitScheme:
    """A named init scheme with its parameters (plain data: prints, compares, serialises by name).

    Use :func:`get_init` to build one from a string such as ``"kaiming_normal(mode='fan_out')"``.
    """

    family: str
    params: tuple = ()  # sorted (key, value) pairs

    @property
    def name(self) -> str:
        defaults = _FAMILIES[self.family]["defaults"]
        return format_call(self.family, {k: v for k, v in self.params
                                         if k not in defaults or defaults[k] != v or k == "std"})

    def __str__(self):
        return self.name

    @property
    def distribution(self) -> str:
        return _FAMILIES[self.family]["distribution"]

    def _gain(self, activation) -> float:
        g = dict(self.params).get("gain")
        return get_activation(activation).init_gain if g is None else g

    def sigma_w(self, fan_in: int, fan_out: int, activation="linear") -> float:
        """Mean-field weight scale ``sigma_w = std(W) sqrt(fan_in)`` of a hidden layer."""
        p = dict(self.params)
        f = self.family
        if f == "standard_normal":
            return math.sqrt(fan_in)
        if f == "scaled":
            return p["std"] * math.sqrt(fan_in)
        if f in ("lecun_normal", "lecun_uniform"):
            return 1.0
        if f in ("xavier_normal", "xavier_uniform"):
            return p["gain"] * math.sqrt(2.0 * fan_in / (fan_in + fan_out))
        if f in ("kaiming_normal", "kaiming_uniform"):
            fan = fan_in if p["mode"] == "fan_in" else fan_out
            return self._gain(activation) * (1.0 if fan == fan_in else math.sqrt(fan_in / fan))
        if f == "orthogonal":
            # entries of a (semi-)orthogonal matrix have variance 1/max(fan_in, fan_out)
            big = max(fan_in, fan_out)
            return p["gain"] * (1.0 if big == fan_in else math.sqrt(fan_in / big))
        if f == "mup":
            return self._gain(activation)
        raise AssertionError(f)

    def weight_std(self, fan_in: int, fan_out: int, activation="linear") -> float:
        """std(W_ij) of a hidden layer of shape (fan_in, fan_out)."""
        return self.sigma_w(fan_in, fan_out, activation) / math.sqrt(fan_in)

    def output_weight_std(self, fan_in: int, fan_out: int) -> float:
        """std of the readout layer: muP uses 1/fan_in (so the output does not grow with
        width); other schemes treat it as a linear hidden layer."""
        if self.family == "mup":
            return 1.0 / fan_in
        return self.weight_std(fan_in, fan_out, "linear")

    def lr_scale(self, layer: str, fan_in: int, base_fan_in: int) -> float:
        """Per-layer SGD learning-rate multiplier relative to a base width.

        muP (Yang & Hu 2021, SGD column): input/embedding layer ``x n/n0``, hidden
        ``x 1``, output ``x n0/n`` where ``n`` is the layer's fan_in.
        Other schemes: 1 everywhere (standard parametrisation).
        """
        if layer not in ("input", "hidden", "output"):
            raise ValueError(f"layer must be 'input', 'hidden' or 'output', got {layer!r}")
        if self.family != "mup":
            return 1.0
        ratio = fan_in / base_fan_in
        return {"input": ratio, "hidden": 1.0, "output": 1.0 / ratio}[layer]

    def sample(self, rng: np.random.Generator, fan_in: int, fan_out: int, activation="linear",
               dtype=np.float64) -> np.ndarray:
        """Draw a weight matrix of shape ``(fan_in, fan_out)`` (inputs are rows: ``h = x @ W``)."""
        std = self.weight_std(fan_in, fan_out, activation)
        return sample_weights(rng, self.distribution, std, fan_in, fan_out, dtype)


def sample_weights(rng: np.random.Generator, distribution: str, std: float, fan_in: int, fan_out: int,
                   dtype=np.float64) -> np.ndarray:
    """Draw a ``(fan_in, fan_out)`` matrix with entry std ``std`` from ``distribution``.

    ``orthogonal`` draws a Haar-random (semi-)orthogonal matrix (QR of a Gaussian
    matrix with the sign fix) scaled so that entries have std ``std``.
    """
    if distribution == "normal":
        return (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype, copy=False)
    if distribution == "uniform":
        a = math.sqrt(3.0) * std
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype, copy=False)
    if distribution == "orthogonal":
        big, small = max(fan_in, fan_out), min(fan_in, fan_out)
        g = rng.standard_normal((big, small))
        q, r = np.linalg.qr(g)
        q *= np.sign(np.diag(r))  # Haar measure (Mezzadri 2007)
        w = q if fan_in >= fan_out else q.T
        return (w * (std * math.sqrt(big))).astype(dtype, copy=False)
    raise ValueError(f"unknown weight distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}")


_FAMILIES = {
    "standard_normal": {"distribution": "normal", "defaults": {}},
    "scaled": {"distribution": "normal", "defaults": {"std": None}, "positional": ("std",)},
    "lecun_normal": {"distribution": "normal", "defaults": {}},
    "lecun_uniform": {"distribution": "uniform", "defaults": {}},
    "xavier_normal": {"distribution": "normal", "defaults": {"gain": 1.0}, "positional": ("gain",)},
    "xavier_uniform": {"distribution": "uniform", "defaults": {"gain": 1.0}, "positional": ("gain",)},
    "kaiming_normal": {"distribution": "normal", "defaults": {"mode": "fan_in", "gain": None},
                       "positional": ("mode", "gain")},
    "kaiming_uniform": {"distribution": "uniform", "defaults": {"mode": "fan_in", "gain": None},
                        "positional": ("mode", "gain")},
    "orthogonal": {"distribution": "orthogonal", "defaults": {"gain": 1.0}, "positional": ("gain",)},
    "mup": {"distribution": "normal", "defaults": {"gain": None}, "positional": ("gain",)},
}
_ALIASES = {
    "normal": "standard_normal", "standard": "standard_normal",
    "lecun": "lecun_normal",
    "xavier": "xavier_normal", "glorot": "xavier_normal",
    "glorot_normal": "xavier_normal", "glorot_uniform": "xavier_uniform",
    "kaiming": "kaiming_normal", "he": "kaiming_normal",
    "he_normal": "kaiming_normal", "he_uniform": "kaiming_uniform",
}


def available_inits() -> list[str]:
    return sorted(_FAMILIES) + sorted(_ALIASES)


def get_init(spec, **overrides) -> InitScheme:
    """Resolve ``"kaiming"``, ``"kaiming_normal(mode='fan_out', gain=1.0)"``, ``"scaled(0.3)"``.

    Keyword ``overrides`` set parameters too (``get_init("scaled", std=0.3)``).
    """
    if isinstance(spec, InitScheme) and not overrides:
        return spec
    if isinstance(spec, InitScheme):
        spec = spec.name
    name = call_name(spec)
    family = _ALIASES.get(name, name)
    if family not in _FAMILIES:
        raise ValueError(f"unknown init scheme {name!r}; known: {', '.join(available_inits())}")
    fam = _FAMILIES[family]
    _, kwargs = parse_call(spec, positional=fam.get("positional", ()))
    kwargs.update(overrides)
    unknown = set(kwargs) - set(fam["defaults"])
    if unknown:
        allowed = ", ".join(fam["defaults"]) or "none"
        raise ValueError(f"init {family!r} has no parameter {sorted(unknown)[0]!r} (parameters: {allowed})")
    params = {}
    for key, default in fam["defaults"].items():
        v = kwargs.get(key, default)
        if key == "mode":
            if v not in ("fan_in", "fan_out"):
                raise ValueError(f"init {family!r}: mode must be 'fan_in' or 'fan_out', got {v!r}")
        elif key == "std" and v is None:
            raise ValueError("init 'scaled' needs a std, e.g. scaled(std=0.3)")
        else:
            v = _check_positive(family, key, v, allow_none=(key == "gain"))
        params[key] = v
    return InitScheme(family, tuple(sorted(params.items())))
