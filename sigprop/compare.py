"""Theory vs measurement, layer by layer: a table of z-scores and where the theory breaks down.

For each quantity and layer::

    z = (measured - theory) / se,     se = sqrt(se_measured^2 + se_theory^2)

(theory usually has no standard error). ``|z|`` above the threshold marks "the theory
breaks down here" (or the measurement is wrong: a deliberately wrong theory must show
up). The default threshold is the Bonferroni one for the number of comparisons made at
family-wise error ``alpha``: ``z* = Phi^{-1}(1 - alpha / (2 m))``, so that an agreeing
theory is flagged anywhere with probability at most ``alpha``.

Cases without a usable standard error are flagged, not hidden:

==============  =======================================================================
``ok``          ``|z| <= z*``
``breaks``      ``|z| > z*``
``exact``       se = 0 and measured == theory (e.g. dead = 0 for tanh): z = 0
``se=0``        se = 0 but the values differ: z = +-inf, counted as a breakdown
``no-se``       se is NaN or absent: z is NaN, not counted
``nonfinite``   theory or measurement is inf/nan (exploding or vanishing regime): not counted
==============  =======================================================================

Examples
--------
>>> from sigprop import LayerStats
>>> t = LayerStats({"q": [1.0, 1.0]}, source="theory")
>>> m = LayerStats({"q": [1.02, 1.5]}, se={"q": [0.01, 0.01]}, source="simulation")
>>> c = compare(t, m)
>>> [round(r["z"], 1) for r in c.rows], c.breakdowns()[0][:2]
([2.0, 50.0], ('q', 2))
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from ._io import atomic_write_text, dumps_json

FLAGS = ("ok", "breaks", "exact", "se=0", "no-se", "nonfinite")
COUNTED = ("ok", "breaks", "exact", "se=0")


def bonferroni_threshold(n_comparisons: int, alpha: float = 0.01) -> float:
    """Two-sided z threshold with family-wise error ``alpha`` over ``n_comparisons`` tests.

    >>> round(bonferroni_threshold(1, 0.05), 3), round(bonferroni_threshold(100, 0.01), 2)
    (1.96, 3.89)
    """
    from scipy.stats import norm
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(norm.isf(alpha / (2 * max(int(n_comparisons), 1))))


@dataclass
class Comparison:
    """Per-layer, per-quantity comparison table (``rows``) and its summary.

    Each row is a dict: ``quantity, layer, theory, measured, se, z, flag``.
    """

    rows: list
    z_threshold: float
    alpha: float | None
    sources: tuple = ("theory", "simulation")
    meta: dict = field(default_factory=dict)

    # --- summary ---------------------------------------------------------------------------
    @property
    def n_comparisons(self) -> int:
        """Comparisons with a usable standard error (what the threshold is corrected for)."""
        return sum(r["flag"] in COUNTED for r in self.rows)

    @property
    def max_abs_z(self) -> float:
        zs = [abs(r["z"]) for r in self.rows if r["flag"] in COUNTED]
        return max(zs) if zs else math.nan

    def breakdowns(self) -> list:
        """``(quantity, layer, z)`` where ``|z|`` exceeds the threshold: the theory breaks down here."""
        return [(r["quantity"], r["layer"], r["z"]) for r in self.rows if r["flag"] in ("breaks", "se=0")]

    def flagged(self) -> list:
        """``(quantity, layer, flag)`` of rows without a usable z (no se, non-finite values)."""
        return [(r["quantity"], r["layer"], r["flag"]) for r in self.rows if r["flag"] in ("no-se", "nonfinite")]

    @property
    def agrees(self) -> bool:
        """True when no counted comparison exceeds the threshold."""
        return not self.breakdowns()

    def summary(self) -> dict:
        return {"n_comparisons": self.n_comparisons, "z_threshold": self.z_threshold, "alpha": self.alpha,
                "max_abs_z": self.max_abs_z, "agrees": self.agrees,
                "breakdowns": [{"quantity": q, "layer": l, "z": z} for q, l, z in self.breakdowns()],
                "flagged": [{"quantity": q, "layer": l, "flag": f} for q, l, f in self.flagged()]}

    # --- output ----------------------------------------------------------------------------
    def to_csv(self, path=None) -> str:
        """CSV text (written to ``path`` atomically if given)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["quantity", "layer", "theory", "measured", "se", "z", "flag"])
        for r in self.rows:
            w.writerow([r["quantity"], r["layer"]] + [repr(float(r[k])) for k in ("theory", "measured", "se", "z")]
                       + [r["flag"]])
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_dict(self) -> dict:
        return {"sources": list(self.sources), "meta": self.meta, "summary": self.summary(), "rows": self.rows}

    def to_json(self, path=None) -> str:
        """Strict JSON text (inf/nan as null; each row's ``flag`` says why), written to ``path``
        atomically if given."""
        text = dumps_json(self.to_dict(), indent=1)
        if path is not None:
            atomic_write_text(path, text)
        return text

    def _repr_html_(self) -> str:
        """The comparison table for Jupyter, the summary as its caption."""
        from ._html import table_html
        caption = (f"{self.sources[0]} vs {self.sources[1]}: max |z| {self.max_abs_z:.3g} over "
                   f"{self.n_comparisons} comparisons, threshold {self.z_threshold:.3g}: "
                   f"{'agrees' if self.agrees else 'breaks down'}")
        columns = ["quantity", "layer", "theory", "measured", "se", "z", "flag"]
        return table_html(columns, [[r[c] for c in columns] for r in self.rows], caption)

    def format(self, all_rows: bool = True) -> str:
        """A readable text table and the summary."""
        lines = []
        if all_rows:
            head = f"{'quantity':<18}{'layer':>6}{'theory':>13}{'measured':>13}{'se':>11}{'z':>8}  flag"
            lines.append(head)
            for r in self.rows:
                z = r["z"]
                zs = f"{z:8.2f}" if math.isfinite(z) else f"{z!s:>8}"
                lines.append(f"{r['quantity']:<18}{r['layer']:>6}{r['theory']:>13.5g}{r['measured']:>13.5g}"
                             f"{r['se']:>11.3g}{zs}  {r['flag']}")
        s = self.summary()
        lines.append(f"{s['n_comparisons']} comparisons, max |z| = {s['max_abs_z']:.2f}, threshold |z| > "
                     f"{s['z_threshold']:.2f}" + (f" (Bonferroni, alpha = {s['alpha']:g})" if s["alpha"] else ""))
        if s["breakdowns"]:
            where = {}
            for b in s["breakdowns"]:
                where.setdefault(b["quantity"], []).append(b["layer"])
            lines.append("theory breaks down at: " + "; ".join(f"{q} layers {_ranges(ls)}" for q, ls in where.items()))
        else:
            lines.append("theory and measurement agree within the threshold")
        if s["flagged"]:
            where = {}
            for b in s["flagged"]:
                where.setdefault((b["quantity"], b["flag"]), []).append(b["layer"])
            lines.append("not compared: " + "; ".join(f"{q} layers {_ranges(ls)} ({f})" for (q, f), ls in where.items()))
        return "\n".join(lines)

    def __str__(self):
        return self.format(all_rows=False)


def _ranges(layers) -> str:
    out, start, prev = [], None, None
    for l in sorted(layers):
        if start is None:
            start = prev = l
        elif l == prev + 1:
            prev = l
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = l
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)


def _row(quantity, layer, t, m, se, z_threshold):
    if not (math.isfinite(t) and math.isfinite(m)):
        return dict(quantity=quantity, layer=layer, theory=t, measured=m, se=se, z=math.nan, flag="nonfinite")
    if not math.isfinite(se):
        return dict(quantity=quantity, layer=layer, theory=t, measured=m, se=se, z=math.nan, flag="no-se")
    if se == 0:
        if m == t:
            return dict(quantity=quantity, layer=layer, theory=t, measured=m, se=se, z=0.0, flag="exact")
        return dict(quantity=quantity, layer=layer, theory=t, measured=m, se=se, z=math.copysign(math.inf, m - t),
                    flag="se=0")
    z = (m - t) / se
    return dict(quantity=quantity, layer=layer, theory=t, measured=m, se=se, z=z,
                flag="breaks" if abs(z) > z_threshold else "ok")


def compare(theory_stats, measured_stats, quantities=None, z_threshold=None, alpha=0.01) -> Comparison:
    """Compare two LayerStats of the same depth, per layer and quantity.

    Parameters
    ----------
    theory_stats, measured_stats : LayerStats
        Usually ``theory.predict(spec)`` and ``simulate.run(spec, ...)``; any two work
        (standard errors of both are combined).
    quantities : sequence of str, optional
        Default: every quantity present in both, in ``theory_stats``' order.
    z_threshold : float, optional
        ``|z|`` above which the theory "breaks down"; default the Bonferroni threshold for
        the number of counted comparisons at family-wise error ``alpha``.
    alpha : float
        Family-wise error rate for the default threshold (0.01).

    Returns
    -------
    Comparison
    """
    from .spec import LayerStats
    for name, s in (("theory_stats", theory_stats), ("measured_stats", measured_stats)):
        if not isinstance(s, LayerStats):
            raise ValueError(f"{name} must be a LayerStats, got {type(s).__name__}")
    if theory_stats.depth != measured_stats.depth:
        raise ValueError(f"cannot compare {theory_stats.depth} layers with {measured_stats.depth}")
    if quantities is None:
        quantities = [q for q in theory_stats.quantities if q in measured_stats.values]
    else:
        quantities = [quantities] if isinstance(quantities, str) else list(quantities)
        for q in quantities:
            for name, s in (("theory", theory_stats), ("measured", measured_stats)):
                if q not in s.values:
                    raise ValueError(f"{name} stats have no quantity {q!r}; they have: {', '.join(s.quantities)}")
    if not quantities:
        raise ValueError("the two LayerStats share no quantity to compare")
    depth = theory_stats.depth

    def se_of(s, q):
        return s.se[q] if q in s.se else (np.zeros(depth) if s.source == "theory" else np.full(depth, np.nan))

    triples = []
    for q in quantities:
        se = np.sqrt(se_of(theory_stats, q) ** 2 + se_of(measured_stats, q) ** 2)
        for l in range(depth):
            triples.append((q, l + 1, float(theory_stats[q][l]), float(measured_stats[q][l]), float(se[l])))
    if z_threshold is None:
        # count the comparisons that will carry a z-score, then correct for them
        probe = [_row(q, l, t, m, se, math.inf) for q, l, t, m, se in triples]
        n = sum(r["flag"] in COUNTED for r in probe)
        z_threshold = bonferroni_threshold(n, alpha)
    else:
        alpha = None
        if not (isinstance(z_threshold, (int, float)) and z_threshold > 0):
            raise ValueError(f"z_threshold must be a positive number, got {z_threshold!r}")
    rows = [_row(q, l, t, m, se, z_threshold) for q, l, t, m, se in triples]
    meta = {"spec": None if measured_stats.spec is None else measured_stats.spec.to_dict(),
            "init": None if measured_stats.spec is None else measured_stats.spec.init}
    return Comparison(rows, float(z_threshold), alpha, (theory_stats.source, measured_stats.source), meta)
