"""The human-readable summary table (stderr), from the summary JSON."""

from __future__ import annotations

import sys
from typing import Any


def print_summary(snap: dict[str, Any], *, title: str = "cascade_batch summary") -> None:
    """Print the DESIGN §6 summary as tables on stderr."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stderr)
    cost = snap["cost"]
    cur = cost["currency"]
    rec = snap["records"]
    head = Table(title=title, show_header=False, title_justify="left")
    head.add_row("records", f"{rec['total']} ({rec['ok']} ok, {rec['error']} error)")
    head.add_row("by tier", ", ".join(f"{k} {v}" for k, v in snap["by_tier"].items()) or "-")
    head.add_row("escalations", ", ".join(f"{k} {v}" for k, v in snap["escalations"].items()) or "none")
    head.add_row("errors", ", ".join(f"{k} {v}" for k, v in snap["errors"].items()) or "none")
    if snap["labels"]["unparsed"]:
        head.add_row("unparsed labels", f"{snap['labels']['unparsed']} (routed to the default tier)")
    head.add_row("tokens", f"{snap['tokens']['prompt']} prompt, {snap['tokens']['completion']} completion")
    head.add_row(
        "cost",
        f"{cost['total']:.6f} {cur} (classifier {cost['classifier']:.6f}, {cost['classifier_share_pct']}% of total)",
    )
    head.add_row("all-top-tier baseline", f"{cost['baseline']:.6f} {cur}  →  savings {cost['savings_pct']}%")
    if "wall_s" in snap:
        head.add_row("wall time", f"{snap['wall_s']} s, {snap['throughput_qps']} records/s")
    lat = snap["latency_ms"]
    head.add_row("latency", f"p50 {lat['p50']} ms, p95 {lat['p95']} ms")
    for note in snap.get("notes", ()):
        head.add_row("note", note)
    console.print(head)
    models = Table(title="by model", title_justify="left")
    for col in ("model", "calls", "prompt tokens", "completion tokens", f"cost ({cur})"):
        if col == "model":
            models.add_column(col, no_wrap=True, min_width=max((len(n) for n in snap["by_model"]), default=5))
        else:
            models.add_column(col, justify="right")
    for name, m in snap["by_model"].items():
        models.add_row(
            name, str(m["calls"]), str(m["prompt_tokens"]), str(m["completion_tokens"]), f"{m.get('cost', 0.0):.6f}"
        )
    console.print(models)
    console.print("[dim]prices are estimates from the config's price table[/dim]")
