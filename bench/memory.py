"""Benchmark 4 — memory: peak RSS of the client over 10,000 and 1,000,000 input lines, zero latency.

Targets: peak RSS <= 150 MB at 1M lines, and flat: peak(1M) / peak(10k) <= 1.3.
The 1M run takes about half an hour on a 2-core machine (the client's CPU is
the bottleneck at zero latency); `--lines 10000,100000` gives a quicker look.

    python bench/memory.py [--lines 10000,1000000]
"""

from __future__ import annotations

import argparse

import anyio

from common import WORK, cascade_cmd, config_toml, load_config, measure, save, simulator, table, write_queries

MODELS = ("Qwen3.5-0.8B", "Qwen3.6-35B-A3B-FP8", "Mistral-Medium-3.5-128B")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lines", default="10000,1000000")
    args = p.parse_args()
    sizes = [int(x) for x in args.lines.split(",")]
    cfg_path = config_toml(WORK / "memory.toml", {m: {"rpm": 0, "max_concurrency": 64} for m in MODELS})
    cfg = load_config(cfg_path)
    rows, results = [], {}
    for n in sizes:
        inp = write_queries(WORK / f"memory-{n}.jsonl", n)
        out = WORK / "memory.out"
        async with simulator(cfg) as (_sim, url):
            run = await measure(cascade_cmd(inp, out, url, cfg_path))
        assert run.returncode == 0, run.stderr
        with open(out, "rb") as fh:
            written = sum(1 for _ in fh)
        out.unlink()
        inp.unlink()
        assert written == n, (written, n)
        results[str(n)] = {"peak_rss_mb": run.maxrss_mb, "wall_s": run.wall_s, "cpu_s": run.cpu_s}
        rows.append([n, run.maxrss_mb, run.wall_s, n / run.wall_s])
    first, last = results[str(sizes[0])], results[str(sizes[-1])]
    ratio = last["peak_rss_mb"] / first["peak_rss_mb"]
    table(f"memory (targets: <= 150 MB at the largest, ratio <= 1.3; ratio here {ratio:.2f})",
          ["lines", "peak RSS MB", "wall s", "q/s"], rows)
    save("memory", {"results": results, "ratio": ratio,
                    "met": last["peak_rss_mb"] <= 150 and ratio <= 1.3})


anyio.run(main)
