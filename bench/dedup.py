"""Benchmark 6 — never pay twice: calls and cost with and without dedup and the cache.

A query log of N lines where a share of lines repeat earlier questions (default
25 %, whitespace varied), run four ways against the simulator: dedup off,
dedup on (the default), dedup + a cold cache, and the same log again with the
warm cache (a nightly job seeing yesterday's questions).

    python bench/dedup.py [--lines 5000] [--repeat 0.25]
"""

from __future__ import annotations

import argparse
import random

import anyio
import orjson

from common import WORK, KINDS, cascade_cmd, config_toml, load_config, measure, save, simulator, table

MODELS = ("Qwen3.5-0.8B", "Qwen3.6-35B-A3B-FP8", "Mistral-Medium-3.5-128B")


def write_log(path, n: int, repeat: float, seed: int = 11):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    kinds = list(KINDS.values())
    seen: list[str] = []
    with open(path, "wb") as fh:
        for i in range(n):
            if seen and rng.random() < repeat:
                text = rng.choice(seen)
                text = text if i % 2 else "  " + text.replace(" ", "  ")
            else:
                text = kinds[i % 3].format(i=i)
                seen.append(text)
            fh.write(orjson.dumps({"id": i, "query": text}) + b"\n")
    return path


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lines", type=int, default=5000)
    p.add_argument("--repeat", type=float, default=0.25)
    args = p.parse_args()
    inp = write_log(WORK / "dedup.jsonl", args.lines, args.repeat)
    cfg_path = config_toml(WORK / "dedup.toml", {m: {"rpm": 0} for m in MODELS})
    cache = WORK / "dedup-cache.sqlite"
    cache.unlink(missing_ok=True)
    runs = [("dedup off", ["--no-dedup"]), ("dedup on (default)", []),
            ("dedup + cache, cold", ["--cache", str(cache)]), ("same log again, warm cache", ["--cache", str(cache)])]
    rows, results = [], {}
    for name, extra in runs:
        summary = WORK / "dedup-summary.json"
        async with simulator(load_config(cfg_path)) as (sim, url):
            run = await measure(cascade_cmd(inp, WORK / "dedup.out", url, cfg_path, "--summary", str(summary), *extra))
            assert run.returncode == 0, run.stderr
            calls = sum(s.requests for s in sim.stats.values())
        snap = orjson.loads(summary.read_bytes())
        cost = snap["cost"]["total"]
        results[name] = {"calls": calls, "cost": cost, "saved": snap.get("saved", {}), "wall_s": run.wall_s}
        rows.append([name, calls, f"{cost:.4f}", f"{snap['cost']['currency']}", f"{run.wall_s:.1f}"])
    table(f"dedup and cache: {args.lines} lines, {100 * args.repeat:.0f} % repeats",
          ["run", "API calls", "cost", "currency", "wall s"], rows)
    save("dedup", {"lines": args.lines, "repeat": args.repeat, "results": results})


anyio.run(main)
