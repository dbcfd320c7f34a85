"""Worker threads for work that Python splits itself: serial numba kernels that release the GIL,
numpy and BLAS calls (the Monte Carlo engine's tasks and pieces, the GPT's micro-batches).

Threads from Python instead of numba parfors: a parfor costs about a second of compile each, and
on a 2-core VM about 0.1 ms per launch; the threads here sleep when idle, so a second process on
the same cores is not slowed down by them.
"""
from __future__ import annotations

_POOL = None


def pool(n_threads: int):
    """The process's thread pool with ``n_threads`` workers (made again when the count changes)."""
    global _POOL
    if _POOL is None or _POOL._max_workers != n_threads:
        from concurrent.futures import ThreadPoolExecutor
        _POOL = ThreadPoolExecutor(n_threads, thread_name_prefix="sigprop")
    return _POOL


def run_all(calls) -> list:
    """Run the zero-argument callables ``calls`` at once, the first on the calling thread and the
    others on :func:`pool`; return their results in order (an exception in any is raised here,
    after all have finished)."""
    calls = list(calls)
    if len(calls) < 2:
        return [c() for c in calls]
    from concurrent.futures import wait
    futures = [pool(len(calls) - 1).submit(c) for c in calls[1:]]
    try:
        first = calls[0]()
    finally:
        wait(futures)   # every call has finished before anything is raised or returned
    return [first] + [f.result() for f in futures]
