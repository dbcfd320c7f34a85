"""Time the interactive page in headless Chromium: update time per control change, page size,
and the largest relative difference from :func:`sigprop.theory.predict` over random settings.

    python benchmarks/view_timing.py --settings 40 [--screenshot docs/view.png]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", type=int, default=40, help="random settings (7 control changes each; default 40)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--screenshot", default=None, help="save a screenshot of a preset to this PNG")
    args = p.parse_args(argv)
    from sigprop import theory
    from sigprop.view import write
    from sigprop.view.browser import Browser, apply_setting, random_settings, read_numbers, set_control, spec_of
    page = write(Path(tempfile.mkdtemp()) / "view.html")
    print(f"page: {page.stat().st_size / 1e6:.3f} MB")
    times, worst = [], (0.0, None)
    with Browser() as b:
        b.open(page.resolve().as_uri())
        t0 = time.time()
        for s in random_settings(args.settings, args.seed):
            times += apply_setting(b, s)
            shown = read_numbers(b)
            stats = theory.predict(spec_of(s), c0=s["c0"])
            for col in ("q", "act_var", "grad_var", "corr", "chi1", "saturated", "dead"):
                for (v, flagged), r in zip(shown[col], stats[col]):
                    if flagged or not abs(r) < float("inf") or abs(r) < 1e-12:
                        continue
                    d = abs(v - r) / abs(r)
                    if d > worst[0]:
                        worst = (d, (col, s))
        print(f"{len(times)} control changes in {time.time() - t0:.0f} s (with theory.predict for each setting)")
        print(f"update time per control change (recompute + redraw, in the page): median {statistics.median(times):.1f} ms,"
              f" 90% {sorted(times)[int(0.9 * len(times))]:.1f} ms, max {max(times):.1f} ms")
        print(f"max relative page-vs-theory difference: {worst[0]:.3g} ({worst[1]})")
        if args.screenshot:
            b.send("Emulation.setDeviceMetricsOverride", width=1400, height=860, deviceScaleFactor=1, mobile=False)
            b.evaluate("(() => { const p = document.getElementById('preset');"
                       " p.value = String([...p.options].findIndex(o => o.text.startsWith('tanh, Xavier')) - 1);"
                       " p.dispatchEvent(new Event('change')); })()")
            set_control(b, "hlayer", 30)
            b.screenshot(args.screenshot)
            print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
