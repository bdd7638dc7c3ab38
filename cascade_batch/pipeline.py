"""The task group that wires the stages; it only moves records.

    reader ─▶ classify workers ─▶ tier 1 pool ─▶ tier 2 pool ─▶ tier 3 pool
       │              (route)          │   escalate   │   escalate   │
       └────────────── error records ──┴──────────────┴──────────────┴─▶ results

Every stream is bounded. Escalation only moves from tier i to tier i+1, so
the graph is acyclic and full buffers cannot deadlock. A stage ends when all
senders of its input are closed (each worker owns a clone of the streams it
uses), so "finished" needs no counters.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream as ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream as ObjectSendStream

from .caller import Caller
from .classify import classify
from .config import Config
from .dedup import Reuse
from .errors import CallError
from .escalation import error_escalation, escalation_reason, top_tier_problem
from .jsonl import IdIndex, LineSet, LineTooLong
from .limits import estimate_prompt_tokens
from .outcome import Job, build_label_record, build_record
from .records import InputProblem, Query, parse_line, parse_record, problem_record

# What the reader accepts: (line number, raw line | over-long marker | already-parsed object).
Item = tuple[int, "bytes | LineTooLong | dict[str, Any]"]
Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stage:
    """What every worker needs: config, the caller, a clock; `classify_only` skips answering."""

    cfg: Config
    caller: Caller
    clock: Callable[[], float] = anyio.current_time
    classify_only: bool = False


@dataclass(slots=True)
class Reading:
    """What the reader needs besides the input: lines to skip (resume), ids seen, its cancel scope."""

    skip: LineSet | None = None
    ids: IdIndex = field(default_factory=IdIndex)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    reuse: Reuse | None = None  # dedup and cache: answers some queries without calls


async def run_pipeline(
    items: AsyncIterable[Item],
    stage: Stage,
    results: ObjectSendStream[Record],
    *,
    reading: Reading | None = None,
    buffer: int = 256,
) -> None:
    """Send exactly one record into `results` for every non-blank item not skipped; close it at the end.

    After a graceful stop (`reading.scope` cancelled) queries not yet
    classified are dropped unanswered (a resume redoes them); those already
    classified, which cost money, are finished.
    """
    reading = reading if reading is not None else Reading()
    cfg = stage.cfg
    n_tiers = len(cfg.tiers)
    q_send, q_recv = anyio.create_memory_object_stream[Query](buffer)
    t_send, t_recv = [], []
    for _ in range(n_tiers):
        s, r = anyio.create_memory_object_stream[Job](buffer)
        t_send.append(s)
        t_recv.append(r)
    async with anyio.create_task_group() as tg:
        tg.start_soon(read_stage, items, cfg, q_send, results.clone(), reading)
        for _ in range(cfg.models[cfg.classifier.model].max_concurrency):
            if stage.classify_only:
                tg.start_soon(label_stage, stage, q_recv.clone(), results.clone(), reading.scope)
            else:
                tg.start_soon(classify_stage, stage, q_recv.clone(), [s.clone() for s in t_send], reading.scope)
        for i, tier in enumerate(() if stage.classify_only else cfg.tiers):
            nxt = t_send[i + 1] if i + 1 < n_tiers else None
            for _ in range(cfg.models[tier.model].max_concurrency):
                tg.start_soon(tier_stage, stage, i, t_recv[i].clone(), nxt.clone() if nxt else None, results.clone())
        q_recv.close()
        results.close()
        for send, recv in zip(t_send, t_recv, strict=True):
            send.close()
            recv.close()


def to_query(line: int, item: bytes | LineTooLong | dict[str, Any], max_line_bytes: int) -> Query | InputProblem | None:
    """One input item → Query, InputProblem, or None for a blank line."""
    if isinstance(item, LineTooLong):
        return InputProblem(line, "line_too_long", f"the line has {item.size} bytes; the limit is {max_line_bytes}")
    if isinstance(item, dict):
        return parse_record(item, line)
    if not item.strip():
        return None
    return parse_line(item, line)


async def read_stage(
    items: AsyncIterable[Item],
    cfg: Config,
    queries: ObjectSendStream[Query],
    results: ObjectSendStream[Record],
    reading: Reading,
) -> None:
    """Parse lines, reject bad and duplicate ones as error records, pass queries on.

    Cancelling `reading.scope` stops reading (a graceful stop): what was read
    already still flows through the stages.
    """
    context = max(cfg.models[t.model].context_tokens for t in cfg.tiers)
    async with queries, results:
        with reading.scope:
            async for line, item in items:
                if reading.skip is not None and line in reading.skip:
                    continue
                parsed = to_query(line, item, cfg.input.max_line_bytes)
                if parsed is None:
                    continue
                parsed = _check_query(parsed, reading.ids, context)
                if isinstance(parsed, InputProblem):
                    await results.send(problem_record(parsed))
                    continue
                verdict = await reading.reuse.admit(parsed) if reading.reuse is not None else True
                if verdict is True:
                    await queries.send(parsed)
                elif verdict is not False:
                    await results.send(verdict)


def _check_query(parsed: Query | InputProblem, ids: IdIndex, context: int) -> Query | InputProblem:
    """Duplicate ids and queries no tier can hold become problems."""
    if isinstance(parsed, InputProblem):
        return parsed
    if not ids.add(parsed.id):
        return InputProblem(parsed.line, "duplicate_id", f"id {parsed.id!r} appeared on an earlier line", parsed.id)
    if estimate_prompt_tokens(parsed.messages) > context:
        return InputProblem(
            parsed.line,
            "query_too_long",
            f"the query needs about {estimate_prompt_tokens(parsed.messages)} tokens; the largest "
            f"tier's context window is {context}",
            parsed.id,
        )
    return parsed


async def classify_stage(
    stage: Stage,
    queries: ObjectReceiveStream[Query],
    tiers: list[ObjectSendStream[Job]],
    stopped: anyio.CancelScope,
) -> None:
    """Classify each query and route it to its tier's pool; after a stop, drop what is left."""
    async with AsyncExitStack() as stack:
        for s in (queries, *tiers):
            await stack.enter_async_context(s)
        async for query in queries:
            if stopped.cancel_called:
                continue
            job = await classified(stage, query)
            await tiers[job.tier].send(job)


async def label_stage(
    stage: Stage,
    queries: ObjectReceiveStream[Query],
    results: ObjectSendStream[Record],
    stopped: anyio.CancelScope,
) -> None:
    """Labelling mode: classify each query and write its label record; no answer is asked for."""
    async with queries, results:
        async for query in queries:
            if stopped.cancel_called:
                continue
            job = await classified(stage, query)
            await results.send(build_label_record(job, stage.cfg, stage.clock()))


async def classified(stage: Stage, query: Query) -> Job:
    """A new job for `query` with the classifier's verdict (the call is charged to the job)."""
    job = Job(query, stage.clock())

    async def call(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        done, _ = await stage.caller.call("classifier", model, messages, params, job.ledger)
        return done

    cfg = stage.cfg
    job.classification = await classify(query.text, cfg.classifier, cfg.tier_names, call)
    job.tier = cfg.tier_index(job.classification.label)
    return job


async def tier_stage(
    stage: Stage,
    index: int,
    jobs: ObjectReceiveStream[Job],
    escalate: ObjectSendStream[Job] | None,
    results: ObjectSendStream[Record],
) -> None:
    """Answer jobs with this tier's model; pass inadequate ones up, finished ones out."""
    async with AsyncExitStack() as stack:
        for s in (jobs, results, escalate):
            if s is not None:
                await stack.enter_async_context(s)
        async for job in jobs:
            record = await answer(stage, index, job)
            if record is None:
                assert escalate is not None, "the top tier never escalates"
                await escalate.send(job)
            else:
                await results.send(record)


def answer_request(cfg: Config, query: Query) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Messages and params of an answering call: config defaults, then the record's own."""
    messages = query.messages
    if cfg.answer.system_prompt and not any(m.get("role") in ("system", "developer") for m in messages):
        messages = [{"role": "system", "content": cfg.answer.system_prompt}, *messages]
    params: dict[str, Any] = {"temperature": cfg.answer.temperature}
    if cfg.answer.max_tokens:
        params["max_tokens"] = cfg.answer.max_tokens
    params.update(query.params)
    return messages, params


async def answer(stage: Stage, index: int, job: Job) -> Record | None:
    """One answering attempt at tier `index`: the finished record, or None to escalate."""
    cfg = stage.cfg
    tier = cfg.tiers[index]
    is_top = index == len(cfg.tiers) - 1
    messages, params = answer_request(cfg, job.query)
    if estimate_prompt_tokens(messages) > cfg.models[tier.model].context_tokens:
        err = CallError(
            "context_length",
            f"the query needs more than {tier.model}'s {cfg.models[tier.model].context_tokens} context tokens",
        )
        if not is_top:
            job.escalate(tier, "context_length")
            return None
        return build_record(job, cfg, stage.clock(), tier=tier, error=err)
    try:
        done, attempts = await stage.caller.call("answer", tier.model, messages, params, job.ledger)
    except CallError as exc:
        job.attempts += exc.attempts
        reason = error_escalation(exc, cfg.escalation, is_top=is_top)
        if reason is not None:
            job.escalate(tier, reason, exc.kind)
            return None
        return build_record(job, cfg, stage.clock(), tier=tier, error=exc)
    job.attempts += attempts
    if job.first_prompt_tokens is None:
        job.first_prompt_tokens = done.usage.prompt_tokens
    reason = escalation_reason(done, cfg.escalation, is_top=is_top)
    if reason is not None:
        job.escalate(tier, reason)
        return None
    problem = top_tier_problem(done)
    if problem is not None:
        kind, _, message = problem.partition(": ")
        return build_record(job, cfg, stage.clock(), tier=tier, done=done, error=CallError(kind, message))
    return build_record(job, cfg, stage.clock(), tier=tier, done=done)
