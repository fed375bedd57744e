"""Generation plan tables and the plan half of `PeeweeStore` (a mixin): slots, atomic claims, leases.

Two tables (migration 0003_generation_plans): `generation_plans` (name, task, config, created_at) and
`plan_slots`, one row per example to make, keyed by (plan, cell, slot index); `cell` is the JSON list
`[domain, topic, difficulty]` because a unique key over nullable label columns would treat every NULL as
distinct on both databases.

Claims are what must never overlap: on PostgreSQL `UPDATE ... WHERE key IN (SELECT ... FOR UPDATE SKIP
LOCKED)` lets any number of workers claim at once without waiting on each other's rows; on SQLite the
select-then-update runs in one `BEGIN IMMEDIATE` transaction, which SQLite serialises between processes.
Every update of a claimed slot checks the owner, so a worker whose lease was taken over cannot finish a slot
another worker now holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson
import peewee as pw

from dspy_trainkit.pluginkit import StoreError

if TYPE_CHECKING:  # the value classes load when a slot is read: opening a store for `stats` needs none
    from dspy_trainkit.pluginkit import Cell, PlanSlot, SlotResult

from . import schema

SLOT_COLUMNS = ("plan", "cell", "slot", "domain", "topic", "difficulty", "state", "owner", "lease_until",
                "attempts", "reason", "last_error", "example_id", "updated_at")


def define_plan_models(database: pw.Database) -> SimpleNamespace:
    """The `generation_plans` and `plan_slots` tables bound to `database`."""

    Base = schema.TableModel

    class PlanRow(Base):
        name = pw.CharField(primary_key=True)
        task = pw.CharField()
        created_at = pw.DoubleField()
        config = pw.TextField()

        class Meta:
            table_name = "generation_plans"

    class SlotRow(Base):
        plan = pw.CharField()
        cell = pw.TextField()
        slot = pw.IntegerField()
        domain = pw.CharField(null=True)
        topic = pw.CharField(null=True)
        difficulty = pw.CharField(null=True)
        state = pw.CharField(max_length=16)
        owner = pw.CharField(null=True)
        lease_until = pw.DoubleField(null=True)
        attempts = pw.IntegerField(default=0)
        reason = pw.CharField(null=True, max_length=32)
        last_error = pw.TextField(null=True)
        example_id = pw.CharField(null=True, max_length=32)
        updated_at = pw.DoubleField()

        class Meta:
            table_name = "plan_slots"
            primary_key = pw.CompositeKey("plan", "cell", "slot")
            indexes = ((("plan", "state"), False),)

    return schema.bound(database, Plan=PlanRow, Slot=SlotRow)


def create_tables(models: SimpleNamespace) -> None:
    """Migration 0003_generation_plans."""
    plan = define_plan_models(models.Example._meta.database)
    plan.Plan.create_table(safe=True)
    plan.Slot.create_table(safe=True)


def _cell(domain: str | None, topic: str | None, difficulty: str | None) -> str:
    return orjson.dumps([domain, topic, difficulty]).decode()


class PlanStoreMixin:
    """Plan methods of the Store interface for peewee stores; PeeweeStore inherits them."""

    db: pw.Database
    is_sqlite: bool

    @property
    def _plans(self) -> SimpleNamespace:
        models = getattr(self, "_plan_models", None)
        if models is None:
            models = self._plan_models = define_plan_models(self.db)
        return models

    def ensure_plan(self, plan: str, task: str, config: dict[str, Any],
                    slots: Sequence[tuple[str | None, str | None, str | None, int]]) -> int:
        now = time.time()
        rows = [(plan, _cell(d, t, lvl), i, d, t, lvl, "pending", None, None, 0, None, None, None, now)
                for d, t, lvl, i in slots]
        with self._transaction():  # type: ignore[attr-defined]
            model = self._plans.Plan  # two workers may create the plan at once: the second one's insert is a no-op
            (model.insert(name=plan, task=task, created_at=now, config=orjson.dumps(config).decode())
             .on_conflict_ignore().execute())
            before = self._plans.Slot.select().where(self._plans.Slot.plan == plan).count()
            schema.insert_rows(self.db, "plan_slots", SLOT_COLUMNS, rows, ignore_conflicts=True)
            return self._plans.Slot.select().where(self._plans.Slot.plan == plan).count() - before

    def plan_info(self, plan: str) -> dict[str, Any] | None:
        model = self._plans.Plan
        row = model.get_or_none(model.name == plan)
        if row is None:
            return None
        return {"name": row.name, "task": row.task, "created_at": row.created_at, "config": orjson.loads(row.config)}

    def plan_slots(self, plan: str, *, state: str | None = None, domain: str | None = None,
                   max_index: int | None = None, cells: Sequence[Cell] | None = None) -> list[PlanSlot]:
        slot = self._plans.Slot
        select = self._slot_filter(slot.select(*(getattr(slot, c) for c in SLOT_COLUMNS)), plan, domain, max_index,
                                   cells)
        if state is not None:
            select = select.where(slot.state == state)
        return [_slot(row) for row in select.order_by(slot.cell, slot.slot).tuples()]

    def slot_counts(self, plan: str, *, domain: str | None = None, max_index: int | None = None,
                    cells: Sequence[Cell] | None = None) -> dict[str, int]:
        slot = self._plans.Slot
        select = self._slot_filter(slot.select(slot.state, pw.fn.COUNT(slot.slot)), plan, domain, max_index, cells)
        return dict(select.group_by(slot.state).tuples())

    def reopen_failed_slots(self, plan: str, *, domain: str | None = None, max_index: int | None = None,
                            cells: Sequence[Cell] | None = None) -> int:
        slot = self._plans.Slot
        with self._transaction():  # type: ignore[attr-defined]
            update = slot.update(state="pending", attempts=0, updated_at=time.time())
            return self._slot_filter(update, plan, domain, max_index, cells).where(slot.state == "failed").execute()

    def release_claims(self, plan: str, owner: str | None = None, *,
                       owner_is_dead: Callable[[str], bool] | None = None) -> int:
        """Give claimed slots back (pending): those of `owner`, or those whose owner `owner_is_dead`."""
        slot = self._plans.Slot
        if owner is not None:
            owners = [owner]
        else:
            claimed = slot.select(slot.owner).where((slot.plan == plan) & (slot.state == "claimed")).distinct()
            owners = [o for (o,) in claimed.tuples() if o and owner_is_dead is not None and owner_is_dead(o)]
        if not owners:
            return 0
        with self._transaction():  # type: ignore[attr-defined]
            return (slot.update(state="pending", owner=None, lease_until=None, updated_at=time.time())
                    .where((slot.plan == plan) & (slot.state == "claimed") & slot.owner.in_(owners)).execute())

    def claim_slots(self, plan: str, owner: str, limit: int, lease_seconds: float, *, domain: str | None = None,
                    max_index: int | None = None, cells: Sequence[Cell] | None = None) -> list[PlanSlot]:
        now = time.time()
        slot = self._plans.Slot
        claimable = (slot.state == "pending") | ((slot.state == "claimed") & (slot.lease_until < now))
        keys = self._slot_filter(slot.select(slot.plan, slot.cell, slot.slot), plan, domain, max_index, cells)
        keys = keys.where(claimable).order_by(slot.cell, slot.slot).limit(limit)
        values = {"state": "claimed", "owner": owner, "lease_until": now + lease_seconds,
                  "attempts": slot.attempts + 1, "updated_at": now}
        columns = [getattr(slot, c) for c in SLOT_COLUMNS]
        if self.is_sqlite:
            with self._transaction():  # type: ignore[attr-defined]  - BEGIN IMMEDIATE: one claimer at a time
                chosen = list(keys.tuples())
                for key in chosen:
                    slot.update(**values).where((slot.plan == key[0]) & (slot.cell == key[1])
                                                & (slot.slot == key[2])).execute()
                rows = [slot.select(*columns).where((slot.plan == k[0]) & (slot.cell == k[1]) & (slot.slot == k[2]))
                        .tuples().get() for k in chosen]
        else:
            keys = keys.for_update("FOR UPDATE SKIP LOCKED")
            with self.db.atomic():
                update = slot.update(**values).where(pw.Tuple(slot.plan, slot.cell, slot.slot).in_(keys))
                rows = list(update.returning(*columns).tuples().execute())
        return sorted((_slot(row) for row in rows), key=lambda s: (s.cell.__repr__(), s.index))

    def renew_claims(self, plan: str, owner: str, lease_seconds: float) -> int:
        slot = self._plans.Slot
        with self._transaction():  # type: ignore[attr-defined]
            return (slot.update(lease_until=time.time() + lease_seconds)
                    .where((slot.plan == plan) & (slot.owner == owner) & (slot.state == "claimed")).execute())

    def attach_slot_examples(self, plan: str, owner: str,
                             attached: Iterable[tuple[str | None, str | None, str | None, int, str, int]],
                             ) -> list[tuple[str | None, str | None, str | None, int]]:
        slot = self._plans.Slot
        held = []
        with self._transaction():  # type: ignore[attr-defined]
            for domain, topic, difficulty, index, example_id, attempt in attached:
                if (slot.update(example_id=example_id)
                        .where((slot.plan == plan) & (slot.cell == _cell(domain, topic, difficulty))
                               & (slot.slot == index) & (slot.owner == owner) & (slot.state == "claimed")
                               & (slot.attempts == attempt))
                        .execute()):
                    held.append((domain, topic, difficulty, index))
        return held

    def finish_slots(self, plan: str, owner: str, results: Iterable[SlotResult]) -> int:
        slot = self._plans.Slot
        changed = 0
        now = time.time()
        with self._transaction():  # type: ignore[attr-defined]
            for r in results:
                values: dict[str, Any] = {"state": r.state, "updated_at": now, "reason": r.reason,
                                          "last_error": r.error, "lease_until": None}
                if r.state != "claimed":
                    values["owner"] = None if r.state == "pending" else owner
                values["example_id"] = r.example_id
                mine = ((slot.plan == plan) & (slot.cell == _cell(r.domain, r.topic, r.difficulty))
                        & (slot.slot == r.index) & (slot.owner == owner) & (slot.state == "claimed"))
                if r.attempt is not None:
                    mine &= slot.attempts == r.attempt
                changed += slot.update(**values).where(mine).execute()
        return changed

    def list_plans(self) -> list[dict[str, Any]]:
        model = self._plans.Plan
        rows = model.select(model.name, model.task, model.created_at, model.config).order_by(model.created_at,
                                                                                           model.name)
        return [{"name": name, "task": task, "created_at": created_at, "config": orjson.loads(config)}
                for name, task, created_at, config in rows.tuples()]

    def plan_slot_records(self, plan: str) -> list[dict[str, Any]]:
        slot = self._plans.Slot
        select = slot.select(*(getattr(slot, c) for c in SLOT_COLUMNS)).where(slot.plan == plan)
        records = []
        for row in select.order_by(slot.cell, slot.slot).tuples():
            values = dict(zip(SLOT_COLUMNS, row, strict=True))
            del values["plan"], values["cell"]
            values["index"] = values.pop("slot")
            records.append(values)
        return records

    def load_plan(self, info: dict[str, Any], slots: Sequence[dict[str, Any]]) -> None:
        name = info["name"]
        rows = [(name, _cell(s["domain"], s["topic"], s["difficulty"]), int(s["index"]), s["domain"], s["topic"],
                 s["difficulty"], s["state"], s.get("owner"), s.get("lease_until"), int(s.get("attempts") or 0),
                 s.get("reason"), s.get("last_error"), s.get("example_id"), s.get("updated_at") or info["created_at"])
                for s in slots]
        with self._transaction():  # type: ignore[attr-defined]
            model = self._plans.Plan
            if model.select().where(model.name == name).exists():
                raise StoreError(f"plan {name!r} is stored already")
            model.insert(name=name, task=info["task"], created_at=info["created_at"],
                         config=orjson.dumps(info.get("config") or {}).decode()).execute()
            schema.insert_rows(self.db, "plan_slots", SLOT_COLUMNS, rows)

    def _slot_filter(self, query: Any, plan: str, domain: str | None, max_index: int | None,
                     cells: Sequence[Cell] | None = None) -> Any:
        """The plan's slots, of `domain`, with index < `max_index`, and in `cells` (the task's current grid:
        slots of cells since removed from the settings are neither claimed nor counted), each when given."""
        slot = self._plans.Slot
        query = query.where(slot.plan == plan)
        if domain is not None:
            query = query.where(slot.domain == domain)
        if max_index is not None:
            query = query.where(slot.slot < max_index)
        if cells is not None:
            query = query.where(slot.cell.in_(sorted({_cell(*cell) for cell in cells})) if cells else pw.SQL("1 = 0"))
        return query


def _slot(row: Sequence[Any]) -> PlanSlot:
    from dspy_trainkit.pluginkit import PlanSlot

    values = dict(zip(SLOT_COLUMNS, row, strict=True))
    return PlanSlot(plan=values["plan"], domain=values["domain"], topic=values["topic"],
                    difficulty=values["difficulty"], index=values["slot"], state=values["state"],
                    owner=values["owner"], lease_until=values["lease_until"], attempts=values["attempts"],
                    reason=values["reason"], last_error=values["last_error"], example_id=values["example_id"])
