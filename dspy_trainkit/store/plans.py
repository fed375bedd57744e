"""The part of the store interface that keeps generation plans: slots that workers claim atomically.

Not abstract, so a backend that predates plans still opens; it says so when a plan is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StoreError

if TYPE_CHECKING:
    from ..generation.plan import PlanSlot, SlotResult


class PlanStore:
    """Generation plans and their slots (see dspy_trainkit.generation.plan)."""

    url: str

    def ensure_plan(self, plan: str, task: str, config: dict[str, Any],
                    slots: Sequence[tuple[str | None, str | None, str | None, int]]) -> int:
        """Create plan `plan` of `task` if new and add the `(domain, topic, difficulty, index)` slots it lacks
        (pending), in one transaction; returns how many slots were added."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def plan_info(self, plan: str) -> dict[str, Any] | None:
        """`{name, task, created_at, config}` of a plan, or None."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def plan_slots(self, plan: str, *, state: str | None = None, domain: str | None = None,
                   max_index: int | None = None, cells: Sequence[Any] | None = None) -> list[PlanSlot]:
        """The plan's slots (optionally in one state, of one domain, with index < max_index, in the given
        `(domain, topic, difficulty)` cells), in cell order. `cells` is the task's current grid, so slots of
        cells since removed from the settings are left out; the same holds for the slot methods below."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def slot_counts(self, plan: str, *, domain: str | None = None, max_index: int | None = None,
                    cells: Sequence[Any] | None = None) -> dict[str, int]:
        """How many of the plan's (matching) slots are in each state."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def reopen_failed_slots(self, plan: str, *, domain: str | None = None, max_index: int | None = None,
                            cells: Sequence[Any] | None = None) -> int:
        """Make failed slots pending again (attempts reset), for a re-run; returns how many."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def release_claims(self, plan: str, owner: str | None = None, *, owner_is_dead: Any = None) -> int:
        """Make claimed slots pending again: those of `owner`, or of every owner for which `owner_is_dead(owner)`
        is true; returns how many."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def claim_slots(self, plan: str, owner: str, limit: int, lease_seconds: float, *, domain: str | None = None,
                    max_index: int | None = None, cells: Sequence[Any] | None = None) -> list[PlanSlot]:
        """Atomically claim up to `limit` pending (or lease-expired) slots for `owner` for `lease_seconds`; two
        concurrent claimers never get the same slot. Each claim counts an attempt."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def renew_claims(self, plan: str, owner: str, lease_seconds: float) -> int:
        """Extend the leases of `owner`'s claimed slots to now + lease_seconds; returns how many."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def attach_slot_examples(self, plan: str, owner: str,
                             attached: Iterable[tuple[str | None, str | None, str | None, int, str, int]],
                             ) -> list[tuple[str | None, str | None, str | None, int]]:
        """Record `(domain, topic, difficulty, index, example_id, attempt)`: the id a claimed slot's example will
        be stored under, before storing it, so a crash in between is recognised on resume. Returns the slots
        `owner` still holds in that attempt (for the others the lease ran out and the slot was claimed again:
        their results must be dropped)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def finish_slots(self, plan: str, owner: str, results: Iterable[SlotResult]) -> int:
        """Move `owner`'s claimed slots to the results' states in one transaction; a slot no longer claimed by
        `owner` is left alone. Returns how many changed."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def list_plans(self) -> list[dict[str, Any]]:
        """Every plan's `{name, task, created_at, config}`, oldest first (backups)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def plan_slot_records(self, plan: str) -> list[dict[str, Any]]:
        """Every slot of the plan with all it holds (`domain, topic, difficulty, index, state, owner,
        lease_until, attempts, reason, last_error, example_id, updated_at`), in cell order (backups)."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")

    def load_plan(self, info: dict[str, Any], slots: Sequence[dict[str, Any]]) -> None:
        """Store a restored plan (`plan_info`) and its slots (`plan_slot_records`) exactly as given, in one
        transaction, with no event. A plan of that name stored already is a StoreError."""
        raise StoreError(f"the store backend of {self.url!r} does not keep generation plans")
