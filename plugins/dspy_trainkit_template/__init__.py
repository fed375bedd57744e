"""Built-in synthesis strategy 'template': LM-free problems with computed answers, checked by computation.

Why: a team without data and without an LM budget (or offline) still needs a first dataset, and every dataset
benefits from examples whose answers are known to be right: they anchor quality checks and make an optimizer's
metric trustworthy. Templates draw numbers with a seeded random source, compute the answer exactly, and check it
by a second computation before the example is made; the intake pipeline then validates it like any other.

    trainkit synthesize --task problems --strategy template --count 130 --seed 1

Settings, `[plugin.template]` (overridable per task):

    templates = ["my_project.templates:TEMPLATES"]   # your own Template objects (a list or one), added
    builtin = true                                   # false: only your templates
    fields = { problem = "question" }                # where the values go when the task's fields differ
    levels = { foundation = "easy" }                 # difficulty names the strategy does not know

See docs/synthesis.md. Write your own templates with `Template(name, topic, make, verify)` and `Made`.
"""

from __future__ import annotations

from dspy_trainkit import hookimpl

from .library import BUILTIN, Made, Template, answer_value, evaluate, fmt

__all__ = ["BUILTIN", "Made", "Template", "TemplateStrategy", "answer_value", "evaluate", "fmt"]


def __getattr__(name: str):
    if name == "TemplateStrategy":
        from .strategy import TemplateStrategy

        return TemplateStrategy
    raise AttributeError(name)


@hookimpl
def synthesize(register):
    from .strategy import TemplateStrategy

    register(TemplateStrategy())
