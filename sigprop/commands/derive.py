"""``sigprop derive``: render the sympy derivations into markdown documents (``derivations/`` by default)."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p):
    p.add_argument("--out", default="derivations",
                   help="folder for the documents, relative to the current directory (default: derivations)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and name the files that differ from a fresh rendering")


def run(args) -> int:
    from ..symbolic.render import render_all, stale, write
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    docs = render_all()
    if args.check:
        bad = stale(out, docs)
        if bad:
            print(f"sigprop derive: stale in {out}/: {', '.join(bad)} (run `sigprop derive --out {out}`)",
                  file=sys.stderr)
            return 1
        print(f"{out}/: {len(docs)} documents up to date")
        return 0
    changed = write(out, docs)
    print(f"{out}/: wrote {len(changed)} of {len(docs)} documents"
          + (f" ({', '.join(changed)})" if changed else " (all up to date)"))
    return 0
