"""The output file: exclusive lock, resume scan, torn-tail repair, append-only writes.

Guarantees (README "What happens when…"):
* Records are appended with `os.write` of whole lines only (several lines may
  share one write, a line never spans two), so a crash can tear at most the
  last line; `--resume` cuts a torn tail off before appending.
* The file is fsynced at most every `fsync_s` seconds while running and at
  the end, so a machine crash loses at most that much.
* A second run on the same OUTPUT is refused while one holds the lock
  (`OUTPUT.lock`, an flock the kernel releases if the process dies).
* OUTPUT is never truncated except by `--overwrite`; `--retry-errors`
  rewrites it atomically (temp file, fsync, rename) without its error records.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import ConfigError
from .formats import to_openai_batch, unwrap
from .jsonl import CHUNK, IdIndex, LineSet

Fold = Callable[[dict[str, Any]], None]  # receives each record kept from an earlier run


@dataclass
class ResumeState:
    """What an existing output already holds."""

    done: LineSet = field(default_factory=LineSet)  # input lines that have their record
    ids: IdIndex = field(default_factory=IdIndex)  # ids of those records (for duplicate detection)
    records: int = 0
    errors: int = 0  # error records kept (or dropped, with retry_errors)
    torn_bytes: int = 0  # bytes of a torn last line that were cut off


def _torn_tail(path: str) -> int:
    """Offset just past the last newline (where a torn last line starts)."""
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:
            step = min(CHUNK, pos)
            fh.seek(pos - step)
            chunk = fh.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                return pos - step + nl + 1
            pos -= step
        return 0


def scan(path: str, *, retry_errors: bool = False, on_kept: Fold | None = None, expected_ids: int = 0) -> ResumeState:
    """Read an existing output: repair a torn tail, note which lines are done.

    With `retry_errors`, error records are not counted as done and the file
    is rewritten without them (atomically), so their lines run again.
    """
    state = ResumeState(ids=IdIndex(expected_ids))
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return state
    cut = _torn_tail(path)
    size = os.path.getsize(path)
    if cut < size:
        state.torn_bytes = size - cut
        os.truncate(path, cut)
    keep = open(path + ".compact", "wb") if retry_errors else None  # noqa: SIM115
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                record = _parse(raw, path, number)
                if record is None:
                    continue
                if record.get("status") == "error":
                    state.errors += 1
                    if retry_errors:
                        continue
                state.records += 1
                state.done.add(record["line"])
                if on_kept is not None:
                    on_kept(record)
                if not (record.get("status") == "error" and record["error"].get("type") == "duplicate_id"):
                    state.ids.add(record["id"])
                if keep is not None:
                    keep.write(raw)
        if keep is not None:
            keep.flush()
            os.fsync(keep.fileno())
            keep.close()
            os.replace(path + ".compact", path)
    finally:
        if keep is not None and not keep.closed:
            keep.close()
            os.unlink(path + ".compact")
    return state


def _parse(raw: bytes, path: str, number: int) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        record = None
    if isinstance(record, dict):
        record = unwrap(record)
    if not isinstance(record, dict) or not isinstance(record.get("line"), int) or "id" not in record:
        raise ConfigError(
            f"{path}: line {number} is not a cascade_batch record; refusing to resume onto it "
            f"(use a new output file, or --overwrite to start over)"
        )
    return record


class OutputFile:
    """The run's output: locked, appended to in whole lines, fsynced periodically.

    `mode` is `new` (refuse a non-empty file), `resume` (scan it and append),
    or `overwrite` (truncate it). The lock is taken before anything else.
    """

    def __init__(
        self,
        path: str,
        *,
        mode: str = "new",
        retry_errors: bool = False,
        fsync_s: float = 1.0,
        on_kept: Fold | None = None,
        output_format: str = "cascade",
        expected_ids: int = 0,
    ) -> None:
        self.path = path
        self._stdout = path == "-"
        self._fsync_s = fsync_s
        self._last_sync = time.monotonic()
        self._lock_fd: int | None = None
        self._batch_format = output_format == "openai-batch"
        self.resumed = ResumeState(ids=IdIndex(expected_ids))
        if self._stdout:
            if mode == "resume":
                raise ConfigError("--resume needs an output file, not stdout")
            self._fd = sys.stdout.fileno()
            return
        if os.path.isdir(path):
            raise ConfigError(f"output is a directory: {path}")
        self._lock_fd = _lock(path + ".lock")
        try:
            exists = os.path.exists(path) and os.path.getsize(path) > 0
            if mode == "overwrite":
                os.truncate(path, 0) if exists else None
            elif mode == "resume":
                self.resumed = scan(path, retry_errors=retry_errors, on_kept=on_kept, expected_ids=expected_ids)
            elif exists:
                raise ConfigError(f"{path} is not empty; pass --resume to continue it or --overwrite to replace it")
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except BaseException:
            self._unlock()
            raise

    def write_records(self, records: list[dict[str, Any]]) -> None:
        if self._batch_format:
            records = [to_openai_batch(r) for r in records]
        data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if not self._stdout and time.monotonic() - self._last_sync >= self._fsync_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._stdout:
            os.fsync(self._fd)
            os.close(self._fd)
        self._unlock()

    def _unlock(self) -> None:
        """Remove the lock file if it is still ours, then release it.

        Someone may have deleted the lock file while we ran and a new run
        locked a new file at the same path: that one is not ours to remove.
        """
        if self._lock_fd is None:
            return
        lock_path = self.path + ".lock"
        try:
            if os.stat(lock_path).st_ino == os.fstat(self._lock_fd).st_ino:
                os.unlink(lock_path)
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None


def _lock(lock_path: str) -> int:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise ConfigError(
                f"another cascade-batch run (pid {holder or '?'}) is writing {lock_path[:-5]}; "
                f"wait for it or stop it first"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
