"""Process-local Prometheus instruments: what this process did since it started (intake batches, the collector's
queue, spills and drops, LM requests, optimizations).

Why beside the store-computed gauges of `metrics`: some facts never reach the store. A record the collector
dropped, a 429 that a retry got past, the latency of each LM request, the time a batch spent in intake: only the
process doing the work sees them, so they are counters and histograms of that process, exposed by it (`trainkit
watch --metrics-port`, the dashboard's `/metrics`, `trainkit metrics serve` for its own process, or a pipeline's
own exporter through `register_with`). Prometheus's `rate()` and `increase()` handle their reset on restart.

They live in one registry of their own (`REGISTRY`, not prometheus_client's global one), so exposing the store's
gauges never drags in metrics of unrelated libraries, and tests can read them. Recording is a few dictionary
lookups per batch or request: cheap next to the work it counts.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

#: seconds: LM requests take from ~50 ms (a local server) to minutes (a long completion)
LM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: seconds per intake batch (1,000 records by default take ~0.05-1 s with the default plugins)
INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: seconds per optimization run
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)

INTAKE_RECORDS = Counter("trainkit_intake_records", "Records intake handled in this process, by task, source and "
                         "outcome (accepted, candidate, rejected, duplicate, invalid)",
                         ["task", "source", "outcome"], registry=REGISTRY)
INTAKE_REJECTIONS = Counter("trainkit_intake_rejections", "Error findings of examples intake rejected in this "
                            "process, by task and finding code", ["task", "code"], registry=REGISTRY)
INTAKE_DURATION = Histogram("trainkit_intake_batch_duration_seconds", "Time one intake batch took (normalise, "
                            "dedup, validate, score, store) in this process", buckets=INTAKE_BUCKETS,
                            registry=REGISTRY)
COLLECTOR_RECORDS = Counter("trainkit_collector_records", "Records the collectors of this process handled, by "
                            "outcome (submitted, written, spilled, dropped)", ["outcome"], registry=REGISTRY)
COLLECTOR_SPILL_ERRORS = Counter("trainkit_collector_spill_errors", "Failed attempts to write a collector spill "
                                 "file (a full disk, no permission)", registry=REGISTRY)
COLLECTOR_QUEUE = Gauge("trainkit_collector_queue_depth", "Records queued in this process's collectors, not yet "
                        "stored", registry=REGISTRY)
LM_REQUESTS = Counter("trainkit_lm_requests", "LM requests made through trainkit's call machinery, by model",
                      ["model"], registry=REGISTRY)
LM_LATENCY = Histogram("trainkit_lm_request_duration_seconds", "Latency of one LM request, by model and outcome "
                       "(ok, error)", ["model", "outcome"], buckets=LM_BUCKETS, registry=REGISTRY)
LM_ITEMS = Counter("trainkit_lm_items", "Work items (one generated example, one valuation, one check) by model and "
                   "how they ended (succeeded, failed)", ["model", "outcome"], registry=REGISTRY)
LM_ERRORS = Counter("trainkit_lm_errors", "Failed attempts by model and class (rate_limit, server, timeout, "
                    "malformed, ...), retried or not", ["model", "reason"], registry=REGISTRY)
LM_RETRIES = Counter("trainkit_lm_retries", "Attempts after a failed one, by model and the class that caused them",
                     ["model", "reason"], registry=REGISTRY)
LM_FAILURES = Counter("trainkit_lm_failures", "Work items given up after their retries, by model and class",
                      ["model", "reason"], registry=REGISTRY)
LM_TOKENS = Counter("trainkit_lm_tokens", "Tokens used, by model and kind (prompt, completion)", ["model", "kind"],
                    registry=REGISTRY)
OPTIMIZATIONS = Counter("trainkit_optimizations", "Optimization runs finished in this process, by task and outcome "
                        "(promoted, not_promoted, failed, interrupted)", ["task", "outcome"], registry=REGISTRY)
OPTIMIZATION_DURATION = Histogram("trainkit_optimization_duration_seconds", "Wall time of one optimization run, by "
                                  "task", ["task"], buckets=RUN_BUCKETS, registry=REGISTRY)

#: every metric family name above, as a scrape shows it (without the _total/_bucket/... sample suffixes)
NAMES = ("trainkit_intake_records", "trainkit_intake_rejections", "trainkit_intake_batch_duration_seconds",
         "trainkit_collector_records", "trainkit_collector_spill_errors", "trainkit_collector_queue_depth",
         "trainkit_lm_requests", "trainkit_lm_request_duration_seconds", "trainkit_lm_items", "trainkit_lm_errors",
         "trainkit_lm_retries", "trainkit_lm_failures", "trainkit_lm_tokens", "trainkit_optimizations",
         "trainkit_optimization_duration_seconds")

_collectors: weakref.WeakSet[Any] = weakref.WeakSet()
_collectors_lock = threading.Lock()


def _queued() -> float:
    with _collectors_lock:
        live = list(_collectors)
    return float(sum(collector.queued() for collector in live))


COLLECTOR_QUEUE.set_function(_queued)


def watch_collector(collector: Any) -> None:
    """Count `collector.queued()` in the queue-depth gauge while the collector lives."""
    with _collectors_lock:
        _collectors.add(collector)


def intake_batch(seconds: float, outcomes: Iterable[tuple[str, str, str, int]],
                 rejections: Iterable[tuple[str, str]]) -> None:
    """One intake batch: its time, `(task, source, outcome, n)` counts and `(task, code)` per rejecting finding."""
    INTAKE_DURATION.observe(seconds)
    for task, source, outcome, n in outcomes:
        if n:
            INTAKE_RECORDS.labels(task, source, outcome).inc(n)
    for task, code in rejections:
        INTAKE_REJECTIONS.labels(task, code).inc()


def collector_records(outcome: str, n: int = 1) -> None:
    if n:
        COLLECTOR_RECORDS.labels(outcome).inc(n)


def model_label(model: Any) -> str:
    return str(model or "(unknown)")


class _Proxy(Collector):
    """Yields this module's metrics from another registry (the one a scrape renders)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def collector() -> Collector:
    """A collector to register in another registry so that its scrapes include these metrics."""
    return _Proxy()


def register_with(registry: CollectorRegistry | None = None) -> None:
    """Add this process's trainkit metrics to `registry` (default: prometheus_client's global one), for a pipeline
    that already runs an exporter (`prometheus_client.start_http_server`)."""
    from prometheus_client import REGISTRY as DEFAULT

    (registry or DEFAULT).register(collector())
