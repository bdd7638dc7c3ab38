"""Unkillable runs: SIGKILL at random points, resume exactly once, locks, signals, --max-errors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from cascade_batch import run_file
from cascade_batch.config import ConfigError
from cascade_batch.outfile import OutputFile, scan

from .conftest import make_config, running
from .helpers import queries

ROOT = Path(__file__).parent.parent
FAST_TOML = """
[models."Qwen3.5-0.8B"]
rpm = 0
[models."Qwen3.6-35B-A3B-FP8"]
rpm = 0
[models."Mistral-Medium-3.5-128B"]
rpm = 0
[retry]
initial_backoff_s = 0
max_backoff_s = 0
request_timeout_s = 10
"""


def write_input(path: Path, n: int) -> dict[int, str]:
    """n query lines; returns line number → query text."""
    rows = queries(n)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return {i: r["query"] for i, r in enumerate(rows, 1)}


def read_records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def run_args(tmp_path: Path, src: Path, out: Path, url: str, *extra: str) -> list[str]:
    """`run SRC -o OUT` against `url` with the fast (unlimited, no backoff) config written beside them."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(FAST_TOML)
    return ["run", str(src), "-o", str(out), "--base-url", url, "-c", str(cfg), *extra]


def start_cli(*args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = "sk-test"
    return subprocess.Popen(
        [sys.executable, "-m", "cascade_batch", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def wait(proc: subprocess.Popen[bytes], timeout: float = 90) -> tuple[int, str]:
    _out, err = await anyio.to_thread.run_sync(lambda: proc.communicate(timeout=timeout))
    return proc.returncode, err.decode()


async def test_sigkill_at_random_points_then_resume_exactly_once(tmp_path: Path) -> None:
    """Killed three times mid-run, resumed each time: one record per line, no call repeated for a written one."""
    n = 2500
    texts = write_input(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    rng = random.Random(7)
    async with running(make_config(sim={"latency_ms": 5.0})) as handle:
        base = run_args(tmp_path, tmp_path / "in.jsonl", out, handle.url, "--quiet")
        kills = 0
        for attempt in range(4):
            done_before = {r["line"] for r in read_records(out)} if out.exists() else set()
            handle.sim.seen = Counter()
            proc = start_cli(*base, *(["--resume"] if attempt else []))
            if attempt < 3:
                await anyio.sleep(rng.uniform(0.8, 2.5))
                if proc.poll() is None:
                    proc.kill()
                    kills += 1
                await wait(proc)
            else:
                code, err = await wait(proc)
                assert code == 0, err
            repeated = {texts[line] for line in done_before} & set(handle.sim.seen)
            assert not repeated, f"{len(repeated)} written records were called again"
    assert kills >= 2
    records = read_records(out)
    lines = Counter(r["line"] for r in records)
    assert set(lines) == set(range(1, n + 1))
    assert max(lines.values()) == 1
    assert all(r["status"] == "ok" for r in records)
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_torn_last_line_is_cut_off_not_parsed(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial last line; resume truncates it and redoes that line."""
    out = tmp_path / "out.jsonl"
    good = orjson.dumps({"id": "a", "line": 1, "status": "ok"}) + b"\n"
    out.write_bytes(good + b'{"id": "b", "line": 2, "sta')
    state = scan(str(out))
    assert state.torn_bytes == len(b'{"id": "b", "line": 2, "sta')
    assert out.read_bytes() == good
    assert 1 in state.done and 2 not in state.done and state.records == 1


def test_a_foreign_file_is_not_resumed_onto(tmp_path: Path) -> None:
    """A complete line that is no record of ours stops the resume with a clear error."""
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"hello": "world"}\n')
    with pytest.raises(ConfigError, match="not a cascade_batch record"):
        scan(str(out))


def test_second_writer_is_refused_while_one_holds_the_lock(tmp_path: Path) -> None:
    """Two runs on one output: the second fails with a clear message; the lock goes with the first."""
    path = str(tmp_path / "out.jsonl")
    first = OutputFile(path)
    with pytest.raises(ConfigError, match="another cascade-batch run"):
        OutputFile(path, mode="resume")
    first.close()
    OutputFile(path, mode="resume").close()


async def test_retry_errors_reruns_only_the_error_records(tmp_path: Path) -> None:
    """Errors are kept on a plain resume; --retry-errors runs just those lines again and replaces them."""
    src = tmp_path / "in.jsonl"
    write_input(src, 30)
    out = tmp_path / "out.jsonl"
    broken = make_config(
        sim={"fault_rate": 0.5, "faults": ("500",)},
        retry={"max_attempts": 1},
        escalation=make_config().escalation.__class__(on_error=False),
    )
    async with running(broken) as handle:
        first = await run_file(str(src), str(out), broken, handle.endpoint)
    assert 0 < first.error < 30
    healthy = make_config()
    async with running(healthy) as handle:
        again = await run_file(str(src), str(out), healthy, handle.endpoint, mode="resume")
        assert sum(s.requests for s in handle.sim.stats.values()) == 0  # nothing left to do
        assert again.error == first.error and again.resumed == 30
        fixed = await run_file(str(src), str(out), healthy, handle.endpoint, mode="resume", retry_errors=True)
        calls = handle.sim.stats["Qwen3.5-0.8B"].requests
    assert fixed.error == 0 and fixed.total == 30
    assert calls >= first.error  # one classifier call per retried line, at least
    assert sorted(r["line"] for r in read_records(out)) == list(range(1, 31))


async def test_sigint_finishes_in_flight_records_then_resume_completes(tmp_path: Path) -> None:
    """Ctrl-C: exit 130, a valid file, a resume hint; the resumed run completes every line once."""
    n = 2000
    write_input(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    async with running(make_config(sim={"latency_ms": 200.0})) as handle:
        base = run_args(tmp_path, tmp_path / "in.jsonl", out, handle.url)
        proc = start_cli(*base)
        await anyio.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        code, err = await wait(proc)
        assert code == 130, err
        assert "--resume" in err and "finishing the records in flight" in err
        partial = read_records(out)
        assert 0 < len(partial) < n
        in_flight = handle.sim.stats["Qwen3.5-0.8B"].requests
        code, err = await wait(start_cli(*base, "--resume", "--quiet"))
        assert code == 0, err
    assert in_flight > 0
    assert sorted(r["line"] for r in read_records(out)) == list(range(1, n + 1))


async def test_second_sigint_stops_at_once(tmp_path: Path) -> None:
    """A second Ctrl-C does not wait for the grace period and still leaves a valid file."""
    write_input(tmp_path / "in.jsonl", 200)
    out = tmp_path / "out.jsonl"
    async with running(make_config(sim={"latency_ms": 3000.0})) as handle:
        proc = start_cli(*run_args(tmp_path, tmp_path / "in.jsonl", out, handle.url, "--grace-s", "60"))
        await anyio.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        await anyio.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code, err = await wait(proc)
        assert time.monotonic() - started < 20  # not the 60 s grace period, nor the 3 s calls x retries
    assert code == 130, err
    read_records(out)  # every line parses


async def test_max_errors_stops_cleanly(tmp_path: Path) -> None:
    """--max-errors N: the run stops after N bad lines, exit 3, and says how to resume."""
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(b"{bad\n" if i % 2 else orjson.dumps(r) + b"\n" for i, r in enumerate(queries(400))))
    out = tmp_path / "out.jsonl"
    async with running(make_config(sim={"latency_ms": 50.0})) as handle:
        proc = start_cli(*run_args(tmp_path, src, out, handle.url, "--max-errors", "5"))
        code, err = await wait(proc)
    assert code == 3, err
    assert "--max-errors" in err and "--resume" in err
    records = read_records(out)
    assert sum(1 for r in records if r["status"] == "error") >= 5
    assert len(records) < 400


def test_a_lock_file_replaced_under_a_run_is_left_to_its_owner(tmp_path: Path) -> None:
    """If OUTPUT.lock was deleted and re-created by another run, closing ours leaves theirs alone."""
    path = str(tmp_path / "out.jsonl")
    first = OutputFile(path)
    os.unlink(path + ".lock")  # someone cleans up by hand while the run is going
    second = OutputFile(path, mode="resume")  # a new run takes a new lock file at the same path
    first.close()  # must neither fail nor remove the second run's lock
    assert os.path.exists(path + ".lock")
    with pytest.raises(ConfigError, match="another cascade-batch run"):
        OutputFile(path, mode="resume")
    second.close()
    assert not os.path.exists(path + ".lock")
