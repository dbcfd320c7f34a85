"""`sigprop train` / `sigprop sample` and the training figures."""
import json

import numpy as np
import pytest

from sigprop.cli import main
from sigprop.charmlp import Diagnostics, Params, TrainConfig

WORDS = ["anna", "bob", "clara", "dan", "eve", "abba", "cab", "bad", "dace", "bead"] * 3


@pytest.fixture()
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


def test_train_command_writes_results_and_prints_a_summary(tmp_path, words_file, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--steps", "300", "--width", "16", "--layers", "2", "--diag-every", "100",
               "--checkpoint-every", "100", "--data", str(words_file), "--out", str(out), "--no-progress",
               "--samples", "4"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "step-0 loss" in text and "ln 11 = 2.3979" in text and "final loss: train" in text
    for name in ("config.json", "checkpoint.npz", "diagnostics.npz", "diagnostics.json", "summary.json",
                 "samples.txt", "loss.png", "training_curves.png", "activation_histograms.png",
                 "layer_bars.png", "weight_histograms.png"):
        assert (out / name).is_file(), name
    cfg = TrainConfig.load(out / "config.json")
    assert cfg.layers == 2 and cfg.widths == (16, 16) and cfg.data == str(words_file)
    assert Diagnostics.load(out / "diagnostics.npz").equals(Diagnostics.load(out / "diagnostics.json"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["final_loss"]["train"] < summary["initial_loss"]
    assert len((out / "samples.txt").read_text().split()) <= 4

    rc = main(["sample", "--checkpoint", str(out / "checkpoint.npz"), "-n", "3", "--seed", "1"])
    assert rc == 0
    names = capsys.readouterr().out.split("\n")[:3]
    assert all(set(n) <= set("abcdelnovr") for n in names)


def test_train_command_resumes(tmp_path, words_file, capsys):
    out = tmp_path / "run"
    args = ["train", "--steps", "200", "--width", "8", "--diag-every", "50", "--data", str(words_file),
            "--out", str(out), "--no-progress", "--no-figures", "--samples", "0"]
    assert main(args) == 0
    theta = Params.load(out / "checkpoint.npz").theta.copy()
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--out", str(tmp_path / "again"),
                 "--no-progress", "--no-figures", "--samples", "0"]) == 0
    # resuming a finished run changes nothing
    assert np.array_equal(Params.load(tmp_path / "again" / "checkpoint.npz").theta, theta)


@pytest.mark.parametrize("argv,message", [
    (["train", "--data", "/nonexistent/words.txt", "--steps", "10"], "no such data file"),
    (["train", "--layers", "0"], "--layers: must be an integer >= 1, got 0"),
    (["train", "--activation", "nope"], "unknown activation"),
    (["sample", "--checkpoint", "/nonexistent.npz"], "no such file"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, argv, message, capsys):
    rc = main(argv + (["--out", str(tmp_path / "x")] if argv[0] == "train" else []))
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_figures_are_functions_of_results():
    from sigprop.charmlp import train
    from sigprop.plots import training as P
    result = train(TrainConfig(steps=60, width=8, layers=3, diag_every=20), words=WORDS, progress=False)
    d = result.diagnostics
    for fig in (P.plot_activation_histograms(d, 0), P.plot_layer_bars(d.stats[-1]), P.plot_training_curves(d),
                P.plot_loss(d, reference=1.9), P.plot_weight_histograms(result.params)):
        assert fig.axes
    assert len(P.plot_training_curves(d).axes[2].get_lines()) == 6   # C, W1..W3, W_out and the 1e-3 line
    with pytest.raises(ValueError, match="no diagnostics at step"):
        P.plot_activation_histograms(d, 7)
