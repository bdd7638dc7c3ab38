"""A live progress line on stderr (rich), fed from the summary's running totals.

Only on a TTY and without `--quiet`; updates are throttled to a few per
second so a fast run does not spend its CPU redrawing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .summary import Summary


def _RateColumn() -> Any:
    """Records/s over rich's recent-speed window (not since start), so a stall shows."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.speed
            return Text(f"{speed:.1f}/s" if speed else "-/s")

    return RateColumn()


class ProgressBar:
    """done/total (when known), rate, per-tier counts and cost so far."""

    def __init__(self, tiers: tuple[str, ...], currency: str, *, interval_s: float = 0.25, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._tiers = tiers
        self._currency = currency
        self._interval = interval_s
        self._next = 0.0
        self._progress = Progress(
            TextColumn("[bold]cascade"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console if console is not None else Console(file=sys.stderr),
            transient=False,
        )
        self._task = self._progress.add_task("run", total=None, detail="")

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def update(self, summary: Summary, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self._interval
        tiers = " ".join(f"{t}:{summary.by_tier.get(t, 0)}" for t in self._tiers)
        cost = summary.cost_classifier + summary.cost_answer
        detail = f"{tiers} err:{summary.error} cost:{cost:.4f} {self._currency}"
        self._progress.update(self._task, completed=summary.total, detail=detail)
