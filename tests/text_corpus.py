"""A deterministic corpus of example texts for tests that a rewrite of a text plugin keeps its results: plain
problems, repeated sentences and trigrams, truncations, brackets, quotes, capitals, Unicode, e-mail addresses
and phone numbers in many forms, and the arithmetic that must not look like one."""

from __future__ import annotations

import random

FIXED = [
    "", " ", "The answer is 5.", "THE ANSWER IS FIVE AND NOTHING ELSE", "and then we...", "2, 4, 8, ...",
    "It is (see step 2) easy.", "1) add 2) divide", "a) the first b) the second", "Smile :) please (ok",
    'He said "hello', "“quoted” text", "```python\nprint(1)", "Paris. Paris. Paris. Paris. Paris is nice.",
    "one two three one two three one two three one two three", "Café, naïve, coöperate — straße; 東京 は 大きい",
    "Mail me at john.doe@gmail.com or jane@corp.example.com.", "support@example.org and a@b.test",
    "Call me at 5551234567 tomorrow", "Tel.: 030 1234567", "+44 20 7946 0958", "+1 (415) 555-2671",
    "(415) 555-2671", "415-555-2671", "415.555.2671", "1-800-555-0199", "020 7946 0958", "06 12 34 56 78",
    "01 02 03 04 05", "3 +12345678", "+40.712776", "123 + 456 = 579", "100 - 50 - 30 = 20",
    "The population in 2019 was 12345678 people.", "x\r\ny\r\nz", "\tTabs\tand\nnew lines\n\n",
    "Wait! Is it? Yes! Is it? Yes! Is it? Yes!", "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "This is a long last line with eight or more words ending in a letter",
    "This is a long last line with eight or more words ending in a comma,",
    "contact: +4915112345678", "fax 0044 20 7946 0958", "whatsapp no 06-12-34-56-78",
    "ÉCRIT EN MAJUSCULES ACCENTUÉES ICI", "ß ẞ İ ı ǅ ﬁ", "x" * 300, "word " * 60,
]
WORDS = ("the", "a", "apple", "Paris", "sum", "of", "numbers", "is", "Café", "naïve", "and", "then", "we",
         "compute", "total", "price", "ÄÖÜ", "日本", "x2", "3.5", "(", ")", "[", "]", "{", "}", '"', "...", "…",
         "!", "?", ".", ",", ";", ":)", "-", "\n", "1)", "a)", "```", "“", "”")
PIECES = ("bob@mail.com", "ann@example.com", "+33 6 12 34 56 78", "555-123-4567", "020 7946 0958",
          "call 5551234567", "2019", "12 + 34", "0.5", "1 2 3 4 5 6 7 8", "Tel 0301234567")


def texts(n: int = 1500, seed: int = 15) -> list[str]:
    """`FIXED` and `n` random texts built from words, punctuation, contact details and repeated sentences."""
    rng = random.Random(seed)
    found = list(FIXED)
    for _ in range(n):
        parts = [rng.choice(WORDS) for _ in range(rng.randint(1, 40))]
        if rng.random() < 0.2:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(PIECES))
        text = " ".join(parts)
        if rng.random() < 0.2:  # repeated sentences
            text = ". ".join([text] * rng.randint(2, 4))
        if rng.random() < 0.2:
            text = text.upper()
        if rng.random() < 0.1:
            text = text.replace(" ", rng.choice(["\n", "  ", "\t"]))
        found.append(text)
    return found


def records(n: int = 1500, seed: int = 16) -> list[dict]:
    """QA records whose question and answer come from `texts`, some answers echoing the question."""
    rng = random.Random(seed)
    pool = texts(n, seed)
    made = []
    for i in range(n):
        question, answer = rng.choice(pool), rng.choice(pool)
        if rng.random() < 0.05:
            answer = question
        outputs: dict = {"answer": answer}
        if rng.random() < 0.1:
            outputs["steps"] = [rng.choice(pool), rng.choice(pool)]
        made.append({"id": f"c{i}", "task": "qa", "inputs": {"question": question}, "outputs": outputs})
    return made
