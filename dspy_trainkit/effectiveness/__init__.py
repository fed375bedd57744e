"""Effectiveness: which examples help the task's program, estimated from the evidence optimization runs leave.

`signals` holds what an estimator answers and what the core keeps per example, `evidence` reads the stored runs
for estimators, `valuation` runs the estimators (plugins of the `value_signals` hook), combines, stores and reads
values. See docs/effectiveness.md.
"""
