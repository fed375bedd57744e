"""The score trend of optimization runs: a self-contained HTML page (inline SVG), or a PNG through matplotlib.

One chart per task: for each run, in time order, its baseline score (the program before compiling) and its
optimized score on the same dev set, with the champion run ringed. The HTML needs no library, no network and
no script: it opens anywhere and can be attached to a report. Every point carries its values as `data-*`
attributes and the same numbers are in a table under the chart, so the page can be read by people and checked
by programs. PNG output needs matplotlib, the `plot` extra, which is imported only when asked for.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import TrainkitError

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 24, 56
BASELINE_COLOUR, OPTIMIZED_COLOUR, CHAMPION_COLOUR = "#8a8f98", "#1f6feb", "#d29922"


class PlotError(TrainkitError):
    """A plot cannot be written as asked (unknown file type, PNG without matplotlib, nothing to draw)."""


@attrs.frozen
class RunPoint:
    """One run as the plot draws it. Scores are on the metric's scale (DSPy reports 0..100 or 0..1)."""

    run_id: str
    task: str
    time: float
    baseline: float | None
    score: float | None
    champion: bool = False
    optimizer: str | None = None
    snapshot: str | None = None
    status: str | None = None


def points(runs: Iterable[RunPoint]) -> list[RunPoint]:
    """The runs in drawing order: by task, then time (then id)."""
    return sorted(runs, key=lambda p: (p.task, p.time, p.run_id))


def write_plot(runs: Iterable[RunPoint], path: str | Path, *, title: str = "Optimization score trend") -> Path:
    """Write the trend of `runs` to `path`: `.html`/`.htm` (no dependency) or `.png` (needs matplotlib)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".png"):
        raise PlotError(f"{path}: plot files end in .html or .png")
    drawn = points(runs)
    if not drawn:
        raise PlotError("no optimization runs to plot yet; run `trainkit optimize` first")
    if not path.parent.is_dir():
        raise PlotError(f"{path}: folder {path.parent} does not exist")
    if suffix == ".png":
        _write_png(drawn, path, title)
    else:
        path.write_text(render_html(drawn, title=title), encoding="utf-8")
    return path


# ---- HTML + SVG ------------------------------------------------------------------------------------------

def render_html(runs: Iterable[RunPoint], *, title: str = "Optimization score trend") -> str:
    """A complete HTML page with one inline SVG chart and one table per task."""
    drawn = points(runs)
    sections = [_task_section(task, [p for p in drawn if p.task == task])
                for task in sorted({p.task for p in drawn})]
    esc = html.escape
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#24292f}"
        "table{border-collapse:collapse;margin:1em 0 2em}td,th{border:1px solid #d0d7de;padding:2px 8px;"
        "text-align:right}th{background:#f6f8fa}td.l{text-align:left}.legend span{margin-right:1.5em}</style>",
        "</head><body>",
        f"<h1>{esc(title)}</h1>",
        '<p class="legend">'
        f'<span style="color:{BASELINE_COLOUR}">&#9679; baseline (before compiling)</span>'
        f'<span style="color:{OPTIMIZED_COLOUR}">&#9679; optimized</span>'
        f'<span style="color:{CHAMPION_COLOUR}">&#9711; champion</span></p>',
        *sections,
        "</body></html>",
        "",
    ])


def _task_section(task: str, runs: Sequence[RunPoint]) -> str:
    esc = html.escape
    rows = "".join(
        f'<tr><td class="l">{esc(p.run_id)}</td><td class="l">{_date(p.time)}</td>'
        f'<td class="l">{esc(p.optimizer or "")}</td><td class="l">{esc(p.snapshot or "")}</td>'
        f"<td>{_fmt(p.baseline)}</td><td>{_fmt(p.score)}</td><td>{'yes' if p.champion else ''}</td></tr>"
        for p in runs)
    return (f'<section class="task" data-task="{esc(task)}"><h2>{esc(task)}</h2>\n{_svg(task, runs)}\n'
            "<table><tr><th>run</th><th>time</th><th>optimizer</th><th>snapshot</th><th>baseline</th>"
            f"<th>optimized</th><th>champion</th></tr>{rows}</table></section>")


def _svg(task: str, runs: Sequence[RunPoint]) -> str:
    """An SVG (valid XML) line chart: x = run order (labelled with dates), y = score."""
    esc = html.escape
    values = [v for p in runs for v in (p.baseline, p.score) if v is not None]
    low, high = _y_range(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(i: int) -> float:
        return LEFT + (plot_w / 2 if len(runs) == 1 else plot_w * i / (len(runs) - 1))

    def y_of(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-task="{esc(task)}">',
             f"<title>{esc(task)}: baseline and optimized score per run</title>",
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#d0d7de"/>']
    for k in range(5):  # y grid and labels
        v = low + (high - low) * k / 4
        y = y_of(v)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_fmt(v)}</text>')
    step = max(1, len(runs) // 8)
    for i, p in enumerate(runs):  # x labels, thinned out when there are many runs
        if i % step == 0 or i == len(runs) - 1:
            parts.append(f'<text x="{x_of(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                         f'font-size="10">{_date(p.time, short=True)}</text>')
    for kind, colour in (("baseline", BASELINE_COLOUR), ("optimized", OPTIMIZED_COLOUR)):
        series = [(i, p.baseline if kind == "baseline" else p.score) for i, p in enumerate(runs)]
        coords = [(x_of(i), y_of(v)) for i, v in series if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline class="{kind}-line" points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="1.5"/>')
    for i, p in enumerate(runs):
        for kind, value, colour in (("baseline", p.baseline, BASELINE_COLOUR),
                                    ("optimized", p.score, OPTIMIZED_COLOUR)):
            if value is None:
                continue
            champion = kind == "optimized" and p.champion
            parts.append(
                f'<circle class="point {kind}{" champion" if champion else ""}" cx="{x_of(i):.1f}" '
                f'cy="{y_of(value):.1f}" r="4" fill="{colour}" data-run="{esc(p.run_id)}" data-kind="{kind}" '
                f'data-value="{value!r}" data-time="{p.time!r}" data-champion="{str(champion).lower()}">'
                f"<title>{esc(p.run_id)} {kind} {_fmt(value)} ({_date(p.time)})</title></circle>")
            if champion:
                parts.append(f'<circle class="champion-ring" cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="8" '
                             f'fill="none" stroke="{CHAMPION_COLOUR}" stroke-width="2"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    """0..1 or 0..100 when the scores fit that scale (DSPy's two conventions), else the data's range."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    if low >= 0 and high <= 100:
        return 0.0, 100.0
    if high == low:
        return low - 1, high + 1
    return low, high


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _date(timestamp: float, *, short: bool = False) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S UTC")


# ---- PNG -------------------------------------------------------------------------------------------------

def _write_png(runs: Sequence[RunPoint], path: Path, title: str) -> None:
    try:  # the object API, not pyplot: no global backend switch in the caller's process, no display needed
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"{path}: PNG plots need matplotlib; install the plot extra "
                        "(pip install 'dspy-trainkit[plot]') or write an .html file instead") from None
    tasks = sorted({p.task for p in runs})
    fig = Figure(figsize=(8, 3.2 * len(tasks)))
    axes = fig.subplots(len(tasks), 1, squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        mine = [p for p in runs if p.task == task]
        xs = [dt.datetime.fromtimestamp(p.time, dt.UTC) for p in mine]
        for kind, colour in (("baseline", BASELINE_COLOUR), ("optimized", OPTIMIZED_COLOUR)):
            pairs = [(x, p.baseline if kind == "baseline" else p.score) for x, p in zip(xs, mine, strict=True)]
            pairs = [(x, v) for x, v in pairs if v is not None]
            if pairs:
                ax.plot([x for x, _ in pairs], [v for _, v in pairs], marker="o", color=colour, label=kind)
        champs = [(x, p.score) for x, p in zip(xs, mine, strict=True) if p.champion and p.score is not None]
        if champs:
            ax.scatter([x for x, _ in champs], [v for _, v in champs], s=160, facecolors="none",
                       edgecolors=CHAMPION_COLOUR, linewidths=2, label="champion", zorder=3)
        ax.set_ylim(*_y_range([v for p in mine for v in (p.baseline, p.score) if v is not None]))
        ax.set_title(task)
        ax.set_ylabel("score")
        ax.legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def kit_points(kit: Any, task: str | None = None, runs: Sequence[Any] | None = None) -> list[RunPoint]:
    """The plot's points for a kit's finished runs (of `task`; `runs`: those runs, listed already), the current
    champion of each task marked."""
    finished = [r for r in (kit.runs(task) if runs is None else runs) if r.status == "succeeded"]
    champions = {name: kit.store.champion_id(name) for name in {r.task for r in finished}}
    return points(RunPoint(run_id=r.id, task=r.task, time=r.finished_at or r.created_at, baseline=r.baseline_score,
                           score=r.score, champion=r.id == champions.get(r.task), optimizer=r.used or r.optimizer,
                           snapshot=r.snapshot, status=r.status) for r in finished)


def plot_kit_runs(kit: Any, path: str | Path, task: str | None = None, runs: Sequence[Any] | None = None) -> Path:
    """Write the score trend of a kit's runs (of `task`; `runs`: those runs, listed already; see `write_plot`)."""
    return write_plot(kit_points(kit, task, runs), path,
                      title=f"Optimization score trend: {task}" if task else "Optimization score trend")
