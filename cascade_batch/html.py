"""A self-contained HTML report: one file, inline CSS and SVG, no scripts, opens offline.

Charts: tier mix, cost by model against the all-top-tier baseline,
escalation flow between tiers, latency distribution.
"""

from __future__ import annotations

import html
import math
from typing import Any

from .summary import Summary

_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse} td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}
figure{margin:0} figcaption{font-weight:600;margin-bottom:.4em}
svg text{font:12px system-ui,sans-serif;fill:#333}
.note{color:#666;font-size:.9em}
"""


def bars(items: list[tuple[str, float]], *, unit: str = "", width: int = 440, fmt: str = "{:g}") -> str:
    """A horizontal bar chart as inline SVG."""
    if not items:
        return '<p class="note">nothing to show</p>'
    row, label_w = 26, 170
    top = max(v for _, v in items) or 1.0
    h = row * len(items) + 8
    parts = [f'<svg role="img" width="{width}" height="{h}" viewBox="0 0 {width} {h}">']
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        w = (width - label_w - 90) * value / top
        colour = _COLOURS[i % len(_COLOURS)]
        parts.append(f'<text x="0" y="{y + 16}">{html.escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="18" fill="{colour}"/>')
        text = html.escape(fmt.format(value) + unit)
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)


def latency_histogram(summary: Summary, *, width: int = 440, height: int = 180, bins: int = 24) -> str:
    """Latency distribution on a log scale, from the summary's histogram."""
    hist = summary.latency_hist
    if not hist:
        return '<p class="note">no latencies recorded</p>'
    lo, hi = min(hist), max(hist)
    span = max(1, hi - lo + 1)
    counts = [0] * bins
    for bucket, n in hist.items():
        counts[min(bins - 1, (bucket - lo) * bins // span)] += n
    peak = max(counts)
    bw = width / bins
    parts = [f'<svg role="img" width="{width}" height="{height + 30}" viewBox="0 0 {width} {height + 30}">']
    for i, n in enumerate(counts):
        h = (height - 10) * n / peak
        parts.append(
            f'<rect x="{i * bw + 1:.1f}" y="{height - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
            f'fill="{_COLOURS[0]}"><title>{n} records</title></rect>'
        )
    step = math.log(1.01)
    for frac, anchor in ((0.0, "start"), (1.0, "end")):
        ms = math.exp((lo + frac * (span - 1)) * step) - 1
        parts.append(f'<text x="{frac * width:.0f}" y="{height + 20}" text-anchor="{anchor}">{ms:.0f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(summary: Summary, snap: dict[str, Any], *, title: str, source: str) -> str:
    """The whole report page."""
    cost = snap["cost"]
    cur = html.escape(cost["currency"])
    rec = snap["records"]
    rows = [
        ("records", f"{rec['total']} ({rec['ok']} ok, {rec['error']} error)"),
        ("cost", f"{cost['total']:.6f} {cur} (classifier {cost['classifier_share_pct']} %)"),
        ("all-top-tier baseline", f"{cost['baseline']:.6f} {cur}"),
        ("savings", f"{cost['savings_pct']} %"),
        ("tokens", f"{snap['tokens']['prompt']} prompt, {snap['tokens']['completion']} completion"),
        ("latency", f"p50 {snap['latency_ms']['p50']} ms, p95 {snap['latency_ms']['p95']} ms"),
        ("errors", ", ".join(f"{k} {v}" for k, v in snap["errors"].items()) or "none"),
    ]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    model_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class=n>{m['calls']}</td><td class=n>{m['prompt_tokens']}</td>"
        f"<td class=n>{m['completion_tokens']}</td><td class=n>{m.get('cost', 0.0):.6f}</td></tr>"
        for name, m in snap["by_model"].items()
    )
    money = [(name, m.get("cost", 0.0)) for name, m in snap["by_model"].items()]
    money += [("cascade total", cost["total"]), ("all top tier", cost["baseline"])]
    charts = [
        ("Tier mix (final tier)", bars(list(snap["by_tier"].items()), fmt="{:.0f}")),
        (f"Cost by model vs. baseline ({cur})", bars(money, fmt="{:.4f}")),
        ("Escalation flow between tiers", bars(list(snap["escalation_flow"].items()), fmt="{:.0f}")),
        ("Latency distribution", latency_histogram(summary)),
    ]
    figures = "".join(f"<figure><figcaption>{html.escape(t)}</figcaption>{svg}</figure>" for t, svg in charts)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="note">from {html.escape(source)}; prices are estimates from the config\'s price table</p>'
        f"<table>{table}</table><h2>Charts</h2><div class=charts>{figures}</div>"
        f"<h2>By model</h2><table><tr><th>model</th><th>calls</th><th>prompt tokens</th>"
        f"<th>completion tokens</th><th>cost ({cur})</th></tr>{model_rows}</table></body></html>"
    )
