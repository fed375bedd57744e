"""Preparing an optimization run: everything decided before the first LM call, and what the run will cost.

`prepare` checks what the user named (optimizer, its packages, the reflection LM, program, metric, LM), reads the
snapshot, splits it, caps the held-out sets and decides the fallback when data is short. The result, a
`RunPlan`, is what `runs.optimize` executes, and also what `trainkit optimize --dry-run` shows without spending
anything: a dry run takes no snapshot (it splits the examples a new snapshot would hold) and records nothing.

Why a cap on the dev set: every dev example costs one program call per program evaluated, and a run evaluates
two or three (the unoptimized program, the result, the champion when its stored score does not count). A
dev part of 20% of 8,786 examples is 1,757 examples, about 5,300 calls before compiling even starts, while a
score on 200 examples already has a standard error of at most 3.5 points. `max_dev` keeps a stratified share
of the dev part (every cell keeps its proportion) and caps the validation set of the optimizers that select on
one; the other dev examples are left out of the run, not moved into training, so the training set is the same
whatever the cap.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError, NotFoundError
from . import optimizers
from .champions import champion, scored_alike
from .resolve import configured_lm, model_name, program_factory, program_lm, resolve_metric

if TYPE_CHECKING:
    from ..kit import Kit
    from ..models import Example
    from .config import OptimizeSettings

log = logging.getLogger("dspy_trainkit.optimization")
Progress = Callable[[str], None]


def cap_stratified(examples: Sequence[Example], limit: int, seed: int) -> list[Example]:
    """At most `limit` of `examples` (all when `limit` is 0 or not below their number), each task x domain x
    topic x difficulty cell keeping its share: quotas by largest remainder (ties to the earlier cell), examples
    within a cell chosen by a seeded hash of their id. Deterministic; the result keeps the input order."""
    from ..lifecycle.snapshots import seeded_cut

    if limit <= 0 or len(examples) <= limit:
        return list(examples)
    cells: dict[tuple[str, ...], list[Example]] = defaultdict(list)
    for example in examples:
        cells[(example.task, example.domain or "", example.topic or "", example.difficulty or "")].append(example)
    keys = sorted(cells)
    exact = {key: limit * len(cells[key]) / len(examples) for key in keys}
    quota = {key: int(exact[key]) for key in keys}
    by_remainder = sorted(range(len(keys)), key=lambda i: (quota[keys[i]] - exact[keys[i]], i))
    for i in by_remainder[:limit - sum(quota.values())]:
        quota[keys[i]] += 1
    chosen: set[str] = set()
    for key in keys:
        first, _ = seeded_cut(cells[key], 0, f"dev-cap:{seed}", least=quota[key])
        chosen.update(example.id for example in first)
    return [example for example in examples if example.id in chosen]


def carve_val(train: list[Example], fraction: float, seed: int,
              limit: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, val): a seeded share of train, by hash of id (deterministic; independent of the dev split), at
    most `limit` examples (0: no cap); what the cap leaves stays in train."""
    if len(train) < 4:
        return train, []
    from ..lifecycle.snapshots import seeded_cut

    val, _ = seeded_cut(train, fraction, f"val:{seed}", least=1)
    val_ids = {ex.id for ex in (val[:limit] if limit > 0 else val)}
    return [ex for ex in train if ex.id not in val_ids], [ex for ex in train if ex.id in val_ids]


@attrs.frozen
class CallEstimate:
    """Expected LM calls of a run, by phase: program calls times `per_call` (the program's predictors, each
    called once per program call). `compile` is a (least, most) range, None when DSPy sets the budget itself
    (MIPROv2, SIMBA, GEPA with `auto`); `champion` counts the champion's re-evaluation when its stored score
    does not count. Cached answers (DSPy's LM cache) make the real number smaller."""

    baseline: int
    compile: tuple[int, int] | None
    evaluate: int
    champion: int
    per_call: int = 1

    @property
    def least(self) -> int | None:
        return None if self.compile is None else self.baseline + self.compile[0] + self.evaluate + self.champion

    @property
    def most(self) -> int | None:
        return None if self.compile is None else self.baseline + self.compile[1] + self.evaluate + self.champion

    def describe(self) -> str:
        """One line such as "about 404 to 7,429 LM calls (baseline 200, compile 4 to 7,029, ...)"."""
        def span(low: int, high: int) -> str:
            return f"{low:,}" if low == high else f"{low:,} to {high:,}"

        compiled = "set by DSPy (auto budget)" if self.compile is None else span(*self.compile)
        parts = f"baseline {self.baseline:,}, compile {compiled}, evaluate {self.evaluate:,}, champion " \
                f"{self.champion:,}"
        per = f"; {self.per_call} per program call" if self.per_call != 1 else ""
        if self.least is None or self.most is None:
            return f"at least {self.baseline + self.evaluate + self.champion:,} LM calls ({parts}{per})"
        return f"about {span(self.least, self.most)} LM calls ({parts}{per})"

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "compile": list(self.compile) if self.compile else None,
                "evaluate": self.evaluate, "champion": self.champion, "per_call": self.per_call,
                "least": self.least, "most": self.most}


def compile_calls(name: str, cfg: OptimizeSettings, train: int, val: int) -> tuple[int, int] | None:
    """Program calls optimizer `name` makes while compiling, as (least, most); None when DSPy decides."""
    k = min(cfg.max_bootstrapped_demos, train)
    if name == "labeled":
        return 0, 0
    if name == "bootstrap":  # one pass over train (max_rounds=1), stopping once k demos are bootstrapped
        return k, train
    if name == "random-search":  # zero-shot, labeled, unshuffled and num_candidates bootstrapped programs
        programs = cfg.num_candidates + 3
        return programs * val + min(k, 1) + cfg.num_candidates, programs * val + (cfg.num_candidates + 1) * train
    return None


@attrs.frozen
class RunPlan:
    """What a run will do: the settings, the resolved program, metric and LMs, the snapshot (None in a dry run
    that would take a new one) and its split, the optimizer that will actually run (`used`, the fallback when
    data is short, with `fallback_reason`), and the expected LM calls."""

    task: str
    optimizer: str
    used: str
    settings: OptimizeSettings
    spec: optimizers.OptimizerSpec
    snapshot: str | None
    snapshot_digest: str | None
    make_program: Callable[[], Any]
    program_ref: str | None
    metric: Callable[..., Any]
    metric_ref: str | None
    student: Any
    run_lm: Any
    reflection_lm: Any
    train: list[Any]
    train_ids: list[str]
    val: list[Any]
    val_ids: list[str]
    dev: list[Any]
    dev_ids: list[str]
    dev_examples: list[Example]
    dev_available: int  # dev examples the split gave, before max_dev
    fallback_reason: str | None = None
    estimate: CallEstimate | None = None

    def describe(self) -> list[str]:
        """The plan in a few lines, as `trainkit optimize --dry-run` prints it."""
        snapshot = self.snapshot or "a new snapshot of the accepted examples"
        capped = (f" (of {self.dev_available}; max_dev {self.settings.max_dev})"
                  if len(self.dev_examples) < self.dev_available else "")
        lines = [f"optimize {self.task} with {self.used}"
                 + (f" (fallback for {self.optimizer}: {self.fallback_reason})" if self.fallback_reason else ""),
                 f"  snapshot {snapshot}: {len(self.train)} train, {len(self.val)} validation, "
                 f"{len(self.dev)} dev{capped}; LM {model_name(self.run_lm)}"]
        if self.estimate is not None:
            lines.append(f"  {self.estimate.describe()}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "optimizer": self.optimizer, "used": self.used,
                "fallback_reason": self.fallback_reason, "snapshot": self.snapshot,
                "snapshot_digest": self.snapshot_digest, "train": len(self.train), "validation": len(self.val),
                "dev": len(self.dev), "dev_available": self.dev_available, "max_dev": self.settings.max_dev,
                "program": self.program_ref, "metric": self.metric_ref, "lm": model_name(self.run_lm),
                "lm_calls": self.estimate.to_dict() if self.estimate else None}


def settings_for(kit: Kit, task: str, **overrides: Any) -> OptimizeSettings:
    """The task's `[optimize]` settings with the given overrides (None values ignored), checked."""
    cfg = kit.settings.optimize_for(task)
    given = {key: value for key, value in overrides.items() if value is not None}
    cfg = attrs.evolve(cfg, **given) if given else cfg
    if not 0 < cfg.dev_fraction < 1:
        raise ConfigError(f"dev fraction {cfg.dev_fraction!r} must be above 0 and below 1")
    if cfg.max_dev < 0:
        raise ConfigError(f"max_dev {cfg.max_dev!r} must be a whole number >= 0 (0: no cap)")
    if 0 < cfg.max_dev < cfg.min_dev:
        raise ConfigError(f"max_dev {cfg.max_dev} (--max-dev, or max_dev in [optimize] of trainkit.toml) is below "
                          f"min_dev {cfg.min_dev}: every run would fall back; raise it, or give 0 for no cap")
    return cfg


def prepare(kit: Kit, task: str, program: Any = None, metric: Any = None, optimizer: str | None = None,
            snapshot: str | None = None, *, lm: Any = None, reflection_lm: Any = None,
            dev_fraction: float | None = None, seed: int | None = None, max_dev: int | None = None,
            dry_run: bool = False, say: Progress | None = None, actor: str = "api") -> RunPlan:
    """Check everything that can be checked before an LM call, read (or, unless `dry_run`, take) the snapshot,
    split and cap it, and estimate the LM calls; see the module docstring. Nothing here calls an LM."""
    say = say or (lambda _stage: None)
    cfg = settings_for(kit, task, dev_fraction=dev_fraction, seed=seed, max_dev=max_dev)
    name = optimizer or cfg.optimizer
    spec = optimizers.get(name)
    missing = spec.missing_packages()
    if missing:
        raise ConfigError(f"optimizer {name!r} ({spec.dspy_name}) needs the optional package(s) "
                          f"{', '.join(missing)}, which are not installed: {spec.install}. Nothing was run.")
    if spec.needs_reflection_lm:
        reflection_lm = reflection_lm or configured_lm(kit, task, "reflection")
        if reflection_lm is None:
            raise ConfigError(f"optimizer {name!r} ({spec.dspy_name}) needs a reflection LM: set model in "
                              f"[lm.reflection] of trainkit.toml (a strong model). Nothing was run.")
    make_program, program_ref = program_factory(kit, task, program)
    metric_fn, metric_ref = resolve_metric(kit, task, metric)
    student = make_program()
    run_lm = program_lm(kit, task, lm)
    snapshot, digest, train_examples, dev_examples = _read_data(kit, task, snapshot, cfg, dry_run, say, actor)
    available = len(dev_examples)
    dev_examples = cap_stratified(dev_examples, cfg.max_dev, cfg.seed)
    if len(dev_examples) < available:
        say(f"dev set capped at {len(dev_examples)} of {available} examples (max_dev)")
    val_examples: list[Example] = []
    if spec.uses_valset:
        train_examples, val_examples = carve_val(train_examples, cfg.val_fraction, cfg.seed, cfg.max_dev)
    train, train_ids = _to_dspy(kit, train_examples)
    val, val_ids = _to_dspy(kit, val_examples)
    dev, dev_ids = _to_dspy(kit, dev_examples)
    plan = RunPlan(task=task, optimizer=name, used=name, settings=cfg, spec=spec, snapshot=snapshot,
                   snapshot_digest=digest, make_program=make_program, program_ref=program_ref, metric=metric_fn,
                   metric_ref=metric_ref, student=student, run_lm=run_lm, reflection_lm=reflection_lm, train=train,
                   train_ids=train_ids, val=val, val_ids=val_ids, dev=dev, dev_ids=dev_ids,
                   dev_examples=dev_examples, dev_available=available)
    plan = _fallback(plan, snapshot or "(new)")
    return attrs.evolve(plan, estimate=estimate(kit, plan))


def _read_data(kit: Kit, task: str, snapshot: str | None, cfg: OptimizeSettings, dry_run: bool, say: Progress,
               actor: str) -> tuple[str | None, str | None, list[Example], list[Example]]:
    """(snapshot name, its digest, train, dev): the named snapshot, else an earlier optimize snapshot holding
    exactly the accepted examples, else a new one (a dry run splits the examples it would hold instead)."""
    from ..lifecycle import snapshots

    if snapshot is None:
        say("snapshot")
        if kit.count(task=task, status="accepted") == 0:
            raise NotFoundError(f"task {task!r} has no accepted examples to optimize on; see `trainkit ready "
                                f"--task {task}` for what to add")
        snapshot = reusable_snapshot(kit, task)
        if snapshot is None and dry_run:
            train, dev = snapshots.split_examples(kit.store.iter_examples(accepted_query(task)),
                                                  dev_fraction=cfg.dev_fraction, seed=cfg.seed)
            return None, None, train, dev
        if snapshot is None:
            snapshot = new_snapshot_name(task)
            snapshots.create(kit, snapshot, accepted_query(task), actor=actor, reason="optimize")
    digest = snapshots.info(kit, snapshot)["digest"]
    train, dev = snapshots.split(kit, snapshot, dev_fraction=cfg.dev_fraction, seed=cfg.seed, task=task)
    if not train and not dev:
        raise NotFoundError(f"snapshot {snapshot!r} holds no examples of task {task!r}")
    return snapshot, digest, train, dev


def _to_dspy(kit: Kit, examples: list[Example]) -> tuple[list[Any], list[str]]:
    """Converted examples and their ids (examples the conversion skips are logged and left out)."""
    result = kit.convert(examples, "dspy")
    skipped = {example_id for example_id, _ in result.skipped}
    for example_id, reason in result.skipped:
        log.warning("optimize: example %s left out: %s", example_id, reason)
    ids = [ex.id for ex in examples if ex.id not in skipped]
    return list(result.items), ids


def _fallback(plan: RunPlan, snapshot: str) -> RunPlan:
    """Too little data: the configured fallback instead of the optimizer, with the reason (logged once the run
    starts)."""
    cfg, name = plan.settings, plan.optimizer
    have, need = len(plan.train) + len(plan.val) + len(plan.dev), cfg.minimum(name)
    short = []
    if have < need:
        short.append(f"{have} usable examples in snapshot {snapshot!r}, {name} needs {need}")
    if len(plan.dev) < cfg.min_dev:
        short.append(f"{len(plan.dev)} dev examples, at least {cfg.min_dev} needed")
    if not plan.train:
        short.append("no training examples")
    if not short:
        return plan
    used = "labeled" if cfg.fallback == "labeled" and plan.train else "unoptimized"
    return attrs.evolve(plan, used=used, fallback_reason="; ".join(short))


def estimate(kit: Kit, plan: RunPlan) -> CallEstimate:
    """The LM calls `plan` is expected to make (see CallEstimate)."""
    per_call = max(1, len(list(plan.student.named_predictors())))
    dev = len(plan.dev)
    if plan.used == "unoptimized":
        return CallEstimate(baseline=dev * per_call, compile=(0, 0), evaluate=0, champion=0, per_call=per_call)
    found = compile_calls(plan.used, plan.settings, len(plan.train), len(plan.val))
    current = champion(kit, plan.task)
    digest = dev_digest(plan.dev_examples)
    rescore = current is not None and not scored_alike(current, digest, plan.metric_ref, model_name(plan.run_lm))
    return CallEstimate(baseline=dev * per_call, compile=None if found is None else
                        (found[0] * per_call, found[1] * per_call),
                        evaluate=dev * per_call, champion=dev * per_call if rescore else 0, per_call=per_call)


def dev_digest(examples: Sequence[Example]) -> str:
    """Identifies a dev set by content: equal digests mean the same examples with the same content."""
    from ..lifecycle.snapshots import digest_of

    return digest_of(sorted((ex.id, ex.content_hash) for ex in examples))


def new_snapshot_name(task: str) -> str:
    """`TASK-opt-YYYYmmdd-HHMMSS-xxxx`, the name of a snapshot an optimize run takes."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{task}-opt-{stamp}-{os.urandom(2).hex()}"


def reusable_snapshot(kit: Kit, task: str) -> str | None:
    """The newest snapshot an earlier optimize run of `task` took, when it holds exactly the task's accepted
    examples as they are now (same ids and content): a re-run after an interruption, or with nothing new,
    reads it instead of taking another copy."""
    from ..lifecycle.snapshots import digest_of

    earlier = [s for s in kit.store.list_snapshots() if s["name"].startswith(f"{task}-opt-")]
    if not earlier:
        return None
    digest = digest_of([(ex.id, ex.content_hash) for ex in kit.store.iter_examples(accepted_query(task))])
    matching = [s for s in earlier if s["digest"] == digest]
    return matching[-1]["name"] if matching else None


def accepted_query(task: str) -> Any:
    """The query of a task's accepted examples, what a new optimize snapshot holds."""
    from ..store import ExampleQuery

    return ExampleQuery(task=task, status="accepted")
