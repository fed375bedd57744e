"""Built-in validator 'consistency': a problem, its solution and its answer must agree.

Why: generated and scraped problem sets are full of pairs that look fine field by field but teach the wrong
thing: a worked solution that ends at 14 while the answer says 12, an "answer" that is really a refusal
("cannot be determined", "N/A"), a "problem" that asks nothing. An optimizer that picks such an example as a
demonstration shows the model a wrong or empty answer, so these are caught before they are stored.

Checks, for examples that have the fields (names configurable; the answer is looked up in the outputs, the
solution and the problem in the outputs, then the inputs):

* `answer-not-reached` (error): the answer is a single number (`12`, `-3.5`, `1,200`, `3/4`, `1 1/2`, `50%`,
  `$1,200`, `12 cm`, `x = 12`, `\\boxed{12}`, `\\frac{3}{4}`) and the solution, when there is one, mentions no
  number equal to it. Equal means within the relative `tolerance`, or within the rounding of the less precise of
  the two (answer `0.33` is reached by `1/3`; `0.5` by `= 1/2`; `1,200` by `1200`; `50%` by `0.5`); number words
  (up to "ninety-nine", "hundred", "thousand", "million", "dozen", "half", "quarter") and "1.2 million" count.
  Answers that are not one number (`x = 2 or x = 3`, `(2, 3)`, `4π`, `3√2`, words) are not checked.
* `unanswerable` (error): the example has a problem or a solution and its answer is a refusal or a placeholder
  (`cannot be determined`, `not enough information`, `unknown`, `N/A`, `TBD`, `?`, `-`, `...`). An empty
  answer is left to `basic_checks` (`empty-value`).
* `no-question` (warning): the problem text has no question mark and none of the `question_words` (find,
  compute, calculate, solve, what, how, determine, evaluate, simplify, prove, show, add, ...). English only.

Settings, `[plugin.consistency]` (overridable per task and domain like every plugin table):

    answer_field = "answer"          # a name or a list of names; the first present is used
    solution_field = "solution"
    problem_field = "problem"
    tolerance = 1e-6                 # relative tolerance when comparing numbers
    answer_not_reached = "error"     # severity of each check: "error", "warning" or "off"
    unanswerable = "error"
    no_question = "warning"
    unanswerable_phrases = [...]     # replaces the built-in list (see UNANSWERABLE below)
    question_words = [...]           # replaces the built-in list (see QUESTION_WORDS below)
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from dspy_trainkit import ConfigError, Finding, hookimpl
from dspy_trainkit.pluginkit import check_each, unknown_settings

if TYPE_CHECKING:
    from dspy_trainkit import Example, Kit

NAME = "consistency"
CHECKS = ("answer_not_reached", "unanswerable", "no_question")  # settings keys; the finding codes use '-' for '_'
LEVELS = ("error", "warning", "off")

UNANSWERABLE = (
    "cannot be determined", "can not be determined", "can't be determined", "cannot determine",
    "cannot be answered", "cannot be solved", "cannot be calculated", "cannot be computed", "cannot be found",
    "it cannot be determined", "the answer cannot be determined", "impossible to determine", "impossible to say",
    "not enough information", "not enough info", "insufficient information", "insufficient data",
    "not enough data", "there is not enough information", "there is insufficient information",
    "information is insufficient", "no answer", "no answer given", "not answerable", "unanswerable",
    "not applicable", "unknown", "n/a", "n.a.", "tbd", "tba", "to be determined", "todo", "i don't know",
    "i do not know", "idk", "none given",
)  # not "na", "null", "nan", "none", "undefined": sodium, SQL, IEEE floats and math have these as real answers
QUESTION_WORDS = (
    "find", "compute", "calculate", "solve", "what", "how", "determine", "evaluate", "simplify", "prove", "show",
    "explain", "express", "write", "give", "estimate", "identify", "list", "name", "which", "who", "whom",
    "whose", "when", "where", "why", "derive", "factor", "factorise", "factorize", "expand", "convert", "graph",
    "plot", "sketch", "describe", "compare", "choose", "select", "state", "fill", "complete", "rewrite", "round",
    "verify", "decide", "predict", "check", "count", "classify", "justify", "rank", "arrange", "construct",
    "draw", "differentiate", "integrate", "translate", "summarize", "summarise", "define", "approximate",
    "add", "subtract", "multiply", "divide", "reduce", "measure", "sort", "order", "work out", "figure out",
    "true or false", "how many", "how much",
)
DEFAULTS: dict[str, Any] = {
    "answer_field": "answer", "solution_field": "solution", "problem_field": "problem", "tolerance": 1e-6,
    "answer_not_reached": "error", "unanswerable": "error", "no_question": "warning",
    "unanswerable_phrases": list(UNANSWERABLE), "question_words": list(QUESTION_WORDS),
}

# ---- reading numbers --------------------------------------------------------------------------------------

_LATEX = (  # (substrings of which one must be present, pattern, replacement): most texts skip most patterns
    (("frac",), re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"(\1)/(\2)"),
    (("\\text", "\\math", "\\mbox", "\\operatorname"),
     re.compile(r"\\(?:text|mathrm|textrm|mbox|operatorname)\s*\{([^{}]*)\}"), r" \1"),
    (("boxed",), re.compile(r"\\boxed\s*\{([^{}]*)\}"), r"\1"),
    (("{,}",), re.compile(r"\{,\}"), "."),
    (("\\,", "\\;", "\\:", "\\!", "\\ ", "~", "\u2009", "\u202f", "\u00a0"),
     re.compile(r"(?<=\d)(?:\\[,;:! ]|~|[\u2009\u202f\u00a0])(?=\d{3}(?!\d))"), ""),  # 1\,200, 1 200 -> 1200
    (("\\times", "\\cdot"), re.compile(r"\\(?:times|cdot)"), "×"),
    (("\\%",), re.compile(r"\\%"), "%"),
    (("\\pi",), re.compile(r"\\pi\b"), "π"),
    (("\\sqrt",), re.compile(r"\\sqrt"), "√"),
)
_FRACTION_PARENS = re.compile(r"\((\d+(?:\.\d+)?)\)/\((\d+(?:\.\d+)?)\)")


def _untex(text: str) -> str:
    """Plain text numbers out of LaTeX: \\frac{a}{b} -> a/b, \\boxed{x} -> x, 1\\,200 -> 1200, unicode minus."""
    if "\\" in text or "{" in text or not text.isascii():
        for needles, pattern, replacement in _LATEX:
            for needle in needles:  # a plain loop: a generator per pattern costs more than most substitutions
                if needle in text:
                    text = pattern.sub(replacement, text)
                    break
        text = text.replace("\u2212", "-").replace("\u2013", "-")
        if ")/(" in text:
            text = _FRACTION_PARENS.sub(r"\1/\2", text)
    return text


_ANSWER = re.compile(
    r"^\s*(?i:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)\s*)?"  # "The answer is 12"
    r"(?:[A-Za-z]\w{0,12}\s*(?:=|≈)\s*)?"  # "x = 12"
    r"(?:(?i:about|approximately|approx\.?|around|roughly|nearly|almost)\s+|[≈~]\s*)?"  # "≈ 3.14", "about 12"
    r"(?P<sign>[-+])?\s*(?:[$€£¥]\s*)?"
    r"(?:(?P<whole>\d+)\s+(?=\d+\s*/))?"  # the 1 of "1 1/2"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?:[eE](?P<exp>[-+]?\d+)|\s*[×x*]\s*10\s*\^\s*\{?(?P<exp10>[-+]?\d+)\}?)?"
    r"(?P<rest>.*?)\s*$", re.S)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_SCALED = re.compile(r"(\d+(?:\.\d+)?)\s*(thousand|million|billion|trillion)\b", re.I)
_UNIT_EXPONENT = re.compile(r"\^\s*\{?[23]\}?|[²³]|(?<=[A-Za-z])[23]\b")
_NOT_A_UNIT = re.compile(r"[\d=<>±,;()\[\]{}π√+*|]|\b(?:or|and|pi|sqrt|plus|minus|times|to|i)\b", re.I)


class Number:
    """A number read from text: its value, how many decimals it was written with (None: exact), whether it is a
    percentage, and its digits as written, without sign or thousands separators (`literal`, for a plain decimal
    number or fraction; else None)."""

    __slots__ = ("value", "decimals", "percent", "literal")

    def __init__(self, value: float, decimals: int | None, percent: bool = False, literal: str | None = None):
        self.value, self.decimals, self.percent, self.literal = value, decimals, percent, literal


def parse_answer(value: Any) -> Number | None:
    """The answer as one number, or None when it is not a single number (words, several numbers, 4π)."""
    kind = type(value)
    if kind is str:
        digits = value.strip()
        if digits.isdigit() and digits.isascii():  # the common case, without the regex
            return Number(float(digits), 0, literal=digits)
    elif kind is int:
        return Number(float(value), None, literal=str(abs(value)))
    elif kind is float:
        if not math.isfinite(value):
            return None
        literal = str(int(abs(value))) if value.is_integer() else repr(abs(value))
        return Number(value, None, literal=None if "e" in literal else literal)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Number(float(value), None) if math.isfinite(value) else None
    if not isinstance(value, str) or len(value) > 80:
        return None
    match = _ANSWER.match(_untex(value.replace("$", " ")))
    if match is None:
        return None
    rest = match.group("rest").strip().rstrip(".").strip()
    percent = False
    scale = _SCALES.get(rest.lower()) if rest else None
    if rest and scale is None:
        if rest in ("%", "percent", "per cent"):
            percent = True
        elif len(rest) > 30 or len(rest.split()) > 4 or _NOT_A_UNIT.search(_UNIT_EXPONENT.sub("", rest)):
            return None
    number = _number(match.group("num"), match.group("den"), match.group("exp") or match.group("exp10"))
    if number is None:
        return None
    if match.group("whole"):
        number = Number(int(match.group("whole")) + number.value, None)
    elif number.decimals is not None:
        number.literal = match.group("num").replace(",", "")
    elif match.group("den") is not None and not match.group("exp") and not match.group("exp10"):
        number.literal = f"{match.group('num').replace(',', '')}/{match.group('den')}"
    if scale is not None:  # "1.2 million"
        number = Number(number.value * scale, None)
    if match.group("sign") == "-":
        number.value = -number.value
    number.percent = percent
    return number


def _number(num: str, den: str | None, exp: str | None) -> Number | None:
    digits = num.replace(",", "")
    decimals = len(digits) - digits.index(".") - 1 if "." in digits else 0
    value = float(digits)
    if den is not None:
        denominator = float(den)
        if denominator == 0:
            return None
        return Number(value / denominator, None)
    if exp is not None:
        return Number(value * 10.0 ** int(exp), None)
    return Number(value, decimals)


_WORD = re.compile(r"[^\W\d_]+")
_SOLUTION_NUMBER = re.compile(
    r"(?P<neg>-)?(?P<num>\.?\d[\d,.]*)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?:[eE](?P<exp>[-+]?\d+)|\s*[×x*]\s*10\s*\^\s*\{?(?P<exp10>[-+]?\d+)\}?)?"
    r"(?P<pct>\s*%)?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_PLAIN = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_SIGN_BEFORE = frozenset(" \t\n([{=:;,/$≈")  # a minus after these is a sign; after "10" or "x " an operator
_EUROPEAN = re.compile(r"(?<![\w.,])(\d+),(\d{1,2})(?![\d,])|(?<![\w.,])(\d{1,3}(?: \d{3})+)(?![\d,.])")
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_NUMBER_WORDS: dict[str, tuple[float, int | None]] = {
    **{w: (float(v), 0) for w, v in {**_UNITS, **_TENS}.items()},
    "hundred": (100.0, 0), "thousand": (1000.0, 0), "million": (1e6, 0), "dozen": (12.0, 0),
    "half": (0.5, None), "quarter": (0.25, None),
}

Found = tuple[float, "int | None"]  # (value, decimals written; None: exact)


def _decimal(token: str) -> Found:
    return float(token), (len(token) - token.index(".") - 1 if "." in token else 0)


def solution_numbers(text: str) -> list[Found]:
    """The numbers written in digits in a solution as (value, decimals): fractions (and their parts),
    percentages (also as fractions of 1), scientific notation, thousands separators."""
    found: list[Found] = []
    add = found.append
    for match in _SOLUTION_NUMBER.finditer(text):
        num, den, exp, pct = match.group("num", "den", "exp", "pct")
        exp = exp or match.group("exp10")
        num = num.rstrip(".,")
        if _THOUSANDS.fullmatch(num):
            parts = [num.replace(",", "")]
        elif "," in num or num.count(".") > 1:  # "1,2,3", "1.2.3": several numbers
            parts = _PLAIN.findall(num)
        else:
            parts = [num]
        if not parts or not parts[-1][:1].replace(".", "").isdigit():
            continue
        start = match.start()
        negative = match.group("neg") is not None and (start == 0 or text[start - 1] in _SIGN_BEFORE)
        for token in parts[:-1]:
            add(_decimal(token))
        value, decimals = _decimal(parts[-1])
        if den is not None:
            add((value, decimals))  # 4/5 also mentions 4 and 5
            denominator = float(den)
            add((denominator, 0))
            if denominator == 0:
                continue
            value, decimals = value / denominator, None
        elif exp is not None:
            value, decimals = value * 10.0 ** int(exp), None
        if negative:
            value = -value
        if pct is not None:
            add((value / 100, None if decimals is None else decimals + 2))
        add((value, decimals))
    return found


def fallback_numbers(text: str) -> list[Found]:
    """Numbers a solution may write in other ways: words (twelve, twenty-five, a dozen), 1.2 million, 3,5 and
    1 200."""
    found: list[Found] = []
    words = _WORD.findall(text.lower())
    get = _NUMBER_WORDS.get
    for index, word in enumerate(words):
        number = get(word)
        if number is not None:
            found.append(number)
            if word in _TENS and index + 1 < len(words) and 0 < _UNITS.get(words[index + 1], 0) < 10:
                found.append((number[0] + _UNITS[words[index + 1]], 0))  # twenty-five
    if "illion" in text or "housand" in text:
        for match in _SCALED.finditer(text):  # 1.2 million
            found.append((float(match.group(1)) * _SCALES[match.group(2).lower()], None))
    for match in _EUROPEAN.finditer(text):
        if match.group(1):
            found.append((float(f"{match.group(1)}.{match.group(2)}"), len(match.group(2))))
        else:
            found.append((float(match.group(3).replace(" ", "")), 0))
    return found


def mentions(text: str, literal: str) -> bool:
    """Whether `text` writes the number `literal` as a number of its own: "x = 12." mentions 12, "120", "0.12",
    "12.5" and "-12" do not; "x = -3" mentions -3, "10-3" does not. A quick test before reading every number of
    a solution."""
    size = len(literal)
    negative = literal[0] == "-"
    start = text.find(literal)
    while start != -1:
        before = text[start - 1] if start else " "
        after = text[start + size:start + size + 2]
        if negative:
            clash = not (start == 0 or before in _SIGN_BEFORE)
        else:
            clash = before.isdigit() or before in ".-" or (before == "," and start > 1 and text[start - 2].isdigit())
        if not (clash or after[:1].isdigit() or (after[:1] in ".," and after[1:2].isdigit())):
            return True
        start = text.find(literal, start + 1)
    return False


def reaches(answer: Number, numbers: list[Found], tolerance: float) -> bool:
    """Whether one of `numbers` equals the answer: within the relative `tolerance`, or within the rounding of the
    less precise of the two (0.33 reaches 1/3, 3.14 reaches 3.14159). A percentage may also be reached as a
    fraction of 1 (50% by 0.5)."""
    targets = [(answer.value, answer.decimals)]
    if answer.percent:
        targets.append((answer.value / 100, None if answer.decimals is None else answer.decimals + 2))
    for target, target_decimals in targets:
        target_rounding = 0.5 * 10.0 ** -target_decimals if target_decimals else 0.0
        for value, decimals in numbers:
            difference = abs(value - target)
            if difference <= 1e-9 or difference <= tolerance * max(abs(value), abs(target)):
                return True
            rounding = 0.5 * 10.0 ** -decimals if decimals else 0.0
            if difference <= max(rounding, target_rounding) * (1 + 1e-9):
                return True
    return False


# ---- settings -----------------------------------------------------------------------------------------------

class Rules:
    """The consistency settings in force for one (task, domain)."""

    __slots__ = ("answer", "solution", "problem", "tolerance", "answer_not_reached", "unanswerable_level",
                 "no_question", "unanswerable", "question_words", "question_phrases")

    def __init__(self, config: dict[str, Any]):
        merged = unknown_settings(NAME, config, DEFAULTS)
        self.answer = _names(merged["answer_field"], "answer_field")
        self.solution = _names(merged["solution_field"], "solution_field")
        self.problem = _names(merged["problem_field"], "problem_field")
        tolerance = merged["tolerance"]
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
            raise ConfigError(f"[plugin.{NAME}] tolerance = {tolerance!r}: use a number in 0..1 (relative)")
        self.tolerance = float(tolerance)
        levels: dict[str, str | None] = {}
        for key in CHECKS:
            level = merged[key]
            if level not in LEVELS:
                raise ConfigError(f"[plugin.{NAME}] {key} = {level!r}: use one of {', '.join(LEVELS)}")
            levels[key] = None if level == "off" else level
        # the severity of each check, None when it is off
        self.answer_not_reached = levels["answer_not_reached"]
        self.unanswerable_level = levels["unanswerable"]
        self.no_question = levels["no_question"]
        phrases = [_key(p) for p in _strings(merged["unanswerable_phrases"], "unanswerable_phrases")]
        self.unanswerable = (frozenset(phrases), tuple(p for p in phrases if " " in p))
        words = [" ".join(w.lower().split()) for w in _strings(merged["question_words"], "question_words")]
        self.question_words = frozenset(w for w in words if w and " " not in w)
        self.question_phrases = tuple(w for w in words if " " in w)


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[plugin.{NAME}] {key} = {value!r}: use a list of strings")
    return value


def _names(value: Any, key: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(v, str) and v for v in names):
        raise ConfigError(f"[plugin.{NAME}] {key} = {value!r}: use a field name or a list of field names")
    return tuple(names)


_SPACES = re.compile(r"\s+")
_PLACEHOLDER_MARKS = " -\u2013\u2014_.?!\u2026*/\\#"


def _key(text: str) -> str:
    """An answer as compared with the unanswerable phrases: lower case, single spaces, no closing punctuation."""
    return _SPACES.sub(" ", text.replace("\u2019", "'").strip().lower()).rstrip(".!")


def _lookup(example: Any, names: tuple[str, ...], outputs_only: bool = False) -> tuple[str, str, Any] | None:
    """(part, name, value) of the first of `names` in the outputs (or, unless `outputs_only`, the inputs)."""
    outputs = example.outputs
    for name in names:
        if name in outputs:
            return "outputs", name, outputs[name]
        if not outputs_only and name in example.inputs:
            return "inputs", name, example.inputs[name]
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return None


def _asks(text: str, rules: Rules) -> bool:
    """Whether a problem text asks something: a question mark, or one of the question words."""
    if "?" in text or "\uff1f" in text or "\u061f" in text:  # also the full-width and the Arabic question mark
        return True
    lower = text.lower()
    first = _WORD.search(lower)
    if first is not None and first.group(0) in rules.question_words:  # "Solve ...", "Find ..."
        return True
    return not rules.question_words.isdisjoint(_WORD.findall(lower)) or any(
        phrase in lower for phrase in rules.question_phrases)


def _is_unanswerable(answer: Any, rules: Rules) -> bool:
    if not isinstance(answer, str) or not answer.strip() or answer.lstrip()[:1].isdigit():
        return False
    key = _key(answer)
    exact, prefixes = rules.unanswerable
    if key in exact or not key.strip(_PLACEHOLDER_MARKS):  # "?", "-", "...", but not "∅" or "∞"
        return True
    return any(key.startswith(p) and not key[len(p)].isalnum() for p in prefixes if len(key) > len(p))


# ---- the check ----------------------------------------------------------------------------------------------

def check_example(example: Any, rules: Rules) -> list[Finding]:
    """Consistency findings for one example under `rules`."""
    findings: list[Finding] = []
    problem = _lookup(example, rules.problem)
    answer = _lookup(example, rules.answer, outputs_only=True)
    if problem is None and answer is None:
        return findings
    if problem is not None and rules.no_question:
        text = _text(problem[2])
        if text and not _asks(text, rules) and text.strip():
            field = f"{problem[0]}.{problem[1]}"
            findings.append(Finding(severity=rules.no_question, code="no-question", field=field,
                                    message=f"{field} asks no question (no '?' and no word such as "
                                            "find, compute, what, how)"))
    if answer is None:
        return findings
    value = answer[2]
    solution = _lookup(example, rules.solution)
    if rules.unanswerable_level and (problem is not None or solution is not None) and _is_unanswerable(
            value, rules):
        field = f"outputs.{answer[1]}"
        shown = value.strip() if len(value.strip()) <= 40 else value.strip()[:37] + "..."
        findings.append(Finding(severity=rules.unanswerable_level, code="unanswerable", field=field,
                                message=f"{field} {shown!r} is not an answer; the problem is unanswerable "
                                        "as stated or the answer is missing"))
        return findings
    if solution is None or not rules.answer_not_reached:
        return findings
    text = _text(solution[2])
    if not text:
        return findings
    number = parse_answer(value)
    if number is None:
        return findings
    literal = number.literal
    if literal is not None:
        if number.value < 0:
            literal = "-" + literal
        elif literal[0] == ".":
            literal = "0" + literal
        if mentions(text, literal) or (
                number.value >= 1000 and number.decimals == 0 and mentions(text, f"{int(number.value):,}")):
            return findings
    if not text.strip():
        return findings
    untexed = _untex(text)
    if untexed is not text and literal is not None and mentions(untexed, literal):
        return findings
    text = untexed
    if reaches(number, solution_numbers(text), rules.tolerance) or reaches(
            number, fallback_numbers(text), rules.tolerance):
        return findings
    field = f"outputs.{answer[1]}"
    shown = value if isinstance(value, str) else repr(value)
    findings.append(Finding(severity=rules.answer_not_reached, code="answer-not-reached", field=field,
                            message=f"{solution[0]}.{solution[1]} never reaches {field} {shown.strip()!r}: "
                                    "no number in the solution equals it"))
    return findings


@hookimpl
def validate(examples: list[Example], context: Kit) -> dict[int, list[Finding]]:
    """Findings per index in `examples`, with each example's task and domain settings."""
    return check_each(examples, context, NAME, Rules, check_example)
