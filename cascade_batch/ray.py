"""The Ray Data engine: the same cascade on a Ray cluster, with one rate budget for all workers.

    cascade-batch run INPUT -o OUTDIR --engine ray [--ray-address auto] [--workers N]

The driver splits INPUT into chunks of whole lines (byte ranges; workers read
the file themselves, so it must be on storage every node can read) and maps
them over a pool of Ray Data actors. Each actor runs the local pipeline
(`run_file`: classification, tier pools, retries, escalation, accounting)
on its chunk and writes `part-NNNNNN.jsonl` in OUTDIR: first as
`.partial`, resumed if the actor dies and Ray retries the chunk, renamed when
complete — so a retried chunk adds no duplicate record. A rerun with
`--resume` skips finished parts and resumes partial ones.

Rate limits: Ray's own HTTP processors pace each actor separately, so N
actors would send N x the limit. Here every model's requests/min and
tokens/min live in one named actor (`RateBudget`, a sliding window per
model), and workers lease capacity in small chunks that expire after a
second (`LeasedWindow`): one remote call per chunk, not per request, and
never more than the limit in any provider window.

`process(dataset, config, endpoint)` maps an existing Ray Dataset of input
records to a Dataset of output records (`record` holds each one as JSON).
Ray is optional: `pip install 'cascade-batch[ray]'`.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

from .client import Endpoint
from .config import Config, ModelConfig
from .errors import ConfigError
from .limits import Grant, SlidingWindow, Window

CHUNK_LINES = 2000
LEASE_TTL_S = 1.0  # leased capacity not used within this is dropped (bounds how late a lease is spent)


def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray: pip install 'cascade-batch[ray]' (or pip install 'ray[data]')"
        ) from None
    return ray


# ----------------------------------------------------------------------------- the shared budget


class RateBudget:
    """Every model's minute windows for the whole cluster (run as a named Ray actor)."""

    def __init__(self, limits: dict[str, tuple[int, int]], window_s: float, lease_ttl_s: float) -> None:
        self._limits = limits
        self._window_s = window_s
        self._guard = 0.25 + lease_ttl_s  # a lease may be spent up to its TTL after it was granted
        self._windows: dict[tuple[str, str], SlidingWindow] = {}
        self.granted: dict[str, float] = {}

    async def lease(self, model: str, kind: str, amount: float) -> float:
        """Wait until `amount` fits in the model's window, then grant it."""
        window = self._windows.get((model, kind))
        if window is None:
            rpm, tpm = self._limits[model]
            limit = rpm if kind == "requests" else tpm
            window = self._windows[(model, kind)] = SlidingWindow(limit, self._window_s, guard_s=self._guard)
        grant = await window.acquire(amount)
        self.granted[f"{model}/{kind}"] = self.granted.get(f"{model}/{kind}", 0.0) + grant.amount
        return grant.amount

    def stats(self) -> dict[str, float]:
        return dict(self.granted)


class LeasedWindow:
    """A worker's side of the budget: spends leased capacity locally, leases more in chunks."""

    def __init__(self, budget: Any, model: str, kind: str, chunk: float, ttl_s: float = LEASE_TTL_S) -> None:
        self._budget = budget
        self._model = model
        self._kind = kind
        self._chunk = chunk
        self._ttl = ttl_s
        self._credit = 0.0
        self._expires = 0.0
        self._lock = anyio.Lock()

    async def acquire(self, amount: float = 1) -> Grant:
        async with self._lock:
            now = anyio.current_time()
            if self._credit < amount or now > self._expires:
                want = max(self._chunk, amount)
                self._credit = await self._budget.lease.remote(self._model, self._kind, want)
                self._expires = anyio.current_time() + self._ttl
            self._credit -= amount
            return Grant(now, amount)

    def correct(self, grant: Grant, actual: float) -> None:
        """Spend (or return) the difference between estimate and actual from the local credit."""
        self._credit -= actual - grant.amount
        grant.amount = actual


def leased_windows(budget: Any, window_s: float) -> Any:
    """The `Windows` factory for workers: both minute limits leased from `budget`."""

    def build(cfg: ModelConfig) -> tuple[Window | None, Window | None]:
        def chunk(limit: int) -> float:
            return max(1.0, limit / window_s * 0.5)  # half a second's worth per lease

        rpm = LeasedWindow(budget, cfg.name, "requests", chunk(cfg.rpm)) if cfg.rpm > 0 else None
        tpm = LeasedWindow(budget, cfg.name, "tokens", chunk(cfg.tpm)) if cfg.tpm > 0 else None
        return rpm, tpm

    return build


def start_budget(ray: Any, cfg: Config) -> Any:
    """The named budget actor for this run (one per driver run, so runs never share a budget by accident)."""
    limits = {name: (m.rpm, m.tpm) for name, m in cfg.models.items()}
    actor = ray.remote(num_cpus=0)(RateBudget)
    return actor.options(name=f"cascade_batch_budget_{uuid.uuid4().hex[:8]}").remote(
        limits, cfg.rate_window_s, LEASE_TTL_S
    )


# ----------------------------------------------------------------------------- chunks and workers


def plan_chunks(path: str, lines_per_chunk: int = CHUNK_LINES) -> list[dict[str, int]]:
    """Byte ranges of `lines_per_chunk` whole lines each, with their first line number."""
    chunks: list[dict[str, int]] = []
    start, line, first, count = 0, 1, 1, 0
    with open(path, "rb") as fh:
        offset = 0
        for raw in fh:
            offset += len(raw)
            count += 1
            line += 1
            if count == lines_per_chunk:
                chunks.append({"index": len(chunks), "start": start, "end": offset, "first_line": first})
                start, first, count = offset, line, 0
        if count:
            chunks.append({"index": len(chunks), "start": start, "end": offset, "first_line": first})
    return chunks


def part_path(outdir: str, index: int) -> Path:
    return Path(outdir) / f"part-{index:06d}.jsonl"


class ChunkWorker:
    """A Ray Data actor: runs the local pipeline on one chunk of lines at a time."""

    def __init__(
        self, cfg: Config, endpoint: Endpoint, input_path: str, outdir: str, budget: Any, options: dict[str, Any]
    ) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.input_path = input_path
        self.outdir = outdir
        self.budget = budget
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"index": [], "records": [], "errors": []}
        for i in range(len(batch["index"])):
            chunk = {k: int(batch[k][i]) for k in ("index", "start", "end", "first_line")}
            records, errors = anyio.run(self._run_chunk, chunk)
            out["index"].append(chunk["index"])
            out["records"].append(records)
            out["errors"].append(errors)
        return out

    async def _run_chunk(self, chunk: dict[str, int]) -> tuple[int, int]:
        from .api import run_file

        final = part_path(self.outdir, chunk["index"])
        if final.exists():
            return sum(1 for _ in open(final, "rb")), 0
        partial = str(final) + ".partial"
        with open(self.input_path, "rb") as fh:
            fh.seek(chunk["start"])
            data = fh.read(chunk["end"] - chunk["start"])

        async def items() -> Any:
            from .jsonl import LineTooLong

            limit = self.cfg.input.max_line_bytes
            for n, raw in enumerate(data.split(b"\n")[: data.count(b"\n") + (not data.endswith(b"\n"))]):
                raw = raw[:-1] if raw.endswith(b"\r") else raw
                yield chunk["first_line"] + n, (LineTooLong(len(raw)) if len(raw) > limit else raw)

        summary = await run_file(
            (),
            partial,
            self.cfg,
            self.endpoint,
            mode="resume",
            items=items(),
            windows=leased_windows(self.budget, self.cfg.rate_window_s),
            classify_only=self.options.get("classify_only", False),
            output_format=self.options.get("output_format", "cascade"),
            on_record=self._crash_hook(chunk["index"]),
        )
        os.replace(partial, final)
        return summary.total, summary.error

    def _crash_hook(self, index: int) -> Any:
        """Test hook: options["crash_for_tests"] = "chunk:records:marker" kills this actor once, mid-chunk."""
        spec = self.options.get("crash_for_tests")
        if not spec:
            return None
        chunk, after, marker = spec.split(":", 2)
        if int(chunk) != index or os.path.exists(marker):
            return None

        def hook(summary: Any) -> None:
            if summary.total - summary.resumed >= int(after) and not os.path.exists(marker):
                Path(marker).touch()
                os._exit(1)

        return hook


def run_ray(
    input_path: str,
    outdir: str,
    cfg: Config,
    endpoint: Endpoint,
    *,
    workers: int = 2,
    address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    chunk_lines: int = CHUNK_LINES,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the cascade over INPUT on Ray; shards in OUTDIR; returns the merged summary (blocking)."""
    ray = import_ray()
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"with --engine ray the output is a directory: {outdir} is a file")
    existing = sorted(out.glob("part-*.jsonl*")) if out.exists() else []
    if existing and not (resume or overwrite):
        raise ConfigError(f"{outdir} already holds parts; pass --resume to continue or --overwrite to start over")
    if overwrite:
        for p in existing:
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            **({} if address else {"num_cpus": max(2, workers)}),
        )
    budget = start_budget(ray, cfg)
    chunks = plan_chunks(input_path, chunk_lines)
    if chunks:
        ds = ray.data.from_items(chunks).map_batches(
            ChunkWorker,
            batch_size=1,
            concurrency=workers,
            num_cpus=0.25,
            fn_constructor_kwargs={
                "cfg": cfg,
                "endpoint": endpoint,
                "input_path": input_path,
                "outdir": outdir,
                "budget": budget,
                "options": options or {},
            },
        )
        ds.materialize()
    granted = ray.get(budget.stats.remote())
    ray.kill(budget)
    from .report import read_output

    rep = read_output(outdir, cfg)
    snap = rep.summary.snapshot(cfg, wall_s=time.monotonic() - started)
    snap["engine"] = {"name": "ray", "workers": workers, "chunks": len(chunks), "budget_granted": granted}
    return snap


# ----------------------------------------------------------------------------- library entry point


class RecordWorker:
    """A Ray Data actor for `process`: input-record rows in, output-record rows out."""

    def __init__(self, cfg: Config, endpoint: Endpoint, budget: Any) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.budget = budget

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        import orjson

        keys = list(batch)
        n = len(batch[keys[0]]) if keys else 0
        rows = [{k: _plain(batch[k][i]) for k in keys} for i in range(n)]
        records = anyio.run(self._run, rows)
        by_line = {r["line"]: r for r in records}
        ordered = [by_line[i + 1] for i in range(n)]
        return {
            "id": [str(r["id"]) for r in ordered],
            "status": [r["status"] for r in ordered],
            "tier": [r.get("tier") for r in ordered],
            "model": [r.get("model") for r in ordered],
            "cost_total": [r.get("cost", {}).get("total", 0.0) for r in ordered],
            "record": [orjson.dumps(r).decode() for r in ordered],
        }

    async def _run(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from .api import stream

        out = []
        async with stream(
            rows, self.cfg, self.endpoint, windows=leased_windows(self.budget, self.cfg.rate_window_s)
        ) as results:
            async for record in results:
                out.append(record)
        return out


def _plain(value: Any) -> Any:
    """numpy/arrow scalars and arrays from a Ray batch → plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def process(dataset: Any, cfg: Config, endpoint: Endpoint, *, workers: int = 2, batch_size: int = 256) -> Any:
    """A Ray Dataset of input records (DESIGN §2 shapes as columns) → a Dataset of output records.

    Output columns: id, status, tier, model, cost_total, and `record` (the whole
    record as JSON: its nested, ragged shape does not fit an Arrow column).
    Lines are numbered within each batch; duplicate ids are detected per batch.
    """
    ray = import_ray()
    budget = start_budget(ray, cfg)
    return dataset.map_batches(
        RecordWorker,
        batch_size=batch_size,
        concurrency=workers,
        num_cpus=0.25,
        fn_constructor_kwargs={"cfg": cfg, "endpoint": endpoint, "budget": budget},
    )
