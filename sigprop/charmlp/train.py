"""Training the character MLP: configuration, the step loop, checkpoints, evaluation, sampling.

The whole inner loop (minibatch draw, forward, loss, backward, SGD update) runs
inside one compiled numba call per chunk of steps; Python only plans chunks,
records diagnostics every ``diag_every`` steps and writes checkpoints.

Reproducibility: the seed is split (``numpy.random.SeedSequence.spawn``) into an
init stream, a minibatch stream and a probe stream. Minibatch indices come from
the raw 64-bit outputs of the minibatch generator (:func:`kernels.draw_batch`),
so drawing them in chunks of any size gives the same indices, and a run resumed
from a checkpoint (parameters, BatchNorm statistics, generator state, step,
diagnostics) continues bitwise identically to an uninterrupted one.

Examples
--------
>>> from sigprop.charmlp import TrainConfig, train, sample
>>> cfg = TrainConfig(steps=200, width=32, diag_every=100, seed=1)
>>> result = train(cfg, progress=False)
>>> result.diagnostics.steps
[0, 100]
>>> len(sample(result.params, 3, seed=0))
3
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .._io import atomic_write_npz, atomic_write_text, dumps_json, from_fields, read_checked
from ..activations import DEFAULT_SATURATION_THRESHOLD
from .._checks import integer, positive
from ..memory import check_fits
from ..progress import Progress
from ..spec import LayerStats, NetSpec
from .data import build_dataset, build_vocab, load_words, split_words
from .diagnostics import Diagnostics, hist_edges, measure
from .model import BN_EPS, BN_MOMENTUM, DTYPES, Model, Params

_CKPT_FORMAT = "sigprop.charmlp.Checkpoint"
#: Rows per chunk when evaluating a whole split.
EVAL_BATCH = 1024
#: Examples in the probe batch of the initial diagnostics (``Diagnostics.init_stats``).
PROBE_BATCH = 2048
#: Raw minibatch draws per compiled chunk of steps at most (the indices do not depend on it).
RAW_DRAWS = 2 ** 22


_int, _pos = integer, positive


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved as ``config.json`` beside results).

    Parameters
    ----------
    layers : int
        Number of hidden layers.
    width : int or sequence of int
        Width of every hidden layer, or one per layer.
    n_embd, block_size : int
        Embedding size and context length (input dimension ``block_size * n_embd``).
    activation : str
        A :func:`sigprop.activations.get_activation` name (tanh, relu, ...).
    init : str
        A :func:`sigprop.init.get_init` name: standard_normal, kaiming, xavier, scaled(0.2), ...
    batch_norm : bool
        BatchNorm after every hidden linear layer (that layer then has no bias).
    output_fix : bool
        makemore's fix of the initial loss: output weights ``0.01 N(0, 1)`` and bias 0.
    steps, batch_size : int
    lr, lr_decayed : float
        SGD learning rate before and after ``lr_decay_step`` (default ``steps // 2``).
    seed : int
        Initialisation, minibatches and probe batch.
    split_seed : int
        Train/dev/test split of the words (80/10/10).
    diag_every : int
        Record layer diagnostics every this many steps (0: never).
    checkpoint_every : int
        Write a checkpoint every this many steps when an output folder is given (0: only at the end).
    dtype : {"float32", "float64"}
    data : str or None
        Words file, one per line (None: the embedded names dataset).
    bn_momentum, bn_eps : float
        BatchNorm running-statistics momentum and variance epsilon.
    threshold : float
        Saturation threshold of the diagnostics (``|tanh h| > threshold``).
    parametrization : {"sp", "mup"}
        Width scaling of the initial stds and learning rates (:func:`sigprop.symbolic.mup.scalings`):
        "sp" is the init scheme with one learning rate; "mup" equals it at ``base_width`` and
        scales every tensor from there.
    base_width : int or None
        The width at which muP equals SP (None: the widest hidden layer, so the model itself).
    optimizer : {"sgd", "adam"}
        Plain SGD, or AdamW (``beta1``, ``beta2``, ``adam_eps``, decoupled ``weight_decay``).
    """

    layers: int = 1
    width: object = 200
    n_embd: int = 10
    block_size: int = 3
    activation: str = "tanh"
    init: str = "kaiming"
    batch_norm: bool = False
    output_fix: bool = True
    steps: int = 200_000
    batch_size: int = 32
    lr: float = 0.1
    lr_decay_step: int | None = None
    lr_decayed: float = 0.01
    seed: int = 42
    split_seed: int = 42
    diag_every: int = 100
    checkpoint_every: int = 10_000
    dtype: str = "float32"
    data: str | None = None
    bn_momentum: float = BN_MOMENTUM
    bn_eps: float = BN_EPS
    threshold: float = DEFAULT_SATURATION_THRESHOLD
    parametrization: str = "sp"
    base_width: int | None = None
    optimizer: str = "sgd"
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self):
        from ..activations import get_activation
        from ..init import get_init
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("layers", _int("layers", self.layers, 1))
        w = self.width
        if isinstance(w, (list, tuple)):
            ws = tuple(_int("width", x, 1) for x in w)
            if len(ws) != self.layers:
                raise ValueError(f"width needs 1 or {self.layers} values (one per layer), got {len(ws)}")
            set_("width", ws if len(set(ws)) > 1 else ws[0])
        else:
            set_("width", _int("width", w, 1))
        set_("n_embd", _int("n_embd", self.n_embd, 1))
        set_("block_size", _int("block_size", self.block_size, 1))
        set_("activation", get_activation(self.activation).name)
        set_("init", get_init(self.init).name)
        set_("batch_norm", bool(self.batch_norm))
        set_("output_fix", bool(self.output_fix))
        set_("steps", _int("steps", self.steps, 0))
        set_("batch_size", _int("batch_size", self.batch_size, 2 if self.batch_norm else 1))
        set_("lr", _pos("lr", self.lr, allow_zero=True))
        if self.lr_decay_step is not None:
            set_("lr_decay_step", _int("lr_decay_step", self.lr_decay_step, 0))
        set_("lr_decayed", _pos("lr_decayed", self.lr_decayed, allow_zero=True))
        set_("seed", _int("seed", self.seed, 0))
        set_("split_seed", _int("split_seed", self.split_seed, 0))
        set_("diag_every", _int("diag_every", self.diag_every, 0))
        set_("checkpoint_every", _int("checkpoint_every", self.checkpoint_every, 0))
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.data is not None:
            set_("data", str(self.data))
        m = _pos("bn_momentum", self.bn_momentum, allow_zero=True)
        if m > 1:
            raise ValueError(f"bn_momentum must be in [0, 1], got {m}")
        set_("bn_momentum", m)
        set_("bn_eps", _pos("bn_eps", self.bn_eps))
        t = _pos("threshold", self.threshold)
        if not t < 1:
            raise ValueError(f"threshold must be in (0, 1), got {t}")
        set_("threshold", t)
        if self.parametrization not in ("sp", "mup"):
            raise ValueError(f"parametrization must be 'sp' or 'mup', got {self.parametrization!r}")
        if self.base_width is not None:
            set_("base_width", _int("base_width", self.base_width, 1))
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        for k in ("beta1", "beta2"):
            b = _pos(k, getattr(self, k), allow_zero=True)
            if not b < 1:
                raise ValueError(f"{k} must be in [0, 1), got {b}")
            set_(k, b)
        set_("adam_eps", _pos("adam_eps", self.adam_eps))
        set_("weight_decay", _pos("weight_decay", self.weight_decay, allow_zero=True))
        if self.weight_decay and self.optimizer != "adam":
            raise ValueError("weight_decay needs optimizer='adam' (decoupled weight decay of AdamW)")

    @property
    def widths(self) -> tuple:
        return self.width if isinstance(self.width, tuple) else (self.width,) * self.layers

    @property
    def decay_step(self) -> int:
        """First step that uses ``lr_decayed``."""
        return self.steps // 2 if self.lr_decay_step is None else self.lr_decay_step

    def lr_at(self, steps: np.ndarray) -> np.ndarray:
        """Learning rate of each step: ``lr`` before :attr:`decay_step`, ``lr_decayed`` after."""
        return np.where(np.asarray(steps) < self.decay_step, self.lr, self.lr_decayed)

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(d["width"], tuple):
            d["width"] = list(d["width"])
        return d

    @classmethod
    def from_dict(cls, d) -> "TrainConfig":
        return from_fields(cls, d)

    def to_json(self) -> str:
        return dumps_json(self.to_dict(), indent=1)

    def save(self, path) -> Path:
        return atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path) -> "TrainConfig":
        return read_checked(path, "a training config", {".json": lambda p: cls.from_dict(json.loads(p.read_text()))})


# ----------------------------------------------------------------------------------------------
# Data and set-up
# ----------------------------------------------------------------------------------------------
@dataclass
class Data:
    """Words, their split and the (context, target) arrays of each split."""

    words: list
    vocab: str
    splits: dict          # name -> list of words
    arrays: dict          # name -> (X int32 (N, block), Y int32 (N,))
    digest: str           # sha1 of the words (checked on resume)

    @classmethod
    def build(cls, config: TrainConfig, words=None) -> "Data":
        if words is None:
            words = load_words(config.data)
        else:
            words = [str(w) for w in words]
            if not words:
                raise ValueError("no words to train on")
        vocab = build_vocab(words)
        if len(vocab) < 2:
            raise ValueError("the words need at least one character")
        tr, dev, te = split_words(words, config.split_seed)
        splits = {"train": tr, "dev": dev, "test": te}
        if not tr:
            raise ValueError(f"too few words ({len(words)}) for a training split")
        arrays = {k: build_dataset(v, config.block_size, vocab) for k, v in splits.items() if v}
        digest = hashlib.sha1("\n".join(words).encode()).hexdigest()
        return cls(words, vocab, splits, arrays, digest)


def _streams(seed: int):
    init_ss, batch_ss, probe_ss = np.random.SeedSequence(seed).spawn(3)
    return (np.random.Generator(np.random.PCG64(init_ss)), np.random.Generator(np.random.PCG64(batch_ss)),
            np.random.Generator(np.random.PCG64(probe_ss)))


def _model(config: TrainConfig, vocab: str) -> Model:
    return Model(vocab, config.block_size, config.n_embd, config.widths, config.activation, config.batch_norm,
                 config.dtype, config.bn_eps)


def initial_params(config: TrainConfig, vocab: str) -> Params:
    """The parameters a run with ``config`` starts from (deterministic in ``config.seed``)."""
    model = _model(config, vocab)
    init_rng, _, _ = _streams(config.seed)
    theta, bnstate = model.init_params(init_rng, config.init, config.output_fix, config.parametrization,
                                       config.base_width)
    return Params(model, theta, bnstate)


def step0_spec(config: TrainConfig, words=None) -> NetSpec:
    """The :class:`NetSpec` of the hidden stack at initialisation, for ``sigprop.theory.predict``.

    ``input_dim = block_size * n_embd``; ``input_var`` is the measured second moment of the
    embedding output ``x_0`` over the training contexts (the embedding output is the input
    distribution of the first hidden layer); weights from ``config.init`` with the
    activation's gain, biases 0.

    Raises
    ------
    ValueError
        With BatchNorm (a NetSpec has no BatchNorm layers).
    """
    if config.batch_norm:
        raise ValueError("step0_spec: a NetSpec describes no BatchNorm layers; use batch_norm=False")
    data = Data.build(config, words)
    return _step0_spec(config, data, initial_params(config, data.vocab))


def _step0_spec(config, data, params) -> NetSpec:
    X, _ = data.arrays["train"]
    # E[x_0^2] = sum_c count(c) |C_c|^2 / (N T E), counting each context position
    counts = np.bincount(X.ravel(), minlength=params.model.V).astype(np.float64)
    C = params["C"].astype(np.float64)
    input_var = float(counts @ (C * C).sum(axis=1) / (X.size * config.n_embd))
    return NetSpec.from_init(config.init, widths=list(config.widths), input_dim=config.block_size * config.n_embd,
                             activation=config.activation, sigma_b=0.0, input_var=input_var)


class _Workspace:
    """Buffers of the kernels for batches of B rows."""

    def __init__(self, model: Model, B: int):
        self.B = B
        self.lay, n_ws, n_tmp = model.layout(B)
        self.ws = np.zeros(n_ws, dtype=model.dtype)
        self.tmp = np.zeros(n_tmp, dtype=model.dtype)
        self.ctx = np.zeros((B, model.block_size), dtype=np.int32)
        self.y = np.zeros(B, dtype=np.int32)


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    config : TrainConfig
    params : Params
        Parameters after the last step.
    diagnostics : Diagnostics
        Layer statistics over training, histograms, the loss of every step.
    data : Data
        The words, vocabulary and splits used.
    final_loss : dict
        ``{"train": ..., "dev": ...}`` mean losses after training (evaluation mode).
    seconds : float
        Wall time of the step loop (this call only, when resumed).
    steps_per_second : float
    """

    config: TrainConfig
    params: Params
    diagnostics: Diagnostics
    data: Data
    final_loss: dict = field(default_factory=dict)
    seconds: float = 0.0
    steps_per_second: float = 0.0

    @property
    def losses(self) -> np.ndarray:
        return self.diagnostics.losses

    def evaluate(self, split="dev") -> float:
        """Mean loss over a split (``"train"``, ``"dev"`` or ``"test"``)."""
        if split not in self.data.arrays:
            raise ValueError(f"split must be one of {', '.join(self.data.arrays)}, got {split!r}")
        return evaluate(self.params, self.data.arrays[split])


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
def save_checkpoint(path, config, data_digest, step, rng_state, params: Params, diagnostics: Diagnostics,
                    opt_state=None) -> Path:
    """Atomically write everything a run needs to continue from ``step`` (the next step to run);
    ``opt_state`` is Adam's ``{"m": ..., "v": ...}``."""
    header = {"format": _CKPT_FORMAT, "version": 1, "config": config.to_dict(), "data_digest": data_digest,
              "step": int(step), "rng_state": rng_state}
    arrays = {"header": np.array(dumps_json(header))}
    arrays.update(params.to_npz_dict("params/"))
    arrays.update(diagnostics.to_npz_dict("diag/"))
    for k, a in (opt_state or {}).items():
        arrays[f"opt/{k}"] = a
    return atomic_write_npz(path, **arrays)


def load_checkpoint(path) -> dict:
    """Read a checkpoint: dict with config, data_digest, step, rng_state, params, diagnostics."""
    def read(path):
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("format") != _CKPT_FORMAT:
                raise ValueError("missing format tag")
            ck = {"config": TrainConfig.from_dict(header["config"]), "data_digest": header["data_digest"],
                  "step": int(header["step"]), "rng_state": header["rng_state"],
                  "params": Params.from_npz(z, "params/"), "diagnostics": Diagnostics.from_npz(z, "diag/"),
                  "opt_state": {k[4:]: z[k] for k in z.files if k.startswith("opt/")}}
        _check_checkpoint(ck)
        return ck
    return read_checked(path, "checkpoint", {".npz": read}, errors=(ValueError, TypeError))


def _check_checkpoint(ck) -> None:
    """The header agrees with the stored arrays: the model its config describes, a step in
    [0, steps], finite parameters and a loss for every step done."""
    config, params, step = ck["config"], ck["params"], ck["step"]
    expected = _model(config, params.model.vocab).to_dict()
    stored = params.model.to_dict()
    wrong = [k for k in expected if expected[k] != stored.get(k)]
    if wrong:
        k = wrong[0]
        raise ValueError(f"its header says {k} {expected[k]} but the stored parameters have {k} {stored.get(k)}")
    if not 0 <= step <= config.steps:
        raise ValueError(f"its step {step} is outside [0, {config.steps}]")
    if not (np.all(np.isfinite(params.theta)) and np.all(np.isfinite(params.bnstate))):
        raise ValueError("its parameters are not all finite (nan/inf: the run diverged)")
    if len(ck["diagnostics"].losses) < step:
        raise ValueError(f"it holds {len(ck['diagnostics'].losses)} losses for {step} steps")
    if config.optimizer == "adam":
        st = ck.get("opt_state", {})
        if sorted(st) != ["m", "v"] or any(st[k].shape != params.theta.shape for k in st):
            raise ValueError("it lacks the Adam state (m, v) of its parameters")


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train(config: TrainConfig = TrainConfig(), words=None, out=None, progress=True, resume_from=None,
          until=None, final_eval=True) -> TrainResult:
    """Train the character MLP.

    Parameters
    ----------
    config : TrainConfig
    words : list of str or Data, optional
        Training words (default: ``config.data`` or the embedded names dataset), or a :class:`Data`
        built for this config (``Data.build(config)``: same block size and split), reused by sweeps.
    out : str or Path, optional
        Folder for ``config.json``, ``checkpoint.npz`` (every ``checkpoint_every`` steps
        and at the end), ``diagnostics.npz`` / ``diagnostics.json`` and ``summary.json``.
    progress : bool
        Progress bar on stderr.
    resume_from : str or Path, optional
        A checkpoint to continue from (see :func:`resume`); ``config`` must then be the
        checkpoint's.
    until : int, optional
        Stop after this many steps (a checkpoint is written when ``out`` is given); the
        run can be continued with :func:`resume`.
    final_eval : bool
        Evaluate the train and dev splits at the end (``TrainResult.final_loss``; empty when False,
        for sweeps of many short runs that only need the minibatch losses).

    Returns
    -------
    TrainResult
    """
    data = words if isinstance(words, Data) else Data.build(config, words)
    if data.arrays["train"][0].shape[1] != config.block_size:
        raise ValueError(f"the data were built for block size {data.arrays['train'][0].shape[1]}, "
                         f"not {config.block_size}")
    init_rng, batch_rng, probe_rng = _streams(config.seed)
    model = _model(config, data.vocab)
    check_fits(model.memory_estimate(max(config.batch_size, min(PROBE_BATCH, len(data.arrays["train"][1])),
                                         EVAL_BATCH)) + 8 * (config.steps + RAW_DRAWS),
               f"training {config.layers} x {config.widths[0] if len(set(config.widths)) == 1 else config.widths} "
               f"with batch size {config.batch_size} for {config.steps} steps")
    K = model.kernels
    Xtr, Ytr = data.arrays["train"]
    param_names = model.weight_names()
    if resume_from is not None:
        ck = load_checkpoint(resume_from)
        if ck["config"] != config:
            raise ValueError("the checkpoint was written with another configuration")
        if ck["data_digest"] != data.digest:
            raise ValueError("the checkpoint was trained on other words than these")
        params, diag, step = ck["params"], ck["diagnostics"], ck["step"]
        opt_state = {k: np.ascontiguousarray(a, dtype=model.dtype) for k, a in ck["opt_state"].items()}
        batch_rng.bit_generator.state = ck["rng_state"]
        losses = np.full(config.steps, np.nan)
        losses[:step] = diag.losses[:step]
    else:
        theta, bnstate = model.init_params(init_rng, config.init, config.output_fix, config.parametrization,
                                           config.base_width)
        params = Params(model, theta, bnstate)
        opt_state = {}
        step = 0
        losses = np.full(config.steps, np.nan)
        diag = Diagnostics(hist_edges=hist_edges(model.activation), param_names=param_names,
                           meta={"batch_size": config.batch_size, "threshold": config.threshold,
                                 "activation": config.activation, "vocab": data.vocab})
        diag.init_stats = _probe_stats(config, data, params, probe_rng)
    out = None if out is None else Path(out)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / "config.json")

    theta, bnstate = params.theta, params.bnstate
    grad = np.zeros_like(theta)
    plain_sgd = config.optimizer == "sgd" and config.parametrization == "sp"
    if not plain_sgd:
        mult = model.lr_multipliers(config.parametrization, config.optimizer, config.base_width)
        if config.optimizer == "adam":
            for k in ("m", "v"):
                opt_state.setdefault(k, np.zeros_like(theta))
        else:
            opt_state = {}
        empty = np.zeros(0, dtype=theta.dtype)
        m_buf, v_buf = opt_state.get("m", empty), opt_state.get("v", empty)
    wk = _Workspace(model, config.batch_size)
    B = config.batch_size
    bar = Progress(config.steps, "train", enabled=progress, start=step)
    t0 = time.perf_counter()
    start_step = step

    cutoffs = model.activation.saturation_cutoffs(config.threshold) if model.activation.bounds is not None else None

    def next_boundary(s, every):
        return (s // every + 1) * every if every else config.steps

    last = config.steps if until is None else min(_int("until", until, 0), config.steps)
    while step < last:
        diag_now = config.diag_every and step % config.diag_every == 0
        if diag_now:
            stop = step + 1
        else:
            stop = min(next_boundary(step, config.diag_every), last, step + max(1, min(5000, RAW_DRAWS // B)))
            if out is not None and config.checkpoint_every:
                stop = min(stop, next_boundary(step, config.checkpoint_every))
        n = stop - step
        raw = batch_rng.bit_generator.random_raw(n * B).reshape(n, B)
        lrs = config.lr_at(np.arange(step, stop)).astype(np.float64)
        if plain_sgd:
            K.train_steps(theta, grad, bnstate, Xtr, Ytr, raw, lrs, losses[step:stop], wk.ws, wk.tmp, wk.ctx, wk.y,
                          wk.lay, model.n_embd, config.bn_momentum, model.bn_eps)
        else:
            K.train_steps_opt(theta, grad, bnstate, Xtr, Ytr, raw, lrs, losses[step:stop], wk.ws, wk.tmp, wk.ctx,
                              wk.y, wk.lay, model.n_embd, config.bn_momentum, model.bn_eps, mult,
                              config.optimizer == "adam", m_buf, v_buf, step, config.beta1, config.beta2,
                              config.adam_eps, config.weight_decay)
        if diag_now:
            values, se, hist, outside, pstats = measure(model, theta, grad, wk.ws, wk.lay, B, float(lrs[-1]),
                                                        cutoffs=cutoffs)
            stats = LayerStats(values, se, source="training", seed=config.seed,
                               meta={"step": step, "lr": float(lrs[-1]), "batch_size": B})
            diag.record(step, stats, hist, outside, pstats)
        step = stop
        if out is not None and config.checkpoint_every and step % config.checkpoint_every == 0 \
                and step < last:
            diag.losses = losses[:step].copy()
            save_checkpoint(out / "checkpoint.npz", config, data.digest, step, batch_rng.bit_generator.state,
                            params, diag, opt_state)
        bar.moveto(step, note=f"loss {np.mean(losses[max(step - 1000, 0):step]):.4f}")
    seconds = time.perf_counter() - t0
    bar.close()
    diag.losses = losses[:step].copy()
    result = TrainResult(config, params, diag, data, seconds=seconds,
                         steps_per_second=(step - start_step) / seconds if seconds > 0 else float("nan"))
    if final_eval:
        result.final_loss = {k: evaluate(params, data.arrays[k]) for k in ("train", "dev") if k in data.arrays}
    if out is not None:
        save_checkpoint(out / "checkpoint.npz", config, data.digest, step, batch_rng.bit_generator.state, params,
                        diag, opt_state)
        diag.save(out / "diagnostics.npz")
        diag.save(out / "diagnostics.json")
        summary = {"steps": step, "initial_loss": float(diag.losses[0]) if len(diag.losses) else None,
                   "final_loss": result.final_loss, "seconds": seconds,
                   "steps_per_second": result.steps_per_second, "n_words": len(data.words),
                   "n_train_examples": int(Xtr.shape[0])}
        atomic_write_text(out / "summary.json", dumps_json(summary, indent=1) + "\n")
    return result


def resume(checkpoint, words=None, out=None, progress=True) -> TrainResult:
    """Continue a run from a checkpoint to its configured number of steps.

    The continuation is bitwise identical to the uninterrupted run: same parameters,
    losses and diagnostics. ``words`` must be the words the run was started with
    (default: the checkpoint config's data).
    """
    config = load_checkpoint(checkpoint)["config"]
    return train(config, words=words, out=out, progress=progress, resume_from=checkpoint)


def _probe_stats(config, data, params, rng) -> LayerStats:
    """Forward quantities at initialisation on a probe batch of training examples, with
    standard errors over its examples."""
    model = params.model
    Xtr, Ytr = data.arrays["train"]
    n = min(PROBE_BATCH, Xtr.shape[0])
    if n < 2:
        return None
    rows = np.sort(rng.choice(Xtr.shape[0], size=n, replace=False))
    wk = _Workspace(model, n)
    ctx = np.ascontiguousarray(Xtr[rows])
    # training-mode forward (BatchNorm on batch statistics), running statistics left alone (momentum 0)
    bnstate = params.bnstate.copy()
    model.kernels.forward(params.theta, bnstate, ctx, wk.ws, wk.lay, model.n_embd, True, 0.0, model.bn_eps)
    values, se, _, _, _ = measure(model, params.theta, None, wk.ws, wk.lay, n, config.lr, threshold=config.threshold,
                                  with_se=True)
    spec = None if config.batch_norm else _step0_spec(config, data, params)
    return LayerStats(values, se, spec=spec, source="training", seed=config.seed,
                      meta={"step": 0, "probe_examples": n, "threshold": config.threshold})


# ----------------------------------------------------------------------------------------------
# Using trained parameters
# ----------------------------------------------------------------------------------------------
def _as_xy(params: Params, data):
    if isinstance(data, tuple) and len(data) == 2:
        X, Y = np.ascontiguousarray(data[0], dtype=np.int32), np.ascontiguousarray(data[1], dtype=np.int32)
        if X.ndim != 2 or X.shape[1] != params.model.block_size or Y.shape != (X.shape[0],):
            raise ValueError(f"contexts must be (N, {params.model.block_size}) with N targets")
        if X.size and (X.min() < 0 or X.max() >= params.model.V or Y.min() < 0 or Y.max() >= params.model.V):
            raise ValueError("contexts and targets must be vocabulary indices")
        return X, Y
    words = list(data)
    if not words:
        raise ValueError("no words to evaluate")
    return build_dataset(words, params.model.block_size, params.model.vocab)


def evaluate(params: Params, data) -> float:
    """Mean cross-entropy (nats) of ``params`` in evaluation mode (BatchNorm running statistics).

    ``data`` is a list of words (a ValueError names a character outside the vocabulary) or a
    ``(X, Y)`` pair of contexts and targets.
    """
    X, Y = _as_xy(params, data)
    model = params.model
    B = min(EVAL_BATCH, X.shape[0])
    wk = _Workspace(model, B)
    return float(model.kernels.eval_loss(params.theta, params.bnstate, X, Y, wk.ws, wk.lay, model.n_embd,
                                         model.bn_eps, B))


def logits(params: Params, contexts) -> np.ndarray:
    """Output logits (float64, (N, V)) for contexts (N, block_size), evaluation mode."""
    from . import kernels as Kc
    model = params.model
    ctx = np.ascontiguousarray(contexts, dtype=np.int32)
    wk = _Workspace(model, ctx.shape[0])
    model.kernels.forward(params.theta, params.bnstate, ctx, wk.ws, wk.lay, model.n_embd, False, 0.0, model.bn_eps)
    o = int(wk.lay[model.depth, Kc.Z])
    return wk.ws[o:o + ctx.shape[0] * model.V].reshape(ctx.shape[0], model.V).astype(np.float64)


def sample(params: Params, n: int, seed: int = 0, max_length: int = 100) -> list:
    """Sample ``n`` words character by character from the model (seeded, reproducible).

    Examples
    --------
    >>> p = initial_params(TrainConfig(width=16), ".ab")
    >>> words = sample(p, 2, seed=0)
    >>> len(words), all(set(w) <= set("ab") for w in words)
    (2, True)
    """
    n = _int("n", n, 0)
    model = params.model
    check_fits(model.memory_estimate(n) + n * (24 * model.V + 8 * max_length + 100), f"sampling {n} words")
    rng = np.random.default_rng(seed)
    ctx = np.zeros((n, model.block_size), dtype=np.int32)
    out = [[] for _ in range(n)]
    alive = np.ones(n, dtype=bool)
    for _ in range(max_length):
        if not alive.any():
            break
        idx = np.flatnonzero(alive)
        lg = logits(params, ctx[idx])
        # p = softmax(logits); next character by inverse CDF of one uniform per word
        p = np.exp(lg - lg.max(axis=1, keepdims=True))
        cdf = np.cumsum(p, axis=1)
        u = rng.random(len(idx)) * cdf[:, -1]
        nxt = np.minimum((cdf < u[:, None]).sum(axis=1), model.V - 1)
        for i, c in zip(idx, nxt):
            if c == 0:
                alive[i] = False
            else:
                out[i].append(model.vocab[c])
        ctx[idx] = np.concatenate([ctx[idx, 1:], nxt[:, None].astype(np.int32)], axis=1)
    return ["".join(w) for w in out]
