"""``sigprop sample``: sample names from a trained character-MLP checkpoint."""
from __future__ import annotations

import argparse

from ._common import add_seed_argument, nonneg_int


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz written by `sigprop train`")
    p.add_argument("-n", type=nonneg_int, default=10, help="how many names (default 10)")
    add_seed_argument(p, help="sampling seed")


def run(args) -> int:
    import numpy as np

    from ..charmlp import Params, sample
    params = Params.load(args.checkpoint)
    if not np.all(np.isfinite(params.theta)):
        raise ValueError(f"{args.checkpoint}: the parameters are not all finite (nan/inf: the run diverged)")
    for name in sample(params, args.n, seed=args.seed):
        print(name)
    return 0
