"""Collecting examples from a running pipeline without slowing it down.

A pipeline calls `kit.collect(...)` (or wraps a function with `@kit.collector(...)`, or installs
`kit.dspy_callback(...)`); each call only checks the task's collection settings and puts a record on a queue.
One background thread takes records off the queue and runs them through the intake pipeline in batches, so
the pipeline pays microseconds per call, not a database write.

Nothing is lost silently: `kit.flush()` waits until everything queued so far is written, the queue is flushed
at interpreter exit and on SIGTERM (which otherwise ends a process without running any exit code), a store
error is logged and retried with backoff (never raised into the pipeline), and a batch that fails for another
reason (a plugin bug) is written to a spill file in the project folder that `trainkit import` takes back. A
spill file that cannot be written (a full disk) keeps its records in memory and is tried again; records that
can be kept nowhere are counted as `dropped`, logged, and refused by `collect` (it returns False).
"""

from __future__ import annotations

import atexit
import copy
import functools
import inspect
import itertools
import logging
import os
import queue
import random
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from .errors import StoreError, TrainkitError

if TYPE_CHECKING:
    from .kit import Kit

log = logging.getLogger("dspy_trainkit.collection")

LABELS = ("domain", "topic", "difficulty")
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # seconds; the last repeats until the store answers
Record = tuple[str, dict[str, Any]]


@attrs.define
class CollectionStats:
    """Live counters of one collector (`kit.collection.stats`)."""

    submitted: int = 0
    sampled_out: int = 0
    disabled: int = 0
    written: int = 0
    accepted: int = 0
    candidates: int = 0
    rejected: int = 0
    duplicates: int = 0
    invalid: int = 0
    retries: int = 0
    spilled: int = 0
    #: records lost: refused by a full queue, or neither stored nor saved to a spill file
    dropped: int = 0
    #: attempts to write a spill file that failed (a full disk, no permission)
    spill_errors: int = 0
    #: records held in memory now because their spill file could not be written (tried again)
    unsaved: int = 0

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


def as_fields(value: Any, single_name: str = "output") -> dict[str, Any]:
    """A pipeline's value as named fields: a mapping, a dspy.Prediction/Example (`toDict`), or one value.

    Container values are deep-copied: the writer stores the record later, and a pipeline that goes on to
    change a list or dict it passed in must not change what was collected. Strings and numbers (the usual
    case) are immutable and cost nothing."""
    if isinstance(value, Mapping):
        fields = dict(value)
    elif hasattr(value, "toDict"):
        fields = {k: v for k, v in value.toDict().items() if k not in ("dspy_uuid", "dspy_split")}
    else:
        fields = {single_name: value}
    return {k: copy.deepcopy(v) if isinstance(v, (dict, list, set)) else v for k, v in fields.items()}


class _Sigterm:
    """The SIGTERM handler shared by every collector of the process.

    SIGTERM's default action ends the process at once: no `finally`, no `with` exit, no atexit, so everything
    still queued was lost. While a collector is open, the handler marks the collectors as terminating (their
    close then waits only `sigterm_timeout` seconds for the store and spills the rest) and then does what the
    handler it replaced would have done: a handler the pipeline installed is called; the default action
    becomes `SystemExit(128 + signal)` (exit status 143), which runs `with` blocks, `kit.close()` and atexit.
    A signal that arrives while a collector is closing is held until the close is over, so that a spill file is
    never cut short. The handler is installed from the main thread only (Python's rule); a kit opened in
    another thread is covered by atexit alone.
    """

    def __init__(self) -> None:
        self.collectors: weakref.WeakSet[Collector] = weakref.WeakSet()
        self.previous: Any = None
        self.installed = False
        self.closing = 0  # collectors closing now; a SIGTERM meanwhile waits for them
        self.pending: int | None = None
        self.exiting = False

    def watch(self, collector: Collector) -> None:
        self.collectors.add(collector)
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            current = signal.getsignal(signal.SIGTERM)
            if current is signal.SIG_IGN:  # the process ignores SIGTERM: it goes on running, and so do we
                return
            signal.signal(signal.SIGTERM, self.handle)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            return
        self.previous, self.installed = current, True

    def handle(self, signum: int, frame: Any) -> None:
        live = [c for c in list(self.collectors) if not c._closed]
        for collector in live:
            collector.terminating = True
        if live:
            log.warning("received SIGTERM: %d collected records are still queued; storing what the store takes "
                        "in %g s and saving the rest to a spill file before exiting",
                        # len() of the deque, not qsize(): the signal may have interrupted this thread while it
                        # held the queue's lock, and qsize() would wait for it forever
                        sum(len(c._queue.queue) for c in live), max(c.sigterm_timeout for c in live))
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
            return
        if not live and not self.closing:  # nothing of ours to save: the default action, exactly
            signal.signal(signum, signal.SIG_DFL)
            self.installed = False
            os.kill(os.getpid(), signum)
            return
        if self.closing:
            self.pending = signum
        elif not self.exiting:
            self.exiting = True
            raise SystemExit(128 + signum)

    def closed(self) -> None:
        """A collector finished closing: if a SIGTERM came meanwhile, deliver it again now (to the main thread,
        where the handler runs, whichever thread closed the collector), unless the process is exiting anyway."""
        self.closing -= 1
        if self.closing == 0 and self.pending is not None:
            signum, self.pending = self.pending, None
            if not self.exiting:
                os.kill(os.getpid(), signum)


_SIGTERM = _Sigterm()


class Collector:
    """The queue and background writer of one kit."""

    def __init__(self, kit: Kit, *, flush_interval: float = 0.5, max_queue: int = 100_000,
                 sigterm_timeout: float = 5.0):
        self._kit = weakref.proxy(kit)
        self._settings = kit.settings
        self.flush_interval = flush_interval
        #: after SIGTERM, seconds the store gets to take what is queued before the rest is spilled
        self.sigterm_timeout = sigterm_timeout
        self.terminating = False
        self.stats = CollectionStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = False  # set by close(): a batch the store refuses is spilled instead of retried
        self._abandon = False  # set by close() when flushing ran out of time: the writer takes no more records
        self._wake = threading.Event()  # ends a retry's wait early when the kit closes
        self._inflight: list[Record] | None = None  # the batch the writer is storing now
        self._unsaved: list[Record] = []  # records whose spill file could not be written, tried again
        self._unsaved_since = 0.0
        self._dropping = False  # refusing records now (logged once per episode)
        atexit.register(self._at_exit)
        _SIGTERM.watch(self)
        from .operations import instruments

        self._metric = {outcome: instruments.COLLECTOR_RECORDS.labels(outcome)
                        for outcome in ("submitted", "written", "spilled", "dropped")}
        self._spill_errors = instruments.COLLECTOR_SPILL_ERRORS
        instruments.watch_collector(self)

    def queued(self) -> int:
        """Records waiting in the queue (and in memory for a spill file), not stored yet."""
        return self._queue.qsize() + len(self._unsaved)

    # -- the pipeline side -----------------------------------------------------------------------------
    def submit(self, task: str, inputs: Any, outputs: Any, *, labels: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None) -> bool:
        """Queue one record; returns whether it was queued (False: collection off for the task, sampled
        out, the queue full, or the collector unable to keep records: see `stats.dropped`). Never raises into
        the pipeline."""
        if self._closed:
            log.warning("kit is closed: a record of task %r was not collected (collect before kit.close())", task)
            return False
        try:
            settings = self._settings.task(task)
            self.stats.submitted += 1
            self._metric["submitted"].inc()
            if not settings.collect:
                self.stats.disabled += 1
                return False
            if settings.sample_rate < 1.0 and random.random() >= settings.sample_rate:
                self.stats.sampled_out += 1
                return False
            if self._unsaved and self._queue.qsize() + len(self._unsaved) >= self._queue.maxsize:
                self._drop(task, f"{len(self._unsaved)} earlier records wait in memory for a spill file that "
                                 "cannot be written (see the errors above)")
                return False
            record = {"task": task, "inputs": as_fields(inputs, "input"), "outputs": as_fields(outputs),
                      "source": "collected", "metadata": copy.deepcopy(dict(metadata or {})),
                      "provenance": {"origin": "pipeline", "collected_at": time.time(), **(provenance or {})},
                      **{k: v for k, v in (labels or {}).items() if k in LABELS and v is not None}}
            self._ensure_thread()
            self._queue.put_nowait((f"collect #{next(self._numbers)}", record))
            self._dropping = False
            return True
        except queue.Full:
            self._drop(task, f"the queue is full ({self._queue.maxsize} records): the store is not keeping up "
                             "(see earlier errors)")
            return False
        except Exception:  # collection must never break the pipeline
            log.exception("could not queue a record of task %r", task)
            return False

    def _drop(self, task: str, why: str) -> None:
        self.stats.dropped += 1
        self._metric["dropped"].inc()
        if not self._dropping:  # once per episode: a full queue would log on every call
            self._dropping = True
            log.error("collection is dropping records (this one of task %r): %s; kit.collection.stats.dropped "
                      "counts them", task, why)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued so far is written (or spilled); False if `timeout` passed first or
        records are held in memory because their spill file could not be written."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty() and not self._unsaved
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout) and not self._unsaved

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and stop the writer thread. What the store has not taken when `timeout` has passed (after
        SIGTERM: `sigterm_timeout`) is written to a spill file (see `_spill`) instead of being lost."""
        if self._closed:
            return
        _SIGTERM.closing += 1
        try:
            self._close(timeout)
        finally:
            atexit.unregister(self._at_exit)
            _SIGTERM.closed()

    def _allowed(self, timeout: float | None) -> float | None:
        """How long closing may wait for the store: `timeout`, or less once SIGTERM came (re-read while
        waiting, since the signal can come during the wait)."""
        if self.terminating:
            return self.sigterm_timeout if timeout is None else min(timeout, self.sigterm_timeout)
        return timeout

    def _flush_for_close(self, timeout: float | None) -> bool:
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty() and not self._unsaved
        start = time.monotonic()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=self._allowed(timeout))
        except queue.Full:
            return False
        while not done.wait(0.05):
            allowed = self._allowed(timeout)
            if allowed is not None and time.monotonic() - start >= allowed:
                return False
        return not self._unsaved

    def _close(self, timeout: float | None) -> None:
        flushed = False
        try:
            flushed = self._flush_for_close(timeout)
        finally:
            self._closed = self._stopping = True
            self._abandon = not flushed  # the writer stops after its current batch; the rest is spilled
            self._wake.set()
            self._stop_writer(flushed)

    def _stop_writer(self, flushed: bool) -> None:
        """Stop the writer, then save whatever it did not store to a spill file."""
        if self._thread is not None:
            try:
                self._queue.put_nowait(None)  # wakes a writer waiting for records
            except queue.Full:
                pass  # an abandoning writer takes nothing more from the queue anyway
            self._thread.join(self.sigterm_timeout if self.terminating else max(RETRY_DELAYS) + 5)
        leftovers = self._drain()
        if leftovers:
            self._spill(leftovers, StoreError("the kit closed before the store took them" if not flushed
                                              else "they came in while the kit closed"))
        inflight = self._inflight
        if self._thread is not None and self._thread.is_alive() and inflight:
            log.error("the collector's writer is still storing %d records; they are saved to a spill file too "
                      "(importing it skips the ones that were stored)", len(inflight))
            self._spill(list(inflight), StoreError("the writer had not finished them when the kit closed"))
        if self._unsaved:
            self._spill([], StoreError("kept in memory"))
        if self._unsaved:
            lost = len(self._unsaved)
            self.stats.dropped += lost
            self._metric["dropped"].inc(lost)
            self.stats.unsaved = 0
            self._unsaved = []
            log.error("%d collected examples are lost: no spill file could be written for them (see the errors "
                      "above)", lost)

    def _drain(self) -> list[Record]:
        """Take every queued record (waking flush() waiters); a stop signal found on the way is put back."""
        items, stop = [], False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple):
                items.append(item)
            elif isinstance(item, threading.Event):
                item.set()
            elif item is None:
                stop = True
        if stop:
            self._queue.put(None)
        return items

    def _at_exit(self) -> None:
        _SIGTERM.exiting = True  # a SIGTERM now need not end the process: it is ending
        try:
            self.close(timeout=60.0)
        except Exception:  # pragma: no cover - interpreter shutdown
            log.exception("flushing collected examples at exit failed")

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    if self._closed:
                        raise TrainkitError("this kit is closed; collection has stopped")
                    self._thread = threading.Thread(target=self._run, name="trainkit-collector", daemon=True)
                    self._thread.start()

    # -- the writer side -------------------------------------------------------------------------------
    def _run(self) -> None:
        from .thread_signals import block_in_this_thread

        block_in_this_thread()  # a SIGTERM must reach the main thread, where its handler runs
        batch: list[Record] = []
        waiting: list[threading.Event] = []
        size = self._settings.batch_size
        while True:
            if self._abandon:
                item: Any = None  # closing without waiting for the store: close() spills what is left
            else:
                try:
                    wait = self.flush_interval if batch else (self._unsaved_retry_in() if self._unsaved else None)
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    item = "timeout"
            if isinstance(item, tuple):
                batch.append(item)
                if len(batch) < size:
                    continue
            elif isinstance(item, threading.Event):
                waiting.append(item)
            if batch:
                self._inflight = batch
                try:
                    self._write(batch)
                except Exception:  # the writer must outlive anything a batch does
                    log.exception("the collector could not handle a batch of %d records", len(batch))
                    self._spill(batch, StoreError("the collector failed on this batch"))
                self._inflight = None
                batch = []
            if self._unsaved and self._unsaved_retry_in() == 0:
                self._spill([], StoreError("kept in memory"))
            for event in waiting:
                event.set()
            waiting = []
            if item is None:
                return

    def _unsaved_retry_in(self) -> float:
        """Seconds until the next attempt to write the records held in memory (backoff by failures)."""
        delay = RETRY_DELAYS[min(max(self.stats.spill_errors - 1, 0), len(RETRY_DELAYS) - 1)]
        return max(0.0, self._unsaved_since + delay - time.monotonic())

    def _write(self, batch: list[Record]) -> None:
        for attempt in itertools.count():
            try:
                report = self._kit.intake(list(batch), actor="collector", reason="collected from a pipeline")
            except Exception as exc:
                if not isinstance(exc, StoreError) and not _is_database_error(exc):
                    self._spill(batch, exc)
                    return
                if self._stopping:
                    self._spill(batch, exc)
                    return
                self._retry(attempt, exc)
                continue
            for name in ("accepted", "candidates", "rejected", "duplicates", "invalid"):
                setattr(self.stats, name, getattr(self.stats, name) + getattr(report, name))
            self.stats.written += report.stored
            self._metric["written"].inc(report.stored)
            for problem in report.problems:
                log.warning("collected record not stored: %s: %s", problem.position, problem.message)
            return

    def _retry(self, attempt: int, exc: Exception) -> None:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
        self.stats.retries += 1
        log.error("collected examples not written yet (%s); retrying in %.1f s", exc, delay)
        self._wake.wait(delay)

    def _spill(self, batch: list[Record], exc: Exception) -> None:
        """Append `batch`, and any records held in memory from earlier failures, to a spill file. If the file
        cannot be written they are held in memory (counted in `stats.unsaved`) and tried again later."""
        with self._spill_lock:
            records = self._unsaved + batch
            if not records:
                return
            folder = Path(self._settings.project_dir) / ".trainkit"
            stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            path = folder / f"collect-failed-{stamp}.jsonl"
            created = False
            try:
                folder.mkdir(exist_ok=True)
                data = b"".join(orjson.dumps(record, default=str) + b"\n" for _position, record in records)
                with path.open("xb") as out:  # a new file of its own, so a failed write can be removed whole
                    created = True
                    out.write(data)
            except OSError as error:
                if created:  # an empty or half-written file would be read back as a broken line, or nothing
                    path.unlink(missing_ok=True)
                self._unsaved = records
                self._unsaved_since = time.monotonic()
                self.stats.spill_errors += 1
                self._spill_errors.inc()
                self.stats.unsaved = len(records)
                log.error("%d collected examples could not go through intake (%s), and the spill file %s cannot "
                          "be written (%s): they are kept in memory and saving is tried again; they are lost if "
                          "the process ends first. Free the disk or fix the folder's permissions",
                          len(batch) or len(records), exc, path, error)
                return
            saved_earlier = len(self._unsaved)
            self._unsaved = []
            self.stats.unsaved = 0
            self.stats.spilled += len(records)
            self._metric["spilled"].inc(len(records))
        if saved_earlier and not batch:
            log.error("%d collected examples held in memory are saved in %s now: `trainkit import %s`",
                      saved_earlier, path, path)
            return
        log.error("%d collected examples could not go through intake (%s); they are saved in %s: fix the cause, "
                  "then `trainkit import %s`", len(records), exc, path, path)


def _is_database_error(exc: Exception) -> bool:
    """Errors from the database driver (locked, connection lost): worth retrying."""
    return type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg2", "peewee") or "Database" in type(exc).__name__


def collector_decorator(kit: Kit, task: str, *, inputs: list[str] | None = None, output: str | None = None,
                        labels: Mapping[str, Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@kit.collector(task=...)`: record the function's arguments as inputs and its result as outputs.

    `inputs` limits which arguments are recorded (default: all but `self`/`cls`); arguments named domain,
    topic or difficulty also become labels; a result that is not a mapping or prediction is stored under
    `output` (default: the task's only declared output field, else "output"). Only successful calls are
    recorded; the function's result and exceptions pass through untouched.
    """

    unknown = sorted(set(labels or {}) - set(LABELS))
    if unknown:
        raise ValueError(f"labels {unknown} are not labels; use {', '.join(LABELS)} (other values go in metadata)")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)

        def record(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                values = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
                chosen = {k: v for k, v in values.items() if inputs is None or k in inputs}
                found = {k: values[k] for k in LABELS if k in values and isinstance(values[k], str)}
                kit.collect(task, chosen, as_fields(result, output or _single_output(kit, task)),
                            **{**found, **(labels or {})})
            except Exception:  # never break the decorated function
                log.exception("could not record a call of %s", getattr(func, "__qualname__", func))

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                result = await func(*args, **kwargs)
                record(args, kwargs, result)
                return result

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            record(args, kwargs, result)
            return result

        return wrapper

    return decorate


def _single_output(kit: Kit, task: str) -> str:
    fields = kit.task_fields(task)
    return fields[1][0] if fields and len(fields[1]) == 1 else "output"


def dspy_callback(kit: Kit, task: str, module: Any = None, *, labels: Mapping[str, Any] | None = None) -> Any:
    """A `dspy.utils.callback.BaseCallback` recording the inputs and outputs of `module`'s successful calls.

    `module` is a module instance, a module class, or a class name; None records the outermost module calls
    only (a program's top-level calls, not its inner predictors). Install it with
    `dspy.configure(callbacks=[kit.dspy_callback(task="...", module=MyProgram)])`.
    """
    from dspy.utils.callback import ACTIVE_CALL_ID, BaseCallback

    def matches(instance: Any) -> bool:
        if module is None:
            return ACTIVE_CALL_ID.get() is None  # no enclosing module call: a top-level call
        if isinstance(module, str):
            return type(instance).__name__ == module
        if isinstance(module, type):
            return isinstance(instance, module)
        return instance is module

    def named_inputs(instance: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """`__call__(*args, **kwargs)` arrives as {"args": ..., "kwargs": ...}: name the positional ones after
        the module's forward() parameters."""
        args, kwargs = tuple(inputs.get("args") or ()), dict(inputs.get("kwargs") or {})
        named = {k: v for k, v in inputs.items() if k not in ("args", "kwargs")}
        if args:
            try:
                # the unbound method: reading `instance.forward` makes DSPy warn about calling forward directly
                forward = type(instance).forward
                bound = inspect.signature(forward).bind_partial(instance, *args, **kwargs)
                bound.arguments.pop(next(iter(bound.arguments)), None)  # drop self
                return {**named, **bound.arguments}
            except (TypeError, ValueError, AttributeError):
                named.update({f"arg{i}": value for i, value in enumerate(args)})
        return {**named, **kwargs}

    class TrainkitCallback(BaseCallback):
        """Records chosen module calls into a trainkit store. Nesting comes from DSPy's own active call id,
        a context variable that follows calls into threads (dspy.Parallel) and asyncio tasks."""

        def __init__(self) -> None:
            self.calls: dict[str, dict[str, Any]] = {}

        def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            if matches(instance):
                self.calls[call_id] = named_inputs(instance, inputs)

        def on_module_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
            call_inputs = self.calls.pop(call_id, None)
            if call_inputs is None or exception is not None or outputs is None:
                return
            found = {k: call_inputs[k] for k in LABELS if isinstance(call_inputs.get(k), str)}
            kit.collect(task, call_inputs, as_fields(outputs), **{**found, **(labels or {})})

    return TrainkitCallback()


def add_dspy_callback(kit: Kit, task: str, module: Any = None, *, labels: Mapping[str, Any] | None = None) -> Any:
    """Make a `dspy_callback` and add it to DSPy's configured callbacks, keeping the ones already there.

    `dspy.configure(callbacks=[...])` replaces the whole list, so installing the collector that way silently
    removed what another library had installed before (MLflow's `mlflow.dspy.autolog()` then recorded no
    traces). Call it where you would call `dspy.configure` (the thread that configures DSPy, outside any
    `dspy.context`); returns the callback, so that it can be taken out again."""
    import dspy

    callback = dspy_callback(kit, task, module, labels=labels)
    dspy.configure(callbacks=[*(dspy.settings.get("callbacks") or []), callback])
    return callback
