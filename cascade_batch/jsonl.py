"""Streaming JSONL input, and the compact indexes kept per input line.

The reader reads fixed-size chunks in a worker thread (a stalled pipe never
blocks the event loop) and yields physical lines with their 1-based numbers;
memory is bounded by the chunk size plus the longest allowed line. Also the two
compact indexes that resume and duplicate detection keep per input line.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import AsyncIterator
from hashlib import blake2b
from typing import IO

import anyio

CHUNK = 1 << 20


class LineTooLong:
    """Marker for a line over the size limit (its bytes were skipped, not kept)."""

    def __init__(self, size: int) -> None:
        self.size = size


async def read_lines(path: str, max_line_bytes: int) -> AsyncIterator[tuple[int, bytes | LineTooLong]]:
    """Yield (line number, line without its line end) for every physical line.

    CRLF and LF both end a line; a last line without a line end is still a
    line. A line over `max_line_bytes` yields `LineTooLong` instead of its bytes.
    """
    fh: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    read = getattr(fh, "read1", fh.read)
    try:
        number = 0
        pending = b""
        skipped = -1  # >= 0 while skipping an over-long line: its size so far
        while True:
            chunk: bytes = await anyio.to_thread.run_sync(read, CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                if end < 0:
                    rest = chunk[start:]
                    if skipped >= 0:
                        skipped += len(rest)
                    elif len(pending) + len(rest) > max_line_bytes:
                        skipped = len(pending) + len(rest)
                        pending = b""
                    else:
                        pending += rest
                    break
                piece = chunk[start:end]
                number += 1
                if skipped >= 0:
                    yield number, LineTooLong(skipped + len(piece))
                    skipped = -1
                else:
                    line = pending + piece if pending else piece
                    pending = b""
                    if len(line) > max_line_bytes:
                        yield number, LineTooLong(len(line))
                    else:
                        yield number, line[:-1] if line.endswith(b"\r") else line
                start = end + 1
        if skipped >= 0:
            yield number + 1, LineTooLong(skipped)
        elif pending:
            yield number + 1, pending[:-1] if pending.endswith(b"\r") else pending
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def count_lines(path: str) -> int:
    """Physical lines in a regular file (blocking; run it in a thread)."""
    total = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            total += chunk.count(b"\n")
            last = chunk[-1:]
    return total + (last != b"\n")


class IdIndex:
    """A set of record ids in about 11 bytes each: 64-bit hashes, open addressing.

    Nightly logs have millions of ids; a Python set of strings would cost
    ~100 bytes per id. The table is kept at most 70 % full; sized from the
    expected count (the input's line count when known), it never has to
    grow, so there is no moment with the old and the new table both alive.
    False "duplicate" reports need a 64-bit hash collision (about 3e-8 for a
    million ids).
    """

    MAX_LOAD = 0.7

    def __init__(self, expected: int = 0) -> None:
        self._slots = self._table(max(1024, int(expected / self.MAX_LOAD) + 1))
        self._count = 0

    @staticmethod
    def _table(size: int) -> array[int]:
        return array("Q", [0]) * size  # allocated once, no temporary buffer

    def __len__(self) -> int:
        return self._count

    @staticmethod
    def key(rid: str | int) -> int:
        tagged = f"s:{rid}" if isinstance(rid, str) else f"i:{rid}"
        h = int.from_bytes(blake2b(tagged.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        return h or 1  # 0 marks an empty slot

    def add(self, rid: str | int) -> bool:
        """Insert `rid`; False if it was already there."""
        if self._count + 1 > self.MAX_LOAD * len(self._slots):
            self._grow()
        return self._insert(self.key(rid))

    def _insert(self, h: int) -> bool:
        slots = self._slots
        size = len(slots)
        i = h % size
        while True:
            current = slots[i]
            if current == 0:
                slots[i] = h
                self._count += 1
                return True
            if current == h:
                return False
            i = i + 1 if i + 1 < size else 0

    def _grow(self) -> None:
        old = self._slots
        self._slots = self._table(len(old) * 2)
        self._count = 0
        for h in old:
            if h:
                self._insert(h)


class LineSet:
    """A set of line numbers as a bitmap: 1M lines in 125 kB."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, line: int) -> None:
        byte, bit = divmod(line, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte - len(self._bits) + 1 + len(self._bits) // 2))
        if not self._bits[byte] >> bit & 1:
            self._bits[byte] |= 1 << bit
            self.count += 1

    def __contains__(self, line: int) -> bool:
        byte, bit = divmod(line, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)
