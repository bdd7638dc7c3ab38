"""Running totals over output records: the run summary and (later) `report`.

The summary is a fold over the output records themselves, so a summary
rebuilt from an output file equals the one the run printed. Memory is
constant: latencies go into a log-scale histogram (1 % wide buckets), not a list.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .pricing import call_cost, savings_pct
from .usage import ModelSpend

_LOG_STEP = math.log(1.01)


@dataclass
class Summary:
    """Totals of every record seen; `snapshot()` gives the DESIGN §6 JSON."""

    currency: str = "EUR"
    total: int = 0
    ok: int = 0
    error: int = 0
    by_tier: Counter[str] = field(default_factory=Counter)
    by_model: dict[str, ModelSpend] = field(default_factory=dict)
    escalations: Counter[str] = field(default_factory=Counter)
    flows: Counter[str] = field(default_factory=Counter)  # "simple→moderate": hops between tiers
    errors: Counter[str] = field(default_factory=Counter)
    cost_classifier: float = 0.0
    cost_answer: float = 0.0
    cost_baseline: float = 0.0
    unparsed_labels: int = 0
    ignored_models: int = 0
    latency_hist: Counter[int] = field(default_factory=Counter)
    _saved_cost: dict[str, float] = field(default_factory=dict)
    resumed: int = 0  # records that were already in the output when this run started
    saved: dict[str, Counter[str]] = field(default_factory=dict)  # by "dedup"/"hit": records, calls, tokens, cost

    def add_resumed(self, record: Mapping[str, Any]) -> None:
        """Fold a record an earlier run wrote (counts, but not in this run's throughput)."""
        self.add(record)
        self.resumed += 1

    def add(self, record: Mapping[str, Any]) -> None:
        """Fold one output record into the totals."""
        self.total += 1
        if record.get("status") == "ok":
            self.ok += 1
            self.by_tier[record["tier"]] += 1
        else:
            self.error += 1
            self.errors[record["error"]["type"]] += 1
        hops = record.get("escalations", ())
        for i, hop in enumerate(hops):
            self.escalations[hop["reason"]] += 1
            target = hops[i + 1]["from_tier"] if i + 1 < len(hops) else record.get("tier", "?")
            self.flows[f"{hop['from_tier']}→{target}"] += 1
        usage = record.get("usage")
        if usage:
            for model, spend in usage.get("by_model", {}).items():
                mine = self.by_model.get(model)
                if mine is None:
                    mine = self.by_model[model] = ModelSpend()
                mine.calls += spend["calls"]
                mine.prompt_tokens += spend["prompt_tokens"]
                mine.completion_tokens += spend["completion_tokens"]
        cost = record.get("cost")
        if cost:
            self.cost_classifier += cost["classifier"]
            self.cost_answer += cost["answer"]
            self.cost_baseline += cost["baseline"]
        cls = record.get("classification")
        if cls and cls.get("unparsed"):
            self.unparsed_labels += 1
        if record.get("model_ignored"):
            self.ignored_models += 1
        reuse = record.get("cache")
        if reuse:
            got = self.saved.setdefault(reuse, Counter())
            saved = record.get("saved", {})
            got["records"] += 1
            for key in ("calls", "prompt_tokens", "completion_tokens"):
                got[key] += saved.get(key, 0)
            self._saved_cost[reuse] = self._saved_cost.get(reuse, 0.0) + saved.get("cost", 0.0)
        latency = record.get("latency_ms")
        if latency is not None:
            self.latency_hist[_bucket(latency)] += 1

    def percentile(self, q: float) -> int | None:
        """Latency at quantile `q` (0..1), from the histogram (within 1 %)."""
        n = sum(self.latency_hist.values())
        if not n:
            return None
        rank = max(1, math.ceil(q * n))
        seen = 0
        for bucket in sorted(self.latency_hist):
            seen += self.latency_hist[bucket]
            if seen >= rank:
                return round(math.exp(bucket * _LOG_STEP) - 1)
        return None  # pragma: no cover - unreachable

    def snapshot(self, cfg: Config | None = None, *, wall_s: float | None = None) -> dict[str, Any]:
        """The summary JSON (DESIGN §6). Per-model cost needs the price table in `cfg`."""
        prompt = sum(m.prompt_tokens for m in self.by_model.values())
        completion = sum(m.completion_tokens for m in self.by_model.values())
        total_cost = self.cost_classifier + self.cost_answer
        by_model = {}
        for name, m in sorted(self.by_model.items()):
            entry: dict[str, Any] = m.as_dict()
            if cfg is not None and name in cfg.models:
                entry["cost"] = call_cost(m, cfg.models[name])
            by_model[name] = entry
        out: dict[str, Any] = {
            "records": {"total": self.total, "ok": self.ok, "error": self.error, "resumed": self.resumed},
            "by_tier": _ordered(self.by_tier, cfg.tier_names if cfg is not None else ()),
            "by_model": by_model,
            "escalations": dict(self.escalations),
            "escalation_flow": dict(self.flows),
            "errors": dict(self.errors),
            "tokens": {"prompt": prompt, "completion": completion},
            "cost": {
                "classifier": self.cost_classifier,
                "answer": self.cost_answer,
                "total": total_cost,
                "baseline": self.cost_baseline,
                "savings_pct": savings_pct(total_cost, self.cost_baseline),
                "classifier_share_pct": round(100 * self.cost_classifier / total_cost, 2) if total_cost else 0.0,
                "currency": self.currency,
            },
            "labels": {"unparsed": self.unparsed_labels},
            "latency_ms": {"p50": self.percentile(0.5), "p95": self.percentile(0.95)},
        }
        if self.saved:
            out["saved"] = {
                kind: {**dict(c), "cost": self._saved_cost.get(kind, 0.0)} for kind, c in sorted(self.saved.items())
            }
        if wall_s is not None:
            out["wall_s"] = round(wall_s, 3)
            out["throughput_qps"] = round((self.total - self.resumed) / wall_s, 2) if wall_s > 0 else 0.0
        if self.ignored_models:
            out["notes"] = [f"`model` in {self.ignored_models} request bodies was ignored: the router picks the model"]
        return out


def _ordered(counts: Counter[str], order: tuple[str, ...]) -> dict[str, int]:
    """Counts in tier order (unknown names after, sorted), so tables read cheapest first."""
    known = [(name, counts[name]) for name in order if name in counts]
    rest = sorted((name, n) for name, n in counts.items() if name not in order)
    return dict(known + rest)


def _bucket(latency_ms: float) -> int:
    return round(math.log(max(latency_ms, 0) + 1) / _LOG_STEP)
