"""The library API; the CLI is a thin layer over it.

    async with cascade_batch.stream(queries, config, endpoint) as results:
        async for record in results:
            ...

    summary = await cascade_batch.run_file("in.jsonl", "out.jsonl", config, endpoint)

`queries` is a path (`-` for stdin) or an iterable / async iterable of input
records (dicts in any DESIGN §2 shape). Records come out in completion order.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream as ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream as ObjectSendStream

from .cache import ResponseCache, settings_salt
from .caller import Caller
from .client import Endpoint, make_client
from .config import Config
from .control import RunControl
from .dedup import Deduper, Reuse
from .errors import ConfigError, unwrap_groups
from .jsonl import count_lines, read_lines
from .limits import Gates, Windows, local_windows
from .outfile import OutputFile
from .pipeline import Item, Reading, Record, Stage, run_pipeline
from .records import INPUT_ERRORS
from .summary import Summary

Queries = str | Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]]


def resolve_endpoint(cfg: Config, base_url: str | None = None) -> Endpoint:
    """`--base-url` > `OPENAI_BASE_URL` > config; the key from the env var the config names."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") or cfg.base_url
    key = os.environ.get(cfg.api_key_env, "")
    if not key:
        raise ConfigError(
            f"no API key: set the environment variable {cfg.api_key_env} (or use --simulate for the "
            f"built-in simulator); endpoint: {url}"
        )
    return Endpoint(url, key)


async def _items(queries: Queries, max_line_bytes: int) -> AsyncIterator[Item]:
    if isinstance(queries, str):
        async for item in read_lines(queries, max_line_bytes):
            yield item
    elif isinstance(queries, AsyncIterable):
        n = 0
        async for record in queries:
            n += 1
            yield n, record
    else:
        for n, record in enumerate(queries, 1):
            yield n, record


@asynccontextmanager
async def open_caller(
    cfg: Config, endpoint: Endpoint, models: tuple[str, ...] = (), windows: Windows | None = None
) -> AsyncIterator[Caller]:
    """A client with one gate per model (the config's, plus `models`), closed on exit.

    `windows` replaces the local rate windows (the Ray engine leases from a shared budget).
    """
    names = tuple(dict.fromkeys((*cfg.used_models(), *models)))
    connections = sum(cfg.models[m].max_concurrency for m in names)
    client = make_client(endpoint, cfg.retry, connections=connections, backend=cfg.http_backend)
    windows = windows or partial(local_windows, window_s=cfg.rate_window_s)
    try:
        yield Caller(client, Gates.build(cfg.models, names, windows), cfg, secret=endpoint.api_key)
    finally:
        with anyio.CancelScope(shield=True):
            await client.close()


@asynccontextmanager
async def stream(
    queries: Queries,
    cfg: Config,
    endpoint: Endpoint,
    *,
    reading: Reading | None = None,
    control: RunControl | None = None,
    classify_only: bool = False,
    items: AsyncIterable[Item] | None = None,
    cache: ResponseCache | None = None,
    windows: Windows | None = None,
    buffer: int = 256,
) -> AsyncIterator[ObjectReceiveStream[Record]]:
    """Run the cascade over `queries`; yields the stream of output records.

    Leaving the block early cancels the run (no task outlives it). `reading`
    skips lines already done (resume); `control` lets another task stop the
    run gracefully; `classify_only` labels queries without answering them;
    `items` (numbered raw lines or records) replaces `queries` when given.
    Identical requests are answered once (`cfg.dedup`); an opened `cache`
    answers requests seen in earlier runs.
    """
    reading = reading if reading is not None else Reading()
    deduper = Deduper(cfg.currency, cfg.dedup.window) if cfg.dedup.enabled else None
    if deduper is not None or cache is not None:
        reading.reuse = Reuse(deduper, cache, settings_salt(cfg, classify_only=classify_only), cfg.currency)
    async with open_caller(cfg, endpoint, windows=windows) as caller:
        send, recv = anyio.create_memory_object_stream[Record](buffer)
        with unwrap_groups():
            async with anyio.create_task_group() as tg:
                if control is not None:
                    control.run_scope = tg.cancel_scope
                    reading.scope = control.read_scope
                    tg.start_soon(control.grace_timer)
                source = items if items is not None else _items(queries, cfg.input.max_line_bytes)
                stage = Stage(cfg, caller, classify_only=classify_only)
                if reading.reuse is not None:
                    inner_send, inner_recv = anyio.create_memory_object_stream[Record](buffer)
                    tg.start_soon(partial(run_pipeline, source, stage, inner_send, reading=reading))
                    tg.start_soon(_fan_out, inner_recv, send, reading.reuse)
                else:
                    tg.start_soon(partial(run_pipeline, source, stage, send, reading=reading))
                async with recv:
                    yield recv
                tg.cancel_scope.cancel()


async def _fan_out(records: ObjectReceiveStream[Record], out: ObjectSendStream[Record], reuse: Reuse) -> None:
    """Pass records on, each followed by the records of the identical requests parked behind it."""
    async with records, out:
        async for record in records:
            await out.send(record)
            for copy in await reuse.finish(record):
                await out.send(copy)


async def run_file(
    queries: Queries,
    output: str,
    cfg: Config,
    endpoint: Endpoint,
    *,
    mode: str = "new",
    retry_errors: bool = False,
    max_errors: int = 0,
    control: RunControl | None = None,
    classify_only: bool = False,
    output_format: str = "cascade",
    cache_path: str | None = None,
    cache_ttl_s: float = 0.0,
    items: AsyncIterable[Item] | None = None,
    windows: Windows | None = None,
    summary: Summary | None = None,
    on_record: Callable[[Summary], None] | None = None,
) -> Summary:
    """Stream `queries` to the JSONL file `output` (`-` = stdout); return the totals.

    `mode`: `new` refuses a non-empty output, `resume` skips the input lines
    it already holds (with `retry_errors`, its error records are dropped and
    run again), `overwrite` starts it over. Records are appended as they
    finish, several whole lines per `write` when they arrive together.
    `summary` folds every record in the file, kept ones included.
    `cache_path` turns on the persistent response cache (entries older than
    `cache_ttl_s` ignored, 0 = never expire).
    `max_errors` > 0 stops the run gracefully once that many input lines were
    unusable (`control.reason == "max_errors"`). `output_format` is
    `cascade` or `openai-batch` (see `formats`).
    """
    summary = summary if summary is not None else Summary(currency=cfg.currency)
    control = control if control is not None else RunControl()
    expected = 0
    if isinstance(queries, str) and queries != "-" and os.path.isfile(queries):
        expected = await anyio.to_thread.run_sync(count_lines, queries)  # sizes the id index once
    out = OutputFile(
        output,
        mode=mode,
        retry_errors=retry_errors,
        on_kept=summary.add_resumed,
        output_format=output_format,
        expected_ids=expected,
    )
    input_errors = 0
    cache = ResponseCache(cache_path, ttl_s=cache_ttl_s) if cache_path else None
    try:
        if cache is not None:
            await cache.open()
        reading = Reading(skip=out.resumed.done, ids=out.resumed.ids)
        async with stream(
            queries,
            cfg,
            endpoint,
            reading=reading,
            control=control,
            classify_only=classify_only,
            cache=cache,
            items=items,
            windows=windows,
        ) as results:
            async for record in results:
                batch = [record]
                while len(batch) < 512:
                    try:
                        batch.append(results.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                out.write_records(batch)
                for r in batch:
                    summary.add(r)
                    if max_errors and r["status"] == "error" and r["error"]["type"] in INPUT_ERRORS:
                        input_errors += 1
                        if input_errors == max_errors:
                            control.stop("max_errors")
                if on_record is not None:
                    on_record(summary)
    finally:
        out.close()
        if cache is not None:
            await cache.close()
    return summary
