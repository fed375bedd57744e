"""The part of the store interface that keeps data plugins derive from an example's content (a near-duplicate
signature, an embedding), so that a new process loads it instead of recomputing it from every stored row.

Each row belongs to a `kind` (a name a plugin chooses, holding everything the data depends on: its plugin, the
algorithm and its parameters, e.g. "neardup/r2/s20240601/162x18"), an example id, and the content hash of the
example it was made from: a row whose example changed since (an edit) is not returned, so derived data is never
stale, whoever changed the example. Derived data is recomputable, so backups leave it out. Not abstract, so a
backend that predates it still opens; a plugin asks `keeps_example_data` and computes everything when it is false.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    from .queries import ExampleQuery


class ExampleDataStore:
    """Per-example derived data, by kind."""

    url: str
    #: whether this backend implements the methods below
    keeps_example_data: bool = False

    def save_example_data(self, kind: str, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Insert or replace `(example id, content hash, data)` rows of `kind`, in one transaction."""
        raise StoreError(f"the store backend of {self.url!r} does not keep derived example data")

    def iter_example_data(self, kind: str, query: ExampleQuery) -> Iterator[tuple[str, bytes | None]]:
        """Stream `(example id, data)` for every example matching `query` (its order, limit and offset are not
        applied); data is None when no row of `kind` was made from the example's current content."""
        raise StoreError(f"the store backend of {self.url!r} does not keep derived example data")

    def drop_example_data(self, prefix: str, *, keep_prefix: str | None = None) -> int:
        """Delete the rows whose kind starts with `prefix` but not with `keep_prefix` (data made by a version of
        an algorithm no longer used); returns how many were deleted."""
        raise StoreError(f"the store backend of {self.url!r} does not keep derived example data")
