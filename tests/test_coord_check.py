"""The coordinate check passes muP and fails SP (it has power), and its outputs are complete."""
import json
import math

import numpy as np
import pytest

from sigprop.cli import main
from sigprop.mup import SLOPE_TOLERANCE, CoordCheckConfig, coord_check, parabola_optimum

WIDTHS = (64, 128, 256, 512, 1024)


@pytest.fixture(scope="module")
def checks():
    return {p: coord_check(parametrization=p, optimizer="adam", widths=WIDTHS, seeds=(0, 1), progress=False)
            for p in ("mup", "sp")}


def test_mup_passes_the_coordinate_check(checks):
    cc = checks["mup"]
    v = cc.verdict()
    assert v["passed"], cc.summary()
    assert len(cc.slopes()) == len(cc.quantities) * cc.config.steps
    assert all(abs(s["slope"]) < SLOPE_TOLERANCE for s in cc.slopes())


def test_sp_with_adam_fails_it(checks):
    cc = checks["sp"]
    assert not cc.verdict()["passed"]
    sl = {(s["quantity"], s["t"]): s for s in cc.slopes()}
    # from t = 2 on, the hidden updates and the logits grow with width (derivations/mup.md: Delta W x ~ n
    # at a fixed Adam rate): slope above 0.3, and above the tolerance by more than 3 standard errors
    for t in range(2, cc.config.steps + 1):
        for q in ("dh2", "logits"):
            s = sl[(q, t)]
            assert s["slope"] > 0.3 and s["slope"] - SLOPE_TOLERANCE > 3 * s["se"], (q, t, s)


def test_values_and_outputs(checks, tmp_path):
    cc = checks["mup"]
    v = cc.values("x1", 1)
    assert v.shape == (2, len(WIDTHS)) and np.all(v > 0) and np.all(v < 1)   # tanh activations
    assert np.all(cc.values("dx1", 0) == 0.0)                                # no change at t = 0
    paths = cc.save(tmp_path)
    assert [p.name for p in paths] == ["coord_check_mup_adam.csv", "coord_check_mup_adam.json",
                                       "coord_check_mup_adam.png"]
    lines = paths[0].read_text().splitlines()
    assert lines[0] == "parametrization,optimizer,width,seed,t,quantity,mean_abs"
    assert len(lines) == 1 + len(WIDTHS) * 2 * (cc.config.steps + 1) * len(cc.quantities)
    d = json.loads(paths[1].read_text())
    assert d["verdict"]["passed"] is True and d["config"]["widths"] == list(WIDTHS)


def test_parabola_optimum():
    x = np.arange(-10, -2, dtype=float)
    y = 0.3 * (x + 6.4) ** 2 + 2.0
    y[0] = np.nan                     # a diverged run is skipped
    r = parabola_optimum(x, y)
    assert r["log2_lr"] == pytest.approx(-6.4) and r["loss"] == pytest.approx(2.0) and r["interior"]
    assert r["best_grid"] == -6.0
    # at the edge of the grid: the best grid point, flagged
    r = parabola_optimum(x, -x)
    assert r["log2_lr"] == -3.0 and not r["interior"]
    assert math.isnan(parabola_optimum(x, np.full(8, np.nan))["log2_lr"])


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["coord-check", "--widths", "64", "--out", str(tmp_path / "a")]) == 2
    assert "at least 2 different widths" in capsys.readouterr().err
    with pytest.raises(ValueError, match="parametrization"):
        CoordCheckConfig(parametrization="ntk")
    assert main(["coord-check", "--activation", "nope", "--widths", "8", "16", "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b").exists()


def test_cli_writes_both_parametrizations(tmp_path, capsys):
    out = tmp_path / "cc"
    assert main(["coord-check", "--widths", "32", "64", "--seeds", "2", "--steps", "2", "--depth", "2",
                 "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SP with Adam" in text and "muP with Adam" in text
    assert (out / "coord_check_sp_adam.csv").exists() and (out / "coord_check_mup_adam.png").exists()
