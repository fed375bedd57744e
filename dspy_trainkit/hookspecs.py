"""Hook specifications: the whole contract between the trainkit core and its plugins.

Every feature, built-in or third-party, is a plugin implementing some of these hooks and registered under the
entry-point group ``dspy_trainkit``. Each spec says when it is called, what each argument is, what to return and
how results combine. ``docs/hooks.md`` has one section per hook; a test fails when one is missing.

Conventions shared by all hooks:

* ``context`` is the open :class:`~dspy_trainkit.kit.Kit` (settings, store, plugin manager, logger). Plugins
  read everything through it and never reach for globals.
* Batch hooks (``prepare``, ``validate``, ``score``) receive a list of examples and answer with a mapping keyed
  by the index in that list. Returning ``None`` or an empty mapping means "nothing to say". They are called one
  plugin at a time so that every finding and score is attributed to the plugin that made it, and an exception is
  reported with the plugin's name and the hook.
* Registry hooks (``import_format``, ``synthesize``, ``storage_backend``, ``cleanup_policies``) receive a
  ``register`` callback; the core validates and names each registration, and a clash between two plugins is
  an error naming both.
* Plugins import heavy libraries (dspy, psycopg2, ...) inside their functions, so that loading plugins stays
  cheap and ``trainkit --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import click

    from .kit import Kit
    from .models import Event, Example, Finding

PROJECT = "dspy_trainkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def collect(record: Any, context: Kit) -> Example | Mapping[str, Any] | list[Any] | None:
    """Turn one output of a running pipeline into candidate examples.

    Called by intake for every record that is not already example data (not an :class:`Example` and not a
    mapping of example fields): a ``dspy.Example``, a ``dspy.Prediction``, a pipeline's own result object.
    Return an :class:`Example`, a mapping of example fields (intake fills ``task``, ``source`` and labels
    from the caller's defaults), a list of those, or ``None`` when this plugin does not recognise the record.
    Raise :class:`~dspy_trainkit.errors.ValidationError` when the record is recognised but unusable; it is
    reported for that record and the rest go on.

    Calling mode: all results, one plugin at a time (a failing plugin is reported for that record, naming the
    plugin); every returned example enters intake.
    """


@hookspec
def prepare(examples: list[Example], context: Kit) -> dict[int, Any] | None:
    """Do the per-example work of this plugin's ``validate`` and ``score`` that depends on nothing but the example
    itself (tokenising, MinHash signatures, text features), so that parallel intake can run it in a worker process.

    Called once per intake batch (and for re-scoring) with the same ``examples`` as ``validate``, before it. Return
    a mapping from an index in ``examples`` to one value per example, or ``None``. The values come back to *this
    plugin's* ``validate`` and ``score`` as their ``prepared`` argument (``{index in their examples: value}``),
    whether ``prepare`` ran in this process (serial intake, re-scoring) or in a worker (``intake.workers``).

    What may run here: work whose result depends only on the example and the settings. ``context`` in a worker is
    a kit of its own with the same settings and plugins but no store (reading it raises), and a worker sees
    neither earlier batches nor what the writer stored since: anything that compares examples with each other or
    with the store (an index, a norm read from stored examples) belongs in ``validate``/``score``, which always run
    in the one writer process, batch after batch, in order. Values must be picklable, and the writer's hooks must
    not count on changes they make to them reaching another process.

    Calling mode: all results, one plugin at a time; a plugin without ``prepare`` does all its work in
    ``validate``/``score``, in the writer (always correct). A plugin that raises aborts the batch before anything
    of it is written, with an error naming the plugin (and, in a worker, the batch).
    """


@hookspec
def validate(examples: list[Example], context: Kit, prepared: Mapping[int, Any]) -> dict[int, list[Finding]] | None:
    """Check a batch of examples before they are stored.

    Called once per intake batch (up to ``intake.batch_size`` examples), after normalisation and before
    deduplication and scoring. ``examples`` are the batch's examples in order. Return a mapping from an index in
    ``examples`` to the :class:`Finding` objects for that example, or ``None``. A finding with severity
    ``error`` rejects the example; ``warning`` sends it to review (status ``candidate``). ``prepared`` holds what
    this plugin's ``prepare`` made for each example (by index in ``examples``; empty for a plugin without
    ``prepare``); a plugin that takes no ``prepared`` argument is called without it.

    Calling mode: all results, one plugin at a time; findings are tagged with the plugin's name. A plugin that
    raises aborts the batch before anything of it is written, with an error naming the plugin.
    """


@hookspec
def score(examples: list[Example], context: Kit, prepared: Mapping[int, Any]) -> dict[int, dict[str, float]] | None:
    """Score a batch of examples on one or more quality dimensions.

    Called once per intake batch, after validation and deduplication, for the examples not already rejected, and
    again by re-scoring. Return a mapping from an index in ``examples`` to ``{dimension: score}`` with scores in
    0..1, or ``None``. Overall quality is the weighted mean of all dimensions (weights from the task's settings,
    default 1). Two plugins reporting the same dimension is an error naming both. ``prepared``: as for ``validate``,
    re-keyed to the indexes of this call's ``examples``.

    Calling mode: all results, one plugin at a time. A plugin that raises aborts the batch before anything of it
    is written, with an error naming the plugin.
    """


@hookspec(firstresult=True)
def convert(examples: list[Example], target: str, context: Kit, options: dict[str, Any]) -> Any | None:
    """Convert stored examples into another representation, such as ``dspy.Example`` objects.

    Called by ``kit.trainset`` (target ``"dspy"``) and ``kit.convert`` for any target. ``examples`` are the
    stored examples to convert; ``target`` names the representation (``"dspy"``, ``"openai-chat"``, ...);
    ``options`` holds target-specific settings (for ``"dspy"``: ``signature``, a DSPy Signature class or string
    to check fields against). ``examples`` is a list made for this call (never the caller's own), so a plugin
    may set its entries to ``None`` as it converts them (unless a hook wrapper surrounds ``convert`` and may read
    them afterwards): a million-example trainset is then not held twice.
    Return a list of converted items, or a
    :class:`~dspy_trainkit.conversion.ConversionResult` that also names the examples skipped and why, or
    ``None`` when this plugin does not handle ``target``. Raise
    :class:`~dspy_trainkit.conversion.ConversionError` when the conversion as a whole cannot work.

    Calling mode: first result; the first plugin that returns something other than ``None`` wins.
    """


@hookspec
def import_format(register: Callable[..., None]) -> None:
    """Register readers for file formats that ``trainkit import`` understands.

    Called whenever the core lists import formats (when an import checks its paths, and when it starts reading).
    Call ``register(name, extensions, reader)`` for each format: ``name`` is the
    format's canonical name (``"jsonl"``), ``extensions`` a tuple of file endings without the dot, and
    ``reader(path, options)`` returns an iterator of ``(position, record)`` pairs, where ``position`` names the
    place in the file (``"line 12"``, ``"row 3"``) for error messages and ``record`` is a mapping, or an
    exception saying why that record could not be read (the import goes on with the next one). ``options`` is a
    :class:`~dspy_trainkit.files.formats.ReadOptions` (``encoding``). Readers should stream where the format allows
    it, so that memory does not grow with the file (the built-in ``jsonl`` and ``csv`` readers do; a JSON or YAML
    document has to be parsed whole, so those readers hold one document, then yield its records one by one). A
    problem with the whole file (wrong encoding) is raised as :class:`~dspy_trainkit.files.formats.FormatError` with a
    message saying what to do.

    Calling mode: all plugins are called; a name registered twice is an error naming both plugins.
    """


@hookspec
def export_format(register: Callable[..., None]) -> None:
    """Register writers for file formats that ``trainkit export`` can write.

    Called whenever the core lists export formats (once per export). Call ``register(name, extensions, writer)`` for
    each format: ``writer(examples, stream, options)`` writes the iterable of :class:`Example` to the binary file
    object ``stream`` as it goes (never collecting them all first) and returns how many it wrote; ``options`` is a
    :class:`~dspy_trainkit.files.formats.WriteOptions` (``provenance``: also write id, status, scores, provenance and
    times; ``task_fields``: declared fields per task). What a writer writes, the reader of the same name should read
    back to the same content hashes.

    Calling mode: all plugins are called; a name registered twice is an error naming both plugins.
    """


@hookspec
def synthesize(register: Callable[..., None]) -> None:
    """Register strategies that make new examples from existing ones or from templates.

    Called whenever synthesis lists its strategies (`trainkit synthesize`, `kit.synthesize`, `--list`). Call
    ``register(strategy)`` once per strategy, with an object that has:

    * ``name``: the strategy's name, a lower-case word (``-`` and ``_`` allowed), as users type it;
    * ``description``: one line saying what the strategy is for;
    * ``needs_lm``: ``True`` when it calls an LM (synthesis then checks the generation LM before any work and
      records the model in each example's provenance);
    * ``needs_seeds`` (optional, default ``True``): whether it works from seed examples;
    * ``generate(seeds, count, context, **options)``: returns or yields up to ``count`` candidates, each an
      :class:`Example` or a mapping of example fields. ``seeds`` are the selected stored examples (empty when
      ``needs_seeds`` is false), ``context`` a :class:`~dspy_trainkit.generation.synthesis.SynthesisContext`
      (``kit``, ``task``, ``cells``, ``random(...)``, ``lm_calls()``, ``fail(reason, message, parent=...)``),
      ``options`` the user's ``--option KEY=VALUE`` values. Put the seed's id in ``provenance["parent"]``.
      Report what could not be made with ``context.fail``; raise only for bad input (a ConfigError naming it).

    Candidates enter the intake pipeline with source ``synthetic`` and provenance ``strategy``, ``plugin``,
    ``random_seed`` (and ``model``), like any other source. A bad registration or a name registered by two
    plugins is an error naming the plugin(s).

    Calling mode: all plugins are called; return value ignored.
    """


@hookspec
def on_data_changed(event: Event, context: Kit) -> None:
    """Be told about a change that has been committed to the store.

    Called after every committed mutation (examples added, edited, status changed, archived), with the
    :class:`Event` that the store also wrote to its append-only events table in the same transaction. Use it to
    invalidate anything derived from data (caches, readiness, triggers). A plugin that raises is logged with its
    name; the change itself stays committed.

    Calling mode: all plugins are called; return value ignored.
    """


@hookspec
def storage_backend(register: Callable[..., None]) -> None:
    """Register store implementations, chosen by the scheme of the store URL.

    Called once when a store is opened. Call ``register(scheme, factory)`` for each URL scheme handled, where
    ``factory(url, settings, *, create)`` returns an object implementing :class:`~dspy_trainkit.store.Store`;
    with ``create=False`` it must raise :class:`~dspy_trainkit.errors.StoreError` when the store does not exist
    yet instead of making an empty one (so a mistyped path is reported, not silently created). ``trainkit doctor``
    and ``trainkit migrate`` also pass ``migrate=False``: open without applying pending schema migrations.

    Calling mode: all plugins are called; a scheme registered twice is an error naming both plugins.
    """


@hookspec
def cleanup_policies(register: Callable[..., None]) -> None:
    """Register the cleanup policies that a plugin decides (the core decides ``max_age_days``, ``min_quality``
    and ``over_full`` itself).

    Called once per cleanup plan (``trainkit cleanup``, ``kit.manager.plan()`` / ``run()``), before any example
    is read. Call ``register(name, plan)`` for each policy: ``name`` is a policy whose switch the ``[cleanup]``
    settings have and that the core leaves to a plugin (today ``superseded``); ``plan(kit, task, excluded)``
    returns or yields ``(example_id, detail)`` pairs: the live (accepted or candidate) examples of ``task`` the
    policy would archive, leaving out the ids in ``excluded`` (already planned by an earlier policy), with one
    line saying why (``"near-duplicate (0.91) of better example 0192..."``). It only plans: the core archives,
    in batches, with ``cleanup: NAME`` as the reason. When a policy is switched on and no plugin registered it,
    the cleanup stops with a ConfigError naming the policy and the plugin that provides it.

    Calling mode: all plugins are called; a name registered twice is an error naming both plugins.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``trainkit`` command line.

    Called the first time the CLI needs its command list (help, or a command that is not built in), once per
    plugin, each with a click group of its own that stands for the ``trainkit`` command line. Add commands with
    ``cli.add_command(...)`` or the ``@cli.command()`` decorator. A command whose name trainkit or an earlier
    plugin already uses is ignored with a warning naming both; a plugin that raises loses its commands, with a
    warning naming it, and the other commands still work. Keep the module cheap to import: import heavy
    libraries inside the command functions so that ``trainkit --help`` stays fast.

    Calling mode: all plugins are called, one at a time; return value ignored.
    """


@hookspec
def value_signals(task: str, evidence: Any, context: Kit) -> list[Any] | None:
    """Estimate how much each stored example of ``task`` helps the task's program, from recorded evidence.

    Called by ``kit.value(task)`` / ``trainkit value`` once per plugin. ``evidence`` is a
    :class:`~dspy_trainkit.effectiveness.evidence.Evidence` over the task's stored optimization runs:
    ``evidence.pools()`` yields the random-search candidates grouped by the validation set they were scored on
    (each candidate a demo set of example ids and a score), ``evidence.runs`` the run records,
    ``evidence.example_ids`` the ids of the task's accepted examples. Return a list of
    :class:`~dspy_trainkit.effectiveness.signals.ValueSignal` (one per example the plugin can say something
    about: its ``signal`` name, ``value`` with higher meaning "helps", ``stderr`` when the estimator has one,
    ``observations`` behind it and a JSON-able ``detail``), or ``None`` when the evidence is not enough for this
    estimator. The core combines the signals of all plugins per example (inverse-variance weighting of those
    with a standard error), stores the result and marks it stale when the example changes.

    Calling mode: all results, one plugin at a time (a failing plugin is reported with its name; the other
    estimators still count).
    """


@hookspec
def recommend(task: str, context: Kit) -> list[Any] | None:
    """Suggest concrete actions for ``task``'s data, each with its reason and evidence.

    Called by ``kit.recommend(task)`` / ``trainkit recommend`` once per plugin. Read what the rule needs through
    ``context`` (stored values with ``context.values(task)``, readiness, stats, runs). Return a list of
    :class:`~dspy_trainkit.effectiveness.recommendations.Recommendation` (``kind``, ``title``, ``reason``,
    ``evidence``, ``priority`` in 0..1, the ``example_ids`` it concerns, and either a ``status`` to give them
    when applied or a ``command`` for the user to run), or ``None`` for nothing to suggest. Say "not enough
    evidence yet" as a recommendation of its own rather than presenting noise as advice.

    Calling mode: all results, one plugin at a time (a failing plugin is reported with its name); the core
    names each recommendation with a stable id and ranks them by priority.
    """


@hookspec
def alert_rules(task: str, context: Kit) -> list[Any] | None:
    """Check the conditions worth an alert for ``task`` and return those that hold now.

    Called by ``kit.check_alerts()`` (``trainkit alerts check``, after ``trainkit import`` and ``optimize``, by
    ``trainkit watch``, and by the built-in ``alerts`` plugin after collected data arrives) once per plugin and
    task. Return a list of :class:`~dspy_trainkit.effectiveness.alerts.AlertSignal` (``rule``, ``severity``
    ``info``/``warning``/``critical``, ``title``, ``message``, JSON-able ``details``), one per condition that
    holds, or ``None``/``[]`` when none does. The core keeps one open alert per (task, rule): a condition that
    still holds updates it (count, last seen) instead of raising a new one, and an open alert of this plugin
    whose condition no longer holds is resolved.

    Calling mode: all results, one plugin at a time (a failing plugin is reported with its name, and its open
    alerts are left as they are).
    """


@hookspec
def on_alert(alert: Any, context: Kit) -> None:
    """Deliver a new alert: the log, a file, a webhook, a pager.

    Called once per alert when it is raised (not again while its condition keeps holding), with the stored
    :class:`~dspy_trainkit.effectiveness.alerts.Alert` (``id``, ``task``, ``rule``, ``severity``, ``title``,
    ``message``, ``details``, times). Must not raise for delivery problems it can retry or report itself; an
    exception is logged with the plugin's name and the other channels still get the alert.

    Calling mode: all plugins are called, one at a time; return value ignored.
    """
