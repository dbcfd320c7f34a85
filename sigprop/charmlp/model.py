"""The character MLP: architecture, parameter layout, initialisation and compiled kernels.

A :class:`Model` is the architecture (vocabulary, context length, embedding
size, hidden widths, activation, BatchNorm, float type). Its parameters live in
one flat vector ``theta`` (and the BatchNorm running statistics in ``bnstate``),
laid out by :meth:`Model.layout`; :class:`Params` pairs a model with those
vectors and names the pieces (``C``, ``W1``, ``b1`` or ``gamma1``/``beta1``, ...,
``W_out``, ``b_out``), each weight shown as ``(fan_in, fan_out)``.

The numba kernels (:mod:`sigprop.charmlp.kernels`) are generated per activation
by :func:`load_kernels`: the template's activation block is replaced by the
activation's sympy-printed ``phi``/``dphi``, and the module is written to a cache
folder (``$SIGPROP_CACHE_DIR`` or ``~/.cache/sigprop/kernels``) where numba caches
its compiled code.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._codegen import activation_template_source, load_activation_module
from .._io import atomic_write_npz, read_checked
from ..activations import Activation, get_activation
from ..init import get_init, sample_weights

#: Output-layer weight scale of the "output fix" (makemore part 3: ``W2 * 0.01``, ``b2 * 0``).
OUTPUT_FIX_SCALE = 0.01
#: BatchNorm defaults (makemore: running statistics with momentum 0.001, eps 1e-5).
BN_MOMENTUM = 0.001
BN_EPS = 1e-5

DTYPES = {"float32": np.float32, "float64": np.float64}

_TEMPLATE = Path(__file__).parent / "kernels.py"


# ----------------------------------------------------------------------------------------------
# Generated kernels
# ----------------------------------------------------------------------------------------------
def kernel_source(activation) -> str:
    """Source of the kernel module for ``activation``: the template with its activation block
    replaced by ``activation.numba_source()`` (elementary functions from :mod:`.vmath`)."""
    return activation_template_source(_TEMPLATE, activation, "sigprop.charmlp")


def load_kernels(activation):
    """The compiled-kernel module for ``activation`` (written to :func:`cache_dir` on first use)."""
    return load_activation_module(_TEMPLATE, activation, "sigprop.charmlp")


# ----------------------------------------------------------------------------------------------
# Architecture and layout
# ----------------------------------------------------------------------------------------------
class Model:
    """Architecture of the character MLP.

    ``x_0`` = concatenated embeddings of the ``block_size`` previous characters
    (``C[vocab, n_embd]``); hidden layers ``h_l = x_{l-1} W_l + b_l`` (or BatchNorm
    of ``x_{l-1} W_l`` with gain/bias), ``x_l = phi(h_l)``; logits
    ``x_L W_out + b_out``; softmax cross-entropy.

    Parameters
    ----------
    vocab : str
        Vocabulary, ``'.'`` first.
    block_size, n_embd : int
    widths : sequence of int
        Hidden widths.
    activation : str or Activation
    batch_norm : bool
    dtype : {"float32", "float64"}
    bn_eps : float
        BatchNorm's variance epsilon.
    """

    def __init__(self, vocab: str, block_size: int, n_embd: int, widths, activation="tanh",
                 batch_norm: bool = False, dtype: str = "float32", bn_eps: float = BN_EPS):
        self.vocab = str(vocab)
        self.block_size = int(block_size)
        self.n_embd = int(n_embd)
        self.widths = tuple(int(w) for w in widths)
        self.activation: Activation = get_activation(activation)
        self.batch_norm = bool(batch_norm)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.dtype_name = dtype
        self.dtype = DTYPES[dtype]
        self.bn_eps = float(bn_eps)
        self._build_layout()

    @property
    def V(self) -> int:
        return len(self.vocab)

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def input_dim(self) -> int:
        """Dimension of ``x_0``: ``block_size * n_embd``."""
        return self.block_size * self.n_embd

    @property
    def fans(self) -> tuple:
        """``(n_0, n_1, ..., n_L, V)``."""
        return (self.input_dim,) + self.widths + (self.V,)

    def _build_layout(self):
        from . import kernels as K
        L = self.depth
        lay = np.full((L + 1, K.N_COLS), -1, dtype=np.int64)
        names = {}  # name -> (offset, stored shape, transposed)
        bn_names = {}
        off = 0

        def take(name, shape, transposed=False):
            nonlocal off
            names[name] = (off, shape, transposed)
            start = off
            off += int(np.prod(shape))
            return start

        take("C", (self.V, self.n_embd))
        fans = self.fans
        bn_off = 0
        for r in range(L + 1):
            n_in, n_out = fans[r], fans[r + 1]
            out = r == L
            label = "_out" if out else str(r + 1)
            trans = n_out < n_in
            lay[r, K.N_IN], lay[r, K.N_OUT], lay[r, K.TRANS] = n_in, n_out, int(trans)
            lay[r, K.W] = take(f"W{label}", (n_out, n_in) if trans else (n_in, n_out), trans)
            if self.batch_norm and not out:
                lay[r, K.GAMMA] = take(f"gamma{label}", (n_out,))
                lay[r, K.BETA] = take(f"beta{label}", (n_out,))
                lay[r, K.RMEAN], lay[r, K.RVAR] = bn_off, bn_off + n_out
                bn_names[f"running_mean{label}"] = (bn_off, (n_out,), False)
                bn_names[f"running_var{label}"] = (bn_off + n_out, (n_out,), False)
                bn_off += 2 * n_out
            else:
                lay[r, K.BIAS] = take(f"b{label}", (n_out,))
        self._lay = lay
        self.param_index = names
        self.bn_index = bn_names
        self.n_params = off
        self.n_bnstate = bn_off

    def layout(self, batch: int) -> tuple[np.ndarray, int, int]:
        """The layout table with workspace offsets for batches of ``batch`` rows, the workspace
        size and the size of the transpose scratch buffer."""
        from . import kernels as K
        lay = self._lay.copy()
        B = int(batch)
        off = 0

        def take(n):
            nonlocal off
            start = off
            off += n
            return start

        L = self.depth
        prev_x = take(B * self.input_dim)       # x_0
        prev_gx = take(B * self.input_dim)      # dL/dx_0
        for r in range(L + 1):
            n = lay[r, K.N_OUT]
            lay[r, K.XIN], lay[r, K.GXIN] = prev_x, prev_gx
            lay[r, K.Z] = take(B * n)
            lay[r, K.GZ] = take(B * n)
            if r == L:
                break
            if self.batch_norm:
                lay[r, K.XHAT] = take(B * n)
                lay[r, K.H] = take(B * n)
                lay[r, K.GH] = take(B * n)
                lay[r, K.MEAN] = take(n)
                lay[r, K.ISTD] = take(n)
            else:
                lay[r, K.H] = lay[r, K.Z]
                lay[r, K.GH] = lay[r, K.GZ]
            lay[r, K.X] = take(B * n)
            lay[r, K.DPHI] = take(B * n)
            lay[r, K.GX] = take(B * n)
            prev_x, prev_gx = lay[r, K.X], lay[r, K.GX]
        tmp = max(self.fans) * B
        return lay, off, tmp

    def memory_estimate(self, batch: int) -> int:
        """Bytes of the parameters, their gradient, the BatchNorm state and the kernels'
        workspace for batches of ``batch`` rows (computed from the layout, nothing allocated)."""
        _, n_ws, n_tmp = self.layout(batch)
        return np.dtype(self.dtype).itemsize * (2 * self.n_params + 2 * self.n_bnstate + n_ws + n_tmp) \
            + 4 * batch * (self.block_size + 1)

    # --- parameters -----------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator, init="kaiming", output_fix: bool = True,
                    parametrization: str = "sp", base_width: int | None = None):
        """Draw ``theta`` and ``bnstate``.

        ``C ~ N(0, 1)``; hidden ``W_l`` from the init scheme (``std = sigma_w / sqrt(fan_in)``,
        gain from the activation), biases 0, BatchNorm gain 1, bias 0, running mean 0 and
        variance 1. Output layer: with ``output_fix``, ``W_out = 0.01 N(0, 1)`` and
        ``b_out = 0`` (makemore part 3); without, ``W_out`` from the scheme as a linear
        layer and ``b_out ~ N(0, 1)``. Draws are made in float64, in that order, and cast.

        ``parametrization="mup"``: every weight's std is the std it would have in the same
        model at ``base_width`` times ``r^-b`` (:func:`sigprop.symbolic.mup.scalings`, ``r`` =
        its growing dimension / ``base_width``; see :meth:`tensor_kinds`), drawn from the same
        random numbers. At ``base_width`` it is the "sp" model; "sp" is the scheme as it stands.
        """
        scheme = get_init(init)
        std_factor = self._mup_std_factors(scheme, output_fix, parametrization, base_width)
        theta = np.zeros(self.n_params, dtype=self.dtype)
        bnstate = np.zeros(self.n_bnstate, dtype=self.dtype)

        def put(name, value):
            off, shape, trans = self.param_index[name]
            value = value * std_factor.get(name, 1.0)
            value = value.T if trans else value
            theta[off:off + value.size] = np.ascontiguousarray(value).reshape(-1)

        put("C", rng.standard_normal((self.V, self.n_embd)))
        fans = self.fans
        for r in range(self.depth):
            label = str(r + 1)
            put(f"W{label}", scheme.sample(rng, fans[r], fans[r + 1], self.activation.name, np.float64))
            if self.batch_norm:
                put(f"gamma{label}", np.ones(fans[r + 1]))
        n_L = fans[-2]
        if output_fix:
            put("W_out", OUTPUT_FIX_SCALE * rng.standard_normal((n_L, self.V)))
        else:
            put("W_out", sample_weights(rng, scheme.distribution, scheme.output_weight_std(n_L, self.V),
                                        n_L, self.V, np.float64))
            put("b_out", rng.standard_normal(self.V))
        for name, (off, shape, _) in self.bn_index.items():
            if name.startswith("running_var"):
                bnstate[off:off + shape[0]] = 1.0
        return theta, bnstate

    # --- width scaling (SP / muP) -------------------------------------------------------------
    def tensor_kinds(self) -> dict:
        """Name -> ``(kind, growing dimension)`` for :mod:`sigprop.symbolic.mup`: ``W1`` is the input
        weight (fan_out), ``W2..WL`` hidden weights (fan_in), ``W_out`` the output weight (fan_in),
        hidden biases and BatchNorm gains/biases hidden biases (fan_out), ``b_out`` the output bias;
        the embedding ``C`` (vocabulary x n_embd, neither grows with width) is not scaled (None)."""
        fans = self.fans
        kinds = {"C": (None, 1)}
        L = self.depth
        for r in range(L):
            label = str(r + 1)
            kinds[f"W{label}"] = ("input_weight", fans[1]) if r == 0 else ("hidden_weight", fans[r])
            for p in ("b", "gamma", "beta"):
                if f"{p}{label}" in self.param_index:
                    kinds[f"{p}{label}"] = ("hidden_bias", fans[r + 1])
        kinds["W_out"] = ("output_weight", fans[L])
        if "b_out" in self.param_index:
            kinds["b_out"] = ("output_bias", 1)
        return kinds

    def _scalings(self, parametrization, optimizer, base_width):
        """Name -> (multiplier, std factor, learning-rate factor) from the derivation."""
        from ..symbolic.mup import TENSORS, scalings
        s = scalings(parametrization, optimizer)
        base = self._base_width(base_width)
        out = {}
        for name, (kind, dim) in self.tensor_kinds().items():
            if kind is None:
                out[name] = (1.0, 1.0, 1.0)
                continue
            ratio = 1.0 if kind == "output_bias" else dim / base
            row = s.numeric(ratio)[TENSORS.index(kind)]
            out[name] = tuple(float(v) for v in row)
        return out

    def _base_width(self, base_width):
        if base_width is None:
            return float(max(self.widths))
        if isinstance(base_width, bool) or not isinstance(base_width, (int, np.integer)) or base_width < 1:
            raise ValueError(f"base_width must be an integer >= 1, got {base_width!r}")
        return float(base_width)

    def _mup_std_factors(self, scheme, output_fix, parametrization, base_width) -> dict:
        """Name -> factor on the std the scheme draws at this width (empty for "sp")."""
        if parametrization not in ("sp", "mup"):
            raise ValueError(f"parametrization must be 'sp' or 'mup', got {parametrization!r}")
        if parametrization == "sp":
            return {}
        base = self._base_width(base_width)
        sc = self._scalings("mup", "sgd", base_width)        # init exponents are the same for both optimisers
        fans = self.fans
        act = self.activation.name
        factors = {}
        for name, (kind, dim) in self.tensor_kinds().items():
            if kind not in ("input_weight", "hidden_weight", "output_weight"):
                continue                                     # C, biases, gains: widths do not enter their std
            mult, std_r, _ = sc[name]
            assert mult == 1.0
            r = int(name[1:]) - 1 if name != "W_out" else self.depth
            fi, fo = fans[r], fans[r + 1]
            fi0 = base if kind in ("hidden_weight", "output_weight") else fi
            fo0 = base if kind in ("input_weight", "hidden_weight") else fo
            if name == "W_out":
                now = OUTPUT_FIX_SCALE if output_fix else scheme.output_weight_std(fi, fo)
                at_base = OUTPUT_FIX_SCALE if output_fix else scheme.output_weight_std(int(fi0), fo)
            else:
                now = scheme.weight_std(fi, fo, act)
                at_base = scheme.weight_std(int(fi0), int(fo0), act)
            factors[name] = at_base * std_r / now
        return factors

    def lr_multipliers(self, parametrization: str = "sp", optimizer: str = "sgd", base_width=None) -> np.ndarray:
        """Per-parameter learning-rate factors (float64, layout of ``theta``) from
        :func:`sigprop.symbolic.mup.scalings`: all 1 in SP; in muP ``r^-c`` per tensor."""
        if parametrization not in ("sp", "mup"):
            raise ValueError(f"parametrization must be 'sp' or 'mup', got {parametrization!r}")
        mult = np.ones(self.n_params, dtype=np.float64)
        for name, (_, _, lr_r) in self._scalings(parametrization, optimizer, base_width).items():
            off, shape, _ = self.param_index[name]
            mult[off:off + int(np.prod(shape))] = lr_r
        return mult

    def named(self, theta, bnstate=None, copy=True) -> dict:
        """Name -> array; weights as ``(fan_in, fan_out)`` (a transposed copy where stored the other way)."""
        out = {}
        for name, (off, shape, trans) in self.param_index.items():
            a = theta[off:off + int(np.prod(shape))].reshape(shape)
            a = a.T if trans else a
            out[name] = a.copy() if copy else a
        if bnstate is not None:
            for name, (off, shape, _) in self.bn_index.items():
                a = bnstate[off:off + shape[0]]
                out[name] = a.copy() if copy else a
        return out

    def weight_names(self) -> list:
        """Names of the 2-d parameters: ``C``, ``W1`` ... ``WL``, ``W_out``."""
        return ["C"] + [f"W{l}" for l in range(1, self.depth + 1)] + ["W_out"]

    @property
    def kernels(self):
        return load_kernels(self.activation)

    def to_dict(self) -> dict:
        return {"vocab": self.vocab, "block_size": self.block_size, "n_embd": self.n_embd,
                "widths": list(self.widths), "activation": self.activation.name,
                "batch_norm": self.batch_norm, "dtype": self.dtype_name, "bn_eps": self.bn_eps}

    @classmethod
    def from_dict(cls, d) -> "Model":
        return cls(d["vocab"], d["block_size"], d["n_embd"], d["widths"], d["activation"], d["batch_norm"],
                   d["dtype"], d.get("bn_eps", BN_EPS))


class Params:
    """Trained (or initial) parameters of a :class:`Model`.

    Attributes
    ----------
    model : Model
    theta : ndarray
        All parameters, flat (layout: :attr:`Model.param_index`).
    bnstate : ndarray
        BatchNorm running means and variances (empty without BatchNorm).
    """

    def __init__(self, model: Model, theta, bnstate):
        self.model = model
        self.theta = np.ascontiguousarray(theta, dtype=model.dtype)
        self.bnstate = np.ascontiguousarray(bnstate, dtype=model.dtype)
        if self.theta.shape != (model.n_params,) or self.bnstate.shape != (model.n_bnstate,):
            raise ValueError("parameter vector does not match the model's layout")

    def __getitem__(self, name) -> np.ndarray:
        arrays = self.arrays()
        if name not in arrays:
            raise KeyError(f"no parameter {name!r}; parameters: {', '.join(arrays)}")
        return arrays[name]

    def arrays(self) -> dict:
        """Name -> array copy (weights as ``(fan_in, fan_out)``)."""
        return self.model.named(self.theta, self.bnstate)

    def copy(self) -> "Params":
        return Params(self.model, self.theta.copy(), self.bnstate.copy())

    def to_npz_dict(self, prefix="") -> dict:
        return {f"{prefix}theta": self.theta, f"{prefix}bnstate": self.bnstate,
                f"{prefix}model": np.array(json.dumps(self.model.to_dict()))}

    @classmethod
    def from_npz(cls, z, prefix="") -> "Params":
        model = Model.from_dict(json.loads(str(z[f"{prefix}model"])))
        return cls(model, z[f"{prefix}theta"], z[f"{prefix}bnstate"])

    def save(self, path) -> Path:
        """Write to ``.npz`` atomically (exact)."""
        return atomic_write_npz(path, format=np.array("sigprop.charmlp.Params"), **self.to_npz_dict())

    @classmethod
    def load(cls, path) -> "Params":
        """Read parameters from a file written by :meth:`save` or a training checkpoint."""
        def from_npz(path):
            with np.load(path, allow_pickle=False) as z:
                return cls.from_npz(z, "params/" if "params/theta" in z.files else "")
        return read_checked(path, "character-MLP parameters", {".npz": from_npz}, errors=(ValueError,))
