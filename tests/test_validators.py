"""The built-in validators lengths, consistency and pii: what they catch, what they must let through, their
settings per task and domain, and that each can be switched off.

Kits here load only basic_checks and these three (plus the store), so other plugins cannot change the outcome.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit import ConfigError, Example, load_settings
from dspy_trainkit.assessment import validate
from dspy_trainkit.cli.main import cli

MINE = ("lengths", "consistency", "pii")
LOAD = '[plugins]\nload = ["basic_checks", "lengths", "consistency", "pii"]\n'


def open_kit(tmp_path, toml: str = "", disable=()):
    (tmp_path / "trainkit.toml").write_text(LOAD + toml)
    return tk.open(settings=load_settings(env={}, cwd=tmp_path), disable=disable)


def math(problem, solution=None, answer=None, *, task="math", domain=None) -> Example:
    outputs = {k: v for k, v in (("solution", solution), ("answer", answer)) if v is not None}
    return Example(task=task, inputs={"problem": problem}, outputs=outputs, domain=domain)


def findings_of(kit, examples, plugins=MINE) -> list[list[tuple[str, str, str | None]]]:
    """(plugin, code, field) of the findings per example, in order, from the given plugins only."""
    found = validate(kit, examples)
    return [[(f.plugin, f.code, f.field) for f in found.get(ex.id, []) if f.plugin in plugins] for ex in examples]


def codes(kit, examples, plugin) -> list[list[str]]:
    return [[code for _, code, _ in items] for items in findings_of(kit, examples, (plugin,))]


# Realistic, correct examples: none of the three validators may say anything about them.
NORMAL = [
    math("A train travels 60 km in 1.5 hours. What is its average speed in km/h?",
         "Speed = distance / time = 60 / 1.5 = 40 km/h.", "40 km/h"),
    math("Solve for x: 3x + 5 = 41.", "Subtract 5 from both sides: 3x = 36. Divide by 3: so x = 12.", "12"),
    math("What is the probability of rolling an even number with a fair six-sided die?",
         "There are 3 even outcomes (2, 4, 6) out of 6, so the probability is 3/6 = 1/2.", "0.5"),
    math("A shop sells 1,200 pens a month. How many pens does it sell in a year?",
         "1200 × 12 = 14400 pens.", "14,400"),
    math("Simplify 18/24.", "Divide numerator and denominator by 6: 18/24 = 3/4.", "3/4"),
    math("Compute 15% of 80.", "0.15 × 80 = 12.", "12"),
    math("Find the area of a circle with radius 2 cm. Round to two decimal places.",
         "A = πr² = π·4 ≈ 12.566 cm², which rounds to 12.57 cm².", "12.57 cm^2"),
    math("In a class of 30 students, 12 are boys. What percentage are girls?",
         "Girls: 30 - 12 = 18. 18/30 = 0.6, which is 60%.", "60%"),
    math(r"Evaluate $\frac{2}{3} + \frac{1}{6}$.",
         r"$\frac{2}{3} = \frac{4}{6}$, so the sum is $\frac{5}{6}$.", r"$\frac{5}{6}$"),
    math("What is the value of x if x - 7 = -3?", "Add 7 to both sides: x = -3 + 7 = 4.", "x = 4"),
    math("The temperature drops from 5°C to -8°C. By how many degrees did it fall?",
         "5 - (-8) = 13 degrees.", 13),
    math("Tom has twice as many apples as Sue, who has 4. How many apples do they have together?",
         "Tom has two times four, which is eight apples; together they have eight plus four: twelve apples.", "12"),
    math("A rectangle has length 8 m and width 5 m. Calculate its perimeter.", "P = 2(8 + 5) = 26 m", "26 m"),
    math("Convert 0.375 to a fraction in lowest terms.", "0.375 = 375/1000 = 3/8", "3/8"),
    math("Determine the number of seconds in a day.", "24 h × 60 min × 60 s = 86,400 s", "86400"),
    math("Find the smallest prime greater than 5.", r"The primes after 5 are 7, 11, ... so it is $\boxed{7}$.",
         r"\boxed{7}"),
    math("Estimate √50 to one decimal place.", "7² = 49, so √50 ≈ 7.07, which is 7.1 to one decimal.", "7.1"),
    math("Solve 2x + 10 = 4.", "2x = −6, so x = −3.", "-3"),
    math("In 2019 a town had 12,345 residents; by 2023 it had 15,000. By how many did it grow?",
         "15000 - 12345 = 2655", "2,655"),
    math("A phone plan costs $35 per month plus $0.10 per text. What is the cost of 250 texts in one month?",
         "35 + 0.10 × 250 = 35 + 25 = $60.", "$60"),
    math("Write 3,628,800 in scientific notation.", "3,628,800 = 3.6288 × 10^6", "3.6288 × 10^6"),
    math("What is one third as a decimal, to three places?", "1/3 = 0.3333..., so 0.333.", "0.333"),
    math("A recipe needs 3/4 cup of sugar per batch. How much sugar is needed for 2 batches?",
         "2 × 3/4 = 6/4 = 1 1/2 cups.", "1 1/2 cups"),
    math("Order 0.5, 1/3 and 0.45 from least to greatest.", "1/3 ≈ 0.33 < 0.45 < 0.5", "1/3, 0.45, 0.5"),
    math("Solve x² = 9.", "x = 3 or x = -3.", "x = 3 or x = -3"),
    math("A city of 800,000 grows by half. What is its new population?", "800,000 × 1.5 = 1,200,000 people.",
         "1.2 million"),
    math("How long is 150 minutes in hours?", "150 / 60 = 2.5, so two and a half hours.", 2.5),
    math("What is 7 × 8, roughly?", "7 × 8 = 56", "about 56"),
    math("What fraction of a pizza is left after eating 3 of 8 slices?", r"$1 - \tfrac{3}{8} = \tfrac{5}{8}$",
         "5/8"),
    math("Find the sum of 2 million and 500 thousand.", "2 million + 500 thousand = 2.5 million", "2,500,000"),
    Example(task="qa", inputs={"question": "What is the capital of France?"}, outputs={"answer": "Paris"}),
    Example(task="qa", inputs={"question": "Who wrote Pride and Prejudice?"}, outputs={"answer": "Jane Austen"}),
    Example(task="qa", inputs={"question": "In which year did the Berlin Wall fall?"}, outputs={"answer": "1989"}),
    Example(task="qa", inputs={"question": "Who wrote Beowulf?"}, outputs={"answer": "Unknown"}),
    Example(task="qa", inputs={"question": "What is the ISBN of the first edition?"},
            outputs={"answer": "978-0-306-40615-7"}),
    Example(task="gen", inputs={"topic": "fractions", "difficulty": "easy"},
            outputs={"problem": "Add 1/4 and 2/4.", "solution": "1/4 + 2/4 = 3/4.", "answer": "3/4"}),
    Example(task="qa", inputs={"question": "How do I reach support?"},
            outputs={"answer": "Write to help@example.com or use the form at https://example.org/contact."}),
]


def test_realistic_correct_examples_pass_every_validator(tmp_path):
    with open_kit(tmp_path) as kit:
        found = findings_of(kit, NORMAL)
    assert {ex.inputs.get("problem") or ex.inputs.get("question") or ex.outputs["problem"]: f
            for ex, f in zip(NORMAL, found, strict=True) if f} == {}


# ---- lengths ---------------------------------------------------------------------------------------------

def test_lengths_defaults_reject_only_absurd_sizes(tmp_path):
    with open_kit(tmp_path) as kit:
        big = math("x" * 100_001, "ok", "1")
        fine = math("y" * 100_000, "ok", "1")
        found = findings_of(kit, [big, fine], ("lengths",))
        assert found == [[("lengths", "too-long", "inputs.problem")], []]
        finding = validate(kit, [big])[big.id][0]
        assert finding.severity == "error" and "100,001" in finding.message and "100,000" in finding.message


def test_lengths_per_field_bounds_and_non_string_values(tmp_path):
    toml = ("[plugin.lengths]\nmin_chars = 1\nmax_chars = 50\n"
            "fields = { problem = { min_chars = 20, max_chars = 60 }, \"outputs.tags\" = { max_chars = 8 } }\n")
    with open_kit(tmp_path, toml) as kit:
        short = math("Add 2 and 3.", "2 + 3 = 5", "5")
        long_solution = math("What is 2 + 3 written out in words?", "s" * 51, "five")
        listed = Example(task="t", inputs={"problem": "What is the sum of 2 and 3 here?"},
                         outputs={"tags": ["ab", "cd"], "answer": 5})
        ok = math("What is 2 + 3 written out in words?", "2 + 3 = 5, five.", "five")
        found = findings_of(kit, [short, long_solution, listed, ok], ("lengths",))
        assert found == [[("lengths", "too-short", "inputs.problem")], [("lengths", "too-long", "outputs.solution")],
                         [("lengths", "too-long", "outputs.tags")], []]
        message = validate(kit, [listed])[listed.id][0].message
        assert "outputs.tags is 11 characters" in message and "max_chars 8" in message  # '["ab","cd"]'
        message = validate(kit, [short])[short.id][0].message
        assert "12 characters" in message and "min_chars 20" in message


def test_lengths_task_and_domain_overrides(tmp_path):
    toml = ("[plugin.lengths]\nmax_chars = 1000\n"
            "[plugin.lengths.tasks.math]\nmax_chars = 30\n"
            "[plugin.lengths.tasks.math.domains.proofs]\nmax_chars = 500\nseverity = \"warning\"\n")
    text = "What is the sum of the first ten positive integers?"  # 51 characters
    with open_kit(tmp_path, toml) as kit:
        examples = [math(text, task="math"), math(text, task="math", domain="proofs"), math(text, task="other")]
        assert codes(kit, examples, "lengths") == [["too-long"], [], []]
        warned = math("p" * 600, task="math", domain="proofs")
        assert validate(kit, [warned])[warned.id][0].severity == "warning"


def test_lengths_bad_settings_are_errors_naming_the_key(tmp_path):
    with open_kit(tmp_path, "[plugin.lengths]\nmax_char = 10\n") as kit, \
            pytest.raises(ConfigError, match=r"lengths.*unknown key\(s\) max_char"):
        validate(kit, [math("What is 1 + 1?")])
    with open_kit(tmp_path, "[plugin.lengths]\nmin_chars = 10\nmax_chars = 5\n") as kit, \
            pytest.raises(ConfigError, match="min_chars = 10 is above max_chars = 5"):
        validate(kit, [math("What is 1 + 1?")])


# ---- consistency -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("solution", "answer"), [
    ("Subtract 5: 3x = 36, so x = 12.", "14"),
    ("2x = -6, so x = -3.", "3"),
    ("The total is 1200 dollars.", "1,300"),
    ("So the probability is 1/3.", "0.5"),
    ("Half of 30 is 15, so 15 are girls, which is 50%.", "60%"),
    ("Use the Pythagorean theorem on the right triangle.", "5"),
    ("12 × 12 = 144", "14.4"),
])
def test_consistency_answer_not_reached(tmp_path, solution, answer):
    with open_kit(tmp_path) as kit:
        example = math("Find the value asked for in the problem.", solution, answer)
        assert codes(kit, [example], "consistency") == [["answer-not-reached"]]
        finding = validate(kit, [example])[example.id][0]
        assert finding.severity == "error" and finding.field == "outputs.answer" and repr(answer) in finding.message


@pytest.mark.parametrize("answer", ["cannot be determined", "Cannot be determined from the information given.",
                                    "N/A", "unknown", "Not enough information", "TBD", "?", "...", "-",
                                    "I don't know"])
def test_consistency_unanswerable(tmp_path, answer):
    with open_kit(tmp_path) as kit:
        example = math("A box holds some apples. How many apples are in the box?", "We are not told.", answer)
        assert codes(kit, [example], "consistency") == [["unanswerable"]]


def test_consistency_unanswerable_needs_a_problem_or_solution_and_leaves_empty_to_basic_checks(tmp_path):
    with open_kit(tmp_path) as kit:
        qa = Example(task="qa", inputs={"question": "Who built Stonehenge?"}, outputs={"answer": "Unknown"})
        empty = math("How many apples are in the box?", answer="")
        none_answer = math("Which of these is prime: 4, 6, 8?", "None of them is prime.", "None")
        symbols = [math("What is the chemical symbol for sodium?", answer="Na"),
                   math("Solve x² = -1 over the real numbers.", "No real number squares to -1.", "∅"),
                   math("What is the limit of 1/x as x goes to 0 from the right?", "It grows without bound.", "∞"),
                   math("What does SELECT NULL + 1 return in SQL?", "Any arithmetic with NULL is NULL.", "NULL")]
        assert codes(kit, [qa, empty, none_answer, *symbols], "consistency") == [[] for _ in range(7)]
        assert codes(kit, [empty], "basic_checks") == [["empty-value"]]


def test_consistency_no_question_is_a_warning(tmp_path):
    with open_kit(tmp_path) as kit:
        statement = math("The sum of two numbers is 10 and their difference is 2.", "6 + 4 = 10", "6")
        asked = math("The sum of two numbers is 10 and their difference is 2. Find the larger one.",
                     "6 + 4 = 10", "6")
        yes_no = math("Is 91 prime?", "91 = 7 × 13, so no.", "no")
        assert codes(kit, [statement, asked, yes_no], "consistency") == [["no-question"], [], []]
        assert validate(kit, [statement])[statement.id][0].severity == "warning"


def test_consistency_field_names_severities_and_overrides(tmp_path):
    toml = ("[plugin.consistency]\nproblem_field = [\"problem\", \"question\"]\nsolution_field = \"rationale\"\n"
            "[plugin.consistency.tasks.math]\nno_question = \"off\"\n"
            "[plugin.consistency.tasks.math.domains.drafts]\nanswer_not_reached = \"warning\"\n")
    with open_kit(tmp_path, toml) as kit:
        qa = Example(task="qa", inputs={"question": "The capital of Peru"}, outputs={"answer": "Lima"})
        wrong = Example(task="qa", inputs={"question": "What is 6 times 7?"},
                        outputs={"rationale": "6 × 7 = 42", "answer": "48"})
        statement = math("The sum of two numbers is 10.", answer="6")
        draft = Example(task="math", domain="drafts", inputs={"problem": "What is 6 times 7?"},
                        outputs={"rationale": "6 × 7 = 42", "answer": "48"})
        assert codes(kit, [qa, wrong, statement, draft], "consistency") == [
            ["no-question"], ["answer-not-reached"], [], ["answer-not-reached"]]
        assert validate(kit, [draft])[draft.id][0].severity == "warning"
        assert validate(kit, [wrong])[wrong.id][0].severity == "error"


def test_consistency_bad_settings_are_errors(tmp_path):
    with open_kit(tmp_path, "[plugin.consistency]\nno_question = \"loud\"\n") as kit, \
            pytest.raises(ConfigError, match="consistency.*no_question = 'loud'"):
        validate(kit, [math("What is 1 + 1?")])


# ---- pii -------------------------------------------------------------------------------------------------
def test_pii_ascii_gate_finds_what_the_regex_gate_finds():
    """ASCII text takes a faster gate (bytes mapped to digit / separator / other classes); it must pass exactly
    the texts the `\\d` gate passes, or phone numbers would be missed (or looked for in vain)."""
    import random

    import dspy_trainkit_pii as pii

    rng = random.Random(11)
    alphabet = "".join(map(chr, range(128))) + "0123456789" * 12 + " ().-" * 6
    texts = ["call 555 123 4567", "(555) 123-4567", "12.34.56.7", "1 - 2 - 3 - 4 - 5 - 6 - 7", "a 123456 b",
             *("".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(20000))]
    passed = 0
    for text in texts:
        expected = pii._PHONE_GATE.search(text) is not None
        assert pii._could_hold_phone(text) is expected, repr(text)
        passed += expected
    assert 100 < passed < len(texts) - 100  # both answers were exercised



@pytest.mark.parametrize("text", [
    "Call me at (415) 555-2671 after five.", "My number is 415-555-2671.", "Office: 415.555.2671",
    "Ring +44 20 7946 0958 for the results.", "WhatsApp +4915112345678", "Toll free: 1-800-555-0199",
    "Rufen Sie 030-1234567 an.", "Appelez le 06 12 34 56 78.", "call me at 4155552671",
    "Tel.: 030 1234567", "Reach me on +33 1 23 45 67 89.",
])
def test_pii_phone_numbers(tmp_path, text):
    with open_kit(tmp_path) as kit:
        example = Example(task="qa", inputs={"question": "How can I reach you?"}, outputs={"answer": text})
        assert codes(kit, [example], "pii") == [["pii-phone"]]


@pytest.mark.parametrize("text", [
    "Compute 1234567 + 7654321.", "In 1999 and 2000 the population was 12,345,678.", "x + 12345678 = 0",
    "Write down 01 02 03 04 05 in order.", "The numbers 123 456 7890 are given.", "10-3=7 and 100-30=70",
    "0.5, 0.25 and 0.125 halve each time.", "ISBN 978-0-306-40615-7", "On 2023-10-12 at 14:30:15.",
    "Call this number N. If N = 12345678, find N mod 7.", "Pi is 3.14159265358979", "10! = 3,628,800",
    "The IP address 192.168.100.200 is private.", "Phone bill: 3 months at 45.50 each.", "x = 1234567890",
    "The city lies at +40.712776, -74.005974.", "The cell is 1234567 nanometres long.",
    "The text is 1234567 characters long.", "Between 1914-1918 and 1939-1945.",
])
def test_pii_plain_numbers_are_not_phone_numbers(tmp_path, text):
    with open_kit(tmp_path) as kit:
        example = Example(task="qa", inputs={"question": text}, outputs={"answer": "42"})
        assert codes(kit, [example], "pii") == [[]]


def test_pii_emails_are_masked_and_allowed_domains_pass(tmp_path):
    with open_kit(tmp_path) as kit:
        leaked = Example(task="qa", inputs={"question": "Who sent it? From: jane.doe@gmail.com"},
                         outputs={"answer": ["see", {"contact": "Jane <jane.doe@gmail.com>, bob@corp.io"}]})
        fine = Example(task="qa", inputs={"question": "Mail a@example.com, b@docs.example.org or c@host.test"},
                       outputs={"answer": "ok @ noon; use pkg@1.2.3 and @hookimpl"})
        assert findings_of(kit, [leaked, fine], ("pii",)) == [
            [("pii", "pii-email", "inputs.question"), ("pii", "pii-email", "outputs.answer")], []]
        messages = [f.message for f in validate(kit, [leaked])[leaked.id]]
        assert all("jane.doe" not in m for m in messages)
        assert "j***@gmail.com" in messages[0] and "2 e-mail addresses" in messages[1]


def test_pii_settings_allow_severity_and_overrides(tmp_path):
    toml = ("[plugin.pii]\nallow = [\"corp.io\"]\nignore_fields = [\"outputs.contact\"]\n"
            "[plugin.pii.tasks.support]\nseverity = \"warning\"\n"
            "[plugin.pii.tasks.support.domains.internal]\nphones = false\n")
    with open_kit(tmp_path, toml) as kit:
        allowed = Example(task="qa", inputs={"question": "Write to bob@corp.io"}, outputs={"answer": "a@example.com",
                                                                                           "contact": "x@gmail.com"})
        support = Example(task="support", inputs={"question": "Call 415-555-2671"}, outputs={"answer": "ok"})
        internal = Example(task="support", domain="internal", inputs={"question": "Call 415-555-2671, x@gmail.com"},
                           outputs={"answer": "ok"})
        assert codes(kit, [allowed, support, internal], "pii") == [[], ["pii-phone"], ["pii-email"]]
        assert validate(kit, [support])[support.id][0].severity == "warning"
        assert "***-***-**71" in validate(kit, [support])[support.id][0].message


# ---- switching off, and the path through intake ---------------------------------------------------------

BAD = [
    math("What is 3 + 4?", "3 + 4 = 7", "8"),  # consistency
    math("What is 3 + 4? " + "x" * 200, "7", "7"),  # lengths (with the bound below)
    Example(task="qa", inputs={"question": "Mail me at jane.doe@gmail.com?"}, outputs={"answer": "ok"}),  # pii
]


@pytest.mark.parametrize("off", MINE)
def test_each_validator_can_be_disabled(tmp_path, off):
    toml = "[plugin.lengths]\nmax_chars = 100\n"
    with open_kit(tmp_path, toml) as kit:
        assert [[p for p, _, _ in items] for items in findings_of(kit, BAD)] == [["consistency"], ["lengths"], ["pii"]]
    with open_kit(tmp_path, toml, disable=[off]) as kit:
        assert kit.pm.get_plugin(off) is None and kit.pm.infos[off].status == "disabled"
        plugins = [p for items in findings_of(kit, BAD) for p, _, _ in items]
        assert off not in plugins and sorted(plugins) == sorted(set(MINE) - {off})


def test_disable_plugin_option_on_the_command_line(tmp_path):
    open_kit(tmp_path).close()  # creates the store
    (tmp_path / "trainkit.toml").write_text('default_task = "qa"\n' + LOAD)
    runner = CliRunner()
    args = ["add", "-i", "question=Who is at jane.doe@gmail.com?", "-o", "answer=Jane", "--json"]
    on = runner.invoke(cli, args, catch_exceptions=False)
    assert on.exit_code in (0, 3), on.output  # 3: stored but rejected (newer CLIs say so in the exit status)
    example = json.loads(on.output)["example"]
    assert example["status"] == "rejected" and [f["code"] for f in example["findings"]] == ["pii-email"]
    args[2] = "question=Who else is at jane.doe@gmail.com?"
    off = runner.invoke(cli, ["--disable-plugin", "pii", *args], catch_exceptions=False)
    assert off.exit_code == 0, off.output
    example = json.loads(off.output)["example"]
    assert example["status"] == "accepted" and example["findings"] == []


def test_add_many_rejects_errors_and_keeps_warnings_for_review(tmp_path):
    with open_kit(tmp_path) as kit:
        report = kit.add_many([
            math("What is 3 + 4?", "3 + 4 = 7", "8"),
            math("Two numbers sum to 10 and differ by 2.", "6 + 4 = 10 and 6 - 4 = 2", "6"),
            math("What is 3 + 4?", "3 + 4 = 7", "7"),
        ])
        assert (report.stored, report.rejected, report.candidates, report.accepted) == (3, 1, 1, 1)
        rejected = next(kit.examples(status="rejected"))
        assert [(f.plugin, f.code, f.severity) for f in rejected.findings] == [
            ("consistency", "answer-not-reached", "error")]
        candidate = next(kit.examples(status="candidate"))
        assert [(f.plugin, f.code, f.severity) for f in candidate.findings] == [
            ("consistency", "no-question", "warning")]
