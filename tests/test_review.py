"""Review as a discrete-event system: conservation, staffing, queues and the Met-like defaults."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.config import Review as ReviewSettings
from sim.config import from_dict
from sim.replicate import simulate_replicate
from sim.review import (
    ARREST,
    ENGAGED,
    LOST,
    NO_ACTION,
    OTHER_DISPOSAL,
    REJECTED,
    UNIFORMS_PER_ALERT,
    WRONGFUL_ARREST,
    WRONGFUL_STOP,
    Alerts,
    ReviewDay,
    _Timer,
    confirm_probability,
    review_alerts,
)

DAY = 6 * 3600.0
unit = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)


def Review(**settings) -> ReviewSettings:  # noqa: N802 - stands in for the settings class
    """Review settings with the arrest probability fixed (a forward run draws it from the posterior)."""
    return ReviewSettings(**{"p_arrest": 0.47, **settings})


@st.composite
def alert_days(draw, max_alerts: int = 40, hours: float = 6.0) -> Alerts:
    """A deployment's alerts: times (ties allowed), true/false split and each alert's own uniforms."""
    n = draw(st.integers(0, max_alerts))
    seconds = np.sort(np.array(draw(st.lists(st.floats(0.0, hours * 3600.0), min_size=n, max_size=n)),
                               dtype=float))
    true_match = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    margin = np.array(draw(st.lists(st.floats(0.0, 0.3), min_size=n, max_size=n)), dtype=float)
    flat = draw(st.lists(unit, min_size=n * UNIFORMS_PER_ALERT, max_size=n * UNIFORMS_PER_ALERT))
    uniforms = np.array(flat, dtype=float).reshape(n, UNIFORMS_PER_ALERT)
    return Alerts(seconds, true_match, margin, uniforms)


reviews = st.builds(
    Review,
    operators=st.integers(1, 3),
    officers=st.integers(0, 10),
    officers_per_engagement=st.integers(1, 3),
    require_operator_review=st.booleans(),
    review_seconds_mean=st.floats(0.0, 120.0),
    p_confirm_true=st.floats(0.0, 1.0),
    p_confirm_false=st.floats(0.0, 1.0),
    automation_bias=st.sampled_from([0.0, 1.0]),
    zone_length_m=st.floats(10.0, 300.0),
    response_seconds_mean=st.floats(0.0, 60.0),
    engagement_minutes_mean=st.floats(0.0, 30.0),
    arrest_minutes_mean=st.floats(0.0, 90.0),
    p_arrest=st.floats(0.0, 0.5),
    p_other_disposal=st.floats(0.0, 0.5),
    p_wrongful_arrest=st.floats(0.0, 1.0),
)


def poisson_day(rate_per_second: float, seconds: float, rng: np.random.Generator,
                true_share: float = 1.0) -> Alerts:
    n = rng.poisson(rate_per_second * seconds)
    return Alerts(seconds=np.sort(rng.uniform(0.0, seconds, n)), true_match=rng.random(n) < true_share,
                  margin=np.zeros(n), uniforms=rng.random((n, UNIFORMS_PER_ALERT)))


# -- conservation ----------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(alerts=alert_days(), review=reviews)
def test_every_alert_ends_in_exactly_one_outcome(alerts, review):
    result = review_alerts(alerts, review, DAY)
    assert result.outcome.shape == (len(alerts),)
    assert set(result.outcome.tolist()) <= {REJECTED, LOST, *ENGAGED}
    engaged = np.isin(result.outcome, ENGAGED)
    # the times tell the same story as the outcome
    assert np.isfinite(result.to_engagement[engaged]).all()
    assert np.isnan(result.to_engagement[~engaged]).all()
    assert (result.officer_seconds[~engaged] == 0).all()
    # a true match never becomes a wrongful stop, a false one never an arrest
    assert not np.isin(result.outcome[alerts.true_match], [WRONGFUL_STOP, WRONGFUL_ARREST]).any()
    assert not np.isin(result.outcome[~alerts.true_match], [ARREST, OTHER_DISPOSAL, NO_ACTION]).any()
    if not review.require_operator_review:
        assert not (result.outcome == REJECTED).any()
        assert result.operator_busy_seconds == 0.0
    # nobody is busier than on duty
    assert result.officer_busy_seconds <= result.officer_on_duty_seconds * (1 + 1e-9) + 1e-9
    assert result.operator_busy_seconds <= result.operator_on_duty_seconds * (1 + 1e-9) + 1e-9


@settings(max_examples=100, deadline=None)
@given(alerts=alert_days(), require_review=st.booleans())
def test_perfect_operators_and_unlimited_officers_reproduce_the_true_false_split(alerts, require_review):
    n = len(alerts)
    review = Review(operators=max(n, 1), officers=2 * max(n, 1), require_operator_review=require_review,
                    p_confirm_true=1.0, p_confirm_false=0.0, zone_length_m=1e9, walking_speed_cv=0.0)
    out = review_alerts(alerts, review, DAY).outcome
    true, false = alerts.true_match, ~alerts.true_match
    assert np.isin(out[true], [ARREST, OTHER_DISPOSAL, NO_ACTION]).all()
    if require_review:
        assert (out[false] == REJECTED).all()
    else:
        assert np.isin(out[false], [WRONGFUL_STOP, WRONGFUL_ARREST]).all()
    assert not (out == LOST).any()


def test_no_alerts_no_events():
    day = ReviewDay(Alerts(np.empty(0), np.empty(0, bool), np.empty(0), np.empty((0, UNIFORMS_PER_ALERT))),
                    Review(), DAY)
    assert day.env.peek() == math.inf          # nothing scheduled ...
    result = day.run()
    assert day.env.now == 0.0                  # ... and the clock never moved
    assert result.outcome.size == 0
    assert result.operator_busy_seconds == result.officer_busy_seconds == 0.0


@settings(max_examples=100, deadline=None)
@given(alerts=alert_days(max_alerts=60), operators=st.integers(1, 3))
def test_review_time_zero_means_no_waiting_for_an_operator(alerts, operators):
    review = Review(operators=operators, review_seconds_mean=0.0)
    result = review_alerts(alerts, review, DAY)
    assert (result.operator_wait == 0.0).all()


# -- staffing (common random numbers) ---------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(alerts=alert_days(max_alerts=60), review=reviews, more=st.integers(1, 6))
def test_officers_never_change_what_the_operators_do(alerts, review, more):
    a = review_alerts(alerts, review, DAY)
    b = review_alerts(alerts, review.model_copy(update={"officers": review.officers + more}), DAY)
    np.testing.assert_array_equal(a.operator_wait, b.operator_wait)
    np.testing.assert_array_equal(a.outcome == REJECTED, b.outcome == REJECTED)


def _teams_only(officers: int, **kw) -> Review:
    """Officer stage alone: no operator review, single officers (one team per officer)."""
    return Review(require_operator_review=False, operators=0, officers=officers, officers_per_engagement=1,
                  **kw)


@settings(max_examples=150, deadline=None)
@given(alerts=alert_days(max_alerts=60, hours=1.0), teams=st.integers(1, 5), more=st.integers(1, 3))
def test_adding_teams_never_delays_any_alert_when_nobody_walks_away(alerts, teams, more):
    # Without a deadline the team queue is first come, first served: the Kiefer-Wolfowitz
    # workload vector is monotone, so every alert waits no longer with more teams (pathwise).
    kw = dict(zone_length_m=1e9, walking_speed_cv=0.0, engagement_minutes_mean=5.0, arrest_minutes_mean=30.0)
    few = review_alerts(alerts, _teams_only(teams, **kw), DAY)
    many = review_alerts(alerts, _teams_only(teams + more, **kw), DAY)
    assert (many.officer_wait <= few.officer_wait + 1e-9).all()
    assert not (few.outcome == LOST).any() and not (many.outcome == LOST).any()


@settings(max_examples=150, deadline=None)
@given(alerts=alert_days(max_alerts=60, hours=1.0), teams=st.integers(1, 5), more=st.integers(1, 3))
def test_if_some_staffing_loses_no_alert_more_officers_lose_none(alerts, teams, more):
    # Follows from the monotone waits: before its first loss the larger system is the
    # no-deadline queue, whose waits are no longer than those of the smaller, loss-free one.
    kw = dict(zone_length_m=60.0, engagement_minutes_mean=2.0, arrest_minutes_mean=10.0)
    few = review_alerts(alerts, _teams_only(teams, **kw), DAY)
    many = review_alerts(alerts, _teams_only(teams + more, **kw), DAY)
    if not (few.outcome == LOST).any():
        assert not (many.outcome == LOST).any()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(alerts=alert_days(max_alerts=40, hours=0.5), teams=st.integers(1, 4), more=st.integers(1, 3))
def test_with_equal_team_times_adding_teams_never_loses_more_alerts(alerts, teams, more):
    # When every engagement ties a team up for the same time, the loss count is monotone in
    # teams. No counterexample in 1.5 million random small cases; derandomized here so that the
    # suite stays deterministic (see docs/review.md for the status of this claim).
    kw = dict(zone_length_m=60.0, response_seconds_cv=0.0, engagement_minutes_mean=3.0,
              engagement_minutes_cv=0.0, arrest_minutes_mean=3.0)
    few = review_alerts(alerts, _teams_only(teams, **kw), DAY)
    many = review_alerts(alerts, _teams_only(teams + more, **kw), DAY)
    assert (many.outcome == LOST).sum() <= (few.outcome == LOST).sum()


def test_one_more_team_can_lose_more_alerts_on_one_path():
    # The pathwise statement "more officers never lose more alerts" is false for a queue with
    # deadlines. Seven alerts, team times fixed, no response time. One team serves A and B, must
    # let the two long ones (C, D) go, and serves the three quick ones after them: 2 lost. Two
    # teams take C and D as well, are tied up for 20 s, and lose the three quick ones: 3 lost.
    # Hence the statements tested above, and the mean in the next test.
    seconds = [2.0, 3.25, 4.25, 5.0, 6.25, 7.25, 9.25]
    patience = [3.0, 1.5, 1.0, 0.5, 2.5, 3.5, 5.5]      # seconds an alert can wait for a team
    team_seconds = [2.0, 2.0, 20.0, 20.0, 1.0, 2.0, 1.0]
    n = len(seconds)
    alerts = Alerts(np.array(seconds), np.ones(n, bool), np.zeros(n), np.zeros((n, UNIFORMS_PER_ALERT)))
    lost = []
    for teams in (1, 2):
        day = ReviewDay(alerts, _teams_only(teams, response_seconds_mean=0.0))
        # set each alert's deadline and team time directly, before the day runs
        day.fates = replace(day.fates, dwell_seconds=np.array(patience), response_seconds=np.zeros(n),
                            engagement_seconds=np.array(team_seconds))
        outcome = day.run().outcome
        lost.append("".join("ABCDEFG"[i] for i in np.flatnonzero(outcome == LOST)))
    assert lost == ["CD", "EFG"]


@pytest.mark.slow
def test_more_officers_lose_fewer_alerts_on_average():
    # Common random numbers across staffing: 300 busy days, the same alerts and luck for 2..12
    # officers. Mean losses must fall strictly until nothing is lost; pathwise reversals (as in
    # the test above) must be rare. Fixed seed; a reversal of the mean would need a 5-sigma event.
    rng = np.random.default_rng(2024)
    days = [poisson_day(6 / 3600, 5.5 * 3600, rng) for _ in range(300)]
    staffing = (2, 4, 6, 8, 12)
    lost = np.array([[int((review_alerts(d, Review(officers=k), 5.5 * 3600).outcome == LOST).sum())
                      for d in days] for k in staffing])
    means = lost.mean(axis=1)
    for i in range(len(staffing) - 1):
        diff = lost[i] - lost[i + 1]
        if means[i] > 0.05:
            assert diff.mean() > 5 * diff.std(ddof=1) / np.sqrt(len(days)), (staffing[i], means)
        assert (diff < 0).mean() < 0.05, (staffing[i], (diff < 0).mean())


# -- queues ----------------------------------------------------------------------------------

def _operator_queue_day(rate: float, seconds: float, review: Review, rng: np.random.Generator):
    """One day with a Poisson-timed observer of the operator queue (PASTA: it sees time averages)."""
    alerts = poisson_day(rate, seconds, rng)
    day = ReviewDay(alerts, review, seconds)
    samples: list[int] = []
    look_times = np.cumsum(rng.exponential(20.0, int(seconds / 20.0 * 1.5)))
    look_times = look_times[look_times < seconds]

    def observer():
        last = 0.0
        for t in look_times:
            yield day.env.timeout(t - last)
            last = t
            samples.append(len(day.operators.queue))

    day.env.process(observer())
    result = day.run()
    return alerts, result, float(np.mean(samples))


def test_operator_queue_obeys_littles_law_and_pollaczek_khinchine():
    # One operator, Poisson alerts, gamma review times (mean 20 s, cv 0.8), load 0.6, 40 days.
    # Little: time-average queue length (an observer at Poisson times) = arrival rate x mean wait.
    # Pollaczek-Khinchine: mean wait = lam E[S^2] / (2 (1 - rho)), a closed form from the inputs.
    # Both compared across days with a z-test at 4 standard errors: false-failure rate ~6e-5 each.
    rng = np.random.default_rng(7)
    mean_s, cv, rho, seconds = 20.0, 0.8, 0.6, 20_000.0
    lam = rho / mean_s
    review = Review(operators=1, review_seconds_mean=mean_s, review_seconds_cv=cv,
                    p_confirm_true=0.0, p_confirm_false=0.0)
    little, waits = [], []
    for _ in range(40):
        alerts, result, queue_length = _operator_queue_day(lam, seconds, review, rng)
        w = float(np.mean(result.operator_wait))
        little.append(queue_length - lam * w)
        waits.append(w)
    little_arr, waits_arr = np.array(little), np.array(waits)
    se = little_arr.std(ddof=1) / np.sqrt(len(little_arr))
    assert abs(little_arr.mean()) < 4 * se, (little_arr.mean(), se)
    pk = lam * mean_s ** 2 * (1 + cv ** 2) / (2 * (1 - rho))
    se_w = waits_arr.std(ddof=1) / np.sqrt(len(waits_arr))
    # days start empty, so the mean wait sits a little below the stationary value
    assert abs(waits_arr.mean() - pk) < 4 * se_w + 0.02 * pk, (waits_arr.mean(), pk, se_w)


# -- decisions and outcomes ---------------------------------------------------------------------

def test_automation_bias_raises_confirmation_with_the_score():
    margin = np.linspace(0.0, 0.3, 7)
    alerts = Alerts(np.zeros(7), np.zeros(7, bool), margin, np.zeros((7, UNIFORMS_PER_ALERT)))
    none = confirm_probability(Review(p_confirm_false=0.5), alerts)
    bias = confirm_probability(Review(p_confirm_false=0.5, automation_bias=1.0), alerts)
    np.testing.assert_allclose(none, 0.5)
    assert bias[0] == pytest.approx(0.5) and (np.diff(bias) > 0).all()
    assert bias[-1] == pytest.approx(1 / (1 + math.exp(-3.0)))


def test_outcome_shares_match_their_probabilities():
    # 20,000 engaged true matches: arrests and other disposals at their probabilities, within
    # 4.5 binomial standard errors (false-failure rate ~7e-6 each). Fixed seed.
    rng = np.random.default_rng(3)
    n = 20_000
    alerts = Alerts(np.arange(n) * 3600.0, np.ones(n, bool), np.zeros(n), rng.random((n, UNIFORMS_PER_ALERT)))
    review = Review(p_confirm_true=1.0, zone_length_m=1e9, p_arrest=0.47, p_other_disposal=0.1)
    out = review_alerts(alerts, review, n * 3600.0).outcome
    assert np.isin(out, [ARREST, OTHER_DISPOSAL, NO_ACTION]).all()
    n = len(out)
    for code, p in ((ARREST, 0.47), (OTHER_DISPOSAL, 0.1), (NO_ACTION, 0.43)):
        k = int((out == code).sum())
        assert abs(k - n * p) < 4.5 * math.sqrt(n * p * (1 - p)), (code, k, n)


def test_a_team_smaller_than_a_pair_stops_nobody():
    rng = np.random.default_rng(5)
    alerts = poisson_day(10 / 3600, DAY, rng)
    review = Review(officers=1, officers_per_engagement=2, p_confirm_true=1.0)
    out = review_alerts(alerts, review, DAY).outcome
    assert len(out) > 0 and (out == LOST).all()


# -- in a simulated programme -------------------------------------------------------------------

def _experiment(**review):
    return from_dict({
        "experiment": {"name": "review", "seed": 11, "replications": 1},
        "programme": {"generator": {"weeks": 2, "deployments_per_week": 3, "duration_hours": 4.0,
                                    "footfall_per_hour": 3000.0}},
        "watchlist": {"size": 16000},
        "matcher": {"threshold": 0.58, "score_floor": 0.56},
        "review": review,
    })


@pytest.mark.parametrize("review", [{}, {"officers": 2, "operators": 1, "review_seconds_mean": 60.0},
                                    {"require_operator_review": False, "officers": 4}])
def test_programme_counts_add_up(review):
    for result in simulate_replicate(_experiment(**review), 0, [0.56, 0.58, 0.64]).values():
        c = result["counts"]
        np.testing.assert_array_equal(c["alerts"],
                                      c["operator_rejected"] + c["lost_alerts"] + c["engagements"])
        np.testing.assert_array_equal(c["engagements"], c["arrests"] + c["other_disposals"] + c["no_action"]
                                      + c["wrongful_stops"] + c["wrongful_arrests"])
        assert (c["lost_true_alerts"] <= c["lost_alerts"]).all()
        assert (c["arrests"] + c["other_disposals"] + c["no_action"] <= c["true_alerts"]).all()
        assert (c["wrongful_stops"] + c["wrongful_arrests"] <= c["false_alerts"]).all()
        p = result["programme"]
        assert 0.0 <= p["officer_utilisation"] <= 1.0 and 0.0 <= p["operator_utilisation"] <= 1.0
        if review.get("require_operator_review") is False:
            assert c["operator_rejected"].sum() == 0 and p["operator_utilisation"] == 0.0


def test_scarce_officers_lose_alerts_in_a_programme():
    lavish = simulate_replicate(_experiment(officers=40), 0, [0.56])[0.56]["counts"]
    scarce = simulate_replicate(_experiment(officers=2), 0, [0.56])[0.56]["counts"]
    assert lavish["alerts"].sum() == scarce["alerts"].sum() > 0
    assert scarce["lost_alerts"].sum() > lavish["lost_alerts"].sum()
    np.testing.assert_array_equal(scarce["operator_rejected"], lavish["operator_rejected"])


@pytest.mark.slow
def test_arrests_per_alert_at_064_match_the_mets_2024_records():
    # The Met at 0.64 (Jul-Dec 2024): 272 arrests from 593 alerts (0.459, exact 95% CI 0.418-0.500).
    # Ten 13-week programmes at the defaults must land inside that interval.
    data = {
        "experiment": {"name": "met", "seed": 5, "replications": 1},
        "programme": {"generator": {"weeks": 13, "deployments_per_week": 4, "duration_hours": 5.5,
                                    "footfall_per_hour": 2700.0, "footfall_cv": 0.5}},
        "watchlist": {"size": 16000},
        "matcher": {"threshold": 0.64},
    }
    experiment = from_dict(data)
    arrests = alerts = 0.0
    for rep in range(10):
        c = simulate_replicate(experiment, rep, [0.64])[0.64]["counts"]
        arrests += c["arrests"].sum()
        alerts += c["alerts"].sum()
    low, high = stats.binomtest(272, 593).proportion_ci(method="exact")
    assert low < arrests / alerts < high, arrests / alerts


def test_timer_fires_as_a_simpy_timeout_would():
    """``_Timer`` is scheduled as ``simpy.Timeout``: same times, ties in the order they were made."""
    env = simpy.Environment()
    fired: list[tuple[float, str]] = []

    def note(event):
        fired.append((env.now, event.value))

    expected = []
    for k, delay in enumerate([3.0, 1.0, 1.0, 0.0, 2.5, 1.0]):
        if k % 2:
            _Timer(env, delay, f"timer{k}", note)
        else:
            simpy.Timeout(env, delay, f"timeout{k}").callbacks.append(note)
        expected.append((delay, k))
    env.run()
    order = [f"{'timer' if k % 2 else 'timeout'}{k}" for _, k in sorted(expected)]
    assert fired == [(t, name) for (t, _), name in zip(sorted(expected), order, strict=True)]
