"""Explicit schema upgrades: what `trainkit migrate [--check]` does.

Stores still migrate themselves when opened (so a one-host project never thinks about it); this is for
deployments that upgrade on purpose: back up, check what is pending, apply it once, while no older trainkit
process writes. Opening with `migrate=False` lets `--check` look without changing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ..errors import StoreError
from ..redaction import redact_url


@attrs.frozen
class MigrationStatus:
    """`applied` before this call, `pending` still to run, `ran` what this call applied."""

    store: str
    applied: list[str]
    pending: list[str]
    ran: list[str] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def migrate(url: str | None = None, *, config: str | Path | None = None, check: bool = False,
            settings: Any = None, pm: Any = None) -> MigrationStatus:
    """Apply the store's pending migrations (`check=True`: only report them). A store that holds migrations
    this trainkit does not know was upgraded by a newer one: an error, since running older code on it is unsafe."""
    from ..kit import open as open_kit

    kit = open_kit(url, config=config, settings=settings, pm=pm, create=False, migrate=False)
    try:
        store = kit.store
        shown = redact_url(store.url)
        unknown = store.unknown_migrations()
        if unknown:
            raise StoreError(f"store {shown} has migrations this trainkit does not know ({', '.join(unknown)}): "
                             "a newer dspy-trainkit upgraded it; upgrade dspy-trainkit here")
        applied, pending = store.applied_migrations(), store.pending_migrations()
        if check or not pending:
            return MigrationStatus(shown, applied, pending)
        ran = store.migrate()
        return MigrationStatus(shown, applied, store.pending_migrations(), ran)
    finally:
        kit.close()
