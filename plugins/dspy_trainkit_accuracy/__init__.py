"""Built-in scorer 'accuracy': is the example's answer right? Asked of a verifier named per task in settings.

    [plugin.accuracy.tasks.arithmetic]
    verifier = "numeric"                         # built in: evaluates the arithmetic, compares the answer
    [plugin.accuracy.tasks.qa]
    verifier = "my_project.checks:check_answer"  # your function: Example -> float in 0..1, bool, or None

Examples of a task without a verifier (or with ``verifier = "off"``, which switches off one set for all tasks or
the whole task in one of its domains) get no accuracy score. A verifier is imported on first use and kept; when
its module cannot be imported otherwise, the project folder (where trainkit.toml is) is appended to ``sys.path``
and the import tried again. A verifier returns ``None`` for an example it cannot judge (no score).

A verifier that raises is a bug the user must see, so it is not turned into a score: the batch stops with an
error naming the verifier, the example id and where it failed, and nothing of that batch is written. Scoring
such an example 0 would reject good data without saying why; leaving it unscored would accept unverified data
silently. See docs/scoring.md.
"""

from __future__ import annotations

import ast
import functools
import math
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dspy_trainkit import ConfigError, hookimpl
from dspy_trainkit.pluginkit import import_module

DIMENSION = "accuracy"
DEFAULTS: dict[str, Any] = {"verifier": None, "answer_field": "answer", "expression_field": "expression",
                            "search_fields": None, "tolerance": 1e-6}
MAX_EXPRESSION = 200  # characters; longer text is not taken for an expression
MAX_EXPONENT = 100

_loaded: dict[tuple[str, str], Callable[[Any], Any]] = {}


class VerifierError(Exception):
    """A verifier raised, or returned something that is not a score."""


# ---- safe arithmetic -------------------------------------------------------------------------------------

class _NotArithmetic(Exception):
    pass


_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise _NotArithmetic
            result = left ** right
            if isinstance(result, complex):
                raise _NotArithmetic
            return result
        operation = _BINARY.get(type(node.op))
        if operation is not None:
            return operation(left, right)
    raise _NotArithmetic


def evaluate(text: str, *, need_operator: bool = False) -> float | None:
    """The value of an arithmetic expression of numbers, + - * / ** (or ^, ×, ÷) and parentheses, computed by
    walking its syntax tree (never eval); None when the text is anything else, or divides by zero.
    `need_operator`: a bare number does not count."""
    text = text.strip().replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    if not text or len(text) > MAX_EXPRESSION:
        return None
    try:
        tree = ast.parse(text, mode="eval")
        if need_operator and not any(isinstance(n, ast.BinOp) for n in ast.walk(tree)):
            return None
        value = _value(tree.body)
    except (SyntaxError, ValueError, _NotArithmetic, ZeroDivisionError, OverflowError, RecursionError,
            MemoryError):
        return None
    return value if math.isfinite(value) else None


_CANDIDATE = re.compile(r"[\d(][\d\s.+\-*/×÷^()−]*[\d)]")
_DASHED_NUMBERS = re.compile(r"^\d+(?:-\d+){2,}$")  # dates (2024-05-01), phone numbers: not subtraction
_OPERATOR = re.compile(r"[\d).]\s*(?:[+\-*/×÷^−])")  # an operator after a number: worth parsing
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?")


def find_expression(text: str) -> float | None:
    """The value of the one arithmetic expression (with an operator) in a text; None when there is none, or
    several different ones (then the text is ambiguous and is not judged)."""
    values = set()
    for match in _CANDIDATE.finditer(text):
        candidate = match.group().strip()
        start = match.start()
        if start > 0 and text[start - 1] in "-−" and (start == 1 or not text[start - 2].isalnum()):
            candidate = "-" + candidate  # a leading minus sign
        if not _OPERATOR.search(candidate) or _DASHED_NUMBERS.match(candidate):
            continue
        value = evaluate(candidate, need_operator=True)
        if value is not None:
            values.add(value)
    return values.pop() if len(values) == 1 else None


def parse_answer(value: Any) -> tuple[float, int] | None:
    """A numeric answer and its number of decimals: the whole answer if it is a number or an expression
    ("3/4"), else the last number in it ("The answer is 14." -> 14); None when there is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return (float(value), 0) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", value.strip()).rstrip(".").replace("$", "")
    try:
        number = float(text)  # the common case, without parsing
    except ValueError:
        pass
    else:
        return (number, _decimals(text)) if math.isfinite(number) else None
    whole = evaluate(text)
    if whole is not None:
        return whole, _decimals(text)
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    last = evaluate(numbers[-1])
    return (last, _decimals(numbers[-1])) if last is not None else None


def _decimals(text: str) -> int:
    match = re.search(r"\.(\d+)\s*$", text)
    return len(match.group(1)) if match else 0


def numeric(example: Any, *, answer_field: str = "answer", expression_field: str = "expression",
            search_fields: list[str] | None = None, tolerance: float = 1e-6) -> float | None:
    """The built-in verifier: 1.0 when the answer equals the value of the example's arithmetic expression, 0.0
    when it does not (or is no number), None when there is no answer field or no single expression."""
    if answer_field not in example.outputs:
        return None
    expected = None
    for values in (example.outputs, example.inputs):
        if isinstance(values.get(expression_field), str | int | float):
            expected = evaluate(str(values[expression_field]))
            break
    else:
        fields = search_fields if search_fields is not None else list(example.inputs)
        for name in fields:
            value = example.inputs.get(name, example.outputs.get(name) if name != answer_field else None)
            if isinstance(value, str):
                expected = find_expression(value)
                if expected is not None:
                    break
    if expected is None:
        return None
    answer = parse_answer(example.outputs[answer_field])
    if answer is None:
        return 0.0
    got, decimals = answer
    if math.isclose(got, expected, rel_tol=tolerance, abs_tol=1e-9):
        return 1.0
    return 1.0 if decimals and round(expected, decimals) == round(got, decimals) else 0.0


# ---- loading and calling verifiers -----------------------------------------------------------------------

def load_verifier(spec: str, project_dir: Path) -> Callable[[Any], Any]:
    """The function named by `"package.module:function"`, imported once (the project folder is appended to
    sys.path when the module is not found otherwise)."""
    key = (spec, str(project_dir))
    if key in _loaded:
        return _loaded[key]
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise ConfigError(f"[plugin.accuracy] verifier {spec!r}: expected \"numeric\" or an import path "
                          "\"package.module:function\"")
    try:
        module = import_module(module_name, project_dir)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"[plugin.accuracy] verifier {spec!r}: cannot import {module_name!r} ({exc}); put the "
                          f"module in the project folder {project_dir} or install it") from None
    except Exception as exc:
        raise ConfigError(f"[plugin.accuracy] verifier {spec!r}: importing {module_name!r} failed: "
                          f"{type(exc).__name__}: {exc}{_where(exc)}") from exc
    function: Any = module
    for part in attr.split("."):
        function = getattr(function, part, None)
    if not callable(function):
        raise ConfigError(f"[plugin.accuracy] verifier {spec!r}: module {module_name!r} has no function "
                          f"{attr!r}")
    _loaded[key] = function
    return function


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def verify(function: Callable[[Any], Any], spec: str, example: Any) -> float | None:
    """Call a verifier on one example and check its answer; a failure names the verifier and the example."""
    try:
        result = function(example)
    except Exception as exc:
        raise VerifierError(f"verifier {spec!r} raised {type(exc).__name__}: {exc} on example {example.id} "
                            f"(task {example.task!r}){_where(exc)}; fix the verifier, or make it return None "
                            "for examples it cannot judge") from exc
    if result is None:
        return None
    if isinstance(result, bool):
        return 1.0 if result else 0.0
    if isinstance(result, int | float) and 0.0 <= result <= 1.0:
        return float(result)
    raise VerifierError(f"verifier {spec!r} returned {result!r} for example {example.id} (task {example.task!r}); "
                        "a verifier returns a number in 0..1, True/False, or None")


def read_options(kit: Any, task: str, domain: str | None) -> dict[str, Any]:
    """This plugin's settings for a task and domain, checked, with defaults filled in."""
    raw = kit.plugin_settings("accuracy", task, domain, known=DEFAULTS)
    options = {**DEFAULTS, **raw}
    for key in ("verifier", "answer_field", "expression_field"):
        if options[key] is not None and (not isinstance(options[key], str) or not options[key].strip()):
            raise ConfigError(f"[plugin.accuracy] {key} (task {task!r}): must be a non-empty string, "
                              f"got {options[key]!r}")
    fields = options["search_fields"]
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise ConfigError(f"[plugin.accuracy] search_fields (task {task!r}): must be a list of field names, "
                          f"got {fields!r}")
    tolerance = options["tolerance"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
        raise ConfigError(f"[plugin.accuracy] tolerance (task {task!r}): must be a number in 0..1, "
                          f"got {tolerance!r}")
    return options


def verifier_for(kit: Any, options: dict[str, Any]) -> Callable[[Any], Any] | None:
    spec = options["verifier"]
    if spec is None or spec == "off":  # "off": for a task or domain under a verifier set above it
        return None
    if spec == "numeric":
        return functools.partial(numeric, answer_field=options["answer_field"],
                                 expression_field=options["expression_field"],
                                 search_fields=options["search_fields"], tolerance=float(options["tolerance"]))
    return load_verifier(spec, kit.settings.project_dir)


@hookimpl
def score(examples, context):
    by_label: dict[tuple[str, str | None], tuple[str | None, Callable[[Any], Any] | None]] = {}
    scores = {}
    for index, example in enumerate(examples):
        key = (example.task, example.domain)
        if key not in by_label:
            options = read_options(context, example.task, example.domain)
            by_label[key] = (options["verifier"], verifier_for(context, options))
        spec, function = by_label[key]
        if function is None:
            continue
        value = verify(function, spec, example)
        if value is not None:
            scores[index] = {DIMENSION: value}
    return scores
