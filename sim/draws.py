"""The calibrated posterior, drawn into forward runs: one parameter set, with its uncertainty.

Every quantity the calibration estimates (``sim.calibrate``, ``docs/calibration.md``) is a
setting whose default is ``"calibrated"``: the score model's free parameters, the watchlisted
share of passers and how it follows footfall, the spread of that share between deployments and
between periods, counted faces per passer, and arrests per engaged true alert. No other default
exists for them anywhere in the package.

A replicate of a run takes one draw of the shipped posterior (``sim/data/posterior.npz``, equal-
weight draws of the best-supported account): replicate ``r`` under root seed ``s`` uses draw
``draw_index(s, r)``, from its own stream (``sim.seeds``, stage ``STAGE_POSTERIOR``), never from
the sweep cell. So the spread of a count across replicates is its posterior-predictive spread
(parameters and Monte Carlo together), every cell of a sweep meets the same draws (common random
numbers), and a result does not depend on the executor. ``resolve`` turns an experiment and a
replicate into the experiment that replicate runs, with every ``"calibrated"`` setting replaced
by the draw's number; a setting the experiment gives explicitly is kept as given, for every draw.

The period effect: the calibration puts a log-normal effect ``exp(period_sd * z)`` on the
watchlisted share of each period of the records. A forward programme is a new period, so each
replicate draws its own ``z ~ N(0, 1)``.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache
from typing import Any

import numpy as np

from . import data as shipped
from .config import (
    CALIBRATED,
    MINORITY_PATTERN,
    REFERENCE_WATCHLIST_SIZE,
    Experiment,
    ScoreParameters,
    from_dict,
)
from .groups import ETHNICITIES
from .seeds import STAGE_POSTERIOR, stream

# posterior quantity -> the score parameter it sets (the minority shift sets a pattern, below)
SCORE_DRAWS = ("impostor_location", "impostor_sd", "genuine_location", "same_ethnicity_shift")
COMPARISON_SEED = 20250101


@cache
def posterior_draws() -> dict[str, np.ndarray]:
    """The shipped posterior's equal-weight draws, one float64 array per named quantity."""
    with np.load(shipped.path("posterior.npz")) as npz:
        return {name: np.asarray(npz[name], dtype=float) for name in npz.files}


@cache
def posterior_identity() -> dict[str, Any]:
    """Which posterior a run drew from, as its manifest records it."""
    path = shipped.path("posterior.npz")
    about = shipped.posterior().get("about", {})
    return {"draws_file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "draws": draw_count(), "account": about.get("shipped", {}).get("choice"),
            "calibration_seed": about.get("seed")}


def draw_count() -> int:
    return len(posterior_draws()["impostor_location"])


def draw(index: int) -> dict[str, float]:
    """One posterior draw as named numbers."""
    return {name: float(values[index]) for name, values in posterior_draws().items()}


def draw_index(seed: int, replicate: int) -> tuple[int, float]:
    """The posterior draw replicate ``replicate`` uses, and its period effect's standard normal z."""
    rng = stream(seed, replicate, 0, STAGE_POSTERIOR)
    return int(rng.integers(draw_count())), float(rng.standard_normal())


def score_values(values: dict[str, float]) -> dict[str, Any]:
    """The ``ScoreParameters`` fields a posterior draw sets."""
    out: dict[str, Any] = {name: values[name] for name in SCORE_DRAWS}
    shift = values["minority_probe_shift"]
    out["probe_ethnicity_shift"] = {e: shift * MINORITY_PATTERN[e] for e in ETHNICITIES}
    return out


def calibrated_settings(experiment: Experiment) -> list[str]:
    """The dotted settings of ``experiment`` that come from the posterior."""
    crowd, review = experiment.crowd, experiment.review
    names = [f"crowd.{name}" for name in ("watchlisted_per_passer", "footfall_elasticity",
                                          "watchlisted_dispersion", "period_sd", "faces_per_passer")
             if getattr(crowd, name) == CALIBRATED]
    if review.p_arrest == CALIBRATED:
        names.append("review.p_arrest")
    if experiment.matcher.parameters == CALIBRATED:
        names += [f"matcher.scores.{name}" for name in (*SCORE_DRAWS, "probe_ethnicity_shift")
                  if getattr(experiment.matcher.scores, name) is None]
    return names


def counting_factor(values: dict[str, float], regime: str) -> float:
    """Counted faces per passer in a counting regime, from a draw."""
    return values[f"faces_per_passer[{regime}]"]


def score_parameters_for(experiment: Experiment, values: dict[str, float]) -> ScoreParameters:
    """The score model a draw gives the experiment: the draw's values under the experiment's own."""
    matcher = experiment.matcher
    if matcher.parameters != CALIBRATED:
        return matcher.score_parameters()
    return ScoreParameters(**{**score_values(values), **matcher.scores.given()})


def faces_per_passer_for(experiment: Experiment, values: dict[str, float]) -> float:
    """Recorded faces per passer under a draw (the mean frames when every frame counts)."""
    crowd = experiment.crowd
    if crowd.faces_per_passer == CALIBRATED:
        return counting_factor(values, crowd.counting_regime)
    return crowd.frames_per_passer if crowd.faces_per_passer == "frames" else float(crowd.faces_per_passer)


def comparison_draws(count: int) -> np.ndarray:
    """The posterior draws a comparison integrates over: the first ``count`` of a fixed
    permutation (the same for every run, so comparisons of two experiments share draws)."""
    order = np.random.default_rng(COMPARISON_SEED).permutation(draw_count())
    return order[:min(count, len(order))]


def resolved_values(experiment: Experiment, values: dict[str, float], z: float) -> dict[str, Any]:
    """The experiment's settings as plain data with every ``"calibrated"`` value taken from ``values``.

    ``z`` is the replicate's period effect (a standard normal), applied to a calibrated
    watchlisted share only.
    """
    data = experiment.to_dict()
    crowd = data["crowd"]
    if crowd["watchlisted_per_passer"] == CALIBRATED:
        sd = values["period_sd"] if crowd["period_sd"] == CALIBRATED else float(crowd["period_sd"])
        # the posterior's share is quoted at REFERENCE_WATCHLIST_SIZE entries; restated at the
        # crowd's reference size, it gives the same share at every list size
        elasticity = float(crowd["prevalence_elasticity"])
        restated = (crowd["prevalence_reference_size"] / REFERENCE_WATCHLIST_SIZE) ** elasticity
        share = values["watchlisted_per_passer"] * restated * math.exp(sd * z)
        crowd["watchlisted_per_passer"] = min(share, 0.5)
    for name, key in (("footfall_elasticity", "footfall_elasticity"), ("watchlisted_dispersion", "phi_true"),
                      ("period_sd", "period_sd")):
        if crowd[name] == CALIBRATED:
            crowd[name] = values[key]
    if crowd["faces_per_passer"] == CALIBRATED:
        crowd["faces_per_passer"] = counting_factor(values, crowd["counting_regime"])
    if data["review"]["p_arrest"] == CALIBRATED:
        data["review"]["p_arrest"] = min(values["p_arrest"], 1.0 - data["review"]["p_other_disposal"])
    matcher = data["matcher"]
    if matcher["parameters"] == CALIBRATED:
        given = matcher.get("scores", {})
        matcher["scores"] = {**score_values(values), **given}
    data.pop("sweep", None)
    return data


def resolve(experiment: Experiment, replicate: int, seed: int | None = None) -> Experiment:
    """The experiment replicate ``replicate`` runs: its posterior draw in place of every
    ``"calibrated"`` setting (an experiment without any is returned as it is)."""
    if not calibrated_settings(experiment):
        return experiment
    seed = experiment.experiment.seed if seed is None else seed
    index, z = draw_index(seed, replicate)
    return from_dict(resolved_values(experiment, draw(index), z))



@cache
def _medians() -> dict[str, float]:
    return {name: float(np.median(values)) for name, values in posterior_draws().items()}


def typical(experiment: Experiment) -> Experiment:
    """The experiment at the posterior's medians, without a period effect: one representative
    setting for what needs a single one (the cost estimate), never for results."""
    if not calibrated_settings(experiment):
        return experiment
    return from_dict(resolved_values(experiment, _medians(), 0.0))
