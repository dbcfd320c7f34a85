"""The GPT-2-style transformer: configuration, flat parameter layout, initialisation, kernels.

Architecture (GPT-2, biases on, pre-LayerNorm)::

    x_0 = wte[idx] + wpe[t]
    a_l = x_l + attn(ln1(x_l)) @ proj_w + proj_b                   (attn: causal, fused QKV, H heads)
    x_{l+1} = a_l + phi(ln2(a_l) @ fc_w + fc_b) @ fcproj_w + fcproj_b   (phi: tanh-approximate GELU)
    logits = lnf(x_L) @ wte^T                                      (head tied to the token embedding)

Every weight is stored ``(fan_in, fan_out)`` so that a linear layer is ``y = x @ W + b``; all
parameters live in one flat vector ``theta`` laid out by :meth:`GPTConfig.layout`, and
:class:`Params` names its pieces (``wte``, ``h0.qkv_w``, ..., ``lnf_b``) as views.

Examples
--------
>>> from sigprop.gpt.model import GPTConfig, init_params
>>> cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11)
>>> p = init_params(cfg, seed=0)
>>> p["h0.qkv_w"].shape, p.theta.size == cfg.n_params
((16, 48), True)
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.printing.precedence import precedence

from .._checks import integer, positive
from .._codegen import activation_template_source, load_generated
from .._jit import prefer_sleeping_threads
from .._io import atomic_write_bytes, read_checked
from ..activations import _FullPrecisionPrinter, get_activation
from ..init import get_init

DTYPES = {"float32": np.float32, "float64": np.float64}
#: GPT-2's weight std (``init="gpt2"`` is ``scaled(0.02)`` for the linear layers).
GPT2_STD = 0.02
#: Linear layers whose output is added to the residual stream (scaled by 1/sqrt(2 n_layer)).
RESIDUAL_PROJECTIONS = ("proj_w", "fcproj_w")
#: The matrices whose fan_in and fan_out both grow with n_embd (muP's hidden weights).
HIDDEN_MATRICES = ("qkv_w", "proj_w", "fc_w", "fcproj_w")



_int, _positive = integer, positive


@dataclass(frozen=True)
class GPTConfig:
    """The transformer (saved in ``config.json`` with the training settings).

    Parameters
    ----------
    n_layer, n_head, n_embd, block_size, vocab_size : int
        Blocks, heads per block, residual width (a multiple of ``n_head``), context length,
        vocabulary size.
    activation : str
        MLP activation (a :func:`sigprop.activations.get_activation` name; GPT-2: ``gelu_tanh``).
    init : str
        ``"gpt2"`` (every linear weight N(0, 0.02)) or any :func:`sigprop.init.get_init` name
        (``xavier``, ``kaiming``, ``scaled(0.002)``, ...) for the linear layers.
    residual_scale : bool
        Multiply the std of the two residual projections by ``1/sqrt(2 n_layer)`` (GPT-2).
    embd_std : float
        std of the token and position embeddings.
    ln_eps : float
        LayerNorm's variance epsilon.
    dtype : {"float32", "float64"}
    parametrization : {"sp", "mup"}
        Width scaling (:mod:`sigprop.symbolic.mup`, Adam column): "mup" equals "sp" at ``base_width``
        and from there scales the init std of the hidden matrices (qkv, proj, fc, fcproj) by
        ``r^-1/2`` and their AdamW learning rate by ``r^-1`` (``r = n_embd / base_width``), and uses
        attention logits ``q.k / d`` (scaled to equal ``1/sqrt(d)`` at the base head size) instead of
        ``q.k / sqrt(d)``. The embeddings (input weights) keep their std and rate. The readout is
        tied to ``wte``: its logits get muP's output multiplier (:attr:`output_multiplier`, ``1/r``).
    base_width : int or None
        The ``n_embd`` at which muP equals SP (None: this model's ``n_embd``).
    """

    n_layer: int = 12
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    vocab_size: int = 65
    activation: str = "gelu_tanh"
    init: str = "gpt2"
    residual_scale: bool = True
    embd_std: float = GPT2_STD
    ln_eps: float = 1e-5
    dtype: str = "float32"
    parametrization: str = "sp"
    base_width: int | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name, lo in (("n_layer", 1), ("n_head", 1), ("n_embd", 1), ("block_size", 1), ("vocab_size", 2)):
            set_(name, _int(name, getattr(self, name), lo))
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be a multiple of n_head, got n_embd {self.n_embd} and n_head {self.n_head}")
        set_("activation", get_activation(self.activation).name)
        set_("init", "gpt2" if self.init == "gpt2" else get_init(self.init).name)
        set_("residual_scale", bool(self.residual_scale))
        set_("embd_std", _positive("embd_std", self.embd_std, allow_zero=True))
        set_("ln_eps", _positive("ln_eps", self.ln_eps))
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.parametrization not in ("sp", "mup"):
            raise ValueError(f"parametrization must be 'sp' or 'mup', got {self.parametrization!r}")
        if self.base_width is not None:
            set_("base_width", _int("base_width", self.base_width, 1))
            if self.base_width % self.n_head:
                raise ValueError(f"base_width must be a multiple of n_head, got {self.base_width} and {self.n_head}")

    @property
    def width_ratio(self) -> float:
        """``r = n_embd / base_width`` (1 without a base width)."""
        return 1.0 if self.base_width is None else self.n_embd / self.base_width

    def _mup_row(self, kind: str, optimizer: str = "adam"):
        """(multiplier, std factor, lr factor) of a kind of tensor (sigprop.symbolic.mup.scalings)."""
        from ..symbolic.mup import TENSORS, scalings
        return scalings(self.parametrization, optimizer).numeric(self.width_ratio)[TENSORS.index(kind)]

    @property
    def attn_scale(self) -> float:
        """Attention logits are ``q.k * attn_scale``: ``1/sqrt(d)`` in SP; in muP ``1/d`` times the
        constant that makes it ``1/sqrt(d0)`` at the base head size ``d0``
        (:func:`sigprop.symbolic.mup.attention_logit_scale`)."""
        from ..symbolic.mup import attention_logit_scale
        d = self.head_size
        sp_scale = attention_logit_scale("sp").numeric
        if self.parametrization == "sp":
            return float(sp_scale(d))
        d0 = d if self.base_width is None else self.base_width // self.n_head
        mup_scale = attention_logit_scale("mup").numeric
        return float(mup_scale(d) / mup_scale(d0) * sp_scale(d0))

    @property
    def output_multiplier(self) -> float:
        """Factor on the tied head's logits ``lnf(x) @ wte^T``: 1 in SP (GPT-2).

        In muP the output weight's row of :func:`sigprop.symbolic.mup.scalings` (Adam) is
        (multiplier, std, lr) = (1, r^-1, r^-1). The tied matrix is ``wte``, which keeps the
        embedding's std and rate, so the abc symmetry (a, b, c) -> (a + theta, b - theta, c - theta)
        with ``r^-theta`` = the std factor moves that factor into the multiplier: ``1/r``, and the rate
        left over (lr / std) must be the embedding's (checked)."""
        if self.parametrization == "sp":
            return 1.0
        mult, std, lr = (float(v) for v in self._mup_row("output_weight"))
        _, std_in, lr_in = (float(v) for v in self._mup_row("input_weight"))
        if not (math.isclose(std_in, 1.0) and math.isclose(lr / std, lr_in)):
            raise ValueError("the tied head needs the output row's rate over its std to equal the embedding's")
        return mult * std

    def lr_segments(self) -> list:
        """``[(lr factor, segments)]``: the AdamW segments (:meth:`decay_segments` rows) grouped by
        learning-rate factor; one group of factor 1 in SP."""
        hidden = float(self._mup_row("hidden_weight")[2])
        groups = {}
        k = 0
        for name, shape, decay in self.layout():
            n = int(np.prod(shape))
            short = name.split(".")[-1]
            f = hidden if short in HIDDEN_MATRICES else 1.0
            rows = groups.setdefault(f, [])
            if rows and rows[-1][1] == k and rows[-1][2] == int(decay):
                rows[-1][1] = k + n
            else:
                rows.append([k, k + n, int(decay)])
            k += n
        return [(f, np.array(rows, dtype=np.int64)) for f, rows in groups.items()]

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def np_dtype(self):
        return DTYPES[self.dtype]

    def layout(self) -> list:
        """``[(name, shape, decay)]`` in storage order; ``decay`` marks the matrices AdamW decays."""
        C, V, T = self.n_embd, self.vocab_size, self.block_size
        out = [("wte", (V, C), True), ("wpe", (T, C), True)]
        for l in range(self.n_layer):
            out += [(f"h{l}.ln1_w", (C,), False), (f"h{l}.ln1_b", (C,), False),
                    (f"h{l}.qkv_w", (C, 3 * C), True), (f"h{l}.qkv_b", (3 * C,), False),
                    (f"h{l}.proj_w", (C, C), True), (f"h{l}.proj_b", (C,), False),
                    (f"h{l}.ln2_w", (C,), False), (f"h{l}.ln2_b", (C,), False),
                    (f"h{l}.fc_w", (C, 4 * C), True), (f"h{l}.fc_b", (4 * C,), False),
                    (f"h{l}.fcproj_w", (4 * C, C), True), (f"h{l}.fcproj_b", (C,), False)]
        return out + [("lnf_w", (C,), False), ("lnf_b", (C,), False)]

    def offsets(self) -> dict:
        """name -> (start, stop, shape) in the flat vector."""
        table, k = {}, 0
        for name, shape, _ in self.layout():
            n = int(np.prod(shape))
            table[name] = (k, k + n, shape)
            k += n
        return table

    @cached_property
    def n_params(self) -> int:
        return sum(int(np.prod(shape)) for _, shape, _ in self.layout())

    def decay_segments(self) -> np.ndarray:
        """(S, 3) int64 rows (start, stop, decay) covering theta, for the AdamW kernel."""
        rows, k = [], 0
        for _, shape, decay in self.layout():
            n = int(np.prod(shape))
            if rows and rows[-1][2] == int(decay):
                rows[-1][1] = k + n
            else:
                rows.append([k, k + n, int(decay)])
            k += n
        return np.array(rows, dtype=np.int64)

    def weight_std(self, name: str) -> float:
        """The init std of a weight matrix (``h{l}.qkv_w`` or its short name ``qkv_w``)."""
        short = name.split(".")[-1]
        if short in ("wte", "wpe"):
            return self.embd_std
        C = self.n_embd
        fan = {"qkv_w": (C, 3 * C), "proj_w": (C, C), "fc_w": (C, 4 * C), "fcproj_w": (4 * C, C)}
        if short not in fan:
            raise ValueError(f"no weight matrix named {name!r}")
        activation = self.activation if short == "fc_w" else "linear"
        std = GPT2_STD if self.init == "gpt2" else get_init(self.init).weight_std(*fan[short], activation)
        if self.residual_scale and short in RESIDUAL_PROJECTIONS:
            std /= math.sqrt(2 * self.n_layer)
        if self.parametrization == "mup" and self.base_width is not None:
            # muP: the std this matrix has at the base width, times r^-b (hidden: b = 1/2)
            base = self.replace(n_embd=self.base_width, parametrization="sp", base_width=None)
            std = base.weight_std(name) * float(self._mup_row("hidden_weight")[1])
        return std

    def replace(self, **changes) -> "GPTConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"GPTConfig has no field {sorted(unknown)[0]!r}")
        return cls(**d)


class Params:
    """A config and its flat parameter vector; ``params[name]`` is a view of one tensor."""

    def __init__(self, config: GPTConfig, theta: np.ndarray):
        theta = np.ascontiguousarray(theta, dtype=config.np_dtype)
        if theta.shape != (config.n_params,):
            raise ValueError(f"parameter vector has {theta.size} entries, the config needs {config.n_params}")
        self.config = config
        self.theta = theta
        self.views = views(config, theta)

    def __getitem__(self, name) -> np.ndarray:
        return self.views[name]

    def names(self) -> list:
        return list(self.views)

    def copy(self) -> "Params":
        return Params(self.config, self.theta.copy())

    def astype(self, dtype: str) -> "Params":
        return Params(self.config.replace(dtype=dtype), self.theta.astype(DTYPES[dtype]))

    def save(self, path) -> Path:
        buf = io.BytesIO()
        np.savez(buf, format=np.array("sigprop.gpt.Params"), config=np.array(json.dumps(self.config.to_dict())),
                 theta=self.theta)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path) -> "Params":
        def read(p):
            with np.load(p, allow_pickle=False) as z:
                return cls(GPTConfig.from_dict(json.loads(str(z["config"]))), z["theta"])
        return read_checked(path, "GPT parameters", {".npz": read})


def views(config: GPTConfig, flat: np.ndarray) -> dict:
    """name -> view of ``flat`` (parameters or their gradients, same layout)."""
    return {name: flat[a:b].reshape(shape) for name, (a, b, shape) in config.offsets().items()}


def init_params(config: GPTConfig, seed: int = 0, rng: np.random.Generator | None = None) -> Params:
    """Draw the initial parameters: embeddings N(0, embd_std); linear weights by ``config.init``
    (GPT-2: N(0, 0.02)), residual projections scaled by 1/sqrt(2 n_layer) when
    ``residual_scale``; biases 0; LayerNorm weights 1, biases 0."""
    rng = np.random.default_rng(seed) if rng is None else rng
    theta = np.zeros(config.n_params, dtype=np.float64)
    p = views(config, theta)
    scheme = None if config.init == "gpt2" else get_init(config.init)
    for name, shape, _ in config.layout():
        short = name.split(".")[-1]
        if short in ("wte", "wpe"):
            p[name][...] = rng.standard_normal(shape) * config.embd_std
        elif short.endswith("_w") and len(shape) == 2:
            std = config.weight_std(name)
            if scheme is None:
                p[name][...] = rng.standard_normal(shape) * std
            else:
                from ..init import sample_weights
                p[name][...] = sample_weights(rng, scheme.distribution, std, *shape)
        elif short in ("ln1_w", "ln2_w", "lnf_w"):
            p[name][...] = 1.0
    return Params(config, theta.astype(config.np_dtype))


# ----------------------------------------------------------------------------------------------
# Generated kernels (the template's activation block replaced by the activation's sympy source)
# ----------------------------------------------------------------------------------------------
def typed_fused_source(activation) -> str:
    """Python source of ``phi_dphi(x)`` like :meth:`sigprop.activations.Activation.numba_source_fused`
    (the same sympy expressions and ``cse``), with every constant subexpression written as
    ``_like(x, constant)``: the constant in the argument's float type. The float64 kernels compute
    what the plain source computes; the float32 ones stay in float32 (the plain source's Python-float
    constants would promote every operation to float64). Integer powers stay integer (``x**3``).

    Examples
    --------
    >>> print(typed_fused_source("tanh").splitlines()[-1])
        return x0, _like(x, 1) - x0**2
    """
    act = get_activation(activation)
    printer = _TypedConstantPrinter({"fully_qualified_modules": True})
    shared, (e_phi, e_dphi) = sp.cse(list(act.numeric_exprs()), symbols=sp.numbered_symbols("x", real=True))
    lines = [f"    {printer.doprint(s)} = {printer.doprint(e)}\n" for s, e in shared]
    return (f"# generated by sigprop from the sympy expression of {act.name}, constants in x's type\n"
            "def phi_dphi(x):\n" + "".join(lines) + f"    return {printer.doprint(e_phi)}, {printer.doprint(e_dphi)}\n")


class _TypedConstantPrinter(_FullPrecisionPrinter):
    """Prints every number-valued subexpression (not integer exponents) as ``_like(x, value)``."""

    _in_number = False

    def _print(self, expr, **kwargs):
        if not self._in_number and isinstance(expr, sp.Basic) and expr.is_number:
            self._in_number = True
            try:
                return f"_like(x, {super()._print(expr, **kwargs)})"
            finally:
                self._in_number = False
        return super()._print(expr, **kwargs)

    def _print_Pow(self, expr, rational=False):
        if not self._in_number and expr.exp.is_Integer and expr.exp > 0:
            return f"{self.parenthesize(expr.base, precedence(expr))}**{int(expr.exp)}"
        return super()._print_Pow(expr, rational)


_KERNELS: dict = {}


def load_kernels(activation="gelu_tanh"):
    """The compiled-kernel module for the MLP ``activation`` (written to the kernel cache on first use):
    the template with the activation's sympy-printed source, its ``phi_dphi`` in the argument's
    float type (:func:`typed_fused_source`)."""
    prefer_sleeping_threads()   # before the first parallel launch picks numba's threading layer
    act = get_activation(activation)
    memo = (act.name, act.key)
    if memo not in _KERNELS:
        here = Path(__file__).parent
        source = activation_template_source(here / "kernels.py", act, "sigprop.gpt")
        fused = act.numba_source_fused()
        if source.count(fused) != 1:
            raise RuntimeError("the generated GPT kernels do not hold the activation's fused source once")
        source = source.replace(fused, typed_fused_source(act))
        _KERNELS[memo] = load_generated("sigprop_gpt_kernels", source, here.parent / "charmlp" / "vmath.py")
    return _KERNELS[memo]
