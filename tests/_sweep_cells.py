"""Cell functions for the sweep tests (importable by worker processes via PYTHONPATH)."""
import os
import time


def logged_square(x, y, log=None, delay=0.0):
    """x**2 + y, appending the cell to a call log so tests can see what was (re)computed."""
    if log:
        with open(log, "a") as fh:
            fh.write(f"{x},{y}\n")
    if delay:
        time.sleep(delay)
    return {"value": x * x + y, "pid": os.getpid()}
