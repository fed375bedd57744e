"""Curation: status decisions, edits, re-scoring, the audit trail, review, reports (API and CLI)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit import hookimpl, load_settings
from dspy_trainkit.cli.main import cli
from dspy_trainkit.store.where import parse_all


class AnswerLength:
    """A scorer whose score we control: len(answer) / 10."""

    version = 1

    @hookimpl
    def score(self, examples, context):
        return {i: {"length": min(1.0, len(str(ex.outputs.get("answer", ""))) / 10)}
                for i, ex in enumerate(examples)}


def open_kit(store_url, tmp_path, toml="", plugins=()):
    (tmp_path / "trainkit.toml").write_text(toml)
    return tk.open(store_url, settings=load_settings(env={}, cwd=tmp_path), plugins=plugins,
                   disable=[p for p in QUALITY_PLUGINS if p in _installed()])


def _installed():
    from dspy_trainkit.plugin_manager import discover_entry_points

    return {ep.name for ep in discover_entry_points()}


def test_status_changes_are_batched_audited_and_need_a_reason_to_reject(store_url, tmp_path):
    with open_kit(store_url, tmp_path, "[tasks.qa]\ncollection_mode = 'manual'\n") as kit:
        kit.add_many([qa(f"q{i}", topic="geometry" if i < 3 else "algebra") for i in range(5)])
        with pytest.raises(tk.ValidationError, match="reason"):
            kit.set_status("rejected", where=parse_all(["topic=geometry"]))
        assert kit.set_status("rejected", where=parse_all(["topic=geometry"]), actor="ann", reason="off-topic") == 3
        assert kit.set_status("rejected", where=parse_all(["topic=geometry"]), actor="ann", reason="again") == 0
        assert kit.count(status="rejected") == 3 and kit.count(status="candidate") == 2
        event = [e for e in kit.events() if e.kind == "status_changed"][-1]
        assert (event.actor, event.reason, len(event.example_ids)) == ("ann", "off-topic", 3)
        assert all(change == {"status": ["candidate", "rejected"]} for change in event.details["changes"].values())


def test_api_status_change_needs_a_selection_and_takes_plain_where_strings_and_ids(tmp_path):
    with open_kit(f"sqlite:///{tmp_path}/s.db", tmp_path, "[tasks.qa]\ncollection_mode = 'manual'\n") as kit:
        stored = kit.add_many([qa(f"q{i}", topic="geometry" if i < 3 else "algebra") for i in range(5)])
        with pytest.raises(tk.ValidationError, match="all=True"):
            kit.set_status("archived")
        assert kit.count(status="archived") == 0
        assert kit.set_status("archived", where="topic=geometry") == 3
        first_algebra = next(kit.examples(topic="algebra")).id
        assert kit.set_status("accepted", ids=first_algebra) == 1  # one id as a plain string
        assert kit.set_status("accepted", ids=[first_algebra]) == 0  # a list works, and it is accepted already
        assert kit.count(where=["topic=algebra", "status=candidate"]) == 1
        with pytest.raises(tk.TrainkitError, match="unknown field"):
            kit.count(where="colour=red")
        assert kit.set_status("candidate", all=True) == 4
        assert stored.stored == 5


def test_edit_revalidates_rescores_keeps_status_and_records_before_after(store_url, tmp_path):
    with open_kit(store_url, tmp_path, "", [("length", AnswerLength())]) as kit:
        ex = kit.add(qa("q", "ab"))
        assert ex.scores == {"length": 0.2} and ex.status == "accepted"
        edited = kit.edit(ex.id, outputs={"answer": "a longer answer"}, actor="bob", reason="fix")
        assert edited.scores == {"length": 1.0} and edited.status == "accepted" and edited.id == ex.id
        assert edited.content_hash != ex.content_hash
        empty = kit.edit(ex.id, outputs={"answer": ""}, actor="bob", reason="oops", status="candidate")
        assert empty.status == "candidate" and [f.code for f in empty.findings] == ["empty-value"]
        event = [e for e in kit.events(example_id=ex.id) if e.kind == "edited"][0]
        assert event.details["changes"][ex.id]["outputs"] == [{"answer": "ab"}, {"answer": "a longer answer"}]
        kit.edit(ex.id, outputs={"answer": "fixed again"}, status="accepted")
        broken = kit.edit(ex.id, outputs={"answer": "  "}, actor="bob", reason="slip")  # no status given
        assert broken.status == "rejected" and "empty-value" in [f.code for f in broken.findings]
        assert kit.count(status="accepted") == 0  # a broken edit does not stay in the training data
        with pytest.raises(tk.ValidationError, match="cannot be edited"):
            kit.edit(ex.id, status_reason="x")


def test_an_edit_that_makes_a_duplicate_is_refused_and_changes_nothing(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        a, b = kit.add(qa("a")), kit.add(qa("b"))
        with pytest.raises(tk.StoreError, match=f"duplicate of example {a.id}"):
            kit.edit(b.id, inputs={"question": "a"})
        assert kit.get(b.id).inputs == {"question": "b"}


def test_an_edit_with_a_value_the_store_cannot_hold_is_refused_saying_where(store_url, tmp_path):
    """It was a TypeError from the store's JSON writer (a stranger's finding); now the same error as an import's."""
    with open_kit(store_url, tmp_path) as kit:
        ex = kit.add(qa("q"))
        with pytest.raises(tk.ValidationError, match=r"^metadata\.n: the integer 2{70} is wider than 64 bits"):
            kit.edit(ex.id, metadata={"n": int("2" * 70)})
        with pytest.raises(tk.ValidationError, match=r"^outputs\.answer\[0\]: NaN is not a JSON number"):
            kit.edit(ex.id, outputs={"answer": [float("nan")]})
        # a lone surrogate (a byte that is not UTF-8 on a command line becomes one): the store's TypeError or
        # UnicodeEncodeError before
        with pytest.raises(tk.ValidationError, match=r"^metadata\.s: holds '\\ud800', a lone surrogate"):
            kit.edit(ex.id, metadata={"s": "\ud800"})
        with pytest.raises(tk.ValidationError, match=r"^domain: holds '\\udcff', a lone surrogate"):
            kit.edit(ex.id, domain="d\udcff")
        with pytest.raises(tk.ValidationError, match=r"^metadata\.o: an object value is not JSON data"):  # not "a"
            kit.edit(ex.id, metadata={"o": object()})
        assert kit.get(ex.id).metadata == {} and [e.kind for e in kit.events(example_id=ex.id)] == ["added"]


def test_rescore_uses_todays_plugins_and_keeps_status(store_url, tmp_path):
    with open_kit(store_url, tmp_path) as kit:
        kit.add_many([qa("x", "abcde"), qa("y", "abcdefghij")])
        assert {ex.quality for ex in kit.examples()} == {None}
    with open_kit(store_url, tmp_path, "", [("length", AnswerLength())]) as kit:
        assert kit.rescore(actor="cron") == 2
        assert sorted(ex.quality for ex in kit.examples()) == [0.5, 1.0]
        assert {ex.status for ex in kit.examples()} == {"accepted"}
        assert kit.rescore() == 0  # nothing changed the second time
        assert kit.events().__next__() is not None


def run(*args, env=None, input=None):
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_DISABLE_PLUGINS", ",".join(p for p in QUALITY_PLUGINS if p in _installed()))
    assert run("init", "--task", "qa", "--signature", "question -> answer").exit_code == 0
    text = (tmp_path / "trainkit.toml").read_text().replace('collection_mode = "automatic"',
                                                            'collection_mode = "manual"')
    (tmp_path / "trainkit.toml").write_text(text)
    for i in range(3):
        assert run("add", "-i", f"question=q{i}?", "-o", f"answer=a{i}", "--topic", f"t{i}").exit_code == 0
    return tmp_path


def test_cli_bulk_accept_reject_archive(project):
    assert run("accept").exit_code == 2  # no selection: refuses to touch everything silently
    result = run("accept", "--where", "topic=t0", "--json")
    assert json.loads(result.output) == {"status": "accepted", "changed": 1}
    assert run("reject", "--where", "topic=t1").exit_code == 2  # no reason
    assert "1 example now rejected" in run("reject", "--where", "topic=t1", "--reason", "dull").output
    assert "1 example now archived" in run("archive", "--all", "--status", "candidate").output
    stats = json.loads(run("stats", "--json").output)
    assert stats["by_status"] == {"accepted": 1, "archived": 1, "rejected": 1}
    assert run("accept", "--where", "colour=red").exit_code == 1


def test_scripted_review_accepts_rejects_and_edits_with_audit_trail(project, tmp_path, monkeypatch):
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('answer: a1', 'answer: A-ONE'))\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    result = run("review", "--actor", "rita", input="a\ne\na\nr\nnot a question\n")
    assert result.exit_code == 0, result.output
    assert "reviewed: accepted 2, rejected 1, edited 1, skipped 0" in result.output
    examples = {ex["inputs"]["question"]: ex for ex in json.loads(run("list", "--json").output)}
    assert examples["q0?"]["status"] == "accepted"
    assert examples["q1?"]["status"] == "accepted" and examples["q1?"]["outputs"] == {"answer": "A-ONE"}
    assert examples["q2?"]["status"] == "rejected"
    events = json.loads(run("log", "--json").output)
    edits = [e for e in events if e["kind"] == "edited"]
    assert len(edits) == 1 and edits[0]["actor"] == "rita"
    change = edits[0]["details"]["changes"][examples["q1?"]["id"]]
    assert change["outputs"] == [{"answer": "a1"}, {"answer": "A-ONE"}]
    rejected = [e for e in events if e["kind"] == "status_changed" and e["reason"] == "not a question"]
    assert rejected and rejected[0]["actor"] == "rita"
    text = run("log", "--id", examples["q1?"]["id"]).output
    assert "outputs: {'answer': 'a1'} -> {'answer': 'A-ONE'}" in text
    assert run("review").output.strip() == "nothing to review"


def test_review_quit_and_unknown_keys(project):
    result = run("review", input="x\ns\nq\n")
    assert "unknown key 'x'" in result.output and "reviewed: accepted 0, rejected 0, edited 0, skipped 1" in \
        result.output


def test_log_since_and_bad_since(project):
    assert len(json.loads(run("log", "--json", "--since", "1h").output)) == 3
    assert json.loads(run("log", "--json", "--since", "2999-01-01").output) == []
    assert run("log", "--since", "yesterday-ish").exit_code == 2


def test_report_quality_text_json_and_self_contained_html(project, tmp_path):
    os.environ.pop("TRAINKIT_DISABLE_PLUGINS", None)
    run("accept", "--all")
    page = tmp_path / "report.html"
    result = run("report", "quality", "--html", str(page), "--json")
    summary = json.loads(result.output)
    assert summary["examples"] == 3 and summary["by_status"] == {"accepted": 3}
    assert [c["topic"] for c in summary["cells"]] == ["t0", "t1", "t2"]
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "t1" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_stats_collection_counts_duplicates_and_reasons(project):
    run("add", "-i", "question=q0?", "-o", "answer=a0")  # a duplicate
    run("add", "-i", "question=q9?", "-o", "answer=")  # rejected: empty answer
    rows = json.loads(run("stats", "--collection", "--json").output)
    assert rows == [{"task": "qa", "source": "manual", "received": 5, "stored": 4, "accepted": 0, "candidates": 3,
                     "rejected": 1, "archived": 0, "duplicates": 1, "invalid": 0,
                     "rejected_by_reason": {"empty-value": 1}}]


def test_an_edit_keeps_the_status_unless_the_rules_now_reject_it(tmp_path):
    with open_kit(f"sqlite:///{tmp_path}/e.db", tmp_path, "[tasks.qa]\ncollection_mode = 'manual'\n") as kit:
        waiting = kit.add(qa("q1", "first"))
        assert waiting.status == "candidate"
        assert kit.edit(waiting.id, outputs={"answer": "better"}).status == "candidate"  # still for review
        broken = kit.edit(waiting.id, outputs={"answer": ""})
        assert broken.status == "rejected" and "empty-value" in [f.code for f in broken.findings]
        assert kit.edit(waiting.id, outputs={"answer": "fixed"}, status="accepted").status == "accepted"
