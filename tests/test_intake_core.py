"""The slimmer per-record core of intake: `Example.from_record` builds what `from_dict` builds (and refuses
what it refuses, with the same message), and `decide` resolves settings and scorer versions once per batch."""

from __future__ import annotations

import hashlib

import attrs
import orjson
import pytest

import dspy_trainkit as tk
from dspy_trainkit import assessment
from dspy_trainkit.errors import ValidationError
from dspy_trainkit.models import Example
from dspy_trainkit.settings import load_settings

GOOD = [
    {"task": "qa", "inputs": {"question": "q"}, "outputs": {"answer": "a"}},
    {"task": "qa", "inputs": {"question": "q"}, "outputs": {"answer": "a"}, "domain": "math", "topic": "sums",
     "difficulty": "easy", "source": "imported", "provenance": {"origin": "f.jsonl:line 1"},
     "metadata": {"x": 1}},
    {"task": "qa", "inputs": {"question": "q"}},
    {"task": "qa", "inputs": {"question": "q"}, "outputs": {"answer": "a"}, "id": "abc", "status": "accepted"},
]
BAD = [
    {"task": "no spaces allowed", "inputs": {"question": "q"}},
    {"task": "qa", "inputs": {"question": "q"}, "outputs": {"question": "a"}},
    {"task": "qa", "inputs": {"bad name": "q"}},
    {"task": "qa", "inputs": {"question": "q"}, "domain": " "},
    {"task": "qa", "inputs": {"question": "q"}, "domain": ["math"]},
    {"task": ["qa"], "inputs": {"question": "q"}},
    {"task": "qa", "inputs": {"question": "q"}, "source": "elsewhere"},
    {"task": "qa", "inputs": ["question"]},
    {"task": "qa", "inputs": {"question": "q"}, "metadata": "text"},
    {"task": "qa", "inputs": {"question": "q"}, "unknown": 1},
    {"inputs": {"question": "q"}},
]
_VARYING = ("id", "created_at", "updated_at")


def _same(a: Example, b: Example) -> None:
    assert {k: v for k, v in attrs.asdict(a, recurse=False).items() if k not in _VARYING} == {
        k: v for k, v in attrs.asdict(b, recurse=False).items() if k not in _VARYING}
    assert a.content_hash == b.content_hash
    assert a.created_at == a.updated_at


@pytest.mark.parametrize("record", GOOD)
def test_from_record_builds_what_from_dict_builds_first_and_later_time(record):
    for _ in range(2):  # the second time the task, labels and field names are known valid: the direct path
        _same(Example.from_record(record), Example.from_dict(record))
    if "id" in record:
        assert Example.from_record(record).id == record["id"]


def test_from_record_makes_new_ids_and_independent_copies():
    Example.from_record(GOOD[0])
    a, b = Example.from_record(GOOD[0]), Example.from_record(GOOD[0])
    assert a.id != b.id
    assert a.outputs is GOOD[0]["outputs"] is Example.from_dict(GOOD[0]).outputs  # as from_dict: no copy
    c, d = Example.from_record(GOOD[2]), Example.from_record(GOOD[2])  # a default is never shared
    assert c.outputs == {} and c.outputs is not d.outputs


@pytest.mark.parametrize("record", BAD)
def test_from_record_refuses_what_from_dict_refuses_with_its_message(record):
    for good in GOOD:  # known task, labels and names first, so a bad value is not hidden by the cache
        Example.from_record(good)
    with pytest.raises(ValidationError) as expected:
        Example.from_dict(record)
    with pytest.raises(ValidationError) as found:
        Example.from_record(record)
    assert str(found.value) == str(expected.value)


def test_decide_resolves_an_undeclared_task_once_per_batch(tmp_path, monkeypatch):
    (tmp_path / "trainkit.toml").write_text(f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n')
    with tk.open(settings=load_settings(tmp_path / "trainkit.toml", env={}), create=True) as kit:
        calls = []
        real = type(kit.settings).task
        monkeypatch.setattr(type(kit.settings), "task", lambda self, name: calls.append(name) or real(self, name))
        report = kit.add_many([{"task": "undeclared", "inputs": {"q": f"question {i}"},
                                "outputs": {"a": f"answer number {i}."}} for i in range(50)])
        assert report.stored == 50
        assert calls.count("undeclared") <= 3  # decide once, cap_synthetic and the like: not once per record
        stored = list(kit.examples(task="undeclared"))
    versions = {ex.provenance["scorers"]["coherence"]["plugin"] for ex in stored}
    assert versions == {"coherence"}
    assert stored[0].provenance["scorers"] is not stored[1].provenance["scorers"]


def test_batch_rules_give_the_same_verdicts_as_fresh_rules(tmp_path):
    toml = (f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n[tasks.qa]\nmin_quality = 0.5\n'
            '[tasks.qa.domains.hard]\nmin_quality = 0.9\n')
    (tmp_path / "trainkit.toml").write_text(toml)
    with tk.open(settings=load_settings(tmp_path / "trainkit.toml", env={}), create=True) as kit:
        rules = assessment.BatchRules(kit)
        for domain in (None, "hard", "easy", "hard"):
            ex = Example(task="qa", inputs={"q": "x"}, outputs={"a": "y"}, domain=domain)
            scores = {"coherence": (0.7, "coherence")}
            shared = assessment.decide(kit, ex, [], scores, rules=rules)
            fresh = assessment.decide(kit, ex, [], scores)
            assert (shared.status, shared.quality, shared.findings, shared.provenance) == (
                fresh.status, fresh.quality, fresh.findings, fresh.provenance)
            assert shared.status == ("rejected" if domain == "hard" else "accepted")


def test_with_verdict_copies_every_field_as_evolve_does():
    """with_verdict assigns each field by name (unrolled, for speed): a field added to Example and forgotten
    there would be missing from every judged example."""
    ex = Example.from_dict({**GOOD[1], "scores": {"a": 0.5}, "quality": 0.5, "last_used_at": 3.0})
    verdict = {"status": "accepted", "findings": [], "quality": 0.75, "scores": {"b": 0.75},
               "provenance": {"origin": "x"}}
    made = ex.with_verdict(**verdict)
    expected = attrs.evolve(ex, **{**verdict, "findings": ()}, updated_at=ex.updated_at)
    assert attrs.asdict(made, recurse=False) == attrs.asdict(expected, recurse=False)
    assert made.content_hash == ex.content_hash == expected.content_hash


@pytest.mark.parametrize("values", [
    {"q": "  plain  "}, {"q": "a\r\nb"}, {"q": "caf\u0065\u0301"}, {"q": 4}, {"q": None}, {"q": ["x ", {"y": 1.5}]},
    {1: "one"}, {"q": True}, {"q": {"deep": " v\r\n"}},
])
def test_content_hash_fast_path_normalises_as_the_general_one(values):
    from dspy_trainkit.models import _normalise_text, content_hash

    slow = {"task": "t", "inputs": _normalise_text(dict(values)), "outputs": _normalise_text({"a": "b "})}
    expected = hashlib.sha256(orjson.dumps(slow, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)).hexdigest()
    assert content_hash("t", values, {"a": "b "}) == expected


@pytest.mark.parametrize("scores", [{"a": 0.1}, {"a": 0.1, "b": 0.7, "c": 0.3333333}, {"x": 1.0, "y": 0.0}])
def test_weighted_quality_plain_mean_is_the_weighted_mean_with_weights_of_one(scores):
    ones = {d: 1.0 for d in scores}
    assert assessment.weighted_quality(scores, {}) == assessment.weighted_quality(scores, ones)
    assert assessment.weighted_quality(scores, {"unrelated": 5.0}) == assessment.weighted_quality(scores, ones)
    assert assessment.weighted_quality({}, {}) is None


@pytest.mark.parametrize(("line", "value"), [
    (b'{"n": 12345678901234567890123}', 12345678901234567890123),  # wide: kept exact
    (b'{"n": -9223372036854775809}', -9223372036854775809),
    (b'{"n": 1234567890, "m": 123456789}', 1234567890),  # 19 digits in all, none 19 long
    (b'{"n": 123456789012345678}', 123456789012345678),
    (b'{"n": 12345678901234567890.0}', 12345678901234567890.0),  # a float stays a float
])
def test_parse_json_keeps_wide_integers_exact_whatever_the_digit_count(line, value):
    from dspy_trainkit.json_values import parse_json

    parsed = parse_json(line)
    assert parsed["n"] == value and type(parsed["n"]) is type(value)
    assert parse_json(line.decode()) == parsed
