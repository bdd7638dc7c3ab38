"""Benchmark 1 — client overhead: CPU per query of cascade_batch vs the bare SDK loop.

Zero simulated latency, N queries (default 20,000; two calls each plus
escalations), no rate limits. Runs interleaved A B A B (cascade, bare) per
HTTP backend and reports the median of the pair ratios of CPU per query.
Target: cascade_batch <= 1.25 x the bare baseline.

    python bench/overhead.py [--queries 20000] [--pairs 2]
"""

from __future__ import annotations

import argparse
import sys

import anyio

from common import (WORK, cascade_cmd, config_toml, load_config, measure, median, save, simulator, table,
                    write_queries)

MODELS = ("Qwen3.5-0.8B", "Qwen3.6-35B-A3B-FP8", "Mistral-Medium-3.5-128B")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=20_000)
    p.add_argument("--pairs", type=int, default=2)
    args = p.parse_args()
    inp = write_queries(WORK / "overhead.jsonl", args.queries)
    rows, results = [], {}
    for backend in ("aiohttp", "httpx"):
        limits = {m: {"rpm": 0, "max_concurrency": 64} for m in MODELS}
        cfg_path = config_toml(WORK / f"overhead-{backend}.toml", limits, top=f'http_backend = "{backend}"')
        cfg = load_config(cfg_path)
        async with simulator(cfg) as (_sim, url):
            ratios, ours, bare = [], [], []
            for _ in range(args.pairs):
                a = await measure(cascade_cmd(inp, WORK / "overhead.out", url, cfg_path))
                assert a.returncode == 0, a.stderr
                b = await measure([sys.executable, "bench/bare.py", url, str(inp), "--backend", backend])
                assert b.returncode == 0, b.stderr
                ours.append(a)
                bare.append(b)
                ratios.append(a.cpu_s / b.cpu_s)
        n = args.queries
        row = {
            "cascade_cpu_ms_per_query": median([m.cpu_s for m in ours]) / n * 1000,
            "bare_cpu_ms_per_query": median([m.cpu_s for m in bare]) / n * 1000,
            "cascade_qps": n / median([m.wall_s for m in ours]),
            "bare_qps": n / median([m.wall_s for m in bare]),
            "cpu_ratio_median": median(ratios),
            "cpu_ratios": ratios,
        }
        results[backend] = row
        rows.append([backend, row["cascade_cpu_ms_per_query"], row["bare_cpu_ms_per_query"], row["cpu_ratio_median"],
                     row["cascade_qps"], row["bare_qps"]])
    table(f"client overhead, {args.queries} queries, zero latency (target: ratio <= 1.25)",
          ["backend", "cascade CPU ms/query", "bare CPU ms/query", "ratio (median of pairs)", "cascade q/s",
           "bare q/s"], rows)
    save("overhead", {"queries": args.queries, "pairs": args.pairs, "results": results,
                      "target_ratio": 1.25, "met": results["aiohttp"]["cpu_ratio_median"] <= 1.25})


anyio.run(main)
