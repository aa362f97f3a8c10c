"""Replay the Met's recorded deployments and set the model's predictions against the records.

Each deployment of 2023-2024 with a published threshold, face count and duration is replayed as
it was recorded: its watchlist size, its threshold, its ward's census mix and its "faces seen"
taken as the number of passers searched. The fitted score model (``sim/data/score_parameters.toml``)
and the watchlisted share it implies (``fit.watchlisted_per_passer``, profiled from false versus
true alerts) give, for every deployment, expected true and false alerts in closed form.

Posterior-predictive checks: parameter sets are drawn from the fit's Laplace posterior (the
watchlisted share re-profiled for each), counts are drawn around each set's expectations, and a
recorded count is compared with that predictive distribution: ``p = 2 min(P(rep >= obs),
P(rep <= obs))``, capped at 1. A small p says the record is not what the model predicts; the
report shows where, by how much, and does not adjust the model to hide it.

``met_records_experiment`` writes the same deployments as a runnable experiment
(``experiments/met_records_2020_2024.toml``) for ``lfrsim run``; ``lfrsim replay`` writes both
that file and the validation page (``docs/validation.md``).
"""

from __future__ import annotations

import io
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from . import data as shipped
from .calibrate import evidence, profile_prevalence, with_free
from .calibrate import predict as predict_evidence
from .config import Review, ScoreParameters
from .groups import ETHNICITIES
from .records import PERIODS, MetRecord, met_records

METRICS = ("alerts", "true_alerts", "false_alerts", "arrests")


def replayable(records: tuple[MetRecord, ...] | None = None) -> tuple[MetRecord, ...]:
    """Records with a threshold, a face count, a duration and published alert figures."""
    records = met_records() if records is None else records
    return tuple(r for r in records if r.period and np.isfinite(r.faces) and np.isfinite(r.hours)
                 and r.hours > 0 and np.isfinite(r.watchlist_size) and r.published_alerts)


@dataclass(frozen=True)
class Expectation:
    """Expected counts per deployment (arrays over the replayed records)."""

    true_alerts: np.ndarray
    false_alerts: np.ndarray
    prevalence: float

    @property
    def alerts(self) -> np.ndarray:
        return self.true_alerts + self.false_alerts


def expected_counts(params: ScoreParameters, records: tuple[MetRecord, ...],
                    prevalence: float | None = None) -> Expectation:
    """Closed-form expected true and false alerts of each record, faces taken as passers.

    ``prevalence`` (watchlisted passers per passer at a 15,000-entry list) is re-profiled from
    the records' false versus true alerts when not given, exactly as the fit does.
    """
    ev = evidence(records)
    pred = predict_evidence(params, ev)
    if prevalence is None:
        prevalence, _ = profile_prevalence(pred, ev)
    faces = np.array([r.faces for r in records])
    return Expectation(true_alerts=faces * prevalence * pred.met_true_per_prevalence,
                       false_alerts=faces * pred.met_false_rate, prevalence=prevalence)


def _pvalue(replicates: np.ndarray, observed: float) -> float:
    return float(min(1.0, 2 * min(np.mean(replicates >= observed), np.mean(replicates <= observed))))


def posterior_predictive(parameter_file: Path | None = None, draws: int = 200,
                         rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Predicted vs recorded alerts, true, false alerts and arrests, per deployment and period."""
    rng = rng or np.random.default_rng(20240725)
    doc = _read(parameter_file)
    base = ScoreParameters(**doc["parameters"])
    post = doc["fit"]["posterior"]
    mean, cov = np.array(post["mean"]), np.array(post["covariance"])
    recs = replayable()
    review = Review()
    p_arrest = review.p_confirm_true * review.p_arrest
    # every draw re-profiles the watchlisted share on the records with alerts, as the fit does
    fit_recs = tuple(r for r in met_records() if r.period and r.alerts > 0)
    point = expected_counts(base, recs, doc["fit"]["watchlisted_per_passer"])
    samples = rng.multivariate_normal(mean, cov, size=draws)
    reps = {m: np.zeros((draws, len(recs))) for m in METRICS}
    for d, x in enumerate(samples):
        params = with_free(base, x)
        prevalence, _ = profile_prevalence(predict_evidence(params, evidence(fit_recs)), evidence(fit_recs))
        e = expected_counts(params, recs, prevalence)
        true = rng.poisson(e.true_alerts)
        false = rng.poisson(e.false_alerts)
        reps["true_alerts"][d] = true
        reps["false_alerts"][d] = false
        reps["alerts"][d] = true + false
        reps["arrests"][d] = rng.binomial(true, p_arrest)
    observed = {"alerts": np.array([r.alerts for r in recs]),
                "true_alerts": np.array([r.true_alerts for r in recs]),
                "false_alerts": np.array([r.false_alerts for r in recs]),
                "arrests": np.array([r.arrests for r in recs])}
    expected = {"alerts": point.alerts, "true_alerts": point.true_alerts, "false_alerts": point.false_alerts,
                "arrests": point.true_alerts * p_arrest}
    periods = np.array([r.period for r in recs])
    by_period = []
    for period in PERIODS:
        sel = periods == period
        row: dict[str, Any] = {"period": period, "deployments": int(sel.sum()),
                               "faces": float(sum(r.faces for r, s in zip(recs, sel, strict=True) if s))}
        for m in METRICS:
            rep = reps[m][:, sel].sum(axis=1)
            row[m] = {"observed": int(observed[m][sel].sum()), "expected": float(expected[m][sel].sum()),
                      "interval_95": [float(np.quantile(rep, 0.025)), float(np.quantile(rep, 0.975))],
                      "p_value": _pvalue(rep, observed[m][sel].sum())}
        by_period.append(row)
    per_deployment = []
    for i, r in enumerate(recs):
        row = {"date": r.date, "site": r.site, "period": r.period, "threshold": r.threshold,
               "watchlist_size": r.watchlist_size, "faces": r.faces}
        for m in METRICS:
            row[m] = {"observed": int(observed[m][i]), "expected": float(expected[m][i]),
                      "p_value": _pvalue(reps[m][:, i], observed[m][i])}
        per_deployment.append(row)
    summary = {m: {"deployments_p_below_0.05": int(sum(row[m]["p_value"] < 0.05 for row in per_deployment)),
                   "deployments": len(per_deployment)} for m in METRICS}
    return {"draws": draws, "watchlisted_per_passer": point.prevalence, "p_arrest_per_true_alert": p_arrest,
            "by_period": by_period, "per_deployment": per_deployment, "summary": summary}


def _read(parameter_file: Path | None) -> dict[str, Any]:
    path = parameter_file or shipped.path("score_parameters.toml")
    with open(path, "rb") as fh:
        return tomllib.load(fh)


# -- the experiment file ----------------------------------------------------------------------

def met_records_experiment(parameter_file: Path | None = None) -> dict[str, Any]:
    """The replayable records as an experiment: one ``[[programme.deployments]]`` per record.

    The schema has one watchlist size and one threshold per experiment, so the file sweeps the
    three thresholds the Met used and takes the records' mean watchlist size; the per-record
    comparison (each deployment at its own size and threshold) is ``posterior_predictive``.
    """
    recs = replayable()
    doc = _read(parameter_file)
    deployments = []
    for r in recs:
        shares = {e: round(float(v), 6) for e, v in zip(ETHNICITIES, _normalised(r), strict=True)}
        entry: dict[str, Any] = {"site": r.site, "date": r.date, "duration_hours": round(r.hours, 4),
                                 "footfall_per_hour": round(r.faces / r.hours, 3), "ethnicity_shares": shares}
        if r.borough and shipped.has_borough(r.borough):
            entry["borough"] = r.borough
        deployments.append(entry)
    size = int(round(np.mean([r.watchlist_size for r in recs])))
    # the reported figure to set against: the records at 0.60 (2023 to June 2024), the only
    # threshold with enough faces and false alerts to compare; each cell replays every record
    at_060 = [r for r in recs if abs(r.threshold - 0.60) < 1e-9]
    faces = int(sum(r.faces for r in at_060))
    false = int(sum(r.false_alerts for r in at_060))
    return {
        "experiment": {"name": "met_records_2020_2024", "seed": 20240101, "replications": 20, "description": (
            "The Met's recorded LFR deployments of 2023-2024 (threshold, faces and duration published), "
            "replayed: faces seen as passers, each ward's census mix, the fitted score model and the "
            "watchlisted share it implies. Generated by sim.replay.met_records_experiment.")},
        "programme": {"deployments": deployments},
        "crowd": {"female_share": 0.5,
                  "watchlisted_per_passer": round(float(doc["fit"]["watchlisted_per_passer"]), 8),
                  "prevalence_reference_size": 15000},
        "watchlist": {"size": size, "female_share": 0.15, "ethnicity_shares": "london"},
        "matcher": {"threshold": 0.60, "parameters": "calibrated"},
        "sweep": {"parameters": {"matcher.threshold": [0.60, 0.62, 0.64]}},
        "comparison": {"label": "Met records 2023 to June 2024 at 0.60: false alerts in recorded faces",
                       "faces": faces, "false_alerts": false, "threshold": 0.60},
    }


def _normalised(r: MetRecord) -> np.ndarray:
    shares = np.clip(np.array(r.ethnicity_shares), 0.0, None)
    return shares / shares.sum()


def write_met_records_experiment(out: Path) -> None:
    header = ("# Generated by sim.replay.write_met_records_experiment from\n"
              "# sim/data/met_lfr_deployments_2020_2024.csv\n"
              "# (lfrsim replay --experiment-file FILE). Per-deployment predictions at each record's own\n"
              "# watchlist size and threshold: lfrsim replay (docs/validation.md).\n\n")
    out.write_text(header + tomli_w.dumps(met_records_experiment()))


# -- the report ---------------------------------------------------------------------------------

def markdown_report(result: dict[str, Any]) -> str:
    """The posterior-predictive comparison as a Markdown page."""
    lines = ["# Validation against the Met's records (generated)", "",
             "Generated by `lfrsim replay --page docs/validation.md` from the shipped parameters "
             f"({result['draws']} posterior draws). Faces seen are taken as passers; the watchlisted share "
             f"per passer (15,000-entry list) is {result['watchlisted_per_passer']:.5f}, fitted from false "
             "versus true alerts, never from faces. Arrests: true alerts x "
             f"{result['p_arrest_per_true_alert']:.3f} (review defaults, themselves set from these records: "
             "not an independent check).", "",
             "## Per threshold period", "",
             "| period | deployments | faces | metric | observed | expected | 95% predictive | p |",
             "|---|---:|---:|---|---:|---:|---|---:|"]
    for row in result["by_period"]:
        for m in METRICS:
            v = row[m]
            lo, hi = v["interval_95"]
            lines.append(f"| {row['period']} | {row['deployments']} | {row['faces']:,.0f} | {m} "
                         f"| {v['observed']} | {v['expected']:.1f} | {lo:.0f}-{hi:.0f} "
                         f"| {v['p_value']:.3f} |")
    lines += ["", "## Deployments whose records the model does not predict (p < 0.05)", ""]
    for m in METRICS:
        s = result["summary"][m]
        lines.append(f"- {m}: {s['deployments_p_below_0.05']} of {s['deployments']} deployments")
    lines += ["", "## Per deployment", "",
              "| date | site | threshold | N | faces | alerts obs/exp (p) | false obs/exp (p) |",
              "|---|---|---:|---:|---:|---|---|"]
    for row in result["per_deployment"]:
        a, f = row["alerts"], row["false_alerts"]
        lines.append(f"| {row['date']} | {row['site']} | {row['threshold']:.2f} "
                     f"| {row['watchlist_size']:,.0f} | {row['faces']:,.0f} "
                     f"| {a['observed']}/{a['expected']:.1f} ({a['p_value']:.2f}) "
                     f"| {f['observed']}/{f['expected']:.2f} ({f['p_value']:.2f}) |")
    return "\n".join(lines) + "\n"


def predicted_vs_observed_figure(result: dict[str, Any], out: Path) -> None:
    """Per deployment: recorded against expected alerts and false alerts, by threshold period."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["per_deployment"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, metric, label in ((axes[0], "alerts", "alerts"), (axes[1], "false_alerts", "false alerts")):
        for period in PERIODS:
            part = [r for r in rows if r["period"] == period]
            if not part:
                continue
            exp_ = np.array([r[metric]["expected"] for r in part])
            obs = np.array([r[metric]["observed"] for r in part])
            # zero counts sit on the axis floor of a log plot, marked as such
            ax.scatter(exp_, np.maximum(obs, 0.3), s=14, alpha=0.7, label=period)
        top = max(max(r[metric]["expected"] for r in rows), max(r[metric]["observed"] for r in rows))
        lim = [0.1, top * 2]
        ax.plot(lim, lim, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"expected {label} per deployment (model, faces as passers)")
        ax.set_ylabel(f"recorded {label} (0 drawn at 0.3)")
        ax.set_title(f"{label.capitalize()}: the Met's records against the model")
    axes[0].legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())


def write_validation_page(page: Path, draws: int = 200) -> None:
    """Write the posterior-predictive comparison to ``page``, its figure to ``figures/`` beside it."""
    result = posterior_predictive(draws=draws)
    page = Path(page)
    predicted_vs_observed_figure(result, page.parent / "figures" / "predicted_vs_observed.png")
    text = markdown_report(result)
    marker = "\n## Per threshold period"
    figure = "\n![Recorded against expected, per deployment](figures/predicted_vs_observed.png)\n"
    page.write_text(text.replace(marker, figure + marker, 1) if marker in text else text + figure)
