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
replicate draws its own ``z ~ N(0, 1)``. A deployment that names its calibration ``period`` (a
replay of the records) takes that period's estimated effect from the draw instead, as its own
``watchlisted_per_passer``.

A deployment's counting regime turns its recorded faces into passers: with a calibrated counting
factor, each deployment that names a ``counting_regime`` gets that regime's factor from the draw
as its own ``faces_per_passer``; one that gives a probability for each regime has its regime
drawn per replicate, from the same stream, after the draw and the period effect.
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
from .grid import PERIODS, REGIMES
from .groups import ETHNICITIES
from .seeds import STAGE_POSTERIOR, stream

# posterior quantity -> the score parameter it sets (the minority shift sets a pattern, below)
SCORE_DRAWS = ("impostor_location", "impostor_sd", "genuine_location", "same_ethnicity_shift")
TAIL_DRAWS = ("tail", "tail_knot_sd", "tail_shape")     # set by a Pareto-tail posterior only
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


def drawn_regimes(experiment: Experiment, seed: int, replicate: int) -> list[str | None]:
    """Each deployment's counting regime in replicate ``replicate``: the one it names, one drawn
    from the probabilities it gives (a uniform each, after the draw and z), or None."""
    given = [d.counting_regime for d in experiment.programme.deployments]
    if not any(isinstance(r, dict) for r in given):
        return [r if isinstance(r, str) else None for r in given]
    rng = stream(seed, replicate, 0, STAGE_POSTERIOR)
    rng.integers(draw_count()), rng.standard_normal()     # the draw and z come first
    u = rng.random(len(given))
    out: list[str | None] = []
    for r, ui in zip(given, u, strict=True):
        if not isinstance(r, dict):
            out.append(r)
            continue
        names = [k for k in REGIMES if r.get(k, 0.0) > 0]
        cdf = np.cumsum([r[k] for k in names])
        out.append(names[min(int(np.searchsorted(cdf / cdf[-1], ui, side="right")), len(names) - 1)])
    return out


def score_values(values: dict[str, Any]) -> dict[str, Any]:
    """The ``ScoreParameters`` fields a posterior draw sets (or draws: arrays over them, each field
    an array of the same numbers).

    A draw of a Pareto-tail account (one carrying a finite ``tail_shape``) sets the simulator's
    ``ParetoTailNoise``: ``tail = "pareto"``, its knot and its shape; any other draw leaves the
    Gaussian noise (a model-average draw of a Gaussian account has no shape, or NaN)."""
    out: dict[str, Any] = {name: values[name] for name in SCORE_DRAWS}
    shift = values["minority_probe_shift"]
    out["probe_ethnicity_shift"] = {e: shift * MINORITY_PATTERN[e] for e in ETHNICITIES}
    if np.isfinite(np.asarray(values.get("tail_shape", math.nan), dtype=float)).any():
        out.update(tail="pareto", tail_knot_sd=values["tail_knot_sd"], tail_shape=values["tail_shape"])
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
        # declared groups bring their own probe shifts: the ethnicity pattern's is not used
        pattern = ("probe_ethnicity_shift",) if experiment.groups is None else ()
        tail = TAIL_DRAWS if "tail_shape" in posterior_draws() else ()
        names += [f"matcher.scores.{name}" for name in (*SCORE_DRAWS, *pattern, *tail)
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


def score_parameter_draws(experiment: Experiment, draws: np.ndarray) -> dict[str, Any]:
    """The ``ScoreParameters`` fields posterior draws ``draws`` set under the experiment, each an
    array over the draws (``score_values`` of every draw at once: the same numbers); the fields
    the experiment gives itself are left out, and a matcher not from the posterior sets none."""
    matcher = experiment.matcher
    if matcher.parameters != CALIBRATED:
        return {}
    columns = posterior_draws()
    chosen = np.asarray(draws, dtype=int)
    read = (*SCORE_DRAWS, "minority_probe_shift", *TAIL_DRAWS[1:])
    out = score_values({name: columns[name][chosen] for name in read if name in columns})
    given = matcher.scores.given()
    return {name: value for name, value in out.items() if name not in given}


def faces_per_passer_draws(experiment: Experiment, draws: np.ndarray) -> np.ndarray:
    """``faces_per_passer_for`` under each of posterior draws ``draws``."""
    crowd = experiment.crowd
    chosen = np.asarray(draws, dtype=int)
    if crowd.faces_per_passer == CALIBRATED:
        return posterior_draws()[f"faces_per_passer[{crowd.counting_regime}]"][chosen]
    return np.full(len(chosen), faces_per_passer_for(experiment, {}))


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


def resolved_values(experiment: Experiment, values: dict[str, float], z: float,
                    regimes: list[str | None] | None = None) -> dict[str, Any]:
    """The experiment's settings as plain data with every ``"calibrated"`` value taken from ``values``.

    ``z`` is the replicate's period effect (a standard normal), applied to a calibrated
    watchlisted share only; a deployment of a calibration period takes that period's effect.
    ``regimes`` are the deployments' counting regimes this replicate (``drawn_regimes``; by
    default those they name, a probability table left as it is).
    """
    data = experiment.to_dict()
    crowd = data["crowd"]
    deployments = data["programme"].get("deployments", [])
    if crowd["watchlisted_per_passer"] == CALIBRATED:
        sd = values["period_sd"] if crowd["period_sd"] == CALIBRATED else float(crowd["period_sd"])
        # the posterior's share is quoted at REFERENCE_WATCHLIST_SIZE entries; restated at the
        # crowd's reference size, it gives the same share at every list size
        elasticity = float(crowd["prevalence_elasticity"])
        restated = (crowd["prevalence_reference_size"] / REFERENCE_WATCHLIST_SIZE) ** elasticity
        share = values["watchlisted_per_passer"] * restated * math.exp(sd * z)
        crowd["watchlisted_per_passer"] = min(share, 0.5)
        for d in deployments:
            if d.get("period") and "watchlisted_per_passer" not in d:
                z_period = values[f"period_z_{PERIODS.index(d['period'])}"]
                d["watchlisted_per_passer"] = min(values["watchlisted_per_passer"] * restated
                                                  * math.exp(sd * z_period), 0.5)
    if crowd["faces_per_passer"] == CALIBRATED:
        regimes = regimes if regimes is not None else [d.get("counting_regime") for d in deployments]
        for d, regime in zip(deployments, regimes, strict=True):
            if isinstance(regime, str):
                d["counting_regime"] = regime
                d.setdefault("faces_per_passer", counting_factor(values, regime))
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
    return from_dict(resolved_values(experiment, draw(index), z, drawn_regimes(experiment, seed, replicate)))



@cache
def _medians() -> dict[str, float]:
    return {name: float(np.median(values)) for name, values in posterior_draws().items()}


def typical(experiment: Experiment) -> Experiment:
    """The experiment at the posterior's medians, without a period effect: one representative
    setting for what needs a single one (the cost estimate), never for results."""
    if not calibrated_settings(experiment):
        return experiment
    return from_dict(resolved_values(experiment, _medians(), 0.0))
