"""Prometheus metrics computed from the store at scrape time.

Why a custom collector instead of counters incremented in the process: trainkit's work happens in many processes
(a collector inside the pipeline, `trainkit watch`, cron jobs, the dashboard) and on two backends. In-process
counters would each see their own slice and reset on restart; the store sees everything. So every value here is
read from the store (and the audit trail) when Prometheus scrapes, and any process exposing them agrees.

Each section (examples, intake, runs, readiness, alerts) is read on its own: one that fails is logged and shows
as `trainkit_metrics_section_up{section=...} 0`, the others are still exposed.

What only a working process sees (records the collector dropped, LM request latency, retries) is counted by that
process in `instruments`; `render`, `serve` and `serve_in_background` add those when `process=True` (the
dashboard, `trainkit watch --metrics-port`), and leave them out where the process does no work of its own (the
`trainkit metrics` commands).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..kit import Kit

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9464
#: Every metric name this module exposes (deploy/prometheus/alerts.yml may use only these; a test checks).
METRIC_NAMES = (
    "trainkit_examples", "trainkit_intake_received_total", "trainkit_intake_duplicates_total",
    "trainkit_intake_invalid_total", "trainkit_rejection_findings", "trainkit_optimization_runs",
    "trainkit_champion_score", "trainkit_task_ready", "trainkit_alerts_open", "trainkit_backup_age_seconds",
    "trainkit_backup_newest_timestamp_seconds",
    "trainkit_collector_spill_files", "trainkit_metrics_section_up", "trainkit_scrape_duration_seconds",
)


class StoreCollector(Collector):
    """Reads the kit's store on every `collect()` (a scrape). `backup_dir`, when given, adds the backup's age."""

    def __init__(self, kit: Kit, backup_dir: str | Path | None = None):
        self.kit = kit
        self.backup_dir = Path(backup_dir) if backup_dir is not None else None

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("trainkit_metrics_section_up", "1 when the section's metrics were read, 0 when "
                               "reading them failed (see the exposing process's log)", labels=["section"])
        sections: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("examples", self._examples), ("intake", self._intake), ("runs", self._runs),
            ("readiness", self._readiness), ("alerts", self._alerts), ("files", self._files)]
        for name, read in sections:
            try:
                families = read()
            except Exception as exc:  # a scrape must not fail whole because one part did
                log.warning("metrics section %s could not be read: %s: %s", name, type(exc).__name__, exc,
                            extra={"section": name})
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up
        yield GaugeMetricFamily("trainkit_scrape_duration_seconds", "Time spent reading the store for this scrape",
                                value=time.perf_counter() - started)

    def _examples(self) -> list[Metric]:
        from ..store import ExampleQuery

        family = GaugeMetricFamily("trainkit_examples", "Stored examples by task, status and source",
                                   labels=["task", "status", "source"])
        for (task, status, source), count in self.kit.store.group_counts(["task", "status", "source"],
                                                                          ExampleQuery()):
            family.add_metric([task, status, source], count)
        return [family]

    def _intake(self) -> list[Metric]:
        from ..reports.intake import intake_summary

        labels = ["task", "source"]
        received = CounterMetricFamily("trainkit_intake_received", "Records intake received (audit trail)",
                                       labels=labels)
        duplicates = CounterMetricFamily("trainkit_intake_duplicates", "Records intake found already stored",
                                         labels=labels)
        invalid = CounterMetricFamily("trainkit_intake_invalid", "Records intake could not read or normalise",
                                      labels=labels)
        rejected = GaugeMetricFamily("trainkit_rejection_findings", "Error findings of stored rejected examples, by "
                                     "code", labels=[*labels, "code"])
        for row in intake_summary(self.kit):
            key = [row["task"], row["source"]]
            received.add_metric(key, row["received"])
            duplicates.add_metric(key, row["duplicates"])
            invalid.add_metric(key, row["invalid"])
            for code, count in row["rejected_by_reason"].items():
                rejected.add_metric([*key, code], count)
        return [received, duplicates, invalid, rejected]

    def _runs(self) -> list[Metric]:
        runs = GaugeMetricFamily("trainkit_optimization_runs", "Optimization runs by task and outcome",
                                 labels=["task", "status"])
        for (task, status), count in sorted(Counter((run.task, run.status) for run in self.kit.runs()).items()):
            runs.add_metric([task, status], count)
        champions = GaugeMetricFamily("trainkit_champion_score", "The champion program's latest score (0-100)",
                                      labels=["task"])
        for task in self._tasks():
            champion = self.kit.champion(task)
            if champion is not None and champion.latest_score is not None:
                champions.add_metric([task], champion.latest_score)
        return [runs, champions]

    def _readiness(self) -> list[Metric]:
        family = GaugeMetricFamily("trainkit_task_ready", "1 when the task has enough accepted data for its "
                                   "optimizer (`trainkit ready`)", labels=["task"])
        for verdict in self.kit.readiness():
            if verdict.domain is None:
                family.add_metric([verdict.task], 1 if verdict.ready else 0)
        return [family]

    def _alerts(self) -> list[Metric]:
        family = GaugeMetricFamily("trainkit_alerts_open", "Open and acknowledged alerts (`trainkit alerts`)",
                                   labels=["task", "rule", "severity", "status"])
        counts = Counter((a.task, a.rule, a.severity, a.status) for a in self.kit.alerts())
        for key, count in sorted(counts.items()):
            family.add_metric(list(key), count)
        return [family]

    def _files(self) -> list[Metric]:
        from .doctor import newest_backup, spill_files

        families: list[Metric] = [GaugeMetricFamily(
            "trainkit_collector_spill_files", "Collector spill files waiting for `trainkit import`",
            value=len(spill_files(self.kit.settings)))]
        if self.backup_dir is not None:
            from ..redaction import redact_url

            source = redact_url(self.kit.store.url)
            newest = newest_backup(self.backup_dir, source) if self.backup_dir.is_dir() else None
            made = newest.stat().st_mtime if newest is not None else 0.0
            age = time.time() - made if newest is not None else float("inf")
            families.append(GaugeMetricFamily("trainkit_backup_age_seconds", "Age of this store's newest backup in "
                                              "the backup folder (+Inf when there is none)", value=age))
            # a textfile is read long after it was written: alert on time() minus this, which stays true
            families.append(GaugeMetricFamily("trainkit_backup_newest_timestamp_seconds", "When this store's "
                                              "newest backup was written (0 when there is none)", value=made))
        return families

    def _tasks(self) -> list[str]:
        from ..store import ExampleQuery

        stored = {key[0] for key, _ in self.kit.store.group_counts(["task"], ExampleQuery())}
        return sorted(stored | set(self.kit.settings.tasks))


def registry(kit: Kit, backup_dir: str | Path | None = None, *, process: bool = False) -> CollectorRegistry:
    """A registry holding trainkit's store collector and, with `process=True`, this process's trainkit
    instruments (`instruments`). Never prometheus_client's own process metrics: they would describe whichever
    process happens to expose the store."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(kit, backup_dir))
    if process:
        from . import instruments

        reg.register(instruments.collector())
    return reg


def render(kit: Kit, backup_dir: str | Path | None = None, *, process: bool = True) -> str:
    """One scrape in Prometheus's text format: the store's gauges and (`process=True`, for a process that
    does work, such as the dashboard) this process's counters."""
    return generate_latest(registry(kit, backup_dir, process=process)).decode()


def write_textfile(kit: Kit, path: str | Path, backup_dir: str | Path | None = None) -> None:
    """Write a scrape for node-exporter's textfile collector; prometheus_client writes a temporary file beside
    `path` and renames it, so node-exporter never reads half a file."""
    write_to_textfile(str(path), registry(kit, backup_dir))


def _server(kit: Kit, host: str, port: int, backup_dir: str | Path | None, process: bool) -> Any:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the stdlib's name)
            log.debug("metrics request: " + format, *args)

    return make_server(host, port, make_wsgi_app(registry(kit, backup_dir, process=process)),
                       handler_class=QuietHandler)


def serve_in_background(open_kit: Callable[[], Kit], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                        backup_dir: str | Path | None = None) -> Any:
    """Serve `/metrics` (store gauges and this process's counters) from a daemon thread, for a process busy
    with other work (`trainkit watch --metrics-port`). The thread opens its own kit with `open_kit()`, since a
    store object is used from one thread. Returns the listening server (`server.server_port`,
    `server.shutdown()`); raises OSError when the address cannot be bound."""
    import threading

    started = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            kit = open_kit()
            server = _server(kit, host, port, backup_dir, True)
        except BaseException as exc:  # reported to the caller, which is waiting for this thread
            outcome["error"] = exc
            started.set()
            return
        outcome["server"] = server
        started.set()
        try:
            server.serve_forever()
        finally:
            server.server_close()
            kit.close()

    threading.Thread(target=run, name="trainkit-metrics", daemon=True).start()
    started.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["server"]


def serve(kit: Kit, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, backup_dir: str | Path | None = None,
          ready: Callable[[Any], None] | None = None, *, process: bool = False) -> None:
    """Serve `/metrics` until interrupted. Requests are answered one at a time in this thread, since a store
    object is used from one thread. `ready(server)` is called once listening (tests learn the port).
    `process=True` adds this process's counters (`instruments`)."""
    server = _server(kit, host, port, backup_dir, process)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
