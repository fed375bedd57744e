"""What a value estimator says about one example (`ValueSignal`) and what the store keeps (`ExampleValue`).

Values are on the scale of the task's metric in percentage points per inclusion as a demonstration: +2.0 means
programs that showed this example as a demo scored about two points higher, other demos equal. Higher helps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class ValueSignal:
    """One estimator's view of one example: its value, standard error (None: the estimator has none) and how
    many observations are behind it, with whatever evidence the estimator wants to show (`detail`)."""

    example_id: str
    signal: str
    value: float
    stderr: float | None = None
    observations: int = 0
    detail: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"example_id": self.example_id, "signal": self.signal, "value": self.value, "stderr": self.stderr,
                "observations": self.observations, "detail": self.detail}


@attrs.frozen(kw_only=True)
class ExampleValue:
    """An example's combined value: the inverse-variance weighted mean of the signals with a standard error
    (or the mean of all signals when none has one), its standard error, the observations behind it, and every
    signal by name. `stale` is set when the example changed after the value was computed."""

    task: str
    example_id: str
    value: float
    stderr: float | None
    observations: int
    signals: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    computed_at: float = 0.0
    stale: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "example_id": self.example_id, "value": self.value, "stderr": self.stderr,
                "observations": self.observations, "signals": self.signals, "computed_at": self.computed_at,
                "stale": self.stale}

    @classmethod
    def combine(cls, task: str, example_id: str, signals: Iterable[ValueSignal], when: float) -> ExampleValue:
        found = list(signals)
        weighted = [s for s in found if s.stderr is not None and s.stderr > 0 and math.isfinite(s.stderr)]
        if weighted:
            weights = [1.0 / (s.stderr * s.stderr) for s in weighted]  # type: ignore[operator]
            total = sum(weights)
            value = sum(w * s.value for w, s in zip(weights, weighted, strict=True)) / total
            stderr: float | None = math.sqrt(1.0 / total)
        else:
            value = sum(s.value for s in found) / len(found)
            stderr = None
        return cls(task=task, example_id=example_id, value=value, stderr=stderr,
                   observations=sum(s.observations for s in found),
                   signals={s.signal: {"value": s.value, "stderr": s.stderr, "observations": s.observations,
                                       "detail": s.detail} for s in found}, computed_at=when)
