"""The calibration's posterior, carried into forward runs: a reported figure against the model.

A simulated rate carries only Monte Carlo error; the score parameters behind it are uncertain
too. ``posterior_comparison`` integrates that uncertainty out for a reported figure (the Met's 12
false alerts in 3,000,000 faces): for each draw from the shipped fit's posterior it computes the
exact expected false alerts of the simulated crowd, by ``fpir_quadrature``, and averages the
Poisson probability of the reported count. The pipeline stores the answer in the results folder
(``posterior.json``), so a report is drawn from the folder alone.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from scipy import stats

from . import data as shipped
from .calibrate import BOUNDS, with_free
from .config import Crowd, Experiment, ScoreParameters
from .crowd import frames_distribution, watchlist_group_shares
from .groups import default_groups
from .scores import ScoreModel, effective_looks, score_model, to_latent


@cache
def _hermite_nodes(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return x, w / w.sum()


def fpir_quadrature(model: ScoreModel, watchlist_shares: np.ndarray, size: float, threshold: float,
                    nodes: int = 8, looks: float | np.ndarray = 1.0) -> np.ndarray:
    """FPIR per probe group for an average watchlist, by Gauss-Hermite quadrature.

    The same closed form as ``SearchTable.impostor_sf`` (``looks`` independent looks per passer:
    P(no look alerts | probe) = exp(-looks * H)), with probe and entry effects
    integrated by quadrature instead of on the table's grid: a few milliseconds, so a posterior can
    be integrated over in seconds. Agrees with the table to about 3e-4 relative (the table's own
    discretisation; 6 nodes already agree with 24 to 1e-9: effects are small beside the noise).
    """
    x, w = _hermite_nodes(nodes)
    p = x * model.probe_effect_sd
    fx = model.entry_effects
    e = np.concatenate([x * fx.sd, x * fx.sd + fx.lamb_shift])
    we = np.concatenate([w * (1.0 - fx.lamb_share), w * fx.lamb_share])
    t = float(to_latent(threshold))
    d = t - p[None, :, None, None] - model.impostor_location[:, None, :, None] - e[None, None, None, :]
    per_entry = -model.noise.logcdf(d) @ we                              # (G, P, H)
    hazard = size * per_entry @ np.asarray(watchlist_shares, dtype=float)  # (G, P)
    k = np.asarray(looks, dtype=float)[..., None, None]
    return -np.expm1(-k * hazard) @ w      # (G,), or (L, G) for an array of looks


def crowd_fpir(model: ScoreModel, watchlist_shares: np.ndarray, size: float, threshold: float,
               crowd: Crowd) -> np.ndarray:
    """FPIR per probe group of a crowd whose passers give 1 + Poisson(frames - 1) frames, each frame
    a look as independent as ``crowd.frame_correlation`` allows (``sim.scores.effective_looks``)."""
    frames, pmf = frames_distribution(crowd)
    looks = effective_looks(frames, crowd.frame_correlation)
    return pmf @ fpir_quadrature(model, watchlist_shares, size, threshold, looks=looks)


def posterior_comparison(experiment: Experiment, nonmated_by_group: np.ndarray, faces: float,
                         draws: int = 1000,
                         seed: int = 0) -> dict[str, Any] | None:
    """The reported figure against the model with the calibration's uncertainty integrated out.

    A simulated rate carries only Monte Carlo error; the score parameters behind it are uncertain
    too. For each of ``draws`` draws from the shipped fit's Laplace posterior this computes the
    exact expected false alerts of the simulated crowd (non-watchlisted passers per group, per
    programme) scaled to the reported number of faces, then averages the Poisson probability of
    the reported count. None when the experiment does not use the shipped calibration unchanged
    (there is then no posterior to integrate over) or names no reported figure.
    """
    cmp_ = experiment.comparison
    threshold = experiment.matcher.threshold    # the experiment's own setting, not the report's
    fit_table = shipped.score_fit(experiment.matcher.parameters)
    if cmp_ is None or fit_table is None or faces <= 0:
        return None
    shipped_params = ScoreParameters(**shipped.score_parameters("calibrated"))
    if experiment.matcher.scores != shipped_params:
        return None
    posterior = fit_table["posterior"]
    mean = np.asarray(posterior["mean"], dtype=float)
    cov = np.asarray(posterior["covariance"], dtype=float)
    lo = np.array([b[0] for b in BOUNDS])
    hi = np.array([b[1] for b in BOUNDS])
    rng = np.random.default_rng(seed)
    samples = np.clip(rng.multivariate_normal(mean, cov, size=draws), lo, hi)
    groups = default_groups()
    wl = experiment.watchlist
    shares = watchlist_group_shares(wl.female_share, wl.ethnicity_shares, groups)
    scale = cmp_.faces / faces
    expected = []
    for x in [mean, *samples]:
        model = score_model(with_free(shipped_params, x), groups)
        fp = crowd_fpir(model, shares, wl.size, threshold, experiment.crowd)
        expected.append(float(np.dot(nonmated_by_group, fp)) * scale)
    draws_e = np.asarray(expected[1:])
    k = cmp_.false_alerts
    return {"threshold": threshold, "reported_threshold": cmp_.threshold, "draws": draws,
            "expected": expected[0],
            "interval_95": [float(np.quantile(draws_e, 0.025)), float(np.quantile(draws_e, 0.975))],
            "p_at_most_reported": float(np.mean(stats.poisson.cdf(k, draws_e))),
            "p_at_least_reported": float(np.mean(stats.poisson.sf(k - 1, draws_e)))}
