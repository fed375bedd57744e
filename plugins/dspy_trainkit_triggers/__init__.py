"""Built-in plugin 'triggers': notes committed data changes for re-optimization triggers.

Why: an `IncrementalBuilder` embedded in a pipeline should look at its triggers soon after the pipeline's data
changes, not only when its polling interval ends. This plugin's `on_data_changed` counts the change in
the kit's `ChangeMarks` and wakes waiting builders; that is a counter and a notify under a lock, so it never
slows the writer. Nothing is decided here: triggers are evaluated from the store (see
`dspy_trainkit.optimization.triggers`), so disabling this plugin only makes embedded builders wait for their
next poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dspy_trainkit import hookimpl

if TYPE_CHECKING:
    from dspy_trainkit import Event, Kit


@hookimpl
def on_data_changed(event: Event, context: Kit) -> None:
    from dspy_trainkit.pluginkit import mark_event

    mark_event(context, event)
