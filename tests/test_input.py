"""Input: the three line shapes, bad lines, line reading and the id index."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cascade_batch.jsonl import IdIndex, LineTooLong, count_lines, read_lines
from cascade_batch.records import InputProblem, Query, parse_line


def test_plain_shape_with_system_and_params() -> None:
    """{"id","query","system","params"} keeps the system prompt and params, drops router-owned ones."""
    q = parse_line(b'{"id": "a", "query": "Hi?", "system": "Be brief.", "params": {"seed": 3, "model": "x"}}', 1)
    assert isinstance(q, Query)
    assert q.id == "a" and q.text == "Hi?"
    assert q.messages[0] == {"role": "system", "content": "Be brief."}
    assert q.params == {"seed": 3}
    assert q.ignored_model


def test_batch_api_shape() -> None:
    """OpenAI Batch lines: custom_id is the id, body params pass through, model is ignored."""
    line = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 9},
    }
    q = parse_line(orjson.dumps(line), 4)
    assert isinstance(q, Query)
    assert (q.id, q.line, q.params, q.ignored_model) == ("r1", 4, {"max_tokens": 9}, True)


def test_messages_shape_classifies_last_user_message() -> None:
    """A conversation is classified by its last user message."""
    line = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    q = parse_line(orjson.dumps(line), 7)
    assert isinstance(q, Query)
    assert q.id == 7 and q.text == "second"


@pytest.mark.parametrize(
    "raw, kind",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'"just a string"', "not_object"),
        (b'{"id": "x"}', "missing_query"),
        (b'{"id": "x", "query": ""}', "empty_query"),
        (b'{"id": "x", "query": "   "}', "empty_query"),
        (b'{"id": "x", "query": 42}', "invalid_field"),
        (b'{"id": ["x"], "query": "hi"}', "invalid_field"),
        (b'{"id": "x", "query": "hi", "params": 3}', "invalid_field"),
        (b'{"id": "x", "messages": []}', "missing_query"),
        (b'{"id": "x", "messages": [{"role": "wizard", "content": "hi"}]}', "invalid_field"),
        (b'{"custom_id": "c", "url": "/v1/embeddings", "body": {"input": "x"}}', "invalid_field"),
        (b'{"id": "x", "query": "caf\xe9"}', "invalid_utf8"),
    ],
)
def test_bad_lines(raw: bytes, kind: str) -> None:
    """Every unusable line becomes a problem with a type and a message."""
    p = parse_line(raw, 3)
    assert isinstance(p, InputProblem)
    assert (p.kind, p.line) == (kind, 3)
    assert p.message


async def collect(path: Path, limit: int = 100) -> list[tuple[int, bytes | str]]:
    return [
        (n, "too long" if isinstance(item, LineTooLong) else item) async for n, item in read_lines(str(path), limit)
    ]


async def test_read_lines_numbers_physical_lines(tmp_path: Path) -> None:
    """CRLF and LF end lines, blank lines keep their numbers, a last line without newline counts."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n{"b":2}\n' + b"x" * 150 + b'\n{"c":3}')
    assert await collect(path) == [(1, b'{"a":1}'), (2, b""), (3, b'{"b":2}'), (4, "too long"), (5, b'{"c":3}')]
    assert count_lines(str(path)) == 5


async def test_read_lines_skips_long_lines_across_chunks(tmp_path: Path) -> None:
    """A line longer than the read chunk is skipped without being kept in memory."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"y" * (3 << 20) + b'\n{"ok":1}\n')
    assert await collect(path, limit=1000) == [(1, "too long"), (2, b'{"ok":1}')]


def test_id_index_finds_duplicates_and_grows() -> None:
    """The compact id index answers membership exactly across growth; int and str ids differ."""
    index = IdIndex()
    assert all(index.add(f"id-{i}") for i in range(5000))
    assert not index.add("id-42")
    assert index.add(42) and not index.add(42)
    assert len(index) == 5001
