"""The classification step: the seed's one-word protocol and a forgiving label parser."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .completion import Completion
from .config import ClassifierConfig
from .errors import CallError

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_WORD = re.compile(r"[a-z][a-z0-9_-]*")


def parse_label(raw: str | None, tiers: Sequence[str]) -> str | None:
    """The first tier name that appears as a word in `raw`, or None.

    Accepts `"Simple."`, `" MODERATE\\n"`, `"complex — because…"`,
    `"**simple**"` and output wrapped in `<think>` tags.
    """
    if not raw:
        return None
    text = _THINK.sub(" ", raw).lower()
    wanted = {t.lower(): t for t in tiers}
    for word in _WORD.findall(text):
        if word in wanted:
            return wanted[word]
    return None


def classifier_messages(cfg: ClassifierConfig, text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": cfg.prompt}, {"role": "user", "content": text}]


@dataclass(frozen=True, slots=True)
class Classification:
    """The classifier's verdict: `label` is the tier used, `raw` what it said."""

    label: str
    raw: str | None
    model: str
    parsed: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "raw": self.raw, "model": self.model}
        if not self.parsed:
            out["unparsed"] = True
        if self.error:
            out["error"] = self.error
        return out


Call = Callable[[str, list[dict[str, Any]], dict[str, Any]], Awaitable[Completion]]


async def classify(text: str, cfg: ClassifierConfig, tiers: Sequence[str], call: Call) -> Classification:
    """Ask the classifier; junk or a failed call falls back to `cfg.default_tier`.

    A failed classification never fails the record: routing to the default
    tier is what the seed does for an unknown label, too.
    """
    params = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
    try:
        done = await call(cfg.model, classifier_messages(cfg, text), params)
    except CallError as exc:
        return Classification(cfg.default_tier, None, cfg.model, parsed=False, error=exc.kind)
    label = parse_label(done.content, tiers)
    if label is None:
        return Classification(cfg.default_tier, done.content, cfg.model, parsed=False)
    return Classification(label, done.content, cfg.model, parsed=True)
