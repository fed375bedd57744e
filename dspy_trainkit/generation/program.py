"""The DSPy program bootstrap generates with, and how one cell becomes its inputs and one answer an example.

The task's own program (`program = "package.module:factory"` in its settings; a factory or class called with
no arguments, or a module instance) is preferred, because the data should come from the pipeline it trains.
Without one, a `dspy.Predict` over the task's Signature is used: one LM call per example, the cheapest default.
A cell provides only `domain`, `topic` and `difficulty`, so the inputs a program gets are the ones among these
that its task declares; a signature needing any other input cannot be bootstrapped from a grid, which is a
ConfigError naming the field rather than a run of failing calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..errors import ConfigError
from ..import_paths import import_object
from ..settings import TaskSettings
from ..signatures import resolve_signature
from .calls import OutputError

CELL_FIELDS = ("domain", "topic", "difficulty")


@attrs.frozen
class Generator:
    """A loaded program with the inputs it takes from a cell and the outputs an example keeps."""

    program: Any
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] | None  # None: keep every output the prediction has

    def cell_inputs(self, domain: str | None, topic: str | None, difficulty: str | None) -> dict[str, str]:
        cell = {"domain": domain, "topic": topic, "difficulty": difficulty}
        return {name: value for name in self.inputs if (value := cell[name]) is not None}

    def outputs_of(self, prediction: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The example's outputs from a prediction; a missing or empty field is an OutputError (malformed)."""
        if self.outputs is None:
            data = dict(prediction.toDict() if hasattr(prediction, "toDict") else prediction)
            names = [n for n in data if n not in inputs and n != "reasoning"]
        else:
            names = list(self.outputs)
        values: dict[str, Any] = {}
        for name in names:
            value = getattr(prediction, name, None) if not isinstance(prediction, Mapping) else prediction.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise OutputError(f"the program's answer has no {name!r}")
            values[name] = value if isinstance(value, str | int | float | bool | list | dict) else str(value)
        if not values:
            raise OutputError("the program's answer has no output fields")
        return values


def module_factory(spec: Any, project_dir: Any = None, what: str = "program") -> Callable[[], Any]:
    """A zero-argument callable making a fresh `dspy.Module` from `spec`: an import path "pkg.module:factory"
    (modules in `project_dir` are found), a class or factory called with no arguments, or a module instance
    (deep-copied each time). The one way a task's program is made, for bootstrap and for optimization runs.
    A spec that cannot be imported, a factory that raises or makes something else than a `dspy.Module` is a
    ConfigError starting with `what` (e.g. "[tasks.qa] program =")."""
    target = import_object(spec, project_dir, what) if isinstance(spec, str) else spec
    import dspy

    if isinstance(target, dspy.Module):
        original = target
        return lambda: original.deepcopy()
    if not callable(target):
        raise ConfigError(f"{what} {spec!r} is neither a dspy.Module nor a callable that makes one")

    def make() -> Any:
        try:
            made = target()
        except Exception as exc:  # noqa: BLE001 - the user's factory: any failure is theirs to fix
            raise ConfigError(f"{what} {spec!r}: calling it to make the program failed: "
                              f"{type(exc).__name__}: {exc}") from None
        if not isinstance(made, dspy.Module):
            raise ConfigError(f"{what} {spec!r} made a {type(made).__name__}, not a dspy.Module; the factory must "
                              "return one")
        return made

    return make


def load_generator(task: TaskSettings, fields: tuple[tuple[str, ...], tuple[str, ...]] | None,
                   project_dir: Any = None) -> Generator:
    """The task's program (or the default Predict) with its cell inputs; ConfigError when it cannot be made."""
    import dspy

    where = f"[tasks.{task.name}]"
    if task.program:
        program = module_factory(task.program, project_dir, f"{where} program =")()
        inputs = tuple(f for f in (fields[0] if fields else CELL_FIELDS) if f in CELL_FIELDS)
        return Generator(program, task.program, inputs, tuple(fields[1]) if fields else None)
    if not task.signature:
        raise ConfigError(f"{where}: bootstrap needs a signature (\"domain, topic, difficulty -> ...\") or a "
                          "program = \"package.module:factory\" for this task")
    signature = resolve_signature(task.signature, project_dir)
    inputs, outputs = tuple(signature.input_fields), tuple(signature.output_fields)
    other = [name for name in inputs if name not in CELL_FIELDS]
    if other:
        raise ConfigError(f"{where} signature input(s) {', '.join(other)} cannot come from a plan cell (only "
                          f"{', '.join(CELL_FIELDS)} do); give the task a program that makes them")
    return Generator(dspy.Predict(signature), f"dspy.Predict({task.signature})", inputs, outputs)


def check_cells(generator: Generator, task: TaskSettings, cells: list[tuple[Any, Any, Any]]) -> None:
    """Every input the program takes must have a value in every cell (a task with no topics cannot feed
    a signature that takes `topic`)."""
    for name in generator.inputs:
        position = CELL_FIELDS.index(name)
        if any(cell[position] is None for cell in cells):
            setting = {"domain": "domains", "topic": "topics", "difficulty": "difficulties"}[name]
            raise ConfigError(f"[tasks.{task.name}]: the program takes {name!r} but the task defines no {setting}; "
                              f"add {setting} to [tasks.{task.name}] in trainkit.toml")
