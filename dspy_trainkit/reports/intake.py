"""What intake did, per task and source: records received, stored by status, duplicates, invalid records, and
rejections by reason. `trainkit stats --collection` shows it; it is built from the audit trail (each intake
batch's event carries its counts) and the stored examples, so it covers every process that wrote to the store.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..kit import Kit


#: Status -> the row's count of it: "candidates", as in IntakeReport and the collector's stats.
STATUS_COUNTS = {"accepted": "accepted", "candidate": "candidates", "rejected": "rejected", "archived": "archived"}


def intake_summary(kit: Kit, task: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """One row per (task, source): task, source, received, stored, accepted, candidates, rejected, archived,
    duplicates, invalid, rejected_by_reason (error finding code -> count). `trainkit stats --collection --json`
    prints these rows as they are."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(t: str, s: str) -> dict[str, Any]:
        return rows.setdefault((t, s), {"task": t, "source": s, "received": 0, "stored": 0, "accepted": 0,
                                        "candidates": 0, "rejected": 0, "archived": 0, "duplicates": 0,
                                        "invalid": 0, "rejected_by_reason": Counter()})

    for event in kit.events():
        if event.kind not in ("added", "skipped") or "read" not in event.details:
            continue
        if "by" in event.details:  # per (task, source) counts: batches of collected records mix tasks
            for t, s, read, invalid, duplicates in event.details["by"]:
                if (task and t != task) or (source and s != source):
                    continue
                entry = row(t, s)
                entry["received"] += read
                entry["invalid"] += invalid
                entry["duplicates"] += duplicates
            continue
        # events written before the per-(task, source) counts: a batch of several tasks shows as "(mixed)"
        tasks, sources = event.details.get("tasks") or ["(unknown)"], event.details.get("sources") or ["(unknown)"]
        t = tasks[0] if len(tasks) == 1 else "(mixed)"
        s = sources[0] if len(sources) == 1 else "(mixed)"
        if (task and t != task) or (source and s != source):
            continue
        entry = row(t, s)
        for key, counter in (("received", "read"), ("duplicates", "duplicates"), ("invalid", "invalid")):
            entry[key] += event.details.get(counter, 0)
    for (t, s, status), count in kit.store.group_counts(["task", "source", "status"], _query(task, source)):
        entry = row(t, s)
        entry[STATUS_COUNTS[status]] += count
        entry["stored"] += count
    for ex in kit.examples(task=task, source=source, status="rejected"):
        for finding in ex.findings:
            if finding.severity == "error":
                row(ex.task, ex.source)["rejected_by_reason"][finding.code] += 1
    result = []
    for entry in rows.values():
        entry["rejected_by_reason"] = dict(entry["rejected_by_reason"].most_common())
        result.append(entry)
    return sorted(result, key=lambda r: (r["task"], r["source"]))


def _query(task: str | None, source: str | None) -> Any:
    from ..store import ExampleQuery

    return ExampleQuery(task=task, source=source)
