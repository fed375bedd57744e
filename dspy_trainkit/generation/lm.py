"""Build a `dspy.LM` from LMSettings, and check one before any work starts.

Why here and not in settings: building an LM imports DSPy (over a second) and reads a secret from the
environment, which only the commands that call an LM should pay for. The API key is read from the variable
named by `api_key_env` when the LM is built, never stored. `build_lm` is the one place a `dspy.LM` is made from
settings. DSPy's own retries are off by default (`num_retries=0`) because `LMCalls` retries with backoff that
honours Retry-After and counts every attempt; two retry layers would multiply attempts and hide them from the
accounting. Where DSPy calls the LM itself (inside optimizers, with no `LMCalls` around it) the caller asks for
the configured retries instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import LMError
from ..redaction import add_secret, redact_url
from ..settings import LMSettings

if TYPE_CHECKING:
    import dspy

#: The prompt of `check_lm`: tiny, so a check costs a few tokens.
CHECK_PROMPT = "Reply with the single word OK."


def _where(purpose: str | None, task: str | None) -> str:
    if task and purpose:
        return f"[lm.{purpose}] (or [tasks.{task}.lm.{purpose}])"
    return f"[lm.{purpose}]" if purpose else "the LM settings"


def api_key(lm: LMSettings, *, env: Mapping[str, str] | None = None, where: str = "the LM settings") -> str | None:
    """The API key from the environment variable `lm.api_key_env` names; None when no variable is named.
    A named variable that is unset or empty is an LMError naming it."""
    if not lm.api_key_env:
        return None
    env = os.environ if env is None else env
    value = env.get(lm.api_key_env, "")
    if not value.strip():
        raise LMError(f"{where}: api_key_env names the environment variable {lm.api_key_env}, which is not set; "
                      f"export {lm.api_key_env}=<your API key> (the key is never stored in settings)")
    add_secret(value)  # masked in every message and stored error from now on, whatever the variable's name
    return value


def lm_kwargs(lm: LMSettings, *, env: Mapping[str, str] | None = None, where: str = "the LM settings",
              retries: int = 0) -> dict[str, Any]:
    """The keyword arguments `dspy.LM(model, **kwargs)` gets for these settings (the key included); `retries`
    are DSPy's own."""
    kwargs: dict[str, Any] = {"cache": lm.cache, "num_retries": retries, "timeout": lm.timeout}
    if lm.api_base:
        kwargs["api_base"] = lm.api_base
    key = api_key(lm, env=env, where=where)
    if key is not None:
        kwargs["api_key"] = key
    if lm.temperature is not None:
        kwargs["temperature"] = lm.temperature
    if lm.max_tokens is not None:
        kwargs["max_tokens"] = lm.max_tokens
    return kwargs


def build_lm(lm: LMSettings, *, purpose: str | None = None, task: str | None = None,
             env: Mapping[str, str] | None = None, dspy_retries: bool = False) -> dspy.LM:
    """A `dspy.LM` for these settings. No model, an unset key variable or a model string DSPy refuses is an
    LMError naming the settings table to fix. `purpose`/`task` only make messages precise. `dspy_retries`
    lets DSPy retry failed calls itself, `lm.retries` times, for LMs DSPy calls without `LMCalls` around them."""
    where = _where(purpose, task)
    if not lm.model:
        raise LMError(f"{where}: no model is set; add `model = \"provider/name\"` (a dspy.LM model string such "
                      f"as \"openai/gpt-4o-mini\") to {where.split(' ')[0]} in trainkit.toml")
    kwargs = lm_kwargs(lm, env=env, where=where, retries=lm.retries if dspy_retries else 0)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")  # never fetch model metadata at run time
    import dspy

    try:
        return dspy.LM(lm.model, **kwargs)
    except (ValueError, TypeError, dspy.utils.exceptions.DSPyError) as exc:
        raise LMError(f"{where}: DSPy refuses model {lm.model!r}: {exc}") from None


def check_lm(lm: LMSettings | dspy.LM, *, purpose: str | None = None, task: str | None = None,
             env: Mapping[str, str] | None = None, settings: LMSettings | None = None) -> str:
    """Make one tiny call (with the configured retries) and return a one-line description of the answer.
    A missing key, an unreachable server or an unknown model is one LMError naming the model (and api_base)
    and where it is configured, so a long run fails before it starts rather than after its first hundred calls.
    `lm` is the settings, or a `dspy.LM` already built (from `settings`, when given: their retries are used)."""
    from .calls import LMCalls

    if isinstance(lm, LMSettings):
        settings = lm
        model = build_lm(attrs.evolve(settings, cache=False), purpose=purpose, task=task, env=env)
    else:
        model = lm.copy(cache=False)
        settings = settings or LMSettings(model=model.model, api_base=getattr(model, "kwargs", {}).get("api_base"))
    calls = LMCalls(model, attrs.evolve(settings, concurrency=1, rpm=None), backoff=0.5)
    started = time.monotonic()
    outcome = next(iter(calls.run(lambda _item: calls.lm(CHECK_PROMPT), [None])))  # the metered copy
    elapsed = time.monotonic() - started
    if outcome.error is not None:
        where = _where(purpose, task)
        base = f" at {redact_url(settings.api_base)}" if settings.api_base else ""
        raise LMError(f"LM {model.model!r}{base} ({where}) cannot be used: {outcome.error.reason}: "
                      f"{outcome.error.message}; check model, api_base and the API key, then run "
                      "`trainkit lm check`")
    answer = outcome.value[0] if isinstance(outcome.value, list) and outcome.value else outcome.value
    text = answer.get("text", answer) if isinstance(answer, dict) else answer
    preview = " ".join(str(text).split())[:60]
    return f"{model.model} answered in {elapsed:.2f} s: {preview!r}"
