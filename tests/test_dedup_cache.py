"""Never pay twice: in-run deduplication and the persistent cache, counted by the simulator."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from cascade_batch import run_file
from cascade_batch.dedup import request_key
from cascade_batch.records import Query

from .conftest import make_config, running
from .helpers import queries


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def with_repeats(n_unique: int, share: float, seed: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(unique rows, the same rows plus `share` repeats with fresh ids and varied whitespace, shuffled)."""
    rng = random.Random(seed)
    unique = queries(n_unique)
    n_copies = round(share * n_unique / (1 - share))
    copies = []
    for i in range(n_copies):
        src = rng.choice(unique)
        text = src["query"] if i % 2 else "  " + src["query"].replace(" ", "  ") + "\n"
        copies.append({"id": f"copy{i}", "query": text})
    rows = unique + copies
    rng.shuffle(rows)
    return unique, rows


def test_request_key_normalises_whitespace_only() -> None:
    """Whitespace differences are the same request; other text, roles or params are not."""
    a = Query(1, 1, [{"role": "user", "content": "Is 7 prime?"}])
    b = Query(2, 2, [{"role": "user", "content": "  Is  7\nprime? "}])
    c = Query(3, 3, [{"role": "user", "content": "Is 9 prime?"}])
    d = Query(4, 4, [{"role": "user", "content": "Is 7 prime?"}], {"temperature": 0})
    e = Query(5, 5, [{"role": "system", "content": "x"}, {"role": "user", "content": "Is 7 prime?"}])
    assert request_key(a) == request_key(b)
    assert len({request_key(q) for q in (a, c, d, e)}) == 4


async def test_thirty_percent_duplicates_cost_only_the_unique_calls(tmp_path: Path) -> None:
    """A log with 30 % repeats makes exactly the calls of its unique requests; copies get their own records."""
    unique, rows = with_repeats(200, 0.3)
    cfg = make_config()
    async with running(cfg) as handle:
        await run_file(unique, str(tmp_path / "unique.jsonl"), cfg, handle.endpoint)
        unique_calls = sum(s.requests for s in handle.sim.stats.values())
    async with running(cfg) as handle:
        summary = await run_file(rows, str(tmp_path / "out.jsonl"), cfg, handle.endpoint)
        calls = sum(s.requests for s in handle.sim.stats.values())
    assert calls == unique_calls
    records = read(tmp_path / "out.jsonl")
    assert len(records) == len(rows) and {r["id"] for r in records} == {r["id"] for r in rows}
    text_of = {row["id"]: " ".join(row["query"].split()) for row in rows}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(text_of[r["id"]], []).append(r)
    assert len(groups) == 200
    copies = []
    for group in groups.values():
        [original] = [r for r in group if "cache" not in r]
        for copy in (r for r in group if r is not original):
            assert copy["cache"] == "dedup"
            assert (copy["answer"], copy["tier"]) == (original["answer"], original["tier"])
            assert copy["cost"]["total"] == 0 and copy["usage"]["total"]["prompt_tokens"] == 0
            assert copy["saved"]["cost"] == original["cost"]["total"]
            copies.append(copy)
    assert len(copies) == len(rows) - 200
    saved = summary.snapshot(cfg)["saved"]["dedup"]
    assert saved["records"] == len(copies)
    assert saved["cost"] == pytest.approx(sum(c["saved"]["cost"] for c in copies))


async def test_dedup_can_be_switched_off(tmp_path: Path) -> None:
    """With dedup off every copy is called again."""
    from dataclasses import replace

    _unique, rows = with_repeats(30, 0.5)
    cfg = make_config()
    off = cfg.with_overrides(dedup=replace(cfg.dedup, enabled=False))
    async with running(cfg) as handle:
        await run_file(rows, str(tmp_path / "a.jsonl"), off, handle.endpoint)
        classifier_calls = handle.sim.stats["Qwen3.5-0.8B"].requests
    assert classifier_calls >= len(rows)  # one classification per line, copies included
    assert not any(r.get("cache") for r in read(tmp_path / "a.jsonl"))


async def test_second_run_with_the_cache_makes_no_calls(tmp_path: Path) -> None:
    """The persistent cache answers a rerun of the same log entirely; an expired entry is a miss."""
    rows = queries(60)
    cfg = make_config()
    cache = str(tmp_path / "cache.sqlite")
    async with running(cfg) as handle:
        first = await run_file(rows, str(tmp_path / "1.jsonl"), cfg, handle.endpoint, cache_path=cache)
        first_calls = sum(s.requests for s in handle.sim.stats.values())
    async with running(cfg) as handle:
        second = await run_file(rows, str(tmp_path / "2.jsonl"), cfg, handle.endpoint, cache_path=cache)
        assert sum(s.requests for s in handle.sim.stats.values()) == 0
    assert first_calls > 0 and second.ok == 60
    records = read(tmp_path / "2.jsonl")
    assert all(r["cache"] == "hit" and r["cost"]["total"] == 0 for r in records)
    before = {r["id"]: r["answer"] for r in read(tmp_path / "1.jsonl")}
    assert {r["id"]: r["answer"] for r in records} == before
    snap = second.snapshot(cfg)["saved"]["hit"]
    assert snap["records"] == 60 and snap["cost"] == pytest.approx(first.cost_classifier + first.cost_answer)
    async with running(cfg) as handle:
        await run_file(rows, str(tmp_path / "3.jsonl"), cfg, handle.endpoint, cache_path=cache, cache_ttl_s=1e-9)
        assert sum(s.requests for s in handle.sim.stats.values()) > 0


async def test_two_runs_share_one_cache_file(tmp_path: Path) -> None:
    """Two concurrent runs on one cache file both finish with every record."""
    cfg = make_config()
    cache = str(tmp_path / "cache.sqlite")
    done: dict[str, int] = {}
    async with running(cfg) as handle:

        async def one(name: str, rows: list[dict[str, Any]]) -> None:
            summary = await run_file(rows, str(tmp_path / f"{name}.jsonl"), cfg, handle.endpoint, cache_path=cache)
            done[name] = summary.ok

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "a", queries(80, "a"))
            tg.start_soon(one, "b", queries(80, "b") + queries(40, "a"))
    assert done == {"a": 80, "b": 120}


async def test_a_corrupt_cache_degrades_to_no_cache(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A cache file that is not a database: one warning, and the run still succeeds."""
    cfg = make_config()
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    async with running(cfg) as handle:
        summary = await run_file(queries(10), str(tmp_path / "out.jsonl"), cfg, handle.endpoint, cache_path=str(cache))
    assert summary.ok == 10
    err = capfd.readouterr().err
    assert err.count("response cache") == 1 and "without the cache" in err
