"""One redaction of secrets for every message, log line, stored error text and backup.

Secrets reach text in many ways: a store URL with a password in an error message, an `api_base` with
credentials, a provider's error that echoes the API key it was given, a `Bearer` header in an exception. So
there is one function, `redact(text)`, used for all of them (error lines and log lines of the CLI, the URLs it
prints, error texts stored in run records and plan slots, and so what backups carry). It replaces with `***`:

* the password of any URL-like `scheme://user:password@host` (also with a mistyped scheme or `//` only, and
  a bare `user:password@host` as connection errors print it);
* the value of query options that hold secrets: `password=`, `key=`, `api_key=`, `token=`, `secret=`, ...;
* `Bearer <token>` and `Basic <credentials>`;
* API keys by their well-known shapes (`sk-...`, `sk-proj-...`, `sk-ant-...`, `AKIA...`, `ghp_...`, ...);
* the values of secret environment variables: those whose name ends in KEY, TOKEN, SECRET, PASSWORD (such as
  OPENAI_API_KEY or TRAINKIT_BACKUP_KEY), and any key read through `api_key_env`, whatever the variable is
  called (see `add_secret`).

`redact_url` is the same for one URL. `RedactingFilter` applies `redact` to log records on a handler;
`redact_all_log_records()` (what the CLI uses) makes every log record of the process redacted when it is made,
whatever logger and handler it goes to (DSPy and LiteLLM install handlers of their own).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

#: `scheme://user:password@` (also `scheme:user:...`, `scheme:/user:...` and `//user:...`): the password runs to
#: the last `@` before the host, as URL parsers read it
_URL_PASSWORD = re.compile(
    r"(?P<lead>(?:\b[a-z][a-z0-9+.\-]*:/{0,3}|//)[^\s/@:'\"<>]*:)(?P<secret>[^\s/?#'\"<>]*)(?=@)", re.IGNORECASE)
#: `user:password@host` without a scheme, as connection errors print it ("failed to connect to u:p@host:80")
_BARE_USERINFO = re.compile(
    r"(?P<lead>(?<![\w:/@])[A-Za-z0-9._~%+\-]+:)(?P<secret>[^\s/@:'\"<>]+)(?=@[A-Za-z0-9.\-\[\]]+)")
_SECRET_OPTIONS = re.compile(
    r"(?P<lead>\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|apikey|key|token|access_token|auth|"
    r"sig|signature)=)(?P<secret>[^&\s#'\"]+)",
    re.IGNORECASE)
_AUTH_HEADER = re.compile(r"(?P<lead>\b(?:Bearer|Basic)\s+)(?P<secret>[A-Za-z0-9._~+/=\-]{6,})")
_KEY_SHAPES = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic (sk-ant-...), Stripe-like
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|\bAIza[0-9A-Za-z_\-]{30,}"  # Google API keys
    r"|\bhf_[A-Za-z0-9]{20,}")  # Hugging Face tokens
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
#: values shorter than this are not masked wherever they appear (a 3-letter "key" would mask half of a text)
MIN_SECRET = 8

#: secrets this process has read (API keys through `api_key_env`): masked wherever they appear
_known: set[str] = set()


def add_secret(value: str) -> None:
    """Mask `value` wherever it appears from now on in this process (called for every API key read through
    `api_key_env`, whatever the variable is called)."""
    if value and len(value) >= MIN_SECRET:
        _known.add(value)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The values to mask: of variables named like secrets and those given to `add_secret`, longest first (so
    a value holding another is masked whole)."""
    env = os.environ if env is None else env
    values = {value for name, value in env.items() if len(value) >= MIN_SECRET and _SECRET_NAME.search(name)}
    return sorted(values | _known, key=len, reverse=True)


def _mask(match: re.Match[str]) -> str:
    return match.group("lead") + MASK


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every secret it holds shown as `***` (see the module docstring for what counts)."""
    if not text:
        return text
    for value in secret_values(env):
        text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(_mask, text)
    text = _BARE_USERINFO.sub(_mask, text)
    text = _SECRET_OPTIONS.sub(_mask, text)
    text = _AUTH_HEADER.sub(_mask, text)
    return _KEY_SHAPES.sub(MASK, text)


def redact_url(url: str) -> str:
    """`url` with its password shown as `***` (in the user part and in a `password=` option), for messages,
    manifests and snapshot configs; everything else as given."""
    return redact(url)


def redact_data(value: Any) -> Any:
    """`value` (JSON-like: mappings, lists, text) with `redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (with its arguments merged in) and exception text,
    so no log line carries a secret. The CLI puts it on its log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_all_log_records() -> None:
    """Make every log record created from now on carry a redacted message (a log record factory: it covers
    loggers and handlers installed later, such as DSPy's). Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _FILTER.filter(record)
        return record

    make.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


_FILTER = RedactingFilter()
