"""Built-in value estimator 'label_check': where the program contradicts an example's stored label.

When a valuation ran a label check (`trainkit value --labels`, `kit.value(task, labels=kit.check_labels(task))`),
each checked example gets the signal `label_agreement`: 100 x (its metric score - the agreement rate over all
checked examples), in metric points like the other values, so an example the program gets "wrong" while it gets
most others "right" is clearly negative. It carries no standard error (one call per example is one
observation), so it does not move a value that demo evidence already gives, and adds no observations (those
count candidates); its `detail` says `suspect` when the score is below `max_score`, with the prediction. When
the agreement rate is below `min_agreement` the program errs too often for its disagreements to mean anything,
and no signal is given.

Settings (`[plugin.label_check]`): `min_agreement` (default 0.6), `max_score` (default 0.5).
"""

from __future__ import annotations

from typing import Any

from dspy_trainkit import hookimpl
from dspy_trainkit.pluginkit import ValueSignal, unknown_settings

NAME = "label_check"
SIGNAL = "label_agreement"
DEFAULTS: dict[str, Any] = {"min_agreement": 0.6, "max_score": 0.5}


@hookimpl
def value_signals(task: str, evidence: Any, context: Any) -> list[ValueSignal] | None:
    check = evidence.labels
    if check is None or check.agreement is None:
        return None
    settings = unknown_settings(NAME, context.plugin_settings(NAME, task), DEFAULTS)
    if check.agreement < float(settings["min_agreement"]):
        context.log.warning("label check of task %s: the program agrees with only %.0f%% of the labels (below "
                            "min_agreement %s), so its disagreements say nothing about them; no label signals",
                            task, 100 * check.agreement, settings["min_agreement"])
        return None
    return [ValueSignal(example_id=example_id, signal=SIGNAL,
                        value=round(100 * (result["score"] - check.agreement), 4), observations=0,
                        detail={"score": result["score"], "agreement": round(check.agreement, 4),
                                "suspect": result["score"] < float(settings["max_score"]),
                                "prediction": result["prediction"], "run": check.run})
            for example_id, result in check.results.items()]
