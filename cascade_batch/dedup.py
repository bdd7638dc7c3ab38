"""Never pay twice within a run: identical requests are classified and answered once.

Two requests are identical when their messages (roles and whitespace-
normalised text, system prompt included) and params are equal. The first is
processed; copies that arrive while it is in flight wait for its record
without holding a worker (they are parked here, not in a stage), and copies
that arrive after it finished get it from a bounded window of recent results.
Memory: the in-flight keys plus `window` recent results, never every query.
Each copy gets its own record (its id and line) marked `"cache": "dedup"`,
with zero usage and cost and what it saved under `saved`.
"""

from __future__ import annotations

from collections import OrderedDict
from hashlib import blake2b
from typing import Any

import orjson

from .cache import ResponseCache
from .records import Query, content_text

Record = dict[str, Any]

# Fields a copy takes from the record that answered the original.
_SHARED = ("status", "tier", "model", "answer", "finish_reason", "classification", "escalations", "mode", "error")
_ZERO = {"prompt_tokens": 0, "completion_tokens": 0}


def request_key(query: Query, salt: bytes = b"") -> bytes:
    """16 bytes that identify a request: messages with normalised whitespace, and params."""
    h = blake2b(salt, digest_size=16)
    for m in query.messages:
        h.update(str(m.get("role")).encode())
        h.update(b"\x1e")
        h.update(" ".join(content_text(m.get("content")).split()).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    h.update(orjson.dumps(query.params, option=orjson.OPT_SORT_KEYS))
    return h.digest()


def slim(record: Record) -> Record:
    """What a later copy needs of a finished record."""
    return {k: record[k] for k in (*_SHARED, "usage", "cost") if k in record}


def saved_by(record: Record) -> dict[str, Any]:
    """What reusing `record` saved: its calls, tokens and cost."""
    usage = record.get("usage") or {}
    total = usage.get("total", _ZERO)
    calls = sum(m.get("calls", 0) for m in usage.get("by_model", {}).values())
    return {
        "calls": calls,
        "prompt_tokens": total["prompt_tokens"],
        "completion_tokens": total["completion_tokens"],
        "cost": (record.get("cost") or {}).get("total", 0.0),
    }


def copy_for(record: Record, query: Query, kind: str, currency: str) -> Record:
    """The record of `query`, answered by reusing `record` (kind: `dedup` or `hit`)."""
    out: Record = {"id": query.id, "line": query.line}
    for key in _SHARED:
        if key in record:
            out[key] = record[key]
    out["cache"] = kind
    out["usage"] = {"classifier": dict(_ZERO), "answer": dict(_ZERO), "total": dict(_ZERO), "by_model": {}}
    baseline = (record.get("cost") or {}).get("baseline", 0.0)
    out["cost"] = {"classifier": 0.0, "answer": 0.0, "total": 0.0, "baseline": baseline, "currency": currency}
    out["saved"] = record.get("saved") or saved_by(record)
    out["attempts"] = 0
    out["latency_ms"] = 0
    if query.ignored_model:
        out["model_ignored"] = True
    return out


class Deduper:
    """In-flight keys with their parked copies, and a window of recent results."""

    def __init__(self, currency: str, window: int = 10_000) -> None:
        self.currency = currency
        self.window = window
        self._waiting: dict[bytes, list[Query]] = {}
        self._recent: OrderedDict[bytes, bytes] = OrderedDict()  # key → the slim result, JSON-encoded (compact)

    def admit(self, query: Query, key: bytes) -> Record | bool:
        """True: a new request, process it. False: parked behind an identical one in flight.
        A record: answered from a recent identical request."""
        recent = self._recent.get(key)
        if recent is not None:
            self._recent.move_to_end(key)
            return copy_for(orjson.loads(recent), query, "dedup", self.currency)
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.append(query)
            return False
        self._waiting[key] = []
        return True

    def finish(self, record: Record, key: bytes) -> list[Record]:
        """Records for the copies parked behind `record`'s request; remembers the result."""
        copies = self._waiting.pop(key, [])
        if record.get("status") == "ok" and self.window > 0:
            # orjson's bytes keep their growth buffer (~8 kB each): a copy holds only the ~1.5 kB used
            self._recent[key] = bytes(memoryview(orjson.dumps(slim(record))))
            if len(self._recent) > self.window:
                self._recent.popitem(last=False)
        return [copy_for(record, q, "dedup", self.currency) for q in copies]


class Reuse:
    """The reader's and the writer's side of dedup and cache, for one run.

    `admit` runs in the reader for every query; `finish` runs for every
    record that leaves the pipeline (one task), emits parked copies and
    stores fresh results in the cache.
    """

    def __init__(self, deduper: Deduper | None, cache: ResponseCache | None, salt: bytes, currency: str) -> None:
        self.deduper = deduper
        self.cache = cache
        self.salt = salt
        self.currency = currency
        self._origin: dict[int, bytes] = {}  # line of an in-flight original → its request key

    async def admit(self, query: Query) -> Record | bool:
        key = request_key(query, self.salt)
        if self.cache is not None:
            hit = await self.cache.get(key)
            if hit is not None:
                return copy_for(hit, query, "hit", self.currency)
        verdict = self.deduper.admit(query, key) if self.deduper is not None else True
        if verdict is True:
            self._origin[query.line] = key
        return verdict

    async def finish(self, record: Record) -> list[Record]:
        key = self._origin.pop(record["line"], None)
        if key is None:
            return []
        if self.cache is not None and record.get("status") == "ok":
            await self.cache.put(key, slim(record))
        return self.deduper.finish(record, key) if self.deduper is not None else []
