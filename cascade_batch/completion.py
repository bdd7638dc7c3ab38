"""The internal shape of one chat completion, independent of the SDK."""

from __future__ import annotations

from dataclasses import dataclass

from .usage import Usage


@dataclass(frozen=True, slots=True)
class Completion:
    """What the pipeline needs from a successful response.

    `content` is the final answer text (None when the server sent none);
    `reasoning` is a reasoning model's `reasoning_content`, kept only to
    explain an empty answer; `usage` counts every billed token; `pause_s`
    comes from `x-ratelimit-remaining-*: 0` with its `x-ratelimit-reset-*`.
    """

    content: str | None
    finish_reason: str | None
    usage: Usage
    model: str
    reasoning: str | None = None
    pause_s: float | None = None  # the server said its budget is spent: wait this long before the next call
