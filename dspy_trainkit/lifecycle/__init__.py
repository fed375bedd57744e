"""Lifecycle of training data: snapshots (`snapshots`), balance reports and balanced selection (`balance`),
cleanup policies (`cleanup`, `TrainingDataManager`), freshness reports and last-used marks (`freshness`), and
backup and restore (`backup`, `restore`). One module per job; the CLI commands are in `cli/lifecycle.py`."""
