"""Token usage as the server reported it, and a per-record ledger of paid calls.

Every response that carried a `usage` object was billed, whether we kept its
answer or not (escalated, retried, malformed choices). The ledger records each
one under its model and its purpose (`classifier` or `answer`) so that cost is
always computed from what was paid for.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Usage:
    """Prompt and completion tokens of one call (reasoning tokens count as completion)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(slots=True)
class ModelSpend:
    """Billed calls and tokens of one model within one record."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass(slots=True)
class Ledger:
    """Usage of one record, per (purpose, model): purpose is `classifier` or `answer`."""

    entries: dict[tuple[str, str], ModelSpend] = field(default_factory=dict)

    def charge(self, purpose: str, model: str, usage: Usage) -> None:
        """Record one billed call."""
        spend = self.entries.get((purpose, model))
        if spend is None:
            spend = self.entries[(purpose, model)] = ModelSpend()
        spend.calls += 1
        spend.prompt_tokens += usage.prompt_tokens
        spend.completion_tokens += usage.completion_tokens

    def usage(self, purpose: str | None = None) -> Usage:
        """Tokens of one purpose, or of every call when `purpose` is None."""
        p = c = 0
        for (kind, _model), spend in self.entries.items():
            if purpose is None or kind == purpose:
                p += spend.prompt_tokens
                c += spend.completion_tokens
        return Usage(p, c)

    def by_model(self) -> dict[str, ModelSpend]:
        """Spend per model, both purposes merged (what the provider bills per model)."""
        merged: dict[str, ModelSpend] = {}
        for (_kind, model), spend in self.entries.items():
            m = merged.setdefault(model, ModelSpend())
            m.calls += spend.calls
            m.prompt_tokens += spend.prompt_tokens
            m.completion_tokens += spend.completion_tokens
        return merged
