"""`cascade-batch audit`: what the cascade costs in quality, on the user's own data.

A stratified random sample of records answered below the top tier is asked
again of the top tier (same messages, same params), and a judge model
(default: the top tier) compares the two answers pairwise, in both orders to
cancel position bias, with a fixed one-word protocol (`A`, `B`, `tie`).
Both orders must agree for a win or a loss; otherwise it is a tie. Every
call goes through the same gates, retries and accounting as `run`, and each
judgement is appended to an audit file so `--resume` continues an audit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from .caller import Caller
from .client import Endpoint
from .completion import Completion
from .config import Config
from .errors import CallError, ConfigError
from .escalation import word_count
from .jsonl import read_lines
from .pipeline import answer_request
from .pricing import ledger_costs
from .project import Reservoir
from .records import Query, parse_line
from .usage import Ledger

JUDGE_PROMPT = """\
You are an impartial judge. Compare two answers to the same user request for correctness, completeness \
and helpfulness. Reply with exactly one word: A if answer A is better, B if answer B is better, or tie if \
they are about equally good."""

_VERDICT = re.compile(r"\b(tie|a|b)\b", re.IGNORECASE)
REPLAY_MIN_WORDS = (5, 10, 15, 20, 30, 40, 60)


def parse_verdict(raw: str | None) -> str | None:
    """`A`, `B` or `tie` from a judge's reply (`"A"`, `"**B**"`, `"Answer A."`, `"Tie"`), else None."""
    if not raw:
        return None
    text = re.sub(r"<think>.*?(</think>|$)", " ", raw, flags=re.DOTALL | re.IGNORECASE)
    text = text.replace("Answer A", "A").replace("Answer B", "B").replace("answer a", "A").replace("answer b", "B")
    match = _VERDICT.search(text)
    if match is None:
        return None
    word = match.group(1).lower()
    return "tie" if word == "tie" else word.upper()


def judge_messages(request: str, a: str, b: str) -> list[dict[str, Any]]:
    user = f"Request:\n{request}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\nWhich answer is better? Reply A, B or tie."
    return [{"role": "system", "content": JUDGE_PROMPT}, {"role": "user", "content": user}]


def combine(first: str | None, second: str | None) -> str:
    """Outcome for the cascade from two orders: first = (cascade, top), second = (top, cascade)."""
    cascade_first = {"A": "win", "B": "loss"}.get(first or "", "tie")
    cascade_second = {"B": "win", "A": "loss"}.get(second or "", "tie")
    return cascade_first if cascade_first == cascade_second else "tie"


def wilson(k: int, n: int, z: float = 1.959964) -> list[float]:
    """The Wilson score 95 % interval of a proportion k/n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def allocate(counts: dict[str, int], total: int) -> dict[str, int]:
    """Stratified sample sizes: proportional to each tier's records, at least 1 where there are any."""
    available = sum(counts.values())
    if available <= total:
        return dict(counts)
    sizes = {t: min(c, max(1, round(total * c / available))) for t, c in counts.items() if c}
    return sizes


@dataclass
class Judged:
    """One audited record (a line of the audit file)."""

    line: int
    tier: str
    outcome: str  # win / tie / loss, for the cascade
    words: int  # of the cascade's answer
    cascade_cost: float  # what the cascade paid for this record
    top_cost: float  # what asking the top tier cost in this audit
    audit_cost: float  # everything this audit paid for this record (top answer + judge calls)
    verdicts: tuple[str | None, str | None]

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.line,
            "line": self.line,
            "status": "ok",
            "tier": self.tier,
            "outcome": self.outcome,
            "words": self.words,
            "cascade_cost": self.cascade_cost,
            "top_cost": self.top_cost,
            "audit_cost": self.audit_cost,
            "verdicts": list(self.verdicts),
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Judged:
        return cls(
            r["line"],
            r["tier"],
            r["outcome"],
            r["words"],
            r["cascade_cost"],
            r["top_cost"],
            r["audit_cost"],
            tuple(r["verdicts"]),
        )


def candidates(records: Iterable[dict[str, Any]], top: str, seed: int, sample: int) -> dict[int, dict[str, Any]]:
    """The stratified sample (by final tier) of ok, freshly answered records below the top tier."""
    pools: dict[str, Reservoir] = {}
    counts: dict[str, int] = {}
    for r in records:
        if r.get("status") != "ok" or r.get("cache") or r.get("mode") or r.get("tier") == top or not r.get("answer"):
            continue
        tier = r["tier"]
        counts[tier] = counts.get(tier, 0) + 1
        pools.setdefault(tier, Reservoir(sample, seed)).offer(r["line"], r)
    sizes = allocate(counts, sample)
    chosen: dict[int, dict[str, Any]] = {}
    for tier, pool in pools.items():
        for r in sorted(pool.items, key=lambda r: pool.priority(r["line"]))[: sizes.get(tier, 0)]:
            chosen[r["line"]] = r
    return chosen


async def load_queries(path: str, lines: set[int], cfg: Config) -> dict[int, Query]:
    """The input requests of the sampled lines (one streaming pass)."""
    found: dict[int, Query] = {}
    async for number, item in read_lines(path, cfg.input.max_line_bytes):
        if number in lines and isinstance(item, bytes):
            parsed = parse_line(item, number)
            if isinstance(parsed, Query):
                found[number] = parsed
    return found


async def judge_one(caller: Caller, cfg: Config, judge_model: str, record: dict[str, Any], query: Query) -> Judged:
    """Ask the top tier, then the judge in both orders; everything paid is counted."""
    ledger = Ledger()
    messages, params = answer_request(cfg, query)
    top_answer = ""
    try:
        done, _ = await caller.call("answer", cfg.top.model, messages, params, ledger)
        top_answer = done.content or ""
    except CallError:
        pass
    top_cost = sum(ledger_costs(ledger, cfg.models))
    cascade_answer = record["answer"]
    verdicts: list[str | None] = []
    for a, b in ((cascade_answer, top_answer), (top_answer, cascade_answer)):
        judge = judge_messages(query.text, a, b)
        try:
            verdict: Completion | None
            verdict, _ = await caller.call("judge", judge_model, judge, {"temperature": 0.0, "max_tokens": 5}, ledger)
        except CallError:
            verdict = None
        verdicts.append(parse_verdict(verdict.content if verdict else None))
    outcome = combine(verdicts[0], verdicts[1]) if top_answer else "tie"
    return Judged(
        record["line"],
        record["tier"],
        outcome,
        word_count(cascade_answer),
        record["cost"]["total"],
        top_cost,
        sum(ledger_costs(ledger, cfg.models)),
        (verdicts[0], verdicts[1]),
    )


async def judge_all(
    caller: Caller,
    cfg: Config,
    judge_model: str,
    todo: list[tuple[dict[str, Any], Query]],
    on_done: Any,
    workers: int = 32,
) -> None:
    """Judge every sampled record with a bounded pool of workers."""
    send, recv = anyio.create_memory_object_stream[tuple[dict[str, Any], Query]](workers)

    async def worker(items: Any) -> None:
        async with items:
            async for record, query in items:
                on_done(await judge_one(caller, cfg, judge_model, record, query))

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker, recv.clone())
        recv.close()
        async with send:
            for item in todo:
                await send.send(item)


def summarise(judged: list[Judged], cfg: Config, *, run_savings_pct: float | None) -> dict[str, Any]:
    """The audit JSON (DESIGN §6)."""

    def shares(group: list[Judged]) -> dict[str, Any]:
        n = len(group)
        k = {o: sum(1 for j in group if j.outcome == o) for o in ("win", "tie", "loss")}
        return {"n": n, **{o: (k[o] / n if n else 0.0) for o in k}, "loss_ci95": wilson(k["loss"], n)}

    tiers = sorted({j.tier for j in judged}, key=lambda t: cfg.tier_names.index(t) if t in cfg.tier_names else 99)
    overall = shares(judged)
    overall.pop("n")
    current = cfg.escalation.min_words
    replay: list[dict[str, Any]] = []
    for threshold in sorted({*REPLAY_MIN_WORDS, current}):
        if threshold < current:
            # answers discarded for being short are not kept: a lower threshold's quality cannot be replayed
            replay.append({"min_words": threshold, "loss": None, "cost": None, "note": "not replayable"})
            continue
        losses = cost = 0.0
        for j in judged:
            escalates = j.words < threshold
            losses += 0 if escalates else (j.outcome == "loss")
            cost += j.cascade_cost + (j.top_cost if escalates else 0.0)
        n = len(judged) or 1
        replay.append({"min_words": threshold, "loss": losses / n, "cost": cost})
    return {
        "sampled": len(judged),
        "overall": overall,
        "by_tier": {t: shares([j for j in judged if j.tier == t]) for t in tiers},
        "audit_cost": sum(j.audit_cost for j in judged),
        "run_savings_pct": run_savings_pct,
        "min_words_replay": replay,
        "judge": {"unparsed_verdicts": sum(1 for j in judged for v in j.verdicts if v is None)},
        "currency": cfg.currency,
    }


async def audit(
    output: str,
    input_path: str,
    cfg: Config,
    endpoint: Endpoint,
    *,
    sample: int = 50,
    judge_model: str | None = None,
    seed: int = 0,
    audit_path: str | None = None,
    mode: str = "new",
) -> dict[str, Any]:
    """Audit a run's output against its input; judgements go to `audit_path` (resumable)."""
    from .api import open_caller
    from .formats import unwrap
    from .outfile import OutputFile
    from .report import read_output

    judge = judge_model or cfg.top.model
    if judge not in cfg.models:
        raise ConfigError(f"judge model {judge!r} has no [models] entry with prices")
    report = read_output(output, cfg)
    snap = report.summary.snapshot(cfg)

    def records() -> Iterable[dict[str, Any]]:
        with open(output, "rb") as fh:
            for raw in fh:
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    yield unwrap(value)

    chosen = candidates(records(), cfg.top.name, seed, sample)
    queries = await load_queries(input_path, set(chosen), cfg)
    judged: list[Judged] = []
    out = OutputFile(
        audit_path or output + ".audit.jsonl", mode=mode, on_kept=lambda r: judged.append(Judged.from_record(r))
    )
    try:
        done = out.resumed.done
        todo = [(chosen[line], queries[line]) for line in sorted(chosen) if line in queries and line not in done]

        def record(j: Judged) -> None:
            out.write_records([j.as_record()])
            judged.append(j)

        async with open_caller(cfg, endpoint, (judge,)) as caller:
            await judge_all(caller, cfg, judge, todo, record)
    finally:
        out.close()
    result = summarise(judged, cfg, run_savings_pct=snap["cost"]["savings_pct"])
    result["judge"]["model"] = judge
    result["missing_input_lines"] = len(chosen) - len(queries)
    return result
