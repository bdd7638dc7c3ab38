"""Money, computed only from server-reported usage and the config's price table.

Prices are per 1M tokens in `Config.currency`. Pure functions: no I/O.
The record's `total` is defined as `classifier + answer` so that it adds up
exactly; the `baseline` estimates what the top tier alone would have cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .config import ModelConfig
from .usage import Ledger, Usage


class Tokens(Protocol):
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...


def call_cost(usage: Tokens, model: ModelConfig) -> float:
    """Cost of `usage` on `model`."""
    return (usage.prompt_tokens * model.input_per_mtok + usage.completion_tokens * model.output_per_mtok) / 1_000_000


def ledger_costs(ledger: Ledger, models: Mapping[str, ModelConfig]) -> tuple[float, float]:
    """(classifier cost, answer cost) of one record: every billed call counted."""
    classifier = answer = 0.0
    for (purpose, model), spend in ledger.entries.items():
        cost = call_cost(spend, models[model])
        if purpose == "classifier":
            classifier += cost
        else:
            answer += cost
    return classifier, answer


def baseline_cost(prompt_tokens: int, completion_tokens: int, top: ModelConfig) -> float:
    """What the top tier alone would have cost for one query.

    Estimated from the query's prompt tokens as the first answering call
    reported them and the completion tokens of the answer that was kept.
    """
    return call_cost(Usage(prompt_tokens, completion_tokens), top)


def savings_pct(total: float, baseline: float) -> float:
    """Share of the baseline saved, in percent (0 when there is no baseline)."""
    if baseline <= 0:
        return 0.0
    return round(100.0 * (baseline - total) / baseline, 2)
