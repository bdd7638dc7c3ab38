"""The exception tree of cascade_batch.

    CascadeError                 every error this package raises on purpose
    ├── ConfigError              bad config file, bad option, missing key: exit status 2
    ├── RunAborted               the run cannot go on (e.g. the endpoint rejects the key)
    └── CallError                one model call failed; `kind` says how
        └── RetryableError       transient: 429, 5xx, timeout, dropped connection, bad body

Only `client.py` creates `CallError`s from the SDK's exceptions; everything else
reads `kind`, `http_status` and `retry_after` and never imports `openai`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .usage import Usage


class CascadeError(Exception):
    """Base class: every error that cascade_batch raises on purpose."""


class ConfigError(CascadeError):
    """The config file or the command line is wrong; the message names the key."""


class RunAborted(CascadeError):
    """A condition that makes every further call pointless (e.g. HTTP 401)."""


class CallError(CascadeError):
    """One model call failed for good (not worth retrying on the same model).

    `kind` is a short machine-readable word (`http_400`, `context_length`,
    `timeout`, ...); `usage` is what the server billed for the failed call, if
    it sent a body with usage.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        http_status: int | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.usage = usage
        self.attempts = 1  # set by the caller: how many tries this error ended


class RetryableError(CallError):
    """A transient failure; `retry_after` (seconds) is the server's own hint."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(kind, message, http_status=http_status, usage=usage)
        self.retry_after = retry_after


@contextmanager
def unwrap_groups() -> Iterator[None]:
    """Re-raise a `CascadeError` from inside task groups' ExceptionGroups as itself.

    A worker that hits `RunAborted` cancels the run; the user should see that
    one clear message, not a tree of tracebacks.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        ours = group.subgroup(lambda e: isinstance(e, CascadeError))
        leaf: BaseException | None = ours
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        if leaf is not None:
            raise leaf from None
        raise
