"""The mup-transfer study: its sweep resumes after a kill without recomputing finished cells."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from sigprop.studies import get_study

ARGS = dict(quick=True, widths=[16, 32], steps=200, seeds=1)


def test_transfer_sweep_resumes_after_a_kill(tmp_path):
    out = tmp_path / "mt"
    cells = out / "sweep" / "cells"
    cmd = [sys.executable, "-m", "sigprop.cli", "study", "mup-transfer", "--quick", "--widths", "16", "32",
           "--steps", "200", "--seeds", "1", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if cells.is_dir() and len(list(cells.glob("*.json"))) >= 3:
                break
            time.sleep(0.02)
    finally:
        proc.kill()                         # SIGKILL: no chance to clean up
        proc.wait()
    done = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cells.glob("*.json")}
    total = 2 * 2 * 9                       # parametrizations x widths x quick learning rates x 1 seed
    assert 3 <= len(done) < total, "the run was not killed part-way"
    res = get_study("mup-transfer").run(out, **ARGS)
    assert res.numbers["cells_computed"] == total - len(done)
    for name, (mtime, data) in done.items():       # finished cells were read, not rewritten
        p = cells / name
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == data
    assert len(list(cells.glob("*.json"))) == total
    # and a third run computes nothing
    again = get_study("mup-transfer").run(out, **ARGS)
    assert again.numbers["cells_computed"] == 0
    assert again.numbers["optimum_log2_lr"] == res.numbers["optimum_log2_lr"]
    r = json.loads((cells / sorted(done)[0]).read_text())
    assert set(r["result"]) == {"loss", "seconds"} and np.isfinite(r["result"]["loss"])


def test_bad_options_are_one_line_errors(tmp_path):
    mod = get_study("mup-transfer")
    with pytest.raises(ValueError, match="at least 2 different widths"):
        mod.run(tmp_path / "a", widths=[64, 64])
    with pytest.raises(ValueError, match="--steps"):
        mod.run(tmp_path / "b", steps=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
