"""``sigprop train``: train the character MLP with per-layer diagnostics.

Writes to ``--out``: config.json, checkpoint.npz, diagnostics.{json,npz}, summary.json,
samples.txt and figures (PNG); prints the step-0 loss beside ln V, the final
train/dev losses and a few sampled names.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train the character-level MLP with per-layer diagnostics"


def _widths(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"width must be an integer or a comma-separated list, got {text!r}")
    return values[0] if len(values) == 1 else values


def add_arguments(p: argparse.ArgumentParser):
    g = p.add_argument_group("model")
    g.add_argument("--layers", type=int, default=1, help="hidden layers (default 1)")
    g.add_argument("--width", type=_widths, default=200, help="hidden width, or one per layer as 200,100 (default 200)")
    g.add_argument("--n-embd", type=int, default=10, help="embedding size (default 10)")
    g.add_argument("--block-size", type=int, default=3, help="context length (default 3)")
    g.add_argument("--activation", default="tanh", help="activation: tanh, relu, ... (default tanh)")
    g.add_argument("--init", default="kaiming",
                   help="init scheme: kaiming, standard_normal, xavier, 'scaled(0.2)', ... (default kaiming)")
    g.add_argument("--batch-norm", action="store_true", help="BatchNorm after every hidden linear layer")
    g.add_argument("--no-output-fix", action="store_true",
                   help="keep the scheme's output init (default: output weights 0.01 N(0,1), bias 0)")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=200_000, help="SGD steps (default 200000)")
    g.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32)")
    g.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    g.add_argument("--lr-decayed", type=float, default=0.01, help="learning rate after the decay step (default 0.01)")
    g.add_argument("--lr-decay-step", type=int, default=None, help="first step at --lr-decayed (default steps/2)")
    g.add_argument("--seed", type=int, default=42, help="seed of init and minibatches (default 42)")
    g.add_argument("--float64", action="store_true", help="train in float64 (default float32)")
    g.add_argument("--data", default=None, help="words file, one per line (default: the embedded names)")
    g = p.add_argument_group("output")
    g.add_argument("--out", default="sigprop-train", help="output folder (default ./sigprop-train)")
    g.add_argument("--diag-every", type=int, default=100, help="layer diagnostics every N steps (default 100)")
    g.add_argument("--checkpoint-every", type=int, default=10_000, help="checkpoint every N steps (default 10000)")
    g.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue the run of this checkpoint (its configuration is used)")
    g.add_argument("--samples", type=int, default=10, help="names to sample at the end (default 10)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-figures", action="store_true", help="skip the PNG figures")


def config_from_args(args):
    from ..charmlp import TrainConfig
    return TrainConfig(layers=args.layers, width=args.width, n_embd=args.n_embd, block_size=args.block_size,
                       activation=args.activation, init=args.init, batch_norm=args.batch_norm,
                       output_fix=not args.no_output_fix, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       lr_decay_step=args.lr_decay_step, lr_decayed=args.lr_decayed, seed=args.seed,
                       diag_every=args.diag_every, checkpoint_every=args.checkpoint_every,
                       dtype="float64" if args.float64 else "float32", data=args.data)


def write_figures(result, out: Path) -> list:
    """The PNG figures of a finished run; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
        plt.close(fig)
        paths.append(out / name)
    return paths


def run(args) -> int:
    from .._io import atomic_write_text
    from ..charmlp import load_checkpoint, resume, sample, train
    from ..symbolic.crossentropy import chance_loss
    out = Path(args.out)
    if args.samples < 0:
        raise ValueError(f"--samples must be >= 0, got {args.samples}")
    if args.resume is not None:
        config = load_checkpoint(args.resume)["config"]
        result = resume(args.resume, out=out, progress=not args.no_progress)
    else:
        config = config_from_args(args)
        result = train(config, out=out, progress=not args.no_progress)
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
