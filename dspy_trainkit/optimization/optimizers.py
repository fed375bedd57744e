"""The optimizers trainkit can run: name -> DSPy teleprompter factory, with what each needs before it starts.

Each entry says which optional packages the optimizer imports (MIPROv2 needs optuna), whether it needs a
reflection LM (GEPA), and whether it selects among candidates on a validation set of its own (then the run
engine carves one out of the training part, so the dev set stays unseen). The run engine checks all of that
before any LM call: a missing package must not surface after an hour of bootstrapping. Minimum data amounts
are settings (`[optimize] min_examples`, defaults in `config.DEFAULT_MIN_EXAMPLES`).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import ConfigError


@attrs.frozen
class Build:
    """What a factory gets: the metric, the run's optimize settings, the train and validation sets, a seed and
    the reflection LM (GEPA)."""

    metric: Callable[..., Any]
    settings: Any  # OptimizeSettings
    train: list[Any]
    val: list[Any]
    seed: int
    reflection_lm: Any = None


@attrs.frozen
class OptimizerSpec:
    """One optimizer: `compile(build, student)` returns the compiled program."""

    name: str
    dspy_name: str
    summary: str
    compile: Callable[[Build, Any], Any]
    requires: tuple[str, ...] = ()  # importable modules, e.g. ("optuna",)
    install: str = ""  # how to get them
    needs_reflection_lm: bool = False
    uses_valset: bool = False

    def missing_packages(self) -> list[str]:
        return [name for name in self.requires if importlib.util.find_spec(name) is None]


def _labeled(b: Build, student: Any) -> Any:
    import dspy

    return dspy.LabeledFewShot(k=b.settings.max_labeled_demos).compile(student, trainset=b.train, sample=True)


def _bootstrap(b: Build, student: Any) -> Any:
    import dspy

    optimizer = dspy.BootstrapFewShot(metric=b.metric, max_bootstrapped_demos=b.settings.max_bootstrapped_demos,
                                      max_labeled_demos=b.settings.max_labeled_demos)
    return optimizer.compile(student, trainset=b.train)


def _random_search(b: Build, student: Any) -> Any:
    import dspy

    optimizer = dspy.BootstrapFewShotWithRandomSearch(
        metric=b.metric, max_bootstrapped_demos=b.settings.max_bootstrapped_demos,
        max_labeled_demos=b.settings.max_labeled_demos, num_candidate_programs=b.settings.num_candidates,
        num_threads=b.settings.num_threads)
    return optimizer.compile(student, trainset=b.train, valset=b.val or None)


def _mipro(b: Build, student: Any) -> Any:
    import dspy

    optimizer = dspy.MIPROv2(metric=b.metric, auto=b.settings.auto, seed=b.seed,
                             max_bootstrapped_demos=b.settings.max_bootstrapped_demos,
                             max_labeled_demos=min(b.settings.max_labeled_demos, 4),
                             num_threads=b.settings.num_threads)
    return optimizer.compile(student, trainset=b.train, valset=b.val or None)


def _simba(b: Build, student: Any) -> Any:
    import dspy

    optimizer = dspy.SIMBA(metric=b.metric, bsize=min(32, len(b.train)), max_demos=b.settings.max_bootstrapped_demos,
                           num_threads=b.settings.num_threads)
    return optimizer.compile(student, trainset=b.train, seed=b.seed)


def gepa_metric(metric: Callable[..., Any]) -> Callable[..., Any]:
    """GEPA calls metric(gold, pred, trace, pred_name, pred_trace); a plain (example, prediction[, trace])
    metric is wrapped so users can pass the same metric to every optimizer."""
    try:
        inspect.signature(metric).bind(None, None, None, None, None)
        return metric
    except TypeError:
        pass

    def wrapped(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        try:
            return metric(gold, pred, trace)
        except TypeError:
            return metric(gold, pred)

    return wrapped


def _gepa(b: Build, student: Any) -> Any:
    import dspy

    optimizer = dspy.GEPA(metric=gepa_metric(b.metric), auto=b.settings.auto, reflection_lm=b.reflection_lm,
                          num_threads=b.settings.num_threads, seed=b.seed)
    return optimizer.compile(student, trainset=b.train, valset=b.val or None)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec for spec in (
        OptimizerSpec("labeled", "LabeledFewShot", "labeled demos taken from the trainset, no LM calls", _labeled),
        OptimizerSpec("bootstrap", "BootstrapFewShot", "demos bootstrapped by running the program on the trainset",
                      _bootstrap),
        OptimizerSpec("random-search", "BootstrapFewShotWithRandomSearch",
                      "several bootstrapped demo sets, the best on a validation set wins", _random_search,
                      uses_valset=True),
        OptimizerSpec("mipro", "MIPROv2", "instructions and demos searched with Bayesian optimization", _mipro,
                      requires=("optuna",), install="pip install optuna  (or: pip install 'dspy[optuna]')",
                      uses_valset=True),
        OptimizerSpec("simba", "SIMBA", "mini-batch ascent with self-reflective rules and demos", _simba,
                      requires=("numpy",), install="pip install numpy  (or: pip install 'dspy[numpy]')"),
        OptimizerSpec("gepa", "GEPA", "reflective prompt evolution; needs a reflection LM ([lm.reflection])",
                      _gepa, requires=("gepa",), install="pip install gepa", needs_reflection_lm=True,
                      uses_valset=True),
    )
}


def get(name: str) -> OptimizerSpec:
    """The optimizer called `name`; an unknown name is a ConfigError listing the known ones."""
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise ConfigError(f"unknown optimizer {name!r}; known optimizers: {', '.join(OPTIMIZERS)}")
    return spec
