"""Collecting examples from a running pipeline without slowing it down.

A pipeline calls `kit.collect(...)` (or wraps a function with `@kit.collector(...)`, or installs
`kit.dspy_callback(...)`); each call only checks the task's collection settings and puts a record on a queue.
One background thread takes records off the queue and runs them through the intake pipeline in batches, so
the pipeline pays microseconds per call, not a database write.

Nothing is lost: `kit.flush()` waits until everything queued so far is written, the queue is flushed at
interpreter exit, a store error is logged and retried with backoff (never raised into the pipeline), and a batch
that fails for another reason (a plugin bug) is written to a spill file in the project folder that
`trainkit import` takes back.
"""

from __future__ import annotations

import atexit
import copy
import functools
import inspect
import itertools
import logging
import queue
import random
import threading
import time
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


class Collector:
    """The queue and background writer of one kit."""

    def __init__(self, kit: Kit, *, flush_interval: float = 0.5, max_queue: int = 100_000):
        self._kit = weakref.proxy(kit)
        self._settings = kit.settings
        self.flush_interval = flush_interval
        self.stats = CollectionStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = False  # set by close(): a batch the store refuses is spilled instead of retried
        self._wake = threading.Event()  # ends a retry's wait early when the kit closes
        atexit.register(self._at_exit)

    # -- the pipeline side -----------------------------------------------------------------------------
    def submit(self, task: str, inputs: Any, outputs: Any, *, labels: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None) -> bool:
        """Queue one record; returns whether it was queued (False: collection off for the task, sampled
        out, or the queue full). Never raises into the pipeline."""
        if self._closed:
            log.warning("kit is closed: a record of task %r was not collected (collect before kit.close())", task)
            return False
        try:
            settings = self._settings.task(task)
            self.stats.submitted += 1
            if not settings.collect:
                self.stats.disabled += 1
                return False
            if settings.sample_rate < 1.0 and random.random() >= settings.sample_rate:
                self.stats.sampled_out += 1
                return False
            record = {"task": task, "inputs": as_fields(inputs, "input"), "outputs": as_fields(outputs),
                      "source": "collected", "metadata": copy.deepcopy(dict(metadata or {})),
                      "provenance": {"origin": "pipeline", "collected_at": time.time(), **(provenance or {})},
                      **{k: v for k, v in (labels or {}).items() if k in LABELS and v is not None}}
            self._ensure_thread()
            self._queue.put_nowait((f"collect #{next(self._numbers)}", record))
            return True
        except queue.Full:
            log.warning("collection queue is full (%d records); dropping a record of task %r: the store is not "
                        "keeping up (see earlier errors)", self._queue.maxsize, task)
            return False
        except Exception:  # collection must never break the pipeline
            log.exception("could not queue a record of task %r", task)
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued so far is written (or spilled); False if `timeout` passed first."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and stop the writer thread. If the store still fails when `timeout` has passed, what is left
        is written to a spill file (see `_spill`) instead of being lost."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(max(RETRY_DELAYS) + 5)
        leftovers = self._drain()
        if leftovers:
            self._spill(leftovers, StoreError("the store was not reachable when the kit closed"))
        atexit.unregister(self._at_exit)

    def _drain(self) -> list[tuple[str, dict[str, Any]]]:
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
        batch: list[tuple[str, dict[str, Any]]] = []
        waiting: list[threading.Event] = []
        size = self._settings.batch_size
        while True:
            try:
                item = self._queue.get(timeout=self.flush_interval if batch else None)
            except queue.Empty:
                item = "timeout"
            if isinstance(item, tuple):
                batch.append(item)
                if len(batch) < size:
                    continue
            elif isinstance(item, threading.Event):
                waiting.append(item)
            if batch:
                self._write(batch)
                batch = []
            for event in waiting:
                event.set()
            waiting = []
            if item is None:
                return

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        for attempt in itertools.count():
            try:
                report = self._kit.intake(list(batch), actor="collector", reason="collected from a pipeline")
            except Exception as exc:
                if not isinstance(exc, StoreError) and not _is_database_error(exc):
                    self._spill(batch, exc)
                    return
                if self._stopping:
                    self._spill(batch + self._drain(), exc)
                    return
                self._retry(attempt, exc)
                continue
            for name in ("accepted", "candidates", "rejected", "duplicates", "invalid"):
                setattr(self.stats, name, getattr(self.stats, name) + getattr(report, name))
            self.stats.written += report.stored
            for problem in report.problems:
                log.warning("collected record not stored: %s: %s", problem.position, problem.message)
            return

    def _retry(self, attempt: int, exc: Exception) -> None:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
        self.stats.retries += 1
        log.error("collected examples not written yet (%s); retrying in %.1f s", exc, delay)
        self._wake.wait(delay)

    def _spill(self, batch: list[tuple[str, dict[str, Any]]], exc: Exception) -> None:
        folder = Path(self._settings.project_dir) / ".trainkit"
        folder.mkdir(exist_ok=True)
        path = folder / f"collect-failed-{time.strftime('%Y%m%dT%H%M%S')}-{id(batch):x}.jsonl"
        with path.open("ab") as out:
            for _position, record in batch:
                out.write(orjson.dumps(record, default=str) + b"\n")
        self.stats.spilled += len(batch)
        log.error("%d collected examples could not go through intake (%s); they are saved in %s: fix the cause, "
                  "then `trainkit import %s`", len(batch), exc, path, path)


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
