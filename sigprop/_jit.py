"""Numba options in one place (STYLE 5): every kernel decorates with these.

``cache=True`` keeps compile time out of the user's second run; ``fastmath`` is
off because the statistics must match float64 theory to many digits.
Set ``NUMBA_DISABLE_JIT=1`` to run every kernel as plain Python (coverage,
tracebacks).
"""
import os

JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
PARALLEL_JIT = dict(JIT, parallel=True)

#: Float results may be contracted into fused multiply-adds (never less accurate): the
#: charmlp elementary functions (sigprop.charmlp.vmath).
CONTRACT_JIT = dict(JIT, fastmath={"contract"})
#: Sums may also be reassociated so that LLVM vectorises reductions and blocked matrix products:
#: results are deterministic for a given build and input, but not bitwise equal to a sequential
#: sum (the charmlp training kernels).
FAST_JIT = dict(JIT, fastmath={"contract", "reassoc"})
#: Parallel kernels with FAST_JIT's float semantics (the GPT's attention and activation kernels).
PARALLEL_FAST_JIT = dict(FAST_JIT, parallel=True)


def prefer_sleeping_threads() -> None:
    """Use numba's ``workqueue`` threading layer unless the user chose one (NUMBA_THREADING_LAYER).

    Code that launches many short parallel kernels (the engine, the GPT) pays for OpenMP's
    spin-waiting between launches: on a loaded machine (BLAS threads, other processes) each
    launch can cost a scheduler tick (~8 ms); workqueue's workers sleep instead. Process-wide.
    """
    import numba
    if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"
