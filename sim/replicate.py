"""One replicate of one scenario: crowd -> search -> review -> counts.

A replicate draws the programme's sites, one watchlist, and for each deployment its crowd, the
passers whose best candidate clears the search floor, and their fates in review. Every draw comes
from a stream keyed by (replicate, deployment, stage) under the experiment's root seed, never by
the sweep cell: all cells of a sweep meet the same passers (common random numbers), and a cell's
numbers do not depend on which other cells run, in what order, or on how many workers.

Passers are compared with every threshold of interest at once: an alert at threshold T is a
candidate whose best score is at or above T, so raising T can only remove alerts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import Experiment
from .review import (
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
    ReviewResult,
    review_alerts,
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
                     "mean_operator_wait_seconds", "mean_officer_wait_seconds")
# Thresholds searched for the implied threshold: from 0.30, below any operating point a force
# has published (NPL tested 0.56-0.64; the Met uses 0.60-0.64), to 0.999, in steps of 0.0005 on
# the vendor scale, the expected rate interpolated log-linearly between them
IMPLIED_THRESHOLD_GRID = (0.30, 0.999, 1400)


def simulate_replicate(experiment: Experiment, replicate: int, thresholds: Sequence[float],
                       seed: int | None = None) -> dict[float, dict[str, np.ndarray | float]]:
    """Simulate one replicate; for each threshold, metrics by group (arrays) and programme-wide."""
    seed = experiment.experiment.seed if seed is None else seed
    if min(thresholds) < experiment.matcher.score_floor:
        raise ValueError(f"thresholds below matcher.score_floor ({experiment.matcher.score_floor}) "
                         "would miss passers the search never scored")
    search = search_deployments(experiment, prepare_search(experiment, replicate, seed), replicate, seed)
    # each candidate's review draws, from the deployment's own review stream (sim.seeds)
    uniforms = [stream(seed, replicate, site.index, STAGE_REVIEW).random((len(c.best), UNIFORMS_PER_ALERT))
                for site, c in search.candidates]
    n_groups = len(search.setup.model.groups)
    sites, table, searched = search.setup.sites, search.setup.table, search.candidates
    passers, faces, watchlisted = search.passers, search.faces, search.watchlisted
    nonmated_cells, mated_cells = search.nonmated_cells, search.mated_cells
    nonmated = sum(nonmated_cells.values(), np.zeros(n_groups, np.int64))
    implied = _implied_threshold(experiment, table, nonmated_cells, faces.sum())
    # Without automation bias an alert's fate depends only on which candidates alert, so a sweep
    # reviews each distinct alert set of a deployment once (nearby thresholds often share one).
    cache: dict[tuple[int, bytes], ReviewResult] | None = (
        {} if experiment.review.automation_bias == 0 else None)
    results: dict[float, dict[str, np.ndarray | float]] = {}
    for threshold in thresholds:
        t = float(to_latent(threshold))
        hits, reviews = [], []
        for (site, c), u in zip(searched, uniforms, strict=True):
            hit = c.best >= t
            key = (site.index, hit.tobytes())
            reviewed = cache.get(key) if cache is not None else None
            if reviewed is None:
                alerts = Alerts(seconds=c.seconds[hit], true_match=c.true_match[hit],
                                margin=to_vendor(c.best[hit]) - threshold, uniforms=u[hit])
                reviewed = review_alerts(alerts, experiment.review, site.duration_seconds)
                if cache is not None:
                    cache[key] = reviewed
            hits.append(hit)
            reviews.append(reviewed)
        counts = _tally(searched, hits, reviews, n_groups)
        counts["passers"] = passers.astype(float)
        counts["faces"] = faces.astype(float)
        counts["watchlisted_passers"] = watchlisted.astype(float)
        counts["nonmated_passers"] = nonmated.astype(float)
        counts["expected_false_alerts"], counts["expected_true_alerts"] = _expectations(
            table, t, nonmated_cells, mated_cells, n_groups)
        officer_on_duty = sum(r.officer_on_duty_seconds for r in reviews)
        operator_on_duty = sum(r.operator_on_duty_seconds for r in reviews)
        programme = {
            "deployments": float(len(sites)),
            "officer_utilisation": (sum(r.officer_busy_seconds for r in reviews) / officer_on_duty
                                    if officer_on_duty else 0.0),
            "operator_utilisation": (sum(r.operator_busy_seconds for r in reviews) / operator_on_duty
                                     if operator_on_duty else 0.0),
            "mean_seconds_to_engagement": _mean([r.to_engagement for r in reviews]),
            "mean_operator_wait_seconds": _mean([r.operator_wait for r in reviews]),
            "mean_officer_wait_seconds": _mean([r.officer_wait for r in reviews]),
            "implied_threshold": implied,
        }
        results[float(threshold)] = {"counts": counts, "programme": programme}
    return results


OUTCOME_METRICS = (("operator_rejected", REJECTED), ("lost_alerts", LOST), ("arrests", ARREST),
                   ("other_disposals", OTHER_DISPOSAL), ("no_action", NO_ACTION),
                   ("wrongful_stops", WRONGFUL_STOP), ("wrongful_arrests", WRONGFUL_ARREST))


def _tally(searched, hits: list[np.ndarray], reviews: list[ReviewResult], n_groups: int
           ) -> dict[str, np.ndarray]:
    """Alert and outcome counts per group over all deployments at one threshold."""
    def alerted(name: str, dtype) -> np.ndarray:
        parts = [getattr(c, name)[h] for (_, c), h in zip(searched, hits, strict=True)]
        return np.concatenate(parts) if parts else np.empty(0, dtype)

    g = alerted("group", np.int64)
    true_hit = alerted("true_match", bool)
    mated = alerted("mated", bool)
    out = np.concatenate([r.outcome for r in reviews] or [np.empty(0, int)])

    def per_group(mask=None, weights=None) -> np.ndarray:
        groups = g if mask is None else g[mask]
        w = None if weights is None else (weights if mask is None else weights[mask])
        return np.bincount(groups, weights=w, minlength=n_groups).astype(float)

    counts = {name: np.zeros(n_groups) for name in COUNT_METRICS}
    counts["alerts"] = per_group()
    counts["true_alerts"] = per_group(true_hit)
    counts["false_alerts"] = per_group(~true_hit)
    counts["nonmated_false_alerts"] = per_group(~mated)
    for name, code in OUTCOME_METRICS:
        counts[name] = per_group(out == code)
    counts["engagements"] = per_group(np.isin(out, ENGAGED))
    counts["lost_true_alerts"] = per_group((out == LOST) & true_hit)
    for name, field in (("operator_busy_seconds", "operator_seconds"),
                        ("officer_busy_seconds", "officer_seconds"),
                        ("operator_wait_seconds_total", "operator_wait"),
                        ("officer_wait_seconds_total", "officer_wait"),
                        ("seconds_to_engagement_total", "to_engagement")):
        per_alert = np.concatenate([getattr(r, field) for r in reviews] or [np.empty(0)])
        counts[name] = per_group(weights=np.nan_to_num(per_alert))
    return counts


def _mean(parts: list[np.ndarray]) -> float:
    values = np.concatenate(parts) if parts else np.empty(0)
    return float(values.mean()) if values.size else float("nan")


def _expectations(table: SearchTable, t: float, nonmated_cells: dict[float, np.ndarray],
                  mated_cells: dict[float, np.ndarray], n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact expected false and true alerts per group, given the crowd that was drawn."""
    exp_false = np.zeros(n_groups)
    exp_true = np.zeros(n_groups)
    for k, counts in nonmated_cells.items():
        for g in np.flatnonzero(counts):
            exp_false[g] += counts[g] * float(table.impostor_sf(int(g), t, k))
    for k, counts in mated_cells.items():
        for g in np.flatnonzero(counts):
            p_true, p_false = table.mated_alert_probabilities(int(g), t, k)
            exp_true[g] += counts[g] * p_true
            exp_false[g] += counts[g] * p_false
    return exp_false, exp_true


def _implied_threshold(experiment: Experiment, table: SearchTable, nonmated_cells, faces: float) -> float:
    """The threshold at which this crowd's expected false alerts per reported face match the report."""
    cmp_ = experiment.comparison
    if cmp_ is None or faces <= 0:
        return float("nan")
    target = cmp_.false_alerts / cmp_.faces
    grid = np.linspace(*IMPLIED_THRESHOLD_GRID)
    lat = to_latent(grid)
    expected = np.zeros_like(grid)
    for k, counts in nonmated_cells.items():
        for g in np.flatnonzero(counts):
            expected += counts[g] * table.impostor_sf(int(g), lat, k)
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
