"""The built-in templates: word problems whose answers are computed, then checked by a second computation.

A `Template` serves one topic. `make(rng, level)` draws parameters from `rng` (a seeded `random.Random`) for a
level 0 (easy), 1 (medium) or 2 (hard) and returns a `Made`: problem, worked solution, answer and the parameters.
`verify(params, answer)` checks the answer by another route than the one that computed it (substituting a
solution back into its equation, running a percentage change forwards, a second kinematics equation, a safe
evaluation of the expression with exact fractions), so a slip in a template's arithmetic or wording of the
answer is caught before anything is stored. Numbers are exact `Fraction`s throughout; answers are written as
integers, terminating decimals or fractions in lowest terms.

Topics covered: arithmetic, fractions, percentages, linear equations, geometry (areas), kinematics and energy,
each at three levels. Templates are plain values, so a project can add its own (see docs/synthesis.md).
"""

from __future__ import annotations

import ast
import math
import operator
import random
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import attrs

LEVELS = ("easy", "medium", "hard")


@attrs.frozen
class Made:
    """One drawn problem: its texts, the answer as written, and the parameters it was drawn from."""

    problem: str
    solution: str
    answer: str
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Template:
    """A parametric problem for one topic: `make(rng, level) -> Made`, `verify(params, answer) -> bool`."""

    name: str
    topic: str
    make: Callable[[random.Random, int], Made]
    verify: Callable[[Mapping[str, Any], Fraction], bool]
    domain: str | None = None  # None: any domain whose topic matches


# ---- numbers ------------------------------------------------------------------------------------------------

def fmt(value: Fraction | int, *, fraction: bool = False) -> str:
    """An exact number as a person writes it: `12`, `2.5`, or `7/12` (with `fraction`, or when the decimal would
    not terminate within 4 places)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    if not fraction:
        scaled = value * 10_000
        if scaled.denominator == 1:
            return f"{float(value):.4f}".rstrip("0").rstrip(".")
    return f"{value.numerator}/{value.denominator}"


_ANSWER_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?")


def answer_value(answer: str) -> Fraction | None:
    """The number an answer states (`x = 5`, `$112`, `7/12`, `12.5 m/s`), or None."""
    text = answer.split("=")[-1].replace("$", "").replace(",", "")
    match = _ANSWER_NUMBER.search(text)
    if match is None:
        return None
    value = Fraction(match.group(1))
    return value / int(match.group(2)) if match.group(2) else value


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression: str, **names: Any) -> Fraction:
    """Evaluate `+ - * /` over integers and `names` exactly (Fractions); anything else is a ValueError."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(
                node.value, bool):
            return Fraction(str(node.value))
        if isinstance(node, ast.Name) and node.id in names:
            return Fraction(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"unsupported expression part: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Mia",
         "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Yara", "Zane")
ITEMS = ("marbles", "stickers", "apples", "pencils", "stamps", "coins", "cards", "books", "shells", "beads")
GOODS = ("jacket", "bicycle", "lamp", "backpack", "phone", "chair", "watch", "guitar", "kettle", "tent")
VEHICLES = ("car", "cyclist", "train", "runner", "bus", "scooter", "boat", "truck")
OBJECTS = ("ball", "box", "crate", "stone", "bag of sand", "bucket", "brick", "toolbox")


# ---- arithmetic ---------------------------------------------------------------------------------------------

def _arithmetic(rng: random.Random, level: int) -> Made:
    name, items = rng.choice(NAMES), rng.choice(ITEMS)
    if level == 0:
        a, b = rng.randint(12, 99), rng.randint(12, 99)
        total = a + b
        problem = rng.choice((f"What is {a} + {b}?",
                              f"{name} has {a} {items} and is given {b} more. How many {items} does {name} have "
                              "now?"))
        return Made(problem, f"Add the two amounts: {a} + {b} = {total}.", str(total),
                    {"a": a, "b": b, "expression": "a + b"})
    if level == 1:
        packs, each = rng.randint(3, 12), rng.randint(4, 15)
        given = rng.randint(1, packs * each - 1)
        left = packs * each - given
        problem = (f"{name} buys {packs} packs of {items} with {each} in each pack and gives away {given}. "
                   f"How many {items} are left?")
        solution = (f"First find the total: {packs} × {each} = {packs * each}. Then subtract what was given "
                    f"away: {packs * each} - {given} = {left}.")
        return Made(problem, solution, str(left),
                    {"packs": packs, "each": each, "given": given, "expression": "packs * each - given"})
    a, b, c, e = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 9), rng.randint(2, 9)
    d = e * rng.randint(2, 12)
    value = (a + b) * c - d // e
    problem = f"Evaluate ({a} + {b}) × {c} - {d} ÷ {e}, following the order of operations."
    solution = (f"Brackets first: {a} + {b} = {a + b}. Then multiply and divide from left to right: "
                f"{a + b} × {c} = {(a + b) * c} and {d} ÷ {e} = {d // e}. Finally subtract: "
                f"{(a + b) * c} - {d // e} = {value}.")
    return Made(problem, solution, str(value),
                {"a": a, "b": b, "c": c, "d": d, "e": e, "expression": "(a + b) * c - d / e"})


def _verify_expression(params: Mapping[str, Any], answer: Fraction) -> bool:
    names = {k: v for k, v in params.items() if k != "expression"}
    return evaluate(params["expression"], **names) == answer


# ---- fractions ----------------------------------------------------------------------------------------------

def _fractions(rng: random.Random, level: int) -> Made:
    if level == 0:
        d = rng.randint(3, 15)
        a, b = rng.randint(1, d - 1), rng.randint(1, d - 1)
        total = Fraction(a + b, d)
        problem = rng.choice((f"What is {a}/{d} + {b}/{d}? Give the answer in lowest terms.",
                              f"Add {a}/{d} and {b}/{d}, and simplify the result."))
        solution = (f"The denominators are equal, so add the numerators: {a} + {b} = {a + b}, giving "
                    f"{a + b}/{d}" + (f", which simplifies to {fmt(total, fraction=True)}."
                                      if total.denominator != d else "."))
        return Made(problem, solution, fmt(total, fraction=True),
                    {"a": a, "b": b, "d": d, "expression": "a / d + b / d"})
    if level == 1:
        b, d = rng.sample(range(2, 13), 2)
        a, c = rng.randint(1, b - 1), rng.randint(1, d - 1)
        common = math.lcm(b, d)
        sa, sc = a * (common // b), c * (common // d)
        total = Fraction(sa + sc, common)
        problem = f"Calculate {a}/{b} + {c}/{d}. Write the answer as a fraction in lowest terms."
        solution = (f"Use the common denominator {common}: {a}/{b} = {sa}/{common} and {c}/{d} = {sc}/{common}. "
                    f"Add the numerators: {sa} + {sc} = {sa + sc}, so the sum is {sa + sc}/{common}"
                    + (f" = {fmt(total, fraction=True)}." if total.denominator != common else "."))
        return Made(problem, solution, fmt(total, fraction=True),
                    {"a": a, "b": b, "c": c, "d": d, "expression": "a / b + c / d"})
    b, d, f = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
    a, c, e = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, f - 1)
    product = Fraction(a * c, b * d)
    value = product - Fraction(e, f)
    problem = f"Compute ({a}/{b}) × ({c}/{d}) - {e}/{f}. Give the exact result in lowest terms."
    solution = (f"Multiply numerators and denominators: ({a} × {c})/({b} × {d}) = {a * c}/{b * d}"
                + (f" = {fmt(product, fraction=True)}" if product.denominator != b * d else "")
                + f". Then subtract {e}/{f}: {fmt(product, fraction=True)} - {e}/{f} = "
                f"{fmt(value, fraction=True)}.")
    return Made(problem, solution, fmt(value, fraction=True),
                {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "expression": "(a / b) * (c / d) - e / f"})


# ---- percentages --------------------------------------------------------------------------------------------

def _percentages(rng: random.Random, level: int) -> Made:
    if level == 0:
        percent = rng.choice((5, 10, 15, 20, 25, 30, 40, 50, 60, 75))
        step = 100 // math.gcd(percent, 100)
        whole = step * rng.randint(2, 40)
        part = percent * whole // 100
        name, items = rng.choice(NAMES), rng.choice(ITEMS)
        problem = rng.choice((f"What is {percent}% of {whole}?",
                              f"Find {percent}% of {whole}.",
                              f"{name} has {whole} {items} and gives {percent}% of them to a friend. How many "
                              f"{items} does {name} give away?",
                              f"A school has {whole} students and {percent}% of them walk to school. How many "
                              "students walk?",
                              f"Of the {whole} {items} in a box, {percent}% are red. How many are red?"))
        solution = f"{percent}% means {percent}/100, so {percent}/100 × {whole} = {part}."
        return Made(problem, solution, str(part), {"percent": percent, "whole": whole, "part": part})
    good = rng.choice(GOODS)
    if level == 1:
        percent = rng.choice((10, 20, 25, 30, 40, 50))
        price = (100 // math.gcd(percent, 100)) * rng.randint(2, 30)
        change = price * percent // 100
        up = rng.random() < 0.5
        new = price + change if up else price - change
        direction = "rises" if up else "falls"
        problem = rng.choice((
            f"A {good} costs ${price}. Its price {direction} by {percent}%. What is the new price?",
            f"{rng.choice(NAMES)} sees a {good} priced at ${price}. Next week the price {direction} by {percent}%. "
            "What will it cost then?",
            f"The price of a {good} was ${price} and then {'went up' if up else 'went down'} {percent}%. Find the "
            "price now.",
            f"What is the new price of a ${price} {good} after its price {direction} by {percent}%?"))
        solution = (f"The change is {percent}% of {price}: {percent}/100 × {price} = {change}. The new price is "
                    f"{price} {'+' if up else '-'} {change} = {new} dollars, so ${new}.")
        return Made(problem, solution, f"${new}",
                    {"percent": percent, "price": price, "sign": 1 if up else -1, "new": new})
    percent = rng.choice((10, 20, 25, 30, 40, 60, 75))
    original = (100 // math.gcd(percent, 100)) * rng.randint(2, 60)
    sale = original * (100 - percent) // 100
    shop = rng.choice(("In a sale", "At a market stall", "Online", "At the end of the season", "In a shop"))
    problem = rng.choice((
        f"After a {percent}% discount, a {good} costs ${sale}. What was the price before the discount?",
        f"{shop}, a {good} is sold for ${sale}, which is {percent}% off its usual price. What is the usual price?",
        f"{rng.choice(NAMES)} paid ${sale} for a {good} after a {percent}% reduction. Find the original price.",
        f"A {good} now sells for ${sale} because its price was cut by {percent}%. How much did it cost before?",
        f"Which price, reduced by {percent}%, gives ${sale} for a {good} in {rng.choice(NAMES)}'s shop?"))
    solution = (f"After the discount the price is {100 - percent}% of the original, so the original is "
                f"{sale} ÷ {100 - percent}/100 = {sale} × 100 ÷ {100 - percent} = {original} dollars, so "
                f"${original}.")
    return Made(problem, solution, f"${original}", {"percent": percent, "sale": sale})


def _verify_percentages(params: Mapping[str, Any], answer: Fraction) -> bool:
    percent = Fraction(params["percent"], 100)
    if "part" in params:  # part of a whole, checked backwards: part / whole is the percentage
        return answer / params["whole"] == percent
    if "new" in params:  # the change applied forwards, then compared with the new price
        return params["price"] * (1 + params["sign"] * percent) == answer
    return answer * (1 - percent) == params["sale"]  # the discount applied to the answer gives the sale price


# ---- linear equations ---------------------------------------------------------------------------------------

def _signed(value: int) -> str:
    return f"+ {value}" if value >= 0 else f"- {-value}"


def _linear(rng: random.Random, level: int) -> Made:
    var = rng.choice("xynt")
    x = rng.randint(-12, 15) if level else rng.randint(1, 20)
    if level == 0:
        if rng.random() < 0.5:
            a = rng.randint(2, 30)
            b = x + a
            problem = f"Solve for {var}: {var} + {a} = {b}."
            solution = f"Subtract {a} from both sides: {var} = {b} - {a} = {x}."
            params = {"a": 1, "b": a, "c": 0, "d": b}
        else:
            a = rng.randint(2, 12)
            problem = f"Solve for {var}: {a}{var} = {a * x}."
            solution = f"Divide both sides by {a}: {var} = {a * x} ÷ {a} = {x}."
            params = {"a": a, "b": 0, "c": 0, "d": a * x}
    elif level == 1:
        a, b = rng.randint(2, 12), rng.randint(-20, 20) or 7
        c = a * x + b
        problem = f"Solve the equation {a}{var} {_signed(b)} = {c} for {var}."
        solution = (f"Move the constant: {a}{var} = {c} {_signed(-b)} = {c - b}. Divide by {a}: "
                    f"{var} = {c - b} ÷ {a} = {x}.")
        params = {"a": a, "b": b, "c": 0, "d": c}
    else:
        a, c = rng.sample(range(2, 13), 2)
        b = rng.randint(-25, 25)
        d = (a - c) * x + b
        problem = rng.choice((f"Find {var} if {a}{var} {_signed(b)} = {c}{var} {_signed(d)}.",
                              f"Solve {a}{var} {_signed(b)} = {c}{var} {_signed(d)} for {var}.",
                              f"For which value of {var} is {a}{var} {_signed(b)} equal to {c}{var} {_signed(d)}?"))
        solution = (f"Collect the {var} terms on the left and the numbers on the right: "
                    f"{a}{var} - {c}{var} = {d} {_signed(-b)}, so {a - c}{var} = {d - b}. "
                    f"Divide by {a - c}: {var} = {x}.")
        params = {"a": a, "b": b, "c": c, "d": d}
    return Made(problem, solution, f"{var} = {x}", params)


def _verify_linear(params: Mapping[str, Any], answer: Fraction) -> bool:
    """Substitute the answer: a*x + b must equal c*x + d."""
    return params["a"] * answer + params["b"] == params["c"] * answer + params["d"]


# ---- geometry (areas) ---------------------------------------------------------------------------------------

def _areas(rng: random.Random, level: int) -> Made:
    unit = rng.choice(("cm", "m", "mm"))
    if level == 0:
        length, width = rng.randint(3, 40), rng.randint(2, 30)
        thing = rng.choice(("rectangle", "rectangular garden", "rectangular rug", "rectangular poster"))
        area = length * width
        problem = f"A {thing} is {length} {unit} long and {width} {unit} wide. What is its area?"
        solution = f"The area of a rectangle is length × width: {length} × {width} = {area} {unit}²."
        return Made(problem, solution, f"{area} {unit}²",
                    {"shape": "rectangle", "length": length, "width": width})
    if level == 1:
        base, height = rng.randint(3, 30), rng.randint(2, 24)
        if (base * height) % 2:
            height += 1
        area = base * height // 2
        problem = f"A triangle has a base of {base} {unit} and a height of {height} {unit}. Find its area."
        solution = (f"The area of a triangle is half of base × height: {base} × {height} = {base * height}, "
                    f"and half of that is {area} {unit}².")
        return Made(problem, solution, f"{area} {unit}²", {"shape": "triangle", "base": base, "height": height})
    long_side, short_side = rng.randint(8, 30), rng.randint(6, 20)
    cut_long, cut_short = rng.randint(2, long_side - 3), rng.randint(2, short_side - 3)
    area = long_side * short_side - cut_long * cut_short
    problem = (f"An L-shaped floor is a {long_side} {unit} by {short_side} {unit} rectangle with a "
               f"{cut_long} {unit} by {cut_short} {unit} rectangle removed from one corner. What is its area?")
    solution = (f"Whole rectangle: {long_side} × {short_side} = {long_side * short_side} {unit}². Removed "
                f"corner: {cut_long} × {cut_short} = {cut_long * cut_short} {unit}². Area: "
                f"{long_side * short_side} - {cut_long * cut_short} = {area} {unit}².")
    return Made(problem, solution, f"{area} {unit}²",
                {"shape": "L", "long": long_side, "short": short_side, "cut_long": cut_long, "cut_short": cut_short})


def _verify_areas(params: Mapping[str, Any], answer: Fraction) -> bool:
    shape = params["shape"]
    if shape == "rectangle":
        return answer / params["width"] == params["length"]
    if shape == "triangle":
        return 2 * answer == params["base"] * params["height"]
    # split the L into two rectangles the other way: a full-width strip and the remaining part
    strip = (params["short"] - params["cut_short"]) * params["long"]
    rest = params["cut_short"] * (params["long"] - params["cut_long"])
    return answer == strip + rest


# ---- kinematics ---------------------------------------------------------------------------------------------

def _kinematics(rng: random.Random, level: int) -> Made:
    vehicle = rng.choice(VEHICLES)
    if level == 0:
        speed, time = rng.randint(2, 40), rng.randint(3, 120)
        distance = speed * time
        problem = rng.choice((
            f"A {vehicle} moves at a steady {speed} m/s for {time} s. How far does it travel?",
            f"How far does a {vehicle} go in {time} s at a constant speed of {speed} m/s?",
            f"{rng.choice(NAMES)} watches a {vehicle} keep a speed of {speed} m/s for {time} seconds. What "
            "distance does it cover?"))
        solution = f"Distance = speed × time = {speed} m/s × {time} s = {distance} m."
        return Made(problem, solution, f"{distance} m", {"kind": "distance", "speed": speed, "time": time})
    if level == 1:
        u, a, t = rng.randint(0, 30), rng.randint(1, 9), rng.randint(2, 20)
        v = u + a * t
        problem = rng.choice((
            f"A {vehicle} moving at {u} m/s accelerates uniformly at {a} m/s² for {t} s. What is its final speed?",
            f"Starting at {u} m/s, a {vehicle} speeds up at a constant {a} m/s². How fast is it going after {t} "
            "seconds?",
            f"{rng.choice(NAMES)} times a {vehicle} that gains {a} m/s every second, starting from {u} m/s. "
            f"Find its speed {t} s later.",
            f"What speed does a {vehicle} reach if it starts at {u} m/s and accelerates at {a} m/s² for {t} s?"))
        solution = rng.choice((
            f"Use v = u + at: v = {u} + {a} × {t} = {u} + {a * t} = {v} m/s.",
            f"In {t} s the speed grows by {a} × {t} = {a * t} m/s, so the final speed is {u} + {a * t} = {v} m/s.",
            f"Final speed = initial speed + acceleration × time = {u} + {a * t} = {v} m/s."))
        return Made(problem, solution, f"{v} m/s", {"kind": "speed", "u": u, "a": a, "t": t})
    u, a, t = rng.randint(0, 15), rng.choice((2, 4, 6, 8, 1, 3)), rng.randint(2, 12)
    s = Fraction(u * t) + Fraction(a * t * t, 2)
    problem = (f"A {vehicle} starts at {u} m/s and accelerates uniformly at {a} m/s² for {t} s. How far does it "
               "travel in that time?")
    solution = (f"Use s = ut + ½at²: s = {u} × {t} + ½ × {a} × {t}² = {u * t} + {fmt(Fraction(a * t * t, 2))} = "
                f"{fmt(s)} m.")
    return Made(problem, solution, f"{fmt(s)} m", {"kind": "displacement", "u": u, "a": a, "t": t})


def _verify_kinematics(params: Mapping[str, Any], answer: Fraction) -> bool:
    kind = params["kind"]
    if kind == "distance":
        return answer / params["time"] == params["speed"]
    u, a, t = params["u"], params["a"], params["t"]
    if kind == "speed":
        return (answer - u) / a == t
    v = u + a * t  # v² = u² + 2as, an equation the template does not use
    return v * v - u * u == 2 * a * answer


# ---- energy -------------------------------------------------------------------------------------------------

def _energy(rng: random.Random, level: int) -> Made:
    thing = rng.choice(OBJECTS)
    if level == 0:
        mass, speed = rng.randint(1, 20), rng.randint(1, 15)
        energy = Fraction(mass * speed * speed, 2)
        problem = rng.choice((
            f"A {mass} kg {thing} moves at {speed} m/s. What is its kinetic energy?",
            f"Find the kinetic energy of a {thing} of mass {mass} kg travelling at {speed} m/s.",
            f"{rng.choice(NAMES)} slides a {mass} kg {thing} across the floor at {speed} m/s. How much kinetic "
            "energy does it have?",
            f"How much kinetic energy does a {mass} kg {thing} carry when its speed is {speed} m/s?"))
        solution = (f"Kinetic energy = ½mv² = ½ × {mass} × {speed}² = ½ × {mass} × {speed * speed} = "
                    f"{fmt(energy)} J.")
        return Made(problem, solution, f"{fmt(energy)} J", {"kind": "kinetic", "mass": mass, "speed": speed})
    if level == 1:
        mass, height = rng.randint(1, 25), rng.randint(1, 30)
        energy = Fraction(98, 10) * mass * height
        verb = rng.choice(("lifted", "raised", "carried", "hoisted", "pulled"))
        place = rng.choice(("straight up", "onto a high shelf", "up a staircase", "to a rooftop",
                            "up from the ground", "by a crane"))
        problem = (f"A {mass} kg {thing} is {verb} {height} m {place}. How much gravitational potential "
                   "energy does it gain? Use g = 9.8 m/s².")
        solution = (f"Potential energy = mgh = {mass} × 9.8 × {height} = {fmt(energy)} J.")
        return Made(problem, solution, f"{fmt(energy)} J", {"kind": "potential", "mass": mass, "height": height})
    mass, speed = rng.randint(1, 12), rng.choice((5, 10, 15, 20, 25, 30))
    height = Fraction(speed * speed, 20)
    problem = (f"A {mass} kg {thing} is dropped from a height of {fmt(height)} m. Ignoring air resistance and "
               "using g = 10 m/s², how fast is it moving just before it hits the ground?")
    solution = (f"Potential energy becomes kinetic energy: mgh = ½mv², so v² = 2gh = 2 × 10 × {fmt(height)} = "
                f"{speed * speed} and v = √{speed * speed} = {speed} m/s.")
    return Made(problem, solution, f"{speed} m/s", {"kind": "drop", "mass": mass, "height": str(height)})


def _verify_energy(params: Mapping[str, Any], answer: Fraction) -> bool:
    kind, mass = params["kind"], params["mass"]
    if kind == "kinetic":
        return 2 * answer / (mass * params["speed"]) == params["speed"]
    if kind == "potential":
        return answer / (mass * params["height"]) == Fraction(98, 10)
    return Fraction(1, 2) * mass * answer * answer == mass * 10 * Fraction(params["height"])  # ½mv² = mgh


BUILTIN: tuple[Template, ...] = (
    Template("arithmetic", "arithmetic", _arithmetic, _verify_expression),
    Template("fractions", "fractions", _fractions, _verify_expression),
    Template("percentages", "percentages", _percentages, _verify_percentages),
    Template("linear-equations", "linear equations", _linear, _verify_linear),
    Template("areas", "geometry", _areas, _verify_areas),
    Template("areas-topic", "areas", _areas, _verify_areas),
    Template("kinematics", "kinematics", _kinematics, _verify_kinematics),
    Template("energy", "energy", _energy, _verify_energy),
)
