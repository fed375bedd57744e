"""Feeding DSPy: readiness of a task's data, optimization runs on snapshots, the champion program per task.

Nothing here imports DSPy at import time (it takes over a second); the run engine imports it when a run starts.
The pieces, one job each:

- `config`: the `[optimize]` settings (and `[tasks.T.optimize]` overrides) with their defaults;
- `optimizers`: the table of optimizers trainkit can run (name -> DSPy class, minimum data, optional packages,
  needs such as a reflection LM);
- `readiness`: is there enough accepted data per task, domain and cell, and what to do next if not;
- `records`: the run record (`Run`) and its per-example dev results and random-search candidates;
- `resolve`: the program factory, metric and LMs a run is given by name or settings;
- `plan`: everything decided before the first LM call (checks, snapshot, split, dev cap, fallback) and the
  expected LM calls, which is also what a dry run shows;
- `runs`: the run engine (`optimize`): evaluate, compile, save, champion/challenger promotion;
- `champions`: reading runs and the champion, and loading the champion program;
- `triggers` / `incremental`: when to re-optimize, and the builder that does it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "OptimizeSettings": "config", "OPTIMIZERS": "optimizers", "OptimizerSpec": "optimizers",
    "Readiness": "readiness", "Run": "records", "ExampleResult": "records", "Candidate": "records",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dspy_trainkit.optimization' has no attribute {name!r}")
