"""``sigprop gpt train|sample``: the GPT-2-style transformer on a text corpus.

``train`` writes to ``--out``: config.json, checkpoint.npz, diagnostics.json, summary.json and
samples.txt; prints the step-0 loss beside ln V, the final train/val losses beside the unigram
baseline, and a sample. A folder holding the same run continues it (from its checkpoint).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_dtype_argument, add_output_folder_argument, add_seed_argument, nonneg_int, positive_int


def _add_train(p):
    g = p.add_argument_group("model")
    g.add_argument("--depth", "--n-layer", dest="n_layer", type=positive_int, default=12, help="blocks (default 12)")
    g.add_argument("--heads", "--n-head", dest="n_head", type=positive_int, default=4, help="heads (default 4)")
    g.add_argument("--width", "--n-embd", dest="n_embd", type=positive_int, default=128,
                   help="residual width n_embd, a multiple of --heads (default 128)")
    g.add_argument("--block-size", type=positive_int, default=64, help="context length (default 64)")
    g.add_argument("--activation", default="gelu_tanh", help="MLP activation (default gelu_tanh)")
    g.add_argument("--init", default="gpt2",
                   help="gpt2 (N(0, 0.02)) or a sigprop scheme for the linear layers: xavier, kaiming, "
                        "'scaled(0.002)', ... (default gpt2)")
    g.add_argument("--no-residual-scale", action="store_true",
                   help="do not scale the residual projections by 1/sqrt(2 n_layer)")
    g.add_argument("--parametrization", choices=("sp", "mup"), default="sp",
                   help="width scaling of init, AdamW rates, attention scale and readout multiplier "
                        "(derivations/mup.md; default sp)")
    g.add_argument("--base-width", type=positive_int, default=None,
                   help="n_embd at which muP equals SP (default: this width)")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=positive_int, default=2000, help="AdamW steps (default 2000)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="sequences per batch (default 16)")
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    g.add_argument("--min-lr", type=float, default=1e-4, help="learning rate at the end of the cosine (default 1e-4)")
    g.add_argument("--warmup", type=nonneg_int, default=100, help="linear warmup steps (default 100)")
    g.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay of the matrices (default 0.1)")
    g.add_argument("--grad-clip", type=float, default=1.0, help="global gradient-norm clip, 0 for none (default 1)")
    add_seed_argument(g)
    add_dtype_argument(g, default="float32")
    g.add_argument("--data", default=None, help="UTF-8 text file (default: the shipped Shakespeare corpus)")
    g = p.add_argument_group("output")
    add_output_folder_argument(g, "the run", default="sigprop-gpt")
    g.add_argument("--eval-every", type=nonneg_int, default=100, help="train/val loss every N steps (default 100)")
    g.add_argument("--diag-every", type=nonneg_int, default=100, help="diagnostics every N steps (default 100)")
    g.add_argument("--checkpoint-every", type=nonneg_int, default=500, help="checkpoint every N steps (default 500)")
    g.add_argument("--sample-chars", type=nonneg_int, default=300, help="characters to sample at the end (default 300)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sample(p):
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz written by `sigprop gpt train`")
    p.add_argument("-n", type=nonneg_int, default=500, help="characters (default 500)")
    p.add_argument("--prompt", default="\n", help="text to continue (default a newline)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1)")
    add_seed_argument(p)


def add_arguments(p: argparse.ArgumentParser):
    sub = p.add_subparsers(dest="gpt_command", metavar="{train,sample}", parser_class=type(p))
    sub.required = True
    _add_train(sub.add_parser("train", help="train the GPT with per-layer diagnostics"))
    _add_sample(sub.add_parser("sample", help="sample text from a GPT checkpoint"))


def _train(args) -> int:
    from .. import runfolder
    from ..gpt.train import GPTTrainConfig, check_memory, load_checkpoint, sample, train
    config = GPTTrainConfig(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, block_size=args.block_size,
                            activation=args.activation, init=args.init, residual_scale=not args.no_residual_scale,
                            steps=args.steps, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
                            warmup=args.warmup, weight_decay=args.weight_decay, grad_clip=args.grad_clip,
                            seed=args.seed, eval_every=args.eval_every, diag_every=args.diag_every,
                            checkpoint_every=args.checkpoint_every, dtype=args.dtype, data=args.data,
                            parametrization=args.parametrization, base_width=args.base_width)
    from ..gpt.data import load_corpus
    corpus = load_corpus(config.data, config.block_size)        # bad data: one line, before any file
    check_memory(config, len(corpus.vocab))                       # too big: one line, before any file
    out = runfolder.prepare(args.out, config.to_dict(), overwrite=args.overwrite, write_config=False)
    ckpt = out / "checkpoint.npz"
    state = load_checkpoint(ckpt, corpus=corpus) if ckpt.is_file() else None
    if state is not None:
        print(f"sigprop gpt train: continuing {out} from step {state.step}")
    result = train(config, out=out, progress=not args.no_progress, corpus=corpus, state=state)
    text = sample(result.params, corpus, args.sample_chars, seed=config.seed) if args.sample_chars else ""
    from .._io import atomic_write_text
    atomic_write_text(out / "samples.txt", text + "\n")
    s = result.summary()
    print(f"sigprop gpt train: {config.n_layer} blocks x {config.n_embd} ({config.n_head} heads), "
          f"T {config.block_size}, init {config.init}, {config.dtype}, {s['n_params']:,} parameters")
    print(f"  data: {corpus.source}, {len(corpus.train):,} train / {len(corpus.val):,} val characters, "
          f"vocab {len(corpus.vocab)}")
    if s["initial_loss"] is not None:
        print(f"  step-0 loss {s['initial_loss']:.4f}   (ln {s['vocab_size']} = {s['ln_vocab']:.4f})")
    if s["final"]:
        print(f"  after {s['final']['step']} steps: train {s['final']['train']:.4f}, val {s['final']['val']:.4f}"
              f"   (unigram val {s['unigram_val_loss']:.4f})")
    print(f"  {s['ms_per_step']:.1f} ms/step ({s['seconds']:.1f} s)")
    if text:
        print("  sample: " + json.dumps(text[:160]))
    print(f"  wrote {out}/: config.json, checkpoint.npz, diagnostics.json, summary.json, samples.txt")
    return 0


def _sample(args) -> int:
    from ..gpt.train import load_checkpoint, sample
    state = load_checkpoint(Path(args.checkpoint))
    print(sample(state.params, state.corpus, args.n, prompt=args.prompt, seed=args.seed,
                 temperature=args.temperature))
    return 0


def run(args) -> int:
    return _train(args) if args.gpt_command == "train" else _sample(args)
