"""Run many DSPy calls under one LM: concurrency, a requests-per-minute cap, retries, and honest accounting.

LM calls cost money and fail often (rate limits, overloaded servers, timeouts, answers the adapter cannot
parse), so every generator in trainkit goes through `LMCalls.run` instead of looping over `program(...)`:

    calls = kit.lm_calls("problems")
    for outcome in calls.run(lambda cell: program(**cell), cells):
        if outcome.error: print(outcome.item, outcome.error.reason, outcome.error.message)
    print(calls.stats.to_dict())   # calls, retries, failures by reason, tokens

Why this shape:
- `fn(item)` is any code making DSPy calls; it runs in a worker thread inside `dspy.context(lm=calls.lm)`,
  so user programs need no changes. Each item is tried up to `1 + retries` times.
- Retries use exponential backoff with full jitter (AWS's "full jitter": sleep a random time up to the
  exponential bound), which spreads workers that failed together; a 429's Retry-After (DSPy puts it on
  `LMRateLimitError.retry_after`) is honoured exactly instead.
- The RPM cap is applied per LM request (in a DSPy callback's `on_lm_start`), not per item, because one item
  can make several requests (ChainOfThought, adapter fallbacks).
- Failures are classified (rate_limit, server_error, timeout, connection, malformed, auth, other) and returned
  as Outcomes, never raised: one bad item must not end a run of thousands. Only auth/configuration and
  unknown errors are not retried, since trying again cannot fix them.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import attrs

from ..settings import LMSettings

if TYPE_CHECKING:
    import dspy

#: Reasons an attempt can fail with; all but the last two are worth retrying.
RETRYABLE = ("rate_limit", "server_error", "timeout", "connection", "malformed")
REASONS = (*RETRYABLE, "auth", "other")
#: Longest wait between two attempts, whatever the backoff or a Retry-After says.
MAX_DELAY = 120.0


@attrs.frozen
class CallFailure:
    """Why an item failed: a reason from REASONS and the error's message."""

    reason: str
    message: str


@attrs.frozen
class Outcome:
    """The result of one item: `value` (what `fn` returned) or `error` (the last failure), and how many
    attempts it took."""

    item: Any
    value: Any = None
    error: CallFailure | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


class OutputError(ValueError):
    """A program's answer lacks a field or has one that cannot be stored: malformed output, worth a retry."""


def classify(exc: BaseException) -> str:
    """The reason for a failed attempt, from DSPy's structured errors (and HTTP status when that is all)."""
    from dspy.utils import exceptions as dx

    if isinstance(exc, dx.AdapterParseError | OutputError):
        return "malformed"
    if isinstance(exc, dx.LMRateLimitError):
        return "rate_limit"
    if isinstance(exc, dx.LMTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, dx.LMTransportError):  # lm15's read timeout is a transport error that says so
        return "timeout" if "timed out" in str(exc).lower() else "connection"
    if isinstance(exc, dx.LMServerError):
        return "server_error"
    if isinstance(exc, dx.LMAuthError | dx.LMConfigurationError | dx.LMBillingError):
        return "auth"
    status = getattr(exc, "status", None)
    if status == 429:
        return "rate_limit"
    if isinstance(status, int) and status >= 500:
        return "server_error"
    if isinstance(exc, ConnectionError):
        return "connection"
    return "other"


def retry_after(exc: BaseException) -> float | None:
    """Seconds a 429 asks us to wait: DSPy's `retry_after`, else a Retry-After header on a response."""
    value = getattr(exc, "retry_after", None)
    if value is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        value = headers.get("retry-after") or headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class CallStats:
    """Counters of one LMCalls, safe to update from worker threads and to read at any time.

    `calls` counts LM requests (each attempt may make several), `items` finished items, `succeeded` /
    `failed` how they ended, `retries` attempts after the first, `errors` every failed attempt by reason,
    `failures` items given up by reason; tokens come from DSPy's usage tracking of each request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.items = 0
        self.succeeded = 0
        self.failed = 0
        self.retries = 0
        self.errors: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def count(self, counter: str, reason: str) -> None:
        with self._lock:
            getattr(self, counter)[reason] += 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": self.calls, "items": self.items, "succeeded": self.succeeded, "failed": self.failed,
                    "retries": self.retries, "errors": dict(self.errors), "failures": dict(self.failures),
                    "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                    "total_tokens": self.prompt_tokens + self.completion_tokens}


class RateLimiter:
    """At most `rpm` request starts per minute, spaced evenly (`60/rpm` apart), shared by all threads."""

    def __init__(self, rpm: int | None, stop: threading.Event):
        self.interval = 60.0 / rpm if rpm else 0.0
        self.stop = stop
        self._lock = threading.Lock()
        self._next = 0.0

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.stop.wait(start - now)


def _meter_class() -> type:
    """A DSPy callback counting LM requests and applying the RPM cap; made lazily (it subclasses DSPy's)."""
    from dspy.utils.callback import BaseCallback

    from ..operations import instruments

    class Meter(BaseCallback):
        """Counts requests, applies the RPM cap, and times each request for the latency histogram."""

        def __init__(self, stats: CallStats, limiter: RateLimiter, model: str):
            self.stats, self.limiter, self.model = stats, limiter, model
            self.requests = instruments.LM_REQUESTS.labels(model)
            self.started: dict[str, float] = {}

        def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            self.limiter.acquire()
            self.stats.add(calls=1)
            self.requests.inc()
            self.started[call_id] = time.monotonic()

        def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
            started = self.started.pop(call_id, None)
            if started is not None:
                instruments.LM_LATENCY.labels(self.model, "ok" if exception is None else "error").observe(
                    time.monotonic() - started)

    return Meter


class LMCalls:
    """Runs `fn(item)` for many items under one LM, with the concurrency, rpm, retries and timeout of an
    LMSettings. `lm` is the metered copy to use (or `.copy(...)`) inside `fn`; `stats` the running counts.
    `backoff` is the first retry's upper bound in seconds (doubling each attempt, jittered)."""

    #: The first retry's upper bound in seconds when none is given (tests make it small).
    DEFAULT_BACKOFF = 1.0

    def __init__(self, lm: dspy.LM, settings: LMSettings, *, backoff: float | None = None, seed: int | None = None):
        self.settings = settings
        self.stats = CallStats()
        self.backoff = self.DEFAULT_BACKOFF if backoff is None else backoff
        self._stop = threading.Event()
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self.lm = lm.copy()
        from ..operations import instruments

        self.model = instruments.model_label(settings.model or getattr(lm, "model", None))
        self.lm.callbacks.append(_meter_class()(self.stats, RateLimiter(settings.rpm, self._stop), self.model))
        # Retries must reach the server: with DSPy's cache on, the same request would get the cached bad
        # answer (a malformed one) back on every attempt and on every re-run.
        self._retry_lm = self.lm.copy(cache=False) if getattr(self.lm, "cache", False) else self.lm

    @property
    def concurrency(self) -> int:
        return max(1, self.settings.concurrency)

    def stop(self) -> None:
        """Ask running items to give up their waits (backoff, rate limit); items not started are not run."""
        self._stop.set()

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        """Outcomes as items finish (not in input order). Items are taken from `items` lazily, at most twice
        the concurrency ahead, so a generator that claims work as it is asked is claimed no faster than it
        is done. Closing the iterator (or Ctrl-C) stops taking items and waits for the running ones."""
        iterator = iter(items)
        window = 2 * self.concurrency
        pending: set[Future[Outcome]] = set()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="trainkit-lm") as pool:
            try:
                exhausted = False
                while True:
                    while not exhausted and len(pending) < window and not self._stop.is_set():
                        try:
                            item = next(iterator)
                        except StopIteration:
                            exhausted = True
                            break
                        pending.add(pool.submit(self._attempts, fn, item))
                    if not pending:
                        return
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            finally:
                if pending:  # interrupted: drop what has not started, let running items end quickly
                    self._stop.set()
                    for future in pending:
                        future.cancel()

    def call(self, fn: Callable[[Any], Any], item: Any) -> Outcome:
        """One item, in this thread, with the same retries and accounting."""
        return self._attempts(fn, item)

    # -- one item --------------------------------------------------------------------------------------
    def _attempts(self, fn: Callable[[Any], Any], item: Any) -> Outcome:
        import dspy
        from dspy.utils.usage_tracker import track_usage

        from ..operations import instruments

        attempts = 0
        while True:
            attempts += 1
            try:
                with dspy.context(lm=self.lm if attempts == 1 else self._retry_lm), track_usage() as tracker:
                    try:
                        value = fn(item)
                    finally:
                        self._count_tokens(tracker)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an Outcome with its reason
                reason = classify(exc)
                self.stats.count("errors", reason)
                instruments.LM_ERRORS.labels(self.model, reason).inc()
                last = CallFailure(reason, _message(exc))
                if reason in RETRYABLE and attempts <= self.settings.retries and not self._stop.is_set():
                    self.stats.add(retries=1)
                    instruments.LM_RETRIES.labels(self.model, reason).inc()
                    self._stop.wait(self._delay(attempts, exc, reason))
                    if not self._stop.is_set():
                        continue
                self.stats.count("failures", reason)
                self.stats.add(items=1, failed=1)
                instruments.LM_FAILURES.labels(self.model, reason).inc()
                instruments.LM_ITEMS.labels(self.model, "failed").inc()
                return Outcome(item, error=last, attempts=attempts)
            self.stats.add(items=1, succeeded=1)
            instruments.LM_ITEMS.labels(self.model, "succeeded").inc()
            return Outcome(item, value=value, attempts=attempts)

    def _delay(self, attempt: int, exc: BaseException, reason: str) -> float:
        if reason == "rate_limit":
            asked = retry_after(exc)
            if asked is not None:
                return min(asked, MAX_DELAY)
        bound = min(self.backoff * 2 ** (attempt - 1), MAX_DELAY)
        with self._random_lock:
            return self._random.uniform(0, bound)

    def _count_tokens(self, tracker: Any) -> None:
        prompt = completion = 0
        for usage in tracker.get_total_tokens().values():
            prompt += int(usage.get("prompt_tokens") or 0)
            completion += int(usage.get("completion_tokens") or 0)
        if prompt or completion:
            self.stats.add(prompt_tokens=prompt, completion_tokens=completion)
            from ..operations import instruments

            instruments.LM_TOKENS.labels(self.model, "prompt").inc(prompt)
            instruments.LM_TOKENS.labels(self.model, "completion").inc(completion)


def _message(exc: BaseException) -> str:
    """The first line of an error, short enough for a table cell and a stored `last_error`, with its secrets
    redacted (a provider's error may echo the API key)."""
    from ..redaction import redact

    text = str(exc).strip().splitlines()
    first = redact(text[0]) if text else type(exc).__name__
    return first[:300]
