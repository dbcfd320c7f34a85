"""Resumable grid sweeps, on a local process pool or a dask.distributed cluster.

A sweep evaluates one function on every cell of a grid (the cartesian product
of named parameter lists). Every finished cell is written to its own file at
once (atomically), so an interrupted sweep loses nothing: run it again with the
same folder and only the missing cells are computed.

Layout of a sweep folder::

    sweep.json          the grid and the function (checked on resume)
    cells/<id>.json     one finished cell: {"params": {...}, "result": {...}}

Examples
--------
>>> import tempfile
>>> from sigprop.sweep import run_sweep
>>> out = tempfile.mkdtemp()
>>> grid = {"r": [1.0, 0.0], "g": [0.5], "b": [0.0]}
>>> res = run_sweep("colorsys:rgb_to_hsv", grid, out, workers=1, progress=False)
>>> res.results
[[0.08333333333333333, 1.0, 1.0], [0.3333333333333333, 1.0, 0.5]]
>>> run_sweep("colorsys:rgb_to_hsv", grid, out, workers=1, progress=False).n_computed   # resumed: nothing left
0
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._io import atomic_write_text, dumps_json
from .progress import Progress

_FORMAT = "sigprop.sweep"


def _function_name(fn) -> str:
    if isinstance(fn, str):
        if ":" not in fn:
            raise ValueError(f"sweep function must be 'module:function', got {fn!r}")
        return fn
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module is None or "<" in qual or module == "__main__":
        raise ValueError("sweep function must be a module-level function importable by worker processes "
                         "(or a 'module:function' string)")
    return f"{module}:{qual}"


def _resolve(name: str) -> Callable:
    module, _, attr = name.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import sweep function {name!r}: {exc}") from None
    return obj


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def cell_id(params: dict) -> str:
    """Stable identifier of a cell (hash of its parameters as canonical JSON)."""
    return hashlib.sha1(_canonical(params).encode()).hexdigest()[:16]


def grid_cells(grid: dict) -> list[dict]:
    """The cartesian product of a grid ``{name: [values...]}`` as a list of parameter dicts,
    in row-major order of the names as given."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty mapping of parameter name -> list of values")
    names = list(grid)
    lists = []
    for k in names:
        vals = grid[k]
        if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__"):
            raise ValueError(f"grid[{k!r}] must be a list of values, got {vals!r}")
        vals = list(vals)
        if not vals:
            raise ValueError(f"grid[{k!r}] is empty")
        for v in vals:
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError):
                raise ValueError(f"grid[{k!r}] holds {v!r}, which is not plain JSON data") from None
        lists.append(vals)
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def _to_plain(result):
    """Results are stored as JSON: LayerStats and numpy values are converted."""
    from .spec import LayerStats
    if isinstance(result, LayerStats):
        return {"__layerstats__": result.to_dict()}
    try:
        import numpy as np
        if isinstance(result, np.ndarray):
            return result.tolist()
        if isinstance(result, np.generic):
            return result.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(result, dict):
        return {str(k): _to_plain(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [_to_plain(v) for v in result]
    return result


def _from_plain(obj):
    if isinstance(obj, dict) and "__layerstats__" in obj:
        from .spec import LayerStats
        return LayerStats.from_dict(obj["__layerstats__"])
    if isinstance(obj, dict):
        return {k: _from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_plain(v) for v in obj]
    return obj


def _evaluate(function_name: str, params: dict):
    """Run one cell in a worker: returns the plain (JSON) result."""
    return _to_plain(_resolve(function_name)(**params))


@dataclass
class SweepResult:
    """All cells of a sweep, in grid order."""

    grid: dict
    function: str
    params: list
    results: list
    n_computed: int = 0
    seconds: float = 0.0
    out: str = ""

    def column(self, key: str) -> list:
        """``[result[key] for each cell]`` for dict results."""
        return [r[key] if isinstance(r, dict) else getattr(r, key) for r in self.results]


def _cell_path(out: Path, params: dict) -> Path:
    return out / "cells" / f"{cell_id(params)}.json"


def _load_cell(path: Path, params: dict):
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # unreadable: recompute (atomic writes make this rare)
    if d.get("params") != params:
        return None
    return d


def _check_manifest(out: Path, grid: dict, function: str):
    manifest = {"format": _FORMAT, "function": function, "grid": grid}
    path = out / "sweep.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise ValueError(f"{path} is not a sweep manifest") from None
        if old.get("format") != _FORMAT:
            raise ValueError(f"{out} holds something other than a sigprop sweep")
        if old.get("function") != function or _canonical(old.get("grid")) != _canonical(json.loads(json.dumps(grid))):
            raise ValueError(f"{out} holds a different sweep ({old.get('function')}); use another --out folder")
    else:
        atomic_write_text(path, json.dumps(manifest, indent=1, sort_keys=True))


def run_sweep(function, grid: dict, out, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True) -> SweepResult:
    """Evaluate ``function(**cell)`` on every cell of ``grid``, saving each result as it finishes.

    Parameters
    ----------
    function : str or callable
        ``"module:function"`` or a module-level function; it takes the grid
        names as keyword arguments and returns JSON-able data (dicts, lists,
        numbers, numpy arrays) or a :class:`~sigprop.spec.LayerStats`.
    grid : dict
        ``{name: [values]}``; cells are the cartesian product.
    out : path
        Folder of the sweep. Finished cells found there are not recomputed.
    workers : int, optional
        Local worker processes (default: CPU count); ``1`` runs in this process.
    scheduler : str, optional
        Address of a dask.distributed scheduler (``tcp://host:8786``) or a
        ``dask.distributed.Client``; needs the ``dask`` extra.
    progress : bool
        Print a progress line to stderr.

    Returns
    -------
    SweepResult
    """
    fname = _function_name(function)
    _resolve(fname)  # fail early, in the user's process, with a clear message
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1 (or None: one per CPU), got {workers!r}")
    cells = grid_cells(grid)
    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    _check_manifest(out, grid, fname)

    results = [None] * len(cells)
    todo = []
    for i, params in enumerate(cells):
        d = _load_cell(_cell_path(out, params), params) if _cell_path(out, params).exists() else None
        if d is None:
            todo.append(i)
        else:
            results[i] = d["result"]
    bar = Progress(len(cells), "sweep", enabled=progress, start=len(cells) - len(todo))
    t0 = time.time()

    def finish(i, plain):
        atomic_write_text(_cell_path(out, cells[i]), dumps_json({"params": cells[i], "result": plain}))
        results[i] = plain
        bar.update()

    try:
        if not todo:
            pass
        elif scheduler is not None:
            _run_dask(fname, cells, todo, scheduler, finish)
        elif (workers or os.cpu_count() or 1) == 1 or len(todo) == 1:
            for i in todo:
                finish(i, _evaluate(fname, cells[i]))
        else:
            _run_pool(fname, cells, todo, workers or os.cpu_count() or 1, finish)
    except KeyboardInterrupt:
        bar.close()
        if progress:
            sys.stderr.write(f"\nsweep interrupted: {sum(r is not None for r in results)}/{len(cells)} cells are "
                             f"saved in {out}; run again to finish\n")
        raise
    bar.close()
    return SweepResult(grid=grid, function=fname, params=cells, results=[_from_plain(r) for r in results],
                       n_computed=bar.done - bar.start, seconds=time.time() - t0, out=str(out))


def _run_pool(fname, cells, todo, workers, finish):
    import concurrent.futures as cf
    import multiprocessing as mp
    # spawn: numba's threading layer and BLAS do not survive fork reliably
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_evaluate, fname, cells[i]): i for i in todo}
        try:
            for fut in cf.as_completed(futures):
                finish(futures[fut], fut.result())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


#: Seconds to wait for a dask scheduler to answer.
SCHEDULER_TIMEOUT = 10


def _connect(scheduler):
    """A ``dask.distributed.Client`` for an address (a one-line ValueError if it does not answer)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'sigprop[dask]'") from None
    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot reach the dask scheduler {scheduler!r}: {' '.join(str(exc).split())[:200]}") from None


def check_scheduler(scheduler) -> None:
    """Connect to a dask scheduler address once and disconnect: called before any work, so an
    unreachable scheduler is a one-line error, not a failure after the first part of a study."""
    client = _connect(scheduler)
    if client is not scheduler:
        client.close()


def _run_dask(fname, cells, todo, scheduler, finish):
    from dask.distributed import as_completed
    client = _connect(scheduler)
    own = client is not scheduler
    try:
        futures = [client.submit(_evaluate, fname, cells[i], key=f"sigprop-cell-{cell_id(cells[i])}", pure=False)
                   for i in todo]
        index = {f.key: i for f, i in zip(futures, todo)}
        for fut in as_completed(futures):
            finish(index[fut.key], fut.result())
    finally:
        if own:
            client.close()


def load_sweep(out) -> SweepResult:
    """Read a sweep folder (finished cells only; missing cells are None)."""
    out = Path(out)
    path = out / "sweep.json"
    if not path.exists():
        raise ValueError(f"{out} is not a sweep folder (no sweep.json)")
    m = json.loads(path.read_text())
    cells = grid_cells(m["grid"])
    results = []
    for params in cells:
        p = _cell_path(out, params)
        d = _load_cell(p, params) if p.exists() else None
        results.append(None if d is None else _from_plain(d["result"]))
    return SweepResult(grid=m["grid"], function=m["function"], params=cells, results=results, out=str(out))
