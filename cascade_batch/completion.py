"""The internal shape of one chat completion, independent of the SDK."""

from __future__ import annotations

from dataclasses import dataclass

from .usage import Usage


@dataclass(frozen=True, slots=True)
class Completion:
    """What the pipeline needs from a successful response.

    `content` is the final answer text (None when the server sent none);
    `reasoning` is a reasoning model's `reasoning_content`, kept only to
    explain an empty answer; `usage` counts every billed token.
    """

    content: str | None
    finish_reason: str | None
    usage: Usage
    model: str
    reasoning: str | None = None
