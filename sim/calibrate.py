"""The joint Bayesian calibration, end to end: every account, the shipped posterior, its files.

``calibrate()`` runs the whole pipeline on the shipped records (``sim.records.fit_rows``) and
``write_posterior`` writes what forward runs and the documentation read: ``posterior.toml``
(priors with their sources, evidence and weights, PSIS-LOO, posterior medians in
``ScoreParameters`` form, summaries, diagnostics, the headline, per-period checks, false alerts
given the alerts, leave-one-period-out, the tail slope, the Pareto tail's shape, runtimes) and
``posterior.npz`` (float32
equal-weight draws of the shipped account, one array per named quantity, plus ``p_arrest``).
``lfrsim calibrate [--out DIR] [--reduced] [--workers K]`` is the command.

Stages (parallel over ``workers`` processes; the results do not depend on ``workers``):

1. *screen*: one nested-sampling run of every account (``sim.inference.Settings.screen``):
   log-evidence and starting draws;
2. *refine*: the accounts within 15 nats of the best screened evidence (at most five: every close
   account, so the weights compare bridge-sampling evidence throughout) get emcee chains started
   at their nested draws and their evidence by bridge sampling; the screened
   leader's chain is long (``MCMC_LONG`` steps, for R-hat <= 1.01), the others' short. In the same
   pool: leave-one-period-out refits of the leader (nested sampling), an NPL-only fit (what NPL
   alone says about the tail slope), optional sensitivity refits;
3. weights from the evidence; if the best is not the leader its chain is extended;
4. the shipped posterior: the best-supported account's long chain; the model average is computed
   beside it for comparison, never as a second default.

``p_arrest`` (arrests per engaged true alert) is not part of the score model: its posterior is the
conjugate ``Beta(1 + arrests, 1 + true alerts - arrests)`` of the records
(``sim.likelihood.arrest_posterior``), drawn once per shipped draw from its own keyed stream, so a
forward run can draw arrests with that uncertainty.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from . import records as rec
from .checks import _lopo_one, false_given_alerts, headline, period_checks
from .inference import (
    MCMC_BURN,
    MCMC_EXTEND,
    MCMC_LONG,
    MCMC_STEPS,
    Settings,
    _long_job,
    _mcmc_job,
    _parallel,
    _seed_for,
    _summ,
    extend_mcmc,
    fit,
    loo_table,
    model_average,
    model_weights,
)
from .likelihood import (
    ACCOUNTS,
    ENTRY_EFFECT_SD,
    FIELD_SHIFT_PRIOR_SD,
    GENUINE_SD,
    HEADLINE,
    LAMB_SHARE,
    LAMB_SHIFT,
    MINORITY_PATTERN,
    NPL_ONLY,
    PROBE_EFFECT_SD,
    PROBE_FEMALE_SHIFT,
    SAME_SEX_SHIFT,
    Data,
    Model,
    Prior,
    arrest_posterior,
    headline_crowd,
    logit,
    priors,
)

SEED = 20250101

def calibrate(seed: int = 20250101, reduced: bool = False, workers: int = 2,
              accounts: Sequence[str] = tuple(ACCOUNTS), lopo: bool = True,
              settings: Settings | None = None, sensitivity: bool = False,
              refine_within: float = 15.0, refine_max: int = 5) -> dict[str, Any]:
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
            "npl_exposure_42000": (dataclasses.replace(acc, name=f"{lead}|npl42k",
                                                       npl_exposure_median=42_000.0), data),
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
        "The model average over all accounts is reported beside it (headline 'model_average') "
        "for comparison."),
        "weights": {a: w for a, w in weights.items() if w >= 1e-3}}
    shipped_samples = dict(posts[best].samples)
    shipped_samples["p_arrest"] = arrest_draws(data, seed, n_draws)
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
                                                           "mcmc_extend": MCMC_EXTEND,
                                                           "mcmc_burn": MCMC_BURN},
            "stage": stage, "screened_logz": screened, "lead": lead,
            "shipped": shipped, "shipped_samples": shipped_samples,
            "shipped_score_parameters": median, "logz": logz, "logz_err": logz_err,
            "weights": weights, "best": best, "loo": loo_table(posts),
            "diagnostics": {a: p.diagnostics for a, p in posts.items()},
            "summaries": {a: {k: p.summary(k) for k in p.samples
                              if np.asarray(p.samples[k]).dtype.kind == "f"}
                          for a, p in posts.items()},
            "headline": heads, "period_checks": checks[best], "period_checks_all": checks,
            "false_given_alerts": conditional, "lopo": lopo_rows, "slope": slope, "sensitivity": sens,
            "npl_only": {"logz": npl_only.logz, "diagnostics": npl_only.diagnostics,
                         "summaries": {k: npl_only.summary(k) for k in ("npl_fpir_0.60_n10000",
                                                                        "fpir_ratio_0.62_0.60",
                                                                         "fpir_ratio_0.64_0.60",
                                                                         "impostor_sd")}},
            "arrest_beta": arrest_posterior(data),
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
        f = s.fpir(logit(np.array([0.60, 0.64])), HEADLINE["watchlist_size"],
                   model.data.watchlist) @ headline_crowd()
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
            "probe_ethnicity_shift": {e: med["minority_probe_shift"] * MINORITY_PATTERN[e]
                                      for e in rec.ETHNICITIES},
            "probe_effect_sd": PROBE_EFFECT_SD, "entry_effect_sd": ENTRY_EFFECT_SD, "lamb_share": LAMB_SHARE,
            "lamb_shift": LAMB_SHIFT, **_median_tail(samples), "genuine_location": med["genuine_location"],
            "genuine_sd": GENUINE_SD,
            "watchlisted_per_passer": float(np.median(samples["watchlisted_per_passer"])),
            "watchlisted_per_passer_note": ("per passer at a 15,000-entry list and 1,000 passers an hour; "
                                            "scales as (passers per hour / 1000)^footfall_elasticity"),
            "footfall_elasticity": float(np.median(samples["footfall_elasticity"]))
            if "footfall_elasticity" in samples else 0.0,
            "faces_per_passer": {r: float(np.median(samples[f"faces_per_passer[{r}]"])) for r in rec.REGIMES},
            "operator_pass_false": float(np.median(samples["operator_pass_false"]))
            if "operator_pass_false" in samples else 1.0}



def _median_tail(samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """The noise fields of the medians: a Pareto-tail account's knot and median shape."""
    if "tail_shape" not in samples:
        return {"tail": "gaussian"}
    return {"tail": "pareto", "tail_knot_sd": float(np.median(samples["tail_knot_sd"])),
            "tail_shape": float(np.median(samples["tail_shape"]))}


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
                  "seed": result["seed"],
                  "method": ("dynesty nested sampling for every account's evidence; emcee chains and "
                             "bridge-sampling "
                             "evidence for the close accounts; the shipped draws are the best account's long "
                             "emcee chain; see the calibrate.py docstring"),
                  "shipped": result["shipped"], "draws_file": npz.name,
                  "never_an_input": "Met 2025: 12 false alerts in 3,000,000 faces"},
        "priors": {p.name: {"prior": p.describe(), "source": p.source}
                   for p in priors(ACCOUNTS["c+d"]) + [Prior("field_shift", "normal", 0,
                                                             FIELD_SHIFT_PRIOR_SD)]
                   + [q for q in priors(ACCOUNTS["c2p"]) if q.name == "tail_shape"]},
        "evidence": {a: {"logz": result["logz"][a], "logz_err": result["logz_err"][a],
                         "weight": result["weights"][a],
                         "label": ACCOUNTS[a].label} for a in result["logz"]},
        "loo": result.get("loo", {}),
        "parameters": median_params,
        "summary": summaries,
        "diagnostics": {a: result["diagnostics"][a] for a in result["diagnostics"]},
        "headline": result["headline"],
        "period_checks": result.get("period_checks", []),
        "false_given_alerts": result.get("false_given_alerts", {}).get(result.get("best", ""), {}),
        "leave_one_period_out": result.get("lopo", []),
        "slope": result.get("slope", {}),
        "tail_shape": {a: v["tail_shape"] for a, v in result.get("summaries", {}).items()
                       if "tail_shape" in v},
        "npl_only": {k: v for k, v in result.get("npl_only", {}).items() if k != "diagnostics"},
        "screened_logz": result.get("screened_logz", {}),
        "stage": result.get("stage", {}),
        "sensitivity": result.get("sensitivity", {}),
        "arrests": {"p_arrest_beta": list(result.get("arrest_beta", ())),
                    "note": ("Beta(1 + arrests, 1 + true alerts - arrests) of the fitted records; "
                             "posterior.npz's p_arrest is one draw of it per shipped draw")},
        "runtime_seconds": result.get("runtime_seconds", {}),
    }
    text = tomli_w.dumps(_clean(doc))
    tmp2 = path.with_name(path.name + ".tmp")
    tmp2.write_text(text)
    tmp2.replace(path)
    return path, npz



def arrest_draws(data: Data, seed: int, n: int) -> np.ndarray:
    """``n`` draws of p_arrest from its conjugate posterior, from the stream keyed "p_arrest"."""
    rng = np.random.default_rng(_seed_for(seed, "p_arrest"))
    return rng.beta(*arrest_posterior(data), size=n)


def run(out: str | Path, seed: int = SEED, reduced: bool = False, workers: int = 2,
        command: str = "") -> tuple[Path, Path, float]:
    """Calibrate and write ``out/posterior.toml`` and ``out/posterior.npz``; returns the two paths
    and the wall time in seconds."""
    t0 = time.perf_counter()
    result = calibrate(seed, reduced, workers)
    toml_path, npz_path = write_posterior(result, Path(out) / "posterior.toml", command)
    return toml_path, npz_path, time.perf_counter() - t0

