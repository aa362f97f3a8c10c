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
    plot.borough_heatmap(fig, ax, borough_exposure(swept.experiment), "sites")
    assert len(ax.texts) == borough_exposure(swept.experiment).size   # a number in every cell
    plt.close(fig)


def test_a_results_folder_is_a_source(tmp_path, swept):
    from sim.results import ResultsWriter
    from sim.sweep import plan

    cells, units = plan(swept.experiment)
    writer = ResultsWriter(tmp_path / "r", swept.experiment, cells, units, resume=False)
    writer.write_outputs(swept)
    writer.complete()
    assert plot.summary_of(tmp_path / "r").equals(swept.summary)
