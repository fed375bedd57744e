"""Marking examples used through the `last_used` table (migration 0010_last_used), and the partial examples that
column-limited reads (exports, trainsets) build, on both backends."""

from __future__ import annotations

import copy
import json
import pickle

import attrs
import pytest
from dspy_trainkit_sqlstore import schema
from dspy_trainkit_sqlstore.backend import example_row
from helpers import store_after_migrations

import dspy_trainkit as tk
from dspy_trainkit.files.formats import FormatError
from dspy_trainkit.lifecycle import freshness
from dspy_trainkit.store import ExampleQuery

BEFORE_LAST_USED = [name for name, _ in schema.MIGRATIONS].index("0010_last_used")


def _add(kit: tk.Kit, n: int = 3) -> list[tk.Example]:
    return [kit.add(task="qa", inputs={"question": f"q{i}?"}, outputs={"answer": f"a{i}"}) for i in range(n)]


def _column(kit: tk.Kit, example_id: str) -> tuple[float | None, float]:
    """`(last_used_at, updated_at)` as the examples row itself holds them."""
    database = kit.store.db
    return database.execute_sql(f"SELECT last_used_at, updated_at FROM examples WHERE id = {database.param}",
                                [example_id]).fetchone()


def test_a_trainset_marks_use_in_the_last_used_table_without_rewriting_the_examples(kit):
    added = _add(kit)
    rows_before = {ex.id: _column(kit, ex.id) for ex in added}
    kit.trainset("qa", status=None, signature="question -> answer")
    (used,) = [e for e in kit.events() if e.kind == "used"]
    for ex in added:
        assert _column(kit, ex.id) == rows_before[ex.id] == (None, ex.updated_at)  # the row was not written
        assert kit.get(ex.id).last_used_at == used.time  # readers see the use
    assert [ex.last_used_at for ex in kit.store.iter_examples(ExampleQuery())] == [used.time] * 3
    assert {row[5] for row in kit.store.iter_times(ExampleQuery())} == {used.time}  # freshness reads it
    assert freshness.report(kit, status=None)["tasks"]["qa"]["never_used"] == 0
    database = kit.store.db
    assert database.execute_sql("SELECT COUNT(*) FROM last_used").fetchone()[0] == 3


def test_a_later_use_replaces_the_earlier_one(kit):
    first, second, _ = _add(kit)
    kit.store.mark_used([first.id, second.id], 100.0, tk.Event(kind="used", example_ids=[first.id, second.id]))
    kit.store.mark_used([second.id], 200.0, tk.Event(kind="used", example_ids=[second.id]))
    assert (kit.get(first.id).last_used_at, kit.get(second.id).last_used_at) == (100.0, 200.0)
    assert [len(e.example_ids) for e in kit.events(example_id=second.id) if e.kind == "used"] == [2, 1]


def test_an_edit_stores_the_examples_last_used_at_as_it_did(kit):
    """`update_examples` writes the whole example, `last_used_at` included, also over a mark in the table."""
    ex, other, _ = _add(kit)
    kit.store.mark_used([ex.id, other.id], 100.0, tk.Event(kind="used", example_ids=[ex.id, other.id]))
    kit.store.update_examples([attrs.evolve(kit.get(ex.id), last_used_at=None),
                               attrs.evolve(kit.get(other.id), last_used_at=50.0)], tk.Event(kind="updated"))
    assert kit.get(ex.id).last_used_at is None
    assert kit.get(other.id).last_used_at == 50.0
    kit.store.mark_used([ex.id], 300.0, tk.Event(kind="used", example_ids=[ex.id]))
    assert kit.get(ex.id).last_used_at == 300.0


def _store_before_the_table(url: str) -> list[tk.Example]:
    """A store as trainkit left it before migration 0010: marks in `examples.last_used_at`."""
    examples = [tk.Example(task="qa", inputs={"question": f"q{n}?"}, outputs={"answer": "a"},
                           last_used_at=1000.0 + n if n else None) for n in range(3)]
    store_after_migrations(url, BEFORE_LAST_USED, lambda database: schema.insert_rows(
        database, "examples", schema.EXAMPLE_COLUMNS, [example_row(ex) for ex in examples]))
    return examples


def test_marks_made_before_the_migration_are_still_read(store_url):
    examples = _store_before_the_table(store_url)
    with tk.open(store_url) as kit:
        assert "0010_last_used" in kit.store.applied_migrations()
        assert [kit.get(ex.id).last_used_at for ex in examples] == [None, 1001.0, 1002.0]
        kit.store.mark_used([examples[1].id], 2000.0, tk.Event(kind="used", example_ids=[examples[1].id]))
        assert [kit.get(ex.id).last_used_at for ex in examples] == [None, 2000.0, 1002.0]


def test_partial_examples_read_and_behave_as_examples(kit):
    (stored,) = _add(kit, 1)
    full = kit.get(stored.id)
    (partial,) = kit.store.iter_example_columns(ExampleQuery(), ("task", "inputs", "outputs"))
    assert isinstance(partial, tk.Example)
    assert (partial.id, partial.task, partial.inputs, partial.outputs) == (full.id, "qa", full.inputs, full.outputs)
    assert (partial.status, partial.scores, partial.findings, partial.last_used_at) == ("candidate", {}, (), None)
    assert partial.content_hash == full.content_hash
    assert partial.to_dict()["status"] == "candidate" and repr(partial).startswith("Example(task='qa'")
    edited = partial.evolve(status="accepted", quality=0.5)
    assert (edited.status, edited.quality, edited.inputs) == ("accepted", 0.5, full.inputs)
    for made in (pickle.loads(pickle.dumps(partial)), copy.copy(partial), copy.deepcopy(partial)):
        assert type(made) is tk.Example and made.to_dict() == partial.to_dict()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        partial.status = "accepted"  # type: ignore[misc]


def test_dspy_export_checks_field_names_when_they_change(kit, tmp_path):
    """The writer skips the field-name check for an example shaped like the one before it; a new shape, even
    after others, is still checked."""
    kit.add(task="free", inputs={"question": "q1"}, outputs={"answer": "a1"})
    kit.add(task="free", inputs={"question": "q2", "context": "c"}, outputs={"answer": "a2"})
    kit.add(task="free", inputs={"question": "q3"}, outputs={"answer": "a3"})
    kit.export(tmp_path / "free.dspy.json", task="free", status=None)
    d = json.loads((tmp_path / "free.dspy.json").read_text())
    assert d["input_keys"] == ["question", "context"] and len(d["examples"]) == 3
    kit.add(task="other", inputs={"question": "q"}, outputs={"answer": "a"})
    with pytest.raises(FormatError, match="one task per file"):
        kit.export(tmp_path / "two.dspy.json", format="dspy", status=None)
    kit.add(task="free", inputs={"answer": "q4"}, outputs={"question": "a4"})  # names swapped: a clash
    with pytest.raises(FormatError, match="inputs in some examples and outputs in others"):
        kit.export(tmp_path / "clash.dspy.json", task="free", status=None)


def test_a_newer_mark_in_the_column_wins_over_an_older_row(kit):
    """An older trainkit still marking a migrated store writes `examples.last_used_at`: the later of the column and
    the table's row is what readers see, whichever holds it."""
    first, second, _ = _add(kit)
    kit.store.mark_used([first.id, second.id], 2000.0, tk.Event(kind="used", example_ids=[first.id, second.id]))
    database = kit.store.db
    for example_id, when in ((first.id, 3000.0), (second.id, 1000.0)):
        database.execute_sql(f"UPDATE examples SET last_used_at = {database.param} WHERE id = {database.param}",
                             [when, example_id])
    assert (kit.get(first.id).last_used_at, kit.get(second.id).last_used_at) == (3000.0, 2000.0)


def test_trainsets_marking_the_same_examples_at_once_do_not_deadlock(store_url):
    """Each process marks its examples in its own order; on PostgreSQL the rows are locked in id order by all, so
    concurrent marks wait for each other instead of deadlocking (without the order, about half of three concurrent
    trainsets failed with `deadlock detected`)."""
    import random
    import threading

    with tk.open(store_url) as kit:
        kit.add_many([{"task": "qa", "inputs": {"question": f"q{i}?"}, "outputs": {"answer": "a"}}
                      for i in range(3000)])
        ids = list(kit.store.iter_ids(ExampleQuery(task="qa")))
    failures: list[BaseException] = []

    def mark(seed: int) -> None:
        order = list(ids)
        random.Random(seed).shuffle(order)
        try:
            with tk.open(store_url) as other:
                for round_ in range(4):
                    other.store.mark_used(order, 100.0 * seed + round_, tk.Event(kind="used", example_ids=order))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=mark, args=(seed,)) for seed in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_partial_examples_of_the_same_columns_stay_equal_whatever_else_was_read(kit):
    """One class per column set for the process (a bounded cache made a new class, unequal to the old one, once
    more than 32 other column sets had been read)."""
    from dspy_trainkit_sqlstore.backend import _partial_class

    fields = ("status", "source", "domain", "topic", "difficulty", "quality", "metadata", "provenance")
    first = _partial_class(("status", "source"))
    for n in range(1, 41):
        _partial_class(tuple(field for k, field in enumerate(fields) if n & (1 << k)))
    assert _partial_class(("status", "source")) is first


def test_a_store_opened_without_migrating_reads_its_marks_from_the_column(store_url):
    """`tk.open(migrate=False)` on a store whose migration 0010 is pending (what `trainkit backup` and a read-only
    store get) reads every example and its marks from the column; after `migrate()` the table is read."""
    examples = _store_before_the_table(store_url)
    with tk.open(store_url, migrate=False) as kit:
        assert kit.store.pending_migrations() == ["0010_last_used"]
        assert [kit.get(ex.id).last_used_at for ex in examples] == [None, 1001.0, 1002.0]
        assert sorted(ex.last_used_at or 0 for ex in kit.store.iter_examples(ExampleQuery())) == [0, 1001.0, 1002.0]
        assert sorted(row[5] or 0 for row in kit.store.iter_times(ExampleQuery())) == [0, 1001.0, 1002.0]
        kit.store.migrate()
        kit.store.mark_used([examples[0].id], 3000.0, tk.Event(kind="used", example_ids=[examples[0].id]))
        assert kit.get(examples[0].id).last_used_at == 3000.0


def test_backup_of_a_store_with_a_pending_migration_does_not_apply_it(tmp_path, monkeypatch):
    """A backup taken before an upgrade (what operations.md tells you to do) is of the store as it was: `trainkit
    backup` does not migrate."""
    from helpers import run_checked

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _store_before_the_table(url)
    result = run_checked("--db", url, "backup", str(tmp_path / "before-upgrade.tgz"))
    assert result.exit_code == 0, result.output
    with tk.open(url, migrate=False) as kit:
        assert kit.store.pending_migrations() == ["0010_last_used"]


def test_a_trainset_whose_conversion_fails_marks_nothing(kit):
    """Examples are marked used once converted: a trainset that raises (a signature the examples do not fit) leaves
    no `used` event and no mark."""
    from dspy_trainkit.errors import ConversionError

    added = _add(kit)
    with pytest.raises(ConversionError):
        kit.trainset("qa", status=None, signature="question, context -> answer")
    assert [e for e in kit.events() if e.kind == "used"] == []
    assert [kit.get(ex.id).last_used_at for ex in added] == [None, None, None]
    kit.trainset("qa", status=None, signature="question -> answer")
    assert all(kit.get(ex.id).last_used_at is not None for ex in added)
