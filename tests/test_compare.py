"""compare(): z-scores, flags, thresholds and outputs; plot_layers; the simulate/compare CLI."""
import csv
import io
import json
import math

import numpy as np
import pytest

from sigprop import LayerStats, NetSpec
from sigprop.cli import main
from sigprop.compare import bonferroni_threshold, compare
from sigprop.plots.layers import plot_layers


def _pair():
    t = LayerStats({"q": [1.0, 1.0, 1.0, np.inf], "dead": [0.0, 0.0, 0.5, 0.5], "corr": [0.5, 0.6, 0.7, 0.8]},
                   source="theory")
    m = LayerStats({"q": [1.01, 0.9, 1.0, 2.0], "dead": [0.0, 0.1, 0.5, 0.5], "corr": [0.5, 0.6, 0.7, 0.8]},
                   se={"q": [0.01, 0.01, np.nan, 0.1], "dead": [0.0, 0.0, 0.01, 0.01]}, source="simulation")
    return t, m


def test_z_scores_and_flags():
    t, m = _pair()
    c = compare(t, m, z_threshold=3.0)
    rows = {(r["quantity"], r["layer"]): r for r in c.rows}
    assert rows["q", 1]["z"] == pytest.approx(1.0) and rows["q", 1]["flag"] == "ok"
    assert rows["q", 2]["z"] == pytest.approx(-10.0) and rows["q", 2]["flag"] == "breaks"
    assert rows["q", 3]["flag"] == "no-se" and math.isnan(rows["q", 3]["z"])
    assert rows["q", 4]["flag"] == "nonfinite"
    assert rows["dead", 1]["flag"] == "exact" and rows["dead", 1]["z"] == 0
    assert rows["dead", 2]["flag"] == "se=0" and rows["dead", 2]["z"] == math.inf
    assert all(r["flag"] == "no-se" for r in c.rows if r["quantity"] == "corr")   # measured without se
    assert c.n_comparisons == 6 and c.max_abs_z == math.inf and not c.agrees
    assert {(q, l) for q, l, _ in c.breakdowns()} == {("q", 2), ("dead", 2)}


def test_default_threshold_is_bonferroni_for_the_counted_comparisons():
    t, m = _pair()
    c = compare(t, m)
    assert c.z_threshold == pytest.approx(bonferroni_threshold(6, 0.01)) and c.alpha == 0.01
    assert bonferroni_threshold(1, 0.05) == pytest.approx(1.959964, rel=1e-6)


def test_combined_standard_errors_of_two_measurements():
    a = LayerStats({"q": [1.0]}, se={"q": [0.3]}, source="simulation")
    b = LayerStats({"q": [2.0]}, se={"q": [0.4]}, source="training")
    assert compare(a, b).rows[0]["z"] == pytest.approx(2.0)


def test_outputs_round_trip(tmp_path):
    t, m = _pair()
    c = compare(t, m, quantities=["q", "dead"])
    c.to_csv(tmp_path / "t.csv")
    c.to_json(tmp_path / "t.json")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text())))
    assert len(rows) == 8 and float(rows[1]["z"]) == pytest.approx(-10.0)
    d = json.loads((tmp_path / "t.json").read_text())
    assert d["summary"]["n_comparisons"] == c.n_comparisons and len(d["rows"]) == 8
    text = c.format()
    assert "theory breaks down at: q layers 2; dead layers 2" in text and "nonfinite" in text


@pytest.mark.parametrize("kwargs, message", [
    (dict(quantities=["chi1"]), "no quantity 'chi1'"),
    (dict(z_threshold=-1), "z_threshold must be a positive number"),
])
def test_bad_input(kwargs, message):
    t, m = _pair()
    with pytest.raises(ValueError, match=message):
        compare(t, m, **kwargs)
    with pytest.raises(ValueError, match="cannot compare 4 layers with 1"):
        compare(t, LayerStats({"q": [1.0]}, source="simulation"))


def test_plot_layers_draws_theory_lines_and_measured_points():
    spec_a = NetSpec.uniform(depth=3, width=8, activation="tanh", init="kaiming")
    spec_b = NetSpec.uniform(depth=3, width=8, activation="tanh", init="xavier")
    stats = [LayerStats({"act_var": [1.0, 0.5, 0.2], "grad_var": [1, 2, np.inf]}, spec=s, source="theory")
             for s in (spec_a, spec_b)]
    stats.append(LayerStats({"act_var": [1.1, 0.5, 0.2]}, se={"act_var": [0.1, 0.1, 0.1]}, spec=spec_a,
                            source="simulation"))
    fig = plot_layers(*stats)
    ax_var, ax_grad = fig.axes
    assert ax_var.get_yscale() == "log"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]   # one colour per init, then the line/point key
    assert labels == ["kaiming_normal", "xavier_normal", "theory", "measured (+-1 SE)"]
    assert len(ax_var.lines) >= 2 and ax_var.containers     # lines + an errorbar container
    # theory and simulation of the same init share a colour
    assert ax_var.lines[0].get_color() == ax_var.containers[0].lines[0].get_color()
    with pytest.raises(ValueError):
        plot_layers(*stats, quantities=["nope"])


def test_cli_simulate_and_compare(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["simulate", "--activation", "relu", "--depth", "3", "--width", "16", "--networks", "8",
                 "--inputs", "4", "--out", str(out), "--no-progress"]) == 0
    s = LayerStats.load(out)
    assert s.source == "simulation" and s.meta["n_networks"] == 8 and s.depth == 3
    assert main(["simulate", "--networks", "1", "--no-progress"]) == 2
    assert "--networks: must be an integer >= 2, got 1" in capsys.readouterr().err
    folder = tmp_path / "cmp"
    assert main(["compare", "--activation", "tanh", "--init", "kaiming", "xavier", "--depth", "3", "--width", "32",
                 "--networks", "20", "--inputs", "8", "--out", str(folder), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "comparisons, max |z|" in printed
    names = {p.name for p in folder.iterdir()}
    assert {"figure.png", "figure.svg", "table.csv", "table.json", "config.json", "theory_kaiming_normal.json",
            "simulation_xavier_normal.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["init"] == ["kaiming", "xavier"] and config["networks"] == 20
    table = list(csv.DictReader(io.StringIO((folder / "table.csv").read_text())))
    assert {r["init"] for r in table} == {"kaiming_normal", "xavier_normal"}
