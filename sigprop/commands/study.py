"""``sigprop study NAME``: run one source study into an output folder."""
from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_output_folder_argument, add_seed_argument


def add_arguments(p):
    from ..studies import STUDIES, get_study
    sub = p.add_subparsers(dest="study", metavar="STUDY", required=True, parser_class=type(p))
    for name in STUDIES:
        mod = get_study(name)
        sp = sub.add_parser(name, help=mod.TITLE, description=f"{mod.TITLE}. Source: {mod.SOURCE}")
        add_output_folder_argument(sp, "figures, tables, result.json and config.json", default=f"out/{name}")
        sp.add_argument("--quick", action="store_true", help="the fast version used by `sigprop report`")
        add_seed_argument(sp)
        mod.add_arguments(sp)


def run(args) -> int:
    from ..studies import get_study
    mod = get_study(args.study)
    out = Path(args.out)   # the study checks its options, then prepares the folder (sigprop.runfolder)
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
