"""Sensitivity analysis: known indices recovered, irrelevant settings at 0, executors agree,
hostile [sensitivity] sections refused by field before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim import cli, explain
from sim import sensitivity as S
from sim.config import Experiment, Sensitivity

SMALL = """
[experiment]
name = "sens_small"
seed = 5
replications = 1

[watchlist]
size = 2000

[programme]
[[programme.deployments]]
site = "a"
borough = "Hackney"
duration_hours = 2
footfall_per_hour = 3000

[matcher]
threshold = 0.6
"""

SECTION = """
[sensitivity]
samples = 4
outputs = ["false_alerts", "black_share", "wrongful_stops"]
[sensitivity.parameters]
"watchlist.size" = {low = 1000, high = 4000}
"matcher.threshold" = {low = 0.58, high = 0.64}
"review.officers" = {low = 2, high = 10}
"""


def small(section: str = SECTION) -> Experiment:
    return Experiment.from_toml(SMALL + section)


def linear_design() -> S.Design:
    return S.Design(names=("x1", "x2", "x3"), bounds=((0.0, 1.0), (0.0, 1.0), (0.0, 1.0)),
                    integer=(False, False, False))


def covers(table, exact: dict[str, tuple[float, ...]], names: tuple[str, ...], width: float) -> None:
    """Every exact index inside its interval, and every interval narrower than ``width`` (so that
    covering means something)."""
    for index, values in exact.items():
        part = table[table["index"] == index].set_index("parameter")
        for name, value in zip(names, values, strict=True):
            assert part.loc[name, "ci_low"] <= value <= part.loc[name, "ci_high"], (index, name)
            assert part.loc[name, "conf"] < width / 2, (index, name)


# The six intervals of a test are 99.9% intervals: all cover with chance >= 1 - 6 x 0.001 (the
# false-failure rate at most 0.6%, Bonferroni); the seeds are fixed, so a run is repeatable.

@pytest.mark.slow
def test_sobol_recovers_the_indices_of_an_additive_model():
    # Y = 4 x1 + 2 x2 + 0 x3, x uniform on [0, 1]: S1 = ST = a_i^2 / sum a^2 = 0.8, 0.2, 0
    sens = Sensitivity(parameters={"x": {"low": 0, "high": 1}}, samples=4096, seed=3, bootstrap=500,
                       conf_level=0.999)
    a = np.array([4.0, 2.0, 0.0])
    table = S.indices(sens, linear_design(), lambda x: {("y", "all"): x @ a})
    exact = tuple(a**2 / (a**2).sum())
    covers(table, {"S1": exact, "ST": exact}, ("x1", "x2", "x3"), width=0.2)
    st = table[(table["index"] == "ST")].set_index("parameter")
    assert st.loc["x3", "value"] == 0.0    # the output ignores x3: exactly, not within noise


@pytest.mark.slow
def test_sobol_recovers_ishigami_indices():
    from SALib.test_functions import Ishigami

    sens = Sensitivity(parameters={"x": {"low": 0, "high": 1}}, samples=4096, seed=11, bootstrap=500,
                       conf_level=0.999)
    design = S.Design(names=("x1", "x2", "x3"), bounds=((-np.pi, np.pi),) * 3, integer=(False,) * 3)
    table = S.indices(sens, design, lambda x: {("y", "all"): Ishigami.evaluate(x)})
    # analytic (a = 7, b = 0.1; Sobol' & Levitan 1999): S1 = 0.3139, 0.4424, 0; ST = 0.5576, 0.4424, 0.2437
    exact = {"S1": (0.3139, 0.4424, 0.0), "ST": (0.5576, 0.4424, 0.2437)}
    covers(table, exact, design.names, width=0.25)


def test_a_setting_the_output_ignores_has_total_index_zero():
    results = S.run_sensitivity(small())
    st = results.indices.query("index == 'ST' and output == 'false_alerts'").set_index("parameter")
    # expected false alerts never see the officers: with common random numbers, exactly 0
    assert st.loc["review.officers", "ci_low"] <= 0.0 <= st.loc["review.officers", "ci_high"]
    assert st.loc["review.officers", "value"] == 0.0
    assert st.loc["matcher.threshold", "value"] > 0.1


def test_results_identical_with_one_and_two_workers(tmp_path):
    one = S.run_sensitivity(small(), workers=1, out=tmp_path / "one")
    two = S.run_sensitivity(small(), workers=2, out=tmp_path / "two")
    pd.testing.assert_frame_equal(one.indices, two.indices)
    assert (tmp_path / "one" / "indices.csv").read_bytes() == (tmp_path / "two" / "indices.csv").read_bytes()
    assert (tmp_path / "one" / "samples.parquet").read_bytes() == \
        (tmp_path / "two" / "samples.parquet").read_bytes()


def test_an_interrupted_analysis_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    full = S.run_sensitivity(small(), out=tmp_path / "full")
    monkeypatch.setattr(S, "BATCH_POINTS", 5)
    calls = {"n": 0}
    real = S.run_batch

    def dies_after_two(batch):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(batch)

    monkeypatch.setattr(S, "run_batch", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        S.run_sensitivity(small(), out=tmp_path / "cut")
    assert len(list((tmp_path / "cut" / "parts").iterdir())) == 2
    monkeypatch.setattr(S, "run_batch", real)
    with pytest.raises(Exception, match="unfinished"):
        S.run_sensitivity(small(), out=tmp_path / "cut")
    resumed = S.run_sensitivity(small(), out=tmp_path / "cut", resume=True)
    pd.testing.assert_frame_equal(full.indices, resumed.indices)
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["status"] == "complete"
    assert not (tmp_path / "cut" / "parts").exists()


def test_the_command_writes_a_results_folder(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + SECTION)
    out = tmp_path / "out"
    assert cli.main(["sensitivity", str(path), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    table = pd.read_csv(out / "indices.csv")
    assert list(table.columns) == list(S.INDEX_COLUMNS)
    assert set(table["output"]) == {"false_alerts", "black_share", "wrongful_stops"}
    assert (out / "figures" / "indices.png").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seeds"]["root"] == 5 and manifest["status"] == "complete"
    # a second run of the same analysis leaves the folder as it is
    before = (out / "indices.csv").read_bytes()
    assert cli.main(["sensitivity", str(path), "--out", str(out), "--quiet"]) == 0
    assert (out / "indices.csv").read_bytes() == before


HOSTILE = [
    ('"watchlist.sizee" = {low = 1, high = 2}', "sensitivity.parameters.watchlist.sizee"),
    ('"watchlist.size" = {low = 4000, high = 1000}', "sensitivity.parameters.watchlist.size.high"),
    ('"watchlist.size" = {low = 1000, high = 1000}', "sensitivity.parameters.watchlist.size.high"),
    ('"watchlist.size" = {low = "a", high = 1000}', "sensitivity.parameters.watchlist.size"),
    ('"watchlist.size" = {low = -5, high = 1000}', "sensitivity.parameters.watchlist.size.low"),
    ('"matcher.threshold" = {low = 0.5, high = 1.5}', "sensitivity.parameters.matcher.threshold.high"),
    ('"crowd.counting_regime" = {low = 0, high = 1}', "sensitivity.parameters.crowd.counting_regime"),
    ('"experiment.seed" = {low = 0, high = 1}', "sensitivity.parameters.experiment.seed"),
    ('"watchlist.size" = "posterior"', "sensitivity.parameters.watchlist.size"),
    ('"watchlist.size" = [1, 2]', "sensitivity.parameters.watchlist.size"),
]


@pytest.mark.parametrize(("line", "field"), HOSTILE)
def test_hostile_parameters_are_refused_by_field(tmp_path, capsys, line, field):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + f"[sensitivity]\nsamples = 4\n[sensitivity.parameters]\n{line}\n")
    out = tmp_path / "out"
    assert cli.main(["sensitivity", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"error: {field}" in err, err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("section", "field"), [
    ('outputs = ["false_alarms"]', "sensitivity.outputs"),
    ("samples = 6", "sensitivity.samples"),
    ('method = "fast"', "sensitivity.method"),
    ("parameters = {}", "sensitivity.parameters"),
])
def test_hostile_settings_are_refused_by_field(tmp_path, capsys, section, field):
    path = tmp_path / "e.toml"
    body = section if section.startswith("parameters") else \
        f'{section}\n[sensitivity.parameters]\n"watchlist.size" = {{low = 1000, high = 2000}}'
    path.write_text(SMALL + f"[sensitivity]\n{body}\n")
    out = tmp_path / "out"
    assert cli.main(["sensitivity", str(path), "--out", str(out), "--quiet"]) == 2
    assert f"error: {field}" in capsys.readouterr().err
    assert not out.exists()


def test_no_sensitivity_section_is_refused(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text(SMALL)
    assert cli.main(["sensitivity", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "error: sensitivity:" in capsys.readouterr().err


def test_posterior_ranges_follow_the_calibrations_draws():
    e = small('[sensitivity]\nsamples = 4\n[sensitivity.parameters]\n'
              '"crowd.watchlisted_per_passer" = "posterior"\n')
    base, design = S.check(e)
    drawn = design.quantiles["crowd.watchlisted_per_passer"]
    values = design.values(np.array([[0.0], [0.5], [1.0]]))[:, 0]
    assert values[0] == drawn.min() and values[2] == drawn.max()
    assert values[1] == pytest.approx(np.median(drawn))


EXPLAIN = """
[comparison]
faces = 3000000
false_alerts = 12

[sensitivity]
samples = 4
[sensitivity.parameters]
"watchlist.size" = {low = 1000, high = 4000}
[sensitivity.explain]
points = 5
[sensitivity.explain.parameters]
"matcher.threshold" = {low = 0.58, high = 0.70}
"watchlist.size" = {low = 1000, high = 16000}
"""


def test_explain_marks_where_the_reported_count_is_plausible():
    grid, boundary = explain.explain(small(EXPLAIN))
    assert len(grid) == 25
    # expected false alerts never rise with the threshold, at any watchlist size
    for _, part in grid.groupby("watchlist.size"):
        assert np.all(np.diff(part.sort_values("matcher.threshold")["expected"]) <= 1e-9)
    inside = grid["inside"]
    k = 12
    assert (grid.loc[inside, "pi_low"] <= k).all() and (grid.loc[inside, "pi_high"] >= k).all()
    assert ((grid.loc[~inside, "pi_low"] > k) | (grid.loc[~inside, "pi_high"] < k)).all()
    assert set(boundary.columns) >= {"matcher.threshold", "along", "inside_low", "inside_high"}
    for _, row in boundary.iterrows():
        part = grid[(grid["matcher.threshold"] == row["matcher.threshold"]) & grid["inside"]]
        if len(part):
            assert row["inside_low"] == part["watchlist.size"].min()


def test_the_calibration_enters_as_one_input_of_joint_draws():
    e = small('[sensitivity]\nsamples = 4\ncalibration = true\n[sensitivity.parameters]\n'
              '"watchlist.size" = {low = 1000, high = 4000}\n')
    base, design = S.check(e)
    assert design.names[-1] == S.CALIBRATION and design.draws > 1
    values = design.values(np.array([[2000.0, 0.0], [2000.0, 0.999999]]))
    (first, a), (_, b) = design.point(values[0]), design.point(values[1])
    assert first == {"watchlist.size": 2000} and a == 0 and b == design.draws - 1
    one, other = (S.raw_metrics(base, first, 1, d) for d in (a, b))
    assert not np.array_equal(one, other)      # two draws, two score models
    assert np.array_equal(one, S.raw_metrics(base, first, 1, a))


def test_the_calibration_input_needs_sobol(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + '[sensitivity]\nmethod = "morris"\nsamples = 4\ncalibration = true\n'
                    '[sensitivity.parameters]\n"watchlist.size" = {low = 1000, high = 4000}\n')
    assert cli.main(["sensitivity", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "error: sensitivity.calibration: needs method 'sobol'" in capsys.readouterr().err


def test_morris_screens_the_same_settings():
    e = small('[sensitivity]\nmethod = "morris"\nsamples = 4\noutputs = ["false_alerts"]\n'
              '[sensitivity.parameters]\n"watchlist.size" = {low = 1000, high = 4000}\n'
              '"review.officers" = {low = 2, high = 10}\n')
    table = S.run_sensitivity(e).indices.set_index(["parameter", "index"])["value"]
    assert table[("review.officers", "mu_star")] == 0.0 and table[("watchlist.size", "mu_star")] > 0.0


def test_run_and_validate_know_an_analysis(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + SECTION)
    assert cli.main(["validate", str(path)]) == 0
    out = tmp_path / "out"
    # `lfrsim run` of an analysis runs it as `lfrsim sensitivity` does (the README's loop over experiments/)
    assert cli.main(["run", str(path), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert (out / "indices.csv").is_file()
    assert cli.main(["run", str(path), "--out", str(out), "--quiet", "--seed", "3"]) == 2
    assert "error: --seed:" in capsys.readouterr().err
    path.write_text(SMALL + '[sensitivity]\nsamples = 4\n[sensitivity.parameters]\n'
                    '"watchlist.sise" = {low = 1, high = 2}\n')
    assert cli.main(["validate", str(path)]) == 2
    assert "error: sensitivity.parameters.watchlist.sise" in capsys.readouterr().err


@pytest.mark.slow
def test_a_dask_cluster_gives_the_serial_indices():
    distributed = pytest.importorskip("dask.distributed")
    serial = S.run_sensitivity(small())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        on_dask = S.run_sensitivity(small(), scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(serial.indices, on_dask.indices)
    pd.testing.assert_frame_equal(serial.samples, on_dask.samples)


def test_a_bad_scheduler_is_refused_before_anything_is_written(tmp_path, capsys):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + SECTION)
    out = tmp_path / "out"
    assert cli.main(["sensitivity", str(path), "--out", str(out), "--quiet", "--scheduler", "nowhere"]) == 2
    assert "error: --scheduler: must be tcp://HOST:PORT" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("change", "field"), [
    (('"watchlist.size" = {low = 1000, high = 16000}', '"watchlist.sizes" = {low = 1000, high = 16000}'),
     "sensitivity.explain.parameters.watchlist.sizes.low"),
    (('"matcher.threshold" = {low = 0.58, high = 0.70}', '"matcher.threshold" = {low = 0.58, high = 1.70}'),
     "sensitivity.explain.parameters.matcher.threshold.high"),
    (("false_alerts = 12\n", "false_alerts = -1\n"), "comparison.false_alerts"),
    (("[comparison]\nfaces = 3000000\nfalse_alerts = 12\n", ""), "comparison"),
])
def test_hostile_explain_sections_are_refused_by_field(tmp_path, capsys, change, field):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + EXPLAIN.replace(*change))
    out = tmp_path / "out"
    assert cli.main(["explain", str(path), "--out", str(out), "--quiet"]) == 2
    assert f"error: {field}" in capsys.readouterr().err
    assert not out.exists()


def test_explain_writes_its_table_and_figure(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(SMALL + EXPLAIN)
    assert cli.main(["explain", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    grid = pd.read_csv(tmp_path / "out" / "explain.csv")
    assert len(grid) == 25 and {"expected", "pi_low", "pi_high", "inside"} <= set(grid.columns)
    assert (tmp_path / "out" / "figures" / "explain.png").stat().st_size > 0
