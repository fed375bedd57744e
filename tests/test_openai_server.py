"""The loopback OpenAI-compatible test server (dspy_trainkit.testing): answers, faults, request log, shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from dspy_trainkit.testing import (
    Faults,
    OpenAIServer,
    by_inputs,
    dspy_content,
    dspy_reply,
    input_fields,
    json_reply,
    make_lm,
    malformed_reply,
    rate_limited,
    scripted,
    server_error,
    text_reply,
    timeout_reply,
)


@pytest.fixture(autouse=True)
def no_metadata_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")


def chat(server: OpenAIServer, content: str = "hello", timeout: float = 10.0, **extra: Any
         ) -> tuple[int, dict[str, str], Any]:
    """POST a chat request with the standard library: (status, headers, parsed body)."""
    body = json.dumps({"model": "test-model", "messages": [{"role": "user", "content": content}], **extra}).encode()
    request = urllib.request.Request(f"{server.url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, dict(response.headers), raw
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def content_of(raw: bytes) -> str:
    return json.loads(raw)["choices"][0]["message"]["content"]


def predict(lm: Any, signature: str = "question -> answer", **inputs: Any) -> Any:
    import dspy

    with dspy.context(lm=lm):
        return dspy.Predict(signature)(**inputs)


def test_dspy_round_trip_and_request_log() -> None:
    with OpenAIServer(scripted([dspy_reply({"answer": "4"})])) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/v1"
        result = predict(make_lm(server), question="What is 2 + 2?")
        assert result.answer == "4"
        assert server.counts["requests"] == 1 and server.counts["ok"] == 1
        body = server.requests[0]
        assert body["model"] == "test-model"
        assert input_fields(body) == {"question": "What is 2 + 2?"}
        record = server.log[0]
        assert (record.number, record.method, record.status, record.kind) == (1, "POST", 200, "ok")
        assert record.path == "/v1/chat/completions"


def test_dspy_content_format() -> None:
    text = dspy_content({"reasoning": "2 and 2", "answer": 4, "items": ["a", "b"]})
    assert text == ('[[ ## reasoning ## ]]\n2 and 2\n\n[[ ## answer ## ]]\n4\n\n[[ ## items ## ]]\n["a", "b"]'
                    "\n\n[[ ## completed ## ]]")


def test_chain_of_thought_and_json_adapter() -> None:
    import dspy

    with OpenAIServer(scripted([dspy_reply({"reasoning": "Two plus two.", "answer": "4"}),
                                json_reply({"answer": "5"})])) as server:
        lm = make_lm(server)
        with dspy.context(lm=lm):
            cot = dspy.ChainOfThought("question -> answer")(question="2+2?")
        assert (cot.reasoning, cot.answer) == ("Two plus two.", "4")
        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
            assert dspy.Predict("question -> answer")(question="2+3?").answer == "5"


def test_health_check() -> None:
    with OpenAIServer(model="my-model") as server:
        with urllib.request.urlopen(f"{server.url}/models", timeout=5) as response:
            listing = json.loads(response.read())
        assert [m["id"] for m in listing["data"]] == ["my-model"]
        with urllib.request.urlopen(f"{server.base_url}/health", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        assert server.counts["health"] == 2 and server.counts["requests"] == 0
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(f"{server.url}/embeddings", timeout=5)
        assert raised.value.code == 404


def test_latency_is_waited_before_answering() -> None:
    with OpenAIServer(scripted([text_reply("slow", latency=0.3), "fast"]), latency=0.1) as server:
        started = time.monotonic()
        status, _, raw = chat(server)
        assert status == 200 and content_of(raw) == "slow"
        assert time.monotonic() - started >= 0.4  # the server's latency plus the reply's
        started = time.monotonic()
        chat(server)
        assert time.monotonic() - started >= 0.1


def test_rate_limit_has_retry_after_header() -> None:
    with OpenAIServer(faults=Faults(schedule={1: rate_limited(retry_after=2), 2: rate_limited(0.5)})) as server:
        status, headers, body = chat(server)
        assert status == 429 and headers["Retry-After"] == "2"
        assert body["error"]["code"] == "rate_limit_exceeded"
        assert chat(server)[1]["Retry-After"] == "0.5"
        assert chat(server)[0] == 200
        assert server.counts["rate_limited"] == 2 and server.counts["ok"] == 1


def test_dspy_sees_429_and_retries_past_it() -> None:
    faults = Faults(schedule={1: rate_limited(retry_after=0), 2: rate_limited(retry_after=0)})
    with OpenAIServer(scripted([dspy_reply({"answer": "4"})] * 2), faults=faults) as server:
        with pytest.raises(Exception, match="(?i)rate limit"):
            predict(make_lm(server), question="2+2?")
        assert predict(make_lm(server, num_retries=2), question="2+2?").answer == "4"
        assert [r.kind for r in server.log] == ["rate_limited", "rate_limited", "ok"]


def test_server_error() -> None:
    with OpenAIServer(faults=Faults(schedule={1: server_error(), 2: server_error()})) as server:
        status, _, body = chat(server)
        assert status == 500 and body["error"]["type"] == "server_error"
        with pytest.raises(Exception):  # noqa: B017 - DSPy's error class depends on its HTTP engine
            predict(make_lm(server), question="2+2?")
        assert server.counts["server_error"] == 2


def test_malformed_output_fails_in_dspy() -> None:
    with OpenAIServer(lambda body: malformed_reply()) as server:
        with pytest.raises(Exception, match="(?i)parse"):
            predict(make_lm(server), question="2+2?")
        assert server.counts["malformed"] == server.counts["requests"] >= 1  # ChatAdapter, then JSONAdapter


def test_timeout_closes_without_answer_and_the_server_goes_on() -> None:
    with OpenAIServer(scripted([dspy_reply({"answer": "4"})]),
                      faults=Faults(schedule={1: timeout_reply(30), 2: timeout_reply(30)})) as server:
        with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
            chat(server, timeout=0.3)
        with pytest.raises(Exception, match="(?i)time"):
            predict(make_lm(server, timeout=0.3), question="2+2?")
        assert predict(make_lm(server), question="2+2?").answer == "4"
        assert [r.kind for r in server.log] == ["timeout", "timeout", "ok"]
        assert server.log[0].status is None


def test_faults_by_probability_are_reproducible() -> None:
    def kinds(seed: int) -> list[str]:
        with OpenAIServer(faults=Faults(rate=0.5, seed=seed, kinds=[server_error(), malformed_reply()])) as server:
            for _ in range(20):
                chat(server)
            return [r.kind for r in server.log]

    first = kinds(7)
    assert first == kinds(7)
    assert {"ok", "server_error", "malformed"} <= set(first)
    with pytest.raises(ValueError):
        Faults(rate=1.5)


def test_responders() -> None:
    responder = by_inputs([({"topic": "a"}, dspy_reply({"answer": "A"}))], default="plain text")
    with OpenAIServer(responder) as server:
        assert predict(make_lm(server), "topic -> answer", topic="a").answer == "A"
        status, _, raw = chat(server, "[[ ## topic ## ]]\nb")
        assert status == 200 and content_of(raw) == "plain text"
    with OpenAIServer(scripted(["one"])) as server:
        assert content_of(chat(server)[2]) == "one"
        status, _, body = chat(server)
        assert status == 500 and "used up" in body["error"]["message"]
        assert server.counts["responder_error"] == 1 and isinstance(server.errors[0], LookupError)


def test_n_choices_and_streaming() -> None:
    with OpenAIServer(lambda body: "hi") as server:
        status, _, raw = chat(server, n=2)
        assert [c["message"]["content"] for c in json.loads(raw)["choices"]] == ["hi", "hi"]
        status, headers, raw = chat(server, stream=True)
        assert headers["Content-Type"] == "text/event-stream"
        events = [line[len(b"data: "):] for line in raw.splitlines() if line.startswith(b"data: ")]
        assert events[-1] == b"[DONE]"
        assert json.loads(events[0])["choices"][0]["delta"]["content"] == "hi"


def test_bad_request_body() -> None:
    with OpenAIServer() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", body=b"{not json", headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 400
        conn.close()


def test_shutdown_stops_serving_and_wakes_waiting_handlers() -> None:
    server = OpenAIServer(faults=Faults(schedule={1: timeout_reply(60)}))
    with server:
        port = server.port
        assert server._httpd.server_address[0] == "127.0.0.1"
        outcome: list[Any] = []
        client = threading.Thread(target=lambda: outcome.append(_attempt(server)), daemon=True)
        client.start()
        while not server.log:  # the hanging request has arrived
            time.sleep(0.01)
    client.join(10)
    assert not client.is_alive() and outcome and outcome[0] != 200  # the hang ended with the server
    assert not server.running and not server._thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018
    server.stop()  # stopping twice is harmless


def _attempt(server: OpenAIServer) -> Any:
    try:
        return chat(server, timeout=60)[0]
    except Exception as exc:  # the connection closed without an answer
        return exc


def test_stops_by_itself_after_its_lifetime() -> None:
    server = OpenAIServer(lifetime=0.2).start()
    deadline = time.monotonic() + 10
    while server.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.running
