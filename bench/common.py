"""Shared pieces of the benchmarks: inputs, configs, the simulator, measured child processes.

Every benchmark runs the simulator inside the benchmark's own process (so
its CPU is never charged to the client) and the client under test as a
child process, measured with `os.wait4` (user + system CPU, peak RSS, wall).
Results are printed as a table and written to `bench/results/NAME.json`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = Path(os.environ.get("BENCH_TMP", "/tmp/cascade-bench"))
sys.path.insert(0, str(ROOT))

from cascade_batch.config import Config, SimulatorConfig, from_dict  # noqa: E402
from cascade_batch.sim import Simulator, start  # noqa: E402

KINDS = {
    "simple": "What is the capital of country number {i}?",
    "moderate": "Write a Python function number {i} that merges two sorted lists.",
    "complex": "Analyse the architectural tradeoffs of design {i} for a payment system.",
}


def write_queries(path: Path, n: int, mix: dict[str, float] | None = None) -> Path:
    """n queries whose simulated classification follows `mix` (default: a third each), streamed to disk."""
    mix = mix or {"simple": 1 / 3, "moderate": 1 / 3, "complex": 1 / 3}
    kinds = [k for k, share in mix.items() for _ in range(round(share * 60))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for i in range(n):
            kind = kinds[i % len(kinds)]
            fh.write(orjson.dumps({"id": i, "query": KINDS[kind].format(i=i)}) + b"\n")
    return path


def config_toml(path: Path, models: dict[str, dict[str, Any]], *, top: str = "", extra: str = "") -> Path:
    """A config file: `top` (top-level keys), per-model limits (rpm, max_concurrency, …), then `extra` tables."""
    lines = [top] if top else []
    for name, values in models.items():
        lines.append(f'[models."{name}"]')
        lines.extend(f"{k} = {v}" for k, v in values.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def load_config(path: Path, **sim: Any) -> Config:
    """The config the client reads, with the simulator behaviour the benchmark wants."""
    import tomllib

    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    cfg = from_dict(data)
    fields = {"latency_ms": 0.0, "per_token_ms": 0.0, "jitter": 0.0, **sim}
    return cfg.with_overrides(simulator=SimulatorConfig(**fields))


@asynccontextmanager
async def simulator(cfg: Config) -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator(cfg)
    runner, url = await start(sim)
    try:
        yield sim, url
    finally:
        await runner.cleanup()


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    returncode: int
    stderr: str


async def measure(cmd: list[str], *, env: dict[str, str] | None = None, stop_after_s: float | None = None) -> Measured:
    """Run `cmd` as a child; its own CPU and peak RSS via wait4. `stop_after_s` sends SIGINT then."""
    full_env = {**os.environ, "OPENAI_API_KEY": "bench-key", **(env or {})}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def stopper() -> None:
        if stop_after_s is not None:
            await anyio.sleep(stop_after_s)
            if proc.poll() is None:
                proc.send_signal(2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stopper)
        err = await anyio.to_thread.run_sync(proc.stderr.read)  # type: ignore[union-attr]
        _pid, status, usage = await anyio.to_thread.run_sync(os.wait4, proc.pid, 0)
        tg.cancel_scope.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                    err.decode(errors="replace"))


def cascade_cmd(inp: Path, out: Path, url: str, cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cascade_batch", "run", str(inp), "-o", str(out), "--overwrite",
            "--base-url", url, "-c", str(cfg), "--quiet", *extra]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def save(name: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "machine": machine(), "date": time.strftime("%Y-%m-%d"), **data}
    (RESULTS / f"{name}.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r))
    Console(width=150).print(t)


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
