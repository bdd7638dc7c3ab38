"""Benchmark 2 — rate-limit saturation against a provider with fixed one-minute windows.

The simulator enforces 1,200 RPM on Qwen3.5-0.8B (classifier and first tier)
and 600 RPM on Qwen3.6-35B-A3B-FP8 (second tier) in fixed 60 s windows, as
mittwald does; the client's config states the same limits. Two runs, each
making one model the bottleneck (a cascade's tiers are coupled by
back-pressure, so only the binding model can be saturated at once):
  A. simple-heavy traffic: Qwen3.5-0.8B binds;  B. moderate traffic: Qwen3.6 binds.
Saturation = requests the server accepted per minute in steady state (from
10 s after the model's first call to its last) / its limit; 429 share =
429 answers / all requests to that model. Targets: >= 97 %, <= 1 %.

    python bench/saturation.py [--seconds 75]
"""

from __future__ import annotations

import argparse

import anyio

from common import WORK, cascade_cmd, config_toml, load_config, measure, save, simulator, table, write_queries

LIMITS = {"Qwen3.5-0.8B": 1200, "Qwen3.6-35B-A3B-FP8": 600, "Mistral-Medium-3.5-128B": 0}
SCENARIOS = {
    "A_small_binds": ({"simple": 1.0}, "Qwen3.5-0.8B"),
    "B_middle_binds": ({"moderate": 1.0}, "Qwen3.6-35B-A3B-FP8"),
}


def steady_rate(times: list[float], limit: int) -> tuple[float, float]:
    """(saturation, seconds measured) over [first + 10 s, last]."""
    if len(times) < 2:
        return 0.0, 0.0
    start, end = times[0] + 10.0, times[-1]
    n = sum(1 for t in times if start <= t <= end)
    span = end - start
    return (n / span * 60 / limit if span > 0 else 0.0), span


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=75.0)
    args = p.parse_args()
    cfg_path = config_toml(WORK / "saturation.toml",
                           {m: {"rpm": rpm, "max_concurrency": 64} for m, rpm in LIMITS.items()})
    cfg = load_config(cfg_path, latency_ms=20.0, window_s=60.0)
    rows, results = [], {}
    for name, (mix, binding) in SCENARIOS.items():
        inp = write_queries(WORK / f"saturation-{name}.jsonl", 20_000, mix)
        async with simulator(cfg) as (sim, url):
            sim.accepted_at = {}
            run = await measure(cascade_cmd(inp, WORK / "saturation.out", url, cfg_path, "--grace-s", "1"),
                                stop_after_s=args.seconds)
            assert run.returncode in (0, 130), run.stderr
            for model, limit in LIMITS.items():
                if not limit:
                    continue
                stats = sim.stats[model]
                sat, span = steady_rate(sim.accepted_at.get(model, []), limit)
                share_429 = stats.rate_limited / stats.requests if stats.requests else 0.0
                results.setdefault(name, {})[model] = {
                    "limit_rpm": limit, "saturation": sat, "steady_s": span, "requests": stats.requests,
                    "rate_limited": stats.rate_limited, "share_429": share_429, "binding": model == binding,
                }
                rows.append([name, model + (" (binding)" if model == binding else ""), limit, f"{100 * sat:.1f} %",
                             f"{span:.0f}", stats.requests, f"{100 * share_429:.2f} %"])
    table("rate-limit saturation, fixed 60 s windows (targets: binding model >= 97 %, 429 share <= 1 %)",
          ["run", "model", "limit rpm", "saturation", "steady s", "requests", "429 share"], rows)
    met = all(r["saturation"] >= 0.97 and r["share_429"] <= 0.01
              for s in results.values() for r in s.values() if r["binding"])
    met = met and all(r["share_429"] <= 0.01 for s in results.values() for r in s.values())
    save("saturation", {"seconds": args.seconds, "results": results, "met": met})


anyio.run(main)
