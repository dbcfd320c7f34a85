"""What a study returns and how it is saved."""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._io import atomic_write_text, dumps_json

#: Study name -> module in this package, in report order.
STUDIES = {
    "init-study": "init_study",
    "makemore-init": "makemore_init",
    "variance-depth": "variance_depth",
    "std-sweep": "std_sweep",
    "phase-diagram": "phase_diagram",
    "mup-coord-check": "mup_coord_check",
    "mup-transfer": "mup_transfer",
    "qkv-dynamics": "qkv_dynamics",
    "transformer-init": "transformer_init",
}


def get_study(name: str):
    """The module of a study (it has ``TITLE``, ``SOURCE``, ``add_arguments`` and ``run``)."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    return importlib.import_module(f"sigprop.studies.{STUDIES[name]}")


def option(name: str, value, default, lo: int = 1) -> int:
    """A study's size option: ``default`` when not given (None); otherwise an integer >= ``lo``
    (0 means 0, and is refused where it makes no sense, never read as "the default")."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {lo}, got {value!r}")
    return value


@dataclass
class Table:
    """A small table: column names and rows of plain values."""

    columns: list
    rows: list
    caption: str = ""

    def to_markdown(self, digits: int = 4) -> str:
        def fmt(v):
            if isinstance(v, float):
                return f"{v:.{digits}g}"
            return str(v)
        head = "| " + " | ".join(self.columns) + " |"
        sep = "| " + " | ".join("---" for _ in self.columns) + " |"
        body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        cap = [f"*{self.caption}*", ""] if self.caption else []
        return "\n".join(cap + [head, sep] + body)

    def to_dict(self) -> dict:
        return {"caption": self.caption, "columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass
class StudyResult:
    """The output of one study: figures (saved files), tables, headline numbers and a paragraph."""

    name: str
    title: str
    source: str
    summary: str
    figures: list = field(default_factory=list)   # paths of PNG files (SVG beside them)
    tables: list = field(default_factory=list)    # Table objects
    numbers: dict = field(default_factory=dict)   # headline numbers, JSON-able
    config: dict = field(default_factory=dict)
    seconds: float = 0.0

    def save(self, out) -> Path:
        """Write ``result.json`` and ``result.md`` into ``out``."""
        out = Path(out)
        d = {"name": self.name, "title": self.title, "source": self.source, "summary": self.summary,
             "figures": [str(Path(f).name) for f in self.figures], "tables": [t.to_dict() for t in self.tables],
             "numbers": self.numbers, "config": self.config, "seconds": round(self.seconds, 2)}
        atomic_write_text(out / "result.json", dumps_json(d, indent=1, default=float))
        md = [f"# {self.title}", "", f"Source: {self.source}", "", self.summary, ""]
        for t in self.tables:
            md += [t.to_markdown(), ""]
        for f in self.figures:
            md += [f"![{Path(f).stem}]({Path(f).name})", ""]
        atomic_write_text(out / "result.md", "\n".join(md))
        return out / "result.json"


def save_figure(fig, out, stem: str) -> Path:
    """Save a matplotlib figure as PNG and SVG (atomically) and close it; returns the PNG path."""
    import io

    import matplotlib.pyplot as plt

    from .._io import atomic_write_bytes
    out = Path(out)
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=110, bbox_inches="tight")
        paths.append(atomic_write_bytes(out / f"{stem}.{ext}", buf.getvalue()))
    plt.close(fig)
    return paths[0]


class Timer:
    def __enter__(self):
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.time() - self.t0
