"""One small HTML table, shared by the report page and the notebook views (``_repr_html_``)."""
from __future__ import annotations

import html


def table_html(columns, rows, caption: str = "", digits: int = 4) -> str:
    """``<table>`` with a header row; floats printed with ``digits`` significant digits,
    everything escaped."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return html.escape(str(v))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
