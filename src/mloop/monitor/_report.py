"""The monitoring report page: a timeline of windows on top of the engine's drift page.

Self-contained (inline SVG and CSS, nothing fetched). The per-column histograms are
the drift engine's rendering of the whole period; this module adds the window
timeline (drift share, realized and estimated accuracy) and the window table.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from mloop.monitor._observe import WindowStatus
from mloop.monitor._render import render_drift_html

if TYPE_CHECKING:
    from mloop.monitor._service import MonitorStatus

__all__ = ["render_status_html"]

_SERIES = (
    ("drift_share", "#e4572e", "drift share"),
    ("prediction_drift", "#f3a712", "prediction drift"),
    ("accuracy", "#2e86ab", "accuracy"),
    ("estimated_accuracy", "#7fb069", "estimated accuracy"),
)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _timeline_svg(windows: Sequence[WindowStatus]) -> str:
    width, height, pad = 720, 200, 30
    n = len(windows)
    if n == 0:
        return "<p>No windows.</p>"
    step = (width - 2 * pad) / max(n - 1, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" '
        f'role="img" aria-label="window timeline">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#aab"/>',
        f'<text x="4" y="{pad + 4}" font-size="10">1</text>'
        f'<text x="4" y="{height - pad + 4}" font-size="10">0</text>',
    ]
    for i, (metric, color, label) in enumerate(_SERIES):
        points = []
        for j, w in enumerate(windows):
            value = w.metric(metric)
            if value is None:
                continue
            y = height - pad - min(max(value, 0.0), 1.0) * (height - 2 * pad)
            points.append(f"{pad + j * step:.1f},{y:.1f}")
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
            for p in points:
                cx, cy = p.split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        parts.append(
            f'<rect x="{pad + i * 150}" y="{height + 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{pad + i * 150 + 14}" y="{height + 17}" font-size="11">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(windows: Sequence[WindowStatus]) -> str:
    import datetime as dt

    head = (
        "<tr><th>window start (UTC)</th><th>rows</th><th>drift share</th><th>drifted</th>"
        "<th>prediction drift</th><th>missing</th><th>out of contract</th><th>labelled</th>"
        "<th>accuracy</th><th>est. accuracy</th></tr>"
    )
    body = []
    for w in windows:
        when = dt.datetime.fromtimestamp(w.start, dt.UTC).strftime("%Y-%m-%d %H:%M")
        drifted = ", ".join(w.drift.drifted_columns) if w.drift is not None else ""
        body.append(
            f"<tr><td>{when}</td><td>{w.rows}</td><td>{_fmt(w.drift_share)}</td>"
            f"<td>{escape(drifted)}</td><td>{_fmt(w.metric('prediction_drift'))}</td>"
            f"<td>{_fmt(w.missing_rate)}</td><td>{_fmt(w.out_of_contract_rate)}</td>"
            f"<td>{w.labelled}</td><td>{_fmt(w.metric('accuracy'))}</td>"
            f"<td>{_fmt(w.metric('estimated_accuracy'))}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def render_status_html(status: MonitorStatus, overall: WindowStatus | None = None) -> str:
    """One page: timeline and window table, then the engine's drift page for ``overall``."""
    title = f"Monitoring report: {status.model}"
    timeline = (
        f"<h2>Windows</h2><div class='sub'>{len(status.windows)} windows of "
        f"{status.window:g} s; reference version {status.reference_version}</div>"
        f"{_timeline_svg(status.windows)}{_table(status.windows)}"
    )
    report: dict[str, Any] | None = None
    if overall is not None and overall.drift is not None:
        report = overall.drift.to_dict()
        if overall.prediction_drift is not None:
            report["columns"] = [*report["columns"], *overall.prediction_drift.to_dict()["columns"]]
    if report is None:
        report = {
            "columns": [],
            "dataset_drift": False,
            "drifted_columns": [],
            "alpha": 0.05,
            "drift_share": 0.0,
            "multivariate": None,
        }
    page = render_drift_html(report, title=title)
    # The engine's page ends with </body></html>; the timeline goes right after the title.
    marker = "</h1>"
    cut = page.find(marker)
    if cut < 0:
        return page.replace("</body>", timeline + "</body>")
    cut += len(marker)
    return page[:cut] + timeline + "<h2>Drift over the whole period</h2>" + page[cut:]
