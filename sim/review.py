"""What happens after an alert: operators adjudicate, intervention officers stop the passer.

Picture the van and the street. The camera raises an alert while the passer keeps walking. An
operator in the van compares the probe with the watchlist image (``review_seconds``) and either
rejects the alert or confirms it to the intervention officers standing further down the street.
The passer is in reach only while inside the zone: ``zone_length_m / walking_speed`` seconds after
passing the camera. A team of officers (a pair, by default) must be free early enough to cover
the distance to the passer (``response_seconds``) before the passer walks out; otherwise the alert
is *lost*. A team that reaches the passer checks their identity (the *engagement*) and the alert
ends in exactly one outcome: arrest, other disposal or no action for a true match; a wrongful
stop, or rarely a wrongful arrest, for a false one. An arrest ties the team up for longer.

Operators and teams are simpy Resources; each alert is one simpy process that queues first for an
operator, then for a team (first come, first served), and gives up on the team at the last moment
from which it could still reach the passer. Only alerts become events: thousands in a year of
deployments, never the millions of passers.

Every random choice an alert needs is drawn up front, one row of uniforms per alert, so the same
alert meets the same luck whatever the threshold, the number of operators or the number of
officers (common random numbers): a comparison between staffing levels shows the effect of the
staffing, not of different dice.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import simpy
from scipy import special

from .config import Review

REJECTED, LOST, ARREST, OTHER_DISPOSAL, NO_ACTION, WRONGFUL_STOP, WRONGFUL_ARREST = range(7)
OUTCOMES = ("operator_rejected", "lost_alerts", "arrests", "other_disposals", "no_action",
            "wrongful_stops", "wrongful_arrests")
ENGAGED = (ARREST, OTHER_DISPOSAL, NO_ACTION, WRONGFUL_STOP, WRONGFUL_ARREST)
# columns of Alerts.uniforms: what each of an alert's own random numbers decides
U_REVIEW, U_CONFIRM, U_RESPONSE, U_ENGAGEMENT, U_OUTCOME, U_WALKING = range(6)
UNIFORMS_PER_ALERT = 6


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
class Fates:
    """What each alert would meet, drawn before the day runs: times in seconds, decisions, outcomes."""

    review_seconds: np.ndarray      # operator's time to adjudicate
    confirmed: np.ndarray           # bool: the operator would confirm it
    dwell_seconds: np.ndarray       # from the alert until the passer leaves the zone
    response_seconds: np.ndarray    # a free team's time to reach the passer
    engagement_seconds: np.ndarray  # team busy after reaching the passer (longer for an arrest)
    outcome: np.ndarray             # the outcome if a team reaches the passer


@dataclass(frozen=True)
class ReviewResult:
    """One deployment's review: per-alert outcome and times (nan where a stage never happened)."""

    outcome: np.ndarray              # one code per alert
    operator_wait: np.ndarray        # alert raised -> operator starts (nan: no operator review)
    operator_seconds: np.ndarray     # operator time spent on the alert (0: not reviewed)
    officer_wait: np.ndarray         # confirmed -> team sets off or alert given up (nan: not confirmed)
    officer_seconds: np.ndarray      # officer-seconds spent on the alert (team time x team size)
    to_engagement: np.ndarray        # alert raised -> officers reach the passer (nan: not engaged)
    operator_on_duty_seconds: float  # operators x (deployment, extended until the last review ends)
    officer_on_duty_seconds: float   # officers x (deployment, extended until the last engagement ends)

    @property
    def operator_busy_seconds(self) -> float:
        return float(self.operator_seconds.sum())

    @property
    def officer_busy_seconds(self) -> float:
        return float(self.officer_seconds.sum())


def gamma_quantile(mean: float, cv: float, u: np.ndarray) -> np.ndarray:
    """Gamma-distributed durations with this mean and coefficient of variation, at quantiles ``u``.

    Drawn by inversion so that one uniform per alert fixes its duration under any setting: a
    longer mean stretches every alert's time, never reshuffles who is slow.
    """
    if mean <= 0:
        return np.zeros_like(u)
    if cv <= 0:
        return np.full_like(u, mean)
    shape = 1.0 / cv ** 2
    return special.gammaincinv(shape, u) * (mean / shape)


def confirm_probability(review: Review, alerts: Alerts) -> np.ndarray:
    """P(operator confirms) per alert; with automation bias it rises with the score's margin."""
    base = np.where(alerts.true_match, review.p_confirm_true, review.p_confirm_false)
    if review.automation_bias == 0.0:
        return base
    # automation bias: log-odds of confirming rise by `automation_bias` per 0.1 of score margin
    with np.errstate(divide="ignore"):
        logit = special.logit(base) + review.automation_bias * alerts.margin / 0.1
    return special.expit(logit)


def draw_fates(alerts: Alerts, review: Review) -> Fates:
    """Turn each alert's uniforms into its review time, decision, dwell, response and outcome."""
    u = alerts.uniforms
    confirmed = u[:, U_CONFIRM] < confirm_probability(review, alerts)
    speed = gamma_quantile(review.walking_speed_m_s, review.walking_speed_cv, u[:, U_WALKING])
    dwell = review.zone_length_m / np.maximum(speed, 1e-9)
    r = u[:, U_OUTCOME]
    disposed = review.p_arrest + review.p_other_disposal
    true_outcome = np.where(r < review.p_arrest, ARREST, np.where(r < disposed, OTHER_DISPOSAL, NO_ACTION))
    false_outcome = np.where(r < review.p_wrongful_arrest, WRONGFUL_ARREST, WRONGFUL_STOP)
    outcome = np.where(alerts.true_match, true_outcome, false_outcome).astype(np.int64)
    arrested = (outcome == ARREST) | (outcome == WRONGFUL_ARREST)
    check = gamma_quantile(review.engagement_minutes_mean * 60.0, review.engagement_minutes_cv,
                           u[:, U_ENGAGEMENT])
    custody = gamma_quantile(review.arrest_minutes_mean * 60.0, review.engagement_minutes_cv,
                             u[:, U_ENGAGEMENT])
    return Fates(
        review_seconds=gamma_quantile(review.review_seconds_mean, review.review_seconds_cv, u[:, U_REVIEW]),
        confirmed=confirmed,
        dwell_seconds=dwell,
        response_seconds=gamma_quantile(review.response_seconds_mean, review.response_seconds_cv,
                                        u[:, U_RESPONSE]),
        engagement_seconds=np.where(arrested, custody, check),
        outcome=outcome,
    )


class ReviewDay:
    """One deployment day of review: a simpy environment, its operators and teams, one process per alert.

    Build it, optionally add observer processes to ``env`` (tests sample the operator queue this
    way), then ``run()``.
    """

    def __init__(self, alerts: Alerts, review: Review, duration_seconds: float = 0.0):
        n = len(alerts)
        self.alerts = alerts
        self.review = review
        self.duration_seconds = float(duration_seconds)
        self.fates = draw_fates(alerts, review)
        self.env = simpy.Environment()
        self.operators = simpy.Resource(self.env, capacity=max(review.operators, 1))
        self.team_size = review.officers_per_engagement
        n_teams = review.officers // self.team_size
        self.teams = simpy.Resource(self.env, capacity=n_teams) if n_teams > 0 else None
        self.outcome = np.full(n, -1, dtype=np.int64)
        self.operator_wait = np.full(n, np.nan)
        self.operator_seconds = np.zeros(n)
        self.officer_wait = np.full(n, np.nan)
        self.officer_seconds = np.zeros(n)
        self.to_engagement = np.full(n, np.nan)
        self._last_review_end = 0.0
        self._last_engagement_end = 0.0
        for i in range(n):
            self.env.process(self._alert(i))

    def _alert(self, i: int) -> Generator[simpy.Event, object, None]:
        env, fate = self.env, self.fates
        yield env.timeout(float(self.alerts.seconds[i]))
        raised = env.now
        leaves = raised + fate.dwell_seconds[i]
        if self.review.require_operator_review:
            with self.operators.request() as req:
                yield req
                self.operator_wait[i] = env.now - raised
                yield env.timeout(fate.review_seconds[i])
                self.operator_seconds[i] = fate.review_seconds[i]
                self._last_review_end = max(self._last_review_end, env.now)
            if not fate.confirmed[i]:
                self.outcome[i] = REJECTED
                return
        confirmed = env.now
        # the last moment a team can set off and still reach the passer inside the zone
        latest = leaves - fate.response_seconds[i]
        if self.teams is None or confirmed > latest:
            self.officer_wait[i] = 0.0
            self.outcome[i] = LOST
            return
        with self.teams.request() as req:
            if not req.triggered:   # every team busy: wait, but only until the passer is out of reach
                yield req | env.timeout(latest - confirmed)
            self.officer_wait[i] = env.now - confirmed
            if not req.triggered:
                self.outcome[i] = LOST   # the passer walked out of reach while every team was busy
                return
            self.to_engagement[i] = env.now + fate.response_seconds[i] - raised
            team_seconds = fate.response_seconds[i] + fate.engagement_seconds[i]
            yield env.timeout(team_seconds)
            self.officer_seconds[i] = team_seconds * self.team_size
            self._last_engagement_end = max(self._last_engagement_end, env.now)
        self.outcome[i] = fate.outcome[i]

    def run(self) -> ReviewResult:
        """Run the day until every alert has its outcome."""
        self.env.run()
        assert (self.outcome >= 0).all(), "every alert ends in exactly one outcome"
        rev = self.review
        operators = rev.operators if rev.require_operator_review else 0
        return ReviewResult(
            outcome=self.outcome, operator_wait=self.operator_wait, operator_seconds=self.operator_seconds,
            officer_wait=self.officer_wait, officer_seconds=self.officer_seconds,
            to_engagement=self.to_engagement,
            operator_on_duty_seconds=operators * max(self.duration_seconds, self._last_review_end),
            officer_on_duty_seconds=rev.officers * max(self.duration_seconds, self._last_engagement_end),
        )


def review_alerts(alerts: Alerts, review: Review, duration_seconds: float) -> ReviewResult:
    """Run one deployment's alerts through operators and officers; one outcome per alert."""
    return ReviewDay(alerts, review, duration_seconds).run()
