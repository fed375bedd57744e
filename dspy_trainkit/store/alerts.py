"""The part of the store interface that keeps alerts (see dspy_trainkit.effectiveness.alerts).

Not abstract, so a backend that predates alerts still opens; it says so when alerts are asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    from ..effectiveness.alerts import Alert


class AlertStore:
    """Alerts by id, written whole (insert or replace)."""

    url: str

    def save_alert(self, alert: Alert) -> None:
        """Insert alert `alert.id`, or replace it with these values."""
        raise StoreError(f"the store backend of {self.url!r} does not keep alerts")

    def list_alerts(self, *, task: str | None = None, statuses: Sequence[str] | None = None) -> list[Alert]:
        """Alerts (of `task`, in `statuses`), newest first."""
        raise StoreError(f"the store backend of {self.url!r} does not keep alerts")
