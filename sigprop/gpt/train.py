"""Training the GPT: configuration, AdamW with warmup and cosine decay, evaluation, checkpoints, sampling.

Each step draws a batch (a pure function of ``(seed, step)``, :func:`sigprop.gpt.data.batch_starts`),
runs :meth:`Net.forward` and :meth:`Net.backward`, clips by the global gradient norm and applies
one AdamW update (:func:`kernels.adamw_update`). Train and val losses are measured every
``eval_every`` steps on fixed windows (the same for every run on the same text), diagnostics
every ``diag_every`` steps (:mod:`sigprop.gpt.diagnostics`).

Reproducibility: one seed gives bitwise the same run; a checkpoint holds parameters, AdamW
moments, the step and the histories, so a resumed run continues bitwise identically.

Examples
--------
>>> from sigprop.gpt.train import GPTTrainConfig, train
>>> cfg = GPTTrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, steps=3,
...                      eval_every=0, diag_every=0)
>>> result = train(cfg, progress=False)
>>> len(result.losses), result.step
(3, 3)
"""
from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text, dumps_json, read_checked
from .._checks import in_range
from ..progress import Progress
from ..spec import LayerStats
from .data import Corpus, batch_starts, get_batch, load_corpus
from .diagnostics import (Diagnostics, layer_stats, qkv_dynamics, qkv_histograms, tensor_grad_norms,
                          update_ratios)
from .model import GPT2_STD, GPTConfig, Params, _int, init_params, views
from .._threads import deferred_interrupt
from .net import Net, SplitNet

_CKPT_FORMAT = "sigprop.gpt.Checkpoint"


_num = in_range


@dataclass(frozen=True)
class GPTTrainConfig:
    """Everything that determines a GPT training run (saved as ``config.json``; flat, nanoGPT style).

    Parameters
    ----------
    n_layer, n_head, n_embd, block_size, activation, init, residual_scale, embd_std, ln_eps :
        The model (:class:`sigprop.gpt.model.GPTConfig`); the vocabulary comes from the data.
    steps, batch_size : int
    lr, min_lr : float
        Peak learning rate after ``warmup`` linear steps, and the end of the cosine decay.
    warmup : int
    beta1, beta2, eps, weight_decay : float
        AdamW (decay on the weight matrices and embeddings only).
    grad_clip : float
        Clip the global gradient norm to this (0: no clipping).
    seed : int
        Initialisation and batches.
    eval_every, eval_batches : int
        Train/val loss every this many steps (and after the last), on this many fixed batches.
    diag_every : int
        Diagnostics every this many steps (0: never).
    diag_steps : tuple of int
        Further steps at which diagnostics are recorded (e.g. log-spaced ones).
    diag_dynamics : bool
        Also record the Q/K/V drift from init, Adam step size and step-direction correlation
        (:func:`sigprop.gpt.diagnostics.qkv_dynamics`; keeps a copy of the initial parameters).
    hist_layers : tuple of int
        Layers whose Q/K/V weight histograms are recorded at every diagnostics step.
    checkpoint_every : int
        Checkpoint every this many steps when an output folder is given (0: only at the end).
    dtype : {"float32", "float64"}
    data : str or None
        Any UTF-8 text file (None: the shipped Shakespeare corpus).
    parametrization, base_width :
        SP or muP width scaling (:class:`sigprop.gpt.model.GPTConfig`).
    """

    n_layer: int = 12
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    activation: str = "gelu_tanh"
    init: str = "gpt2"
    residual_scale: bool = True
    embd_std: float = GPT2_STD
    ln_eps: float = 1e-5
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1337
    eval_every: int = 100
    eval_batches: int = 8
    diag_every: int = 100
    diag_steps: tuple = ()
    diag_dynamics: bool = False
    hist_layers: tuple = ()
    checkpoint_every: int = 500
    dtype: str = "float32"
    data: str | None = None
    parametrization: str = "sp"
    base_width: int | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name, lo in (("steps", 1), ("batch_size", 1), ("warmup", 0), ("seed", 0), ("eval_every", 0),
                         ("eval_batches", 1), ("diag_every", 0), ("checkpoint_every", 0)):
            set_(name, _int(name, getattr(self, name), lo))
        set_("lr", _num("lr", self.lr))
        set_("min_lr", _num("min_lr", self.min_lr))
        set_("beta1", _num("beta1", self.beta1, 0.0, 1.0))
        set_("beta2", _num("beta2", self.beta2, 0.0, 1.0))
        if self.beta1 >= 1 or self.beta2 >= 1:
            raise ValueError(f"beta1 and beta2 must be < 1, got {self.beta1} and {self.beta2}")
        set_("eps", _num("eps", self.eps, allow_lo=False))
        set_("weight_decay", _num("weight_decay", self.weight_decay))
        set_("grad_clip", _num("grad_clip", self.grad_clip))
        for name in ("diag_steps", "hist_layers"):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
                raise ValueError(f"{name} must be a list of integers, got {v!r}")
            set_(name, tuple(sorted({_int(name[:-1].replace("_", " "), k, 0) for k in v})))
        set_("diag_dynamics", bool(self.diag_dynamics))
        if self.hist_layers and self.hist_layers[-1] >= self.n_layer:
            raise ValueError(f"hist_layers must be layers below n_layer {self.n_layer}, got {self.hist_layers[-1]}")
        if self.data is not None:
            set_("data", str(Path(self.data).resolve()))
        self.model(2)   # validates the model fields

    def model(self, vocab_size: int) -> GPTConfig:
        """The :class:`GPTConfig` of this run for a vocabulary of ``vocab_size`` characters."""
        return GPTConfig(n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd, block_size=self.block_size,
                         vocab_size=vocab_size, activation=self.activation, init=self.init,
                         residual_scale=self.residual_scale, embd_std=self.embd_std, ln_eps=self.ln_eps,
                         dtype=self.dtype, parametrization=self.parametrization, base_width=self.base_width)

    def lr_at(self, step: int) -> float:
        """Linear warmup to ``lr`` over ``warmup`` steps, then cosine decay to ``min_lr`` at ``steps``."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        span = max(self.steps - self.warmup, 1)
        progress = min((step - self.warmup) / span, 1.0)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)

    def replace(self, **changes) -> "GPTTrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "GPTTrainConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"GPTTrainConfig has no field {sorted(unknown)[0]!r}")
        return cls(**d)

    def save(self, path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path) -> "GPTTrainConfig":
        return read_checked(path, "a GPT training config", {".json": lambda p: cls.from_dict(json.loads(p.read_text()))})


class TrainResult:
    """A run's state and histories: ``params``, AdamW moments ``m``/``v``, ``step``, per-step
    ``losses`` and ``grad_norms``, ``evals`` rows ``(step, train_loss, val_loss)``, ``diagnostics``."""

    def __init__(self, config: GPTTrainConfig, corpus: Corpus, params: Params):
        self.config = config
        self.corpus = corpus
        self.params = params
        self.m = np.zeros_like(params.theta)
        self.v = np.zeros_like(params.theta)
        self.step = 0
        self.losses = np.zeros(0)
        self.grad_norms = np.zeros(0)
        self.evals: list = []
        self.diagnostics = Diagnostics()
        self.seconds = 0.0

    @property
    def final_eval(self) -> dict:
        if not self.evals:
            return {}
        step, tr, va = self.evals[-1]
        return {"step": step, "train": tr, "val": va}

    def summary(self) -> dict:
        from .data import unigram_loss
        return {"steps": int(self.step), "n_params": int(self.params.theta.size),
                "vocab_size": len(self.corpus.vocab), "initial_loss": float(self.losses[0]) if len(self.losses) else None,
                "ln_vocab": math.log(len(self.corpus.vocab)), "unigram_val_loss": unigram_loss(self.corpus),
                "final": self.final_eval, "seconds": self.seconds,
                "ms_per_step": 1e3 * self.seconds / max(len(self.losses), 1)}


def initial_params(config: GPTTrainConfig, vocab_size: int) -> Params:
    """The initial parameters of a run (drawn from a stream derived from ``config.seed``)."""
    init_rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(1)[0])
    return init_params(config.model(vocab_size), rng=init_rng)


def memory_estimate(config: GPTTrainConfig, vocab_size: int) -> float:
    """Bytes a training run allocates: parameters, gradient and AdamW moments, and the
    :class:`Net` buffers of one batch (activations kept for the backward and its scratch)."""
    B, T, C, L, H = config.batch_size, config.block_size, config.n_embd, config.n_layer, config.n_head
    N = B * T
    per_block = N * C * 6 + N * 4 * C * 2 + N * 3 * C + B * H * T * T + 4 * N
    scratch = N * C * 4 + N * 3 * C + N * 4 * C * 2 + 2 * N * vocab_size + 7 * N * C + B * H * T * T
    activations = L * per_block + N * C * 2 + 3 * N * vocab_size + scratch
    itemsize = np.dtype(config.dtype).itemsize
    n = config.model(vocab_size).n_params
    return itemsize * (4.0 * n + activations) + (8.0 * n if config.diag_dynamics else 0.0)   # + theta_0


def check_memory(config: GPTTrainConfig, vocab_size: int) -> None:
    """One-line ValueError when the run cannot fit in the available memory (before allocating)."""
    from ..memory import check_fits
    check_fits(memory_estimate(config, vocab_size), "this GPT training run")


def _eval_starts(n_tokens: int, block_size: int, count: int) -> np.ndarray:
    """Fixed, evenly spaced windows over a split (the same for every run on the same text)."""
    return np.linspace(0, n_tokens - block_size - 1, count).astype(np.int64)


def evaluate(net: Net, theta: np.ndarray, tokens: np.ndarray, batches: int) -> float:
    """Mean loss over ``batches`` batches of fixed windows of ``tokens``."""
    B, T = net.B, net.T
    starts = _eval_starts(len(tokens), T, batches * B)
    x = np.empty((B, T), np.int32)
    y = np.empty((B, T), np.int32)
    total = 0.0
    for i in range(batches):
        get_batch(tokens, starts[i * B:(i + 1) * B], T, x, y)
        total += net.forward(theta, x, y)
    return total / batches


def train(config: GPTTrainConfig, out=None, progress: bool = True, corpus: Corpus | None = None,
          state: TrainResult | None = None) -> TrainResult:
    """Train (or, with ``state`` from :func:`load_checkpoint`, continue) a GPT.

    Writes ``config.json`` at the start and, when ``out`` is given, ``checkpoint.npz`` every
    ``checkpoint_every`` steps and at the end, plus ``diagnostics.json`` and ``summary.json``.
    Ctrl-C stops after the step under way and writes a checkpoint first.
    """
    corpus = load_corpus(config.data, config.block_size) if corpus is None else corpus
    check_memory(config, len(corpus.vocab))
    if state is None:
        state = TrainResult(config, corpus, initial_params(config, len(corpus.vocab)))
    model = state.params.config
    previous_steps: dict = {}
    theta0 = None
    if config.diag_dynamics:      # the initial parameters (a pure function of the seed, also on resume)
        theta0 = (state.params.theta if state.step == 0 else initial_params(config, model.vocab_size).theta)
        theta0 = theta0.astype(np.float64)
    diag_at = frozenset(config.diag_steps)
    out = None if out is None else Path(out)
    if out is not None:
        config.save(out / "config.json")
    theta, m, v = state.params.theta, state.m, state.v
    grad = np.zeros_like(theta)
    gviews = views(model, grad)
    net = SplitNet(model, config.batch_size)
    K = net.K
    lr_groups = model.lr_segments()       # one group (factor 1) in SP; muP's hidden matrices x n0/n
    partial = np.zeros(K.CHUNKS)
    x = np.empty((config.batch_size, config.block_size), np.int32)
    y = np.empty_like(x)
    offsets = model.offsets()
    losses = list(state.losses)
    norms = list(state.grad_norms)
    bar = Progress(config.steps - state.step, "gpt train", enabled=progress)
    t0 = time.perf_counter()
    interrupted = False
    with deferred_interrupt() as stop:   # Ctrl-C: finish the step under way, then stop (a second: at once)
        try:
            while state.step < config.steps:
                step = state.step
                get_batch(corpus.train, batch_starts(len(corpus.train), config.block_size, config.batch_size,
                                                     config.seed, step), config.block_size, x, y)
                loss = net.forward(theta, x, y)
                net.backward(theta, grad)
                norm = math.sqrt(net.sum_of_squares(grad, partial))
                clip = config.grad_clip > 0 and math.isfinite(norm)
                scale = min(1.0, config.grad_clip / (norm + 1e-6)) if clip else 1.0
                record = (config.diag_every and step % config.diag_every == 0) or step in diag_at
                if record:
                    stats = layer_stats(net, state.params, gviews, step)
                    gnorms = tensor_grad_norms(gviews)
                    before = theta.astype(np.float64)
                for factor, segments in lr_groups:
                    net.adamw_update(theta, grad, m, v, segments, config.lr_at(step) * factor, config.beta1,
                                     config.beta2, config.eps, config.weight_decay, step + 1, scale)
                if record:
                    if theta0 is not None:
                        dyn = qkv_dynamics(model, before, theta, theta0, 1.0 - config.lr_at(step) * config.weight_decay,
                                           previous_steps)
                        stats = LayerStats({**stats.values, **dyn}, source="training", meta=stats.meta)
                    hist = qkv_histograms(Params(model, before), config.hist_layers) if config.hist_layers else None
                    state.diagnostics.add(step, stats, gnorms, update_ratios(before, theta, offsets), hist)
                losses.append(loss)
                norms.append(norm)
                state.step = step + 1
                last = state.step == config.steps
                if config.eval_every and (state.step % config.eval_every == 0 or last):
                    state.evals.append((state.step, evaluate(net, theta, corpus.train, config.eval_batches),
                                        evaluate(net, theta, corpus.val, config.eval_batches)))
                bar.update(1)
                if (out is not None and config.checkpoint_every and state.step % config.checkpoint_every == 0
                        and not last):
                    state.losses, state.grad_norms = np.array(losses), np.array(norms)
                    save_checkpoint(state, out / "checkpoint.npz")
                if stop.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            state.seconds += time.perf_counter() - t0
            state.losses, state.grad_norms = np.array(losses), np.array(norms)
            if out is not None:
                save_checkpoint(state, out / "checkpoint.npz")
                atomic_write_text(out / "diagnostics.json", dumps_json(state.diagnostics.to_dict()) + "\n")
                atomic_write_text(out / "summary.json", dumps_json(state.summary(), indent=1) + "\n")
    if interrupted:
        raise KeyboardInterrupt
    return state


def save_checkpoint(state: TrainResult, path) -> Path:
    """Everything a bitwise resume needs, written atomically."""
    buf = io.BytesIO()
    meta = {"format": _CKPT_FORMAT, "config": state.config.to_dict(), "model": state.params.config.to_dict(),
            "step": int(state.step), "corpus_digest": state.corpus.digest, "corpus_source": state.corpus.source,
            "evals": [list(e) for e in state.evals], "seconds": state.seconds}
    np.savez(buf, meta=np.array(dumps_json(meta)), theta=state.params.theta, m=state.m, v=state.v,
             losses=state.losses, grad_norms=state.grad_norms,
             diagnostics=np.array(dumps_json(state.diagnostics.to_dict())))
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, corpus: Corpus | None = None) -> TrainResult:
    """A run's state from ``checkpoint.npz`` (checked against its config and its text)."""
    def read(p):
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _CKPT_FORMAT:
                raise ValueError(f"{p} is not a sigprop GPT checkpoint")
            arrays = {k: z[k] for k in ("theta", "m", "v", "losses", "grad_norms")}
            diag = json.loads(str(z["diagnostics"]))
        return meta, arrays, diag
    meta, arrays, diag = read_checked(path, "a GPT checkpoint", {".npz": read})
    config = GPTTrainConfig.from_dict(meta["config"])
    model = GPTConfig.from_dict(meta["model"])
    if model != config.model(model.vocab_size):
        raise ValueError(f"checkpoint {path}: its model does not match its training config")
    n = model.n_params
    for k in ("theta", "m", "v"):
        if arrays[k].shape != (n,) or arrays[k].dtype != model.np_dtype:
            raise ValueError(f"checkpoint {path}: {k} has shape {arrays[k].shape} and dtype {arrays[k].dtype}, "
                             f"the model needs ({n},) {model.dtype}")
    if not np.all(np.isfinite(arrays["theta"])):
        raise ValueError(f"checkpoint {path}: parameters are not finite")
    step = meta["step"]
    if not 0 <= step <= config.steps or len(arrays["losses"]) != step:
        raise ValueError(f"checkpoint {path}: step {step} does not fit its {config.steps} steps and "
                         f"{len(arrays['losses'])} recorded losses")
    corpus = load_corpus(config.data, config.block_size) if corpus is None else corpus
    if corpus.digest != meta["corpus_digest"]:
        raise ValueError(f"checkpoint {path} was trained on another text than {corpus.source}")
    state = TrainResult(config, corpus, Params(model, arrays["theta"]))
    state.m, state.v = arrays["m"].copy(), arrays["v"].copy()
    state.step = step
    state.losses, state.grad_norms = arrays["losses"].astype(np.float64), arrays["grad_norms"].astype(np.float64)
    state.evals = [tuple(e) for e in meta["evals"]]
    state.diagnostics = Diagnostics.from_dict(diag)
    state.seconds = float(meta.get("seconds", 0.0))
    return state


def resume(path, out=None, progress: bool = True, steps: int | None = None) -> TrainResult:
    """Continue the run of a checkpoint (in its own folder unless ``out`` is given)."""
    state = load_checkpoint(path)
    if steps is not None and steps != state.config.steps:
        state.config = state.config.replace(steps=steps)
        if steps < state.step:
            raise ValueError(f"steps {steps} is before the checkpoint's step {state.step}")
    out = Path(path).parent if out is None else out
    return train(state.config, out=out, progress=progress, corpus=state.corpus, state=state)


def sample(params: Params, corpus: Corpus, n_chars: int = 200, prompt: str = "\n", seed: int = 0,
           temperature: float = 1.0) -> str:
    """``n_chars`` characters drawn from the model after ``prompt`` (its characters must be in the vocabulary)."""
    if isinstance(n_chars, bool) or not isinstance(n_chars, (int, np.integer)) or n_chars < 0:
        raise ValueError(f"the number of characters must be an integer >= 0, got {n_chars!r}")
    temperature = _num("temperature", temperature, allow_lo=False)
    cfg = params.config
    if len(corpus.vocab) != cfg.vocab_size:
        raise ValueError(f"the corpus has {len(corpus.vocab)} characters, the model {cfg.vocab_size}")
    if not prompt:
        raise ValueError("the prompt must hold at least one character")
    ids = list(corpus.encode(prompt))
    T = cfg.block_size
    net = Net(cfg, 1)
    ctx = np.zeros((1, T), np.int32)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_chars)):
        window = ids[-T:]
        n = len(window)
        ctx[0, :n] = window          # positions after n see only earlier tokens: the padding is never read
        ctx[0, n:] = 0
        net.forward(params.theta, ctx)
        logits = net.logits[n - 1].astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        p /= p.sum()
        nxt = int(rng.choice(cfg.vocab_size, p=p))
        ids.append(nxt)
        out.append(nxt)
    return corpus.decode(np.array(out, dtype=np.int32))
