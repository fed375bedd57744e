"""One OpenAI-style chat record -> one example record: which message is the input, which the output, and where
everything else goes so nothing is lost.

The example is the last exchange: the last user message is the input and the assistant's reply to it the
output, because that is what a chat log's model was asked and answered. The rest of the conversation is context,
not content, so it goes to metadata (where it is kept, but is not part of the content hash): the system prompt,
the earlier turns, the tool calls and results between the question and the final reply.
"""

from __future__ import annotations

from typing import Any

import orjson

from dspy_trainkit.pluginkit import RecordError

INPUT_FIELD = "question"
OUTPUT_FIELD = "answer"
#: Record keys that keep their meaning in trainkit (the task and the labels); every other key goes to metadata.
PASSED_THROUGH = ("task", "domain", "topic", "difficulty")
SYSTEM_ROLES = ("system", "developer")
#: Content part types whose text is the message's text; other parts (images, audio, files) go to metadata.
TEXT_PARTS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal"}
USAGE = 'a chat record is {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}'


def to_example_record(record: dict[str, Any]) -> dict[str, Any] | RecordError:
    """The example record for `record`, or a RecordError (holding the record for the rejects file). A record
    that is already example-shaped (`inputs` and no `messages`) is returned as it is, so a rejects file of a
    chat import, which holds both kinds, can be fixed and imported again with the same `--format chat`."""
    messages = record.get("messages")
    if messages is None and isinstance(record.get("inputs"), dict):
        return record  # already an example (a line of a rejects file written by a chat import): taken as it is
    if not isinstance(messages, list):
        return RecordError(f"no 'messages' list; {USAGE}", record)
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return RecordError(f"messages.{number} is not a message with a 'role'; {USAGE}", record)
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return RecordError("no user message, so there is no input", record)
    asked = users[-1]
    replies = [i for i, m in enumerate(messages) if i > asked and m["role"] == "assistant"]
    if not replies:
        return RecordError(f"no assistant reply after the last user message (messages.{asked}); a record "
                           "needs the reply to be an example", record)
    answered = replies[-1]

    question, question_parts = _text(messages[asked].get("content"))
    reply = messages[answered]
    answer, answer_parts = _text(reply.get("content"))
    if not answer and isinstance(reply.get("refusal"), str) and reply["refusal"]:
        answer = reply["refusal"]  # the API's refusal field, set instead of content (which is null or "")
    calls = _tool_calls(reply)
    outputs: dict[str, Any] = {}
    if answer is not None or not calls:
        outputs[OUTPUT_FIELD] = answer if answer is not None else ""
    if calls:
        outputs["tool_calls"] = calls

    context: dict[str, Any] = {}
    system = [_text(m.get("content"))[0] or "" for m in messages if m["role"] in SYSTEM_ROLES]
    if system:
        context["system"] = "\n\n".join(system)
    earlier = [m for m in messages[:asked] if m["role"] not in SYSTEM_ROLES]
    if earlier:
        context["history"] = earlier
    steps = [m for m in messages[asked + 1:answered] if m["role"] not in SYSTEM_ROLES]
    if steps:
        context["steps"] = steps
    after = [m for m in messages[answered + 1:] if m["role"] not in SYSTEM_ROLES]
    if after:
        context["after_reply"] = after
    if question_parts:
        context["input_parts"] = question_parts
    if answer_parts:
        context["output_parts"] = answer_parts
    ids = [call["id"] for call in reply.get("tool_calls") or () if isinstance(call, dict) and "id" in call] \
        if isinstance(reply.get("tool_calls"), list) else []
    if ids:
        context["tool_call_ids"] = ids
    for key, message, used in (("input_message", messages[asked], ("role", "content")),
                               ("reply_message", reply, ("role", "content", "tool_calls", "function_call"))):
        rest = {k: v for k, v in message.items() if k not in used}
        if rest:
            context[key] = rest  # such as the user's `name`, or a fine-tuning `weight`

    example: dict[str, Any] = {"inputs": {INPUT_FIELD: question or ""}, "outputs": outputs}
    metadata = dict(record["metadata"]) if isinstance(record.get("metadata"), dict) else {}
    for key, value in record.items():
        if key in PASSED_THROUGH or key.startswith("_trainkit"):  # the mapper strips rejects-file notes
            example[key] = value
        elif key not in ("messages", "metadata") or (key == "metadata" and not isinstance(value, dict)):
            metadata[key] = value
    metadata = _merge(metadata, context)
    if metadata:
        example["metadata"] = metadata
    return example


def _text(content: Any) -> tuple[str | None, list[Any]]:
    """A message content's text (parts joined by newlines) and its non-text parts; None when it has no text."""
    if content is None:
        return None, []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return str(content), []
    texts, others = [], []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") in TEXT_PARTS \
                and isinstance(part.get(TEXT_PARTS[part["type"]]), str):
            texts.append(part[TEXT_PARTS[part["type"]]])
        else:
            others.append(part)
    return ("\n".join(texts) if texts else None), others


def _tool_calls(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool (or legacy function) calls of an assistant message as `{"name", "arguments"}`, arguments decoded
    from their JSON text. Call ids are left out: they are random per call and would make every example unique."""
    calls = []
    raw = list(reply["tool_calls"]) if isinstance(reply.get("tool_calls"), list) else []
    if isinstance(reply.get("function_call"), dict):
        raw.append({"function": reply["function_call"]})
    for call in raw:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            calls.append(call)
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = orjson.loads(arguments)
            except orjson.JSONDecodeError:
                pass  # not JSON: kept as the text the model wrote
        calls.append({"name": function.get("name"), "arguments": arguments})
    return calls


def _merge(metadata: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """`metadata` with the conversation's context added; a record key of the same name is kept under
    `record_<key>` rather than overwritten."""
    merged = dict(metadata)
    for key, value in context.items():
        if key in merged:
            merged[f"record_{key}"] = merged.pop(key)
        merged[key] = value
    return merged
