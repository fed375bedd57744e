"""Stored generation plans: slots, atomic claims (two workers at once, for real on PostgreSQL), leases, and
dead workers' claims. Every test runs on SQLite and PostgreSQL through the `store_url` fixture."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import dspy_trainkit as tk
from dspy_trainkit.generation.plan import SlotResult, new_owner, owner_is_dead, plan_cells, plan_slots
from dspy_trainkit.settings import DomainSettings, TaskSettings

TASK = TaskSettings(name="problems", topics=("fractions", "percentages"), difficulties=("easy", "hard"),
                    domains={"math": DomainSettings(), "physics": DomainSettings(topics=("kinematics",))})


def make_plan(kit: tk.Kit, per_cell: int = 2, name: str = "p") -> int:
    return kit.store.ensure_plan(name, "problems", {"per_cell": per_cell}, plan_slots(plan_cells(TASK), per_cell))


def test_plan_cells_follow_domain_overrides() -> None:
    assert plan_cells(TASK, "physics") == [("physics", "kinematics", "easy"), ("physics", "kinematics", "hard")]
    assert len(plan_slots(plan_cells(TASK), 3)) == (4 + 2) * 3


def test_ensure_plan_adds_only_missing_slots(kit: tk.Kit) -> None:
    assert make_plan(kit, per_cell=2) == 12
    assert make_plan(kit, per_cell=2) == 0
    assert make_plan(kit, per_cell=3) == 6  # a bigger per_cell extends the plan
    assert kit.store.slot_counts("p") == {"pending": 18}
    assert kit.store.slot_counts("p", max_index=2) == {"pending": 12}
    assert kit.store.plan_info("p")["task"] == "problems"


def test_claim_finish_and_states(kit: tk.Kit) -> None:
    make_plan(kit)
    owner = new_owner()
    claimed = kit.store.claim_slots("p", owner, 5, 60, domain="math")
    assert len(claimed) == 5 and {s.domain for s in claimed} == {"math"}
    assert all(s.state == "claimed" and s.owner == owner and s.attempts == 1 for s in claimed)
    a, b, c = claimed[:3]
    assert kit.store.finish_slots("p", owner, [
        SlotResult(*a.cell, a.index, "done", example_id="e1"),
        SlotResult(*b.cell, b.index, "failed", reason="timeout", error="no answer"),
        SlotResult(*c.cell, c.index, "pending", reason="duplicate")]) == 3
    assert kit.store.finish_slots("p", "someone-else", [SlotResult(*a.cell, a.index, "failed")]) == 0
    assert kit.store.slot_counts("p") == {"done": 1, "failed": 1, "claimed": 2, "pending": 8}
    (failed,) = kit.store.plan_slots("p", state="failed")
    assert (failed.reason, failed.last_error) == ("timeout", "no answer")
    assert kit.store.release_claims("p", owner) == 2
    assert kit.store.reopen_failed_slots("p") == 1
    assert kit.store.slot_counts("p") == {"done": 1, "pending": 11}


def test_expired_leases_and_dead_owners_are_claimed_again(kit: tk.Kit) -> None:
    make_plan(kit, per_cell=1)
    first = kit.store.claim_slots("p", "host-a:1:x", 6, 0.01)  # everything, with a lease that runs out at once
    assert len(first) == 6
    time.sleep(0.05)
    again = kit.store.claim_slots("p", "host-b:2:y", 6, 60)
    assert len(again) == 6 and all(s.attempts == 2 for s in again)
    assert kit.store.claim_slots("p", "host-c:3:z", 6, 60) == []  # live leases are respected

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{new_owner().split(':')[0]}:{child.pid}:dead"
    assert owner_is_dead(dead) and not owner_is_dead(new_owner())
    kit.store.release_claims("p", "host-b:2:y")
    kit.store.claim_slots("p", dead, 6, 3600)
    assert kit.store.release_claims("p", owner_is_dead=owner_is_dead) == 6


def test_two_workers_never_claim_the_same_slot(store_url: str) -> None:
    """Two workers, each with its own connection, claim concurrently until the plan is empty: every slot is
    claimed exactly once (on PostgreSQL this is FOR UPDATE SKIP LOCKED under real contention)."""
    with tk.open(store_url) as kit:
        kit.store.ensure_plan("p", "problems", {}, [("d", f"t{i}", "easy", j) for i in range(50) for j in range(8)])
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(2)

    def worker(name: str) -> None:
        got = claimed.setdefault(name, [])
        with tk.open(store_url) as kit:
            start.wait()
            while batch := kit.store.claim_slots("p", name, 3, 600):
                got.extend(s.key for s in batch)
                kit.store.finish_slots("p", name, [SlotResult(*s.cell, s.index, "done") for s in batch])
                time.sleep(0.002)  # the work between claims, so that the workers interleave

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    everything = claimed["w0"] + claimed["w1"]
    assert len(everything) == 400 and len(set(everything)) == 400
    assert claimed["w0"] and claimed["w1"]  # both really worked
    with tk.open(store_url) as kit:
        assert kit.store.slot_counts("p") == {"done": 400}


def test_a_result_of_an_older_claim_changes_nothing(kit: tk.Kit) -> None:
    """A slot whose lease ran out and was claimed again (even by the same worker) only takes the result of the
    newest claim: an old in-flight result is neither attached nor finished, so a slot never gets two examples."""
    kit.store.ensure_plan("p", "problems", {}, [("d", "t", "easy", 0)])
    (old,) = kit.store.claim_slots("p", "w", 1, 0.01)
    time.sleep(0.05)
    (new,) = kit.store.claim_slots("p", "w", 1, 60)
    assert (old.attempts, new.attempts) == (1, 2)
    assert kit.store.attach_slot_examples("p", "w", [(*old.cell, old.index, "e-old", old.attempts)]) == []
    assert kit.store.finish_slots("p", "w", [SlotResult(*old.cell, old.index, "done", example_id="e-old",
                                                        attempt=old.attempts)]) == 0
    assert kit.store.attach_slot_examples("p", "w", [(*new.cell, new.index, "e-new", new.attempts)]) == [
        ("d", "t", "easy", 0)]
    assert kit.store.finish_slots("p", "w", [SlotResult(*new.cell, new.index, "done", example_id="e-new",
                                                        attempt=new.attempts)]) == 1
    (done,) = kit.store.plan_slots("p")
    assert (done.state, done.example_id) == ("done", "e-new")
