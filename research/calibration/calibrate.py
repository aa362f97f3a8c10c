"""Joint Bayesian calibration of the matcher, the watchlisted share and the face counting.

One posterior for everything the evidence informs: NPL 2023 (the events it reports), the Met's
2023-2024 deployment records (true and false alerts per deployment, *with* their face counts, and
the faces per hour themselves as a measurement of the counting), NIST IR 8280 and Howard et al.
2019 as proper priors. Nested sampling (dynesty) gives every account's evidence; the accounts of
what the records count are compared by it (and by PSIS-LOO). The Met's 2025 figure (12 false
alerts in 3 million faces) is never an input: ``headline`` compares the posterior with it.

The model
---------
**Score model** (the simulator's, ``sim/scores.py``; logit latent scale, ``t = logit(T)``).
The impostor score of a probe of group g against an entry of group h is
``mu[g,h] + p + e + eps`` with ``eps ~ N(0, sigma^2)``, probe effect ``p ~ N(0, 0.03^2)``, entry
effect ``e ~ N(0, 0.03^2)`` or, for 1% "lambs", ``N(0.10, 0.03^2)``, and::

    mu[g,h] = impostor_location + delta * pattern[eth g] + 0.03 [g female]
              + 0.10 [sex g = sex h] + same_ethnicity_shift [eth g = eth h]

(pattern: Black 1, Asian 0.6, Mixed and Other 0.4, White 0). A watchlist of N entries with
make-up ``w`` (15% female, London's ethnic mix) gives the best-impostor hazard
``H_g(t) = N sum_h w_h E_{p,e}[-log Phi((t - p - mu - e)/sigma)]``. Per-entry tails are ~1e-8,
so ``-log Phi(-x) = S(x)(1 + O(S))`` and the probe and entry effects integrate in closed form
(a sum of normals)::

    f_g(t)  = sum_h w_h [(1-l) S((t - mu_gh)/s) + l S((t - mu_gh - 0.10)/s)],
    s^2     = sigma^2 + 0.03^2 + 0.03^2,        FPIR_g(t, N) = 1 - exp(-N f_g(t)).

Relative difference from ``sim``'s ``fpir_quadrature`` (exact hazard, Gauss-Hermite effects):
< 2e-3 at 0.56-0.64 and N <= 16,000 (``check_against_package``; the residual is the probe-effect
Jensen term at N f ~ 1e-3). It costs microseconds, which nested sampling (10^5 evaluations per
run) needs. Genuine scores are ``N(genuine_location, 0.5^2)``; TPIR(t) = S((t - g)/0.5) (an
impostor beating the own entry above t has probability ~FPIR and is neglected: 3e-5 relative
to ``SearchTable.true_alert_probabilities``).

Free score parameters, in sampler coordinates: ``anchor = impostor_location + 6.5 sigma``,
``log sigma``, ``genuine_location``, ``log10 D``, ``same_ethnicity_shift``. ``D`` is NIST's
differential, the ratio of the highest to the lowest same-group one-to-one false-match rate at
0.60 (Black women over White men under the pattern); the minority shift is solved from it
exactly, ``delta = x0 - 0.03 - sigma * isf(D * S(x0/sigma))`` with ``x0`` the 0.60 threshold
minus White men's diagonal mean. So NIST enters as a proper prior on ``log10 D``
(Normal(1.5, 0.5): the 10-100x of "most algorithms" is its central 68%) and Howard et al. as a
proper prior on the same-ethnicity shift (Normal(0.16, 0.08)); neither is a penalty beside a
mode. NPL's "below 0.60 more Black than White passers falsely matched" is a hard constraint
(Black/White FPIR at 0.58 > 1), as is ``delta >= 0``.

**NPL 2023** as the events it reports. With ``F_T`` the crowd FPIR at T (London crowd, half
female; 10,000 entries, NPL's reference size) and ``E`` the passers NPL searched ("crowds of
more than 130,000", approximate: ``log E ~ Normal(log 130,000, 0.3)``, integrated out by
24-node Gauss-Hermite): 7 false positives at 0.60 ~ Poisson(E F_0.60); higher thresholds keep a
subset, so 1 of 7 at 0.62 ~ Binomial(7, F_0.62/F_0.60) and 0 of 1 at 0.64 ~ Binomial(1,
F_0.64/F_0.62) (exactly the three independent Poisson counts of the score bands); all 7 on
ethnic-minority passers ~ Binomial(7, minority share of F_0.60); TPIR 0.89 of ~4,000 mated
passes ~ Binomial(4000, TPIR_0.60). "1 in 6,000 with 10,000 entries" and "1 in 60,000 with
1,000" are not entered: one measurement (the second is the first scaled by list size), derived
from the same events; counting it as events in an assumed crowd would use NPL twice.

**Records** (``records.fit_rows``: 186 deployments of 2023-2024 with a threshold, faces, a
duration and published alerts). Deployment d: F_d counted faces in H_d hours, counting regime r
(``records.REGIMES``), period p, list size N_d, ward mix ``s_d`` (half female), threshold T_d::

    passers_d  = F_d / k_r                     (k_r: counted faces per passer in regime r)
    pph_d      = passers_d / H_d               (passers per hour)
    E[true_d]  = passers_d * pi * (pph_d / 1000)^gamma * exp(sigma_p z_p) * (N_d/15,000)
                 * sum_g s_dg (w_g / p_g) * TPIR(T_d)
    E[false_d] = passers_d * omega * sum_g s_dg FPIR_g(T_d - shift, N_d)

True alerts are negative binomial around that mean (a gamma deployment effect on the
watchlisted share, variance mu + phi_T mu^2); false alerts negative binomial with phi_F. ``pi``
is watchlisted passers per passer at a 15,000-entry list and 1,000 passers an hour
(log-uniform 1e-5..1e-1); ``gamma`` (Normal(0, 1)) lets the watchlisted share fall at busier
sites (gamma = -1: wanted passers per hour do not depend on footfall); period effects z_p ~
N(0, 1) with sigma_p ~ HalfNormal(0.5). A 2024 row whose regime is uncertain
(``records.Record.p_low_count``, from faces per hour alone) contributes the mixture over the two
2024 regimes.

**Faces per hour as a measurement of the counting** (``Model.footfall_term``): for rows with a
known regime (``records.footfall_rows``, 196 rows, including those without alert figures),
``log(F/H) = log k_r + m + a_ward + e`` with ward effects ``a ~ N(0, site_sd^2)``, day effects
``e ~ N(0, day_sd^2)`` and ``m ~ N(log 1000, 2^2)``; a ward's passers per hour do not depend on
how faces were counted, so wards seen under two regimes identify the ratios of the k's (26
wards are). Gaussian throughout, so ``a`` and ``m`` integrate out exactly.

**Accounts** (``ACCOUNTS``):
(a) ``k = 1, omega = 1, shift = 0``: faces are passers and NPL's FPIR holds in the field;
(b) a lab-to-field shift of the impostor tail, ``shift ~ Normal(0, 0.15)`` latent units (half
    an impostor sd; +-0.15 moves the 0.60 tail by about e^3);
(c) a counted-faces-per-passer factor per regime, ``log k_r ~ Uniform(log 0.1, log 100)``;
(d) records count operator-passed alerts only: ``omega ~ Uniform(0, 1)`` of false matcher
    alerts are recorded (the true-alert pass rate is absorbed into pi);
c+d, b+c; c2 (as c, 2023 sharing the 2024 high-count factor); c0 (as c, gamma = 0). The
footfall elasticity and the faces-per-hour block are in every account that uses the records,
so all accounts explain the same data.

Arrests are a separate conjugate block: arrests_d ~ Binomial(true_d, p_arrest), p_arrest ~
Beta(1, 1), the same in every account.

Sampling (``calibrate``): dynesty (random-walk proposals, multi-ellipsoid bounds) for every
account's evidence; a second independent nested run for the accounts within 5 nats of the best
(R-hat across runs); the best account's draws from emcee (differential-evolution moves, started
at nested draws), whose chains reach R-hat <= 1.01 where nested sampling's few hundred live points
do not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import tomllib
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import special, stats

try:  # as ``sim/calibrate.py`` inside the package
    from . import records as rec  # type: ignore[no-redef]
except ImportError:  # as a script in a scratch directory
    import records as rec  # type: ignore[no-redef]

# -- fixed score-model constants (mirror sim.config.ScoreParameters' defaults) ------------------

SAME_SEX_SHIFT = 0.10
PROBE_FEMALE_SHIFT = 0.03
PROBE_EFFECT_SD = 0.03
ENTRY_EFFECT_SD = 0.03
LAMB_SHARE = 0.01
LAMB_SHIFT = 0.10
GENUINE_SD = 0.50
MINORITY_PATTERN = {"asian": 0.6, "black": 1.0, "mixed": 0.4, "white": 0.0, "other": 0.4}
ANCHOR_Z = 6.5
WATCHLIST_FEMALE_SHARE = 0.15
PREVALENCE_REFERENCE_SIZE = 15_000
NPL_LIST_SIZE = 10_000
MET_THRESHOLDS = (0.60, 0.62, 0.64)
HEADLINE = {"faces": 3_000_000, "threshold": 0.64, "watchlist_size": 16_000}
NPL_EXPOSURE_PRIOR = (130_000.0, 0.3)      # median, sd of log
NIST_LOG10_DIFFERENTIAL_PRIOR = (1.5, 0.5)
SAME_ETHNICITY_PRIOR = (0.16, 0.08)
FIELD_SHIFT_PRIOR_SD = 0.15
PERIOD_SD_PRIOR_SCALE = 0.5
PHI_PRIOR_SCALE = 1.0
LOG10_PI_RANGE = (-5.0, -1.0)
FACES_PER_PASSER_RANGE = (0.1, 100.0)
LOG_FOOTFALL_REFERENCE = math.log(1000.0)   # passers per hour at which pi is quoted
FOOTFALL_PRIOR = (math.log(1000.0), 2.0)    # mean log passers per hour of a ward: Normal(mean, sd)
EXPOSURE_NODES = 24                         # Gauss-Hermite nodes for NPL's exposure

G = len(rec.GROUPS)
ETH_OF_GROUP = np.array([rec.ETHNICITIES.index(g.split("_", 1)[1]) for g in rec.GROUPS])
FEMALE = np.array([g.startswith("female") for g in rec.GROUPS])
PATTERN = np.array([MINORITY_PATTERN[rec.ETHNICITIES[e]] for e in ETH_OF_GROUP])
MINORITY = np.array([rec.ETHNICITIES[e] != "white" for e in ETH_OF_GROUP])
SAME_SEX = (FEMALE[:, None] == FEMALE[None, :]).astype(float)
SAME_ETH = (ETH_OF_GROUP[:, None] == ETH_OF_GROUP[None, :]).astype(float)
BLACK = np.array([rec.ETHNICITIES[e] == "black" for e in ETH_OF_GROUP])
WHITE = np.array([rec.ETHNICITIES[e] == "white" for e in ETH_OF_GROUP])
WHITE_MALE = int(np.flatnonzero(WHITE & ~FEMALE)[0])
SIGMA_EFFECTS2 = PROBE_EFFECT_SD ** 2 + ENTRY_EFFECT_SD ** 2


def logit(x: float | np.ndarray) -> np.ndarray:
    return special.logit(np.asarray(x, dtype=float))


T_MET = logit(np.array(MET_THRESHOLDS))
T_NPL = logit(np.array([0.58, 0.60, 0.62, 0.64]))


# -- accounts and priors --------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    """One account of what the records count (see the module docstring)."""

    name: str
    label: str
    counting: bool = False                 # counted faces per passer, per regime
    shift: bool = False                    # lab-to-field shift of the impostor tail
    operator: bool = False                 # records count operator-passed false alerts only
    factor_of_regime: tuple[int, ...] = (0, 1, 2)   # counting factor used by each of REGIMES
    elasticity: bool = True                # watchlisted share varies with passers per hour
    use_records: bool = True
    npl_exposure_median: float = 130_000.0  # prior median of NPL's searched passers (sensitivity)

    @property
    def n_factors(self) -> int:
        return len(set(self.factor_of_regime)) if self.counting else 0


ACCOUNTS: dict[str, Account] = {a.name: a for a in (
    Account("a", "faces are passers; NPL's FPIR holds in the field"),
    Account("b", "lab-to-field shift of the impostor tail", shift=True),
    Account("c", "counted faces per passer, one factor per counting regime", counting=True),
    Account("d", "records count only operator-passed false alerts", operator=True),
    Account("c+d", "counting factors and an operator filter", counting=True, operator=True),
    Account("b+c", "counting factors and a lab-to-field shift", counting=True, shift=True),
    Account("c2", "counting factors; 2023 shares the 2024 high-count factor", counting=True,
            factor_of_regime=(0, 1, 0)),
    Account("c0", "as c, without the footfall elasticity of the watchlisted share", counting=True,
            elasticity=False),
)}
NPL_ONLY = Account("npl", "NPL 2023 and the priors only (no records)", use_records=False)


@dataclass(frozen=True)
class Prior:
    """A proper prior on one sampler coordinate, with its unit-cube transform."""

    name: str
    kind: str            # "uniform" (a, b) | "normal" (mean a, sd b) | "halfnormal" (scale a)
    a: float
    b: float = 0.0
    source: str = ""

    def transform(self, u: float) -> float:
        if self.kind == "uniform":
            return self.a + (self.b - self.a) * u
        if self.kind == "normal":
            return self.a + self.b * float(special.ndtri(u))
        if self.kind == "halfnormal":
            return self.a * float(special.ndtri(0.5 + 0.5 * u))
        raise ValueError(self.kind)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(n)
        return np.array([self.transform(float(x)) for x in u])

    def describe(self) -> str:
        if self.kind == "uniform":
            return f"Uniform({self.a:g}, {self.b:g})"
        if self.kind == "normal":
            return f"Normal({self.a:g}, {self.b:g})"
        return f"HalfNormal({self.a:g})"


def priors(account: Account) -> list[Prior]:
    """The sampler coordinates of ``account`` and their priors, in order."""
    out = [
        Prior("anchor", "uniform", -1.5, 2.5, "impostor_location + 6.5 impostor_sd; wide"),
        Prior("log_impostor_sd", "uniform", math.log(0.05), math.log(1.5), "wide"),
        Prior("genuine_location", "uniform", -1.0, 3.0, "wide"),
        Prior("log10_nist_differential", "normal", *NIST_LOG10_DIFFERENTIAL_PRIOR,
              "NIST IR 8280: 10-100x for most algorithms (central 68%)"),
        Prior("same_ethnicity_shift", "normal", *SAME_ETHNICITY_PRIOR, "Howard et al. 2019"),
    ]
    if account.use_records:
        out += [Prior("log10_watchlisted_per_passer", "uniform", *LOG10_PI_RANGE, "wide"),
                Prior("period_sd", "halfnormal", PERIOD_SD_PRIOR_SCALE, 0.0,
                      "period effects on the watchlisted share: tens of percent")]
        out += [Prior(f"period_z_{i}", "normal", 0.0, 1.0, "non-centred period effect")
                for i in range(len(rec.PERIODS))]
        out += [Prior("phi_true", "halfnormal", PHI_PRIOR_SCALE, 0.0, "NB overdispersion, true alerts"),
                Prior("phi_false", "halfnormal", PHI_PRIOR_SCALE, 0.0, "NB overdispersion, false alerts")]
        for j in range(account.n_factors):
            out.append(Prior(f"log_faces_per_passer_{j}", "uniform", math.log(FACES_PER_PASSER_RANGE[0]),
                             math.log(FACES_PER_PASSER_RANGE[1]), "one counted face per 10 passers to 100 per passer"))
        if account.operator:
            out.append(Prior("operator_pass_false", "uniform", 0.0, 1.0, "share of false matcher alerts recorded"))
        if account.shift:
            out.append(Prior("field_shift", "normal", 0.0, FIELD_SHIFT_PRIOR_SD,
                             "lab-to-field impostor shift, latent units"))
        if account.elasticity:
            out.append(Prior("footfall_elasticity", "normal", 0.0, 1.0,
                             "d log(watchlisted share) / d log(passers per hour); 0 = none, -1 = "
                             "wanted passers per hour independent of footfall"))
        out += [Prior("site_sd", "halfnormal", 1.0, 0.0, "sd of log passers per hour between wards"),
                Prior("day_sd", "halfnormal", 1.0, 0.0, "sd of log passers per hour within a ward")]
    return out


# -- the evidence as arrays -------------------------------------------------------------------

def _published_figures() -> dict[str, Any]:
    with open(rec.data_dir() / "published_figures.toml", "rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True)
class Data:
    """Observed counts and the covariates that predict them."""

    rows: tuple[rec.Record, ...]
    shares: np.ndarray          # (D, G) crowd mix
    size: np.ndarray            # (D,) watchlist size
    tidx: np.ndarray            # (D,) index into MET_THRESHOLDS
    faces: np.ndarray           # (D,)
    log_fph: np.ndarray         # (D,) log counted faces per hour
    regime_logp: np.ndarray     # (D, 3) log P(regime)
    period: np.ndarray          # (D,) index into PERIODS
    y_true: np.ndarray
    y_false: np.ndarray
    arrests: np.ndarray
    prevalence_weight: np.ndarray   # (D,) sum_g s_dg w_g / p_g
    watchlist: np.ndarray       # (G,)
    npl_crowd: np.ndarray       # (G,)
    npl: dict[str, int]
    ff_rows: tuple[rec.Record, ...] = ()   # the faces-per-hour block (records.footfall_rows)
    ff_y: np.ndarray = field(default_factory=lambda: np.zeros(0))        # log faces per hour
    ff_regime: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ff_ward: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n(self) -> int:
        return len(self.rows)

    @classmethod
    def from_records(cls, rows: Sequence[rec.Record], footfall: Sequence[rec.Record] | None = None,
                     npl: dict[str, int] | None = None) -> Data:
        """Arrays of the alert rows ``rows`` and of the faces-per-hour rows ``footfall``
        (default ``records.footfall_rows()``); ``npl`` overrides NPL's counts (simulations)."""
        rows = tuple(rows)
        ff = tuple(rec.footfall_rows() if footfall is None else footfall)
        wards = sorted({r.ward_code for r in ff})
        london = np.array(rec.london_ethnicity_shares())
        watchlist = rec.group_shares(london, WATCHLIST_FEMALE_SHARE)
        population = rec.group_shares(london, 0.5)
        shares = np.array([r.group_shares(0.5) for r in rows]).reshape(-1, G)
        with np.errstate(divide="ignore"):
            logp = np.log(np.array([r.regime_probabilities for r in rows]).reshape(-1, 3))
        figs = _published_figures()["npl_2023"]
        mated = int(figs["volunteers"]) * 10
        npl_ = {"fp_0.60": int(figs["false_positives_at_0_60"]), "fp_0.62": int(figs["false_positives_at_0_62"]),
               "fp_0.64": int(figs["false_positives_at_0_64"]),
               "fp_0.60_minority": int(figs["false_positives_at_0_60"]),   # "all were from ethnic minorities"
               "mated": mated, "mated_alerts": int(round(float(figs["tpir_at_0_60"]) * mated))}
        npl = dict(npl) if npl is not None else npl_
        return cls(rows=rows, shares=shares, size=np.array([r.watchlist_size for r in rows], dtype=float),
                   tidx=np.array([MET_THRESHOLDS.index(round(r.threshold, 2)) for r in rows], dtype=np.int64),
                   faces=np.array([r.faces for r in rows], dtype=float), regime_logp=logp,
                   log_fph=np.log(np.array([r.faces / r.hours for r in rows], dtype=float)),
                   period=np.array([rec.PERIODS.index(r.period) for r in rows], dtype=np.int64),
                   y_true=np.array([r.true_alerts for r in rows], dtype=np.int64),
                   y_false=np.array([r.false_alerts for r in rows], dtype=np.int64),
                   arrests=np.array([r.arrests for r in rows], dtype=np.int64),
                   prevalence_weight=shares @ (watchlist / population), watchlist=watchlist,
                   npl_crowd=population, npl=npl, ff_rows=ff,
                   ff_y=np.log(np.array([r.faces_per_hour for r in ff], dtype=float)),
                   ff_regime=np.array([rec.REGIMES.index(r.regime) for r in ff], dtype=np.int64),
                   ff_ward=np.array([wards.index(r.ward_code) for r in ff], dtype=np.int64))

    def without_period(self, period: str) -> Data:
        return Data.from_records([r for r in self.rows if r.period != period],
                                 [r for r in self.ff_rows if r.period != period], self.npl)

    def only_period(self, period: str) -> Data:
        return Data.from_records([r for r in self.rows if r.period == period],
                                 [r for r in self.ff_rows if r.period == period], self.npl)


# -- the score model in closed form -------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    """Derived score-model quantities of one parameter vector."""

    impostor_location: float
    impostor_sd: float
    genuine_location: float
    minority_shift: float
    same_ethnicity_shift: float
    mu: np.ndarray              # (G, G)
    valid: bool
    base: np.ndarray = field(default_factory=lambda: np.zeros(G))   # (G,) mu[g, h] without pair shifts

    def per_entry(self, t: np.ndarray, watchlist: np.ndarray) -> np.ndarray:
        """f_g(t): per-entry exceedance of a list of make-up ``watchlist``, shape (len(t), G).

        mu[g, h] takes four values per probe group (same sex or not x same ethnicity or not), so
        the sum over entry groups runs over those four with the list's weight on each.
        """
        s = math.sqrt(self.impostor_sd ** 2 + SIGMA_EFFECTS2)
        weights = _combo_weights(tuple(float(v) for v in watchlist))            # (G, 4)
        shifts = np.array([0.0, self.same_ethnicity_shift, SAME_SEX_SHIFT, SAME_SEX_SHIFT + self.same_ethnicity_shift])
        z = (np.asarray(t, dtype=float)[:, None, None] - self.base[None, :, None] - shifts[None, None, :]) / s
        tail = (1.0 - LAMB_SHARE) * special.ndtr(-z) + LAMB_SHARE * special.ndtr(LAMB_SHIFT / s - z)
        return np.einsum("tgc,gc->tg", tail, weights)

    def fpir(self, t: np.ndarray, size: float | np.ndarray, watchlist: np.ndarray) -> np.ndarray:
        """FPIR_g(t, N) = 1 - exp(-N f_g(t)), shape (len(t), G) (``size`` broadcast on axis 0)."""
        return -np.expm1(-np.asarray(size, dtype=float).reshape(-1, 1) * self.per_entry(t, watchlist))

    def tpir(self, t: np.ndarray) -> np.ndarray:
        return special.ndtr((self.genuine_location - np.asarray(t, dtype=float)) / GENUINE_SD)

    def one_to_one_fmr(self, t: float) -> np.ndarray:
        """Same-group one-to-one false-match rate per group (no probe/entry effects), as NIST."""
        return special.ndtr(-(t - np.diag(self.mu)) / self.impostor_sd)

    def score_parameters(self) -> dict[str, Any]:
        """The ``sim.config.ScoreParameters`` fields this vector sets."""
        return {"impostor_location": self.impostor_location, "impostor_sd": self.impostor_sd,
                "genuine_location": self.genuine_location, "same_ethnicity_shift": self.same_ethnicity_shift,
                "probe_ethnicity_shift": {e: self.minority_shift * MINORITY_PATTERN[e] for e in rec.ETHNICITIES}}


@lru_cache(maxsize=8)
def _combo_weights(watchlist: tuple[float, ...]) -> np.ndarray:
    """W[g, c]: the list's share of entries in pair class c = 2 [same sex] + [same ethnicity]."""
    w = np.asarray(watchlist)
    combo = (2 * SAME_SEX + SAME_ETH).astype(int)
    out = np.zeros((G, 4))
    for c in range(4):
        out[:, c] = (combo == c).astype(float) @ w
    return out


def score_from(anchor: float, log_sd: float, genuine: float, log10_d: float, same_eth: float) -> Score:
    """Build the score model from sampler coordinates, solving the minority shift from NIST's D."""
    sd = math.exp(log_sd)
    loc = anchor - ANCHOR_Z * sd
    t60 = float(logit(0.60))
    x0 = t60 - loc - SAME_SEX_SHIFT - same_eth            # threshold minus White men's diagonal mean
    log_q = log10_d * math.log(10.0) + float(special.log_ndtr(-x0 / sd))
    valid = log_q < -1e-12
    delta = x0 - PROBE_FEMALE_SHIFT + sd * float(special.ndtri_exp(log_q)) if valid else float("nan")
    valid = valid and 0.0 <= delta <= 1.5
    shift = delta * PATTERN + PROBE_FEMALE_SHIFT * FEMALE if valid else np.zeros(G)
    mu = loc + shift[:, None] + SAME_SEX_SHIFT * SAME_SEX + same_eth * SAME_ETH
    return Score(loc, sd, genuine, delta, same_eth, mu, bool(valid), loc + shift)


# -- likelihood ---------------------------------------------------------------------------------

def _binom_logpmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def _poisson_logpmf(k: int, mu: float) -> float:
    if mu <= 0.0:
        return 0.0 if k == 0 else -math.inf
    return k * math.log(mu) - mu - math.lgamma(k + 1)


def nb_logpmf(y: np.ndarray, mu: np.ndarray, phi: float, lgy1: np.ndarray, ymax: int) -> np.ndarray:
    """log NB(y | mean mu, variance mu + phi mu^2), exact down to phi -> 0 (Poisson).

    log NB = sum_{j<y} log1p(j phi) - log y! + y log mu - (1/phi + y) log1p(mu phi),
    the form in which the y log(1/phi) terms cancel analytically.
    """
    if phi <= 1e-300:
        return y * np.log(mu) - mu - lgy1
    table = np.concatenate([[0.0], np.cumsum(np.log1p(np.arange(max(ymax, 1)) * phi))])
    return table[y] - lgy1 + y * np.log(mu) - (1.0 / phi + y) * np.log1p(mu * phi)


def nb_logpmf_log(y: np.ndarray, log_mu: np.ndarray, phi: float, lgy1: np.ndarray, ymax: int) -> np.ndarray:
    """``nb_logpmf`` from log means (saves a log per element)."""
    if phi <= 1e-300:
        return y * log_mu - np.exp(log_mu) - lgy1
    table = np.concatenate([[0.0], np.cumsum(np.log1p(np.arange(max(ymax, 1)) * phi))])
    return table[y] - lgy1 + y * log_mu - (1.0 / phi + y) * np.log1p(np.exp(log_mu) * phi)


class Model:
    """Likelihood and prior transform of one account on one data set."""

    def __init__(self, account: Account, data: Data) -> None:
        self.account = account
        self.data = data
        self.priors = priors(account)
        self.names = [p.name for p in self.priors]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.ndim = len(self.priors)
        d = data
        self._lgt = special.gammaln(d.y_true + 1.0)
        self._lgf = special.gammaln(d.y_false + 1.0)
        self._ymax_t = int(d.y_true.max()) if d.n else 0
        self._ymax_f = int(d.y_false.max()) if d.n else 0
        self._scale_true = (d.size / PREVALENCE_REFERENCE_SIZE) * d.prevalence_weight
        # (row, regime) pairs with P(regime) > 1e-12: at most two per row (2023, or the two of 2024)
        if account.counting:
            pairs = [(i, r) for i in range(d.n) for r in range(len(rec.REGIMES))
                     if d.regime_logp[i, r] > math.log(1e-12)]
        else:       # no counting factor: the regime does not matter, one term per row
            pairs = [(i, 0) for i in range(d.n)]
        self._pr = np.array([p[0] for p in pairs], dtype=np.int64)
        self._rr = np.array([p[1] for p in pairs], dtype=np.int64)
        self._plogp = (d.regime_logp[self._pr, self._rr] if account.counting else np.zeros(len(pairs))) \
            if pairs else np.zeros(0)
        slot = np.zeros(len(pairs), dtype=np.int64)
        for j in range(1, len(pairs)):
            if self._pr[j] == self._pr[j - 1]:
                slot[j] = slot[j - 1] + 1
        self._slot = slot
        self._pyt, self._pyf = d.y_true[self._pr], d.y_false[self._pr]
        self._plgt, self._plgf = self._lgt[self._pr], self._lgf[self._pr]
        self._pfaces = d.faces[self._pr]
        self._plogfph = d.log_fph[self._pr]
        kinds = [p.kind for p in self.priors]
        self._uni = np.array([k == "uniform" for k in kinds])
        self._nor = np.array([k == "normal" for k in kinds])
        self._half = np.array([k == "halfnormal" for k in kinds])
        self._pa = np.array([p.a for p in self.priors])
        self._pb = np.array([p.b for p in self.priors])
        self._iz = np.array([self.index[f"period_z_{i}"] for i in range(len(rec.PERIODS))]
                            if account.use_records else [], dtype=np.int64)
        self._ik = np.array([self.index[f"log_faces_per_passer_{j}"] for j in range(account.n_factors)],
                            dtype=np.int64)
        self._factor_of_regime = np.array(account.factor_of_regime, dtype=np.int64)
        self._ff_n = np.bincount(d.ff_ward).astype(float) if len(d.ff_ward) else np.zeros(0)
        # faces-per-hour block as sufficient statistics: y' = log fph - prior mean
        yc = d.ff_y - FOOTFALL_PRIOR[0]
        n_w = len(self._ff_n)
        self._ff_syy = float(np.dot(yc, yc))
        self._ff_sy = np.bincount(d.ff_ward, weights=yc, minlength=n_w) if n_w else np.zeros(0)
        self._ff_nr = np.zeros((n_w, len(rec.REGIMES)))                       # rows per ward x regime
        if n_w:
            np.add.at(self._ff_nr, (d.ff_ward, d.ff_regime), 1.0)
        self._ff_yr = np.bincount(d.ff_regime, weights=yc, minlength=len(rec.REGIMES))
        self._ff_count_r = np.bincount(d.ff_regime, minlength=len(rec.REGIMES)).astype(float)
        self._npl_w = np.column_stack([d.npl_crowd, d.npl_crowd * MINORITY, BLACK / BLACK.sum(),
                                       WHITE / WHITE.sum()])
        # NPL's exposure, log E ~ N(log median, 0.3^2), integrated out by Gauss-Hermite
        gx, gw = np.polynomial.hermite_e.hermegauss(EXPOSURE_NODES)
        self._exp_l = math.log(account.npl_exposure_median) + NPL_EXPOSURE_PRIOR[1] * gx
        self._exp_logw = np.log(gw / gw.sum())
        scale = (d.size / PREVALENCE_REFERENCE_SIZE) * d.prevalence_weight
        pr = self._pr
        self._p_logfaces = np.log(d.faces[pr])
        self._p_logscale = np.log(scale[pr])
        self._p_period = d.period[pr]
        self._p_tidx = d.tidx[pr]
        self._rows = np.arange(d.n)
        self._size2 = d.size ** 2 / 2.0
        self._two = np.full((d.n, 2), -np.inf)

    # the unit cube -> parameters
    def prior_transform(self, u: np.ndarray) -> np.ndarray:
        """Unit cube to parameters: each coordinate by its prior's inverse cdf."""
        u = np.asarray(u, dtype=float)
        out = np.empty(self.ndim)
        out[self._uni] = self._pa[self._uni] + (self._pb[self._uni] - self._pa[self._uni]) * u[self._uni]
        out[self._nor] = self._pa[self._nor] + self._pb[self._nor] * special.ndtri(u[self._nor])
        out[self._half] = self._pa[self._half] * special.ndtri(0.5 + 0.5 * u[self._half])
        return out

    def log_prior(self, x: np.ndarray) -> float:
        """log prior density of sampler coordinates ``x`` (-inf outside the support)."""
        x = np.asarray(x, dtype=float)
        u, n, h = self._uni, self._nor, self._half
        if np.any(x[u] < self._pa[u]) or np.any(x[u] > self._pb[u]) or np.any(x[h] < 0.0):
            return -np.inf
        lp = -float(np.sum(np.log(self._pb[u] - self._pa[u])))
        zn = (x[n] - self._pa[n]) / self._pb[n]
        lp += float(np.sum(-0.5 * zn ** 2 - np.log(self._pb[n]) - 0.5 * math.log(2 * math.pi)))
        zh = x[h] / self._pa[h]
        lp += float(np.sum(-0.5 * zh ** 2 - np.log(self._pa[h]) + 0.5 * math.log(2 / math.pi)))
        return lp

    def log_posterior(self, x: np.ndarray) -> float:
        """Unnormalised log posterior (for MCMC)."""
        lp = self.log_prior(x)
        return lp + self.loglike(x) if math.isfinite(lp) else -np.inf

    def get(self, x: np.ndarray, name: str, default: float = 0.0) -> float:
        i = self.index.get(name)
        return float(x[i]) if i is not None else default

    def score(self, x: np.ndarray) -> Score:
        return score_from(float(x[0]), float(x[1]), float(x[2]), float(x[3]), float(x[4]))

    def factors(self, x: np.ndarray) -> np.ndarray:
        """Counted faces per passer of each of REGIMES (ones where the account has none)."""
        if not self.account.counting:
            return np.ones(len(rec.REGIMES))
        return np.exp(np.asarray(x)[self._ik])[self._factor_of_regime]

    # NPL
    def npl_terms(self, x: np.ndarray, s: Score, per_entry: np.ndarray | None = None) -> np.ndarray:
        """log-likelihood of NPL's five observations (+ the 0.58 constraint as -inf).

        ``per_entry``: f_g(t) at T_NPL if already computed."""
        d = self.data
        f = s.per_entry(T_NPL, d.watchlist) if per_entry is None else per_entry
        fp = -np.expm1(-NPL_LIST_SIZE * f)                  # (4, G) at 0.58, 0.60, 0.62, 0.64
        v = fp @ self._npl_w                                 # crowd at 4 T; minority at .60; B, W at .58
        f60, f62, f64 = float(v[1, 0]), float(v[2, 0]), float(v[3, 0])
        if not (v[0, 2] > v[0, 3] and f60 > 0.0):           # Black/White at 0.58 must exceed 1
            return np.full(5, -np.inf)
        minority = float(v[1, 1]) / f60
        n = d.npl
        tpir = float(special.ndtr((s.genuine_location - T_NPL[1]) / GENUINE_SD))
        return np.array([
            self.npl_exposure_term(n["fp_0.60"], f60),
            _binom_logpmf(n["fp_0.62"], n["fp_0.60"], min(f62 / f60, 1.0)),
            _binom_logpmf(n["fp_0.64"], n["fp_0.62"], min(f64 / f62, 1.0) if f62 > 0 else 0.0),
            _binom_logpmf(n["fp_0.60_minority"], n["fp_0.60"], minority),
            _binom_logpmf(n["mated_alerts"], n["mated"], tpir),
        ])

    def npl_exposure_term(self, k: int, f60: float) -> float:
        """log of int Poisson(k | E f60) LogNormal(E) dE: NPL's uncertain crowd integrated out."""
        mu = np.exp(self._exp_l) * f60
        t = self._exp_logw + k * np.log(mu) - mu - math.lgamma(k + 1)
        m = float(t.max())
        return m + math.log(float(np.exp(t - m).sum()))

    def npl_exposure_mean(self, k: int, f60: float) -> float:
        """E[E | k false positives, f60]: the posterior mean of NPL's exposure given the tail."""
        mu = np.exp(self._exp_l) * f60
        t = self._exp_logw + k * np.log(mu) - mu
        w = np.exp(t - t.max())
        return float(np.dot(w, np.exp(self._exp_l)) / w.sum())

    # records
    def rates(self, x: np.ndarray, s: Score, data: Data | None = None,
              per_entry: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(true, false) alerts per *passer* of each deployment (before the counting factor).

        ``per_entry``: f_g(t) at T_MET - field shift if already computed."""
        d = data or self.data
        if per_entry is None:
            per_entry = s.per_entry(T_MET - self.get(x, "field_shift"), d.watchlist)      # (3, G)
        if float(per_entry.max()) * float(d.size.max()) < 1e-2:
            # 1 - exp(-N f) = N f - (N f)^2 / 2 + O((N f)^3): relative error < 2e-5 here
            sf = d.shares @ per_entry.T                                          # (D, 3)
            sf2 = d.shares @ (per_entry ** 2).T
            rows = np.arange(d.n)
            false = d.size * sf[rows, d.tidx] - (d.size ** 2 / 2.0) * sf2[rows, d.tidx]
        else:
            fp = -np.expm1(-d.size[:, None] * per_entry[d.tidx])                 # (D, G)
            false = np.einsum("dg,dg->d", d.shares, fp)
        false = false * self.get(x, "operator_pass_false", 1.0)
        pi = 10.0 ** self.get(x, "log10_watchlisted_per_passer")
        sd = self.get(x, "period_sd")
        z = np.asarray(x)[self._iz]
        scale = (d.size / PREVALENCE_REFERENCE_SIZE) * d.prevalence_weight
        true = pi * np.exp(sd * z[d.period]) * scale * s.tpir(T_MET)[d.tidx]
        return true, false

    def records_terms(self, x: np.ndarray, s: Score, per_entry: np.ndarray | None = None) -> np.ndarray:
        """Per-deployment log-likelihood, marginal over the row's counting regime:
        log sum_r P(r) NB(true | F/k_r * rate_T) NB(false | F/k_r * rate_F)."""
        d = self.data
        if d.n == 0:
            return np.zeros(0)
        if per_entry is None:
            per_entry = s.per_entry(T_MET - self.get(x, "field_shift"), d.watchlist)
        # false alerts per passer of each row (second order in N f; exact fallback)
        if float(per_entry.max()) * float(d.size.max()) < 1e-2:
            both = d.shares @ np.vstack([per_entry, per_entry ** 2]).T             # (D, 6)
            rf = d.size * both[self._rows, d.tidx] - self._size2 * both[self._rows, d.tidx + 3]
        else:
            rf = np.einsum("dg,dg->d", d.shares, -np.expm1(-d.size[:, None] * per_entry[d.tidx]))
        rf = rf * self.get(x, "operator_pass_false", 1.0)
        # log expected counts of each (row, regime) pair
        logk = np.log(self.factors(x))[self._rr]
        z = np.asarray(x)[self._iz]
        gamma = self.get(x, "footfall_elasticity")
        log_tpir = special.log_ndtr((s.genuine_location - T_MET) / GENUINE_SD)
        log_passers = self._p_logfaces - logk
        log_mt = (math.log(10.0) * self.get(x, "log10_watchlisted_per_passer") + self.get(x, "period_sd") * z[self._p_period]
                  + self._p_logscale + log_tpir[self._p_tidx] + log_passers)
        if gamma:
            log_mt = log_mt + gamma * (self._plogfph - logk - LOG_FOOTFALL_REFERENCE)
        log_mf = log_passers + np.log(rf)[self._pr]
        ll = (self._plogp + nb_logpmf_log(self._pyt, log_mt, self.get(x, "phi_true"), self._plgt, self._ymax_t)
              + nb_logpmf_log(self._pyf, log_mf, self.get(x, "phi_false"), self._plgf, self._ymax_f))
        if not self.account.counting:
            return ll
        terms = self._two.copy()
        terms[self._pr, self._slot] = ll
        return np.logaddexp(terms[:, 0], terms[:, 1])

    def footfall_term(self, x: np.ndarray) -> float:
        """log density of the rows' log faces per hour, marginal over ward effects and the mean.

        ``log fph_i = log k_(regime i) + m + a_(ward i) + e_i``: a ward's passers per hour
        ``exp(m + a)`` do not depend on how faces were counted; ``a ~ N(0, site_sd^2)``,
        ``e ~ N(0, day_sd^2)``, ``m ~ N(log 1000, 2^2)``. All Gaussian, so the ward effects and
        m integrate out exactly: ``y = log fph - log k`` is N(log 1000, Sigma) with Sigma =
        day^2 I + site^2 Z Z' + 4 * 11', evaluated blockwise (Sherman-Morrison per ward, then
        a rank-one update for m).
        """
        d = self.data
        if len(d.ff_y) == 0:
            return 0.0
        tau2 = max(self.get(x, "day_sd"), 1e-6) ** 2
        sa2 = self.get(x, "site_sd") ** 2
        logk = np.log(self.factors(x))
        n = self._ff_n
        c = sa2 / (tau2 + n * sa2)                                   # per ward
        sum_r = self._ff_sy - self._ff_nr @ logk                     # per-ward sums of r = y' - log k
        rr = self._ff_syy - 2.0 * float(self._ff_yr @ logk) + float(self._ff_count_r @ logk ** 2)
        ainv_r_dot_r = (rr - np.dot(c, sum_r ** 2)) / tau2            # r' A^-1 r
        one_ainv_r = np.sum(sum_r * (1.0 - c * n)) / tau2              # 1' A^-1 r
        one_ainv_one = np.sum(n * (1.0 - c * n)) / tau2                # 1' A^-1 1
        s0 = FOOTFALL_PRIOR[1] ** 2
        quad = ainv_r_dot_r - s0 * one_ainv_r ** 2 / (1.0 + s0 * one_ainv_one)
        logdet = float(np.sum(n * math.log(tau2) + np.log1p(n * sa2 / tau2))) + math.log1p(s0 * one_ainv_one)
        return -0.5 * (quad + logdet + len(d.ff_y) * math.log(2 * math.pi))

    def expected(self, x: np.ndarray, data: Data) -> tuple[np.ndarray, np.ndarray]:
        """Expected (true, false) alerts of ``data``'s rows in each of REGIMES, shape (D, 3)."""
        s = self.score(x)
        rt, rf = self.rates(x, s, data)
        k = self.factors(x)
        passers = data.faces[:, None] / k[None, :]
        mt = passers * rt[:, None]
        gamma = self.get(x, "footfall_elasticity")
        if gamma:
            mt = mt * np.exp(gamma * (data.log_fph[:, None] - np.log(k)[None, :] - LOG_FOOTFALL_REFERENCE))
        return mt, passers * rf[:, None]

    def pointwise(self, x: np.ndarray) -> np.ndarray:
        """log-likelihood of every observation: NPL's five, then one per deployment."""
        s = self.score(x)
        if not s.valid:
            return np.full(5 + (self.data.n if self.account.use_records else 0), -np.inf)
        shift = self.get(x, "field_shift")
        if shift == 0.0:     # one evaluation of the tails serves NPL and the records
            f = s.per_entry(T_NPL, self.data.watchlist)
            f_met = f[1:]
        else:
            f_all = s.per_entry(np.concatenate([T_NPL, T_MET - shift]), self.data.watchlist)
            f, f_met = f_all[:4], f_all[4:]
        npl = self.npl_terms(x, s, f)
        if not self.account.use_records:
            return npl
        return np.concatenate([npl, self.records_terms(x, s, f_met)])

    def loglike(self, x: np.ndarray) -> float:
        """Total log-likelihood: NPL, the alert rows, and the faces-per-hour block."""
        v = float(self.pointwise(x).sum())
        if self.account.use_records and math.isfinite(v):
            v += self.footfall_term(x)
        return v if math.isfinite(v) else -np.inf


# -- derived quantities -------------------------------------------------------------------------

def headline_crowd() -> np.ndarray:
    """Crowd of the headline: mean ward mix of the 0.64 deployments, half female (over GROUPS)."""
    return rec.group_shares(rec.headline_ethnicity_shares(), 0.5)


def derived(model: Model, x: np.ndarray) -> dict[str, float]:
    """Named quantities of one draw that forward runs and reports use."""
    s = model.score(x)
    d = model.data
    out: dict[str, float] = {"impostor_location": s.impostor_location, "impostor_sd": s.impostor_sd,
                             "minority_probe_shift": s.minority_shift}
    k = model.factors(x)
    for name, v in zip(rec.REGIMES, k, strict=True):
        out[f"faces_per_passer[{name}]"] = float(v)
    out["watchlisted_per_passer"] = 10.0 ** model.get(x, "log10_watchlisted_per_passer", float("nan"))
    f60 = float((s.fpir(T_NPL[1:2], NPL_LIST_SIZE, d.watchlist) @ d.npl_crowd)[0])
    out["npl_exposure"] = model.npl_exposure_mean(d.npl["fp_0.60"], f60)
    crowd = headline_crowd()
    shift = model.get(x, "field_shift")
    omega = model.get(x, "operator_pass_false", 1.0)
    size = HEADLINE["watchlist_size"]
    fp_lab = s.fpir(logit(np.array([0.60, 0.62, 0.64])), size, d.watchlist)     # (3, G)
    fp_field = s.fpir(logit(np.array([0.60, 0.64])) - shift, size, d.watchlist)
    npl = s.fpir(T_NPL, NPL_LIST_SIZE, d.watchlist) @ d.npl_crowd
    out["npl_fpir_0.60_n10000"] = float(npl[1])
    out["fpir_ratio_0.64_0.60"] = float((fp_lab[2] @ crowd) / (fp_lab[0] @ crowd))
    out["fpir_ratio_0.62_0.60"] = float((fp_lab[1] @ crowd) / (fp_lab[0] @ crowd))
    fpir64 = float(fp_field[1] @ crowd)
    out["field_fpir_0.64_n16000"] = fpir64
    out["recorded_false_per_passer_0.64"] = fpir64 * omega
    passers = HEADLINE["faces"] / k[rec.REGIMES.index("2024 high count")]
    out["headline_expected_false"] = passers * fpir64 * omega
    out["headline_passers"] = passers
    tp = float(s.tpir(logit(np.array([0.64])))[0])
    out["tpir_0.64"] = tp
    fmr = s.one_to_one_fmr(float(logit(0.60)))
    out["nist_differential"] = float(fmr.max() / fmr.min())
    bw = {}
    for t in (0.56, 0.60, 0.64):
        f = s.fpir(logit(np.array([t])), size, d.watchlist)[0]
        bw[t] = float(f[BLACK].mean() / f[WHITE].mean())
        out[f"black_white_fpir_{t:.2f}"] = bw[t]
    share = fp_field[1] * crowd
    share = share / share.sum()
    for g, name in enumerate(rec.GROUPS):
        out[f"false_share_0.64[{name}]"] = float(share[g])
    return out


# -- fitting ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """Sampler settings. The default is the *refine* setting of the shipped calibration (two
    independent runs, R-hat across them); ``screen`` is the cheaper first pass every account gets
    (and the leave-one-period-out refits); ``reduced`` is for tests (seconds, not a posterior)."""

    nlive: int = 100
    sample: str = "rwalk"
    walks: int = 25
    dlogz: float = 0.1
    maxiter: int | None = None
    runs: int = 2                   # independent runs per fit (R-hat across them when > 1)
    draws: int = 2000               # equal-weight draws kept per fit

    @classmethod
    def screen(cls) -> Settings:
        return cls(nlive=100, walks=25, runs=1, draws=1500)

    @classmethod
    def lopo(cls) -> Settings:
        return cls(nlive=100, walks=25, runs=1, draws=1500)

    @classmethod
    def reduced(cls) -> Settings:
        return cls(nlive=40, walks=10, dlogz=5.0, maxiter=500, runs=1, draws=300)


@dataclass
class Posterior:
    """A fitted account: equal-weight draws (named), log-evidence and diagnostics."""

    account: str
    names: list[str]                       # sampler coordinates
    samples: dict[str, np.ndarray]         # sampler coordinates and derived quantities
    logz: float
    logz_err: float
    diagnostics: dict[str, Any]
    periods: tuple[str, ...] = field(default=rec.PERIODS)
    pointwise: np.ndarray | None = None    # (draws, observations) log-likelihood, for PSIS-LOO
    raw_runs: list[dict[str, Any]] = field(default_factory=list, repr=False)   # dynesty runs
    model: Model | None = field(default=None, repr=False)
    settings: Settings | None = field(default=None, repr=False)
    chain: np.ndarray | None = field(default=None, repr=False)       # emcee chain (kept steps, walkers, ndim)

    def matrix(self) -> np.ndarray:
        return np.column_stack([self.samples[n] for n in self.names])

    def summary(self, name: str) -> dict[str, float]:
        v = np.asarray(self.samples[name], dtype=float)
        q = np.quantile(v, [0.025, 0.5, 0.975])
        return {"mean": float(v.mean()), "sd": float(v.std()), "q2.5": float(q[0]), "median": float(q[1]),
                "q97.5": float(q[2])}


def _seed_for(seed: int, *key: str | int) -> np.random.SeedSequence:
    words = [int(seed)] + [zlib.crc32(str(k).encode()) for k in key]
    return np.random.SeedSequence(words)


def _run_dynesty(model: Model, settings: Settings, ss: np.random.SeedSequence) -> dict[str, Any]:
    import dynesty

    rng = np.random.default_rng(ss)
    t0 = time.perf_counter()
    kw: dict[str, Any] = {"nlive": settings.nlive, "bound": "multi", "sample": settings.sample, "rstate": rng}
    if settings.sample == "rwalk":
        kw["walks"] = settings.walks
    old = np.seterr(all="ignore")          # -inf outside the support is an answer, not an error
    try:
        sampler = dynesty.NestedSampler(model.loglike, model.prior_transform, model.ndim, **kw)
        sampler.run_nested(dlogz=settings.dlogz, maxiter=settings.maxiter, print_progress=False)
    finally:
        np.seterr(**old)
    res = sampler.results
    return {"samples": np.asarray(res["samples"]), "logwt": np.asarray(res["logwt"]),
            "logl": np.asarray(res["logl"]), "logz": float(res["logz"][-1]),
            "logzerr": float(res["logzerr"][-1]), "niter": int(res["niter"]),
            "ncall": int(np.sum(res["ncall"])), "seconds": time.perf_counter() - t0,
            "information": float(res["information"][-1])}


def _weights(run: dict[str, Any]) -> np.ndarray:
    w = np.exp(run["logwt"] - run["logz"])
    return w / w.sum()


def kish_ess(w: np.ndarray) -> float:
    """Kish's effective sample size of importance weights, (sum w)^2 / sum w^2."""
    return float(w.sum() ** 2 / np.sum(w ** 2))


def fit(account: str | Account, records: Sequence[rec.Record] | Data | None = None, seed: int = 20250101,
        reduced: bool = False, settings: Settings | None = None, keep_pointwise: bool = True,
        run_ids: Sequence[int] | None = None) -> Posterior:
    """Nested-sampling fit of one account; returns equal-weight draws, log-evidence, diagnostics.

    ``records``: the rows to fit (default ``records.fit_rows()``). Deterministic given ``seed``:
    each independent run draws from ``SeedSequence([seed, crc32(account), run])``. With several
    runs, the evidence is their inverse-variance mean and the draws pool equal numbers from each
    run (resampled to equal weight with ``dynesty.utils.resample_equal``); R-hat and bulk ESS are
    computed by arviz treating runs as chains.
    """
    acc = ACCOUNTS[account] if isinstance(account, str) else account
    data = records if isinstance(records, Data) else Data.from_records(records or rec.fit_rows())
    settings = settings or (Settings.reduced() if reduced else Settings())
    model = Model(acc, data)
    ids = list(range(settings.runs)) if run_ids is None else list(run_ids)
    runs = [_run_dynesty(model, settings, _seed_for(seed, acc.name, len(data.rows), r)) | {"id": r} for r in ids]
    return _posterior(model, runs, settings, seed, keep_pointwise)


def _mcmc_job(post: Posterior, seed: int, reduced: bool) -> Posterior:
    if reduced:
        return mcmc(post, seed, steps=300, burn=50, draws=300)
    return mcmc(post, seed)


def _extend_job(post: Posterior, seed: int, reduced: bool) -> Posterior:
    return extend_mcmc(post, seed, steps=100 if reduced else MCMC_EXTEND)


def _long_job(post: Posterior, seed: int, reduced: bool) -> Posterior:
    if reduced:
        return mcmc(post, seed, steps=400, burn=50, draws=300)
    return mcmc(post, seed, steps=MCMC_LONG)


def combine(posts: Sequence[Posterior], seed: int, keep_pointwise: bool = True) -> Posterior:
    """One posterior from independent runs of the same account on the same data (R-hat across them)."""
    first = posts[0]
    runs = sorted((r for p in posts for r in p.raw_runs), key=lambda r: r["id"])
    return _posterior(first.model, runs, first.settings, seed, keep_pointwise)


def _posterior(model: Model, runs: list[dict[str, Any]], settings: Settings, seed: int,
               keep_pointwise: bool) -> Posterior:
    from dynesty.utils import resample_equal

    acc, data = model.account, model.data
    rng = np.random.default_rng(_seed_for(seed, acc.name, len(data.rows), "resample", *[r["id"] for r in runs]))
    chains = []
    kish = []
    for run in runs:
        w = _weights(run)
        kish.append(kish_ess(w))
        eq = resample_equal(run["samples"], w, rstate=rng)
        chains.append(eq[: settings.draws] if len(eq) >= settings.draws else eq)
    n = min(len(c) for c in chains)
    chains = [c[:n] for c in chains]
    pooled = np.concatenate(chains)
    logzs = np.array([r["logz"] for r in runs])
    errs = np.array([max(r["logzerr"], 1e-6) for r in runs])
    wz = 1.0 / errs ** 2
    logz = float(np.sum(wz * logzs) / wz.sum())
    logz_err = float(np.sqrt(1.0 / wz.sum()))
    if len(runs) > 1:   # spread between runs as a floor on the error
        logz_err = max(logz_err, float(np.std(logzs, ddof=1) / np.sqrt(len(runs))))
    samples: dict[str, np.ndarray] = {nm: pooled[:, i] for i, nm in enumerate(model.names)}
    rows = [derived(model, x) for x in pooled]
    for key in rows[0]:
        samples[key] = np.array([r[key] for r in rows])
    diag: dict[str, Any] = {
        "sampler": "dynesty.NestedSampler", "nlive": settings.nlive, "sample": settings.sample,
        "walks": settings.walks, "dlogz": settings.dlogz, "runs": len(runs),
        "logz_per_run": [float(v) for v in logzs], "logzerr_per_run": [float(v) for v in errs],
        "niter": [r["niter"] for r in runs], "ncall": [r["ncall"] for r in runs],
        "information_nats": [r["information"] for r in runs],
        "seconds": [round(r["seconds"], 2) for r in runs], "kish_ess": [round(k, 1) for k in kish],
        "draws": int(len(pooled)), "deployments": data.n, "max_logl": float(max(r["logl"].max() for r in runs)),
    }
    diag.update(_arviz_diagnostics(model.names, chains))
    with np.errstate(all="ignore"):
        pw = np.array([model.pointwise(x) for x in pooled]) if keep_pointwise else None
    return Posterior(account=acc.name, names=model.names, samples=samples, logz=logz, logz_err=logz_err,
                     diagnostics=diag, pointwise=pw, raw_runs=runs, model=model, settings=settings)


def _arviz_diagnostics(names: list[str], chains: list[np.ndarray]) -> dict[str, Any]:
    """R-hat (rank-normalised, across runs) and bulk ESS by arviz, per sampler coordinate."""
    import arviz as az

    arr = np.stack(chains)                     # (runs, draws, ndim)
    idata = az.from_dict(posterior={n: arr[:, :, i] for i, n in enumerate(names)})
    ess = az.ess(idata, method="bulk")
    out: dict[str, Any] = {"ess_bulk": {n: float(ess[n].values) for n in names}}
    if arr.shape[0] > 1:
        rhat = az.rhat(idata)
        out["rhat"] = {n: float(rhat[n].values) for n in names}
        out["rhat_max"] = float(max(out["rhat"].values()))
    out["ess_bulk_min"] = float(min(out["ess_bulk"].values()))
    out["ess_note"] = ("bulk ESS of the equal-weight resampled draws (runs as chains); resampling "
                       "duplicates points, so Kish's ESS of the weights is the honest size")
    return out


MCMC_STEPS = 2000      # chain of every close account (evidence by bridge sampling)
MCMC_LONG = 17000      # chain of the leading account: tau ~ 90-160 steps, R-hat across walkers <= 1.01
MCMC_EXTEND = 8000     # further steps if another account turns out best
MCMC_BURN = 500


def mcmc(post: Posterior, seed: int, steps: int = MCMC_STEPS, burn: int = MCMC_BURN, walkers_per_dim: int = 2,
         draws: int | None = None, keep_pointwise: bool = True, bridge: bool = True) -> Posterior:
    """Posterior draws by emcee (differential-evolution moves), started from nested-sampling draws,
    and the log-evidence by bridge sampling from them.

    Nested sampling from ~100 live points gives draws too few and clumped for R-hat <= 1.01 in
    ~20 dimensions, and random-walk nested runs of the same account were seen to differ by 2-10
    nats. So every account close to the best gets an affine-invariant ensemble (emcee 3, DEMove
    0.8 + DESnookerMove 0.2, 2 ndim + 2 walkers) started at distinct nested draws (already
    posterior draws: a short burn-in), ``steps`` steps, the first ``burn`` discarded; R-hat (rank
    normalised, split), bulk and tail ESS by arviz with walkers as chains; emcee's integrated
    autocorrelation time. ``extend_mcmc`` continues the chain. ``bridge_logz`` gives the evidence.
    """
    model = post.model
    assert model is not None
    ndim = model.ndim
    nwalkers = max(2 * ndim + 2, walkers_per_dim * ndim)    # emcee needs > 2 ndim
    rng = np.random.default_rng(_seed_for(seed, post.account, len(model.data.rows), "mcmc"))
    start = np.unique(post.matrix(), axis=0)
    if len(start) >= nwalkers:
        p0 = start[rng.choice(len(start), nwalkers, replace=False)]
    else:
        p0 = start[rng.choice(len(start), nwalkers, replace=True)]
        p0 = p0 + 1e-4 * rng.standard_normal(p0.shape) * np.maximum(np.std(start, axis=0), 1e-3)
    for i in range(nwalkers):      # every walker must start inside the support
        while not math.isfinite(model.log_posterior(p0[i])):
            p0[i] = start[rng.integers(len(start))]
    chain, acc, seconds, state = _run_emcee(model, p0, steps, int(rng.integers(2 ** 31)))
    return _mcmc_posterior(post, chain[burn:], acc, seconds, steps, burn, state, seed, draws, keep_pointwise, bridge)


def extend_mcmc(post: Posterior, seed: int, steps: int = MCMC_EXTEND, draws: int | None = None,
                keep_pointwise: bool = True) -> Posterior:
    """Continue ``post``'s emcee chain from its last state by ``steps`` steps (same Markov chain)."""
    model = post.model
    assert model is not None and post.chain is not None
    rng = np.random.default_rng(_seed_for(seed, post.account, len(model.data.rows), "mcmc-extend"))
    chain, acc, seconds, state = _run_emcee(model, post.chain[-1], steps, int(rng.integers(2 ** 31)))
    d = post.diagnostics
    full = np.concatenate([post.chain, chain])
    acc_all = (d["mcmc_acceptance"] * d["mcmc_kept"] + acc * steps) / (d["mcmc_kept"] + steps)
    out = _mcmc_posterior(post, full, acc_all, d["mcmc_seconds"] + seconds, d["mcmc_steps"] + steps,
                          d["mcmc_burn"], state, seed, draws, keep_pointwise, bridge=False)
    for k in ("bridge",):
        if k in d:
            out.diagnostics[k] = d[k]
    out.logz, out.logz_err = post.logz, post.logz_err
    return out


def _run_emcee(model: Model, p0: np.ndarray, steps: int, seed: int) -> tuple[np.ndarray, float, float, np.ndarray]:
    import emcee

    sampler = emcee.EnsembleSampler(len(p0), model.ndim, model.log_posterior,
                                    moves=[(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)])
    sampler.random_state = np.random.RandomState(seed).get_state()
    t0 = time.perf_counter()
    old = np.seterr(all="ignore")
    try:
        sampler.run_mcmc(np.asarray(p0), steps, progress=False)
    finally:
        np.seterr(**old)
    chain = sampler.get_chain()
    return chain, float(np.mean(sampler.acceptance_fraction)), time.perf_counter() - t0, chain[-1]


def _mcmc_posterior(post: Posterior, chain: np.ndarray, acc: float, seconds: float, steps: int, burn: int,
                    state: np.ndarray, seed: int, draws: int | None, keep_pointwise: bool, bridge: bool) -> Posterior:
    import logging
    import warnings

    import arviz as az
    import emcee

    logging.getLogger("emcee").setLevel(logging.ERROR)
    model = post.model
    assert model is not None
    ndim = model.ndim
    rng = np.random.default_rng(_seed_for(seed, post.account, len(model.data.rows), "mcmc-draws", steps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = emcee.autocorr.integrated_time(chain, quiet=True)
        idata = az.from_dict(posterior={n: chain[:, :, i].T for i, n in enumerate(model.names)})
        rhat = az.rhat(idata)
        ess_b = az.ess(idata, method="bulk")
        ess_t = az.ess(idata, method="tail")
    flat = chain.reshape(-1, ndim)
    n_keep = draws or (post.settings.draws if post.settings else 2000)
    idx = np.linspace(0, len(flat) - 1, min(n_keep, len(flat))).round().astype(int)
    pooled = flat[rng.permutation(idx)]
    samples: dict[str, np.ndarray] = {nm: pooled[:, i] for i, nm in enumerate(model.names)}
    rows = [derived(model, x) for x in pooled]
    for key in rows[0]:
        samples[key] = np.array([r[key] for r in rows])
    diag = {k: v for k, v in post.diagnostics.items()
            if k not in ("rhat", "ess_bulk", "rhat_max", "ess_bulk_min", "ess_note")}
    diag["nested"] = {k: post.diagnostics.get(k) for k in (
        "logz_per_run", "logzerr_per_run", "niter", "ncall", "seconds", "kish_ess", "nlive", "rhat_max",
        "ess_bulk_min")} if "nested" not in post.diagnostics else post.diagnostics["nested"]
    diag.update({
        "posterior_sampler": "emcee.EnsembleSampler (DEMove 0.8, DESnookerMove 0.2), started at nested-sampling draws",
        "mcmc_walkers": int(chain.shape[1]), "mcmc_steps": int(steps), "mcmc_burn": int(burn),
        "mcmc_kept": int(chain.shape[0]), "mcmc_seconds": round(seconds, 1), "mcmc_acceptance": float(acc),
        "autocorr_time": {n: float(t) for n, t in zip(model.names, tau, strict=True)},
        "rhat": {n: float(rhat[n].values) for n in model.names},
        "ess_bulk": {n: float(ess_b[n].values) for n in model.names},
        "ess_tail": {n: float(ess_t[n].values) for n in model.names},
        "ess_note": "arviz on the emcee chains (walkers as chains) after burn-in",
    })
    diag["rhat_max"] = max(diag["rhat"].values())
    diag["ess_bulk_min"] = min(diag["ess_bulk"].values())
    diag["ess_tail_min"] = min(diag["ess_tail"].values())
    diag["draws"] = int(len(pooled))
    logz, logz_err = post.logz, post.logz_err
    if bridge:
        b = bridge_logz(model, chain, seed)
        diag["bridge"] = b
        logz, logz_err = b["logz"], b["logz_err"]
    with np.errstate(all="ignore"):
        pw = np.array([model.pointwise(x) for x in pooled]) if keep_pointwise else None
    out = Posterior(account=post.account, names=post.names, samples=samples, logz=logz, logz_err=logz_err,
                    diagnostics=diag, pointwise=pw, raw_runs=post.raw_runs, model=model, settings=post.settings)
    out.chain = chain
    return out


def _to_free(model: Model, x: np.ndarray) -> np.ndarray:
    """Sampler coordinates -> unconstrained: logit for uniforms, log for half-normals."""
    y = np.array(x, dtype=float, copy=True)
    u, h = model._uni, model._half
    a, b = model._pa[u], model._pb[u]
    p = np.clip((y[..., u] - a) / (b - a), 1e-15, 1 - 1e-15)
    y[..., u] = np.log(p) - np.log1p(-p)
    y[..., h] = np.log(np.maximum(y[..., h], 1e-300))
    return y


def _from_free(model: Model, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unconstrained -> sampler coordinates, and log |dx/dy| per row."""
    x = np.array(y, dtype=float, copy=True)
    u, h = model._uni, model._half
    a, b = model._pa[u], model._pb[u]
    x[..., u] = a + (b - a) * special.expit(y[..., u])
    x[..., h] = np.exp(y[..., h])
    logj = (np.sum(np.log(b - a) + special.log_expit(y[..., u]) + special.log_expit(-y[..., u]), axis=-1)
            + np.sum(y[..., h], axis=-1))
    return x, logj


def bridge_logz(model: Model, chain: np.ndarray, seed: int, n_prop: int | None = None, df: float = 5.0,
                groups: int = 4) -> dict[str, Any]:
    """log-evidence by bridge sampling (Meng & Wong 1996; Gronau et al. 2017) from MCMC draws.

    In unconstrained coordinates y, a multivariate t (``df``) fitted to the first half of the
    chain proposes ``n_prop`` points; the second half are the posterior draws. With
    ``l = log q(y) - log g(y)`` (q = prior x likelihood x Jacobian, g = the proposal) the
    optimal bridge iterates ``r <- [mean_g e^l2 / (s1 e^l2 + s2 r)] / [mean_p 1 / (s1 e^l1 + s2 r)]``
    (s1, s2 the shares of the effective posterior and proposal sample sizes), ``Z = r``. The
    estimate is repeated on ``groups`` disjoint subsets (walkers split, proposals split): the
    spread gives the standard error; the full-sample estimate is reported.
    """
    rng = np.random.default_rng(_seed_for(seed, model.account.name, len(model.data.rows), "bridge"))
    half = chain.shape[0] // 2
    fit_y = _to_free(model, chain[:half].reshape(-1, model.ndim))
    post_x = chain[half:]                                     # (steps, walkers, ndim)
    mean = fit_y.mean(axis=0)
    cov = np.cov(fit_y, rowvar=False) + 1e-10 * np.eye(model.ndim)
    prop = stats.multivariate_t(loc=mean, shape=cov * (df - 2) / df, df=df, seed=rng)
    n_post = post_x.shape[0] * post_x.shape[1]
    n_prop = n_prop or min(max(n_post, 10_000), 20_000)
    # thin the posterior half to at most 2 n_prop points (every walker kept)
    stride = max(1, int(math.ceil(n_post / (2 * n_prop))))
    px = post_x[::stride]
    walker = np.broadcast_to(np.arange(px.shape[1]), px.shape[:2]).reshape(-1)
    px = px.reshape(-1, model.ndim)
    py = _to_free(model, px)
    old = np.seterr(all="ignore")
    try:
        _, logj_p = _from_free(model, py)
        l1 = np.array([model.log_posterior(x) for x in px]) + logj_p - prop.logpdf(py)
        gy = prop.rvs(size=n_prop).reshape(n_prop, model.ndim)
        gx, logj_g = _from_free(model, gy)
        l2 = np.array([model.log_posterior(x) for x in gx]) + logj_g - prop.logpdf(gy)
    finally:
        np.seterr(**old)
    l2 = np.where(np.isfinite(l2), l2, -np.inf)
    # effective posterior sample size: draws / integrated autocorrelation time of l1 per walker
    ess = _ess_1d(l1.reshape(-1, post_x.shape[1]).T)

    def solve(a: np.ndarray, b: np.ndarray, n1_eff: float) -> float:
        s1 = n1_eff / (n1_eff + len(b))
        s2 = len(b) / (n1_eff + len(b))
        shift = float(np.median(a))
        e1, e2 = np.exp(a - shift), np.exp(np.where(np.isfinite(b), b - shift, -np.inf))
        r = 1.0
        for _ in range(1000):
            new = np.mean(e2 / (s1 * e2 + s2 * r)) / np.mean(1.0 / (s1 * e1 + s2 * r))
            if abs(math.log(new) - math.log(r)) < 1e-10:
                r = new
                break
            r = new
        return math.log(r) + shift

    logz = solve(l1, l2, ess)
    parts = []
    wsplit = np.array_split(np.arange(post_x.shape[1]), groups)
    psplit = np.array_split(np.arange(n_prop), groups)
    for wg, pg in zip(wsplit, psplit, strict=True):
        sel = np.isin(walker, wg)
        parts.append(solve(l1[sel], l2[pg], ess * sel.mean()))
    err = float(np.std(parts, ddof=1) / math.sqrt(groups))
    return {"logz": float(logz), "logz_err": err, "logz_groups": [float(v) for v in parts],
            "proposal": f"multivariate t (df {df:g}) fitted to the first half of the chain, unconstrained coordinates",
            "posterior_draws": int(len(l1)), "proposal_draws": int(n_prop), "posterior_ess": float(ess)}


def _ess_1d(x: np.ndarray) -> float:
    """Bulk ESS (arviz) of a scalar over chains x (chains, draws)."""
    import arviz as az
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(np.asarray(x)[None] if x.ndim == 1 else np.asarray(x)))


# -- comparison ---------------------------------------------------------------------------------

def model_weights(logz: dict[str, float]) -> dict[str, float]:
    """Posterior probabilities of the accounts under equal prior odds: exp(logZ) normalised."""
    names = list(logz)
    v = np.array([logz[n] for n in names])
    w = np.exp(v - v.max())
    w /= w.sum()
    return dict(zip(names, (float(x) for x in w), strict=True))


def loo_table(posteriors: dict[str, Posterior]) -> dict[str, dict[str, float]]:
    """PSIS-LOO over all observations (NPL's five and each deployment), by arviz."""
    import arviz as az
    import warnings

    out = {}
    for name, p in posteriors.items():
        if p.pointwise is None:
            continue
        ll = p.pointwise[None]
        idata = az.from_dict(posterior={"x": p.samples[p.names[0]][None]}, log_likelihood={"obs": ll})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = az.loo(idata, pointwise=True)
        k = np.asarray(res.pareto_k)
        out[name] = {"elpd_loo": float(res.elpd_loo), "se": float(res.se), "p_loo": float(res.p_loo),
                     "pareto_k_above_0.7": int(np.sum(k > 0.7))}
    return out


def compare_accounts(records: Sequence[rec.Record] | Data | None = None, seed: int = 20250101,
                     reduced: bool = False, accounts: Sequence[str] = tuple(ACCOUNTS), workers: int = 2,
                     settings: Settings | None = None) -> dict[str, Any]:
    """Fit every account (in parallel processes; results do not depend on ``workers``)."""
    data = records if isinstance(records, Data) else Data.from_records(records or rec.fit_rows())
    jobs = list(accounts)
    posts: dict[str, Posterior] = {}
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {a: ex.submit(fit, a, data, seed, reduced, settings) for a in jobs}
            posts = {a: f.result() for a, f in futs.items()}
    else:
        posts = {a: fit(a, data, seed, reduced, settings) for a in jobs}
    logz = {a: p.logz for a, p in posts.items()}
    weights = model_weights(logz)
    best = max(weights, key=weights.get)
    return {"posteriors": posts, "logz": logz, "logz_err": {a: p.logz_err for a, p in posts.items()},
            "weights": weights, "best": best, "loo": loo_table(posts)}


FIXED_IN_ACCOUNT = {"operator_pass_false": 1.0, "field_shift": 0.0, "footfall_elasticity": 0.0}


def model_average(posts: dict[str, Posterior], weights: dict[str, float], seed: int, draws: int) -> dict[str, np.ndarray]:
    """Draws mixed from the accounts in proportion to their posterior weights.

    Every draw carries every quantity: where an account fixes one (``omega = 1`` without an
    operator filter, no field shift, no footfall elasticity) the fixed value is filled in, so a
    forward run can use any draw. Account-specific sampler coordinates (the counting factors'
    raw logs) are dropped; their derived forms (``faces_per_passer[regime]``) are kept.
    """
    rng = np.random.default_rng(_seed_for(seed, "average"))
    names = [n for n in weights if n in posts]
    counts = rng.multinomial(draws, [weights[n] for n in names])
    keys: set[str] = set()
    for n in names:
        keys |= {k for k in posts[n].samples if not k.startswith("log_faces_per_passer_")}
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    src: list[str] = []
    for n, c in zip(names, counts, strict=True):
        if c == 0:
            continue
        smp = posts[n].samples
        m = len(smp["anchor"])
        idx = rng.choice(m, size=c, replace=c > m)
        for k in keys:
            if k in smp:
                out[k].append(np.asarray(smp[k])[idx])
            elif k in FIXED_IN_ACCOUNT:
                out[k].append(np.full(c, FIXED_IN_ACCOUNT[k]))
            else:
                out[k].append(np.full(c, np.nan))
        src += [n] * c
    merged = {k: np.concatenate(v) for k, v in out.items()}
    merged = {k: v for k, v in merged.items() if not np.all(np.isnan(v))}
    perm = rng.permutation(len(src))
    merged = {k: v[perm] for k, v in merged.items()}
    merged["account"] = np.array(src)[perm]
    return merged


# -- prediction -----------------------------------------------------------------------------------

METRICS = ("alerts", "true_alerts", "false_alerts", "arrests")


def arrest_posterior(data: Data) -> tuple[float, float]:
    """Beta(1 + arrests, 1 + true alerts - arrests): the conjugate posterior of p_arrest."""
    a = float(np.minimum(data.arrests, data.y_true).sum())
    return 1.0 + a, 1.0 + float(data.y_true.sum()) - a


def replicate(post: Posterior, data: Data, rng: np.random.Generator,
              arrest: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Posterior-predictive replicate counts per (draw, deployment) for ``data``'s rows.

    Each draw: the row's regime from its probabilities, a gamma deployment effect on the true
    rate (phi_T) and on the false rate (phi_F), Poisson counts, arrests binomial in true alerts.
    Period effects of periods the fit did not see are drawn from their hierarchical prior.
    """
    acc = post.model.account if post.model is not None else ACCOUNTS[post.account]
    model = Model(acc, data)
    x_all = post.matrix()
    n_draws = len(x_all)
    arrest = arrest or (1.0, 1.0)
    out = {m: np.zeros((n_draws, data.n), dtype=np.int64) for m in METRICS}
    probs = np.exp(data.regime_logp)
    seen = set(post.diagnostics.get("periods_fitted", rec.PERIODS))
    for i, x in enumerate(x_all):
        x = x.copy()
        for j, p in enumerate(rec.PERIODS):
            if p not in seen and f"period_z_{j}" in model.index:
                x[model.index[f"period_z_{j}"]] = rng.standard_normal()
        mt3, mf3 = model.expected(x, data)
        u = rng.random(data.n)
        regime = np.minimum((u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), 2)
        rows = np.arange(data.n)
        mt, mf = mt3[rows, regime], mf3[rows, regime]
        phi_t, phi_f = model.get(x, "phi_true"), model.get(x, "phi_false")
        if phi_t > 0:
            mt = mt * rng.gamma(1.0 / phi_t, phi_t, data.n)
        if phi_f > 0:
            mf = mf * rng.gamma(1.0 / phi_f, phi_f, data.n)
        t = rng.poisson(mt)
        f = rng.poisson(mf)
        p_arrest = rng.beta(*arrest)
        out["true_alerts"][i] = t
        out["false_alerts"][i] = f
        out["alerts"][i] = t + f
        out["arrests"][i] = rng.binomial(t, p_arrest)
    return out


def _pvalue(rep: np.ndarray, obs: float) -> float:
    return float(min(1.0, 2.0 * min(np.mean(rep >= obs), np.mean(rep <= obs))))


def _observed(data: Data) -> dict[str, np.ndarray]:
    return {"alerts": data.y_true + data.y_false, "true_alerts": data.y_true, "false_alerts": data.y_false,
            "arrests": np.minimum(data.arrests, data.y_true)}


def period_checks(post: Posterior, data: Data, seed: int, periods: Sequence[str] = rec.PERIODS) -> list[dict[str, Any]]:
    """Posterior-predictive check of each period's totals (and totals per 1,000 counted faces)."""
    rng = np.random.default_rng(_seed_for(seed, post.account, "ppc"))
    reps = replicate(post, data, rng, arrest_posterior(data))
    obs = _observed(data)
    rows = []
    for p in periods:
        sel = np.array([r.period == p for r in data.rows])
        if not sel.any():
            continue
        faces = float(data.faces[sel].sum())
        row: dict[str, Any] = {"period": p, "deployments": int(sel.sum()), "faces": faces}
        for m in METRICS:
            rep = reps[m][:, sel].sum(axis=1)
            o = int(obs[m][sel].sum())
            lo, hi = np.quantile(rep, [0.025, 0.975])
            row[m] = {"observed": o, "mean": float(rep.mean()), "interval_95": [float(lo), float(hi)],
                      "within": bool(lo <= o <= hi), "p_value": _pvalue(rep, o),
                      "observed_per_1000_faces": 1000.0 * o / faces,
                      "mean_per_1000_faces": 1000.0 * float(rep.mean()) / faces}
        rows.append(row)
    return rows


def false_given_alerts(post: Posterior, data: Data, seed: int) -> dict[str, Any]:
    """Predictive of a data set's false alerts *given its observed alert total* (face counts cancel).

    Under Poisson counts, false | alerts ~ Binomial(alerts, E[false]/E[alerts]) per deployment;
    the deployment effects are drawn as in ``replicate``.
    """
    rng = np.random.default_rng(_seed_for(seed, post.account, "conditional"))
    acc = post.model.account if post.model is not None else ACCOUNTS[post.account]
    model = Model(acc, data)
    seen = set(post.diagnostics.get("periods_fitted", rec.PERIODS))
    alerts = data.y_true + data.y_false
    probs = np.exp(data.regime_logp)
    reps = []
    for x in post.matrix():
        x = x.copy()
        for j, p in enumerate(rec.PERIODS):
            if p not in seen and f"period_z_{j}" in model.index:
                x[model.index[f"period_z_{j}"]] = rng.standard_normal()
        mt3, mf3 = model.expected(x, data)
        regime = np.minimum((rng.random(data.n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), 2)
        rows = np.arange(data.n)
        rt, rf = mt3[rows, regime], mf3[rows, regime]
        phi_t, phi_f = model.get(x, "phi_true"), model.get(x, "phi_false")
        lt = rng.gamma(1.0 / phi_t, phi_t, data.n) if phi_t > 0 else 1.0
        lf = rng.gamma(1.0 / phi_f, phi_f, data.n) if phi_f > 0 else 1.0
        q = rf * lf / (rf * lf + rt * lt)
        reps.append(rng.binomial(alerts, q).sum())
    rep = np.array(reps)
    o = int(data.y_false.sum())
    lo, hi = np.quantile(rep, [0.025, 0.975])
    return {"alerts": int(alerts.sum()), "observed": o, "mean": float(rep.mean()), "interval_95": [float(lo), float(hi)],
            "within": bool(lo <= o <= hi), "p_value": _pvalue(rep, o)}


def leave_one_period_out(account: str, records: Sequence[rec.Record] | Data | None = None, seed: int = 20250101,
                         reduced: bool = False, workers: int = 2, settings: Settings | None = None
                         ) -> list[dict[str, Any]]:
    """Refit ``account`` without each period, predict the period, report coverage.

    For every held-out period: the posterior predictive of its alerts, true and false alerts
    (parameters + deployment effects + Poisson noise; the period's own effect drawn from its
    hierarchical prior; a counting factor no remaining row informs comes from its prior), and
    the predictive of its false alerts given its observed alerts (which needs no face count).
    """
    data = records if isinstance(records, Data) else Data.from_records(records or rec.fit_rows())
    periods = [p for p in rec.PERIODS if any(r.period == p for r in data.rows)]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = [ex.submit(_lopo_one, account, data, p, seed, reduced, settings) for p in periods]
            return [f.result() for f in futs]
    return [_lopo_one(account, data, p, seed, reduced, settings) for p in periods]


def _lopo_one(account: str, data: Data, period: str, seed: int, reduced: bool,
              settings: Settings | None) -> dict[str, Any]:
    train = data.without_period(period)
    test = data.only_period(period)
    post = fit(account, train, seed, reduced, settings, keep_pointwise=False)
    post.diagnostics["periods_fitted"] = sorted({r.period for r in train.rows})
    checks = period_checks(post, test, seed, [period])[0]
    cond = false_given_alerts(post, test, seed)
    return {"period": period, "account": account, "logz_train": post.logz, "check": checks,
            "false_given_alerts": cond, "seconds": float(sum(post.diagnostics["seconds"])),
            "rhat_max": post.diagnostics.get("rhat_max"), "kish_ess": post.diagnostics["kish_ess"],
            "faces_per_passer_high": post.summary("faces_per_passer[2024 high count]"),
            "headline_expected_false": post.summary("headline_expected_false")}


# -- simulation from known parameters (recovery tests) -----------------------------------------------

def simulate(account: str | Account, x: np.ndarray, data: Data, rng: np.random.Generator) -> Data:
    """A data set drawn from the model at sampler coordinates ``x``, with ``data``'s covariates.

    Every record gets a counting regime (its known label where the faces-per-hour block uses it,
    else drawn from ``p_low_count``), a ward effect and a day effect on log passers per hour
    (ward mean ``m`` drawn from its prior), hence counted faces = k_regime * passers per hour *
    hours; alert rows then get NB true and false alerts at those faces; NPL's five counts are
    drawn too (the nested ones as binomial thinning). The regime probabilities stay as they
    were (they are a covariate of the fit).
    """
    import dataclasses as dc

    acc = ACCOUNTS[account] if isinstance(account, str) else account
    model = Model(acc, data)
    s = model.score(x)
    k = model.factors(x)
    union: dict[int, rec.Record] = {r.index: r for r in data.ff_rows} | {r.index: r for r in data.rows}
    ff_index = {r.index for r in data.ff_rows}
    wards = sorted({r.ward_code for r in union.values()})
    m = rng.normal(*FOOTFALL_PRIOR)
    a = dict(zip(wards, rng.normal(0.0, model.get(x, "site_sd"), len(wards)), strict=True))
    new: dict[int, rec.Record] = {}
    for i, r in sorted(union.items()):
        if i in ff_index:
            regime = rec.REGIMES.index(r.regime)
        else:
            regime = int(rng.choice(3, p=np.array(r.regime_probabilities)))
        log_pph = m + a[r.ward_code] + rng.normal(0.0, model.get(x, "day_sd"))
        faces = float(max(1.0, round(k[regime] * math.exp(log_pph) * r.hours)))
        probs = (1.0, 0.0, 0.0) if regime == 0 else ((0.0, 1.0, 0.0) if regime == 1 else (0.0, 0.0, 1.0))
        new[i] = dc.replace(r, faces=faces, p_low_count=r.p_low_count if regime else 0.0), probs
    alert_rows = [new[r.index][0] for r in data.rows]
    sim = Data.from_records(alert_rows, [new[r.index][0] for r in data.ff_rows], data.npl)
    # alerts at the drawn regimes (expected counts per regime, the drawn one picked)
    mt3, mf3 = model.expected(x, sim)
    drawn = np.array([int(np.argmax(new[r.index][1])) for r in data.rows], dtype=np.int64)
    rows = np.arange(sim.n)
    mt, mf = mt3[rows, drawn], mf3[rows, drawn]
    phi_t, phi_f = model.get(x, "phi_true"), model.get(x, "phi_false")
    if phi_t > 0:
        mt = mt * rng.gamma(1.0 / phi_t, phi_t, sim.n)
    if phi_f > 0:
        mf = mf * rng.gamma(1.0 / phi_f, phi_f, sim.n)
    yt, yf = rng.poisson(mt), rng.poisson(mf)
    out_rows = [dc.replace(r, true_alerts=int(t), false_alerts=int(f), alerts=int(t + f),
                           arrests=int(min(r.arrests, t)))
                for r, t, f in zip(alert_rows, yt, yf, strict=True)]
    fp = s.fpir(T_NPL, NPL_LIST_SIZE, data.watchlist) @ data.npl_crowd
    minority = float(s.fpir(T_NPL[1:2], NPL_LIST_SIZE, data.watchlist)[0, MINORITY] @ data.npl_crowd[MINORITY]) / fp[1]
    exposure = math.exp(rng.normal(math.log(acc.npl_exposure_median), NPL_EXPOSURE_PRIOR[1]))
    n60 = int(rng.poisson(exposure * fp[1]))
    n62 = int(rng.binomial(n60, min(fp[2] / fp[1], 1.0)))
    npl = {"fp_0.60": n60, "fp_0.62": n62, "fp_0.64": int(rng.binomial(n62, min(fp[3] / fp[2], 1.0))),
           "fp_0.60_minority": int(rng.binomial(n60, minority)), "mated": data.npl["mated"],
           "mated_alerts": int(rng.binomial(data.npl["mated"], float(s.tpir(T_NPL[1:2])[0])))}
    return Data.from_records(out_rows, sim.ff_rows, npl)


RECOVERY_TARGETS = ("faces_per_passer[2024 low count]", "faces_per_passer[2024 high count]",
                    "faces_per_passer[2023]", "operator_pass_false", "impostor_sd", "impostor_location",
                    "watchlisted_per_passer", "footfall_elasticity", "headline_expected_false")


def recovery(truths: Sequence[np.ndarray], account: str = "c+d", seed: int = 7, settings: Settings | None = None,
             workers: int = 2) -> dict[str, Any]:
    """Refit data simulated at each truth; report whether each target's truth is inside the 95%
    credible interval (equal-tailed), per truth and as a coverage rate."""
    data = Data.from_records(rec.fit_rows())
    settings = settings or dataclasses.replace(Settings(), runs=1, draws=1000)
    sims = [simulate(account, x, data, np.random.default_rng(_seed_for(seed, "sim", i))) for i, x in enumerate(truths)]
    posts = _parallel([(fit, (account, d, seed + i, False, settings, False, [0])) for i, d in enumerate(sims)], workers)
    model = Model(ACCOUNTS[account], data)
    rows = []
    for x, p in zip(truths, posts, strict=True):
        true = derived(model, x) | {n: float(v) for n, v in zip(model.names, x, strict=True)}
        row = {}
        for t in RECOVERY_TARGETS:
            if t not in p.samples:
                continue
            lo, hi = np.quantile(p.samples[t], [0.025, 0.975])
            row[t] = {"truth": float(true[t]), "interval_95": [float(lo), float(hi)], "inside": bool(lo <= true[t] <= hi)}
        rows.append(row)
    coverage = {t: float(np.mean([r[t]["inside"] for r in rows])) for t in rows[0]}
    overall = float(np.mean([r[t]["inside"] for r in rows for t in r]))
    return {"account": account, "sets": len(rows), "coverage": coverage, "overall": overall, "rows": rows}


# -- the headline ------------------------------------------------------------------------------------

def headline(samples: dict[str, np.ndarray], seed: int, deployments: float | None = None,
             reported: int = 12) -> dict[str, Any]:
    """Expected false alerts in 3 million counted faces at 0.64, 16,000 entries, and P(<= 12).

    Faces become passers through the post-July-2024 counting factor. The predictive count is
    the sum over the programme's deployments of gamma-Poisson counts with the posterior's
    phi_F (deployments ~ 3M / mean faces of a 0.64 deployment), i.e. NB(mu, n/phi_F) per draw.
    The Met's 12 is compared with this, never fitted.
    """
    rng = np.random.default_rng(_seed_for(seed, "headline"))
    mu = np.asarray(samples["headline_expected_false"], dtype=float)
    if deployments is None:
        rows = [r for r in rec.fit_rows() if r.period == rec.PERIODS[3]]
        deployments = HEADLINE["faces"] / float(np.mean([r.faces for r in rows]))
    phi = np.asarray(samples.get("phi_false", np.zeros_like(mu)), dtype=float)
    lam = np.where(phi > 0, rng.gamma(deployments / np.maximum(phi, 1e-12), np.maximum(phi, 1e-12) / deployments),
                   1.0)
    count = rng.poisson(mu * lam)
    q = np.quantile(mu, [0.025, 0.5, 0.975])
    return {"setting": (f"{HEADLINE['faces']:,} counted faces at {HEADLINE['threshold']}, "
                        f"{HEADLINE['watchlist_size']:,} entries, crowd = mean ward mix of the 0.64 deployments "
                        "(half female), faces -> passers by the 2024 high-count factor"),
            "expected_mean": float(mu.mean()), "expected_median": float(q[1]),
            "expected_interval_95": [float(q[0]), float(q[2])],
            "predictive_interval_95": [float(np.quantile(count, 0.025)), float(np.quantile(count, 0.975))],
            "p_at_most_reported": float(np.mean(count <= reported)),
            "p_at_most_reported_poisson": float(np.mean(stats.poisson.cdf(reported, mu))),
            "reported": reported, "programme_deployments": float(deployments)}


# -- output --------------------------------------------------------------------------------------

def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_posterior(result: dict[str, Any], path: str | Path, command: str = "") -> tuple[Path, Path]:
    """Write the shipped posterior: ``path`` (TOML, summaries and diagnostics) and ``path.npz``
    (equal-weight draws of the shipped posterior, every named quantity), atomically."""
    import tomli_w

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shipped: dict[str, np.ndarray] = result["shipped_samples"]
    npz = path.with_suffix(".npz")
    # float32 keeps 7 significant digits, far below the posterior's spread, and halves the file
    numeric = {k: (np.asarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
               for k, v in shipped.items()}
    tmp = npz.with_name(npz.stem + ".tmp.npz")
    np.savez_compressed(tmp, **numeric)
    tmp.replace(npz)
    summaries = {k: _summ(v) for k, v in shipped.items() if np.asarray(v).dtype.kind == "f"}
    median_params = dict(result.get("shipped_score_parameters", {}))
    doc = {
        "about": {"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
                  "seed": result["seed"], "method": ("dynesty nested sampling for every account's evidence; emcee chains and bridge-sampling "
                             "evidence for the close accounts; the shipped draws are the best account's long "
                             "emcee chain; see the calibrate.py docstring"),
                  "shipped": result["shipped"], "draws_file": npz.name,
                  "never_an_input": "Met 2025: 12 false alerts in 3,000,000 faces"},
        "priors": {p.name: {"prior": p.describe(), "source": p.source}
                   for p in priors(ACCOUNTS["c+d"]) + [Prior("field_shift", "normal", 0, FIELD_SHIFT_PRIOR_SD)]},
        "evidence": {a: {"logz": result["logz"][a], "logz_err": result["logz_err"][a], "weight": result["weights"][a],
                         "label": ACCOUNTS[a].label} for a in result["logz"]},
        "loo": result.get("loo", {}),
        "parameters": median_params,
        "summary": summaries,
        "diagnostics": {a: result["diagnostics"][a] for a in result["diagnostics"]},
        "headline": result["headline"],
        "period_checks": result.get("period_checks", []),
        "leave_one_period_out": result.get("lopo", []),
        "runtime_seconds": result.get("runtime_seconds", {}),
    }
    text = tomli_w.dumps(_clean(doc))
    tmp2 = path.with_name(path.name + ".tmp")
    tmp2.write_text(text)
    tmp2.replace(path)
    return path, npz


def _summ(v: np.ndarray) -> dict[str, float]:
    v = np.asarray(v, dtype=float)
    q = np.quantile(v, [0.025, 0.5, 0.975])
    return {"mean": float(v.mean()), "sd": float(v.std()), "q2.5": float(q[0]), "median": float(q[1]),
            "q97.5": float(q[2])}


# -- the whole calibration ------------------------------------------------------------------------

def _parallel(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]], workers: int) -> list[Any]:
    """Run ``(function, args)`` jobs in ``workers`` processes; results in job order."""
    if workers <= 1 or len(jobs) <= 1:
        return [f(*a) for f, a in jobs]
    with ProcessPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(f, *a) for f, a in jobs]
        return [fu.result() for fu in futs]


def calibrate(seed: int = 20250101, reduced: bool = False, workers: int = 2,
              accounts: Sequence[str] = tuple(ACCOUNTS), lopo: bool = True,
              settings: Settings | None = None, sensitivity: bool = False,
              refine_within: float = 15.0, refine_max: int = 4) -> dict[str, Any]:
    """The whole calibration: every account, the comparison, the shipped posterior, per-period
    checks, leave-one-period-out, the tail slope, the headline.

    Stages (parallel over ``workers`` processes; results do not depend on ``workers``):
    1. *screen*: one nested-sampling run of every account (``settings``, default
       ``Settings.screen``): log-evidence and starting draws;
    2. *refine*: the accounts within ``refine_within`` nats of the best screened evidence (at
       most ``refine_max``) get emcee chains started at their nested draws and their evidence by
       bridge sampling (``mcmc``, ``bridge_logz``); the screened leader's chain is long
       (``MCMC_LONG``, for R-hat <= 1.01), the others' short (``MCMC_STEPS``). In the same pool:
       leave-one-period-out refits of the leader (nested sampling, ``Settings.lopo``), an
       NPL-only fit (what NPL alone says about the tail slope), optional sensitivity refits.
       Accounts left at the screen stage are tens of nats behind;
    3. weights from the evidence; if the best is not the leader its chain is extended;
    4. the shipped posterior: the best-supported account (its long chain); the model average is
       computed beside it for comparison (its other components come from short chains).
    """
    screen = settings or (Settings.reduced() if reduced else Settings.screen())
    t0 = time.perf_counter()
    data = Data.from_records(rec.fit_rows())
    accounts = list(accounts)
    first = _parallel([(fit, (a, data, seed, reduced, screen, True, [0])) for a in accounts], workers)
    posts = dict(zip(accounts, first, strict=True))
    stage = {a: f"nested (nlive {screen.nlive})" for a in accounts}
    screened = {a: p.logz for a, p in posts.items()}
    t_first = time.perf_counter() - t0
    top = max(screened.values())
    close = sorted((a for a in accounts if screened[a] >= top - refine_within), key=lambda a: -screened[a])
    close = close[:refine_max] if not reduced else close[:2]
    lead = close[0]
    # stage 2, packed for two workers: the lead's long chain first (one worker), then the other
    # close accounts' short chains, the leave-one-period-out refits of the lead, NPL only
    periods = [p for p in rec.PERIODS if any(r.period == p for r in data.rows)]
    lopo_settings = Settings.reduced() if reduced else Settings.lopo()
    jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [(_long_job, (posts[lead], seed, reduced))]
    jobs += [(_mcmc_job, (posts[a], seed, reduced)) for a in close[1:]]
    if lopo:
        jobs += [(_lopo_one, (lead, data, p, seed, reduced, lopo_settings)) for p in periods]
    jobs.append((fit, (NPL_ONLY, data, seed, reduced, lopo_settings, False, [0])))
    sens_names: list[str] = []
    if sensitivity:
        acc = ACCOUNTS[lead]
        variants = {
            "npl_exposure_42000": (dataclasses.replace(acc, name=f"{lead}|npl42k", npl_exposure_median=42_000.0), data),
            "empty_alerts_as_zero": (acc, Data.from_records(rec.fit_rows(empty_as_zero=True))),
        }
        for k, (a, d) in variants.items():
            sens_names.append(k)
            jobs.append((fit, (a, d, seed, reduced, screen, False, [0])))
    t2 = time.perf_counter()
    out = _parallel(jobs, workers)
    for a in close:
        posts[a] = out.pop(0)
        stage[a] = (f"nested + emcee {posts[a].diagnostics['mcmc_steps']} steps (draws); "
                    "evidence by bridge sampling")
    n_lopo = len(periods) if lopo else 0
    lopo_rows = out[:n_lopo]
    npl_only = out[n_lopo]
    logz = {a: p.logz for a, p in posts.items()}
    weights = model_weights(logz)
    best = max(weights, key=weights.get)
    if best != lead:        # the long chain went to the screened leader: lengthen the best's
        if posts[best].chain is not None:
            posts[best] = extend_mcmc(posts[best], seed, steps=100 if reduced else MCMC_EXTEND)
            stage[best] += f"; extended to {posts[best].diagnostics['mcmc_steps']} steps"
        else:
            posts[best] = _long_job(posts[best], seed, reduced)
            stage[best] += f"; emcee {posts[best].diagnostics['mcmc_steps']} steps"
    sens = {}
    for k, p in zip(sens_names, out[n_lopo + 1:], strict=True):
        sens[k] = {"logz": p.logz, "headline": headline(p.samples, seed),
                   "faces_per_passer[2024 high count]": p.summary("faces_per_passer[2024 high count]"),
                   "npl_fpir_0.60_n10000": p.summary("npl_fpir_0.60_n10000"),
                   "deployments": p.diagnostics["deployments"]}
    t_second = time.perf_counter() - t2
    logz_err = {a: p.logz_err for a, p in posts.items()}
    n_draws = len(posts[best].samples["anchor"])
    # the shipped default: the best-supported account, whose draws come from the long chain
    # (R-hat <= 1.01). The model average mixes in the short chains of the other close accounts
    # (R-hat > 1.01 there); it is kept beside it for comparison, never as a second default.
    shipped = {"choice": best, "reason": (
        f"best-supported account (posterior weight {weights[best]:.3f}); its draws are the long emcee chain. "
        "The model average over all accounts is reported beside it (headline 'model_average') for comparison."),
        "weights": {a: w for a, w in weights.items() if w >= 1e-3}}
    shipped_samples = dict(posts[best].samples)
    averaged = model_average(posts, weights, seed, max(n_draws, 2000 if not reduced else 300))
    heads = {a: headline(p.samples, seed) for a, p in posts.items()}
    heads["shipped"] = headline(shipped_samples, seed)
    heads["model_average"] = headline(averaged, seed)
    checks = {a: period_checks(p, data, seed) for a, p in posts.items()}
    conditional = {a: {pr: false_given_alerts(p, data.only_period(pr), seed) for pr in rec.PERIODS}
                   for a, p in posts.items()}
    slope = {"prior": _prior_slope(seed, 4000 if not reduced else 300),
             "npl_only": npl_only.summary("fpir_ratio_0.64_0.60"),
             "npl_only_0.62_0.60": npl_only.summary("fpir_ratio_0.62_0.60")}
    for a, p in posts.items():
        slope[a] = p.summary("fpir_ratio_0.64_0.60")
    slope["shipped"] = _summ(shipped_samples["fpir_ratio_0.64_0.60"])
    slope["model_average"] = _summ(averaged["fpir_ratio_0.64_0.60"])
    median = _median_score_parameters(shipped_samples)
    for a, p in posts.items():
        p.diagnostics["stage"] = stage[a]
    return {"seed": seed, "reduced": reduced, "settings": {"screen": dataclasses.asdict(screen),
                                                           "lopo": dataclasses.asdict(Settings.lopo()),
                                                           "mcmc_steps": MCMC_STEPS, "mcmc_long": MCMC_LONG,
                                                           "mcmc_extend": MCMC_EXTEND, "mcmc_burn": MCMC_BURN},
            "stage": stage, "screened_logz": screened, "lead": lead,
            "shipped": shipped, "shipped_samples": shipped_samples,
            "shipped_score_parameters": median, "logz": logz, "logz_err": logz_err,
            "weights": weights, "best": best, "loo": loo_table(posts),
            "diagnostics": {a: p.diagnostics for a, p in posts.items()},
            "summaries": {a: {k: p.summary(k) for k in p.samples if np.asarray(p.samples[k]).dtype.kind == "f"}
                          for a, p in posts.items()},
            "headline": heads, "period_checks": checks[best], "period_checks_all": checks,
            "false_given_alerts": conditional, "lopo": lopo_rows, "slope": slope, "sensitivity": sens,
            "npl_only": {"logz": npl_only.logz, "diagnostics": npl_only.diagnostics,
                         "summaries": {k: npl_only.summary(k) for k in ("npl_fpir_0.60_n10000", "fpir_ratio_0.62_0.60",
                                                                         "fpir_ratio_0.64_0.60", "impostor_sd")}},
            "runtime_seconds": {"screen": round(t_first, 1), "chains_lopo_npl": round(t_second, 1),
                                "total": round(time.perf_counter() - t0, 1)},
            "posteriors": posts, "npl_only_posterior": npl_only,
            "slope_draws": {a: np.asarray(p.samples["fpir_ratio_0.64_0.60"]) for a, p in posts.items()}
            | {"npl_only": np.asarray(npl_only.samples["fpir_ratio_0.64_0.60"])}}


def _prior_slope(seed: int, n: int) -> dict[str, float]:
    """FPIR(0.64)/FPIR(0.60) under the score priors alone (what the data have to narrow)."""
    rng = np.random.default_rng(_seed_for(seed, "prior-slope"))
    model = Model(NPL_ONLY, Data.from_records(rec.fit_rows()))
    vals = []
    while len(vals) < n:
        x = model.prior_transform(rng.random(model.ndim))
        s = model.score(x)
        if not s.valid:
            continue
        f = s.fpir(logit(np.array([0.60, 0.64])), HEADLINE["watchlist_size"], model.data.watchlist) @ headline_crowd()
        vals.append(f[1] / f[0])
    return _summ(np.array(vals))


def _median_score_parameters(samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """Posterior medians in ``sim.config.ScoreParameters`` form (for a forward run that needs one
    point; intervals come from the draws file)."""
    med = {k: float(np.median(samples[k])) for k in ("impostor_location", "impostor_sd", "genuine_location",
                                                     "same_ethnicity_shift", "minority_probe_shift")}
    return {"impostor_location": med["impostor_location"], "impostor_sd": med["impostor_sd"],
            "same_sex_shift": SAME_SEX_SHIFT, "same_ethnicity_shift": med["same_ethnicity_shift"],
            "probe_female_shift": PROBE_FEMALE_SHIFT,
            "probe_ethnicity_shift": {e: med["minority_probe_shift"] * MINORITY_PATTERN[e] for e in rec.ETHNICITIES},
            "probe_effect_sd": PROBE_EFFECT_SD, "entry_effect_sd": ENTRY_EFFECT_SD, "lamb_share": LAMB_SHARE,
            "lamb_shift": LAMB_SHIFT, "tail": "gaussian", "genuine_location": med["genuine_location"],
            "genuine_sd": GENUINE_SD,
            "watchlisted_per_passer": float(np.median(samples["watchlisted_per_passer"])),
            "watchlisted_per_passer_note": ("per passer at a 15,000-entry list and 1,000 passers an hour; "
                                            "scales as (passers per hour / 1000)^footfall_elasticity"),
            "footfall_elasticity": float(np.median(samples["footfall_elasticity"]))
            if "footfall_elasticity" in samples else 0.0,
            "faces_per_passer": {r: float(np.median(samples[f"faces_per_passer[{r}]"])) for r in rec.REGIMES},
            "operator_pass_false": float(np.median(samples["operator_pass_false"]))
            if "operator_pass_false" in samples else 1.0}


# -- cross-checks against the package's closed forms ---------------------------------------------

def check_against_package(x: np.ndarray | None = None) -> dict[str, float]:
    """Max relative difference of this module's FPIR/TPIR from ``sim``'s (needs the package)."""
    import importlib

    def _find(name: str, modules: tuple[str, ...]) -> Any:
        for m in modules:               # the package is being restructured: look in both homes
            try:
                return getattr(importlib.import_module(m), name)
            except (ImportError, AttributeError):
                continue
        raise ImportError(f"{name} not found in {modules}")

    fpir_quadrature = _find("fpir_quadrature", ("sim.posterior", "sim.calibrate"))
    reference_table = _find("reference_table", ("sim.calibrate", "sim.posterior"))
    REFERENCE_SIZE = _find("REFERENCE_SIZE", ("sim.calibrate", "sim.posterior"))
    ScoreParameters = _find("ScoreParameters", ("sim.config",))
    default_groups = _find("default_groups", ("sim.groups", "sim.crowd"))
    score_model = _find("score_model", ("sim.scores",))
    to_latent = _find("to_latent", ("sim.scores",))

    base = ScoreParameters()
    assert (base.same_sex_shift, base.probe_female_shift, base.probe_effect_sd, base.entry_effect_sd,
            base.lamb_share, base.lamb_shift, base.genuine_sd) == (
        SAME_SEX_SHIFT, PROBE_FEMALE_SHIFT, PROBE_EFFECT_SD, ENTRY_EFFECT_SD, LAMB_SHARE, LAMB_SHIFT, GENUINE_SD)
    x = np.array([0.41, math.log(0.307), 1.02, 1.8, 0.16]) if x is None else x
    s = score_from(*map(float, x[:5]))
    params = base.model_copy(update=s.score_parameters())
    model = score_model(params, default_groups())
    data = Data.from_records(rec.fit_rows())
    worst_f, worst_t = 0.0, 0.0
    for t in (0.56, 0.60, 0.62, 0.64):
        for n in (1_000, 10_000, 16_000):
            ref = fpir_quadrature(model, data.watchlist, n, t, nodes=12)
            mine = s.fpir(logit(np.array([t])), n, data.watchlist)[0]
            worst_f = max(worst_f, float(np.max(np.abs(mine / ref - 1))))
    table = reference_table(model, data.watchlist)
    for t in (0.60, 0.64):
        ref = table.true_alert_probabilities(float(to_latent(t)), 1.0, 16_000 / REFERENCE_SIZE)
        mine = s.tpir(logit(np.array([t])))[0]
        worst_t = max(worst_t, float(np.max(np.abs(mine / ref - 1))))
    return {"fpir_max_rel_diff": worst_f, "tpir_max_rel_diff": worst_t}


# -- command line ---------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Joint Bayesian calibration (issue 12)")
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--reduced", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nlive", type=int, default=None, help="live points of the nested screen")
    ap.add_argument("--walks", type=int, default=None, help="random-walk steps of the nested screen")
    ap.add_argument("--no-lopo", action="store_true")
    ap.add_argument("--sensitivity", action="store_true", help="also refit the best account under two variants")
    args = ap.parse_args(argv)
    settings = Settings.reduced() if args.reduced else Settings.screen()
    if args.nlive:
        settings = dataclasses.replace(settings, nlive=args.nlive)
    if args.walks:
        settings = dataclasses.replace(settings, walks=args.walks)
    t0 = time.perf_counter()
    result = calibrate(args.seed, args.reduced, args.workers, lopo=not args.no_lopo, settings=settings,
                       sensitivity=args.sensitivity)
    command = "python calibrate.py " + " ".join(sys.argv[1:] if argv is None else argv)
    toml_path, npz_path = write_posterior(result, args.out / "posterior.toml", command)
    report = {k: v for k, v in result.items()
              if k not in ("posteriors", "npl_only_posterior", "shipped_samples", "slope_draws")}
    np.savez_compressed(args.out / "slope_draws.npz", **result["slope_draws"])
    (args.out / "results.json").write_text(json.dumps(_clean(report), indent=1))
    print(f"wrote {toml_path} ({toml_path.stat().st_size / 1e3:.0f} kB) and {npz_path} "
          f"({npz_path.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
