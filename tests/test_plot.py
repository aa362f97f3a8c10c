"""sim.plot draws every figure from a summary table alone, with the domain's words on it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sim import plot  # noqa: E402
from sim.config import from_dict  # noqa: E402
from sim.metrics import borough_exposure  # noqa: E402
from sim.pipeline import run_experiment  # noqa: E402


@pytest.fixture(scope="module")
def swept():
    data = {"experiment": {"name": "plots", "seed": 3, "replications": 2},
            "programme": {"generator": {"weeks": 1, "deployments_per_week": 2, "duration_hours": 1.0,
                                        "footfall_per_hour": 3000.0}},
            "watchlist": {"size": 5000},
            "sweep": {"parameters": {"matcher.threshold": [0.56, 0.60, 0.64], "review.officers": [2, 8]}}}
    return run_experiment(from_dict(data))


def test_group_and_setting_labels_read_as_words():
    assert plot.group_label("female_black") == "Female Black"
    assert plot.group_label("all") == "everyone"
    assert plot.setting_label({"matcher.threshold": 0.64, "watchlist.size": 16000}) == \
        "threshold 0.64, watchlist entries 16,000"
    assert plot.setting_label({}) == "the experiment's settings"


def test_every_figure_draws_from_the_summary_alone(swept):
    summary = plot.summary_of(swept)
    assert plot.summary_of(summary) is summary
    for draw in (plot.false_alerts_by_group, plot.alert_funnel, plot.exposure_by_group):
        fig, ax = plt.subplots()
        draw(ax, summary)
        assert "_" not in " ".join(t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels())
        plt.close(fig)
    fig, ax = plt.subplots()
    plot.false_alerts_vs_threshold(ax, summary, (12, 3_000_000, 0.64))
    assert "3,000,000" in ax.get_ylabel()
    plt.close(fig)
    fig, ax = plt.subplots()
    plot.det_by_group(ax, summary)
    assert any("threshold 0.64" in t.get_text() for t in ax.get_legend().get_texts())
    plt.close(fig)
    fig = plt.figure()
    plot.against_setting(fig, summary, "review.officers")
    assert fig.legends, "the legend sits below the panels, not on the data"
    plt.close(fig)
    fig, ax = plt.subplots()
    table = borough_exposure(swept.experiment)
    plot.borough_heatmap(fig, ax, table, "sites")
    numbers = ax.collections[-1]       # a number in every cell, on the cell's centre
    assert len(numbers.get_paths()) == table.size
    assert sorted(map(tuple, numbers.get_offsets().tolist())) == \
        sorted((float(j), float(i)) for i in range(table.shape[0]) for j in range(table.shape[1]))
    plt.close(fig)


@pytest.mark.parametrize("text", ["0.23", "0.0073", "7", "–"])
def test_cell_numbers_sit_where_centred_text_does(text):
    """Glyph outlines centred as ``ax.text(ha="center", va="center")`` centres its text: at 150 dpi
    the ink's box inside the Text's (its advance and line height) and centred on it, to a pixel."""
    fig = plt.figure(figsize=(2, 2), dpi=150)
    ax = fig.add_axes((0, 0, 1, 1), xlim=(-1, 1), ylim=(-1, 1))
    drawn = ax.text(0.0, 0.0, text, ha="center", va="center", fontsize=6)
    numbers = plot.cell_numbers(ax, [0.0], [0.0], [text], ["black"], fontsize=6)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    line = drawn.get_window_extent(renderer)
    ink = numbers.get_paths()[0].transformed(numbers.get_transform()).get_extents()
    centre = ax.transData.transform((0.0, 0.0))
    assert abs((ink.x0 + ink.x1) / 2 + centre[0] - (line.x0 + line.x1) / 2) < 1.0
    assert line.x0 - 1.0 <= ink.x0 + centre[0] and ink.x1 + centre[0] <= line.x1 + 1.0
    assert line.y0 - 1.0 <= ink.y0 + centre[1] and ink.y1 + centre[1] <= line.y1 + 1.0
    plt.close(fig)


@pytest.mark.parametrize(("which", "limits"), [("y", (0.004, 7e5)), ("x", (0.3, 40.0)), ("y", (2.0, 9.0))])
def test_minor_marks_draw_what_minor_ticks_do(which, limits):
    """The marks of ``minor_marks`` are the pixels the axis' own unlabelled minor ticks draw."""
    import numpy as np
    from matplotlib import ticker

    def drawn(marks: bool):
        fig = plt.figure(figsize=(3, 2), dpi=150)
        ax = fig.add_axes((0.2, 0.2, 0.7, 0.7))
        ax.plot([1, 2], [1, 2])
        getattr(ax, f"set_{which}scale")("log")
        getattr(ax, f"set_{which}lim")(*limits)
        axis = getattr(ax, f"{which}axis")
        locator = ticker.LogLocator(base=10, subs=np.arange(1, 10))
        if marks:
            plot.minor_marks(axis, locator)
            assert not axis.get_minorticklocs().size
        else:
            axis.set_minor_locator(locator)
            axis.set_minor_formatter(ticker.NullFormatter())
        fig.canvas.draw()
        fig.canvas.draw()       # drawn again (a tight crop draws twice): the same
        pixels = np.asarray(fig.canvas.buffer_rgba()).copy()
        plt.close(fig)
        return pixels

    assert (drawn(True) == drawn(False)).all()


def test_a_bare_figure_is_measured_with_the_renderer_it_is_saved_with(swept):
    """A ``Figure()`` of its own gets an Agg canvas (layout and saving then share one renderer);
    a pyplot figure keeps its canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = plot.summary_of(swept)
    fig = Figure()
    plot.alert_funnel(fig.subplots(), summary)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    fig, ax = plt.subplots()
    canvas = fig.canvas
    plot.alert_funnel(ax, summary)
    assert fig.canvas is canvas
    plt.close(fig)


def test_a_results_folder_is_a_source(tmp_path, swept):
    from sim.results import ResultsWriter
    from sim.sweep import plan

    cells, units = plan(swept.experiment)
    writer = ResultsWriter(tmp_path / "r", swept.experiment, cells, units, resume=False)
    writer.write_outputs(swept)
    writer.complete()
    assert plot.summary_of(tmp_path / "r").equals(swept.summary)


def test_log_axis_twice_replaces_its_minor_marks_rather_than_adding_more():
    fig = plt.figure(figsize=(3, 2), dpi=100)
    ax = fig.add_axes((0.2, 0.2, 0.7, 0.7))
    ax.plot([1, 2], [1, 2])
    ax.set_yscale("log")
    ax.set_ylim(0.01, 100)
    plot.log_axis(ax.yaxis)
    first = len(ax.lines)
    plot.log_axis(ax.yaxis)
    assert len(ax.lines) == first
    plt.close(fig)
