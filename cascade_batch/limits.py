"""Per-model gates shared by every worker that calls the model.

A call passes, in order: the model's cooldown (a 429 pauses the whole model
until the server's `Retry-After` has passed), its concurrency cap, and its
requests-per-minute and tokens-per-minute windows. Token use is estimated
before the call and corrected afterwards from the reported usage.

The minute limits are *sliding* windows over our own send times: at most
`limit` in any 60 s (plus a small guard). A provider with a fixed one-minute
window (mittwald) then never sees more than its limit in one of its windows,
whatever their alignment. Requests are also spaced evenly (`PacedWindow`),
with a burst of 10 s' worth for small jobs. A leaky bucket (aiolimiter)
alone cannot guarantee the cap: sized to a minute it sends up to twice the
limit in the first fixed window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import anyio

from .config import ModelConfig

Clock = Callable[[], float]


class Cooldown:
    """A shared pause: `hold(s)` makes every `wait_clear()` wait until it has passed.

    Waiters sleep until the known deadline (no polling); a later, longer
    `hold` extends the pause and waiters go back to sleep until the new one.
    """

    def __init__(self, clock: Clock = anyio.current_time) -> None:
        self._until = 0.0
        self._clock = clock

    def hold(self, seconds: float) -> None:
        self._until = max(self._until, self._clock() + seconds)

    @property
    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())

    async def wait_clear(self) -> None:
        while (left := self._until - self._clock()) > 0:
            await anyio.sleep(left)


class Grant:
    """One acquisition in a window; `amount` may be corrected after the call."""

    __slots__ = ("amount", "at")

    def __init__(self, at: float, amount: float) -> None:
        self.at = at
        self.amount = amount


class SlidingWindow:
    """At most `limit` units in any `window_s` seconds; waiters are served in FIFO order.

    `acquire(n)` with `n > limit` is clamped to `limit` (such a request can
    never fit otherwise). Memory: one small entry per acquisition still in
    the window.
    """

    def __init__(
        self, limit: int, window_s: float = 60.0, *, guard_s: float = 0.25, clock: Clock = anyio.current_time
    ) -> None:
        self.limit = limit
        self.window = window_s + guard_s
        self._clock = clock
        self._log: deque[Grant] = deque()
        self._used = 0.0
        self._lock = anyio.Lock()

    @property
    def used(self) -> float:
        self._expire(self._clock())
        return self._used

    def _expire(self, now: float) -> None:
        log = self._log
        while log and log[0].at <= now - self.window:
            self._used -= log.popleft().amount

    async def acquire(self, amount: float = 1) -> Grant:
        amount = min(amount, self.limit)
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if self._used + amount <= self.limit or not self._log:
                    grant = Grant(now, amount)
                    self._log.append(grant)
                    self._used += amount
                    return grant
                await anyio.sleep(self._log[0].at + self.window - now)

    def correct(self, grant: Grant, actual: float) -> None:
        """Replace a grant's estimate with what was really used (either direction)."""
        if grant.at > self._clock() - self.window:  # still counted in the window
            self._used += actual - grant.amount
        grant.amount = actual


class PacedWindow(SlidingWindow):
    """A sliding-window cap that also spaces acquisitions evenly (GCRA).

    Up to `burst_s` seconds' worth may go at once (a small job finishes
    fast); beyond that, one acquisition every `window/limit` seconds, so a
    saturated run sends a steady stream at the limit rather than a burst at
    the start of each minute, which providers that refill continuously
    (OpenAI) answer with 429s and which makes throughput uneven. After the
    cap made a caller wait, no burst credit is left: the next minute stays
    smooth.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        *,
        burst_s: float = 10.0,
        guard_s: float = 0.25,
        clock: Clock = anyio.current_time,
    ) -> None:
        super().__init__(limit, window_s, guard_s=guard_s, clock=clock)
        self.interval = self.window / limit
        self._tolerance = max(0.0, limit * burst_s / window_s - 1) * self.interval
        self._tat = 0.0  # theoretical arrival time of the next acquisition

    async def acquire(self, amount: float = 1) -> Grant:
        async with self._lock:
            now = self._clock()
            early = self._tat - self._tolerance - now
            if early > 0:
                await anyio.sleep(early)
            waited_for_cap = False
            while True:
                now = self._clock()
                self._expire(now)
                if self._used + 1 <= self.limit or not self._log:
                    break
                waited_for_cap = True
                await anyio.sleep(self._log[0].at + self.window - now)
            self._tat = (now if waited_for_cap else max(self._tat, now)) + self.interval
            grant = Grant(now, 1)
            self._log.append(grant)
            self._used += 1
            return grant


class Window(Protocol):
    """What a gate needs of a minute limit (a local window, or capacity leased from a shared budget)."""

    async def acquire(self, amount: float = 1) -> Grant: ...

    def correct(self, grant: Grant, actual: float) -> None: ...


# Builds a model's (requests/min, tokens/min) windows; None = unlimited.
Windows = Callable[[ModelConfig], tuple["Window | None", "Window | None"]]


def local_windows(cfg: ModelConfig, window_s: float = 60.0) -> tuple[Window | None, Window | None]:
    """This process's own windows: paced requests, sliding tokens."""
    rpm: Window | None = PacedWindow(cfg.rpm, window_s) if cfg.rpm > 0 else None
    tpm: Window | None = SlidingWindow(cfg.tpm, window_s) if cfg.tpm > 0 else None
    return rpm, tpm


class ModelGate:
    """Everything that paces calls to one model; one instance per model per run."""

    def __init__(self, cfg: ModelConfig, windows: Windows = local_windows) -> None:
        self.cfg = cfg
        self.cooldown = Cooldown()
        self.concurrency = anyio.Semaphore(cfg.max_concurrency)
        self.rpm, self.tpm = windows(cfg)
        self._completion_avg = 256.0  # running mean of completion tokens, for estimates
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self, estimated_tokens: int) -> AsyncIterator[Grant | None]:
        """Hold one request's worth of every limit for the duration of the call.

        Yields the token grant (None without a TPM limit) for `settle`.
        """
        await self.cooldown.wait_clear()
        async with self.concurrency:
            if self.rpm is not None:
                await self.rpm.acquire()
            grant = await self.tpm.acquire(max(estimated_tokens, 1)) if self.tpm is not None else None
            self.in_flight += 1
            try:
                yield grant
            finally:
                self.in_flight -= 1

    def estimate(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """Tokens a call will probably use: prompt + expected completion."""
        expected = self._completion_avg if not max_tokens else min(max_tokens, self._completion_avg)
        return prompt_tokens + int(expected)

    def settle(self, grant: Grant | None, actual_tokens: int, completion_tokens: int) -> None:
        """Correct the token estimate with the reported usage; learn the completion length."""
        if completion_tokens > 0:
            self._completion_avg += 0.05 * (completion_tokens - self._completion_avg)
        if grant is not None and self.tpm is not None:
            self.tpm.correct(grant, actual_tokens)


def estimate_prompt_tokens(messages: list[dict[str, object]]) -> int:
    """A cheap prompt-size estimate (4 characters a token plus per-message overhead)."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif content is not None:
            chars += len(str(content))
    return math.ceil(chars / 4) + 4 * len(messages)


class Gates:
    """One gate per model, built inside the running loop."""

    def __init__(self, gates: Mapping[str, ModelGate]) -> None:
        self._gates = dict(gates)

    @classmethod
    def build(cls, models: Mapping[str, ModelConfig], names: tuple[str, ...], windows: Windows | None = None) -> Gates:
        """`windows` replaces the local minute windows (e.g. with a cluster-wide budget)."""
        return cls({name: ModelGate(models[name], windows or local_windows) for name in names})

    def __getitem__(self, model: str) -> ModelGate:
        return self._gates[model]
