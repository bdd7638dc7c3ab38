"""When an answer is not good enough for its tier: pure rules, tested from tables.

Reasons (DESIGN §3): `short_answer`, `truncated`, `refusal`, `empty`,
`error`, `context_length`. The top tier never escalates; what it returns is
kept (an empty answer there ends the record as an `empty_answer` error).
"""

from __future__ import annotations

from .completion import Completion
from .config import EscalationConfig
from .errors import CallError

# Errors that a bigger model will fail the same way: not worth another tier.
_PERMANENT_FOR_ALL = frozenset({"http_400", "http_401", "http_403", "http_422", "invalid_request"})


def word_count(text: str) -> int:
    """Words as the seed counts them."""
    return len(text.split())


def escalation_reason(done: Completion, rules: EscalationConfig, *, is_top: bool) -> str | None:
    """Why `done` should go to the next tier, or None to keep it."""
    if is_top:
        return None
    if done.finish_reason == "content_filter":
        return "refusal"
    if not done.content or not done.content.strip():
        return "empty"
    if done.finish_reason == "length" and rules.on_truncated:
        return "truncated"
    if word_count(done.content) < rules.min_words:
        return "short_answer"
    return None


def error_escalation(err: CallError, rules: EscalationConfig, *, is_top: bool) -> str | None:
    """Why a failed call should go to the next tier, or None to end the record in error."""
    if is_top:
        return None
    if err.kind == "context_length":
        return "context_length"
    if rules.on_error and err.kind not in _PERMANENT_FOR_ALL:
        return "error"
    return None


def top_tier_problem(done: Completion) -> str | None:
    """A top-tier answer that cannot be kept: no text at all."""
    if not done.content or not done.content.strip():
        if done.reasoning:
            return "empty_answer: the model put its text in reasoning_content (thinking is on; see extra_body)"
        return "empty_answer: the model returned no text"
    return None
