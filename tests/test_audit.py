"""Quality audit: verdict parsing, intervals, and the whole path over HTTP against the simulator."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cascade_batch import run_file
from cascade_batch.audit import allocate, audit, combine, parse_verdict, wilson
from cascade_batch.config import EscalationConfig
from cascade_batch.pricing import call_cost

from .conftest import make_config, running
from .helpers import queries


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A", "A"),
        ("**B**", "B"),
        ("Answer A.", "A"),
        ("Tie.", "tie"),
        (" tie\n", "tie"),
        ("b", "B"),
        ("<think>A or B?</think> B", "B"),
        ("both are fine", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(raw: str | None, expected: str | None) -> None:
    """Judge replies parse like classifier labels; junk gives None."""
    assert parse_verdict(raw) == expected


@pytest.mark.parametrize(
    "first, second, outcome",
    [("A", "B", "win"), ("B", "A", "loss"), ("A", "A", "tie"), ("tie", "tie", "tie"), ("B", None, "tie")],
)
def test_both_orders_must_agree(first: str | None, second: str | None, outcome: str) -> None:
    """The cascade's answer is A in the first order and B in the second; disagreement is a tie."""
    assert combine(first, second) == outcome


def test_wilson_interval_hand_checked() -> None:
    """3 losses in 10: the Wilson 95 % interval is [0.108, 0.603] (textbook value)."""
    low, high = wilson(3, 10)
    assert low == pytest.approx(0.1078, abs=5e-4) and high == pytest.approx(0.6032, abs=5e-4)
    assert wilson(0, 0) == [0.0, 1.0]


def test_allocation_is_stratified() -> None:
    """Sample sizes follow each tier's share, with at least one per tier that has records."""
    assert allocate({"simple": 300, "moderate": 100, "complex": 0}, 40) == {"simple": 30, "moderate": 10}
    assert allocate({"simple": 3}, 40) == {"simple": 3}


async def test_a_known_loss_is_reported_and_the_audit_cost_is_its_calls(tmp_path: Path) -> None:
    """Kept too-short answers lose to the top tier; the audit costs its calls x prices; resume redoes nothing."""
    cfg = make_config(sim={"short_answer_rate": 1.0}, escalation=EscalationConfig(min_words=1))
    src = tmp_path / "in.jsonl"
    rows = [r for r in queries(60) if "capital" in r["query"] or "prime" in r["query"]]  # simple ones
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    out = tmp_path / "out.jsonl"
    async with running(cfg) as handle:
        await run_file(str(src), str(out), cfg, handle.endpoint)
    async with running(cfg) as handle:
        result = await audit(str(out), str(src), cfg, handle.endpoint, sample=10, seed=2)
        stats = handle.sim.stats
        paid = sum(call_cost(s, cfg.models[m]) for m, s in stats.items() if s.ok)
    assert result["sampled"] == 10
    assert result["by_tier"]["simple"]["loss"] == 1.0
    assert result["overall"]["loss_ci95"] == pytest.approx(wilson(10, 10))
    assert result["audit_cost"] == pytest.approx(paid, rel=1e-9)
    replay = {r["min_words"]: r for r in result["min_words_replay"]}
    assert replay[20]["loss"] == 0.0  # with the seed's threshold these would have escalated
    audit_file = Path(str(out) + ".audit.jsonl")
    assert len(audit_file.read_bytes().splitlines()) == 10
    async with running(cfg) as handle:
        again = await audit(str(out), str(src), cfg, handle.endpoint, sample=10, seed=2, mode="resume")
        assert sum(s.requests for s in handle.sim.stats.values()) == 0
    assert again["overall"] == result["overall"]
