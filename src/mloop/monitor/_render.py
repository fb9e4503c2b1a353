"""Render a drift report (plain data from ``DriftReport.to_dict``) as one self-contained page.

Inline SVG and CSS only: no scripts, no fonts or styles fetched, so the file opens
offline and can be attached to an alert or an email.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["render_drift_html"]

_REF = "#7f8c9a"
_CUR = "#e4572e"
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px} .sub{color:#5b6475;margin-bottom:16px}
.verdict{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600}
.drift{background:#fde2dc;color:#9b2c12} .ok{background:#dcf3e3;color:#1f6e3a}
table{border-collapse:collapse;margin:12px 0 24px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e3e6eb;text-align:right}
th:first-child,td:first-child{text-align:left}
.col{margin:18px 0;padding-top:8px;border-top:1px solid #e3e6eb}
.col h2{font-size:15px;margin:0 0 4px} .legend span{margin-right:14px;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return escape(str(value))


def _histogram_svg(
    labels: Sequence[str], ref: Sequence[int], cur: Sequence[int], width: int = 640
) -> str:
    """Side-by-side bars of reference and current shares per slot (empty slots dropped)."""
    nr, nc = max(sum(ref), 1), max(sum(cur), 1)
    slots = [(lab, r / nr, c / nc) for lab, r, c in zip(labels, ref, cur, strict=True) if r or c]
    if not slots:
        return "<p>No values.</p>"
    height, top, bottom, left = 150, 8, 36, 40
    plot_h = height - top - bottom
    peak = max(max(r, c) for _, r, c in slots) or 1.0
    step = (width - left - 4) / len(slots)
    bar = max(step * 0.4, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="reference and current distribution">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" '
        'stroke="#9aa3b2"/>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{peak:.0%}</text>',
    ]
    for i, (label, r, c) in enumerate(slots):
        x = left + i * step + step * 0.1
        for j, (share, color, who) in enumerate(((r, _REF, "reference"), (c, _CUR, "current"))):
            h = plot_h * share / peak
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{escape(label)} {who}: '
                f"{share:.2%}</title></rect>"
            )
        if len(slots) <= 24 or i % max(len(slots) // 12, 1) == 0:
            short = escape(label if len(label) <= 12 else label[:11] + "…")
            parts.append(
                f'<text x="{x + bar:.1f}" y="{top + plot_h + 12}" font-size="9" '
                f'text-anchor="end" transform="rotate(-35 {x + bar:.1f} {top + plot_h + 12})">'
                f"{short}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _summary_table(columns: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>column</th><th>kind</th><th>method</th><th>effect</th><th>threshold</th>"
        "<th>p-value</th><th>PSI</th><th>JS</th><th>Wasserstein</th><th>drift</th></tr>"
    )
    rows = []
    for c in columns:
        m = c["metrics"]
        rows.append(
            "<tr>"
            f"<td><a href='#c-{escape(c['column'])}'>{escape(c['column'])}</a></td>"
            f"<td>{_fmt(c['kind'])}</td><td>{_fmt(c['method'])}</td>"
            f"<td>{_fmt(c['effect'])}</td><td>{_fmt(c['threshold'])}</td>"
            f"<td>{_fmt(c['p_value'])}</td><td>{_fmt(m.get('psi'))}</td>"
            f"<td>{_fmt(m.get('js_distance'))}</td><td>{_fmt(m.get('wasserstein'))}</td>"
            f"<td>{'<b>yes</b>' if c['drifted'] else 'no'}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _rule(share: float) -> str:
    if share <= 0:
        return "dataset drift when any column drifts"
    return f"dataset drift when at least {share:.0%} of columns drift"


def render_drift_html(data: Mapping[str, Any], title: str = "Drift report") -> str:
    """The report page for ``DriftReport.to_dict()`` output."""
    columns: Sequence[Mapping[str, Any]] = data["columns"]
    drifted = data["dataset_drift"]
    verdict = (
        f'<span class="verdict drift">Drift in {len(data["drifted_columns"])} of '
        f"{len(columns)} columns</span>"
        if drifted
        else f'<span class="verdict ok">No drift in {len(columns)} columns</span>'
    )
    multi = data.get("multivariate")
    multi_html = (
        f"<p>Domain classifier AUC {_fmt(multi['auc'])} (threshold {_fmt(multi['threshold'])}):"
        f" {'drift' if multi['drifted'] else 'no drift'}.</p>"
        if multi
        else ""
    )
    sections = []
    for c in columns:
        status = "drift" if c["drifted"] else "ok"
        sections.append(
            f'<div class="col" id="c-{escape(c["column"])}"><h2>{escape(c["column"])} '
            f'<span class="verdict {status}">{"drift" if c["drifted"] else "stable"}</span></h2>'
            f"<div class='sub'>{_fmt(c['method'])} = {_fmt(c['effect'])}, threshold "
            f"{_fmt(c['threshold'])} (minimum effect {_fmt(c['min_effect'])}); "
            f"reference n={c['n_reference']}, current n={c['n_current']}</div>"
            + _histogram_svg(c["labels"], c["reference_counts"], c["current_counts"])
            + "</div>"
        )
    legend = (
        f'<div class="legend"><span><i class="sw" style="background:{_REF}"></i>reference'
        f'</span><span><i class="sw" style="background:{_CUR}"></i>current</span></div>'
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><div class='sub'>family-wise level alpha={data['alpha']}; "
        f"{_rule(data['drift_share'])}</div>{verdict}{multi_html}"
        f"{_summary_table(columns)}{legend}{''.join(sections)}</body></html>"
    )
