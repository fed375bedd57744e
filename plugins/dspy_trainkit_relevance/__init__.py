"""Built-in scorer 'relevance': how well an example's text fits its topic (or, without one, its domain) label.

A cheap lexical signal, not an understanding of the text: it finds words, not meaning. The example's text is the
words of its input and output text fields, each lowercased and lightly stemmed (``fractions`` and ``fraction``
match, as do ``solving`` and ``solve``). Fields that hold nothing but label words (a ``topic_hint`` of
``"fractions"``) are left out, so that a pipeline's hints do not vouch for its own output.

The label that decides is the most specific one the example has: its topic, else its domain. For that label::

    names    = share of the label name's words found in the text   (name split on "_", "-" and spaces)
    keywords = min(1, phrases found / min(min_hits, phrases given)) (a phrase counts when all its words are found)
    relevance = max(names, keywords)       (just `names` when no keywords are given for the label)

Keywords come from ``[plugin.relevance] keywords = { fractions = ["numerator", "denominator"] }``, keyed by
topic or domain name. By default only labels with keywords are scored: a label's own name is rarely in a good
example's text ("What is 7 * 8?" never says "arithmetic"), so scoring by names alone would mark sound examples
irrelevant. ``label_words = true`` scores every labelled example by its label's name too. An example with
neither topic nor domain, a label without keywords (unless label_words), or no text gets no relevance score.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from dspy_trainkit import ConfigError, hookimpl

DIMENSION = "relevance"
DEFAULTS: dict[str, Any] = {"keywords": {}, "min_hits": 2, "fields": None, "label_words": False}
STOPWORDS = frozenset("a an and are as at be by for from in into is it of on or the to with".split())

_WORD = re.compile(r"[^\W_]+")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed, final -e), the same on both sides of every comparison."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def terms(text: str) -> set[str]:
    """The stems of the words of a text."""
    return {stem(w) for w in _WORD.findall(text.lower())}


@functools.lru_cache(maxsize=4096)
def label_terms(name: str) -> frozenset[str]:
    """The stems of a label name's words, without stopwords ("systems_of_equations" -> system, equation)."""
    return frozenset(stem(w) for w in _WORD.findall(name.lower()) if w not in STOPWORDS)


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return None


def example_terms(example: Any, fields: list[str] | None, hint_terms: frozenset[str]) -> set[str]:
    """The stems of the example's text: the named fields, or every text field that is not just label words."""
    found: set[str] = set()
    for values in (example.inputs, example.outputs):
        for name, value in values.items():
            if fields is not None and name not in fields:
                continue
            text = _text_of(value)
            if not text:
                continue
            words = terms(text)
            if fields is None and words <= hint_terms:
                continue  # a hint field such as topic_hint = "fractions"
            found |= words
    return found


def relevance(text_terms: set[str], name_terms: frozenset[str], phrases: list[frozenset[str]],
              min_hits: int) -> float | None:
    """The formula of the module docstring; None when the label has neither words nor keywords, or the example
    has no text to look at."""
    if not text_terms:
        return None
    parts = []
    if name_terms:
        parts.append(len(name_terms & text_terms) / len(name_terms))
    if phrases:
        hits = sum(1 for phrase in phrases if phrase <= text_terms)
        parts.append(min(1.0, hits / min(min_hits, len(phrases))))
    return round(max(parts), 6) if parts else None


def read_options(kit: Any, task: str, domain: str | None) -> dict[str, Any]:
    """This plugin's settings for a task and domain, checked, with keyword phrases stemmed."""
    raw = kit.plugin_settings("relevance", task, domain, known=DEFAULTS)
    keywords = raw.get("keywords", {})
    if not isinstance(keywords, dict) or not all(
            isinstance(v, list) and all(isinstance(k, str) and k.strip() for k in v) for v in keywords.values()):
        raise ConfigError("[plugin.relevance] keywords: expected a table of label name = list of words or "
                          f"phrases, e.g. {{ fractions = [\"numerator\", \"denominator\"] }}, got {keywords!r}")
    min_hits = raw.get("min_hits", DEFAULTS["min_hits"])
    if isinstance(min_hits, bool) or not isinstance(min_hits, int) or min_hits < 1:
        raise ConfigError(f"[plugin.relevance] min_hits: must be a whole number >= 1, got {min_hits!r}")
    fields = raw.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise ConfigError(f"[plugin.relevance] fields: must be a list of field names, got {fields!r}")
    label_words = raw.get("label_words", False)
    if not isinstance(label_words, bool):
        raise ConfigError(f"[plugin.relevance] label_words: must be true or false, got {label_words!r}")
    phrases = {label: [p for p in (label_terms(k) for k in words) if p] for label, words in keywords.items()}
    return {"keywords": phrases, "min_hits": min_hits, "fields": fields, "label_words": label_words}


@hookimpl
def score(examples, context):
    by_label: dict[tuple[str, str | None], dict[str, Any]] = {}
    scores = {}
    for index, example in enumerate(examples):
        label = example.topic or example.domain
        if label is None:
            continue
        key = (example.task, example.domain)
        if key not in by_label:
            by_label[key] = read_options(context, example.task, example.domain)
        options = by_label[key]
        keywords = options["keywords"].get(label, [])
        if not keywords and not options["label_words"]:
            continue
        hints = frozenset().union(*(label_terms(x) for x in (example.topic, example.domain, example.difficulty)
                                    if x))
        value = relevance(example_terms(example, options["fields"], hints), label_terms(label),
                          keywords, options["min_hits"])
        if value is not None:
            scores[index] = {DIMENSION: value}
    return scores
