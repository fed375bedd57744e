"""The `template` strategy: fill the task's cells evenly with template problems, each answer checked.

`count` is spread over the target cells (the task's domain x topic x difficulty cells, narrowed by the
selection): every cell gets `count // cells`, and the first `count % cells` cells (in the task's order) one
more. Cells whose topic no template serves are left out and named in the run's notes. Each cell draws from its
own random source (`context.random(domain, topic, difficulty)`), so the same seed gives the same examples, a
larger count extends the same sequence, and a re-run stores nothing twice. Within a cell a problem text is never
repeated. Candidates are yielded round-robin over the cells, so an interrupted run is still balanced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dspy_trainkit.pluginkit import ConfigError, import_object, words

from .library import BUILTIN, LEVELS, Template, answer_value

if TYPE_CHECKING:
    from dspy_trainkit.pluginkit import SynthesisContext

PLUGIN = "template"
KEYS = ("templates", "builtin", "fields", "levels", "max_similarity")
#: Word-set Jaccard similarity above which a drawn problem is skipped as too close to one made before in its
#: cell: below the near-duplicate check's default threshold (0.85), so that check does not reject them later.
MAX_SIMILARITY = 0.8
CANONICAL = ("domain", "topic", "difficulty", "problem", "solution", "answer")
DEFAULT_LAYOUT = (("domain", "topic", "difficulty"), ("problem", "solution", "answer"))
#: Difficulty names understood without settings; other names are placed by their position in the task's list.
LEVEL_NAMES = {"easy": 0, "basic": 0, "beginner": 0, "simple": 0, "low": 0, "medium": 1, "intermediate": 1,
               "moderate": 1, "normal": 1, "hard": 2, "advanced": 2, "difficult": 2, "high": 2, "expert": 2,
               "challenging": 2}
ATTEMPTS = 50  # draws per wanted example before a cell is declared exhausted


def level_of(difficulty: str | None, levels: Sequence[str], overrides: Mapping[str, int]) -> int:
    """The template level (0 easy, 1 medium, 2 hard) of a difficulty label: a `levels` setting, a known name,
    else its position in the task's difficulty list stretched over the three levels."""
    if difficulty is None:
        return 1
    key = difficulty.strip().lower()
    if key in overrides:
        return overrides[key]
    if key in LEVEL_NAMES:
        return LEVEL_NAMES[key]
    if difficulty in levels and len(levels) > 1:
        return round(2 * levels.index(difficulty) / (len(levels) - 1))
    return 1


class TemplateStrategy:
    """LM-free parametric problems with computed answers, spread evenly over the task's cells."""

    name = "template"
    description = ("LM-free parametric problems with computed, verified answers, spread evenly over the task's "
                   "topic x difficulty cells")
    needs_lm = False
    needs_seeds = False

    def generate(self, seeds: Sequence[Any], count: int, context: SynthesisContext, **options: Any
                 ) -> Iterator[dict[str, Any]]:
        config = {**context.kit.plugin_settings(PLUGIN, context.task, known=KEYS), **options}
        unknown = sorted(set(options) - set(KEYS))
        if unknown:
            raise ConfigError(f"strategy 'template': unknown option {unknown[0]!r}; known: {', '.join(KEYS)}")
        if not context.cells or all(cell[1] is None for cell in context.cells):
            raise ConfigError(f"task {context.task!r} has no topic x difficulty cells to fill (or none match the "
                              f"selection); set topics and difficulties under [tasks.{context.task}]")
        library = templates(config, context)
        layout = _layout(context, config.get("fields") or {})
        overrides = _level_overrides(config.get("levels") or {})
        limit = config.get("max_similarity", MAX_SIMILARITY)
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit <= 1:
            raise ConfigError(f"[plugin.{PLUGIN}] max_similarity = {limit!r}: use a number in 0..1 such as 0.8")
        cells = [cell for cell in context.cells if _for(library, cell)]
        for cell in context.cells:
            if cell not in cells:
                context.note(f"no template serves topic {cell[1]!r} (cell {'/'.join(str(c) for c in cell)}); "
                             "add one with [plugin.template] templates")
        if not cells:
            raise ConfigError(f"no template serves any topic of task {context.task!r} "
                              f"({', '.join(sorted({str(c[1]) for c in context.cells}))}); built-in topics: "
                              f"{', '.join(sorted({t.topic for t in BUILTIN}))}; add your own with "
                              "[plugin.template] templates (see docs/synthesis.md)")
        for label in ("domain", "topic", "difficulty"):
            position = CANONICAL.index(label)
            if label in layout and any(cell[position] is None for cell in cells):
                raise ConfigError(f"task {context.task!r} has a field {layout[label][1]!r} for the {label} but "
                                  f"defines no {label} values to put in it; set them under [tasks.{context.task}]")
        quotas = [count // len(cells) + (1 if i < count % len(cells) else 0) for i in range(len(cells))]
        streams = [self._cell(context, cell, quota, _for(library, cell), layout, overrides, float(limit))
                   for cell, quota in zip(cells, quotas, strict=True) if quota]
        while streams:  # round-robin over the cells
            for stream in list(streams):
                item = next(stream, None)
                if item is None:
                    streams.remove(stream)
                else:
                    yield item

    def _cell(self, context: SynthesisContext, cell: tuple[Any, Any, Any], quota: int, library: list[Template],
              layout: Mapping[str, tuple[str, str]], overrides: Mapping[str, int], limit: float
              ) -> Iterator[dict[str, Any]]:
        domain, topic, difficulty = cell
        rng = context.random(*cell)
        level = level_of(difficulty, context.difficulties(domain), overrides)
        seen: set[str] = set()
        made_words: list[frozenset[str]] = []
        made = draws = 0
        while made < quota:
            if draws >= ATTEMPTS * quota:
                context.fail("exhausted", f"cell {domain}/{topic}/{difficulty}: the templates gave only {made} "
                             f"different problems in {draws} draws", count=quota - made)
                return
            draws += 1
            template = rng.choice(library)
            drawn = template.make(rng, level)
            if drawn.problem in seen:
                continue
            seen.add(drawn.problem)
            bag = _bag(domain, topic, difficulty, drawn.problem, drawn.solution, drawn.answer)
            if any(len(bag & other) > limit * len(bag | other) for other in made_words):
                continue
            made_words.append(bag)
            value = answer_value(drawn.answer)
            if value is None or not template.verify(drawn.params, value):
                context.fail("check-failed", f"template {template.name!r} gave answer {drawn.answer!r} for "
                             f"{drawn.problem!r}, which its check rejects")
                made += 1
                continue
            made += 1
            values = {"domain": domain, "topic": topic, "difficulty": difficulty, "problem": drawn.problem,
                      "solution": drawn.solution, "answer": drawn.answer}
            record: dict[str, Any] = {"inputs": {}, "outputs": {}, "domain": domain, "topic": topic,
                                      "difficulty": difficulty,
                                      "provenance": {"template": template.name},
                                      "metadata": {"template": template.name, "level": LEVELS[level],
                                                   "params": _jsonable(drawn.params), "verified": True}}
            for canonical, (part, field) in layout.items():
                if values[canonical] is not None:
                    record[part][field] = values[canonical]
            yield record


def templates(config: Mapping[str, Any], context: SynthesisContext) -> list[Template]:
    """The built-in templates (unless `builtin = false`) and the user's (`templates = ["pkg.mod:NAME"]`, each
    naming a Template or a list of them)."""
    builtin = config.get("builtin", True)
    if not isinstance(builtin, bool):
        raise ConfigError(f"[plugin.{PLUGIN}] builtin = {builtin!r}: use true or false")
    paths = config.get("templates", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"[plugin.{PLUGIN}] templates = {paths!r}: use a list of import paths "
                          "such as [\"my_project.templates:TEMPLATES\"]")
    found = list(BUILTIN) if builtin else []
    for path in paths:
        loaded = import_object(path, context.kit.settings.project_dir, f"[plugin.{PLUGIN}] templates:")
        items = loaded if isinstance(loaded, list | tuple) else [loaded]
        for item in items:
            if not isinstance(item, Template):
                raise ConfigError(f"[plugin.{PLUGIN}] templates: {path!r} holds {type(item).__name__}, not a "
                                  "dspy_trainkit_template.Template")
            found.append(item)
    return found


def _for(library: list[Template], cell: tuple[Any, Any, Any]) -> list[Template]:
    domain, topic = cell[0], cell[1]
    if topic is None:
        return []
    key = topic.strip().lower()
    return [t for t in library if t.topic.lower() == key and (t.domain is None or t.domain == domain)]


def _layout(context: SynthesisContext, renames: Any) -> dict[str, tuple[str, str]]:
    """Where each canonical value goes in the task's examples: `(part, field name)`. Without declared fields the
    example task's layout (labels in, problem/solution/answer out); with them, each value goes where the task
    declares its (renamed) field, and values the task does not declare are left out."""
    if not isinstance(renames, Mapping) or not all(k in CANONICAL and isinstance(v, str) for k, v in
                                                   renames.items()):
        raise ConfigError(f"[plugin.{PLUGIN}] fields = {renames!r}: map some of {', '.join(CANONICAL)} to the "
                          "task's field names, e.g. fields = { problem = \"question\" }")
    name = {c: renames.get(c, c) for c in CANONICAL}
    declared = context.fields()
    if declared is None:
        return {c: ("inputs" if c in DEFAULT_LAYOUT[0] else "outputs", name[c]) for c in CANONICAL}
    layout = {}
    for canonical in CANONICAL:
        if name[canonical] in declared[0]:
            layout[canonical] = ("inputs", name[canonical])
        elif name[canonical] in declared[1]:
            layout[canonical] = ("outputs", name[canonical])
    missing = [f for f in (*declared[0], *declared[1]) if f not in {v[1] for v in layout.values()}]
    if missing or "answer" not in layout or "problem" not in layout:
        raise ConfigError(f"task {context.task!r} declares fields ({', '.join(declared[0])} -> "
                          f"{', '.join(declared[1])}) that the template strategy cannot fill"
                          + (f" ({', '.join(missing)})" if missing else "")
                          + "; map its values to them with [plugin.template] fields = { problem = \"question\" }")
    return layout


def _level_overrides(levels: Any) -> dict[str, int]:
    if not isinstance(levels, Mapping) or not all(isinstance(v, str) and v in LEVELS for v in levels.values()):
        raise ConfigError(f"[plugin.{PLUGIN}] levels = {levels!r}: map difficulty names to easy, medium or "
                          "hard, e.g. levels = { foundation = \"easy\" }")
    return {str(k).strip().lower(): LEVELS.index(v) for k, v in levels.items()}


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, int | float | str | bool) or v is None else str(v) for k, v in params.items()}


def _bag(*texts: str | None) -> frozenset[str]:
    """The word set the near-duplicate check compares (the one tokenizer, `dspy_trainkit.generation.text`)."""
    return frozenset(words(*texts))
