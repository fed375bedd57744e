"""Optimization-run tables and the runs half of `PeeweeStore` (a mixin): run records, per-example dev results,
random-search candidates, and the champion of each task.

A run row keeps the searchable columns (task, status, times, snapshot, optimizer, score) beside the whole
record as JSON, so new record fields need no migration. Results and candidates are rows of their own because
effectiveness analysis reads them per example across many runs. Saving a run replaces its results and
candidates in the same transaction, so a re-saved run never holds a mix of two versions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import peewee as pw

from dspy_trainkit.pluginkit import Event, ExampleQuery

from . import schema

RUN_COLUMNS = ("id", "task", "status", "created_at", "finished_at", "snapshot", "optimizer", "score", "promoted",
               "record")
RESULT_COLUMNS = ("run_id", "phase", "position", "example_id", "score", "prediction", "error")
CANDIDATE_COLUMNS = ("run_id", "position", "seed", "score", "demo_ids", "subscores")


def define_run_models(database: pw.Database) -> SimpleNamespace:
    """The `optimization_runs`, `optimization_results`, `optimization_candidates` and `champions` tables."""

    Base = schema.TableModel

    class RunRow(Base):
        id = pw.CharField(primary_key=True, max_length=32)
        task = pw.CharField()
        status = pw.CharField(max_length=16)
        created_at = pw.DoubleField()
        finished_at = pw.DoubleField(null=True)
        snapshot = pw.CharField(null=True)
        optimizer = pw.CharField(max_length=32)
        score = pw.DoubleField(null=True)
        promoted = pw.BooleanField(default=False)
        record = pw.TextField()

        class Meta:
            table_name = "optimization_runs"
            indexes = ((("task", "created_at"), False),)

    class ResultRow(Base):
        run_id = pw.CharField(max_length=32)
        phase = pw.CharField(max_length=16)
        position = pw.IntegerField()
        example_id = pw.CharField(max_length=32)
        score = pw.DoubleField()
        prediction = pw.TextField()
        error = pw.TextField(null=True)

        class Meta:
            table_name = "optimization_results"
            primary_key = pw.CompositeKey("run_id", "phase", "position")
            indexes = ((("example_id",), False),)

    class CandidateRow(Base):
        run_id = pw.CharField(max_length=32)
        position = pw.IntegerField()
        seed = pw.IntegerField()
        score = pw.DoubleField()
        demo_ids = pw.TextField()
        subscores = pw.TextField()

        class Meta:
            table_name = "optimization_candidates"
            primary_key = pw.CompositeKey("run_id", "position")

    class ChampionRow(Base):
        task = pw.CharField(primary_key=True)
        run_id = pw.CharField(max_length=32)
        since = pw.DoubleField()

        class Meta:
            table_name = "champions"

    return schema.bound(database, Run=RunRow, Result=ResultRow, Candidate=CandidateRow, Champion=ChampionRow)


def create_tables(models: SimpleNamespace) -> None:
    """Migration 0004_optimization_runs."""
    runs = define_run_models(models.Example._meta.database)
    for model in (runs.Run, runs.Result, runs.Candidate, runs.Champion):
        model.create_table(safe=True)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class RunStoreMixin:
    """Optimization-run methods of the Store interface for peewee stores; PeeweeStore inherits them."""

    db: pw.Database

    @property
    def _runs(self) -> SimpleNamespace:
        models = getattr(self, "_run_models", None)
        if models is None:
            models = self._run_models = define_run_models(self.db)
        return models

    def iter_qualities(self, query: ExampleQuery) -> Iterator[tuple[str | None, float | None]]:
        """`(domain, quality)` of the matching examples, streamed: two narrow columns instead of whole rows
        (benchmarks/readiness.py measures the difference)."""
        model = self.models.Example  # type: ignore[attr-defined]
        sql, params = self._where(model.select(model.domain, model.quality), query).sql()  # type: ignore[attr-defined]
        yield from self._stream(sql, params)  # type: ignore[attr-defined]

    def save_run(self, record: dict[str, Any], results: Sequence[dict[str, Any]] | None = None,
                 candidates: Sequence[dict[str, Any]] | None = None, event: Event | None = None) -> None:
        m = self._runs
        row = {"id": record["id"], "task": record["task"], "status": record["status"],
               "created_at": record["created_at"], "finished_at": record.get("finished_at"),
               "snapshot": record.get("snapshot"), "optimizer": record["optimizer"], "score": record.get("score"),
               "promoted": bool(record.get("promoted")), "record": _dumps(record)}
        with self._transaction():  # type: ignore[attr-defined]
            m.Run.delete().where(m.Run.id == record["id"]).execute()
            m.Run.insert(**row).execute()
            if results is not None:
                m.Result.delete().where(m.Result.run_id == record["id"]).execute()
                rows = [(record["id"], r["phase"], n, r["example_id"], float(r["score"]),
                         _dumps(r.get("prediction") or {}), r.get("error")) for n, r in enumerate(results)]
                schema.insert_rows(self.db, "optimization_results", RESULT_COLUMNS, rows)
            if candidates is not None:
                m.Candidate.delete().where(m.Candidate.run_id == record["id"]).execute()
                rows = [(record["id"], n, int(c["seed"]), float(c["score"]), _dumps(c.get("demo_ids") or []),
                         _dumps(c.get("subscores") or [])) for n, c in enumerate(candidates)]
                schema.insert_rows(self.db, "optimization_candidates", CANDIDATE_COLUMNS, rows)
            if event is not None:
                self._append_event(event)  # type: ignore[attr-defined]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        m = self._runs
        row = m.Run.select(m.Run.record).where(m.Run.id == run_id).tuples().first()
        return orjson.loads(row[0]) if row else None

    def list_runs(self, task: str | None = None) -> list[dict[str, Any]]:
        m = self._runs
        select = m.Run.select(m.Run.record).order_by(m.Run.created_at, m.Run.id)
        if task is not None:
            select = select.where(m.Run.task == task)
        return [orjson.loads(r[0]) for r in select.tuples()]

    def run_details(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        m = self._runs
        results = [{"phase": r[0], "example_id": r[1], "score": r[2], "prediction": orjson.loads(r[3]), "error": r[4]}
                   for r in m.Result.select(m.Result.phase, m.Result.example_id, m.Result.score,
                                            m.Result.prediction, m.Result.error)
                   .where(m.Result.run_id == run_id).order_by(m.Result.phase, m.Result.position).tuples()]
        candidates = [{"seed": r[0], "score": r[1], "demo_ids": orjson.loads(r[2]), "subscores": orjson.loads(r[3])}
                      for r in m.Candidate.select(m.Candidate.seed, m.Candidate.score, m.Candidate.demo_ids,
                                                  m.Candidate.subscores)
                      .where(m.Candidate.run_id == run_id).order_by(m.Candidate.position).tuples()]
        return results, candidates

    def set_champion(self, task: str, run_id: str, since: float, event: Event | None = None, *,
                     replacing: str | None = None) -> bool:
        m = self._runs
        with self.write_transaction():  # type: ignore[attr-defined]  # serialised: compare, then set
            row = m.Champion.select(m.Champion.run_id).where(m.Champion.task == task).tuples().first()
            if (row[0] if row else None) != replacing:
                return False
            m.Champion.delete().where(m.Champion.task == task).execute()
            m.Champion.insert(task=task, run_id=run_id, since=since).execute()
            if event is not None:
                self._append_event(event)  # type: ignore[attr-defined]
        return True

    def iter_candidates(self, task: str) -> Iterator[dict[str, Any]]:
        """Candidates of the task's succeeded runs in one streamed query (valuation reads thousands)."""
        m = self._runs
        select = (m.Candidate.select(m.Candidate.run_id, m.Candidate.seed, m.Candidate.score, m.Candidate.demo_ids,
                                     m.Candidate.subscores)
                  .join(m.Run, on=(m.Run.id == m.Candidate.run_id))
                  .where((m.Run.task == task) & (m.Run.status == "succeeded"))
                  .order_by(m.Run.created_at, m.Candidate.run_id, m.Candidate.position))
        sql, params = select.sql()
        for run_id, seed, score, demo_ids, subscores in self._stream(sql, params):  # type: ignore[attr-defined]
            yield {"run_id": run_id, "seed": seed, "score": score, "demo_ids": orjson.loads(demo_ids),
                   "subscores": orjson.loads(subscores)}

    def add_candidates(self, run_id: str, candidates: Sequence[tuple[int, dict[str, Any]]]) -> int:
        m = self._runs
        rows = [(run_id, int(n), int(c.get("seed") or 0), float(c["score"]), _dumps(c.get("demo_ids") or []),
                 _dumps(c.get("subscores") or [])) for n, c in candidates]
        with self._transaction():  # type: ignore[attr-defined]
            before = m.Candidate.select().where(m.Candidate.run_id == run_id).count()
            schema.insert_rows(self.db, "optimization_candidates", CANDIDATE_COLUMNS, rows, ignore_conflicts=True)
            return m.Candidate.select().where(m.Candidate.run_id == run_id).count() - before

    def candidate_positions(self, run_id: str) -> set[int]:
        m = self._runs
        return {n for (n,) in m.Candidate.select(m.Candidate.position).where(m.Candidate.run_id == run_id).tuples()}

    def champion_id(self, task: str) -> str | None:
        m = self._runs
        row = m.Champion.select(m.Champion.run_id).where(m.Champion.task == task).tuples().first()
        return row[0] if row else None

    def list_champions(self) -> list[dict[str, Any]]:
        m = self._runs
        rows = m.Champion.select(m.Champion.task, m.Champion.run_id, m.Champion.since).order_by(m.Champion.task)
        return [{"task": task, "run_id": run_id, "since": since} for task, run_id, since in rows.tuples()]
