"""Readiness: is there enough accepted data to optimize a task, and if not, what exactly to add.

Per task (and per domain of it) this counts accepted examples per domain x topic x difficulty cell against the
chosen optimizer's minimum (`[optimize] min_examples`) and `min_per_cell`, works out how large the dev set will
be (the run engine's split is stratified by cell, so a cell gives a dev example only from a few examples on),
checks the optimizer's optional packages and needs, adds the quality distribution and the balance gaps of
`lifecycle.balance`, and turns any shortfall into concrete next steps ("bootstrap 3 more hard fractions problems
in math"). It reads counts only; it never calls an LM.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import attrs

from ..lifecycle import balance
from ..store import ExampleQuery
from . import optimizers

if TYPE_CHECKING:
    from ..kit import Kit

Cell = tuple[str | None, str | None, str | None]


@attrs.frozen
class Readiness:
    """The verdict for one task (`domain` None) or one domain of it. `needed` is what the optimizer needs in
    total (task) or the domain's share; `dev` the dev examples the split will give; `cells` rows of
    {domain, topic, difficulty, accepted, candidates, needed, target, missing}; `gaps` the balance report's short
    and over-full cells; `problems` why it is not ready; `next_steps` what to do."""

    task: str
    domain: str | None
    optimizer: str
    accepted: int
    needed: int
    dev: int
    min_dev: int
    candidates: int
    quality: dict[str, Any]
    cells: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    problems: list[str]
    next_steps: list[str]

    @property
    def ready(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        return "ready" if self.ready else "not ready"

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data.update(ready=self.ready, verdict=self.verdict)
        return data


def _dev_count(n: int, fraction: float) -> int:
    return round(n * fraction)  # what snapshots.split takes per stratum (Python's round, as there)


def _more_for_dev(n: int, fraction: float) -> int:
    """How many more examples a cell holding `n` needs before it gives one more dev example."""
    extra = 1
    while _dev_count(n + extra, fraction) <= _dev_count(n, fraction):
        extra += 1
    return extra


def _noun(task: str) -> str:
    return task if task.endswith("s") else f"{task} examples"


def _describe(task: str, cell: Cell, count: int) -> str:
    domain, topic, difficulty = cell
    words = " ".join(w for w in (difficulty, topic) if w)
    text = f"{count} more {words + ' ' if words else ''}{_noun(task)}"
    return text + (f" in {domain}" if domain else "")


def _quality(values: list[float], unscored: int) -> dict[str, Any]:
    if not values:
        return {"scored": 0, "unscored": unscored}
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 3
    return {"scored": len(ordered), "unscored": unscored, "mean": round(statistics.fmean(ordered), 4),
            "min": round(ordered[0], 4), "p25": round(quartiles[0], 4), "median": round(quartiles[1], 4),
            "p75": round(quartiles[2], 4), "max": round(ordered[-1], 4)}


def _reflection_lm_missing(kit: Kit, task: str) -> bool:
    return not kit.settings.lm_for(task, "reflection").model


def readiness(kit: Kit, *, task: str | None = None, optimizer: str | None = None) -> list[Readiness]:
    """One Readiness per task (every configured task and every task with examples, or just `task`), followed
    by one per domain of that task when it has domains."""
    if task is not None:
        tasks = [task]
    else:
        stored = [key[0] for key, _ in kit.store.group_counts(["task"], ExampleQuery())]
        tasks = sorted(set(stored) | set(kit.settings.tasks))
    result: list[Readiness] = []
    for name in tasks:
        result.extend(_task_readiness(kit, name, optimizer))
    return result


def _task_readiness(kit: Kit, task: str, optimizer: str | None) -> list[Readiness]:
    cfg = kit.settings.optimize_for(task)
    name = optimizer or cfg.optimizer
    spec = optimizers.get(name)
    need = cfg.minimum(name)
    rows = balance.report(kit, task=task)
    cells: list[Cell] = [row.cell for row in rows]
    accepted = {row.cell: row.count for row in rows}
    candidates = _candidates_by_cell(kit, task)
    values, unscored = _qualities_by_domain(kit, task)
    share = math.ceil(need / len(cells)) if cells else need
    cell_rows = _cell_rows(kit, task, cfg, rows, candidates)
    gaps = [row.to_dict() for row in rows if row.state != "ok"]
    total = sum(accepted.values())
    dev = sum(_dev_count(n, cfg.dev_fraction) for n in accepted.values())
    pending = sum(candidates.values())
    steps: list[str] = []
    problems: list[str] = []
    missing_packages = spec.missing_packages()
    if missing_packages:
        problems.append(f"optimizer {name} needs {', '.join(missing_packages)}, which is not installed")
        steps.append(f"install it: {spec.install}")
    if spec.needs_reflection_lm and _reflection_lm_missing(kit, task):
        problems.append(f"optimizer {name} needs a reflection LM")
        steps.append("set model in [lm.reflection] of trainkit.toml (a strong model)")
    below_cell = [r for r in cell_rows if r["missing"]]
    if below_cell:
        problems.append(f"{len(below_cell)} cell(s) hold fewer than min_per_cell = {cfg.min_per_cell} accepted "
                        "examples")
    additions: dict[Cell, int] = defaultdict(int)
    for r in below_cell:
        additions[(r["domain"], r["topic"], r["difficulty"])] += r["missing"]
    if total < need:
        problems.append(f"{total} accepted examples, {name} needs {need}")
        _spread_shortfall(additions, cells, accepted, need - total - sum(additions.values()), share)
    if dev < cfg.min_dev:
        problems.append(f"the split would give {dev} dev examples (dev_fraction {cfg.dev_fraction}), at least "
                        f"{cfg.min_dev} needed")
        _add_for_dev(additions, cells, accepted, cfg)
    steps.extend(_generation_steps(task, cells, additions))
    if problems and pending:
        steps.append(f"review {pending} waiting candidate(s) with `trainkit review --task {task}`: accepted ones "
                     "count")
    if not problems:
        steps.append(_optimize_step(kit, task, name, cfg))
    overall = Readiness(task=task, domain=None, optimizer=name, accepted=total, needed=need, dev=dev,
                        min_dev=cfg.min_dev, candidates=pending,
                        quality=_quality([v for vs in values.values() for v in vs], sum(unscored.values())),
                        cells=cell_rows, gaps=gaps, problems=problems, next_steps=steps)
    result = [overall]
    domains = sorted({c[0] for c in cells if c[0] is not None})
    for domain in domains:
        result.append(_domain_readiness(task, domain, name, cfg, cell_rows, gaps, additions, share,
                                        _quality(values.get(domain, []), unscored.get(domain, 0))))
    return result


def _candidates_by_cell(kit: Kit, task: str) -> dict[Cell, int]:
    """How many candidates (waiting for review) each cell holds."""
    candidates: dict[Cell, int] = defaultdict(int)
    for key, count in kit.store.group_counts(["domain", "topic", "difficulty"],
                                             ExampleQuery(task=task, status="candidate")):
        candidates[(key[0], key[1], key[2])] += count
    return candidates


def _qualities_by_domain(kit: Kit, task: str) -> tuple[dict[str | None, list[float]], dict[str | None, int]]:
    """The accepted examples' quality values per domain, and how many per domain have none yet."""
    values: dict[str | None, list[float]] = defaultdict(list)
    unscored: dict[str | None, int] = defaultdict(int)
    for domain, quality in kit.store.iter_qualities(ExampleQuery(task=task, status="accepted")):
        if quality is None:
            unscored[domain] += 1
        else:
            values[domain].append(quality)
    return values, unscored


def _cell_rows(kit: Kit, task: str, cfg: Any, rows: list[Any], candidates: dict[Cell, int]) -> list[dict[str, Any]]:
    """One row per cell of the task's grid: accepted, waiting, needed and missing counts, mean quality."""
    target = kit.settings.task(task).cell_target
    wanted = max(cfg.min_per_cell, 0)
    cell_rows = []
    for row in rows:
        domain, topic, difficulty = row.cell
        cell_rows.append({"domain": domain, "topic": topic, "difficulty": difficulty, "accepted": row.count,
                          "candidates": candidates.get(row.cell, 0), "needed": wanted, "target": target,
                          "missing": max(0, wanted - row.count),
                          "mean_quality": None if row.quality is None else round(row.quality, 4)})
    return cell_rows


def _spread_shortfall(additions: dict[Cell, int], cells: list[Cell], accepted: dict[Cell, int], deficit: int,
                      share: int) -> None:
    """Add `deficit` examples to `additions`: to the emptiest cells first, up to an even share each, then
    round-robin; with no cells declared, to the task as a whole."""
    if not cells:
        if deficit > 0:
            additions[(None, None, None)] += deficit
        return
    for cell in sorted(cells, key=lambda c: accepted.get(c, 0) + additions[c]):
        if deficit <= 0:
            break
        take = min(max(0, share - accepted.get(cell, 0) - additions[cell]), deficit)
        additions[cell] += take
        deficit -= take
    while deficit > 0:  # shares were full: round-robin
        for cell in cells:
            if deficit <= 0:
                break
            additions[cell] += 1
            deficit -= 1


def _add_for_dev(additions: dict[Cell, int], cells: list[Cell], accepted: dict[Cell, int], cfg: Any) -> None:
    """Add examples to the cells where the fewest more push the split over the next dev example, until the
    planned data gives `min_dev` dev examples."""
    # in the task's cell order (then any cell only the additions name), so ties always go the same way
    planned = {c: accepted.get(c, 0) + additions.get(c, 0) for c in [*cells, *(c for c in additions if c not in cells)]}
    planned_dev = sum(_dev_count(n, cfg.dev_fraction) for n in planned.values())
    while planned_dev < cfg.min_dev:
        if not planned:
            planned[(None, None, None)] = 0
        cell = min(planned, key=lambda c: _more_for_dev(planned[c], cfg.dev_fraction))
        extra = _more_for_dev(planned[cell], cfg.dev_fraction)
        additions[cell] = additions.get(cell, 0) + extra
        planned[cell] += extra
        planned_dev = sum(_dev_count(n, cfg.dev_fraction) for n in planned.values())


def _generation_steps(task: str, cells: list[Cell], additions: dict[Cell, int]) -> list[str]:
    """The `bootstrap` lines for the planned additions, in the task's cell order, and how to run them."""
    if not additions:
        return []
    order = {cell: n for n, cell in enumerate(cells)}
    steps = [f"bootstrap {_describe(task, cell, count)}"
             for cell, count in sorted(additions.items(), key=lambda item: order.get(item[0], len(order)))
             if count > 0]
    steps.append(f"generate with `trainkit bootstrap --task {task}` (or import data with `trainkit import "
                 f"FILE --task {task}`), then check again with `trainkit ready --task {task}`")
    return steps


def _optimize_step(kit: Kit, task: str, name: str, cfg: Any) -> str:
    """The `trainkit optimize` command to run next, with placeholders for what the settings do not name."""
    missing = []
    if not (cfg.program or kit.settings.task(task).program):
        missing.append("--program PKG.MODULE:FACTORY")
    if not cfg.metric:
        missing.append("--metric PKG.MODULE:FUNCTION")
    command = " ".join([f"trainkit optimize --task {task} --optimizer {name}", *missing])
    if not missing:
        return f"run `{command}`"
    what = " and ".join(option.split()[0].removeprefix("--") for option in missing)
    pronoun = "them" if len(missing) > 1 else "it"
    return f"run `{command}` (set {what} in [optimize] of trainkit.toml to leave {pronoun} out)"


def _domain_readiness(task: str, domain: str, name: str, cfg: Any, cell_rows: list[dict[str, Any]],
                      gaps: list[dict[str, Any]], additions: dict[Cell, int], share: int,
                      quality: dict[str, Any]) -> Readiness:
    rows = [r for r in cell_rows if r["domain"] == domain]
    count = sum(r["accepted"] for r in rows)
    problems = []
    if count == 0:
        problems.append(f"domain {domain} has no accepted examples")
    short = [r for r in rows if r["missing"]]
    if short:
        problems.append(f"{len(short)} cell(s) of domain {domain} below min_per_cell = {cfg.min_per_cell}")
    order = {(r["domain"], r["topic"], r["difficulty"]): n for n, r in enumerate(cell_rows)}
    steps = [f"bootstrap {_describe(task, cell, n)}" for cell, n in sorted(
        additions.items(), key=lambda item: order.get(item[0], len(order))) if cell[0] == domain and n > 0]
    if count == 0 and not steps:
        steps.append(f"bootstrap {_describe(task, (domain, None, None), max(1, share))}")
    return Readiness(task=task, domain=domain, optimizer=name, accepted=count,
                     needed=max(cfg.min_per_cell * len(rows), 1),
                     dev=sum(_dev_count(r["accepted"], cfg.dev_fraction) for r in rows), min_dev=0,
                     candidates=sum(r["candidates"] for r in rows), quality=quality,
                     cells=rows, gaps=[g for g in gaps if g["domain"] == domain], problems=problems,
                     next_steps=steps)
