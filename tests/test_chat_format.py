"""The `chat` import format (built-in plugin `chat`): OpenAI chat records become examples by role, through the real
CLI (`trainkit import --format chat`) and `kit.import_files`.

The fixture tests/data/chat/openai_chat.jsonl holds the shapes of real chat logs: a system prompt, a multi-turn
conversation with labels, content as a list of parts with an image, a tool call answered by a tool and a final
reply, a conversation with no reply yet, and a reply that is only a tool call.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import run_checked

import dspy_trainkit as tk

DATA = Path(__file__).parent / "data" / "chat"
EXIT_SOME_REJECTED = 3
QA_TOML = 'default_task = "qa"\n\n[tasks.qa]\nsignature = "question -> answer"\n'
TUTOR = "You are a patient math tutor. Answer with the result and one line of working."


run = run_checked


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose task `qa` declares `question -> answer`, with the chat fixture copied in."""
    (tmp_path / "trainkit.toml").write_text(QA_TOML)
    shutil.copy(DATA / "openai_chat.jsonl", tmp_path / "chat.jsonl")
    tk.open().close()
    return tmp_path


def stored() -> dict[str, tk.Example]:
    with tk.open() as kit:
        return {ex.provenance["origin"]: ex for ex in kit.examples()}


def test_chat_import_takes_the_last_user_message_and_the_reply_not_the_system_prompt(project):
    result = run("import", "--format", "chat", "chat.jsonl", "--rejects", "rejects.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED, result.output
    assert result.stdout == "read 6, imported 4, duplicates 0, rejected 2\n"
    assert result.stderr.splitlines()[:2] == [
        "chat.jsonl:line 5: no assistant reply after the last user message (messages.1); a record needs the reply "
        "to be an example",
        "chat.jsonl:line 6: outputs.answer: outputs.answer is required by task 'qa' [missing-field]"]

    examples = stored()
    first = examples["chat.jsonl:line 1"]
    assert (first.task, first.inputs, first.outputs) == (
        "qa", {"question": "What is 12 * 7?"}, {"answer": "84, because 12 * 7 = 70 + 14."})
    assert first.metadata == {"system": TUTOR}
    assert first.provenance["format"] == "chat" and first.source == "imported"

    # multi-turn: the last exchange is the example, the earlier turns are kept; labels stay labels
    turns = examples["chat.jsonl:line 2"]
    assert turns.inputs == {"question": "And 2x + 3 = 10?"}
    assert turns.outputs == {"answer": "x = 3.5: 2x = 7, so x = 7 / 2."}
    assert turns.metadata["history"] == [{"role": "user", "content": "Solve x + 3 = 10."},
                                         {"role": "assistant", "content": "x = 7, subtracting 3 from both sides."}]
    assert (turns.domain, turns.topic) == ("math", "linear equations")

    # content as a list of parts: the text is the input, the image is kept; a developer message is the system
    parts = examples["chat.jsonl:line 3"]
    assert parts.inputs == {"question": "What does this chart show?"}
    assert parts.outputs == {"answer": "Quarterly sales rising from 1.2M to 1.9M."}
    assert parts.metadata["system"] == "Describe charts for a blind reader."
    assert parts.metadata["input_parts"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/charts/sales-q3.png", "detail": "low"}}]

    # a tool call on the way: the final reply is the output, the call and its result are kept as steps
    tools = examples["chat.jsonl:line 4"]
    assert tools.outputs == {"answer": "Yes: rain is likely in Paris today (80%)."}
    assert [step["role"] for step in tools.metadata["steps"]] == ["assistant", "tool"]
    assert tools.metadata["tools"][0]["function"]["name"] == "get_weather"

    # a reply that is only a tool call: stored (as rejected for a task wanting an answer), the call decoded
    call = examples["chat.jsonl:line 6"]
    assert call.status == "rejected"
    assert call.outputs == {"tool_calls": [{"name": "book_table", "arguments": {
        "restaurant": "Chez Marie", "people": 2, "time": "20:00"}}]}
    assert call.metadata == {"parallel_tool_calls": False, "tool_call_ids": ["call_Zq91"]}
    assert "chat.jsonl:line 5" not in examples

    # the conversation without a reply is in the rejects file as it was; with a reply it imports
    rejects = [json.loads(line) for line in (project / "rejects.jsonl").read_text().splitlines()]
    unanswered = rejects[0]
    assert unanswered["_trainkit_reject"]["position"] == "chat.jsonl:line 5"
    assert unanswered["id"] == "chatcmpl-9xQ1" and len(unanswered["messages"]) == 2
    unanswered["messages"].append({"role": "assistant", "content": "12, since 12 * 12 = 144."})
    (project / "fixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejects))
    again = run("import", "--format", "chat", "fixed.jsonl")
    assert again.stdout == "read 2, imported 1, duplicates 1, rejected 0\n", again.output
    fixed = stored()["fixed.jsonl:line 1"]
    assert fixed.inputs == {"question": "What is the square root of 144?"}
    assert fixed.metadata == {"id": "chatcmpl-9xQ1", "system": TUTOR}


def test_plain_jsonl_is_unchanged_and_chat_has_no_extension_of_its_own(project):
    """`.jsonl` stays the jsonl format; chat is chosen by --format and listed by name alone."""
    plain = run("import", "chat.jsonl", "--dry-run")
    # read as plain JSONL, a chat log has none of the task's fields: the import stops before storing anything
    assert plain.exit_code == 1
    assert plain.stderr.startswith("Error: chat.jsonl: most records have none of the task's fields")
    unknown = run("import", "chat.jsonl", "--format", "parquet")
    assert unknown.exit_code == 1
    assert "known formats: chat, csv (.csv), json (.json), jsonl (.jsonl, .ndjson), traces, yaml" in unknown.stderr


def test_chat_fields_are_renamed_with_map_for_a_task_of_other_names(tmp_path):
    (tmp_path / "trainkit.toml").write_text('default_task = "support"\n\n[tasks.support]\n'
                                            'signature = "message -> reply"\n')
    tk.open().close()
    (tmp_path / "log.jsonl").write_text(json.dumps({"messages": [
        {"role": "system", "content": "You answer for Acme support."},
        {"role": "user", "content": [{"type": "text", "text": "Where is my order?"},
                                     {"type": "text", "text": "It is order 1182."}]},
        {"role": "assistant", "content": "Order 1182 ships tomorrow."}]}) + "\n")
    result = run("import", "--format", "chat", "log.jsonl", "--map", "inputs.message=inputs.question",
                 "--map", "outputs.reply=outputs.answer")
    assert result.stdout == "read 1, imported 1, duplicates 0, rejected 0\n", result.output
    (example,) = stored().values()
    assert example.task == "support"
    assert example.inputs == {"message": "Where is my order?\nIt is order 1182."}
    assert example.outputs == {"reply": "Order 1182 ships tomorrow."}
    assert example.metadata == {"system": "You answer for Acme support."}


def test_chat_records_that_are_not_conversations_are_rejected_one_by_one(project):
    tmp_path = project
    (tmp_path / "odd.jsonl").write_text("\n".join([
        json.dumps({"prompt": "What is 2 + 2?", "completion": "4"}),
        json.dumps({"messages": [{"role": "system", "content": "Be brief."}]}),
        json.dumps({"messages": ["hello"]}),
        '{"messages": [{"role": "user", "content": "cut',
    ]))
    result = run("import", "--format", "chat", "odd.jsonl")
    assert result.exit_code == EXIT_SOME_REJECTED
    assert result.stdout == "read 4, imported 0, duplicates 0, rejected 4\n"
    problems = result.stderr.splitlines()
    assert problems[0].startswith("odd.jsonl:line 1: no 'messages' list; a chat record is {\"messages\": ")
    assert problems[1] == "odd.jsonl:line 2: no user message, so there is no input"
    assert problems[2].startswith("odd.jsonl:line 3: messages.0 is not a message with a 'role'")
    assert problems[3].startswith("odd.jsonl:line 4: not valid JSON") and "cut short" in problems[3]


def test_chat_import_from_python(store_url, tmp_path):
    (tmp_path / "trainkit.toml").write_text(QA_TOML)
    rejected = []
    with tk.open(store_url) as kit:
        report = kit.import_files([DATA / "openai_chat.jsonl"], format="chat", labels={"domain": "tutoring"},
                                  on_reject=lambda position, record, reasons: rejected.append((position, reasons)))
        assert (report.read, report.imported, report.duplicates, report.rejected) == (6, 4, 0, 2)
        questions = {ex.inputs["question"]: ex for ex in kit.examples(status="accepted")}
    assert set(questions) == {"What is 12 * 7?", "And 2x + 3 = 10?", "What does this chart show?",
                              "Do I need an umbrella in Paris today?"}
    assert questions["What is 12 * 7?"].domain == "tutoring" and questions["And 2x + 3 = 10?"].domain == "math"
    assert [position.rsplit(":", 1)[1] for position, _ in rejected] == ["line 5", "line 6"]


@pytest.mark.parametrize(("messages", "outputs", "metadata"), [
    # a legacy function call with arguments that are not JSON (kept as written), and the function's result after it
    ([{"role": "user", "content": "q"},
      {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": "{not json"}},
      {"role": "function", "name": "lookup", "content": "r"}],
     {"tool_calls": [{"name": "lookup", "arguments": "{not json"}]},
     {"after_reply": [{"role": "function", "name": "lookup", "content": "r"}]}),
    # a refusal is the reply's text
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}],
     {"answer": "No."}, None),
    # the API's refusal field, and the other fields of the two messages, kept
    ([{"role": "user", "content": "q", "name": "kim"},
      {"role": "assistant", "content": None, "refusal": "I cannot help with that.", "weight": 1}],
     {"answer": "I cannot help with that."},
     {"input_message": {"name": "kim"}, "reply_message": {"refusal": "I cannot help with that.", "weight": 1}}),
    # an empty content string beside the refusal field (as some SDKs write it): the refusal is the answer
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "refusal": "No."}],
     {"answer": "No."}, {"reply_message": {"refusal": "No."}}),
    # an empty reply stays empty, for validation to reject
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": None}], {"answer": ""}, None),
])
def test_chat_reply_shapes(messages, outputs, metadata):
    from dspy_trainkit_chat.conversation import to_example_record

    record = to_example_record({"messages": messages})
    assert record["inputs"] == {"question": "q"} and record["outputs"] == outputs
    assert record.get("metadata") == metadata


def test_a_record_field_named_like_the_chat_context_is_kept_beside_it():
    from dspy_trainkit_chat.conversation import to_example_record

    record = to_example_record({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "q"},
                                             {"role": "assistant", "content": "a"}],
                                "system": "from the log", "metadata": {"team": "support"}})
    assert record["metadata"] == {"team": "support", "record_system": "from the log", "system": "S"}
