"""Cost projection, labelling mode, reports and the OpenAI Batch output format, over HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from cascade_batch import run_file
from cascade_batch.config import Config
from cascade_batch.formats import unwrap
from cascade_batch.project import Reservoir, project
from cascade_batch.report import read_output

from .conftest import SimHandle, make_config
from .helpers import queries

ROOT = Path(__file__).parent.parent


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_reservoir_is_uniform_and_order_free() -> None:
    """Each item is kept with probability size/n, whatever the arrival order (checked over many seeds)."""
    hits: Counter[int] = Counter()
    for seed in range(2000):
        pool = Reservoir(5, seed)
        for i in range(50):
            pool.offer(i, i)
        backwards = Reservoir(5, seed)
        for i in reversed(range(50)):
            backwards.offer(i, i)
        assert pool.items == backwards.items
        hits.update(pool.items)
    assert len(hits) == 50
    assert all(120 < n < 280 for n in hits.values())  # expected 200 each


async def test_projection_interval_contains_the_real_run(simulator: SimHandle, tmp_path: Path) -> None:
    """The projected cascade cost's 95 % interval contains the cost of really running the log."""
    src = write(tmp_path / "in.jsonl", queries(450))
    cfg = make_config()
    real = await run_file(str(src), str(tmp_path / "out.jsonl"), cfg, simulator.endpoint)
    real_total = real.cost_classifier + real.cost_answer
    records = [orjson.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    labels = Counter(r["classification"]["label"] for r in records)
    result = await project(str(src), cfg, simulator.endpoint, answer_sample=30, seed=3)
    low, high = result["scenarios"]["cascade"]["ci95"]
    assert low <= real_total <= high, (low, real_total, high)
    # classifying every query gives exactly the run's tier mix
    assert {t: round(v["queries"]) for t, v in result["tiers"].items() if v["queries"]} == dict(labels)
    assert result["classifier"]["cost"] == pytest.approx(real.cost_classifier, rel=1e-9)
    assert result["answered_sample"] == 90 and result["lines"] == 450
    assert result["projection_cost"] > 0
    assert set(result["tier3_alternatives"]) == {"Mistral-Medium-3.5-128B", "Qwen3.5-122B-A10B-FP8", "gpt-oss-120b"}
    assert result["tier3_alternatives"]["Mistral-Medium-3.5-128B"]["cost"] == pytest.approx(
        result["scenarios"]["cascade"]["cost"]
    )
    top = result["scenarios"]["all_top"]
    assert top["ci95"][0] <= top["cost"] <= top["ci95"][1]


async def test_sampled_projection_and_scale(simulator: SimHandle, tmp_path: Path) -> None:
    """--sample classifies only N queries; --scale multiplies the money."""
    src = write(tmp_path / "in.jsonl", queries(300))
    cfg = make_config()
    one = await project(str(src), cfg, simulator.endpoint, sample=60, answer_sample=10, seed=1)
    assert one["classified"] == 60 and one["queries"] == 300
    classifier_calls = simulator.sim.stats["Qwen3.5-0.8B"].requests
    assert classifier_calls < 60 + 3 * 10 * 3  # the sample, plus the answered samples' own calls
    thirty = await project(str(src), cfg, simulator.endpoint, sample=60, answer_sample=10, seed=1, scale=30)
    assert thirty["scenarios"]["cascade"]["cost"] == pytest.approx(30 * one["scenarios"]["cascade"]["cost"])


async def test_classify_only_labels_without_answers(simulator: SimHandle, tmp_path: Path) -> None:
    """Labelling mode makes one classifier call per query and no answering call."""
    src = write(tmp_path / "in.jsonl", queries(40))
    out = tmp_path / "labels.jsonl"
    summary = await run_file(str(src), str(out), make_config(), simulator.endpoint, classify_only=True)
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(records) == 40 and summary.ok == 40
    assert all("answer" not in r and r["mode"] == "classify_only" for r in records)
    assert all(r["tier"] == r["classification"]["label"] for r in records)
    assert all(r["usage"]["answer"] == {"prompt_tokens": 0, "completion_tokens": 0} for r in records)
    assert simulator.sim.stats["Qwen3.5-0.8B"].requests == 40
    assert sum(s.requests for s in simulator.sim.stats.values()) == 40


async def test_params_pass_through_untouched(simulator: SimHandle) -> None:
    """A record's params (response_format, seed, …) reach the answering call as given."""
    from cascade_batch.config import EscalationConfig

    from .helpers import run_records

    cfg = make_config(sim={"short_answer_rate": 0.0}, escalation=EscalationConfig(min_words=1))
    params = {"response_format": {"type": "json_object"}, "seed": 7, "top_p": 0.5}
    [record] = await run_records([{"id": "j", "query": "Is 7 prime?", "params": params}], cfg, simulator.endpoint)
    assert record["status"] == "ok" and not record["escalations"]
    body = simulator.sim.last_body  # the answering call came last
    assert body is not None and body["model"] == record["model"]
    assert {k: body[k] for k in params} == params


async def test_report_agrees_with_the_run_summary(simulator: SimHandle, tmp_path: Path) -> None:
    """`report` rebuilds the run's summary exactly, also from a file with a torn last line."""
    src = write(tmp_path / "in.jsonl", [*queries(60), {"id": "x", "query": ""}])
    cfg = make_config()
    out = tmp_path / "out.jsonl"
    summary = await run_file(str(src), str(out), cfg, simulator.endpoint)
    rep = read_output(out, cfg)
    assert rep.summary.snapshot(cfg) == summary.snapshot(cfg)
    with open(out, "ab") as fh:
        fh.write(b'{"id": "torn", "li')
    rep = read_output(out, cfg)
    assert rep.unreadable == [62]
    assert rep.summary.snapshot(cfg) == summary.snapshot(cfg)


def test_report_cli_writes_json_and_html(tmp_path: Path) -> None:
    """The CLI report writes the summary JSON and a self-contained HTML page with four charts."""
    out = tmp_path / "out.jsonl"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade_batch",
            "run",
            str(ROOT / "samples" / "queries.jsonl"),
            "-o",
            str(out),
            "--simulate",
            "--quiet",
            "--sim-latency-ms",
            "0",
            "--summary",
            str(tmp_path / "s.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()
    rep = subprocess.run(
        [sys.executable, "-m", "cascade_batch", "report", str(out), "--json", "-", "--html", str(tmp_path / "r.html")],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert rep.returncode == 0, rep.stderr.decode()
    from_report = orjson.loads(rep.stdout)
    from_run = orjson.loads((tmp_path / "s.json").read_bytes())
    from_run.pop("wall_s")
    from_run.pop("throughput_qps")
    assert from_report == from_run
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 4 and "<script" not in page and "http" not in page.split("</title>")[1]


async def test_openai_batch_output_format(simulator: SimHandle, tmp_path: Path) -> None:
    """Batch-format lines carry the answer in response.body and our fields under `cascade`; resume reads them."""
    src = write(tmp_path / "in.jsonl", [*queries(20), {"id": "bad", "query": ""}])
    out = tmp_path / "out.jsonl"
    cfg: Config = make_config()
    await run_file(str(src), str(out), cfg, simulator.endpoint, output_format="openai-batch")
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    ok = [x for x in lines if x["error"] is None]
    bad = [x for x in lines if x["error"] is not None]
    assert len(ok) == 20 and len(bad) == 1
    first = ok[0]
    assert set(first) == {"id", "custom_id", "response", "error", "cascade"}
    body = first["response"]["body"]
    assert first["response"]["status_code"] == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].startswith("[simulated")
    assert body["model"] == first["cascade"]["model"]
    assert bad[0]["response"] is None and bad[0]["error"]["code"] == "empty_query"
    assert unwrap(first)["answer"] == body["choices"][0]["message"]["content"]
    again = await run_file(str(src), str(out), cfg, simulator.endpoint, mode="resume", output_format="openai-batch")
    assert again.resumed == 21 and again.total == 21
