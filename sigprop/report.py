"""One self-contained HTML page from study results (figures embedded as base64 PNG)."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from ._html import table_html
from ._io import atomic_write_text

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f0f0f0; }
caption { caption-side: top; text-align: left; font-style: italic; padding: 4px 0; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.src { color: #666; font-size: 0.9em; } .summary { background: #f7f7f2; padding: 0.7em 1em; border-left: 4px solid #8a8; }
nav a { margin-right: 1em; }
"""


def _table_html(table) -> str:
    return table_html(table.columns, table.rows, table.caption)


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def write_report(results, path, title="sigprop report", preface: str = "", view: str | None = None) -> Path:
    """Write one HTML page with every study's summary, tables and figures.

    Parameters
    ----------
    results : list of StudyResult
    path : path of the .html file (written atomically)
    view : str, optional
        Relative link to the interactive page (``sigprop view``) written beside the report.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if preface:
        parts.append(_paragraphs(preface))
    if view:
        parts.append(f"<p class='summary'><a href='{html.escape(view)}'>Interactive signal-propagation view</a>: "
                     "activation and gradient variance, correlation, saturation, finite-width band and phase "
                     "diagram vs depth for every built-in activation and init scheme (one offline page).</p>")
    parts.append("<nav>" + "".join(f"<a href='#{r.name}'>{html.escape(r.title)}</a>" for r in results) + "</nav>")
    for r in results:
        parts.append(f"<h2 id='{r.name}'>{html.escape(r.title)}</h2>")
        parts.append(f"<p class='src'>Source: {html.escape(r.source)} &middot; ran in {r.seconds:.1f} s</p>")
        parts.append(f"<div class='summary'>{_paragraphs(r.summary)}</div>")
        for t in r.tables:
            parts.append(_table_html(t))
        for f in r.figures:
            data = base64.b64encode(Path(f).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(Path(f).stem)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(Path(f).stem)}</figcaption></figure>")
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts))
