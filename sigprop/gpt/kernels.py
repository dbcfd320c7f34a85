"""One forward and one backward per operation of the GPT, written by hand and compiled with numba.

This file is a template, like :mod:`sigprop.charmlp.kernels`: :func:`sigprop.gpt.model.load_kernels`
replaces the block between the ``activation`` markers with the MLP activation's sympy-printed
``phi``/``dphi`` (GPT-2's tanh-approximate GELU by default), writes the module to the kernel cache
folder and imports it. The matrix products of the linear layers are not here: they go to BLAS
through numpy (:mod:`sigprop.gpt.net` calls them with preallocated outputs); the attention's small
per-head products call BLAS through ``np.dot`` inside its kernels. Every kernel is serial (no
numba parfor): the two cores are used by :class:`sigprop.gpt.net.SplitNet`, which runs the
micro-batches of a batch through forward and backward on threads of their own (one hand-over per
pass instead of one per kernel; on a 2-core VM a parfor launch costs about 0.1 ms, and a parfor
takes about a second more to compile). The kernels over the flat parameter vector (AdamW, the sum
of squares) take a range of blocks, so that the caller can split them over threads.

Shapes: ``N = B T`` rows (batch x position), ``C`` channels, ``H`` heads of ``hs = C / H``.
Every kernel writes into arrays it is given; none allocates. Sums over rows (weight and bias
gradients) are split into a fixed number of row chunks (:data:`CHUNKS`) whose partial sums are
added in order afterwards, so results do not depend on the number of threads.
"""
import math as _libm

import numba
import numpy as np
from numba import types
from numba.extending import overload

from sigprop._jit import CONTRACT_JIT, FAST_JIT, JIT

def _like(x, c):
    """The constant ``c`` in the float type of ``x`` (the typed activation source's constants:
    :func:`sigprop.gpt.model.typed_fused_source`)."""
    return c


@overload(_like, jit_options=JIT)
def _like_numba(x, c):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x, c: np.float32(c)
    return lambda x, c: np.float64(c)


# --- activation: begin (replaced by sigprop.gpt.model.load_kernels with the activation's numba source)
import sigprop.charmlp.vmath as math  # noqa: E402  (vectorisable exp/tanh; every other name is math's)


def phi(x):
    return (1/2)*x*(math.tanh(math.sqrt(2)*((8943/200000)*x**3 + x)/math.sqrt(math.pi)) + 1)


def dphi(x):
    return (1/2)*math.sqrt(2)*x*(1 - math.tanh(math.sqrt(2)*((8943/200000)*x**3 + x)/math.sqrt(math.pi))**2)*((26829/200000)*x**2 + 1)/math.sqrt(math.pi) + (1/2)*math.tanh(math.sqrt(2)*((8943/200000)*x**3 + x)/math.sqrt(math.pi)) + 1/2


def phi_dphi(x):
    x0 = math.sqrt(2)/math.sqrt(math.pi)
    x1 = math.tanh(x0*((8943/200000)*x**3 + x))
    x2 = (1/2)*x
    return x2*(x1 + 1), x0*x2*(1 - x1**2)*((26829/200000)*x**2 + 1) + (1/2)*x1 + 1/2
# --- activation: end


phi = numba.njit(**CONTRACT_JIT)(phi)
dphi = numba.njit(**CONTRACT_JIT)(dphi)
phi_dphi = numba.njit(**CONTRACT_JIT)(phi_dphi)

#: Row chunks of every deterministic sum over rows.
CHUNKS = 16


@numba.njit(**JIT)
def _chunk(i, n):
    """Rows [lo, hi) of chunk i of n rows split into CHUNKS parts."""
    return (i * n) // CHUNKS, ((i + 1) * n) // CHUNKS


@numba.njit(**JIT)
def _sum_partials(partial, out, accumulate):
    """out (+)= sum over chunks of partial (CHUNKS, C), in chunk order."""
    C = out.shape[0]
    for j in range(C):
        s = partial[0, j]
        for i in range(1, CHUNKS):
            s += partial[i, j]
        out[j] = out[j] + s if accumulate else s


# ----------------------------------------------------------------------------------------------
# Embedding: x[b t] = wte[idx[b, t]] + wpe[t]
# ----------------------------------------------------------------------------------------------
@numba.njit(**JIT)
def embedding_forward(idx, wte, wpe, out):
    B, T = idx.shape
    C = wte.shape[1]
    for r in range(B * T):
        tok = idx[r // T, r % T]
        t = r % T
        for j in range(C):
            out[r, j] = wte[tok, j] + wpe[t, j]


@numba.njit(**JIT)
def embedding_backward(dout, idx, dwte, dwpe):
    """dwte[idx] += dout rows; dwpe[t] += dout rows (accumulates, in row order)."""
    B, T = idx.shape
    C = dout.shape[1]
    for r in range(B * T):
        tok = idx[r // T, r % T]
        t = r % T
        for j in range(C):
            g = dout[r, j]
            dwte[tok, j] += g
            dwpe[t, j] += g


# ----------------------------------------------------------------------------------------------
# LayerNorm over channels: y = w (x - mean) rstd + b,  rstd = 1 / sqrt(var + eps)
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def layernorm_forward(x, w, b, eps, out, mean, rstd):
    N, C = x.shape
    eps_ = x.dtype.type(eps)
    for r in range(N):
        xr = x[r]
        m = xr.dtype.type(0)
        for j in range(C):
            m += xr[j]
        m /= x.dtype.type(C)
        v = xr.dtype.type(0)
        for j in range(C):
            d = xr[j] - m
            v += d * d
        v /= x.dtype.type(C)
        s = x.dtype.type(1) / np.sqrt(v + eps_)
        for j in range(C):
            out[r, j] = (xr[j] - m) * s * w[j] + b[j]
        mean[r] = m
        rstd[r] = s


@numba.njit(**FAST_JIT)
def layernorm_backward(dout, x, mean, rstd, w, dres, dx, dw, db, partial):
    """dx = dres + dL/dx through the LayerNorm (dx may be dres itself); dw, db = sums over rows.

    With xhat = (x - mean) rstd and g = dout w:  dx = rstd (g - mean(g) - xhat mean(g xhat)).
    ``partial`` is scratch of shape (2 CHUNKS, C).
    """
    N, C = x.shape
    for i in range(CHUNKS):
        lo, hi = _chunk(i, N)
        pw = partial[i]
        pb = partial[CHUNKS + i]
        for j in range(C):
            pw[j] = 0
            pb[j] = 0
        for r in range(lo, hi):
            m = mean[r]
            s = rstd[r]
            g_mean = x.dtype.type(0)
            gx_mean = x.dtype.type(0)
            for j in range(C):
                xhat = (x[r, j] - m) * s
                g = dout[r, j] * w[j]
                g_mean += g
                gx_mean += g * xhat
                pw[j] += dout[r, j] * xhat
                pb[j] += dout[r, j]
            g_mean /= x.dtype.type(C)
            gx_mean /= x.dtype.type(C)
            for j in range(C):
                xhat = (x[r, j] - m) * s
                g = dout[r, j] * w[j]
                dx[r, j] = dres[r, j] + s * (g - g_mean - xhat * gx_mean)
    _sum_partials(partial[:CHUNKS], dw, False)
    _sum_partials(partial[CHUNKS:], db, False)


# ----------------------------------------------------------------------------------------------
# Bias: y += b  (forward of matmul + bias; the product itself is BLAS);  db = sum_rows dy
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def bias_forward(y, b):
    N, C = y.shape
    for r in range(N):
        for j in range(C):
            y[r, j] += b[j]


@numba.njit(**FAST_JIT)
def bias_backward(dy, db, partial):
    """db = sum over rows of dy; ``partial`` is scratch (CHUNKS, C)."""
    N, C = dy.shape
    for i in range(CHUNKS):
        lo, hi = _chunk(i, N)
        p = partial[i]
        for j in range(C):
            p[j] = 0
        for r in range(lo, hi):
            for j in range(C):
                p[j] += dy[r, j]
    _sum_partials(partial[:CHUNKS], db, False)


# ----------------------------------------------------------------------------------------------
# Residual: out = res + y + b  (y = a @ W_proj from BLAS; the projection's bias added here)
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def residual_forward(res, y, b, out):
    N, C = y.shape
    for r in range(N):
        for j in range(C):
            out[r, j] = res[r, j] + y[r, j] + b[j]
# residual backward: d res = d out and d y = d out (the gradient passes through unchanged), so it has
# no kernel: net.backward hands the same buffer to both branches and bias_backward gives db.


# ----------------------------------------------------------------------------------------------
# MLP activation: h = pre + b (the fc bias), out = phi(h), and phi'(h) kept for the backward (in pre's
# buffer: the backward needs nothing else of h, and phi and phi' share their tanh);
# backward: dpre = dout phi'(h), db = sum dpre
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def activation_forward(pre, b, out):
    """out = phi(pre + b); pre is overwritten with phi'(pre + b) (the backward's ``dphi``)."""
    N, C = pre.shape
    for r in range(N):
        p = pre[r]
        o = out[r]
        for j in range(C):
            f, d = phi_dphi(p[j] + b[j])
            o[j] = f
            p[j] = d


@numba.njit(**FAST_JIT)
def activation_backward(dout, dphi, dpre, db, partial):
    """dpre = dout dphi (dphi: what :func:`activation_forward` left in pre); db = sum over rows of
    dpre. (dpre should not be dout: an in-place update does not vectorise.)"""
    N, C = dphi.shape
    for i in range(CHUNKS):
        lo, hi = _chunk(i, N)
        p = partial[i]
        for j in range(C):
            p[j] = 0
        for r in range(lo, hi):
            for j in range(C):
                g = dout[r, j] * dphi[r, j]
                dpre[r, j] = g
                p[j] += g
    _sum_partials(partial[:CHUNKS], db, False)


# ----------------------------------------------------------------------------------------------
# Causal self-attention of one (batch, head) pair per task. qkv rows hold [q | k | v], each C wide,
# head h at columns h hs .. (h+1) hs of its part; ``scale`` multiplies the logits (GPT-2:
# 1/sqrt(hs), chosen by the caller: GPTConfig.attn_scale).
#   s[t, u] = scale q_t . k_u  (u <= t),   att[t, :] = softmax(s[t, :u<=t]),   y_t = sum_u att[t, u] v_u
# Each task copies its head into contiguous scratch, and the four T x T products (and their
# backward) go to BLAS (np.dot; one task's products are small enough that BLAS runs them on the
# calling thread, so the result does not depend on the number of threads). The products run over
# the full T x T square: the masked half is zero in att, and BLAS on it beats a triangular loop.
# ----------------------------------------------------------------------------------------------
@numba.njit(**JIT)
def _gather_head(src, b, T, col, dst):
    """dst (T, hs) = the block of src at rows b T.., columns col.."""
    hs = dst.shape[1]
    for t in range(T):
        row = src[b * T + t]
        out = dst[t]
        for i in range(hs):
            out[i] = row[col + i]


@numba.njit(**JIT)
def _scatter_head(src, dst, b, T, col):
    """The block of dst at rows b T.., columns col.. = src (T, hs)."""
    hs = src.shape[1]
    for t in range(T):
        row = dst[b * T + t]
        s = src[t]
        for i in range(hs):
            row[col + i] = s[i]


@numba.njit(**FAST_JIT)
def attention_forward(qkv, B, T, H, scale, att, y, heads):
    """att (B, H, T, T): probabilities (0 above the diagonal); y (B T, C).
    ``heads`` is scratch (>= 4, B H, T, hs)."""
    C = qkv.shape[1] // 3
    hs = C // H
    dt = qkv.dtype.type
    sc = dt(scale)
    zero = dt(0)
    for task in range(B * H):
        b = task // H
        h = task % H
        q, k, v, acc = heads[0, task], heads[1, task], heads[2, task], heads[3, task]
        _gather_head(qkv, b, T, h * hs, q)
        _gather_head(qkv, b, T, C + h * hs, k)
        _gather_head(qkv, b, T, 2 * C + h * hs, v)
        a = att[b, h]
        np.dot(q, k.T, a)
        for t in range(T):
            r = a[t]
            n = t + 1
            smax = r[0] * sc
            for u in range(n):
                r[u] *= sc
                smax = max(smax, r[u])
            total = zero
            for u in range(n):
                e = math.exp(r[u] - smax)   # vmath: vectorises (np.exp is a scalar libm call)
                r[u] = e
                total += e
            inv = dt(1) / total
            for u in range(n):
                r[u] *= inv
            for u in range(n, T):
                r[u] = zero
        np.dot(a, v, acc)
        _scatter_head(acc, y, b, T, h * hs)


@numba.njit(**FAST_JIT)
def attention_backward(dy, qkv, att, B, T, H, scale, dqkv, heads, sda):
    """dqkv (B T, 3C) from dy (B T, C), with the forward's att. Scratch: ``heads`` (>= 7, B H, T, hs),
    ``sda`` (B H, T, T).

    datt = dy v^T;  dv = att^T dy;  ds[t, u] = att[t, u] (datt[t, u] - sum_u' att[t, u'] datt[t, u']) scale;
    dq = ds k;  dk = ds^T q.
    """
    C = qkv.shape[1] // 3
    hs = C // H
    dt = qkv.dtype.type
    sc = dt(scale)
    zero = dt(0)
    for task in range(B * H):
        b = task // H
        h = task % H
        o = h * hs
        q, k, v, dyh = heads[0, task], heads[1, task], heads[2, task], heads[3, task]
        dq, dk, dv = heads[4, task], heads[5, task], heads[6, task]
        da = sda[task]
        a = att[b, h]
        _gather_head(qkv, b, T, o, q)
        _gather_head(qkv, b, T, C + o, k)
        _gather_head(qkv, b, T, 2 * C + o, v)
        _gather_head(dy, b, T, o, dyh)
        np.dot(dyh, v.T, da)
        np.dot(a.T, dyh, dv)
        for t in range(T):
            r = a[t]
            d = da[t]
            n = t + 1
            dot = zero
            for u in range(n):
                dot += r[u] * d[u]
            for u in range(n):
                d[u] = r[u] * (d[u] - dot) * sc
            for u in range(n, T):
                d[u] = zero
        np.dot(da, k, dq)
        np.dot(da.T, q, dk)
        _scatter_head(dq, dqkv, b, T, o)
        _scatter_head(dk, dqkv, b, T, C + o)
        _scatter_head(dv, dqkv, b, T, 2 * C + o)


# ----------------------------------------------------------------------------------------------
# Softmax cross-entropy: loss_r = logsumexp(logits_r) - logits_r[y_r];  probs kept for the backward
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def crossentropy_forward(logits, targets, probs, losses):
    """probs = softmax(logits) rows; losses[r] = -log probs[r, targets[r]] (targets < 0: no loss)."""
    N, V = logits.shape
    for r in range(N):
        lr = logits[r]
        m = lr[0]
        for j in range(1, V):
            if lr[j] > m:
                m = lr[j]
        total = lr.dtype.type(0)
        for j in range(V):
            e = math.exp(lr[j] - m)
            probs[r, j] = e
            total += e
        inv = lr.dtype.type(1) / total
        for j in range(V):
            probs[r, j] *= inv
        y = targets[r]
        losses[r] = (np.log(total) + m - lr[y]) if y >= 0 else lr.dtype.type(0)


@numba.njit(**JIT)
def crossentropy_backward(probs, targets, dloss, dlogits):
    """dlogits = dloss (probs - onehot(targets)) (dlogits may be probs itself)."""
    N, V = probs.shape
    d = probs.dtype.type(dloss)
    for r in range(N):
        for j in range(V):
            dlogits[r, j] = d * probs[r, j]
        y = targets[r]
        if y >= 0:
            dlogits[r, y] -= d


@numba.njit(**JIT)
def mean_of(values):
    """Mean of a 1-d array in float64, summed in order."""
    s = 0.0
    for i in range(values.shape[0]):
        s += values[i]
    return s / values.shape[0]


# ----------------------------------------------------------------------------------------------
# AdamW (PyTorch's update): theta *= 1 - lr wd (decayed tensors only);  m = b1 m + (1-b1) g;
# v = b2 v + (1-b2) g^2;  theta -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps), with g = grad scale
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def sum_of_squares_chunks(x, partial, c0, c1):
    """partial[i] = sum x^2 over chunk i of the flat x, chunks c0 <= i < c1, in float64."""
    n = x.shape[0]
    for i in range(c0, c1):
        lo, hi = _chunk(i, n)
        s = 0.0
        for k in range(lo, hi):
            s += float(x[k]) * float(x[k])
        partial[i] = s


@numba.njit(**FAST_JIT)
def sum_of_squares(x, partial, filled=False):
    """sum x^2 over a flat array in float64, in CHUNKS chunks added in order (partial: (CHUNKS,);
    ``filled``: :func:`sum_of_squares_chunks` has already filled it, on the caller's threads)."""
    if not filled:
        sum_of_squares_chunks(x, partial, 0, CHUNKS)
    total = 0.0
    for i in range(CHUNKS):
        total += partial[i]
    return total


#: Pieces of the flat vector the AdamW update runs over (the caller may split them over threads).
ADAMW_BLOCKS = 64


@numba.njit(**JIT)
def _adamw_range(theta, grad, m, v, lo, hi, shrink, b1, b2, step_size, sqrt_bc2, eps, gs):
    one = theta.dtype.type(1)
    for k in range(lo, hi):
        g = grad[k] * gs
        mk = b1 * m[k] + (one - b1) * g
        vk = b2 * v[k] + (one - b2) * g * g
        m[k] = mk
        v[k] = vk
        theta[k] = theta[k] * shrink - step_size * mk / (np.sqrt(vk) / sqrt_bc2 + eps)


@numba.njit(**JIT)
def adamw_update(theta, grad, m, v, segments, lr, beta1, beta2, eps, weight_decay, step, grad_scale,
                 block0=0, block1=ADAMW_BLOCKS):
    """One AdamW step in place. ``segments`` (S, 3) int64 rows (start, stop, decay 0/1) cover theta.
    A loop over the ADAMW_BLOCKS equal pieces of theta block0 <= i < block1 (all by default; the
    caller may run ranges on threads), each walking the segments it meets; every entry's update is
    the same arithmetic whichever thread runs it."""
    dt = theta.dtype.type
    b1 = dt(beta1)
    b2 = dt(beta2)
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    step_size = dt(lr / bc1)
    sqrt_bc2 = dt(_libm.sqrt(bc2))
    eps_ = dt(eps)
    gs = dt(grad_scale)
    shrink = dt(1.0 - lr * weight_decay)
    n = theta.shape[0]
    for i in range(block0, block1):
        lo = (i * n) // ADAMW_BLOCKS
        hi = ((i + 1) * n) // ADAMW_BLOCKS
        for s in range(segments.shape[0]):
            a = max(lo, segments[s, 0])
            z = min(hi, segments[s, 1])
            if a < z:
                _adamw_range(theta, grad, m, v, a, z, shrink if segments[s, 2] != 0 else dt(1),
                             b1, b2, step_size, sqrt_bc2, eps_, gs)


@numba.njit(**FAST_JIT)
def scale_add(out, a, other, b, lo, hi):
    """out[k] = a out[k] + b other[k] for lo <= k < hi (the micro-batches' gradients summed)."""
    dt = out.dtype.type
    a_ = dt(a)
    b_ = dt(b)
    for k in range(lo, hi):
        out[k] = a_ * out[k] + b_ * other[k]
