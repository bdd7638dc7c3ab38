"""The embedded OpenAI-compatible simulator: an aiohttp server on loopback.

THIS IS A SIMULATOR, not a model: it serves `/v1/chat/completions` and
`/v1/models` for the configured models with the behaviour of `sim.model`
(answers, tokens, latency), per-model fixed-window rate limits (429 with an
OpenAI-style body and `retry-after` / `x-ratelimit-*` headers) and seeded
fault injection. `GET /sim/stats` returns its request counts as JSON.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from aiohttp import web
from anyio.abc import TaskStatus

from ..config import Config
from . import model as behaviour


@dataclass
class ModelStats:
    requests: int = 0
    ok: int = 0
    rate_limited: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "rate_limited": self.rate_limited,
            "faults": dict(self.faults),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class Window:
    """A fixed rate-limit window (mittwald: one minute), counting requests and tokens."""

    def __init__(self, length_s: float) -> None:
        self.length = length_s
        self.index = -1
        self.requests = 0
        self.tokens = 0

    def roll(self, now: float) -> None:
        index = math.floor(now / self.length)
        if index != self.index:
            self.index, self.requests, self.tokens = index, 0, 0

    def reset_in(self, now: float) -> float:
        return (self.index + 1) * self.length - now


class Simulator:
    """State of one simulator instance: config, RNG, windows, stats."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.sim = cfg.simulator
        self.rng = random.Random(self.sim.seed)
        self.ranks = {t.model: i for i, t in enumerate(cfg.tiers)}
        self.stats: dict[str, ModelStats] = {name: ModelStats() for name in cfg.models}
        self.windows = {name: Window(self.sim.window_s) for name in cfg.models}
        self.clock = time.monotonic
        self.seen: Counter[str] | None = None  # set to a Counter to record each request's last user text
        self.accepted_at: dict[str, list[float]] | None = None  # set to {} to record when each call was served
        self.last_body: dict[str, Any] | None = None  # the last request body, for tests of pass-through

    def snapshot(self) -> dict[str, Any]:
        return {name: s.as_dict() for name, s in self.stats.items() if s.requests}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "the request body is not valid JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object", "invalid_request_error")
        self.last_body = body
        name = body.get("model")
        messages = body.get("messages")
        if not isinstance(name, str) or name not in self.cfg.models:
            return _error(
                404, f"The model `{name}` does not exist (simulator)", "invalid_request_error", code="model_not_found"
            )
        stats = self.stats[name]
        stats.requests += 1
        if self.seen is not None and isinstance(messages, list):
            self.seen[behaviour.last_user_text(messages)] += 1
        if not isinstance(messages, list) or not messages:
            stats.faults["http_400"] += 1
            return _error(400, "`messages` must be a non-empty array", "invalid_request_error")
        temperature = body.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            stats.faults["http_400"] += 1
            return _error(400, "`temperature` must be a number between 0 and 2", "invalid_request_error")
        limited, rate_headers = self._rate_limit(name, behaviour.count_tokens(messages))
        if limited is not None:
            stats.rate_limited += 1
            return limited
        if self.accepted_at is not None:
            self.accepted_at.setdefault(name, []).append(self.clock())
        if self.sim.fault_rate and self.rng.random() < self.sim.fault_rate:
            kind = self.rng.choice(self.sim.faults)
            stats.faults[kind] += 1
            fault = await self._fault(kind, request)
            if fault is not None:
                return fault
        else:
            kind = ""
        rank = self.ranks.get(name, len(self.cfg.tiers) - 1)
        thinking = behaviour.thinking_enabled(name, self.sim.thinking_models, body)
        rep = behaviour.reply(
            name,
            rank,
            len(self.cfg.tiers),
            messages,
            body,
            short_rate=self.sim.short_answer_rate,
            thinking=thinking,
            junk_rate=self.sim.classifier_junk_rate,
        )
        delay = behaviour.latency_s(
            self.sim.latency_ms, self.sim.per_token_ms, self.sim.jitter, rep.completion_tokens, self.rng.random()
        )
        if delay:
            await asyncio.sleep(delay)
        self.windows[name].tokens += rep.completion_tokens
        stats.ok += 1
        stats.prompt_tokens += rep.prompt_tokens
        stats.completion_tokens += rep.completion_tokens
        return _completion(name, rep, kind, rate_headers)

    def _rate_limit(self, name: str, prompt_tokens: int) -> tuple[web.Response | None, dict[str, str]]:
        """A 429 when the model's window is spent, else None; plus the x-ratelimit-* headers."""
        m = self.cfg.models[name]
        window = self.windows[name]
        now = self.clock()
        window.roll(now)
        reset = window.reset_in(now)
        headers = {
            "x-ratelimit-limit-requests": str(m.rpm),
            "x-ratelimit-remaining-requests": str(max(0, m.rpm - window.requests - 1) if m.rpm else 0),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
        }
        over_rpm = m.rpm and window.requests >= m.rpm
        over_tpm = m.tpm and window.tokens >= m.tpm
        if over_rpm or over_tpm:
            what = "requests" if over_rpm else "tokens"
            headers.update(_retry_headers(reset))
            error = _error(
                429,
                f"Rate limit reached for {name} on {what} per minute (simulator)",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=headers,
            )
            return error, headers
        window.requests += 1
        window.tokens += prompt_tokens
        return None, headers if m.rpm else {}

    async def _fault(self, kind: str, request: web.Request) -> web.StreamResponse | None:
        """An injected fault's response; None for faults that change the answer instead."""
        wait = self.sim.retry_after_s
        if kind == "429":
            return _error(
                429,
                "Rate limit reached (injected by the simulator)",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=_retry_headers(wait),
            )
        if kind == "500":
            return _error(500, "Internal server error (injected by the simulator)", "server_error")
        if kind == "503":
            return _error(
                503, "Service unavailable (injected by the simulator)", "server_error", headers=_retry_headers(wait)
            )
        if kind == "timeout":
            await asyncio.sleep(self.sim.hang_s)
            return None
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if kind == "malformed":
            return web.Response(body=b'{"id": "chatcmpl-sim", "choices": [{"mess', content_type="application/json")
        return None  # empty_choices, null_content, length: shaped in _completion

    async def models(self, _request: web.Request) -> web.Response:
        data = [
            {"id": n, "object": "model", "created": 0, "owned_by": "cascade-batch-simulator"} for n in self.cfg.models
        ]
        return web.json_response({"object": "list", "data": data}, dumps=_dumps)

    async def stats_view(self, _request: web.Request) -> web.Response:
        return web.json_response(self.snapshot(), dumps=_dumps)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _retry_headers(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(round(seconds * 1000))}


def _error(
    status: int, message: str, kind: str, *, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _completion(model: str, rep: behaviour.Reply, fault: str, headers: dict[str, str]) -> web.Response:
    usage = {
        "prompt_tokens": rep.prompt_tokens,
        "completion_tokens": rep.completion_tokens,
        "total_tokens": rep.prompt_tokens + rep.completion_tokens,
    }
    message: dict[str, Any] = {"role": "assistant", "content": rep.content}
    if rep.reasoning is not None:
        message["reasoning_content"] = rep.reasoning
    finish = rep.finish_reason
    if fault == "null_content":
        message["content"] = None
    elif fault == "length" and rep.content:
        words = rep.content.split()
        message["content"] = " ".join(words[: max(1, len(words) // 2)])
        finish = "length"
    choices = [] if fault == "empty_choices" else [{"index": 0, "message": message, "finish_reason": finish}]
    body = {
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": choices,
        "usage": usage,
        "system_fingerprint": "cascade-batch-simulator",
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)


def build_app(sim: Simulator) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_post("/chat/completions", sim.chat)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/sim/stats", sim.stats_view)
    return app


async def start(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start listening; returns the runner (call `cleanup()` to stop) and the base URL."""
    runner = web.AppRunner(build_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}/v1"


async def serve(
    sim: Simulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports its base URL (`http://host:port/v1`) once it listens."""
    runner, url = await start(sim, host, port)
    try:
        task_status.started(url)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
