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

Operators and teams are pools of staff on simpy events (``Staff``, first come first served like
a ``simpy.Resource``). Each day's camera raises its alerts in time order; an
alert queues first for an operator, then for a team (first come, first served), and gives up on
the team at the last moment from which it could still reach the passer. An alert that finds the
staff free takes them at once (its review and engagement are timeouts whose callbacks release
them); only an alert that must wait becomes a simpy process. Only alerts become events: thousands
in a year of deployments, never the millions of passers; all the days of a replicate run in one
environment (``ReviewDays``), each with its own staff.

Every random choice an alert needs is drawn up front, one row of uniforms per alert, so the same
alert meets the same luck whatever the threshold, the number of operators or the number of
officers (common random numbers): a comparison between staffing levels shows the effect of the
staffing, not of different dice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from heapq import heappush

import numpy as np
import simpy
from scipy import special
from simpy.events import NORMAL

from .config import CALIBRATED, Review

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


def gamma_quantiles(means: tuple[float, ...], cv: float, u: np.ndarray) -> list[np.ndarray]:
    """``gamma_quantile`` for several means with one cv at the same quantiles: one inversion."""
    if cv <= 0 or len(u) == 0:
        return [gamma_quantile(mean, cv, u) for mean in means]
    shape = 1.0 / cv ** 2
    unit = special.gammaincinv(shape, u)
    return [unit * (mean / shape) if mean > 0 else np.zeros_like(u) for mean in means]


def confirm_probability(review: Review, alerts: Alerts) -> np.ndarray:
    """P(operator confirms) per alert; with automation bias it rises with the score's margin."""
    base = np.where(alerts.true_match, review.p_confirm_true, review.p_confirm_false)
    if review.automation_bias == 0.0:
        return base
    # automation bias: log-odds of confirming rise by `automation_bias` per 0.1 of score margin
    with np.errstate(divide="ignore"):
        logit = special.logit(base) + review.automation_bias * alerts.margin / 0.1
    return special.expit(logit)


def arrest_probability(review: Review) -> float:
    """P(arrest | a true match engaged); a calibrated one must have been drawn first."""
    if review.p_arrest == CALIBRATED:
        raise ValueError("review.p_arrest comes from the posterior; resolve the experiment for a "
                         "replicate first (sim.draws.resolve)")
    return float(review.p_arrest)


def draw_fates(alerts: Alerts, review: Review) -> Fates:
    """Turn each alert's uniforms into its review time, decision, dwell, response and outcome.

    Dwell, response and engagement times are only needed by alerts that can reach the teams; an
    alert the operator rejects has nan there (with automation bias the decision depends on the
    threshold, so every alert gets them).
    """
    u = alerts.uniforms
    confirmed = u[:, U_CONFIRM] < confirm_probability(review, alerts)
    reach = np.flatnonzero(confirmed | (not review.require_operator_review) | (review.automation_bias != 0.0))

    def at_reach(values: np.ndarray) -> np.ndarray:
        out = np.full(len(u), np.nan)
        out[reach] = values
        return out

    ur = u[reach]
    speed = gamma_quantile(review.walking_speed_m_s, review.walking_speed_cv, ur[:, U_WALKING])
    r = u[:, U_OUTCOME]
    p_arrest = arrest_probability(review)
    disposed = p_arrest + review.p_other_disposal
    true_outcome = np.where(r < p_arrest, ARREST, np.where(r < disposed, OTHER_DISPOSAL, NO_ACTION))
    false_outcome = np.where(r < review.p_wrongful_arrest, WRONGFUL_ARREST, WRONGFUL_STOP)
    outcome = np.where(alerts.true_match, true_outcome, false_outcome).astype(np.int64)
    arrested = ((outcome == ARREST) | (outcome == WRONGFUL_ARREST))[reach]
    # a check and a custody share their cv and their uniform: one quantile, two means
    check, custody = gamma_quantiles(
        (review.engagement_minutes_mean * 60.0, review.arrest_minutes_mean * 60.0),
        review.engagement_minutes_cv, ur[:, U_ENGAGEMENT])
    return Fates(
        review_seconds=gamma_quantile(review.review_seconds_mean, review.review_seconds_cv, u[:, U_REVIEW]),
        confirmed=confirmed,
        dwell_seconds=at_reach(review.zone_length_m / np.maximum(speed, 1e-9)),
        response_seconds=at_reach(gamma_quantile(review.response_seconds_mean, review.response_seconds_cv,
                                                 ur[:, U_RESPONSE])),
        engagement_seconds=at_reach(np.where(arrested, custody, check)),
        outcome=outcome,
    )


class Staff:
    """Interchangeable staff (a day's operators, or its teams), first come, first served.

    ``simpy.Resource``'s discipline on simpy events, without its bookkeeping: someone free is
    taken at once, with no event; a request that finds everyone busy is a simpy event in
    ``queue``, succeeded when a member is handed over at a release, or withdrawn by ``give_up``.
    (A Resource's request and release cost two events and ~5 us even when nobody waits.)
    """

    def __init__(self, env: simpy.Environment, capacity: int):
        self.env = env
        self.capacity = capacity
        self.free = capacity
        self.queue: deque[simpy.Event] = deque()

    def take(self) -> bool:
        """Take a free member if there is one (nobody queues while someone is free)."""
        if self.free > 0:
            self.free -= 1
            return True
        return False

    def wait(self) -> simpy.Event:
        """Join the queue: the event succeeds when a member is handed over."""
        ev = self.env.event()
        self.queue.append(ev)
        return ev

    def give_up(self, ev: simpy.Event) -> None:
        self.queue.remove(ev)

    def release(self) -> None:
        if self.queue:
            self.queue.popleft().succeed()
        else:
            self.free += 1


class _Start(simpy.Event):
    """An event already triggered with ``value``, for ``env.schedule``: what a process's start is."""

    def __init__(self, env: simpy.Environment, value: object, callback):
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True


class _Timer(simpy.Event):
    """``simpy.Timeout(env, delay, value)`` with its one callback given: scheduled the same way (the
    same priority, in the same order), without the delay check and the list append a Timeout
    and ``callbacks.append`` cost. Every alert makes two or three of these."""

    def __init__(self, env: simpy.Environment, delay: float, value: object, callback):
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True
        # env.schedule(self, NORMAL, delay), inlined on simpy 4's queue: the same heap entry and
        # event id (tests/test_review.py checks the order against simpy.Timeout's)
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


class ReviewDays:
    """Several deployment days of review in one simpy environment; each day has its own staff.

    Alert ``i`` belongs to day ``day[i]``; ``durations[d]`` is day ``d``'s length. Days share
    nothing but the event queue, so running them side by side gives each day exactly what it
    would get alone, without building an environment per day.

    Each day with alerts has a camera process that raises its alerts in time order. An alert
    that finds an operator (then a team) free takes it at once: its review and its engagement
    are timeouts whose callbacks release the resource. Only an alert that must queue becomes a
    process of its own, waiting for the operator, or for a team until the last moment from which
    it could still reach the passer. ``fresh[i]`` records whether alert ``i`` found its day idle
    (nothing raised before it can touch anything after it), ``waited[i]`` whether it found the
    staff it needed busy. ``interacted[d]`` records whether any alert of day ``d`` ever
    found its staff busy: if none did, every alert's fate is its own, whatever the other alerts.
    """

    def __init__(self, alerts: Alerts, review: Review, day: np.ndarray, durations: np.ndarray,
                 fates: Fates | None = None):
        n = len(alerts)
        self.alerts = alerts
        self.review = review
        self.day = np.asarray(day, dtype=np.int64)
        self.durations = np.asarray(durations, dtype=float)
        self.fates = draw_fates(alerts, review) if fates is None else fates
        self.env = simpy.Environment()
        self.team_size = review.officers_per_engagement
        self.n_teams = review.officers // self.team_size
        self.outcome = np.full(n, -1, dtype=np.int64)
        self.operator_wait = np.full(n, np.nan)
        self.operator_seconds = np.zeros(n)
        self.officer_wait = np.full(n, np.nan)
        self.officer_seconds = np.zeros(n)
        self.to_engagement = np.full(n, np.nan)
        self.review_end = np.zeros(n)        # when the alert's review ended (0: none)
        self.engagement_end = np.zeros(n)    # when its team was free again (0: no engagement)
        self.interacted = np.zeros(len(self.durations), dtype=bool)
        self.fresh = np.zeros(n, dtype=bool)     # every operator and team of its day free when raised
        self.waited = np.zeros(n, dtype=bool)    # found the staff it needed busy
        self._operators: dict[int, Staff] = {}
        self._teams: dict[int, Staff | None] = {}
        self._rows: dict[int, list[int]] = {}
        # every day's alerts in time order (ties in the order given), in one sort
        order = np.lexsort((alerts.seconds, self.day))
        days, starts = np.unique(self.day[order], return_index=True)
        ends = np.append(starts[1:], n)[:len(starts)]
        seconds = alerts.seconds.astype(float).tolist()
        ordered = order.tolist()     # Python lists from here: a day costs a few slices, not arrays
        operators = max(review.operators, 1)
        for d, lo, hi in zip(days.tolist(), starts.tolist(), ends.tolist(), strict=True):
            self._operators[d] = Staff(self.env, operators)
            self._teams[d] = Staff(self.env, self.n_teams) if self.n_teams > 0 else None
            rows = ordered[lo:hi]
            self._rows[d] = rows
            # the day's camera: its first alert is a timeout from the start of the day (one that
            # comes at once waits for the run to start, as a process would), each later one is
            # scheduled by the alert before it (``_camera``)
            first = seconds[rows[0]]
            if first > 0:
                _Timer(self.env, first, (d, 0), self._camera)
            else:
                self.env.schedule(_Start(self.env, (d, 0), self._camera), simpy.events.URGENT)

    def _camera(self, event: simpy.Event) -> None:
        """Raise the day's alert the event stands for, then any due at the same moment, then set a
        timeout for the next: the loop of a camera process, run from the events' callbacks."""
        d, k = event._value
        rows, seconds, env = self._rows[d], self._seconds, self.env
        raised = self._raised
        while True:
            raised(rows[k], d)
            k += 1
            if k == len(rows):
                return
            wait = seconds[rows[k]] - env._now     # env.now without its property call
            if wait > 0:
                _Timer(env, wait, (d, k), self._camera)
                return

    def _raised(self, i: int, d: int) -> None:
        operators, teams = self._operators[d], self._teams[d]
        self._fresh[i] = (operators.free == operators.capacity
                          and (teams is None or teams.free == teams.capacity))
        if not self._require_review:
            self._confirmed(i, d)
            return
        if operators.free > 0:     # operators.take(), inlined: this runs once per alert
            operators.free -= 1
            self._operator_wait[i] = 0.0
            _Timer(self.env, self._review_s[i], i, self._review_done)
        else:
            self.interacted[d] = True
            self._waited[i] = True
            self.env.process(self._queue_for_operator(i, d, operators.wait()))

    def _review_done(self, event: simpy.Event) -> None:
        """``_reviewed`` for an alert whose review began at once: inlined, as it runs once per alert."""
        i = event._value    # the value the timer was built with (``event.value``, without its check)
        d = self._day[i]
        operators = self._operators[d]
        if operators.queue:    # operators.release(), inlined
            operators.queue.popleft().succeed()
        else:
            operators.free += 1
        self._operator_seconds[i] = self._review_s[i]
        self._review_end[i] = self.env._now
        if self._confirm[i]:
            self._confirmed(i, d)
        else:
            self._outcome[i] = REJECTED

    def _queue_for_operator(self, i: int, d: int, turn: simpy.Event) -> Generator[simpy.Event, object, None]:
        yield turn
        self._operator_wait[i] = self.env.now - self._seconds[i]
        yield self.env.timeout(self._review_s[i])
        self._reviewed(i, d)

    def _reviewed(self, i: int, d: int) -> None:
        self._operators[d].release()
        self._operator_seconds[i] = self._review_s[i]
        self._review_end[i] = self.env.now
        if not self._confirm[i]:
            self._outcome[i] = REJECTED
            return
        self._confirmed(i, d)

    def _confirmed(self, i: int, d: int) -> None:
        env = self.env
        confirmed = env._now
        latest = self._latest[i]
        teams = self._teams[d]
        if teams is None or confirmed > latest:
            self._officer_wait[i] = 0.0
            self._outcome[i] = LOST
            return
        if teams.free > 0:     # teams.take() and _engage(i, d, confirmed), inlined: once per alert
            teams.free -= 1
            self._officer_wait[i] = 0.0
            response = self._response[i]
            self._to_engagement[i] = confirmed + response - self._seconds[i]
            _Timer(env, response + self._engagement[i], i, self._released)
        else:   # every team busy: wait, but only until the passer is out of reach
            self.interacted[d] = True
            self._waited[i] = True
            self.env.process(self._queue_for_team(i, d, teams, confirmed, latest))

    def _queue_for_team(self, i: int, d: int, teams: Staff, confirmed: float, latest: float
                        ) -> Generator[simpy.Event, object, None]:
        turn = teams.wait()
        yield turn | self.env.timeout(latest - confirmed)
        if not turn.triggered:
            teams.give_up(turn)
            self._officer_wait[i] = self.env.now - confirmed
            self._outcome[i] = LOST   # the passer walked out of reach while every team was busy
            return
        self._engage(i, d, confirmed)

    def _engage(self, i: int, d: int, confirmed: float) -> None:
        now = self.env.now
        self._officer_wait[i] = now - confirmed
        self._to_engagement[i] = now + self._response[i] - self._seconds[i]
        _Timer(self.env, self._response[i] + self._engagement[i], i, self._released)

    def _released(self, event: simpy.Event) -> None:
        i = event._value
        d = self._day[i]
        self._teams[d].release()
        self._officer_seconds[i] = (self._response[i] + self._engagement[i]) * self.team_size
        self._engagement_end[i] = self.env._now
        self._outcome[i] = self._fate_outcome[i]

    OUTPUTS = ("outcome", "operator_wait", "operator_seconds", "officer_wait", "officer_seconds",
               "to_engagement", "review_end", "engagement_end", "fresh", "waited")

    def run(self) -> ReviewResult:
        """Run every day until each alert has its outcome; on-duty seconds are summed over days."""
        # the event loop reads and writes Python lists: a numpy element costs ~0.1 us a touch
        fate = self.fates
        self._seconds = self.alerts.seconds.astype(float).tolist()
        self._review_s = fate.review_seconds.tolist()
        self._confirm = fate.confirmed.tolist()
        # the last moment a team can set off and still reach the passer inside the zone
        self._latest = (self.alerts.seconds + fate.dwell_seconds - fate.response_seconds).tolist()
        self._response = fate.response_seconds.tolist()
        self._engagement = fate.engagement_seconds.tolist()
        self._fate_outcome = fate.outcome.tolist()
        self._day = self.day.tolist()
        self._require_review = self.review.require_operator_review
        for name in self.OUTPUTS:
            setattr(self, "_" + name, getattr(self, name).tolist())
        self.env.run()
        for name in self.OUTPUTS:
            setattr(self, name, np.array(getattr(self, "_" + name), dtype=getattr(self, name).dtype))
        assert (self.outcome >= 0).all(), "every alert ends in exactly one outcome"
        operator_end, officer_end = self.day_ends(np.ones(len(self.alerts), dtype=bool))
        operator_on_duty, officer_on_duty = on_duty_seconds(self.review, operator_end, officer_end)
        return ReviewResult(
            outcome=self.outcome, operator_wait=self.operator_wait, operator_seconds=self.operator_seconds,
            officer_wait=self.officer_wait, officer_seconds=self.officer_seconds,
            to_engagement=self.to_engagement,
            operator_on_duty_seconds=operator_on_duty, officer_on_duty_seconds=officer_on_duty,
        )

    def day_ends(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each day's end of duty for operators and officers, counting only alerts ``keep``."""
        return shift_ends(self.durations, self.day[keep], self.review_end[keep], self.engagement_end[keep])


def shift_ends(durations: np.ndarray, day: np.ndarray, review_end: np.ndarray, engagement_end: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per day: the deployment's end, extended until its last review and its last engagement end."""
    operator_end = np.array(durations, dtype=float)
    officer_end = operator_end.copy()
    np.maximum.at(operator_end, day, review_end)
    np.maximum.at(officer_end, day, engagement_end)
    return operator_end, officer_end


def on_duty_seconds(review: Review, operator_end: np.ndarray, officer_end: np.ndarray) -> tuple[float, float]:
    """(operator, officer) seconds on duty over the days whose shifts end at these times."""
    operators = review.operators if review.require_operator_review else 0
    return float(operators * operator_end.sum()), float(review.officers * officer_end.sum())


class ReviewDay(ReviewDays):
    """One deployment day of review: a simpy environment, its operators and teams.

    Build it, optionally add observer processes to ``env`` (tests sample the operator queue this
    way), then ``run()``.
    """

    def __init__(self, alerts: Alerts, review: Review, duration_seconds: float = 0.0,
                 fates: Fates | None = None):
        super().__init__(alerts, review, np.zeros(len(alerts), dtype=np.int64),
                         np.array([float(duration_seconds)]), fates)
        self.duration_seconds = float(duration_seconds)
        if 0 not in self._operators:
            self._operators[0] = Staff(self.env, max(review.operators, 1))
            self._teams[0] = Staff(self.env, self.n_teams) if self.n_teams > 0 else None

    @property
    def operators(self) -> Staff:
        return self._operators[0]

    @property
    def teams(self) -> Staff | None:
        return self._teams[0]


def review_alerts(alerts: Alerts, review: Review, duration_seconds: float,
                  fates: Fates | None = None) -> ReviewResult:
    """Run one deployment's alerts through operators and officers; one outcome per alert."""
    return ReviewDay(alerts, review, duration_seconds, fates).run()
