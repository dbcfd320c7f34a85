"""Forward and backward of the whole GPT: the per-operation kernels and BLAS products in order.

A :class:`Net` owns the buffers of one batch shape ``(B, T)``: every activation the backward
needs (per block: LayerNorm outputs and statistics, QKV, attention probabilities, attention
output, the residual stream after attention, MLP outputs and activation derivatives; the residual
stream entering each block; final LayerNorm, logits, probabilities) and the gradient scratch.
Nothing is allocated per step. :class:`SplitNet` (what training, evaluation and the speed benchmark
use) cuts a batch into micro-batches, each with a :class:`Net` of its own on a thread of its own.

Examples
--------
>>> import numpy as np
>>> from sigprop.gpt.model import GPTConfig, init_params
>>> from sigprop.gpt.net import Net
>>> cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11, dtype="float64")
>>> p = init_params(cfg, seed=0)
>>> net = Net(cfg, batch=3)
>>> rng = np.random.default_rng(0)
>>> idx, targets = rng.integers(0, 11, size=(2, 3, 8)).astype(np.int32)
>>> loss = net.forward(p.theta, idx, targets)
>>> bool(abs(loss - np.log(11)) < 0.05)
True
>>> grad = np.empty_like(p.theta); net.backward(p.theta, grad)
"""
from __future__ import annotations

import functools

import numpy as np

from .._threads import available_cores, run_all
from .model import GPTConfig, load_kernels, views


class Net:
    """Buffers and the forward/backward pass for batches of shape ``(batch, T)``, ``T <= block_size``.

    Parameters
    ----------
    config : GPTConfig
    batch : int
    T : int, optional
        Sequence length (default ``config.block_size``).
    """

    def __init__(self, config: GPTConfig, batch: int, T: int | None = None):
        self.config = config
        self.K = K = load_kernels(config.activation)
        T = config.block_size if T is None else int(T)
        if not 1 <= T <= config.block_size:
            raise ValueError(f"sequence length must be in [1, block_size={config.block_size}], got {T}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.B, self.T = B, T = int(batch), T
        # the config's derived scalars, evaluated once (attn_scale goes through sympy: ~40 us a call)
        self.attn_scale, self.output_multiplier = config.attn_scale, config.output_multiplier
        L, C, H, V = config.n_layer, config.n_embd, config.n_head, config.vocab_size
        N = B * T
        dt = config.np_dtype
        e = lambda *shape: np.zeros(shape, dtype=dt)  # noqa: E731
        self.x = [e(N, C) for _ in range(L + 1)]      # residual stream entering block l (x[L]: after the last)
        self.a = [e(N, C) for _ in range(L)]          # residual stream after the attention of block l
        self.ln1 = [e(N, C) for _ in range(L)]
        self.ln1_stats = [(e(N), e(N)) for _ in range(L)]   # (mean, rstd)
        self.qkv = [e(N, 3 * C) for _ in range(L)]
        self.att = [e(B, H, T, T) for _ in range(L)]
        self.atty = [e(N, C) for _ in range(L)]
        self.ln2 = [e(N, C) for _ in range(L)]
        self.ln2_stats = [(e(N), e(N)) for _ in range(L)]
        self.fc_dphi = [e(N, 4 * C) for _ in range(L)]   # MLP pre-activation, then phi' of it
        self.fc_out = [e(N, 4 * C) for _ in range(L)]
        self.lnf = e(N, C)
        self.lnf_stats = (e(N), e(N))
        self.logits = e(N, V)
        self.probs = e(N, V)
        self.losses = e(N)
        # scratch of the backward (shared by all blocks)
        self.tmp = e(N, C)
        self.dx = e(N, C)
        self.dln = e(N, C)
        self.datty = e(N, C)
        self.dqkv = e(N, 3 * C)
        self.dfc = e(N, 4 * C)
        self.dfc_pre = e(N, 4 * C)   # not dfc itself: an in-place update would not vectorise
        self.dlogits = e(N, V)
        chunks = K.CHUNKS
        self.partial_c = e(2 * chunks, C)
        self.partial_3c = e(chunks, 3 * C)
        self.partial_4c = e(chunks, 4 * C)
        hs = C // H
        self.head_scratch = e(7, B * H, T, hs)   # per (batch, head): q, k, v, y or dy, dq, dk, dv
        self.datt_scratch = e(B * H, T, T)
        self.idx = np.zeros((B, T), dtype=np.int32)
        self.targets = np.zeros(N, dtype=np.int32)
        self.has_targets = False
        self._views = {}

    def _params(self, theta):
        key = (theta.__array_interface__["data"][0], theta.shape, theta.dtype.str)
        if key not in self._views:   # views of the same vector are reused (one dict per flat buffer)
            if len(self._views) > 8:
                self._views.clear()
            self._views[key] = views(self.config, theta)
        return self._views[key]

    def _check(self, theta, idx):
        cfg = self.config
        if theta.dtype != cfg.np_dtype or theta.shape != (cfg.n_params,) or not theta.flags.c_contiguous:
            raise ValueError(f"parameters must be a contiguous {cfg.dtype} vector of {cfg.n_params} entries")
        idx = np.asarray(idx)
        if idx.shape != (self.B, self.T):
            raise ValueError(f"token batch must have shape ({self.B}, {self.T}), got {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= cfg.vocab_size):
            raise ValueError(f"token ids must be in [0, {cfg.vocab_size}), got {idx.min()}..{idx.max()}")
        return idx

    def forward(self, theta: np.ndarray, idx, targets=None) -> float:
        """Run the network on tokens ``idx`` (B, T); with ``targets`` (B, T) return the mean
        cross-entropy (else NaN). Activations stay in the buffers for :meth:`backward`."""
        K, cfg, p = self.K, self.config, self._params(theta)
        self.idx[...] = self._check(theta, idx)
        B, T, H, eps = self.B, self.T, cfg.n_head, cfg.ln_eps
        K.embedding_forward(self.idx, p["wte"], p["wpe"][:T], self.x[0])
        for l in range(cfg.n_layer):
            h = f"h{l}."
            x, a = self.x[l], self.a[l]
            # attention: a = x + attn(ln1(x)) @ proj_w + proj_b
            K.layernorm_forward(x, p[h + "ln1_w"], p[h + "ln1_b"], eps, self.ln1[l], *self.ln1_stats[l])
            np.matmul(self.ln1[l], p[h + "qkv_w"], out=self.qkv[l])
            K.bias_forward(self.qkv[l], p[h + "qkv_b"])
            K.attention_forward(self.qkv[l], B, T, H, self.attn_scale, self.att[l], self.atty[l], self.head_scratch)
            np.matmul(self.atty[l], p[h + "proj_w"], out=self.tmp)
            K.residual_forward(x, self.tmp, p[h + "proj_b"], a)
            # MLP: x_next = a + phi(ln2(a) @ fc_w + fc_b) @ fcproj_w + fcproj_b
            K.layernorm_forward(a, p[h + "ln2_w"], p[h + "ln2_b"], eps, self.ln2[l], *self.ln2_stats[l])
            np.matmul(self.ln2[l], p[h + "fc_w"], out=self.fc_dphi[l])
            K.activation_forward(self.fc_dphi[l], p[h + "fc_b"], self.fc_out[l])   # keeps phi' in fc_dphi
            np.matmul(self.fc_out[l], p[h + "fcproj_w"], out=self.tmp)
            K.residual_forward(a, self.tmp, p[h + "fcproj_b"], self.x[l + 1])
        K.layernorm_forward(self.x[-1], p["lnf_w"], p["lnf_b"], eps, self.lnf, *self.lnf_stats)
        # tied head: logits = m lnf(x_L) @ wte^T  (m = cfg.output_multiplier: 1 in SP, 1/r in muP)
        np.matmul(self.lnf, p["wte"].T, out=self.logits)
        if self.output_multiplier != 1.0:
            self.logits *= self.logits.dtype.type(self.output_multiplier)
        self.has_targets = targets is not None
        if not self.has_targets:
            return float("nan")
        t = np.asarray(targets)
        if t.shape != (B, T):
            raise ValueError(f"targets must have shape ({B}, {T}), got {t.shape}")
        if t.min() < 0 or t.max() >= cfg.vocab_size:
            raise ValueError(f"targets must be in [0, {cfg.vocab_size})")
        self.targets[...] = t.reshape(-1)
        K.crossentropy_forward(self.logits, self.targets, self.probs, self.losses)
        return float(K.mean_of(self.losses))

    def backward(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Gradient of the last :meth:`forward`'s mean loss with respect to ``theta``, written to
        ``grad`` (same layout; every entry is overwritten)."""
        if not self.has_targets:
            raise ValueError("backward needs a forward with targets")
        if grad.shape != theta.shape or grad.dtype != theta.dtype or not grad.flags.c_contiguous:
            raise ValueError("grad must be a contiguous vector like the parameters")
        K, cfg, p, g = self.K, self.config, self._params(theta), self._params(grad)
        B, T, H = self.B, self.T, cfg.n_head
        N = B * T
        dx, dln = self.dx, self.dln
        K.crossentropy_backward(self.probs, self.targets, 1.0 / N, self.dlogits)
        if self.output_multiplier != 1.0:   # d(m z) = m dz: the multiplier goes into dlogits once
            self.dlogits *= self.dlogits.dtype.type(self.output_multiplier)
        # logits = m lnf @ wte^T:  d lnf = dlogits @ wte,  d wte = dlogits^T @ lnf (the embedding adds to it)
        np.matmul(self.dlogits, p["wte"], out=dln)
        np.matmul(self.dlogits.T, self.lnf, out=g["wte"])
        dx.fill(0)
        K.layernorm_backward(dln, self.x[-1], *self.lnf_stats, p["lnf_w"], dx, dx, g["lnf_w"], g["lnf_b"],
                             self.partial_c)
        for l in reversed(range(cfg.n_layer)):
            h = f"h{l}."
            # x_next = a + fc_out @ fcproj_w + fcproj_b   (dx holds d x_next, and is d a's residual part)
            K.bias_backward(dx, g[h + "fcproj_b"], self.partial_c)
            np.matmul(self.fc_out[l].T, dx, out=g[h + "fcproj_w"])
            np.matmul(dx, p[h + "fcproj_w"].T, out=self.dfc)
            K.activation_backward(self.dfc, self.fc_dphi[l], self.dfc_pre, g[h + "fc_b"], self.partial_4c)
            np.matmul(self.ln2[l].T, self.dfc_pre, out=g[h + "fc_w"])
            np.matmul(self.dfc_pre, p[h + "fc_w"].T, out=dln)
            K.layernorm_backward(dln, self.a[l], *self.ln2_stats[l], p[h + "ln2_w"], dx, dx,
                                 g[h + "ln2_w"], g[h + "ln2_b"], self.partial_c)
            # a = x + atty @ proj_w + proj_b   (dx now holds d a)
            K.bias_backward(dx, g[h + "proj_b"], self.partial_c)
            np.matmul(self.atty[l].T, dx, out=g[h + "proj_w"])
            np.matmul(dx, p[h + "proj_w"].T, out=self.datty)
            K.attention_backward(self.datty, self.qkv[l], self.att[l], B, T, H, self.attn_scale, self.dqkv,
                                 self.head_scratch, self.datt_scratch)
            K.bias_backward(self.dqkv, g[h + "qkv_b"], self.partial_3c)
            np.matmul(self.ln1[l].T, self.dqkv, out=g[h + "qkv_w"])
            np.matmul(self.dqkv, p[h + "qkv_w"].T, out=dln)
            K.layernorm_backward(dln, self.x[l], *self.ln1_stats[l], p[h + "ln1_w"], dx, dx,
                                 g[h + "ln1_w"], g[h + "ln1_b"], self.partial_c)
        g["wpe"].fill(0)
        K.embedding_backward(dx, self.idx, g["wte"], g["wpe"][:T])


#: Micro-batches a batch is cut into by :class:`SplitNet` (a constant, so that the numbers depend
#: neither on the thread count nor on the machine's cores).
MICRO_BATCHES = 2


class SplitNet:
    """A :class:`Net` for batches of ``batch`` sequences cut into :data:`MICRO_BATCHES`
    micro-batches, each run through forward and backward by a :class:`Net` of its own on a thread
    of its own (serial kernels, BLAS on ``cores // micro-batches`` threads): one hand-over per pass
    instead of one per kernel, and the row-wise kernels (LayerNorm, bias, residual, cross-entropy)
    on both cores.

    The loss is the micro-batches' mean losses weighted by their token counts, and the gradient
    ``sum_m (N_m / N) grad_m`` (added in micro-batch order): the mean over the batch, as
    :class:`Net` computes it, to float rounding; bitwise the same for any thread count. The
    buffers :mod:`sigprop.gpt.diagnostics` reads (``x``, ``a``, ``att``, ``logits``, ...) are
    the micro-batches' joined along the batch.
    """

    def __init__(self, config: GPTConfig, batch: int, T: int | None = None, parts: int = MICRO_BATCHES):
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        parts = max(1, min(int(parts), int(batch)))
        bounds = [batch * m // parts for m in range(parts + 1)]
        self.nets = [Net(config, bounds[m + 1] - bounds[m], T) for m in range(parts)]
        self.bounds = bounds
        self.config, self.K = config, self.nets[0].K
        self.B, self.T = int(batch), self.nets[0].T
        self.weights = [(bounds[m + 1] - bounds[m]) / batch for m in range(parts)]
        self.grads = [None] + [np.zeros(config.n_params, dtype=config.np_dtype) for _ in range(parts - 1)]
        self._blas = None

    def _limits(self):
        """BLAS threads per micro-batch while the micro-batches run at once (cores // parts)."""
        from threadpoolctl import ThreadpoolController
        if self._blas is None:
            self._blas = (ThreadpoolController(), max(1, available_cores() // len(self.nets)))
        controller, n = self._blas
        return controller.limit(limits=n, user_api="blas")

    def _run(self, calls):
        """Run ``calls`` at once on the micro-batches' threads, or one after the other when numba's
        thread count (the process's compute-thread setting, as in the Monte Carlo engine) is 1."""
        import numba
        if len(calls) == 1 or numba.get_num_threads() < 2:
            return [c() for c in calls]
        with self._limits():
            return run_all(calls)

    def forward(self, theta: np.ndarray, idx, targets=None) -> float:
        """As :meth:`Net.forward`, for the whole batch."""
        idx = np.asarray(idx)
        if idx.shape != (self.B, self.T):
            raise ValueError(f"token batch must have shape ({self.B}, {self.T}), got {idx.shape}")
        if targets is not None:
            targets = np.asarray(targets)
            if targets.shape != (self.B, self.T):
                raise ValueError(f"targets must have shape ({self.B}, {self.T}), got {targets.shape}")
        b = self.bounds
        losses = self._run([functools.partial(net.forward, theta, idx[b[m]:b[m + 1]],
                                              None if targets is None else targets[b[m]:b[m + 1]])
                            for m, net in enumerate(self.nets)])
        if targets is None:
            return float("nan")
        total = 0.0
        for w, loss in zip(self.weights, losses):
            total += w * loss
        return total

    def backward(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """As :meth:`Net.backward`: the gradient of the last :meth:`forward`'s mean loss."""
        if grad.shape != theta.shape or grad.dtype != theta.dtype or not grad.flags.c_contiguous:
            raise ValueError("grad must be a contiguous vector like the parameters")
        outs = [grad] + self.grads[1:]
        self._run([functools.partial(net.backward, theta, out) for net, out in zip(self.nets, outs)])
        if len(self.nets) == 1:
            return
        # grad = sum_m w_m grad_m, in micro-batch order, each half of the vector on its own thread
        n = grad.shape[0]
        cuts = [n * k // 2 for k in range(3)]

        def reduce(lo, hi):
            def f():
                first = self.weights[0]
                for w, other in zip(self.weights[1:], self.grads[1:]):
                    self.K.scale_add(grad, first, other, w, lo, hi)
                    first = 1.0
            return f
        self._run([reduce(cuts[k], cuts[k + 1]) for k in range(2)])

    def _halves(self, n):
        """Two ranges of ``n`` blocks, one per thread (one range when there is one micro-batch)."""
        k = min(2, len(self.nets))
        return [(n * i // k, n * (i + 1) // k) for i in range(k)]

    def sum_of_squares(self, x: np.ndarray, partial: np.ndarray) -> float:
        """``K.sum_of_squares(x, partial)`` with its chunks on the micro-batches' threads (the
        same chunks, added in the same order: the same bits)."""
        K = self.K
        self._run([functools.partial(K.sum_of_squares_chunks, x, partial, c0, c1)
                   for c0, c1 in self._halves(K.CHUNKS)])
        return K.sum_of_squares(x, partial, True)

    def adamw_update(self, theta, grad, m, v, segments, *args) -> None:
        """``K.adamw_update(theta, grad, m, v, segments, *args)`` with its blocks on the
        micro-batches' threads (each entry's update is the same arithmetic: the same bits)."""
        K = self.K
        self._run([functools.partial(K.adamw_update, theta, grad, m, v, segments, *args, b0, b1)
                   for b0, b1 in self._halves(K.ADAMW_BLOCKS)])

    def _joined(self, name, axis=0):
        parts = [getattr(net, name) for net in self.nets]
        if isinstance(parts[0], list):
            return [np.concatenate([p[l] for p in parts], axis=axis) for l in range(len(parts[0]))]
        return np.concatenate(parts, axis=axis)

    # the buffers the diagnostics and tests read, joined over the micro-batches
    x = property(lambda self: self._joined("x"))
    a = property(lambda self: self._joined("a"))
    att = property(lambda self: self._joined("att"))
    logits = property(lambda self: self._joined("logits"))
    probs = property(lambda self: self._joined("probs"))
    lnf_stats = property(lambda self: tuple(np.concatenate(s) for s in zip(*(n.lnf_stats for n in self.nets))))
