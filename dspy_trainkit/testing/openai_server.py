"""A loopback OpenAI-compatible chat-completions server for tests: scripted DSPy answers and injected faults.

It lets a test (ours, or a plugin author's) drive a real `dspy.LM` over real HTTP without a network or a model:

    from dspy_trainkit.testing import OpenAIServer, Faults, dspy_reply, make_lm, rate_limited, scripted

    replies = scripted([dspy_reply({"answer": "4"}), dspy_reply({"answer": "5"})])
    with OpenAIServer(replies, faults=Faults(schedule={1: rate_limited(retry_after=0)})) as server:
        lm = make_lm(server, num_retries=1)
        with dspy.context(lm=lm):
            print(dspy.Predict("question -> answer")(question="2+2?").answer)   # "4", after one 429
        assert server.counts["rate_limited"] == 1
        assert server.requests[-1]["model"] == "test-model"

How it answers a `POST /v1/chat/completions`:

1. the request body is recorded (`server.requests`, `server.log`) and numbered from 1;
2. `faults` may replace the answer: a scheduled fault for this request number, else one drawn with the
   probability `faults.rate` from a seeded RNG (the same seed gives the same faults in the same order);
3. otherwise `responder(request_body)` makes the answer: a `Reply`, a mapping of output fields (sent as a
   DSPy ChatAdapter answer, as `dspy_reply` makes it) or a string (sent as the assistant content as it is);
4. the server waits `latency` (its own plus the reply's) and sends the reply; a `timeout_reply` instead waits
   longer than the client will and closes the connection without an answer.

`GET /v1/models` (and `/health`) answer health checks. Anything else is a 404; a responder that raises makes a
500 and is kept in `server.errors` so a test can show why.

The server is bounded: it binds only 127.0.0.1 (an OS-chosen port), serves from daemon threads, stops in
`__exit__` (waking every handler that is waiting), and stops by itself after `lifetime` seconds in any case.
It uses only the standard library; `make_lm` imports DSPy when called.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Faults", "OpenAIServer", "Reply", "RequestRecord", "by_inputs", "dspy_content", "dspy_reply", "error_reply",
    "input_fields", "json_reply", "make_lm", "malformed_reply", "rate_limited", "scripted", "server_error",
    "text_reply", "timeout_reply",
]

HOST = "127.0.0.1"  # loopback only, by design: there is no option to bind anything else
DEFAULT_MODEL = "test-model"


# ---- replies -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """One answer of the server.

    `content` is the assistant message of a 200 answer. `status`, `headers` and `body` (a JSON-able value,
    or bytes) make any other HTTP answer. `latency` is waited (in seconds) before answering; `hang` makes the
    server wait that long and then close the connection without answering (a timeout, as the client sees
    it). `kind` is the name the server counts the reply under in `server.counts`.
    """

    content: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    latency: float = 0.0
    hang: float | None = None
    kind: str = "ok"
    finish_reason: str = "stop"

    def with_latency(self, seconds: float) -> Reply:
        """The same reply, sent after `seconds`."""
        return Reply(self.content, self.status, dict(self.headers), self.body, seconds, self.hang, self.kind,
                     self.finish_reason)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def dspy_content(fields: Mapping[str, Any]) -> str:
    """The assistant content DSPy's ChatAdapter parses: one `[[ ## name ## ]]` block per output field (in
    the order given; ChainOfThought also wants `reasoning`), then the `[[ ## completed ## ]]` marker.
    Non-text values are written as JSON, as DSPy expects for lists, numbers and models."""
    blocks = [f"[[ ## {name} ## ]]\n{_text(value)}" for name, value in fields.items()]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])


def dspy_reply(fields: Mapping[str, Any], *, latency: float = 0.0) -> Reply:
    """A 200 answer in DSPy ChatAdapter format: `dspy_reply({"problem": "...", "answer": "4"})`."""
    return Reply(content=dspy_content(fields), latency=latency)


def json_reply(fields: Mapping[str, Any], *, latency: float = 0.0) -> Reply:
    """A 200 answer whose content is a JSON object of the output fields, as DSPy's JSONAdapter parses."""
    return Reply(content=json.dumps(dict(fields), ensure_ascii=False), latency=latency)


def text_reply(content: str, *, latency: float = 0.0, kind: str = "ok") -> Reply:
    """A 200 answer with this exact assistant content."""
    return Reply(content=content, latency=latency, kind=kind)


def malformed_reply(content: str = "Sure! Here is a problem for you: what is 2 + 2? (It is 4.)",
                    *, latency: float = 0.0) -> Reply:
    """A 200 answer whose content is not in any DSPy format: the adapter must fail to parse it."""
    return Reply(content=content, latency=latency, kind="malformed")


def error_reply(status: int, message: str, *, error_type: str = "invalid_request_error", code: str | None = None,
                headers: Mapping[str, str] | None = None, kind: str = "error") -> Reply:
    """An error answer with an OpenAI-style `{"error": {...}}` body."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return Reply(status=status, headers=dict(headers or {}), body=body, kind=kind)


def rate_limited(retry_after: float = 1.0, message: str = "Rate limit reached for test-model (loopback server).",
                 ) -> Reply:
    """A 429 answer with a `Retry-After` header of `retry_after` seconds."""
    seconds = str(int(retry_after)) if float(retry_after).is_integer() else f"{retry_after:g}"
    return error_reply(429, message, error_type="requests", code="rate_limit_exceeded",
                       headers={"Retry-After": seconds}, kind="rate_limited")


def server_error(message: str = "The server had an error while processing your request (loopback server).",
                 ) -> Reply:
    """A 500 answer."""
    return error_reply(500, message, error_type="server_error", kind="server_error")


def timeout_reply(seconds: float = 5.0) -> Reply:
    """No answer: the server waits `seconds` (make it longer than the client's timeout), then closes the
    connection. Stopping the server ends the wait early."""
    return Reply(hang=seconds, kind="timeout")


def as_reply(value: Reply | Mapping[str, Any] | str) -> Reply:
    """What a responder may return, as a Reply: a mapping is a DSPy answer, a string the content itself."""
    if isinstance(value, Reply):
        return value
    if isinstance(value, Mapping):
        return dspy_reply(value)
    if isinstance(value, str):
        return text_reply(value)
    raise TypeError(f"a responder must return a Reply, a mapping of output fields or a string, "
                    f"not {type(value).__name__}")


# ---- responders ----------------------------------------------------------------------------------------------

Responder = Callable[[dict[str, Any]], "Reply | Mapping[str, Any] | str"]

_FIELD_HEADER = re.compile(r"^\[\[ ## (\w+) ## \]\]\s*$", re.MULTILINE)
_TRAILER = re.compile(r"\n\s*\n(Respond with .*)$", re.DOTALL)


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return content or ""


def input_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """The input fields DSPy put in the last user message of a chat request, by name (ChatAdapter and
    JSONAdapter both write inputs as `[[ ## name ## ]]` blocks). Lets a responder answer per input."""
    users = [m for m in body.get("messages", []) if isinstance(m, Mapping) and m.get("role") == "user"]
    if not users:
        return {}
    return message_fields(_message_text(users[-1]))


def demonstrations(body: Mapping[str, Any]) -> list[tuple[dict[str, str], dict[str, str]]]:
    """The few-shot demonstrations DSPy put before the last user message: `(inputs, outputs)` per
    user/assistant pair, in order. Lets a responder behave like a learner that reads its examples."""
    messages = [m for m in body.get("messages", []) if isinstance(m, Mapping) and m.get("role") != "system"]
    shown = []
    for asked, answered in zip(messages[:-1], messages[1:-1], strict=False):
        if asked.get("role") == "user" and answered.get("role") == "assistant":
            shown.append((message_fields(_message_text(asked)), message_fields(_message_text(answered))))
    return shown


def message_fields(text: str) -> dict[str, str]:
    """The `[[ ## name ## ]]` blocks of one message, by name (the trailing "Respond with ..." line removed)."""
    headers = list(_FIELD_HEADER.finditer(text))
    fields: dict[str, str] = {}
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        value = text[header.end():end]
        if index + 1 == len(headers):
            value = _TRAILER.sub("", value)
        fields[header.group(1)] = value.strip()
    fields.pop("completed", None)
    return fields


def scripted(replies: Iterable[Reply | Mapping[str, Any] | str], *, then: Reply | None = None) -> Responder:
    """A responder giving `replies` in order, one per request; afterwards `then`, or (without it) a 500 that
    says the script ran out (kept in `server.errors`)."""
    pending = collections.deque(replies)
    lock = threading.Lock()

    def respond(_body: dict[str, Any]) -> Reply | Mapping[str, Any] | str:
        with lock:
            if pending:
                return pending.popleft()
        if then is not None:
            return then
        raise LookupError("the scripted replies are used up")

    return respond


def by_inputs(rules: Iterable[tuple[Mapping[str, str], Reply | Mapping[str, Any] | str]], *,
              default: Reply | Mapping[str, Any] | str | None = None) -> Responder:
    """A responder choosing by the request's input fields: the first rule whose every `name: value` equals
    an input field wins, e.g. `by_inputs([({"topic": "fractions"}, dspy_reply({...}))])`. The same inputs
    get the same reply every time, which is what DSPy's retries and adapter fallbacks expect."""
    table = [(dict(match), reply) for match, reply in rules]

    def respond(body: dict[str, Any]) -> Reply | Mapping[str, Any] | str:
        fields = input_fields(body)
        for match, reply in table:
            if all(fields.get(name) == value for name, value in match.items()):
                return reply
        if default is not None:
            return default
        raise LookupError(f"no rule matches the input fields {fields}")

    return respond


@dataclass
class Faults:
    """Faults injected instead of the responder's answer.

    `schedule` maps a request number (1 = the first chat request) to the Reply sent instead, e.g.
    `{1: rate_limited(), 3: server_error(), 4: timeout_reply(2.0), 6: malformed_reply()}`. Other requests
    fail with probability `rate`, with a reply drawn from `kinds`, using `random.Random(seed)`.
    """

    schedule: Mapping[int, Reply] = field(default_factory=dict)
    rate: float = 0.0
    kinds: Sequence[Reply] = field(default_factory=lambda: (rate_limited(retry_after=0), server_error()))
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"Faults.rate must be in 0..1, got {self.rate!r}")
        if self.rate and not self.kinds:
            raise ValueError("Faults.kinds is empty; give the replies to inject")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self, number: int) -> Reply | None:
        """The fault for request `number`, or None for a normal answer."""
        if number in self.schedule:
            return self.schedule[number]
        if not self.rate:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(list(self.kinds))


# ---- the server ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it: its number (chat requests only, else 0), method, path, the parsed
    body (None for GET), the HTTP status sent (None when it hung up) and the reply's kind."""

    number: int
    method: str
    path: str
    body: dict[str, Any] | None
    status: int | None
    kind: str
    received_at: float


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: OpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read server.log
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connections.discard(self.connection)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            owner._note(0, "GET", self.path, None, 200, "health")
            self._json(200, {"object": "list", "data": [
                {"id": owner.model, "object": "model", "created": 0, "owned_by": "trainkit-loopback"}]})
        elif path.startswith(("/v1/models/", "/models/")):
            owner._note(0, "GET", self.path, None, 200, "health")
            self._json(200, {"id": path.rsplit("/", 1)[1], "object": "model", "created": 0,
                             "owned_by": "trainkit-loopback"})
        elif path == "/health":
            owner._note(0, "GET", self.path, None, 200, "health")
            self._json(200, {"status": "ok"})
        else:
            owner._note(0, "GET", self.path, None, 404, "not_found")
            self._json(404, {"error": {"message": f"no route GET {self.path}", "type": "invalid_request_error"}})

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0].rstrip("/")
        if not path.endswith("/chat/completions"):
            owner._note(0, "POST", self.path, None, 404, "not_found")
            self._json(404, {"error": {"message": f"no route POST {self.path} (this server only has "
                                       "/v1/chat/completions)", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            owner._note(0, "POST", self.path, None, 400, "bad_request")
            self._json(400, {"error": {"message": f"invalid JSON body: {exc}", "type": "invalid_request_error"}})
            return
        number, reply = owner._answer(body)
        wait = owner.latency + reply.latency
        if wait > 0:
            owner._stopping.wait(wait)
        if reply.hang is not None:
            owner._note(number, "POST", self.path, body, None, reply.kind)
            owner._stopping.wait(reply.hang)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        owner._note(number, "POST", self.path, body, reply.status, reply.kind)
        if reply.status != 200 or reply.body is not None:
            self._send(reply.status, reply.body if reply.body is not None else {}, reply.headers)
        elif body.get("stream"):
            self._stream(owner._completion(body, reply, number), reply.headers)
        else:
            self._send(200, owner._completion(body, reply, number), reply.headers)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, payload, {})

    def _send(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (its timeout) before the answer
            self.close_connection = True

    def _stream(self, completion: dict[str, Any], headers: Mapping[str, str]) -> None:
        """A streamed answer: the whole content in one chunk, then the finish chunk and [DONE]."""
        base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        chunks = []
        for choice in completion["choices"]:
            delta = {"role": "assistant", "content": choice["message"]["content"]}
            chunks.append(base | {"choices": [{"index": choice["index"], "delta": delta, "finish_reason": None}]})
            chunks.append(base | {"choices": [{"index": choice["index"], "delta": {},
                                               "finish_reason": choice["finish_reason"]}]})
        data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class OpenAIServer:
    """A loopback OpenAI-compatible server; use it as a context manager.

    `responder(request_body)` answers chat requests (default: a fixed DSPy answer `{"answer": "ok"}`);
    `faults` injects errors (see `Faults`); `latency` is added before every chat answer; `model` is what
    `/v1/models` lists; `lifetime` (seconds, None for no limit) stops the server by itself if a test forgets.

    While it runs: `url` is the base URL to give a client (`http://127.0.0.1:PORT/v1`); `requests` holds the
    JSON bodies of the chat requests received, in order; `log` a RequestRecord for every request; `counts`
    counts chat requests (`"requests"`) and replies by kind (`ok`, `malformed`, `rate_limited`,
    `server_error`, `timeout`, `error`, `responder_error`, `health`, ...); `errors` keeps exceptions raised
    by the responder.
    """

    def __init__(self, responder: Responder | None = None, *, faults: Faults | None = None, latency: float = 0.0,
                 model: str = DEFAULT_MODEL, lifetime: float | None = 600.0, port: int = 0):
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        self.responder: Responder = responder or (lambda _body: dspy_reply({"answer": "ok"}))
        self.faults = faults
        self.latency = latency
        self.model = model
        self.lifetime = lifetime
        self.requests: list[dict[str, Any]] = []
        self.log: list[RequestRecord] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: list[BaseException] = []
        self._port = port
        self._lock = threading.Lock()
        self._number = 0
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        """Bind 127.0.0.1 and serve from a daemon thread (what `with` does)."""
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        self._stopping.clear()
        httpd = _HTTPServer((HOST, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"openai-loopback-{httpd.server_address[1]}", daemon=True)
        self._thread.start()
        if self.lifetime is not None:
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake handlers that wait (latency, timeouts) and close open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        httpd.shutdown()
        httpd.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5.0)

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running; use `with OpenAIServer(...) as server:`")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (without `/v1`)."""
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT/v1`: the `api_base` to give an OpenAI client or `dspy.LM`."""
        return f"{self.base_url}/v1"

    # -- answering -------------------------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any]) -> tuple[int, Reply]:
        with self._lock:
            self._number += 1
            number = self._number
            self.requests.append(body)
            self.counts["requests"] += 1
        fault = self.faults.pick(number) if self.faults is not None else None
        if fault is not None:
            return number, fault
        try:
            return number, as_reply(self.responder(body))
        except Exception as exc:  # shown to the client as a 500, kept for the test
            with self._lock:
                self.errors.append(exc)
            return number, error_reply(500, f"responder failed: {type(exc).__name__}: {exc}",
                                       error_type="server_error", kind="responder_error")

    def _note(self, number: int, method: str, path: str, body: dict[str, Any] | None, status: int | None,
              kind: str) -> None:
        with self._lock:
            self.log.append(RequestRecord(number, method, path, body, status, kind, time.time()))
            self.counts[kind] += 1

    def _completion(self, body: dict[str, Any], reply: Reply, number: int) -> dict[str, Any]:
        asked = body.get("n")
        n = asked if isinstance(asked, int) and asked > 0 else 1
        prompt = sum(len(_message_text(m).split()) for m in body.get("messages", []) if isinstance(m, Mapping))
        completion = len((reply.content or "").split())
        return {
            "id": f"chatcmpl-loopback-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": reply.content},
                         "finish_reason": reply.finish_reason, "logprobs": None} for i in range(n)],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion * n,
                      "total_tokens": prompt + completion * n},
        }


def make_lm(server: OpenAIServer, model: str | None = None, **kwargs: Any) -> Any:
    """A `dspy.LM` talking to `server`: `openai/<model>` at `server.url`, cache off, no retries (pass
    `num_retries=`, `timeout=`, `temperature=`... to change). Sets `LITELLM_LOCAL_MODEL_COST_MAP=true` so DSPy
    does not fetch model metadata from the internet."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    import dspy

    options: dict[str, Any] = {"api_base": server.url, "api_key": "loopback-test-key", "cache": False,
                               "num_retries": 0}
    options.update(kwargs)
    return dspy.LM(f"openai/{model or server.model}", **options)
