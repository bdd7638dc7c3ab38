"""The one retry policy: tenacity around every call, built from config.

Retries only `RetryableError` (429, 5xx, timeouts, dropped connections, bad
bodies). The wait is exponential with full jitter, capped by
`max_backoff_s`; a server's `Retry-After` wins when it is longer, even above
the cap (the cap bounds only our own guess). `sleep` is injectable so tests
never wait.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from .config import RetryConfig
from .errors import RetryableError

Sleep = Callable[[float], Awaitable[None]]


class _WaitHonouringRetryAfter:
    """Our backoff, or the server's Retry-After when that is longer."""

    def __init__(self, cfg: RetryConfig) -> None:
        self._backoff = wait_random_exponential(multiplier=cfg.initial_backoff_s, max=cfg.max_backoff_s)

    def __call__(self, state: RetryCallState) -> float:
        ours = float(self._backoff(state)) if self._backoff.multiplier > 0 else 0.0
        exc = state.outcome.exception() if state.outcome is not None else None
        hint = exc.retry_after if isinstance(exc, RetryableError) else None
        return max(ours, hint) if hint is not None else ours


def build_retrying(cfg: RetryConfig, *, sleep: Sleep) -> AsyncRetrying:
    """A fresh retry controller for one call (tenacity keeps per-call state in it)."""
    return AsyncRetrying(
        retry=retry_if_exception_type(RetryableError),
        stop=stop_after_attempt(cfg.max_attempts),
        wait=_WaitHonouringRetryAfter(cfg),
        sleep=sleep,
        reraise=True,
    )
