"""The end of a `trainkit` process's start-up: once the command's store is open, `gc.freeze()` what start-up built,
so that the cyclic garbage collector never walks it again.

Start-up builds tens of thousands of objects that live as long as the process (modules, classes, functions,
settings, the plugin manager, the open store). The collector walked them in its passes while the command ran, and
at exit Python's last full collection walked all of them once more: 10 to 20 ms of CPU of a 100 ms `trainkit stats`
(docs/performance.md, "Start-up"). Frozen, they are left to reference counting alone, which frees them as always;
a cycle among them that becomes garbage later, or one not yet collected when they are frozen (a few hundred
objects at most, from building classes), stays until the process exits. What the command itself allocates
afterwards is collected as before. Raising the collector's threshold during start-up as well was measured too
and saved nothing beyond noise, so the collector runs with its usual settings throughout.

Only the console script (`main`) asks for it: a program or a test calling the click group in-process (CliRunner)
keeps its collector as it is.
"""

from __future__ import annotations

import gc

#: Whether this process is the `trainkit` command and its start-up has not ended yet.
_starting = False
#: Whether this process is the `trainkit` command (the console script or `python -m dspy_trainkit`), not a program
#: or a test calling the click group in-process.
_command = False


def begin() -> None:
    """This process is the `trainkit` command: its start-up ends when `end` is called."""
    global _starting, _command
    _starting = _command = True


def is_command() -> bool:
    """Whether this process is the `trainkit` command itself: what only it may do to the whole process (such as
    a Ctrl-C handler that ends it) is left alone in a program that runs the command line in-process."""
    return _command


def end() -> None:
    """Start-up is over (the store is open): freeze what it built; once, and only after `begin`."""
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
