"""``sigprop report``: every study in its fast version, one self-contained HTML page."""
from __future__ import annotations

import sys
import time
import traceback

from ._common import add_output_folder_argument, add_seed_argument


def add_arguments(p):
    add_output_folder_argument(p, "the page (OUT/report.html) and one folder per study", default="report")
    add_seed_argument(p)
    p.add_argument("--only", nargs="+", default=None, metavar="STUDY", help="run only these studies")
    p.add_argument("--full", action="store_true", help="run the full studies instead of the quick versions (long)")


def run(args) -> int:
    from ..report import write_report
    from ..runfolder import prepare
    from ..studies import STUDIES, StudyResult, get_study
    names = args.only or list(STUDIES)
    for n in names:
        get_study(n)  # unknown names fail before any work
    out = prepare(args.out, {"command": "report", "studies": names, "seed": args.seed, "full": args.full},
                  overwrite=args.overwrite)
    results, failed = [], []
    t0 = time.time()
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        mod = get_study(name)
        try:
            res = mod.run(out / name, quick=not args.full, seed=args.seed)
            res.save(out / name)
        except Exception as exc:  # one failed study must not lose the others' results
            traceback.print_exc()
            failed.append(name)
            res = StudyResult(name=name, title=mod.TITLE, source=mod.SOURCE,
                              summary=f"This study failed: {type(exc).__name__}: {exc}")
        results.append(res)
        print(f"[{i}/{len(names)}] {name} done in {res.seconds:.1f} s", file=sys.stderr, flush=True)
    view = None
    try:                                      # the interactive page beside the report
        from ..view import write as write_view
        view = write_view(out / "view.html", seed=args.seed).name
    except Exception:                         # must not lose the studies' results
        traceback.print_exc()
        failed.append("view")
    page = write_report(results, out / "report.html", view=view, title="sigprop: signal propagation studies",
                        preface=("Theory (sympy derivations and mean-field predictions), Monte Carlo ensembles of "
                                 "random networks and a trained character-level MLP, side by side. Every number "
                                 "below can be reproduced from the config.json written beside it. "
                                 f"Total time {time.time() - t0:.0f} s."))
    print(f"wrote {page}")
    if failed:
        print(f"sigprop report: {len(failed)} stud{'y' if len(failed) == 1 else 'ies'} failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
