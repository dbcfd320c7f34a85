"""Arguments shared by several subcommands: one vocabulary for every command.

``--depth`` / ``--width`` / ``--dtype`` / ``--seed`` (default 0) / ``--out DIR`` (a folder,
with ``--overwrite``) / ``--save FILE`` (a single result); integers that must be positive
or non-negative are checked by argparse, so ``--steps 0`` is an error, never the default.
A new subcommand takes its arguments from here and, before any work, calls
:func:`sigprop.runfolder.prepare` for an ``--out`` folder or
:func:`sigprop.runfolder.check_file_target` for ``--save``.
"""
from __future__ import annotations

import argparse

#: The seed every command starts from unless told otherwise.
DEFAULT_SEED = 0


def int_at_least(lo: int):
    """An argparse type: an integer >= ``lo`` (``--steps 0`` is refused, not read as "default")."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {value}")
        return value
    parse.__name__ = f"integer >= {lo}"
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def add_seed_argument(p, help="random seed: the same seed gives the same numbers"):
    p.add_argument("--seed", type=nonneg_int, default=DEFAULT_SEED, help=f"{help} (default {DEFAULT_SEED})")


def add_dtype_argument(p, default="float64", old_flag=None, help="floating-point precision"):
    """``--dtype {float32,float64}``; ``old_flag`` (e.g. ``--float32``) stays as a hidden alias."""
    p.add_argument("--dtype", choices=("float32", "float64"), default=default, help=f"{help} (default {default})")
    if old_flag:
        p.add_argument(old_flag, dest="dtype", action="store_const", const=old_flag.lstrip("-"),
                       help=argparse.SUPPRESS)


def add_output_folder_argument(p, what: str, default=None):
    """``--out DIR`` and ``--overwrite`` (the output-folder rule of :mod:`sigprop.runfolder`)."""
    shown = f"default {default}" if default else "default: none"
    p.add_argument("--out", default=default, metavar="DIR", help=f"output folder for {what} ({shown})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a folder that holds another run (default: refuse; the same run is resumed)")


def add_save_argument(p, what="the LayerStats"):
    """``--save FILE`` for a single result; ``--out FILE`` stays as a hidden alias."""
    p.add_argument("--save", default=None, metavar="FILE", help=f"also save {what} to FILE (.json or .npz)")
    p.add_argument("--out", dest="save", default=None, help=argparse.SUPPRESS)


def add_network_arguments(p: argparse.ArgumentParser, depth=20, width=512, activation="tanh", init="kaiming"):
    g = p.add_argument_group("network")
    g.add_argument("--activation", default=activation, help=f"activation, e.g. tanh, relu, 'leaky_relu(a=0.2)' (default {activation})")
    g.add_argument("--depth", type=positive_int, default=depth, help=f"number of hidden layers (default {depth})")
    g.add_argument("--width", type=positive_int, default=width, help=f"width of every hidden layer (default {width})")
    g.add_argument("--input-dim", type=positive_int, default=None, help="input dimension (default: width)")
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
