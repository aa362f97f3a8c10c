"""The reported figure against the model's posterior predictive: the experiment's own settings, every look."""

from __future__ import annotations

import pytest

from sim.config import from_dict
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
