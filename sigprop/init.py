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
torch_default                 1/sqrt(3 fan_in) (nn.Linear); bias too      uniform
============================  ==========================================  ============

``glorot_*`` and ``he_*`` are aliases; ``kaiming`` means ``kaiming_normal``,
``xavier`` ``xavier_normal``. ``gain=None`` in Kaiming and muP takes the
activation's :attr:`~sigprop.activations.Activation.init_gain` (5/3 for tanh,
sqrt 2 for ReLU). The Kaiming schemes also take PyTorch's keywords: ``nonlinearity``
and ``a`` give the gain ``calculate_gain(nonlinearity, a)`` (``a`` alone means
``nonlinearity='leaky_relu'``, PyTorch's default), so ``kaiming_uniform(a=5 ** 0.5)``
is what ``torch.nn.Linear`` does to its weights; ``torch_default`` is that, plus its
bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (:meth:`InitScheme.bias_std`).

Examples
--------
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
        p = dict(self.params)
        if p.get("gain") is not None:
            return p["gain"]
        if p.get("nonlinearity") is not None or p.get("a") is not None:
            return calculate_gain(p.get("nonlinearity") or "leaky_relu", p.get("a"))
        return get_activation(activation).init_gain

    def bias_std(self, fan_in: int) -> float | None:
        """std of the biases the scheme draws, or None where it leaves them to the caller
        (every scheme but ``torch_default``, whose ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` has
        std ``1/sqrt(3 fan_in)``)."""
        if self.family == "torch_default":
            return 1.0 / math.sqrt(3.0 * fan_in)
        return None

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
        if f == "torch_default":       # kaiming_uniform(a=sqrt 5): gain sqrt(2/(1+5)) = 1/sqrt(3)
            return calculate_gain("leaky_relu", math.sqrt(5.0))
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
    "kaiming_normal": {"distribution": "normal",
                       "defaults": {"mode": "fan_in", "gain": None, "nonlinearity": None, "a": None},
                       "positional": ("mode", "gain")},
    "kaiming_uniform": {"distribution": "uniform",
                        "defaults": {"mode": "fan_in", "gain": None, "nonlinearity": None, "a": None},
                        "positional": ("mode", "gain")},
    "torch_default": {"distribution": "uniform", "defaults": {}},
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


#: The names ``torch.nn.init.calculate_gain`` knows (convolutions are linear maps).
PYTORCH_NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                          "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def _slope(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"negative_slope {v!r} is not a valid number")
    return float(v)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``: the same names and the same values.

    ``linear``, the convolutions and ``sigmoid``: 1; ``tanh``: 5/3; ``relu``: sqrt 2;
    ``leaky_relu``: sqrt(2 / (1 + negative_slope^2)) with ``param`` the slope (default
    0.01); ``selu``: 3/4. Where PyTorch's value is the variance-preserving gain (linear,
    ReLU, leaky ReLU) it is taken from the derivation (:mod:`sigprop.symbolic.gains`);
    the others are PyTorch's conventions, which :func:`variance_preserving_gain` sets
    beside the derived value.

    Parameters
    ----------
    nonlinearity : str
        One of :data:`PYTORCH_NONLINEARITIES`.
    param : float, optional
        The negative slope of ``leaky_relu``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For a name PyTorch does not know (gelu, erf, swish, softplus, ...: use
        :func:`variance_preserving_gain`) or a slope that is not a number.

    Examples
    --------
    >>> calculate_gain("tanh"), calculate_gain("relu") ** 2, calculate_gain("leaky_relu", 1.0)
    (1.6666666666666667, 2.0000000000000004, 1.0)
    """
    if nonlinearity not in PYTORCH_NONLINEARITIES:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity!r} (PyTorch's calculate_gain knows "
                         f"{', '.join(PYTORCH_NONLINEARITIES)}; sigprop.variance_preserving_gain covers any activation)")
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _slope(param)
        return get_activation(f"leaky_relu(a={slope!r})").init_gain
    name = "linear" if nonlinearity.startswith("conv") else nonlinearity
    return get_activation(name).init_gain


def variance_preserving_gain(activation) -> float:
    """sigprop's gain for any activation: ``1/sqrt(E[phi(z)^2])``, ``z ~ N(0, 1)``, derived in
    :mod:`sigprop.symbolic.gains` (equal to :func:`calculate_gain` for linear, ReLU and leaky
    ReLU; tanh 1.5925 vs 5/3, sigmoid 1.846 vs 1, SELU 1 vs 3/4).

    Examples
    --------
    >>> round(variance_preserving_gain("tanh"), 6), round(variance_preserving_gain("gelu"), 6)
    (1.592537, 1.53353)
    """
    return get_activation(activation).gain


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
        elif key == "nonlinearity":
            if v is not None and v not in PYTORCH_NONLINEARITIES:
                raise ValueError(f"init {family!r}: nonlinearity must be one of PyTorch's "
                                 f"{', '.join(PYTORCH_NONLINEARITIES)}, got {v!r}")
        elif key == "a":
            if v is not None:
                v = _slope(v)
        else:
            v = _check_positive(family, key, v, allow_none=(key == "gain"))
        params[key] = v
    return InitScheme(family, tuple(sorted(params.items())))
