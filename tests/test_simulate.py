"""The Monte Carlo engine against a plain-numpy oracle, its random numbers, reproducibility,
extreme regimes and input checking. (Theory vs simulation: test_simulate_theory.py.)"""
import json
import math
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest
from scipy import stats as st

from sigprop import NetSpec
from sigprop.simulate import SIM_QUANTITIES, draw_network, run
from sigprop.simulate import engine
from sigprop.simulate import kernels as K


# --- random numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ctr, key, expected", [
    # Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter[4] key[2] -> result[4]
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
])
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(v) for v in K.philox4x32(*ctr, *key)) == expected
    # the vectorised form used for bulk draws agrees with the scalar one
    words = np.empty(2, dtype=np.uint64)
    K.philox_words(words, np.uint64(key[0]), np.uint64(key[1]), np.uint64(ctr[3]), np.uint64(ctr[2]),
                   np.uint64(ctr[0] | (ctr[1] << 32)))
    assert int(words[0]) == expected[0] | (expected[1] << 32)
    assert int(words[1]) == expected[2] | (expected[3] << 32)


def test_ziggurat_table_matches_its_defining_constants():
    # r and the layer area v of the 256-layer ziggurat (Marsaglia & Tsang 2000): r = 3.6541528853610088
    assert K.ZIG_R == pytest.approx(3.6541528853610088, rel=1e-14)
    assert np.all(np.diff(K.ZIG_W[1:]) < 0) and K.ZIG_K[-1] == 0


def test_normals_are_standard_normal():
    """One million draws: KS test and the tail beyond r (slow path) at the normal rate.

    Fixed key, so deterministic; thresholds: KS p > 1e-3, tail count within 4 binomial SE.
    """
    z = np.empty((1000, 1000))
    K.fill_rows(z, np.uint64(12345), np.uint64(678), K.TAG_WEIGHT, 1, np.arange(1000), K.DIST_NORMAL, 1.0)
    z = z.ravel()
    assert st.kstest(z, "norm").pvalue > 1e-3
    for cut in (K.ZIG_R, 4.0):
        p = 2 * st.norm.sf(cut)
        count = np.sum(np.abs(z) > cut)
        assert abs(count - z.size * p) < 4 * math.sqrt(z.size * p * (1 - p))
    # and the check has power: a 2% too-wide normal fails it
    assert st.kstest(z * 1.02, "norm").pvalue < 1e-3


def test_uniform_weights_have_the_requested_std():
    w = np.empty((500, 400))
    K.fill_rows(w, np.uint64(1), np.uint64(2), K.TAG_WEIGHT, 3, np.arange(500), K.DIST_UNIFORM, 0.25)
    assert np.abs(w).max() <= 0.25 * math.sqrt(3)
    # Var of the sample variance of U(-a, a): (E w^4 - sigma^4)/n, E w^4 = 9/5 sigma^4
    se = math.sqrt((9 / 5 - 1) * 0.25 ** 4 / w.size)
    assert abs(w.var() - 0.25 ** 2) < 4 * se


def test_orthogonal_weights_are_orthogonal():
    spec = NetSpec.uniform(depth=2, width=16, activation="tanh", init="orthogonal", input_dim=24)
    net = draw_network(spec, seed=3, index=0, n_inputs=2)
    w0, w1 = net["weights"]          # (24, 16) and (16, 16), entries of std 1/sqrt(24) and 1/sqrt(16)
    np.testing.assert_allclose(w0.T @ w0, np.eye(16) * 24 / 24, atol=1e-12)
    np.testing.assert_allclose(w1.T @ w1, np.eye(16), atol=1e-12)


# --- the oracle ---------------------------------------------------------------------------------------
def numpy_oracle(spec, n_networks, n_inputs, seed, c0=0.5, threshold=0.97):
    """The engine's estimators, written out plainly with numpy (act.phi / act.dphi, np.cov)."""
    acts = spec.activations()
    L, P = spec.depth, n_inputs // 2
    per_net = []
    for i in range(n_networks):
        net = draw_network(spec, seed, i, n_inputs, c0)
        x = net["inputs"]
        v = {k: np.empty(L) for k in ("q", "m", "s", "sat", "dead", "g", "ab", "aa", "bb", "chi",
                                      "lx", "lx2", "lg", "lg2")}
        dphi = []
        for l, act in enumerate(acts):
            w = net["weights"][l]
            h = x @ w + net["biases"][l]
            x = act.phi(h)
            d = act.dphi(h)
            dphi.append(d)
            v["q"][l] = np.mean(h ** 2)
            v["m"][l] = np.mean(x)
            v["s"][l] = np.mean(x ** 2)
            cut = act.saturation_cutoffs(threshold)
            v["sat"][l] = 0.0 if cut is None else np.mean((h < cut[0]) | (h > cut[1]))
            dead = np.zeros(h.shape, dtype=bool)
            for lo, hi in act.dead_intervals:
                dead |= (h >= lo) & (h <= hi)
            v["dead"][l] = dead.mean()
            v["ab"][l] = np.mean(h[:P] * h[P:2 * P])
            v["aa"][l] = np.mean(h[:P] ** 2)
            v["bb"][l] = np.mean(h[P:2 * P] ** 2)
            v["chi"][l] = w.shape[0] * np.mean(w ** 2) * np.mean(d ** 2)
            log_norm = np.log(np.sum(x ** 2, axis=1))
            v["lx"][l], v["lx2"][l] = log_norm.mean(), np.mean(log_norm ** 2)
        g = net["output_grad"]
        for l in range(L - 1, -1, -1):
            g = g * dphi[l]
            v["g"][l] = np.mean(g ** 2)
            log_norm = np.log(np.sum(g ** 2, axis=1))
            v["lg"][l], v["lg2"][l] = log_norm.mean(), np.mean(log_norm ** 2)
            g = g @ net["weights"][l].T
        per_net.append(v)
    keys = list(per_net[0])
    V = np.array([[net[k] for k in keys] for net in per_net])      # (networks, values, layers)
    mean = V.mean(axis=0)
    idx = {k: i for i, k in enumerate(keys)}
    values, se = {}, {}
    for l in range(L):
        cov = np.cov(V[:, :, l], rowvar=False)                     # across networks
        m = {k: mean[idx[k], l] for k in keys}

        def put(name, f, grad):
            gvec = np.zeros(len(keys))
            for k, gk in grad.items():
                gvec[idx[k]] = gk
            values.setdefault(name, np.empty(L))[l] = f
            se.setdefault(name, np.empty(L))[l] = math.sqrt(max(gvec @ cov @ gvec, 0) / n_networks)

        put("q", m["q"], {"q": 1})
        put("act_mean", m["m"], {"m": 1})
        put("act_sq", m["s"], {"s": 1})
        put("act_var", m["s"] - m["m"] ** 2, {"s": 1, "m": -2 * m["m"]})
        put("saturated", m["sat"], {"sat": 1})
        put("dead", m["dead"], {"dead": 1})
        put("grad_var", m["g"], {"g": 1})
        r = math.sqrt(m["aa"] * m["bb"])
        put("corr", m["ab"] / r, {"ab": 1 / r, "aa": -m["ab"] / (2 * m["aa"] * r), "bb": -m["ab"] / (2 * m["bb"] * r)})
        put("chi1", m["chi"], {"chi": 1})
        put("act_lognorm_var", m["lx2"] - m["lx"] ** 2, {"lx2": 1, "lx": -2 * m["lx"]})
        put("grad_lognorm_var", m["lg2"] - m["lg"] ** 2, {"lg2": 1, "lg": -2 * m["lg"]})
    for name in ("saturated", "dead"):
        # documented floor for a fraction with zero spread across networks: Jeffreys binomial SE
        for l in range(L):
            if se[name][l] == 0:
                units = n_networks * n_inputs * spec.widths[l]
                p = (values[name][l] * units + 0.5) / (units + 1)
                se[name][l] = math.sqrt(p * (1 - p) / units)
    for l, act in enumerate(acts):
        if act.bounds is None:
            values["saturated"][l] = se["saturated"][l] = np.nan
    return values, se


ORACLE_CASES = [
    # (spec, n_networks, n_inputs): small and wide schedules, biases, uniform/orthogonal weights,
    # per-layer activations, an odd number of inputs, a non-square first layer
    (NetSpec.uniform(depth=3, width=24, activation="tanh", init="kaiming"), 6, 6),
    (NetSpec.uniform(depth=2, width=20, activation="relu", init="xavier_uniform", sigma_b=0.3, input_dim=9), 5, 7),
    (NetSpec(input_dim=12, widths=[16, 8, 16], activation=["tanh", "relu", "erf"], sigma_w=[1.5, 1.4, 1.1],
             sigma_b=[0.1, 0.0, 0.2], weight_dist="orthogonal"), 4, 4),
    (NetSpec.uniform(depth=2, width=130, activation="tanh", init="kaiming", sigma_b=0.05), 3, 5),
    (NetSpec(input_dim=140, widths=[150, 130], activation=["relu", "leaky_relu(a=0.2)"], sigma_w=1.3,
             weight_dist="uniform"), 3, 4),
]


@pytest.mark.parametrize("spec, n_networks, n_inputs", ORACLE_CASES)
def test_engine_matches_numpy_oracle(spec, n_networks, n_inputs):
    """Same seed -> same numbers as an independent numpy implementation, to float rounding."""
    stats = run(spec, n_networks, n_inputs, seed=11)
    values, se = numpy_oracle(spec, n_networks, n_inputs, seed=11)
    assert stats.quantities == list(SIM_QUANTITIES)
    for k in SIM_QUANTITIES:
        np.testing.assert_allclose(stats[k], values[k], rtol=1e-9, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(stats.se[k], se[k], rtol=1e-6, atol=1e-12, err_msg=f"se of {k}")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_batch_size_does_not_change_the_numbers(activation):
    """One network at a time (the wide-network schedule) or many at once (small networks)
    is the same computation per network; only the order in which per-network values are
    folded into the moments differs: equal to float rounding."""
    spec = NetSpec.uniform(depth=4, width=40, activation=activation, init="kaiming", sigma_b=0.2)
    a = run(spec, 7, 6, seed=2, _batch=1)
    b = run(spec, 7, 6, seed=2, _batch=3)
    c = run(spec, 7, 6, seed=2)
    assert (a.meta["batch"], b.meta["batch"]) == (1, 3) and c.meta["batch"] >= 7
    for k in SIM_QUANTITIES:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-13, err_msg=k)
        np.testing.assert_allclose(a[k], c[k], rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("width, n_networks", [(24, 6), (24, 2 * engine.PIECE + 9), (160, 6)])
def test_bitwise_reproducible_across_thread_counts(width, n_networks):
    """Wide networks (threads split each kernel) and batches of small networks (threads take
    pieces of PIECE networks, here one piece or three, the last a short one)."""
    spec = NetSpec.uniform(depth=3, width=width, activation="tanh", init="kaiming", sigma_b=0.1)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run(spec, n_networks, 6, seed=5)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run(spec, n_networks, 6, seed=5)
    finally:
        numba.set_num_threads(before)
    assert one.equals(two)
    assert not one.equals(run(spec, n_networks, 6, seed=6))


def test_pieces_are_the_per_network_computation():
    """A batch of small networks cut into the threads' pieces gives each network's values as one
    network at a time does (the kernels split over threads instead): equal to float rounding
    (only the folding of values into the moments differs)."""
    spec = NetSpec.uniform(depth=3, width=24, activation="relu", init="kaiming", sigma_b=0.1)
    n = 2 * engine.PIECE + 9
    pieces = run(spec, n, 6, seed=4)
    assert pieces.meta["batch"] > engine.PIECE
    single = run(spec, n, 6, seed=4, _batch=1)
    for k in SIM_QUANTITIES:
        np.testing.assert_allclose(pieces[k], single[k], rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("one_per_thread", [False, True])
def test_wide_gemm_split_is_bitwise_reproducible_across_thread_counts(one_per_thread, monkeypatch):
    """Wide networks go one per thread, or (when their workspaces do not fit in
    WIDE_PIECES_BUDGET) one at a time with their GEMMs in fixed blocks of GEMM_ROWS rows (here 3
    blocks) on the engine's threads: either way 1 or 2 threads give the same bits, and the two
    schedules give the same numbers."""
    from sigprop.simulate.engine import GEMM_ROWS
    if not one_per_thread:
        monkeypatch.setattr(engine, "WIDE_PIECES_BUDGET", 0)
    n_inputs = 2 * GEMM_ROWS + 10
    spec = NetSpec.uniform(depth=2, width=130, activation="tanh", init="kaiming", sigma_b=0.1)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run(spec, 3, n_inputs, seed=5)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run(spec, 3, n_inputs, seed=5)
        assert engine._pieces(np.array([130, 130, 130]), n_inputs, 8, 1, 3) \
            == ((1, 2) if one_per_thread and numba.get_num_threads() >= 2 and engine.available_cores() >= 2 else (0, 1))
    finally:
        numba.set_num_threads(before)
    assert one.equals(two)
    monkeypatch.setattr(engine, "WIDE_PIECES_BUDGET", 0 if one_per_thread else 2 ** 40)
    for k in SIM_QUANTITIES:   # the other schedule: the same numbers (folded in the same order)
        np.testing.assert_array_equal(run(spec, 3, n_inputs, seed=5)[k], one[k], err_msg=k)


def test_compute_threads_never_exceed_the_cores():
    """While the engine computes, BLAS runs one thread and numba at most one per core;
    both are restored afterwards."""
    from threadpoolctl import threadpool_info
    from sigprop.simulate.engine import available_cores, compute_threads

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    outside, n_numba = blas_threads(), numba.get_num_threads()
    with compute_threads():
        assert all(n == 1 for n in blas_threads())
        assert numba.get_num_threads() * max(blas_threads() or [1]) <= available_cores()
    assert blas_threads() == outside and numba.get_num_threads() == n_numba


def test_more_networks_extend_the_ensemble():
    """Network i depends on (seed, i) only: the per-layer means of a larger run combine
    the smaller run's networks with new ones (checked through the count-weighted mean)."""
    spec = NetSpec.uniform(depth=2, width=16, activation="relu", init="kaiming")
    a, b, c = run(spec, 4, 4, seed=9), run(spec, 8, 4, seed=9), run(spec, 4, 4, seed=9)
    assert a.equals(c)
    net4 = draw_network(spec, 9, 4, 4)
    assert not np.array_equal(net4["weights"][0], draw_network(spec, 9, 0, 4)["weights"][0])
    assert not np.array_equal(a.q, b.q)


def test_float32_close_to_float64():
    spec = NetSpec.uniform(depth=3, width=32, activation="tanh", init="kaiming")
    a = run(spec, 4, 4, seed=1)
    b = run(spec, 4, 4, seed=1, dtype=np.float32)
    assert b.meta["dtype"] == "float32"
    np.testing.assert_allclose(b.q, a.q, rtol=1e-5)
    np.testing.assert_allclose(b.grad_var, a.grad_var, rtol=1e-4)


# --- extreme regimes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("activation, sigma_w", [("relu", 100.0), ("tanh", 100.0), ("relu", 0.01),
                                                 ("linear", 100.0)])
def test_extreme_regimes_are_flagged_not_errors(activation, sigma_w):
    spec = NetSpec(input_dim=16, widths=[16] * 1000, activation=activation, sigma_w=sigma_w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = run(spec, 2, 2, seed=0)
    flags = stats.flags()
    if activation == "tanh":
        # saturated, not overflowing: q ~ sigma_w^2 E[tanh^2] stays finite, units pinned at +-1
        assert np.all(np.isfinite(stats.q)) and stats.saturated[-1] > 0.9
    elif sigma_w > 1:
        assert set(flags["q"]) >= {"ok", "overflow"} or "nan" in set(flags["q"])
        assert flags["q"][-1] in ("overflow", "nan")
    else:
        assert flags["q"][-1] == "vanished"


def test_wide_schedule_survives_overflow():
    spec = NetSpec(input_dim=200, widths=[200] * 200, activation="relu", sigma_w=100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = run(spec, 2, 2, seed=0)
    assert stats.meta["batch"] == 1 and stats.flags()["q"][-1] in ("overflow", "nan")


# --- input checking ----------------------------------------------------------------------------------
SPEC = NetSpec.uniform(depth=2, width=8, activation="tanh")


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_networks=1), "n_networks must be an integer >= 2"),
    (dict(n_networks=2.5), "n_networks must be an integer"),
    (dict(n_inputs=1), "n_inputs must be an integer >= 2"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
    (dict(c0=1.5), "c0 must be a number in"),
    (dict(threshold=1.0), "threshold must be in"),
    (dict(spec="tanh"), "spec must be a NetSpec"),
])
def test_bad_input_raises_value_error(kwargs, message):
    args = dict(spec=SPEC, n_networks=4, n_inputs=4, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        run(**args)


def test_disable_jit_path_gives_the_same_numbers():
    """NUMBA_DISABLE_JIT=1 runs the kernels as plain Python: same numbers to float rounding."""
    code = ("import json; from sigprop import NetSpec; from sigprop.simulate import run; "
            "s = run(NetSpec.uniform(depth=2, width=6, activation='tanh', init='kaiming', sigma_b=0.1), 2, 3, 4); "
            "print(json.dumps({k: s[k].tolist() for k in ('q', 'grad_var', 'corr', 'act_lognorm_var')}))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    plain = json.loads(out.stdout.strip().splitlines()[-1])
    s = run(NetSpec.uniform(depth=2, width=6, activation="tanh", init="kaiming", sigma_b=0.1), 2, 3, 4)
    for k, v in plain.items():
        np.testing.assert_allclose(v, s[k], rtol=1e-12, err_msg=k)
