"""A bad day: sizes that cannot fit, unwritable paths, mixed folders, damaged checkpoints,
0 given as a size, non-finite numbers in JSON, a shared temporary folder, a byte-order mark.

Each test runs a case of issue 14 that failed before (a kill, a traceback, a lost or mixed
folder, a silent default) and checks the one-line error or the exact result now."""
import json
import math
import os
import stat

import numpy as np
import pytest

from sigprop.cli import main

WORDS = ["anna", "bob", "clara", "dan", "eve", "abba", "cab", "bad", "dace", "bead"] * 3


def _strict(text):
    """json.loads that refuses NaN / Infinity (what strict JSON parsers do)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    return err


@pytest.fixture()
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


@pytest.fixture()
def tiny_run(tmp_path, words_file):
    """A finished 20-step training run (folder with checkpoint)."""
    out = tmp_path / "run"
    assert main(["train", "--steps", "20", "--width", "8", "--diag-every", "10", "--data", str(words_file),
                 "--out", str(out), "--no-progress", "--no-figures", "--samples", "0"]) == 0
    return out


# --- 1. sizes that cannot fit are refused before allocating ------------------------------------
@pytest.mark.parametrize("argv", [
    ["simulate", "--width", "1000000000", "--depth", "2", "--networks", "2", "--inputs", "2"],
    ["simulate", "--input-dim", "1000000000", "--width", "8", "--depth", "2", "--networks", "2", "--inputs", "2"],
    ["compare", "--input-dim", "1000000000", "--width", "8", "--depth", "2", "--networks", "2", "--inputs", "2"],
])
def test_simulations_that_cannot_fit_are_refused(tmp_path, argv, capsys):
    out = tmp_path / "never"
    assert main(argv + ["--no-progress"] + (["--out", str(out)] if argv[0] == "compare" else [])) == 2
    _one_line_error(capsys, "needs about", "of memory", "available")
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["coord-check", "--widths", "64", "100000000", "--no-progress"],
    ["study", "transformer-init", "--quick", "--width", "100000000"],
])
def test_new_commands_that_cannot_fit_are_refused_before_any_file(tmp_path, argv, capsys):
    out = tmp_path / "never"
    assert main(argv + ["--out", str(out)]) == 2
    _one_line_error(capsys, "needs about", "of memory", "available")
    assert not out.exists()


@pytest.mark.parametrize("flags", [["--width", "1000000000"], ["--batch-size", "100000000"]])
def test_training_that_cannot_fit_is_refused(tmp_path, words_file, flags, capsys):
    out = tmp_path / "never"
    assert main(["train", "--steps", "10", "--data", str(words_file), "--out", str(out), "--no-progress"] + flags) == 2
    _one_line_error(capsys, "needs about", "of memory")
    assert not (out / "checkpoint.npz").exists()


def test_sampling_that_cannot_fit_is_refused(tiny_run, capsys):
    assert main(["sample", "--checkpoint", str(tiny_run / "checkpoint.npz"), "-n", "100000000"]) == 2
    _one_line_error(capsys, "sampling 100000000 words needs about")


def test_check_fits_compares_with_the_available_memory():
    from sigprop.memory import check_fits, format_bytes
    check_fits(999, "x", available=1000)
    with pytest.raises(ValueError, match=r"x needs about 1 kB of memory, 999 B available"):
        check_fits(1000.5, "x", available=999)
    assert format_bytes(24e9) == "24 GB"


def test_memory_estimate_grows_with_the_sizes_that_allocate():
    from sigprop import NetSpec
    from sigprop.simulate import memory_estimate
    small = memory_estimate(NetSpec.uniform(depth=2, width=64), 4, 4)
    assert memory_estimate(NetSpec.uniform(depth=2, width=64, input_dim=10 ** 6), 4, 4) > 10 ** 6 * 64 * 8 > small


# --- 2. file-system and scheduler errors: one line, exit 2 -----------------------------------------
def test_unwritable_save_target_fails_before_the_work(capsys):
    assert main(["simulate", "--depth", "2", "--width", "8", "--networks", "2", "--inputs", "2",
                 "--save", "/proc/x.json", "--no-progress"]) == 2
    _one_line_error(capsys, "--save /proc/x.json: cannot write in /proc")


def test_out_naming_an_existing_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("mine")
    assert main(["compare", "--depth", "2", "--width", "8", "--networks", "2", "--inputs", "2",
                 "--init", "kaiming", "--out", str(f), "--no-progress"]) == 2
    _one_line_error(capsys, "exists and is not a folder")
    assert f.read_text() == "mine"


def test_os_errors_from_deep_inside_are_one_line(tmp_path, monkeypatch, capsys):
    from sigprop.commands import theory as cmd

    def fail(args):
        raise PermissionError(13, "Permission denied", "/somewhere/x.json")
    monkeypatch.setattr(cmd, "run", fail)
    assert main(["theory"]) == 2
    _one_line_error(capsys, "sigprop theory: error: /somewhere/x.json: permission denied")


def test_unreachable_scheduler_is_one_line_before_any_file(tmp_path, monkeypatch, capsys):
    pytest.importorskip("dask.distributed")
    from sigprop import sweep
    monkeypatch.setattr(sweep, "SCHEDULER_TIMEOUT", 1)
    out = tmp_path / "s"
    assert main(["study", "std-sweep", "--quick", "--scheduler", "tcp://127.0.0.1:1", "--out", str(out)]) == 2
    _one_line_error(capsys, "cannot reach the dask scheduler 'tcp://127.0.0.1:1'")
    assert not out.exists()


def test_report_with_a_bad_seed_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--only", "std-sweep", "--seed", "-1", "--out", str(out)]) == 2
    _one_line_error(capsys, "--seed: must be an integer >= 0, got -1")
    assert not out.exists()


# --- 3. output folders are never silently mixed or overwritten -------------------------------------
_COMPARE = ["compare", "--activation", "relu", "--depth", "2", "--width", "8", "--networks", "4", "--inputs", "4",
            "--no-progress"]


@pytest.mark.parametrize("bad", [["--init", "kaiming", "nope"], ["--quantities", "q", "nope"], ["--plot", "nope"],
                                 ["--networks", "1"]])
def test_compare_checks_every_argument_before_simulating(tmp_path, bad, capsys):
    out = tmp_path / "c"
    argv = _COMPARE + (["--init", "kaiming"] if bad[0] != "--init" else []) + bad + ["--out", str(out)]
    assert main(argv) == 2
    _one_line_error(capsys)
    assert not out.exists()


def test_a_folder_of_another_run_is_refused_and_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(_COMPARE + ["--init", "xavier_normal", "--out", str(out)]) == 0
    assert (out / "simulation_xavier_normal.json").is_file()
    capsys.readouterr()
    config = (out / "config.json").read_text()
    assert main(_COMPARE + ["--init", "kaiming", "--out", str(out)]) == 2
    _one_line_error(capsys, "holds another run", "init: ['xavier_normal'] -> ['kaiming']", "--overwrite")
    assert (out / "config.json").read_text() == config
    assert main(_COMPARE + ["--init", "kaiming", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "simulation_xavier_normal.json").exists()          # no stale file of the old run
    assert (out / "simulation_kaiming_normal.json").is_file()
    assert json.loads((out / "config.json").read_text())["init"] == ["kaiming"]
    # the same configuration again is the same run: allowed, same files
    assert main(_COMPARE + ["--init", "kaiming", "--out", str(out)]) == 0


def test_a_folder_that_is_not_a_run_is_never_touched(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert main(_COMPARE + ["--init", "kaiming", "--out", str(out)] + extra) == 2
        _one_line_error(capsys, "holds no config.json of a sigprop run")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_study_with_another_seed_in_an_old_folder_is_refused_before_writing(tmp_path, capsys):
    out = tmp_path / "pd"
    argv = ["study", "phase-diagram", "--quick", "--grid", "4", "--depth", "2", "--width", "8", "--networks", "2",
            "--out", str(out)]
    assert main(argv) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(argv + ["--seed", "1"]) == 2
    _one_line_error(capsys, "holds another run", "seed: 0 -> 1")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_runfolder_resumes_the_same_configuration(tmp_path):
    from sigprop.runfolder import prepare
    out = prepare(tmp_path / "r", {"a": 1, "x": math.nan, "argv": ["x"]})
    (out / "cell.json").write_text("{}")
    assert prepare(out, {"a": 1, "x": math.nan, "argv": ["y"]}) == out     # nan is null; argv is ignored
    assert (out / "cell.json").exists()
    _strict((out / "config.json").read_text())


# --- 4. checkpoints are checked against their parameters ---------------------------------------------
def _rewrite(path, **changes):
    from sigprop.charmlp import load_checkpoint
    from sigprop.charmlp.train import save_checkpoint
    ck = load_checkpoint(path)
    ck.update(changes)
    save_checkpoint(path, ck["config"], ck["data_digest"], ck["step"], ck["rng_state"], ck["params"],
                    ck["diagnostics"])


@pytest.mark.parametrize("change,message", [
    (lambda ck: {"config": ck["config"].replace(width=50)}, "header says widths [50] but the stored parameters have "
                                                           "widths [8]"),
    (lambda ck: {"step": ck["config"].steps + 5}, "step 25 is outside [0, 20]"),
    (lambda ck: {"step": -1}, "step -1 is outside"),
])
def test_checkpoint_header_must_agree_with_its_arrays(tiny_run, change, message, capsys):
    from sigprop.charmlp import load_checkpoint
    from sigprop.charmlp.train import save_checkpoint
    path = tiny_run / "checkpoint.npz"
    ck = load_checkpoint(path)
    ck.update(change(ck))
    save_checkpoint(path, ck["config"], ck["data_digest"], ck["step"], ck["rng_state"], ck["params"],
                    ck["diagnostics"])
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_checkpoint(path)
    assert main(["train", "--resume", str(path), "--no-progress"]) == 2
    _one_line_error(capsys, "cannot read checkpoint")


def test_checkpoint_with_nan_parameters_is_refused(tiny_run, capsys):
    from sigprop.charmlp import load_checkpoint
    from sigprop.charmlp.train import save_checkpoint
    path = tiny_run / "checkpoint.npz"
    ck = load_checkpoint(path)
    ck["params"].theta[3] = np.nan
    save_checkpoint(path, ck["config"], ck["data_digest"], ck["step"], ck["rng_state"], ck["params"],
                    ck["diagnostics"])
    with pytest.raises(ValueError, match="not all finite"):
        load_checkpoint(path)
    assert main(["sample", "--checkpoint", str(path)]) == 2
    _one_line_error(capsys, "not all finite")


def test_resume_refuses_conflicting_flags_and_continues_in_its_folder(tmp_path, words_file, monkeypatch, capsys):
    from sigprop.charmlp import TrainConfig, load_checkpoint, train
    run = tmp_path / "run"
    cfg = TrainConfig(steps=40, width=8, diag_every=10, checkpoint_every=10, data=str(words_file))
    train(cfg, out=run, progress=False, until=20)
    assert load_checkpoint(run / "checkpoint.npz")["step"] == 20
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(run / "checkpoint.npz"), "--width", "50", "--no-progress"]) == 2
    _one_line_error(capsys, "--width (width 50 vs 8) differ")
    assert main(["train", "--resume", str(run / "checkpoint.npz"), "--width", "8", "--no-progress",
                 "--no-figures", "--samples", "0"]) == 0                      # agreeing flags are fine
    assert load_checkpoint(run / "checkpoint.npz")["step"] == 40
    assert (run / "summary.json").is_file() and not (tmp_path / "sigprop-train").exists()


def test_same_configuration_in_the_same_folder_continues_its_checkpoint(tmp_path, words_file):
    from sigprop.charmlp import TrainConfig, load_checkpoint, train
    run = tmp_path / "run"
    cfg = TrainConfig(steps=40, width=8, diag_every=10, checkpoint_every=10, data=str(words_file), seed=0)
    full = train(cfg, progress=False)
    train(cfg, out=run, progress=False, until=20)
    argv = ["train", "--steps", "40", "--width", "8", "--diag-every", "10", "--checkpoint-every", "10",
            "--data", str(words_file), "--out", str(run), "--no-progress", "--no-figures", "--samples", "0"]
    assert main(argv) == 0
    ck = load_checkpoint(run / "checkpoint.npz")
    assert ck["step"] == 40 and np.array_equal(ck["params"].theta, full.params.theta)   # continued bitwise
    assert main(argv[:2] + ["30"] + argv[3:]) == 2                                    # another run: refused


def test_relative_data_path_is_stored_resolved(tmp_path, words_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--steps", "5", "--width", "8", "--data", "words.txt", "--out", "r", "--no-progress",
                 "--no-figures", "--samples", "0"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"] == str(words_file.resolve())


# --- 5. 0 means 0 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["study", "phase-diagram", "--grid", "0"], "--grid: must be an integer >= 4, got 0"),
    (["study", "std-sweep", "--steps", "0"], "--steps: must be an integer >= 1, got 0"),
    (["study", "std-sweep", "--workers", "0"], "--workers: must be an integer >= 1, got 0"),
    (["theory", "--width", "0"], "--width: must be an integer >= 1, got 0"),
    (["simulate", "--depth", "0"], "--depth: must be an integer >= 1, got 0"),
])
def test_zero_is_not_the_default(tmp_path, argv, message, capsys):
    assert main(argv + (["--out", str(tmp_path / "x")] if argv[0] == "study" else [])) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "x").exists()


def test_zero_sizes_in_the_python_api():
    from sigprop.studies._base import option
    from sigprop.sweep import run_sweep
    assert option("steps", None, 7) == 7 and option("steps", 3, 7) == 3
    with pytest.raises(ValueError, match="--steps must be an integer >= 1, got 0"):
        option("steps", 0, 7)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_sweep("colorsys:rgb_to_hsv", {"r": [1.0], "g": [0.5], "b": [0.0]}, "/nonexistent", workers=0)


# --- 6. strict JSON ------------------------------------------------------------------------------------
def test_theory_json_of_an_exploding_net_is_strict_and_keeps_what_was_inf(tmp_path, capsys):
    from sigprop import LayerStats
    argv = ["theory", "--activation", "relu", "--sigma-w", "40", "--depth", "400", "--width", "8"]
    assert main(argv + ["--json", "--save", str(tmp_path / "t.json")]) == 0
    d = _strict(capsys.readouterr().out)
    assert d["values"]["q"][-1] is None and "inf" in d["nonfinite"]["values"]["q"].values()
    s = LayerStats.load(tmp_path / "t.json")
    assert s.q[-1] == math.inf and s.equals(LayerStats.from_dict(d))
    _strict((tmp_path / "t.json").read_text())


def test_layerstats_json_round_trip_is_exact_for_inf_nan_and_minus_inf(tmp_path):
    from sigprop import LayerStats
    s = LayerStats({"q": [1.0, math.inf, math.nan], "act_mean": [-math.inf, 0.5, 1e-300]},
                   se={"q": [0.1, math.nan, math.inf]}, source="simulation", meta={"x": math.nan})
    s.save(tmp_path / "s.json")
    _strict((tmp_path / "s.json").read_text())
    back = LayerStats.load(tmp_path / "s.json")
    assert back.values.keys() == s.values.keys()
    for k in s.values:
        assert np.array_equal(back[k], s[k], equal_nan=True)
    assert np.array_equal(back.se["q"], s.se["q"], equal_nan=True) and back.meta == {"x": None}


def test_diagnostics_and_summary_of_a_diverged_run_are_strict_json(tmp_path, words_file):
    from sigprop.charmlp import Diagnostics, TrainConfig, train
    out = tmp_path / "d"
    cfg = TrainConfig(steps=30, width=8, diag_every=10, init="scaled(1000.0)", activation="relu", lr=10.0,
                      output_fix=False, data=str(words_file))
    train(cfg, out=out, progress=False)
    for name in ("diagnostics.json", "summary.json", "config.json"):
        _strict((out / name).read_text())
    d = Diagnostics.load(out / "diagnostics.json")
    assert not np.all(np.isfinite(d.losses))               # the case this test is about: it diverged
    assert d.equals(Diagnostics.load(out / "diagnostics.npz"))


def test_comparison_and_study_json_are_strict(tmp_path):
    from sigprop import NetSpec, theory
    from sigprop.compare import compare
    from sigprop.studies import StudyResult
    spec = NetSpec.uniform(depth=30, width=8, activation="relu", init="scaled(30.0)")
    t = theory.predict(spec)
    c = compare(t, t)
    _strict(c.to_json(tmp_path / "c.json"))
    StudyResult("x", "x", "x", "x", numbers={"a": math.nan, "b": [math.inf]}).save(tmp_path)
    assert _strict((tmp_path / "result.json").read_text())["numbers"] == {"a": None, "b": [None]}


# --- 7. the kernel cache fallback is private -------------------------------------------------------------
def test_fallback_kernel_cache_is_created_private_and_a_shared_one_refused(tmp_path, monkeypatch):
    from sigprop import _codegen
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, so the configured cache cannot be created")
    monkeypatch.setenv("SIGPROP_CACHE_DIR", str(blocked / "kernels"))
    monkeypatch.setattr(_codegen.tempfile, "gettempdir", lambda: str(tmp_path))
    path = _codegen._write_module("sigprop_test_module_a", "X = 1\n")
    folder = _codegen.fallback_dir()
    assert path.parent == folder and stat.S_IMODE(folder.stat().st_mode) == 0o700
    os.chmod(folder, 0o777)                                         # someone made it world-writable
    with pytest.raises(OSError, match="refusing the kernel cache"):
        _codegen._write_module("sigprop_test_module_b", "X = 2\n")


# --- 8. byte-order mark ---------------------------------------------------------------------------------
def test_byte_order_mark_is_not_a_vocabulary_character(tmp_path):
    from sigprop.charmlp import build_vocab, load_words
    f = tmp_path / "bom.txt"
    f.write_bytes("\ufeffanna\nbob\n".encode("utf-8"))
    words = load_words(f)
    assert words == ["anna", "bob"] and build_vocab(words) == ".abno"


# --- 10. plotting never changes the user's backend ---------------------------------------------------------
def test_plot_functions_leave_the_backend_and_pyplot_alone(words_file):
    import matplotlib
    import matplotlib.pyplot as plt
    from sigprop import LayerStats, NetSpec, theory
    from sigprop.charmlp import TrainConfig, train
    from sigprop.plots import bars, layers, phase, training
    previous = matplotlib.get_backend()
    plt.close("all")
    plt.switch_backend("pdf")                     # the user's choice: not Agg
    chosen = matplotlib.get_backend()
    t = theory.predict(NetSpec.uniform(depth=3, width=8))
    m = LayerStats(t.values, {k: 0.01 * abs(v) for k, v in t.values.items()}, spec=t.spec, source="simulation")
    res = train(TrainConfig(steps=30, width=8, layers=2, diag_every=10, data=str(words_file)), progress=False)
    d = res.diagnostics
    figures = [layers.plot_layers(t, m), bars.plot_bars_with_theory([m], [t], ["k"]),
               phase.plot_phase_diagram(theory.phase_diagram("tanh", [0.5, 1.0, 2.0, 3.0], [0.0, 0.5], depth=5)),
               training.plot_activation_histograms(d), training.plot_layer_bars(d.stats[-1]),
               training.plot_training_curves(d), training.plot_loss(d), training.plot_weight_histograms(res.params)]
    assert matplotlib.get_backend() == chosen and plt.get_fignums() == []      # nothing registered with pyplot
    assert all(isinstance(f, matplotlib.figure.Figure) and f.axes for f in figures)
    # single-panel plots draw on the caller's axes and return its figure
    fig = matplotlib.figure.Figure()
    ax = fig.add_subplot()
    assert training.plot_loss(d, ax=ax) is fig and ax.get_lines()
    assert training.plot_weight_histograms(res.params, ax=ax) is fig
    plt.switch_backend(previous)


# --- 12. python -m sigprop, --version, notebook views, numpydoc sections ----------------------------------
def test_python_dash_m_and_version(capsys):
    import subprocess
    import sys

    import sigprop
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sigprop {sigprop.__version__}"
    run = subprocess.run([sys.executable, "-m", "sigprop", "--version"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"sigprop {sigprop.__version__}"


def test_layerstats_and_comparison_render_as_html_tables():
    from sigprop import LayerStats, NetSpec, theory
    from sigprop.compare import compare
    t = theory.predict(NetSpec.uniform(depth=2, width=8, activation="relu"))
    m = LayerStats({"q": [2.01, 1.98]}, {"q": [0.02, 0.03]}, source="simulation")
    page = t._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 3 and "<th>q</th>" in page
    assert "2.01 ± 0.02" in m._repr_html_()
    c = compare(t, m)
    page = c._repr_html_()
    assert page.count("<tr>") == 3 and "agrees" in page and "<th>flag</th>" in page


def test_docstrings_use_the_numpydoc_section_name_examples():
    import pathlib
    import re

    import sigprop
    root = pathlib.Path(sigprop.__file__).parent
    bad = [str(p.relative_to(root)) for p in root.rglob("*.py")
           if re.search(r"^\s*Example\n\s*-------\n", p.read_text(), flags=re.M)]
    assert bad == []


# --- 13. one of each ---------------------------------------------------------------------------------------
class _Stream:
    def __init__(self, tty):
        import io
        self.buf, self.tty = io.StringIO(), tty

    def write(self, s):
        self.buf.write(s)

    def flush(self):
        pass

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [False, True])
def test_one_progress_bar_without_carriage_returns_in_logs(tty):
    from sigprop.progress import Progress
    s = _Stream(tty)
    bar = Progress(10, "work", delay=0, stream=s, log_every=0, start=2)
    for k in range(8):
        bar.update(1, note=f"loss {k}")
    bar.close()
    text = s.buf.getvalue()
    assert ("\r" in text) == tty and text.endswith("\n")
    assert text.rstrip("\n").splitlines()[-1].lstrip("\r").startswith("work: " + ("[" if tty else "10/10"))


def test_engine_trainer_and_sweeps_share_the_progress_bar():
    import importlib

    import sigprop.sweep as sweep
    from sigprop.progress import Progress
    trainer = importlib.import_module("sigprop.charmlp.train")    # the module, not the function
    engine = importlib.import_module("sigprop.simulate.engine")
    assert engine.Progress is Progress and trainer.Progress is Progress and sweep.Progress is Progress
    assert not hasattr(trainer, "_Progress") and not hasattr(sweep, "_Progress")


def test_training_progress_in_a_log_has_no_carriage_return(tmp_path, words_file, capfd):
    from sigprop.charmlp import TrainConfig, train
    from sigprop import progress
    orig = progress.Progress.__init__

    def fast(self, *a, **k):
        orig(self, *a, **dict(k, delay=0, log_every=0))
    try:
        progress.Progress.__init__ = fast
        train(TrainConfig(steps=30, width=8, diag_every=10, data=str(words_file)), progress=True)
    finally:
        progress.Progress.__init__ = orig
    err = capfd.readouterr().err
    assert "train: 30/30" in err and "\r" not in err


def test_activation_code_is_generated_in_one_place():
    import inspect

    import sigprop.simulate.engine as engine
    from sigprop import get_activation
    act = get_activation("tanh")
    assert engine.scalar_source(act, "f").startswith(act.numba_source_fused("f", decorator="@numba.njit(**JIT)"))
    assert "_FullPrecisionPrinter" not in inspect.getsource(engine)
    import sigprop.charmlp.model as model
    assert "hashlib" not in inspect.getsource(model) + inspect.getsource(engine)


def test_philox_rounds_are_written_once_and_give_the_known_block():
    from sigprop.simulate import kernels as K
    # Random123's known-answer test for philox4x32-10: counter and key all 0
    assert K.philox4x32(0, 0, 0, 0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    w = np.empty(2, dtype=np.uint64)
    K.philox_words(w, 7, 9, 3, 5, 11)
    o = K.philox4x32(11, 0, 5, 3, 7, 9)
    assert int(w[0]) == o[0] | (o[1] << 32) and int(w[1]) == o[2] | (o[3] << 32)


def test_training_saturation_threshold_is_configurable(words_file):
    from sigprop.activations import DEFAULT_SATURATION_THRESHOLD
    from sigprop.charmlp import TrainConfig, train
    assert TrainConfig().threshold == DEFAULT_SATURATION_THRESHOLD
    runs = {t: train(TrainConfig(steps=10, width=16, diag_every=5, threshold=t, data=str(words_file)),
                     progress=False).diagnostics for t in (0.5, 0.99)}
    assert runs[0.5].meta["threshold"] == 0.5 and runs[0.5].init_stats.meta["threshold"] == 0.5
    assert np.all(runs[0.5].stats[0]["saturated"] > runs[0.99].stats[0]["saturated"])
    with pytest.raises(ValueError, match="threshold must be in"):
        TrainConfig(threshold=1.0)


# --- 15. one CLI vocabulary --------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,flags", [
    (["theory"], ["--depth", "--width", "--save"]),
    (["simulate"], ["--depth", "--width", "--dtype", "--seed", "--save"]),
    (["compare"], ["--depth", "--width", "--dtype", "--seed", "--out DIR", "--overwrite"]),
    (["train"], ["--depth", "--width", "--dtype", "--seed", "--out DIR", "--overwrite"]),
    (["sample"], ["--seed"]),
    (["study", "std-sweep"], ["--depth", "--width", "--seed", "--out DIR", "--overwrite"]),
    (["study", "variance-depth"], ["--depth", "--width", "--seed", "--out DIR"]),
    (["report"], ["--seed", "--out DIR", "--overwrite"]),
])
def test_every_command_speaks_one_vocabulary(argv, flags, capsys):
    assert main(argv + ["--help"]) == 0
    text = capsys.readouterr().out
    for f in flags:
        assert f in text, (argv, f)
    for old in ("--float32", "--float64", "--layers"):      # old spellings work but are not advertised
        assert old not in text
    assert "(default 0)" in text or "--seed" not in text       # one seed default


def test_old_spellings_stay_as_hidden_aliases(tmp_path, words_file):
    from sigprop import LayerStats
    from sigprop.charmlp import TrainConfig
    assert main(["simulate", "--depth", "2", "--width", "8", "--networks", "2", "--inputs", "2", "--float32",
                 "--out", str(tmp_path / "s.json"), "--no-progress"]) == 0
    assert LayerStats.load(tmp_path / "s.json").meta["dtype"] == "float32"
    assert main(["train", "--layers", "2", "--width", "8", "--steps", "5", "--float64", "--data", str(words_file),
                 "--out", str(tmp_path / "t"), "--no-progress", "--no-figures", "--samples", "0"]) == 0
    cfg = TrainConfig.load(tmp_path / "t" / "config.json")
    assert cfg.layers == 2 and cfg.dtype == "float64"


def test_no_dead_help_constants():
    import importlib
    import pkgutil

    import sigprop.commands
    for m in pkgutil.iter_modules(sigprop.commands.__path__):
        assert not hasattr(importlib.import_module(f"sigprop.commands.{m.name}"), "HELP"), m.name
