"""Pure decisions, tested from tables: label parsing, escalation, cost, records."""

from __future__ import annotations

import pytest

from cascade_batch.classify import parse_label
from cascade_batch.completion import Completion
from cascade_batch.config import Config, EscalationConfig, ModelConfig
from cascade_batch.errors import CallError, RetryableError
from cascade_batch.escalation import error_escalation, escalation_reason, top_tier_problem
from cascade_batch.pricing import baseline_cost, call_cost, ledger_costs, savings_pct
from cascade_batch.usage import Ledger, Usage

TIERS = ("simple", "moderate", "complex")
RULES = EscalationConfig()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("simple", "simple"),
        ("Simple.", "simple"),
        (" MODERATE\n", "moderate"),
        ("complex — because it needs research", "complex"),
        ("**Complex**", "complex"),
        ("<think>maybe simple?</think> moderate", "moderate"),
        ("The answer is: moderate", "moderate"),
        ("simplex", None),
        ("I cannot tell", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_label(raw: str | None, expected: str | None) -> None:
    """Labels parse from the formats small models produce; junk gives None."""
    assert parse_label(raw, TIERS) == expected


def answer(text: str | None, finish: str | None = "stop", reasoning: str | None = None) -> Completion:
    return Completion(text, finish, Usage(10, 10), "m", reasoning)


@pytest.mark.parametrize(
    "text, finish, is_top, expected",
    [
        ("Paris.", "stop", False, "short_answer"),
        ("x " * 40, "length", False, "truncated"),
        ("x " * 40, "stop", False, None),
        ("x " * 19, "stop", False, "short_answer"),
        ("x " * 20, "stop", False, None),
        ("", "stop", False, "empty"),
        ("   ", "stop", False, "empty"),
        (None, "content_filter", False, "refusal"),
        ("Paris.", "stop", True, None),
        ("x " * 40, "length", True, None),
    ],
)
def test_escalation_reason(text: str | None, finish: str, is_top: bool, expected: str | None) -> None:
    """Short, truncated, empty or refused answers escalate below the top tier; the top never does."""
    assert escalation_reason(answer(text, finish), RULES, is_top=is_top) == expected


def test_truncation_rule_can_be_switched_off() -> None:
    """`on_truncated = false` keeps long truncated answers."""
    rules = EscalationConfig(on_truncated=False)
    assert escalation_reason(answer("x " * 40, "length"), rules, is_top=False) is None


@pytest.mark.parametrize(
    "err, is_top, on_error, expected",
    [
        (RetryableError("rate_limited", "429", http_status=429), False, True, "error"),
        (RetryableError("timeout", "t"), False, False, None),
        (CallError("context_length", "too long", http_status=400), False, False, "context_length"),
        (CallError("http_400", "bad", http_status=400), False, True, None),
        (CallError("http_404", "no model", http_status=404), False, True, "error"),
        (RetryableError("http_500", "boom", http_status=500), True, True, None),
    ],
)
def test_error_escalation(err: CallError, is_top: bool, on_error: bool, expected: str | None) -> None:
    """Exhausted transient errors and context overflows escalate; bad requests and the top tier do not."""
    rules = EscalationConfig(on_error=on_error)
    assert error_escalation(err, rules, is_top=is_top) == expected


def test_top_tier_empty_answer_explains_reasoning_content() -> None:
    """An empty top-tier answer with reasoning text points at thinking mode."""
    assert top_tier_problem(answer("ok")) is None
    problem = top_tier_problem(answer("", reasoning="thinking..."))
    assert problem is not None and "reasoning_content" in problem


def test_costs_hand_computed() -> None:
    """Cost = tokens x price per 1M tokens, per purpose, every billed call counted."""
    small = ModelConfig("small", input_per_mtok=0.05, output_per_mtok=0.10)
    big = ModelConfig("big", input_per_mtok=0.40, output_per_mtok=2.00)
    ledger = Ledger()
    ledger.charge("classifier", "small", Usage(71, 2))
    ledger.charge("answer", "small", Usage(28, 5))  # discarded, escalated
    ledger.charge("answer", "big", Usage(28, 41))
    classifier, answer_cost = ledger_costs(ledger, {"small": small, "big": big})
    assert classifier == pytest.approx((71 * 0.05 + 2 * 0.10) / 1e6, rel=1e-12)
    assert answer_cost == pytest.approx((28 * 0.05 + 5 * 0.10 + 28 * 0.40 + 41 * 2.00) / 1e6, rel=1e-12)
    assert ledger.usage("answer") == Usage(56, 46)
    assert ledger.by_model()["small"].calls == 2
    assert baseline_cost(28, 41, big) == call_cost(Usage(28, 41), big)
    assert savings_pct(25.0, 100.0) == 75.0
    assert savings_pct(1.0, 0.0) == 0.0


def test_default_config_is_the_seed() -> None:
    """The built-in config has the seed's tiers, prompt and min_words."""
    cfg = Config.default()
    assert [(t.name, t.model) for t in cfg.tiers] == [
        ("simple", "Qwen3.5-0.8B"),
        ("moderate", "Qwen3.6-35B-A3B-FP8"),
        ("complex", "Mistral-Medium-3.5-128B"),
    ]
    assert cfg.classifier.model == "Qwen3.5-0.8B"
    assert cfg.classifier.prompt.startswith("Classify the complexity of the user's question with exactly one word")
    assert cfg.escalation.min_words == 20
    assert cfg.currency == "EUR"
    assert cfg.models["Qwen3.6-35B-A3B-FP8"].extra_body == {"chat_template_kwargs": {"enable_thinking": False}}


def test_progress_bar_renders_running_totals() -> None:
    """The live bar shows done/total, per-tier counts and cost from the running summary."""
    import io

    from rich.console import Console

    from cascade_batch.progress import ProgressBar
    from cascade_batch.summary import Summary

    buffer = io.StringIO()
    bar = ProgressBar(TIERS, "EUR", interval_s=0.0, console=Console(file=buffer, width=200))
    summary = Summary()
    summary.add({"status": "ok", "tier": "simple", "cost": {"classifier": 0.25, "answer": 0.5, "baseline": 1.0}})
    bar.set_total(10)
    bar.update(summary)
    with bar:
        pass  # start and stop: the final frame is printed
    text = buffer.getvalue()
    assert "1/10" in text and "simple:1" in text and "cost:0.7500 EUR" in text


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"}, 1.5),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20ms"}, 0.02),
        ({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "1s"}, None),
        ({}, None),
    ],
)
def test_budget_pause_from_rate_limit_headers(headers: dict[str, str], expected: float | None) -> None:
    """A spent budget (remaining 0) pauses the model until the reset the server names."""
    from cascade_batch.client import budget_pause

    assert budget_pause(headers) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_header(headers: dict[str, str], expected: float | None) -> None:
    """Retry-After in seconds or milliseconds (the OpenAI extension wins)."""
    from cascade_batch.client import retry_after

    assert retry_after(headers) == expected


def test_malloc_thresholds_can_be_pinned_on_glibc() -> None:
    """On this (glibc) machine the heap thresholds are pinned; the call is harmless elsewhere."""
    from cascade_batch._malloc import pin_malloc_thresholds

    assert pin_malloc_thresholds() is True
