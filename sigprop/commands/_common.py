"""Arguments shared by several subcommands: how a network is described on the command line."""
from __future__ import annotations

import argparse


def add_network_arguments(p: argparse.ArgumentParser, depth=20, width=512, activation="tanh", init="kaiming"):
    g = p.add_argument_group("network")
    g.add_argument("--activation", default=activation, help=f"activation, e.g. tanh, relu, 'leaky_relu(a=0.2)' (default {activation})")
    g.add_argument("--depth", type=int, default=depth, help=f"number of hidden layers (default {depth})")
    g.add_argument("--width", type=int, default=width, help=f"width of every hidden layer (default {width})")
    g.add_argument("--input-dim", type=int, default=None, help="input dimension (default: width)")
    g.add_argument("--input-var", type=float, default=1.0, help="second moment of each input component (default 1)")
    g.add_argument("--sigma-b", type=float, default=0.0, help="bias std (default 0)")
    g.add_argument("--sigma-w", type=float, default=None,
                   help="mean-field weight scale std(W)*sqrt(fan_in); overrides --init")
    return g


def spec_from_args(args, init=None):
    """Build a NetSpec from the network arguments (``init`` overrides ``args.init``)."""
    from ..spec import NetSpec
    input_dim = args.width if args.input_dim is None else args.input_dim
    if args.sigma_w is not None:
        return NetSpec(input_dim=input_dim, widths=[args.width] * _depth(args.depth), activation=args.activation,
                       sigma_w=args.sigma_w, sigma_b=args.sigma_b, input_var=args.input_var, init="custom")
    return NetSpec.uniform(args.depth, args.width, activation=args.activation,
                           init=init if init is not None else args.init, input_dim=input_dim,
                           sigma_b=args.sigma_b, input_var=args.input_var)


def _depth(d):
    if d < 1:
        raise ValueError(f"depth must be >= 1, got {d}")
    return d
