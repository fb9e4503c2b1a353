"""HTML building blocks: escaping, the page frame, tables, live values and chart slots.

Pages are f-strings over these helpers rather than a template engine: there are few
of them, and one rule keeps them safe — every value from data goes through ``esc``
(or ``live``/``table``, which call it), and data for the charts travels as JSON in a
``<script type="application/json">`` block with ``<`` escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

NONE = "\u2013"  # an en dash: no value

__all__ = [
    "NONE",
    "chart",
    "compact",
    "esc",
    "fmt",
    "json_block",
    "kv",
    "link",
    "live",
    "model_crumbs",
    "model_tabs",
    "model_url",
    "page",
    "table",
]

NAV = (
    ("Models", "/ui/"),
    ("Alerts & runs", "/ui/activity"),
    ("Gateway", "/ui/gateway"),
)


def esc(value: Any) -> str:
    """HTML-escaped text of ``value`` (quotes too: safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, kind: str = "num") -> str:
    """Display text: ``num`` (4 significant), ``pct`` (a share), ``percent``, ``ms``, ``rate``, ``time``.

    ``static/dashboard.js`` has the same function, so a live update reads the same.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NONE
    if kind == "text" or isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "percent":  # already in percent (rollout traffic)
        return f"{value:.1f}%"
    if kind == "ms":
        return f"{value:.1f} ms"
    if kind == "rate":
        return f"{value:.2f}/s"
    if kind == "time":
        return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "int":
        return f"{int(value)}"
    return f"{value:.4g}"


def live(path: str, value: Any, kind: str = "num") -> str:
    """A value the page's poller refreshes from the same JSON (``path``: dotted keys)."""
    return f'<span data-field="{esc(path)}" data-fmt="{esc(kind)}">{esc(fmt(value, kind))}</span>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str, caption: str = ""
) -> str:
    """A table of already-rendered cells (each made with ``esc``/``live``/``link``)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def link(href: str, text: Any) -> str:
    """An anchor with escaped target and text."""
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def json_block(data: Any, element_id: str = "page-data") -> str:
    """Data for the scripts; ``<`` is escaped so no value can close the script element."""
    text = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    safe = text.decode().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(element_id)}">{safe}</script>'


def chart(chart_id: str, title: str, *, note: str = "") -> str:
    """A slot ``dashboard.js`` draws an SVG chart into (its series are in the page data)."""
    extra = f'<p class="note">{esc(note)}</p>' if note else ""
    return (
        f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
        f'<div class="plot" data-chart="{esc(chart_id)}" role="img" aria-label="{esc(title)}">'
        f"</div>{extra}</figure>"
    )


def kv(pairs: Mapping[str, Any]) -> str:
    """A definition list of already-escaped values."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs.items())
    return f"<dl>{items}</dl>"


def page(
    title: str,
    body: str,
    *,
    data: Any = None,
    api: str | None = None,
    crumbs: Sequence[tuple[str, str]] = (),
    status: str = "",
) -> str:
    """The frame: navigation, breadcrumbs, the body, page data and the scripts.

    ``api`` is the JSON twin of the page that ``dashboard.js`` polls to refresh it.
    """
    nav = "".join(f"<li>{link(href, label)}</li>" for label, href in NAV)
    trail = " / ".join(link(href, label) for label, href in crumbs)
    poll = f' data-api="{esc(api)}"' if api else ""
    scripts = json_block(data) if data is not None else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · mloop</title>
<link rel="stylesheet" href="/ui/static/dashboard.css">
</head>
<body{poll}>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/ui/">mloop</a><nav aria-label="Main"><ul>{nav}</ul></nav>
<span class="status" id="live-status" aria-live="polite">{esc(status)}</span></header>
<main id="main">
<p class="crumbs">{trail}</p>
<h1>{esc(title)}</h1>
{body}
</main>
{scripts}
<script src="/ui/static/dashboard.js" defer></script>
</body>
</html>"""


def model_url(name: str) -> str:
    """The model page's path (the name URL-quoted)."""
    return "/ui/models/" + quote(name, safe="")


def model_crumbs(name: str) -> list[tuple[str, str]]:
    """Breadcrumbs of a page under one model."""
    return [("Models", "/ui/"), (name, model_url(name))]


def model_tabs(name: str) -> str:
    """Links to the model's three screens: versions, monitor, rollout."""
    links = [
        link(model_url(name), "Versions"),
        link(model_url(name) + "/monitor", "Monitor"),
        link(model_url(name) + "/rollout", "Rollout"),
    ]
    return '<p class="tabs">' + " ".join(links) + "</p>"


def compact(value: Any) -> str:
    """One-line text of nested data (``k=v, …``); escape it before it goes into HTML."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={compact(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return fmt(value) if isinstance(value, float) else str(value)
