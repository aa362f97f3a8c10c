"""Checks of the calibration: simulated data, the headline, checks per period, recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sim import checks
from sim import inference as inf
from sim import likelihood as lk
from sim import records as rec
from sim.replay import shipped_posterior


@pytest.fixture(scope="module")
def data():
    return lk.Data.from_records(rec.fit_rows())


def test_simulated_data_have_the_records_shape(data):
    m = lk.Model(lk.ACCOUNTS["c+d"], data)
    x = np.array([p.transform(0.5) for p in m.priors])
    sim = checks.simulate("c+d", x, data, np.random.default_rng(0))
    assert sim.n == data.n and [r.index for r in sim.rows] == [r.index for r in data.rows]
    assert np.isfinite(lk.Model(lk.ACCOUNTS["c+d"], sim).loglike(x))


def test_simulated_regime_weights_come_from_the_simulated_faces_as_the_records_do(data):
    """P(low count) of a simulated row is the records' EM recipe applied to the *simulated* faces
    per hour, and the faces-per-hour rows are those it makes confident (records.footfall_rows)."""
    m = lk.Model(lk.ACCOUNTS["c2"], data)
    x = np.array([p.transform(0.5) for p in m.priors])
    x[m.index["log_faces_per_passer_1"]] = 0.0
    x[m.index["log_faces_per_passer_0"]] = math.log(8.0)       # high-count regime: 8 faces a passer
    sim = checks.simulate("c2", x, data, np.random.default_rng(3))
    rows = {r.index: r for r in (*sim.rows, *sim.ff_rows)}
    in_2024 = [r for _, r in sorted(rows.items()) if r.date >= "2024-01-01"]
    log_fph = np.log([r.faces / r.hours for r in in_2024])
    after = np.array([r.date >= rec.SWITCH_DATE for r in in_2024])
    mixture = rec.fit_regime_mixture(log_fph, after)
    assert np.allclose([r.p_low_count for r in in_2024], mixture.p_low(log_fph, after))
    assert {r.index for r in sim.ff_rows} <= set(rows)
    assert all(r.date < "2024-01-01" or min(r.p_low_count, 1 - r.p_low_count) <= 0.05 for r in sim.ff_rows)
    # the simulated faces, not the records', decide: the rows' weights moved
    assert not np.allclose([r.p_low_count for r in sim.rows], [r.p_low_count for r in data.rows])


def test_period_checks_cover_every_period_with_observed_totals(data):
    post = shipped_posterior(draws=100)
    rows = checks.period_checks(post, data, seed=1)
    assert [r["period"] for r in rows] == list(rec.PERIODS)
    assert [r["false_alerts"]["observed"] for r in rows] == [2, 23, 4, 0]
    for r in rows:
        for m in checks.METRICS:
            lo, hi = r[m]["interval_95"]
            assert lo <= r[m]["mean"] <= hi and 0 <= r[m]["p_value"] <= 1


def test_false_given_alerts_never_exceed_the_alerts(data):
    post = shipped_posterior(draws=50)
    c = checks.false_given_alerts(post, data.only_period(rec.PERIODS[2]), seed=1)
    assert c["alerts"] == 54 and c["observed"] == 4 and 0 <= c["interval_95"][1] <= 54


def test_headline_counts_the_mets_figure_without_fitting_it():
    samples = {"headline_expected_false": np.full(4000, 12.0), "phi_false": np.zeros(4000)}
    h = checks.headline(samples, seed=1)
    assert h["reported"] == 12 and h["expected_median"] == 12.0
    # Poisson(12): P(<= 12) = 0.576; the Monte Carlo count over 4,000 draws is within 0.03 of it
    assert abs(h["p_at_most_reported"] - 0.5760) < 0.03
    assert math.isclose(h["p_at_most_reported_poisson"], 0.57597, rel_tol=1e-4)


# The shipped fit's live points (100; Settings.screen). With fewer live points than about five per
# dimension (the c2 account has 18) rwalk nested sampling contracts past the posterior's bulk: at
# nlive 40 these truths were covered 55% of the time (a sampler failure). At 100 they are covered
# 94% of the time (60 of 64 pairs; footfall_elasticity 8 of 8). Before the simulation recomputed
# P(low count) from its own faces per hour, it was 83%, footfall_elasticity 4 of 8: the fit was
# handed regime weights computed from the records' faces, not the simulated ones (profiled, the
# truth sat 2.6-3.4 log units below the maximum; emcee from the nested draws gave the same
# intervals, so not the sampler). dlogz 0.5 ends each run earlier than the shipped 0.1 (the
# evidence is not used here) and 600 draws give the 95% quantiles.
RECOVERY = inf.Settings(nlive=100, walks=25, dlogz=0.5, runs=1, draws=600)
RECOVERY_SETS = 8


@pytest.mark.slow
def test_fits_recover_the_truth_of_data_simulated_by_the_model():
    """Truths drawn by hypothesis from the shipped c2 posterior, with the counting factors reset
    (k_low in [0.3, 3], k_high / k_low in [1, 8]); each set is simulated and refitted. The truth
    must be inside the 95% interval for >= 90% of the (set, target) pairs: 8 sets x 8 targets.
    Were the intervals exact and independent, the misses would be Binomial(64, 0.05) and this
    would fail with probability 0.04 (P(misses > 6)); intervals are correlated across targets,
    so a little more. Fixed seeds: the outcome is the same on every run."""
    post = shipped_posterior()
    matrix = post.matrix()
    m = post.model
    truths: list[np.ndarray] = []

    @seed(12)
    @hsettings(max_examples=RECOVERY_SETS, deadline=None, database=None,
               suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.integers(0, len(matrix) - 1), st.floats(math.log(0.3), math.log(3.0)),
           st.floats(0.0, math.log(8.0)))
    def collect(i, log_k_low, log_ratio):
        x = matrix[i].copy()
        x[m.index["log_faces_per_passer_1"]] = log_k_low
        x[m.index["log_faces_per_passer_0"]] = log_k_low + log_ratio
        truths.append(x)

    collect()
    assert len(truths) == RECOVERY_SETS
    res = checks.recovery(truths, "c2", seed=7, settings=RECOVERY, workers=2)
    assert res["sets"] == RECOVERY_SETS and len(res["coverage"]) == 8
    assert res["overall"] >= 0.90, res["coverage"]
