"""Parallel judging: worker processes normalise each intake batch and run the `prepare` hooks on it, while this
process (the one writer) does everything that depends on what is stored or on earlier batches, in order.

Why this split: an import spends most of its time on per-record work that depends on the record alone (making
the Example and its content hash, tokenising, MinHash signatures, text features); the rest (exact dedup against
the store, the near-duplicate index, a norm read from stored examples, the synthetic cap, the insert and its
event) must see the batches before it exactly as the serial path does, or the two would store different things.
So the writer runs `_BatchRun.run` (the one pipeline, see intake.py) on every batch in input order, handing it
what a worker made of the batch (`_BatchRun.made`, `_BatchRun.prepared`); the hooks' `prepared` argument is the
only thing that crosses over, and the serial path makes the same values in-process (`assessment.prepare`).

A worker has a kit of its own (same settings, plugins from the same entry points, no store) and never writes.
At most `2 * workers` batches are in flight, so memory stays that of a few batches. Ctrl-C or SIGTERM stops
taking batches: the batches already written stay committed, the workers are ended, not waited for (they ignore
Ctrl-C, hold nothing unwritten, and leave by themselves if this process dies), and a re-run finds the stored part
by content hash. A worker that crashes or
raises is one error naming the batch and its first and last record; the batches before it stay stored.
"""

from __future__ import annotations

import collections
import itertools
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import assessment, tokens
from .errors import PluginError, TrainkitError
from .models import Example
from .scratch import sigterm_as_interrupt
from .settings import MAX_INTAKE_WORKERS
from .thread_signals import interrupts_deferred, interrupts_ignored

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .intake import IntakeReport, Positioned, _BatchRun
    from .kit import Kit
    from .settings import Settings

#: "auto" never starts more workers than this: the writer is one process, and past a few workers it is the limit.
MAX_AUTO = 4

#: Batches handed to the workers and not yet written, per worker.
IN_FLIGHT_PER_WORKER = 2


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


def worker_count(setting: int | str) -> int:
    """How many workers `intake.workers` asks for: a number as it is (0: serial), "auto" one per core beyond
    the writer's, none with fewer than 3 cores (with 2 the writer and one worker share them: measured no faster,
    see docs/performance.md), at most MAX_AUTO."""
    if setting == "auto":
        cores = available_cores()
        return 0 if cores < 3 else min(MAX_AUTO, cores - 1)
    if isinstance(setting, bool) or not isinstance(setting, int) or not 0 <= setting <= MAX_INTAKE_WORKERS:
        raise TrainkitError(f'intake workers: expected a whole number from 0 to {MAX_INTAKE_WORKERS} or "auto", '
                            f'got {setting!r}')
    return setting


def run_parallel(batch_run: _BatchRun, iterator: Iterator[Positioned], size: int, workers: int,
                 progress: Callable[[IntakeReport], None] | None) -> None:
    """Cut `iterator` into batches of `size`, have `workers` processes prepare them, and write each in order
    through `batch_run` (whose `finish` the caller runs)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import resource_tracker

    kit = batch_run.kit
    names = tuple(impl.plugin_name for impl in _prepare_impls(kit))
    resource_tracker.ensure_running()  # before interrupts_deferred: starting it unblocks Ctrl-C (see there)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(kit.settings, names, os.getpid()))
    window: collections.deque[tuple[int, list[Positioned], Future[Any]]] = collections.deque()
    try:
        with sigterm_as_interrupt():
            for number in itertools.count(1):
                batch = list(itertools.islice(iterator, size))
                if not batch:
                    break
                records = [record if isinstance(record, Example | Mapping) else None for _, record in batch]
                with interrupts_deferred():  # a submit may start a worker (the pool starts them on demand, so
                    # not only the first ones: a slow pipe starts the second late): each is born with Ctrl-C
                    # blocked (one still starting up printed "Fatal Python error: init_import_site", or a traceback)
                    window.append((number, batch, _submit(pool, records, batch_run.defaults)))
                if len(window) >= IN_FLIGHT_PER_WORKER * workers:
                    _write(batch_run, *window.popleft(), progress)
            while window:
                _write(batch_run, *window.popleft(), progress)
    except BaseException:
        _end_workers(pool)
        raise
    pool.shutdown(wait=True)


#: Seconds a worker told to end (SIGTERM) is given before it is killed.
END_GRACE = 1.0


def _end_workers(pool: Any) -> None:
    """End the workers of an import that stops (Ctrl-C, SIGTERM, an error) instead of waiting for them: a worker
    may be deep in a large batch, or stopped (SIGSTOP), and a second Ctrl-C that landed in such a wait left the
    process joining a worker forever (a stranger's finding). Workers write nothing, so ending them loses nothing;
    Ctrl-C is ignored meanwhile (a few milliseconds), so a second one cannot cut the clean-up short."""
    import time

    with interrupts_ignored():
        processes = list((getattr(pool, "_processes", None) or {}).values())  # the executor's own (no public API)
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + END_GRACE
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()  # a stopped worker ignores SIGTERM until continued; SIGKILL ends it
                process.join()
        # A worker ended while writing a result leaves half a message in the result pipe, and the executor's
        # manager thread (which the interpreter joins at exit) would wait for the rest forever. No worker is left
        # to write, so this process's own write end is closed: the thread reads the end of the pipe and stops.
        writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
        if writer is not None:
            writer.close()
        # Batches handed over and never read (Ctrl-C in the first second: four batches fill the pipe) leave the
        # call queue's feeder thread blocked on a pipe nobody reads; the interpreter would join it at exit.
        calls = getattr(pool, "_call_queue", None)
        if calls is not None:
            calls.cancel_join_thread()
        # the futures in flight are not cancelled here: the executor fails them itself once it sees its workers
        # gone (a future cancelled meanwhile made its thread raise InvalidStateError)
        # The pool's manager thread, seeing the workers gone, now ends; it is waited for (a moment), because the
        # interpreter's exit hook for the pool writes to a pipe the thread closes as it ends, and in Python 3.11
        # the two race ("Exception ignored in: <module 'threading'> ... OSError: [Errno 9] Bad file descriptor").
        # Taken before `shutdown`, which forgets it.
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False)
        if manager is not None:
            manager.join(END_GRACE)


def _submit(pool: Any, records: list[Any], defaults: Mapping[str, Any]) -> Future[Any]:
    """Hand one batch to the pool; a pool that broke already (a worker died) gives a future holding that error,
    so the batch is reported in order like the ones in flight."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    try:
        return pool.submit(_prepare_batch, records, defaults)
    except BrokenProcessPool as exc:
        broken: Future[Any] = Future()
        broken.set_exception(exc)
        return broken


_MAIN_GUARD_HINT = (". If this runs from a Python script, keep the script's work under "
                    "`if __name__ == '__main__':`: each worker imports the script again (see docs/importing.md, "
                    "Parallel judging)")


def _main_is_a_script() -> bool:
    """Whether the process runs a user's script (which each `spawn` worker imports again: without a main guard it
    starts an import in every worker, and the first batch's workers die), not the `trainkit` command."""
    import sys

    main = sys.modules.get("__main__")
    name = os.path.basename(getattr(main, "__file__", None) or "")
    return bool(name) and name not in ("trainkit", "__main__.py")


#: Seconds between two looks at a batch's future (see `_result`).
RESULT_POLL = 0.2


def _result(future: Future[Any]) -> Any:
    """`future.result()`, waking every RESULT_POLL seconds so that Ctrl-C and SIGTERM stop the wait. Python runs
    signal handlers in the main thread only, and the OS may hand the signal to one of the executor's threads:
    a wait without a timeout then slept on until the worker answered, forever for a stopped worker."""
    from concurrent.futures import TimeoutError as NotYet  # the builtin TimeoutError since Python 3.11

    while True:
        try:
            return future.result(timeout=RESULT_POLL)
        except NotYet:
            continue


def _write(batch_run: _BatchRun, number: int, batch: list[Positioned], future: Future[Any],
           progress: Callable[[IntakeReport], None] | None) -> None:
    """Run the pipeline on one batch with what its worker made of it."""
    from concurrent.futures.process import BrokenProcessPool

    where = f"batch {number} ({batch[0][0]} to {batch[-1][0]})"
    try:
        outcome = _result(future)
    except BrokenProcessPool as exc:
        raise TrainkitError(f"parallel judging: a worker process died while preparing {where}; the batches "
                            "before it are stored, a re-run skips them by content hash"
                            + (_MAIN_GUARD_HINT if number == 1 and _main_is_a_script() else "")) from exc
    except (RecursionError, TypeError, AttributeError, ValueError, pickle.PicklingError):
        # the batch could not be sent to a worker (a record nested too deep to pickle, say): the writer judges
        # it itself, as the serial path would, so the result is the same
        outcome = ("writer",)
    if outcome[0] == "writer":
        batch_run.run(batch)
        if progress is not None:
            progress(batch_run.report)
        return
    if outcome[0] == "error":
        _kind, class_name, message, plugin, hook = outcome
        text = f"parallel judging, {where}: {message}"
        if class_name == "PluginError":
            raise PluginError(text, plugin=plugin, hook=hook)
        raise TrainkitError(f"{text} ({class_name} in a worker)")
    _kind, made, hashes, prepared = outcome
    examples = [ex for m in made if m is not None for ex in m[0]]
    for example, content_hash in zip(examples, hashes, strict=True):  # a pickled Example loses its cached hash
        object.__setattr__(example, "content_hash", content_hash)
    complete = all(m is not None or isinstance(rec, BaseException) for m, (_, rec) in zip(made, batch, strict=True))
    batch_run.made = made
    batch_run.prepared = prepared if complete else None  # the writer made some examples: it prepares them all
    try:
        batch_run.run(batch)
    finally:
        batch_run.made = batch_run.prepared = None
    if progress is not None:
        progress(batch_run.report)


def _prepare_impls(kit: Kit) -> list[Any]:
    from .plugin_manager import hook_impls

    return hook_impls(kit.pm, "prepare")


# ---- in the worker --------------------------------------------------------------------------------------

class _NoStore:
    """A worker's store: `prepare` must not depend on what is stored (the writer may have stored more since)."""

    def __getattr__(self, name: str) -> Any:
        raise TrainkitError(f"the store is not available in a parallel-judging worker (store.{name}): read it in "
                            "validate or score, which run in the writer")

    def close(self) -> None:
        pass


_worker: dict[str, Any] = {}


def _start_worker(settings: Settings, names: tuple[str, ...], parent: int) -> None:
    """Open the worker's kit: the writer's settings, plugins from the same entry points, no store."""
    from .kit import Kit
    from .plugin_manager import make_plugin_manager

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole process group: the writer handles it
    threading.Thread(target=_leave_with, args=(parent,), name="trainkit-parent-watch", daemon=True).start()
    pm = make_plugin_manager(load=settings.load_plugins, disable=settings.disable_plugins,
                             strict=settings.strict_plugins, timeout=settings.plugin_timeout)
    _worker["kit"] = Kit(settings, pm, _NoStore())  # type: ignore[arg-type]
    _worker["names"] = frozenset(names)


def _leave_with(parent: int) -> None:
    """End this worker when the writer is gone (killed with SIGKILL, say), instead of waiting forever."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _prepare_batch(records: list[Any], defaults: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the writer needs of one batch: per record its examples and complaint (None for a record left to the
    writer: a reader's exception, or an object only `collect` plugins understand), and the `prepare` values of
    the writer's plugins for the examples. Failures come back as a tuple: not every exception pickles."""
    from .gc_pause import gc_paused

    with gc_paused():  # as in the writer (gc_pause): a batch makes many objects and no cycles
        try:
            return _prepare_records(records, defaults)
        finally:
            tokens.new_batch()  # its texts freed while the collector is paused


def _prepare_records(records: list[Any], defaults: Mapping[str, Any]) -> tuple[Any, ...]:
    from .intake import to_example

    kit: Kit = _worker["kit"]
    try:
        tokens.new_batch()
        made: list[tuple[list[Example], str | None] | None] = []
        examples: list[Example] = []
        for record in records:
            if record is None:
                made.append(None)
                continue
            try:
                example = to_example(record, defaults, kit.settings.default_task)
            except TrainkitError as exc:
                made.append(([], str(exc)))
                continue
            made.append(([example], None))
            examples.append(example)
        wanted = _worker["names"]  # the writer's prepare plugins; any other is left out
        skip: assessment.Prepared = {impl.plugin_name: {} for impl in _prepare_impls(kit)
                                     if impl.plugin_name not in wanted}
        prepared = assessment.prepare(kit, examples, skip)
        hashes = [example.content_hash for example in examples]
        return "ok", made, hashes, {name: values for name, values in prepared.items() if name not in skip}
    except Exception as exc:  # noqa: BLE001 - reported by the writer, naming the batch
        return "error", type(exc).__name__, str(exc), getattr(exc, "plugin", None), getattr(exc, "hook", None)
