"""Benchmark 5 — start-up: `cascade-batch --help` wall time, median of 15 runs (target < 0.4 s).

Heavy imports (openai, aiohttp, rich) happen only inside the commands that need them.

    python bench/startup.py
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import ROOT, median, save, table


def main() -> None:
    times = []
    for _ in range(15):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cascade_batch", "--help"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    t_help = median(times)
    table("start-up (target < 0.4 s)", ["command", "median s", "max s"],
          [["cascade-batch --help", t_help, max(times)]])
    save("startup", {"help_median_s": t_help, "help_max_s": max(times), "runs": len(times), "met": t_help < 0.4})


main()
