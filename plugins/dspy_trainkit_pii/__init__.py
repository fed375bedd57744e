"""Built-in validator 'pii': e-mail addresses and phone numbers in any input or output text.

Why: training examples end up in prompts (few-shot demonstrations), in exported files and in fine-tuning data.
Personal data copied in from support tickets, forum posts or scraped pages would then be repeated to every user
of the optimized program and handed to whoever receives the dataset. It is cheaper to keep it out at intake.

What counts (both deliberately conservative, so that math and QA data do not trip it):

* an e-mail address `local@domain.tld`, unless its domain (or a parent of it) is reserved for documentation
  (example.com, example.org, example.net, and the top-level domains `.example`, `.test`, `.invalid`,
  `.localhost`: nobody's mailbox) or listed in `allow`;
* a phone number written as one: international `+CC ...` with 8 to 15 digits; North American `(415) 555-2671`,
  `415-555-2671`, `415.555.2671`, `1-800-555-0199`; national numbers starting with 0 written in groups
  (`020 7946 0958`, `06 12 34 56 78`, `030-1234567`) with 10 or 11 digits; and any 7 to 15 digit number right
  after a word such as "phone", "tel", "call me at", "mobile", "fax", "contact". Plain numbers, years, sums
  like `123 + 456`, decimals and counting sequences (`01 02 03 04 05`) are not phone numbers.

Settings, `[plugin.pii]` (overridable per task and domain like every plugin table):

    severity = "error"          # or "warning": keep for review instead of rejecting
    emails = true               # look for e-mail addresses
    phones = true               # look for phone numbers
    allow = []                  # more e-mail domains that are fine, e.g. ["mycompany.com"] (subdomains too)
    ignore_fields = []          # field names (bare or inputs.NAME / outputs.NAME) not to look into

Findings have code `pii-email` or `pii-phone`, one per field and kind, and show the value masked.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dspy_trainkit import ConfigError, Finding, hookimpl
from dspy_trainkit.pluginkit import check_each, unknown_settings

if TYPE_CHECKING:
    from dspy_trainkit import Example, Kit

NAME = "pii"
DEFAULTS: dict[str, Any] = {"severity": "error", "emails": True, "phones": True, "allow": [], "ignore_fields": []}
SEVERITIES = ("error", "warning")
#: Reserved for documentation and testing (RFC 2606, RFC 6761): nobody's mailbox, always allowed.
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})

EMAIL = re.compile(
    r"(?<![\w.%+\-])([A-Za-z0-9][A-Za-z0-9._%+\-]{0,63})@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w\-])")

# Phone numbers in forms that plain numbers do not take. Each match is checked further in `_phone_ok`.
PHONE = re.compile(
    # +CC then digit groups: "+44 20 7946 0958", "+1 (415) 555-2671", "+4915112345678"
    r"(?P<intl>(?<![\w+])\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,6}(?!\w))"
    # North American: "(415) 555-2671", "415-555-2671", "415.555.2671", "1-800-555-0199"
    r"|(?P<nanp>(?<![\w.+\-/])(?:1[ .\-])?(?:\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}|\d{3}(?P<sep>[.\-])\d{3}(?P=sep)\d{4})"
    r"(?!\w|[.\-/]\d))"
    # national with a leading 0, in groups: "020 7946 0958", "06 12 34 56 78", "030-1234567"
    r"|(?P<national>(?<![\w.+\-/,])0\d{1,4}(?:[ \-]\d{2,8}){1,4}(?!\w|[.,\-/]\d))")
# Any 7-15 digit number right after a phone word: "call me at 5551234567", "Tel.: 030 1234567".
PHONE_AFTER_WORD = re.compile(
    r"(?i)\b(?:phone|telephone|tel|mobile|cellphone|fax|whatsapp|call|sms|contact)"
    r"(?:\s*(?:no|nr|number|num|me|us|him|her|them|at|on|is|[:.#\-]))*\s*"
    r"(?P<number>\+?\(?\d(?:[ ().\-]{0,2}\d){6,14})(?!\w)")
_DIGIT = re.compile(r"\d")
_SIGNED_DECIMAL = re.compile(r"\+\d+\.\d+")
_GROUP_SEPARATOR = re.compile(r"[ \-]")
# Every phone form above has 7 or more digits with at most two of " ().-" between neighbours: texts without
# such a run are skipped before the slower patterns run. Most texts are: sums ("100 - 50 - 30"), decimals and
# short numbers break the run.
_PHONE_GATE = re.compile(r"\d(?:[ ().\-]{0,2}\d){6,}")
# The same gate for ASCII text (most texts), over its bytes with each digit made "0" and each other character
# but the separators made "x": the pattern then starts with a literal, which the regex engine skips to at
# once, instead of testing every character for `\d` (0.7 against 1.7 us for a 200-character problem text).
_ASCII_PHONE_CLASSES = bytes(0x30 if 0x30 <= b <= 0x39 else b if b in b" ().-" else 0x78 for b in range(256))
_ASCII_PHONE_GATE = re.compile(rb"0(?:[ ().\-]{0,2}0){6,}")


def _could_hold_phone(text: str) -> bool:
    """Whether `text` has a run that `_PHONE_GATE` finds (the slower phone patterns look only there)."""
    if text.isascii():
        return _ASCII_PHONE_GATE.search(text.encode().translate(_ASCII_PHONE_CLASSES)) is not None
    return _PHONE_GATE.search(text) is not None


def _digits(text: str) -> str:
    return "".join(_DIGIT.findall(text))


def _phone_ok(match: re.Match[str], text: str) -> bool:
    """Whether a PHONE match is a phone number and not arithmetic or a list of numbers."""
    kind = match.lastgroup
    value = match.group(0)
    digits = len(_digits(value))
    if kind == "intl":
        before = text[:match.start()].rstrip()[-1:]  # "3 +12345678" is a sum
        if _SIGNED_DECIMAL.fullmatch(value):  # "+40.712776": a coordinate or a measurement
            return False
        return 8 <= digits <= 15 and not (before.isdigit() or (before != "" and before in ")]}"))
    if kind == "national":
        if not 10 <= digits <= 11:
            return False
        groups = [int(g) for g in _GROUP_SEPARATOR.split(value)]
        steps = {b - a for a, b in zip(groups, groups[1:], strict=False)}
        return len(groups) < 4 or len(steps) > 1  # "01 02 03 04 05" counts, it does not call
    return True


def _mask_email(local: str, domain: str) -> str:
    return f"{local[0]}***@{domain}"


def _mask_phone(value: str) -> str:
    digits = len(_digits(value))
    seen = 0
    out = []
    for char in value.strip():
        if char.isdigit():
            seen += 1
            out.append(char if seen > digits - 2 else "*")
        else:
            out.append(char)
    return "".join(out)


class Rules:
    """The pii settings in force for one (task, domain)."""

    __slots__ = ("severity", "emails", "phones", "allow", "ignore")

    def __init__(self, config: dict[str, Any]):
        merged = unknown_settings(NAME, config, DEFAULTS)
        self.severity = merged["severity"]
        if self.severity not in SEVERITIES:
            raise ConfigError(f"[plugin.{NAME}] severity = {self.severity!r}: use one of {', '.join(SEVERITIES)}")
        for key in ("emails", "phones"):
            if not isinstance(merged[key], bool):
                raise ConfigError(f"[plugin.{NAME}] {key} = {merged[key]!r}: use true or false")
        self.emails: bool = merged["emails"]
        self.phones: bool = merged["phones"]
        self.allow = RESERVED_DOMAINS + tuple(d.lower().strip(".") for d in _strings(merged["allow"], "allow"))
        self.ignore = frozenset(_strings(merged["ignore_fields"], "ignore_fields"))

    def allowed(self, domain: str) -> bool:
        domain = domain.lower()
        if domain.rsplit(".", 1)[-1] in RESERVED_TLDS:
            return True
        return any(domain == a or domain.endswith("." + a) for a in self.allow)


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[plugin.{NAME}] {key} = {value!r}: use a list of strings")
    return value


def _texts(value: Any) -> list[str]:
    """The strings in a value, looking into lists and mappings."""
    if type(value) is str:
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


def scan(text: str, rules: Rules, emails: list[str], phones: list[str]) -> None:
    """Add the masked e-mail addresses and phone numbers found in `text` to `emails` and `phones`."""
    if rules.emails and "@" in text:
        for match in EMAIL.finditer(text):
            if not rules.allowed(match.group(2)):
                emails.append(_mask_email(match.group(1), match.group(2)))
    if rules.phones:
        # The phone patterns run only around each run of digits that could be a phone number (they see the text
        # before it for their look-behinds; two characters after it for their look-aheads): scanning a whole
        # solution with them costs ten times more.
        for run in _PHONE_GATE.finditer(text):
            start, end = run.start(), run.end() + 2
            before = len(phones)
            for match in PHONE.finditer(text, max(0, start - 2), end):
                if _phone_ok(match, text):
                    phones.append(_mask_phone(match.group(0)))
            if len(phones) == before:
                for match in PHONE_AFTER_WORD.finditer(text, max(0, start - 40), end):
                    if 7 <= len(_digits(match.group("number"))) <= 15:
                        phones.append(_mask_phone(match.group("number")))


EMAIL_WORDS = ("an e-mail address", "e-mail addresses")
PHONE_WORDS = ("a phone number", "phone numbers")


def _finding(rules: Rules, code: str, what: tuple[str, str], field: str, found: list[str]) -> Finding:
    count = f"{len(found)} {what[1]}" if len(found) > 1 else what[0]
    return Finding(severity=rules.severity, code=code, field=field,
                   message=f"{field} contains {count} ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''})")


def check_example(example: Any, rules: Rules) -> list[Finding]:
    """pii findings for one example under `rules`."""
    findings: list[Finding] = []
    ignore, look_for_emails, look_for_phones, gate = rules.ignore, rules.emails, rules.phones, _could_hold_phone
    for part, values in (("inputs", example.inputs), ("outputs", example.outputs)):
        for name, value in values.items():
            if type(value) is str:  # the common case, kept cheap: most texts have no '@' and no long digit run
                # (a phone number has 7 digits or more: a shorter text, such as a label or an answer, is passed over
                # without running the gate)
                if not ((look_for_emails and "@" in value)
                        or (look_for_phones and len(value) >= 7 and gate(value))):
                    continue
                texts = [value]
            else:
                texts = _texts(value)
            if ignore and (name in ignore or f"{part}.{name}" in ignore):
                continue
            emails: list[str] = []
            phones: list[str] = []
            for text in texts:
                scan(text, rules, emails, phones)
            if emails:
                findings.append(_finding(rules, "pii-email", EMAIL_WORDS, f"{part}.{name}", emails))
            if phones:
                findings.append(_finding(rules, "pii-phone", PHONE_WORDS, f"{part}.{name}", phones))
    return findings


@hookimpl
def validate(examples: list[Example], context: Kit) -> dict[int, list[Finding]]:
    """Findings per index in `examples`, with each example's task and domain settings."""
    return check_each(examples, context, NAME, Rules, check_example)
