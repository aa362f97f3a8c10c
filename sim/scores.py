"""Score models: how similar a probe face looks to a watchlist entry.

A face-search engine such as NEC NeoFace reports a similarity in [0, 1] and raises an alert when
the best candidate reaches a threshold (the Met uses 0.60 to 0.64). lfrsim models scores in a
latent space and maps them to the vendor's scale through a monotone link (the logit): a vendor
score ``s`` is the latent score ``logit(s)``. Thresholds at 0 and 1 map to -inf and +inf, which
every function here accepts.

Two kinds of comparison:

* **Genuine (mated)**: a watchlisted passer against their own entry. The latent score is
  normal with a per-group location and spread, lowered by live-capture quality.
* **Impostor (non-mated)**: probe ``i`` of group ``g`` against entry ``j`` of group ``h``::

      z = mu[g, h] + probe_effect_i + entry_effect_j + noise_ij

  ``mu`` is higher when probe and entry share sex or ethnicity (Howard et al. 2019) and differs
  by probe group (NIST IR 8280). Probe effects model faces that attract matches ("wolves"),
  entry effects the enrolment images that do ("lambs", Doddington et al. 1998). The noise is
  Gaussian, or Gaussian with a generalised-Pareto upper tail above a knot.

Distributions speak scipy.stats' verbs (``sf``, ``logsf``, ``isf``, ``cdf``, ``rvs``) so tail
probabilities down to 1e-300 stay exact in log space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import special

from .groups import DEFAULT_GROUPS, Group, are_declared


def _norm_pdf(z):
    """The standard normal density (as scipy.stats.norm computes it)."""
    return np.exp(-np.square(z) / 2.0) / np.sqrt(2 * np.pi)


def to_latent(score: np.ndarray | float) -> np.ndarray:
    """Vendor score in [0, 1] to the latent (logit) scale; 0 and 1 map to -inf and +inf."""
    with np.errstate(divide="ignore"):
        return special.logit(np.asarray(score, dtype=float))


def to_vendor(latent: np.ndarray | float) -> np.ndarray:
    """Latent score back to the vendor's [0, 1] scale."""
    return special.expit(np.asarray(latent, dtype=float))


class Noise(Protocol):
    """The distribution of one impostor comparison's noise term (scipy.stats verbs)."""

    def sf(self, x: np.ndarray) -> np.ndarray: ...
    def cdf(self, x: np.ndarray) -> np.ndarray: ...
    def logsf(self, x: np.ndarray) -> np.ndarray: ...
    def logcdf(self, x: np.ndarray) -> np.ndarray: ...
    def pdf(self, x: np.ndarray) -> np.ndarray: ...
    def isf(self, q: np.ndarray) -> np.ndarray: ...
    def ppf(self, q: np.ndarray) -> np.ndarray: ...
    def rvs(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray: ...


@dataclass(frozen=True)
class GaussianNoise:
    """Normal noise with standard deviation ``scale`` (latent units)."""

    scale: float

    def sf(self, x):
        return special.ndtr(-np.asarray(x, dtype=float) / self.scale)

    def logsf(self, x):
        return special.log_ndtr(-np.asarray(x, dtype=float) / self.scale)

    def cdf(self, x):
        return special.ndtr(np.asarray(x, dtype=float) / self.scale)

    def logcdf(self, x):
        return special.log_ndtr(np.asarray(x, dtype=float) / self.scale)

    def pdf(self, x):
        return _norm_pdf(np.asarray(x, dtype=float) / self.scale) / self.scale

    def isf(self, q):
        return -special.ndtri(np.asarray(q, dtype=float)) * self.scale

    def ppf(self, q):
        return special.ndtri(np.asarray(q, dtype=float)) * self.scale

    def rvs(self, rng, size):
        return rng.normal(0.0, self.scale, size)


@dataclass(frozen=True)
class ParetoTailNoise:
    """Normal body with a generalised-Pareto upper tail above ``knot`` standard deviations.

    The tail's scale is chosen so that the density is continuous at the knot; ``shape`` > 0 gives
    a heavier tail than the normal (more extreme impostor scores), ``shape`` = 0 an exponential
    one. Below the knot this is exactly the normal.
    """

    scale: float
    knot: float
    shape: float
    _u: float = field(init=False)
    _su: float = field(init=False)
    _beta: float = field(init=False)

    def __post_init__(self) -> None:
        u = self.knot * self.scale
        su = float(special.ndtr(-self.knot))
        beta = su * self.scale / float(_norm_pdf(self.knot))
        object.__setattr__(self, "_u", u)
        object.__setattr__(self, "_su", su)
        object.__setattr__(self, "_beta", beta)

    def _tail_logsf(self, x):
        y = np.maximum(x - self._u, 0.0) / self._beta
        if self.shape == 0.0:
            return np.log(self._su) - y
        return np.log(self._su) - np.log1p(self.shape * y) / self.shape

    def logsf(self, x):
        x = np.asarray(x, dtype=float)
        body = special.log_ndtr(-x / self.scale)
        return np.where(x > self._u, self._tail_logsf(x), body)

    def sf(self, x):
        return np.exp(self.logsf(x))

    def logcdf(self, x):
        x = np.asarray(x, dtype=float)
        return np.where(x > self._u, np.log1p(-np.exp(self._tail_logsf(x))),
                        special.log_ndtr(x / self.scale))

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        y = np.maximum(x - self._u, 0.0) / self._beta
        tail = self._su / self._beta * (1.0 + self.shape * y) ** (-1.0 / self.shape - 1.0) \
            if self.shape != 0.0 else self._su / self._beta * np.exp(-y)
        return np.where(x > self._u, tail, _norm_pdf(x / self.scale) / self.scale)

    def isf(self, q):
        q = np.asarray(q, dtype=float)
        body = -special.ndtri(q) * self.scale
        ratio = np.clip(q / self._su, 1e-300, 1.0)
        if self.shape == 0.0:
            tail = self._u - self._beta * np.log(ratio)
        else:
            tail = self._u + self._beta / self.shape * (ratio ** (-self.shape) - 1.0)
        return np.where(q < self._su, tail, body)

    def ppf(self, q):
        q = np.asarray(q, dtype=float)
        # below the knot this is the normal's ppf, exact even where 1 - q rounds to 1
        return np.where(q <= 1.0 - self._su, special.ndtri(q) * self.scale, self.isf(1.0 - q))

    def cdf(self, x):
        return np.exp(self.logcdf(x))

    def rvs(self, rng, size):
        return self.isf(rng.random(size))


@dataclass(frozen=True)
class EntryEffects:
    """Enrolment-image effects of watchlist entries: normal, plus a share of "lambs" shifted up."""

    sd: float
    lamb_share: float
    lamb_shift: float

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self.sd == 0.0:
            base = (x >= 0.0).astype(float)
            lamb = (x >= self.lamb_shift).astype(float)
        else:
            base = special.ndtr(x / self.sd)
            lamb = special.ndtr((x - self.lamb_shift) / self.sd)
        return (1.0 - self.lamb_share) * base + self.lamb_share * lamb

    def support(self) -> tuple[float, float]:
        """An interval holding all but ~1e-12 of the probability."""
        spread = 7.5 * self.sd
        return min(0.0, self.lamb_shift) - spread, max(0.0, self.lamb_shift) + spread

    def rvs(self, rng: np.random.Generator, size: int) -> np.ndarray:
        lamb = rng.random(size) < self.lamb_share
        return rng.normal(0.0, self.sd, size) + np.where(lamb, self.lamb_shift, 0.0)


@dataclass(frozen=True)
class ScoreModel:
    """Latent score distributions for a set of groups: the matcher as the simulator sees it.

    ``impostor_location[g, h]`` is the mean latent impostor score of a probe of group ``g``
    against an entry of group ``h`` (before probe and entry effects); ``genuine_location[g]`` and
    ``genuine_sd[g]`` describe mated scores, already lowered by live-capture quality.
    """

    groups: tuple[Group, ...]
    impostor_location: np.ndarray
    noise: GaussianNoise | ParetoTailNoise
    probe_effect_sd: float
    entry_effects: EntryEffects
    genuine_location: np.ndarray
    genuine_sd: np.ndarray

    def genuine_logsf(self, g: int, t: np.ndarray, looks: np.ndarray | float = 1.0) -> np.ndarray:
        """log P(best of ``looks`` genuine scores >= t) for a passer of group ``g``."""
        z = (np.asarray(t, dtype=float) - self.genuine_location[g]) / self.genuine_sd[g]
        logcdf = special.log_ndtr(z)
        with np.errstate(divide="ignore"):  # log 0 = -inf: a genuine score that cannot reach t
            return np.log(-np.expm1(np.asarray(looks) * logcdf))

    def genuine_cdf(self, g: int, t: np.ndarray, looks: np.ndarray | float = 1.0) -> np.ndarray:
        """P(best of ``looks`` genuine scores < t)."""
        z = (np.asarray(t, dtype=float) - self.genuine_location[g]) / self.genuine_sd[g]
        logcdf = special.log_ndtr(z)
        return np.exp(np.asarray(looks) * logcdf)

    def genuine_rvs(self, g: np.ndarray, looks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Best-of-``looks`` genuine latent scores for passers of groups ``g`` (order statistics)."""
        u = rng.random(len(g))
        # max of k iid draws: F^-1(U^(1/k)), done in log space to stay exact for large k
        q = -np.expm1(np.log(u) / looks)
        return self.genuine_location[g] - self.genuine_sd[g] * special.ndtri(q)


def effective_looks(frames: np.ndarray, frame_correlation: float) -> np.ndarray:
    """Independent looks a passer gives the matcher: 1 + (frames - 1)(1 - correlation).

    Frames of one passer are strongly correlated; with correlation 1 extra frames add nothing,
    with 0 each frame is a fresh, independent search.
    """
    return 1.0 + (np.asarray(frames, dtype=float) - 1.0) * (1.0 - frame_correlation)


def score_model(params, groups: tuple[Group, ...] = DEFAULT_GROUPS) -> ScoreModel:
    """Build the score model of ``groups`` from ``ScoreParameters`` (``sim.config``).

    mu[g, h] = base + probe shifts of g + entry shifts of h + same-sex and same-ethnicity shifts
    (``impostor_locations``). Declared groups (``sim.groups``, ``[[groups]]``) bring their own
    probe, entry and genuine shifts in place of the ethnicity ones; the calibrated uplift of a
    probe and an entry who share their demographics (Howard et al. 2019) applies to pairs of the
    same declared group, and a group that declares its sex takes the sex shifts as census groups do.
    """
    return ScoreModel(groups=groups, impostor_location=impostor_locations(params, groups),
                      noise=_noise(params), probe_effect_sd=params.probe_effect_sd,
                      entry_effects=_entry_effects(params),
                      genuine_location=_genuine_locations(params, groups),
                      genuine_sd=np.full(len(groups), params.genuine_sd))


def _genuine_locations(params, groups: tuple[Group, ...]) -> np.ndarray:
    """Each group's mean latent genuine score: the base, its ethnicity's (or a declared group's
    own) shift, and the female shift."""
    if are_declared(groups):
        female = np.array([g.sex == "female" for g in groups])
        return (params.genuine_location + np.array([g.genuine_shift for g in groups], dtype=float)
                + params.genuine_female_shift * female)
    return np.array([params.genuine_location + params.genuine_ethnicity_shift[g.ethnicity]
                     + (params.genuine_female_shift if g.sex == "female" else 0.0) for g in groups])


def impostor_locations(params, groups: tuple[Group, ...] = DEFAULT_GROUPS) -> np.ndarray:
    """``mu[g, h]``, the mean latent impostor score of a probe of group ``g`` against an entry of
    group ``h`` (``score_model``'s ``impostor_location``).

    A numeric parameter may be an array of values (one per posterior draw, say) instead of a
    number: ``mu`` then has their shape in front, ``mu[..., g, h]``, each slice exactly the
    matrix the slice's numbers give alone (the same additions in the same order, elementwise).
    """
    n = len(groups)
    female = np.array([g.sex == "female" for g in groups])
    sexes = np.array([g.sex for g in groups])
    if are_declared(groups):
        probe = (np.array([g.probe_shift for g in groups], dtype=float)
                 + _last(params.probe_female_shift) * female)
        entry = (np.array([g.entry_shift for g in groups], dtype=float)
                 + _last(params.entry_female_shift) * female)
        same_sex = (sexes[:, None] == sexes[None, :]) & (sexes[:, None] != "")
        same_ethnicity = np.eye(n)
    else:
        ethnicities = np.array([g.ethnicity for g in groups])
        probe = np.moveaxis(np.array([params.probe_ethnicity_shift[g.ethnicity]
                                      + (params.probe_female_shift if f else 0.0)
                                      for g, f in zip(groups, female, strict=True)], dtype=float), 0, -1)
        entry = np.moveaxis(np.array([params.entry_ethnicity_shift[h.ethnicity]
                                      + (params.entry_female_shift if f else 0.0)
                                      for h, f in zip(groups, female, strict=True)], dtype=float), 0, -1)
        same_sex = sexes[:, None] == sexes[None, :]
        same_ethnicity = ethnicities[:, None] == ethnicities[None, :]
    base = np.asarray(params.impostor_location, dtype=float)
    sex_shift = np.asarray(params.same_sex_shift, dtype=float)
    ethnicity_shift = np.asarray(params.same_ethnicity_shift, dtype=float)
    lead = np.broadcast_shapes(base.shape, sex_shift.shape, ethnicity_shift.shape, probe.shape[:-1],
                               entry.shape[:-1])
    # the shifts added one at a time, in this order, to every (probe, entry) pair at once
    mu = np.empty((*lead, n, n))
    mu[...] = base[..., None, None]
    mu += probe[..., :, None]
    mu += entry[..., None, :]
    mu += sex_shift[..., None, None] * same_sex
    mu += ethnicity_shift[..., None, None] * same_ethnicity
    return mu


def _last(value):
    """A per-draw array's values on a last axis, to broadcast against a per-group array."""
    value = np.asarray(value, dtype=float)
    return value[..., None] if value.ndim else value


def _noise(params) -> GaussianNoise | ParetoTailNoise:
    if params.tail == "pareto":
        return ParetoTailNoise(params.impostor_sd, params.tail_knot_sd, params.tail_shape)
    return GaussianNoise(params.impostor_sd)


def _entry_effects(params) -> EntryEffects:
    return EntryEffects(params.entry_effect_sd, params.lamb_share, params.lamb_shift)
