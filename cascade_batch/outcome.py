"""The state of one record in flight (`Job`) and the output record it becomes.

A Job lives from classification until its record is written, then is
dropped; nothing per record outlives the write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .classify import Classification
from .completion import Completion
from .config import Config, TierConfig
from .errors import CallError
from .pricing import baseline_cost, ledger_costs
from .records import Query
from .usage import Ledger


@dataclass(slots=True)
class Job:
    query: Query
    started: float  # monotonic seconds, when classification began
    ledger: Ledger = field(default_factory=Ledger)
    classification: Classification | None = None
    tier: int = 0
    escalations: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0  # answering calls, retries included
    first_prompt_tokens: int | None = None  # of the first answer that came back

    def escalate(self, tier: TierConfig, reason: str, detail: str | None = None) -> None:
        hop: dict[str, Any] = {"from_tier": tier.name, "from_model": tier.model, "reason": reason}
        if detail:
            hop["error"] = detail
        self.escalations.append(hop)
        self.tier += 1


def build_record(
    job: Job,
    cfg: Config,
    now: float,
    *,
    tier: TierConfig | None,
    done: Completion | None = None,
    error: CallError | None = None,
) -> dict[str, Any]:
    """The output record (DESIGN §3) for a finished job; `error` makes it an error record."""
    q = job.query
    ledger = job.ledger
    classifier_cost, answer_cost = ledger_costs(ledger, cfg.models)
    baseline = 0.0
    if job.first_prompt_tokens is not None:
        completion = done.usage.completion_tokens if done is not None else 0
        baseline = baseline_cost(job.first_prompt_tokens, completion, cfg.models[cfg.top.model])
    record: dict[str, Any] = {"id": q.id, "line": q.line, "status": "error" if error else "ok"}
    if tier is not None:
        record["tier"] = tier.name
        record["model"] = tier.model
    if done is not None:
        record["answer"] = done.content
        record["finish_reason"] = done.finish_reason
    if job.classification is not None:
        record["classification"] = job.classification.as_dict()
    record["escalations"] = job.escalations
    cu, au = ledger.usage("classifier"), ledger.usage("answer")
    record["usage"] = {
        "classifier": cu.as_dict(),
        "answer": au.as_dict(),
        "total": (cu + au).as_dict(),
        "by_model": {m: s.as_dict() for m, s in ledger.by_model().items()},
    }
    record["cost"] = {
        "classifier": classifier_cost,
        "answer": answer_cost,
        "total": classifier_cost + answer_cost,
        "baseline": baseline,
        "currency": cfg.currency,
    }
    record["attempts"] = job.attempts
    record["latency_ms"] = round((now - job.started) * 1000)
    if q.ignored_model:
        record["model_ignored"] = True
    if error is not None:
        record["error"] = {"type": error.kind, "message": error.message, "http_status": error.http_status}
    return record


def build_label_record(job: Job, cfg: Config, now: float) -> dict[str, Any]:
    """Labelling mode (`--classify-only`): the tier label, the classifier's output, usage and cost."""
    assert job.classification is not None
    tier = cfg.tiers[job.tier]
    record = build_record(job, cfg, now, tier=tier)
    record.pop("model")  # no answering model was involved
    record["mode"] = "classify_only"
    return record
