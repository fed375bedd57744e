"""Built-in scorer 'llm_judge': an LM judges each example with a small DSPy program (dimension ``judge``).

Off unless ``[plugin.llm_judge] model`` is set (for all tasks, or per task/domain in
``[plugin.llm_judge.tasks.TASK]``; ``model = "off"`` switches off a model set above); while off, the hook returns
None at once and DSPy is never imported.

The judge is ``dspy.ChainOfThought`` (or ``dspy.Predict`` with ``chain_of_thought = false``) over the signature
``task_description, inputs, outputs -> correct: bool, score: float, reason: str``, run under
``dspy.context(lm=judge_lm, callbacks=[])`` with an LM of its own, so the pipeline's configured LM is left alone
and its DSPy callbacks (such as trainkit's collection callback) do not see the judge's calls. The API key is
read from the environment variable named by ``api_key_env``; it is never stored.

The ``judge`` score is the judge's ``score`` when it lies in 0..1, else 1.0/0.0 from ``correct``. An example the
judge could not judge (LM error, unparseable answer) gets no score and a logged warning with the reason: an LM
outage must not reject or block data. After ``max_failures`` failures in a row the rest of the batch is not sent.
"""

from __future__ import annotations

import json
import logging
import math
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dspy_trainkit import ConfigError, hookimpl

log = logging.getLogger("dspy_trainkit.llm_judge")

DIMENSION = "judge"
DEFAULTS: dict[str, Any] = {
    "model": None, "api_base": None, "api_key_env": None, "temperature": 0.0, "max_tokens": 1000,
    "num_retries": 2, "cache": True, "chain_of_thought": True, "description": None, "num_threads": 1,
    "max_failures": 5,
}
LM_KEYS = ("model", "api_base", "api_key_env", "temperature", "max_tokens", "num_retries", "cache")
INSTRUCTIONS = (
    "You review one training example for a language-model task. Judge whether the outputs are a correct, "
    "complete and well-made response to the inputs for the task described (and its labels, when given). "
    "Answer `correct` true or false, `score` a number from 0.0 (wrong or useless) to 1.0 (correct and "
    "exemplary), and a one-sentence `reason`."
)
SIGNATURE = "task_description, inputs, outputs -> correct: bool, score: float, reason: str"
MAX_LOGGED = 5  # failures logged one by one per batch; the rest are counted in one summary warning

# open kit -> {(lm settings): LM, ("program", chain_of_thought): program}
_cache: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()


def make_lm(options: dict[str, Any]) -> Any:
    """The judge's `dspy.LM` from its settings (tests replace this function to inject a `DummyLM`)."""
    kwargs: dict[str, Any] = {}
    env = options.get("api_key_env")
    if env:
        key = os.environ.get(env)
        if not key:
            raise ConfigError(f"[plugin.llm_judge] api_key_env: environment variable {env} is not set; set it, "
                              "or switch the judge off (remove `model`, or --disable-plugin llm_judge)")
        kwargs["api_key"] = key
    if options.get("api_base"):
        kwargs["api_base"] = options["api_base"]
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")  # no model metadata download
    import dspy

    return dspy.LM(options["model"], temperature=options["temperature"], max_tokens=options["max_tokens"],
                   num_retries=options["num_retries"], cache=options["cache"], **kwargs)


def make_program(chain_of_thought: bool) -> Any:
    """The judge program (a DSPy module) for the judge signature."""
    import dspy

    signature = dspy.Signature(SIGNATURE, INSTRUCTIONS)
    return dspy.ChainOfThought(signature) if chain_of_thought else dspy.Predict(signature)


def read_options(kit: Any, task: str, domain: str | None) -> dict[str, Any]:
    """This plugin's settings for a task and domain, checked, with defaults filled in (imports nothing)."""
    raw = kit.plugin_settings("llm_judge", task, domain, known=DEFAULTS)
    options = {**DEFAULTS, **raw}

    def fail(key: str, expected: str) -> ConfigError:
        return ConfigError(f"[plugin.llm_judge] {key} (task {task!r}): must be {expected}, got {options[key]!r}")

    for key in ("model", "api_base", "api_key_env", "description"):
        if options[key] is not None and (not isinstance(options[key], str) or not options[key].strip()):
            raise fail(key, "a non-empty string")
    for key in ("cache", "chain_of_thought"):
        if not isinstance(options[key], bool):
            raise fail(key, "true or false")
    for key, low in (("max_tokens", 1), ("num_threads", 1), ("max_failures", 1), ("num_retries", 0)):
        if isinstance(options[key], bool) or not isinstance(options[key], int) or options[key] < low:
            raise fail(key, f"a whole number >= {low}")
    temperature = options["temperature"]
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise fail("temperature", "a number in 0..2")
    return options


def describe(kit: Any, example: Any, options: dict[str, Any]) -> str:
    """What the judge is told about the task: the `description` setting or the task's fields, and the labels."""
    text = options["description"]
    if text is None:
        fields = kit.task_fields(example.task)
        text = (f"Task {example.task!r}: from the inputs ({', '.join(fields[0])}) produce the outputs "
                f"({', '.join(fields[1])})." if fields else f"Task {example.task!r}: produce the outputs from "
                "the inputs.")
    labels = [f"{name}={value}" for name in ("domain", "topic", "difficulty")
              if (value := getattr(example, name)) is not None]
    return f"{text}\nLabels: {', '.join(labels)}" if labels else text


def judged_score(prediction: Any) -> float:
    """The judge's score in 0..1, else 1.0/0.0 from `correct`; ValueError when it gave neither."""
    value = getattr(prediction, "score", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1:
        return float(value)
    correct = getattr(prediction, "correct", None)
    if isinstance(correct, bool):
        return 1.0 if correct else 0.0
    raise ValueError(f"the judge answered score={value!r}, correct={correct!r}; expected a score in 0..1")


def judge_one(program: Any, lm: Any, example: Any, description: str) -> tuple[float, str]:
    """Judge one example under `dspy.context(lm=lm, callbacks=[])`: (score, reason). Raises whatever the LM
    raises."""
    import dspy

    def dumps(values: dict[str, Any]) -> str:
        return json.dumps(values, ensure_ascii=False, indent=1, default=str)

    # callbacks=[]: the pipeline's callbacks (trainkit's own collection callback among them) must not see the
    # judge's calls, or a judged example would be collected as a new one, and judged, and collected...
    with dspy.context(lm=lm, callbacks=[]):
        prediction = program(task_description=description, inputs=dumps(example.inputs),
                             outputs=dumps(example.outputs))
    return judged_score(prediction), str(getattr(prediction, "reason", "") or "")


def _cached(kit: Any, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    per_kit = _cache.setdefault(kit, {})
    if key not in per_kit:
        per_kit[key] = make()
    return per_kit[key]


class _Failures:
    """Counts failures in one batch: logs the first few, stops after `max_failures` in a row."""

    def __init__(self, log: Any):
        self.log, self.total, self.in_a_row, self.last = log, 0, 0, ""

    def failed(self, example: Any, exc: BaseException) -> None:
        self.total += 1
        self.in_a_row += 1
        self.last = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self.total <= MAX_LOGGED:
            self.log.warning("llm_judge: example %s was not judged, so it has no %r score (%s)",
                             example.id, DIMENSION, self.last)

    def summary(self, not_sent: int) -> None:
        if self.total > MAX_LOGGED:
            self.log.warning("llm_judge: %d more examples of this batch were not judged (last error: %s)",
                             self.total - MAX_LOGGED, self.last)
        if not_sent:
            self.log.warning("llm_judge: %d failures in a row; the other %d examples of this batch were not sent "
                             "to the judge and have no %r score", self.in_a_row, not_sent, DIMENSION)


@hookimpl
def score(examples, context):
    options_by_label: dict[tuple[str, str | None], dict[str, Any]] = {}
    todo: list[tuple[int, dict[str, Any]]] = []
    for index, example in enumerate(examples):
        key = (example.task, example.domain)
        if key not in options_by_label:
            options_by_label[key] = read_options(context, example.task, example.domain)
        if options_by_label[key]["model"] not in (None, "off"):
            todo.append((index, options_by_label[key]))
    if not todo:
        return None  # the judge is off: nothing imported, nothing sent
    failures = _Failures(log)
    scores: dict[int, dict[str, float]] = {}
    position = 0
    pool: ThreadPoolExecutor | None = None
    try:
        while position < len(todo) and failures.in_a_row < todo[position][1]["max_failures"]:
            chunk = todo[position:position + todo[position][1]["num_threads"]]
            position += len(chunk)
            jobs = [(index, *_prepare(context, examples[index], opts)) for index, opts in chunk]
            if len(jobs) == 1:
                results = [_run(examples, *jobs[0])]
            else:
                pool = pool or ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="llm_judge")
                results = list(pool.map(lambda job: _run(examples, *job), jobs))
            for index, value, error in results:
                if error is not None:
                    failures.failed(examples[index], error)
                else:
                    failures.in_a_row = 0
                    scores[index] = {DIMENSION: value}
    finally:
        if pool is not None:
            pool.shutdown()
    failures.summary(len(todo) - position)
    return scores


def _prepare(kit: Any, example: Any, options: dict[str, Any]) -> tuple[Any, Any, str]:
    """The judge LM, program and task description for one example (made once per kit, in the caller's thread;
    a settings problem such as a missing API key raises here)."""
    lm = _cached(kit, tuple(options[k] for k in LM_KEYS), lambda: make_lm(options))
    program = _cached(kit, ("program", options["chain_of_thought"]),
                      lambda: make_program(options["chain_of_thought"]))
    return lm, program, describe(kit, example, options)


def _run(examples: list[Any], index: int, lm: Any, program: Any, description: str
         ) -> tuple[int, float | None, BaseException | None]:
    """Judge examples[index]; an exception is returned, not raised (an LM outage must not block data)."""
    example = examples[index]
    try:
        value, reason = judge_one(program, lm, example, description)
    except Exception as exc:
        return index, None, exc
    log.debug("llm_judge: example %s: %s %.2f (%s)", example.id, DIMENSION, value, reason)
    return index, value, None
