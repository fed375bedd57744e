"""Built-in recommendation rules 'advice': what to do next with a task's data, from values and readiness.

Rules (each a `Recommendation` with its reason and evidence):

- *review harmful demos*: accepted examples whose stored value is clearly negative (value + z x stderr < 0,
  with at least `min_observations` candidates behind it) go back to review (status candidate): programs that
  showed them scored lower, which is what a wrong label or a misleading example does;
- *review suspect labels*: accepted examples a label check found the program contradicting while it agrees
  with most others (the `label_check` signal's `suspect`) go back to review;
- *not enough evidence yet*: no stored values, so nothing can be said about which examples help; says which
  commands make the evidence;
- *revalue*: more than `stale_share` of the stored values are stale;
- *add examples*: cells of the task's grid below `min_per_cell`, or a task short of what its optimizer needs,
  with the command that generates them;
- *strengthen weak cells*: cells where the program fails at least `weak_rate` of at least `weak_min_dev` dev
  examples of the latest run: more (and better) examples there are what the program lacks.

Settings (`[plugin.advice]`): `z` (default 2.0), `min_observations` (default 3), `stale_share` (default 0.2),
`weak_rate` (default 0.5), `weak_min_dev` (default 3).
"""

from __future__ import annotations

from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import Recommendation, unknown_settings

NAME = "advice"
DEFAULTS: dict[str, Any] = {"z": 2.0, "min_observations": 3, "stale_share": 0.2, "weak_rate": 0.5,
                            "weak_min_dev": 3}


@hookimpl
def recommend(task: str, context: Any) -> list[Recommendation]:
    settings = unknown_settings(NAME, context.plugin_settings(NAME, task), DEFAULTS)
    values = context.values(task)
    found = _value_rules(task, values, settings, context)
    found.extend(_readiness_rules(task, context))
    found.extend(_weak_cells(task, context, settings))
    return found


def _weak_cells(task: str, context: Any, settings: dict[str, Any]) -> list[Recommendation]:
    spots = context.weak_spots(task)
    weak = [c for c in spots.cells if c["dev"] >= int(settings["weak_min_dev"])
            and c["failure_rate"] >= float(settings["weak_rate"])]
    found = []
    for cell in weak:
        where = "/".join(str(cell[k]) for k in ("domain", "topic", "difficulty") if cell.get(k)) or "the task"
        options = " ".join(f"--{k} {cell[k]}" for k in ("domain",) if cell.get(k))
        found.append(Recommendation(
            kind="strengthen-weak-cell", priority=round(0.4 + 0.4 * cell["failure_rate"], 3),
            title=f"add examples for {where}: the program fails {cell['failure_rate']:.0%} of its dev examples there",
            reason=f"run {spots.run[-8:]} failed {cell['failure_rate']:.0%} of {cell['dev']} dev example(s) in this "
                   "cell; more varied, correct examples there are what it lacks",
            command=f"trainkit bootstrap --task {task} {options}".strip(),
            evidence={"run": spots.run, **cell}))
    return found


def _value_rules(task: str, values: list[Any], settings: dict[str, Any], context: Any) -> list[Recommendation]:
    if not values:
        return [Recommendation(
            kind="not-enough-evidence", priority=0.3,
            title="not enough evidence yet about which examples help",
            reason="no example of this task has a value: values come from the candidates random search stores, "
                   "or from a budgeted valuation run (`trainkit value --budget N`)",
            command=f"trainkit optimize --task {task} --optimizer random-search && trainkit value --task {task}  "
                    f"(or: trainkit value --task {task} --budget N)")]
    found: list[Recommendation] = []
    z, minimum = float(settings["z"]), int(settings["min_observations"])
    harmful = [v for v in values if not v.stale and v.stderr is not None and v.observations >= minimum
               and v.value + z * v.stderr < 0]
    accepted = set(context.store.iter_ids(_query(task, [v.example_id for v in harmful]))) if harmful else set()
    harmful = [v for v in harmful if v.example_id in accepted]
    if harmful:
        worst = min(v.value for v in harmful)
        found.append(Recommendation(
            kind="review-harmful-demos", priority=min(1.0, 0.6 + len(harmful) / max(len(values), 1)),
            title=f"review {len(harmful)} example(s) that lower the program's score as demos",
            reason=(f"programs that showed them as demonstrations scored lower (down to {worst:+.1f} points, each "
                    f"below zero by more than {z:g} standard errors); check their labels: applying this sends "
                    "them back to review as candidates"),
            example_ids=[v.example_id for v in harmful], status="candidate",
            evidence={"values": {v.example_id: {"value": v.value, "stderr": v.stderr,
                                                "observations": v.observations} for v in harmful}}))
    suspects = [v for v in values if not v.stale and v.example_id not in {h.example_id for h in harmful}
                and v.signals.get("label_agreement", {}).get("detail", {}).get("suspect")]
    accepted = set(context.store.iter_ids(_query(task, [v.example_id for v in suspects]))) if suspects else set()
    suspects = [v for v in suspects if v.example_id in accepted]
    if suspects:
        agreement = suspects[0].signals["label_agreement"]["detail"]["agreement"]
        found.append(Recommendation(
            kind="review-suspect-labels", priority=0.75,
            title=f"review {len(suspects)} example(s) whose label the program contradicts",
            reason=(f"the program agrees with {agreement:.0%} of the checked labels but not with these; a wrong "
                    "label is the likely cause, though the program errs too: applying this sends them back to "
                    "review as candidates"),
            example_ids=[v.example_id for v in suspects], status="candidate",
            evidence={"agreement": agreement, "predictions": {
                v.example_id: v.signals["label_agreement"]["detail"]["prediction"] for v in suspects}}))
    stale = sum(1 for v in values if v.stale)
    if stale > float(settings["stale_share"]) * len(values):
        found.append(Recommendation(
            kind="revalue", priority=0.4, title=f"value again: {stale} of {len(values)} values are stale",
            reason="those examples changed after they were valued", command=f"trainkit value --task {task}",
            evidence={"stale": stale, "values": len(values)}))
    return found


def _readiness_rules(task: str, context: Any) -> list[Recommendation]:
    overall = context.readiness(task)[0]
    short = [cell for cell in overall.cells if cell.get("missing")]
    if not short and overall.accepted >= overall.needed:
        return []
    missing = sum(cell["missing"] for cell in short) or overall.needed - overall.accepted
    cells = ", ".join("/".join(str(cell[k]) for k in ("domain", "topic", "difficulty") if cell.get(k))
                      for cell in short[:5]) + (" ..." if len(short) > 5 else "")
    return [Recommendation(
        kind="add-examples", priority=0.7 if not overall.ready else 0.5,
        title=f"add about {missing} example(s)" + (f" in {len(short)} thin cell(s)" if short else ""),
        reason=("; ".join(overall.problems) or "cells below min_per_cell") + (f" ({cells})" if short else ""),
        command=f"trainkit bootstrap --task {task}  (or trainkit synthesize --task {task} --strategy ...)",
        evidence={"accepted": overall.accepted, "needed": overall.needed, "cells": short})]


def _query(task: str, ids: list[str]) -> Any:
    from dspy_trainkit.pluginkit import ExampleQuery

    return ExampleQuery(task=task, status="accepted", ids=ids)
