"""Sampling the calibration's posterior: nested sampling, MCMC chains, evidence, diagnostics.

How well does each account of the records explain the evidence, and what do its parameters look
like? Nested sampling (dynesty, random-walk proposals inside multi-ellipsoid bounds) integrates
the likelihood of ``sim.likelihood`` over its priors: the evidence ``Z`` of an account, and
weighted draws from its posterior. Nested runs with ~100 live points are noisy by a few nats and
their draws are few and clumped, so the accounts that matter also get an affine-invariant
ensemble chain (emcee 3: differential-evolution moves), started at nested draws, whose walkers
reach R-hat <= 1.01; their evidence is then re-estimated from the chain by bridge sampling
(Meng & Wong 1996; Gronau et al. 2017)::

    l(y) = log q(y) - log g(y)   (q = prior x likelihood x Jacobian, g = a multivariate t proposal)
    r   <- mean_g[e^l2 / (s1 e^l2 + s2 r)] / mean_p[1 / (s1 e^l1 + s2 r)],      Z = r

in unconstrained coordinates (logit for uniform priors, log for half-normals). Diagnostics come
from arviz (rank-normalised split R-hat, bulk and tail ESS, walkers or runs as chains) and emcee
(integrated autocorrelation time); Kish's ESS ``(sum w)^2 / sum w^2`` sizes the nested draws.

Accounts are compared by their posterior probabilities under equal prior odds,
``w_a = Z_a / sum_b Z_b``, and by PSIS-LOO (arviz) over NPL's five observations and the
deployments. ``model_average`` mixes the accounts' draws in proportion to ``w_a``.

Randomness is keyed: every run draws from ``SeedSequence([seed, crc32(key)...])`` with a key
naming the account, the data's size and the stage, so results do not depend on the number of
worker processes.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import dynesty
import emcee
import numpy as np
from dynesty.utils import resample_equal
from scipy import special, stats

from . import records as rec
from .likelihood import ACCOUNTS, Account, Data, Model, derived


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
    runs = [_run_dynesty(model, settings, _seed_for(seed, acc.name, len(data.rows),
                                                    r)) | {"id": r} for r in ids]
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

    acc, data = model.account, model.data
    rng = np.random.default_rng(_seed_for(seed, acc.name, len(data.rows), "resample",
                                          *[r["id"] for r in runs]))
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
        "draws": int(len(pooled)), "deployments": data.n,
        "max_logl": float(max(r["logl"].max() for r in runs)),
    }
    diag.update(_arviz_diagnostics(model.names, chains))
    with np.errstate(all="ignore"):
        pw = np.array([model.pointwise(x) for x in pooled]) if keep_pointwise else None
    return Posterior(account=acc.name, names=model.names, samples=samples, logz=logz, logz_err=logz_err,
                     diagnostics=diag, pointwise=pw, raw_runs=runs, model=model, settings=settings)


def _arviz_diagnostics(names: list[str], chains: list[np.ndarray]) -> dict[str, Any]:
    """R-hat (rank-normalised, across runs) and bulk ESS by arviz, per sampler coordinate."""

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
    return _mcmc_posterior(post, chain[burn:], acc, seconds, steps, burn, state, seed, draws,
                           keep_pointwise, bridge)


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


def _run_emcee(model: Model, p0: np.ndarray, steps: int, seed: int) -> tuple[np.ndarray, float, float,
                                                                             np.ndarray]:

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
                    state: np.ndarray, seed: int, draws: int | None, keep_pointwise: bool,
                    bridge: bool) -> Posterior:

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
        "posterior_sampler": ("emcee.EnsembleSampler (DEMove 0.8, DESnookerMove 0.2), "
                              "started at nested-sampling draws"),
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
                    diagnostics=diag, pointwise=pw, raw_runs=post.raw_runs, model=model,
                    settings=post.settings)
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
            "proposal": (f"multivariate t (df {df:g}) fitted to the first half of the chain, "
                         "unconstrained coordinates"),
            "posterior_draws": int(len(l1)), "proposal_draws": int(n_prop), "posterior_ess": float(ess)}


def _ess_1d(x: np.ndarray) -> float:
    """Bulk ESS (arviz) of a scalar over chains x (chains, draws)."""

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


def model_average(posts: dict[str, Posterior], weights: dict[str, float], seed: int,
                  draws: int) -> dict[str, np.ndarray]:
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

