"""Figures and the readable summary, drawn from what a results folder stores.

``write_report(folder, results)`` writes ``summary.md`` and ``figures/*.png`` (each figure drawn by
``sim.plot``, which a notebook can call too); ``lfrsim report DIR`` calls it on a finished folder,
so figures can be redrawn without re-running anything.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from . import plot
from .errors import plural
from .metrics import (
    SummaryIndex,
    borough_exposure,
    census_groups,
    compare,
    disparity,
    disparity_by_cell,
    summary_value,
)
from .results import Results, atomic_write_bytes, atomic_write_text


def number(x: float | None) -> str:
    """A count or a rate as every report prints it: whole numbers with thousands separators from
    100 up (``3,111,579``, ``1,605``), three significant figures below (``52.5``, ``6.24``,
    ``0.0425``), no trailing zeros, never scientific notation above 1e-3; ``–`` for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if abs(x) >= 99.95:
        return f"{x:,.0f}"
    if abs(x) >= 1e-3:
        return f"{float(f'{x:.3g}'):g}"
    return f"{x:.3g}"


def p_value(p: float | None) -> str:
    """A p-value or probability as a reader wants it: three decimals, "< 0.001" below that (a
    printed 0 would claim what no finite computation shows)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_equals(p: float | None, name: str = "p") -> str:
    """``p = 0.270``, ``p < 0.001``; ``name`` for a probability of another name (``P(≤ 12) = 0.898``)."""
    text = p_value(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def span(values: list[float], unit: str = "", fmt=None) -> str:
    """Distinct values as a reader takes them in: ``0.64``, ``1,000 and 10,000 entries``, or a
    range, ``41 values from 0.5 to 0.7``."""
    fmt = fmt or number
    distinct = sorted(set(values))
    after = f" {unit}" if unit else ""
    if len(distinct) == 1:
        return fmt(distinct[0]) + after
    if len(distinct) <= 4:
        return ", ".join(fmt(v) for v in distinct[:-1]) + f" and {fmt(distinct[-1])}{after}"
    return f"{len(distinct)} values from {fmt(distinct[0])} to {fmt(distinct[-1])}{after}"


def _entries(v: float) -> str:
    return f"{v:,.0f}"


def operating_point(experiment, cells: list[dict]) -> str:
    """The header's watchlist and threshold: the sweep's values where swept, each deployment's own
    where the programme sets them (a grid), else the experiment's."""
    parts = []
    settings = (("Watchlist", "watchlist.size", "watchlist_size", _entries, "entries"),
                ("Threshold", "matcher.threshold", "threshold", number, ""))
    deployments = experiment.programme.deployments
    for label, path, own, fmt, unit in settings:
        swept = [c[path] for c in cells if c and path in c]
        default = experiment.watchlist.size if path == "watchlist.size" else experiment.matcher.threshold
        given = [getattr(d, own) for d in deployments if getattr(d, own) is not None]
        if swept:
            text = f"swept, {span(swept, unit, fmt)}"
            text += ", overriding each deployment's own" if given else ""
        elif given and len(given) == len(deployments):
            text = f"each deployment's own ({plural(len(given), 'deployment')}), {span(given, unit, fmt)}"
        elif given:
            text = (f"each deployment's own where set ({len(given):,} of "
                    f"{plural(len(deployments), 'deployment')}; the others {fmt(default)}), "
                    f"{span([*given, default], unit, fmt)}")
        else:
            text = fmt(default) + (f" {unit}" if unit else "")
        parts.append(f"{label}: {text}.")
    return " ".join(parts)


HEADLINE_METRICS = ("faces", "alerts", "true_alerts", "false_alerts", "expected_false_alerts", "arrests",
                    "wrongful_stops")
CELL_METRICS = ("faces", "alerts", "false_alerts", "tpir", "ppv", "arrests", "wrongful_stops", "lost_alerts")
DPI = 150
PNG_COMPRESS_LEVEL = 3    # zlib level: a third less time to encode than the default 6, files ~8% larger
Submit = Callable[..., Any]     # an executor's submit(fn, *args): returns a Future (result, cancel)


def _figure(figsize: tuple[float, float]):
    """A figure laid out by constrained layout at the resolution it is saved at.

    A ``matplotlib.figure.Figure`` of its own (no pyplot, no global figure manager to close), at
    ``DPI`` from the start: laid out at another resolution, every text would be measured again
    when saved.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def ready_to_draw() -> None:
    """Import what drawing a figure needs (matplotlib's figure and Agg canvas), ahead of the first."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def _png(fig, tight: bool = False) -> bytes:
    """A figure as PNG bytes (no timestamp in them, so redrawing gives the same bytes).

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
    return buf.getvalue()


def _borough_panels(results: Results) -> list[tuple[int, str, pd.DataFrame]]:
    panels, seen = [], set()
    for i, cell in enumerate(results.cells):
        experiment = results.experiment.with_values(cell) if cell else results.experiment
        key = repr(experiment.programme.generator.sites) if experiment.programme.generator else "deployments"
        if key not in seen:
            seen.add(key)
            panels.append((i, key, borough_exposure(experiment)))
    return [p for p in panels if not p[2].empty][:4]


# -- the figures: each a module-level function of (results, ...) -> (figure, crop to what was drawn),
# so that a worker process can draw it from a pickled Results as well as this one

def _where(results: Results) -> str:
    cells = results.cells
    return f" — {plot.setting_label(cells[0])}" if len(cells) > 1 else ""


def _false_alerts_by_group(results: Results):
    fig = _figure((9, 4.2))
    plot.false_alerts_by_group(fig.subplots(), results.summary, 0,
                               f"False alerts per face by passer group{_where(results)}")
    return fig, False


def _alert_funnel(results: Results):
    fig = _figure((8, 4.2))
    plot.alert_funnel(fig.subplots(), results.summary, 0,
                      f"Alert funnel: alert → review → engagement → outcome{_where(results)}")
    return fig, False


def _exposure_per_head(results: Results):
    fig = _figure((8, 4.2))
    plot.exposure_by_group(fig.subplots(), results.summary, 0,
                           f"Exposure per head by passer group{_where(results)}")
    return fig, False


def _exposure_by_borough(results: Results, panels: list[tuple[int, str, pd.DataFrame]]):
    cells = results.cells
    height = 0.3 * max(len(p[2]) for p in panels) + 1.8
    fig = _figure((6.5 * len(panels), height))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (cell, key, table) in zip(axes[0], panels, strict=True):
        label = plot.setting_label(cells[cell]) if len(panels) > 1 else f"sites: {key.strip(chr(39))}"
        plot.borough_heatmap(fig, ax, table, label)
    fig.suptitle("Faces scanned per resident by borough and ethnicity\n(expected, from the programme's "
                 "design; 2021 census residents)")
    return fig, False


def _false_alerts_vs_threshold(results: Results):
    cmp_ = results.experiment.comparison
    reported = (cmp_.false_alerts, cmp_.faces, cmp_.threshold) if cmp_ is not None else None
    fig = _figure((8.5, 5))
    plot.false_alerts_vs_threshold(fig.subplots(), results.summary, reported)
    return fig, False


def _det_by_group(results: Results):
    fig = _figure((8.5, 6))
    plot.det_by_group(fig.subplots(), results.summary)
    return fig, False


def _disparity_vs_threshold(results: Results):
    fig = _figure((9, 4.5))
    plot.disparity_vs_threshold(fig.subplots(), results.summary, results.cells)
    return fig, False


def _cells_compared(results: Results):
    fig = _figure((12, 8))
    plot.cells_compared(fig, results.summary, results.cells)
    return fig, len(results.cells) > 4     # its key below the panels


def _exposure_by_cell(results: Results):
    fig = _figure((12, 4.5))
    plot.exposure_by_cell(fig.subplots(), results.summary, results.cells)
    return fig, False


def _against_setting(results: Results, x: str, metrics: tuple[str, ...] | None = None):
    fig = _figure((14, 4.6) if metrics is None else (11, 4.6))
    if metrics is None:
        plot.against_setting(fig, results.summary, x)
    else:
        plot.against_setting(fig, results.summary, x, metrics)
    return fig, True                        # the shared legend below the panels


@dataclass(frozen=True)
class FigureJob:
    """One figure of a report: its file name, and the function (of the results and ``args``) that
    draws it."""

    name: str
    draw: Callable[..., tuple[Any, bool]]
    args: tuple[Any, ...] = ()
    weight: float = 1.0         # its cost against an ordinary one-panel figure's, roughly


def figure_jobs(results: Results) -> list[FigureJob]:
    """The figures the results support, in the order the summary lists them."""
    summary, experiment, cells = results.summary, results.experiment, results.cells
    params = plot.parameter_columns(summary)
    census = census_groups(summary)          # declared groups have no census residents to count
    jobs = [FigureJob("false_alerts_by_group.png", _false_alerts_by_group),
            FigureJob("alert_funnel.png", _alert_funnel)]
    if census:
        jobs.append(FigureJob("exposure_per_head.png", _exposure_per_head))
    panels = _borough_panels(results)
    if panels:
        jobs.append(FigureJob("exposure_by_borough.png", _exposure_by_borough, (panels,), 2.0 * len(panels)))
    threshold_sweep = "matcher.threshold" in params and summary["matcher.threshold"].nunique() > 2
    if threshold_sweep:
        jobs += [FigureJob("false_alerts_vs_threshold.png", _false_alerts_vs_threshold),
                 FigureJob("det_by_group.png", _det_by_group),
                 FigureJob("disparity_vs_threshold.png", _disparity_vs_threshold)]
    numeric = [p for p in params if pd.api.types.is_numeric_dtype(summary[p])]
    if len(cells) > 1 and (len(numeric) < len(params) or experiment.sweep.mode == "zip"):
        jobs.append(FigureJob("cells_compared.png", _cells_compared))
        if census:
            jobs.append(FigureJob("exposure_by_cell.png", _exposure_by_cell))
        return jobs
    jobs += [FigureJob(f"sweep_{x.replace('.', '_')}.png", _against_setting, (x,))
             for x in numeric if not (x == "matcher.threshold" and threshold_sweep)]
    reviewed = [p for p in numeric if p.startswith("review.")]
    if reviewed:
        jobs.append(FigureJob("officer_utilisation.png", _against_setting,
                              (reviewed[0], ("officer_utilisation", "wrongful_stops"))))
    return jobs


def draw_figure(results: Results, job: FigureJob) -> bytes:
    """One figure of the report as PNG bytes (pure: a worker process can draw it).

    Drawn in matplotlib's default style whatever the process has set (a notebook's style, a
    matplotlibrc), so that a results folder's figures are the same bytes on every machine and in
    every process: worker processes started by spawn or forkserver do not inherit settings."""
    from matplotlib import style

    with style.context("default"):
        fig, tight = job.draw(results, *job.args)
        return _png(fig, tight)


def _for_figures(results: Results) -> Results:
    """What a figure needs of the results: all but the per-replicate metrics (light to pickle)."""
    return replace(results, metrics=results.metrics.iloc[:0])


def _draw_pickled(results: bytes, job: FigureJob) -> bytes:
    """``draw_figure`` of results pickled once for all the figures (each task then carries bytes,
    not a summary table to pickle again)."""
    return draw_figure(pickle.loads(results), job)


class PendingFigures:
    """A report's figures being drawn (by ``submit``, or here), written once all are drawn.

    Given to ``submit`` the costliest first (the borough heatmap's panels), so that workers
    drawing them side by side finish together. ``write`` draws here, in this process, those no
    worker has started yet (the cheapest, given last): the figures take what this process has left
    of its time too, once it has written everything else.
    """

    def __init__(self, results: Results, submit: Submit | None = None):
        self.results = results
        self.jobs = figure_jobs(results)
        self._order = sorted(range(len(self.jobs)), key=lambda i: -self.jobs[i].weight)
        if submit is None:
            self._drawn: dict[int, Any] = {i: _Drawn(draw_figure(results, self.jobs[i])) for i in self._order}
        else:
            payload = pickle.dumps(_for_figures(results), protocol=pickle.HIGHEST_PROTOCOL)
            self._drawn = {i: submit(_draw_pickled, payload, self.jobs[i]) for i in self._order}

    @property
    def names(self) -> list[str]:
        return [job.name for job in self.jobs]

    def draw_here(self, until: Callable[[], bool] | None = None) -> None:
        """Draw here, one by one, the figures no worker has started (while workers draw the
        others); ``until``: stop before the next once it is true (what this process waits for
        next is ready, and the figures left can still go to a worker or a later call)."""
        for i in reversed(self._order):     # workers take them in order: the last given first here
            if isinstance(self._drawn[i], _Drawn):
                continue                    # drawn here by an earlier call
            if until is not None and until():
                return
            if not self._drawn[i].cancel():
                break                       # started, so every one given before it has been too
            self._drawn[i] = _Drawn(draw_figure(self.results, self.jobs[i]))

    def write(self, folder: Path) -> list[str]:
        """Draw here what no worker has started, wait for the rest, then write them all into
        ``folder/figures``; return their names."""
        self.draw_here()
        pngs = [self._drawn[i].result() for i in range(len(self.jobs))]
        figures = folder / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        for job, png in zip(self.jobs, pngs, strict=True):
            atomic_write_bytes(figures / job.name, png)
        return self.names


@dataclass(frozen=True)
class _Drawn:
    png: bytes

    def cancel(self) -> bool:
        return False                        # drawn already

    def result(self) -> bytes:
        return self.png


def draw_figures(folder: Path, results: Results) -> list[str]:
    """Draw the figures the results support into ``folder/figures``, here, one after another;
    return their file names. (``PendingFigures`` with an executor's ``submit`` draws them
    elsewhere, all at once, to the same bytes.)"""
    return PendingFigures(results).write(Path(folder))


def _interval(summary: pd.DataFrame | SummaryIndex, cell: int, group: str, metric: str,
              scale: float = 1.0) -> str:
    est, lo, hi = summary_value(summary, cell, group, metric)
    return f"{number(est * scale)} ({number(lo * scale)}–{number(hi * scale)})"


def _comparison_lines(results: Results) -> list[str]:
    exp = results.experiment
    cmp_ = exp.comparison
    assert cmp_ is not None
    lines = ["## Against the reported figure", "",
             f"Reported: {cmp_.label} ({plural(cmp_.false_alerts, 'false alert')} in {cmp_.faces:,} faces). "
             "It is compared with the model, never fitted to.", ""]
    post = results.posterior
    if post is not None:
        lines += [f"**Posterior predictive** (cell {post['cell']}, threshold {number(post['threshold'])}; "
                  f"{post['draws']:,} draws of the calibrated model, this experiment's crowd mix and "
                  "watchlist; "
                  "recorded faces turned into passers by each draw's counting factor):", "",
                  "| | value |", "|---|---|",
                  f"| expected false alerts in {cmp_.faces:,} faces, mean (95% credible interval) | "
                  f"{number(post['expected'])} "
                  f"({number(post['interval_95'][0])}–{number(post['interval_95'][1])}) |",
                  f"| 95% predictive interval of the count | {number(post['predictive_interval_95'][0])}–"
                  f"{number(post['predictive_interval_95'][1])} |",
                  f"| P(≤ {cmp_.false_alerts}) | {p_value(post['p_at_most_reported'])} |",
                  f"| P(≥ {cmp_.false_alerts}) | {p_value(post['p_at_least_reported'])} |", ""]
    lines += ["Simulated, per cell (pooled over replicates; footnote: the p-value holds every "
              "parameter at its cell's draws and asks only about Poisson noise):", "",
              f"| cell | setting | false alerts in {cmp_.faces:,} faces (95% PI) | exact expectation | "
              "p (parameters fixed) | implied threshold |", "|---|---|---|---|---|---|"]
    index = SummaryIndex(results.summary)
    for cell, params in enumerate(results.cells):
        c = compare(results.metrics, cell, cmp_)
        setting = ", ".join(f"{k}={v}" for k, v in params.items()) or "base"
        scale = cmp_.faces
        rate = index.value(cell, "all", "false_alert_rate")
        lines.append(f"| {cell} | {setting} | {number(c['simulated_per_reported_faces'])} "
                     f"({number(rate[1] * scale)}–{number(rate[2] * scale)}) | "
                     f"{number(c['expected_per_reported_faces'])} | {p_value(c['p_value_two_sided'])} | "
                     f"{number(c['implied_threshold'])} |")
        if cell >= 40:
            lines.append("| … | | | | | |")
            break
    lines += ["", "The implied threshold is where the model would expect the reported count in this "
              "crowd.", ""]
    return lines


def _exact_spread(summary: pd.DataFrame, cell: int = 0) -> str:
    """'4.64 (male_60_plus over female_30_59)': the highest over the lowest group's exact expected
    FPIR in a cell, or '' where it is not defined."""
    spread = disparity_by_cell(summary)
    row = spread[spread["cell"] == cell]
    if row.empty or not math.isfinite(float(row["estimate"].iloc[0])):
        return ""
    r = row.iloc[0]
    return f"{number(float(r['estimate']))} ({r['highest']} over {r['lowest']})"


def _disparity_line(summary: pd.DataFrame, cell: int = 0) -> str:
    """Highest over lowest group false-alert rate in a cell, or why it is not defined."""
    head = f"Highest over lowest group false-alert rate (cell {cell}, simulated alerts): "
    part = summary[(summary["cell"] == cell) & (summary["group"] != "all")
                   & (summary["metric"] == "false_alert_rate")]
    rates = part.set_index("group")["estimate"].dropna()
    if rates.empty:
        return ""
    exact = _exact_spread(summary, cell)
    fallback = f" From the exact expectations (FPIR, no sampling noise): {exact}." if exact else ""
    none = sorted(rates[rates <= 0].index, key=list(rates.index).index)
    if len(none) == len(rates):
        return (head + f"not defined: no group had a simulated false alert in cell {cell}, so there is no "
                "rate to divide by." + fallback)
    if none:
        top = rates.idxmax()
        return (head + f"not defined: {len(none)} of {plural(len(rates), 'group')} had no simulated false "
                f"alert ({', '.join(none)}), so the lowest rate is 0; the highest is {top}'s, "
                f"{number(float(rates[top]) * 1e6)} per million recorded faces." + fallback)
    d0 = disparity(summary)
    d0 = d0[d0["cell"] == cell].iloc[0]
    return head + f"{number(float(d0['ratio']))} ({d0['highest_group']} over {d0['lowest_group']})."


def summary_markdown(results: Results, figures: list[str]) -> str:
    exp = results.experiment
    summary = results.summary
    lines = [f"# {exp.experiment.name}", ""]
    if exp.experiment.description:
        lines += [exp.experiment.description.strip(), ""]
    reps = int(summary["replicates"].max()) if len(summary) else 0
    lines += [f"{plural(reps, 'replicate')}, each with its own draw of the calibrated posterior where a "
              f"setting is calibrated. Root seed: {exp.experiment.seed}. "
              f"{plural(len(results.cells), 'cell')}. "
              f"{operating_point(exp, results.cells)}", "",
              "Intervals are 95% posterior-predictive intervals: the 2.5th–97.5th percentiles over "
              "replicates (parameters and Monte Carlo together). Rates are per million recorded faces.", ""]
    if exp.comparison is not None:
        lines += _comparison_lines(results)
    census = census_groups(summary)
    index = SummaryIndex(summary)
    if len(results.cells) > 1:
        lines += ["## Per cell (everyone)", "",
                  "| cell | setting | faces | alerts | false alerts | TPIR | PPV | arrests | wrongful stops "
                  f"| lost | {'Black/White false alerts per face' if census else 'highest/lowest FPIR'} |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        spread = ({} if census else
                  {int(r.cell): float(r.estimate) for r in disparity_by_cell(summary).itertuples()})
        for cell, params in enumerate(results.cells[:60]):
            setting = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())
            vals = [index.value(cell, "all", m)[0] for m in CELL_METRICS]
            last = (_interval(index, cell, 'all', 'black_white_false_alert_ratio') if census
                    else number(spread.get(cell, math.nan)))
            lines.append(f"| {cell} | {setting} | " + " | ".join(number(v) for v in vals) + f" | {last} |")
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
        vals = [index.value(0, g, m)[0] for m in HEADLINE_METRICS]
        cells_ = [number(v) for v in vals]
        cells_[3] = _interval(index, 0, g, "false_alerts")
        lines.append(f"| {g} | " + " | ".join(cells_)
                     + f" | {_interval(index, 0, g, 'false_alert_rate', 1e6)} |")
    lines += ["", "Counts are means per programme over replicates; summary.csv gives every interval.", ""]
    lines += ["## Who bears the false alerts (cell 0)", ""]
    lines += (_black_white_lines(summary) if census else _declared_group_lines(summary))
    disparity_line = _disparity_line(summary)
    if disparity_line:
        lines += [disparity_line, ""]
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
    shares = ", ".join(f"{g} {number(100 * v / total)}%" for g, v in expected.items()) if total > 0 else "–"
    lines = [f"Each group's share of the expected false alerts: {shares}."]
    exact = _exact_spread(summary, 0)
    if exact:
        lines[0] += f" Highest over lowest group expected FPIR: {exact}."
    lines += ["", "The Black/White ratio is not defined here: the experiment declares its own groups "
              f"({', '.join(groups)}), not the census's sex x ethnicity groups.", ""]
    return lines


def write_report(folder: str | Path, results: Results, figures: PendingFigures | None = None) -> None:
    """(Re)draw figures and summary.md in a results folder from what it stores.

    ``figures``: the report's figures already under way (``PendingFigures`` with an executor's
    ``submit``), else they are drawn here.
    """
    folder = Path(folder)
    figures = figures if figures is not None else PendingFigures(results)
    text = summary_markdown(results, figures.names)
    figures.write(folder)
    atomic_write_text(folder / "summary.md", text)
