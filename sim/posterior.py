"""A reported figure against the model's posterior predictive.

A reported count (the Met's 12 false alerts in 3,000,000 faces) is set against what the
calibrated model predicts for the same exposure in the experiment's own setting (its threshold,
watchlist, crowd mix and frames). For each of ``draws`` posterior draws (``sim.draws``) the
exact expected false alerts are the reported faces turned into passers by the draw's counting
factor, times the crowd's false-positive identification rate under the draw's score model
(``fpir_quadrature``, every look per passer counted, ``crowd_fpir``). The predictive count adds
the deployment-to-deployment overdispersion the calibration found in false alerts (negative
binomial with the draw's ``phi_false`` over as many deployments as the reported exposure spans)
and Poisson noise. The pipeline stores the answer in the results folder (``posterior.json``), so a
report is drawn from the folder alone. The reported count is never an input to the calibration.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np

from .config import Crowd, Experiment
from .crowd import frames_distribution, watchlist_group_shares
from .draws import (
    comparison_draws,
    draw,
    faces_per_passer_draws,
    faces_per_passer_for,
    posterior_draws,
    score_parameter_draws,
    score_parameters_for,
)
from .scores import GaussianNoise, ScoreModel, effective_looks, impostor_locations, score_model, to_latent

COMPARISON_DRAWS = 1000
DRAW_BLOCK = 64
# the score parameters a stacked model lets differ between draws
STACKABLE = frozenset({"impostor_location", "impostor_sd", "same_ethnicity_shift", "probe_ethnicity_shift",
                       "genuine_location"})
PREDICTIVE_SEED = 12


@cache
def _hermite_nodes(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return x, w / w.sum()


def _distinct_locations(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of ``pairs`` (draws x pairs of groups) in order of first appearance,
    and for each column the distinct one it is: ``np.unique(pairs, axis=1, return_inverse=True)``
    but unsorted (the order does not change a number computed from them), ~0.05 ms to unique's ~0.5."""
    first: dict[bytes, int] = {}
    keep: list[int] = []
    where = np.empty(pairs.shape[1], dtype=np.intp)
    for j, column in enumerate(np.ascontiguousarray(pairs.T)):
        key = column.tobytes()
        if key not in first:
            first[key] = len(keep)
            keep.append(j)
        where[j] = first[key]
    return pairs[:, keep], where


def fpir_quadrature(model: ScoreModel, watchlist_shares: np.ndarray, size: float, threshold: float,
                    nodes: int = 8, looks: float | np.ndarray = 1.0) -> np.ndarray:
    """FPIR per probe group for an average watchlist, by Gauss-Hermite quadrature.

    The same closed form as ``SearchTable.impostor_sf`` (``looks`` independent looks per passer:
    P(no look alerts | probe) = exp(-looks * H)), with probe and entry effects
    integrated by quadrature instead of on the table's grid: a few milliseconds, so a posterior can
    be integrated over in seconds. Agrees with the table to about 3e-4 relative (the table's own
    discretisation; 6 nodes already agree with 24 to 1e-9: effects are small beside the noise).

    A model of stacked draws (``stacked_score_model``: ``impostor_location`` of shape (D, G, H))
    gives (D, G), or (D, L, G) for an array of looks, each draw's row exactly what its own model
    gives alone (the same numbers, elementwise, and the same products, slice by slice).
    """
    x, w = _hermite_nodes(nodes)
    p = x * model.probe_effect_sd
    fx = model.entry_effects
    e = np.concatenate([x * fx.sd, x * fx.sd + fx.lamb_shift])
    we = np.concatenate([w * (1.0 - fx.lamb_share), w * fx.lamb_share])
    t = float(to_latent(threshold))
    # d[g, p, h, e] = t - p - location[g, h] - e depends on (g, h) only through the location, and
    # groups share locations (a same-ethnicity pair is one value): the noise's logcdf, the cost
    # here, is taken once per distinct location and spread back (the same numbers, elementwise);
    # with stacked draws, once per (g, h) pairs that share a location in every draw
    location = model.impostor_location
    lead = location.shape[:-2]
    distinct, where = _distinct_locations(location.reshape(int(np.prod(lead, dtype=int)), -1))
    distinct = distinct.reshape(*lead, -1)
    where = where.reshape(location.shape[-2:])
    d = t - p[:, None, None] - distinct[..., None, :, None] - e[None, None, :]   # (..., P, U, E)
    # -logcdf, negated before it is spread (a third of the values to negate; the same numbers)
    cost = -model.noise.logcdf(d)                                                # (..., P, U, E)
    # spread back straight into (..., G, P, H, E), one copy: [g, p, h] reads [p, where[g, h]]
    probes = np.arange(len(p))[None, :, None]
    per_entry = cost[..., probes, where[:, None, :], :] @ we                     # (..., G, P, H)
    hazard = size * per_entry @ np.asarray(watchlist_shares, dtype=float)       # (..., G, P)
    k = np.asarray(looks, dtype=float)[..., None, None]
    if len(lead) and k.ndim > 2:
        hazard = hazard[..., None, :, :]      # the looks after the draws: (..., L, G, P)
    return -np.expm1(-k * hazard) @ w      # (G,), (L, G), or with the draws in front


def crowd_fpir(model: ScoreModel, watchlist_shares: np.ndarray, size: float, threshold: float,
               crowd: Crowd) -> np.ndarray:
    """FPIR per probe group of a crowd whose passers give 1 + Poisson(frames - 1) frames, each frame
    a look as independent as ``crowd.frame_correlation`` allows (``sim.scores.effective_looks``)."""
    frames, pmf = frames_distribution(crowd)
    looks = effective_looks(frames, crowd.frame_correlation)
    return pmf @ fpir_quadrature(model, watchlist_shares, size, threshold, looks=looks)


def stacked_score_model(experiment: Experiment, draws: np.ndarray) -> ScoreModel | None:
    """The score models of posterior draws ``draws`` in one: ``impostor_location`` (D, G, H) and
    Gaussian noise of a scale per draw, the rest shared (what ``fpir_quadrature`` reads), or None
    where draws differ in more than that (a Pareto tail, or a matcher not from the posterior)."""
    groups = experiment.passer_groups()
    first = score_parameters_for(experiment, draw(int(draws[0])))
    drawn = score_parameter_draws(experiment, draws)
    if first.tail != "gaussian" or not drawn or set(drawn) - STACKABLE:
        return None
    model = score_model(first, groups)
    params = SimpleNamespace(**{**dict(first), **drawn})
    scale = np.broadcast_to(np.asarray(params.impostor_sd, dtype=float), (len(draws),))
    return replace(model, impostor_location=impostor_locations(params, groups),
                   noise=GaussianNoise(scale[:, None, None, None]))


def expected_false_alerts(experiment: Experiment, crowd_mix: np.ndarray, faces: float,
                          draws: np.ndarray) -> np.ndarray:
    """Expected false alerts in ``faces`` recorded faces of a crowd with group shares ``crowd_mix``
    (non-watchlisted passers), under each posterior draw in ``draws``, at the experiment's settings."""
    groups = experiment.passer_groups()
    wl = experiment.watchlist
    shares = watchlist_group_shares(wl.female_share, wl.ethnicity_shares, groups)
    # in blocks of draws: arrays that stay in cache (~1.5x faster than all 1,000 draws at once)
    blocks = [stacked_score_model(experiment, block)
              for block in np.array_split(draws, -(-len(draws) // DRAW_BLOCK))] if len(draws) else [None]
    if all(model is not None for model in blocks):
        threshold = experiment.matcher.threshold
        fp = np.concatenate([crowd_fpir(model, shares, wl.size, threshold, experiment.crowd)
                             for model in blocks])       # (D, G)
        mixed = np.array([float(crowd_mix @ row) for row in fp])
        return faces / faces_per_passer_draws(experiment, draws) * mixed
    out = np.empty(len(draws))
    for i, index in enumerate(draws):
        values = draw(int(index))
        model = score_model(score_parameters_for(experiment, values), groups)
        fp = crowd_fpir(model, shares, wl.size, experiment.matcher.threshold, experiment.crowd)
        out[i] = faces / faces_per_passer_for(experiment, values) * float(crowd_mix @ fp)
    return out


def posterior_comparison(experiment: Experiment, nonmated_by_group: np.ndarray, faces: float,
                         deployments: float, draws: int = COMPARISON_DRAWS) -> dict[str, Any] | None:
    """The reported figure against the model's posterior predictive, or None without one.

    ``nonmated_by_group`` (the simulated crowd's non-watchlisted passers per group) gives the
    crowd mix; ``faces`` and ``deployments`` (simulated recorded faces and deployments per
    replicate) say how many deployments the reported exposure spans.
    """
    cmp_ = experiment.comparison
    total = float(np.sum(nonmated_by_group))
    if cmp_ is None or total <= 0 or faces <= 0:
        return None
    chosen = comparison_draws(draws)
    mu = expected_false_alerts(experiment, np.asarray(nonmated_by_group, dtype=float) / total, cmp_.faces,
                               chosen)
    values = posterior_draws()
    phi = values["phi_false"][chosen] if "phi_false" in values else np.zeros(len(chosen))
    spans = max(deployments * cmp_.faces / faces, 1.0)
    rng = np.random.default_rng(PREDICTIVE_SEED)
    # the sum over `spans` deployments of gamma(1/phi, phi) effects, divided by `spans`
    lam = np.where(phi > 0, rng.gamma(spans / np.maximum(phi, 1e-12), np.maximum(phi, 1e-12) / spans), 1.0)
    count = rng.poisson(mu * lam)
    k = cmp_.false_alerts
    q = np.quantile(mu, [0.025, 0.5, 0.975])
    return {"threshold": experiment.matcher.threshold, "reported_threshold": cmp_.threshold,
            "draws": int(len(chosen)), "reported": k, "reported_faces": cmp_.faces,
            "expected": float(mu.mean()), "expected_median": float(q[1]),
            "interval_95": [float(q[0]), float(q[2])],
            "predictive_interval_95": [float(np.quantile(count, 0.025, method="inverted_cdf")),
                                       float(np.quantile(count, 0.975, method="inverted_cdf"))],
            "p_at_most_reported": float(np.mean(count <= k)),
            "p_at_least_reported": float(np.mean(count >= k)),
            "deployments_spanned": float(spans)}
