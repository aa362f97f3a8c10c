"""Figures and the readable summary, drawn from stored metrics alone.

``write_report(folder, results)`` writes ``summary.md`` and ``figures/*.png``; ``lfrsim report DIR``
calls it on a finished folder, so figures can be redrawn without re-running anything.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import (
    black_white_ratio,
    borough_exposure,
    compare,
    disparity,
    disparity_by_cell,
    expected_false_alert_rate,
    expected_fpir,
    expected_ratio,
    exposure_per_head,
    parameter_columns,
    poisson_interval,
    summary_value,
)
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


def _png(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=160, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


PARAM_LABELS = {"matcher.threshold": "threshold (vendor score)", "watchlist.size": "watchlist entries",
                "review.officers": "intervention officers", "review.operators": "operators"}


def _series(summary: pd.DataFrame, metric: str, group: str = "all") -> pd.DataFrame:
    return summary[(summary["metric"] == metric) & (summary["group"] == group)]


def _lines(summary: pd.DataFrame, x: str, metric: str, group: str = "all"):
    """(label, rows sorted by x) for each combination of the other swept settings."""
    rows = _series(summary, metric, group)
    others = [p for p in parameter_columns(summary) if p != x]
    if not others:
        yield "", rows.sort_values(x)
        return
    for key, part in rows.groupby(others, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{PARAM_LABELS.get(o, o)} {k}" for o, k in zip(others, key, strict=True))
        yield label, part.sort_values(x)


def _plot_metric(ax, summary, x, metric, group="all", scale=1.0, band=True, log=False, **style):
    for label, rows in _lines(summary, x, metric, group):
        xs = rows[x].astype(float).to_numpy()
        est = rows["estimate"].to_numpy(float) * scale
        if log:  # a zero count has no place on a log axis: its interval's upper end still shows
            est = np.where(est > 0, est, np.nan)
        ax.plot(xs, est, marker="o", ms=3, label=label or None, **style)
        if band:
            low = rows["ci_low"].to_numpy(float) * scale
            ax.fill_between(xs, np.where(low > 0, low, np.nan) if log else low, rows["ci_high"] * scale,
                            alpha=0.2)


def _figure_threshold(plt, folder, results) -> list[str]:
    """False alerts vs threshold with the reported point; DET per group; disparity."""
    summary, exp = results.summary, results.experiment
    x = "matcher.threshold"
    drawn = []
    cmp_ = exp.comparison
    fig, ax = plt.subplots(figsize=(8, 5))
    per = cmp_.faces if cmp_ else 1e6
    _plot_metric(ax, summary, x, "false_alert_rate", scale=per, log=True)
    exp_rate = expected_false_alert_rate(summary)
    for label, rows in _lines(exp_rate, x, "expected_false_alert_rate"):
        ax.plot(rows[x].astype(float), rows["estimate"] * per, ls="--", color="grey",
                label=("exact expectation" + (f" ({label})" if label else "")))
    if cmp_ is not None:
        lo, hi = poisson_interval(cmp_.false_alerts)
        ax.errorbar([cmp_.threshold if cmp_.threshold is not None else exp.matcher.threshold],
                    [cmp_.false_alerts], yerr=[[cmp_.false_alerts - lo],
                    [hi - cmp_.false_alerts]], fmt="s", color="crimson", capsize=4,
                    label=f"reported: {cmp_.false_alerts} (Poisson 95%)")
    ax.set_yscale("log")
    ax.set_xlabel(PARAM_LABELS[x])
    ax.set_ylabel(f"false alerts per {per:,.0f} faces")
    ax.set_title("False alerts against threshold (simulated, 95% Clopper–Pearson)")
    ax.legend(fontsize=8)
    _png(fig, folder / "false_alerts_vs_threshold.png")
    plt.close(fig)
    drawn.append("false_alerts_vs_threshold.png")

    # DET: FNIR against FPIR per group, probit axes, from the exact expectations
    from scipy import stats

    fig, ax = plt.subplots(figsize=(7, 6))
    groups = [g for g in summary["group"].unique() if g != "all"]
    fpir = expected_fpir(summary)
    tpir = expected_ratio(summary, "expected_true_alerts", "watchlisted_passers", "expected_tpir")
    for g in groups:
        f = fpir[fpir["group"] == g].sort_values(x)
        t = tpir[tpir["group"] == g].sort_values(x)
        if f.empty or t.empty:
            continue
        fp = np.clip(f["estimate"].to_numpy(float), 1e-12, 1 - 1e-12)
        fn = np.clip(1 - t["estimate"].to_numpy(float), 1e-6, 1 - 1e-6)
        n = min(len(fp), len(fn))
        ax.plot(stats.norm.ppf(fp[:n]), stats.norm.ppf(fn[:n]), label=g)
    ticks = [1e-9, 1e-7, 1e-5, 1e-3, 1e-1]
    ax.set_xticks(stats.norm.ppf(ticks), [f"{t:g}" for t in ticks])
    yt = [0.01, 0.05, 0.1, 0.2, 0.5]
    ax.set_yticks(stats.norm.ppf(yt), [f"{t:g}" for t in yt])
    ax.set_xlabel("FPIR (exact expectation, probit scale)")
    ax.set_ylabel("FNIR = 1 − TPIR (probit scale)")
    ax.set_title("DET curves per passer group across thresholds")
    ax.legend(fontsize=7, ncol=2)
    _png(fig, folder / "det_by_group.png")
    plt.close(fig)
    drawn.append("det_by_group.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ratios = disparity_by_cell(summary)
    frame = ratios.drop(columns=["highest", "lowest"]).assign(group="all", metric="ratio", ci_low=np.nan,
                                                              ci_high=np.nan, replicates=0)
    for label, rows in _lines(frame, x, "ratio"):
        ax.plot(rows[x].astype(float), rows["estimate"], marker="o", ms=3, label=label or None)
    bw = black_white_ratio(summary)
    cells_x = [(float(c[x]), bw[i]) for i, c in enumerate(results.cells) if x in c]
    if cells_x and len(parameter_columns(summary)) == 1:
        xs, ys = zip(*sorted(cells_x), strict=True)
        ax.plot(xs, ys, marker="s", ms=3, color="crimson", label="Black / White passers")
        ax.plot([], [], color="C0", marker="o", ms=3, label="highest / lowest of the ten groups")
        ax.legend(fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel(PARAM_LABELS[x])
    ax.set_ylabel("ratio of FPIR between groups")
    ax.set_title("Disparity between passer groups (exact expected FPIR)")
    _png(fig, folder / "disparity_vs_threshold.png")
    plt.close(fig)
    drawn.append("disparity_vs_threshold.png")
    return drawn


CELL_METRICS = ("faces", "alerts", "false_alerts", "tpir", "ppv", "arrests", "wrongful_stops", "lost_alerts")


def _legend(ax) -> None:
    """A legend only when some line is labelled (a single-line plot needs none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _cell_label(cell: dict) -> str:
    return "\n".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in cell.items()) or "base"


def _figure_cells(plt, folder: Path, results: Results) -> list[str]:
    """Cells side by side (for zipped or categorical sweeps): key counts, and exposure per head."""
    summary = results.summary
    cells = range(len(results.cells))
    labels = [_cell_label(c) for c in results.cells]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, metric, label in ((axes[0, 0], "faces", "faces per programme"),
                              (axes[0, 1], "false_alerts", "false alerts per programme"),
                              (axes[1, 0], "wrongful_stops", "wrongful stops per programme"),
                              (axes[1, 1], "arrests", "arrests per programme")):
        vals = np.array([summary_value(summary, c, "all", metric) for c in cells])
        ax.bar(range(len(labels)), vals[:, 0], color="#4472c4")
        ax.errorbar(range(len(labels)), vals[:, 0], yerr=[np.clip(vals[:, 0] - vals[:, 1], 0, None),
                    np.clip(vals[:, 2] - vals[:, 0], 0, None)], fmt="none", color="black", capsize=3)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylabel(label)
    fig.suptitle("Cells compared (mean per programme; bars: 2.5–97.5% of replicates)")
    fig.tight_layout()
    _png(fig, folder / "cells_compared.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / max(len(labels), 1)
    for i, c in enumerate(cells):
        exposure = exposure_per_head(summary, c)
        xs = np.arange(len(exposure)) + i * width
        ax.bar(xs, exposure["scans_per_resident"], width=width, label=labels[i].replace("\n", ", "))
        groups = exposure["group"]
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=45)
    ax.set_ylabel("faces scanned per London resident")
    ax.set_title("Exposure per head by group and cell (2021 census residents)")
    ax.legend(fontsize=7)
    _png(fig, folder / "exposure_by_cell.png")
    plt.close(fig)
    return ["cells_compared.png", "exposure_by_cell.png"]


def _figure_boroughs(plt, folder: Path, results: Results) -> list[str]:
    panels = []
    seen = set()
    for i, cell in enumerate(results.cells):
        exp_ = results.experiment.with_values(cell) if cell else results.experiment
        key = repr(exp_.programme.generator.sites) if exp_.programme.generator else "deployments"
        if key not in seen:
            seen.add(key)
            panels.append((i, key, borough_exposure(exp_)))
    panels = [p for p in panels if not p[2].empty][:4]
    if not panels:
        return []
    height = 0.32 * max(len(p[2]) for p in panels) + 2
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), height), squeeze=False)
    for ax, (cell, key, table) in zip(axes[0], panels, strict=True):
        im = ax.imshow(table.to_numpy(float), aspect="auto", cmap="viridis")
        ax.set_yticks(range(len(table)), table.index, fontsize=7)
        ax.set_xticks(range(len(table.columns)), table.columns)
        ax.set_title(f"cell {cell}: sites {key.strip(chr(39))}", fontsize=9)
        fig.colorbar(im, ax=ax, label="faces scanned per resident per programme")
    fig.suptitle("Exposure per head by borough and ethnicity (expected, from the programme's design)")
    _png(fig, folder / "exposure_by_borough.png")
    plt.close(fig)
    return ["exposure_by_borough.png"]


def draw_figures(folder: Path, results: Results) -> list[str]:
    """Draw the figures the results support; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    summary = results.summary
    params = parameter_columns(summary)
    drawn: list[str] = []
    groups = [g for g in summary["group"].unique() if g != "all"]

    # false alerts per million faces by group, first cell
    rates = [summary_value(summary, 0, g, "false_alert_rate") for g in groups]
    fig, ax = plt.subplots(figsize=(8, 4))
    est = np.array([r[0] for r in rates]) * 1e6
    lo = np.array([r[1] for r in rates]) * 1e6
    hi = np.array([r[2] for r in rates]) * 1e6
    expected = expected_false_alert_rate(summary)
    exp_g = [float(expected[(expected["cell"] == 0) & (expected["group"] == g)]["estimate"].iloc[0]) * 1e6
             for g in groups]
    ax.bar(groups, est, color="#4472c4", label="simulated")
    ax.errorbar(groups, est, yerr=[np.clip(est - lo, 0, None), np.clip(hi - est, 0, None)], fmt="none",
                color="black", capsize=3)
    ax.scatter(groups, exp_g, color="crimson", marker="_", s=200, zorder=3, label="exact expectation")
    ax.set_ylabel("false alerts per million faces")
    ax.set_title("False alerts per face by passer group (cell 0, 95% Clopper–Pearson)")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8)
    _png(fig, figures / "false_alerts_by_group.png")
    plt.close(fig)
    drawn.append("false_alerts_by_group.png")

    # the alert funnel, first cell
    fig, ax = plt.subplots(figsize=(8, 4))
    vals = [summary_value(summary, 0, "all", m)[0] for m in FUNNEL]
    ax.barh(list(FUNNEL)[::-1], vals[::-1], color="#70ad47")
    for i, v in enumerate(vals[::-1]):
        ax.text(v, i, f" {_fmt(v)}", va="center", fontsize=8)
    ax.set_xlabel("per programme (mean over replicates)")
    ax.set_title("Alert funnel: alerts → review → engagement → outcome (cell 0)")
    _png(fig, figures / "alert_funnel.png")
    plt.close(fig)
    drawn.append("alert_funnel.png")

    # exposure: scans per London resident per programme, by group
    exposure = exposure_per_head(summary, 0)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(exposure["group"], exposure["scans_per_resident"], color="#ed7d31")
    ax.set_ylabel("faces scanned per London resident")
    ax.set_title("Exposure per head by group (cell 0; 2021 census residents)")
    ax.tick_params(axis="x", rotation=45)
    _png(fig, figures / "exposure_per_head.png")
    plt.close(fig)
    drawn.append("exposure_per_head.png")
    drawn += _figure_boroughs(plt, figures, results)

    if "matcher.threshold" in params and summary["matcher.threshold"].nunique() > 2:
        drawn += _figure_threshold(plt, figures, results)
    numeric = [p for p in params if pd.api.types.is_numeric_dtype(summary[p])]
    if len(results.cells) > 1 and (len(numeric) < len(params) or results.experiment.sweep.mode == "zip"):
        drawn += _figure_cells(plt, figures, results)
        return drawn
    for x in numeric:
        if x == "matcher.threshold" and summary[x].nunique() > 2:
            continue
        name = x.replace(".", "_")
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        for ax, metric, label in ((axes[0], "false_alerts", "false alerts per programme"),
                                  (axes[1], "ppv", "PPV (precision of alerts)"),
                                  (axes[2], "lost_alerts", "lost alerts per programme")):
            _plot_metric(ax, summary, x, metric)
            ax.set_xlabel(PARAM_LABELS.get(x, x))
            ax.set_ylabel(label)
            if x == "watchlist.size":
                ax.set_xscale("log")
        _legend(axes[0])
        fig.suptitle(f"Against {PARAM_LABELS.get(x, x)} (95% intervals)")
        _png(fig, figures / f"sweep_{name}.png")
        plt.close(fig)
        drawn.append(f"sweep_{name}.png")
    if any(p.startswith("review.") for p in numeric):
        x = next(p for p in numeric if p.startswith("review."))
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        _plot_metric(axes[0], summary, x, "officer_utilisation")
        _plot_metric(axes[1], summary, x, "wrongful_stops")
        axes[0].set_ylabel("officer utilisation")
        axes[1].set_ylabel("wrongful stops per programme")
        for ax in axes:
            ax.set_xlabel(PARAM_LABELS.get(x, x))
        _legend(axes[0])
        _png(fig, figures / "officer_utilisation.png")
        plt.close(fig)
        drawn.append("officer_utilisation.png")
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
                  "p (Poisson, parameters fixed) | implied threshold |", "|---|---|---|---|---|---|"]
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
                  f"{exp.comparison.faces:,} faces). The p-value asks how surprising the reported count "
                  "is if the model's exact expected rate held, with the score model's parameters fixed at "
                  "their fitted values; the implied threshold is where the model would expect the "
                  "reported count.", ""]
        post = results.posterior
        if post is not None:
            lines += [f"**With the calibration's uncertainty** ({post['draws']:,} draws from the score "
                      f"model's posterior, cell {post['cell']} at threshold {post['threshold']}): expected "
                      f"{_fmt(post['expected'])} false alerts per {exp.comparison.faces:,} faces (95% "
                      f"{_fmt(post['interval_95'][0])}–{_fmt(post['interval_95'][1])}); posterior-"
                      f"predictive P(≤ {exp.comparison.false_alerts}) = {post['p_at_most_reported']:.3f}, "
                      f"P(≥ {exp.comparison.false_alerts}) = {post['p_at_least_reported']:.3f}. This is "
                      "the comparison to read: the simulated interval above carries only Monte Carlo "
                      "error.", ""]
    if len(results.cells) > 1:
        lines += ["## Per cell (everyone)", "",
                  "| cell | setting | faces | alerts | false alerts | TPIR | PPV | arrests | wrongful stops "
                  "| lost | Black/White FPIR |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        bw = black_white_ratio(summary)
        for cell, params in enumerate(results.cells[:60]):
            setting = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())
            vals = [summary_value(summary, cell, "all", m)[0] for m in CELL_METRICS]
            lines.append(f"| {cell} | {setting} | " + " | ".join(_fmt(v) for v in vals)
                         + f" | {_fmt(bw.get(cell, math.nan))} |")
        lines += ["", "Black/White FPIR: the exact expected false-alert rate per non-watchlisted passer, "
                  "Black over White passers (both sexes).", ""]
    lines += ["## Headline (cell 0)", "", "| group | faces | alerts | true | false | expected false | "
              "arrests | wrongful stops | false alerts per million faces (95% CI) |",
              "|---|---|---|---|---|---|---|---|---|"]
    groups = ["all", *[g for g in summary["group"].unique() if g != "all"]]
    for g in groups:
        vals = [summary_value(summary, 0, g, m)[0] for m in ("faces", "alerts", "true_alerts", "false_alerts",
                                                       "expected_false_alerts", "arrests", "wrongful_stops")]
        rate = summary_value(summary, 0, g, "false_alert_rate")
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
    """(Re)draw figures and summary.md in a results folder from what it stores."""
    folder = Path(folder)
    figures = draw_figures(folder, results)
    atomic_write_text(folder / "summary.md", summary_markdown(results, figures))
