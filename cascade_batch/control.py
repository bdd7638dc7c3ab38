"""Stopping a run from outside: first gracefully, then at once.

`stop()` stops reading new input and lets the records already in flight
finish for up to `grace_s` seconds, then cancels what is left; a second
`stop()` (a second Ctrl-C) or `abort()` cancels at once. Either way the
output holds only whole records, and `--resume` redoes the rest.
"""

from __future__ import annotations

import anyio


class RunControl:
    def __init__(self, grace_s: float = 30.0) -> None:
        self.grace_s = grace_s
        self.reason: str | None = None  # why the run was stopped, None while it runs
        self.read_scope = anyio.CancelScope()  # the reader runs inside it
        self.run_scope: anyio.CancelScope | None = None  # the whole run; set by `stream()`
        self._stopping = anyio.Event()

    def stop(self, reason: str) -> None:
        """Stop reading; finish in-flight records within the grace period. Twice: abort."""
        if self.reason is not None:
            self.abort()
            return
        self.reason = reason
        self.read_scope.cancel()
        self._stopping.set()

    def abort(self) -> None:
        """Cancel everything now."""
        self.read_scope.cancel()
        if self.run_scope is not None:
            self.run_scope.cancel()

    async def grace_timer(self) -> None:
        """Runs for the whole run: after a stop, aborts once the grace period has passed."""
        await self._stopping.wait()
        await anyio.sleep(self.grace_s)
        self.abort()
