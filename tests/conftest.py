"""Shared fixtures: fast configs and a real simulator on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from cascade_batch.client import Endpoint
from cascade_batch.config import Config, RetryConfig, SimulatorConfig
from cascade_batch.sim import Simulator, start


def make_config(*, sim: dict[str, Any] | None = None, retry: dict[str, Any] | None = None, **overrides: Any) -> Config:
    """The default config with zero backoff, a zero-latency simulator, no rate limits, and overrides."""
    base = Config.default()
    base = base.with_overrides(models={n: replace(m, rpm=0, tpm=0) for n, m in base.models.items()})
    fast_retry = replace(
        RetryConfig(), **{"initial_backoff_s": 0.0, "max_backoff_s": 0.0, "request_timeout_s": 5.0, **(retry or {})}
    )
    fast_sim = replace(
        SimulatorConfig(),
        **{"latency_ms": 0.0, "per_token_ms": 0.0, "jitter": 0.0, "retry_after_s": 0.01, **(sim or {})},
    )
    return base.with_overrides(retry=fast_retry, simulator=fast_sim, **overrides)


class SimHandle:
    """A running simulator: its URL, its state (request counts) and an endpoint for it."""

    def __init__(self, sim: Simulator, url: str) -> None:
        self.sim = sim
        self.url = url
        self.endpoint = Endpoint(url, "sk-test-not-a-real-key")


@asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[SimHandle]:
    """A simulator with `cfg`'s models and behaviour, on an ephemeral loopback port."""
    sim = Simulator(cfg)
    runner, url = await start(sim)
    try:
        yield SimHandle(sim, url)
    finally:
        await runner.cleanup()


@pytest.fixture
async def simulator() -> AsyncIterator[SimHandle]:
    async with running(make_config()) as handle:
        yield handle
