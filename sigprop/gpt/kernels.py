"""One forward and one backward per operation of the GPT, written by hand and compiled with numba.

This file is a template, like :mod:`sigprop.charmlp.kernels`: :func:`sigprop.gpt.model.load_kernels`
replaces the block between the ``activation`` markers with the MLP activation's sympy-printed
``phi``/``dphi`` (GPT-2's tanh-approximate GELU by default), writes the module to the kernel cache
folder and imports it. The matrix products are not here: they go to BLAS through numpy
(:mod:`sigprop.gpt.net` calls them with preallocated outputs).

Shapes: ``N = B T`` rows (batch x position), ``C`` channels, ``H`` heads of ``hs = C / H``.
Every kernel writes into arrays it is given; none allocates. Sums over rows (weight and bias
gradients) are split into a fixed number of row chunks (:data:`CHUNKS`) whose partial sums are
added in order afterwards, so results do not depend on the number of threads.
"""
import math as _libm

import numba
import numpy as np
from numba import prange

from sigprop._jit import CONTRACT_JIT, JIT, PARALLEL_FAST_JIT, PARALLEL_JIT

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
@numba.njit(**PARALLEL_JIT)
def embedding_forward(idx, wte, wpe, out):
    B, T = idx.shape
    C = wte.shape[1]
    for r in prange(B * T):
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
@numba.njit(**PARALLEL_JIT)
def layernorm_forward(x, w, b, eps, out, mean, rstd):
    N, C = x.shape
    eps_ = x.dtype.type(eps)
    for r in prange(N):
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


@numba.njit(**PARALLEL_JIT)
def layernorm_backward(dout, x, mean, rstd, w, dres, dx, dw, db, partial):
    """dx = dres + dL/dx through the LayerNorm (dx may be dres itself); dw, db = sums over rows.

    With xhat = (x - mean) rstd and g = dout w:  dx = rstd (g - mean(g) - xhat mean(g xhat)).
    ``partial`` is scratch of shape (2 CHUNKS, C).
    """
    N, C = x.shape
    for i in prange(CHUNKS):
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
@numba.njit(**PARALLEL_JIT)
def bias_forward(y, b):
    N, C = y.shape
    for r in prange(N):
        for j in range(C):
            y[r, j] += b[j]


@numba.njit(**PARALLEL_JIT)
def bias_backward(dy, db, partial):
    """db = sum over rows of dy; ``partial`` is scratch (CHUNKS, C)."""
    N, C = dy.shape
    for i in prange(CHUNKS):
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
@numba.njit(**PARALLEL_JIT)
def residual_forward(res, y, b, out):
    N, C = y.shape
    for r in prange(N):
        for j in range(C):
            out[r, j] = res[r, j] + y[r, j] + b[j]
# residual backward: d res = d out and d y = d out (the gradient passes through unchanged), so it has
# no kernel: net.backward hands the same buffer to both branches and bias_backward gives db.


# ----------------------------------------------------------------------------------------------
# MLP activation: pre += b (the fc bias), out = phi(pre);  backward: dpre = dout phi'(pre), db = sum dpre
# ----------------------------------------------------------------------------------------------
@numba.njit(**PARALLEL_FAST_JIT)
def activation_forward(pre, b, out):
    N, C = pre.shape
    for r in prange(N):
        for j in range(C):
            h = pre[r, j] + b[j]
            pre[r, j] = h
            out[r, j] = phi(h)


@numba.njit(**PARALLEL_FAST_JIT)
def activation_backward(dout, pre, dpre, db, partial):
    """dpre = dout phi'(pre); db = sum over rows of dpre. (dpre should not be dout: an in-place
    update does not vectorise, about 6x slower.)"""
    N, C = pre.shape
    for i in prange(CHUNKS):
        lo, hi = _chunk(i, N)
        p = partial[i]
        for j in range(C):
            p[j] = 0
        for r in range(lo, hi):
            for j in range(C):
                g = dout[r, j] * phi_dphi(pre[r, j])[1]
                dpre[r, j] = g
                p[j] += g
    _sum_partials(partial[:CHUNKS], db, False)


# ----------------------------------------------------------------------------------------------
# Causal self-attention of one (batch, head) pair per task. qkv rows hold [q | k | v], each C wide,
# head h at columns h hs .. (h+1) hs of its part.
#   s[t, u] = q_t . k_u / sqrt(hs)  (u <= t),   att[t, :] = softmax(s[t, :u<=t]),   y_t = sum_u att[t, u] v_u
# Each task first copies its head into contiguous scratch (q, v as (T, hs); k as (hs, T)) so that
# every inner loop runs along a contiguous row and vectorises.
# ----------------------------------------------------------------------------------------------
@numba.njit(**JIT)
def _gather_head(qkv, b, T, col, rows, cols_first):
    """Copy the (T, hs) block of qkv at rows b T.., columns col.. into ``rows`` (T, hs), or its
    transpose into ``rows`` (hs, T) when ``cols_first``."""
    if cols_first:
        hs = rows.shape[0]
        for t in range(T):
            src = qkv[b * T + t]
            for i in range(hs):
                rows[i, t] = src[col + i]
    else:
        hs = rows.shape[1]
        for t in range(T):
            src = qkv[b * T + t]
            dst = rows[t]
            for i in range(hs):
                dst[i] = src[col + i]


@numba.njit(**PARALLEL_FAST_JIT)
def attention_forward(qkv, B, T, H, att, y, sq, skt, sv, logit_scale):
    """att (B, H, T, T): probabilities (0 above the diagonal); y (B T, C).
    Scratch per task: sq, sv (B H, T, hs), skt (B H, hs, T). Logits are q.k * logit_scale
    (GPTConfig.attn_scale: 1/sqrt(hs) in SP, proportional to 1/hs in muP)."""
    C = qkv.shape[1] // 3
    hs = C // H
    dt = qkv.dtype.type
    scale = dt(logit_scale)
    zero = dt(0)
    for task in prange(B * H):
        b = task // H
        h = task % H
        q, kt, v = sq[task], skt[task], sv[task]
        _gather_head(qkv, b, T, h * hs, q, False)
        _gather_head(qkv, b, T, C + h * hs, kt, True)
        _gather_head(qkv, b, T, 2 * C + h * hs, v, False)
        for t in range(T):
            a = att[b, h, t]
            n = t + 1
            for u in range(n):
                a[u] = zero
            for i in range(hs):           # a[:n] += q[t, i] k[:n, i]
                qi = q[t, i]
                kr = kt[i]
                for u in range(n):
                    a[u] += qi * kr[u]
            smax = a[0]
            for u in range(n):
                a[u] *= scale
                if a[u] > smax:
                    smax = a[u]
            total = zero
            for u in range(n):
                e = math.exp(a[u] - smax)   # vmath: vectorises (np.exp is a scalar libm call)
                a[u] = e
                total += e
            inv = dt(1) / total
            for u in range(n):
                a[u] *= inv
            for u in range(n, T):
                a[u] = zero
            acc = q[t]                     # q_t is used up: its scratch row accumulates y_t
            for i in range(hs):
                acc[i] = zero
            for u in range(n):             # y_t = sum_u att[t, u] v_u
                p = a[u]
                vr = v[u]
                for i in range(hs):
                    acc[i] += p * vr[i]
            yr = y[b * T + t]
            o = h * hs
            for i in range(hs):
                yr[o + i] = acc[i]


@numba.njit(**PARALLEL_FAST_JIT)
def attention_backward(dy, qkv, att, B, T, H, dqkv, sq, skt, sv, sdq, sdk, sdv, srow, logit_scale):
    """dqkv (B T, 3C) from dy (B T, C), with the forward's att. Scratch per task: sq, sv, sdq, sdk,
    sdv (B H, T, hs); skt (B H, hs, T) holding v transposed here; srow (B H, T).

    datt[t, u] = dy_t . v_u;  dv_u += att[t, u] dy_t;
    ds[t, u] = att[t, u] (datt[t, u] - sum_u' att[t, u'] datt[t, u']) logit_scale;
    dq_t += sum_u ds[t, u] k_u;  dk_u += ds[t, u] q_t.
    """
    C = qkv.shape[1] // 3
    hs = C // H
    dt = qkv.dtype.type
    scale = dt(logit_scale)
    zero = dt(0)
    for task in prange(B * H):
        b = task // H
        h = task % H
        q, k, vt = sq[task], sv[task], skt[task]
        dq, dk, dv, da = sdq[task], sdk[task], sdv[task], srow[task]
        _gather_head(qkv, b, T, h * hs, q, False)
        _gather_head(qkv, b, T, C + h * hs, k, False)
        _gather_head(qkv, b, T, 2 * C + h * hs, vt, True)
        for t in range(T):
            for i in range(hs):
                dq[t, i] = zero
                dk[t, i] = zero
                dv[t, i] = zero
        o = h * hs
        for t in range(T):
            a = att[b, h, t]
            dyt = dy[b * T + t, o:o + hs]
            n = t + 1
            for u in range(n):
                da[u] = zero
            for i in range(hs):            # da[:n] += dy[t, i] v[:n, i];  dv[u] += a[u] dy_t
                g = dyt[i]
                vr = vt[i]
                for u in range(n):
                    da[u] += g * vr[u]
            for u in range(n):
                p = a[u]
                dvr = dv[u]
                for i in range(hs):
                    dvr[i] += p * dyt[i]
            dot = zero
            for u in range(n):
                dot += a[u] * da[u]
            qt = q[t]
            dqt = dq[t]
            for u in range(n):
                ds = a[u] * (da[u] - dot) * scale
                kr = k[u]
                dkr = dk[u]
                for i in range(hs):
                    dqt[i] += ds * kr[i]
                    dkr[i] += ds * qt[i]
        for t in range(T):
            g = dqkv[b * T + t]
            for i in range(hs):
                g[o + i] = dq[t, i]
                g[C + o + i] = dk[t, i]
                g[2 * C + o + i] = dv[t, i]


# ----------------------------------------------------------------------------------------------
# Softmax cross-entropy: loss_r = logsumexp(logits_r) - logits_r[y_r];  probs kept for the backward
# ----------------------------------------------------------------------------------------------
@numba.njit(**PARALLEL_FAST_JIT)
def crossentropy_forward(logits, targets, probs, losses):
    """probs = softmax(logits) rows; losses[r] = -log probs[r, targets[r]] (targets < 0: no loss)."""
    N, V = logits.shape
    for r in prange(N):
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


@numba.njit(**PARALLEL_JIT)
def crossentropy_backward(probs, targets, dloss, dlogits):
    """dlogits = dloss (probs - onehot(targets)) (dlogits may be probs itself)."""
    N, V = probs.shape
    d = probs.dtype.type(dloss)
    for r in prange(N):
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
@numba.njit(**JIT)
def sum_of_squares(x, partial):
    """sum x^2 over a flat array in float64, in CHUNKS chunks added in order (partial: (CHUNKS,))."""
    n = x.shape[0]
    for i in range(CHUNKS):
        lo, hi = _chunk(i, n)
        s = 0.0
        for k in range(lo, hi):
            s += float(x[k]) * float(x[k])
        partial[i] = s
    total = 0.0
    for i in range(CHUNKS):
        total += partial[i]
    return total


@numba.njit(**PARALLEL_JIT)
def adamw_update(theta, grad, m, v, segments, lr, beta1, beta2, eps, weight_decay, step, grad_scale):
    """One AdamW step in place. ``segments`` (S, 3) int64 rows (start, stop, decay 0/1) cover theta."""
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
    one = dt(1)
    for s in range(segments.shape[0]):
        lo = segments[s, 0]
        hi = segments[s, 1]
        decay = segments[s, 2] != 0
        for k in prange(lo, hi):
            g = grad[k] * gs
            mk = b1 * m[k] + (one - b1) * g
            vk = b2 * v[k] + (one - b2) * g * g
            m[k] = mk
            v[k] = vk
            p = theta[k] * shrink if decay else theta[k]
            theta[k] = p - step_size * mk / (np.sqrt(vk) / sqrt_bc2 + eps_)
