"""Resolving what an optimization run is given by name: the program factory, the metric and the LMs.

Names come from the call (`--program`, `--metric`, `lm=`) or from settings (`[optimize]`, `[tasks.T]`,
`[lm.program]`); each resolver says in one ConfigError/LMError what to set when nothing is named. The program
itself is made by `generation.program.module_factory` and LMs are built by `generation.lm.build_lm`, the one
way each is done in trainkit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LMError
from ..import_paths import import_object

if TYPE_CHECKING:
    from ..kit import Kit

#: LM purposes a task's program runs with, in order of preference (`[lm.program]`, else `[lm.generation]`).
PROGRAM_LM_PURPOSES = ("program", "generation")


def program_factory(kit: Kit, task: str, program: Any = None) -> tuple[Callable[[], Any], str | None]:
    """A zero-argument callable making a fresh program, and its import path when it has one: `program` (a path,
    a class or factory, or a module object), else `[tasks.T.optimize] program`, else `tasks.T.program`."""
    spec = program if program is not None else (kit.settings.optimize_for(task).program
                                                or kit.settings.task(task).program)
    if spec is None:
        raise ConfigError(f"task {task!r} names no program: give --program pkg.module:factory, or set "
                          f"program = \"pkg.module:factory\" in [tasks.{task}] of trainkit.toml")
    from ..generation.program import module_factory

    return module_factory(spec, kit.settings.project_dir, "program"), spec if isinstance(spec, str) else None


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


def configured_lm(kit: Kit, task: str, purpose: str) -> Any:
    """The `dspy.LM` of `[lm.PURPOSE]` (with the task's overrides), or None when that table sets no model. DSPy
    retries its calls itself (`retries` times): inside optimizers there is no outer retry loop."""
    settings = kit.settings.lm_for(task, purpose)
    if not settings.model:
        return None
    from ..generation.lm import build_lm

    return build_lm(settings, purpose=purpose, task=task, dspy_retries=True)


def program_lm(kit: Kit, task: str, lm: Any = None) -> Any:
    """The LM the program runs with: `lm`, else the one configured with dspy (dspy.configure), else
    `[lm.program]`, else `[lm.generation]`."""
    if lm is not None:
        return lm
    import dspy

    if dspy.settings.lm is not None:
        return dspy.settings.lm
    for purpose in PROGRAM_LM_PURPOSES:
        found = configured_lm(kit, task, purpose)
        if found is not None:
            return found
    raise LMError(f"task {task!r}: no LM to run the program with; set model in [lm.program] of trainkit.toml "
                  "(a dspy.LM model string), or call dspy.configure(lm=...) before kit.optimize")


def model_name(lm: Any) -> str | None:
    return getattr(lm, "model", None) or type(lm).__name__
