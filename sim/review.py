"""What happens after an alert: operators adjudicate, intervention officers stop the passer.

Picture the van: an alert pops up on an operator's screen while the passer keeps walking. The
operator compares the probe with the watchlist image (``review_seconds``) and either rejects the
alert or confirms it to the intervention team downstream. An officer must be free and reach the
passer before they walk out of the zone (``zone_length_m / walking_speed_m_s`` after passing the
camera), or the alert is lost. An engagement checks identity and ends in exactly one outcome.

Operators and officers are simpy Resources; each alert is one simpy process. Only alerts become
events: thousands in a year of deployments, never the millions of passers. Every random choice an
alert needs is drawn up front, one row of uniforms per alert, so the same alert meets the same luck
whatever the threshold or the staffing (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy
from scipy import special

from .config import Review

REJECTED, LOST, ARREST, OTHER_DISPOSAL, NO_ACTION, WRONGFUL_STOP, WRONGFUL_ARREST = range(7)
OUTCOMES = ("operator_rejected", "lost_alerts", "arrests", "other_disposals", "no_action",
            "wrongful_stops", "wrongful_arrests")
ENGAGED = (ARREST, OTHER_DISPOSAL, NO_ACTION, WRONGFUL_STOP, WRONGFUL_ARREST)
UNIFORMS_PER_ALERT = 5


@dataclass(frozen=True)
class Alerts:
    """The alerts of one deployment, in the order the camera raised them."""

    seconds: np.ndarray      # time of the alert from the start of the deployment
    true_match: np.ndarray   # bool: the top candidate is the passer's own entry
    margin: np.ndarray       # vendor score minus threshold (for automation bias)
    uniforms: np.ndarray     # (n, UNIFORMS_PER_ALERT) the alert's own random numbers

    def __len__(self) -> int:
        return len(self.seconds)


@dataclass(frozen=True)
class ReviewResult:
    outcome: np.ndarray          # one code per alert
    operator_busy_seconds: float
    officer_busy_seconds: float
    wait_seconds: np.ndarray     # alert to engagement (nan if never engaged)


def _gamma_times(mean: float, cv: float, u: np.ndarray) -> np.ndarray:
    if mean <= 0:
        return np.zeros_like(u)
    if cv <= 0:
        return np.full_like(u, mean)
    shape = 1.0 / cv ** 2
    return special.gammaincinv(shape, u) * (mean / shape)


def _confirm_probability(review: Review, alerts: Alerts) -> np.ndarray:
    base = np.where(alerts.true_match, review.p_confirm_true, review.p_confirm_false)
    if review.automation_bias == 0.0:
        return base
    # automation bias: log-odds of confirming rise by `automation_bias` per 0.1 of score margin
    with np.errstate(divide="ignore"):
        logit = special.logit(base) + review.automation_bias * alerts.margin / 0.1
    return special.expit(logit)


def review_alerts(alerts: Alerts, review: Review, duration_seconds: float) -> ReviewResult:
    """Run one deployment's alerts through operators and officers; one outcome per alert."""
    n = len(alerts)
    outcome = np.full(n, -1, dtype=np.int64)
    waits = np.full(n, np.nan)
    if n == 0:
        return ReviewResult(outcome, 0.0, 0.0, waits)
    u = alerts.uniforms
    review_s = _gamma_times(review.review_seconds_mean, review.review_seconds_cv, u[:, 0])
    confirm = u[:, 1] < _confirm_probability(review, alerts)
    response_s = _gamma_times(review.response_seconds_mean, 0.5, u[:, 2])
    engage_s = _gamma_times(review.engagement_minutes_mean * 60.0, 0.5, u[:, 3])
    dwell = review.zone_length_m / review.walking_speed_m_s
    busy = {"operator": 0.0, "officer": 0.0}

    env = simpy.Environment()
    operators = simpy.Resource(env, capacity=max(review.operators, 1))
    officers = simpy.Resource(env, capacity=review.officers) if review.officers > 0 else None

    def alert(i: int):
        yield env.timeout(alerts.seconds[i])
        raised = env.now
        if review.require_operator_review:
            with operators.request() as req:
                yield req
                yield env.timeout(review_s[i])
                busy["operator"] += review_s[i]
            if not confirm[i]:
                outcome[i] = REJECTED
                return
        leaves = raised + dwell
        if officers is None or env.now >= leaves:
            outcome[i] = LOST
            return
        req = officers.request()
        got = yield req | env.timeout(leaves - env.now)
        if req not in got:
            req.cancel()
            outcome[i] = LOST
            return
        if env.now + response_s[i] > leaves:
            officers.release(req)
            outcome[i] = LOST
            return
        yield env.timeout(response_s[i] + engage_s[i])
        busy["officer"] += response_s[i] + engage_s[i]
        officers.release(req)
        waits[i] = env.now - engage_s[i] - raised
        if alerts.true_match[i]:
            r = u[i, 4]
            outcome[i] = ARREST if r < review.p_arrest else (
                OTHER_DISPOSAL if r < review.p_arrest + review.p_other_disposal else NO_ACTION)
        else:
            outcome[i] = WRONGFUL_ARREST if u[i, 4] < review.p_wrongful_arrest else WRONGFUL_STOP

    for i in range(n):
        env.process(alert(i))
    env.run()
    assert (outcome >= 0).all(), "every alert ends in exactly one outcome"
    del duration_seconds
    return ReviewResult(outcome, busy["operator"], busy["officer"], waits)
