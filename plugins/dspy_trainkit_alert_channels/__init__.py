"""Built-in alert channels 'alert_channels': every new alert goes to the log, and, when configured, to a JSON
Lines file and a webhook.

Settings (`[plugin.alert_channels]`): `jsonl` (a file path, relative to the project folder; one JSON object per
alert, appended), `webhook` (a URL that gets an HTTP POST of the alert as JSON), `timeout` (seconds per attempt,
default 5), `retries` (attempts after the first, default 3, waiting 0.5, 1, 2 ... s; a 4xx answer other than
429 is not retried). A webhook that keeps failing is logged (its URL redacted) and the alert stays stored: it is
never lost, only not delivered there.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import unknown_settings

NAME = "alert_channels"
DEFAULTS: dict[str, Any] = {"jsonl": None, "webhook": None, "timeout": 5.0, "retries": 3}
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
log = logging.getLogger("dspy_trainkit.alerts")
#: the first wait between webhook attempts, doubled after each
PAUSE = 0.5


@hookimpl
def on_alert(alert: Any, context: Any) -> None:
    settings = unknown_settings(NAME, context.plugin_settings(NAME), DEFAULTS)
    log.log(LEVELS.get(alert.severity, logging.WARNING), "alert %s [%s] %s: %s", alert.id, alert.severity,
            alert.title, alert.message)
    payload = alert.to_dict()
    if settings["jsonl"]:  # each channel on its own: a file that cannot be written does not stop the webhook
        path = Path(settings["jsonl"])
        path = path if path.is_absolute() else context.settings.project_dir / path
        try:
            with path.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(payload, sort_keys=True) + "\n")
        except OSError as exc:
            log.error("alert %s not written to %s: %s", alert.id, path, exc.strerror or exc)
    if settings["webhook"]:
        post(settings["webhook"], payload, timeout=float(settings["timeout"]), retries=int(settings["retries"]))


def post(url: str, payload: dict[str, Any], *, timeout: float, retries: int) -> bool:
    """POST `payload` as JSON, retrying timeouts, connection errors, 429 and 5xx; returns whether it arrived.
    Each attempt has `timeout` seconds in all (not per socket read: a receiver trickling bytes cannot hold
    the check that raised the alert)."""
    import urllib.error
    import urllib.parse
    import urllib.request  # here, not at the top: loading plugins must stay cheap for `trainkit --help`

    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        log.error("alert %s not delivered: the webhook setting is not an http(s) URL (%s); fix "
                  "[plugin.alert_channels] webhook", payload.get("id"), where(url))
        return False
    body = json.dumps(payload).encode()
    problem = ""
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "dspy-trainkit-alerts"})
        try:
            _send(request, timeout)
            return True
        except ValueError as exc:  # a URL urllib cannot use (a bad port, ...): not worth retrying
            problem = f"bad URL ({type(exc).__name__})"
            break
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < retries:
            time.sleep(PAUSE * 2 ** attempt)
    log.error("alert %s not delivered to webhook %s after %d attempt(s): %s", payload.get("id"), where(url),
              attempt + 1, problem)
    return False


def _send(request: Any, timeout: float) -> None:
    """One attempt, given `timeout` seconds in all: run in a helper thread that is left behind (daemon) if
    the receiver is still trickling when the time is up."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainkit-webhook")
    try:
        future = pool.submit(_exchange, request, timeout)
        try:
            future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no complete answer within {timeout:g} s") from None
    finally:
        pool.shutdown(wait=False)


def _exchange(request: Any, timeout: float) -> None:
    import urllib.request

    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the configured URL
        answer.read()


def where(url: str) -> str:
    """The scheme and host of a webhook URL: its path and query often hold the token (Slack, Teams, ...)."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unparsable URL)"
    if not parts.scheme or not parts.hostname:
        return "(no scheme://host; the rest is not shown)"
    return f"{parts.scheme}://{parts.hostname}{port}/..."
