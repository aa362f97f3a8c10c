"""The reported figure against the model's posterior predictive: the experiment's own settings, every look."""

from __future__ import annotations

import numpy as np
import pytest

from sim import assumptions
from sim import draws as dr
from sim import likelihood as lk
from sim import posterior as po
from sim import records as rec
from sim.config import from_dict, load_experiment
from sim.draws import typical
from sim.metrics import summary_value
from sim.pipeline import run_experiment


def experiment(threshold: float, **crowd):
    """Every calibrated setting fixed at the posterior's medians: each replicate's exact expectation
    is then the comparison's, which must count every look the simulation counts."""
    return typical(from_dict({
        "experiment": {"name": "looks", "seed": 4, "replications": 3},
        "programme": {"generator": {"weeks": 1, "deployments_per_week": 4, "duration_hours": 3.0,
                                    "footfall_per_hour": 4000.0}},
        "crowd": crowd, "watchlist": {"size": 16000}, "matcher": {"threshold": threshold},
        "comparison": {"faces": 3_000_000, "false_alerts": 12, "threshold": 0.64}}))


def point_against_exact(results) -> tuple[float, float]:
    s = results.summary
    exact = summary_value(s, 0, "all", "expected_false_alerts")[0] / summary_value(s, 0, "all", "faces")[0]
    return results.posterior["expected"], exact * 3_000_000


@pytest.mark.parametrize("frames, correlation", [(1.0, 1.0), (3.0, 0.0), (2.5, 0.5)])
def test_the_posterior_point_is_the_exact_expectation_whatever_the_looks(frames, correlation):
    """Several independent looks per passer raise FPIR; the comparison must count every one."""
    results = run_experiment(experiment(0.60, frames_per_passer=frames, frame_correlation=correlation))
    point, exact = point_against_exact(results)
    assert point == pytest.approx(exact, rel=2e-3)


def test_the_comparison_is_computed_at_the_experiments_own_threshold():
    results = run_experiment(experiment(0.62))
    assert results.posterior["threshold"] == 0.62 and results.posterior["reported_threshold"] == 0.64
    point, exact = point_against_exact(results)
    assert point == pytest.approx(exact, rel=2e-3)


def test_no_comparison_unless_the_experiment_declares_one():
    data = experiment(0.64).to_dict()
    del data["comparison"]
    results = run_experiment(from_dict(data))
    assert results.experiment.comparison is None and results.posterior is None


def test_a_pareto_tail_posterior_runs_forward_at_the_calibrations_headline(monkeypatch):
    """Were the Pareto-tail account shipped, its draws would run the simulator's ParetoTailNoise: the
    forward expectation of the headline (exact hazard) equals the calibration's closed form."""
    data = lk.Data.from_records(rec.fit_rows())
    model = lk.Model(lk.ACCOUNTS["c2p"], data)
    # three draws of c2p's screen posterior (sampler coordinates; tail_shape last)
    points = ([0.554188, -2.834458, 1.030214, 2.357428, 0.154184, -2.803745, 0.120443, -1.140535, 0.710069,
               -0.599911, 1.956672, 0.164644, 1.33776, 1.903585, 0.09413, -0.960097, 0.236648, 0.471011,
               0.115595],
              [0.629068, -2.794363, 1.009771, 2.070823, 0.134931, -2.846802, 0.285497, -0.949018, 0.410418,
               -0.176253, 0.769107, 0.194921, 1.090757, 1.852493, -0.032062, -1.018206, 0.231379, 0.470246,
               0.119994],
              [0.540578, -2.188249, 1.019818, 1.587064, 0.137877, -2.86885, 0.281618, -1.216808, 0.484788,
               -0.170422, 0.708564, 0.173613, 0.48215, 1.728538, -0.154319, -1.050137, 0.314308, 0.448544,
               0.050484])
    rows = []
    for x in map(np.array, points):
        assert model.score(x).valid
        rows.append({**dict(zip(model.names, x, strict=True)), **lk.derived(model, x)})
    fake = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    monkeypatch.setattr(dr, "posterior_draws", lambda: fake)
    monkeypatch.setattr(po, "posterior_draws", lambda: fake)
    experiment = assumptions.headline()
    assert "matcher.scores.tail_shape" in dr.calibrated_settings(experiment)
    forward = po.expected_false_alerts(experiment, lk.headline_crowd(), 3_000_000, np.arange(3))
    np.testing.assert_allclose(forward, fake["headline_expected_false"], rtol=3e-3)
    gaussian = dict(fake)
    gaussian.pop("tail_shape")
    monkeypatch.setattr(po, "posterior_draws", lambda: gaussian)
    monkeypatch.setattr(dr, "posterior_draws", lambda: gaussian)
    # the same draws under the Gaussian noise give another headline: the tail reached the forward run
    assert np.all(np.abs(po.expected_false_alerts(experiment, lk.headline_crowd(), 3_000_000, np.arange(3))
                         / forward - 1) > 0.5)


def per_draw_expected_false_alerts(experiment, crowd_mix, faces, draws):
    """``expected_false_alerts`` one draw at a time: a score model and a quadrature per draw."""
    groups = experiment.passer_groups()
    wl = experiment.watchlist
    shares = po.watchlist_group_shares(wl.female_share, wl.ethnicity_shares, groups)
    out = []
    for index in draws:
        values = dr.draw(int(index))
        model = po.score_model(dr.score_parameters_for(experiment, values), groups)
        fp = po.crowd_fpir(model, shares, wl.size, experiment.matcher.threshold, experiment.crowd)
        out.append(faces / dr.faces_per_passer_for(experiment, values) * float(crowd_mix @ fp))
    return np.array(out)


@pytest.mark.parametrize("name, scores", [("met_2025_headline", {}), ("age_bands", {}),
                                          ("met_2025_headline", {"same_ethnicity_shift": 0.2})])
def test_draws_stacked_give_each_draws_own_expectation_to_the_bit(name, scores):
    """The comparison integrates over draws in blocks of stacked score models; every draw's number
    must be the one its own score model gives (census and declared groups, a score setting given)."""
    data = load_experiment(f"experiments/{name}.toml").to_dict()
    data["matcher"].setdefault("scores", {}).update(scores)
    experiment = from_dict(data)
    draws = dr.comparison_draws(150)       # three blocks, the last one short
    assert po.stacked_score_model(experiment, draws) is not None
    mix = np.random.default_rng(3).dirichlet(np.ones(len(experiment.passer_groups())))
    stacked = po.expected_false_alerts(experiment, mix, 3_000_000, draws)
    assert np.array_equal(stacked, per_draw_expected_false_alerts(experiment, mix, 3_000_000, draws))


@pytest.mark.parametrize("seed", range(4))
def test_distinct_locations_are_uniques_columns_in_order_of_appearance(seed):
    """Each column's distinct column is the column itself, the distinct ones are np.unique's (as a
    set), each taken where it first appears."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(5, 6))
    pairs = base[:, rng.integers(0, 6, size=20)]
    distinct, where = po._distinct_locations(pairs)
    np.testing.assert_array_equal(distinct[:, where], pairs)
    unique = np.unique(pairs, axis=1)
    assert distinct.shape == unique.shape
    np.testing.assert_array_equal(np.unique(distinct, axis=1), unique)
    assert list(where[np.sort(np.unique(where, return_index=True)[1])]) == list(range(distinct.shape[1]))
