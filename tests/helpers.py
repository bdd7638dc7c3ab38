"""Helpers for tests that run the real pipeline over HTTP."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cascade_batch import stream
from cascade_batch.client import Endpoint
from cascade_batch.config import Config


async def run_records(queries: Any, cfg: Config, endpoint: Endpoint) -> list[dict[str, Any]]:
    """Run the cascade and collect every output record."""
    out = []
    async with stream(queries, cfg, endpoint) as results:
        async for record in results:
            out.append(record)
    return out


def by_id(records: Iterable[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {r["id"]: r for r in records}


def queries(n: int, prefix: str = "q") -> list[dict[str, Any]]:
    """`n` varied queries (simple lookups, code, analyses) with ids prefix0..prefixN-1."""
    kinds = [
        "What is the capital of country number {i}?",
        "Write a Python function number {i} that merges two sorted lists.",
        "Analyse the architectural tradeoffs of design {i} for a payment system.",
        "Is {i} a prime number?",
        "Explain why variant {i} of the sky is blue.",
    ]
    return [{"id": f"{prefix}{i}", "query": kinds[i % len(kinds)].format(i=i)} for i in range(n)]
