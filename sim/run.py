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
from dataclasses import dataclass

import numpy as np

from .config import Experiment
from .crowd import (
    Site,
    arrival_seconds,
    default_groups,
    draw_crowd,
    frames_distribution,
    realise_programme,
    watchlist_group_shares,
    watchlisted_probability,
)
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
    review_alerts,
)
from .scores import ScoreModel, effective_looks, score_model, to_latent, to_vendor
from .search import SearchTable, build_search_table
from .watchlist import draw_watchlist

STAGE_PROGRAMME, STAGE_WATCHLIST, STAGE_CROWD, STAGE_REVIEW = range(4)

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


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one (replicate, deployment, stage) under the root seed."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass(frozen=True)
class Candidates:
    """Passers of one deployment whose best candidate clears the search floor."""

    group: np.ndarray
    mated: np.ndarray          # the passer is on the watchlist
    true_match: np.ndarray
    best: np.ndarray           # latent score of the best candidate
    seconds: np.ndarray
    uniforms: np.ndarray


@dataclass
class Tally:
    """Counts per group for one replicate at one threshold."""

    counts: dict[str, np.ndarray]
    officer_busy: float = 0.0
    operator_busy: float = 0.0
    waits: list[np.ndarray] | None = None


def _search_deployment(site: Site, table: SearchTable, model: ScoreModel, experiment: Experiment,
                       shares: np.ndarray, watchlisted: np.ndarray, frames, seed: int, replicate: int):
    crowd_rng = stream(seed, replicate, site.index, STAGE_CROWD)
    crowd = draw_crowd(site, shares, watchlisted, frames, crowd_rng)
    looks = effective_looks(crowd.frames, experiment.crowd.frame_correlation)
    q = np.stack([table.floor_exceedance(k) for k in looks], axis=1)       # (G, M)
    exceeders = crowd_rng.binomial(crowd.nonmated, q)
    groups, best = [], []
    for g, m in zip(*np.nonzero(exceeders), strict=True):
        _, scores = table.draw_exceeders(int(g), float(looks[m]), int(exceeders[g, m]), crowd_rng)
        groups.append(np.full(len(scores), g))
        best.append(scores)
    nm_group = np.concatenate(groups) if groups else np.empty(0, dtype=np.int64)
    nm_best = np.concatenate(best) if best else np.empty(0)
    m_looks = effective_looks(crowd.mated_frames, experiment.crowd.frame_correlation)
    genuine = model.genuine_rvs(crowd.mated_group, m_looks, crowd_rng)
    impostor = table.draw_best_impostor(crowd.mated_group, m_looks, crowd_rng)
    m_best = np.maximum(genuine, impostor)
    keep = m_best >= table.floor
    group = np.concatenate([nm_group, crowd.mated_group[keep]]).astype(np.int64)
    mated = np.concatenate([np.zeros(len(nm_group), bool), np.ones(int(keep.sum()), bool)])
    true_match = np.concatenate([np.zeros(len(nm_group), bool), (genuine >= impostor)[keep]])
    scores = np.concatenate([nm_best, m_best[keep]])
    seconds = arrival_seconds(site, len(group), crowd_rng)
    order = np.argsort(seconds, kind="stable")
    uniforms = stream(seed, replicate, site.index, STAGE_REVIEW).random((len(group), UNIFORMS_PER_ALERT))
    cands = Candidates(group[order], mated[order], true_match[order], scores[order], seconds[order], uniforms)
    return crowd, looks, m_looks, cands


def simulate_replicate(experiment: Experiment, replicate: int, thresholds: Sequence[float],
                       seed: int | None = None) -> dict[float, dict[str, np.ndarray | float]]:
    """Simulate one replicate; for each threshold, metrics by group (arrays) and programme-wide."""
    seed = experiment.experiment.seed if seed is None else seed
    if min(thresholds) < experiment.matcher.score_floor:
        raise ValueError(f"thresholds below matcher.score_floor ({experiment.matcher.score_floor}) "
                         "would miss passers the search never scored")
    groups = default_groups()
    n_groups = len(groups)
    model = score_model(experiment.matcher.scores, groups)
    sites = realise_programme(experiment.programme, stream(seed, replicate, 0, STAGE_PROGRAMME))
    wl_shares = watchlist_group_shares(experiment.watchlist.female_share,
                                       experiment.watchlist.ethnicity_shares, groups)
    watchlist = draw_watchlist(experiment.watchlist.size, wl_shares, model.entry_effects,
                               stream(seed, replicate, 0, STAGE_WATCHLIST))
    floor = float(to_latent(experiment.matcher.score_floor))
    table = build_search_table(model, watchlist, floor)
    frames = frames_distribution(experiment.crowd)
    pi = watchlisted_probability(experiment.crowd, groups, experiment.watchlist.size, wl_shares)

    passers = np.zeros(n_groups, np.int64)
    faces = np.zeros(n_groups, np.int64)
    watchlisted = np.zeros(n_groups, np.int64)
    nonmated_cells: dict[float, np.ndarray] = {}
    mated_cells: dict[float, np.ndarray] = {}
    searched = []
    for site in sites:
        shares = site.group_shares(groups, experiment.crowd.female_share)
        crowd, looks, m_looks, cands = _search_deployment(site, table, model, experiment, shares, pi,
                                                          frames, seed, replicate)
        passers += crowd.passers
        faces += crowd.faces(experiment.crowd.count_faces_as)
        watchlisted += crowd.watchlisted()
        for m, k in enumerate(looks):
            nonmated_cells.setdefault(float(k), np.zeros(n_groups, np.int64))
            nonmated_cells[float(k)] += crowd.nonmated[:, m]
        for g, k in zip(crowd.mated_group, m_looks, strict=True):
            mated_cells.setdefault(float(k), np.zeros(n_groups, np.int64))[g] += 1
        searched.append((site, cands))

    nonmated = sum(nonmated_cells.values(), np.zeros(n_groups, np.int64))
    results: dict[float, dict[str, np.ndarray | float]] = {}
    for threshold in thresholds:
        t = float(to_latent(threshold))
        counts = {name: np.zeros(n_groups) for name in COUNT_METRICS}
        counts["passers"] = passers.astype(float)
        counts["faces"] = faces.astype(float)
        counts["watchlisted_passers"] = watchlisted.astype(float)
        counts["nonmated_passers"] = nonmated.astype(float)
        exp_false, exp_true = _expectations(table, t, nonmated_cells, mated_cells, n_groups)
        counts["expected_false_alerts"] = exp_false
        counts["expected_true_alerts"] = exp_true
        officer_busy = operator_busy = officer_on_duty = operator_on_duty = 0.0
        waits, operator_waits, officer_waits = [], [], []
        for site, c in searched:
            hit = c.best >= t
            alerts = Alerts(seconds=c.seconds[hit], true_match=c.true_match[hit],
                            margin=to_vendor(c.best[hit]) - threshold, uniforms=c.uniforms[hit])
            reviewed = review_alerts(alerts, experiment.review, site.duration_seconds)
            g = c.group[hit]
            true_hit = c.true_match[hit]
            counts["alerts"] += np.bincount(g, minlength=n_groups)
            counts["true_alerts"] += np.bincount(g[true_hit], minlength=n_groups)
            counts["false_alerts"] += np.bincount(g[~true_hit], minlength=n_groups)
            counts["nonmated_false_alerts"] += np.bincount(g[~c.mated[hit]], minlength=n_groups)
            out = reviewed.outcome
            for name, code in (("operator_rejected", REJECTED), ("lost_alerts", LOST), ("arrests", ARREST),
                               ("other_disposals", OTHER_DISPOSAL), ("no_action", NO_ACTION),
                               ("wrongful_stops", WRONGFUL_STOP), ("wrongful_arrests", WRONGFUL_ARREST)):
                counts[name] += np.bincount(g[out == code], minlength=n_groups)
            counts["engagements"] += np.bincount(g[np.isin(out, ENGAGED)], minlength=n_groups)
            counts["lost_true_alerts"] += np.bincount(g[(out == LOST) & true_hit], minlength=n_groups)
            for name, per_alert in (("operator_busy_seconds", reviewed.operator_seconds),
                                    ("officer_busy_seconds", reviewed.officer_seconds),
                                    ("operator_wait_seconds_total", reviewed.operator_wait),
                                    ("officer_wait_seconds_total", reviewed.officer_wait),
                                    ("seconds_to_engagement_total", reviewed.to_engagement)):
                counts[name] += np.bincount(g, weights=np.nan_to_num(per_alert), minlength=n_groups)
            officer_busy += reviewed.officer_busy_seconds
            operator_busy += reviewed.operator_busy_seconds
            officer_on_duty += reviewed.officer_on_duty_seconds
            operator_on_duty += reviewed.operator_on_duty_seconds
            waits.append(reviewed.wait_seconds[np.isfinite(reviewed.wait_seconds)])
            operator_waits.append(reviewed.operator_wait[np.isfinite(reviewed.operator_wait)])
            officer_waits.append(reviewed.officer_wait[np.isfinite(reviewed.officer_wait)])
        programme = {
            "deployments": float(len(sites)),
            "officer_utilisation": officer_busy / officer_on_duty if officer_on_duty else 0.0,
            "operator_utilisation": operator_busy / operator_on_duty if operator_on_duty else 0.0,
            "mean_seconds_to_engagement": _mean(waits),
            "mean_operator_wait_seconds": _mean(operator_waits),
            "mean_officer_wait_seconds": _mean(officer_waits),
            "implied_threshold": _implied_threshold(experiment, table, nonmated_cells, faces.sum()),
        }
        results[float(threshold)] = {"counts": counts, "programme": programme}
    return results


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
    grid = np.linspace(0.30, 0.999, 1400)
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
