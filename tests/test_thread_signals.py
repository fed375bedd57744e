"""Ctrl-C held back while a worker process starts (thread_signals.interrupts_deferred): the worker is born with
SIGINT blocked, and this process still gets the interrupt, after the block (ignoring it instead lost it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from dspy_trainkit.thread_signals import interrupts_deferred

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signal masks (POSIX)")


def _blocked_in(pid: int) -> bool:
    status = open(f"/proc/{pid}/status").read()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
    return bool(mask & (1 << (signal.SIGINT - 1)))


def test_an_interrupt_in_the_block_is_raised_after_it_not_lost():
    assert threading.current_thread() is threading.main_thread()
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # a handler would have run by now
                sum(range(100))
            reached_the_end = True
    assert reached_the_end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_exception_and_the_handler_is_restored():
    def mine(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, mine)
    try:
        with interrupts_deferred():
            pass
        assert signal.getsignal(signal.SIGINT) is mine
        assert not signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGINT}
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_a_process_started_in_the_block_is_born_with_sigint_blocked_and_this_one_is_not():
    with interrupts_deferred():
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert _blocked_in(child.pid)
        assert not _blocked_in(os.getpid())
    finally:
        child.communicate(b"")
    with interrupts_deferred(active=False):
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert not _blocked_in(child.pid)
    finally:
        child.communicate(b"")
