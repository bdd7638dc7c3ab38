"""The real pipeline over real HTTP against the simulator on a loopback port."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from cascade_batch import Summary, run_file
from cascade_batch.client import Endpoint
from cascade_batch.config import Config, EscalationConfig, ModelConfig
from cascade_batch.pricing import call_cost
from cascade_batch.sim.model import LABELS, complexity
from cascade_batch.usage import Usage

from .conftest import SimHandle, make_config, running
from .helpers import by_id, queries, run_records

SAMPLES = Path(__file__).parent.parent / "samples" / "queries.jsonl"


def billed_by_model(records: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """(calls, prompt, completion) per model, summed over the records' ledgers."""
    out: dict[str, tuple[int, int, int]] = {}
    for r in records:
        for model, s in r.get("usage", {}).get("by_model", {}).items():
            c, p, k = out.get(model, (0, 0, 0))
            out[model] = (c + s["calls"], p + s["prompt_tokens"], k + s["completion_tokens"])
    return out


def served_by_model(handle: SimHandle) -> dict[str, tuple[int, int, int]]:
    """(billed responses, prompt, completion) per model, as the simulator counted them."""
    out = {}
    for model, s in handle.sim.stats.items():
        if s.ok:
            out[model] = (s.ok, s.prompt_tokens, s.completion_tokens)
    return out


async def test_every_line_yields_one_record_and_routing_follows_the_classifier(
    simulator: SimHandle, tmp_path: Path
) -> None:
    """The sample file (all three shapes) gives one ok record per line, routed by the classifier's label."""
    cfg = make_config()
    out = tmp_path / "out.jsonl"
    summary = await run_file(str(SAMPLES), str(out), cfg, simulator.endpoint)
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    n_input = len(SAMPLES.read_bytes().splitlines())
    assert len(lines) == n_input == summary.total
    assert sorted(r["line"] for r in lines) == list(range(1, n_input + 1))
    assert all(r["status"] == "ok" for r in lines)
    originals = {n: orjson.loads(raw) for n, raw in enumerate(SAMPLES.read_bytes().splitlines(), 1)}
    for r in lines:
        src = originals[r["line"]]
        text = (
            src.get("query")
            or [m for m in (src.get("messages") or src["body"]["messages"]) if m["role"] == "user"][-1]["content"]
        )
        assert r["classification"]["label"] == LABELS[complexity(text)]
        hops = len(r["escalations"])
        assert cfg.tier_index(r["tier"]) == cfg.tier_index(r["classification"]["label"]) + hops
        assert (r["classification"]["label"] != r["tier"]) == bool(hops)


async def test_short_answers_escalate_and_discarded_calls_are_billed(simulator: SimHandle) -> None:
    """Deceptively short small-model answers escalate; every billed token is in the records."""
    records = await run_records(queries(200), make_config(), simulator.endpoint)
    short = [r for r in records if any(h["reason"] == "short_answer" for h in r["escalations"])]
    assert short, "the simulator answers some simple queries too briefly"
    for r in short:
        assert r["escalations"][0] == {"from_tier": "simple", "from_model": "Qwen3.5-0.8B", "reason": "short_answer"}
        assert r["usage"]["by_model"]["Qwen3.5-0.8B"]["calls"] == 2  # classifier + the discarded answer
        assert r["attempts"] == 2
    assert billed_by_model(records) == served_by_model(simulator)


async def test_cost_is_usage_times_price_for_a_hand_computed_case(simulator: SimHandle) -> None:
    """One simple query: classifier + answer cost equal the server's usage x the config's prices."""
    cfg = make_config(sim={"short_answer_rate": 0.0})
    [record] = await run_records([{"id": "paris", "query": "What is the capital of France?"}], cfg, simulator.endpoint)
    assert record["tier"] == "simple" and not record["escalations"]
    stats = simulator.sim.stats["Qwen3.5-0.8B"]
    assert stats.ok == 2
    # classifier: system prompt (~650 chars) + query; answer: the query alone, both on Qwen3.5-0.8B
    cu, au = record["usage"]["classifier"], record["usage"]["answer"]
    assert cu["prompt_tokens"] + au["prompt_tokens"] == stats.prompt_tokens
    assert cu["completion_tokens"] + au["completion_tokens"] == stats.completion_tokens
    price_in, price_out = 0.05, 0.10  # EUR per 1M tokens, the default table
    expected_classifier = (cu["prompt_tokens"] * price_in + cu["completion_tokens"] * price_out) / 1e6
    expected_answer = (au["prompt_tokens"] * price_in + au["completion_tokens"] * price_out) / 1e6
    assert record["cost"]["classifier"] == pytest.approx(expected_classifier, rel=1e-12)
    assert record["cost"]["answer"] == pytest.approx(expected_answer, rel=1e-12)
    assert record["cost"]["total"] == record["cost"]["classifier"] + record["cost"]["answer"]
    top = cfg.models["Mistral-Medium-3.5-128B"]
    assert record["cost"]["baseline"] == call_cost(Usage(au["prompt_tokens"], au["completion_tokens"]), top)
    assert au["prompt_tokens"] == 3 + 4 + 8  # primer + one message + ceil(30 chars / 4)


async def test_summary_totals_equal_the_sum_of_records(simulator: SimHandle, tmp_path: Path) -> None:
    """The summary's counts, tokens and money add up to the records', exactly."""
    cfg = make_config()
    out = tmp_path / "out.jsonl"
    summary = await run_file(queries(120), str(out), cfg, simulator.endpoint)
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    snap = summary.snapshot(cfg, wall_s=1.0)
    assert snap["records"] == {"total": 120, "ok": 120, "error": 0, "resumed": 0}
    assert sum(snap["by_tier"].values()) == 120
    for tier, n in snap["by_tier"].items():
        assert n == sum(1 for r in records if r["tier"] == tier)
    for key in ("classifier", "answer", "total", "baseline"):
        assert snap["cost"][key] == pytest.approx(sum(r["cost"][key] for r in records), rel=1e-12)
    assert snap["tokens"]["prompt"] == sum(r["usage"]["total"]["prompt_tokens"] for r in records)
    assert snap["tokens"]["completion"] == sum(r["usage"]["total"]["completion_tokens"] for r in records)
    assert (
        {m: (v["calls"], v["prompt_tokens"], v["completion_tokens"]) for m, v in snap["by_model"].items()}
        == billed_by_model(records)
        == served_by_model(simulator)
    )
    per_model_cost = sum(v["cost"] for v in snap["by_model"].values())
    assert per_model_cost == pytest.approx(snap["cost"]["total"], rel=1e-9)
    assert snap["escalations"]["short_answer"] == sum(len(r["escalations"]) for r in records)
    # the same fold over the written file gives the same totals
    again = Summary(currency="EUR")
    for r in records:
        again.add(r)
    assert again.snapshot(cfg) == summary.snapshot(cfg)


ALL_FAULTS = ("429", "500", "503", "timeout", "drop", "malformed", "empty_choices", "null_content", "length")


@pytest.fixture
def faulty_config() -> Config:
    return make_config(
        sim={"fault_rate": 0.3, "hang_s": 1.0, "faults": ALL_FAULTS},
        retry={"request_timeout_s": 0.3, "max_attempts": 8},
    )


async def test_retries_survive_injected_faults(faulty_config: Config) -> None:
    """With 30 % injected faults of every kind, every record still ends ok, and billed bodies count."""
    async with running(faulty_config) as handle:
        records = await run_records(queries(150), faulty_config, handle.endpoint)
    sim = handle.sim
    assert len(records) == 150
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records if r["status"] != "ok"]
    faults = sum((s.faults for s in sim.stats.values()), start=Counter())
    for kind in ALL_FAULTS:
        assert faults[kind] > 0, kind
    assert any(r["attempts"] > len(r["escalations"]) + 1 for r in records)
    # empty_choices and null_content bodies carried usage: billed although retried. A timed-out call
    # that the server finished later is billed by the server but never seen by us: exclude those.
    served = {
        m: (s.ok - s.faults["timeout"], s.prompt_tokens, s.completion_tokens) for m, s in sim.stats.items() if s.ok
    }
    billed = billed_by_model(records)
    assert {m: v[0] for m, v in billed.items()} == {m: v[0] for m, v in served.items()}


async def test_rate_limit_storm_is_survived_with_retry_after(simulator: SimHandle) -> None:
    """A server limit far below the client's (a 429 storm) slows the run but loses nothing."""
    cfg = make_config(sim={"window_s": 0.2})
    models = {n: replace(m, rpm=25) for n, m in cfg.models.items()}
    server_cfg = cfg.with_overrides(models=models)  # the client does not know the server's limit
    async with running(server_cfg) as handle:
        records = await run_records(queries(80), cfg, handle.endpoint)
    assert len(records) == 80 and all(r["status"] == "ok" for r in records)
    limited = sum(s.rate_limited for s in handle.sim.stats.values())
    assert limited > 0
    assert sum(r["attempts"] for r in records) > sum(len(r["escalations"]) + 1 for r in records)


async def test_client_limits_avoid_429s() -> None:
    """With the provider's limit in the config, the client paces itself and meets no 429."""
    cfg = make_config()
    models = {n: replace(m, rpm=150) for n, m in cfg.models.items()}
    cfg = cfg.with_overrides(models=models)
    async with running(cfg) as handle:
        records = await run_records(queries(40), cfg, handle.endpoint)
    assert all(r["status"] == "ok" for r in records)
    assert sum(s.rate_limited for s in handle.sim.stats.values()) == 0
    assert handle.sim.stats["Qwen3.5-0.8B"].requests > 40


async def test_bad_lines_become_error_records_and_the_run_continues(simulator: SimHandle, tmp_path: Path) -> None:
    """Invalid JSON, non-objects, empty queries, duplicates and long lines are error records; the rest run."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                b'{"id": "a", "query": "Is 7 prime?"}',
                b"{oops",
                b"",
                b"[1]",
                b'{"id": "b", "query": ""}',
                b'{"id": "a", "query": "Is 9 prime?"}',
                b'{"id": "c", "query": "' + b"x" * 2000 + b'"}',
                b'{"id": "d", "query": "What is 2+2?"}\r',
                b'{"id": "e", "query": "Name a colour."}',
            ]
        )
    )
    cfg = make_config().with_overrides(input=replace(make_config().input, max_line_bytes=1000))
    out = tmp_path / "out.jsonl"
    summary = await run_file(str(path), str(out), cfg, simulator.endpoint)
    records = by_id(orjson.loads(x) for x in out.read_bytes().splitlines())
    errors = {r["line"]: r["error"]["type"] for r in records.values() if r["status"] == "error"}
    # line 6 repeats id "a": its error record carries the id too, so look it up by line
    lines = {orjson.loads(x)["line"]: orjson.loads(x) for x in out.read_bytes().splitlines()}
    assert len(lines) == 8  # 9 lines, one blank
    assert {n: r["error"]["type"] for n, r in lines.items() if r["status"] == "error"} == {
        2: "invalid_json",
        4: "not_object",
        5: "empty_query",
        6: "duplicate_id",
        7: "line_too_long",
    }
    assert {n for n, r in lines.items() if r["status"] == "ok"} == {1, 8, 9}
    assert lines[2]["id"] == 2 and "invalid JSON" in lines[2]["error"]["message"]
    assert summary.errors["invalid_json"] == 1 and summary.ok == 3
    assert errors


async def test_permanent_errors_are_not_retried_or_escalated(simulator: SimHandle) -> None:
    """A 400 (bad temperature) fails once, on the first tier, as an error record."""
    [record] = await run_records(
        [{"id": "x", "query": "Is 7 prime?", "params": {"temperature": 9}}], make_config(), simulator.endpoint
    )
    assert record["status"] == "error"
    assert record["error"]["type"] == "http_400" and record["error"]["http_status"] == 400
    assert record["attempts"] == 1 and record["escalations"] == []
    assert sum(s.faults["http_400"] for s in simulator.sim.stats.values()) == 1


async def test_provider_down_ends_with_error_records(tmp_path: Path) -> None:
    """With nothing listening, calls fail after bounded retries and every record is an error."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = make_config(retry={"max_attempts": 2})
    records = await run_records(queries(5), cfg, Endpoint(f"http://127.0.0.1:{port}/v1", "k"))
    assert len(records) == 5
    assert all(r["status"] == "error" and r["error"]["type"] == "connection" for r in records)
    # each tier tried twice, then escalated on error; the top tier gives up
    assert all(
        [h["reason"] for h in r["escalations"]] == ["error"] * (2 - cfg.tier_index(r["classification"]["label"]))
        for r in records
    )
    assert all(r["classification"]["error"] == "connection" for r in records)


async def test_truncated_answers_escalate_and_the_top_tier_keeps_them(simulator: SimHandle) -> None:
    """finish_reason "length" escalates; at the top tier the truncated answer is kept and visible."""
    q = {"id": "t", "query": "Is 7 prime?", "params": {"max_tokens": 10}}
    cfg = make_config(sim={"short_answer_rate": 0.0}, escalation=EscalationConfig(min_words=1))
    [record] = await run_records([q], cfg, simulator.endpoint)
    assert [h["reason"] for h in record["escalations"]] == ["truncated", "truncated"]
    assert record["status"] == "ok" and record["tier"] == "complex" and record["finish_reason"] == "length"


async def test_thinking_model_without_extra_body_escalates_as_empty(simulator: SimHandle) -> None:
    """Without enable_thinking=false the middle tier answers only in reasoning_content: escalate, no crash."""
    cfg = make_config()
    models = dict(cfg.models)
    models["Qwen3.6-35B-A3B-FP8"] = replace(models["Qwen3.6-35B-A3B-FP8"], extra_body={})
    cfg = cfg.with_overrides(models=models)
    [record] = await run_records(
        [{"id": "m", "query": "Write a Python function that reverses a list."}], cfg, simulator.endpoint
    )
    assert record["classification"]["label"] == "moderate"
    assert record["escalations"] == [{"from_tier": "moderate", "from_model": "Qwen3.6-35B-A3B-FP8", "reason": "empty"}]
    assert record["tier"] == "complex" and record["status"] == "ok"
    assert record["usage"]["by_model"]["Qwen3.6-35B-A3B-FP8"]["completion_tokens"] > 0  # thinking is billed


async def test_junk_labels_go_to_the_default_tier_and_are_counted() -> None:
    """An unparseable classifier reply routes to classifier.default_tier and is counted."""
    cfg = make_config(sim={"classifier_junk_rate": 1.0})
    async with running(cfg) as handle:
        records = await run_records(queries(10), cfg, handle.endpoint)
    assert all(
        r["classification"] == {"label": "moderate", "raw": "I cannot tell", "model": "Qwen3.5-0.8B", "unparsed": True}
        for r in records
    )
    summary = Summary()
    for r in records:
        summary.add(r)
    assert summary.snapshot()["labels"]["unparsed"] == 10


async def test_context_window_overflow_escalates_before_calling(simulator: SimHandle) -> None:
    """A query too long for a tier's context goes up without a call to that tier."""
    cfg = make_config()
    models = dict(cfg.models)
    models["Qwen3.5-0.8B"] = replace(models["Qwen3.5-0.8B"], context_tokens=50)
    cfg = cfg.with_overrides(models=models)
    text = "Is " + "7" * 400 + " prime?"  # three words (simple), ~100 tokens
    [record] = await run_records([{"id": "long", "query": text}], cfg, simulator.endpoint)
    assert record["escalations"][0]["reason"] == "context_length"
    assert simulator.sim.stats["Qwen3.5-0.8B"].requests == 1  # the classifier only


async def test_system_prompt_passthrough(simulator: SimHandle) -> None:
    """A record's system prompt, or the config-wide default, reaches the answering model."""
    cfg = make_config(sim={"short_answer_rate": 0.0}, escalation=EscalationConfig(min_words=1))
    cfg = cfg.with_overrides(
        answer=replace(cfg.answer, system_prompt="You are terse."), dedup=replace(cfg.dedup, enabled=False)
    )  # "default" and "none" are identical
    records = by_id(
        await run_records(
            [
                {"id": "own", "query": "Is 7 prime?", "system": "Sei knapp."},
                {"id": "default", "query": "Is 7 prime?"},
                {"id": "none", "query": "Is 7 prime?"},
            ],
            cfg,
            simulator.endpoint,
        )
    )
    # prompt tokens: primer 3 + 4 per message + ceil(chars/4): the system message adds 4 + ceil(len/4)
    base = records["none"]["usage"]["answer"]["prompt_tokens"]
    assert records["default"]["usage"]["answer"]["prompt_tokens"] == base  # same default system prompt
    plain = make_config(sim={"short_answer_rate": 0.0}, escalation=EscalationConfig(min_words=1))
    [bare] = await run_records([{"id": "bare", "query": "Is 7 prime?"}], plain, simulator.endpoint)
    assert base == bare["usage"]["answer"]["prompt_tokens"] + 4 + 4  # "You are terse." = 14 chars
    assert records["own"]["usage"]["answer"]["prompt_tokens"] == bare["usage"]["answer"]["prompt_tokens"] + 4 + 3


def test_models_in_default_config_have_prices() -> None:
    """Every model the default config can call has a price (needed for money)."""
    cfg = Config.default()
    for name in cfg.used_models():
        assert isinstance(cfg.models[name], ModelConfig)
        assert cfg.models[name].input_per_mtok > 0


async def test_twenty_percent_faults_over_5000_queries_lose_nothing() -> None:
    """20 % faults of every kind over 5,000 queries: the run finishes and every query has its one record."""
    cfg = make_config(
        sim={"fault_rate": 0.2, "hang_s": 1.0, "faults": ALL_FAULTS},
        retry={"request_timeout_s": 0.3, "max_attempts": 8},
    )
    async with running(cfg) as handle:
        records = await run_records(queries(5000), cfg, handle.endpoint)
    ids = Counter(r["id"] for r in records)
    assert len(ids) == 5000 and max(ids.values()) == 1
    assert all(r["status"] == "ok" for r in records), Counter(r["error"]["type"] for r in records if "error" in r)
    faults = sum((s.faults for s in handle.sim.stats.values()), start=Counter())
    assert all(faults[k] > 50 for k in ALL_FAULTS), faults
    truncated = sum(1 for r in records for h in r["escalations"] if h["reason"] == "truncated")
    assert truncated > 0  # injected finish_reason "length" escalates


async def test_query_too_long_for_every_tier_costs_nothing(simulator: SimHandle) -> None:
    """A query above the largest context window is an error record before any call."""
    cfg = make_config()
    cfg = cfg.with_overrides(models={n: replace(m, context_tokens=100) for n, m in cfg.models.items()})
    [record] = await run_records([{"id": "big", "query": "word " * 200}], cfg, simulator.endpoint)
    assert record["status"] == "error" and record["error"]["type"] == "query_too_long"
    assert sum(s.requests for s in simulator.sim.stats.values()) == 0


async def test_httpx_backend_gives_the_same_records(simulator: SimHandle) -> None:
    """The SDK's own httpx transport (`http_backend = "httpx"`) produces the same results as aiohttp."""
    cfg = make_config()
    first = by_id(await run_records(queries(30), cfg, simulator.endpoint))
    second = by_id(await run_records(queries(30), cfg.with_overrides(http_backend="httpx"), simulator.endpoint))
    assert {k: (r["tier"], r["usage"]) for k, r in first.items()} == {
        k: (r["tier"], r["usage"]) for k, r in second.items()
    }
