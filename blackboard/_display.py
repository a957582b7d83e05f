"""Rendering for notebooks and terminals: compact tables, confidence bars.

Every object people look at in a notebook (a blackboard, a space, an entry,
a run result, the agenda, an explanation) has ``_repr_html_`` built from
:func:`html_table` and a plain-text form built from :func:`text_table` with
the same columns, so the two never disagree. The HTML is self-contained
(inline styles, no scripts) so it survives being saved in a notebook and
rendered by GitHub or nbconvert.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

STATUS_COLOURS = {
    "active": "#2e7d32",
    "superseded": "#9e9e9e",
    "retracted": "#c62828",
    "pending_review": "#ef6c00",
    "rejected": "#6a1b9a",
    "done": "#2e7d32",
    "failed": "#c62828",
    "obviated": "#9e9e9e",
    "pending": "#1565c0",
    "goal": "#2e7d32",
    "quiescent": "#1565c0",
    "budget": "#ef6c00",
    "review": "#ef6c00",
    "cancelled": "#c62828",
    "open": "#1565c0",
    "promoted": "#2e7d32",
}

_TABLE = ("border-collapse:collapse;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;"
          "font-size:12px;margin:2px 0")
_CELL = "padding:1px 8px;text-align:left;border-bottom:1px solid #eee;vertical-align:top"
_HEAD = "padding:1px 8px;text-align:left;border-bottom:2px solid #ccc;background:#fafafa"


def short(value: Any, width: int = 48) -> str:
    """A one-line form of a value, cut to ``width`` characters."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=repr, separators=(",", ":"))
        except (TypeError, ValueError):
            text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def confidence_bar(confidence: float, width: int = 70) -> str:
    """An inline bar with the number beside it (HTML)."""
    if not isinstance(confidence, (int, float)) or math.isnan(confidence):
        return escape(confidence)
    share = max(0.0, min(1.0, float(confidence)))
    hue = int(120 * share)  # red (0) to green (1)
    return (
        f'<span style="display:inline-block;width:{width}px;height:9px;background:#eee;'
        f'margin-right:4px;vertical-align:middle"><span style="display:block;height:9px;'
        f'width:{share * 100:.1f}%;background:hsl({hue},60%,45%)"></span></span>{confidence:.3g}'
    )


def text_bar(confidence: float, width: int = 10) -> str:
    """The terminal form of :func:`confidence_bar`."""
    if not isinstance(confidence, (int, float)) or math.isnan(confidence):
        return str(confidence)
    filled = round(max(0.0, min(1.0, float(confidence))) * width)
    return "█" * filled + "·" * (width - filled) + f" {confidence:.3g}"


def badge(status: Any) -> str:
    text = str(status)
    colour = STATUS_COLOURS.get(text, "#455a64")
    return (f'<span style="color:white;background:{colour};border-radius:3px;'
            f'padding:0 4px;font-size:11px">{escape(text)}</span>')


def html_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "",
               note: str = "") -> str:
    """A table; cells are HTML already (escape text with :func:`escape`)."""
    head = "".join(f'<th style="{_HEAD}">{escape(c)}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{cell}</td>' for cell in row) + "</tr>" for row in rows
    )
    cap = (f'<caption style="text-align:left;font-weight:bold;padding:2px 0">{caption}</caption>'
           if caption else "")
    foot = f'<div style="font-size:11px;color:#777">{escape(note)}</div>' if note else ""
    return f'<table style="{_TABLE}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}'


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "", note: str = "",
               formats: Sequence[Callable[[Any], str] | None] | None = None, indent: str = "",
               rule: bool = True) -> str:
    """The same table for a terminal: aligned columns, numbers to the right.

    ``formats`` gives a column's formatter (default: floats to 4 digits);
    None shows as ``-``; ``rule`` draws a line under the headings.
    """
    shown = formats or [None] * len(columns)
    cells = [[str(c) for c in columns]] + [[_shown(v, f) for v, f in zip(row, shown)] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    numeric = [bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows) for i in range(len(columns))]

    def line(row: Sequence[str]) -> str:
        return (indent + "  ".join(v.rjust(w) if num else v.ljust(w)
                                   for v, w, num in zip(row, widths, numeric))).rstrip()

    out = [title] if title else []
    out.append(line(cells[0]))
    if rule:
        out.append(indent + "  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells[1:])
    if note:
        out.append(note)
    return "\n".join(out)


def _shown(value: Any, fmt: Callable[[Any], str] | None) -> str:
    if value is None:
        return "-"
    return fmt(value) if fmt is not None else _plain(value)


def card(title: str, pairs: Sequence[tuple[str, str]]) -> str:
    """A small key/value block (HTML) for one object's figures."""
    rows = "".join(
        f'<tr><th style="{_CELL};color:#555;font-weight:normal">{escape(k)}</th>'
        f'<td style="{_CELL}">{v}</td></tr>' for k, v in pairs
    )
    return (f'<div style="font-weight:bold;font-family:sans-serif;font-size:13px">{title}</div>'
            f'<table style="{_TABLE}">{rows}</table>')


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
