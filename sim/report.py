"""Figures and the readable summary, drawn from what a results folder stores.

``write_report(folder, results)`` writes ``summary.md`` and ``figures/*.png`` (each figure drawn by
``sim.plot``, which a notebook can call too); ``lfrsim report DIR`` calls it on a finished folder,
so figures can be redrawn without re-running anything.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import plot
from .metrics import borough_exposure, census_groups, compare, disparity, disparity_by_cell, summary_value
from .results import Results, atomic_write_bytes, atomic_write_text


def _fmt(x: float) -> str:
    """Three significant figures, thousands separated, never in scientific notation above 1e-3."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1e-3:
        return f"{float(f'{x:.3g}'):g}"
    return f"{x:.3g}"


HEADLINE_METRICS = ("faces", "alerts", "true_alerts", "false_alerts", "expected_false_alerts", "arrests",
                    "wrongful_stops")
CELL_METRICS = ("faces", "alerts", "false_alerts", "tpir", "ppv", "arrests", "wrongful_stops", "lost_alerts")
DPI = 150
PNG_COMPRESS_LEVEL = 3    # zlib level: a third less time to encode than the default 6, files ~8% larger


def _figure(figsize: tuple[float, float]):
    """A figure laid out by constrained layout at the resolution it is saved at.

    A ``matplotlib.figure.Figure`` of its own (no pyplot, no global figure manager to close), at
    ``DPI`` from the start: laid out at another resolution, every text would be measured again
    when saved.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def _save(fig, path: Path, tight: bool = False) -> str:
    """Write a figure atomically as PNG (no timestamp in it, so redrawing gives the same bytes).

    The layout is computed once and frozen, then the figure is drawn once: saving a figure that
    still has its layout engine lays it out in a dry run and again in the real draw. ``tight``
    crops to what was drawn, for figures with artists outside what constrained layout places
    (a figure legend below the panels).
    """
    import io

    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine(None)     # "none" would leave a placeholder engine, and the dry run
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None,
                metadata={"Software": None}, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    atomic_write_bytes(path, buf.getvalue())
    return path.name


def _borough_panels(results: Results) -> list[tuple[int, str, pd.DataFrame]]:
    panels, seen = [], set()
    for i, cell in enumerate(results.cells):
        experiment = results.experiment.with_values(cell) if cell else results.experiment
        key = repr(experiment.programme.generator.sites) if experiment.programme.generator else "deployments"
        if key not in seen:
            seen.add(key)
            panels.append((i, key, borough_exposure(experiment)))
    return [p for p in panels if not p[2].empty][:4]


def draw_figures(folder: Path, results: Results) -> list[str]:
    """Draw the figures the results support into ``folder/figures``; return their file names."""
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    summary, experiment, cells = results.summary, results.experiment, results.cells
    params = plot.parameter_columns(summary)
    first = plot.setting_label(cells[0]) if cells else ""
    where = f" — {first}" if len(cells) > 1 else ""
    drawn: list[str] = []

    fig = _figure((9, 4.2))
    ax = fig.subplots()
    plot.false_alerts_by_group(ax, summary, 0, f"False alerts per face by passer group{where}")
    drawn.append(_save(fig, figures / "false_alerts_by_group.png"))

    fig = _figure((8, 4.2))
    ax = fig.subplots()
    plot.alert_funnel(ax, summary, 0, f"Alert funnel: alert → review → engagement → outcome{where}")
    drawn.append(_save(fig, figures / "alert_funnel.png"))

    if census_groups(summary):     # declared groups have no census residents to count
        fig = _figure((8, 4.2))
        ax = fig.subplots()
        plot.exposure_by_group(ax, summary, 0, f"Exposure per head by passer group{where}")
        drawn.append(_save(fig, figures / "exposure_per_head.png"))

    panels = _borough_panels(results)
    if panels:
        height = 0.3 * max(len(p[2]) for p in panels) + 1.8
        fig = _figure((6.5 * len(panels), height))
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, (cell, key, table) in zip(axes[0], panels, strict=True):
            label = plot.setting_label(cells[cell]) if len(panels) > 1 else f"sites: {key.strip(chr(39))}"
            plot.borough_heatmap(fig, ax, table, label)
        fig.suptitle("Faces scanned per resident by borough and ethnicity\n(expected, from the programme's "
                     "design; 2021 census residents)")
        drawn.append(_save(fig, figures / "exposure_by_borough.png"))

    threshold_sweep = "matcher.threshold" in params and summary["matcher.threshold"].nunique() > 2
    if threshold_sweep:
        cmp_ = experiment.comparison
        reported = (cmp_.false_alerts, cmp_.faces, cmp_.threshold) if cmp_ is not None else None
        fig = _figure((8.5, 5))
        ax = fig.subplots()
        plot.false_alerts_vs_threshold(ax, summary, reported)
        drawn.append(_save(fig, figures / "false_alerts_vs_threshold.png"))
        fig = _figure((8.5, 6))
        ax = fig.subplots()
        plot.det_by_group(ax, summary)
        drawn.append(_save(fig, figures / "det_by_group.png"))
        fig = _figure((9, 4.5))
        ax = fig.subplots()
        plot.disparity_vs_threshold(ax, summary, cells)
        drawn.append(_save(fig, figures / "disparity_vs_threshold.png"))

    numeric = [p for p in params if pd.api.types.is_numeric_dtype(summary[p])]
    if len(cells) > 1 and (len(numeric) < len(params) or experiment.sweep.mode == "zip"):
        fig = _figure((12, 8))
        plot.cells_compared(fig, summary, cells)
        drawn.append(_save(fig, figures / "cells_compared.png"))
        if census_groups(summary):
            fig = _figure((12, 4.5))
            ax = fig.subplots()
            plot.exposure_by_cell(ax, summary, cells)
            drawn.append(_save(fig, figures / "exposure_by_cell.png"))
        return drawn
    for x in numeric:
        if x == "matcher.threshold" and threshold_sweep:
            continue
        fig = _figure((14, 4.6))
        plot.against_setting(fig, summary, x)
        drawn.append(_save(fig, figures / f"sweep_{x.replace('.', '_')}.png", tight=True))
    reviewed = [p for p in numeric if p.startswith("review.")]
    if reviewed:
        fig = _figure((11, 4.6))
        plot.against_setting(fig, summary, reviewed[0], ("officer_utilisation", "wrongful_stops"))
        drawn.append(_save(fig, figures / "officer_utilisation.png", tight=True))
    return drawn


def _p(p: float) -> str:
    """A p-value or probability as a reader wants it: three decimals, "< 0.001" below that."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _interval(summary: pd.DataFrame, cell: int, group: str, metric: str, scale: float = 1.0) -> str:
    est, lo, hi = summary_value(summary, cell, group, metric)
    return f"{_fmt(est * scale)} ({_fmt(lo * scale)}–{_fmt(hi * scale)})"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _comparison_lines(results: Results) -> list[str]:
    exp = results.experiment
    cmp_ = exp.comparison
    assert cmp_ is not None
    lines = ["## Against the reported figure", "",
             f"Reported: {cmp_.label} ({_plural(cmp_.false_alerts, 'false alert')} in {cmp_.faces:,} faces). "
             "It is compared with the model, never fitted to.", ""]
    post = results.posterior
    if post is not None:
        lines += [f"**Posterior predictive** (cell {post['cell']}, threshold {post['threshold']}; "
                  f"{post['draws']:,} draws of the calibrated model, this experiment's crowd mix and "
                  "watchlist; "
                  "recorded faces turned into passers by each draw's counting factor):", "",
                  "| | value |", "|---|---|",
                  f"| expected false alerts in {cmp_.faces:,} faces, mean (95% credible interval) | "
                  f"{_fmt(post['expected'])} "
                  f"({_fmt(post['interval_95'][0])}–{_fmt(post['interval_95'][1])}) |",
                  f"| 95% predictive interval of the count | "
                  f"{_fmt(post['predictive_interval_95'][0])}–{_fmt(post['predictive_interval_95'][1])} |",
                  f"| P(≤ {cmp_.false_alerts}) | {_p(post['p_at_most_reported'])} |",
                  f"| P(≥ {cmp_.false_alerts}) | {_p(post['p_at_least_reported'])} |", ""]
    lines += ["Simulated, per cell (pooled over replicates; footnote: the p-value holds every "
              "parameter at its cell's draws and asks only about Poisson noise):", "",
              "| cell | setting | false alerts per reported faces (95% PI) | exact expectation | "
              "p (parameters fixed) | implied threshold |", "|---|---|---|---|---|---|"]
    for cell, params in enumerate(results.cells):
        c = compare(results.metrics, cell, cmp_)
        setting = ", ".join(f"{k}={v}" for k, v in params.items()) or "base"
        scale = cmp_.faces
        rate = summary_value(results.summary, cell, "all", "false_alert_rate")
        lines.append(f"| {cell} | {setting} | {_fmt(c['simulated_per_reported_faces'])} "
                     f"({_fmt(rate[1] * scale)}–{_fmt(rate[2] * scale)}) | "
                     f"{_fmt(c['expected_per_reported_faces'])} | {_p(c['p_value_two_sided'])} | "
                     f"{_fmt(c['implied_threshold'])} |")
        if cell >= 40:
            lines.append("| … | | | | | |")
            break
    lines += ["", "The implied threshold is where the model would expect the reported count in this "
              "crowd.", ""]
    return lines


def summary_markdown(results: Results, figures: list[str]) -> str:
    exp = results.experiment
    summary = results.summary
    lines = [f"# {exp.experiment.name}", ""]
    if exp.experiment.description:
        lines += [exp.experiment.description.strip(), ""]
    reps = int(summary["replicates"].max()) if len(summary) else 0
    lines += [f"{_plural(reps, 'replicate')}, each with its own draw of the calibrated posterior where a "
              f"setting is calibrated. Root seed: {exp.experiment.seed}. "
              f"{_plural(len(results.cells), 'cell')}. "
              f"Watchlist: {exp.watchlist.size:,} entries. Threshold: {exp.matcher.threshold}.", "",
              "Intervals are 95% posterior-predictive intervals: the 2.5th–97.5th percentiles over "
              "replicates (parameters and Monte Carlo together). Rates are per million recorded faces.", ""]
    if exp.comparison is not None:
        lines += _comparison_lines(results)
    census = census_groups(summary)
    if len(results.cells) > 1:
        lines += ["## Per cell (everyone)", "",
                  "| cell | setting | faces | alerts | false alerts | TPIR | PPV | arrests | wrongful stops "
                  f"| lost | {'Black/White false alerts per face' if census else 'highest/lowest FPIR'} |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        spread = ({} if census else
                  {int(r.cell): float(r.estimate) for r in disparity_by_cell(summary).itertuples()})
        for cell, params in enumerate(results.cells[:60]):
            setting = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())
            vals = [summary_value(summary, cell, "all", m)[0] for m in CELL_METRICS]
            last = (_interval(summary, cell, 'all', 'black_white_false_alert_ratio') if census
                    else _fmt(spread.get(cell, math.nan)))
            lines.append(f"| {cell} | {setting} | " + " | ".join(_fmt(v) for v in vals) + f" | {last} |")
        lines += ["", "Black/White: the exact expected false alerts per recorded face, Black over White "
                  "passers (both sexes), with its 95% posterior-predictive interval." if census else
                  "Highest/lowest: the exact expected FPIR of the declared group with the highest over "
                  "that of the group with the lowest (pooled over replicates).", ""]
    lines += ["## Headline (cell 0)", "",
              "| group | faces | alerts | true | false (95% PI) | expected false | "
              "arrests | wrongful stops | false alerts per million faces (95% PI) |",
              "|---|---|---|---|---|---|---|---|---|"]
    groups = ["all", *[g for g in summary["group"].unique() if g != "all"]]
    for g in groups:
        vals = [summary_value(summary, 0, g, m)[0] for m in HEADLINE_METRICS]
        cells_ = [_fmt(v) for v in vals]
        cells_[3] = _interval(summary, 0, g, "false_alerts")
        lines.append(f"| {g} | " + " | ".join(cells_)
                     + f" | {_interval(summary, 0, g, 'false_alert_rate', 1e6)} |")
    lines += ["", "Counts are means per programme over replicates; summary.csv gives every interval.", ""]
    lines += ["## Who bears the false alerts (cell 0)", ""]
    lines += (_black_white_lines(summary) if census else _declared_group_lines(summary))
    disp = disparity(summary)
    if not disp.empty:
        d0 = disp.iloc[0]
        lines += [f"Highest over lowest group false-alert rate (cell 0, simulated alerts): "
                  f"{_fmt(d0['ratio'])} ({d0['highest_group']} over {d0['lowest_group']}).", ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}](figures/{f})" for f in figures] + [""]
    return "\n".join(lines)


def _black_white_lines(summary: pd.DataFrame) -> list[str]:
    return [f"Black passers' share of the expected false alerts: "
            f"{_interval(summary, 0, 'all', 'black_share_of_false_alerts')}. "
            f"Black over White expected false alerts per recorded face: "
            f"{_interval(summary, 0, 'all', 'black_white_false_alert_ratio')}.", ""]


def _declared_group_lines(summary: pd.DataFrame) -> list[str]:
    """Who bears the false alerts among an experiment's own groups: each group's share of the
    exact expected false alerts, and the highest over the lowest group's expected FPIR."""
    groups = [g for g in summary["group"].unique() if g != "all"]
    expected = {g: summary_value(summary, 0, g, "expected_false_alerts")[0] for g in groups}
    total = math.fsum(v for v in expected.values() if math.isfinite(v))
    shares = ", ".join(f"{g} {_fmt(100 * v / total)}%" for g, v in expected.items()) if total > 0 else "–"
    lines = [f"Each group's share of the expected false alerts: {shares}."]
    spread = disparity_by_cell(summary)
    first = spread[spread["cell"] == 0]
    if not first.empty and math.isfinite(float(first["estimate"].iloc[0])):
        row = first.iloc[0]
        lines[0] += (f" Highest over lowest group expected FPIR: {_fmt(float(row['estimate']))} "
                     f"({row['highest']} over {row['lowest']}).")
    lines += ["", "The Black/White ratio is not defined here: the experiment declares its own groups "
              f"({', '.join(groups)}), not the census's sex x ethnicity groups.", ""]
    return lines


def write_report(folder: str | Path, results: Results) -> None:
    """(Re)draw figures and summary.md in a results folder from what it stores."""
    folder = Path(folder)
    figures = draw_figures(folder, results)
    atomic_write_text(folder / "summary.md", summary_markdown(results, figures))
