"""``sigprop view``: write the offline interactive signal-propagation page."""
from __future__ import annotations

import sys


def add_arguments(p):
    p.add_argument("--out", default="view.html", help="the HTML file to write (default view.html)")
    p.add_argument("--activation", nargs="+", default=None, metavar="NAME",
                   help="only these built-in activations (default: all)")
    p.add_argument("--no-presets", action="store_true", help="leave out the presets and their Monte Carlo samples")
    p.add_argument("--networks", type=int, default=64, help="Monte Carlo networks per preset (default 64)")
    p.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")


def run(args) -> int:
    from ..view import write
    from ..view.tables import ACTIVATIONS
    acts = tuple(args.activation) if args.activation else ACTIVATIONS
    if not str(args.out).endswith((".html", ".htm")):
        raise ValueError(f"--out must end in .html, got {args.out!r}")
    print("writing the page (tables, edge of chaos, Monte Carlo presets) ...", file=sys.stderr, flush=True)
    path = write(args.out, activations=acts, presets=not args.no_presets, networks=args.networks, seed=args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
