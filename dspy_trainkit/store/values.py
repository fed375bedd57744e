"""The part of the store interface that keeps per-example values (see dspy_trainkit.effectiveness).

Values are derived data: recomputed by `trainkit value` from the stored runs, so backups leave them out. Not
abstract, so a backend that predates values still opens; it says so when values are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    from ..effectiveness.signals import ExampleValue
    from ..models import Event


class ValueStore:
    """Per-example values of a task, replaced as a whole when recomputed, marked stale by data changes."""

    url: str

    def save_values(self, task: str, values: Sequence[ExampleValue], event: Event | None = None) -> None:
        """Replace every stored value of `task` with `values` (and record `event`) in one transaction."""
        raise StoreError(f"the store backend of {self.url!r} does not keep example values")

    def iter_values(self, task: str, *, example_ids: Sequence[str] | None = None, order: str = "value",
                    limit: int | None = None) -> Iterator[ExampleValue]:
        """Stream the stored values of `task` (of `example_ids` only, when given), by `order`: "value"
        (lowest first: what hurts most), "-value" (highest first) or "example" (by example id)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep example values")

    def mark_values_stale(self, example_ids: Sequence[str]) -> int:
        """Flag the stored values of these examples as stale (their content or status changed since); returns
        how many were flagged."""
        raise StoreError(f"the store backend of {self.url!r} does not keep example values")
