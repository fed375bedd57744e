"""Example, Finding and Event: validation of user-supplied fields, content hashing, immutability."""

from __future__ import annotations

import os
import uuid

import attrs
import pytest

from dspy_trainkit import Event, Example, Finding, ValidationError
from dspy_trainkit.ids import new_id


def make(**changes) -> Example:
    return Example(**{"task": "qa", "inputs": {"question": "2+2?"}, "outputs": {"answer": "4"}, **changes})


@pytest.mark.parametrize(("changes", "names"), [
    ({"task": ""}, "task"),
    ({"task": "has space"}, "task"),
    ({"inputs": ["question"]}, "inputs"),
    ({"inputs": {"not an identifier": 1}}, "inputs"),
    ({"outputs": {"question": "dup"}}, "outputs"),
    ({"source": "scraped"}, "source"),
    ({"status": "approved"}, "status"),
    ({"scores": {"accuracy": 1.5}}, "scores.accuracy"),
    ({"scores": {"accuracy": True}}, "scores.accuracy"),
    ({"quality": -0.1}, "quality"),
    ({"domain": "  "}, "domain"),
    ({"difficulty": 3}, "difficulty"),
    ({"metadata": "x"}, "metadata"),
])
def test_bad_fields_are_rejected_naming_the_field(changes, names):
    with pytest.raises(ValidationError) as err:
        make(**changes)
    assert str(err.value).startswith(names)


def test_content_hash_ignores_outer_whitespace_newline_style_and_key_order():
    a = make(inputs={"question": "2+2?", "context": "line1\r\nline2"})
    b = make(inputs={"context": "line1\nline2  ", "question": " 2+2?"})
    assert a.content_hash == b.content_hash
    assert a.id != b.id


def test_content_hash_treats_scalars_by_their_text_so_typeless_formats_round_trip():
    assert make(outputs={"answer": 4}).content_hash == make(outputs={"answer": "4"}).content_hash
    assert make(outputs={"answer": True}).content_hash == make(outputs={"answer": "true"}).content_hash
    assert make(outputs={"answer": None}).content_hash == make(outputs={"answer": ""}).content_hash
    assert make(outputs={"answer": 4}).content_hash != make(outputs={"answer": "4.0"}).content_hash


def test_content_hash_depends_on_task_inputs_and_outputs_only():
    base = make()
    assert make(outputs={"answer": "5"}).content_hash != base.content_hash
    assert make(task="other").content_hash != base.content_hash
    assert make(domain="math", status="accepted", quality=0.9).content_hash == base.content_hash


def test_evolve_recomputes_hash_and_moves_updated_at():
    ex = make(created_at=100.0)
    changed = ex.evolve(outputs={"answer": "four"})
    assert changed.content_hash != ex.content_hash
    assert changed.updated_at > ex.updated_at == 100.0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ex.task = "x"


def test_non_json_values_are_reported():
    with pytest.raises(ValidationError, match="JSON"):
        make(inputs={"question": object()}).content_hash  # noqa: B018


def test_dict_round_trip_and_unknown_keys():
    ex = make(findings=[Finding(severity="warning", code="c", message="m", field="outputs.answer")],
              scores={"accuracy": 0.5}, quality=0.5)
    data = ex.to_dict()
    again = Example.from_dict(data)
    assert again == ex and again.content_hash == data["content_hash"]
    with pytest.raises(ValidationError, match="colour"):
        Example.from_dict({**data, "colour": "red"})
    with pytest.raises(ValidationError, match="inputs"):
        Example.from_dict({"task": "qa"})


def test_finding_severity_is_checked():
    with pytest.raises(ValidationError, match="severity"):
        Finding(severity="fatal", code="x", message="y")


def test_ids_are_unique_time_ordered_uuid7():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert ids[0][12] == "7" and len(ids[0]) == 32
    assert ids == sorted(ids)  # monotonic within a millisecond too
    assert uuid.UUID(ids[0]).version == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_its_own_random_bits_for_ids():
    """Ids take their random bits from a pool drawn from the OS at once: a child forked with the parent's pool
    would make the parent's next ids."""
    new_id()  # the pool holds random values now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    mine = new_id()
    assert child[13:] != mine[13:] and child[16:] != mine[16:]  # (the first 12 digits are the millisecond)


def test_event_defaults():
    event = Event(kind="added", example_ids=["a", "b"])
    assert event.example_ids == ("a", "b") and event.actor == "trainkit"
    assert event.to_dict()["example_ids"] == ["a", "b"]


def test_with_verdict_keeps_content_and_hash_and_checks_status():
    ex = make(scores={"a": 0.1})
    decided = ex.with_verdict(status="accepted", findings=[], quality=0.5, scores={"a": 0.5},
                              provenance={"scorers": {"a": "p"}})
    assert decided.content_hash == ex.content_hash == make().content_hash
    assert (decided.status, decided.quality, decided.scores, decided.id) == ("accepted", 0.5, {"a": 0.5}, ex.id)
    assert decided.inputs == ex.inputs and ex.status == "candidate"
    with pytest.raises(ValidationError, match="status"):
        ex.with_verdict(status="great", findings=[], quality=None, scores={}, provenance={})
