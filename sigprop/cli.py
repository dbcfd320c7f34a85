"""The ``sigprop`` command.

Each subcommand lives in ``sigprop/commands/<name>.py`` and defines ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only
when their command runs, so ``sigprop --help`` starts fast.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

#: Subcommands in the order ``--help`` lists them.
COMMANDS = ["derive", "theory", "simulate", "compare", "train", "sample", "study", "report", "view"]

_HELP = {
    "derive": "render the sympy derivations into derivations/*.md",
    "theory": "mean-field predictions per layer for a network",
    "simulate": "Monte Carlo measurement over an ensemble of random networks",
    "compare": "theory vs simulation: table, z-scores and overlay figure",
    "train": "train the character-level MLP with per-layer diagnostics",
    "sample": "sample names from a trained character MLP checkpoint",
    "study": "run one of the source studies (benchmarks/)",
    "report": "run every study quickly and write one HTML report",
    "view": "write the offline interactive signal-propagation page (one HTML file)",
}


def _available():
    return [c for c in COMMANDS if importlib.util.find_spec(f"sigprop.commands.{c}") is not None]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, the argparse way, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="sigprop", description="Predict and measure signal propagation in deep networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _available():
        p = sub.add_parser(name, help=_HELP.get(name, ""), description=_HELP.get(name, ""))
        if name == command:  # only the chosen command's module is imported
            importlib.import_module(f"sigprop.commands.{name}").add_arguments(p)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in _available() else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(f"sigprop.commands.{args.command}")
    try:
        return int(module.run(args) or 0)
    except ValueError as exc:  # bad input found at a boundary: one line, no traceback
        print(f"sigprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sigprop {args.command}: interrupted; finished results are on disk", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
