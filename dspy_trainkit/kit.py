"""The open kit: settings, plugin manager, store and logger in one object, and the Python API on top.

A `Kit` is the `context` every data hook receives, so plugins never reach for globals. Pipeline authors use it
directly:

    import dspy_trainkit as tk
    with tk.open("sqlite:///trainkit.db") as kit:
        kit.add(task="qa", inputs={"question": "2+2?"}, outputs={"answer": "4"})
        print(kit.stats())
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ConfigError, NotFoundError, PluginError, TrainkitError, ValidationError
from .gc_pause import gc_paused
from .models import Event, Example
from .plugin_manager import TrainkitPluginManager, call_impls, hook_impls, make_plugin_manager, timeout_of
from .settings import Settings, load_settings, resolve_store_url
from .signatures import is_import_path, signature_fields
from .store import GROUP_COLUMNS, ExampleQuery, Store, open_store, redact_url

if TYPE_CHECKING:  # imported where used: `stats` or `list` need none of them (start-up time, docs/performance.md)
    from .collection import Collector
    from .conversion import ConversionResult
    from .files.importing import ImportReport
    from .intake import Intake, IntakeReport

log = logging.getLogger("dspy_trainkit")
#: The Example fields a trainset reads from the store (with the id): what `dspy.Example`s are made of.
TRAINSET_COLUMNS = ("task", "inputs", "outputs")


def _sorted_keys(counts: Mapping[Any, int]) -> list[Any]:
    """Group keys in the order the store's ORDER BY gave them (None first, like SQLite; then by value)."""
    def order(key: Any) -> Any:
        parts = key if isinstance(key, tuple) else (key,)
        return tuple((part is not None, part if part is not None else "") for part in parts)

    return sorted(counts, key=order)


class Kit:
    """An open trainkit project. Close it (or use `with`) to release the store."""

    def __init__(self, settings: Settings, pm: TrainkitPluginManager, store: Store):
        self.settings = settings
        self.pm = pm
        self.store = store
        self.log = log
        self._intake_runner: Intake | None = None  # made on first use: `stats` and `list` never take anything in
        self._task_fields: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}
        self._collector: Collector | None = None
        self._plugin_state: dict[str, dict[str, Any]] = {}
        self.on_close: list[Any] = []  # callables close() runs first (a running IncrementalBuilder's stop)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop background builders, write what collection has queued, then release the store."""
        for stop in list(reversed(self.on_close)):
            stop()
        if self._collector is not None:
            self._collector.close()
        self.store.close()

    def __enter__(self) -> Kit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------------------
    def add(self, example: Example | Mapping[str, Any] | None = None, /, *, actor: str = "api",
            reason: str = "", **fields: Any) -> Example:
        """Add one example (an Example, a mapping, or fields as keywords) through intake; return it as stored.

        A malformed example raises ValidationError; a duplicate returns the example stored before.
        """
        from .intake import candidates, to_example

        record = example if example is not None else {"source": "manual", **fields}
        made = candidates(self, record)  # a dspy.Example or other pipeline object goes through `collect`
        if len(made) != 1:
            raise ValidationError(f"kit.add takes one example, the record made {len(made)}; use add_many")
        defaults = {"source": "manual", **(fields if example is not None else {})}  # task, labels for an object
        candidate = to_example(made[0], defaults, self.settings.default_task)
        report = self.add_many([candidate], actor=actor, reason=reason)
        if report.ids:
            return self.get(report.ids[0])
        stored = self.store.find_by_hash(candidate.task, candidate.content_hash)
        if stored is None:  # pragma: no cover - only if another writer removed it in between
            raise NotFoundError(f"example {candidate.id} was neither stored nor found as a duplicate")
        return stored

    def add_many(self, records: Iterable[Example | Mapping[str, Any]], *, defaults: Mapping[str, Any] | None = None,
                 actor: str = "api", reason: str = "", progress: Any = None) -> IntakeReport:
        """Add many examples through the intake pipeline in batches; returns counts and per-record problems."""
        positioned = ((f"record {n}", rec) for n, rec in enumerate(records, start=1))
        return self.intake(positioned, defaults=defaults, actor=actor, reason=reason, progress=progress)

    def intake(self, items: Iterable[tuple[str, Any]], **options: Any) -> IntakeReport:
        """Run `(position, record)` pairs through intake (what importers and collectors call)."""
        if self._intake_runner is None:
            from .intake import Intake

            self._intake_runner = Intake(self)
        return self._intake_runner.run(items, **options)

    # -- collection from a pipeline ---------------------------------------------------------------------
    @property
    def collection(self) -> Collector:
        """The background writer of collected examples (its `stats` count what happened so far)."""
        if self._collector is None:
            from .collection import Collector

            self._collector = Collector(self)
        return self._collector

    def collect(self, task: str, inputs: Any, outputs: Any, *, domain: str | None = None, topic: str | None = None,
                difficulty: str | None = None, metadata: Mapping[str, Any] | None = None,
                provenance: Mapping[str, Any] | None = None) -> bool:
        """Queue one pipeline output for intake in the background; returns at once, never raises. Returns
        whether it was queued (collection can be off or sampled per task: `collect`, `sample_rate`)."""
        return self.collection.submit(task, inputs, outputs, metadata=metadata, provenance=provenance,
                                      labels={"domain": domain, "topic": topic, "difficulty": difficulty})

    def collector(self, *, task: str, **options: Any) -> Any:
        """Decorator: `@kit.collector(task="qa")` records a function's arguments (inputs) and result
        (outputs) for every successful call; options `inputs`, `output`, `labels` (see collection.py)."""
        from .collection import collector_decorator

        return collector_decorator(self, task, **options)

    def dspy_callback(self, *, task: str, module: Any = None, **options: Any) -> Any:
        """A DSPy callback that collects `module`'s successful calls: `dspy.configure(callbacks=[...])`."""
        from .collection import dspy_callback

        return dspy_callback(self, task, module, **options)

    def add_dspy_callback(self, *, task: str, module: Any = None, **options: Any) -> Any:
        """Add `dspy_callback(...)` to DSPy's configured callbacks, keeping those already installed (MLflow's
        autolog, a tracer); `dspy.configure(callbacks=[...])` would replace them. Returns the callback."""
        from .collection import add_dspy_callback

        return add_dspy_callback(self, task, module, **options)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything collected so far is stored."""
        return self._collector.flush(timeout) if self._collector is not None else True

    def set_status(self, new_status: str, /, *, actor: str = "api", reason: str = "", progress: Any = None,
                   all: bool = False, **filters: Any) -> int:  # noqa: A002
        """Give the examples matching `filters` (ExampleQuery fields: ids=..., status=..., where="quality<0.5")
        the status `new_status` (accepted, rejected, archived, candidate); recorded with actor and reason.
        Without filters nothing is changed unless `all=True`, so a forgotten filter cannot archive a whole store.
        Returns how many changed."""
        if not all and not any(value not in (None, ()) for value in filters.values()):
            raise ValidationError("set_status: say which examples (ids=, task=, where=, ...) or pass all=True "
                                  "to change every example")
        from . import curation as changes

        return changes.set_status(self, ExampleQuery(**filters), new_status, actor=actor, reason=reason,
                                  progress=progress)

    def edit(self, example_id: str, *, actor: str = "api", reason: str = "", status: str | None = None,
             **fields: Any) -> Example:
        """Change an example's inputs, outputs, labels or metadata; it is validated and scored again and the
        audit trail keeps before and after. `status` also decides it (a reviewer's accept after an edit)."""
        from . import curation as changes

        return changes.edit(self, example_id, fields, actor=actor, reason=reason, status=status)

    def rescore(self, *, actor: str = "api", reason: str = "", progress: Any = None, **filters: Any) -> int:
        """Validate and score the matching examples again with the plugins loaded now; statuses stay."""
        from . import curation as changes

        return changes.rescore(self, ExampleQuery(**filters), actor=actor, reason=reason, progress=progress)

    def notify(self, event: Event) -> None:
        """Tell `on_data_changed` plugins about a committed change; a failing plugin is logged, not raised."""
        for impl in hook_impls(self.pm, "on_data_changed"):  # one failing listener must not silence the others
            try:
                call_impls([impl], "on_data_changed", timeout=timeout_of(self.pm), event=event, context=self)
            except PluginError as exc:
                self.log.error("%s (the change itself is committed)", exc)

    # -- reading -----------------------------------------------------------------------------------------
    def get(self, example_id: str) -> Example:
        """The example with this id, or with a unique start or end of its id (at least 4 characters)."""
        example = self.store.get(example_id)
        if example is not None:
            return example
        matches = self.store.ids_matching(example_id) if len(example_id) >= 4 else []
        if len(matches) == 1 and (found := self.store.get(matches[0])) is not None:
            return found
        if len(matches) > 1:
            raise NotFoundError(f"example id part {example_id!r} matches several examples; give more characters "
                                "(the end of an id tells examples made together apart)")
        raise NotFoundError(f"no example with id {example_id!r} in {redact_url(self.settings.store_url)} "
                            "(see `trainkit list`)")

    def examples(self, **filters: Any) -> Iterator[Example]:
        """Stream examples matching the filters of ExampleQuery (task, status, domain, ..., limit, offset)."""
        return self.store.iter_examples(ExampleQuery(**filters))

    def count(self, **filters: Any) -> int:
        return self.store.count(ExampleQuery(**filters))

    def stats(self, **filters: Any) -> dict[str, Any]:
        """Counts in total and by task, status, source, and domain/topic/difficulty; `synthetic_share`: the
        synthetic/real mix of the accepted examples per task and domain, with each task's cap."""
        from .generation.mixing import share_rows  # accepted synthetic vs real, per task and domain

        query = ExampleQuery(**filters)
        # one grouped pass over the label index; every figure below is a sum over its (few) groups
        groups = self.store.group_counts(list(GROUP_COLUMNS), query)
        result: dict[str, Any] = {"total": sum(n for _, n in groups)}
        for position, column in enumerate(GROUP_COLUMNS):
            counts: dict[Any, int] = {}
            for key, n in groups:
                counts[key[position]] = counts.get(key[position], 0) + n
            result[f"by_{column}"] = {k if k is not None else "(none)": counts[k] for k in _sorted_keys(counts)}
        cell_at = [GROUP_COLUMNS.index(c) for c in ("domain", "topic", "difficulty")]
        cells: dict[tuple[Any, ...], int] = {}
        for key, n in groups:
            cell = tuple(key[i] for i in cell_at)
            cells[cell] = cells.get(cell, 0) + n
        result["by_cell"] = [{"domain": k[0], "topic": k[1], "difficulty": k[2], "count": cells[k]}
                             for k in _sorted_keys(cells)]
        task_at, status_at, domain_at, source_at = (GROUP_COLUMNS.index(c)
                                                    for c in ("task", "status", "domain", "source"))
        if query.status in (None, "accepted"):  # the accepted examples are among the groups
            result["synthetic_share"] = share_rows(self, [((key[task_at], key[domain_at], key[source_at]), n)
                                                          for key, n in groups if key[status_at] == "accepted"])
        else:  # the share is of accepted examples whatever the status filter says
            from .generation.mixing import synthetic_share

            result["synthetic_share"] = synthetic_share(self, query)
        return result

    def plugin_settings(self, plugin: str, task: str | None = None, domain: str | None = None, *,
                        known: Iterable[str] | None = None) -> dict[str, Any]:
        """A plugin's `[plugin.NAME]` table with its per-task and per-domain overrides applied:
        `[plugin.NAME]` < `[plugin.NAME.tasks.TASK]` < `[plugin.NAME.tasks.TASK.domains.DOMAIN]`.
        With `known` (the plugin's keys), an unknown key is a ConfigError naming it and the known ones."""
        merged = self._plugin_settings(plugin, task, domain)
        if known is not None:
            known = list(known)
            unknown = sorted(set(merged) - set(known))
            if unknown:
                where = f" (task {task!r})" if task else ""
                raise ConfigError(f"[plugin.{plugin}]{where}: unknown key {unknown[0]!r}; known keys: "
                                  f"{', '.join(known)}")
        return merged

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """Scratch space a plugin may keep for as long as this kit is open (caches, indexes); nothing in it
        outlives the kit or leaks into another one."""
        return self._plugin_state.setdefault(plugin, {})

    def _plugin_settings(self, plugin: str, task: str | None, domain: str | None) -> dict[str, Any]:
        base = dict(self.settings.plugin_config.get(plugin, {}))
        tasks = base.pop("tasks", {}) or {}
        if task is None or task not in tasks:
            return base
        task_table = dict(tasks[task])
        domains = task_table.pop("domains", {}) or {}
        merged = {**base, **task_table}
        if domain is not None and domain in domains:
            merged.update(domains[domain])
        return merged

    def task_fields(self, task: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The task's declared (inputs, outputs): from settings, or from its Signature when that is an import
        path (which imports DSPy); None when the task declares nothing. Cached per task."""
        if task not in self._task_fields:
            settings = self.settings.task(task)
            fields = settings.fields()
            if fields is None and is_import_path(settings.signature):
                fields = signature_fields(settings.signature, self.settings.project_dir)
            self._task_fields[task] = fields
        return self._task_fields[task]

    # -- files and DSPy ----------------------------------------------------------------------------------
    def import_files(self, paths: Iterable[str | Path], *, task: str | None = None,
                     input_fields: Sequence[str] | None = None, output_fields: Sequence[str] | None = None,
                     field_map: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
                     format: str | None = None, encoding: str | None = None, dry_run: bool = False,  # noqa: A002
                     on_reject: Any = None, progress: Any = None) -> ImportReport:
        """Import JSON/JSONL/CSV/YAML files (or any registered format) through intake; see docs/importing.md."""
        from .files.formats import ReadOptions
        from .files.importing import import_files
        from .files.mapping import FieldMap

        fmap = FieldMap(task=task or self.settings.default_task, renames=dict(field_map or {}),
                        input_fields=tuple(input_fields) if input_fields else None,
                        output_fields=tuple(output_fields) if output_fields else None,
                        labels={k: v for k, v in (labels or {}).items() if v is not None},
                        task_fields=self.task_fields)
        return import_files(self, [Path(p) for p in paths], field_map=fmap, format_name=format,
                            read_options=ReadOptions(encoding=encoding), dry_run=dry_run, on_reject=on_reject,
                            progress=progress)

    def export(self, output: str | Path | None, *, format: str | None = None,  # noqa: A002
               provenance: bool = False, keep_formulas: bool = False, progress: Any = None, **filters: Any) -> int:
        """Stream the examples matching `filters` to a file (None: stdout) in a registered format; CSV cells that
        start like a spreadsheet formula are neutralised unless `keep_formulas`."""
        from .files.exporting import export_examples

        return export_examples(self, Path(output) if output is not None else None, ExampleQuery(**filters),
                               format_name=format, provenance=provenance, keep_formulas=keep_formulas,
                               progress=progress)

    def convert(self, examples: Iterable[Example], target: str, **options: Any) -> ConversionResult:
        """Convert examples with the `convert` plugins; the result lists what was skipped and why."""
        from .conversion import convert

        return convert(self, list(examples), target, options)

    def trainset(self, task: str, *, status: str | None = "accepted", signature: Any = None,
                 snapshot: str | None = None, balanced: bool = False, cap: int | None = None,
                 mark_used: bool = True, **filters: Any) -> list[Any]:
        """`dspy.Example` objects (inputs marked) for `task`, checked against its Signature.

        With `snapshot`, the task's examples of that snapshot as they were when it was taken (status and
        filters do not apply); with `balanced`, at most `cap` (default: the task's `cell_cap`) per cell, best
        quality first. The examples used get `last_used_at` set (one `used` event) unless mark_used=False.
        Examples that lack a field the signature needs are skipped with a logged warning naming each; a
        signature field that no example has raises ConversionError before any optimizer runs.
        """
        with gc_paused():
            return self._trainset(task, status, signature, snapshot, balanced, cap, mark_used, filters)

    def _trainset(self, task: str, status: str | None, signature: Any, snapshot: str | None, balanced: bool,
                  cap: int | None, mark_used: bool, filters: dict[str, Any]) -> list[Any]:
        from .conversion import convert
        from .lifecycle import balance, freshness, snapshots

        if snapshot is not None:
            examples = list(snapshots.examples(self, snapshot, task=task))
        elif balanced:
            examples = balance.select(self, ExampleQuery(task=task, status=status, **filters), cap=cap)
        else:
            # only the fields a dspy.Example needs: a million full Examples held 3.8 GiB
            examples = list(self.store.iter_example_columns(ExampleQuery(task=task, status=status, **filters),
                                                            TRAINSET_COLUMNS))
        if not examples:
            self.log.warning("trainset %s: no %s examples match (known tasks: %s)", task, status or "stored",
                             ", ".join(self._stored_tasks()) or "none")
        # marked used only once converted (a conversion that fails marks nothing); the ids wait as one string, not a
        # list of a million that would keep every id alive while the examples are released
        ids = "\x00".join(ex.id for ex in examples) if mark_used else ""
        # the list is handed over, not copied (as `self.convert` does): the plugin may release each stored
        # example once its dspy.Example is made, so a million of them are not held twice
        result = convert(self, examples, "dspy", {"signature": signature})
        for example_id, reason in result.skipped:
            self.log.warning("trainset %s: skipped example %s: %s", task, example_id, reason)
        if ids:
            skipped = {example_id for example_id, _ in result.skipped}
            used = ids.split("\x00")
            freshness.mark_used(self, [i for i in used if i not in skipped] if skipped else used,
                                what={"task": task, "snapshot": snapshot, "balanced": balanced})
        return result.items

    def events(self, example_id: str | None = None, since: float | None = None) -> Iterator[Event]:
        return self.store.iter_events(example_id=example_id, since=since)

    # -- lifecycle (dspy_trainkit.lifecycle) ------------------------------------------------------------
    def snapshot(self, name: str, *, balanced: bool = False, cap: int | None = None, total: int | None = None,
                 status: str | None = "accepted", actor: str = "api", reason: str = "", **filters: Any) -> Any:
        """Take the immutable snapshot `name` of the selected examples (default: accepted ones); see
        docs/lifecycle.md. Returns the Snapshot (ids with content hashes, and the config that chose them)."""
        from .lifecycle import snapshots

        return snapshots.create(self, name, ExampleQuery(status=status, **filters), balanced=balanced, cap=cap,
                                total=total, actor=actor, reason=reason)

    def split(self, snapshot: str, dev_fraction: float = 0.2, seed: int = 0, *, task: str | None = None,
              signature: Any = None) -> tuple[list[Any], list[Any]]:
        """A deterministic, seeded train/dev split of a snapshot, stratified by task and cell, as two lists of
        `dspy.Example` (for one task: give `task` when the snapshot holds several)."""
        from .lifecycle import snapshots

        train, dev = snapshots.split(self, snapshot, dev_fraction=dev_fraction, seed=seed, task=task)
        return (self.convert(train, "dspy", signature=signature).items,
                self.convert(dev, "dspy", signature=signature).items)

    @property
    def manager(self) -> Any:
        """The TrainingDataManager of this kit: cleanup policies, freshness and balance reports."""
        from .lifecycle.cleanup import TrainingDataManager

        return TrainingDataManager(self)

    def backup(self, output: str | Path, *, portable: bool | None = None, progress: Any = None) -> dict[str, Any]:
        """Back the store up to `output` while writers go on; returns the manifest (checksums and counts).
        `portable=None`: SQLite's online-backup copy for a SQLite store, else the portable archive (examples,
        snapshots, events, runs with champions' programs, plans). Restore with `trainkit restore` or
        `dspy_trainkit.lifecycle.restore.restore(path, kit)` into an empty store."""
        from .lifecycle.backup import backup

        return backup(self, Path(output), portable=portable, progress=progress)

    # -- optimization (dspy_trainkit.optimization) -----------------------------------------------------
    def require_task(self, task: str) -> str:
        """`task` when it is declared in settings or has stored examples; otherwise a ConfigError naming the
        known tasks, so a misspelt name is not reported as a task with no data."""
        if task in self.settings.tasks or self.store.count(ExampleQuery(task=task)) > 0:
            return task
        known = sorted(set(self.settings.tasks) | set(self._stored_tasks()))
        raise ConfigError(f"unknown task {task!r}: not declared in the settings ([tasks.{task}]) and no examples "
                          f"stored; known tasks: {', '.join(known) or 'none yet'}")

    def _stored_tasks(self) -> list[str]:
        """The tasks that have stored examples (one GROUP BY, not the whole stats)."""
        return sorted(key[0] for key, _ in self.store.group_counts(["task"], ExampleQuery()))

    def readiness(self, task: str | None = None, optimizer: str | None = None) -> list[Any]:
        """Is there enough accepted data to optimize? One `Readiness` per task and per domain of it: counts per
        cell against the optimizer's minimums, quality distribution, balance gaps, verdict and next steps."""
        from .optimization.readiness import readiness

        return readiness(self, task=self.require_task(task) if task is not None else None, optimizer=optimizer)

    def optimize(self, task: str, program: Any = None, metric: Any = None, optimizer: str | None = None,
                 snapshot: str | None = None, **options: Any) -> Any:
        """Optimize `task`'s DSPy program on a snapshot (the named one, or a new one of its accepted examples),
        keep it if it beats the champion, and return the recorded `Run`; see docs/optimization.md."""
        from .optimization.runs import optimize

        name = self.require_task(task)
        try:
            return optimize(self, name, program, metric, optimizer, snapshot, **options)
        finally:  # a failed run is what the run-failed alert is for
            if not options.get("dry_run"):
                self._check_alerts_quietly([name])

    def _check_alerts_quietly(self, tasks: list[str]) -> None:
        """Alerts after work that may change them (a run); a failing check is logged, never fails the work."""
        try:
            self.check_alerts(tasks)
        except TrainkitError as exc:
            self.log.error("alert check after the run failed: %s", exc)

    def value(self, task: str, *, run: str | None = None, actor: str = "api", labels: Any = None) -> Any:
        """Estimate each accepted example's value to `task`'s program from the stored optimization runs (or run
        `run` alone) and a `labels` check (`kit.check_labels`), store it and return a `ValueReport` (lowest
        value first); see docs/effectiveness.md."""
        from .effectiveness.valuation import value

        return value(self, self.require_task(task), run=run, actor=actor, labels=labels)

    def check_labels(self, task: str, *, run: str | None = None, budget: int = 200, seed: int = 0,
                     lm: Any = None) -> Any:
        """Run the champion (or run `run`'s program) on up to `budget` accepted examples and compare with their
        labels: a `LabelCheck` to pass to `kit.value(task, labels=...)`. One LM call per example."""
        from .effectiveness.labels import check_labels

        return check_labels(self, self.require_task(task), run=run, budget=budget, seed=seed, lm=lm)

    def valuation_run(self, task: str, *, budget: int, demos: int = 4, val_size: int = 20, seed: int = 0,
                      program: Any = None, metric: Any = None, lm: Any = None, dry_run: bool = False,
                      concurrency: int | None = None, progress: Any = None) -> Any:
        """Evaluate `budget` programs whose `demos` demos are seeded subsets of the accepted examples on one
        seeded validation set of `val_size` of them (`val_size` LM calls each), through a stored, resumable
        plan; their candidates become evidence for `value(task)`. With `dry_run`, only count the calls left.
        Returns a `ValuationRunReport` (dspy_trainkit.effectiveness.sampling)."""
        from .effectiveness.sampling import run_valuation

        return run_valuation(self, self.require_task(task), budget=budget, demos=demos, val_size=val_size, seed=seed,
                             program=program, metric=metric, lm=lm, dry_run=dry_run, concurrency=concurrency,
                             progress=progress)

    def review_queue(self, task: str, *, order: str = "doubt", ids: Sequence[str] | None = None) -> list[Any]:
        """`ids` (default: the task's candidates) ordered by what reviewing them is worth: `order="doubt"`, the
        labels the program most doubts first; `"need"`, the examples of the cells that need examples most first.
        `QueueEntry`s (example id and reason); see dspy_trainkit.effectiveness.queue."""
        from .effectiveness.queue import review_queue

        return review_queue(self, self.require_task(task), order=order, ids=ids)

    def values(self, task: str, *, order: str = "value", limit: int | None = None,
               example_ids: Sequence[str] | None = None) -> list[Any]:
        """The values the last `value(task)` stored, lowest first (`order="-value"`: highest first), each an
        `ExampleValue` with `stale` set when the example changed since."""
        from .effectiveness.valuation import stored_values

        found = stored_values(self, task, example_ids=example_ids, order=order, limit=limit)
        if not found:
            self.require_task(task)  # a misspelt task is an error, not "no values yet"
        return found

    def recommend(self, task: str) -> list[Any]:
        """Ranked `Recommendation`s for `task`'s data from the rule plugins (`recommend` hook), each with its
        reason, evidence, and a status to apply or a command to run; see docs/effectiveness.md."""
        from .effectiveness.recommendations import recommend

        return recommend(self, self.require_task(task))

    def apply_recommendation(self, task: str, rec_id: str, *, actor: str = "api") -> tuple[Any, int]:
        """Apply current recommendation `rec_id` of `task` through curation (the audit trail names it); returns
        the recommendation and how many examples changed."""
        from .effectiveness.recommendations import apply

        return apply(self, self.require_task(task), rec_id, actor=actor)

    def weak_spots(self, task: str, *, run: str | None = None) -> Any:
        """Where `task`'s program fails: failure rates per cell and the failed dev examples, from the latest
        successful run's dev results (or run `run`'s); a `WeakSpots`."""
        from .effectiveness.weakness import weak_spots

        return weak_spots(self, self.require_task(task), run=run)

    def impact(self, task: str, a: str, b: str, *, lm: Any = None) -> Any:
        """What changed from `a` to `b` (snapshots or runs of `task`): data per cell, the two programs' scores on
        one dev set, flipped dev examples, and the most valuable added or removed examples (`ImpactReport`)."""
        from .effectiveness.impact import impact

        return impact(self, self.require_task(task), a, b, lm=lm)

    def check_alerts(self, tasks: Iterable[str] | None = None) -> Any:
        """Run the alert rules for `tasks` (default: every configured or stored task): raise and deliver new
        alerts, update those still holding, resolve the others; returns a `CheckReport`."""
        from .effectiveness.alerts import check

        return check(self, tasks)

    def alerts(self, *, task: str | None = None, include_resolved: bool = False) -> list[Any]:
        """Stored alerts, newest first: open and acknowledged ones (and resolved with `include_resolved`)."""
        statuses = None if include_resolved else ("open", "acknowledged")
        return self.store.list_alerts(task=task, statuses=statuses)

    def acknowledge_alert(self, alert_id: str, *, actor: str = "api") -> Any:
        """Mark an open alert acknowledged (it stays until its condition is gone, and is not delivered again)."""
        from .effectiveness.alerts import acknowledge

        return acknowledge(self, alert_id, actor=actor)

    def runs(self, task: str | None = None) -> list[Any]:
        """Optimization runs (of `task`), oldest first."""
        from .optimization.champions import list_runs

        return list_runs(self, task)

    def run(self, run_id: str) -> Any:
        """One run with its per-example dev results and random-search candidates."""
        from .optimization.champions import get_run

        return get_run(self, run_id)

    def champion(self, task: str) -> Any:
        """The champion `Run` of `task`, or None."""
        from .optimization.champions import champion

        return champion(self, task)

    def program(self, task: str, factory: Any = None) -> Any:
        """The DSPy program to run for `task`: the champion loaded from its saved JSON, or the unoptimized program
        (from `factory` or the task's configured program) while there is no champion."""
        from .optimization.champions import load_program

        return load_program(self, task, factory)

    def task_state(self, task: str, optimizer: str | None = None) -> Any:
        """Is `task` still "collecting" data or "optimized" (readiness met and a champion exists)? A
        `TaskState` (`.state`, `.ready`, `.champion`, `.next_steps`); see docs/incremental.md."""
        from .optimization.incremental import task_state

        return task_state(self, self.require_task(task), optimizer)

    def builder(self, task: str | None = None, program: Any = None, metric: Any = None,
                optimizer: str | None = None, **options: Any) -> Any:
        """An `IncrementalBuilder` that re-optimizes when the triggers in settings fire: `.due()`, `.step()`,
        `.start(interval)` in a background thread, `.stop()`; see docs/incremental.md."""
        from .optimization.incremental import IncrementalBuilder

        return IncrementalBuilder(self, self.require_task(task) if task is not None else None, program, metric,
                                  optimizer, **options)

    def plot_runs(self, path: str | Path, task: str | None = None) -> Path:
        """Write the score trend of the optimization runs (of `task`) to `path` (.html, or .png with the `plot`
        extra): baseline and optimized score per run over time, champions marked."""
        from .optimization.plot import plot_kit_runs

        return plot_kit_runs(self, path, task)

    # -- generation (LMs) --------------------------------------------------------------------------------
    def lm(self, task: str | None = None, purpose: str = "generation") -> Any:
        """A `dspy.LM` for `purpose` ("generation", "judging", ...) with the task's overrides; the API key is
        read now from the variable `api_key_env` names. Not configured or key unset: LMError."""
        from .generation.lm import build_lm

        return build_lm(self.settings.lm_for(task, purpose), purpose=purpose, task=task)

    def lm_calls(self, task: str | None = None, purpose: str = "generation") -> Any:
        """An `LMCalls` over `kit.lm(task, purpose)`: concurrency, rpm, retries and accounting from settings."""
        from .generation.calls import LMCalls

        return LMCalls(self.lm(task, purpose), self.settings.lm_for(task, purpose))

    def synthesize(self, task: str, strategy: str, count: int, *, seed: int = 0, dry_run: bool = False,
                   options: Mapping[str, Any] | None = None, lm: Any = None, check_lm: bool = True,
                   progress: Any = None, **filters: Any) -> Any:
        """Make `count` synthetic examples of `task` with a registered strategy ("template", "paraphrase",
        "harder", ...) through intake; `filters` (ExampleQuery fields: where=, status=, topic=, ...) select the
        seed examples and target cells; `lm` replaces the generation LM. Returns a SynthesisReport (made,
        accepted, rejected by reason, duplicates, failures, diversity); see docs/synthesis.md."""
        from .generation.synthesis import synthesize

        return synthesize(self, task, strategy, count, query=ExampleQuery(**filters), seed=seed, dry_run=dry_run,
                          options=options, lm=lm, check_lm=check_lm, progress=progress)

    def bootstrap(self, task: str, *, domain: str | None = None, per_cell: int | None = None,
                  dry_run: bool = False, concurrency: int | None = None, **options: Any) -> Any:
        """Fill the task's domain x topic x difficulty plan with examples from its DSPy program, through intake
        (source "bootstrap"); resumable, parallel, safe with several workers. Returns a BootstrapReport; see
        docs/generation.md. Options: plan, lease, max_attempts, progress, check."""
        from .generation.bootstrap import bootstrap

        return bootstrap(self, task, domain=domain, per_cell=per_cell, dry_run=dry_run, concurrency=concurrency,
                         **options)


def open(url: str | None = None, *, config: str | Path | None = None, settings: Settings | None = None,  # noqa: A001
         plugins: Sequence[tuple[str, Any]] = (), disable: Iterable[str] = (),
         env: Mapping[str, str] | None = None, pm: TrainkitPluginManager | None = None,
         create: bool = True, migrate: bool = True) -> Kit:
    """Open a trainkit project.

    `url` overrides the store URL from settings (a relative SQLite path is taken from the current folder);
    `config` names a trainkit.toml (default: the nearest one); `plugins` are extra `(name, plugin)` pairs to
    register (for programs and tests); `disable` adds plugin names to the deny-list; `pm` reuses a plugin
    manager; `create=False` refuses to create a store that does not exist yet; `migrate=False` leaves pending
    schema migrations for `kit.store.migrate()` (see docs/operations.md).
    """
    if settings is None:
        settings = load_settings(config, env=env)
    if url is not None:
        settings = attrs.evolve(settings, store_url=resolve_store_url(url, Path.cwd()))
    if pm is None:
        pm = make_plugin_manager(load=settings.load_plugins, disable=(*settings.disable_plugins, *disable),
                                 strict=settings.strict_plugins, extra_plugins=plugins,
                                 timeout=settings.plugin_timeout)
    return Kit(settings, pm, open_store(settings.store_url, settings, pm, create=create, migrate=migrate))
