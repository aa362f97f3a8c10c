"""One replicate of one scenario: crowd -> search -> review -> counts.

A replicate takes one draw of the calibrated posterior (``sim.draws``), then draws the programme's
sites, one watchlist, and for each deployment its crowd, the
passers whose best candidate clears the search floor, and their fates in review. Every draw comes
from a stream keyed by (replicate, deployment, stage) under the experiment's root seed, never by
the sweep cell: all cells of a sweep meet the same passers (common random numbers), and a cell's
numbers do not depend on which other cells run, in what order, or on how many workers.

Passers are compared with every threshold of interest at once: an alert at threshold T is a
candidate whose best score is at or above T, so raising T can only remove alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np

from .config import Experiment, Review
from .draws import resolve
from .groups import GROUP_NAMES, group_names
from .review import (
    ARREST,
    ENGAGED,
    LOST,
    NO_ACTION,
    OTHER_DISPOSAL,
    REJECTED,
    U_CONFIRM,
    UNIFORMS_PER_ALERT,
    WRONGFUL_ARREST,
    WRONGFUL_STOP,
    Alerts,
    Fates,
    ReviewDays,
    confirm_probability,
    draw_fates,
    on_duty_seconds,
    shift_ends,
)
from .scores import to_latent, to_vendor
from .search import SearchTable, prepare_search, search_deployments
from .seeds import STAGE_REVIEW, stream

COUNT_METRICS = (
    "passers", "faces", "watchlisted_passers", "nonmated_passers", "alerts", "true_alerts",
    "false_alerts", "nonmated_false_alerts", "expected_false_alerts", "expected_true_alerts",
    "operator_rejected", "lost_alerts", "engagements", "arrests", "other_disposals", "no_action",
    "wrongful_stops", "wrongful_arrests", "lost_true_alerts",
    # review totals per group, in seconds (a group's mean wait = total / its alerts; see docs/review.md)
    "operator_busy_seconds", "officer_busy_seconds", "operator_wait_seconds_total",
    "officer_wait_seconds_total", "seconds_to_engagement_total",
)
# rate metric -> (numerator count, denominator count)
RATE_METRICS = {
    "false_alert_rate": ("false_alerts", "faces"),
    "fpir": ("nonmated_false_alerts", "nonmated_passers"),
    "tpir": ("true_alerts", "watchlisted_passers"),
    "ppv": ("true_alerts", "alerts"),
}
PROGRAMME_METRICS = ("deployments", "officer_utilisation", "operator_utilisation",
                     "mean_seconds_to_engagement", "implied_threshold",
                     "mean_operator_wait_seconds", "mean_officer_wait_seconds",
                     # from the exact expected false alerts given the crowd and the draw
                     "black_share_of_false_alerts", "black_white_false_alert_ratio")
# Thresholds searched for the implied threshold: from 0.30, below any operating point a force
# has published (NPL tested 0.56-0.64; the Met uses 0.60-0.64), to 0.999, in steps of 0.0005 on
# the vendor scale, the expected rate interpolated log-linearly between them
IMPLIED_THRESHOLD_GRID = (0.30, 0.999, 1400)


# what ``simulate_replicate(..., by_deployment=True)`` counts per deployment, besides its passers
# and recorded faces
DEPLOYMENT_METRICS = ("alerts", "true_alerts", "false_alerts", "operator_rejected", "lost_alerts",
                      "engagements", "arrests", "other_disposals", "no_action", "wrongful_stops",
                      "wrongful_arrests")


def simulate_replicate(experiment: Experiment, replicate: int, thresholds: Sequence[float],
                       seed: int | None = None, by_deployment: bool = False
                       ) -> dict[float, dict[str, np.ndarray | float]]:
    """Simulate one replicate; for each threshold, metrics by group (arrays, in the order of
    ``"groups"``, their names) and programme-wide (the Black/White figures only where the passer
    groups include Black and White passers: not for declared groups).

    The replicate runs with its own posterior draw in place of every ``"calibrated"`` setting
    (``sim.draws.resolve``). A deployment with its own threshold alerts at it, whatever the
    threshold asked for (a sweep over ``matcher.threshold`` has already dropped them: see
    ``Experiment.with_values``); one with its own list size searches a list of that size.
    ``by_deployment`` adds, per threshold, ``"deployments"``: each deployment's passers, recorded
    faces and ``DEPLOYMENT_METRICS``, arrays in programme order.
    """
    seed = experiment.experiment.seed if seed is None else seed
    experiment = resolve(experiment, replicate, seed)
    own = [d.threshold for d in experiment.programme.deployments if d.threshold is not None]
    if min([*thresholds, *own]) < experiment.matcher.score_floor:
        raise ValueError(f"thresholds below matcher.score_floor ({experiment.matcher.score_floor}) "
                         "would miss passers the search never scored")
    search = search_deployments(experiment, prepare_search(experiment, replicate, seed), replicate, seed)
    n_groups = len(search.setup.model.groups)
    sites, table, cands = search.setup.sites, search.setup.table, search.flat
    # each deployment's own latent threshold (nan: the one asked for)
    own_latent = np.array([np.nan if s.threshold is None else float(to_latent(s.threshold)) for s in sites])
    own_vendor = np.array([np.nan if s.threshold is None else s.threshold for s in sites])
    uniform = not np.isfinite(own_latent).any() and search.setup.uniform_lists
    review = experiment.review
    n = len(cands.best)
    deployment = np.repeat(np.arange(len(sites)), np.diff(search.bounds))
    durations = np.array([site.duration_seconds for site in sites])
    # every candidate's review draws, one row each, deployment by deployment in arrival order,
    # from the replicate's review stream (sim.seeds); their fates are drawn once for all thresholds
    uniforms = stream(seed, replicate, 0, STAGE_REVIEW).random((n, UNIFORMS_PER_ALERT))
    candidates = Alerts(seconds=cands.seconds, true_match=cands.true_match, margin=np.zeros(n),
                        uniforms=uniforms)
    fates = draw_fates(candidates, review)
    nonmated_cells, mated_cells = search.nonmated_cells, search.mated_cells
    nonmated = sum(nonmated_cells.values(), np.zeros(n_groups, np.int64))
    latent = np.array([float(to_latent(t)) for t in thresholds])
    if uniform:
        implied = _implied_threshold(experiment, table, [(1.0, nonmated_cells)], search.faces.sum())
        exp_false, exp_true = _expectations(table, latent, nonmated_cells, mated_cells, n_groups)
    else:
        implied, exp_false, exp_true = _class_expectations(experiment, search, latent, own_latent, n_groups)
    fixed = {"passers": search.passers.astype(float), "faces": search.faces.astype(float),
             "watchlisted_passers": search.watchlisted.astype(float),
             "nonmated_passers": nonmated.astype(float)}
    shared = review.automation_bias == 0.0
    groups = search.setup.model.groups
    black = np.array([g.ethnicity == "black" for g in groups])
    white = np.array([g.ethnicity == "white" for g in groups])
    # the Black/White figures are defined only where both groups are passer groups
    black_white = bool(black.any() and white.any())
    # Per candidate, the outcome of its deployment's latest review. Thresholds run from the lowest
    # up, so each alert set is a subset of the one before. A deployment is reviewed again only if
    # its alert set changed and, in its latest review, some alert found the staff busy: when none
    # did, every alert's fate was its own, and dropping alerts changes nothing for the others.
    # Even then only from the last moment the day was idle before the first dropped alert.
    state = _ReviewState(cands, len(sites))
    results: dict[float, dict[str, np.ndarray | float]] = {}
    for j in np.argsort(latent, kind="stable"):
        threshold, t = float(thresholds[j]), latent[j]
        if np.isfinite(own_latent).any():
            hit = cands.best >= np.where(np.isfinite(own_latent), own_latent, t)[deployment]
        else:
            hit = cands.best >= t
        per_day = np.bincount(deployment[hit], minlength=len(sites))
        if shared:
            changed = state.reviewed_alerts != per_day
            redo = (per_day > 0) & changed & (state.interacted | (state.reviewed_alerts < 0))
            day_fates = fates
        else:
            redo = per_day > 0
            at = np.where(np.isfinite(own_vendor), own_vendor, threshold)[deployment]
            margin = to_vendor(cands.best) - at
            confirm = confirm_probability(review, Alerts(cands.seconds, cands.true_match, margin, uniforms))
            day_fates = replace(fates, confirmed=uniforms[:, U_CONFIRM] < confirm)
        if redo.any():
            again = state.first_to_review(hit, deployment, redo) if shared else hit & redo[deployment]
            state.update(np.flatnonzero(again), deployment, durations, redo, per_day, candidates, review,
                         day_fates, hit)
        counts = _tally(cands, hit, state, n_groups)
        counts.update(fixed)
        counts["expected_false_alerts"], counts["expected_true_alerts"] = exp_false[j], exp_true[j]
        operator_on_duty, officer_on_duty = on_duty_seconds(
            review, *shift_ends(durations, deployment[hit], state.review_end[hit], state.engagement_end[hit]))
        programme = {
            "deployments": float(len(sites)),
            "officer_utilisation": (float(state.officer_seconds[hit].sum()) / officer_on_duty
                                    if officer_on_duty else 0.0),
            "operator_utilisation": (float(state.operator_seconds[hit].sum()) / operator_on_duty
                                     if operator_on_duty else 0.0),
            "mean_seconds_to_engagement": _mean(state.to_engagement[hit]),
            "mean_operator_wait_seconds": _mean(state.operator_wait[hit]),
            "mean_officer_wait_seconds": _mean(state.officer_wait[hit]),
            "implied_threshold": implied,
            **(_black_white(exp_false[j], fixed["faces"], black, white) if black_white else {}),
        }
        results[threshold] = {"counts": counts, "programme": programme, "groups": group_names(groups)}
        if by_deployment:
            results[threshold]["deployments"] = _per_deployment(search, state, hit, deployment)
    return {float(t): results[float(t)] for t in thresholds}


def _per_deployment(search, state: _ReviewState, hit: np.ndarray, deployment: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """Each deployment's passers, recorded faces and ``DEPLOYMENT_METRICS`` at one alert set."""
    n_sites = len(search.sites)
    rows = np.flatnonzero(hit)
    out = {"passers": search.site_passers.astype(float), "faces": search.site_faces.astype(float)}
    for name in DEPLOYMENT_METRICS:
        k = COUNTED.index(name)
        out[name] = np.bincount(deployment[rows], weights=state.columns[rows, k], minlength=n_sites)
    return out


def _class_expectations(experiment: Experiment, search, latent: np.ndarray, own_latent: np.ndarray,
                        n_groups: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Implied threshold and exact expected false and true alerts (T, G) when deployments set their
    own threshold or list size: the crowd of each class of deployments alike in both, at its own."""
    table = search.setup.table
    scales = search.setup.size_scales
    own = np.where(np.isfinite(own_latent), own_latent, np.inf)   # inf: no threshold of its own
    keys = sorted(set(zip(own.tolist(), scales.tolist(), strict=True)))
    exp_false = np.zeros((len(latent), n_groups))
    exp_true = np.zeros((len(latent), n_groups))
    scaled_cells = []
    for own_t, scale in keys:
        members = (own == own_t) & (scales == scale)
        nonmated = search.site_nonmated[members].sum(axis=0)                    # (G, M)
        nonmated_cells: dict[float, np.ndarray] = {}
        for m, k in enumerate(search.looks):
            nonmated_cells[float(k)] = nonmated_cells.get(float(k), 0) + nonmated[:, m]
        on_site = members[search.mated_site]
        mated_cells = {float(k): np.bincount(search.mated_group[on_site & (search.mated_looks == k)],
                                             minlength=n_groups).astype(np.int64)
                       for k in np.unique(search.mated_looks[on_site])}
        t = latent if not np.isfinite(own_t) else np.full(len(latent), own_t)
        f, tr = _expectations(table, t, nonmated_cells, mated_cells, n_groups, scale)
        exp_false += f
        exp_true += tr
        scaled_cells.append((scale, nonmated_cells))
    implied = _implied_threshold(experiment, table, scaled_cells, search.faces.sum())
    return implied, exp_false, exp_true


class _ReviewState:
    """Per candidate, what its deployment's latest review gave it; per deployment, that review's size."""

    FIELDS = ("outcome", "operator_wait", "operator_seconds", "officer_wait", "officer_seconds",
              "to_engagement", "review_end", "engagement_end", "fresh", "waited")

    def __init__(self, cands, n_days: int):
        n = len(cands.best)
        self.outcome = np.full(n, -1, dtype=np.int64)
        for name in self.FIELDS[1:-2]:
            setattr(self, name, np.full(n, np.nan))
        self.fresh = np.zeros(n, dtype=bool)
        self.waited = np.zeros(n, dtype=bool)
        self.reviewed = np.zeros(n, dtype=bool)      # in its deployment's latest review
        self.reviewed_alerts = np.full(n_days, -1)      # -1: never reviewed
        self.interacted = np.zeros(n_days, dtype=bool)
        # per candidate, what it adds to each of COUNTED if it alerts (the review's columns are
        # filled in as deployments are reviewed)
        self.columns = np.zeros((n, len(COUNTED)))
        self.columns[:, :4] = np.stack([np.ones(n), cands.true_match, ~cands.true_match, ~cands.mated],
                                       axis=1)
        self.true_match = cands.true_match

    def first_to_review(self, hit: np.ndarray, deployment: np.ndarray, redo: np.ndarray) -> np.ndarray:
        """Per candidate: whether a new review of the deployments ``redo`` at alert set ``hit`` must
        simulate it again.

        Candidates are in arrival order within a deployment. Before the first alert the new set
        drops, the day runs as it did; from the last alert at or before it that found the day idle
        (the first of a day always does), nothing earlier can reach it, so the day is simulated
        again from there, from idle, and kept as it was before.
        """
        n = len(hit)
        index = np.arange(n)
        start = np.zeros(len(redo), dtype=np.int64)           # never reviewed: the whole day
        removed = np.flatnonzero(self.reviewed & ~hit & redo[deployment])
        if removed.size:
            days, first = np.unique(deployment[removed], return_index=True)
            last_fresh = np.maximum.accumulate(np.where(self.fresh & self.reviewed, index, 0))
            start[days] = last_fresh[removed[first]]
        return hit & redo[deployment] & (index >= start[deployment])

    def update(self, rows: np.ndarray, deployment: np.ndarray, durations: np.ndarray, redo: np.ndarray,
               per_day: np.ndarray, candidates: Alerts, review: Review, fates: Fates,
               hit: np.ndarray) -> None:
        """Review the alerts ``rows`` (of the deployments ``redo``, whose alert set is now ``hit``)
        in one simpy environment."""
        alerts = Alerts(candidates.seconds[rows], candidates.true_match[rows], candidates.margin[rows],
                        candidates.uniforms[rows])
        days = ReviewDays(alerts, review, deployment[rows], durations, _take(fates, rows))
        days.run()
        for name in self.FIELDS:
            getattr(self, name)[rows] = getattr(days, name)
        out = days.outcome
        review_columns = [out == code for _, code in OUTCOME_METRICS]
        review_columns += [np.isin(out, ENGAGED), (out == LOST) & self.true_match[rows]]
        review_columns += [np.nan_to_num(getattr(days, name)) for _, name in TIME_METRICS]
        self.columns[rows, 4:] = np.stack(review_columns, axis=1)
        self.reviewed_alerts[redo] = per_day[redo]
        in_redo = redo[deployment]
        self.reviewed[in_redo] = hit[in_redo]
        waited = np.bincount(deployment[self.reviewed & self.waited], minlength=len(redo)) > 0
        self.interacted[redo] = waited[redo]


def _take(fates: Fates, rows: np.ndarray) -> Fates:
    return Fates(*(getattr(fates, f.name)[rows] for f in fields(Fates)))


OUTCOME_METRICS = (("operator_rejected", REJECTED), ("lost_alerts", LOST), ("arrests", ARREST),
                   ("other_disposals", OTHER_DISPOSAL), ("no_action", NO_ACTION),
                   ("wrongful_stops", WRONGFUL_STOP), ("wrongful_arrests", WRONGFUL_ARREST))
TIME_METRICS = (("operator_busy_seconds", "operator_seconds"),
                ("officer_busy_seconds", "officer_seconds"),
                ("operator_wait_seconds_total", "operator_wait"),
                ("officer_wait_seconds_total", "officer_wait"),
                ("seconds_to_engagement_total", "to_engagement"))


COUNTED = (["alerts", "true_alerts", "false_alerts", "nonmated_false_alerts"]
           + [name for name, _ in OUTCOME_METRICS] + ["engagements", "lost_true_alerts"]
           + [name for name, _ in TIME_METRICS])


def _tally(cands, hit: np.ndarray, state: _ReviewState, n_groups: int) -> dict[str, np.ndarray]:
    """Alert and outcome counts per group over all deployments at one threshold: one matrix
    product of the alerts' group indicators with the candidates' columns of counts."""
    rows = np.flatnonzero(hit)
    alerted = np.zeros((n_groups, len(rows)))
    alerted[cands.group[rows], np.arange(len(rows))] = 1.0
    by_group = alerted @ state.columns[rows]
    counts = {name: np.zeros(n_groups) for name in COUNT_METRICS}
    counts.update({name: by_group[:, k] for k, name in enumerate(COUNTED)})
    return counts


def _black_white(expected_false: np.ndarray, faces: np.ndarray, black: np.ndarray,
                 white: np.ndarray) -> dict[str, float]:
    """Black passers' share of the expected false alerts, and their expected false alerts per face
    over White passers' (nan where undefined)."""
    total = float(expected_false.sum())
    b, w = float(expected_false[black].sum()), float(expected_false[white].sum())
    fb, fw = float(faces[black].sum()), float(faces[white].sum())
    ratio = (b / fb) / (w / fw) if fb > 0 and fw > 0 and w > 0 else float("nan")
    return {"black_share_of_false_alerts": b / total if total > 0 else float("nan"),
            "black_white_false_alert_ratio": ratio}


def _mean(values: np.ndarray) -> float:
    """The mean over the alerts the stage happened to (nan marks one it never reached); nan if none."""
    reached = values[np.isfinite(values)]
    return float(reached.mean()) if reached.size else float("nan")


def _expectations(table: SearchTable, t: np.ndarray, nonmated_cells: dict[float, np.ndarray],
                  mated_cells: dict[float, np.ndarray], n_groups: int, scale: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Exact expected false and true alerts per group at latent thresholds ``t``, shape (T, G),
    given the crowd that was drawn (searching a list ``scale`` times the table's)."""
    exp_false = np.zeros((len(t), n_groups))
    exp_true = np.zeros((len(t), n_groups))
    for k, counts in nonmated_cells.items():
        for g in np.flatnonzero(counts):
            exp_false[:, g] += counts[g] * table.impostor_sf(int(g), t, k * scale if scale != 1.0 else k)
    for k, counts in mated_cells.items():
        for g in np.flatnonzero(counts):
            p_true, p_false = (table.mated_alert_curves(int(g), t, k) if scale == 1.0
                               else table.mated_alert_curves(int(g), t, k, scale))
            exp_true[:, g] += counts[g] * p_true
            exp_false[:, g] += counts[g] * p_false
    return exp_false, exp_true


def _implied_threshold(experiment: Experiment, table: SearchTable, scaled_cells, faces: float) -> float:
    """The threshold at which this crowd's expected false alerts per reported face match the report.

    ``scaled_cells``: (list size over the table's, non-watchlisted passers per looks and group)."""
    cmp_ = experiment.comparison
    if cmp_ is None or faces <= 0:
        return float("nan")
    target = cmp_.false_alerts / cmp_.faces
    grid = np.linspace(*IMPLIED_THRESHOLD_GRID)
    lat = to_latent(grid)
    expected = np.zeros_like(grid)
    for scale, nonmated_cells in scaled_cells:
        for k, counts in nonmated_cells.items():
            for g in np.flatnonzero(counts):
                expected += counts[g] * table.impostor_sf(int(g), lat, k * scale if scale != 1.0 else k)
    rate = expected / faces
    above = rate <= target
    if not above.any():
        return float("nan")
    i = int(np.argmax(above))
    if i == 0:
        return float(grid[0])
    # rates fall log-linearly between grid points
    r0, r1 = np.log(max(rate[i - 1], 1e-300)), np.log(max(rate[i], 1e-300))
    frac = (np.log(target) - r0) / (r1 - r0) if r1 != r0 else 0.0
    return float(grid[i - 1] + frac * (grid[i] - grid[i - 1]))


def ratio(num: float, den: float) -> float:
    """A rate of two counts; NaN where there is nothing to divide by."""
    return num / den if den > 0 else float("nan")


def unit_rows(cell: int, replicate: int, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Tidy rows for one cell and replicate from ``simulate_replicate``'s output at one threshold."""
    counts: dict[str, np.ndarray] = result["counts"]
    names = result.get("groups", GROUP_NAMES)
    rows: list[dict[str, Any]] = []
    for gi, group in enumerate(["all", *names]):
        def value(metric: str, gi: int = gi) -> float:
            arr = counts[metric]
            return float(arr.sum()) if gi == 0 else float(arr[gi - 1])

        for metric in COUNT_METRICS:
            rows.append({"cell": cell, "replicate": replicate, "group": group, "metric": metric,
                         "value": value(metric)})
        for metric, (num, den) in RATE_METRICS.items():
            rows.append({"cell": cell, "replicate": replicate, "group": group, "metric": metric,
                         "value": ratio(value(num), value(den))})
    for metric in PROGRAMME_METRICS:
        if metric in result["programme"]:   # the Black/White figures: only where both groups exist
            rows.append({"cell": cell, "replicate": replicate, "group": "all", "metric": metric,
                         "value": float(result["programme"][metric])})
    return rows
