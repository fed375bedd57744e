"""Judging examples: validate, score and decide a status. Intake runs these on new examples; edits and
re-scoring run them on stored ones, so every example is judged by the same code.

Validators and scorers are called one plugin at a time so that each finding and each score names the plugin
(and its version) that made it, and a plugin that raises is reported by name before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .errors import PluginError
from .models import Example, Finding
from .plugin_manager import call_impls, hook_impls, timeout_of

if TYPE_CHECKING:
    from .kit import Kit

Scores = dict[str, tuple[float, str]]  # dimension -> (score, plugin)


#: What `prepare` plugins made for a batch: plugin name -> {example id: value}.
Prepared = dict[str, dict[str, Any]]


def prepare(kit: Kit, examples: list[Example], prepared: Prepared | None = None) -> Prepared:
    """`prepared` completed with what every `prepare` plugin it lacks makes of `examples` (run here): parallel
    intake brings what its workers prepared, serial intake and re-scoring bring nothing. Either way each plugin's
    `validate` and `score` then get the values of its own `prepare` (see the hook)."""
    done = dict(prepared or {})
    impls = [impl for impl in hook_impls(kit.pm, "prepare") if impl.plugin_name not in done]
    if impls and examples:
        for plugin, result in call_impls(impls, "prepare", timeout=timeout_of(kit.pm), examples=examples, context=kit):
            done[plugin] = {examples[i].id: value for i, value in _indexed(result or {}, examples, plugin, "prepare")}
    return done


def _call_prepared(kit: Kit, hook: str, examples: list[Example], prepared: Prepared) -> Iterator[tuple[str, Any]]:
    """Each plugin's answer to batch hook `hook`, each given its own `prepared` values re-keyed by index."""
    timeout = timeout_of(kit.pm)
    for impl in hook_impls(kit.pm, hook):
        values = prepared.get(impl.plugin_name)
        mine = {i: values[ex.id] for i, ex in enumerate(examples) if ex.id in values} if values else {}
        yield from call_impls([impl], hook, timeout=timeout, examples=examples, context=kit, prepared=mine)


def validate(kit: Kit, examples: list[Example], prepared: Prepared | None = None) -> dict[str, list[Finding]]:
    """Findings per example id from every `validate` plugin, each tagged with its plugin. `prepared`: what
    `prepare` made of `examples` (made now when not given)."""
    found: dict[str, list[Finding]] = {}
    prepared = prepare(kit, examples, prepared)
    for plugin, result in _call_prepared(kit, "validate", examples, prepared):
        for index, items in _indexed(result, examples, plugin, "validate"):
            for finding in items:
                if not isinstance(finding, Finding):
                    raise PluginError(f"plugin {plugin!r} returned {type(finding).__name__} from hook "
                                      "'validate'; expected Finding objects", plugin=plugin, hook="validate")
                found.setdefault(examples[index].id, []).append(attrs.evolve(finding, plugin=plugin))
    return found


def score(kit: Kit, examples: list[Example], findings: Mapping[str, list[Finding]],
          prepared: Prepared | None = None) -> list[Scores]:
    """Scores per example (in order), keyed by dimension, each remembering the plugin that made it.
    Examples with an error finding (from a validator, or one they came with, such as a field the import's
    command line requires) are not scored: they are rejected whatever their score. `prepared`: as for
    `validate` (what is missing is made now, for the examples scored)."""
    to_score = [i for i, ex in enumerate(examples)  # (most examples have no finding to look through)
                if (not ex.findings and ex.id not in findings)
                or not any(f.severity == "error" for f in (*ex.findings, *findings.get(ex.id, [])))]
    scores: list[Scores] = [{} for _ in examples]
    if not to_score:
        return scores
    subset = [examples[i] for i in to_score]
    prepared = prepare(kit, subset, prepared)
    for plugin, result in _call_prepared(kit, "score", subset, prepared):
        for index, dims in _indexed(result, subset, plugin, "score"):
            target = scores[to_score[index]]
            for dimension, value in dict(dims).items():
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise PluginError(f"plugin {plugin!r} gave score {value!r} for {dimension!r} in hook "
                                      "'score'; scores must be numbers in 0..1", plugin=plugin, hook="score")
                if dimension in target and target[dimension][1] != plugin:
                    raise PluginError(f"dimension {dimension!r} is scored by both plugin "
                                      f"{target[dimension][1]!r} and plugin {plugin!r}; disable one",
                                      plugin=plugin, hook="score")
                target[dimension] = (float(value), plugin)
    return scores


class BatchRules:
    """What `decide` looks up per example, resolved once per batch: a task's settings (a task not declared in
    trainkit.toml gets a new default TaskSettings from each `settings.task` call), its weights and threshold
    per domain, and the `{dimension: {plugin, version}}` map of each combination of scorers. A million-row
    import decides a million examples over a handful of tasks, domains and scorer sets."""

    def __init__(self, kit: Kit):
        self.kit = kit
        self._rules: dict[tuple[str, str | None], tuple[Any, Mapping[str, float], float]] = {}
        self._scorers: dict[tuple[tuple[str, str], ...], dict[str, dict[str, str | None]]] = {}

    def for_example(self, ex: Example) -> tuple[Any, Mapping[str, float], float]:
        """(task settings, weights, min quality) for the example's task and domain."""
        key = (ex.task, ex.domain)
        found = self._rules.get(key)
        if found is None:
            task = self._task(ex.task)
            found = self._rules[key] = (task, task.weights_for(ex.domain), task.min_quality_for(ex.domain))
        return found

    def _task(self, name: str) -> Any:
        for (task_name, _domain), (task, _weights, _threshold) in self._rules.items():
            if task_name == name:
                return task
        return self.kit.settings.task(name)

    def scorers(self, scores: Scores) -> dict[str, dict[str, str | None]]:
        """A new `{dimension: {"plugin", "version"}}` for the scores' plugins (their order kept)."""
        key = tuple([(d, p) for d, (_, p) in scores.items()])
        found = self._scorers.get(key)
        if found is None:
            found = self._scorers[key] = {d: _versioned(self.kit, p) for d, p in key}
        return {d: v.copy() for d, v in found.items()}


def decide(kit: Kit, ex: Example, findings: list[Finding], scores: Scores, *, status: str | None = None,
           rules: BatchRules | None = None) -> Example:
    """The example with its findings, scores, overall quality and a status: `status` when given (a reviewer's
    decision), else from the rules: errors or quality below the threshold reject, manual collection or warnings
    keep it for review, anything else is accepted. `rules` shares the settings look-ups of a batch."""
    rules = rules or BatchRules(kit)
    task, weights, threshold = rules.for_example(ex)
    values = {d: v for d, (v, _) in scores.items()}
    quality = weighted_quality(values, weights)
    findings = list(findings)
    below = quality is not None and quality < threshold
    if below:
        findings.append(Finding(severity="error", code="below-threshold", plugin="intake",
                                message=f"quality {quality:.2f} is below min_quality {threshold:.2f}"))
    if status is None:
        if not findings:  # the usual example: no finding to look through
            status = "candidate" if task.collection_mode == "manual" else "accepted"
        elif any(f.severity == "error" for f in findings):
            status = "rejected"
        elif task.collection_mode == "manual" or any(f.severity == "warning" for f in findings):
            status = "candidate"
        else:
            status = "accepted"
    provenance = dict(ex.provenance)
    if scores:
        provenance["scorers"] = rules.scorers(scores)
    return ex.with_verdict(status=status, findings=findings, quality=quality, provenance=provenance,
                           scores={**ex.scores, **values} if ex.scores else values)


#: Sources whose accepted examples count as synthetic for a task's `max_synthetic_ratio`.
SYNTHETIC_SOURCES = ("synthetic", "bootstrap")
SYNTHETIC_CAP_CODE = "synthetic-cap"


def cap_synthetic(kit: Kit, examples: list[Example]) -> list[Example]:
    """Keep as `candidate` (with a `synthetic-cap` warning) each accepted synthetic or bootstrap example that
    would lift its task's synthetic share of accepted examples above the task's `max_synthetic_ratio`.

    The share counts the task's accepted examples in the store plus those accepted earlier in `examples`; real
    examples of the same batch count first, so the order within a batch does not decide. Two writers at once
    may each see the other's batch late and overshoot by up to a batch; the next batch corrects it."""
    from .store import ExampleQuery

    ratios = {ex.task: kit.settings.task(ex.task).max_synthetic_ratio for ex in examples
              if ex.status == "accepted" and ex.source in SYNTHETIC_SOURCES}
    caps: dict[str, float] = {task: ratio for task, ratio in ratios.items() if ratio is not None}
    if not caps:
        return examples
    counts: dict[str, list[int]] = {}  # task -> [synthetic, real] accepted
    for task in caps:
        synthetic = real = 0
        for (source,), n in kit.store.group_counts(["source"], ExampleQuery(task=task, status="accepted")):
            if source in SYNTHETIC_SOURCES:
                synthetic += n
            else:
                real += n
        counts[task] = [synthetic, real]
    for ex in examples:
        if ex.status == "accepted" and ex.task in counts and ex.source not in SYNTHETIC_SOURCES:
            counts[ex.task][1] += 1
    capped = []
    for ex in examples:
        if ex.status == "accepted" and ex.task in caps and ex.source in SYNTHETIC_SOURCES:
            synthetic, real = counts[ex.task]
            ratio = caps[ex.task]
            if synthetic + 1 > ratio * (synthetic + 1 + real) + 1e-9:
                finding = Finding(severity="warning", code=SYNTHETIC_CAP_CODE, plugin="intake", message=(
                    f"accepting it would make {synthetic + 1} of {synthetic + 1 + real} accepted examples of task "
                    f"{ex.task!r} synthetic, above max_synthetic_ratio {ratio:g}; kept for review (add real "
                    "examples, or raise the cap)"))
                ex = ex.with_verdict(status="candidate", findings=[*ex.findings, finding], quality=ex.quality,
                                     scores=dict(ex.scores), provenance=dict(ex.provenance))
            else:
                counts[ex.task][0] += 1
        capped.append(ex)
    return capped


def reassess(kit: Kit, examples: list[Example], *, keep_status: bool | str = True,
             status: str | None = None) -> list[Example]:
    """Validate, score and decide stored examples afresh (their old findings and scores are replaced).

    `keep_status`: True keeps each example's status (a re-score); "unless_rejected" keeps it unless the rules
    now reject the example (an edit that broke it must not stay in the training data); False decides afresh.
    `status`, when given, is the status outright (a reviewer's decision)."""
    fresh = [ex.with_verdict(status=ex.status, findings=[], quality=None, scores={}, provenance={
        k: v for k, v in ex.provenance.items() if k != "scorers"}) for ex in examples]
    prepared = prepare(kit, fresh)
    findings = validate(kit, fresh, prepared)
    scored = score(kit, fresh, findings, prepared)
    decided = []
    rules = BatchRules(kit)
    for ex, s in zip(fresh, scored, strict=True):
        fixed = status or (ex.status if keep_status is True else None)
        verdict = decide(kit, ex, findings.get(ex.id, []), s, status=fixed, rules=rules)
        if keep_status == "unless_rejected" and fixed is None and verdict.status != "rejected":
            verdict = attrs.evolve(verdict, status=ex.status)
        decided.append(verdict)
    return decided


def _versioned(kit: Kit, plugin: str) -> dict[str, str | None]:
    """Which plugin, at which version, made a score (so a changed scorer can be told from changed data)."""
    info = getattr(kit.pm, "infos", {}).get(plugin)
    return {"plugin": plugin, "version": info.version if info is not None else None}


def weighted_quality(scores: Mapping[str, float], weights: Mapping[str, float]) -> float | None:
    """Overall quality: the mean of the dimensions weighted by `weights` (default 1 each); None if unscored."""
    if not scores:
        return None
    if not weights or weights.keys().isdisjoint(scores):  # every weight 1 (the usual case): the plain mean
        return round(sum(scores.values()) / len(scores), 6)
    total = sum(weights.get(d, 1.0) for d in scores)
    if total == 0:
        return None
    return round(sum(v * weights.get(d, 1.0) for d, v in scores.items()) / total, 6)


def _indexed(result: Any, examples: list[Example], plugin: str, hook: str) -> Iterator[tuple[int, Any]]:
    """Check a batch hook's `{index: value}` answer and yield its items."""
    if not isinstance(result, Mapping):
        raise PluginError(f"plugin {plugin!r} returned {type(result).__name__} from hook {hook!r}; "
                          "expected a mapping from example index to results", plugin=plugin, hook=hook)
    for index, value in result.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(examples):
            raise PluginError(f"plugin {plugin!r} returned index {index!r} from hook {hook!r}, outside the "
                              f"batch of {len(examples)}", plugin=plugin, hook=hook)
        yield index, value
