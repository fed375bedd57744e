"""The score-trend plot: the HTML holds one baseline and one optimized point per run with the run's values, the
champion ringed, valid SVG; PNG without matplotlib is one clear error naming the `plot` extra."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from dspy_trainkit.optimization.plot import PlotError, RunPoint, render_html, write_plot

SVG = "{http://www.w3.org/2000/svg}"


def runs():
    return [
        RunPoint(run_id="run-b", task="qa", time=2000.0, baseline=40.0, score=55.5, champion=True,
                 optimizer="bootstrap", snapshot="s2"),
        RunPoint(run_id="run-a", task="qa", time=1000.0, baseline=40.0, score=50.0, champion=False,
                 optimizer="labeled", snapshot="s1"),
        RunPoint(run_id="run-c", task="qa", time=3000.0, baseline=41.0, score=45.25, champion=False,
                 optimizer="bootstrap", snapshot="s3"),
        RunPoint(run_id="run-x", task="math", time=1500.0, baseline=0.2, score=None, champion=False,
                 status="failed"),
    ]


class Points(HTMLParser):
    def __init__(self):
        super().__init__()
        self.circles, self.cells, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "circle" and "point" in attrs.get("class", ""):
            self.circles.append(attrs)
        if tag == "td":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td":
            self.cells.append(self._cell)
            self._cell = None


def parse(page):
    parser = Points()
    parser.feed(page)
    return parser


def test_html_has_one_point_per_run_and_kind_with_the_runs_values(tmp_path):
    path = write_plot(runs(), tmp_path / "trend.html")
    page = path.read_text(encoding="utf-8")
    circles = parse(page).circles
    optimized = [(c["data-run"], float(c["data-value"]), c["data-champion"]) for c in circles
                 if c["data-kind"] == "optimized"]
    baseline = [(c["data-run"], float(c["data-value"])) for c in circles if c["data-kind"] == "baseline"]
    # time order within each task, tasks sorted: math first
    assert optimized == [("run-a", 50.0, "false"), ("run-b", 55.5, "true"), ("run-c", 45.25, "false")]
    assert baseline == [("run-x", 0.2), ("run-a", 40.0), ("run-b", 40.0), ("run-c", 41.0)]
    assert [c["data-time"] for c in circles if c["data-run"] == "run-b"] == ["2000.0", "2000.0"]
    assert page.count('class="champion-ring"') == 1


def test_points_are_placed_left_to_right_in_time_and_higher_scores_higher():
    page = render_html(runs())
    qa = [c for c in parse(page).circles if c["data-kind"] == "optimized"]
    xs = [float(c["cx"]) for c in qa]
    ys = {c["data-run"]: float(c["cy"]) for c in qa}
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert ys["run-b"] < ys["run-a"] < ys["run-c"]  # SVG y grows downwards


def test_each_svg_is_valid_xml_with_a_title_per_task():
    page = render_html(runs())
    charts = []
    rest = page
    while "<svg" in rest:
        start = rest.index("<svg")
        end = rest.index("</svg>") + len("</svg>")
        charts.append(ET.fromstring(rest[start:end]))
        rest = rest[end:]
    assert [c.get("data-task") for c in charts] == ["math", "qa"]
    assert all(c.find(f"{SVG}title") is not None for c in charts)
    qa_chart = charts[1]
    assert len(qa_chart.findall(f"{SVG}polyline")) == 2  # baseline and optimized lines


def test_table_repeats_the_numbers_and_text_is_escaped():
    page = render_html([RunPoint(run_id="<r&1>", task="qa", time=0.0, baseline=1.0, score=2.0, champion=True)])
    cells = parse(page).cells
    assert cells[0] == "<r&1>" and cells[-3:] == ["1", "2", "yes"]
    assert "<r&1>" not in page  # escaped in the markup


def test_png_without_matplotlib_names_the_plot_extra(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure"):  # as if not installed (even when another test loaded it)
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(PlotError, match=r"matplotlib.*pip install 'dspy-trainkit\[plot\]'"):
        write_plot(runs(), tmp_path / "trend.png")
    assert not (tmp_path / "trend.png").exists()


@pytest.mark.parametrize(("name", "message"), [("trend.svg", "end in .html or .png"),
                                               ("missing/trend.html", "does not exist")])
def test_bad_paths_are_clear_errors(tmp_path, name, message):
    with pytest.raises(PlotError, match=message):
        write_plot(runs(), tmp_path / name)


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(PlotError, match="no optimization runs to plot yet"):
        write_plot([], tmp_path / "trend.html")


def test_png_with_matplotlib_draws_one_panel_per_task(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (in the test extra, so CI has it)")
    import struct

    path = write_plot(runs(), tmp_path / "trend.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (800, 640)  # 8 x 3.2 inches per task at 100 dpi, two tasks
    assert "matplotlib.pyplot" not in sys.modules  # the object API: the caller's backend is left alone
