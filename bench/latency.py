"""Benchmark 3 — latency hiding: 200 ms per call, 10,000 queries, concurrency 256 per tier.

Ideal bound (DESIGN §7) = the largest of: calls per model x latency / that
model's concurrency (latency bound; rate limits are off here), and all calls x
the bare SDK loop's CPU per call / usable cores (client CPU floor, measured
in this run at zero latency; usable cores = 1, an asyncio client runs on one).
Targets: wall <= 1.15 x ideal; >= 100 x faster than the seed's sequential
loop (measured on a small N and extrapolated).

    python bench/latency.py [--queries 10000] [--seed-queries 20]
"""

from __future__ import annotations

import argparse
import sys

import anyio

from common import WORK, cascade_cmd, config_toml, load_config, measure, save, simulator, table, write_queries

MODELS = ("Qwen3.5-0.8B", "Qwen3.6-35B-A3B-FP8", "Mistral-Medium-3.5-128B")
LATENCY_S = 0.2
CONCURRENCY = 256


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--seed-queries", type=int, default=20)
    args = p.parse_args()
    inp = write_queries(WORK / "latency.jsonl", args.queries)
    cfg_path = config_toml(WORK / "latency.toml", {m: {"rpm": 0, "max_concurrency": CONCURRENCY} for m in MODELS})

    # the client CPU floor: the bare SDK loop at zero latency, calls counted by the simulator
    floor_inp = write_queries(WORK / "latency-floor.jsonl", 3000)
    async with simulator(load_config(cfg_path)) as (sim, url):
        bare = await measure([sys.executable, "bench/bare.py", url, str(floor_inp)])
        bare_calls = sum(s.requests for s in sim.stats.values())
    cpu_per_call = bare.cpu_s / bare_calls

    cfg = load_config(cfg_path, latency_ms=LATENCY_S * 1000)
    async with simulator(cfg) as (sim, url):
        run = await measure(cascade_cmd(inp, WORK / "latency.out", url, cfg_path))
        assert run.returncode == 0, run.stderr
        calls = {m: s.requests for m, s in sim.stats.items() if s.requests}
    latency_bound = max(n * LATENCY_S / CONCURRENCY for n in calls.values())
    cpu_bound = sum(calls.values()) * cpu_per_call / 1
    ideal = max(latency_bound, cpu_bound)

    seed_inp = write_queries(WORK / "latency-seed.jsonl", args.seed_queries)
    async with simulator(cfg) as (_sim, url):
        seed = await measure([sys.executable, "bench/seed_loop.py", url, str(seed_inp)])
        assert seed.returncode == 0, seed.stderr
    seed_extrapolated = seed.wall_s / args.seed_queries * args.queries
    result = {
        "queries": args.queries, "calls": calls, "latency_s": LATENCY_S, "concurrency": CONCURRENCY,
        "wall_s": run.wall_s, "client_cpu_s": run.cpu_s, "latency_bound_s": latency_bound,
        "cpu_floor_s": cpu_bound, "bare_cpu_ms_per_call": cpu_per_call * 1000, "ideal_s": ideal,
        "wall_over_ideal": run.wall_s / ideal, "seed_wall_s_measured": seed.wall_s,
        "seed_queries_measured": args.seed_queries, "seed_wall_s_extrapolated": seed_extrapolated,
        "speedup_vs_seed": seed_extrapolated / run.wall_s,
    }
    result["met"] = result["wall_over_ideal"] <= 1.15 and result["speedup_vs_seed"] >= 100
    table(f"latency hiding: {args.queries} queries, {LATENCY_S * 1000:.0f} ms per call, concurrency {CONCURRENCY}/tier",
          ["wall s", "latency bound s", "CPU floor s", "wall / ideal", "seed loop s (extrapolated)", "speed-up"],
          [[run.wall_s, latency_bound, cpu_bound, result["wall_over_ideal"], seed_extrapolated,
            result["speedup_vs_seed"]]])
    save("latency", result)


anyio.run(main)
