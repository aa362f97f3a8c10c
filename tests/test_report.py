"""The report's words and numbers (sim.report): summary.md and the terminal's headline agree."""

from __future__ import annotations

import functools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.cli import _print_headline, main
from sim.config import from_dict
from sim.pipeline import run_experiment
from sim.report import number, operating_point, p_equals, p_value, plural, span, summary_markdown

# one replicate at a threshold no impostor reaches: no false alerts anywhere, and a reported
# count the model cannot explain (p far below 0.001)
NONE_FALSE = {
    "experiment": {"name": "none_false", "seed": 3, "replications": 1},
    "programme": {"generator": {"weeks": 1, "deployments_per_week": 1, "duration_hours": 1.0,
                                "footfall_per_hour": 2000.0}},
    "watchlist": {"size": 1000},
    "matcher": {"threshold": 0.97},
    "comparison": {"label": "a made-up report", "faces": 3_000_000, "false_alerts": 900, "threshold": 0.97},
}


@pytest.fixture(scope="module")
def none_false(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "none_false"
    return out, run_experiment(from_dict(NONE_FALSE), out=out)


# -- numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "shown"), [
    (3_111_579.4, "3,111,579"), (99_053.0, "99,053"), (1605.0, "1,605"), (100.0, "100"), (99.96, "100"),
    (52.5, "52.5"), (3.6, "3.6"), (6.2437, "6.24"), (0.0425, "0.0425"), (0.0, "0"), (1.0, "1"),
    (float("nan"), "–"), (None, "–"), (-12.0, "-12"),
])
def test_counts_and_rates_are_printed_one_way(x, shown):
    assert number(x) == shown


@given(st.floats(min_value=1e-3, max_value=1e12))
def test_a_number_never_has_trailing_zeros_scientific_notation_or_decimals_from_100_up(x):
    text = number(x)
    assert "e" not in text
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
        assert x < 100
        assert len(re.sub(r"^[0.,]+", "", text).replace(".", "")) <= 3      # three significant figures
    else:
        assert float(text.replace(",", "")) == pytest.approx(x, rel=5e-3, abs=5e-3)


@pytest.mark.parametrize(("p", "shown"), [(0.0, "< 0.001"), (1e-300, "< 0.001"), (0.000999, "< 0.001"),
                                           (0.001, "0.001"), (0.27, "0.270"), (1.0, "1.000")])
def test_a_p_value_is_never_printed_as_zero(p, shown):
    assert p_value(p) == shown
    assert p_equals(p) == (f"p {shown}" if shown.startswith("<") else f"p = {shown}")


def test_counted_words_agree_with_their_number():
    assert plural(1, "replicate") == "1 replicate"
    assert plural(0, "replicate") == "0 replicates"
    assert plural(1000, "draw") == "1,000 draws"


def test_a_span_is_a_value_a_short_list_or_a_range():
    assert span([0.64, 0.64]) == "0.64"
    assert span([0.6, 0.64, 0.62]) == "0.6, 0.62 and 0.64"
    assert span([0.5 + 0.005 * i for i in range(41)]) == "41 values from 0.5 to 0.7"


# -- the header's operating point --------------------------------------------------------------

def test_the_header_gives_each_deployments_own_thresholds_not_the_default(tmp_path):
    rows = [{"site": f"s{i}", "duration_hours": 1.0, "footfall_per_hour": 1000.0, "threshold": t}
            for i, t in enumerate((0.60, 0.62, 0.64))]
    data = {"experiment": {"name": "own"}, "programme": {"deployments": rows}, "watchlist": {"size": 1000},
            "matcher": {"threshold": 0.70, "score_floor": 0.60}}
    text = operating_point(from_dict(data), [{}])
    assert "Threshold: each deployment's own (3 deployments), 0.6, 0.62 and 0.64." in text
    assert "0.7" not in text
    rows[2] = {k: v for k, v in rows[2].items() if k != "threshold"}
    text = operating_point(from_dict({**data, "programme": {"deployments": rows}}), [{}])
    assert "where set (2 of 3 deployments; the others 0.7), 0.6, 0.62 and 0.7." in text


def test_the_header_of_a_sweep_gives_the_swept_values():
    data = {**NONE_FALSE, "sweep": {"parameters": {"matcher.threshold": [0.96, 0.97, 0.98]}}}
    experiment = from_dict(data)
    cells = [{"matcher.threshold": t} for t in (0.96, 0.97, 0.98)]
    assert "Threshold: swept, 0.96, 0.97 and 0.98." in operating_point(experiment, cells)
    assert "Watchlist: 1,000 entries." in operating_point(experiment, cells)


# -- summary.md and the terminal ---------------------------------------------------------------

def test_summary_md_counts_words_right_and_never_prints_p_zero(none_false):
    out, results = none_false
    text = (out / "summary.md").read_text()
    assert "1 replicate," in text and "1 replicates" not in text and "1 cells" not in text
    assert not re.search(r"\bp = 0\b|\| 0 \| 0\.97 \|", text)
    assert "< 0.001" in text
    assert "Rates are per million recorded faces" in text
    assert "false alerts per million faces" in text


def test_no_false_alerts_make_the_disparity_not_defined_and_say_why(none_false):
    _, results = none_false
    everyone = results.summary.query("group == 'all' and metric == 'false_alerts'")
    assert float(everyone["estimate"].iloc[0]) == 0
    line = next(x for x in summary_markdown(results, []).splitlines() if x.startswith("Highest over lowest"))
    assert "not defined: no group had a simulated false alert in cell 0" in line
    assert " over female_asian)" not in line.split("exact expectations")[0]      # no "x over x"
    assert not re.search(r": – \(", line)


def test_the_terminal_says_what_summary_md_says(none_false, capsys):
    _, results = none_false
    _print_headline(results, elapsed=1.0)
    out = capsys.readouterr().out
    assert "p < 0.001" in out and "p = 0 " not in out and "p = 0." not in out
    assert "1 replicate." in out and "1 replicates" not in out
    assert "per million" in out and "per M" not in out and "3M" not in out
    assert "900 false alerts in 3,000,000 faces" in out


def test_validate_counts_one_replication_in_the_singular(tmp_path, capsys):
    path = tmp_path / "one.toml"
    path.write_text('[experiment]\nname = "one"\nreplications = 1\n[programme.generator]\nweeks = 1\n'
                    '[watchlist]\nsize = 1000\n')
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(1 cell, 1 replication, seed" in out


def test_figures_drawn_by_worker_processes_are_the_bytes_drawn_here(none_false, tmp_path):
    from sim.report import PendingFigures, draw_figures
    from sim.sweep import ProcessExecutor

    _, results = none_false
    here = draw_figures(tmp_path / "here", results)
    executor = ProcessExecutor(2)
    try:
        # as the pipeline gives them: to the workers started after prepare, this process drawing
        # those none of them has started
        pending = PendingFigures(results, functools.partial(executor.submit, prepared=True))
        there = pending.write(tmp_path / "there")
    finally:
        executor.close()
    assert here == there and len(here) >= 3
    for name in here:
        drawn_here = (tmp_path / "here" / "figures" / name).read_bytes()
        assert drawn_here == (tmp_path / "there" / "figures" / name).read_bytes()


def _workers_that_never_start():
    """A ``submit`` whose tasks no worker ever starts, and the futures it has given."""
    from concurrent.futures import Future

    given: list[Future] = []

    def submit(fn, *args):
        given.append(Future())
        return given[-1]

    return given, submit


def _assert_the_bytes_drawn_here(results, tmp_path, names: list[str], folder: str) -> None:
    from sim.report import draw_figures

    assert draw_figures(tmp_path / "here", results) == names
    for name in names:
        assert ((tmp_path / "here" / "figures" / name).read_bytes()
                == (tmp_path / folder / "figures" / name).read_bytes())


def test_figures_no_worker_has_started_are_drawn_here_to_the_same_bytes(none_false, tmp_path):
    from sim.report import PendingFigures

    _, results = none_false
    given, submit = _workers_that_never_start()
    names = PendingFigures(results, submit).write(tmp_path / "here_instead")
    assert len(given) == len(names) >= 3 and all(f.cancelled() for f in given)
    _assert_the_bytes_drawn_here(results, tmp_path, names, "here_instead")


def test_drawing_here_stops_when_told_and_a_later_call_draws_the_rest(none_false, tmp_path):
    from sim.report import PendingFigures

    _, results = none_false
    given, submit = _workers_that_never_start()
    pending = PendingFigures(results, submit)
    calls = []
    pending.draw_here(until=lambda: calls.append(1) or len(calls) > 1)    # one figure, then stop
    assert sum(f.cancelled() for f in given) == 1 == len(calls) - 1
    names = pending.write(tmp_path / "later")
    assert all(f.cancelled() for f in given)
    _assert_the_bytes_drawn_here(results, tmp_path, names, "later")


def test_a_figure_is_the_same_bytes_whatever_style_the_process_has_set(none_false):
    import matplotlib

    from sim.report import draw_figure, figure_jobs

    _, results = none_false
    job = figure_jobs(results)[0]
    plain = draw_figure(results, job)
    with matplotlib.rc_context({"lines.linewidth": 4.0, "font.size": 17.0, "axes.facecolor": "0.8"}):
        assert draw_figure(results, job) == plain
