"""``sigprop study NAME``: run one source study into an output folder."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p):
    from ..studies import STUDIES, get_study
    sub = p.add_subparsers(dest="study", metavar="STUDY", required=True, parser_class=type(p))
    for name in STUDIES:
        mod = get_study(name)
        sp = sub.add_parser(name, help=mod.TITLE, description=f"{mod.TITLE}. Source: {mod.SOURCE}")
        sp.add_argument("--out", default=f"out/{name}", help=f"output folder (default out/{name})")
        sp.add_argument("--quick", action="store_true", help="the fast version used by `sigprop report`")
        sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        mod.add_arguments(sp)


def run(args) -> int:
    from ..studies import get_study
    mod = get_study(args.study)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "study", "out", "quick", "seed")}
    result = mod.run(out, quick=args.quick, seed=args.seed, **options)
    result.save(out)
    print(f"# {result.title}\n")
    print(result.summary)
    for t in result.tables:
        print()
        print(t.to_markdown())
    print(f"\nwrote {out}/ (result.json, result.md, {len(result.figures)} figures) in {result.seconds:.1f} s",
          file=sys.stderr)
    return 0
