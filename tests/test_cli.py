"""The command line, run as a user runs it: a subprocess, real files, the built-in simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

import cascade_batch

ROOT = Path(__file__).parent.parent
SAMPLES = ROOT / "samples" / "queries.jsonl"
FAKE_KEY = "sk-cascade-TEST-4f9c2e1b7a"


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cascade_batch", *args],
        capture_output=True,
        env=full_env,
        input=stdin,
        timeout=120,
        cwd=ROOT,
    )


def test_simulated_run_writes_one_record_per_line_and_a_summary(tmp_path: Path) -> None:
    """`run --simulate` (the demo) answers every sample line, writes the summary JSON, exits 0."""
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    proc = cli("run", str(SAMPLES), "-o", str(out), "--simulate", "--summary", str(summary), "--sim-latency-ms", "0")
    assert proc.returncode == 0, proc.stderr.decode()
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(records) == len(SAMPLES.read_bytes().splitlines())
    snap = orjson.loads(summary.read_bytes())
    assert snap["records"]["total"] == len(records)
    assert set(snap) >= {
        "records",
        "by_tier",
        "by_model",
        "escalations",
        "errors",
        "tokens",
        "cost",
        "wall_s",
        "throughput_qps",
        "latency_ms",
    }
    err = proc.stderr.decode()
    assert "simulator" in err and "savings" in err
    assert proc.stdout == b""  # results went to the file, progress and summary to stderr


def test_stdin_to_stdout_and_exit_status_1_on_error_records() -> None:
    """`-` reads stdin and writes stdout; a bad line makes the exit status 1."""
    data = b'{"id": 1, "query": "Is 7 prime?"}\n{broken\n'
    proc = cli("run", "-", "-o", "-", "--simulate", "--quiet", "--sim-latency-ms", "0", stdin=data)
    assert proc.returncode == 1, proc.stderr.decode()
    records = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert sorted(r["status"] for r in records) == ["error", "ok"]
    assert proc.stderr == b""


@pytest.mark.parametrize(
    "args, env, fragment",
    [
        (["run", str(SAMPLES), "-o", "{out}"], {}, "OPENAI_API_KEY"),
        (["run", "missing.jsonl", "-o", "{out}", "--simulate"], {}, "input file not found"),
        (["run", str(SAMPLES), "-o", "{out}", "--simulate", "-c", "{bad}"], {}, "escalation.min_wrods"),
        (["run", str(SAMPLES), "-o", "{full}", "--simulate"], {}, "--overwrite"),
        (["run", str(SAMPLES), "-o", "{out}", "--simulate", "--sim-faults", "meteor"], {}, "simulator.faults"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    """Missing key, missing input, bad config, non-empty output: exit 2 before any work."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[escalation]\nmin_wrods = 3\n")
    full = tmp_path / "full.jsonl"
    full.write_text('{"id": 1}\n')
    paths = {"out": str(tmp_path / "out.jsonl"), "bad": str(bad), "full": str(full)}
    proc = cli(*(a.format(**paths) for a in args), env=env)
    assert proc.returncode == 2
    assert fragment in proc.stderr.decode()
    assert full.read_text() == '{"id": 1}\n'  # never truncated without --overwrite


def test_help_lists_the_commands() -> None:
    """`--help` works without a key and names the commands."""
    proc = cli("--help")
    assert proc.returncode == 0
    assert b"run" in proc.stdout and b"simulate" in proc.stdout


def echo_auth(status: int) -> Any:
    """A broken endpoint that echoes the Authorization header back in its error body."""

    async def handler(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"error": {"message": f"boom, your header was {request.headers.get('Authorization')}"}}
        return web.json_response(body, status=status)

    return handler


@pytest.mark.parametrize("status, exit_status", [(500, 1), (401, 2)])
async def test_the_api_key_never_appears_in_output_or_errors(tmp_path: Path, status: int, exit_status: int) -> None:
    """A server that echoes the key back: it shows up in no record, summary or message."""
    import anyio

    app = web.Application()
    app.router.add_post("/v1/chat/completions", echo_auth(status))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retry]\nmax_attempts = 2\ninitial_backoff_s = 0\nmax_backoff_s = 0\n")
    out, summary = tmp_path / "out.jsonl", tmp_path / "s.json"
    try:
        proc = await anyio.to_thread.run_sync(
            lambda: cli(
                "run",
                str(SAMPLES),
                "-o",
                str(out),
                "-c",
                str(cfg),
                "--summary",
                str(summary),
                "--base-url",
                f"http://{host}:{port}/v1",
                env={"OPENAI_API_KEY": FAKE_KEY},
            )
        )
    finally:
        await runner.cleanup()
    assert proc.returncode == exit_status
    written = out.read_bytes() + (summary.read_bytes() if summary.exists() else b"") + proc.stdout + proc.stderr
    assert b"boom, your header was Bearer ***" in written
    assert FAKE_KEY.encode() not in written
    if status == 401:
        assert b"rejected the API key" in proc.stderr


def test_public_api_is_pinned() -> None:
    """The names re-exported from cascade_batch are the documented ones."""
    assert cascade_batch.__all__ == [
        "CallError",
        "CascadeError",
        "Config",
        "ConfigError",
        "Endpoint",
        "RetryableError",
        "RunAborted",
        "Summary",
        "load",
        "resolve_endpoint",
        "run_file",
        "stream",
    ]
    assert "***" in repr(cascade_batch.Endpoint("http://x", FAKE_KEY))


def test_project_and_audit_commands_write_the_documented_json(tmp_path: Path) -> None:
    """`project` and `audit` run end to end on the simulator and write DESIGN §6's keys."""
    fast = tmp_path / "fast.toml"
    fast.write_text(
        "".join(
            f'[models."{m}"]\nrpm = 0\n' for m in ("Qwen3.5-0.8B", "Qwen3.6-35B-A3B-FP8", "Mistral-Medium-3.5-128B")
        )
    )
    proj = cli(
        "project",
        str(SAMPLES),
        "--simulate",
        "-c",
        str(fast),
        "--answer-sample",
        "5",
        "--json",
        "-",
        "--sim-latency-ms",
        "0",
        "--quiet",
    )
    assert proj.returncode == 0, proj.stderr.decode()
    data = orjson.loads(proj.stdout)
    assert set(data) >= {
        "lines",
        "classified",
        "answered_sample",
        "scenarios",
        "savings_pct",
        "tier3_alternatives",
        "projection_cost",
        "currency",
    }
    assert set(data["scenarios"]) == {"cascade", "all_top", "all_middle"}
    out = tmp_path / "out.jsonl"
    run = cli("run", str(SAMPLES), "-o", str(out), "--simulate", "-c", str(fast), "--quiet", "--sim-latency-ms", "0")
    assert run.returncode == 0, run.stderr.decode()
    aud = cli(
        "audit",
        str(out),
        "--input",
        str(SAMPLES),
        "--simulate",
        "-c",
        str(fast),
        "--sample",
        "8",
        "--json",
        "-",
        "--sim-latency-ms",
        "0",
    )
    assert aud.returncode == 0, aud.stderr.decode()
    result = orjson.loads(aud.stdout)
    assert set(result) >= {
        "sampled",
        "overall",
        "by_tier",
        "audit_cost",
        "run_savings_pct",
        "min_words_replay",
        "currency",
    }
    assert result["sampled"] == 8 and "quality audit" in aud.stderr.decode()
