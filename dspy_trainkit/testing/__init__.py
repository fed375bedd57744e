"""Test helpers for trainkit's own tests and for plugin authors.

`OpenAIServer` is a loopback OpenAI-compatible chat-completions server that answers with scripted,
DSPy-formatted replies and can inject the faults a real provider shows (429 with Retry-After, 500, timeouts,
malformed output), so a pipeline or an LM-using plugin can be tested over real HTTP without a network:

    from dspy_trainkit.testing import OpenAIServer, dspy_reply, make_lm, scripted

    with OpenAIServer(scripted([dspy_reply({"answer": "4"})])) as server:
        lm = make_lm(server)
        ...

For plugin tests there are hermetic kits (`hermetic_kit`, `open_hermetic_kit`, and the `trainkit_kit` pytest
fixture that installing dspy-trainkit registers) and `run_cli` to drive the command line in-process.

Nothing here is imported by the library itself; DSPy is imported only by `make_lm`.
"""

from __future__ import annotations

from .commands import run_cli
from .kits import hermetic_kit, open_hermetic_kit
from .learner import FewShotLearner
from .openai_server import (
    Faults,
    OpenAIServer,
    Reply,
    RequestRecord,
    by_inputs,
    demonstrations,
    dspy_content,
    dspy_reply,
    error_reply,
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

__all__ = [
    "Faults", "OpenAIServer", "Reply", "RequestRecord", "by_inputs", "dspy_content", "dspy_reply", "error_reply",
    "input_fields", "json_reply", "make_lm", "malformed_reply", "rate_limited", "scripted", "server_error",
    "text_reply", "timeout_reply", "hermetic_kit", "open_hermetic_kit", "run_cli", "FewShotLearner",
    "demonstrations",
]
