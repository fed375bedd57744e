"""The LM interface of generation: building an LM from settings, checking it, and LMCalls' retries/accounting.

All LM traffic goes to the loopback OpenAI-compatible server; DSPy's cache is off (settings cache = false).
"""

from __future__ import annotations

import itertools
import re
import time

import pytest

import dspy_trainkit as tk
from dspy_trainkit.errors import LMError
from dspy_trainkit.generation.calls import LMCalls, classify, retry_after
from dspy_trainkit.generation.lm import build_lm, check_lm
from dspy_trainkit.settings import LMSettings, load_settings
from dspy_trainkit.testing import (
    Faults,
    OpenAIServer,
    dspy_reply,
    malformed_reply,
    rate_limited,
    server_error,
    timeout_reply,
)

dspy = pytest.importorskip("dspy")


def settings_for(server: OpenAIServer, **overrides) -> LMSettings:
    values = {"model": "openai/test-model", "api_base": server.url, "api_key_env": "TK_TEST_KEY", "cache": False,
              "timeout": 1.0, "retries": 3, "concurrency": 4}
    values.update(overrides)
    return LMSettings(**values)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TK_TEST_KEY", "loopback-key")


def counting_replies():
    numbers = itertools.count()
    return lambda _body: dspy_reply({"answer": f"a{next(numbers)}"})


def test_build_lm_reads_key_from_named_variable_and_turns_dspy_retries_off() -> None:
    with OpenAIServer() as server:
        lm = build_lm(settings_for(server, temperature=0.7, max_tokens=300))
    assert lm.model == "openai/test-model"
    assert lm.kwargs["api_key"] == "loopback-key"
    assert lm.kwargs["temperature"] == 0.7 and lm.kwargs["max_tokens"] == 300
    assert lm.num_retries == 0


def test_missing_key_variable_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TK_TEST_KEY")
    with OpenAIServer() as server, pytest.raises(LMError, match="TK_TEST_KEY, which is not set"):
        build_lm(settings_for(server), purpose="generation")


def test_no_model_names_the_settings_table() -> None:
    with pytest.raises(LMError, match=r"\[lm.judging\].*no model"):
        build_lm(LMSettings(), purpose="judging")


def test_check_lm_answers_and_unreachable_is_lm_error() -> None:
    with OpenAIServer() as server:
        assert "openai/test-model answered" in check_lm(settings_for(server))
        unreachable = settings_for(server, retries=0)
    with pytest.raises(LMError, match="cannot be used: connection"):
        check_lm(unreachable, purpose="generation")  # the server is stopped: nothing listens on its port
    with pytest.raises(LMError, match=f"at {re.escape(unreachable.api_base)} .*cannot be used: connection"):
        check_lm(build_lm(unreachable), purpose="generation")  # a built dspy.LM: its api_base is still named


def test_retry_after_of_a_429_is_found_and_honoured() -> None:
    with OpenAIServer(faults=Faults(schedule={1: rate_limited(retry_after=7)})) as server:
        lm = build_lm(settings_for(server))
        with pytest.raises(dspy.utils.exceptions.LMRateLimitError) as caught:
            lm("hi")
        calls = LMCalls(lm, settings_for(server), backoff=0.001)
    assert classify(caught.value) == "rate_limit"
    assert retry_after(caught.value) == 7.0
    assert calls._delay(1, caught.value, "rate_limit") == 7.0  # exactly what the server asked
    assert calls._delay(3, RuntimeError("x"), "server_error") <= 0.004  # jittered exponential otherwise


def test_lm_calls_retry_each_fault_kind_and_count_everything() -> None:
    schedule = {1: rate_limited(retry_after=0), 2: server_error(), 3: timeout_reply(3), 4: malformed_reply()}
    with OpenAIServer(counting_replies(), faults=Faults(schedule=schedule)) as server:
        calls = LMCalls(build_lm(settings_for(server, timeout=0.3)), settings_for(server, concurrency=1, retries=4),
                        backoff=0.001)
        predict = dspy.Predict("question -> answer")
        outcomes = list(calls.run(lambda q: predict(question=q).answer, ["q1", "q2"]))
    assert all(o.ok for o in outcomes)
    stats = calls.stats.to_dict()
    assert stats["errors"] == {"rate_limit": 1, "server_error": 1, "timeout": 1, "malformed": 1}
    assert stats["retries"] == 4 and stats["failed"] == 0 and stats["succeeded"] == 2
    assert stats["calls"] == server.counts["requests"]  # every request the server saw is counted
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0
    assert sorted(o.attempts for o in outcomes) == [1, 5]  # q1 met all four faults, q2 none


def test_unrecoverable_failures_are_outcomes_with_their_reason() -> None:
    with OpenAIServer(faults=Faults(rate=1.0, kinds=[server_error()])) as server:
        calls = LMCalls(build_lm(settings_for(server)), settings_for(server, retries=2), backoff=0.001)
        predict = dspy.Predict("question -> answer")
        outcomes = list(calls.run(lambda q: predict(question=q).answer, ["a", "b", "c"]))
    assert [o.error.reason for o in outcomes] == ["server_error"] * 3
    assert all(o.attempts == 3 for o in outcomes)
    assert calls.stats.to_dict()["failures"] == {"server_error": 3}
    assert calls.stats.retries == 6


def test_errors_that_retrying_cannot_fix_are_not_retried() -> None:
    with OpenAIServer() as server:
        calls = LMCalls(build_lm(settings_for(server)), settings_for(server), backoff=0.001)

        def broken(_item):
            raise KeyError("a bug in the program")

        (outcome,) = calls.run(broken, ["x"])
    assert outcome.error.reason == "other" and outcome.attempts == 1


def test_rpm_spaces_request_starts(monkeypatch) -> None:
    """600 per minute: one request start every 0.1 s whatever the concurrency. Measured where the limiter lets a
    request go (the server's receive times also carry the machine's scheduling jitter, which made this test
    flaky on a loaded machine); the server's log checks the requests did go out, four of them."""
    from dspy_trainkit.generation import calls as calls_module

    asked: list[float] = []
    released: list[float] = []
    original = calls_module.RateLimiter.acquire

    def acquire(self) -> None:
        asked.append(time.monotonic())
        original(self)
        released.append(time.monotonic())

    monkeypatch.setattr(calls_module.RateLimiter, "acquire", acquire)
    with OpenAIServer(counting_replies()) as server:
        calls = LMCalls(build_lm(settings_for(server)), settings_for(server, rpm=600, concurrency=4))
        predict = dspy.Predict("question -> answer")
        list(calls.run(lambda q: predict(question=q).answer, [f"q{i}" for i in range(4)]))
        assert len([record for record in server.log if record.number]) == 4
    # the k-th request may start no sooner than k intervals after the first was asked for: a thread can be
    # scheduled late after its wait (so two measured starts can be closer than 0.1 s), never early
    first = min(asked)
    assert len(released) == 4
    assert all(start >= first + 0.1 * k - 0.001 for k, start in enumerate(sorted(released)))
    assert sorted(released)[-1] - first >= 0.299


def test_kit_lm_uses_task_overrides(tmp_path) -> None:
    (tmp_path / "trainkit.toml").write_text(
        '[lm.generation]\nmodel = "openai/base"\napi_key_env = "TK_TEST_KEY"\nconcurrency = 2\n'
        '[tasks.qa.lm.generation]\nmodel = "openai/special"\nconcurrency = 7\n')
    with tk.open(settings=load_settings(cwd=tmp_path)) as kit:
        assert kit.lm().model == "openai/base"
        assert kit.lm("qa").model == "openai/special"
        assert kit.lm_calls("qa").concurrency == 7
        with pytest.raises(LMError, match=r"\[lm.judging\]"):
            kit.lm("qa", purpose="judging")


def test_with_the_cache_on_a_retry_goes_to_the_server_instead_of_replaying_a_cached_bad_answer(tmp_path) -> None:
    from optimize_support import dspy_cache

    schedule = {1: malformed_reply(), 2: malformed_reply()}
    with dspy_cache(tmp_path / "cache"), OpenAIServer(counting_replies(), faults=Faults(schedule=schedule)) as server:
        settings = settings_for(server, cache=True, concurrency=1, retries=2)
        predict = dspy.Predict("question -> answer")
        first = list(LMCalls(build_lm(settings), settings, backoff=0.001).run(lambda q: predict(question=q).answer,
                                                                              ["q1"]))
        # attempt 1: the ChatAdapter's answer and the JSONAdapter fallback's are both malformed; attempt 2 works
        assert first[0].ok and first[0].attempts == 2 and server.counts["requests"] == 3
        # a re-run: the first attempt may come from the cache (the malformed answer was cached), the retry not
        again = list(LMCalls(build_lm(settings), settings, backoff=0.001).run(lambda q: predict(question=q).answer,
                                                                              ["q1"]))
        assert again[0].ok and again[0].attempts == 2 and server.counts["requests"] == 4
