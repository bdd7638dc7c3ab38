"""The simulator's behaviour model: pure, deterministic functions of the request.

Nothing here does I/O. Given a request (model, messages, params) it decides
how the simulated model classifies or answers, how many tokens that bills and
how long it takes. Answers are deterministic for a (model, query) pair, so a
rerun or a test sees the same routing and the same escalations.

Behaviour, in short:
* Classifier prompts (a system message asking to "classify") get one word
  chosen from features of the query (length, keywords), in varied formats
  (`Simple.`, ` MODERATE`, `complex — because …`) to exercise label parsing.
* Answers are longer for harder queries and bigger models; the smallest tier
  answers a seeded share of queries too briefly ("deceptively simple" ones),
  which the cascade's `min_words` rule must catch.
* Thinking models (Qwen3.6 on mittwald) put their text in
  `reasoning_content` and leave `content` empty unless the request turns
  thinking off via `chat_template_kwargs.enable_thinking = false`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_COMPLEX = frozenset(
    [
        "analyse",
        "analyze",
        "analysis",
        "architecture",
        "architectural",
        "tradeoffs",
        "trade-offs",
        "research",
        "synthesis",
        "synthesise",
        "review",
        "strategy",
        "implications",
        "evaluate",
        "critique",
        "comprehensive",
        "essay",
        "geopolitical",
        "philosophical",
        "thesis",
        "proof",
        "derive",
        "long-document",
        "multi-file",
    ]
)
_MODERATE = frozenset(
    [
        "write",
        "function",
        "code",
        "compare",
        "comparison",
        "explain",
        "why",
        "how",
        "difference",
        "implement",
        "steps",
        "debug",
        "convert",
        "sql",
        "regex",
        "python",
        "javascript",
        "rust",
        "calculate",
        "algorithm",
        "outline",
        "summarise",
        "summarize",
        "plan",
        "pros",
        "cons",
    ]
)
_VOCAB = [
    "the",
    "cascade",
    "answer",
    "model",
    "token",
    "request",
    "tier",
    "simple",
    "moderate",
    "complex",
    "because",
    "therefore",
    "however",
    "example",
    "result",
    "value",
    "system",
    "data",
    "process",
    "step",
    "first",
    "second",
    "finally",
    "note",
    "that",
    "this",
    "which",
    "with",
    "from",
    "into",
    "over",
    "under",
    "between",
    "about",
    "result",
    "design",
    "choice",
    "cost",
    "latency",
    "quality",
    "scale",
]
_WORDS = re.compile(r"[\w'-]+", re.UNICODE)


def stable_hash(*parts: str) -> int:
    """A 64-bit hash that is the same in every process (unlike `hash()`)."""
    h = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def unit(*parts: str) -> float:
    """A deterministic number in [0, 1) for `parts`."""
    return stable_hash(*parts) / 2**64


def complexity(text: str) -> int:
    """0 = simple, 1 = moderate, 2 = complex: what the simulated classifier believes."""
    words = [w.lower() for w in _WORDS.findall(text)]
    if len(words) > 60 or any(w in _COMPLEX for w in words):
        return 2
    if len(words) > 20 or any(w in _MODERATE for w in words):
        return 1
    return 0


LABELS = ("simple", "moderate", "complex")
_FORMATS = ("{w}", "{W}.", " {U}\n", "{w}.", "{w} — because of the question's scope", "**{W}**")


def classifier_reply(text: str, *, junk_rate: float = 0.0) -> str:
    """The one-word verdict, in one of several formats real small models produce."""
    if junk_rate and unit("junk", text) < junk_rate:
        return "I cannot tell"
    word = LABELS[complexity(text)]
    fmt = _FORMATS[stable_hash("fmt", text) % len(_FORMATS)]
    return fmt.format(w=word, W=word.capitalize(), U=word.upper())


_JUDGE_FORMATS = ("{v}", "**{v}**", "{v}.", "Answer {v}")


def is_judge_request(messages: Sequence[dict[str, Any]]) -> bool:
    first = messages[0] if messages else {}
    return first.get("role") == "system" and "judge" in str(first.get("content", "")).lower()


def judge_reply(text: str) -> str:
    """A deterministic verdict: the clearly longer answer wins (by 25 %), else a tie."""
    match = re.search(r"Answer A:\n(.*)\n\nAnswer B:\n(.*)\n\nWhich answer", text, re.DOTALL)
    if match is None:
        return "tie"
    a, b = len(match.group(1).split()), len(match.group(2).split())
    verdict = "A" if a > 1.25 * b else "B" if b > 1.25 * a else "tie"
    if verdict == "tie":
        return "Tie." if stable_hash("judge", text) % 2 else "tie"
    return _JUDGE_FORMATS[stable_hash("judge", text) % len(_JUDGE_FORMATS)].format(v=verdict)


def is_classifier_request(messages: Sequence[dict[str, Any]]) -> bool:
    first = messages[0] if messages else {}
    return first.get("role") == "system" and "classify" in str(first.get("content", "")).lower()


def count_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Prompt tokens: about 4 characters a token, 4 per message, 3 for the reply primer."""
    total = 3
    for m in messages:
        total += 4 + math.ceil(len(str(m.get("content") or "")) / 4)
    return total


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


@dataclass(frozen=True, slots=True)
class Reply:
    """A simulated completion: text, reasoning text, finish reason and billed tokens."""

    content: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    reasoning: str | None = None


def answer_words(model: str, rank: int, n_ranks: int, text: str, short_rate: float) -> int:
    """How many words `model` (tier `rank` of `n_ranks`) writes for `text`."""
    need = (30, 120, 300)[complexity(text)]
    spread = 0.7 + 0.6 * unit("len", model, text)
    if rank == 0 and n_ranks > 1 and unit("short", text) < short_rate:
        return 3 + stable_hash("shortlen", text) % 10  # deceptively short
    size = 0.6 + 0.4 * (rank + 1) / max(n_ranks, 1)
    return max(1, round(need * spread * size))


def compose(model: str, text: str, words: int) -> str:
    """Deterministic filler text that says it comes from the simulator."""
    seed = stable_hash("text", model, text)
    body = [_VOCAB[(seed >> (i % 48)) % len(_VOCAB) if i % 7 else (seed + i) % len(_VOCAB)] for i in range(words)]
    return f"[simulated {model}] " + " ".join(body)


def tokens_for(words: int) -> int:
    return math.ceil(words * 1.3)


def reply(
    model: str,
    rank: int,
    n_ranks: int,
    messages: Sequence[dict[str, Any]],
    params: dict[str, Any],
    *,
    short_rate: float,
    thinking: bool,
    junk_rate: float = 0.0,
) -> Reply:
    """The whole simulated answer to one request (without faults)."""
    prompt = count_tokens(messages)
    text = " ".join(last_user_text(messages).split())  # the same question, however it is spaced
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if is_judge_request(messages):
        out = judge_reply(last_user_text(messages))
        return _limit(out, prompt, max(1, math.ceil(len(out) / 4)), max_tokens)
    if is_classifier_request(messages):
        out = classifier_reply(text, junk_rate=junk_rate)
        return _limit(out, prompt, max(1, math.ceil(len(out) / 4)), max_tokens)
    words = answer_words(model, rank, n_ranks, text, short_rate)
    full = compose(model, text, words)
    if thinking:
        reasoning = "Let me think about this step by step. " + full
        return Reply("", "stop", prompt, tokens_for(len(reasoning.split())), reasoning=reasoning)
    return _limit(full, prompt, tokens_for(len(full.split())), max_tokens)


def _limit(text: str, prompt: int, completion: int, max_tokens: Any) -> Reply:
    if isinstance(max_tokens, int) and max_tokens > 0 and completion > max_tokens:
        kept = text.split()[: max(1, int(max_tokens / 1.3))]
        return Reply(" ".join(kept), "length", prompt, max_tokens)
    return Reply(text, "stop", prompt, completion)


def thinking_enabled(model: str, thinking_models: Sequence[str], body: dict[str, Any]) -> bool:
    """Thinking is on by default for `thinking_models`, off when the request says so."""
    if model not in thinking_models:
        return False
    kwargs = body.get("chat_template_kwargs")
    return not (isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False)


def latency_s(base_ms: float, per_token_ms: float, jitter: float, completion_tokens: int, u: float) -> float:
    """Seconds a call takes: base + per token, spread by ±`jitter` using `u` in [0, 1)."""
    ms = base_ms + per_token_ms * completion_tokens
    return max(0.0, ms * (1 + jitter * (2 * u - 1)) / 1000)
