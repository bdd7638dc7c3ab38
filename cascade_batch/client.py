"""The only module that speaks the OpenAI wire format.

It builds the AsyncOpenAI client (SDK retries off: tenacity in `retry.py` is
the one retry layer), sends one chat completion, turns the raw JSON body into
a `Completion`, and translates every SDK exception into our `CallError` kinds
at one seam (`wire_errors`). The response body is parsed with orjson instead
of the SDK's pydantic models: that is most of the SDK's CPU cost per call.
Error messages never contain the API key: `scrub` removes it from anything a
server echoes back.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from .completion import Completion
from .config import RetryConfig
from .errors import CallError, RetryableError, RunAborted
from .usage import Usage

if TYPE_CHECKING:
    import openai

_JSON = {"Content-Type": "application/json"}
_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "prompt is too long")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to send calls. `api_key` is never printed (repr hides it)."""

    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, api_key='***')"


def make_client(
    endpoint: Endpoint, retry: RetryConfig, *, connections: int, backend: str = "aiohttp"
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client, its connection pool sized to our total concurrency.

    The default `aiohttp` transport costs less CPU per call than the SDK's
    default httpx one (openai-python #1596; `make bench` measures both), and
    our CPU is mostly the SDK's. Must be built inside the running event loop.
    """
    import httpx2
    import openai

    timeout = httpx2.Timeout(retry.request_timeout_s, connect=retry.connect_timeout_s)
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    if backend == "httpx":
        http_client = openai.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
    else:
        http_client = openai.DefaultAioHttpClient(timeout=timeout, limits=limits)
    return openai.AsyncOpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        max_retries=0,
        timeout=timeout,
        http_client=http_client,
    )


async def chat(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[dict[str, Any]],
    body: Mapping[str, Any],
    *,
    secret: str,
) -> Completion:
    """One chat completion. Raises `RetryableError` / `CallError` / `RunAborted`.

    `body` holds every request field besides `model` and `messages`
    (sampling params and provider extensions), sent as-is.
    """
    import httpx2

    payload = orjson.dumps({**body, "model": model, "messages": messages})
    with wire_errors(secret):
        # The generic `post` with pre-encoded bytes skips `create()`'s per-call walk over the typed
        # params and the stdlib JSON encoder: the largest share of the SDK's CPU per call.
        response = await client.post(
            "/chat/completions", cast_to=httpx2.Response, content=payload, options={"headers": _JSON}
        )
        content = await response.aread()
    done = parse_completion(content, model)
    pause = budget_pause(response.headers)
    return replace(done, pause_s=pause) if pause else done


def parse_completion(content: bytes, model: str) -> Completion:
    """Raw response body → Completion; a body we cannot use is a transient fault.

    Whatever usage the body reports is attached to the error, so a billed
    but unusable response is still counted.
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise RetryableError("malformed_body", "the server sent a body that is not JSON", http_status=200) from None
    if not isinstance(data, dict):
        raise RetryableError("malformed_body", "the server sent JSON that is not an object", http_status=200)
    usage = usage_of(data.get("usage"))
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise RetryableError("empty_choices", "the response has no choices", http_status=200, usage=usage)
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise RetryableError("malformed_body", "the first choice has no message", http_status=200, usage=usage)
    text = message.get("content")
    finish = choice.get("finish_reason")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if text is not None and not isinstance(text, str):
        raise RetryableError("malformed_body", "message.content is not a string", http_status=200, usage=usage)
    if text is None and finish != "content_filter" and not reasoning:
        raise RetryableError("null_content", "message.content is null", http_status=200, usage=usage)
    return Completion(
        content=text,
        finish_reason=finish if isinstance(finish, str) else None,
        usage=usage,
        model=model,
        reasoning=reasoning if isinstance(reasoning, str) else None,
    )


def usage_of(raw: Any) -> Usage:
    """Server-reported usage; missing fields count as 0."""
    if not isinstance(raw, dict):
        return Usage()
    p, c = raw.get("prompt_tokens"), raw.get("completion_tokens")
    return Usage(p if isinstance(p, int) else 0, c if isinstance(c, int) else 0)


@contextmanager
def wire_errors(secret: str) -> Iterator[None]:
    """Translate the SDK's exceptions into our error tree (the one seam that does)."""
    import openai

    try:
        yield
    except openai.APIConnectionError as exc:  # APITimeoutError included
        root = root_cause(exc)
        if isinstance(root, TimeoutError):
            raise RetryableError("timeout", "the request timed out") from None
        detail = f"{type(root).__name__}: {root}" if root is not exc else str(exc)
        raise RetryableError("connection", scrub(f"connection failed ({detail})", secret)) from None
    except openai.APIStatusError as exc:
        raise status_error(exc.status_code, exc.response.headers, exc.response.content, secret) from None


def root_cause(exc: BaseException) -> BaseException:
    """The innermost cause: the aiohttp transport reports a refused or dropped
    connection as a connect *timeout*, so only the root tells them apart."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def status_error(status: int, headers: Mapping[str, str], body: bytes, secret: str) -> CallError:
    """An HTTP error status → the error it means for us."""
    detail = scrub(error_detail(body), secret)
    message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status == 429:
        return RetryableError("rate_limited", message, http_status=429, retry_after=retry_after(headers))
    if status >= 500 or status in (408, 409):
        return RetryableError(f"http_{status}", message, http_status=status, retry_after=retry_after(headers))
    if status == 401:
        raise RunAborted(f"the endpoint rejected the API key ({message}); check the key's environment variable")
    if status == 400 and any(hint in detail.lower() for hint in _CONTEXT_HINTS):
        return CallError("context_length", message, http_status=400)
    return CallError(f"http_{status}", message, http_status=status)


def error_detail(body: bytes) -> str:
    """The server's own error message, shortened; the raw text if it is not JSON."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("code") or ""
            return str(msg)[:300]
        if isinstance(err, str):
            return err[:300]
    return ""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """OpenAI-style reset durations (`1s`, `6m0s`, `20ms`, `0.5`) in seconds."""
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    return sum(float(n) * _UNIT_S[unit] for n, unit in parts) if parts else None


def budget_pause(headers: Mapping[str, str]) -> float | None:
    """Seconds until the server's request or token budget refills, when it says it is spent."""
    pauses = []
    for kind in ("requests", "tokens"):
        if headers.get(f"x-ratelimit-remaining-{kind}") == "0":
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
            if reset:
                pauses.append(reset)
    return max(pauses) if pauses else None


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait (`retry-after-ms`, `retry-after` seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def scrub(text: str, secret: str) -> str:
    """Remove the API key from text a server or library produced."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text
