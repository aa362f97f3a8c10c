"""Fit the score model to independent evidence, by maximum likelihood with documented priors.

Four kinds of evidence, each a likelihood term or a prior (docs/model.md, "Calibration"):

* **NPL 2023** (``sim/data/published_figures.toml``), NEC NeoFace V4 as the Met uses it:
  TPIR 0.89 at 0.60 (binomial, about 4,000 mated passes); FPIR 1 in 6,000 with 10,000 entries
  and 1 in 60,000 with 1,000 (Poisson counts in NPL's crowd of 130,000); 7, 1 and 0 false
  positives at 0.60, 0.62 and 0.64 (alerts at a higher threshold are a subset of those at a lower
  one, so 1 of 7 and 0 of 1 are binomial in the model's FPIR ratios: the slope of the tail); and
  the 7 at 0.60 all on ethnic-minority passers (binomial, 7 of 7, in the model's minority share
  of false alerts). NPL's statement that below 0.60 more Black than White passers were falsely
  matched is a one-sided constraint on the Black/White FPIR ratio at 0.58.
* **The Met's deployment records 2023-2024** (``met_lfr_deployments_2020_2024.csv``). "Faces
  seen" changed meaning in January-July 2024 (the data's README), and even outside those months
  true and false alerts per counted face move together by a factor of five between periods. The
  fit therefore never uses the face counts: it uses, per deployment, the false alerts among the
  alerts. Given ``a`` alerts, the false ones are binomial with probability ``F / (F + pi T)``,
  where ``F`` is the crowd's false-alert rate per passer (the deployment's ward mix, watchlist
  size and threshold) and ``pi T`` the true-alert rate: the share of passers on the watchlist
  times TPIR. How many passers were searched cancels. ``pi`` (watchlisted passers per passer at
  a 15,000-entry list, the crowd setting ``watchlisted_per_passer``) is not a score parameter; it
  is profiled out, one value for all of 2023-2024.
* **NIST IR 8280**: false-match differentials across demographic groups of 10-100x for most
  algorithms, smaller for the most accurate. A bound, not a target: the ratio of the highest to
  the lowest same-group one-to-one false-match rate at 0.60 is penalised above 100.
* **Howard et al. 2019**: pairs sharing ethnicity score higher. Prior on the same-ethnicity shift:
  normal, mean 0.16, sd 0.08 (latent units).

Free parameters (``FREE``): impostor location and spread, genuine location, the ethnic-minority
probe shift (Black = delta; Asian 0.6 delta; Mixed and Other 0.4 delta, the default's pattern)
and the same-ethnicity shift. Everything else stays at ``ScoreParameters``' documented defaults.

The Met's 2025 headline (12 false alerts in 3 million faces) is never an input: ``fit`` reports
what the fitted model predicts for it, with an interval, next to the figure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from scipy import optimize, stats

from . import data as shipped
from .config import ScoreParameters
from .crowd import watchlist_group_shares
from .groups import ETHNICITIES, default_groups, group_shares
from .records import PERIODS, MetRecord, fitted_records, met_records
from .scores import EntryEffects, ScoreModel, score_model, to_latent
from .search import SearchTable, build_search_table
from .watchlist import BIN_WIDTH, WatchlistEntries

FREE = ("impostor_location", "impostor_sd", "genuine_location", "minority_probe_shift",
        "same_ethnicity_shift")
MINORITY_PATTERN = {"asian": 0.6, "black": 1.0, "mixed": 0.4, "white": 0.0, "other": 0.4}
REFERENCE_SIZE = 10_000          # tables are built at this size and rescaled exactly
PREVALENCE_REFERENCE_SIZE = 15_000
WATCHLIST_FEMALE_SHARE = 0.15    # the schema's default watchlist make-up (London's ethnic mix)
THRESHOLDS = (0.56, 0.58, 0.60, 0.62, 0.64)
SAME_ETHNICITY_PRIOR = (0.16, 0.08)
NIST_MAX_DIFFERENTIAL = 100.0
ANCHOR_Z = 6.5                   # impostor sds from the impostor mean to NPL's threshold
SOFT_BOUND_SD = 0.1              # width (in log units) of the penalty outside a bound
MINORITY = tuple(e != "white" for e in ETHNICITIES)


# -- evidence as arrays ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Evidence:
    """Observed counts and the settings needed to predict them."""

    npl_crowd_shares: np.ndarray        # (G,) London census, half female
    watchlist_shares: np.ndarray        # (G,) the watchlist's make-up
    prevalence_weight: np.ndarray       # (G,) watchlist share / London population share
    npl: dict[str, float]
    met_shares: np.ndarray              # (D, G) crowd mix of each fitted deployment
    met_size: np.ndarray                # (D,) watchlist sizes
    met_threshold: np.ndarray           # (D,) vendor thresholds
    met_alerts: np.ndarray              # (D,)
    met_false: np.ndarray               # (D,)
    met_period: np.ndarray              # (D,) index into PERIODS


def evidence(records: tuple[MetRecord, ...] | None = None) -> Evidence:
    """The shipped evidence (or NPL plus the given ``records``) as arrays."""
    groups = default_groups()
    records = fitted_records() if records is None else records
    london = np.array([shipped.london_shares()[e] for e in ETHNICITIES])
    wl = watchlist_group_shares(WATCHLIST_FEMALE_SHARE, "london", groups)
    population = group_shares(0.5, london)
    npl = shipped.published_figures()["npl_2023"]
    return Evidence(
        npl_crowd_shares=population, watchlist_shares=wl, prevalence_weight=wl / population,
        npl={"crowd": float(npl["crowd_passers_min"]), "mated": float(npl["volunteers"]) * 10,
             "tpir": float(npl["tpir_at_0_60"]), "fpir_10000": float(npl["fpir_at_0_60_watchlist_10000"]),
             "fpir_1000": float(npl["fpir_at_0_60_watchlist_1000"]),
             "fp_0.60": float(npl["false_positives_at_0_60"]),
             "fp_0.62": float(npl["false_positives_at_0_62"]),
             "fp_0.64": float(npl["false_positives_at_0_64"]),
             "fp_0.60_minority": float(npl["false_positives_at_0_60"])},   # "all were from ethnic minorities"
        met_shares=np.array([group_shares(0.5, np.array(r.ethnicity_shares))
                             for r in records]).reshape(-1, len(groups)),
        met_size=np.array([r.watchlist_size for r in records], dtype=float),
        met_threshold=np.array([r.threshold for r in records], dtype=float),
        met_alerts=np.array([r.alerts for r in records], dtype=np.int64),
        met_false=np.array([r.false_alerts for r in records], dtype=np.int64),
        met_period=np.array([PERIODS.index(r.period) for r in records], dtype=np.int64))


def expected_watchlist(size: float, group_shares: np.ndarray, effects: EntryEffects,
                       bin_width: float = BIN_WIDTH) -> WatchlistEntries:
    """The average watchlist: expected (fractional) entry counts per group and effect bin."""
    lo, hi = effects.support()
    first = int(np.floor(lo / bin_width))
    last = int(np.ceil(hi / bin_width))
    centres = np.arange(first, last + 1) * bin_width
    edges = np.concatenate([[-np.inf], centres[:-1] + bin_width / 2, [np.inf]])
    bin_p = np.clip(np.diff(effects.cdf(edges)), 0.0, None)
    counts = size * np.outer(group_shares, bin_p / bin_p.sum())
    return WatchlistEntries(counts, first, bin_width)


def reference_table(model: ScoreModel, watchlist_shares: np.ndarray) -> SearchTable:
    """The search table of an average watchlist of REFERENCE_SIZE entries."""
    wl = expected_watchlist(REFERENCE_SIZE, watchlist_shares, model.entry_effects)
    return build_search_table(model, wl, float(to_latent(min(THRESHOLDS))))


def fpir_by_size(table: SearchTable, threshold: float, sizes: np.ndarray) -> np.ndarray:
    """FPIR[size, group] at one vendor threshold for watchlists of the table's make-up.

    The hazard scales exactly with the watchlist's size, so one table serves every size:
    S_g = sum_i w_i (1 - exp(-c H_g(t - p_i))), c = size / table size.
    """
    t = float(to_latent(threshold))
    p = table.offsets * table.step
    n_groups = table.log_hazard.shape[0]
    g = np.repeat(np.arange(n_groups), len(p))
    hazard = np.exp(table.log_hazard_at(g, np.tile(t - p, n_groups))).reshape(n_groups, len(p))
    c = np.asarray(sizes, dtype=float)[:, None, None] / table.watchlist_size
    return -np.expm1(-c * hazard[None]) @ table.weights


# -- the model's predictions ------------------------------------------------------------------

def with_free(base: ScoreParameters, x: np.ndarray) -> ScoreParameters:
    """``base`` with the free parameters set from the optimiser's vector ``x``.

    ``x = (anchor, log impostor_sd, genuine_location, minority shift, same-ethnicity shift)``
    where ``anchor = impostor_location + ANCHOR_Z * impostor_sd`` is the latent score about where
    NPL's false positives sit: the evidence fixes the anchor tightly and the spread loosely, and
    in these coordinates the two are nearly uncorrelated, which the optimiser needs.
    """
    delta = float(x[3])
    sd = float(np.exp(x[1]))
    return base.model_copy(update={
        "impostor_location": float(x[0]) - ANCHOR_Z * sd, "impostor_sd": sd, "genuine_location": float(x[2]),
        "probe_ethnicity_shift": {e: delta * MINORITY_PATTERN[e] for e in ETHNICITIES},
        "same_ethnicity_shift": float(x[4])})


def free_vector(params: ScoreParameters) -> np.ndarray:
    """The optimiser's vector for ``params`` (the minority shift read from the Black shift)."""
    return np.array([params.impostor_location + ANCHOR_Z * params.impostor_sd, np.log(params.impostor_sd),
                     params.genuine_location,
                     params.probe_ethnicity_shift["black"], params.same_ethnicity_shift])


@dataclass(frozen=True)
class Predictions:
    """What one parameter set predicts for every piece of evidence."""

    npl_tpir: float                     # TPIR at 0.60 in NPL's crowd
    npl_fpir: dict[float, float]        # crowd FPIR at each threshold, 10,000 entries
    npl_fpir_1000: float
    group_fpir: dict[float, np.ndarray]  # (G,) FPIR per probe group, 10,000 entries
    minority_share: float               # of false alerts at 0.60 in NPL's crowd
    met_false_rate: np.ndarray          # (D,) false alerts per passer
    met_true_per_prevalence: np.ndarray  # (D,) true alerts per passer per unit of pi
    nist_differential: float
    female_male_fmr: float


def _one_to_one_fmr(model: ScoreModel, threshold: float) -> np.ndarray:
    """Same-group one-to-one false-match rate of each group at a vendor threshold (as NIST measures)."""
    t = float(to_latent(threshold))
    return np.exp(model.noise.logsf(t - np.diag(model.impostor_location)))


def predict(params: ScoreParameters, ev: Evidence, table: SearchTable | None = None) -> Predictions:
    """Every prediction the likelihood needs (``table``: the reference table, if already built)."""
    model = score_model(params, default_groups())
    table = table or reference_table(model, ev.watchlist_shares)
    group_fpir = {t: fpir_by_size(table, t, np.array([REFERENCE_SIZE]))[0] for t in THRESHOLDS}
    crowd = ev.npl_crowd_shares
    minority = np.array([MINORITY[ETHNICITIES.index(g.ethnicity)] for g in model.groups])
    fp60 = crowd * group_fpir[0.60]
    sizes = ev.met_size
    false_rate = np.zeros(len(sizes))
    true_rate = np.zeros(len(sizes))
    nodes = np.array([0.9, 1.7])        # TPIR varies by <1e-3 over the Met's sizes: linear in size
    for t in np.unique(ev.met_threshold):
        sel = ev.met_threshold == t
        fpir = fpir_by_size(table, float(t), sizes[sel])                      # (d, G)
        lat = float(to_latent(t))
        tp = np.array([table.true_alert_probabilities(lat, 1.0, c) for c in nodes])   # (2, G)
        c = sizes[sel] / REFERENCE_SIZE
        tpir = tp[0] + (tp[1] - tp[0]) * ((c - nodes[0]) / (nodes[1] - nodes[0]))[:, None]
        shares = ev.met_shares[sel]
        false_rate[sel] = np.sum(shares * fpir, axis=1)
        weight = (sizes[sel] / PREVALENCE_REFERENCE_SIZE)[:, None] * ev.prevalence_weight[None]
        true_rate[sel] = np.sum(shares * weight * tpir, axis=1)
    fmr = _one_to_one_fmr(model, 0.60)
    female = np.array([g.sex == "female" for g in model.groups])
    return Predictions(
        npl_tpir=float(crowd @ table.true_alert_probabilities(float(to_latent(0.60)))),
        npl_fpir={t: float(crowd @ group_fpir[t]) for t in THRESHOLDS},
        npl_fpir_1000=float(crowd @ fpir_by_size(table, 0.60, np.array([1000.0]))[0]),
        group_fpir=group_fpir,
        minority_share=float(fp60[minority].sum() / fp60.sum()),
        met_false_rate=false_rate, met_true_per_prevalence=true_rate,
        nist_differential=float(fmr.max() / fmr.min()),
        female_male_fmr=float(np.exp(np.mean(np.log(fmr[female])) - np.mean(np.log(fmr[~female])))))


def met_false_share(pred: Predictions, prevalence: float) -> np.ndarray:
    """P(an alert is false) per fitted deployment, for watchlisted passers per passer ``prevalence``."""
    f = pred.met_false_rate
    return f / (f + prevalence * pred.met_true_per_prevalence)


def _met_loglik(pred: Predictions, ev: Evidence, prevalence: float) -> float:
    q = np.clip(met_false_share(pred, prevalence), 1e-300, 1 - 1e-15)
    return float(np.sum(stats.binom.logpmf(ev.met_false, ev.met_alerts, q)))


def profile_prevalence(pred: Predictions, ev: Evidence) -> tuple[float, float]:
    """(pi, log-likelihood): the watchlisted share that best fits the Met's false shares."""
    if len(ev.met_alerts) == 0:
        return float("nan"), 0.0
    res = optimize.minimize_scalar(lambda lp: -_met_loglik(pred, ev, float(np.exp(lp))),
                                   bounds=(np.log(1e-7), np.log(0.5)), method="bounded",
                                   options={"xatol": 1e-6})
    return float(np.exp(res.x)), float(-res.fun)


def npl_loglik_terms(pred: Predictions, ev: Evidence) -> dict[str, float]:
    n = ev.npl
    f = pred.npl_fpir
    return {
        "npl_tpir_0.60": float(stats.binom.logpmf(round(n["tpir"] * n["mated"]), round(n["mated"]),
                                                  np.clip(pred.npl_tpir, 1e-300, 1 - 1e-15))),
        "npl_fp_0.60_n10000": float(stats.poisson.logpmf(round(n["fpir_10000"] * n["crowd"]),
                                                         max(f[0.60] * n["crowd"], 1e-300))),
        "npl_fp_0.60_n1000": float(stats.poisson.logpmf(round(n["fpir_1000"] * n["crowd"]),
                                                        max(pred.npl_fpir_1000 * n["crowd"], 1e-300))),
        "npl_fp_0.62_of_0.60": float(stats.binom.logpmf(n["fp_0.62"], n["fp_0.60"],
                                                        np.clip(f[0.62] / f[0.60], 1e-300, 1.0))),
        "npl_fp_0.64_of_0.62": float(stats.binom.logpmf(n["fp_0.64"], n["fp_0.62"],
                                                        np.clip(f[0.64] / f[0.62], 1e-300, 1.0))),
        "npl_minority_of_fp_0.60": float(stats.binom.logpmf(n["fp_0.60_minority"], n["fp_0.60"],
                                                            np.clip(pred.minority_share, 1e-300, 1.0))),
    }


def _black_white_ratio(pred: Predictions, threshold: float) -> float:
    names = [g.name for g in default_groups()]
    fp = pred.group_fpir[threshold]
    black = np.mean([fp[names.index(f"{s}_black")] for s in ("female", "male")])
    white = np.mean([fp[names.index(f"{s}_white")] for s in ("female", "male")])
    return float(black / white)


def log_prior(params: ScoreParameters, pred: Predictions) -> dict[str, float]:
    """Priors and bounds: Howard et al. (same ethnicity), NIST IR 8280 (<= 100x), NPL below 0.60."""
    mean, sd = SAME_ETHNICITY_PRIOR
    over = max(0.0, np.log(pred.nist_differential) - np.log(NIST_MAX_DIFFERENTIAL))
    under = max(0.0, -np.log(_black_white_ratio(pred, 0.58)))
    return {
        "prior_same_ethnicity": float(stats.norm.logpdf(params.same_ethnicity_shift, mean, sd)
                                      - stats.norm.logpdf(mean, mean, sd)),
        "bound_nist_differential": float(-0.5 * (over / SOFT_BOUND_SD) ** 2),
        "bound_npl_black_over_white_0.58": float(-0.5 * (under / SOFT_BOUND_SD) ** 2),
    }


def log_posterior(params: ScoreParameters, ev: Evidence) -> tuple[float, dict[str, float], float]:
    """(total, each term, profiled pi) for one parameter set."""
    pred = predict(params, ev)
    terms = npl_loglik_terms(pred, ev)
    prevalence, met = profile_prevalence(pred, ev)
    terms["met_false_of_alerts"] = met
    terms.update(log_prior(params, pred))
    return float(sum(terms.values())), terms, prevalence


# -- the fit ----------------------------------------------------------------------------------

BOUNDS = [(-3.0, 3.0), (np.log(0.03), np.log(2.0)), (-3.0, 5.0), (0.0, 1.0), (-0.5, 1.0)]


def _objective(base: ScoreParameters, ev: Evidence):
    def nlp(x: np.ndarray) -> float:
        try:
            total, _, _ = log_posterior(with_free(base, x), ev)
        except (ValueError, FloatingPointError):
            return 1e12
        return -total if np.isfinite(total) else 1e12
    return nlp


def laplace_covariance(base: ScoreParameters, ev: Evidence, x: np.ndarray) -> np.ndarray:
    """Covariance of the Laplace (Gaussian) approximation of the posterior of the free vector at ``x``."""
    return _laplace_covariance(_objective(base, ev), x, np.array([0.01, 0.02, 0.01, 0.005, 0.01]))


def _laplace_covariance(nlp, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Inverse of the numerical Hessian of ``nlp`` at ``x`` (eigenvalues floored: a proper Gaussian)."""
    k = len(x)
    f0 = nlp(x)
    hess = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * steps[i], np.eye(k)[j] * steps[j]
            if i == j:
                hess[i, i] = (nlp(x + ei) - 2 * f0 + nlp(x - ei)) / steps[i] ** 2
            else:
                hess[i, j] = hess[j, i] = (nlp(x + ei + ej) - nlp(x + ei - ej) - nlp(x - ei + ej)
                                           + nlp(x - ei - ej)) / (4 * steps[i] * steps[j])
    # off-diagonal differences are noisy where curvatures differ by 10^3: re-measure the
    # curvature along each eigenvector with a step that moves the objective by about 1/2
    vals, vecs = np.linalg.eigh(hess)
    for m in range(k):
        s = float(np.clip(1.0 / np.sqrt(max(vals[m], 1.0)), 0.005, 0.1))
        v = vecs[:, m] * s
        vals[m] = (nlp(x + v) - 2 * f0 + nlp(x - v)) / s ** 2
    vals = np.maximum(vals, 1e-2)
    return (vecs / vals) @ vecs.T


def fit(base: ScoreParameters | None = None, ev: Evidence | None = None,
        rng: np.random.Generator | None = None, draws: int = 100) -> tuple[ScoreParameters, dict[str, Any]]:
    """Maximum a-posteriori fit of ``FREE`` to the evidence; returns parameters and diagnostics.

    Deterministic: the optimiser starts from ``base`` (the schema's defaults), and the predictive
    intervals of derived figures use ``rng`` (default: a fixed seed) for ``draws`` draws from the
    Laplace approximation of the posterior.
    """
    base = base or ScoreParameters()
    ev = ev or evidence()
    rng = rng or np.random.default_rng(20230301)
    result = maximise(base, ev)
    fitted = with_free(base, result.x)
    total, terms, prevalence = log_posterior(fitted, ev)
    cov = laplace_covariance(base, ev, result.x)
    diagnostics: dict[str, Any] = {
        "log_likelihood": float(sum(v for k, v in terms.items() if not k.startswith(("prior", "bound")))),
        "log_posterior": total, "converged": bool(result.success), "iterations": int(result.nit),
        "terms": terms, "watchlisted_per_passer": prevalence,
        "posterior": {"free": list(FREE), "mean": [float(v) for v in result.x],
                      "covariance": [[float(v) for v in row] for row in cov]},
    }
    pred = predict(fitted, ev)
    diagnostics["targets"] = target_table(pred, ev, prevalence)
    diagnostics["derived"] = derived_figures(base, result.x, cov, ev, rng, draws)
    return fitted, diagnostics


def maximise(base: ScoreParameters, ev: Evidence, xatol: float = 1e-4,
             fatol: float = 1e-5) -> optimize.OptimizeResult:
    """The optimiser's answer for the free vector (see ``with_free``), starting from ``base``."""
    nlp = _objective(base, ev)
    x0 = np.clip(free_vector(base), [b[0] for b in BOUNDS], [b[1] for b in BOUNDS])
    # Nelder-Mead tolerates the small kinks of tabulated probabilities; a restart from its
    # answer with a fresh, smaller simplex guards against a collapsed simplex
    result = None
    for scale in (1.0, 0.2):
        simplex = x0 + np.vstack([np.zeros(5), np.diag([0.1, 0.1, 0.1, 0.05, 0.05]) * scale])
        result = optimize.minimize(nlp, x0, method="Nelder-Mead", bounds=BOUNDS,
                                   options={"xatol": xatol, "fatol": fatol, "maxiter": 3000, "maxfev": 6000,
                                            "initial_simplex": simplex})
        x0 = result.x
    assert result is not None
    return result


# -- diagnostics ------------------------------------------------------------------------------

def poisson_binomial_pmf(trials: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Exact pmf of a sum of independent binomial(trials_i, p_i) counts."""
    pmf = np.ones(1)
    for n, q in zip(trials, p, strict=True):
        pmf = np.convolve(pmf, stats.binom.pmf(np.arange(n + 1), n, q))
    return pmf


def _interval(pmf: np.ndarray) -> tuple[float, float]:
    cdf = np.cumsum(pmf)
    return float(np.searchsorted(cdf, 0.025)), float(np.searchsorted(cdf, 0.975))


def target_table(pred: Predictions, ev: Evidence, prevalence: float) -> list[dict[str, Any]]:
    """Each target's observed value, prediction and 95% predictive interval."""
    n = ev.npl
    f = pred.npl_fpir
    rows = []

    def add(name: str, source: str, observed: float, pmf: np.ndarray) -> None:
        lo, hi = _interval(pmf)
        rows.append({"name": name, "source": source, "observed": float(observed),
                     "predicted": float(np.arange(len(pmf)) @ pmf), "interval_95": [lo, hi],
                     "within": bool(lo <= observed <= hi)})

    def binom(trials: float, p: float) -> np.ndarray:
        return stats.binom.pmf(np.arange(round(trials) + 1), round(trials), p)

    def poisson(mean: float) -> np.ndarray:
        k = np.arange(int(stats.poisson.isf(1e-9, mean)) + 2)
        return stats.poisson.pmf(k, mean)

    add("npl_tpir_0.60", "NPL 2023: TPIR 0.89 at 0.60 (about 4,000 mated passes)",
        round(n["tpir"] * n["mated"]), binom(n["mated"], pred.npl_tpir))
    add("npl_fp_0.60_n10000", "NPL 2023: FPIR 1/6,000 at 0.60, 10,000 entries, in a 130,000 crowd",
        round(n["fpir_10000"] * n["crowd"]), poisson(f[0.60] * n["crowd"]))
    add("npl_fp_0.60_n1000", "NPL 2023: FPIR 1/60,000 at 0.60, 1,000 entries, in a 130,000 crowd",
        round(n["fpir_1000"] * n["crowd"]), poisson(pred.npl_fpir_1000 * n["crowd"]))
    add("npl_fp_0.62_of_0.60", "NPL 2023: 1 of the 7 false positives at 0.60 remains at 0.62",
        n["fp_0.62"], binom(n["fp_0.60"], f[0.62] / f[0.60]))
    add("npl_fp_0.64_of_0.62", "NPL 2023: 0 of 1 remains at 0.64", n["fp_0.64"],
        binom(n["fp_0.62"], f[0.64] / f[0.62]))
    add("npl_minority_of_fp_0.60", "NPL 2023: all 7 false positives at 0.60 on ethnic-minority passers",
        n["fp_0.60_minority"], binom(n["fp_0.60"], pred.minority_share))
    q = met_false_share(pred, prevalence)
    for k, period in enumerate(PERIODS):
        sel = ev.met_period == k
        if not sel.any():
            continue
        add(f"met_false_of_alerts {period}",
            f"Met records: false alerts among {int(ev.met_alerts[sel].sum())} alerts in "
            f"{int(sel.sum())} deployments ({period})",
            int(ev.met_false[sel].sum()), poisson_binomial_pmf(ev.met_alerts[sel], q[sel]))
    return rows


def headline_crowd_shares() -> np.ndarray:
    """The crowd of the Met's 0.64 deployments (2024): their wards' census mix, averaged."""
    recs = [r for r in met_records() if r.period == PERIODS[3]]
    return group_shares(0.5, np.mean([r.ethnicity_shares for r in recs], axis=0))


def derived_figures(base: ScoreParameters, x: np.ndarray, cov: np.ndarray, ev: Evidence,
                    rng: np.random.Generator, draws: int) -> dict[str, Any]:
    """Figures the fit implies but was not given, with 95% intervals over posterior draws.

    Includes the comparison the simulator exists for: the expected false alerts in 3 million
    faces at 0.64 with 16,000 entries (the Met's 2025 setting) next to the Met's 12, which the
    fit never saw.
    """
    lo = np.array([b[0] for b in BOUNDS])
    hi = np.array([b[1] for b in BOUNDS])
    samples = np.clip(rng.multivariate_normal(x, cov, size=draws), lo, hi)
    crowd = headline_crowd_shares()
    names = [g.name for g in default_groups()]
    faces, size, threshold = 3_000_000, 16_000, 0.64
    rows: dict[str, list[float]] = {k: [] for k in (
        "expected_false_alerts_3m", "predictive_false_alerts_3m", "tpir_0.64", "black_white_fpir_0.56",
        "black_white_fpir_0.58", "black_white_fpir_0.60", "black_white_fpir_0.64", "nist_differential",
        "female_male_fmr", "minority_share_fp_0.60")}
    shares: list[np.ndarray] = []
    for s in [x, *samples]:
        params = with_free(base, s)
        model = score_model(params, default_groups())
        table = reference_table(model, ev.watchlist_shares)
        fp = fpir_by_size(table, threshold, np.array([size]))[0] * crowd
        pred = predict(params, ev, table)
        rows["expected_false_alerts_3m"].append(faces * fp.sum())
        rows["predictive_false_alerts_3m"].append(float(rng.poisson(faces * fp.sum())))
        tp = table.true_alert_probabilities(float(to_latent(threshold)), 1.0, size / REFERENCE_SIZE)
        rows["tpir_0.64"].append(float(np.dot(crowd, tp)))
        for t in (0.56, 0.58, 0.60, 0.64):
            rows[f"black_white_fpir_{t:.2f}"].append(_black_white_ratio(pred, t))
        rows["nist_differential"].append(pred.nist_differential)
        rows["female_male_fmr"].append(pred.female_male_fmr)
        rows["minority_share_fp_0.60"].append(pred.minority_share)
        shares.append(fp / fp.sum())
    out: dict[str, Any] = {"draws": draws, "setting": (
        "3,000,000 passers at 0.64 with 16,000 entries; crowd = mean census mix of the wards of the "
        "Met's Jul-Dec 2024 deployments, half female; watchlist 15% female, London ethnic mix")}
    for k, v in rows.items():
        arr = np.asarray(v)
        out[k] = {"estimate": float(arr[0]), "interval_95": [float(np.quantile(arr[1:], 0.025)),
                                                           float(np.quantile(arr[1:], 0.975))]}
    share = np.asarray(shares)
    out["false_alert_share_by_group_0.64"] = {
        n: {"estimate": float(share[0, g]), "interval_95": [float(np.quantile(share[1:, g], 0.025)),
                                                            float(np.quantile(share[1:, g], 0.975))]}
        for g, n in enumerate(names)}
    met = shipped.published_figures()["met_claims_2025"]
    expected = np.asarray(rows["expected_false_alerts_3m"][1:])
    observed = int(met["false_alerts"])
    # posterior-predictive P(count <= observed): the Poisson cdf averaged over the posterior
    out["met_2025_comparison"] = {
        "label": "Met 2025: 12 false alerts in over 3 million faces (never a calibration input)",
        "observed": observed,
        "p_at_most_observed": float(np.mean(stats.poisson.cdf(observed, expected))),
        "p_at_least_observed": float(np.mean(stats.poisson.sf(observed - 1, expected)))}
    return out


def write_parameters(params: ScoreParameters, diagnostics: dict[str, Any], out: Path, command: str) -> None:
    """Write a parameter file experiments can name (``matcher.parameters = "PATH"``), atomically."""
    doc = {
        "about": {"written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": command,
                  "free": list(FREE),
                  "method": ("maximum a-posteriori (Nelder-Mead) on NPL 2023, the Met's 2023-2024 false "
                             "alerts among alerts, NIST IR 8280 and Howard et al. 2019 priors; see "
                             "sim/calibrate.py and docs/model.md")},
        "parameters": params.model_dump(mode="json"),
        "fit": diagnostics,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(tomli_w.dumps(doc))
    tmp.replace(out)
