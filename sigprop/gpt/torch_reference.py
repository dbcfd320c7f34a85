"""An independent PyTorch implementation of :mod:`sigprop.gpt`, for reference tests and the speed benchmark.

The same architecture as :mod:`sigprop.gpt.model`, written with PyTorch's library operations and
autograd instead of hand-written kernels: token + position embeddings; pre-LayerNorm blocks
(causal multi-head attention with a fused ``(C, 3C)`` QKV weight, ``y = x @ W + b``, head ``h``
reading columns ``h*hs .. (h+1)*hs`` of each of the q, k, v parts, scale ``1/sqrt(hs)``; an MLP
of width ``4C`` with the tanh-approximate GELU); a final LayerNorm; logits ``lnf @ wte^T``; the
mean cross-entropy. The parameters keep our names and shapes (``wte``, ``h0.qkv_w``, ...,
``lnf_b``), so a flat vector maps onto them one to one.

PyTorch is optional: it is imported inside the functions, so importing :mod:`sigprop` never
needs it; without it these functions raise ImportError.

Usage (with PyTorch installed)::

    from sigprop.gpt.model import GPTConfig, init_params
    from sigprop.gpt.torch_reference import loss_and_grad
    p = init_params(GPTConfig(n_layer=2, n_embd=16, n_head=2, block_size=8, vocab_size=11, dtype="float64"))
    loss, grad = loss_and_grad(p, idx, targets)   # grad: our flat layout, like Net.backward's
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .data import get_batch
from .model import Params
from .train import _eval_starts

#: Attention implementations: our own masked softmax, or PyTorch's fused kernel.
ATTENTION = ("manual", "sdpa")
#: MLP activations the reference implements (the GPT-2 one).
ACTIVATIONS = ("gelu_tanh",)
_TORCH_DTYPES = ("float32", "float64")


def _torch():
    try:
        import torch
    except ImportError as e:   # pragma: no cover - depends on the environment
        raise ImportError("sigprop.gpt.torch_reference needs PyTorch (an optional package: pip install torch)") from e
    return torch


@functools.lru_cache(maxsize=None)
def _module_class():
    """The nn.Module class (defined once PyTorch is imported)."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, C, dtype):
            super().__init__()
            z = lambda *shape: nn.Parameter(torch.zeros(shape, dtype=dtype))  # noqa: E731
            self.ln1_w, self.ln1_b = z(C), z(C)
            self.qkv_w, self.qkv_b = z(C, 3 * C), z(3 * C)
            self.proj_w, self.proj_b = z(C, C), z(C)
            self.ln2_w, self.ln2_b = z(C), z(C)
            self.fc_w, self.fc_b = z(C, 4 * C), z(4 * C)
            self.fcproj_w, self.fcproj_b = z(4 * C, C), z(C)

    class GPT(nn.Module):
        """GPT-2 with our parameter names and ``(fan_in, fan_out)`` weights."""

        def __init__(self, config, dtype, attention):
            super().__init__()
            C, V, T = config.n_embd, config.vocab_size, config.block_size
            self.config, self.attention = config, attention
            self.wte = nn.Parameter(torch.zeros(V, C, dtype=dtype))
            self.wpe = nn.Parameter(torch.zeros(T, C, dtype=dtype))
            self.h = nn.ModuleList(Block(C, dtype) for _ in range(config.n_layer))
            self.lnf_w = nn.Parameter(torch.zeros(C, dtype=dtype))
            self.lnf_b = nn.Parameter(torch.zeros(C, dtype=dtype))
            # causal mask: position t attends to s <= t
            self.register_buffer("causal", torch.ones(T, T, dtype=torch.bool).tril(), persistent=False)

        def tensors(self) -> dict:
            """Our name (``h3.fc_w``) -> parameter, in the order of :meth:`GPTConfig.layout`."""
            out = {"wte": self.wte, "wpe": self.wpe}
            for l, blk in enumerate(self.h):
                for short in ("ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",
                              "ln2_w", "ln2_b", "fc_w", "fc_b", "fcproj_w", "fcproj_b"):
                    out[f"h{l}.{short}"] = getattr(blk, short)
            out["lnf_w"], out["lnf_b"] = self.lnf_w, self.lnf_b
            return out

        def _attention(self, qkv, B, T):
            C, H = self.config.n_embd, self.config.n_head
            hs = C // H
            # (B, T, 3C) -> three (B, H, T, hs): head h is columns h*hs..(h+1)*hs of q, k, v
            q, k, v = (u.reshape(B, T, H, hs).transpose(1, 2) for u in qkv.split(C, dim=-1))
            if self.attention == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.config.attn_scale)
            else:
                # att = softmax(q k^T * attn_scale) over s <= t (1/sqrt(hs) in SP, ~1/hs in muP);  y = att v
                scores = (q @ k.transpose(-2, -1)) * self.config.attn_scale
                scores = scores.masked_fill(~self.causal[:T, :T], float("-inf"))
                y = torch.softmax(scores, dim=-1) @ v
            return y.transpose(1, 2).reshape(B, T, C)

        def forward(self, idx, targets=None):
            """Logits (B, T, V), and the mean cross-entropy when ``targets`` is given (else None)."""
            cfg = self.config
            B, T = idx.shape
            C, eps = cfg.n_embd, cfg.ln_eps
            x = self.wte[idx] + self.wpe[:T]
            for blk in self.h:
                # x <- x + attn(ln1(x)) @ proj_w + proj_b
                u = F.layer_norm(x, (C,), blk.ln1_w, blk.ln1_b, eps)
                x = x + self._attention(u @ blk.qkv_w + blk.qkv_b, B, T) @ blk.proj_w + blk.proj_b
                # x <- x + gelu(ln2(x) @ fc_w + fc_b) @ fcproj_w + fcproj_b
                u = F.layer_norm(x, (C,), blk.ln2_w, blk.ln2_b, eps)
                x = x + F.gelu(u @ blk.fc_w + blk.fc_b, approximate="tanh") @ blk.fcproj_w + blk.fcproj_b
            x = F.layer_norm(x, (C,), self.lnf_w, self.lnf_b, eps)
            logits = x @ self.wte.T
            if cfg.output_multiplier != 1.0:      # muP's readout multiplier on the tied head
                logits = logits * cfg.output_multiplier
            if targets is None:
                return logits, None
            return logits, F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))

    return GPT


def TorchGPT(params: Params, dtype: str | None = None, attention: str = "manual"):
    """A PyTorch module with the architecture of :mod:`sigprop.gpt` and the weights of ``params``.

    Parameters
    ----------
    params : Params
        Weights to copy in (any dtype).
    dtype : {"float32", "float64"}, optional
        The module's dtype (default: that of ``params``).
    attention : {"manual", "sdpa"}
        Masked softmax written out, or ``F.scaled_dot_product_attention(is_causal=True)``.

    Returns
    -------
    torch.nn.Module
        ``module(idx, targets) -> (logits, loss)`` with ``idx``, ``targets`` int64 tensors (B, T);
        ``module.tensors()`` maps our parameter names to its parameters.
    """
    cfg = params.config
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"the PyTorch reference implements the activations {ACTIVATIONS}, not {cfg.activation!r}")
    if attention not in ATTENTION:
        raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
    dtype = cfg.dtype if dtype is None else dtype
    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    torch = _torch()
    model = _module_class()(cfg, getattr(torch, dtype), attention)
    load_flat(model, params.theta)
    return model


def load_flat(model, theta: np.ndarray) -> None:
    """Copy a flat parameter vector (our layout, any dtype) into ``model``'s parameters."""
    torch = _torch()
    cfg = model.config
    if theta.shape != (cfg.n_params,):
        raise ValueError(f"parameter vector has {theta.size} entries, the model needs {cfg.n_params}")
    tensors = model.tensors()
    with torch.no_grad():
        for name, (a, b, shape) in cfg.offsets().items():
            t = tensors[name]
            t.copy_(torch.from_numpy(np.ascontiguousarray(theta[a:b]).reshape(shape)).to(t.dtype))


def flat_grad(model) -> np.ndarray:
    """The parameters' ``.grad`` as one vector in our layout (float64; a missing gradient is 0)."""
    cfg = model.config
    out = np.zeros(cfg.n_params, dtype=np.float64)
    tensors = model.tensors()
    for name, (a, b, _) in cfg.offsets().items():
        g = tensors[name].grad
        if g is not None:
            out[a:b] = g.detach().double().numpy().reshape(-1)
    return out


def flat_params(model) -> np.ndarray:
    """The parameters as one float64 vector in our layout."""
    cfg = model.config
    out = np.zeros(cfg.n_params, dtype=np.float64)
    tensors = model.tensors()
    for name, (a, b, _) in cfg.offsets().items():
        out[a:b] = tensors[name].detach().double().numpy().reshape(-1)
    return out


def _tokens(a):
    torch = _torch()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def loss_and_grad(params: Params, idx, targets, attention: str = "manual") -> tuple:
    """Mean cross-entropy of ``params`` on one batch and its gradient, by PyTorch autograd.

    Parameters
    ----------
    params : Params
        The weights; the computation runs in their dtype.
    idx, targets : integer arrays (B, T), ``T <= block_size``
    attention : {"manual", "sdpa"}

    Returns
    -------
    loss : float
    grad : np.ndarray
        float64 vector in our flat layout (:meth:`GPTConfig.layout`), comparable entry by entry
        with :meth:`sigprop.gpt.net.Net.backward`'s.
    """
    cfg = params.config
    idx, targets = np.asarray(idx), np.asarray(targets)
    if idx.ndim != 2 or targets.shape != idx.shape or not 1 <= idx.shape[1] <= cfg.block_size:
        raise ValueError(f"idx and targets must both have shape (B, T) with T <= {cfg.block_size}, "
                         f"got {idx.shape} and {targets.shape}")
    for name, a in (("token ids", idx), ("targets", targets)):
        if a.size and (a.min() < 0 or a.max() >= cfg.vocab_size):
            raise ValueError(f"{name} must be in [0, {cfg.vocab_size})")
    model = TorchGPT(params, attention=attention)
    _, loss = model(_tokens(idx), _tokens(targets))
    loss.backward()
    return float(loss.item()), flat_grad(model)


def adamw(model, lr: float, betas=(0.9, 0.95), eps: float = 1e-8, weight_decay: float = 0.1):
    """torch.optim.AdamW over ``model`` with weight decay on the 2-D tensors only (the matrices and
    embeddings, :meth:`GPTConfig.layout`'s ``decay`` flags) and none on biases and LayerNorms."""
    torch = _torch()
    params = list(model.tensors().values())
    groups = [{"params": [p for p in params if p.dim() == 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() != 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


def train_step(model, optimizer, idx, targets, lr: float, grad_clip: float = 1.0) -> float:
    """One training step (forward, backward, clip by global norm, AdamW at rate ``lr``); the loss.

    ``idx``, ``targets``: int64 tensors (B, T). ``grad_clip`` 0 disables clipping.
    """
    torch = _torch()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(idx, targets)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"] + optimizer.param_groups[1]["params"],
                                       grad_clip)
    optimizer.step()
    return float(loss.item())


def evaluate(model, tokens: np.ndarray, batch: int, batches: int) -> float:
    """Mean loss over ``batches`` batches of the fixed windows of :func:`sigprop.gpt.train.evaluate`."""
    torch = _torch()
    T = model.config.block_size
    starts = _eval_starts(len(tokens), T, batches * batch)
    x = np.empty((batch, T), np.int32)
    y = np.empty((batch, T), np.int32)
    total = 0.0
    with torch.no_grad():
        for i in range(batches):
            get_batch(tokens, starts[i * batch:(i + 1) * batch], T, x, y)
            total += float(model(_tokens(x), _tokens(y))[1].item())
    return total / batches
