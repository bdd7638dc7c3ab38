"""`cascade-batch report`: the run summary rebuilt from an output file.

It folds the records with the same `Summary` the run uses, so a report of a
finished run agrees with the run's own summary to the last digit (wall time
and throughput aside, which a file does not record). Partial files are fine:
a torn last line (a crash mid-write) is skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from .config import Config
from .errors import ConfigError
from .formats import unwrap
from .summary import Summary


@dataclass
class FileReport:
    summary: Summary
    unreadable: list[int]  # line numbers of the output file that are not records (a torn last line, say)


def read_output(path: str | Path, cfg: Config) -> FileReport:
    """Fold every record of an output file (either format), or of a Ray engine's OUTDIR, into a Summary."""
    summary = Summary(currency=cfg.currency)
    unreadable: list[int] = []
    if Path(path).is_dir():
        parts = sorted(Path(path).glob("part-*.jsonl")) + sorted(Path(path).glob("part-*.jsonl.partial"))
        for part in parts:
            _fold(part, summary, unreadable)
        return FileReport(summary, unreadable)
    _fold(Path(path), summary, unreadable)
    return FileReport(summary, unreadable)


def _fold(path: Path, summary: Summary, unreadable: list[int]) -> None:
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                unreadable.append(number)
                continue
            if not isinstance(record, dict):
                unreadable.append(number)
                continue
            record = unwrap(record)
            if "status" not in record or "line" not in record:
                unreadable.append(number)
                continue
            summary.add(record)
