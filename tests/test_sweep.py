"""Resumable sweeps: every finished cell is saved at once; a rerun computes only what is missing."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sigprop.sweep import grid_cells, load_sweep, run_sweep

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
FN = "_sweep_cells:logged_square"


def _calls(log):
    return [tuple(map(float, line.split(","))) for line in Path(log).read_text().split()] if Path(log).exists() else []


def test_grid_is_row_major_cartesian_product():
    cells = grid_cells({"a": [1, 2], "b": ["x", "y", "z"]})
    assert cells[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
    assert len(cells) == 6


def test_serial_sweep_results_in_grid_order_and_rerun_computes_nothing(tmp_path):
    log = tmp_path / "calls.txt"
    grid = {"x": [1.0, 2.0, 3.0], "y": [0.5], "log": [str(log)]}
    res = run_sweep(FN, grid, tmp_path / "s", workers=1, progress=False)
    assert res.column("value") == [1.5, 4.5, 9.5]
    assert res.n_computed == 3 and len(_calls(log)) == 3
    again = run_sweep(FN, grid, tmp_path / "s", workers=1, progress=False)
    assert again.n_computed == 0 and len(_calls(log)) == 3
    assert again.column("value") == res.column("value")


def test_kill_mid_sweep_then_resume_recomputes_no_finished_cell(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "calls.txt"
    grid = {"x": [float(i) for i in range(8)], "y": [1.0], "log": [str(log)], "delay": [0.3]}
    code = ("import sys; from sigprop.sweep import run_sweep; "
            f"run_sweep({FN!r}, {grid!r}, {str(out)!r}, workers=1, progress=False)")
    env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "cells").glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {json.loads(p.read_text())["params"]["x"] for p in (out / "cells").glob("*.json")}
    assert 3 <= len(finished) < 8, "the sweep should have been killed part-way"
    n_before = len(_calls(log))

    res = run_sweep(FN, grid, out, workers=1, progress=False)
    recomputed = {x for x, _ in _calls(log)[n_before:]}
    assert not (recomputed & finished), "a finished cell was computed again"
    assert recomputed | finished == set(grid["x"])
    assert res.n_computed == 8 - len(finished)
    # same numbers as a sweep that was never interrupted
    clean = run_sweep(FN, dict(grid, log=[str(tmp_path / "other.txt")]), tmp_path / "clean", workers=1, progress=False)
    assert res.column("value") == clean.column("value")
    assert load_sweep(out).column("value") == clean.column("value")


def test_process_pool_gives_the_serial_results(tmp_path):
    grid = {"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0]}
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = str(HERE) + os.pathsep + env_path  # spawned workers import the cell module
    try:
        res = run_sweep(FN, grid, tmp_path / "pool", workers=2, progress=False)
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert res.column("value") == [3.0, 6.0, 11.0, 18.0]
    assert len(set(res.column("pid"))) >= 1 and os.getpid() not in res.column("pid")


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = run_sweep(FN, {"x": [1.0, 2.0, 3.0], "y": [0.0]}, tmp_path / "dask", scheduler=client, progress=False)
    assert res.column("value") == [1.0, 4.0, 9.0]
    assert run_sweep(FN, {"x": [1.0, 2.0, 3.0], "y": [0.0]}, tmp_path / "dask", workers=1, progress=False).n_computed == 0


def test_bad_sweeps_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="module:function"):
        run_sweep("nofunction", {"x": [1]}, tmp_path / "a")
    with pytest.raises(ValueError, match="cannot import sweep function"):
        run_sweep("math:nothing_here", {"x": [1]}, tmp_path / "a")
    with pytest.raises(ValueError, match="is empty"):
        run_sweep(FN, {"x": []}, tmp_path / "a")
    with pytest.raises(ValueError, match="module-level function"):
        run_sweep(lambda x: x, {"x": [1]}, tmp_path / "a")
    run_sweep(FN, {"x": [1.0], "y": [1.0]}, tmp_path / "b", workers=1, progress=False)
    with pytest.raises(ValueError, match="holds a different sweep"):
        run_sweep("math:hypot", {"x": [1.0], "y": [1.0]}, tmp_path / "b", workers=1, progress=False)
