"""Retry policy and rate gates, with injected sleep and clocks instead of waiting."""

from __future__ import annotations

import pytest

from cascade_batch.config import RetryConfig
from cascade_batch.errors import CallError, RetryableError
from cascade_batch.limits import SlidingWindow
from cascade_batch.retry import build_retrying


def fake_sleep(sleeps: list[float]):  # type: ignore[no-untyped-def]
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return sleep


async def run_with(retrying, errors: list[Exception]) -> int:  # type: ignore[no-untyped-def]
    calls = 0
    async for attempt in retrying:
        with attempt:
            calls += 1
            if errors:
                raise errors.pop(0)
    return calls


async def test_retry_honours_retry_after_above_the_cap() -> None:
    """A server's Retry-After is waited for even when it is above max_backoff_s."""
    sleeps: list[float] = []
    cfg = RetryConfig(initial_backoff_s=0.0, max_backoff_s=1.0)
    errors: list[Exception] = [
        RetryableError("rate_limited", "429", http_status=429, retry_after=7.5),
        RetryableError("http_503", "503", http_status=503),
    ]
    assert await run_with(build_retrying(cfg, sleep=fake_sleep(sleeps)), errors) == 3
    assert sleeps == [7.5, 0.0]


async def test_backoff_is_capped_and_jittered() -> None:
    """Our own backoff grows exponentially with jitter and never exceeds max_backoff_s."""
    sleeps: list[float] = []
    cfg = RetryConfig(initial_backoff_s=0.5, max_backoff_s=2.0, max_attempts=8)
    errors: list[Exception] = [RetryableError("timeout", "t") for _ in range(7)]
    await run_with(build_retrying(cfg, sleep=fake_sleep(sleeps)), errors)
    assert len(sleeps) == 7
    assert all(0 <= s <= 2.0 for s in sleeps)
    assert max(sleeps) > 0


async def test_retry_stops_after_max_attempts() -> None:
    """After max_attempts the last transient error is raised."""
    sleeps: list[float] = []
    cfg = RetryConfig(initial_backoff_s=0.0, max_attempts=3)
    errors: list[Exception] = [RetryableError("http_500", str(i)) for i in range(5)]
    with pytest.raises(RetryableError, match="2"):
        await run_with(build_retrying(cfg, sleep=fake_sleep(sleeps)), errors)
    assert len(sleeps) == 2


async def test_permanent_errors_are_not_retried() -> None:
    """400/401/403/404 fail on the first try."""
    sleeps: list[float] = []
    with pytest.raises(CallError, match="bad"):
        await run_with(build_retrying(RetryConfig(), sleep=fake_sleep(sleeps)), [CallError("http_400", "bad")])
    assert sleeps == []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_counts_and_corrects() -> None:
    """Grants add up within the window, corrections change the count, old grants expire."""
    clock = Clock()
    window = SlidingWindow(100, 60.0, guard_s=0.0, clock=clock)
    g1 = await window.acquire(30)
    await window.acquire(70)
    assert window.used == 100
    window.correct(g1, 10)  # the call used fewer tokens than estimated
    assert window.used == 80
    await window.acquire(20)
    assert window.used == 100
    clock.now += 60.0
    assert window.used == 0


async def test_sliding_window_waits_for_the_oldest_grant() -> None:
    """A full window admits the next acquisition only once its oldest grant has left it."""
    window = SlidingWindow(2, 0.05, guard_s=0.0)
    first = await window.acquire()
    await window.acquire()
    third = await window.acquire()
    assert third.at >= first.at + 0.05


async def test_paced_window_bursts_then_spaces_evenly() -> None:
    """A burst of burst_s' worth goes at once; after it, the k-th acquisition is never before k intervals."""
    from cascade_batch.limits import PacedWindow

    window = PacedWindow(600, 6.0, burst_s=0.05, guard_s=0.0)  # 100/s, a burst of 5
    grants = [await window.acquire() for _ in range(12)]
    starts = [g.at - grants[0].at for g in grants]
    assert starts[4] < 0.05  # the burst: no waiting (only scheduling delays, never a 10 ms interval each)
    for k in range(5, 12):
        assert starts[k] >= (k - 4) * 0.01 - 1e-6  # the schedule: one every 10 ms
    assert starts[11] >= 0.07
