"""Summaries computed from the store for people: what intake did per task and source, and the quality report."""
