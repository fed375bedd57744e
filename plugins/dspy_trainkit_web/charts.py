"""Server-side SVG charts: a histogram, a heatmap and a score history line, readable in light and dark schemes.

Why SVG made here: no chart library to vendor or load, pages work without JavaScript, and the colours come from
CSS (`currentColor` and classes the stylesheet sets per colour scheme). Every label from the data is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape


def histogram(counts: Sequence[int], *, width: int = 320, height: int = 90, label: str = "") -> Markup:
    """Bars over 0..1 in len(counts) bins, with the count of each bin as its tooltip."""
    top = max(counts, default=0) or 1
    bar = width / max(len(counts), 1)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height + 14}" width="{width}" '
             f'height="{height + 14}"><title>{escape(label)}</title>']
    for i, n in enumerate(counts):
        h = round(height * n / top, 1)
        lo, hi = i / len(counts), (i + 1) / len(counts)
        parts.append(f'<rect class="bar" x="{i * bar + 1:.1f}" y="{height - h}" width="{bar - 2:.1f}" '
                     f'height="{h}"><title>{lo:.1f}-{hi:.1f}: {n}</title></rect>')
    parts.append(f'<text x="0" y="{height + 12}" class="axis">0</text>'
                 f'<text x="{width - 8}" y="{height + 12}" class="axis">1</text></svg>')
    return Markup("".join(parts))


def heatmap(rows: Sequence[str], columns: Sequence[str], cells: dict[tuple[str, str], dict[str, Any]],
            *, cell: int = 34) -> Markup:
    """A grid of rows x columns; each cell's shade is its mean quality, its text the count (tooltip: both)."""
    left, top = 150, 70
    width, height = left + cell * len(columns) + 4, top + cell * len(rows) + 4
    parts = [f'<svg class="chart heatmap" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}"><title>count and mean quality per cell</title>']
    for j, column in enumerate(columns):
        x = left + j * cell + cell / 2
        parts.append(f'<text class="axis" transform="translate({x:.0f},{top - 6}) rotate(-45)">'
                     f'{escape(_short(column))}</text>')
    for i, row in enumerate(rows):
        y = top + i * cell
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">'
                     f'{escape(_short(row, 22))}</text>')
        for j, column in enumerate(columns):
            found = cells.get((row, column))
            x = left + j * cell
            if not found:
                parts.append(f'<rect class="empty" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}">'
                             f'<title>{escape(row)} / {escape(column)}: no examples</title></rect>')
                continue
            quality = found.get("quality")
            opacity = 0.15 + 0.85 * quality if quality is not None else 0.1
            shown = "-" if quality is None else f"{quality:.2f}"
            parts.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill-opacity="{opacity:.2f}"><title>{escape(row)} / {escape(column)}: '
                         f'{found["count"]} examples, mean quality {shown}</title></rect>'
                         f'<text class="count" x="{x + cell / 2 - 1:.0f}" y="{y + cell / 2 + 4:.0f}" '
                         f'text-anchor="middle">{found["count"]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def score_history(points: Sequence[dict[str, Any]], *, width: int = 560, height: int = 160) -> Markup:
    """Baseline and optimized score per run, oldest left; champions drawn as filled dots.
    `points`: dicts of `score`, `baseline`, `champion` (bool) and `label`."""
    pad = 28
    n = len(points)
    if not n:
        return Markup('<p class="muted">No runs yet.</p>')

    def xy(i: int, value: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)
        return round(x, 1), round(height - pad - (height - 2 * pad) * value, 1)

    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
             '<title>score per run</title>'
             f'<line class="grid" x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}"/>'
             f'<line class="grid" x1="{pad}" x2="{width - pad}" y1="{pad}" y2="{pad}"/>'
             f'<text class="axis" x="2" y="{height - pad + 4}">0</text><text class="axis" x="2" y="{pad + 4}">1</text>']
    for key, css in (("baseline", "line baseline"), ("score", "line score")):
        line = [xy(i, p[key]) for i, p in enumerate(points) if p.get(key) is not None]
        if len(line) > 1:
            parts.append(f'<polyline class="{css}" points="{" ".join(f"{x},{y}" for x, y in line)}"/>')
    for i, p in enumerate(points):
        if p.get("score") is None:
            continue
        x, y = xy(i, p["score"])
        css = "dot champion" if p.get("champion") else "dot"
        parts.append(f'<circle class="{css}" cx="{x}" cy="{y}" r="4"><title>{escape(p["label"])}: '
                     f'{p["score"]:.3f}{" (champion)" if p.get("champion") else ""}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, size: int = 14) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"
