"""Figures and the readable summary, drawn from stored metrics alone.

``write_report(folder, results)`` writes ``summary.md`` and ``figures/*.png``; ``lfrsim report DIR``
calls it on a finished folder, so figures can be redrawn without re-running anything.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import compare, disparity
from .results import Results, atomic_write_bytes, atomic_write_text

FUNNEL = ("alerts", "operator_rejected", "lost_alerts", "engagements", "arrests", "other_disposals",
          "no_action", "wrongful_stops", "wrongful_arrests")


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.3g}"


def _value(summary: pd.DataFrame, cell: int, group: str, metric: str) -> tuple[float, float, float]:
    row = summary[(summary["cell"] == cell) & (summary["group"] == group) & (summary["metric"] == metric)]
    if row.empty:
        return math.nan, math.nan, math.nan
    r = row.iloc[0]
    return float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"])


def _png(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=160, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def draw_figures(folder: Path, results: Results) -> list[str]:
    """Draw the figures the results support; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    summary = results.summary
    drawn: list[str] = []
    groups = [g for g in summary["group"].unique() if g != "all"]

    # false alerts per million faces by group, first cell
    rates = [_value(summary, 0, g, "false_alert_rate") for g in groups]
    fig, ax = plt.subplots(figsize=(8, 4))
    est = np.array([r[0] for r in rates]) * 1e6
    lo = np.array([r[1] for r in rates]) * 1e6
    hi = np.array([r[2] for r in rates]) * 1e6
    ax.bar(groups, est, color="#4472c4")
    ax.errorbar(groups, est, yerr=[np.clip(est - lo, 0, None), np.clip(hi - est, 0, None)], fmt="none",
                color="black", capsize=3)
    ax.set_ylabel("false alerts per million faces")
    ax.set_title("False alerts per face by passer group (95% Clopper–Pearson)")
    ax.tick_params(axis="x", rotation=45)
    _png(fig, figures / "false_alerts_by_group.png")
    plt.close(fig)
    drawn.append("false_alerts_by_group.png")

    # the alert funnel, first cell
    fig, ax = plt.subplots(figsize=(8, 4))
    vals = [_value(summary, 0, "all", m)[0] for m in FUNNEL]
    ax.barh(list(FUNNEL)[::-1], vals[::-1], color="#70ad47")
    ax.set_xlabel("per programme (mean over replicates)")
    ax.set_title("Alert funnel: alerts → review → engagement → outcome")
    _png(fig, figures / "alert_funnel.png")
    plt.close(fig)
    drawn.append("alert_funnel.png")

    # anything swept: false alerts and TPIR against the first swept setting
    params = [c for c in summary.columns if c not in
              {"cell", "group", "metric", "estimate", "ci_low", "ci_high", "replicates"}]
    if params and len(results.cells) > 1:
        x_name = params[0]
        part = summary[(summary["group"] == "all")]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, metric, label in ((axes[0], "false_alerts", "false alerts per programme"),
                                  (axes[1], "tpir", "TPIR")):
            rows = part[part["metric"] == metric].sort_values(x_name)
            ax.plot(rows[x_name], rows["estimate"], marker="o", ms=3)
            ax.fill_between(rows[x_name].astype(float), rows["ci_low"], rows["ci_high"], alpha=0.25)
            ax.set_xlabel(x_name)
            ax.set_ylabel(label)
            if metric == "false_alerts" and (rows["estimate"] > 0).all():
                ax.set_yscale("log")
        fig.suptitle(f"Sweep over {x_name} (95% intervals)")
        _png(fig, figures / "sweep.png")
        plt.close(fig)
        drawn.append("sweep.png")
    return drawn


def summary_markdown(results: Results, figures: list[str]) -> str:
    exp = results.experiment
    summary = results.summary
    lines = [f"# {exp.experiment.name}", ""]
    if exp.experiment.description:
        lines += [exp.experiment.description.strip(), ""]
    reps = int(summary["replicates"].max()) if len(summary) else 0
    lines += [f"Replicates: {reps}. Root seed: {exp.experiment.seed}. Cells: {len(results.cells)}. "
              f"Watchlist: {exp.watchlist.size:,} entries. Threshold: {exp.matcher.threshold}.", ""]
    if exp.comparison is not None:
        lines += ["## Against the reported figure", ""]
        lines += ["| cell | setting | simulated per reported faces (95% CI) | exact expectation | "
                  "p (two-sided Poisson) | implied threshold |", "|---|---|---|---|---|---|"]
        for cell, params in enumerate(results.cells):
            c = compare(results.metrics, cell, exp.comparison)
            setting = ", ".join(f"{k}={v}" for k, v in params.items()) or "base"
            lines.append(f"| {cell} | {setting} | {_fmt(c['simulated_per_reported_faces'])} "
                         f"({_fmt(c['simulated_ci_low'])}–{_fmt(c['simulated_ci_high'])}) | "
                         f"{_fmt(c['expected_per_reported_faces'])} | {c['p_value_two_sided']:.3g} | "
                         f"{_fmt(c['implied_threshold'])} |")
            if cell >= 40:
                lines.append("| … | | | | | |")
                break
        lines += ["", f"Reported: {exp.comparison.label} ({exp.comparison.false_alerts} false alerts in "
                  f"{exp.comparison.faces:,} faces). The p-value asks how surprising the reported count is if "
                  "the model's exact expected rate held; the implied threshold is where the model would "
                  "expect the reported count.", ""]
    lines += ["## Headline (cell 0)", "", "| group | faces | alerts | true | false | expected false | "
              "arrests | wrongful stops | false alerts per million faces (95% CI) |",
              "|---|---|---|---|---|---|---|---|---|"]
    groups = ["all", *[g for g in summary["group"].unique() if g != "all"]]
    for g in groups:
        vals = [_value(summary, 0, g, m)[0] for m in ("faces", "alerts", "true_alerts", "false_alerts",
                                                       "expected_false_alerts", "arrests", "wrongful_stops")]
        rate = _value(summary, 0, g, "false_alert_rate")
        lines.append(f"| {g} | " + " | ".join(_fmt(v) for v in vals)
                     + f" | {_fmt(rate[0] * 1e6)} ({_fmt(rate[1] * 1e6)}–{_fmt(rate[2] * 1e6)}) |")
    lines += ["", "Counts are means per programme over replicates; summary.csv gives their 2.5–97.5% "
              "spread across replicates. Rates pool all replicates with exact Clopper–Pearson intervals.", ""]
    disp = disparity(summary)
    if not disp.empty:
        d0 = disp.iloc[0]
        lines += ["## Disparity", "", f"Highest over lowest group false-alert rate (cell 0): "
                  f"{_fmt(d0['ratio'])} ({d0['highest_group']} over {d0['lowest_group']}).", ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}](figures/{f})" for f in figures] + [""]
    return "\n".join(lines)


def write_report(folder: str | Path, results: Results) -> None:
    """(Re)draw figures and summary.md in a results folder from its metrics."""
    folder = Path(folder)
    figures = draw_figures(folder, results)
    atomic_write_text(folder / "summary.md", summary_markdown(results, figures))
