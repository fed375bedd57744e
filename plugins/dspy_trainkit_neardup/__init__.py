"""Built-in plugin 'neardup': near-duplicate detection and a `novelty` score, with MinHash LSH (rensa).

* `prepare`: each example's MinHash sketch (word set, signature, band hashes), which needs nothing but the
  example and the settings: parallel intake makes it in a worker, `validate` uses it in the writer.
* `validate`: an example whose Jaccard similarity (word sets of its input and output values; MinHash finds the
  candidates, the exact similarity confirms them) to a stored example of the same task, or to an earlier
  example of the batch, is at least `threshold` gets a `near-duplicate` finding naming the other example and the
  similarity; severity `error` (default) rejects it, `warning` sends it to review. Identical content is left to
  the core's exact dedup.
* `score`: dimension `novelty` = 1 - the largest similarity to a stored example of the same task, or to an
  earlier example of the batch (similarities below the index's floor, 0.70 by default, count as 0).
* `on_data_changed`: keeps the per-kit, per-task in-memory index current.
* `cleanup_policies`: registers the `superseded` cleanup policy (`[cleanup] superseded = true`): near-duplicates
  of a better example are archived, each cluster keeping its best (see `cleanup.py`).

Settings: `[plugin.neardup]` `threshold` (0.85) and `severity` ("error"), overridable per task and per domain.
See docs/neardup.md. rensa is imported on first use, not when plugins load.
"""

from __future__ import annotations

from dspy_trainkit import hookimpl


@hookimpl
def prepare(examples, context):
    from .check import prepare as sketches

    return sketches(context, examples)


@hookimpl
def validate(examples, context, prepared):
    from .check import validate as check

    return check(context, examples, prepared)


@hookimpl
def score(examples, context):
    from .check import novelty

    return novelty(context, examples)


@hookimpl
def on_data_changed(event, context):
    from .index import existing_state

    state = existing_state(context)
    if state is None or not state.indexes:  # nothing built yet: a later build reads the store as it is then
        return
    with state.lock:
        state.changed(context, event)


@hookimpl
def cleanup_policies(register):
    from .cleanup import superseded

    register("superseded", superseded)
