"""Output line formats: ours (DESIGN §3) and the OpenAI Batch API's output shape.

`--output-format openai-batch` writes what the Batch API writes
(`id`, `custom_id`, `response: {status_code, request_id, body}`, `error`) so
tools that read Batch outputs read ours; our routing fields stay under the
extra key `cascade`, so `--resume` and `report` work on either format.
"""

from __future__ import annotations

import contextlib
from typing import Any

FORMATS = ("cascade", "openai-batch")


def to_openai_batch(record: dict[str, Any]) -> dict[str, Any]:
    """Our record → one Batch API output line (the answer in `response.body`)."""
    rid = f"{record['id']}-{record['line']}"
    extra = {k: v for k, v in record.items() if k != "answer"}
    line: dict[str, Any] = {"id": f"batch_req_{rid}", "custom_id": str(record["id"]), "cascade": extra}
    if record["status"] != "ok":
        err = record["error"]
        line["response"] = None
        line["error"] = {"code": err["type"], "message": err["message"]}
        return line
    usage = record.get("usage", {}).get("total", {"prompt_tokens": 0, "completion_tokens": 0})
    message = {"role": "assistant", "content": record.get("answer")}
    body = {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": 0,
        "model": record.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": record.get("finish_reason")}],
        "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
    }
    line["response"] = {"status_code": 200, "request_id": f"req_{rid}", "body": body}
    line["error"] = None
    return line


def unwrap(line: dict[str, Any]) -> dict[str, Any]:
    """Any output line → our record (a Batch-format line carries it under `cascade`)."""
    extra = line.get("cascade")
    if not isinstance(extra, dict) or "custom_id" not in line:
        return line
    record = dict(extra)
    response = line.get("response")
    if isinstance(response, dict):
        with contextlib.suppress(KeyError, IndexError, TypeError):
            record["answer"] = response["body"]["choices"][0]["message"]["content"]
    return record
