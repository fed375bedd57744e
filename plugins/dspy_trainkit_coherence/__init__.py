"""Built-in scorer 'coherence': cheap, deterministic text heuristics on an example's output texts.

Dimension ``coherence`` in 0..1 is the weighted mean of up to three parts, each in 0..1:

* ``repetition``: ``1 - r`` where ``r`` is the worst, over output text fields, of the share of repeated word
  trigrams and the share of repeated sentences (``1 - unique / total``); an output of three or more words that
  only repeats an input field has ``r = 1``.
* ``structure``: ``1 -`` the penalties of the worst output field: unbalanced brackets 0.3, unbalanced double
  quotes or code fences 0.2, all capitals (20+ characters) 0.3, truncated (ends in ``...`` right after a letter,
  or a last line of 8+ words ending in a letter, ``,`` ``-`` or ``(`` without final punctuation) 0.4; at least 0.
* ``length``: the output length (characters of all output texts, taken as ``ln(1 + n)``) against the task's
  norm, the quartiles of the same measure over the task's most recent accepted examples: 1 inside Tukey's
  fences ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``, falling linearly to 0 at ``1.5 IQR`` beyond a fence (IQR at least
  0.25). Left out while the task has fewer than ``length_min_examples`` accepted examples.

The norm is computed once per open kit and task and cached, so one run scores consistently. The ``prepare`` hook
makes what depends on the example alone (repetition, structure, the length measure; in a worker under parallel
intake), ``score`` applies the norm (read from the store, so in the writer). Examples without any
output text get no score. Settings: ``[plugin.coherence]`` (see docs/scoring.md).
"""

from __future__ import annotations

import math
import re
import weakref
from typing import Any

from dspy_trainkit import ConfigError, hookimpl
from dspy_trainkit.pluginkit import tokens

DIMENSION = "coherence"
PARTS = ("repetition", "structure", "length")
DEFAULTS: dict[str, Any] = {
    "weights": {"repetition": 1.0, "structure": 1.0, "length": 1.0},
    "length_min_examples": 20,
    "length_sample": 2000,
}
MIN_IQR = 0.25  # in ln(1 + characters): lengths within about 28% of each other are "the same length"

_SMILEY = re.compile(r"[:;]-?[()]")  # ":)" is not a bracket
_LIST_MARKER = re.compile(r"(?:^|(?<=\s))\w{1,2}\)")  # nor, perhaps, the ")" of "1) add" or "a) the first"
_FINAL_OK = frozenset(".!?:;\"'`)]}>*|…»”’")
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))
_BRACKET = re.compile(r"[()\[\]{}]")  # one pass over the text instead of one per bracket

# open kit -> {task: (q1, q3, iqr) or None}; weak, so a closed and dropped kit takes its norms with it
_norms: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, float, float] | None]] = weakref.WeakKeyDictionary()


# ---- text ------------------------------------------------------------------------------------------------

def texts(values: dict[str, Any]) -> dict[str, str]:
    """The text of each field that holds text (a string, or a list of strings joined by newlines)."""
    found = {}
    for name, value in values.items():
        if isinstance(value, str):
            text = value.strip()
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            text = "\n".join(value).strip()
        else:
            continue
        if text:
            found[name] = text
    return found


def repeated_share(text: str) -> float:
    """The larger of the share of repeated word trigrams and the share of repeated sentences (3+ words).
    Words and the lowercased text come from the shared tokenisation (`pluginkit.tokens`)."""
    if len(text) < 11:  # six words (four trigrams, the least counted) need 11 characters: skip tokenising
        return 0.0
    tokenised = tokens(text)
    words = tokenised.words
    share = 0.0
    total = len(words) - 2
    if total >= 4:
        share = 1.0 - len(set(zip(words, words[1:], words[2:], strict=False))) / total
    if total >= 4 and ("." in text or "\n" in text or "!" in text or "?" in text):
        flat = tokenised.lower.replace("\n", ". ").replace("! ", ". ").replace("? ", ". ")
        sentences = [s for s in (part.strip(" .") for part in flat.split(". ")) if s.count(" ") >= 2]
        if len(sentences) >= 2:
            share = max(share, 1.0 - len(set(sentences)) / len(sentences))
    return share


def structure_penalty(text: str) -> float:
    """The summed penalties of one text for broken structure (see the module docstring)."""
    penalty = 0.0
    if _BRACKET.search(text) is not None:
        plain = _SMILEY.sub(" ", text) if ":" in text or ";" in text else text
        if not _paired(plain) and not _paired(_LIST_MARKER.sub(" ", plain)):
            penalty += 0.3  # "(see step 2)" pairs up as it is, "1) add 2) divide" without its list markers
    if text.count('"') % 2 or text.count("“") != text.count("”") or text.count("```") % 2:
        penalty += 0.2
    if len(text) >= 20 and text.isupper():
        penalty += 0.3
    if _truncated(text):
        penalty += 0.4
    return penalty


def _paired(text: str) -> bool:
    return all(text.count(o) == text.count(c) for o, c in _BRACKETS)


def _truncated(text: str) -> bool:
    last = text[-1]
    if last in ".…" and text.endswith(("...", "…")):
        before = text.rstrip(".…")[-1:]
        return before.isalpha()  # "and then we..." stops mid-sentence; "2, 4, 8, ..." does not
    if last in _FINAL_OK or last.isdigit():
        return False
    line = text.rsplit("\n", 1)[-1]
    return line.count(" ") >= 7 and (last.isalpha() or last in ",-(")


def length_measure(outputs: dict[str, str]) -> float:
    return math.log1p(sum(map(len, outputs.values())))


def length_score(measure: float, norm: tuple[float, float, float]) -> float:
    q1, q3, iqr = norm
    outside = max(q1 - 1.5 * iqr - measure, measure - (q3 + 1.5 * iqr), 0.0)
    return max(0.0, 1.0 - outside / (1.5 * iqr))


def quartiles(values: list[float]) -> tuple[float, float]:
    """Q1 and Q3 with linear interpolation between order statistics (numpy's default method)."""
    ordered = sorted(values)

    def at(q: float) -> float:
        pos = q * (len(ordered) - 1)
        low = math.floor(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.75)


# ---- scoring ---------------------------------------------------------------------------------------------

def parts(example: Any, norm: tuple[float, float, float] | None) -> dict[str, float] | None:
    """The parts of one example's coherence, or None when its outputs hold no text."""
    made = features(example)
    return None if made is None else with_length(made, norm)


def features(example: Any) -> tuple[dict[str, float], float] | None:
    """What one example's coherence takes from the example alone (the `prepare` hook's value, which parallel
    intake makes in a worker): its repetition and structure parts and its length measure; None without output
    text. The length part needs the task's norm, read from the store: `with_length` adds it in the writer."""
    outputs = texts(example.outputs)
    if not outputs:
        return None
    # inputs an output could echo: texts of three or more words (a label such as a domain has no two spaces,
    # so the usual inputs are passed over without making their texts)
    inputs = {tokens(t).squashed for t in texts(example.inputs).values() if t.count(" ") >= 2} if any(
        type(v) is not str or v.count(" ") >= 2 for v in example.inputs.values()) else ()
    share = penalty = 0.0
    for text in outputs.values():
        echo = bool(inputs) and tokens(text).squashed in inputs
        share = max(share, 1.0 if echo else repeated_share(text))
        penalty = max(penalty, structure_penalty(text))
    return {"repetition": 1.0 - share, "structure": max(0.0, 1.0 - penalty)}, length_measure(outputs)


def with_length(made: tuple[dict[str, float], float], norm: tuple[float, float, float] | None) -> dict[str, float]:
    """The parts of `features` with the length part against `norm` (when the task has one)."""
    found, measure = made
    found = dict(found)
    if norm is not None:
        found["length"] = length_score(measure, norm)
    return found


def combine(found: dict[str, float], weights: dict[str, float]) -> float | None:
    total = sum(weights[p] for p in found)
    if total == 0:
        return None
    return round(sum(v * weights[p] for p, v in found.items()) / total, 6)


def task_norm(kit: Any, task: str, options: dict[str, Any]) -> tuple[float, float, float] | None:
    """(Q1, Q3, IQR) of ln(1 + output characters) over the task's most recent accepted examples, or None when
    there are fewer than `length_min_examples`. Computed once per kit and task."""
    cache = _norms.setdefault(kit, {})
    if task not in cache:
        measures = []
        for example in kit.examples(task=task, status="accepted", order="-created",
                                    limit=options["length_sample"]):
            outputs = texts(example.outputs)
            if outputs:
                measures.append(length_measure(outputs))
        if len(measures) < options["length_min_examples"]:
            cache[task] = None
        else:
            q1, q3 = quartiles(measures)
            cache[task] = (q1, q3, max(q3 - q1, MIN_IQR))
    return cache[task]


def read_options(kit: Any, task: str, domain: str | None) -> dict[str, Any]:
    """This plugin's settings for a task and domain, checked, with defaults filled in."""
    raw = kit.plugin_settings("coherence", task, domain, known=DEFAULTS)
    weights = raw.get("weights", {})
    if not isinstance(weights, dict) or set(weights) - set(PARTS) or any(
            isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in weights.values()):
        raise ConfigError(f"[plugin.coherence] weights: expected a table of {', '.join(PARTS)} = number >= 0, "
                          f"got {weights!r}")
    options = {"weights": {**DEFAULTS["weights"], **{k: float(v) for k, v in weights.items()}}}
    for key in ("length_min_examples", "length_sample"):
        value = raw.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"[plugin.coherence] {key}: must be a whole number >= 1, got {value!r}")
        options[key] = value
    return options


@hookimpl
def prepare(examples, context):
    return {index: features(example) for index, example in enumerate(examples)}


@hookimpl
def score(examples, context, prepared):
    by_label: dict[tuple[str, str | None], dict[str, Any]] = {}
    norms: dict[str, tuple[float, float, float] | None] = {}
    scores = {}
    for index, example in enumerate(examples):
        key = (example.task, example.domain)
        if key not in by_label:
            by_label[key] = read_options(context, example.task, example.domain)
        options = by_label[key]
        norm = None
        if options["weights"]["length"] > 0:
            if example.task not in norms:  # the norm is the task's: its sample settings are the task's too
                norms[example.task] = task_norm(context, example.task, read_options(context, example.task, None))
            norm = norms[example.task]
        made = prepared[index] if index in prepared else features(example)
        found = None if made is None else with_length(made, norm)
        if found is None:
            continue
        value = combine(found, options["weights"])
        if value is not None:
            scores[index] = {DIMENSION: value}
    return scores
