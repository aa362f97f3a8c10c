"""Checks of the calibration against the records: per period, held out, and against known truths.

A posterior is only as good as what it predicts. Three checks, all from the same replicate
machinery:

* **Posterior-predictive checks per period** (``period_checks``): for every posterior draw, each
  deployment gets its counting regime (drawn from its probabilities), a gamma deployment effect on
  the true and on the false rate (``phi_T``, ``phi_F``), Poisson counts, and arrests binomial in
  its true alerts with ``p_arrest ~ Beta(1 + arrests, 1 + true alerts - arrests)``; a period's
  observed totals are set against the predictive with ``p = 2 min(P(rep >= obs), P(rep <= obs))``.
* **False alerts given the alerts** (``false_given_alerts``): under Poisson counts, false | alerts
  ~ Binomial(alerts, E[false] / E[alerts]) per deployment, so the face counts cancel.
* **Leave-one-period-out** (``leave_one_period_out``): refit without a period, predict it; the
  held-out period's effect comes from its hierarchical prior.

``simulate`` draws a data set from the model at known parameters and ``recovery`` refits such
sets (is the truth inside the 95% interval?). ``headline`` sets the posterior against the Met's
2025 figure (12 false alerts in 3,000,000 counted faces at 0.64, 16,000 entries), which the fit
never sees: the predictive count sums gamma-Poisson counts over the programme's deployments,
``NB(mu, n / phi_F)`` per draw.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from scipy import stats

from . import records as rec
from .inference import Posterior, Settings, _parallel, _seed_for, fit
from .likelihood import (
    ACCOUNTS,
    FOOTFALL_PRIOR,
    HEADLINE,
    MINORITY,
    NPL_EXPOSURE_PRIOR,
    NPL_LIST_SIZE,
    T_NPL,
    Account,
    Data,
    Model,
    arrest_posterior,
    derived,
)

METRICS = ("alerts", "true_alerts", "false_alerts", "arrests")


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


def period_checks(post: Posterior, data: Data, seed: int,
                  periods: Sequence[str] = rec.PERIODS) -> list[dict[str, Any]]:
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
    return {"alerts": int(alerts.sum()), "observed": o, "mean": float(rep.mean()),
            "interval_95": [float(lo), float(hi)],
            "within": bool(lo <= o <= hi), "p_value": _pvalue(rep, o)}


def leave_one_period_out(account: str, records: Sequence[rec.Record] | Data | None = None,
                         seed: int = 20250101,
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

    The records' counting regimes are latent, and the fit sees them only through ``p_low_count``,
    which ``sim.records`` computes from faces per hour alone. A simulation must produce them the
    same way, or the fit is handed regime weights that do not match its data:

    1. every row gets a latent regime: 2023 rows their own; a 2024 row low-count with the records'
       prior weight of its window (``RegimeMixture.weight_low_before`` / ``_after``);
    2. counted faces = k_regime * passers per hour * hours, with log passers per hour
       ``m + a_ward + e`` (ward mean ``m`` from its prior, ward and day effects at the truth);
    3. ``p_low_count`` is recomputed from the simulated faces per hour by the records' own EM
       (``fit_regime_mixture`` over the 2024 rows), and the faces-per-hour rows are re-selected by
       ``records.footfall_rows``: their label is the most probable regime, as for the records;
    4. alert rows get NB true and false alerts at their *latent* regime's passers; NPL's five
       counts are drawn too (the nested ones as binomial thinning).

    Keeping the records' ``p_low_count`` while redrawing the faces (as an earlier version did)
    hands the fit weights computed from other faces; the footfall elasticity, which reads passers
    per hour through the regime, was then covered by its 95% interval in 4 of 8 sets.
    """
    acc = ACCOUNTS[account] if isinstance(account, str) else account
    model = Model(acc, data)
    s = model.score(x)
    k = model.factors(x)
    union: dict[int, rec.Record] = {r.index: r for r in data.ff_rows} | {r.index: r for r in data.rows}
    order = sorted(union)
    wards = sorted({r.ward_code for r in union.values()})
    mixture = rec.regime_mixture()
    m = rng.normal(*FOOTFALL_PRIOR)
    a = dict(zip(wards, rng.normal(0.0, model.get(x, "site_sd"), len(wards)), strict=True))
    latent: dict[int, int] = {}
    faces: dict[int, float] = {}
    for i in order:
        r = union[i]
        if r.date < "2024-01-01":
            regime = 0
        else:
            w_low = mixture.weight_low_after if r.date >= rec.SWITCH_DATE else mixture.weight_low_before
            regime = 1 if rng.random() < w_low else 2
        log_pph = m + a[r.ward_code] + rng.normal(0.0, model.get(x, "day_sd"))
        latent[i] = regime
        faces[i] = float(max(1.0, round(k[regime] * math.exp(log_pph) * union[i].hours)))
    in_2024 = [i for i in order if union[i].date >= "2024-01-01"]
    log_fph = np.log([faces[i] / union[i].hours for i in in_2024])
    after = np.array([union[i].date >= rec.SWITCH_DATE for i in in_2024])
    p_low = dict(zip(in_2024, rec.fit_regime_mixture(log_fph, after).p_low(log_fph, after), strict=True))
    new = {i: dataclasses.replace(union[i], faces=faces[i], p_low_count=float(p_low.get(i, 0.0)))
           for i in order}
    alert_rows = [new[r.index] for r in data.rows]
    sim = Data.from_records(alert_rows, rec.footfall_rows(tuple(new[i] for i in order)), data.npl)
    # alerts at the drawn regimes (expected counts per regime, the drawn one picked)
    mt3, mf3 = model.expected(x, sim)
    drawn = np.array([latent[r.index] for r in data.rows], dtype=np.int64)
    rows = np.arange(sim.n)
    mt, mf = mt3[rows, drawn], mf3[rows, drawn]
    phi_t, phi_f = model.get(x, "phi_true"), model.get(x, "phi_false")
    if phi_t > 0:
        mt = mt * rng.gamma(1.0 / phi_t, phi_t, sim.n)
    if phi_f > 0:
        mf = mf * rng.gamma(1.0 / phi_f, phi_f, sim.n)
    yt, yf = rng.poisson(mt), rng.poisson(mf)
    out_rows = [dataclasses.replace(r, true_alerts=int(t), false_alerts=int(f), alerts=int(t + f),
                           arrests=int(min(r.arrests, t)))
                for r, t, f in zip(alert_rows, yt, yf, strict=True)]
    fp = s.fpir(T_NPL, NPL_LIST_SIZE, data.watchlist) @ data.npl_crowd
    fp60 = s.fpir(T_NPL[1:2], NPL_LIST_SIZE, data.watchlist)
    minority = float(fp60[0, MINORITY] @ data.npl_crowd[MINORITY]) / fp[1]
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


def recovery(truths: Sequence[np.ndarray], account: str = "c+d", seed: int = 7,
             settings: Settings | None = None,
             workers: int = 2) -> dict[str, Any]:
    """Refit data simulated at each truth; report whether each target's truth is inside the 95%
    credible interval (equal-tailed), per truth and as a coverage rate."""
    data = Data.from_records(rec.fit_rows())
    settings = settings or dataclasses.replace(Settings(), runs=1, draws=1000)
    sims = [simulate(account, x, data, np.random.default_rng(_seed_for(seed, "sim", i))) for i,
            x in enumerate(truths)]
    posts = _parallel([(fit, (account, d, seed + i, False, settings, False, [0])) for i,
                       d in enumerate(sims)], workers)
    model = Model(ACCOUNTS[account], data)
    rows = []
    for x, p in zip(truths, posts, strict=True):
        true = derived(model, x) | {n: float(v) for n, v in zip(model.names, x, strict=True)}
        row = {}
        for t in RECOVERY_TARGETS:
            if t not in p.samples:
                continue
            lo, hi = np.quantile(p.samples[t], [0.025, 0.975])
            row[t] = {"truth": float(true[t]), "interval_95": [float(lo), float(hi)],
                      "inside": bool(lo <= true[t] <= hi)}
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
    lam = np.where(phi > 0, rng.gamma(deployments / np.maximum(phi, 1e-12), np.maximum(phi,
                                                                                       1e-12) / deployments),
                   1.0)
    count = rng.poisson(mu * lam)
    q = np.quantile(mu, [0.025, 0.5, 0.975])
    return {"setting": (f"{HEADLINE['faces']:,} counted faces at {HEADLINE['threshold']}, "
                        f"{HEADLINE['watchlist_size']:,} entries, "
                        "crowd = mean ward mix of the 0.64 deployments "
                        "(half female), faces -> passers by the 2024 high-count factor"),
            "expected_mean": float(mu.mean()), "expected_median": float(q[1]),
            "expected_interval_95": [float(q[0]), float(q[2])],
            "predictive_interval_95": [float(np.quantile(count, 0.025)), float(np.quantile(count, 0.975))],
            "p_at_most_reported": float(np.mean(count <= reported)),
            "p_at_most_reported_poisson": float(np.mean(stats.poisson.cdf(reported, mu))),
            "reported": reported, "programme_deployments": float(deployments)}

