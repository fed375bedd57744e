"""The record of an optimization run: what went in (snapshot, split, settings, LM), what came out (scores,
saved program, demos as stored example ids), per-example dev results, and random-search candidates.

These records are what later tells which data helped: a demo is mapped back to the stored example it came
from (by content), every dev example keeps its score under the baseline and the optimized program, and each
random-search candidate keeps its demo set and score.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from ..ids import new_id

#: A run's status: running (or killed while running), succeeded, failed (an error is recorded), interrupted.
STATUSES = ("running", "succeeded", "failed", "interrupted")
#: Which program a dev result belongs to.
PHASES = ("baseline", "optimized", "champion")


@attrs.frozen
class ExampleResult:
    """One dev example's result under one program: its metric score, the prediction's fields, and an error
    when the program produced no prediction."""

    example_id: str
    phase: str
    score: float
    prediction: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Candidate:
    """A candidate program random search evaluated: its seed, validation score, per-example scores on the
    validation set (in `val_ids` order) and demos (stored example ids)."""

    seed: int
    score: float
    demo_ids: list[str | None] = attrs.field(factory=list)
    subscores: list[float] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Run:
    """An optimization run of one task on one snapshot. Scores are 0-100 (dspy.Evaluate's percentage).

    `optimizer` is what was asked for and `used` what actually ran (the fallback when data was short, with
    `fallback_reason`); `demos` lists `{predictor, example_id, augmented}` (example_id None when no stored
    example has the demo's inputs); `champion_score` is the champion's score on this run's dev set when one was
    compared; `promoted` whether this run became the champion; `message` says in one line what happened.
    `rescored` is the latest score of this run's program measured by a later run that had to evaluate it again
    (another dev set, metric or LM): `{score, run, dev_digest, metric, lm, at}`; `score` stays what this run
    measured itself, and `latest_score` is the newer of the two.
    """

    task: str
    optimizer: str
    id: str = attrs.field(factory=new_id)
    status: str = "running"
    used: str | None = None
    snapshot: str | None = None
    snapshot_digest: str | None = None
    train_ids: list[str] = attrs.field(factory=list)
    val_ids: list[str] = attrs.field(factory=list)
    dev_ids: list[str] = attrs.field(factory=list)
    settings: dict[str, Any] = attrs.field(factory=dict)
    program: str | None = None
    metric: str | None = None
    lm: str | None = None
    baseline_score: float | None = None
    score: float | None = None
    champion_run: str | None = None
    champion_score: float | None = None
    promoted: bool = False
    program_path: str | None = None
    demos: list[dict[str, Any]] = attrs.field(factory=list)
    fallback_reason: str | None = None
    message: str = ""
    error: str | None = None
    created_at: float = attrs.field(factory=time.time)
    finished_at: float | None = None
    owner: str | None = None  # the process running it (dspy_trainkit.workers), to tell a killed run
    rescored: dict[str, Any] | None = None
    results: list[ExampleResult] = attrs.field(factory=list, eq=False)
    candidates: list[Candidate] = attrs.field(factory=list, eq=False)

    @property
    def demo_ids(self) -> list[str]:
        """Stored example ids that became demos (each once, in order)."""
        return list(dict.fromkeys(d["example_id"] for d in self.demos if d.get("example_id")))

    @property
    def latest_score(self) -> float | None:
        """The program's latest dev score: the re-scoring by a later run when there is one, else `score`."""
        return self.rescored["score"] if self.rescored else self.score

    @property
    def improvement(self) -> float | None:
        if self.score is None or self.baseline_score is None:
            return None
        return round(self.score - self.baseline_score, 4)

    def to_dict(self, *, details: bool = True) -> dict[str, Any]:
        """A JSON-able dict; without `details` no per-example results and candidates (listings)."""
        data = attrs.asdict(self, filter=lambda a, _: a.name not in ("results", "candidates"))
        data["demo_ids"] = self.demo_ids
        data["improvement"] = self.improvement
        data["latest_score"] = self.latest_score
        if details:
            data["results"] = [r.to_dict() for r in self.results]
            data["candidates"] = [c.to_dict() for c in self.candidates]
        return data

    def record(self) -> dict[str, Any]:
        """What the store keeps in the run row's record column (everything but results and candidates)."""
        return attrs.asdict(self, filter=lambda a, _: a.name not in ("results", "candidates"))

    @classmethod
    def from_record(cls, record: dict[str, Any], results: list[dict[str, Any]] | None = None,
                    candidates: list[dict[str, Any]] | None = None) -> Run:
        known = {a.name for a in attrs.fields(cls)}
        run = cls(**{k: v for k, v in record.items() if k in known and k not in ("results", "candidates")})
        return attrs.evolve(run, results=[ExampleResult(**r) for r in results or []],
                            candidates=[Candidate(**c) for c in candidates or []])

    def results_for(self, phase: str) -> list[ExampleResult]:
        return [r for r in self.results if r.phase == phase]
