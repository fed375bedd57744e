"""Progress for long commands: a live line on a terminal (tqdm), nothing when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .logs import note


class Progress:
    """Counts records as batches finish; silent unless stderr is a terminal and not --quiet."""

    def __init__(self, label: str, *, quiet: bool = False, unit: str = "rec", unit_scale: bool = True):
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Any = None
        self.done = 0
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(desc=label, unit=unit, unit_scale=unit_scale, file=sys.stderr, leave=True,
                            dynamic_ncols=True, disable=False)  # decided above, not by TQDM_DISABLE (cli.logs)

    @staticmethod
    def stage_printer(*, quiet: bool = False) -> Callable[[str], None]:
        """A printer of stage lines ("optimize qa: compile…") to stderr, silent by the same rule as the bar."""
        enabled = not quiet and sys.stderr.isatty()

        def say(line: str) -> None:
            if enabled:
                note(line)

        return say

    def update(self, done: int, **counts: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.done)
            if counts:
                self.bar.set_postfix({k: f"{v:,}" for k, v in counts.items()}, refresh=False)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
