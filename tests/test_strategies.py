"""sim.testing.strategies: draws are valid, small, runnable, and honour what is pinned."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import data as shipped
from sim.config import Deployment, Experiment, ScoreParameters, Sweep, Watchlist
from sim.replicate import simulate_replicate
from sim.testing import strategies as S

FEW = settings(max_examples=20, deadline=None)


@FEW
@given(S.experiments())
def test_experiments_are_small_and_run_to_finite_counts(experiment):
    assert isinstance(experiment, Experiment)
    deployments = experiment.programme.deployments
    assert 1 <= len(deployments) <= 3 and experiment.experiment.replications == 1
    assert all(d.duration_hours <= S.MAX_DURATION_HOURS for d in deployments)
    assert experiment.watchlist.size <= S.MAX_WATCHLIST
    t = experiment.matcher.threshold
    counts = simulate_replicate(experiment, 0, [t])[t]["counts"]
    assert all(np.isfinite(v).all() for v in counts.values())
    assert counts["passers"].sum() <= 3 * S.MAX_FOOTFALL_PER_HOUR * 2   # 3 hours: mean 15,000, sd 122


@FEW
@given(S.experiments(threshold=0.6, watchlist_size=1234, seed=7, replications=2,
                     settings={"crowd.faces_per_passer": "frames", "review.officers": 3}))
def test_pins_are_honoured(experiment):
    assert experiment.matcher.threshold == 0.6 and experiment.matcher.score_floor == 0.6
    assert experiment.watchlist.size == 1234
    assert experiment.experiment.seed == 7 and experiment.experiment.replications == 2
    assert experiment.crowd.faces_per_passer == "frames" and experiment.review.officers == 3


@FEW
@given(S.experiments(threshold=st.sampled_from([0.6, 0.64]), score_floor=0.55, sweep=S.sweeps()))
def test_pins_take_strategies_and_sweeps_resolve_the_floor(experiment):
    assert experiment.matcher.threshold in (0.6, 0.64) and experiment.matcher.score_floor == 0.55
    assert 1 <= len(experiment.sweep.cells()) <= 6


@FEW
@given(S.deployments(borough="Camden", duration_hours=0.5), S.watchlists(size=10),
       S.score_models(tail="pareto"), S.sweeps(thresholds=[0.6, 0.62], watchlist_sizes=[]))
def test_section_strategies_take_any_setting_by_name(deployment, watchlist, scores, sweep):
    assert isinstance(deployment, Deployment) and deployment.borough == "Camden"
    assert deployment.duration_hours == 0.5 and shipped.has_borough(deployment.borough)
    assert isinstance(watchlist, Watchlist) and watchlist.size == 10
    assert isinstance(scores, ScoreParameters) and scores.tail == "pareto"
    assert isinstance(sweep, Sweep) and sweep.parameters == {"matcher.threshold": [0.6, 0.62]}


@FEW
@given(S.ethnicity_shares())
def test_ethnicity_shares_sum_to_one(shares):
    assert abs(sum(shares.values()) - 1.0) <= 1e-9 and min(shares.values()) >= 0.0


@pytest.mark.parametrize("strategy", [S.watchlists, S.deployments, S.score_models])
def test_an_unknown_pin_is_refused_by_name(strategy):
    with pytest.raises(TypeError, match="no setting 'sise'"):
        strategy(sise=3)
