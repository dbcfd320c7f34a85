"""Monte Carlo measurement of signal propagation over an ensemble of random networks.

:func:`run` draws ``n_networks`` independent networks from a :class:`~sigprop.spec.NetSpec`,
pushes ``n_inputs`` random inputs forward and a random output gradient backward through
each, and returns per-layer statistics with standard errors as a
:class:`~sigprop.spec.LayerStats` (``source="simulation"``).

Estimators
----------
Each network ``k`` gives one value per layer of each raw average below (over its units
``j`` and inputs ``r``); a quantity is a smooth function of the ensemble means of these
values, and its standard error is the delta-method one computed from their covariance
ACROSS networks (networks are the independent units; the inputs of one network are not
independent of each other):

=====================  ===================================================================
``q``                  mean of ``h^2``                         (the mean-field ``q_l``)
``act_mean``           mean of ``phi(h)``
``act_sq``             mean of ``phi(h)^2``
``act_var``            ``act_sq - act_mean^2``: the variance pooled over units, inputs and
                       networks (what mean-field theory predicts, ``Var_{h~N(0,q)} phi(h)``)
``saturated``          fraction of ``h`` outside ``act.saturation_cutoffs(threshold)``
                       (NaN for an unbounded activation)
``dead``               fraction of ``h`` in ``act.dead_intervals`` (closed intervals)
``grad_var``           mean of ``(dL/dh)^2`` for an i.i.d. N(0, 1) ``dL/dx_L`` (its mean is 0)
``corr``               ``E[h_a h_b] / sqrt(E[h_a^2] E[h_b^2])`` over input pairs (a, b) of
                       initial correlation ``c0`` (``x_b = c0 x_a + sqrt(1 - c0^2) x'``):
                       the theory's ``q_12 / q``
``chi1``               mean over networks of ``n_{l-1} mean(W_l^2) * mean(phi'(h_l)^2)``: the
                       realised ``sigma_w^2`` of the layer's weights times ``E[phi'^2]``
``act_lognorm_var``    ``Var[log ||x_l||^2]`` over (network, input): one random input through
                       one random network, the finite-width quantity of Hanin (2018)
``grad_lognorm_var``   ``Var[log ||dL/dh_l||^2]`` likewise
=====================  ===================================================================

Random numbers are counter-based (:mod:`sigprop.simulate.kernels`): network ``i``'s weights,
biases, inputs and output gradient are a pure function of ``(seed, i)``, so the result is
bitwise the same whatever the number of threads, and the first ``n`` networks of a larger
run are the networks of a run with ``n_networks = n``.

Schedule: networks are simulated in batches (arrays with a leading network axis). Wide
networks (a width >= 128) go one at a time, small ones as many at a time as fit in
:data:`MEMORY_BUDGET`. The engine's threads take pieces of networks in turn, each piece through
all its layers on one thread with BLAS single-threaded (:func:`_pieces`): :data:`PIECE` small
networks, or one wide network. A single wide network (or wide ones whose workspaces would not
fit in :data:`WIDE_PIECES_BUDGET` side by side) instead has its GEMMs split into fixed tasks of
:data:`GEMM_ROWS` rows and its elementwise kernels into ranges of tasks (:func:`_tasks`) on the
same threads. Buffers are reused across batches. A process never has more compute threads than
cores (:func:`compute_threads`), and idle threads sleep instead of spinning (a second process
on the same cores is not slowed down by them). Activations numba can vectorise (piecewise polynomials, exp, tanh,
with :mod:`sigprop.charmlp.vmath` standing in for :mod:`math`) run fused: bias, phi,
phi' and every statistic in one pass over ``h`` per row; others (erf, ...) are evaluated
by numpy/scipy ufuncs, followed by a statistics pass. Per network, the computation does
not depend on the batch size or the thread count.

Compilation: the activation-independent kernels (:mod:`sigprop.simulate.kernels`) are
compiled once, each for one signature per dtype (constants are passed as int64 values,
not literals, and the orthogonal-weight QR is its own kernel, compiled only when used);
the fused kernels are generated per activation set into :func:`cache_dir`, so a new
activation compiles only its row kernels and ``activate_stats_batch``. All are cached by
numba (``cache=True``): later runs load in well under a second. What a first run compiles is
kept small: no parfors (a ``prange`` kernel's gufunc and two wrappers go through LLVM besides
the function, about a second each; threads come from :func:`_tasks` instead), and the inputs
are drawn by the biases' ``fill_batch``. ``benchmarks/first_run.py`` times a first run, a
cached run and new activations.
"""
from __future__ import annotations

import contextlib
import functools
import math
import threading
from pathlib import Path

import numba
import numpy as np

from .._codegen import cache_dir, load_generated
from .._checks import integer
from .._jit import prefer_sleeping_threads
from .._threads import available_cores, run_all
from .._threads import pool as _pool
from ..activations import DEFAULT_SATURATION_THRESHOLD
from ..memory import check_fits
from ..spec import LayerStats, NetSpec
from . import kernels as K
from ..progress import Progress

__all__ = ["run", "draw_network", "memory_estimate", "SIM_QUANTITIES", "cache_dir", "load_kernels"]

#: Quantities :func:`run` returns, in order.
SIM_QUANTITIES = ("q", "act_mean", "act_sq", "act_var", "saturated", "dead", "grad_var", "corr", "chi1",
                  "act_lognorm_var", "grad_lognorm_var")

#: Networks with every width below this are simulated many at a time (batches).
SMALL_WIDTH = 128
#: Memory for one batch's stored weights and phi'(h): sets the batch size of small networks;
#: a wide network beyond it draws its weights again for the backward pass / runs its inputs
#: in blocks (memory never grows with n_networks).
MEMORY_BUDGET = 256 * 2 ** 20
_CHUNK_VALUES = 4 * 2 ** 20  # per-network values buffered before they are folded into the moments

# The engine launches a few short parallel kernels per layer: threads that sleep between them.
prefer_sleeping_threads()


# --- kernels per activation set -------------------------------------------------------------------


def scalar_source(act, name: str) -> str:
    """Python source of ``name(x) -> (phi(x), phi'(x))`` for numba: the activation's own
    fused source (:meth:`~sigprop.activations.Activation.numba_source_fused`), jitted."""
    return act.numba_source_fused(name, decorator="@numba.njit(**JIT)") + "\n\n"


def vector_function(act):
    """numpy ``f(h) -> (phi(h), phi'(h))`` (sympy lambdify with shared subexpressions):
    the engine evaluates transcendental activations with numpy's SIMD ufuncs."""
    import sympy as sp
    from ..activations import x
    f = sp.lambdify((x,) + act.param_symbols, [act.expr_symbolic, act.derivative_symbolic], ["scipy", "numpy"],
                    cse=True)
    values = act.param_values

    def phi_dphi(h):
        phi, dphi = f(h, *values)
        phi = np.ascontiguousarray(np.broadcast_to(phi, h.shape), dtype=h.dtype)
        dphi = np.ascontiguousarray(np.broadcast_to(dphi, h.shape), dtype=h.dtype)
        return phi, dphi
    return phi_dphi


def _vectorisable(act) -> bool:
    """True if phi and phi' use no function but Piecewise / Max / Min / Abs and the ones
    :mod:`sigprop.charmlp.vmath` writes branch-free (exp, tanh): the fused numba kernel then
    runs as SIMD code, one pass over h for phi, phi' and every statistic."""
    import sympy as sp
    cheap = (sp.Piecewise, sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.exp, sp.tanh)
    return all(isinstance(f, cheap) for e in act.numeric_exprs() for f in e.atoms(sp.Function))


def kernel_source(activations) -> str:
    """Python source of the kernel module for a list of distinct activations: their
    sympy-printed fused ``phi``/``phi'`` under numba (:mod:`sigprop.charmlp.vmath` standing in
    for :mod:`math`, so exp and tanh vectorise), one row kernel per activation (the loop
    has no branch on the activation), a dispatcher on the per-layer code, then the layer
    kernels of ``_layer_template.py``."""
    here = Path(__file__).parent
    parts = ["# generated by sigprop.simulate.engine; do not edit (regenerated when sources change)",
             "import numba", "import sigprop.charmlp.vmath as math", "from sigprop._jit import JIT", "", ""]
    for i, act in enumerate(activations):
        parts.append(scalar_source(act, f"phi_dphi_{i}"))
        parts.append(f"""@numba.njit(**JIT)
def activate_row_{i}(h, b, x, d):
    # h_l = x_{{l-1}} W_l + b_l ;  x_l = phi(h_l), d = phi'(h_l)
    for j in range(h.shape[0]):
        hj = h[j] + b[j]
        h[j] = hj
        y, dy = phi_dphi_{i}(hj)
        x[j] = y
        d[j] = dy


""")
    parts.append("@numba.njit(**JIT)")
    parts.append("def activate_row(code, h, b, x, d):")
    parts.append('    """One row of one layer: h += b, x = phi(h), d = phi\'(h) for the layer\'s activation code."""')
    for i in range(len(activations) - 1):
        parts.append(f"    if code == {i}:\n        return activate_row_{i}(h, b, x, d)")
    parts.append(f"    return activate_row_{len(activations) - 1}(h, b, x, d)\n\n")
    parts.append((here / "_layer_template.py").read_text())
    return "\n".join(parts)


def load_kernels(activations):
    """Import (writing it first if needed) the compiled-kernel module for ``activations``
    (:func:`sigprop._codegen.load_generated`: a change in ``kernels.py`` makes a new module)."""
    here = Path(__file__).parent
    return load_generated("sigprop_kernels", kernel_source(activations), here / "kernels.py",
                          here.parent / "charmlp" / "vmath.py")


# --- validation ---------------------------------------------------------------------------------
_check_int = integer


def _check_args(spec, n_networks, n_inputs, seed, dtype, c0, threshold):
    if not isinstance(spec, NetSpec):
        raise ValueError(f"spec must be a NetSpec, got {type(spec).__name__}")
    n_networks = _check_int("n_networks", n_networks, 2)
    n_inputs = _check_int("n_inputs", n_inputs, 2)
    seed = _check_int("seed", seed, 0)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if isinstance(c0, bool) or not isinstance(c0, (int, float, np.floating, np.integer)) or not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0 must be a number in [-1, 1], got {c0!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    return spec, n_networks, n_inputs, seed, dtype, float(c0), float(threshold)


# --- the plan: everything the kernels need, as arrays ----------------------------------------------
class _Plan:
    def __init__(self, spec: NetSpec, n_inputs: int, dtype, c0: float, threshold: float):
        acts = spec.activations()
        distinct = []
        for a in acts:
            if a not in distinct:
                distinct.append(a)
        self.module = load_kernels(distinct)
        # once per distinct activation (a sympy lambdify each: milliseconds)
        vector = [vector_function(a) for a in distinct]
        self.vector = [vector[distinct.index(a)] for a in acts]
        # activations numba can vectorise (piecewise polynomials, exp, tanh) run in the fused
        # numba kernel; the others (erf, ...) in numpy/scipy ufuncs, then a statistics pass
        fused = [_vectorisable(a) for a in distinct]
        self.fused = [fused[distinct.index(a)] for a in acts]
        depth = spec.depth
        self.depth = depth
        self.widths = np.array((spec.input_dim,) + spec.widths, dtype=np.int64)
        self.codes = np.array([distinct.index(a) for a in acts], dtype=np.int64)
        self.sat_lo = np.full(depth, -np.inf)
        self.sat_hi = np.full(depth, np.inf)
        self.bounded = np.zeros(depth, dtype=bool)
        n_dead = max([1] + [len(a.dead_intervals) for a in acts])
        self.dead_lo = np.full((depth, n_dead), np.nan)
        self.dead_hi = np.full((depth, n_dead), np.nan)
        for l, a in enumerate(acts):
            cut = a.saturation_cutoffs(threshold)
            if cut is not None:
                self.sat_lo[l], self.sat_hi[l] = cut
                self.bounded[l] = True
            for k, (lo, hi) in enumerate(a.dead_intervals):
                self.dead_lo[l, k], self.dead_hi[l, k] = lo, hi
        self.weight_std = np.array(spec.weight_std, dtype=np.float64)
        self.sigma_b = np.array(spec.sigma_b, dtype=np.float64)
        self.dist = K.DIST_CODES[spec.weight_dist]
        self.input_std = math.sqrt(spec.input_var)
        self.c0 = c0
        self.n_rows = n_inputs
        self.dtype = dtype
        self.proto = np.zeros(0, dtype=dtype)
        self.store_weights, self.pairs_per_block, self.batch = _schedule(self.widths, n_inputs, dtype.itemsize)


def _schedule(widths, n_inputs: int, itemsize: int):
    """``(store_weights, pairs_per_block, batch)`` for layer widths ``(n_0, ..., n_L)``: weights are
    kept for the backward pass if they fit in :data:`MEMORY_BUDGET`, inputs go in blocks of pairs
    whose ``phi'(h)`` fit in it, and small networks go many at a time."""
    widths = np.asarray(widths, dtype=np.int64)
    depth = widths.size - 1
    w_bytes = int(np.sum(widths[:-1] * widths[1:])) * itemsize
    d_bytes_per_row = int(np.sum(widths[1:])) * itemsize
    store_weights = w_bytes <= MEMORY_BUDGET
    pairs_per_block = max(1, MEMORY_BUDGET // (2 * d_bytes_per_row))
    if int(widths.max()) >= SMALL_WIDTH:
        batch = 1               # one wide network at a time: BLAS threads the GEMMs
    else:                       # many small networks at a time, as many as fit in the budget
        per_network = w_bytes + n_inputs * (d_bytes_per_row + 8 * depth * K.N_ROWSTATS
                                            + 4 * itemsize * int(widths.max()))
        batch = int(max(1, min(1024, MEMORY_BUDGET // per_network)))
    return store_weights, pairs_per_block, batch


def memory_estimate(spec: NetSpec, n_networks: int, n_inputs: int, dtype=np.float64) -> int:
    """Bytes :func:`run` allocates at its peak for these arguments (what :class:`_Workspace`,
    the weights and the per-input statistics take), without allocating them.

    Examples
    --------
    >>> from sigprop import NetSpec
    >>> memory_estimate(NetSpec.uniform(depth=2, width=10 ** 9), 2, 2) > 10 ** 18
    True
    """
    itemsize = np.dtype(dtype).itemsize
    widths = np.array((spec.input_dim,) + spec.widths, dtype=np.int64)
    batch = _schedule(widths, n_inputs, itemsize)[2]
    piece, n_ws = _pieces(widths, n_inputs, itemsize, batch, n_networks)
    workspaces = n_ws * _workspace_bytes(widths, n_inputs, itemsize, piece) if piece \
        else _workspace_bytes(widths, n_inputs, itemsize, min(batch, n_networks))
    return int(workspaces + min(_CHUNK_VALUES, 8 * n_networks * spec.depth * K.N_VALUES))


def _workspace_bytes(widths, n_inputs: int, itemsize: int, n_net: int) -> int:
    """Bytes of a :class:`_Workspace` for ``n_net`` networks (its buffers, the weights, the
    per-input statistics)."""
    depth = widths.size - 1
    store_weights, pairs_per_block, _ = _schedule(widths, n_inputs, itemsize)
    n_block = min(n_inputs, 2 * pairs_per_block + 1)
    n_max, n_hidden = int(widths.max()), int(widths[1:].sum())
    weights = int(np.sum(widths[:-1] * widths[1:])) if store_weights else int(np.max(widths[:-1] * widths[1:]))
    elements = n_net * (n_block * (5 * n_max + n_hidden + int(widths[0])) + weights + n_hidden)
    stats = 8 * n_net * depth * (n_inputs + n_block) * K.N_ROWSTATS
    return int(elements * itemsize + stats)


def draw_network(spec: NetSpec, seed: int, index: int, n_inputs: int, c0: float = 0.5, dtype=np.float64) -> dict:
    """The random numbers of network ``index`` of ``run(spec, ..., seed=seed)``.

    Returns a dict with ``weights`` (list of (n_{l-1}, n_l) arrays), ``biases`` (list of
    (n_l,) arrays), ``inputs`` (n_inputs, n_0) and ``output_grad`` (n_inputs, n_L): what an
    independent implementation needs to reproduce the engine's numbers (the tests' oracle).

    Examples
    --------
    >>> from sigprop import NetSpec
    >>> net = draw_network(NetSpec.uniform(depth=2, width=8, activation="relu"), seed=0, index=3, n_inputs=4)
    >>> [w.shape for w in net["weights"]], net["inputs"].shape
    ([(8, 8), (8, 8)], (4, 8))
    """
    spec, _, n_inputs, seed, dtype, c0, _ = _check_args(spec, 2, n_inputs, seed, dtype, c0, 0.5)
    index = _check_int("index", index, 0)
    (k0, k1), = _network_keys(seed, index, 1)
    widths = (spec.input_dim,) + spec.widths
    dist = K.DIST_CODES[spec.weight_dist]
    weights, biases = [], []
    for l in range(spec.depth):
        w = np.empty((widths[l], widths[l + 1]), dtype=dtype)
        K.draw_weights(w, k0, k1, l + 1, dist, spec.weight_std[l])
        b = np.empty((1, widths[l + 1]), dtype=dtype)
        K.fill_rows_serial(b, k0, k1, K.TAG_BIAS, l + 1, np.zeros(1, dtype=np.int64), K.DIST_NORMAL, spec.sigma_b[l])
        weights.append(w)
        biases.append(b[0])
    x = np.empty((n_inputs, widths[0]), dtype=dtype)
    draw_inputs(x[None], np.array([[k0, k1]], dtype=np.uint64), np.arange(n_inputs), n_inputs, c0,
                math.sqrt(spec.input_var))
    g = np.empty((n_inputs, widths[-1]), dtype=dtype)
    K.fill_rows_serial(g, k0, k1, K.TAG_OUTGRAD, spec.depth, np.arange(n_inputs), K.DIST_NORMAL, 1.0)
    return {"weights": weights, "biases": biases, "inputs": x, "output_grad": g}


def draw_inputs(x, keys, rows, n_rows: int, c0: float, input_std: float) -> None:
    """Input rows ``rows`` (global row numbers) of each network (keys (B, 2), x (B, len(rows), n_0)).

    Rows come in pairs (a, a + P), P = n_rows // 2: x_a ~ N(0, input_std^2 I) and
    x_{a+P} = c0 x_a + sqrt(1 - c0^2) x'_a, so each pair has correlation c0; an odd last
    row is unpaired. Row r only depends on (key, r). Drawn by :func:`kernels.fill_batch`
    (the kernel of the biases and output gradients: no draw kernel of its own to compile),
    x'_a in float64 and the combination rounded once to x's dtype.
    """
    n_pairs = n_rows // 2
    partner = (rows >= n_pairs) & (rows < 2 * n_pairs)
    first = np.where(partner, rows - n_pairs, rows).astype(np.int64)
    K.fill_batch(x, keys, K.TAG_INPUT, 0, first, K.DIST_NORMAL, input_std)
    if partner.any():
        other = np.empty((x.shape[0], int(partner.sum()), x.shape[2]))
        K.fill_batch(other, keys, K.TAG_PARTNER, 0, first[partner], K.DIST_NORMAL, input_std)
        s = math.sqrt(max(0.0, 1.0 - c0 * c0))
        x[:, partner] = c0 * x[:, partner].astype(np.float64) + s * other


def _network_keys(seed: int, start: int, n: int) -> np.ndarray:
    root = np.random.SeedSequence(seed).generate_state(2, np.uint32).astype(np.uint64)
    return K.network_keys(root[0], root[1], start, n)


# --- where the time goes (benchmarks/engine_speed.py --breakdown) -------------------------------------
#: Phases of :func:`_simulate_batch` that :data:`PHASES` times, in the order of a layer.
PHASE_NAMES = ("random draws", "forward GEMMs", "activation + statistics", "backward GEMMs",
               "backward elementwise", "reductions")
#: None, or a dict phase -> seconds that :func:`run` adds to (set by the benchmark; timing a
#: phase costs one clock read, and the numbers do not change).
PHASES = None


class _Clock:
    """``clock(phase)`` charges the time since the previous call to ``phase`` in :data:`PHASES`."""

    def __init__(self):
        import time
        self._now = time.perf_counter
        self._t = self._now()

    def __call__(self, phase):
        t = self._now()
        if PHASES is not None:
            PHASES[phase] = PHASES.get(phase, 0.0) + (t - self._t)
        self._t = t


# --- wide networks: one at a time, BLAS GEMMs, row-parallel kernels ----------------------------------
_ACTIVATE_CHUNK = 2 ** 15  # elements: numpy temporaries of 256 KB stay in L2


def _activate(phi_dphi, h, x, d, threads=None):
    """``x, d = phi(h), phi'(h)`` with numpy's SIMD ufuncs, rows split over ``threads`` threads
    (default: numba's thread count; ufuncs release the GIL; elementwise, so the split does not
    change a bit)."""
    n_threads = numba.get_num_threads() if threads is None else threads
    if n_threads < 2 or h.size < 2 ** 16:
        with np.errstate(all="ignore"):
            x[...], d[...] = phi_dphi(h)
        return
    bounds = np.linspace(0, h.shape[0], n_threads + 1).astype(int)

    step = max(1, _ACTIVATE_CHUNK // h.shape[1])

    def part(i):
        # in chunks of ~32k elements, so numpy's temporaries stay in cache
        with np.errstate(all="ignore"):
            for a in range(bounds[i], bounds[i + 1], step):
                b = min(a + step, bounds[i + 1])
                x[a:b], d[a:b] = phi_dphi(h[a:b])
    list(_pool(n_threads).map(part, range(n_threads)))


def _tasks(kernel, n_tasks: int, *args, threads=None):
    """``kernel(*args, t0, t1)`` over tasks ``0 <= t < n_tasks``, in one contiguous range of tasks
    per engine thread (``threads``, default numba's thread count; the calling thread takes the
    first range). The kernels are serial numba functions that release the GIL, and a task's
    numbers do not depend on its range: the result is bitwise the same for any thread count.
    (Threads from Python instead of a numba ``prange``: the same speed, and each kernel compiles
    in a fraction of the time of a parfor.)"""
    n_threads = min(numba.get_num_threads() if threads is None else threads, n_tasks)
    if n_threads < 2:
        kernel(*args, 0, n_tasks)
        return
    bounds = [n_tasks * k // n_threads for k in range(n_threads + 1)]
    pool = _pool(numba.get_num_threads())
    futures = [pool.submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(1, n_threads)]
    kernel(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()


def _n_tasks(n_net: int, n: int, per_task: int) -> int:
    """Tasks of a batch kernel over ``n`` rows (or pairs of rows) of each of ``n_net`` networks,
    ``per_task`` of them a task (the kernel's task size)."""
    return n_net * -(-n // per_task)


def _block_rows(n_rows: int, pairs_per_block: int):
    """Global row numbers of each block: pairs stay together, laid out (firsts, seconds[, lone])."""
    n_pairs = n_rows // 2
    for a0 in range(0, max(n_pairs, 1), pairs_per_block):
        a1 = min(n_pairs, a0 + pairs_per_block)
        rows = [np.arange(a0, a1), np.arange(n_pairs + a0, n_pairs + a1)]
        if n_rows % 2 and a1 == n_pairs:
            rows.append(np.array([n_rows - 1]))
        yield np.concatenate(rows).astype(np.int64)


class _Workspace:
    """Buffers of one batch, allocated once per run and reused for every batch, the last
    (smaller) one included (fresh multi-megabyte arrays cost page faults comparable to the
    elementwise work)."""

    def __init__(self, plan, n_net, n_block, rowstats=True):
        n_max = int(plan.widths.max())
        size = n_net * n_block * n_max
        self.shape = (n_net, n_block)
        self.x = [np.empty(size, dtype=plan.dtype) for _ in range(2)]
        self.g = [np.empty(size, dtype=plan.dtype) for _ in range(2)]
        self.h = np.empty(size, dtype=plan.dtype)
        self.d = [np.empty((n_net, n_block, int(n)), dtype=plan.dtype) for n in plan.widths[1:]]
        self.w = [np.empty((n_net, int(a), int(b)), dtype=plan.dtype)
                  for a, b in zip(plan.widths[:-1], plan.widths[1:])] if plan.store_weights else None
        # per-row statistics of every layer and row (L, B, R, N_ROWSTATS), flat
        self.rowstats = np.empty(plan.depth * n_net * plan.n_rows * K.N_ROWSTATS) if rowstats else None

    def fits(self, n_net, n_block):
        return n_net <= self.shape[0] and n_block == self.shape[1]

    @staticmethod
    def view(flat, *shape):
        return flat[:int(np.prod(shape))].reshape(shape)


#: Networks of a batch of small networks that one thread simulates at a time, through all the
#: layers, with a workspace of its own (a piece). Threads hand work over once per piece instead
#: of at every kernel: on a 2-core VM a hand-over to a sleeping thread costs about 80 us of wall
#: time (:func:`_tasks` of a tiny kernel: 1 us on one thread, 80 us on two), and the glue between
#: kernels holds the GIL, so small pieces make the threads wait for each other (10,000 networks
#: of depth 20, width 64, 16 inputs, 2 threads: CPU / wall 1.45 with the kernels split instead,
#: 1.6 with pieces of 16, 1.75 with pieces of 32-96). A constant: the numbers depend neither on
#: it nor on which thread takes which piece.
PIECE = 64


def _pieces(widths, n_inputs: int, itemsize: int, batch: int, n_networks: int):
    """``(piece, n_workspaces)``: the engine's threads each simulate ``piece`` networks at a time
    through all their layers, ``n_workspaces`` of them at once (:func:`_simulate_pieces`); or
    ``(0, 1)``: one network at a time, every kernel split over the threads.

    Small networks go in pieces of :data:`PIECE`. Wide networks (one at a time) go one per
    thread when there are at least two of them and their workspaces fit in
    :data:`WIDE_PIECES_BUDGET`: each GEMM is then one whole single-threaded BLAS call instead of
    blocks of rows handed to the threads at every layer (d20 w512, 1024 inputs, 4 networks: 1.3x
    the bare multithreaded matmul time instead of 1.7x, measured side by side)."""
    threads = min(numba.get_num_threads(), available_cores())
    if batch > PIECE:
        return PIECE, max(1, min(threads, -(-min(batch, n_networks) // PIECE)))
    if batch == 1 and threads >= 2 and n_networks >= 2:
        n_ws = min(threads, n_networks)
        if n_ws * _workspace_bytes(widths, n_inputs, itemsize, 1) <= WIDE_PIECES_BUDGET:
            return 1, n_ws
    return 0, 1


#: Memory the workspaces of wide networks simulated one per thread may take together (beyond it,
#: one wide network at a time with its kernels split over the threads).
WIDE_PIECES_BUDGET = 4 * MEMORY_BUDGET


def _simulate_pieces(plan, keys, out, workspaces, piece, bar=None):
    """``_simulate_batch`` of the networks with keys ``keys``, in pieces of ``piece`` networks that
    the engine's threads take in turn (one workspace each; the next free thread takes the next
    piece, so a thread slowed down by another process does not hold the others back)."""
    n_net = keys.shape[0]
    starts = range(0, n_net, piece)
    lock = threading.Lock()
    queue = iter(starts)

    def work(k):
        with np.errstate(all="ignore"):   # errstate is per thread
            while True:
                with lock:
                    p0 = next(queue, None)
                if p0 is None:
                    return
                p1 = min(p0 + piece, n_net)
                _simulate_batch(plan, keys[p0:p1], out[p0:p1], workspaces[k], threads=1)
                if bar is not None:
                    with lock:
                        bar.update(p1 - p0)
    run_all([functools.partial(work, k) for k in range(min(len(workspaces), len(starts)))])


#: Rows of one task of a wide network's GEMM: a fixed split, so the numbers do not depend on
#: the thread count (each task is one single-threaded BLAS call on the same rows).
GEMM_ROWS = 256


def _matmul(a, b, out, threads=None):
    """Batched ``a @ b`` into ``out`` as fixed tasks on the engine's threads, BLAS single-threaded
    (:func:`compute_threads`): a batch of networks is split by network (each network's GEMM is
    the same call either way), one network by blocks of :data:`GEMM_ROWS` rows. The split does
    not depend on the thread count, so neither do the numbers; threads never exceed cores."""
    n_threads = numba.get_num_threads() if threads is None else threads
    n_net, n_rows = a.shape[0], a.shape[1]
    if n_net >= 2:
        per = -(-n_net // max(1, min(n_net, 4 * n_threads)))
        tasks = [(slice(i, min(i + per, n_net)), slice(None)) for i in range(0, n_net, per)]
    else:
        tasks = [(slice(None), slice(r, min(r + GEMM_ROWS, n_rows))) for r in range(0, n_rows, GEMM_ROWS)]

    def part(task):
        s, r = task
        with np.errstate(all="ignore"):  # errstate is per thread
            np.matmul(a[s, r], b[s], out=out[s, r])
    if n_threads < 2 or len(tasks) < 2:
        for task in tasks:
            part(task)
    else:
        list(_pool(n_threads).map(part, tasks))
    return out


@contextlib.contextmanager
def compute_threads():
    """While :func:`run` computes: BLAS on one thread (the engine splits GEMMs over its own
    threads, which sleep when idle, instead of BLAS threads that spin between calls) and at
    most :func:`available_cores` numba threads, so that numba threads x BLAS threads never
    exceed the cores (oversubscription makes a loaded machine crawl)."""
    from threadpoolctl import threadpool_limits
    before = numba.get_num_threads()
    numba.set_num_threads(min(before, available_cores()))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(before)


def _simulate_batch(plan, keys, out, workspace=None, threads=None):
    """Simulate the networks with Philox keys ``keys`` (B, 2); ``out[i]`` gets network i's
    values (L, N_VALUES). Forward ``h_l = x_{l-1} W_l + b_l``, ``x_l = phi(h_l)``; backward
    from an i.i.d. N(0, 1) ``dL/dx_L``: ``dL/dh_l = dL/dx_l * phi'(h_l)``,
    ``dL/dx_{l-1} = dL/dh_l W_l^T``. Kernels and GEMMs split over ``threads`` threads (default
    numba's thread count; 1 when the caller runs pieces of a batch on its own threads)."""
    depth, n_rows, n_net = plan.depth, plan.n_rows, keys.shape[0]
    clock = _Clock()
    view = _Workspace.view
    sigma_w2 = np.empty((depth, n_net))
    weights = [None] * depth
    biases = []
    for l in range(depth):
        b = np.empty((n_net, 1, int(plan.widths[l + 1])), dtype=plan.dtype)
        K.fill_batch(b, keys, K.TAG_BIAS, l + 1, np.zeros(1, dtype=np.int64), K.DIST_NORMAL, plan.sigma_b[l])
        biases.append(np.ascontiguousarray(b[:, 0, :]))
    reuse = workspace is not None
    rowstats = view(workspace.rowstats, depth, n_net, n_rows, K.N_ROWSTATS) if reuse \
        else np.empty((depth, n_net, n_rows, K.N_ROWSTATS))

    def weight(l):
        if weights[l] is not None:
            return weights[l]
        shape = (n_net, int(plan.widths[l]), int(plan.widths[l + 1]))
        w = workspace.w[l][:n_net] if plan.store_weights and reuse else np.empty(shape, plan.dtype)
        if plan.dist == K.DIST_ORTHOGONAL:
            _tasks(K.orthogonal_batch, n_net, w, keys, l + 1, plan.weight_std[l], sigma_w2[l], threads=threads)
        else:
            fan_in, fan_out = shape[1], shape[2]
            row_sq = np.empty((n_net, fan_in))
            _tasks(K.weights_batch, _n_tasks(n_net, fan_in, K._TASK_ROWS), w, keys, l + 1, plan.dist,
                   plan.weight_std[l], row_sq, threads=threads)
            # realised sigma_w^2 = sum(W^2) / fan_out, rows summed in order (cumsum is sequential)
            sigma_w2[l] = np.cumsum(row_sq, axis=1)[:, -1] / fan_out
        if plan.store_weights:
            weights[l] = w
        return w

    for rows in _block_rows(n_rows, plan.pairs_per_block):
        n_block = rows.shape[0]
        ws = workspace if reuse and workspace.fits(n_net, n_block) else _Workspace(plan, n_net, n_block, rowstats=False)
        # the inputs in x[1] (layer 0 writes x[0], layer 1 overwrites x[1] after layer 0's GEMM)
        x = view(ws.x[1], n_net, n_block, int(plan.widths[0]))
        draw_inputs(x, keys, rows, n_rows, plan.c0, plan.input_std)
        # one block of all rows (the usual case): its statistics go straight into rowstats
        st = rowstats if n_block == n_rows else np.empty((depth, n_net, n_block, K.N_ROWSTATS))
        d_all = [d[:n_net] for d in ws.d]
        for l in range(depth):
            n_out = int(plan.widths[l + 1])
            # h_l = x_{l-1} W_l + b_l,  x_l = phi(h_l)
            w = weight(l)
            clock("random draws")
            h = _matmul(x, w, view(ws.h, n_net, n_block, n_out), threads)
            clock("forward GEMMs")
            x = view(ws.x[l % 2], n_net, n_block, n_out)
            d = d_all[l]
            if plan.fused[l]:
                _tasks(plan.module.activate_stats_batch, n_net * (n_block - n_block // 2), h, biases[l],
                       plan.codes[l], x, d, plan.sat_lo[l], plan.sat_hi[l], plan.dead_lo[l], plan.dead_hi[l], st[l],
                       threads=threads)
            else:
                h += biases[l][:, None, :]
                _activate(plan.vector[l], h.reshape(-1, n_out), x.reshape(-1, n_out), d.reshape(-1, n_out), threads)
                _tasks(K.layer_stats_batch, _n_tasks(n_net, n_block - n_block // 2, K._TASK_PAIRS), h, x, d,
                       plan.sat_lo[l], plan.sat_hi[l], plan.dead_lo[l], plan.dead_hi[l], st[l], threads=threads)
            clock("activation + statistics")
        g = view(ws.g[0], n_net, n_block, int(plan.widths[depth]))
        K.fill_batch(g, keys, K.TAG_OUTGRAD, depth, rows, K.DIST_NORMAL, 1.0)
        clock("random draws")
        for l in range(depth - 1, -1, -1):
            # dL/dh_l = dL/dx_l * phi'(h_l);  dL/dx_{l-1} = dL/dh_l W_l^T
            _tasks(K.backward_batch, _n_tasks(n_net, n_block, K._TASK_ROWS), g, d_all[l], st[l], threads=threads)
            clock("backward elementwise")
            if l > 0:
                w = weight(l)
                clock("random draws")
                g = _matmul(g, w.transpose(0, 2, 1), view(ws.g[(depth - l) % 2], n_net, n_block, int(plan.widths[l])),
                            threads)
                clock("backward GEMMs")
        if st is not rowstats:
            rowstats[:, :, rows, :] = st
    _tasks(K.network_values, n_net, rowstats, sigma_w2, plan.widths[1:], out, threads=threads)
    clock("reductions")


# --- streaming moments over networks ---------------------------------------------------------------
class _Moments:
    """Running mean and co-moment matrix of per-network value vectors, per layer
    (Chan, Golub & LeVeque's pairwise update: memory independent of the number of networks;
    chunks are folded in a fixed order, so the result is bitwise reproducible)."""

    def __init__(self, depth, n_values):
        self.n = 0
        self.mean = np.zeros((depth, n_values))
        self.m2 = np.zeros((depth, n_values, n_values))

    def add(self, values):
        nb = values.shape[0]
        mb = values.mean(axis=0)
        dev = values - mb
        m2b = np.einsum("bli,blj->lij", dev, dev)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + np.einsum("li,lj->lij", delta, delta) * (self.n * nb / n)
        self.n = n

    @property
    def cov(self):
        return self.m2 / (self.n - 1)


def _finish(moments: _Moments, plan: _Plan):
    """Quantities and delta-method standard errors from the moments of the per-network values."""
    m, cov, n = moments.mean, moments.cov, moments.n
    depth = m.shape[0]
    values, se = {}, {}

    def put(name, f, grad):
        # SE^2 = grad^T Cov grad / N, grad = d f / d (means), per layer
        values[name] = f
        g = np.zeros((depth, K.N_VALUES))
        for idx, col in grad.items():
            g[:, idx] = col
        var = np.einsum("li,lij,lj->l", g, cov, g) / n
        se[name] = np.sqrt(np.where(var >= 0, var, np.nan))

    one = np.ones(depth)
    put("q", m[:, K.V_Q], {K.V_Q: one})
    put("act_mean", m[:, K.V_M], {K.V_M: one})
    put("act_sq", m[:, K.V_S], {K.V_S: one})
    put("act_var", m[:, K.V_S] - m[:, K.V_M] ** 2, {K.V_S: one, K.V_M: -2 * m[:, K.V_M]})
    sat = np.where(plan.bounded, m[:, K.V_SAT], np.nan)
    put("saturated", sat, {K.V_SAT: one})
    put("dead", m[:, K.V_DEAD], {K.V_DEAD: one})
    # A fraction that came out the same in every network (typically 0) has an across-network
    # SE of 0; floor it at the binomial resolution of M = N * inputs * units observations,
    # sqrt(p (1 - p) / M) with p = (k + 1/2) / (M + 1) (Jeffreys), so "0 of M" still says how
    # small the fraction could be.
    units = n * plan.n_rows * plan.widths[1:].astype(float)
    for name in ("saturated", "dead"):
        k = values[name] * units
        p = (k + 0.5) / (units + 1)
        floor = np.sqrt(p * (1 - p) / units)
        se[name] = np.where(se[name] == 0, floor, se[name])
    se["saturated"] = np.where(plan.bounded, se["saturated"], np.nan)
    put("grad_var", m[:, K.V_G], {K.V_G: one})
    a, b, c = m[:, K.V_AB], m[:, K.V_AA], m[:, K.V_BB]
    # corr = A / sqrt(B C)
    root = np.sqrt(b * c)
    put("corr", a / root, {K.V_AB: 1 / root, K.V_AA: -a / (2 * b * root), K.V_BB: -a / (2 * c * root)})
    put("chi1", m[:, K.V_CHI], {K.V_CHI: one})
    put("act_lognorm_var", m[:, K.V_LX2] - m[:, K.V_LX] ** 2, {K.V_LX2: one, K.V_LX: -2 * m[:, K.V_LX]})
    put("grad_lognorm_var", m[:, K.V_LG2] - m[:, K.V_LG] ** 2, {K.V_LG2: one, K.V_LG: -2 * m[:, K.V_LG]})
    return {k: values[k] for k in SIM_QUANTITIES}, {k: se[k] for k in SIM_QUANTITIES}


# --- the API ----------------------------------------------------------------------------------------
def _widths_text(widths) -> str:
    return f"{widths[0]} x {len(widths)}" if len(set(widths)) == 1 else ", ".join(map(str, widths))


def run(spec, n_networks, n_inputs, seed, dtype=np.float64, c0=0.5, threshold=DEFAULT_SATURATION_THRESHOLD, progress=False,
        _batch=None) -> LayerStats:
    """Measure per-layer statistics over ``n_networks`` random networks drawn from ``spec``.

    Parameters
    ----------
    spec : NetSpec
        The network: widths, activation per layer, sigma_w, sigma_b, weight distribution.
    n_networks : int
        Number of independent networks (>= 2; standard errors are computed across them).
    n_inputs : int
        Inputs per network (>= 2). They come in pairs of initial correlation ``c0``
        (for ``corr``); every input is marginally ``N(0, input_var I)``.
    seed : int
        Seed (>= 0). The same seed gives the same numbers bitwise, whatever the thread count.
    dtype : float64 or float32
        Precision of the forward/backward pass (statistics always accumulate in float64).
    c0 : float
        Initial correlation of the input pairs.
    threshold : float
        Saturation threshold (see :meth:`Activation.saturation_cutoffs`).
    progress : bool
        Show a progress bar on stderr for runs longer than about a second.

    Returns
    -------
    LayerStats
        ``source="simulation"``; quantities :data:`SIM_QUANTITIES` with standard errors
        (see the module docstring for the estimators). Overflow and vanishing show as
        inf / nan / 0 values (see :meth:`LayerStats.flags`), never as an error.

    Examples
    --------
    >>> from sigprop import NetSpec
    >>> from sigprop.simulate import run
    >>> spec = NetSpec.uniform(depth=3, width=32, activation="relu", init="kaiming")
    >>> stats = run(spec, n_networks=8, n_inputs=4, seed=0)
    >>> stats.source, stats.q.shape
    ('simulation', (3,))
    >>> bool(abs(stats.dead[0] - 0.5) < 0.1)
    True
    """
    spec, n_networks, n_inputs, seed, dtype, c0, threshold = _check_args(
        spec, n_networks, n_inputs, seed, dtype, c0, threshold)
    check_fits(memory_estimate(spec, n_networks, n_inputs, dtype),
               f"simulating {n_networks} networks of widths {spec.input_dim}, {_widths_text(spec.widths)} "
               f"with {n_inputs} inputs")
    plan = _Plan(spec, n_inputs, dtype, c0, threshold)
    batch = plan.batch if _batch is None else int(_batch)
    depth = plan.depth
    moments = _Moments(depth, K.N_VALUES)
    bar = Progress(n_networks, "simulate", enabled=progress)
    workspace = workspaces = None
    piece, n_ws = _pieces(plan.widths, n_inputs, dtype.itemsize, batch, n_networks)
    # per-network values are folded into the moments every `chunk` networks (a multiple of
    # the batch, independent of the thread count: the same folding order every time)
    chunk = batch * max(1, min(-(-n_networks // batch), _CHUNK_VALUES // (batch * depth * K.N_VALUES * 8)))
    with np.errstate(all="ignore"), compute_threads():
        for start in range(0, n_networks, chunk):
            n = min(chunk, n_networks - start)
            values = np.empty((n, depth, K.N_VALUES))
            rows = next(_block_rows(plan.n_rows, plan.pairs_per_block))
            if piece:   # the threads take pieces of networks, each through all its layers
                if workspaces is None:
                    workspaces = [_Workspace(plan, piece, rows.shape[0]) for _ in range(n_ws)]
                _simulate_pieces(plan, _network_keys(seed, start, n), values, workspaces, piece, bar)
            for b0 in range(0, n if not piece else 0, batch):   # or a batch at a time, kernels split
                nb = min(batch, n - b0)
                keys = _network_keys(seed, start + b0, nb)
                if workspace is None:
                    workspace = _Workspace(plan, batch, rows.shape[0])
                _simulate_batch(plan, keys, values[b0:b0 + nb], workspace)
                bar.update(nb)
            clock = _Clock()
            moments.add(values)
            clock("reductions")
        vals, ses = _finish(moments, plan)
    bar.close()
    meta = {"n_networks": n_networks, "n_inputs": n_inputs, "c0": c0, "threshold": threshold,
            "dtype": dtype.name, "batch": batch,
            "rng": "philox4x32-10 (counter-based) + 256-layer ziggurat",
            "se": "delta method over per-network values (networks are the independent units)"}
    return LayerStats(vals, ses, spec=spec, source="simulation", seed=seed, meta=meta)
