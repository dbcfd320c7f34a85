"""``sigprop sample``: sample names from a trained character-MLP checkpoint."""
from __future__ import annotations

import argparse

HELP = "sample names from a trained character MLP checkpoint"


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz written by `sigprop train`")
    p.add_argument("-n", type=int, default=10, help="how many names (default 10)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def run(args) -> int:
    from ..charmlp import Params, sample
    if args.n < 0:
        raise ValueError(f"-n must be >= 0, got {args.n}")
    params = Params.load(args.checkpoint)
    for name in sample(params, args.n, seed=args.seed):
        print(name)
    return 0
