"""The persistent response cache (`--cache PATH`): SQLite in WAL mode, off by default.

A finished record is stored under its request key (messages, params) salted
with the cascade settings that shape its result (classifier, tiers, rules,
answer defaults, mode); a later request with the same key — in this run's
future or another run — is answered from it: zero calls, zero cost,
`"cache": "hit"`. Escalated requests store their final answer. Entries older
than `ttl_s` are ignored. Several runs may share one file (WAL, busy
timeout). A cache that cannot be opened, read or written turns itself off
with one warning: the run never fails because of it.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import Any

import anyio
import orjson

from .config import Config

Record = dict[str, Any]
_SCHEMA = "CREATE TABLE IF NOT EXISTS results (key BLOB PRIMARY KEY, created REAL NOT NULL, record BLOB NOT NULL)"


def settings_salt(cfg: Config, *, classify_only: bool) -> bytes:
    """What besides the request decides its record: a change here must miss the cache."""
    parts = {
        "classifier": [
            cfg.classifier.model,
            cfg.classifier.prompt,
            cfg.classifier.max_tokens,
            cfg.classifier.temperature,
            cfg.classifier.default_tier,
        ],
        "mode": "classify_only" if classify_only else "cascade",
        "tiers": [] if classify_only else [[t.name, t.model, dict(cfg.models[t.model].extra_body)] for t in cfg.tiers],
        "rules": []
        if classify_only
        else [
            cfg.escalation.min_words,
            cfg.escalation.on_truncated,
            cfg.answer.temperature,
            cfg.answer.max_tokens,
            cfg.answer.system_prompt,
        ],
    }
    return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)


class ResponseCache:
    """Blocking SQLite calls run in one worker thread at a time; errors disable the cache."""

    def __init__(self, path: str, *, ttl_s: float = 0.0, warn: Any = None) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._warn = warn or (lambda text: print(f"cascade-batch: warning: {text}", file=sys.stderr))
        self._limiter = anyio.CapacityLimiter(1)
        self._db: sqlite3.Connection | None = None
        self.enabled = True

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_SCHEMA)
        return db

    def _fail(self, what: str, exc: BaseException) -> None:
        if self.enabled:
            self._warn(f"response cache {self.path} {what} failed ({exc}); going on without the cache")
        self.enabled = False

    async def open(self) -> None:
        try:
            self._db = await anyio.to_thread.run_sync(self._open, limiter=self._limiter)
        except (sqlite3.Error, OSError) as exc:
            self._fail("open", exc)

    async def get(self, key: bytes) -> Record | None:
        if not self.enabled or self._db is None:
            return None
        db = self._db

        def read() -> Any:
            return db.execute("SELECT created, record FROM results WHERE key = ?", (key,)).fetchone()

        try:
            row = await anyio.to_thread.run_sync(read, limiter=self._limiter)
        except sqlite3.Error as exc:
            self._fail("read", exc)
            return None
        if row is None or (self.ttl_s and row[0] < time.time() - self.ttl_s):
            return None
        try:
            record = orjson.loads(row[1])
        except orjson.JSONDecodeError:
            return None
        return record if isinstance(record, dict) else None

    async def put(self, key: bytes, record: Record) -> None:
        if not self.enabled or self._db is None:
            return
        db, blob = self._db, orjson.dumps(record)

        def write() -> None:
            db.execute(
                "INSERT OR REPLACE INTO results (key, created, record) VALUES (?, ?, ?)", (key, time.time(), blob)
            )

        try:
            await anyio.to_thread.run_sync(write, limiter=self._limiter)
        except sqlite3.Error as exc:
            self._fail("write", exc)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(db.close, limiter=self._limiter)
