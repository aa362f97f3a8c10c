"""Fit score-model parameters to published operating points, by maximum likelihood.

The evidence (``sim/data/published_figures.toml``) is NPL's 2023 test of NEC NeoFace V4 as the
Met uses it. Each figure becomes a likelihood term:

* TPIR 0.89 at threshold 0.60: binomial, 3,560 identifications in about 4,000 mated passes
  (400 volunteers passing about ten times each).
* FPIR 1 in 6,000 with 10,000 entries and 1 in 60,000 with 1,000, at 0.60: Poisson counts in
  NPL's crowd of 130,000 passers (the published rates times that crowd: 21.7 and 2.2 false
  alerts), the expectation taken over a London-census crowd searched against a London-census
  watchlist.
* 7, 1 and 0 false positives at 0.60, 0.62 and 0.64: the alerts at a higher threshold are a
  subset of those at a lower one, so 1 of the 7 surviving to 0.62 and 0 of 1 to 0.64 are
  binomial draws whose probability is the model's FPIR ratio between the thresholds. This fixes
  the slope of the impostor tail independently of the crowd's size.

Free parameters: the impostor location and spread and the genuine location. The demographic
structure (same-sex and same-ethnicity shifts after Howard et al. 2019, probe-group shifts
within NIST IR 8280's range) is held at the documented priors in ``ScoreParameters``; the fit
re-centres the scale around it. The Met's 2025 headline (12 false alerts in 3 million faces) is
never used here: it is what the calibrated model is tested against.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from scipy import optimize, stats

from . import data as shipped
from .config import ScoreParameters
from .crowd import default_groups, watchlist_group_shares
from .scores import EntryEffects, score_model, to_latent
from .search import SearchTable, build_search_table
from .watchlist import BIN_WIDTH, Watchlist

FREE = ("impostor_location", "impostor_sd", "genuine_location")


def expected_watchlist(size: int, group_shares: np.ndarray, effects: EntryEffects,
                       bin_width: float = BIN_WIDTH) -> Watchlist:
    """The average watchlist: expected (fractional) entry counts per group and effect bin."""
    lo, hi = effects.support()
    first = int(np.floor(lo / bin_width))
    last = int(np.ceil(hi / bin_width))
    centres = np.arange(first, last + 1) * bin_width
    edges = np.concatenate([[-np.inf], centres[:-1] + bin_width / 2, [np.inf]])
    bin_p = np.clip(np.diff(effects.cdf(edges)), 0.0, None)
    counts = size * np.outer(group_shares, bin_p / bin_p.sum())
    return Watchlist(counts, first, bin_width)


@dataclass(frozen=True)
class Target:
    """One published figure and how the model predicts it."""

    name: str
    observed: float
    trials: float | None      # binomial trials, or None for a Poisson count
    source: str


def npl_targets() -> list[Target]:
    npl = shipped.published_figures()["npl_2023"]
    crowd = float(npl["crowd_passers_min"])
    mated = float(npl["volunteers"]) * 10
    return [
        Target("tpir_0.60", round(npl["tpir_at_0_60"] * mated), mated, "NPL 2023: TPIR 0.89 at 0.60"),
        Target("fp_0.60_n10000", npl["fpir_at_0_60_watchlist_10000"] * crowd, None,
               "NPL 2023: FPIR 1/6,000 at 0.60, 10,000 entries, in a 130,000 crowd"),
        Target("fp_0.60_n1000", npl["fpir_at_0_60_watchlist_1000"] * crowd, None,
               "NPL 2023: FPIR 1/60,000 at 0.60, 1,000 entries, in a 130,000 crowd"),
        Target("fp_0.62_of_0.60", npl["false_positives_at_0_62"], npl["false_positives_at_0_60"],
               "NPL 2023: 1 of the 7 false positives at 0.60 remains at 0.62"),
        Target("fp_0.64_of_0.62", npl["false_positives_at_0_64"], npl["false_positives_at_0_62"],
               "NPL 2023: 0 of 1 remains at 0.64"),
    ]


def _crowd_shares() -> np.ndarray:
    return watchlist_group_shares(0.5, "london", default_groups())


def crowd_fpir(table: SearchTable, threshold: float, shares: np.ndarray) -> float:
    t = float(to_latent(threshold))
    return float(sum(w * table.impostor_sf(g, t) for g, w in enumerate(shares)))


def crowd_tpir(table: SearchTable, threshold: float, shares: np.ndarray) -> float:
    t = float(to_latent(threshold))
    return float(sum(w * table.mated_alert_probabilities(g, t)[0] for g, w in enumerate(shares)))


def predictions(params: ScoreParameters) -> dict[str, tuple[float, float | None]]:
    """Model predictions for every target: (expected count or probability, trials)."""
    groups = default_groups()
    model = score_model(params, groups)
    shares = _crowd_shares()
    floor = float(to_latent(0.5))
    tables = {n: build_search_table(model, expected_watchlist(n, shares, model.entry_effects), floor)
              for n in (1000, 10000)}
    fp = {t: crowd_fpir(tables[10000], t, shares) for t in (0.60, 0.62, 0.64)}
    npl = shipped.published_figures()["npl_2023"]
    crowd = float(npl["crowd_passers_min"])
    mated = float(npl["volunteers"]) * 10
    return {
        "tpir_0.60": (crowd_tpir(tables[10000], 0.60, shares), mated),
        "fp_0.60_n10000": (fp[0.60] * crowd, None),
        "fp_0.60_n1000": (crowd_fpir(tables[1000], 0.60, shares) * crowd, None),
        "fp_0.62_of_0.60": (fp[0.62] / fp[0.60], npl["false_positives_at_0_60"]),
        "fp_0.64_of_0.62": (fp[0.64] / fp[0.62], npl["false_positives_at_0_62"]),
    }


def log_likelihood(params: ScoreParameters, targets: list[Target]) -> float:
    pred = predictions(params)
    total = 0.0
    for t in targets:
        value, trials = pred[t.name]
        if trials is None:
            total += float(stats.poisson.logpmf(round(t.observed), max(value, 1e-300)))
        else:
            p = min(max(value, 1e-300), 1 - 1e-15)
            total += float(stats.binom.logpmf(round(t.observed), round(trials), p))
    return total


def _with(base: ScoreParameters, x: np.ndarray) -> ScoreParameters:
    return base.model_copy(update={"impostor_location": float(x[0]), "impostor_sd": float(np.exp(x[1])),
                                   "genuine_location": float(x[2])})


def fit(base: ScoreParameters | None = None) -> tuple[ScoreParameters, dict[str, Any]]:
    """Maximum-likelihood fit of the free parameters to NPL 2023; returns parameters and diagnostics."""
    base = base or ScoreParameters()
    targets = npl_targets()
    x0 = np.array([base.impostor_location, np.log(base.impostor_sd), base.genuine_location])

    def nll(x):
        return -log_likelihood(_with(base, x), targets)

    # a coarse start keeps the optimiser in the basin where the tail, not the bulk, is fitted
    result = optimize.minimize(nll, x0, method="Nelder-Mead",
                               options={"xatol": 1e-5, "fatol": 1e-7, "maxiter": 4000})
    fitted = _with(base, result.x)
    pred = predictions(fitted)
    diagnostics = {"log_likelihood": float(-result.fun), "converged": bool(result.success),
                   "iterations": int(result.nit), "targets": []}
    for t in targets:
        value, trials = pred[t.name]
        if trials is None:
            lo, hi = stats.poisson.interval(0.95, value)
            expected = value
        else:
            lo, hi = stats.binom.interval(0.95, round(trials), value)
            expected = value * round(trials)
        diagnostics["targets"].append({
            "name": t.name, "source": t.source, "observed": float(round(t.observed)),
            "predicted": float(expected), "interval_95": [float(lo), float(hi)],
            "within": bool(lo <= round(t.observed) <= hi)})
    return fitted, diagnostics


def write_parameters(params: ScoreParameters, diagnostics: dict[str, Any], out: Path, command: str) -> None:
    """Write a parameter file experiments can name (``matcher.parameters = "PATH"``), atomically."""
    doc = {
        "about": {"written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": command,
                  "free": list(FREE), "method": "maximum likelihood (Nelder-Mead), see sim/calibrate.py"},
        "parameters": params.model_dump(mode="json"),
        "fit": diagnostics,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(tomli_w.dumps(doc))
    tmp.replace(out)


def main_calibrate(out: Path) -> dict[str, Any]:
    params, diagnostics = fit()
    write_parameters(params, diagnostics, out, "lfrsim calibrate --out " + str(out))
    return diagnostics


if __name__ == "__main__":  # pragma: no cover
    print(main_calibrate(Path(sys.argv[1])))
