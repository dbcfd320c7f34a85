"""Worker threads for work that Python splits itself: serial numba kernels that release the GIL,
numpy and BLAS calls (the Monte Carlo engine's tasks and pieces, the GPT's micro-batches).

Threads from Python instead of numba parfors: a parfor costs about a second of compile each, and
on a 2-core VM about 0.1 ms per launch; the threads here sleep when idle, so a second process on
the same cores is not slowed down by them.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

_POOL = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool(n_threads: int):
    """The process's thread pool, with at least ``n_threads`` workers (made again, larger, when
    more are asked for; callers never ask for more than the cores, so it never has more)."""
    global _POOL
    if _POOL is None or _POOL._max_workers < n_threads:
        from concurrent.futures import ThreadPoolExecutor
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(n_threads, thread_name_prefix="sigprop")
    return _POOL


def run_all(calls) -> list:
    """Run the zero-argument callables ``calls`` at once, the first on the calling thread and the
    others on :func:`pool`; return their results in order (an exception in any is raised here,
    after all have finished)."""
    calls = list(calls)
    if len(calls) < 2:
        return [c() for c in calls]
    futures = [pool(len(calls)).submit(c) for c in calls[1:]]
    try:
        first = calls[0]()
    finally:
        _wait_all(futures)   # every call has finished before anything is raised or returned
    return [first] + [f.result() for f in futures]


def _wait_all(futures) -> None:
    """Wait for every future, through Ctrl-C too (re-raised once they are done): a worker never
    goes on writing into arrays that its caller has moved on from (a checkpoint being saved)."""
    from concurrent.futures import wait
    interrupted = None
    while True:
        try:
            wait(futures)
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
    if interrupted is not None:
        raise interrupted


class _Stop:
    requested = False


@contextlib.contextmanager
def deferred_interrupt():
    """Within the block, a first Ctrl-C (SIGINT) only sets ``stop.requested`` of the yielded
    object, so that a loop can finish the step under way and stop cleanly; a second Ctrl-C
    interrupts at once (the previous handler is back). Outside the main thread (where signal
    handlers cannot be set), or when SIGINT is ignored (a job started in the background), nothing
    changes."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        stop.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
