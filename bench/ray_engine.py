"""Benchmark 7 — the Ray engine vs the local engine on this machine, against the simulator.

Queries/s of the local engine and of `--engine ray` with 1, 2 and 4 workers,
zero simulated latency, no rate limits (the client's CPU is the bottleneck).
Ray's start-up is inside the timing, as a user would see it.

    python bench/ray_engine.py [--queries 5000]
"""

from __future__ import annotations

import argparse
import shutil
import sys

import anyio

from common import WORK, config_toml, load_config, measure, save, simulator, table, write_queries

MODELS = ("Qwen3.5-0.8B", "Qwen3.6-35B-A3B-FP8", "Mistral-Medium-3.5-128B")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=5000)
    args = p.parse_args()
    inp = write_queries(WORK / "ray.jsonl", args.queries)
    cfg_path = config_toml(WORK / "ray.toml", {m: {"rpm": 0} for m in MODELS})
    rows, results = [], {}
    for engine, workers in (("local", 0), ("ray", 1), ("ray", 2), ("ray", 4)):
        out = WORK / f"ray-out-{engine}-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "cascade_batch", "run", str(inp), "-o", str(out), "--quiet", "-c", str(cfg_path)]
        if engine == "ray":
            cmd += ["--engine", "ray", "--workers", str(workers)]
        async with simulator(load_config(cfg_path)) as (_sim, url):
            run = await measure([*cmd, "--base-url", url])
        assert run.returncode == 0, run.stderr[-2000:]
        name = "local" if engine == "local" else f"ray, {workers} worker{'s' if workers > 1 else ''}"
        results[name] = {"wall_s": run.wall_s, "qps": args.queries / run.wall_s}
        rows.append([name, run.wall_s, args.queries / run.wall_s])
    table(f"engines, {args.queries} queries, zero latency, 2 cores", ["engine", "wall s", "queries/s"], rows)
    save("ray_engine", {"queries": args.queries, "results": results})


anyio.run(main)
