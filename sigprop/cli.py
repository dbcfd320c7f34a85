"""The ``sigprop`` command.

Each subcommand lives in ``sigprop/commands/<name>.py`` and defines
``add_arguments(parser)`` and ``run(args) -> int``; its one-line help is in
``_HELP`` below. Modules are imported only when their command runs, so
``sigprop --help`` starts fast. Shared arguments (one vocabulary: ``--depth``,
``--width``, ``--dtype``, ``--seed``, ``--out DIR``, ``--save FILE``) come from
:mod:`sigprop.commands._common`. ``run`` raises ValueError for bad input (one line,
exit 2 here); a command that writes a folder calls
:func:`sigprop.runfolder.prepare` before its work, one that needs much memory
:func:`sigprop.memory.check_fits`, one that takes long shows
:class:`sigprop.progress.Progress`.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

#: Subcommands in the order ``--help`` lists them.
COMMANDS = ["derive", "theory", "simulate", "compare", "train", "sample", "study", "report", "view", "gpt",
            "coord-check"]

_HELP = {
    "gpt": "train or sample the GPT-2-style transformer (sigprop gpt train|sample)",
    "derive": "render the sympy derivations into derivations/*.md",
    "theory": "mean-field predictions per layer for a network",
    "simulate": "Monte Carlo measurement over an ensemble of random networks",
    "compare": "theory vs simulation: table, z-scores and overlay figure",
    "train": "train the character-level MLP with per-layer diagnostics",
    "sample": "sample names from a trained character MLP checkpoint",
    "study": "run one of the source studies (benchmarks/)",
    "report": "run every study quickly and write one HTML report",
    "view": "write the offline interactive signal-propagation page (one HTML file)",
    "coord-check": "muP coordinate check: activation size per layer vs width over the first steps (SP vs muP)",
}


def _module_name(command: str) -> str:
    """``coord-check`` lives in ``sigprop/commands/coord_check.py``."""
    return f"sigprop.commands.{command.replace('-', '_')}"


def _available():
    return [c for c in COMMANDS if importlib.util.find_spec(_module_name(c)) is not None]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, the argparse way, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(prog="sigprop", description="Predict and measure signal propagation in deep networks.")
    parser.add_argument("--version", action="version", version=f"sigprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _available():
        p = sub.add_parser(name, help=_HELP.get(name, ""), description=_HELP.get(name, ""))
        if name == command:  # only the chosen command's module is imported
            importlib.import_module(_module_name(name)).add_arguments(p)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "matplotlib" not in sys.modules:   # the command draws into files: a non-interactive backend
        os.environ["MPLBACKEND"] = "Agg"
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in _available() else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # --help, --version or a usage error (one line, already printed)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(_module_name(args.command))
    try:
        return int(module.run(args) or 0)
    except ValueError as exc:  # bad input found at a boundary: one line, no traceback
        print(f"sigprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:     # a folder that cannot be written, a full disk, an unreachable scheduler
        print(f"sigprop {args.command}: error: {_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sigprop {args.command}: interrupted; finished results are on disk", file=sys.stderr)
        return 130


def _os_error(exc: OSError) -> str:
    """``[Errno 17] File exists: 'x'`` as ``x: file exists`` (one line, the user's words)."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
