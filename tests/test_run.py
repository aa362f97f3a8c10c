"""One replicate end to end: determinism, conservation, monotonicity and the exact expectation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.config import from_dict
from sim.replicate import simulate_replicate


def small_experiment(**overrides):
    data = {
        "experiment": {"name": "small", "seed": 7, "replications": 1},
        "programme": {"generator": {"weeks": 2, "deployments_per_week": 3, "duration_hours": 2.0,
                                    "footfall_per_hour": 3000.0}},
        "watchlist": {"size": 16000},
        "matcher": {"threshold": 0.60, "score_floor": 0.55},
    }
    for path, value in overrides.items():
        section, key = path.split(".")
        data.setdefault(section, {})[key] = value
    return from_dict(data)


@pytest.mark.parametrize("review", [{}, {"operators": 1, "officers": 2, "review_seconds_mean": 300.0}])
def test_a_sweep_gives_each_threshold_what_a_run_at_that_threshold_alone_gives(review):
    # A sweep reviews a deployment again only where its alert set changed and some alert found
    # the staff busy, and then only from the last idle moment: what it reports at each threshold
    # must be what reviewing that threshold's alerts alone gives (same floor, so the same passers;
    # busy staff make the shortcuts matter). Equal up to rounding of the event clock.
    e = small_experiment(**{"crowd.watchlisted_per_passer": 0.01},
                         **{f"review.{k}": v for k, v in review.items()})
    ts = [0.55, 0.56, 0.57, 0.58, 0.6, 0.62, 0.65]
    swept = simulate_replicate(e, 0, ts)
    for t in ts:
        alone = simulate_replicate(e, 0, [t])[t]
        assert alone["counts"]["alerts"].sum() > 0
        for name, value in alone["counts"].items():
            np.testing.assert_allclose(swept[t]["counts"][name], value, rtol=1e-12, err_msg=f"{t} {name}")
        for name, value in alone["programme"].items():
            np.testing.assert_allclose(swept[t]["programme"][name], value, rtol=1e-12, err_msg=f"{t} {name}")


def test_same_seed_gives_same_counts():
    e = small_experiment()
    a = simulate_replicate(e, 0, [0.6, 0.62])
    b = simulate_replicate(e, 0, [0.6, 0.62])
    for t in a:
        for name, arr in a[t]["counts"].items():
            np.testing.assert_array_equal(arr, b[t]["counts"][name])


def test_other_replicate_draws_other_passers():
    e = small_experiment()
    a = simulate_replicate(e, 0, [0.6])[0.6]["counts"]["faces"]
    b = simulate_replicate(e, 1, [0.6])[0.6]["counts"]["faces"]
    assert not np.array_equal(a, b)


def test_raising_threshold_never_adds_alerts():
    e = small_experiment()
    thresholds = [0.56, 0.58, 0.60, 0.62, 0.64, 0.70]
    r = simulate_replicate(e, 0, thresholds, seed=11)
    for lo, hi in zip(thresholds, thresholds[1:], strict=False):
        for metric in ("alerts", "false_alerts", "true_alerts"):
            assert (r[hi]["counts"][metric] <= r[lo]["counts"][metric]).all(), (metric, lo, hi)


def test_every_alert_ends_in_exactly_one_outcome():
    e = small_experiment()
    for counts in (v["counts"] for v in simulate_replicate(e, 0, [0.56, 0.6]).values()):
        engaged = (counts["arrests"] + counts["other_disposals"] + counts["no_action"]
                   + counts["wrongful_stops"] + counts["wrongful_arrests"])
        np.testing.assert_array_equal(counts["engagements"], engaged)
        np.testing.assert_array_equal(counts["alerts"], counts["operator_rejected"] + counts["lost_alerts"]
                                      + counts["engagements"])
        np.testing.assert_array_equal(counts["alerts"], counts["true_alerts"] + counts["false_alerts"])


def poisson_agreement(kind: str, threshold: float, replicates: int, at_least: float) -> None:
    """Monte Carlo ``kind`` alerts against their exact expectation, pooled over replicates.

    Two-sided Poisson test at level 0.001 (a false-failure rate of 1 in 1,000), fixed seeds.
    """
    e = small_experiment()
    observed = expected = 0.0
    for rep in range(replicates):
        r = simulate_replicate(e, rep, [threshold])[threshold]["counts"]
        observed += r[f"{kind}_alerts"].sum()
        expected += r[f"expected_{kind}_alerts"].sum()
    assert expected > at_least
    p = 2 * min(stats.poisson.cdf(observed, expected), stats.poisson.sf(observed - 1, expected))
    assert p > 1e-3, (observed, expected)


@pytest.mark.slow
def test_monte_carlo_false_alerts_agree_with_exact_expectation():
    # at 0.56 this crowd gives a few hundred false alerts per replicate: enough for a sharp test
    poisson_agreement("false", 0.56, replicates=10, at_least=200)


def test_true_alerts_agree_with_exact_expectation():
    poisson_agreement("true", 0.60, replicates=3, at_least=50)


def test_mean_times_average_the_alerts_that_reached_the_stage():
    """An alert rejected or lost never reaches the officers: the mean is over those that did."""
    e = small_experiment(**{"review.officers": 2})
    out = simulate_replicate(e, 0, [0.60])[0.60]
    counts, programme = out["counts"], out["programme"]
    not_engaged = counts["lost_alerts"].sum() + counts["operator_rejected"].sum()
    assert counts["engagements"].sum() > 0 and not_engaged > 0
    mean = programme["mean_seconds_to_engagement"]
    assert np.isfinite(mean)
    assert mean == pytest.approx(counts["seconds_to_engagement_total"].sum() / counts["engagements"].sum())


@pytest.mark.parametrize("elasticity", [0.0, -1.0, 2.0])
def test_a_vanishing_footfall_runs_to_finite_counts(elasticity):
    """Passers an hour so few that footfall / 1,000 underflows to 0 (5e-324): the footfall factor of
    the watchlisted share stays a number, and the deployment simply sees nobody."""
    data = small_experiment().to_dict()
    quiet = {"site": "quiet", "duration_hours": 1.0, "footfall_per_hour": 5e-324}
    data["programme"] = {"deployments": [quiet]}
    data["crowd"]["footfall_elasticity"] = elasticity
    counts = simulate_replicate(from_dict(data), 0, [0.64])[0.64]["counts"]
    assert all(np.isfinite(v).all() for v in counts.values())
    assert counts["passers"].sum() == 0
