"""Activation-independent numba kernels of the Monte Carlo engine.

Random numbers
--------------
Every random number of a simulation is a pure function of
``(network key, purpose, layer, index)``: a counter-based generator,
Philox4x32-10 (Salmon, Moraes, Dror & Shaw, SC'11, the Random123 default),
maps a 128-bit counter and a 64-bit key to 128 random bits. So a network's
weights do not depend on which thread draws them, in which order, or whether
they are drawn once and stored or drawn again for the backward pass: the
engine is bitwise reproducible for a seed whatever the number of threads.

Counter layout: ``c0, c1`` = low/high 32 bits of a pair index ``p``, ``c2`` =
layer, ``c3`` = purpose tag (bits 0-3) | slot (bit 4) | sub-stream (bit 5) |
retry attempt (bits 6-31). A block gives two 64-bit words, hence two normals
(slots 0 and 1), through a 256-layer ziggurat (Marsaglia & Tsang 2000) whose
table is built below from its defining equations; the rare slow path (tail or
wedge, about 1% of draws) takes fresh blocks from the retry attempts.

Layer pieces
------------
Everything that does not evaluate ``phi`` lives here: samplers, per-row statistics
(``row_stats`` / ``pair_stats`` / ``layer_stats_batch``), ``backward_batch``
(``dL/dh = dL/dx * phi'(h)`` and per-row ``||dL/dh||^2``) and the
per-network reduction ``network_values``. A row's float sums (:func:`row_dot`, :func:`row_stats`)
run in float64 in one pass, reassociated so that LLVM vectorises them: a fixed order for a given
row length, so bitwise the same on any number of threads. Parallel kernels index rows in place
and take at most a few views of their arrays per task of several rows (each view's reference
count is an atomic operation on a cache line every thread shares). The kernels that
evaluate ``phi`` are in ``_layer_template.py``, compiled once per activation set (see
:mod:`sigprop.simulate.engine`).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from .._jit import FAST_JIT, JIT, PARALLEL_JIT

# --- purpose tags (bits 0-3 of counter word c3) ------------------------------------------------
TAG_WEIGHT = 1
TAG_BIAS = 2
TAG_INPUT = 3
TAG_PARTNER = 4
TAG_OUTGRAD = 5

# --- weight distributions ---------------------------------------------------------------------
DIST_NORMAL = 0
DIST_UNIFORM = 1
DIST_ORTHOGONAL = 2
DIST_CODES = {"normal": DIST_NORMAL, "uniform": DIST_UNIFORM, "orthogonal": DIST_ORTHOGONAL}

# --- per-row statistics written by the layer kernels (last axis of `rowstats`) ----------------
R_Q = 0      # sum_j h_j^2
R_M = 1      # sum_j phi(h_j)
R_S = 2      # sum_j phi(h_j)^2  (= ||x_l||^2 of the row)
R_SAT = 3    # number of saturated units
R_DEAD = 4   # number of units in a dead interval of phi
R_D2 = 5     # sum_j phi'(h_j)^2
R_G = 6      # sum_j (dL/dh_j)^2  (= ||dL/dh_l||^2 of the row)
R_AB = 7     # sum_j h_j h'_j with the row's partner (first row of a pair only)
N_ROWSTATS = 8

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)


@numba.njit(inline="always", **JIT)
def _philox_rounds(c0, c1, c2, c3, k0, k1):
    """The ten rounds of Philox4x32-10 on uint64 words < 2^32 (the one place they are written;
    inlined, branch-free, so that LLVM vectorises the loop of :func:`philox_words`)."""
    for r in range(10):
        if r > 0:
            # key schedule: k <- k + (golden ratio, sqrt(3) - 1) Weyl increments, mod 2^32
            k0 = (k0 + _PHILOX_W0) & _U32
            k1 = (k1 + _PHILOX_W1) & _U32
        # one round: two 32x32 -> 64-bit products, hi/lo halves mixed with the other words
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _U32, (p0 >> _S32) ^ c3 ^ k1, p0 & _U32
    return c0, c1, c2, c3


@numba.njit(**JIT)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block: four 32-bit counter words and two key words (as uint64 < 2^32)
    -> four 32-bit random words (as uint64)."""
    return _philox_rounds(np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3), np.uint64(k0), np.uint64(k1))


# --- ziggurat table (256 layers), from its defining equations ---------------------------------
def _ziggurat_table(n=256):
    """Layer edges x_0 > x_1 = r > ... > x_n = 0 of the ziggurat for f(x) = exp(-x^2/2).

    Every layer has area v = r f(r) + int_r^inf f; x_{i+1} = f^{-1}(f(x_i) + v / x_i);
    r solves f(x_{n-1}) + v / x_{n-1} = f(0) = 1; x_0 = v / f(r) is the base strip's width.
    """
    from scipy.optimize import brentq
    from scipy.special import erfc

    def f(t):
        return math.exp(-0.5 * t * t)

    def edges(r):
        v = r * f(r) + math.sqrt(math.pi / 2.0) * erfc(r / math.sqrt(2.0))
        xs = [v / f(r), r]
        for i in range(1, n - 1):
            y = f(xs[i]) + v / xs[i]
            if y >= 1.0:
                return None, v, 2.0
            xs.append(math.sqrt(-2.0 * math.log(y)))
        return xs, v, f(xs[-1]) + v / xs[-1]

    r = brentq(lambda t: edges(t)[2] - 1.0, 3.0, 4.0, xtol=1e-16, rtol=8.9e-16, maxiter=500)
    xs, v, _ = edges(r)
    xs = np.array(xs + [0.0])
    scale = 2.0 ** -52
    # accept the 52-bit mantissa m at once when m * x_i * 2^-52 < x_{i+1}
    k = np.floor(xs[1:] / xs[:-1] / scale).astype(np.uint64)
    w = xs[:-1] * scale
    fx = np.exp(-0.5 * xs * xs)  # f at the edges; fx[0] unused (base strip)
    return float(r), k, w, fx


ZIG_R, ZIG_K, ZIG_W, ZIG_F = _ziggurat_table()
_MASK8 = np.uint64(0xFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_S8 = np.uint64(8)
_S11 = np.uint64(11)
_S12 = np.uint64(12)
_TWO_M53 = 2.0 ** -53
_SIGNS = np.array([1.0, -1.0])


@numba.njit(**JIT)
def _uniform_open(u):
    """(0, 1) double from a 64-bit word: (top 53 bits + 1/2) 2^-53."""
    return (np.float64(u >> _S11) + 0.5) * _TWO_M53


@numba.njit(**JIT)
def _block_words(k0, k1, tag, layer, p, extra):
    """Two 64-bit words from one Philox block with counter (p, layer, tag | extra)."""
    o0, o1, o2, o3 = philox4x32(np.uint64(p) & _U32, np.uint64(p) >> _S32, np.uint64(layer),
                                np.uint64(tag) | np.uint64(extra), k0, k1)
    return o0 | (o1 << _S32), o2 | (o3 << _S32)


@numba.njit(**JIT)
def _ziggurat(u, k0, k1, tag, layer, p, slot):
    """A standard normal from the 64-bit word u (fast path); fresh blocks on the slow path."""
    attempt = 0
    while True:
        i = np.int64(u & _MASK8)
        negative = ((u >> _S8) & _ONE) == _ONE
        m = u >> _S12
        z = np.float64(m) * ZIG_W[i]
        if m < ZIG_K[i]:  # inside the layer's rectangle: under the curve
            return -z if negative else z
        attempt += 1
        base = (slot << 4) | (attempt << 6)
        t0, t1 = _block_words(k0, k1, tag, layer, p, base)
        if i == 0:
            # tail beyond r: x = -log(U1)/r, accept if -2 log(U2) > x^2 (Marsaglia 1964)
            xt = -math.log(_uniform_open(t0)) / ZIG_R
            yt = -math.log(_uniform_open(t1))
            if 2.0 * yt > xt * xt:
                return -(ZIG_R + xt) if negative else ZIG_R + xt
        else:
            # wedge: uniform height in layer i, accept under the curve f(z) = exp(-z^2/2)
            y = ZIG_F[i] + _uniform_open(t0) * (ZIG_F[i + 1] - ZIG_F[i])
            if y < math.exp(-0.5 * z * z):
                return -z if negative else z
        u, _unused = _block_words(k0, k1, tag, layer, p, base | 32)


@numba.njit(**JIT)
def philox_words(words, k0, k1, tag, layer, p0):
    """``words[2m], words[2m + 1]``: the two 64-bit words of the block with pair index p0 + m.

    The rounds of :func:`philox4x32` (:func:`_philox_rounds`, inlined) over an array, so that
    LLVM vectorises them (about 1 ns per word instead of 4-5).
    """
    c2 = np.uint64(layer)
    c3 = np.uint64(tag)
    a0 = np.uint64(k0)
    a1 = np.uint64(k1)
    for m in range(words.shape[0] // 2):
        p = np.uint64(p0) + np.uint64(m)
        x0, x1, x2, x3 = _philox_rounds(p & _U32, p >> _S32, c2, c3, a0, a1)
        words[2 * m] = x0 | (x1 << _S32)
        words[2 * m + 1] = x2 | (x3 << _S32)


@numba.njit(inline="always", **JIT)
def row_words(n):
    """Scratch words for :func:`fill_row` of rows of length ``n`` (two per Philox block)."""
    return np.empty(2 * ((n + 1) // 2), dtype=np.uint64)


@numba.njit(**JIT)
def fill_row(out, r, words, k0, k1, tag, layer, row, dist, scale):
    """Fill row ``r`` of the 2-d ``out`` with i.i.d. numbers of std ``scale``: normal (dist 0)
    or uniform (dist 1), the numbers of global row ``row`` of the stream (k0, k1, tag, layer).

    Element j of global row ``row`` comes from slot j % 2 of the block with pair index
    ``row * ceil(n/2) + j // 2`` (so a row never shares a block with another row).
    ``words`` is scratch space of exactly ``2 ceil(n/2)`` uint64 (:func:`row_words`).
    The row is indexed in place (no view of ``out``: a view's reference count is an atomic
    operation on a cache line that every thread writing into ``out`` shares).
    """
    n = out.shape[1]
    half = (n + 1) // 2
    p0 = row * half
    philox_words(words, k0, k1, tag, layer, p0)
    if dist == DIST_UNIFORM:
        # U(-a, a) has std a / sqrt(3)
        a = math.sqrt(3.0) * scale
        for j in range(n):
            out[r, j] = a * (2.0 * _uniform_open(words[j]) - 1.0)
        return
    for j in range(n):
        u = words[j]
        i = np.int64(u & _MASK8)
        m = u >> _S12
        if m < ZIG_K[i]:  # ziggurat fast path, inlined: about 99% of draws
            # the sign bit picks a factor +-1 from a table (exact; a branch on it would be
            # mispredicted half the time)
            z = np.float64(m) * ZIG_W[i] * _SIGNS[np.int64((u >> _S8) & _ONE)]
        else:
            z = _ziggurat(u, k0, k1, tag, layer, p0 + j // 2, j & 1)
        out[r, j] = z * scale


_ROWS_PER_TASK = 16


@numba.njit(**PARALLEL_JIT)
def fill_rows(out, k0, k1, tag, layer, rows, dist, scale):
    """Parallel over rows: row i gets the numbers of global row ``rows[i]`` (see :func:`fill_row`)."""
    n_rows = out.shape[0]
    n_tasks = (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for t in prange(n_tasks):
        words = row_words(out.shape[1])
        for i in range(t * _ROWS_PER_TASK, min(n_rows, (t + 1) * _ROWS_PER_TASK)):
            fill_row(out, i, words, k0, k1, tag, layer, rows[i], dist, scale)


@numba.njit(**JIT)
def fill_rows_serial(out, k0, k1, tag, layer, rows, dist, scale):
    words = row_words(out.shape[1])
    for i in range(out.shape[0]):
        fill_row(out, i, words, k0, k1, tag, layer, rows[i], dist, scale)


@numba.njit(**FAST_JIT)
def row_dot(a, i, b, k):
    """sum_j a[i, j] b[k, j] in float64 (rows of 2-d arrays, indexed in place). The sum may be
    reassociated (``FAST_JIT``) so that LLVM vectorises it: a fixed order for a given row
    length and build, the same on any number of threads."""
    s = 0.0
    for j in range(a.shape[1]):
        s += np.float64(a[i, j]) * np.float64(b[k, j])
    return s


@numba.njit(**JIT)
def sum_squares(w):
    """Sum of squares of a 2-d array (rows in order, :func:`row_dot` within a row)."""
    s = 0.0
    for i in range(w.shape[0]):
        s += row_dot(w, i, w, i)
    return s


@numba.njit(**JIT)
def network_keys(root0, root1, start, n):
    """Philox keys of networks ``start .. start + n``: network i's key is the first two words of
    the Philox block with counter (i, 0, 0, 0) under the root key (from the user's seed)."""
    keys = np.empty((n, 2), dtype=np.uint64)
    for i in range(n):
        p = np.uint64(start + i)
        o0, o1, o2, o3 = philox4x32(p & _U32, p >> _S32, _ZERO, _ZERO, root0, root1)
        keys[i, 0] = o0
        keys[i, 1] = o1
    return keys


@numba.njit(**JIT)
def orthogonalize(g, out, scale):
    """Haar-orthogonal (semi-)orthogonal matrix from a Gaussian ``g`` (big x small, big >= small):
    QR with the sign of diag(R) fixed (Mezzadri 2007); ``out`` (fan_in x fan_out) gets
    ``scale * Q`` or ``scale * Q^T`` (whichever has its shape)."""
    q, r = np.linalg.qr(g)
    big, small = g.shape
    transpose = out.shape[0] < out.shape[1]
    for j in range(small):
        s = scale if r[j, j] >= 0 else -scale
        for i in range(big):
            if transpose:
                out[j, i] = q[i, j] * s
            else:
                out[i, j] = q[i, j] * s


@numba.njit(**JIT)
def draw_weights(w, k0, k1, layer, dist, std):
    """W_l (fan_in x fan_out) of one network, serially: entries of std ``std`` from ``dist``.

    Returns fan_in * mean(W^2) = sum(W^2) / fan_out, the realised sigma_w^2 of this layer.
    """
    fan_in, fan_out = w.shape
    if dist == DIST_ORTHOGONAL:
        big = max(fan_in, fan_out)
        small = min(fan_in, fan_out)
        g = np.empty((big, small), dtype=np.float64)
        fill_rows_serial(g, k0, k1, np.int64(TAG_WEIGHT), layer, np.arange(big), np.int64(DIST_NORMAL), 1.0)
        # entries of a (semi-)orthogonal big x small matrix have variance 1/big
        orthogonalize(g, w, std * math.sqrt(big))
    else:
        fill_rows_serial(w, k0, k1, np.int64(TAG_WEIGHT), layer, np.arange(fan_in), dist, std)
    return sum_squares(w) / fan_out


@numba.njit(**FAST_JIT)
def row_stats(h, x, d, r, sat_lo, sat_hi, dead_lo, dead_hi, st):
    """Statistics of row ``r`` of one layer (2-d h with bias, x = phi(h), d = phi'(h)) into
    ``st[r]``: one pass over the row for every statistic (sums in float64, reassociated so that
    LLVM vectorises them, see :func:`row_dot`; counts as branch-free integer sums, since a ReLU
    unit is dead half the time and a branch on it is unpredictable). Dead intervals are
    disjoint; an empty (NaN) interval counts nothing."""
    q = 0.0
    m = 0.0
    s = 0.0
    e = 0.0
    n_sat = 0
    n_dead = 0
    lo = dead_lo[0]
    hi = dead_hi[0]
    for j in range(h.shape[1]):
        hj = h[r, j]
        xj = np.float64(x[r, j])
        dj = np.float64(d[r, j])
        q += np.float64(hj) * np.float64(hj)
        m += xj
        s += xj * xj
        e += dj * dj
        n_sat += np.int64((hj < sat_lo) | (hj > sat_hi))
        n_dead += np.int64((lo <= hj) & (hj <= hi))
    for k in range(1, dead_lo.shape[0]):
        lo = dead_lo[k]
        hi = dead_hi[k]
        for j in range(h.shape[1]):
            n_dead += np.int64((lo <= h[r, j]) & (h[r, j] <= hi))
    st[r, R_Q] = q
    st[r, R_M] = m
    st[r, R_S] = s
    st[r, R_SAT] = np.float64(n_sat)
    st[r, R_DEAD] = np.float64(n_dead)
    st[r, R_D2] = e
    st[r, R_AB] = 0.0


@numba.njit(**JIT)
def pair_stats(h, x, d, sat_lo, sat_hi, dead_lo, dead_hi, rowstats, a):
    """Rows a and a + P of a layer (P = number of pairs) and their pre-activation product,
    or the lone last row when a = P (odd number of rows)."""
    n_pairs = h.shape[0] // 2
    if a < n_pairs:
        b = a + n_pairs
        row_stats(h, x, d, a, sat_lo, sat_hi, dead_lo, dead_hi, rowstats)
        row_stats(h, x, d, b, sat_lo, sat_hi, dead_lo, dead_hi, rowstats)
        # sum_j h_a,j h_b,j : numerator of the pair's pre-activation correlation
        rowstats[a, R_AB] = row_dot(h, a, h, b)
    else:
        row_stats(h, x, d, 2 * n_pairs, sat_lo, sat_hi, dead_lo, dead_hi, rowstats)


@numba.njit(**FAST_JIT)
def backward_row(g, d, r, st):
    """dL/dh = dL/dx * phi'(h) in place on row ``r`` of g; ``st[r, R_G] = ||dL/dh||^2`` of
    the row (one pass, the sum as in :func:`row_stats`)."""
    s = 0.0
    for j in range(g.shape[1]):
        gj = g[r, j] * d[r, j]
        g[r, j] = gj
        s += np.float64(gj) * np.float64(gj)
    st[r, R_G] = s


# --- per-network values (the vector whose mean and covariance over networks we keep) ---------
V_Q = 0        # mean h^2
V_M = 1        # mean phi(h)
V_S = 2        # mean phi(h)^2
V_SAT = 3      # saturated fraction
V_DEAD = 4     # dead fraction
V_G = 5        # mean (dL/dh)^2
V_AB = 6       # mean h_a h_b over pairs (a, b)
V_AA = 7       # mean h_a^2 over first rows of pairs
V_BB = 8       # mean h_b^2 over second rows of pairs
V_CHI = 9      # n_{l-1} mean(W_l^2) * mean phi'(h)^2
V_LX = 10      # mean over rows of log ||x_l||^2
V_LX2 = 11     # mean over rows of (log ||x_l||^2)^2
V_LG = 12      # mean over rows of log ||dL/dh_l||^2
V_LG2 = 13     # mean over rows of (log ||dL/dh_l||^2)^2
N_VALUES = 14


@numba.njit(**JIT)
def network_values(rowstats, sigma_w2, n_units, out, t0, t1):
    """Reduce each network's per-row statistics, rowstats (L, B, R, N_ROWSTATS), to its values,
    out (B, L, N_VALUES) (sigma_w2: (L, B)), summing rows in index order (a fixed order per
    network: bitwise reproducible); tasks t0 <= t < t1 of B (a network each, run by the engine's
    threads like the batch kernels below)."""
    depth, n_net, n_rows, _ = rowstats.shape
    n_pairs = n_rows // 2
    acc = np.zeros(N_ROWSTATS)
    for i in range(t0, min(t1, n_net)):
        for l in range(depth):
            acc[:] = 0.0
            lx = 0.0
            lx2 = 0.0
            lg = 0.0
            lg2 = 0.0
            aa = 0.0
            bb = 0.0
            for r in range(n_rows):
                for k in range(N_ROWSTATS):
                    acc[k] += rowstats[l, i, r, k]
                # log of a squared norm: -inf when the row vanished, +inf when it overflowed
                sx = rowstats[l, i, r, R_S]
                sg = rowstats[l, i, r, R_G]
                a = math.log(sx) if sx > 0 else -np.inf
                b = math.log(sg) if sg > 0 else -np.inf
                if sx != sx:
                    a = np.nan
                if sg != sg:
                    b = np.nan
                lx += a
                lx2 += a * a
                lg += b
                lg2 += b * b
                if r < n_pairs:
                    aa += rowstats[l, i, r, R_Q]
                elif r < 2 * n_pairs:
                    bb += rowstats[l, i, r, R_Q]
            units = n_units[l] * n_rows
            out[i, l, V_Q] = acc[R_Q] / units
            out[i, l, V_M] = acc[R_M] / units
            out[i, l, V_S] = acc[R_S] / units
            out[i, l, V_SAT] = acc[R_SAT] / units
            out[i, l, V_DEAD] = acc[R_DEAD] / units
            out[i, l, V_G] = acc[R_G] / units
            pair_units = n_units[l] * max(n_pairs, 1)
            out[i, l, V_AB] = acc[R_AB] / pair_units
            out[i, l, V_AA] = aa / pair_units
            out[i, l, V_BB] = bb / pair_units
            out[i, l, V_CHI] = sigma_w2[l, i] * acc[R_D2] / units
            out[i, l, V_LX] = lx / n_rows
            out[i, l, V_LX2] = lx2 / n_rows
            out[i, l, V_LG] = lg / n_rows
            out[i, l, V_LG2] = lg2 / n_rows


# --- batches of networks: arrays with a leading network axis --------------------------------------
# The hot batch kernels (weights_batch, backward_batch, the template's activate_stats_batch,
# layer_stats_batch, and network_values above) are serial numba functions over tasks t0 <= t < t1
# that release the GIL: the engine runs ranges of tasks on its threads (engine._tasks). A task's
# numbers do not depend on the range it is in, so neither do the results. No parfors: compiling a
# prange kernel costs about a second each (its gufunc and two wrappers go through LLVM besides the
# function). Each task takes one view per array (w_i = w[i], see fill_row) and indexes rows in place.
# fill_batch draws a small share of the numbers (biases, inputs, output gradients): serial.
_TASK_ROWS = 16  # rows per task (one scratch buffer each)


@numba.njit(**JIT)
def fill_batch(out, keys, tag, layer, rows, dist, scale):
    """``out[i]`` (R, n) gets rows ``rows`` of network i's stream (keys[i], tag, layer)."""
    n_net, n_rows, n = out.shape
    per_net = (n_rows + _TASK_ROWS - 1) // _TASK_ROWS
    words = row_words(n)
    for t in range(n_net * per_net):
        i = t // per_net
        r0 = (t % per_net) * _TASK_ROWS
        out_i = out[i]  # one view per task (see fill_row)
        for r in range(r0, min(n_rows, r0 + _TASK_ROWS)):
            fill_row(out_i, r, words, keys[i, 0], keys[i, 1], tag, layer, rows[r], dist, scale)


@numba.njit(**JIT)
def orthogonal_batch(w, keys, layer, std, sigma_w2, t0, t1):
    """Orthogonal W_l of each network (B, fan_in, fan_out) and its realised sigma_w^2, tasks
    t0 <= t < t1 of B (a network each; a kernel of its own: the QR is compiled only for runs
    that use it)."""
    for i in range(t0, min(t1, w.shape[0])):
        sigma_w2[i] = draw_weights(w[i], keys[i, 0], keys[i, 1], layer, np.int64(DIST_ORTHOGONAL), std)


@numba.njit(**JIT)
def weights_batch(w, keys, layer, dist, std, row_sq, t0, t1):
    """Normal or uniform W_l of each network (B, fan_in, fan_out), tasks t0 <= t < t1 of
    B * ceil(fan_in / 16) (16 rows each), and the squared norm of each row it drew in ``row_sq``
    (B, fan_in): the engine's realised sigma_w^2 is ``sum_rows_in_order(row_sq) / fan_out``
    (orthogonal weights: :func:`orthogonal_batch`)."""
    n_net, fan_in, fan_out = w.shape
    per_net = (fan_in + _TASK_ROWS - 1) // _TASK_ROWS
    words = row_words(fan_out)
    for t in range(t0, min(t1, n_net * per_net)):
        i = t // per_net
        r0 = (t % per_net) * _TASK_ROWS
        w_i = w[i]
        for r in range(r0, min(fan_in, r0 + _TASK_ROWS)):
            fill_row(w_i, r, words, keys[i, 0], keys[i, 1], np.int64(TAG_WEIGHT), layer, np.int64(r), dist, std)
            row_sq[i, r] = row_dot(w_i, r, w_i, r)   # while the row is in cache


_TASK_PAIRS = _TASK_ROWS // 2  # pairs of rows per statistics task


@numba.njit(**JIT)
def layer_stats_batch(h, x, d, sat_lo, sat_hi, dead_lo, dead_hi, rowstats, t0, t1):
    """Statistics of one layer of each network: arrays (B, R, n), rowstats (B, R, N_ROWSTATS);
    tasks t0 <= t < t1 of B * ceil(ceil(R / 2) / 8) (8 pairs of rows each)."""
    n_net, n_rows, _ = h.shape
    tasks = n_rows - n_rows // 2
    per_net = (tasks + _TASK_PAIRS - 1) // _TASK_PAIRS
    for t in range(t0, min(t1, n_net * per_net)):
        i = t // per_net
        a0 = (t % per_net) * _TASK_PAIRS
        h_i, x_i, d_i, st_i = h[i], x[i], d[i], rowstats[i]  # views once per task (see fill_row)
        for a in range(a0, min(tasks, a0 + _TASK_PAIRS)):
            pair_stats(h_i, x_i, d_i, sat_lo, sat_hi, dead_lo, dead_hi, st_i, a)


@numba.njit(**JIT)
def backward_batch(g, d, rowstats, t0, t1):
    """dL/dh = dL/dx * phi'(h) in place for each network and row; per-row ||dL/dh||^2;
    tasks t0 <= t < t1 of B * ceil(R / 16) (16 rows each)."""
    n_net, n_rows, _ = g.shape
    per_net = (n_rows + _TASK_ROWS - 1) // _TASK_ROWS
    for t in range(t0, min(t1, n_net * per_net)):
        i = t // per_net
        r0 = (t % per_net) * _TASK_ROWS
        g_i, d_i, st_i = g[i], d[i], rowstats[i]  # views once per task (see fill_row)
        for r in range(r0, min(n_rows, r0 + _TASK_ROWS)):
            backward_row(g_i, d_i, r, st_i)
