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
    for kind, saved in snap.get("saved", {}).items():
        label = "saved by dedup" if kind == "dedup" else "saved by cache"
        head.add_row(
            label,
            f"{saved['records']} records, {saved['calls']} calls, "
            f"{saved['prompt_tokens'] + saved['completion_tokens']} tokens, {saved['cost']:.6f} {cur}",
        )
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


def print_projection(p: dict[str, Any]) -> None:
    """The cost projection as tables on stderr."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stderr)
    cur = p["currency"]
    scale = f" x {p['scale']:g}" if p["scale"] != 1 else ""

    def money(v: float) -> str:
        return f"{v:.4f}"

    def interval(ci: list[float]) -> str:
        return f"[{ci[0]:.4f}, {ci[1]:.4f}]"

    head = Table(title=f"cost projection{scale}", show_header=False, title_justify="left")
    head.add_row("input", f"{p['lines']} lines, {p['queries']} queries ({p['unusable']} unusable)")
    head.add_row("classified / answered", f"{p['classified']} / {p['answered_sample']} (sample)")
    head.add_row("method", p["method"])
    console.print(head)
    tiers = Table(title="per tier (cascade)", title_justify="left")
    for col in ("tier", "share", "queries", "input tokens", "output tokens", f"cost ({cur})", "95 % CI", "escalated"):
        tiers.add_column(col, justify="left" if col == "tier" else "right")
    for name, t in p["tiers"].items():
        tiers.add_row(
            name,
            f"{100 * t['share']:.1f} %",
            f"{t['queries']:.0f}",
            f"{t['input_tokens']:.0f}",
            f"{t['output_tokens']:.0f}",
            money(t["cost"]),
            interval(t["ci95"]),
            f"{100 * t['escalation_rate']:.0f} %",
        )
    cls = p["classifier"]
    tiers.add_row("(classifier)", "", "", "", "", money(cls["cost"]), interval(cls["ci95"]), "")
    console.print(tiers)
    scen = Table(title="scenarios", title_justify="left")
    for col in ("scenario", f"cost ({cur})", "95 % CI"):
        scen.add_column(col, justify="left" if col == "scenario" else "right")
    for name, s in p["scenarios"].items():
        scen.add_row(name, money(s["cost"]), interval(s["ci95"]))
    sav = p["savings_pct"]
    scen.add_row("savings vs all_top", f"{sav['estimate']:.1f} %", f"[{sav['ci95'][0]:.1f}, {sav['ci95'][1]:.1f}] %")
    console.print(scen)
    alt = Table(title="tier 3 alternatives (cascade cost, repriced)", title_justify="left")
    alt.add_column("tier-3 model")
    alt.add_column(f"cost ({cur})", justify="right")
    for name, a in sorted(p["tier3_alternatives"].items(), key=lambda kv: kv[1]["cost"]):
        alt.add_row(name, money(a["cost"]))
    console.print(alt)
    console.print(f"the projection itself cost {p['projection_cost']:.6f} {cur}")


def print_audit(a: dict[str, Any]) -> None:
    """The quality audit as tables on stderr: win/tie/loss vs the top tier, cost, threshold replay."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stderr)
    cur = a["currency"]
    table = Table(title=f"quality audit: cascade vs top tier ({a['sampled']} records)", title_justify="left")
    for col in ("tier", "n", "win", "tie", "loss", "loss 95 % CI"):
        table.add_column(col, justify="left" if col == "tier" else "right")

    def row(name: str, s: dict[str, Any], n: int) -> None:
        ci = s["loss_ci95"]
        table.add_row(
            name,
            str(n),
            f"{100 * s['win']:.0f} %",
            f"{100 * s['tie']:.0f} %",
            f"{100 * s['loss']:.0f} %",
            f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}] %",
        )

    for tier, s in a["by_tier"].items():
        row(tier, s, s["n"])
    row("overall", a["overall"], a["sampled"])
    console.print(table)
    savings = a["run_savings_pct"]
    console.print(
        f"the run saved {savings} % against the top tier; estimated quality loss "
        f"{100 * a['overall']['loss']:.1f} % of answers; this audit cost {a['audit_cost']:.6f} {cur}"
    )
    replay = Table(title="min_words replay (audited sample, no new calls)", title_justify="left")
    for col in ("min_words", "loss", f"cost ({cur})"):
        replay.add_column(col, justify="right")
    for r in a["min_words_replay"]:
        if r["loss"] is None:
            replay.add_row(str(r["min_words"]), "n/a", "n/a (discarded answers are not kept)")
        else:
            replay.add_row(str(r["min_words"]), f"{100 * r['loss']:.1f} %", f"{r['cost']:.6f}")
    console.print(replay)
