"""Input lines → `Query`; finished work → output record dicts. Pure functions.

Input shapes (DESIGN §2), detected per line:
  1. {"id", "query", "system"?, "params"?}
  2. OpenAI Batch API lines {"custom_id", "method", "url", "body": {"messages", ...}}
  3. {"id", "messages": [...]}
A line that cannot be used becomes an `InputProblem`, which is written as an
error record with the line number; the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

# Request fields that the router owns; a record cannot set them.
_ROUTER_FIELDS = ("model", "messages", "stream", "stream_options", "n")
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

RecordId = str | int

# Error types of records whose input line was unusable (no call was made).
INPUT_ERRORS = frozenset(
    {
        "invalid_json",
        "invalid_utf8",
        "not_object",
        "missing_query",
        "empty_query",
        "invalid_field",
        "duplicate_id",
        "line_too_long",
        "query_too_long",
    }
)


@dataclass(slots=True)
class Query:
    """One usable input line. `messages` excludes the config-wide default system prompt."""

    id: RecordId
    line: int
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    ignored_model: bool = False

    @property
    def text(self) -> str:
        """What the classifier sees: the last user message's text."""
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return content_text(m.get("content"))
        return ""


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A line that could not be used; becomes an error record."""

    line: int
    kind: str
    message: str
    id: RecordId | None = None


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def parse_line(raw: bytes, line: int) -> Query | InputProblem:
    """One physical line (without its line end) → a Query or the reason it is unusable."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return InputProblem(line, "invalid_utf8", "the line is not valid UTF-8")
        return InputProblem(line, "invalid_json", f"invalid JSON: {exc}")
    return parse_record(data, line)


def parse_record(data: Any, line: int) -> Query | InputProblem:
    """One decoded JSON value → a Query or the reason it is unusable."""
    if not isinstance(data, dict):
        return InputProblem(line, "not_object", f"expected a JSON object, got {_json_type(data)}")
    if "custom_id" in data and "body" in data:
        return _batch_line(data, line)
    rid = data.get("id", line)
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        return InputProblem(line, "invalid_field", "`id` must be a string or an integer")
    params = data.get("params", {})
    if not isinstance(params, dict):
        return InputProblem(line, "invalid_field", "`params` must be an object", rid)
    if "messages" in data and "query" not in data:
        return _with_messages(rid, line, data["messages"], params)
    query = data.get("query")
    if query is None:
        return InputProblem(line, "missing_query", "no `query` (or `messages`) field", rid)
    if not isinstance(query, str):
        return InputProblem(line, "invalid_field", "`query` must be a string", rid)
    if not query.strip():
        return InputProblem(line, "empty_query", "`query` is empty", rid)
    messages: list[dict[str, Any]] = []
    system = data.get("system")
    if system is not None:
        if not isinstance(system, str):
            return InputProblem(line, "invalid_field", "`system` must be a string", rid)
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": query})
    clean, ignored = _own_params(params)
    return Query(rid, line, messages, clean, ignored)


def _batch_line(data: dict[str, Any], line: int) -> Query | InputProblem:
    rid = data["custom_id"]
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        return InputProblem(line, "invalid_field", "`custom_id` must be a string")
    url = data.get("url", "/v1/chat/completions")
    if url not in ("/v1/chat/completions", "/chat/completions"):
        return InputProblem(line, "invalid_field", f"unsupported batch url {url!r} (only /v1/chat/completions)", rid)
    body = data["body"]
    if not isinstance(body, dict):
        return InputProblem(line, "invalid_field", "`body` must be an object", rid)
    params = {k: v for k, v in body.items() if k != "messages"}
    return _with_messages(rid, line, body.get("messages"), params)


def _with_messages(rid: RecordId, line: int, messages: Any, params: dict[str, Any]) -> Query | InputProblem:
    if not isinstance(messages, list) or not messages:
        return InputProblem(line, "missing_query", "`messages` must be a non-empty array", rid)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return InputProblem(line, "invalid_field", f"`messages[{i}]` needs a valid `role`", rid)
    query = Query(rid, line, messages, {}, False)
    if not query.text.strip():
        return InputProblem(line, "empty_query", "no user message with text", rid)
    query.params, query.ignored_model = _own_params(params)
    return query


def _own_params(params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Drop the fields the router owns; say whether a `model` was ignored."""
    clean = {k: v for k, v in params.items() if k not in _ROUTER_FIELDS}
    return clean, "model" in params


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def problem_record(p: InputProblem) -> dict[str, Any]:
    """The error record for an unusable line (no call was made, nothing was spent)."""
    return {
        "id": p.id if p.id is not None else p.line,
        "line": p.line,
        "status": "error",
        "error": {"type": p.kind, "message": p.message, "http_status": None},
    }
