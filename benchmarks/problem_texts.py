"""Deterministic, realistic practice-problem texts for the near-duplicate benchmark, with planted near-copies.

Each problem (~55 words) is assembled from a setting sentence, a data sentence, a detail or a second data
sentence, and a question, each drawn from several templates (data sentences per domain) and filled from pools of
names, places, objects and numbers, so two problems of the same domain share phrasing (as generated problems
do) without being copies.
A planted near-copy is an earlier problem with 1-3 of its words replaced by other words.

    from problem_texts import generate
    records, planted = generate(100_000, planted=2_000, seed=7)
"""

from __future__ import annotations

import random
from typing import Any

TASK = "problems"
DIFFICULTIES = ("easy", "medium", "hard")

NAMES = ("Ava", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jamal", "Kira", "Liam",
         "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena",
         "Yusuf", "Zoe", "Aaron", "Bianca", "Carlos", "Dana", "Emil", "Fatima", "Gabriel", "Hana", "Ivan", "Julia",
         "Kofi", "Lena", "Marco", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Uma", "Victor", "Wanda")
PLACES = ("bakery", "library", "garden", "stadium", "museum", "harbor", "market", "school", "factory", "farm",
          "theater", "bookstore", "gym", "park", "cafe", "warehouse", "station", "zoo", "clinic", "workshop",
          "aquarium", "orchard", "studio", "campsite", "laboratory", "shipyard", "greenhouse", "bakery stall")
CITIES = ("Lisbon", "Nairobi", "Osaka", "Denver", "Krakow", "Lima", "Austin", "Hanoi", "Dublin", "Quito",
          "Tunis", "Oslo", "Perth", "Bogota", "Seville", "Madras", "Accra", "Tallinn", "Bergen", "Cusco")
OBJECTS = ("apples", "marbles", "books", "tickets", "bottles", "pencils", "coins", "boxes", "tiles", "chairs",
           "cookies", "stamps", "shells", "cards", "candles", "plants", "posters", "batteries", "jars", "ribbons",
           "buttons", "keys", "cups", "kites", "lamps", "maps", "nails", "oranges", "pebbles", "rings", "socks",
           "tomatoes", "umbrellas", "vases", "wheels", "yarn balls", "bricks", "crates", "envelopes", "flags")
COLORS = ("red", "blue", "green", "yellow", "white", "black", "purple", "orange", "silver", "brown")
ADJECTIVES = ("large", "small", "wooden", "metal", "square", "round", "heavy", "narrow", "wide", "tall",
              "shallow", "deep", "old", "new", "rectangular", "circular", "plastic", "glass", "painted", "folded")
EVENTS = ("fair", "festival", "tournament", "bake sale", "science week", "charity run", "book drive",
          "craft show", "open day", "concert", "market day", "field trip", "robotics contest", "chess club meeting")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNITS = ("meters", "centimeters", "kilometers", "liters", "grams", "kilograms", "minutes", "hours", "dollars")

SETTINGS = (
    "{name} works at the {place} in {city} and keeps track of {obj} every {day}.",
    "During the {event} in {city}, {name} and {name2} sorted {obj} at the {place}.",
    "A {adj} {container} at the {place} holds {color} {obj} and {color2} {obj2}.",
    "{name} is planning the {event} at the {place} and needs to order {obj}.",
    "At the {place}, {name} arranges {obj} on {adj} shelves before the {event} starts.",
    "On {day} morning {name} drove to {city} to buy {obj} for the {place}.",
    "The {place} in {city} received a shipment of {obj} and {obj2} last {day}.",
    "{name} and {name2} are sharing {color} {obj} they collected at the {event}.",
)
CONTAINERS = ("box", "bag", "crate", "basket", "jar", "drawer", "cart", "tray", "bin", "chest")

DATA = {
    "algebra": (
        "The number of {obj} is {a} more than {b} times the number of {obj2}, and together there are {c}.",
        "If {name} adds {a} {obj} each day, after {b} days the total reaches {c} {obj}.",
        "Twice the price of a {adj} item plus {a} dollars equals {c} dollars, while another costs {b} dollars.",
        "The sum of two numbers is {c} and their difference is {a}, where the larger one counts {obj}.",
        "A linear rule gives {a} {obj} for the first week and {b} more for every following week.",
    ),
    "geometry": (
        "A {adj} rectangle has a length of {a} {unit} and a width that is {b} {unit} shorter.",
        "The triangle drawn on the {place} floor has sides of {a}, {b} and {c} {unit}.",
        "A circular {container} has a radius of {a} {unit} and a height of {b} {unit}.",
        "Two parallel lines are cut by a transversal making an angle of {a} degrees with the {adj} edge.",
        "A square garden plot with side {a} {unit} is surrounded by a path {b} {unit} wide.",
    ),
    "probability": (
        "A bag contains {a} {color} {obj}, {b} {color2} {obj} and {c} {obj2} of other colors.",
        "{name} rolls two fair dice {a} times and records whether the sum exceeds {b}.",
        "A spinner has {a} equal sections, {b} of them painted {color}, and is spun {c} times.",
        "Out of {c} visitors at the {event}, {a} bought {obj} and {b} bought {obj2}.",
        "A coin is biased so that heads appears {a} times in every {c} tosses on average.",
    ),
    "number_theory": (
        "{name} packs {c} {obj} into groups of {a} and finds that {b} are left over.",
        "The product of two primes is close to {c}, and one of them is larger than {a}.",
        "A code is made of digits whose sum is {a} and which is divisible by {b}.",
        "The {obj} are numbered from {a} to {c}, and every number that is a multiple of {b} is removed.",
        "The greatest common divisor of {a} and another number is {b}, and their least common multiple is {c}.",
    ),
    "calculus": (
        "The height of a {adj} balloon after t seconds is {a} t minus {b} t squared {unit}.",
        "Water flows into a {container} at {a} liters per minute while leaking {b} liters per minute.",
        "The cost of producing x {obj} is {a} x squared plus {b} x plus {c} dollars.",
        "A particle moves along a line with velocity {a} minus {b} t {unit} per second.",
        "The population of {obj} in the {place} grows at a rate proportional to its size, starting at {c}.",
    ),
}
DOMAINS = tuple(DATA)
TOPICS = {
    "algebra": ("linear_equations", "systems", "word_problems", "inequalities", "sequences"),
    "geometry": ("area", "perimeter", "volume", "angles", "triangles"),
    "probability": ("counting", "dice", "expected_value", "conditional", "sampling"),
    "number_theory": ("primes", "divisibility", "remainders", "gcd_lcm", "digits"),
    "calculus": ("derivatives", "rates", "optimization", "integrals", "growth"),
}
DETAILS = (
    "Each of the {obj} costs {a} dollars and weighs about {b} grams.",
    "{name} writes every intermediate result in a notebook to check the work later.",
    "Assume nothing is lost or broken while the {obj} are moved around the {place}.",
    "The answer should be given in {unit} and rounded to {b} decimal places.",
    "A second group at the {event} starts with {a} fewer {obj} than the first one.",
    "{name2} claims the result is {c}, but {name} is not convinced yet.",
    "The {color} {obj} are counted separately from the {color2} ones.",
    "All measurements were taken on {day} before the {place} opened.",
)
QUESTIONS = (
    "How many {obj} are there in total at the end?",
    "What is the value of the unknown quantity, and how can {name} verify it?",
    "Find the exact answer and explain each step of the reasoning.",
    "What is the probability that {name} picks {color} {obj} on the first try?",
    "Determine the maximum possible value and the point where it occurs.",
    "How much will {name} need to spend, in {unit}, to finish the task?",
    "Which of the two options gives the larger result, and by how much?",
    "What is the smallest number that satisfies all of the conditions above?",
)


def _fill(template: str, rng: random.Random) -> str:
    obj, obj2 = rng.sample(OBJECTS, 2)
    name, name2 = rng.sample(NAMES, 2)
    color, color2 = rng.sample(COLORS, 2)
    return template.format(
        name=name, name2=name2, place=rng.choice(PLACES), city=rng.choice(CITIES), obj=obj, obj2=obj2,
        day=rng.choice(DAYS), event=rng.choice(EVENTS), adj=rng.choice(ADJECTIVES), color=color, color2=color2,
        container=rng.choice(CONTAINERS), unit=rng.choice(UNITS), a=rng.randint(2, 99), b=rng.randint(2, 99),
        c=rng.randint(100, 999))


def problem_text(domain: str, rng: random.Random) -> str:
    """One problem of about 50 words: a setting, a data sentence, a detail or a second data sentence, a question."""
    parts = [_fill(rng.choice(SETTINGS), rng)]
    parts += [_fill(t, rng) for t in rng.sample(DATA[domain], 2 if rng.random() < 0.3 else 1)]
    if len(parts) == 2:
        parts.append(_fill(rng.choice(DETAILS), rng))
    parts.append(_fill(rng.choice(QUESTIONS), rng))
    return " ".join(parts)


REPLACEMENTS = tuple(sorted({w for pool in (NAMES, PLACES, CITIES, OBJECTS, COLORS, ADJECTIVES, UNITS)
                             for w in pool if " " not in w})) + tuple(str(n) for n in range(2, 100))


def near_copy(text: str, changes: int, rng: random.Random) -> str:
    """`text` with `changes` of its words (at distinct positions) replaced by other words."""
    words = text.split()
    for position in rng.sample(range(len(words)), changes):
        old = words[position]
        words[position] = rng.choice([w for w in rng.sample(REPLACEMENTS, 3) if w.lower() != old.lower()] or ["x"])
    return " ".join(words)


def record(domain: str, topic: str, difficulty: str, problem: str, answer: str, n: int) -> dict[str, Any]:
    return {"task": TASK, "inputs": {"domain": domain, "topic": topic, "difficulty": difficulty},
            "outputs": {"problem": problem, "answer": answer}, "domain": domain, "topic": topic,
            "difficulty": difficulty, "source": "synthetic", "metadata": {"n": n}}


def generate(rows: int, *, planted: int, seed: int) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """`rows` records, of which `planted` are near-copies of an earlier record. Returns the records (each with
    `metadata.n` = its position) and `{copy position: original position}`."""
    rng = random.Random(seed)
    originals = rows - planted
    records = []
    for n in range(originals):
        domain = rng.choice(DOMAINS)
        records.append(record(domain, rng.choice(TOPICS[domain]), rng.choice(DIFFICULTIES),
                              problem_text(domain, rng), str(rng.randint(2, 9999)), n))
    after: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for source in sorted(rng.sample(range(originals), planted)):
        original = records[source]
        text = near_copy(original["outputs"]["problem"], rng.choice((1, 2, 3)), rng)
        copy = record(original["domain"], original["topic"], original["difficulty"], text,
                      original["outputs"]["answer"], 0)
        # the copy comes later than its original: in the same batch sometimes, often many batches later
        after.setdefault(rng.randint(source, originals - 1), []).append((source, copy))
    placed: list[dict[str, Any]] = []
    position = {}  # original index -> final position
    copies: dict[int, int] = {}
    for n, original in enumerate(records):
        position[n] = len(placed)
        placed.append(original)
        for source, copy in after.get(n, ()):
            copies[len(placed)] = position[source]
            placed.append(copy)
    for n, r in enumerate(placed):
        r["metadata"]["n"] = n
    return placed, copies
