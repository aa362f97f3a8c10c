"""The likelihood of the joint calibration: the closed-form score model, priors, accounts, data.

One posterior for everything the evidence informs: NPL 2023 (the events it reports), the Met's
2023-2024 deployment records (true and false alerts per deployment, *with* their face counts, and
the faces per hour themselves as a measurement of the counting), NIST IR 8280 and Howard et al.
2019 as proper priors. This module says how likely the evidence is under one parameter vector;
``sim.inference`` samples it, ``sim.checks`` checks it, ``sim.calibrate`` runs the whole thing.
The Met's 2025 figure (12 false alerts in 3 million faces) is never an input.

The picture: a passer walks past a camera; the matcher compares the face with every watchlist
entry; a false alert is the best impostor score clearing the threshold, a true alert the passer's
own entry clearing it. The records count alerts per deployment and "faces seen", but what a
counted face is changed in 2024, so faces become passers through a counting factor.

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
c+d, b+c; c2 (as c, 2023 sharing the 2024 high-count factor); c0 (as c, gamma = 0); c2p (as
c2, with the simulator's other tail family, below). The footfall elasticity and the
faces-per-hour block are in every account that uses the records, so all accounts explain the
same data.

**Tail family** (c2p; ``Account.tail = "pareto"``). The impostor noise is ``sim.scores``'
``ParetoTailNoise``: the normal below a knot at 3 sd (``ScoreParameters.tail_knot_sd``'s
default), a generalised-Pareto tail of shape ``tail_shape`` above it, its scale set by a
continuous density (``pareto_logsf``, ``pareto_isf_log``). One extra coordinate,
``tail_shape ~ Uniform(0, 1)``: the simulator's allowed range (0 = exponential, already heavier
than the normal). Everything that used the Gaussian tail uses the account's: the per-entry
exceedance (lambs too), NIST's differential solved for the minority shift (the tail inverted at
0.60 from log space), the one-to-one FMR. The anchor keeps its meaning, the latent score a
share Phi(-6.5) of impostor comparisons exceed (``score_from``). Widening the sd by the probe
and entry effects is exact only for the normal: applied to the Pareto tail it is off by 13-75%
at moderate sds (0.15-0.3) and by up to 8x at c2p's posterior draws (sd 0.05-0.2), so the
summed effect is integrated by 8-node Gauss-Hermite instead (``Score.per_entry``). Against the
simulator's exact hazard (``fpir_quadrature`` under ``ParetoTailNoise``, probe and entry
effects by quadrature) at 40 draws of c2p's screen posterior and N <= 16,000 the closed form
is within 1.5e-3 at 0.60-0.64 (the records' thresholds and NPL's counts); what is left is the
probe-effect Jensen term of ``1 - exp(-N f)``, which at small sds grows where Black men's FPIR
is large: 2.7% at 0.58 (NPL's Black/White sign constraint only) and up to 45% at 0.56 with
16,000 entries (the reported Black/White ratio at 0.56 only). The Gaussian accounts'
arithmetic is unchanged, bit for bit.

Arrests are a separate conjugate block: arrests_d ~ Binomial(true_d, p_arrest), p_arrest ~
Beta(1, 1), the same in every account.

The fixed score constants (same-sex shift, probe female shift, effect sds, lambs, genuine sd) are
``sim.config.ScoreParameters``' defaults, read from the schema; the minority pattern, the
watchlist's make-up (15% female, London's mix) and the reference list (15,000 entries, 1,000
passers an hour) are the package's documented constants (``tests/test_likelihood.py`` checks
that they agree).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

from . import data as shipped
from . import records as rec
from .config import Crowd, ScoreParameters, Watchlist

# -- fixed score-model constants (sim.config.ScoreParameters' defaults) ------------------------


def _default(model: Any, name: str) -> Any:
    return model.model_fields[name].default


SAME_SEX_SHIFT = _default(ScoreParameters, "same_sex_shift")
PROBE_FEMALE_SHIFT = _default(ScoreParameters, "probe_female_shift")
PROBE_EFFECT_SD = _default(ScoreParameters, "probe_effect_sd")
ENTRY_EFFECT_SD = _default(ScoreParameters, "entry_effect_sd")
LAMB_SHARE = _default(ScoreParameters, "lamb_share")
LAMB_SHIFT = _default(ScoreParameters, "lamb_shift")
GENUINE_SD = _default(ScoreParameters, "genuine_sd")
# NIST IR 8280's ordering of differentials (the package's documented pattern)
MINORITY_PATTERN = {"asian": 0.6, "black": 1.0, "mixed": 0.4, "white": 0.0, "other": 0.4}
ANCHOR_Z = 6.5
TAIL_KNOT_SD = _default(ScoreParameters, "tail_knot_sd")   # the simulator's default knot (3 sd)
TAIL_SHAPE_RANGE = (0.0, 1.0)               # ScoreParameters.tail_shape's allowed range
TAIL_NODES = 8                              # Gauss-Hermite nodes over the probe + entry effect
WATCHLIST_FEMALE_SHARE = _default(Watchlist, "female_share")
PREVALENCE_REFERENCE_SIZE = _default(Crowd, "prevalence_reference_size")
REFERENCE_FOOTFALL_PER_HOUR = 1000.0        # passers per hour at which pi is quoted
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
LOG_FOOTFALL_REFERENCE = math.log(REFERENCE_FOOTFALL_PER_HOUR)
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
    tail: str = "gaussian"                 # impostor noise: "gaussian" | "pareto" (GPD above the knot)
    tail_knot_sd: float = TAIL_KNOT_SD      # the Pareto tail's knot, impostor sds

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
    Account("c2p", "as c2, with a generalised-Pareto impostor tail above 3 sd", counting=True,
            factor_of_regime=(0, 1, 0), tail="pareto"),
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
                             math.log(FACES_PER_PASSER_RANGE[1]),
                             "one counted face per 10 passers to 100 per passer"))
        if account.operator:
            out.append(Prior("operator_pass_false", "uniform", 0.0, 1.0,
                             "share of false matcher alerts recorded"))
        if account.shift:
            out.append(Prior("field_shift", "normal", 0.0, FIELD_SHIFT_PRIOR_SD,
                             "lab-to-field impostor shift, latent units"))
        if account.elasticity:
            out.append(Prior("footfall_elasticity", "normal", 0.0, 1.0,
                             "d log(watchlisted share) / d log(passers per hour); 0 = none, -1 = "
                             "wanted passers per hour independent of footfall"))
        out += [Prior("site_sd", "halfnormal", 1.0, 0.0, "sd of log passers per hour between wards"),
                Prior("day_sd", "halfnormal", 1.0, 0.0, "sd of log passers per hour within a ward")]
    if account.tail == "pareto":
        out.append(Prior("tail_shape", "uniform", *TAIL_SHAPE_RANGE,
                         "generalised-Pareto shape of the impostor tail above the knot: the "
                         "simulator's allowed range (ScoreParameters.tail_shape; 0 = exponential)"))
    return out


# -- the evidence as arrays -------------------------------------------------------------------

def _published_figures() -> dict[str, Any]:
    return shipped.published_figures()


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
        npl_ = {"fp_0.60": int(figs["false_positives_at_0_60"]),
               "fp_0.62": int(figs["false_positives_at_0_62"]),
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

def pareto_logsf(z: np.ndarray, knot: float, shape: float) -> np.ndarray:
    """log P(noise > z sd) of ``sim.scores.ParetoTailNoise`` in sd units: the normal's below
    ``knot``, a generalised-Pareto tail of shape ``shape`` above it (density continuous there)."""
    z = np.asarray(z, dtype=float)
    su, b = _pareto_knot(knot)
    y = np.maximum(z - knot, 0.0) / b
    tail = math.log(su) - (np.log1p(shape * y) / shape if shape > 0.0 else y)
    return np.where(z > knot, tail, special.log_ndtr(-z))


def pareto_isf_log(log_q: float, knot: float, shape: float) -> float:
    """The z (sd units) with ``pareto_logsf(z) = log_q``: the inverse of the tail, from log space."""
    su, b = _pareto_knot(knot)
    if log_q >= math.log(su):
        return -float(special.ndtri_exp(log_q))
    r = log_q - math.log(su)                          # < 0
    return knot + b * (math.expm1(-shape * r) / shape if shape > 0.0 else -r)


@lru_cache(maxsize=8)
def _pareto_knot(knot: float) -> tuple[float, float]:
    """(sf at the knot, the tail's scale in sd units), as ``ParetoTailNoise`` sets them."""
    su = float(special.ndtr(-knot))
    return su, su / (math.exp(-0.5 * knot * knot) / math.sqrt(2.0 * math.pi))


@lru_cache(maxsize=4)
def _effect_nodes(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes (in sds of the probe + entry effect) and weights summing to 1."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return x * math.sqrt(SIGMA_EFFECTS2), w / w.sum()


@dataclass(frozen=True)
class Score:
    """Derived score-model quantities of one parameter vector.

    ``tail_shape`` None: Gaussian impostor noise; otherwise ``sim.scores.ParetoTailNoise`` with
    knot ``tail_knot`` sds and that shape."""

    impostor_location: float
    impostor_sd: float
    genuine_location: float
    minority_shift: float
    same_ethnicity_shift: float
    mu: np.ndarray              # (G, G)
    valid: bool
    base: np.ndarray = field(default_factory=lambda: np.zeros(G))   # (G,) mu[g, h] without pair shifts
    tail_shape: float | None = None
    tail_knot: float = TAIL_KNOT_SD

    def per_entry(self, t: np.ndarray, watchlist: np.ndarray) -> np.ndarray:
        """f_g(t): per-entry exceedance of a list of make-up ``watchlist``, shape (len(t), G).

        mu[g, h] takes four values per probe group (same sex or not x same ethnicity or not), so
        the sum over entry groups runs over those four with the list's weight on each. Gaussian
        noise: the probe and entry effects widen the sd (exact). Pareto tail: the tail of a sum
        of a normal and a generalised Pareto has no closed form, and applying the tail at the
        widened sd is off by 13% to 8x (``tests/test_likelihood.py`` measures it), so the
        summed effect ``p + e ~ N(0, 0.03^2 + 0.03^2)`` is integrated by ``TAIL_NODES``-node
        Gauss-Hermite under the noise's own tail (exact in the hazard-linear regime, like the
        Gaussian closed form; the residual against the simulator's hazard is the probe-effect
        Jensen term: < 1.5e-3 at 0.60-0.64, more below where FPIR is large; module docstring).
        """
        weights = _combo_weights(tuple(float(v) for v in watchlist))            # (G, 4)
        shifts = np.array([0.0, self.same_ethnicity_shift, SAME_SEX_SHIFT,
                           SAME_SEX_SHIFT + self.same_ethnicity_shift])
        if self.tail_shape is not None:
            x, w = _effect_nodes(TAIL_NODES)
            d = (np.asarray(t, dtype=float)[:, None, None, None] - self.base[None, :, None, None]
                 - shifts[None, None, :, None] - x) / self.impostor_sd
            tail = ((1.0 - LAMB_SHARE) * np.exp(pareto_logsf(d, self.tail_knot, self.tail_shape))
                    + LAMB_SHARE * np.exp(pareto_logsf(d - LAMB_SHIFT / self.impostor_sd, self.tail_knot,
                                                       self.tail_shape))) @ w
            return np.einsum("tgc,gc->tg", tail, weights)
        s = math.sqrt(self.impostor_sd ** 2 + SIGMA_EFFECTS2)
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
        if self.tail_shape is not None:
            return np.exp(pareto_logsf((t - np.diag(self.mu)) / self.impostor_sd, self.tail_knot,
                                       self.tail_shape))
        return special.ndtr(-(t - np.diag(self.mu)) / self.impostor_sd)

    def score_parameters(self) -> dict[str, Any]:
        """The ``sim.config.ScoreParameters`` fields this vector sets."""
        out: dict[str, Any] = {
            "impostor_location": self.impostor_location, "impostor_sd": self.impostor_sd,
            "genuine_location": self.genuine_location, "same_ethnicity_shift": self.same_ethnicity_shift,
            "probe_ethnicity_shift": {e: self.minority_shift * MINORITY_PATTERN[e] for e in rec.ETHNICITIES}}
        if self.tail_shape is not None:
            out.update(tail="pareto", tail_knot_sd=self.tail_knot, tail_shape=self.tail_shape)
        return out


@lru_cache(maxsize=8)
def _combo_weights(watchlist: tuple[float, ...]) -> np.ndarray:
    """W[g, c]: the list's share of entries in pair class c = 2 [same sex] + [same ethnicity]."""
    w = np.asarray(watchlist)
    combo = (2 * SAME_SEX + SAME_ETH).astype(int)
    out = np.zeros((G, 4))
    for c in range(4):
        out[:, c] = (combo == c).astype(float) @ w
    return out


def score_from(anchor: float, log_sd: float, genuine: float, log10_d: float, same_eth: float,
               tail_shape: float | None = None, tail_knot: float = TAIL_KNOT_SD) -> Score:
    """Build the score model from sampler coordinates, solving the minority shift from NIST's D.

    ``tail_shape`` None: Gaussian noise, ``anchor = impostor_location + 6.5 sd``. Otherwise the
    Pareto tail of that shape above ``tail_knot`` sds, and the anchor keeps its meaning as the
    latent score a share Phi(-6.5) of impostor comparisons exceed:
    ``anchor = impostor_location + sd * isf(Phi(-6.5))`` under that tail (so the anchor's prior
    says the same in both families; the Gaussian's 6.5 sd is the exponential tail's 8.3 sd)."""
    sd = math.exp(log_sd)
    t60 = float(logit(0.60))
    if tail_shape is None:
        loc = anchor - ANCHOR_Z * sd
        x0 = t60 - loc - SAME_SEX_SHIFT - same_eth            # threshold minus White men's diagonal mean
        log_q = log10_d * math.log(10.0) + float(special.log_ndtr(-x0 / sd))
        valid = log_q < -1e-12
        delta = x0 - PROBE_FEMALE_SHIFT + sd * float(special.ndtri_exp(log_q)) if valid else float("nan")
    else:
        loc = anchor - sd * pareto_isf_log(float(special.log_ndtr(-ANCHOR_Z)), tail_knot, tail_shape)
        x0 = t60 - loc - SAME_SEX_SHIFT - same_eth
        log_q = log10_d * math.log(10.0) + float(pareto_logsf(x0 / sd, tail_knot, tail_shape))
        valid = log_q < -1e-12
        delta = x0 - PROBE_FEMALE_SHIFT - sd * pareto_isf_log(log_q, tail_knot, tail_shape) \
            if valid else float("nan")
    valid = valid and 0.0 <= delta <= 1.5
    shift = delta * PATTERN + PROBE_FEMALE_SHIFT * FEMALE if valid else np.zeros(G)
    mu = loc + shift[:, None] + SAME_SEX_SHIFT * SAME_SEX + same_eth * SAME_ETH
    return Score(loc, sd, genuine, delta, same_eth, mu, bool(valid), loc + shift, tail_shape, tail_knot)


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
        if self.account.tail == "pareto":
            return score_from(float(x[0]), float(x[1]), float(x[2]), float(x[3]), float(x[4]),
                              self.get(x, "tail_shape"), self.account.tail_knot_sd)
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
        log_mt = (math.log(10.0) * self.get(x, "log10_watchlisted_per_passer")
                  + self.get(x, "period_sd") * z[self._p_period]
                  + self._p_logscale + log_tpir[self._p_tidx] + log_passers)
        if gamma:
            log_mt = log_mt + gamma * (self._plogfph - logk - LOG_FOOTFALL_REFERENCE)
        log_mf = log_passers + np.log(rf)[self._pr]
        ll = (self._plogp
              + nb_logpmf_log(self._pyt, log_mt, self.get(x, "phi_true"), self._plgt, self._ymax_t)
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
    if s.tail_shape is not None:         # the draw runs the simulator's ParetoTailNoise (sim.draws)
        out["tail_knot_sd"] = s.tail_knot
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




def arrest_posterior(data: Data) -> tuple[float, float]:
    """Beta(1 + arrests, 1 + true alerts - arrests): the conjugate posterior of p_arrest."""
    a = float(np.minimum(data.arrests, data.y_true).sum())
    return 1.0 + a, 1.0 + float(data.y_true.sum()) - a

