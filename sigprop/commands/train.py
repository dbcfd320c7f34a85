"""``sigprop train``: train the character MLP with per-layer diagnostics.

Writes to ``--out``: config.json, checkpoint.npz, diagnostics.{json,npz}, summary.json,
samples.txt and figures (PNG); prints the step-0 loss beside ln V, the final
train/dev losses and a few sampled names.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_dtype_argument, add_output_folder_argument, add_seed_argument, nonneg_int, positive_int


def _widths(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"width must be an integer or a comma-separated list, got {text!r}")
    return values[0] if len(values) == 1 else values


def add_arguments(p: argparse.ArgumentParser):
    from ..activations import DEFAULT_SATURATION_THRESHOLD
    g = p.add_argument_group("model")
    g.add_argument("--depth", dest="layers", type=positive_int, default=1, help="hidden layers (default 1)")
    g.add_argument("--layers", dest="layers", type=positive_int, help=argparse.SUPPRESS)   # the old spelling
    g.add_argument("--width", type=_widths, default=200, help="hidden width, or one per layer as 200,100 (default 200)")
    g.add_argument("--n-embd", type=positive_int, default=10, help="embedding size (default 10)")
    g.add_argument("--block-size", type=positive_int, default=3, help="context length (default 3)")
    g.add_argument("--activation", default="tanh", help="activation: tanh, relu, ... (default tanh)")
    g.add_argument("--init", default="kaiming",
                   help="init scheme: kaiming, standard_normal, xavier, 'scaled(0.2)', ... (default kaiming)")
    g.add_argument("--batch-norm", action="store_true", help="BatchNorm after every hidden linear layer")
    g.add_argument("--no-output-fix", action="store_true",
                   help="keep the scheme's output init (default: output weights 0.01 N(0,1), bias 0)")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=nonneg_int, default=200_000,
                   help="SGD steps; 0 trains nothing and records the step-0 diagnostics (default 200000)")
    g.add_argument("--batch-size", type=positive_int, default=32, help="minibatch size (default 32)")
    g.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    g.add_argument("--lr-decayed", type=float, default=0.01, help="learning rate after the decay step (default 0.01)")
    g.add_argument("--lr-decay-step", type=nonneg_int, default=None, help="first step at --lr-decayed (default steps/2)")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="SGD or AdamW (default sgd)")
    g.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled weight decay (default 0)")
    g.add_argument("--parametrization", choices=("sp", "mup"), default="sp",
                   help="width scaling of init and learning rates, derived in derivations/mup.md (default sp)")
    g.add_argument("--base-width", type=positive_int, default=None,
                   help="width at which muP equals SP (default: the model's widest hidden layer)")
    add_seed_argument(g, help="seed of init and minibatches")
    add_dtype_argument(g, "float32", old_flag="--float64", help="training precision")
    g.add_argument("--threshold", type=float, default=DEFAULT_SATURATION_THRESHOLD,
                   help=f"saturation threshold of the diagnostics (default {DEFAULT_SATURATION_THRESHOLD})")
    g.add_argument("--data", default=None, help="words file, one per line (default: the embedded names)")
    g = p.add_argument_group("output")
    add_output_folder_argument(g, "config.json, checkpoint, diagnostics and figures",
                               default=None)
    g.add_argument("--diag-every", type=nonneg_int, default=100,
                   help="layer diagnostics every N steps, 0: never (default 100)")
    g.add_argument("--checkpoint-every", type=nonneg_int, default=10_000,
                   help="checkpoint every N steps, 0: only at the end (default 10000)")
    g.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue the run of this checkpoint (its configuration is used; in its folder unless --out)")
    g.add_argument("--samples", type=nonneg_int, default=10, help="names to sample at the end (default 10)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-figures", action="store_true", help="skip the PNG figures")


#: The folder of a new run when --out is not given.
DEFAULT_OUT = "sigprop-train"
#: Flag (argparse dest) -> TrainConfig field it sets.
CONFIG_FLAGS = {"layers": "layers", "width": "width", "n_embd": "n_embd", "block_size": "block_size",
                "activation": "activation", "init": "init", "batch_norm": "batch_norm", "no_output_fix": "output_fix",
                "steps": "steps", "batch_size": "batch_size", "lr": "lr", "lr_decayed": "lr_decayed",
                "lr_decay_step": "lr_decay_step", "seed": "seed", "dtype": "dtype", "threshold": "threshold",
                "data": "data", "diag_every": "diag_every", "checkpoint_every": "checkpoint_every",
                "optimizer": "optimizer", "weight_decay": "weight_decay", "parametrization": "parametrization",
                "base_width": "base_width"}


def config_from_args(args):
    from ..charmlp import TrainConfig
    return TrainConfig(layers=args.layers, width=args.width, n_embd=args.n_embd, block_size=args.block_size,
                       activation=args.activation, init=args.init, batch_norm=args.batch_norm,
                       output_fix=not args.no_output_fix, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       lr_decay_step=args.lr_decay_step, lr_decayed=args.lr_decayed, seed=args.seed,
                       diag_every=args.diag_every, checkpoint_every=args.checkpoint_every, dtype=args.dtype,
                       threshold=args.threshold, optimizer=args.optimizer, weight_decay=args.weight_decay,
                       parametrization=args.parametrization, base_width=args.base_width,
                       data=None if args.data is None else str(Path(args.data).resolve()))


def _conflicts(args, config) -> list:
    """Flags given beside --resume that disagree with the checkpoint's configuration."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    defaults = vars(defaults.parse_args([]))
    given = {k for k in CONFIG_FLAGS if getattr(args, k) != defaults[k]}
    if not given:
        return []
    wanted = config_from_args(args).to_dict()
    have = config.to_dict()
    flag = {"layers": "depth", "no_output_fix": "no-output-fix"}
    return [f"--{flag.get(k, k).replace('_', '-')} ({CONFIG_FLAGS[k]} {wanted[CONFIG_FLAGS[k]]} vs {have[CONFIG_FLAGS[k]]})"
            for k in sorted(given) if wanted[CONFIG_FLAGS[k]] != have[CONFIG_FLAGS[k]]]


def write_figures(result, out: Path) -> list:
    """The PNG figures of a finished run; returns their paths."""
    from ..plots import training as P
    from ..symbolic.crossentropy import chance_loss
    diag = result.diagnostics
    figures = {"loss.png": lambda: P.plot_loss(diag, reference=float(chance_loss().numeric(len(result.data.vocab)))),
               "weight_histograms.png": lambda: P.plot_weight_histograms(result.params)}
    if diag.steps:
        figures["activation_histograms_step0.png"] = lambda: P.plot_activation_histograms(diag, diag.steps[0])
        figures["activation_histograms.png"] = lambda: P.plot_activation_histograms(diag)
        figures["layer_bars_step0.png"] = lambda: P.plot_layer_bars(diag.stats[0])
        figures["layer_bars.png"] = lambda: P.plot_layer_bars(diag.stats[-1])
        figures["training_curves.png"] = lambda: P.plot_training_curves(diag)
    paths = []
    for name, make in figures.items():
        fig = make()
        fig.savefig(out / name, dpi=110)
        paths.append(out / name)
    return paths


def run(args) -> int:
    from .._io import atomic_write_text
    from ..charmlp import load_checkpoint, sample, train
    from ..runfolder import prepare
    from ..symbolic.crossentropy import chance_loss
    resume_from = args.resume
    if resume_from is not None:
        config = load_checkpoint(resume_from)["config"]
        bad = _conflicts(args, config)
        if bad:
            raise ValueError(f"--resume continues the checkpoint's run, but {', '.join(bad)} differ from it; "
                             f"drop those flags, or start a new run")
        out = Path(args.out) if args.out else Path(resume_from).parent
    else:
        config = config_from_args(args)
        out = Path(args.out or DEFAULT_OUT)
    # the folder rule: another run's folder is refused (or replaced with --overwrite); the same
    # configuration continues from the checkpoint found there
    prepare(out, config.to_dict(), overwrite=args.overwrite, write_config=False)
    if resume_from is None and (out / "checkpoint.npz").is_file():
        resume_from = out / "checkpoint.npz"
    result = train(config, out=out, progress=not args.no_progress, resume_from=resume_from)
    names = sample(result.params, args.samples, seed=config.seed)
    atomic_write_text(out / "samples.txt", "".join(n + "\n" for n in names))
    figures = [] if args.no_figures else write_figures(result, out)
    V = len(result.data.vocab)
    ln_v = float(chance_loss().numeric(V))
    losses = result.losses
    print(f"sigprop train: {config.layers} x {config.widths[0] if len(set(config.widths)) == 1 else config.widths} "
          f"{config.activation}, init {config.init}{', batch norm' if config.batch_norm else ''}"
          f"{'' if config.output_fix else ', no output fix'}, {config.dtype}")
    print(f"  data: {len(result.data.words)} words, {result.data.arrays['train'][0].shape[0]} training examples")
    if len(losses):
        print(f"  step-0 loss {losses[0]:.4f}   (ln {V} = {ln_v:.4f})")
    print(f"  final loss: train {result.final_loss.get('train', float('nan')):.4f}, "
          f"dev {result.final_loss.get('dev', float('nan')):.4f}   after {len(losses)} steps")
    print(f"  {result.steps_per_second:,.0f} steps/s ({result.seconds:.1f} s)")
    if names:
        print("  samples: " + ", ".join(names))
    print(f"  wrote {out}/: config.json, checkpoint.npz, diagnostics.npz/.json, summary.json, samples.txt"
          + (f", {len(figures)} figures" if figures else ""))
    return 0
