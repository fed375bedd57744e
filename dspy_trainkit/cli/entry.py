"""The `trainkit` console script (and `python -m dspy_trainkit`): the command line's start-up, with Ctrl-C held.

A Ctrl-C in the first tenth of a second landed in the imports of start-up: Python printed a KeyboardInterrupt
traceback, or click, catching it outside the command, printed "Aborted!" with status 1; and an interrupt inside
orjson's module initialisation (imported with the command's module) crashed the process with a segmentation fault.
So start-up's imports run with Ctrl-C held back (thread_signals.interrupts_deferred), and an interrupt that
arrived meanwhile ends the command right after them with status 130, as one during the command does.
"""

from __future__ import annotations

import sys


def main() -> None:
    from ..thread_signals import interrupts_deferred

    try:
        with interrupts_deferred():
            from .main import main as command_line
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: nothing was done\n")
        raise SystemExit(130) from None
    command_line()
