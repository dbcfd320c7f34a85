"""Forward, backward and SGD of the character MLP, written by hand and compiled with numba.

This file is a template: :func:`sigprop.charmlp.model.load_kernels` replaces the
block between the ``activation`` markers with the activation's sympy-printed
``phi``/``dphi`` (:meth:`sigprop.activations.Activation.numba_source`), writes the
result to a cache folder and imports it, so every activation gets its own
compiled (and numba-cached) module. Imported as it stands, the module trains a
tanh network.

Layout
------
All parameters live in one flat vector ``theta`` (their gradients in ``grad``,
same layout), BatchNorm running statistics in ``bnstate``, and every
intermediate array of a step in one flat workspace ``ws``. The integer table
``lay`` has one row per linear layer (hidden layers, then the output layer)
giving the offsets of its arrays (columns ``N_IN`` ... ``ISTD`` below); a
missing array has offset -1. A layer's weight is stored ``(n_in, n_out)``, or
``(n_out, n_in)`` when ``lay[r, TRANS]`` (chosen when ``n_out < n_in``, so that
the innermost loops always run along the longer dimension).

Notation (one hidden layer ``l``, batch rows ``b``, units ``j``)::

    z = x_{l-1} @ W + b                    linear output           (Z)
    h = gamma (z - mean) / sqrt(var + eps) + beta   with BatchNorm (H, XHAT = normalised z)
    h = z                                  without BatchNorm       (H is Z)
    x_l = phi(h), phi'(h)                                          (X, DPHI)
    logits = x_L @ W_out + b_out;  loss = mean_b -log softmax(logits)[y_b]

Gradients: ``GX = dL/dx``, ``GH = dL/dh``, ``GZ = dL/dz`` (GZ is GH without
BatchNorm), ``grad = dL/dtheta``.
"""
import math as _libm

import numba
import numpy as np

from sigprop._jit import CONTRACT_JIT, FAST_JIT

# --- activation: begin (replaced by sigprop.charmlp.model.load_kernels with the activation's
# numba_source() and numba_source_fused(): phi, dphi and phi_dphi = (phi, dphi) with shared terms once)
import sigprop.charmlp.vmath as math  # noqa: E402  (vectorisable exp/tanh; every other name is math's)


def phi(x):
    return math.tanh(x)


def dphi(x):
    return 1 - math.tanh(x)**2


def phi_dphi(x):
    x0 = math.tanh(x)
    return x0, 1 - x0**2
# --- activation: end


phi = numba.njit(**CONTRACT_JIT)(phi)
dphi = numba.njit(**CONTRACT_JIT)(dphi)
phi_dphi = numba.njit(**CONTRACT_JIT)(phi_dphi)

# columns of the layout table
N_IN, N_OUT, W, BIAS, GAMMA, BETA, TRANS, RMEAN, RVAR = 0, 1, 2, 3, 4, 5, 6, 7, 8
XIN, GXIN, Z, XHAT, H, X, DPHI, GX, GH, GZ, MEAN, ISTD = 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
N_COLS = 21


# ----------------------------------------------------------------------------------------------
# Matrix products. Two shapes cover all six products of a step (see backward):
#   matmul_nn: Y = A @ M       with M rows contiguous: Y[b, :] += A[b, k] M[k, :]
#   matmul_nt: Y = A @ M^T     dot products of rows:   Y[b, j] = A[b, :] . M[j, :]
# Both work on blocks of 4 rows of Y so that each row of M read from memory serves 4 rows, and
# matmul_nn adds 4 terms of k per pass so that each row of Y is stored once per 4 products.
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def matmul_nn(A, M, Y):
    """Y = A @ M, A (B, n), M (n, m), Y (B, m); all C-contiguous."""
    B, n = A.shape
    m = M.shape[1]
    zero = Y.dtype.type(0)
    n4 = n - n % 4
    B4 = B - B % 4
    for b in range(0, B4, 4):
        y0, y1, y2, y3 = Y[b], Y[b + 1], Y[b + 2], Y[b + 3]
        x0, x1, x2, x3 = A[b], A[b + 1], A[b + 2], A[b + 3]
        for j in range(m):
            y0[j] = zero
            y1[j] = zero
            y2[j] = zero
            y3[j] = zero
        # 4 terms of k per pass: y += a_k M[k] + a_{k+1} M[k+1] + a_{k+2} M[k+2] + a_{k+3} M[k+3]
        for k in range(0, n4, 4):
            w0 = M[k]
            w1 = M[k + 1]
            w2 = M[k + 2]
            w3 = M[k + 3]
            a0 = x0[k]
            a1 = x0[k + 1]
            a2 = x0[k + 2]
            a3 = x0[k + 3]
            c0 = x1[k]
            c1 = x1[k + 1]
            c2 = x1[k + 2]
            c3 = x1[k + 3]
            e0 = x2[k]
            e1 = x2[k + 1]
            e2 = x2[k + 2]
            e3 = x2[k + 3]
            f0 = x3[k]
            f1 = x3[k + 1]
            f2 = x3[k + 2]
            f3 = x3[k + 3]
            for j in range(m):
                p = w0[j]
                q = w1[j]
                r = w2[j]
                s = w3[j]
                y0[j] += a0 * p + a1 * q + a2 * r + a3 * s
                y1[j] += c0 * p + c1 * q + c2 * r + c3 * s
                y2[j] += e0 * p + e1 * q + e2 * r + e3 * s
                y3[j] += f0 * p + f1 * q + f2 * r + f3 * s
        # the terms of k left over
        for k in range(n4, n):
            w = M[k]
            a = x0[k]
            c = x1[k]
            e = x2[k]
            f = x3[k]
            for j in range(m):
                p = w[j]
                y0[j] += a * p
                y1[j] += c * p
                y2[j] += e * p
                y3[j] += f * p
    # the rows left over
    for b in range(B4, B):
        y = Y[b]
        x = A[b]
        for j in range(m):
            y[j] = zero
        for k in range(n):
            a = x[k]
            w = M[k]
            for j in range(m):
                y[j] += a * w[j]


@numba.njit(**FAST_JIT)
def matmul_nt(A, M, Y):
    """Y = A @ M.T, A (B, n), M (m, n), Y (B, m); all C-contiguous."""
    B, n = A.shape
    m = M.shape[0]
    zero = Y.dtype.type(0)
    B4 = B - B % 4
    m2 = m - m % 2
    for b in range(0, B4, 4):
        x0 = A[b]
        x1 = A[b + 1]
        x2 = A[b + 2]
        x3 = A[b + 3]
        # 8 dot products at once: 4 rows of A against 2 rows of M
        for j in range(0, m2, 2):
            w = M[j]
            v = M[j + 1]
            s0 = zero
            s1 = zero
            s2 = zero
            s3 = zero
            t0 = zero
            t1 = zero
            t2 = zero
            t3 = zero
            for k in range(n):
                wk = w[k]
                vk = v[k]
                a = x0[k]
                c = x1[k]
                e = x2[k]
                f = x3[k]
                s0 += a * wk
                s1 += c * wk
                s2 += e * wk
                s3 += f * wk
                t0 += a * vk
                t1 += c * vk
                t2 += e * vk
                t3 += f * vk
            Y[b, j] = s0
            Y[b + 1, j] = s1
            Y[b + 2, j] = s2
            Y[b + 3, j] = s3
            Y[b, j + 1] = t0
            Y[b + 1, j + 1] = t1
            Y[b + 2, j + 1] = t2
            Y[b + 3, j + 1] = t3
        for j in range(m2, m):
            w = M[j]
            s0 = zero
            s1 = zero
            s2 = zero
            s3 = zero
            for k in range(n):
                wk = w[k]
                s0 += x0[k] * wk
                s1 += x1[k] * wk
                s2 += x2[k] * wk
                s3 += x3[k] * wk
            Y[b, j] = s0
            Y[b + 1, j] = s1
            Y[b + 2, j] = s2
            Y[b + 3, j] = s3
    for b in range(B4, B):
        x = A[b]
        for j in range(m):
            w = M[j]
            s = zero
            for k in range(n):
                s += x[k] * w[k]
            Y[b, j] = s


@numba.njit(**FAST_JIT)
def transpose(A, AT):
    """AT = A.T (both C-contiguous)."""
    B, n = A.shape
    for b in range(B):
        for k in range(n):
            AT[k, b] = A[b, k]


# ----------------------------------------------------------------------------------------------
# Views into the flat buffers
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def _mat(buf, off, rows, cols):
    return buf[off:off + rows * cols].reshape((rows, cols))


@numba.njit(**FAST_JIT)
def _vec(buf, off, n):
    return buf[off:off + n]


@numba.njit(**FAST_JIT)
def _weight(theta, lay, r):
    n_in, n_out = lay[r, N_IN], lay[r, N_OUT]
    if lay[r, TRANS]:
        return _mat(theta, lay[r, W], n_out, n_in)
    return _mat(theta, lay[r, W], n_in, n_out)


# ----------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def embed(theta, ctx, ws, lay, n_embd):
    """x_0[b, t E:(t+1) E] = C[ctx[b, t]]: the concatenated embeddings of the context."""
    B, T = ctx.shape
    x0 = _mat(ws, lay[0, XIN], B, T * n_embd)
    for b in range(B):
        for t in range(T):
            c = ctx[b, t] * n_embd
            for e in range(n_embd):
                x0[b, t * n_embd + e] = theta[c + e]


@numba.njit(**FAST_JIT)
def linear_forward(theta, ws, lay, r, B):
    """z = x_in @ W (+ b)."""
    n_in, n_out = lay[r, N_IN], lay[r, N_OUT]
    x = _mat(ws, lay[r, XIN], B, n_in)
    z = _mat(ws, lay[r, Z], B, n_out)
    w = _weight(theta, lay, r)
    if lay[r, TRANS]:
        matmul_nt(x, w, z)
    else:
        matmul_nn(x, w, z)
    if lay[r, BIAS] >= 0:
        bias = _vec(theta, lay[r, BIAS], n_out)
        for b in range(B):
            zb = z[b]
            for j in range(n_out):
                zb[j] += bias[j]


@numba.njit(**FAST_JIT)
def batchnorm_forward(theta, bnstate, ws, lay, r, B, training, momentum, eps):
    """h = gamma (z - mean) / sqrt(var + eps) + beta.

    Training: batch mean and unbiased batch variance, running statistics updated as
    ``running = (1 - momentum) running + momentum batch`` (not at all when momentum is 0).
    Evaluation: running statistics.
    """
    n = lay[r, N_OUT]
    z = _mat(ws, lay[r, Z], B, n)
    xhat = _mat(ws, lay[r, XHAT], B, n)
    h = _mat(ws, lay[r, H], B, n)
    mean = _vec(ws, lay[r, MEAN], n)
    istd = _vec(ws, lay[r, ISTD], n)
    gamma = _vec(theta, lay[r, GAMMA], n)
    beta = _vec(theta, lay[r, BETA], n)
    rmean = _vec(bnstate, lay[r, RMEAN], n)
    rvar = _vec(bnstate, lay[r, RVAR], n)
    if training:
        # mean_j = (1/B) sum_b z_bj
        for j in range(n):
            mean[j] = z[0, j]
        for b in range(1, B):
            for j in range(n):
                mean[j] += z[b, j]
        for j in range(n):
            mean[j] = mean[j] / B
        # var_j = 1/(B-1) sum_b (z_bj - mean_j)^2   (stored in istd for now)
        for j in range(n):
            d = z[0, j] - mean[j]
            istd[j] = d * d
        for b in range(1, B):
            for j in range(n):
                d = z[b, j] - mean[j]
                istd[j] += d * d
        for j in range(n):
            var = istd[j] / (B - 1)
            if momentum > 0.0:
                rmean[j] = (1.0 - momentum) * rmean[j] + momentum * mean[j]
                rvar[j] = (1.0 - momentum) * rvar[j] + momentum * var
            istd[j] = 1.0 / np.sqrt(var + eps)
    else:
        for j in range(n):
            mean[j] = rmean[j]
            istd[j] = 1.0 / np.sqrt(rvar[j] + eps)
    for b in range(B):
        for j in range(n):
            xh = (z[b, j] - mean[j]) * istd[j]
            xhat[b, j] = xh
            h[b, j] = gamma[j] * xh + beta[j]


@numba.njit(**FAST_JIT)
def activation_forward(ws, lay, r, B):
    """x = phi(h) and phi'(h), kept for the backward pass."""
    n = lay[r, N_OUT]
    h = _vec(ws, lay[r, H], B * n)
    x = _vec(ws, lay[r, X], B * n)
    dp = _vec(ws, lay[r, DPHI], B * n)
    for i in range(B * n):
        x[i], dp[i] = phi_dphi(h[i])


@numba.njit(**FAST_JIT)
def forward(theta, bnstate, ctx, ws, lay, n_embd, training, momentum, eps):
    """Logits of the contexts ``ctx`` (B, T) into the output layer's Z."""
    B = ctx.shape[0]
    L = lay.shape[0] - 1
    embed(theta, ctx, ws, lay, n_embd)
    for r in range(L):
        linear_forward(theta, ws, lay, r, B)
        if lay[r, GAMMA] >= 0:
            batchnorm_forward(theta, bnstate, ws, lay, r, B, training, momentum, eps)
        activation_forward(ws, lay, r, B)
    linear_forward(theta, ws, lay, L, B)


@numba.njit(**FAST_JIT)
def cross_entropy(ws, lay, y, B, want_grad):
    """Mean over the batch of -log softmax(logits)[y]; with ``want_grad``, GZ of the output
    layer = dL/dlogits = (softmax(logits) - onehot(y)) / B."""
    L = lay.shape[0] - 1
    V = lay[L, N_OUT]
    logits = _mat(ws, lay[L, Z], B, V)
    g = _mat(ws, lay[L, GZ], B, V)
    total = 0.0
    for b in range(B):
        lb = logits[b]
        gb = g[b]
        m = lb[0]
        for v in range(1, V):
            m = max(m, lb[v])
        # e_v = exp(l_v - max): shifted so that no exp overflows; s = sum_v e_v
        for v in range(V):
            gb[v] = math.exp(lb[v] - m)
        s = 0.0
        for v in range(V):
            s += gb[v]
        # -log p_y = log s + max - l_y
        total += _libm.log(s) + m - lb[y[b]]
        if want_grad:
            # dL/dl_v = (e_v / s - [v = y]) / B
            scale = 1.0 / (s * B)
            for v in range(V):
                gb[v] = gb[v] * scale
            gb[y[b]] -= 1.0 / B
    return total / B


# ----------------------------------------------------------------------------------------------
# Backward
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def linear_backward(theta, grad, ws, tmp, lay, r, B, want_gx):
    """From GZ: dW = x_in^T GZ, db = sum_b GZ and (``want_gx``) GX_in = GZ @ W^T."""
    n_in, n_out = lay[r, N_IN], lay[r, N_OUT]
    x = _mat(ws, lay[r, XIN], B, n_in)
    gz = _mat(ws, lay[r, GZ], B, n_out)
    w = _weight(theta, lay, r)
    if lay[r, TRANS]:
        # stored (n_out, n_in): dW^T = GZ^T x
        gzt = _mat(tmp, 0, n_out, B)
        transpose(gz, gzt)
        matmul_nn(gzt, x, _mat(grad, lay[r, W], n_out, n_in))
    else:
        xt = _mat(tmp, 0, n_in, B)
        transpose(x, xt)
        matmul_nn(xt, gz, _mat(grad, lay[r, W], n_in, n_out))
    if lay[r, BIAS] >= 0:
        db = _vec(grad, lay[r, BIAS], n_out)
        for j in range(n_out):
            db[j] = gz[0, j]
        for b in range(1, B):
            for j in range(n_out):
                db[j] += gz[b, j]
    if want_gx:
        gx = _mat(ws, lay[r, GXIN], B, n_in)
        if lay[r, TRANS]:
            matmul_nn(gz, w, gx)
        else:
            matmul_nt(gz, w, gx)


@numba.njit(**FAST_JIT)
def activation_backward(ws, lay, r, B):
    """GH = GX * phi'(h)."""
    n = lay[r, N_OUT]
    gx = _vec(ws, lay[r, GX], B * n)
    gh = _vec(ws, lay[r, GH], B * n)
    dp = _vec(ws, lay[r, DPHI], B * n)
    for i in range(B * n):
        gh[i] = gx[i] * dp[i]


@numba.njit(**FAST_JIT)
def batchnorm_backward(theta, grad, ws, lay, r, B):
    """Through h = gamma xhat + beta, xhat = (z - mean) / sqrt(var + eps), var unbiased:

    dgamma = sum_b GH xhat,  dbeta = sum_b GH,
    GZ = gamma istd / B (B GH - sum_b GH - B/(B-1) xhat sum_b GH xhat).
    """
    n = lay[r, N_OUT]
    gh = _mat(ws, lay[r, GH], B, n)
    gz = _mat(ws, lay[r, GZ], B, n)
    xhat = _mat(ws, lay[r, XHAT], B, n)
    istd = _vec(ws, lay[r, ISTD], n)
    gamma = _vec(theta, lay[r, GAMMA], n)
    dgamma = _vec(grad, lay[r, GAMMA], n)
    dbeta = _vec(grad, lay[r, BETA], n)
    for j in range(n):
        dbeta[j] = gh[0, j]
        dgamma[j] = gh[0, j] * xhat[0, j]
    for b in range(1, B):
        for j in range(n):
            dbeta[j] += gh[b, j]
            dgamma[j] += gh[b, j] * xhat[b, j]
    c = B / (B - 1.0)
    for b in range(B):
        for j in range(n):
            gz[b, j] = gamma[j] * istd[j] / B * (B * gh[b, j] - dbeta[j] - c * xhat[b, j] * dgamma[j])


@numba.njit(**FAST_JIT)
def embed_backward(grad, ctx, ws, lay, n_embd):
    """dC[c] = sum over (b, t) with ctx[b, t] = c of GX_0[b, t E:(t+1) E]."""
    B, T = ctx.shape
    L = lay.shape[0] - 1
    V = lay[L, N_OUT]
    for i in range(V * n_embd):
        grad[i] = 0.0
    g0 = _mat(ws, lay[0, GXIN], B, T * n_embd)
    for b in range(B):
        for t in range(T):
            c = ctx[b, t] * n_embd
            for e in range(n_embd):
                grad[c + e] += g0[b, t * n_embd + e]


@numba.njit(**FAST_JIT)
def backward(theta, grad, ctx, ws, tmp, lay, n_embd):
    """All of dL/dtheta into ``grad``, from the output layer's GZ (set by cross_entropy)."""
    B = ctx.shape[0]
    L = lay.shape[0] - 1
    linear_backward(theta, grad, ws, tmp, lay, L, B, True)
    for r in range(L - 1, -1, -1):
        activation_backward(ws, lay, r, B)
        if lay[r, GAMMA] >= 0:
            batchnorm_backward(theta, grad, ws, lay, r, B)
        linear_backward(theta, grad, ws, tmp, lay, r, B, True)
    embed_backward(grad, ctx, ws, lay, n_embd)


@numba.njit(**FAST_JIT)
def sgd(theta, grad, lr):
    """theta <- theta - lr grad (lr rounded to theta's type first)."""
    lr_t = theta.dtype.type(lr)
    for i in range(theta.shape[0]):
        theta[i] -= lr_t * grad[i]


@numba.njit(**FAST_JIT)
def sgd_scaled(theta, grad, lr, mult):
    """theta_i <- theta_i - lr mult_i grad_i: SGD with a learning-rate multiplier per parameter
    (muP's per-tensor rates, :func:`sigprop.symbolic.mup.scalings`)."""
    for i in range(theta.shape[0]):
        theta[i] -= theta.dtype.type(lr * mult[i]) * grad[i]


@numba.njit(**FAST_JIT)
def adam(theta, grad, m, v, mult, lr, t, beta1, beta2, eps, weight_decay):
    """One AdamW step (Kingma & Ba 2015; decoupled weight decay, Loshchilov & Hutter 2019), step
    number ``t`` (from 1), learning rate ``lr_i = lr mult_i`` per parameter::

        m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2
        theta <- theta (1 - lr_i wd) - lr_i (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    The arithmetic is float64; ``theta``, ``m``, ``v`` keep their own type."""
    c1 = 1.0 - beta1 ** t
    c2 = 1.0 - beta2 ** t
    for i in range(theta.shape[0]):
        g = np.float64(grad[i])
        mi = beta1 * np.float64(m[i]) + (1.0 - beta1) * g
        vi = beta2 * np.float64(v[i]) + (1.0 - beta2) * g * g
        m[i] = mi
        v[i] = vi
        lr_i = lr * mult[i]
        th = np.float64(theta[i]) * (1.0 - lr_i * weight_decay)
        theta[i] = th - lr_i * (mi / c1) / (np.sqrt(vi / c2) + eps)


# ----------------------------------------------------------------------------------------------
# Drivers
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def draw_batch(raw, Xtr, Ytr, ctx, y):
    """Example b of the batch is Xtr[i], i = floor(N u / 2^32) with u the top 32 bits of raw[b]
    (multiply-shift; bias below N / 2^32)."""
    N = np.uint64(Xtr.shape[0])
    T = Xtr.shape[1]
    for b in range(raw.shape[0]):
        i = np.int64(((raw[b] >> np.uint64(32)) * N) >> np.uint64(32))
        for t in range(T):
            ctx[b, t] = Xtr[i, t]
        y[b] = Ytr[i]


@numba.njit(**FAST_JIT)
def train_steps(theta, grad, bnstate, Xtr, Ytr, raw, lrs, losses, ws, tmp, ctx, y, lay, n_embd, momentum, eps):
    """``len(lrs)`` SGD steps; step s uses the batch drawn from ``raw[s]`` and learning rate
    ``lrs[s]``, and writes its minibatch loss to ``losses[s]``. After the call, ``ws`` and
    ``grad`` hold the forward and backward pass of the last step (before its update)."""
    for s in range(lrs.shape[0]):
        draw_batch(raw[s], Xtr, Ytr, ctx, y)
        forward(theta, bnstate, ctx, ws, lay, n_embd, True, momentum, eps)
        losses[s] = cross_entropy(ws, lay, y, ctx.shape[0], True)
        backward(theta, grad, ctx, ws, tmp, lay, n_embd)
        sgd(theta, grad, lrs[s])


@numba.njit(**FAST_JIT)
def train_steps_opt(theta, grad, bnstate, Xtr, Ytr, raw, lrs, losses, ws, tmp, ctx, y, lay, n_embd, momentum, eps,
                    mult, use_adam, m, v, t0, beta1, beta2, adam_eps, weight_decay):
    """Like :func:`train_steps` with a learning-rate multiplier per parameter (``mult``) and
    either SGD or (``use_adam``) AdamW with state ``m``, ``v``; step s is Adam step ``t0 + s + 1``."""
    for s in range(lrs.shape[0]):
        draw_batch(raw[s], Xtr, Ytr, ctx, y)
        forward(theta, bnstate, ctx, ws, lay, n_embd, True, momentum, eps)
        losses[s] = cross_entropy(ws, lay, y, ctx.shape[0], True)
        backward(theta, grad, ctx, ws, tmp, lay, n_embd)
        if use_adam:
            adam(theta, grad, m, v, mult, lrs[s], t0 + s + 1, beta1, beta2, adam_eps, weight_decay)
        else:
            sgd_scaled(theta, grad, lrs[s], mult)


@numba.njit(**FAST_JIT)
def loss_and_grad(theta, grad, bnstate, ctx, y, ws, tmp, lay, n_embd, momentum, eps):
    """Loss of one batch in training mode and its gradient (no update)."""
    forward(theta, bnstate, ctx, ws, lay, n_embd, True, momentum, eps)
    loss = cross_entropy(ws, lay, y, ctx.shape[0], True)
    backward(theta, grad, ctx, ws, tmp, lay, n_embd)
    return loss


@numba.njit(**FAST_JIT)
def eval_loss(theta, bnstate, X, Y, ws, lay, n_embd, eps, B):
    """Mean loss over all of (X, Y) in evaluation mode (BatchNorm running statistics), in
    chunks of B rows; ``ws`` is laid out for B rows."""
    N = X.shape[0]
    total = 0.0
    for start in range(0, N, B):
        stop = min(start + B, N)
        forward(theta, bnstate, X[start:stop], ws, lay, n_embd, False, 0.0, eps)
        total += cross_entropy(ws, lay, Y[start:stop], stop - start, False) * (stop - start)
    return total / N


# ----------------------------------------------------------------------------------------------
# Diagnostics (every diag_every steps): moments and histograms in one or two passes
# ----------------------------------------------------------------------------------------------
@numba.njit(**FAST_JIT)
def _mean_var(a):
    # two passes: mean, then the mean square deviation
    n = a.shape[0]
    s = 0.0
    for i in range(n):
        s += a[i]
    mean = s / n
    d2 = 0.0
    for i in range(n):
        d = a[i] - mean
        d2 += d * d
    return mean, d2 / n


@numba.njit(**FAST_JIT)
def vector_std(buf, off, n):
    """Population standard deviation of buf[off:off+n]."""
    mean, var = _mean_var(buf[off:off + n])
    return np.sqrt(var)


@numba.njit(**FAST_JIT)
def layer_summary(ws, lay, r, B, sat_lo, sat_hi, h_lo, h_hi, out, hist, outside):
    """Moments of hidden layer r over the batch: out = [E h, E h^2, Var h, E x, E x^2, Var x,
    saturated fraction (h < sat_lo or h > sat_hi), dead fraction (phi'(h) = 0), Var dL/dh];
    hist = counts of x on len(hist) equal bins of [h_lo, h_hi] (right edge in the last bin),
    outside = counts below / above that range; NaN values are not counted."""
    n = lay[r, N_OUT] * B
    h = _vec(ws, lay[r, H], n)
    x = _vec(ws, lay[r, X], n)
    dp = _vec(ws, lay[r, DPHI], n)
    gh = _vec(ws, lay[r, GH], n)
    mh, vh = _mean_var(h)
    mx, vx = _mean_var(x)
    mg, vg = _mean_var(gh)
    q = 0.0
    x2 = 0.0
    sat = 0
    dead = 0
    for i in range(n):
        q += h[i] * h[i]
        x2 += x[i] * x[i]
        if h[i] < sat_lo or h[i] > sat_hi:
            sat += 1
        if dp[i] == 0.0:
            dead += 1
    out[0], out[1], out[2] = mh, q / n, vh
    out[3], out[4], out[5] = mx, x2 / n, vx
    out[6], out[7], out[8] = sat / n, dead / n, vg
    nb = hist.shape[0]
    for k in range(nb):
        hist[k] = 0
    outside[0] = 0
    outside[1] = 0
    scale = nb / (h_hi - h_lo)
    for i in range(n):
        v = x[i]
        if v < h_lo:
            outside[0] += 1
        elif v > h_hi:
            outside[1] += 1
        elif v == v:
            k = min(np.int64((v - h_lo) * scale), nb - 1)
            hist[k] += 1
