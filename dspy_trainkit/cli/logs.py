"""Logging of the `trainkit` command: one format on stderr, -v for more, and DSPy's own output kept in line.

Why this exists: DSPy sets up its loggers when it is imported (a handler of its own, writing INFO lines such as
"Average Metric: 9.0 / 9 (100.0%)" to stderr, not propagating to the root logger) and its optimizers draw tqdm
progress bars whatever stderr is. `trainkit optimize` from cron or CI, or with -q, wrote tens of kilobytes of
them. So the command line:

- routes DSPy's loggers into trainkit's logging as soon as DSPy is imported (it is imported lazily, by the
  commands that need it, so a one-shot import hook does it then): hidden by default, because trainkit reports
  what failed itself (a run's per-example errors are in its record); shown with -v (INFO) and -vv (DEBUG);
- switches tqdm's bars off when stderr is not a terminal, or for -q (`TQDM_DISABLE`, which tqdm reads when it
  is imported; trainkit's own progress lines follow the same rule, see `progress`);
- with `--log-format json` (or TRAINKIT_LOG_FORMAT=json) writes one JSON object per line (`JsonFormatter`), for
  log collectors (journald, Loki, CloudWatch) that should not parse prose. Everything a command writes to
  stderr goes through here then: log records, the status lines commands print for people (`note`: "serving
  metrics on ...", an import's rejected records), Python warnings, and click's usage errors (`usage_error_as_json`
  in cli.main), so a collector never meets a line that is not JSON.

Only the command line does this: a program using trainkit as a library keeps DSPy's logging as it set it up.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importlib.abc imports importlib.resources, tempfile, shutil, ...: 4 ms of every command
    import importlib.machinery

FORMAT = "trainkit: %(levelname)s: %(message)s"
LOG_FORMATS = ("human", "json")
#: Attributes every LogRecord has; anything else on a record came from the log call's `extra=` (task, run_id,
#: plugin, event_id, ...) and becomes a field of the JSON line.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
#: The name of the handler DSPy adds to its "dspy" logger when imported (dspy.utils.logging_utils).
DSPY_HANDLER = "dspy_handler"
#: The format `setup` chose for this process; `note` writes status lines in it (one process, one command).
_format = "human"


def setup(verbose: int, log_format: str = "human") -> None:
    """Log to stderr at WARNING, INFO with -v, DEBUG with -vv; DSPy's lines only from -v; no progress bars
    when stderr is not a terminal. `log_format` "json" writes one JSON object per line."""
    global _format
    _format = log_format
    level = max(logging.WARNING - 10 * verbose, logging.DEBUG)
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr)
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)  # warnings.warn() would print two lines of prose to stderr
    dspy_level = logging.CRITICAL + 1 if verbose == 0 else level
    after_import("dspy", lambda _module: route_dspy_logs(dspy_level))
    if not _is_terminal(sys.stderr):
        no_progress_bars()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `time` (ISO 8601, UTC), `level`, `logger`, `message`, every `extra=` field
    (strings redacted like the message), and `exception` with the traceback text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime as dt

        import orjson

        from ..redaction import redact

        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                data[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(data, default=str).decode()


def json_format() -> bool:
    """Whether this command writes its stderr as JSON lines (`--log-format json`)."""
    return _format == "json"


def note(message: str, *, level: str = "info", **fields: Any) -> None:
    """A status line for the person running the command ("serving metrics on ...", "wrote FILE", a rejected
    record): printed as it is to stderr, whatever the log level (as before); with `--log-format json`, one JSON
    object carrying `fields` too, so stderr stays one object per line."""
    if json_format():
        write_json(message, level=level, **fields)
    else:
        import click

        click.echo(message, err=True)


def write_json(message: str, *, level: str = "info", **fields: Any) -> None:
    """One JSON log line on stderr, made like a logged record's (redacted by the record factory), but written
    even when the logging level would hide it or logging is not set up yet (a usage error)."""
    import click

    from ..redaction import redact

    logger = logging.getLogger("dspy_trainkit.cli")
    levelno = logging.getLevelName(level.upper())
    record = logger.makeRecord(logger.name, levelno if isinstance(levelno, int) else logging.INFO, "(cli)", 0,
                               redact(message.strip()), (), None, extra=fields)
    click.echo(JsonFormatter().format(record), err=True)


def route_dspy_logs(level: int) -> None:
    """DSPy's loggers without DSPy's own stderr handler, propagating to trainkit's, from `level` up."""
    logger = logging.getLogger("dspy")
    for handler in list(logger.handlers):
        if handler.get_name() == DSPY_HANDLER:
            logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(level)


def no_progress_bars() -> None:
    """Switch off the tqdm bars DSPy's optimizers draw. tqdm reads `TQDM_DISABLE` when it is imported, which in
    a `trainkit` process happens after this (DSPy, and with it tqdm, is imported by the command); once tqdm is
    imported the variable would change nothing, so it is then left alone. trainkit's own bar (`progress`)
    decides for itself."""
    if "tqdm" not in sys.modules:
        os.environ["TQDM_DISABLE"] = "1"


def after_import(name: str, then: Callable[[ModuleType], None]) -> None:
    """Call `then(module)` once module `name` is imported: now if it is already, else right after its first
    import (a one-shot finder on sys.meta_path, replaced when called again for the same name)."""
    if name in sys.modules:
        then(sys.modules[name])
        return
    sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, _AfterImport) and f.name == name)]
    sys.meta_path.insert(0, _AfterImport(name, then))


class _AfterImport:
    """Finds module `name` with the other finders and runs `then` after the module's code ran; removes itself.
    A meta path finder needs only `find_spec` (importlib.abc.MetaPathFinder adds nothing to use here)."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]):
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec(fullname)
        loader: Any = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module, then = loader.exec_module, self.then

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            then(module)

        loader.exec_module = exec_module  # this spec's own loader instance
        return spec


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
