"""Quality distributions: per score dimension and per domain/topic/difficulty cell, for `trainkit report
quality` (text, JSON, or a self-contained HTML page with inline SVG charts that needs no network)."""

from __future__ import annotations

import html
import statistics
from collections.abc import Iterable
from typing import Any

from ..models import Example

BINS = 10


def summarise(examples: Iterable[Example]) -> dict[str, Any]:
    """One pass over the examples: histograms and quantiles per dimension, counts and means per cell."""
    values: dict[str, list[float]] = {}
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    statuses: dict[str, int] = {}
    total = 0
    for ex in examples:
        total += 1
        statuses[ex.status] = statuses.get(ex.status, 0) + 1
        for dimension, value in ex.scores.items():
            values.setdefault(dimension, []).append(value)
        if ex.quality is not None:
            values.setdefault("quality", []).append(ex.quality)
        key = (ex.domain or "-", ex.topic or "-", ex.difficulty or "-")
        cell = cells.setdefault(key, {"count": 0, "accepted": 0, "qualities": []})
        cell["count"] += 1
        cell["accepted"] += ex.status == "accepted"
        if ex.quality is not None:
            cell["qualities"].append(ex.quality)
    return {
        "examples": total,
        "by_status": statuses,
        "dimensions": {d: _distribution(v) for d, v in sorted(values.items())},
        "cells": [{"domain": k[0], "topic": k[1], "difficulty": k[2], "count": c["count"],
                   "accepted": c["accepted"],
                   "mean_quality": round(statistics.fmean(c["qualities"]), 4) if c["qualities"] else None}
                  for k, c in sorted(cells.items())],
    }


def _distribution(values: list[float]) -> dict[str, Any]:
    histogram = [0] * BINS
    for value in values:
        histogram[min(int(value * BINS), BINS - 1)] += 1
    ordered = sorted(values)

    def quantile(q: float) -> float:
        return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 4)

    return {"count": len(values), "mean": round(statistics.fmean(values), 4), "p10": quantile(0.1),
            "p50": quantile(0.5), "p90": quantile(0.9), "histogram": histogram}


def _bars(histogram: list[int], width: int = 300, height: int = 80) -> str:
    top = max(histogram) or 1
    step = width / len(histogram)
    bars = "".join(
        f'<rect x="{i * step + 1:.1f}" y="{height - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}">'
        f"<title>{i / BINS:.1f}-{(i + 1) / BINS:.1f}: {n}</title></rect>"
        for i, n in enumerate(histogram) for h in [n / top * (height - 4)])
    return (f'<svg width="{width}" height="{height + 14}" role="img" class="hist">{bars}'
            f'<text x="0" y="{height + 12}">0</text><text x="{width - 8}" y="{height + 12}">1</text></svg>')


def to_html(summary: dict[str, Any], title: str) -> str:
    """A self-contained page: inline CSS and SVG, no scripts, no external resources."""
    esc = html.escape
    dims = "".join(
        f"<section><h3>{esc(d)}</h3><p>n={s['count']} mean={s['mean']} p10={s['p10']} p50={s['p50']} "
        f"p90={s['p90']}</p>{_bars(s['histogram'])}</section>" for d, s in summary["dimensions"].items())
    rows = "".join(
        f"<tr><td>{esc(c['domain'])}</td><td>{esc(c['topic'])}</td><td>{esc(c['difficulty'])}</td>"
        f"<td>{c['count']}</td><td>{c['accepted']}</td><td>{'' if c['mean_quality'] is None else c['mean_quality']}"
        f"</td></tr>" for c in summary["cells"])
    statuses = ", ".join(f"{esc(k)} {v}" for k, v in sorted(summary["by_status"].items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}} section{{display:inline-block;margin:0 2em 1em 0}}
.hist rect{{fill:#4a7ab8}} .hist text{{font-size:10px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style></head>
<body><h1>{esc(title)}</h1><p>{summary['examples']} examples: {statuses}</p>
<h2>Score distributions</h2>{dims or '<p>No scores yet.</p>'}
<h2>Domain / topic / difficulty</h2><table><tr><th>domain</th><th>topic</th><th>difficulty</th><th>examples</th>
<th>accepted</th><th>mean quality</th></tr>{rows}</table></body></html>
"""
