"""Built-in chat format: OpenAI-style chat logs and fine-tuning files, one `{"messages": [...]}` per line.

Chosen with `--format chat` (it claims no extension: `.jsonl` stays the plain JSON Lines format, which would
take such a file's first message, often the system prompt, for the input). Each line becomes one example: the
last user message as `inputs.question`, the assistant's reply to it as `outputs.answer` (and its tool calls as
`outputs.tool_calls`), and the system prompt, earlier turns and tool steps in metadata; see `conversation`.
Lines are read as a stream through the shared JSON Lines reader, so bad lines are reported with their number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import ReadOptions, json_lines


def read_chat(path: Path, options: ReadOptions) -> Iterator[tuple[str, Any]]:
    from .conversation import to_example_record  # imported when a file is read: loading plugins stays cheap

    for position, record in json_lines(path, options):
        yield position, record if isinstance(record, BaseException) else to_example_record(record)


@hookimpl
def import_format(register):
    register("chat", (), read_chat)
