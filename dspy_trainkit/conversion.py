"""Converting stored examples for consumers (DSPy, chat fine-tuning formats) through the `convert` hook.

The core only picks the plugin and normalises its answer: a plugin returns either a plain list (everything
converted) or a ConversionResult that also lists the examples it skipped and why. Skipping is per example, so
one bad example does not stop a trainset; a mismatch that makes the whole conversion meaningless (a signature
field no example has) is a ConversionError before anything reaches an optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ConversionError

if TYPE_CHECKING:
    from .kit import Kit
    from .models import Example


__all__ = ["ConversionError", "ConversionResult", "convert"]


@attrs.frozen
class ConversionResult:
    """Converted items, and `(example id, reason)` for every example left out."""

    items: list[Any]
    skipped: list[tuple[str, str]] = attrs.field(factory=list)


def convert(kit: Kit, examples: list[Example], target: str, options: Mapping[str, Any] | None = None
            ) -> ConversionResult:
    """Ask the `convert` plugins for `target`; an unknown target is a ConversionError. `examples` is handed to
    the plugins, which may set its entries to None as they convert them: pass a copy to keep yours."""
    result = kit.pm.hook.convert(examples=examples, target=target, context=kit, options=dict(options or {}))
    if result is None:
        raise ConversionError(f"no plugin converts to {target!r} (is the plugin for it installed and enabled? "
                              "see `trainkit plugins`)")
    if isinstance(result, ConversionResult):
        return result
    return ConversionResult(items=list(result))
