"""`trainkit watch`: evaluate re-optimization triggers and re-optimize due tasks, once (cron) or in a loop.

The work is done by `dspy_trainkit.optimization.incremental.IncrementalBuilder`; this module parses options and
prints. `--once` exits 0 when every due task was optimized (or nothing was due) and 1 when a re-optimization
failed. Ctrl-C between runs is the normal way to stop the loop (exit 0); during a run it exits 130, and the run
engine records that run as interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from .exits import EXIT_ERROR, EXIT_INTERRUPTED
from .logs import note
from .optimization import OPTIMIZER_NAMES, dspy_prints_to_log
from .output import echo_json, when
from .progress import Progress
from .state import CliState, pass_state

FAILED_EXIT = EXIT_ERROR  # --once: a re-optimization failed


class Duration(click.ParamType):
    """Seconds, or text such as "30s", "5m", "1h"."""

    name = "duration"

    def __init__(self, *, zero: bool = False):
        self.zero = zero  # whether 0 ("no wait") is allowed

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        from ..optimization.triggers import parse_duration

        if self.zero and isinstance(value, str | int | float) and _is_number(str(value)) and float(value) == 0:
            return 0.0
        try:
            return parse_duration(float(value) if isinstance(value, str) and _is_number(value) else value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@click.command()
@click.option("--task", help="Only this task (default: every task in settings or with runs).")
@click.option("--interval", type=Duration(), default="60", show_default=True,
              help="Seconds between evaluations (or 30s, 5m, 1h).")
@click.option("--once", is_flag=True, help="Evaluate once, re-optimize what is due, and exit (for cron).")
@click.option("--dry-run", is_flag=True, help="Only show the task states and which triggers fire; run nothing.")
@click.option("--program", metavar="PKG.MODULE:FACTORY", help="What makes the DSPy program (default: "
              "[optimize] program, else the task's program).")
@click.option("--metric", metavar="PKG.MODULE:FUNCTION", help="metric(example, prediction, trace=None) "
              "(default: [optimize] metric).")
@click.option("--optimizer", type=click.Choice(OPTIMIZER_NAMES), help="Default: [optimize] optimizer.")
@click.option("--retry-after", type=Duration(zero=True), default="15m", show_default=True,
              help="How long a task whose re-optimization failed waits before the next attempt (0: no wait).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines; in the loop, print only runs.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: one object with --once/--dry-run, one line per step in the loop.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Also serve /metrics on this port while watching: the store's gauges and this process's "
                   "counters (optimizations, LM calls); 0 picks a free port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address for --metrics-port (loopback by default).")
@pass_state
def watch(state: CliState, task: str | None, interval: float, once: bool, dry_run: bool, program: str | None,
          metric: str | None, optimizer: str | None, retry_after: float, quiet: bool, as_json: bool,
          metrics_port: int | None, metrics_host: str) -> None:
    """Re-optimize tasks when their triggers fire ([optimize.triggers]: new_accepted, growth, quality_shift,
    every, on_ready). A task is "collecting" until readiness is met and it has a champion, then "optimized"."""
    if metrics_port is not None:
        _serve_metrics(state, metrics_host, metrics_port)
    with _failures_printed_once():
        _watch(state.kit(), task, interval, once, dry_run, program, metric, optimizer, retry_after, quiet, as_json)


def _serve_metrics(state: CliState, host: str, port: int) -> None:
    """Start `/metrics` in a background thread with a kit of its own (a store object is used from one thread)."""
    from ..kit import open as open_kit
    from ..operations.metrics import serve_in_background

    settings, pm = state.settings(), state.plugin_manager()
    try:
        server = serve_in_background(lambda: open_kit(settings=settings, pm=pm), host, port)
    except OSError as exc:
        raise click.ClickException(f"--metrics-port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    note(f"serving metrics on http://{host}:{server.server_port}/metrics",
         url=f"http://{host}:{server.server_port}/metrics")


@contextlib.contextmanager
def _failures_printed_once() -> Iterator[None]:
    """Without -v the builder's failure log lines would repeat what the command prints: hold them back."""
    builder_log = logging.getLogger("dspy_trainkit.incremental")
    level = builder_log.level
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        builder_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        builder_log.setLevel(level)


def _watch(kit: Any, task: str | None, interval: float, once: bool, dry_run: bool, program: str | None,
           metric: str | None, optimizer: str | None, retry_after: float, quiet: bool, as_json: bool) -> None:
    builder = kit.builder(task, program=program, metric=metric, optimizer=optimizer, actor="watch",
                          retry_after=retry_after)
    say = Progress.stage_printer(quiet=quiet)

    def progress(name: str, stage: str) -> None:
        say(f"optimize {name}: {stage}…")

    if dry_run:
        checks = builder.check()
        _print(checks, [], as_json=as_json, quiet=False)
        return
    if once:
        try:
            with dspy_prints_to_log():  # DSPy's print()s would break --json
                results = builder.step(progress=progress)
        except KeyboardInterrupt:
            _interrupted(builder)
            sys.exit(EXIT_INTERRUPTED)  # a one-shot command cut short
        _print(builder.last_checks, results, as_json=as_json, quiet=False)
        _check_alerts(kit, task)
        if any(r.status == "failed" for r in results):
            sys.exit(FAILED_EXIT)
        return

    def on_step(results: list[Any]) -> None:
        with contextlib.redirect_stdout(real_stdout):
            _on_step(results)

    def _on_step(results: list[Any]) -> None:
        _check_alerts(kit, task)
        if as_json:
            click.echo(_json_line({"time": time.time(), "checks": [c.to_dict() for c in builder.last_checks],
                                   "results": [r.to_dict() for r in results]}))
        elif results or not quiet:
            _print(builder.last_checks, results, as_json=False, quiet=quiet, stamp=True)

    if not as_json and not quiet:
        note(f"watching {task or 'every task'} every {interval:g} s; Ctrl-C stops", interval=interval,
             **({"task": task} if task else {}))
    try:
        with dspy_prints_to_log() as real_stdout:  # DSPy's print()s would break --json; each step prints to it
            builder.run_forever(interval, on_step=on_step, progress=progress)
    except KeyboardInterrupt:
        _interrupted(builder)
        note("stopped")


def _check_alerts(kit: Any, task: str | None) -> None:
    """Each watch step also runs the alert rules (new alerts go to their channels: the log, a file, a
    webhook); a failing check is logged and watching goes on."""
    from ..errors import TrainkitError

    try:
        kit.check_alerts([task] if task else None)
    except TrainkitError as exc:
        logging.getLogger("dspy_trainkit").error("alert check failed: %s", exc)


def _interrupted(builder: Any) -> None:
    """Ctrl-C during a run exits 130 (the run is recorded as interrupted; the next watch evaluates again);
    between runs it is the normal way to stop and exits 0."""
    if builder.interrupted is not None:
        note(f"interrupted while optimizing task {builder.interrupted}; the run is recorded as "
             "interrupted, and the next `trainkit watch` evaluates its triggers again", level="warning",
             task=builder.interrupted)
        sys.exit(EXIT_INTERRUPTED)


def _json_line(data: Any) -> str:
    import orjson

    return orjson.dumps(data).decode()


def _print(checks: list[Any], results: list[Any], *, as_json: bool, quiet: bool, stamp: bool = False) -> None:
    if as_json:
        echo_json({"checks": [c.to_dict() for c in checks], "results": [r.to_dict() for r in results]})
        return
    prefix = f"[{when(time.time())}] " if stamp else ""
    ran = {r.task: r for r in results}
    if not checks:
        click.echo(f"{prefix}no tasks to watch: configure one in trainkit.toml")
    for check in checks:
        if quiet and check.task not in ran:
            continue
        state = check.state
        head = f"{prefix}task {check.task}: {state.state}"
        if state.champion:
            score = f" ({state.champion_score:.1f})" if state.champion_score is not None else ""
            head += f", champion {state.champion[-8:]}{score}"
        if not state.ready:
            head += ", not ready"
        if check.hits:
            head += "; due: " + "; ".join(h.reason for h in check.hits)
        elif state.ready:
            head += "; no trigger fired"
        click.echo(head)
        if check.blocked:
            click.echo(f"  waiting: {check.blocked}")
        if not state.ready:
            for step in state.next_steps[:3]:
                click.echo(f"  next: {step}")
        result = ran.get(check.task)
        if result is not None:
            click.echo(f"  {'failed: ' + result.error if result.status == 'failed' else result.message}")
