"""The run engine: optimize a task's DSPy program on a snapshot, keep the better program, record everything.

One run, in order (nothing that can be checked up front waits until LM money is spent):

1-4. `plan.prepare`: check the optimizer (known name, optional packages, a reflection LM for GEPA), the program
   factory, the metric and the LM; take the named snapshot or create one of the task's accepted examples;
   split it (seeded, stratified by cell), cap the dev set at `max_dev` (stratified), carve a validation set
   for optimizers that select on one; decide the fallback when data is short; estimate the LM calls, which
   are said before the first one (and are all `--dry-run` shows);
5. evaluate the unoptimized program on dev (`dspy.Evaluate`, per-example results kept), compile, evaluate the
   result on the same dev set, save it with `program.save(path)` (JSON);
6. compare with the champion on the same dev set (re-evaluating the champion when its dev set, metric or LM
   differs) and promote the run only when it wins by the configured margin.

The run is stored as "running" before the first LM call and updated when it ends (succeeded, failed with the
error, or interrupted), so `trainkit runs` shows every attempt. Reading runs and the champion is in
`champions`, resolving names in `resolve`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ..errors import TrainkitError
from ..models import Event
from ..redaction import redact, redact_data
from ..scratch import replacing
from ..workers import new_owner
from . import optimizers
from .champions import champion, load_saved, record_rescore, scored_alike
from .plan import Progress, RunPlan, dev_digest, prepare
from .records import Candidate, ExampleResult, Run
from .resolve import model_name

if TYPE_CHECKING:
    from ..kit import Kit

log = logging.getLogger("dspy_trainkit.optimization")


class OptimizationError(TrainkitError):
    """A run could not finish: the program or LM failed, or the result could not be saved. The run record
    keeps the error."""


# ---- the run --------------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    try:
        orjson.dumps(value)
        return value
    except TypeError:
        return str(value)


def _prediction_dict(prediction: Any) -> dict[str, Any]:
    try:
        items = dict(prediction.items())
    except Exception:
        return {}
    return {str(k): _jsonable(v) for k, v in items.items()}


class _MetricGuard:
    """The metric as dspy.Evaluate calls it, noting the first dev example on which it raised or returned None
    (dspy.Evaluate would count either as a program failure, or a 0)."""

    def __init__(self, metric: Callable[..., Any], devset: list[Any], ids: list[str]):
        self.metric = metric
        self.ids = {id(example): example_id for example, example_id in zip(devset, ids, strict=True)}
        self.failure: str | None = None
        self.__name__ = getattr(metric, "__name__", "metric")

    def __call__(self, example: Any, prediction: Any, *args: Any) -> Any:
        where = f"dev example {self.ids.get(id(example), '?')}"
        try:
            value = self.metric(example, prediction, *args)
        except Exception as exc:
            self.failure = self.failure or redact(f"raised {type(exc).__name__}: {exc} (on {where})")
            raise
        if value is None:  # 0 lets dspy.Evaluate finish; evaluate() then reports the metric
            self.failure = self.failure or f"returned None on {where}; it must return a number or a bool"
            return 0.0
        if isinstance(value, float) and not math.isfinite(value):  # NaN would be stored, then break comparisons
            self.failure = self.failure or f"returned {value} on {where}; it must return a finite number or a bool"
            return 0.0
        return value


def evaluate(program: Any, devset: list[Any], ids: list[str], metric: Callable[..., Any], phase: str,
             num_threads: int = 1, metric_name: str | None = None) -> tuple[float | None, list[ExampleResult]]:
    """Score `program` on `devset` with dspy.Evaluate: (score 0-100 or None for an empty dev set, per-example
    results). An example whose program call raised gets score 0 and an error note; a metric that raises or
    returns None is an OptimizationError naming the metric (`metric_name`)."""
    if not devset:
        return None, []
    import dspy

    guard = _MetricGuard(metric, devset, ids)
    # never cancelled for errors: a program failing on every example gets the clear message below
    evaluator = dspy.Evaluate(devset=devset, metric=guard, num_threads=num_threads, display_progress=False,
                              display_table=False, max_errors=len(devset) + 1)
    outcome = evaluator(program)
    if guard.failure:
        name = metric_name or getattr(metric, "__qualname__", None) or guard.__name__
        raise OptimizationError(f"the metric {name} {guard.failure} ({phase} evaluation); fix the metric, which "
                                "is called as metric(example, prediction, trace=None)")
    results = []
    for example_id, (_example, prediction, score) in zip(ids, outcome.results, strict=True):
        fields = _prediction_dict(prediction)
        value = float(score) if isinstance(score, int | float) else float(bool(score))
        results.append(ExampleResult(example_id=example_id, phase=phase, score=value, prediction=fields,
                                     error=None if fields else "no prediction (the program or metric raised; "
                                                               "see the log)"))
    if all(r.error for r in results):
        raise OptimizationError(f"the program produced no prediction for any of the {len(results)} dev examples "
                                f"({phase}): the LM, the program or the metric fails every time (run with -v to "
                                "see DSPy's errors)")
    total = sum(r.score for r in results)
    return round(100 * total / len(results), 4), results


_DSPY_KEYS = frozenset({"dspy_uuid", "dspy_split", "augmented"})


def _key(values: Any, keys: Sequence[str] | None = None) -> tuple[tuple[str, str], ...]:
    """A content key of an example, demo or trace step: its fields (or `keys`) as sorted (name, text) pairs."""
    names = keys if keys is not None else [k for k in values.keys() if k not in _DSPY_KEYS]
    return tuple(sorted((str(k), str(values.get(k))) for k in names))


class DemoTracer:
    """Wraps the metric during compilation to learn which training example each bootstrapped demo came from.

    A bootstrapped demo is a new `dspy.Example` built from the teacher's trace, with no link back to the
    training example that produced it, and inputs alone are ambiguous when examples share them (every problem of
    one cell has the same domain, topic and difficulty). The metric sees the training example and the trace of
    each successful bootstrap, so it records (trace step content -> example id) there.

    Random search bootstraps one candidate after another, each followed by its evaluation on the validation set
    (metric calls without a trace), so the traces also come in `segments`, one per bootstrapped candidate in
    order (`candidate_sources`): a candidate's demos are matched with its own traces only."""

    def __init__(self, metric: Callable[..., Any], train: list[Any], train_ids: list[str]):
        import inspect

        self.metric = metric
        self.ids = {id(example): example_id for example, example_id in zip(train, train_ids, strict=True)}
        self.sources: dict[Any, list[str]] = {}
        self.segments: list[dict[Any, list[str]]] = []
        self._tracing = False
        try:
            params = list(inspect.signature(metric).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.accepts = None if any(p.kind == p.VAR_POSITIONAL for p in params) or not params else len(positional)
        self.__name__ = getattr(metric, "__name__", "metric")

    def __call__(self, example: Any, prediction: Any, *args: Any) -> Any:
        value = self.metric(example, prediction, *(args if self.accepts is None else args[:max(0, self.accepts - 2)]))
        trace = args[0] if args else None
        if bool(args) and not self._tracing:  # the first bootstrap call after an evaluation: a new candidate
            self.segments.append({})
        self._tracing = bool(args)
        if trace and value and id(example) in self.ids:
            for step in trace:
                try:
                    _predictor, inputs, outputs = step
                    key = _key({**inputs, **dict(outputs.items())})
                except (TypeError, ValueError, AttributeError):
                    continue
                self.sources.setdefault(key, []).append(self.ids[id(example)])
                if self.segments:
                    self.segments[-1].setdefault(key, []).append(self.ids[id(example)])
        return value

    def candidate_sources(self, candidates: Sequence[dict[str, Any]]) -> dict[int, dict[Any, list[str]]]:
        """The traces of each random-search candidate that bootstrapped (seed -1 and up, in seed order), by seed;
        empty when the segments do not line up with them (then `sources`, all traces, is what is known)."""
        seeds = sorted(int(c.get("seed", 0)) for c in candidates if int(c.get("seed", 0)) >= -1)
        if len(seeds) != len(self.segments):
            return {}
        return dict(zip(seeds, self.segments, strict=True))


def demo_records(program: Any, train: list[Any], train_ids: list[str],
                 sources: dict[Any, list[str]] | None = None) -> list[dict[str, Any]]:
    """Every demo of every predictor, mapped back to the stored example it came from by content: a labeled demo
    by its fields, a bootstrapped one (augmented) by the trace that made it (`DemoTracer.sources`), else by its
    inputs when only one training example has them; `example_id` is None when nothing identifies it. One
    program's demos never name the same example twice: demos of equal content take the traced examples in
    order, each once."""
    if not train:
        return []
    by_content = {_key(example): example_id for example, example_id in zip(train, train_ids, strict=True)}
    input_keys = sorted(train[0].inputs().keys())
    by_inputs: dict[Any, list[str]] = {}
    for example, example_id in zip(train, train_ids, strict=True):
        by_inputs.setdefault(_key(example, input_keys), []).append(example_id)
    records = []
    used: set[str] = set()  # demos of equal content came from distinct traced examples, in bootstrap order
    for name, predictor in program.named_predictors():
        for demo in getattr(predictor, "demos", []) or []:
            augmented = bool(demo.get("augmented", False)) if hasattr(demo, "get") else False
            key = _key(demo)
            found = by_content.get(key)
            if found is None:
                found = next((i for i in (sources or {}).get(key, []) if i not in used), None)
            if found is None:
                same_inputs = by_inputs.get(_key(demo, input_keys), [])
                found = same_inputs[0] if len(same_inputs) == 1 else None
            if found is not None and found in used:
                found = None
            if found is not None:
                used.add(found)
            records.append({"predictor": name, "example_id": found, "augmented": augmented})
    return records


def _save_program(program: Any, folder: Path, run_id: str) -> Path:
    """`program.save(path)` as JSON, written under a temporary name and renamed, so a crash leaves no half file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    try:
        with replacing(path, suffix=".part.json") as partial:  # DSPy picks the format by the ending
            program.save(str(partial))
    except OSError as exc:
        raise OptimizationError(f"cannot save the program to {path}: {exc}") from None
    return path


def _store(kit: Kit, run: Run, *, details: bool = True) -> None:
    """Save the run; its record and each result's error go through `redact` first (a provider's error may echo
    an API key, and stored records travel into backups)."""
    results = [{**r.to_dict(), "error": redact_data(r.error)} for r in run.results] if details else None
    kit.store.save_run(redact_data(run.record()), results, [c.to_dict() for c in run.candidates] if details else None)


def optimize(kit: Kit, task: str, program: Any = None, metric: Any = None, optimizer: str | None = None,
             snapshot: str | None = None, *, lm: Any = None, reflection_lm: Any = None,
             dev_fraction: float | None = None, seed: int | None = None, max_dev: int | None = None,
             promote: bool = True, dry_run: bool = False, progress: Progress | None = None,
             actor: str = "api") -> Any:
    """Run one optimization of `task` (see the module docstring); returns the finished Run.

    `program`: "pkg.module:factory", a factory/class, or a dspy.Module (default: the task's configured program);
    `metric`: "pkg.module:function" or a callable metric(example, prediction, trace=None); `optimizer`: a name
    of `optimizers.OPTIMIZERS` (default `[optimize] optimizer`); `snapshot`: an existing snapshot to read (default:
    a new snapshot of the task's accepted examples); `lm`: the LM the program runs with (default: see
    `resolve.program_lm`); `dev_fraction`, `seed`, `max_dev` override `[optimize]`; `promote=False` records the
    run without making it champion. `dry_run=True` returns the `plan.RunPlan` (split sizes and expected LM calls)
    without calling an LM, taking a snapshot or recording anything. Raises a TrainkitError with one clear
    message when something named is wrong or the run fails; a failed run stays recorded with its error.
    """
    say = progress or (lambda _stage: None)
    plan = prepare(kit, task, program, metric, optimizer, snapshot, lm=lm, reflection_lm=reflection_lm,
                   dev_fraction=dev_fraction, seed=seed, max_dev=max_dev, dry_run=dry_run, say=say, actor=actor)
    if dry_run:
        return plan
    if plan.estimate is not None:
        log.info("task %s: %s", task, plan.estimate.describe())
        say(plan.estimate.describe())
    cfg = plan.settings
    run = Run(task=task, optimizer=plan.optimizer, used=plan.used, snapshot=plan.snapshot,
              snapshot_digest=plan.snapshot_digest, train_ids=plan.train_ids, val_ids=plan.val_ids,
              dev_ids=plan.dev_ids, settings={**cfg.to_dict(), "dev_digest": dev_digest(plan.dev_examples),
                                              "dev_available": plan.dev_available},
              program=plan.program_ref, metric=plan.metric_ref, lm=model_name(plan.run_lm), owner=new_owner(),
              fallback_reason=plan.fallback_reason)
    if plan.fallback_reason:
        log.warning("task %s: %s: using the fallback %r instead of %s (see `trainkit ready --task %s`)",
                    task, plan.fallback_reason, plan.used, plan.optimizer, task,
                    extra={"task": task, "run_id": run.id})
    _store(kit, run, details=False)
    started = time.monotonic()
    try:
        run = _execute(kit, run, plan, say, promote, actor)
    except KeyboardInterrupt:
        if _finished(kit, run.id):  # Ctrl-C after the result was stored (promotion, notifications): keep it
            raise
        _store(kit, attrs.evolve(run, status="interrupted", finished_at=time.time(),
                                 message="interrupted; run it again (the snapshot is kept)"))
        _instrument(task, "interrupted", started)
        raise
    except TrainkitError as exc:
        _store(kit, attrs.evolve(run, status="failed", finished_at=time.time(), error=str(exc), message=str(exc)))
        _instrument(task, "failed", started)
        raise
    except Exception as exc:  # DSPy, the program, the metric or the LM failed: record, then one clear message
        detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        detail = redact(detail)  # a provider's error may echo the API key
        message = (f"optimization of task {task!r} with {run.used} failed: {detail}. Check the LM "
                   f"({run.lm}), the program and the metric; the run is recorded as failed (`trainkit runs`)")
        _store(kit, attrs.evolve(run, status="failed", finished_at=time.time(), error=detail, message=message))
        _instrument(task, "failed", started)
        raise OptimizationError(message) from exc
    _instrument(task, "promoted" if run.promoted else "not_promoted", started)
    freshness_mark(kit, run, actor)
    return run


def _instrument(task: str, outcome: str, started: float) -> None:
    """This process's optimization metrics (`operations.instruments`)."""
    from ..operations import instruments

    instruments.OPTIMIZATIONS.labels(task, outcome).inc()
    instruments.OPTIMIZATION_DURATION.labels(task).observe(time.monotonic() - started)


def _finished(kit: Kit, run_id: str) -> bool:
    """Whether the run's result is already stored as succeeded: an interrupt after that point must not overwrite
    it (with the scoreless record the run started as) and call it interrupted."""
    try:
        stored = kit.store.get_run(run_id)
    except Exception:  # noqa: BLE001  (the store failing here: record the interruption as before)
        return False
    return stored is not None and stored.get("status") == "succeeded"


def freshness_mark(kit: Kit, run: Run, actor: str) -> None:
    from ..lifecycle import freshness

    freshness.mark_used(kit, [*run.train_ids, *run.val_ids, *run.dev_ids], actor=actor,
                        what={"task": run.task, "snapshot": run.snapshot, "run": run.id})


def _execute(kit: Kit, run: Run, plan: RunPlan, say: Progress, promote: bool, actor: str) -> Run:
    import dspy

    cfg, metric, dev, dev_ids = plan.settings, plan.metric, plan.dev, plan.dev_ids
    with dspy.context(lm=plan.run_lm):
        say("baseline")
        baseline, baseline_results = evaluate(plan.student, dev, dev_ids, metric, "baseline", cfg.num_threads,
                                              run.metric)
        if run.used == "unoptimized":
            compiled, candidates, sources = plan.student, list[Candidate](), dict[Any, list[str]]()
        else:
            say(f"compile ({run.used})")
            compiled, candidates, sources = _compile(plan, run.used or plan.spec.name)
        say("evaluate")
        score, results = ((baseline, [attrs.evolve(r, phase="optimized") for r in baseline_results])
                          if compiled is plan.student else
                          evaluate(compiled, dev, dev_ids, metric, "optimized", cfg.num_threads, run.metric))
        say("save")
        folder = Path(cfg.output_dir)
        folder = folder if folder.is_absolute() else kit.settings.project_dir / folder
        path = _save_program(compiled, folder / run.task, run.id)
        run = attrs.evolve(run, baseline_score=baseline, score=score, program_path=str(path),
                           demos=demo_records(compiled, plan.train, plan.train_ids, sources),
                           results=[*baseline_results, *results], candidates=candidates)
        run = _compare(kit, run, cfg, plan.make_program, metric, dev, dev_ids, promote)
    run = attrs.evolve(run, status="succeeded", finished_at=time.time(), message=_message(run))
    event = Event(kind="optimization_run", actor=actor, reason=run.message,
                  details={"run": run.id, "task": run.task, "snapshot": run.snapshot, "optimizer": run.optimizer,
                           "used": run.used, "score": run.score, "baseline": run.baseline_score,
                           "promoted": run.promoted})
    kit.store.save_run(run.record(), [r.to_dict() for r in run.results], [c.to_dict() for c in run.candidates],
                       event)
    if run.promoted:
        promoted = Event(kind="champion_changed", actor=actor, reason=run.message,
                         details={"task": run.task, "run": run.id, "previous": run.champion_run, "score": run.score})
        if kit.store.set_champion(run.task, run.id, time.time(), promoted, replacing=run.champion_run):
            kit.notify(promoted)
        else:  # another run became champion while this one ran: it was not compared with that one
            run = attrs.evolve(run, promoted=False,
                               message=run.message.split("; new champion")[0] + "; not promoted: another run became "
                               "champion meanwhile (optimize again to compare with it)")
            kit.store.save_run(run.record())
    if run.program_path:
        _write_meta(run)
    kit.notify(event)
    return run


def _compile(plan: RunPlan, used: str) -> tuple[Any, list[Candidate], dict[Any, list[str]]]:
    """Compile a fresh program with optimizer `used`, the metric wrapped by a DemoTracer: (the compiled program,
    the random-search candidates with their demos as stored example ids, the traces its demos came from)."""
    spec = optimizers.get(used) if used != plan.spec.name else plan.spec
    train, train_ids = plan.train, plan.train_ids
    tracer = DemoTracer(optimizers.gepa_metric(plan.metric) if spec.name == "gepa" else plan.metric, train,
                        train_ids)
    sources = tracer.sources
    build = optimizers.Build(metric=tracer, settings=plan.settings, train=train, val=plan.val,
                             seed=plan.settings.seed, reflection_lm=plan.reflection_lm)
    compiled = spec.compile(build, plan.make_program())
    found_candidates = getattr(compiled, "candidate_programs", None) or []
    by_seed = tracer.candidate_sources(found_candidates)
    candidates = []
    for found in found_candidates:
        seed = int(found.get("seed", 0))
        own = by_seed.get(seed, sources)
        if found["program"] is compiled:
            sources = own  # the winner's demos came from its own bootstrap
        candidates.append(Candidate(seed=seed, score=float(found.get("score", 0.0)),
                                    demo_ids=[d["example_id"] for d in
                                              demo_records(found["program"], train, train_ids, own)],
                                    subscores=[float(s) for s in found.get("subscores", [])]))
    return compiled, candidates, sources


def _write_meta(run: Run) -> None:
    """`RUN.meta.json` beside the saved program: its run record (snapshot and digest, settings, optimizer, LM,
    scores, demo example ids, promotion), so the file says what made it even away from the store. The store's
    record stays the reference (it also holds per-example results); a failure here is logged, not raised."""
    path = Path(run.program_path or "").with_suffix(".meta.json")
    try:
        with replacing(path) as partial:
            partial.write_bytes(orjson.dumps({**run.record(), "demo_ids": run.demo_ids},
                                             option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    except OSError as exc:
        log.warning("run %s: could not write %s: %s", run.id, path, exc, extra={"task": run.task, "run_id": run.id})


def _compare(kit: Kit, run: Run, cfg: Any, make_program: Any, metric: Callable[..., Any], dev: list[Any],
             dev_ids: list[str], promote: bool) -> Run:
    """Decide promotion: against the champion on this run's dev set, or (no champion) against the baseline. A
    champion scored again here keeps that score on its own record (`champions.record_rescore`)."""
    if run.score is None or run.used == "unoptimized":
        return run
    current = champion(kit, run.task)
    if current is None:
        wins = run.baseline_score is None or run.score >= run.baseline_score
        return attrs.evolve(run, promoted=promote and wins)
    champion_score = scored_alike(current, run.settings.get("dev_digest"), run.metric, run.lm)
    if champion_score is None:  # another dev set, metric or LM: score the champion on this run's dev set
        try:
            program = load_saved(make_program, current)
        except TrainkitError as exc:
            log.warning("task %s: the champion %s cannot be compared: %s; keeping it", run.task, current.id, exc,
                        extra={"task": run.task, "run_id": run.id})
            return attrs.evolve(run, champion_run=current.id)
        champion_score, champion_results = evaluate(program, dev, dev_ids, metric, "champion", cfg.num_threads,
                                                    run.metric)
        record_rescore(kit, current, champion_score, run)
        run = attrs.evolve(run, results=[*run.results, *champion_results])
    score = run.score if run.score is not None else float("-inf")
    wins = champion_score is None or (score > champion_score and score - champion_score >= cfg.margin)
    return attrs.evolve(run, champion_run=current.id, champion_score=champion_score, promoted=promote and wins)


def _message(run: Run) -> str:
    scores = (f"dev score {run.score:.1f} (unoptimized {run.baseline_score:.1f})" if run.score is not None
              and run.baseline_score is not None else "no dev set to score on")
    head = f"run {run.id[-8:]} of task {run.task!r}: {run.used}"
    if run.fallback_reason:
        head += f" (fallback for {run.optimizer}: {run.fallback_reason})"
    if run.promoted:
        verdict = "new champion" + (f", over {run.champion_run[-8:]} at {run.champion_score:.1f}"
                                    if run.champion_run and run.champion_score is not None else "")
    elif run.used == "unoptimized":
        verdict = "not promoted (unoptimized program)"
    elif run.champion_run:
        verdict = (f"champion {run.champion_run[-8:]} kept"
                   + (f" ({run.champion_score:.1f} on the same dev set)" if run.champion_score is not None else ""))
    else:
        verdict = "not promoted (not better than the unoptimized program)"
    return f"{head}: {scores}; {verdict}"
