"""The Ray Data engine on a local Ray cluster, against the simulator on loopback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from cascade_batch import run_file
from cascade_batch.ray import import_ray, plan_chunks, run_ray

from .conftest import make_config, running
from .helpers import queries

ray = import_ray()  # a test dependency (.[dev] installs it): no skipping


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def records_in(outdir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for p in sorted(outdir.glob("part-*.jsonl")) for x in p.read_bytes().splitlines()]


def test_plan_chunks_cover_every_line_once(tmp_path: Path) -> None:
    """Chunks are byte ranges of whole lines; together they hold every line exactly once."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"a\nbb\n\nccc\nd")
    chunks = plan_chunks(str(path), 2)
    assert [(c["first_line"], c["start"], c["end"]) for c in chunks] == [(1, 0, 5), (3, 5, 10), (5, 10, 11)]


async def test_ray_records_equal_the_local_engine(ray_cluster: None, tmp_path: Path) -> None:
    """Same input, same simulator: the Ray engine's records and totals equal the local engine's."""
    src = write(tmp_path / "in.jsonl", [*queries(240), {"id": "bad", "query": ""}])
    cfg = make_config()
    async with running(cfg) as handle:
        local = await run_file(str(src), str(tmp_path / "local.jsonl"), cfg, handle.endpoint)
        snap = await anyio.to_thread.run_sync(
            lambda: run_ray(str(src), str(tmp_path / "out"), cfg, handle.endpoint, workers=2, chunk_lines=60)
        )
    mine = {r["id"]: r for r in records_in(tmp_path / "out")}
    theirs = {r["id"]: r for r in (orjson.loads(x) for x in (tmp_path / "local.jsonl").read_bytes().splitlines())}
    assert set(mine) == set(theirs) and len(mine) == 241
    for rid, r in theirs.items():
        m = mine[rid]
        assert (m["status"], m.get("tier"), m.get("usage"), m["line"]) == (
            r["status"],
            r.get("tier"),
            r.get("usage"),
            r["line"],
        )
        for key in ("classifier", "answer", "total", "baseline"):
            assert m.get("cost", {}).get(key, 0.0) == pytest.approx(r.get("cost", {}).get(key, 0.0), abs=1e-9)
    local_snap = local.snapshot(cfg)
    for key in ("records", "by_tier", "by_model", "escalations", "errors", "tokens"):
        assert snap[key] == local_snap[key], key
    assert snap["cost"]["total"] == pytest.approx(local_snap["cost"]["total"], abs=1e-9)
    assert snap["engine"]["chunks"] == 5


async def test_one_budget_keeps_four_workers_within_the_limit(ray_cluster: None, tmp_path: Path) -> None:
    """Four workers share one rate budget: the cluster stays within the provider's limit (<= 1 % 429s)."""
    src = write(tmp_path / "in.jsonl", queries(120))
    cfg = make_config(sim={"window_s": 2.0})
    limited = {n: replace(m, rpm=60) for n, m in cfg.models.items()}
    cfg = cfg.with_overrides(models=limited, rate_window_s=2.0)
    async with running(cfg) as handle:
        snap = await anyio.to_thread.run_sync(
            lambda: run_ray(str(src), str(tmp_path / "out"), cfg, handle.endpoint, workers=4, chunk_lines=30)
        )
        requests = sum(s.requests for s in handle.sim.stats.values())
        rate_limited = sum(s.rate_limited for s in handle.sim.stats.values())
    assert snap["records"]["ok"] == 120
    assert rate_limited <= 0.01 * requests, (rate_limited, requests)
    assert snap["engine"]["budget_granted"]["Qwen3.5-0.8B/requests"] >= 120


async def test_a_killed_worker_is_retried_without_duplicates(ray_cluster: None, tmp_path: Path) -> None:
    """An actor dies mid-chunk; Ray retries the chunk, which resumes its partial part: one record per line."""
    src = write(tmp_path / "in.jsonl", queries(150))
    cfg = make_config(sim={"latency_ms": 5.0})
    marker = tmp_path / "crashed"
    async with running(cfg) as handle:
        await run_file(str(src), str(tmp_path / "clean.jsonl"), cfg, handle.endpoint)
        clean_calls = sum(s.requests for s in handle.sim.stats.values())
    async with running(cfg) as handle:
        await anyio.to_thread.run_sync(
            lambda: run_ray(
                str(src),
                str(tmp_path / "out"),
                cfg,
                handle.endpoint,
                workers=2,
                chunk_lines=50,
                options={"crash_for_tests": f"1:10:{marker}"},
            )
        )
        calls = sum(s.requests for s in handle.sim.stats.values())
    assert marker.exists()
    lines = Counter(r["line"] for r in records_in(tmp_path / "out"))
    assert set(lines) == set(range(1, 151)) and max(lines.values()) == 1
    # the retried chunk resumed its partial part: fewer extra calls than one chunk (a third of the input) makes
    assert calls - clean_calls < clean_calls / 3


async def test_resume_skips_finished_parts(ray_cluster: None, tmp_path: Path) -> None:
    """A rerun with resume makes no call for lines already in the shards; `report OUTDIR` reads them."""
    from cascade_batch.report import read_output

    src = write(tmp_path / "in.jsonl", queries(60))
    cfg = make_config()
    async with running(cfg) as handle:
        first = await anyio.to_thread.run_sync(
            lambda: run_ray(str(src), str(tmp_path / "out"), cfg, handle.endpoint, workers=2, chunk_lines=20)
        )
    async with running(cfg) as handle:
        again = await anyio.to_thread.run_sync(
            lambda: run_ray(
                str(src), str(tmp_path / "out"), cfg, handle.endpoint, workers=2, chunk_lines=20, resume=True
            )
        )
        assert sum(s.requests for s in handle.sim.stats.values()) == 0
    assert again["records"] == first["records"]
    assert read_output(tmp_path / "out", cfg).summary.snapshot(cfg)["by_tier"] == first["by_tier"]


async def test_process_maps_a_dataset_of_records(ray_cluster: None) -> None:
    """The library entry point: a Dataset of input records in, one output row per record out."""
    from cascade_batch.ray import process

    cfg = make_config()
    rows = queries(40)
    async with running(cfg) as handle:
        ds = process(ray.data.from_items(rows), cfg, handle.endpoint, workers=2, batch_size=10)
        out = await anyio.to_thread.run_sync(ds.take_all)
    assert sorted(r["id"] for r in out) == sorted(r["id"] for r in rows)
    for row in out:
        record = orjson.loads(row["record"])
        assert row["status"] == record["status"] == "ok"
        assert row["tier"] == record["tier"] and row["cost_total"] == record["cost"]["total"]
        assert record["answer"].startswith("[simulated")
