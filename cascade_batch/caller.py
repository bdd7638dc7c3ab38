"""One model call as the pipeline sees it: gate → wire → retry → ledger.

Every response that came back with usage is charged to the record's ledger,
including ones we then retry (empty choices, null content) — we were billed
for them. A 429 with `Retry-After` pauses every worker of that model.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio

from .client import chat
from .completion import Completion
from .config import Config
from .errors import CallError, RetryableError
from .limits import Gates, estimate_prompt_tokens
from .retry import Sleep, build_retrying
from .usage import Ledger

if TYPE_CHECKING:
    import openai


class Caller:
    """Makes calls for all workers of a run; holds the shared gates and counters."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        gates: Gates,
        cfg: Config,
        *,
        secret: str,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._client = client
        self._gates = gates
        self._cfg = cfg
        self._secret = secret
        self._sleep = sleep
        self.requests: Counter[str] = Counter()  # per model, every attempt
        self.faults: Counter[str] = Counter()  # per error kind, every failed attempt

    async def call(
        self,
        purpose: str,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        ledger: Ledger,
    ) -> tuple[Completion, int]:
        """Call `model` until it answers or the retry policy gives up.

        Returns the completion and the number of attempts; raises the last
        `CallError` when retries are exhausted or the error is permanent.
        """
        gate = self._gates[model]
        body = {**self._cfg.models[model].extra_body, **params}
        max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
        estimate = gate.estimate(estimate_prompt_tokens(messages), max_tokens if isinstance(max_tokens, int) else None)
        attempts = 0
        async for attempt in build_retrying(self._cfg.retry, sleep=self._sleep):
            with attempt:
                attempts += 1
                self.requests[model] += 1
                try:
                    async with gate.slot(estimate) as grant:
                        try:
                            done = await chat(self._client, model, messages, body, secret=self._secret)
                        except CallError as exc:
                            gate.settle(grant, exc.usage.total if exc.usage else 0, 0)
                            raise
                except CallError as exc:
                    self.faults[exc.kind] += 1
                    if exc.usage is not None:
                        ledger.charge(purpose, model, exc.usage)
                    if isinstance(exc, RetryableError) and exc.http_status == 429 and exc.retry_after:
                        gate.cooldown.hold(exc.retry_after)
                    exc.attempts = attempts
                    raise
                ledger.charge(purpose, model, done.usage)
                if done.pause_s:
                    gate.cooldown.hold(done.pause_s)
                gate.settle(grant, done.usage.total, done.usage.completion_tokens)
                return done, attempts
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
