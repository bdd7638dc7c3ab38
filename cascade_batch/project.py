"""`cascade-batch project`: what the cascade would cost on a log, before paying for it.

One streaming pass over INPUT classifies every query (or a uniform random
sample of `sample` queries, reservoir-sampled), keeping per tier a random
sample of `answer_sample` queries; only those are answered: through the
cascade (escalations included), and directly by the middle and the top tier
for the comparison scenarios. Costs are extrapolated per tier from the
answered samples; the 95 % intervals are bootstrap percentiles over every
sampled quantity (answered samples and, when sampling, the classified ones).

Estimates, stated in the output's `method`: input tokens of the answering
calls = the classifier's reported prompt tokens minus its prompt overhead
(measured on the answered sample); the tier-3 alternatives reprice the
top-tier tokens of the cascade sample at each alternative's price.
"""

from __future__ import annotations

import contextlib
import heapq
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import anyio

from .api import open_caller, stream
from .client import Endpoint
from .config import Config, ModelConfig
from .errors import CallError
from .jsonl import LineTooLong, read_lines
from .pipeline import answer_request
from .pricing import call_cost, ledger_costs
from .records import Query, parse_line
from .usage import Ledger, Usage

TIER3_ALTERNATIVES = ("Mistral-Medium-3.5-128B", "Qwen3.5-122B-A10B-FP8", "gpt-oss-120b")
BOOTSTRAP = 1000


class Reservoir:
    """A uniform random sample of `size` items from a stream of unknown length (bottom-k sampling).

    Each item gets a pseudo-random priority from (seed, its line number) and
    the `size` smallest are kept: the sample is the same whatever order the
    items arrive in (the pipeline finishes records out of order).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.seen = 0
        self._heap: list[tuple[int, int, Any]] = []  # (-priority, line, item): a max-heap of the kept ones

    def priority(self, line: int) -> int:
        digest = blake2b(f"{self.seed}:{line}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little")

    def offer(self, line: int, item: Any) -> None:
        self.seen += 1
        entry = (-self.priority(line), line, item)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:
            heapq.heapreplace(self._heap, entry)

    @property
    def items(self) -> list[Any]:
        return [item for _, _, item in sorted(self._heap, key=lambda e: e[1])]


@dataclass
class Classified:
    """What the classification pass learned: per query (tier index, classifier cost, prompt tokens)."""

    lines: int = 0  # physical lines read (blank ones included)
    unusable: int = 0  # input problems (no cost)
    queries: int = 0  # usable queries in the whole input
    rows: list[tuple[int, float, int]] = field(default_factory=list)  # when sampling: one per classified query
    counts: list[int] = field(default_factory=list)  # per tier, classified queries
    cls_cost: float = 0.0
    cls_prompt: int = 0
    answer_pool: list[Reservoir] = field(default_factory=list)  # per tier: raw lines to answer


async def _numbered(
    path: str, cfg: Config, keep: dict[int, bytes], out: Classified
) -> AsyncIterator[tuple[int, bytes | LineTooLong]]:
    """Input lines for the pipeline, remembering each raw line until its record comes back."""
    async for number, item in read_lines(path, cfg.input.max_line_bytes):
        out.lines = number
        if isinstance(item, bytes) and item.strip():
            keep[number] = item
        yield number, item


async def classify_pass(
    path: str, cfg: Config, endpoint: Endpoint, *, sample: int, answer_sample: int, rng: random.Random
) -> Classified:
    """Stream INPUT once; classify all queries, or a reservoir sample of `sample` of them."""
    n_tiers = len(cfg.tiers)
    seed = rng.randrange(2**32)
    out = Classified(counts=[0] * n_tiers, answer_pool=[Reservoir(answer_sample, seed + t) for t in range(n_tiers)])
    keep: dict[int, bytes] = {}
    if sample:
        pool = Reservoir(sample, seed - 1)
        async for number, item in read_lines(path, cfg.input.max_line_bytes):
            out.lines = number
            if isinstance(item, bytes) and item.strip():
                parsed = parse_line(item, number)
                if isinstance(parsed, Query):
                    out.queries += 1
                    pool.offer(number, (number, item))
                else:
                    out.unusable += 1
        keep.update(pool.items)
        chosen = sorted(pool.items)

        async def items() -> AsyncIterator[tuple[int, bytes | LineTooLong]]:
            for number, raw in chosen:
                yield number, raw

        source = items()
    else:
        source = _numbered(path, cfg, keep, out)
    async with stream((), cfg, endpoint, classify_only=True, items=source) as results:
        async for record in results:
            raw = keep.pop(record["line"], None)
            if record["status"] != "ok":
                out.unusable += 0 if sample else 1
                continue
            if not sample:
                out.queries += 1
            tier = cfg.tier_index(record["tier"])
            cost = record["cost"]["classifier"]
            prompt = record["usage"]["classifier"]["prompt_tokens"]
            out.counts[tier] += 1
            out.cls_cost += cost
            out.cls_prompt += prompt
            if sample:
                out.rows.append((tier, cost, prompt))
            if raw is not None:
                out.answer_pool[tier].offer(record["line"], (record["line"], raw))
    return out


@dataclass
class Answered:
    """Per answered query: its classified tier and the cost of each scenario."""

    tier: int
    cascade: float  # answer cost through the cascade (escalations included)
    middle: float
    top: float
    prompt_tokens: int  # of the answering call
    completion_tokens: int  # of the kept cascade answer
    escalated: bool
    top_tokens: tuple[int, int]  # the cascade's tokens on the top-tier model (for repricing)


async def answer_samples(cls: Classified, cfg: Config, endpoint: Endpoint) -> tuple[list[Answered], float]:
    """Answer each tier's sample through the cascade and directly by the middle and top tiers.

    Returns the per-query results and what the answering itself cost.
    """
    picked = [(tier, line, raw) for tier, pool in enumerate(cls.answer_pool) for line, raw in pool.items]
    tier_of = {line: tier for tier, line, _ in picked}
    cascade: dict[int, dict[str, Any]] = {}

    async def lines() -> AsyncIterator[tuple[int, bytes | LineTooLong]]:
        for _tier, line, raw in sorted(picked, key=lambda p: p[1]):
            yield line, raw

    spent = 0.0
    async with stream((), cfg, endpoint, items=lines()) as results:
        async for record in results:
            cascade[record["line"]] = record
            spent += record.get("cost", {}).get("total", 0.0)
    middle = cfg.tiers[len(cfg.tiers) // 2].model if len(cfg.tiers) > 2 else cfg.tiers[0].model
    direct: dict[tuple[int, str], float] = {}
    async with open_caller(cfg, endpoint) as caller, anyio.create_task_group() as tg:
        for _tier, line, raw in picked:
            query = parse_line(raw, line)
            assert isinstance(query, Query)
            for model in dict.fromkeys((middle, cfg.top.model)):
                tg.start_soon(_direct, caller, cfg, query, model, direct)
    spent += sum(direct.values())
    out = []
    top = cfg.top.model
    for line, record in cascade.items():
        if record["status"] != "ok":
            continue
        top_use = record["usage"]["by_model"].get(top, {"prompt_tokens": 0, "completion_tokens": 0})
        top_p, top_c = top_use["prompt_tokens"], top_use["completion_tokens"]
        if top == cfg.classifier.model:  # by_model merges the classifier's call into the same model
            top_p -= record["usage"]["classifier"]["prompt_tokens"]
            top_c -= record["usage"]["classifier"]["completion_tokens"]
        answer_usage = record["usage"]["answer"]
        out.append(
            Answered(
                tier=tier_of[line],
                cascade=record["cost"]["answer"],
                middle=direct.get((line, middle), 0.0),
                top=direct.get((line, top), 0.0),
                prompt_tokens=answer_usage["prompt_tokens"] // max(1, 1 + len(record["escalations"])),
                completion_tokens=answer_usage["completion_tokens"],
                escalated=bool(record["escalations"]),
                top_tokens=(top_p, top_c),
            )
        )
    return out, spent


async def _direct(caller: Any, cfg: Config, query: Query, model: str, out: dict[tuple[int, str], float]) -> None:
    """One answer from `model` alone (a comparison scenario); failures cost what they cost."""
    messages, params = answer_request(cfg, query)
    ledger = Ledger()
    with contextlib.suppress(CallError):  # a failed comparison call still costs what it was billed
        await caller.call("answer", model, messages, params, ledger)
    out[(query.line, model)] = sum(ledger_costs(ledger, cfg.models))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def estimate(cls: Classified, answered: list[Answered], cfg: Config, *, sampled: bool) -> dict[str, Any]:
    """Projected totals for the whole input from the samples (pure; bootstrap replicates reuse it)."""
    n_tiers = len(cfg.tiers)
    if sampled and cls.rows:
        share = [sum(1 for t, _, _ in cls.rows if t == i) / len(cls.rows) for i in range(n_tiers)]
        cls_cost = _mean([c for _, c, _ in cls.rows]) * cls.queries
    else:
        total = sum(cls.counts) or 1
        share = [c / total for c in cls.counts]
        cls_cost = cls.cls_cost
    per_tier = [[a for a in answered if a.tier == i] for i in range(n_tiers)]
    queries = [share[i] * cls.queries for i in range(n_tiers)]
    scen = {"cascade": cls_cost, "all_middle": 0.0, "all_top": 0.0}
    alt = {name: cls_cost for name in TIER3_ALTERNATIVES if name in cfg.models}
    top_model = cfg.models[cfg.top.model]
    for i in range(n_tiers):
        group = per_tier[i]
        if not group:
            continue
        scen["cascade"] += queries[i] * _mean([a.cascade for a in group])
        scen["all_middle"] += queries[i] * _mean([a.middle for a in group])
        scen["all_top"] += queries[i] * _mean([a.top for a in group])
        for name in alt:
            repriced = [
                a.cascade - _tokens_cost(a.top_tokens, top_model) + _tokens_cost(a.top_tokens, cfg.models[name])
                for a in group
            ]
            alt[name] += queries[i] * _mean(repriced)
    return {
        "share": share,
        "queries": queries,
        "scenarios": scen,
        "alternatives": alt,
        "per_tier": per_tier,
        "classifier_cost": cls_cost,
    }


def _tokens_cost(tokens: tuple[int, int], model: ModelConfig) -> float:
    return call_cost(Usage(*tokens), model)


def bootstrap(
    cls: Classified,
    answered: list[Answered],
    cfg: Config,
    *,
    sampled: bool,
    rng: random.Random,
    replicates: int = BOOTSTRAP,
) -> list[dict[str, Any]]:
    """Re-estimate on resampled samples (with replacement) to get percentile intervals."""
    n_tiers = len(cfg.tiers)
    groups = [[a for a in answered if a.tier == i] for i in range(n_tiers)]
    out = []
    for _ in range(replicates):
        resampled = [x for g in groups for x in (rng.choices(g, k=len(g)) if g else [])]
        rows = rng.choices(cls.rows, k=len(cls.rows)) if sampled and cls.rows else cls.rows
        boot = Classified(
            lines=cls.lines,
            unusable=cls.unusable,
            queries=cls.queries,
            rows=rows,
            counts=cls.counts,
            cls_cost=cls.cls_cost,
            cls_prompt=cls.cls_prompt,
        )
        out.append(estimate(boot, resampled, cfg, sampled=sampled))
    return out


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


async def project(
    path: str,
    cfg: Config,
    endpoint: Endpoint,
    *,
    sample: int = 0,
    answer_sample: int = 30,
    seed: int = 0,
    scale: float = 1.0,
) -> dict[str, Any]:
    """The whole projection (DESIGN §6 `project` JSON)."""
    rng = random.Random(seed)
    cls = await classify_pass(path, cfg, endpoint, sample=sample, answer_sample=answer_sample, rng=rng)
    answered, answer_spent = await answer_samples(cls, cfg, endpoint)
    sampled = bool(sample) and cls.queries > len(cls.rows)
    point = estimate(cls, answered, cfg, sampled=sampled)
    reps = bootstrap(cls, answered, cfg, sampled=sampled, rng=rng)
    scen = point["scenarios"]

    def ci(get: Any) -> list[float]:
        values = [get(r) for r in reps]
        return [percentile(values, 0.025) * scale, percentile(values, 0.975) * scale]

    def saving(r: dict[str, Any]) -> float:
        top = r["scenarios"]["all_top"]
        return 100 * (1 - r["scenarios"]["cascade"] / top) if top else 0.0

    n_cls = len(cls.rows) if sampled else sum(cls.counts)
    overhead = _prompt_overhead(cls, answered)
    tiers = {}
    for i, tier in enumerate(cfg.tiers):
        group = point["per_tier"][i]
        q = point["queries"][i]
        tiers[tier.name] = {
            "share": point["share"][i],
            "queries": q * scale,
            "answered_sample": len(group),
            "input_tokens": q * _mean([a.prompt_tokens for a in group]) * scale,
            "output_tokens": q * _mean([a.completion_tokens for a in group]) * scale,
            "cost": q * _mean([a.cascade for a in group]) * scale,
            "ci95": ci(lambda r, i=i: r["queries"][i] * _mean([a.cascade for a in r["per_tier"][i]])),
            "escalation_rate": _mean([1.0 if a.escalated else 0.0 for a in group]),
        }
    return {
        "lines": cls.lines,
        "queries": cls.queries,
        "unusable": cls.unusable,
        "classified": n_cls,
        "answered_sample": len(answered),
        "tiers": tiers,
        "classifier": {
            "cost": point["classifier_cost"] * scale,
            "ci95": ci(lambda r: r["classifier_cost"]),
            "prompt_overhead_tokens": overhead,
        },
        "scenarios": {
            name: {"cost": value * scale, "ci95": ci(lambda r, n=name: r["scenarios"][n])}
            for name, value in scen.items()
        },
        "savings_pct": {
            "estimate": saving(point),
            "ci95": [percentile([saving(r) for r in reps], 0.025), percentile([saving(r) for r in reps], 0.975)],
        },
        "tier3_alternatives": {name: {"cost": value * scale} for name, value in point["alternatives"].items()},
        "projection_cost": cls.cls_cost + answer_spent,
        "scale": scale,
        "currency": cfg.currency,
        "method": (
            f"{'a uniform random sample of ' + str(n_cls) + ' queries was' if sampled else 'every query was'} "
            f"classified; up to {cls.answer_pool[0].size if cls.answer_pool else 0} per tier were answered through "
            f"the cascade and by the middle and top tier alone; costs extrapolate per-tier sample means; 95 % "
            f"intervals are bootstrap percentiles ({BOOTSTRAP} replicates); input tokens come from the "
            f"providers' reported usage; tier-3 alternatives reprice the top tier's tokens"
        ),
    }


def _prompt_overhead(cls: Classified, answered: list[Answered]) -> int:
    """Tokens the classifier prompt adds to a query (classifier prompt tokens minus answer prompt tokens)."""
    n = sum(cls.counts) if not cls.rows else len(cls.rows)
    if not n or not answered:
        return 0
    mean_cls = (cls.cls_prompt / n) if not cls.rows else _mean([p for _, _, p in cls.rows])
    return max(0, round(mean_cls - _mean([a.prompt_tokens for a in answered])))
