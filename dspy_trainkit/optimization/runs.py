"""The run engine: optimize a task's DSPy program on a snapshot, keep the better program, record everything.

One run, in order (nothing that can be checked up front waits until LM money is spent):

1. check the optimizer: known name, optional packages installed (MIPROv2 -> optuna), a reflection LM for GEPA;
   import the program factory and the metric; find the LM;
2. take the named snapshot or create one of the task's accepted examples;
3. split it deterministically (seeded, stratified by cell) into train and dev, and for optimizers that select
   on a validation set carve one out of train; convert to `dspy.Example`;
4. too little data -> the configured fallback (the unoptimized program or LabeledFewShot), said plainly;
5. evaluate the unoptimized program on dev (`dspy.Evaluate`, per-example results kept), compile, evaluate the
   result on the same dev set, save it with `program.save(path)` (JSON);
6. compare with the champion on the same dev set (re-evaluating the champion when its dev set, metric or LM
   differs) and promote the run only when it wins by the configured margin.

The run is stored as "running" before the first LM call and updated when it ends (succeeded, failed with the
error, or interrupted), so `trainkit runs` shows every attempt.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ..errors import ConfigError, LMError, NotFoundError, TrainkitError
from ..import_paths import import_object
from ..models import Event
from ..scratch import replacing
from ..workers import new_owner, owner_is_dead
from . import optimizers
from .records import Candidate, ExampleResult, Run

if TYPE_CHECKING:
    from ..kit import Kit
    from ..models import Example

log = logging.getLogger("dspy_trainkit.optimization")

#: LM purposes a task's program runs with, in order of preference (`[lm.program]`, else `[lm.generation]`).
PROGRAM_LM_PURPOSES = ("program", "generation")
Progress = Callable[[str], None]


class OptimizationError(TrainkitError):
    """A run could not finish: the program or LM failed, or the result could not be saved. The run record
    keeps the error."""


# ---- resolving what the user named ------------------------------------------------------------------------

def program_factory(kit: Kit, task: str, program: Any = None) -> tuple[Callable[[], Any], str | None]:
    """A zero-argument callable making a fresh program, and its import path when it has one: `program` (a path,
    a class or factory, or a module object), else `[tasks.T.optimize] program`, else `tasks.T.program`."""
    spec = program if program is not None else (kit.settings.optimize_for(task).program
                                                or kit.settings.task(task).program)
    if spec is None:
        raise ConfigError(f"task {task!r} names no program: give --program pkg.module:factory, or set "
                          f"program = \"pkg.module:factory\" in [tasks.{task}] of trainkit.toml")
    ref = spec if isinstance(spec, str) else None
    target = import_object(spec, kit.settings.project_dir, "program") if isinstance(spec, str) else spec
    import dspy

    if isinstance(target, dspy.Module):
        original = target
        return (lambda: original.deepcopy()), ref
    if not callable(target):
        raise ConfigError(f"program {spec!r} is neither a dspy.Module nor a callable that makes one")

    def make() -> Any:
        try:
            made = target()
        except Exception as exc:
            raise ConfigError(f"program {spec!r}: calling it to make the program failed: "
                              f"{type(exc).__name__}: {exc}") from None
        if not isinstance(made, dspy.Module):
            raise ConfigError(f"program {spec!r} made a {type(made).__name__}, not a dspy.Module")
        return made

    return make, ref


def resolve_metric(kit: Kit, task: str, metric: Any = None) -> tuple[Callable[..., Any], str | None]:
    """The metric callable and its import path: `metric`, else `[optimize] metric`."""
    spec = metric if metric is not None else kit.settings.optimize_for(task).metric
    if spec is None:
        raise ConfigError(f"task {task!r}: no metric; give --metric pkg.module:function (called as "
                          f"metric(example, prediction, trace=None)) or set metric in [optimize]")
    fn = import_object(spec, kit.settings.project_dir, "metric") if isinstance(spec, str) else spec
    if not callable(fn):
        raise ConfigError(f"metric {spec!r} is not callable")
    return fn, spec if isinstance(spec, str) else getattr(fn, "__qualname__", None)


def build_lm(kit: Kit, task: str, purpose: str) -> Any:
    """A `dspy.LM` from `[lm.PURPOSE]` (with the task's overrides), or None when that table sets no model."""
    settings = kit.settings.lm_for(task, purpose)
    if not settings.model:
        return None
    lm = kit.lm(task, purpose)
    lm.num_retries = settings.retries  # DSPy retries inside optimizers; there is no outer retry loop here
    return lm


def program_lm(kit: Kit, task: str, lm: Any = None) -> Any:
    """The LM the program runs with: `lm`, else the one configured with dspy (dspy.configure), else
    `[lm.program]`, else `[lm.generation]`."""
    if lm is not None:
        return lm
    import dspy

    if dspy.settings.lm is not None:
        return dspy.settings.lm
    for purpose in PROGRAM_LM_PURPOSES:
        found = build_lm(kit, task, purpose)
        if found is not None:
            return found
    raise LMError(f"task {task!r}: no LM to run the program with; set model in [lm.program] of trainkit.toml "
                  "(a dspy.LM model string), or call dspy.configure(lm=...) before kit.optimize")


def model_name(lm: Any) -> str | None:
    return getattr(lm, "model", None) or type(lm).__name__


# ---- the run --------------------------------------------------------------------------------------------

def carve_val(train: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, val): a seeded share of train, by hash of id (deterministic; independent of the dev split)."""
    if len(train) < 4:
        return train, []
    from ..lifecycle.snapshots import seeded_cut

    val, _ = seeded_cut(train, fraction, f"val:{seed}", least=1)
    val_ids = {ex.id for ex in val}
    return [ex for ex in train if ex.id not in val_ids], [ex for ex in train if ex.id in val_ids]


def dev_digest(examples: Sequence[Example]) -> str:
    """Identifies a dev set by content: equal digests mean the same examples with the same content."""
    from ..lifecycle.snapshots import digest_of

    return digest_of(sorted((ex.id, ex.content_hash) for ex in examples))


def _to_dspy(kit: Kit, examples: list[Example]) -> tuple[list[Any], list[str]]:
    """Converted examples and their ids (examples the conversion skips are logged and left out)."""
    result = kit.convert(examples, "dspy")
    skipped = {example_id for example_id, _ in result.skipped}
    for example_id, reason in result.skipped:
        log.warning("optimize: example %s left out: %s", example_id, reason)
    ids = [ex.id for ex in examples if ex.id not in skipped]
    return list(result.items), ids


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
            self.failure = self.failure or f"raised {type(exc).__name__}: {exc} (on {where})"
            raise
        if value is None:  # 0 lets dspy.Evaluate finish; evaluate() then reports the metric
            self.failure = self.failure or f"returned None on {where}; it must return a number or a bool"
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


def _snapshot_name(task: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{task}-opt-{stamp}-{os.urandom(2).hex()}"


def _store(kit: Kit, run: Run, *, details: bool = True) -> None:
    kit.store.save_run(run.record(), [r.to_dict() for r in run.results] if details else None,
                       [c.to_dict() for c in run.candidates] if details else None)


def optimize(kit: Kit, task: str, program: Any = None, metric: Any = None, optimizer: str | None = None,
             snapshot: str | None = None, *, lm: Any = None, reflection_lm: Any = None,
             dev_fraction: float | None = None, seed: int | None = None, promote: bool = True,
             progress: Progress | None = None, actor: str = "api") -> Run:
    """Run one optimization of `task` (see the module docstring); returns the finished Run.

    `program`: "pkg.module:factory", a factory/class, or a dspy.Module (default: the task's configured program);
    `metric`: "pkg.module:function" or a callable metric(example, prediction, trace=None); `optimizer`: a name
    of `optimizers.OPTIMIZERS` (default `[optimize] optimizer`); `snapshot`: an existing snapshot to read (default:
    a new snapshot of the task's accepted examples); `lm`: the LM the program runs with (default: see
    `program_lm`); `promote=False` records the run without making it champion. Raises a TrainkitError with one
    clear message when something named is wrong or the run fails; a failed run stays recorded with its error.
    """
    say = progress or (lambda _stage: None)
    cfg = kit.settings.optimize_for(task)
    overrides: dict[str, Any] = {}
    if dev_fraction is not None:
        overrides["dev_fraction"] = dev_fraction
    if seed is not None:
        overrides["seed"] = seed
    cfg = attrs.evolve(cfg, **overrides) if overrides else cfg
    if not 0 < cfg.dev_fraction < 1:
        raise ConfigError(f"dev fraction {cfg.dev_fraction!r} must be above 0 and below 1")
    name = optimizer or cfg.optimizer
    spec = optimizers.get(name)
    # 1. everything that can be checked before any LM call
    missing = spec.missing_packages()
    if missing:
        raise ConfigError(f"optimizer {name!r} ({spec.dspy_name}) needs the optional package(s) "
                          f"{', '.join(missing)}, which are not installed: {spec.install}. Nothing was run.")
    if spec.needs_reflection_lm:
        reflection_lm = reflection_lm or build_lm(kit, task, "reflection")
        if reflection_lm is None:
            raise ConfigError(f"optimizer {name!r} ({spec.dspy_name}) needs a reflection LM: set model in "
                              f"[lm.reflection] of trainkit.toml (a strong model). Nothing was run.")
    make_program, program_ref = program_factory(kit, task, program)
    metric_fn, metric_ref = resolve_metric(kit, task, metric)
    student = make_program()
    run_lm = program_lm(kit, task, lm)
    # 2. the data
    from ..lifecycle import snapshots

    if snapshot is None:
        say("snapshot")
        if kit.count(task=task, status="accepted") == 0:
            raise NotFoundError(f"task {task!r} has no accepted examples to optimize on; see `trainkit ready "
                                f"--task {task}` for what to add")
        snapshot = _reusable_snapshot(kit, task)
        if snapshot is None:
            snapshot = _snapshot_name(task)
            snapshots.create(kit, snapshot, _query(task), actor=actor, reason="optimize")
    snap_info = snapshots.info(kit, snapshot)
    train_examples, dev_examples = snapshots.split(kit, snapshot, dev_fraction=cfg.dev_fraction, seed=cfg.seed,
                                                   task=task)
    if not train_examples and not dev_examples:
        raise NotFoundError(f"snapshot {snapshot!r} holds no examples of task {task!r}")
    val_examples: list[Example] = []
    if spec.uses_valset:
        train_examples, val_examples = carve_val(train_examples, cfg.val_fraction, cfg.seed)
    train, train_ids = _to_dspy(kit, train_examples)
    val, val_ids = _to_dspy(kit, val_examples)
    dev, dev_ids = _to_dspy(kit, dev_examples)
    run = Run(task=task, optimizer=name, used=name, snapshot=snapshot, snapshot_digest=snap_info["digest"],
              train_ids=train_ids, val_ids=val_ids, dev_ids=dev_ids,
              settings={**cfg.to_dict(), "dev_digest": dev_digest(dev_examples)}, program=program_ref,
              metric=metric_ref, lm=model_name(run_lm), owner=new_owner())
    # 3. too little data: the configured fallback, said plainly
    have, need = len(train) + len(val) + len(dev), cfg.minimum(name)
    short = []
    if have < need:
        short.append(f"{have} usable examples in snapshot {snapshot!r}, {name} needs {need}")
    if len(dev) < cfg.min_dev:
        short.append(f"{len(dev)} dev examples, at least {cfg.min_dev} needed")
    if not train:
        short.append("no training examples")
    if short:
        used = "labeled" if cfg.fallback == "labeled" and train else "unoptimized"
        reason = "; ".join(short)
        run = attrs.evolve(run, used=used, fallback_reason=reason)
        log.warning("task %s: %s: using the fallback %r instead of %s (see `trainkit ready --task %s`)",
                    task, reason, used, name, task)
    _store(kit, run, details=False)
    try:
        run = _execute(kit, run, spec, cfg, student, make_program, metric_fn, train, train_ids, val, val_ids, dev,
                       dev_ids, run_lm, reflection_lm, say, promote, actor, dev_examples)
    except KeyboardInterrupt:
        _store(kit, attrs.evolve(run, status="interrupted", finished_at=time.time(),
                                 message="interrupted; run it again (the snapshot is kept)"))
        raise
    except TrainkitError as exc:
        _store(kit, attrs.evolve(run, status="failed", finished_at=time.time(), error=str(exc), message=str(exc)))
        raise
    except Exception as exc:  # DSPy, the program, the metric or the LM failed: record, then one clear message
        detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        message = (f"optimization of task {task!r} with {run.used} failed: {detail}. Check the LM "
                   f"({run.lm}), the program and the metric; the run is recorded as failed (`trainkit runs`)")
        _store(kit, attrs.evolve(run, status="failed", finished_at=time.time(), error=detail, message=message))
        raise OptimizationError(message) from exc
    freshness_mark(kit, run, actor)
    return run


def _reusable_snapshot(kit: Kit, task: str) -> str | None:
    """The newest snapshot an earlier optimize run of `task` took, when it holds exactly the task's accepted
    examples as they are now (same ids and content): a re-run after an interruption, or with nothing new,
    reads it instead of taking another copy."""
    from ..lifecycle.snapshots import digest_of

    earlier = [s for s in kit.store.list_snapshots() if s["name"].startswith(f"{task}-opt-")]
    if not earlier:
        return None
    digest = digest_of([(ex.id, ex.content_hash) for ex in kit.store.iter_examples(_query(task))])
    matching = [s for s in earlier if s["digest"] == digest]
    return matching[-1]["name"] if matching else None


def _query(task: str) -> Any:
    from ..store import ExampleQuery

    return ExampleQuery(task=task, status="accepted")


def freshness_mark(kit: Kit, run: Run, actor: str) -> None:
    from ..lifecycle import freshness

    freshness.mark_used(kit, [*run.train_ids, *run.val_ids, *run.dev_ids], actor=actor,
                        what={"task": run.task, "snapshot": run.snapshot, "run": run.id})


def _execute(kit: Kit, run: Run, spec: optimizers.OptimizerSpec, cfg: Any, student: Any, make_program: Any,
             metric: Callable[..., Any], train: list[Any], train_ids: list[str], val: list[Any], val_ids: list[str],
             dev: list[Any], dev_ids: list[str], run_lm: Any, reflection_lm: Any, say: Progress, promote: bool,
             actor: str, dev_examples: list[Example]) -> Run:
    import dspy

    with dspy.context(lm=run_lm):
        say("baseline")
        baseline, baseline_results = evaluate(student, dev, dev_ids, metric, "baseline", cfg.num_threads,
                                                    run.metric)
        candidates: list[Candidate] = []
        sources: dict[Any, list[str]] = {}
        if run.used == "unoptimized":
            compiled = student
        else:
            say(f"compile ({run.used})")
            used_spec = optimizers.get(run.used) if run.used != spec.name else spec
            tracer = DemoTracer(optimizers.gepa_metric(metric) if used_spec.name == "gepa" else metric, train,
                                train_ids)
            sources = tracer.sources
            build = optimizers.Build(metric=tracer, settings=cfg, train=train, val=val, seed=cfg.seed,
                                     reflection_lm=reflection_lm)
            compiled = used_spec.compile(build, make_program())
            found_candidates = getattr(compiled, "candidate_programs", None) or []
            by_seed = tracer.candidate_sources(found_candidates)
            for found in found_candidates:
                seed = int(found.get("seed", 0))
                own = by_seed.get(seed, sources)
                if found["program"] is compiled:
                    sources = own  # the winner's demos came from its own bootstrap
                candidates.append(Candidate(seed=seed, score=float(found.get("score", 0.0)),
                                            demo_ids=[d["example_id"] for d in
                                                      demo_records(found["program"], train, train_ids, own)],
                                            subscores=[float(s) for s in found.get("subscores", [])]))
        say("evaluate")
        score, results = ((baseline, [attrs.evolve(r, phase="optimized") for r in baseline_results])
                          if compiled is student else
                          evaluate(compiled, dev, dev_ids, metric, "optimized", cfg.num_threads, run.metric))
        say("save")
        folder = Path(cfg.output_dir)
        folder = folder if folder.is_absolute() else kit.settings.project_dir / folder
        path = _save_program(compiled, folder / run.task, run.id)
        run = attrs.evolve(run, baseline_score=baseline, score=score, program_path=str(path),
                           demos=demo_records(compiled, train, train_ids, sources),
                           results=[*baseline_results, *results], candidates=candidates)
        run = _compare(kit, run, cfg, make_program, metric, dev, dev_ids, promote)
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


def _write_meta(run: Run) -> None:
    """`RUN.meta.json` beside the saved program: its run record (snapshot and digest, settings, optimizer, LM,
    scores, demo example ids, promotion), so the file says what made it even away from the store. The store's
    record stays the reference (it also holds per-example results); a failure here is logged, not raised."""
    path = Path(run.program_path).with_suffix(".meta.json")
    try:
        with replacing(path) as partial:
            partial.write_bytes(orjson.dumps({**run.record(), "demo_ids": run.demo_ids},
                                             option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    except OSError as exc:
        log.warning("run %s: could not write %s: %s", run.id, path, exc)


def _compare(kit: Kit, run: Run, cfg: Any, make_program: Any, metric: Callable[..., Any], dev: list[Any],
             dev_ids: list[str], promote: bool) -> Run:
    """Decide promotion: against the champion on this run's dev set, or (no champion) against the baseline."""
    if run.score is None or run.used == "unoptimized":
        return run
    current = champion(kit, run.task)
    if current is None:
        wins = run.baseline_score is None or run.score >= run.baseline_score
        return attrs.evolve(run, promoted=promote and wins)
    if _scored_alike(current, run) and current.score is not None:
        champion_score = current.score
    else:  # another dev set, metric or LM: score the champion on this run's dev set with its metric and LM
        try:
            program = load_saved(make_program, current)
        except TrainkitError as exc:
            log.warning("task %s: the champion %s cannot be compared: %s; keeping it", run.task, current.id, exc)
            return attrs.evolve(run, champion_run=current.id)
        champion_score, champion_results = evaluate(program, dev, dev_ids, metric, "champion", cfg.num_threads,
                                                      run.metric)
        run = attrs.evolve(run, results=[*run.results, *champion_results])
    wins = champion_score is None or (run.score > champion_score and run.score - champion_score >= cfg.margin)
    return attrs.evolve(run, champion_run=current.id, champion_score=champion_score, promoted=promote and wins)


def _scored_alike(champion_run: Run, run: Run) -> bool:
    """Whether the champion's stored score can be compared with this run's: the same dev set (by content), the
    same metric (by import path; a metric passed as an object without one never counts as the same) and the
    same LM."""
    metric = run.metric
    return (champion_run.settings.get("dev_digest") == run.settings.get("dev_digest")
            and metric is not None and ":" in metric and champion_run.metric == metric
            and run.lm is not None and champion_run.lm == run.lm)


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


# ---- reading runs and the champion ---------------------------------------------------------------------------

def get_run(kit: Kit, run_id: str, *, details: bool = True) -> Run:
    """The run with this id (or a unique end of it, as `trainkit runs` shows them)."""
    record = kit.store.get_run(run_id)
    if record is None:
        matches = [r for r in kit.store.list_runs() if r["id"].endswith(run_id) or r["id"].startswith(run_id)]
        if len(matches) != 1:
            raise NotFoundError(f"no single run matches {run_id!r} (see `trainkit runs`)")
        record = matches[0]
    if not details:
        return _settled(kit, Run.from_record(record))
    results, candidates = kit.store.run_details(record["id"])
    return _settled(kit, Run.from_record(record, results, candidates))


def list_runs(kit: Kit, task: str | None = None) -> list[Run]:
    """Every run (of `task`), oldest first, without per-example results (see get_run for those)."""
    return [_settled(kit, Run.from_record(r)) for r in kit.store.list_runs(task)]


def _settled(kit: Kit, run: Run) -> Run:
    """A run still marked "running" whose process on this host is gone (killed with kill -9, or the machine
    lost power) is recorded as interrupted, so it neither shows as running forever nor blocks re-optimization."""
    if run.status != "running" or not run.owner or not owner_is_dead(run.owner):
        return run
    run = attrs.evolve(run, status="interrupted", message=f"{run.message} its process {run.owner} ended without "
                       "finishing (killed?); optimize again".strip())
    kit.store.save_run(run.record())
    return run


def champion(kit: Kit, task: str) -> Run | None:
    """The champion run of `task`, or None."""
    run_id = kit.store.champion_id(task)
    return get_run(kit, run_id, details=False) if run_id else None


def load_saved(make_program: Callable[[], Any], run: Run) -> Any:
    """A fresh program from the factory with the run's saved JSON loaded into it."""
    if not run.program_path or not Path(run.program_path).is_file():
        raise NotFoundError(f"run {run.id}: its saved program {run.program_path} is missing; optimize again")
    program = make_program()
    try:
        program.load(run.program_path)
    except Exception as exc:
        raise ConfigError(f"run {run.id}: cannot load {run.program_path} into this program "
                          f"({type(exc).__name__}: {exc}); was the program changed since?") from None
    return program


def load_program(kit: Kit, task: str, factory: Any = None) -> Any:
    """The program a pipeline should run for `task`: the champion loaded from its saved JSON, or the
    unoptimized program from the task's factory when there is no champion yet. A champion whose saved file is
    gone or no longer fits the program is logged as a warning and the unoptimized program returned, so a
    running pipeline keeps working."""
    current = champion(kit, task)
    spec = factory if factory is not None else (current.program if current and current.program else None)
    make, _ = program_factory(kit, task, spec)
    if current is None:
        return make()
    try:
        return load_saved(make, current)
    except TrainkitError as exc:
        log.warning("task %s: using the unoptimized program: %s", task, exc)
        return make()
