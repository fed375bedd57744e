"""The public plugin API: everything a plugin may use, in one place.

A plugin imports from `dspy_trainkit` (hookimpl, the models, the errors, `open`) and from here, and from nothing
else of this package; the built-in plugins under `plugins/` do exactly that, which is the proof that this surface
is enough. Everything else in the package may move without notice (like pytest's `pytest` over `_pytest`).
Tests of a plugin use `dspy_trainkit.testing`.

Names are loaded on first use (PEP 562), so a plugin's `from dspy_trainkit.pluginkit import check_each` costs
nothing for `trainkit --help`. What is here, by the kind of plugin that needs it:

- every plugin: `hookimpl`, `Kit` (the `context` every data hook gets), `Example`, `Finding`, `Event`,
  `Snapshot`, the errors, `redact_url` (for any text that may hold a store URL or a key);
- validators and scorers: `check_each`, `tokens` and `Tokens` (the shared tokenisation of one text: its
  lowercase, `\\w+` words, squashed spacing and digit count, computed once per text per intake batch whatever
  the number of plugins that read it), `words` and `PUNCTUATION` (the word-set tokeniser of whole examples),
  `unknown_settings` (one check of a plugin's settings table);
- converters: `ConversionResult`, `ConversionError`, `signature_fields`;
- file formats: `FormatError`, `RecordError`, `ReadOptions`, `WriteOptions`, `open_input` (a file, `-` for
  standard input, or a FIFO; read once), `export_record` and `EXPORT_RECORD_COLUMNS` (the fields it reads, for
  a writer's `columns`), `parse_json` (orjson that keeps integers wider than 64 bits exact, so intake can
  reject them instead of rounding), and for formats stored as JSON `json_lines` (a JSON Lines file as a stream
  of objects) and `json_document` (a whole document);
- storage backends: `Store` and its parts (`ExampleDataStore` keeps data plugins derive from examples),
  `ExampleQuery`, `InsertResult`, `GROUP_COLUMNS`;
- synthetic strategies: `RewriteStrategy`, `Job`, `SynthesisContext`, `Cell`, `PlanSlot`, `SlotResult`,
  `string_list`, `variation_note`;
- command plugins: `CliState` (the global options, settings, plugins and the open kit) and `pass_state`;
- anything that loads user code by `"pkg.module:name"`: `import_module`, `import_object`;
- change listeners: `mark_event` (tells the re-optimization triggers that data changed);
- anything that starts threads: `block_in_this_thread` (first thing in a background thread, so SIGTERM and
  Ctrl-C reach the main thread, where trainkit's handlers run) and `available_cores` (how many to start);
- front ends (the web dashboard): `redact` and `redact_data` (secrets as ***), `snapshot_diff`,
  `snapshot_contents`, `metrics_text` (one Prometheus scrape), `settings_data` (the redacted settings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .kit import Kit
    from .models import Example

#: public name -> module (relative to this package) that defines it
_LAZY = {
    "hookimpl": "hookspecs",
    "Kit": "kit", "Settings": "settings", "TaskSettings": "settings", "ImportReport": "files.importing",
    "IntakeReport": "intake", "Example": "models", "Finding": "models", "Event": "models", "Snapshot": "models",
    "TrainkitError": "errors", "ConfigError": "errors", "StoreError": "errors", "PluginError": "errors",
    "NotFoundError": "errors", "ValidationError": "errors", "ConversionError": "errors",
    "redact_url": "redaction", "redact": "redaction", "redact_data": "redaction",
    "snapshot_diff": "frontends", "snapshot_contents": "frontends", "metrics_text": "frontends",
    "settings_data": "frontends",
    "words": "generation.text", "PUNCTUATION": "generation.text", "tokens": "tokens", "Tokens": "tokens",
    "ConversionResult": "conversion", "signature_fields": "signatures",
    "FormatError": "files.formats", "RecordError": "files.formats", "ReadOptions": "files.formats",
    "WriteOptions": "files.formats", "open_input": "files.formats", "export_record": "files.exporting",
    "EXPORT_RECORD_COLUMNS": "files.exporting",
    "parse_json": "json_values", "json_lines": "files.jsonread", "json_document": "files.jsonread",
    "Store": "store", "ExampleStore": "store", "SnapshotStore": "store", "PlanStore": "store", "RunStore": "store",
    "ValueStore": "store", "ExampleQuery": "store", "InsertResult": "store", "GROUP_COLUMNS": "store",
    "ExampleDataStore": "store",
    "ValueSignal": "effectiveness.signals", "ExampleValue": "effectiveness.signals",
    "Evidence": "effectiveness.evidence", "CandidatePool": "effectiveness.evidence",
    "Recommendation": "effectiveness.recommendations", "AlertSignal": "effectiveness.alerts",
    "Alert": "effectiveness.alerts", "AlertStore": "store",
    "RewriteStrategy": "generation.rewriting", "Job": "generation.rewriting",
    "string_list": "generation.rewriting", "variation_note": "generation.rewriting",
    "SynthesisContext": "generation.synthesis", "Cell": "generation.plan", "PlanSlot": "generation.plan",
    "SlotResult": "generation.plan",
    "CliState": "cli.state", "pass_state": "cli.state",
    "import_module": "import_paths", "import_object": "import_paths",
    "mark_event": "optimization.triggers",
    "block_in_this_thread": "thread_signals",
    "slot_setter": "models",
    "available_cores": "intake_parallel",
}

__all__ = sorted([*_LAZY, "check_each", "unknown_settings"])


__getattr__ = lazy_exports(_LAZY, globals())


def __dir__() -> list[str]:
    return list(__all__)


def check_each(examples: Sequence[Example], context: Kit, plugin: str, make_rules: Callable[[dict[str, Any]], Any],
               check: Callable[[Example, Any], list[Any]]) -> dict[int, list[Any]]:
    """The usual body of a `validate` hook: `check(example, rules)` for each example, where `rules` is built
    once per (task, domain) from the plugin's settings (`make_rules(kit.plugin_settings(plugin, task, domain))`);
    returns `{index: findings}` for the examples with findings."""
    rules_for: dict[tuple[str, str | None], Any] = {}
    found: dict[int, list[Any]] = {}
    for index, example in enumerate(examples):
        key = (example.task, example.domain)
        if key not in rules_for:
            rules_for[key] = make_rules(context.plugin_settings(plugin, example.task, example.domain))
        findings = check(example, rules_for[key])
        if findings:
            found[index] = findings
    return found


def unknown_settings(plugin: str, config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A plugin's settings table merged over its `defaults`, after refusing keys it does not know (a typo in
    `[plugin.NAME]` must not be silently ignored). Raises ConfigError naming the table, the keys and the known
    ones."""
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        from .errors import ConfigError

        raise ConfigError(f"[plugin.{plugin}] has unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(defaults)}")
    return {**defaults, **config}
