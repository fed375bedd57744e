"""The `[optimize]` settings: which optimizer, how much data it needs, how to split and compare, where programs go.

They are read by `dspy_trainkit.settings` (so errors name the file and line like every other key) and live here
because only optimization uses them. `[tasks.T.optimize]` overrides any key for one task. The
`[optimize.triggers]` table is read here too (durations included), so that `triggers`, which acts on those
settings, imports this module and never the other way round.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import attrs

from ..import_paths import is_import_path

#: The keys of `[optimize.triggers]` and `[tasks.T.optimize.triggers]`.
TRIGGER_KEYS = ("new_accepted", "growth", "quality_shift", "every", "on_ready")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
FALLBACKS = ("unoptimized", "labeled")
AUTO_LEVELS = ("light", "medium", "heavy")

#: Accepted examples (train + dev) an optimizer needs by default, following DSPy's guidance: a handful for
#: LabeledFewShot / BootstrapFewShot, ~50 for random search, ~200 for MIPROv2 (which also carves its own
#: validation set), SIMBA at least its mini-batch size (32) plus dev, GEPA a few dozen (it also needs a
#: reflection LM).
DEFAULT_MIN_EXAMPLES = {"labeled": 5, "bootstrap": 10, "random-search": 50, "mipro": 200, "simba": 40, "gepa": 30}

#: The most dev examples a run evaluates on by default: a 0-100 score's standard error on 200 examples is at
#: most 3.5 points, enough to rank programs, and three evaluations cost 600 program calls, not thousands.
DEFAULT_MAX_DEV = 200

OPTIMIZE_KEYS = ("optimizer", "min_examples", "min_per_cell", "min_dev", "max_dev", "dev_fraction", "val_fraction",
                 "margin", "fallback", "output_dir", "seed", "program", "metric", "max_bootstrapped_demos",
                 "max_labeled_demos", "num_candidates", "num_threads", "auto", "triggers")


@attrs.frozen
class OptimizeSettings:
    """How `trainkit optimize` runs for a task (see docs/configuration.md, `[optimize]`).

    `min_examples` maps optimizer names to the accepted examples they need (merged over the defaults);
    `min_per_cell` is the least every defined domain x topic x difficulty cell must hold (0: no rule);
    `min_dev` the least dev examples; `max_dev` the most a run evaluates on (a stratified share of the dev part,
    and a cap on the validation set too; 0: no cap), because every dev example costs an LM call per program
    evaluated (two or three per run); `dev_fraction` the share of a snapshot held out for evaluation and
    `val_fraction` the share of the rest given to optimizers that select on a validation set (random search,
    MIPROv2, GEPA); `margin` how many points (scores are 0-100, as dspy.Evaluate reports) a challenger must gain
    over the champion; `fallback` what a run does with too little data; `output_dir` where saved programs go
    (relative to the project folder); `program` / `metric` import paths ("pkg.module:name").
    """

    optimizer: str = "bootstrap"
    min_examples: dict[str, int] = attrs.field(factory=dict)
    min_per_cell: int = 0
    min_dev: int = 2
    max_dev: int = DEFAULT_MAX_DEV
    dev_fraction: float = 0.2
    val_fraction: float = 0.2
    margin: float = 0.0
    fallback: str = "unoptimized"
    output_dir: str = "programs"
    seed: int = 0
    program: str | None = None
    metric: str | None = None
    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    num_candidates: int = 8
    num_threads: int = 1
    auto: str = "light"
    triggers: dict[str, Any] = attrs.field(factory=dict)  # [optimize.triggers], checked by read_triggers

    def minimum(self, optimizer: str) -> int:
        """Accepted examples `optimizer` needs: the configured value, else the default."""
        return self.min_examples.get(optimizer, DEFAULT_MIN_EXAMPLES.get(optimizer, 1))

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["min_examples"] = {**DEFAULT_MIN_EXAMPLES, **self.min_examples}
        return data


def read_number(r: Any, value: Any, dotted: str, ok: Callable[[Any], bool], must: str, *,
                whole: bool = False) -> Any:
    """`value` checked with the settings reader `r`: a number (a whole number when `whole`; never a bool) for
    which `ok` holds, returned as an int when `whole`, else as a float; otherwise an error "must be MUST"."""
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float) or not ok(value):
        raise r.fail(dotted, f"must be {must}, got {value!r}")
    return value if whole else float(value)


def read_optimize(r: Any, data: Any, where: str) -> dict[str, Any]:
    """An `[optimize]` table's values (only the keys present), checked; `r` is settings' `_Reader`."""
    from .optimizers import OPTIMIZERS

    t = r.table(data, where, OPTIMIZE_KEYS)
    values: dict[str, Any] = {}
    if "optimizer" in t:
        values["optimizer"] = r.string(t["optimizer"], f"{where}.optimizer", tuple(OPTIMIZERS))
    if "min_examples" in t:
        table = r.table(t["min_examples"], f"{where}.min_examples", tuple(OPTIMIZERS))
        values["min_examples"] = {k: r.positive_int(v, f"{where}.min_examples.{k}") for k, v in table.items()}
    for key in ("min_per_cell", "min_dev", "max_dev", "seed"):
        if key in t:
            values[key] = read_number(r, t[key], f"{where}.{key}", lambda v: v >= 0, "a whole number >= 0",
                                      whole=True)
    for key in ("dev_fraction", "val_fraction"):
        if key in t:
            values[key] = read_number(r, t[key], f"{where}.{key}", lambda v: 0 < v < 1,
                                      "a number above 0 and below 1")
    if "margin" in t:
        values["margin"] = read_number(r, t["margin"], f"{where}.margin", lambda v: 0 <= v <= 100,
                                       "a number of points from 0 to 100")
    if "fallback" in t:
        values["fallback"] = r.string(t["fallback"], f"{where}.fallback", FALLBACKS)
    if "auto" in t:
        values["auto"] = r.string(t["auto"], f"{where}.auto", AUTO_LEVELS)
    for key in ("output_dir", "program", "metric"):
        if key in t:
            values[key] = r.string(t[key], f"{where}.{key}")
    for key in ("program", "metric"):
        if key in values and not is_import_path(values[key]):
            raise r.fail(f"{where}.{key}", f"must be an import path 'package.module:name', got {values[key]!r}")
    for key in ("max_bootstrapped_demos", "max_labeled_demos", "num_candidates", "num_threads"):
        if key in t:
            values[key] = r.positive_int(t[key], f"{where}.{key}")
    if "triggers" in t:  # re-optimization triggers (O2, dspy_trainkit.optimization.triggers)
        values["triggers"] = read_triggers(r, t["triggers"], f"{where}.triggers")
    return values


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or text such as "90s", "30m", "12h", "1d", "1w", "1h30m".

    Raises ValueError with the accepted forms when the value is none of them."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value <= 0 or not math.isfinite(value):
            raise ValueError(f"{value!r} must be more than 0 seconds")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
            if seconds > 0:
                return seconds
    raise ValueError(f"{value!r} is not a duration; use seconds or text such as \"30m\", \"12h\", \"1d\", "
                     "\"1h30m\"")


def read_triggers(r: Any, data: Any, where: str) -> dict[str, Any]:
    """Check a triggers table with the settings reader `r` (file:line errors) and return the keys present.

    `false` switches a trigger off (so a task can drop a project-wide trigger)."""
    t = r.table(data, where, TRIGGER_KEYS)
    values: dict[str, Any] = {}
    for key, raw in t.items():
        dotted = f"{where}.{key}"
        if key == "on_ready":
            values[key] = r.boolean(raw, dotted)
        elif raw is False:
            values[key] = None
        elif key == "new_accepted":
            values[key] = r.positive_int(raw, dotted)
        elif key == "growth":
            values[key] = read_number(r, raw, dotted, lambda v: v > 0 and math.isfinite(v),
                                      "a fraction > 0 (0.2 = 20% more accepted examples) or false")
        elif key == "quality_shift":
            values[key] = read_number(r, raw, dotted, lambda v: 0 < v <= 1,
                                      "a number above 0 and at most 1 (a change of mean quality) or false")
        elif key == "every":
            try:
                values[key] = parse_duration(raw)
            except ValueError as exc:
                raise r.fail(dotted, str(exc)) from None
    return values
