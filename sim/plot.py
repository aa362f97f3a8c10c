"""Figures of a results folder, drawn from its summary table: public, so a notebook draws the same.

Every function takes a summary (``Results.summary``, ``summary.csv`` read with pandas, or a
results folder: ``summary_of``) and a matplotlib ``Axes`` or ``Figure`` to draw on, and returns
it; ``sim.report`` calls them to write ``figures/*.png``. Labels speak the domain ("false alerts
per 3,000,000 faces", "Female Black"), titles name the setting a panel shows, legends sit outside
the data, and log axes label their decades and the values between them.

    import matplotlib.pyplot as plt
    from sim import plot
    summary = plot.summary_of("results/met_2025_headline")
    fig, ax = plt.subplots()
    plot.false_alerts_by_group(ax, summary)
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .groups import GROUP_NAMES, group_named
from .metrics import (
    black_white_ratio,
    census_groups,
    disparity_by_cell,
    expected_false_alert_rate,
    expected_fpir,
    expected_ratio,
    exposure_per_head,
    parameter_columns,
    poisson_interval,
    summary_value,
)
from .results import Results, read_results

SETTING_LABELS = {"matcher.threshold": "threshold", "watchlist.size": "watchlist entries",
                  "review.officers": "intervention officers", "review.operators": "operators",
                  "crowd.prevalence_elasticity": "prevalence elasticity",
                  "programme.generator.deployments_per_week": "deployments a week",
                  "programme.generator.days_per_week": "days a week", "programme.generator.sites": "sites"}
METRIC_LABELS = {"alerts": "alerts", "operator_rejected": "rejected by operator",
                 "lost_alerts": "lost (passer out of reach)", "engagements": "engagements",
                 "arrests": "arrests", "other_disposals": "other disposals", "no_action": "no action",
                 "wrongful_stops": "wrongful stops", "wrongful_arrests": "wrongful arrests",
                 "false_alerts": "false alerts", "true_alerts": "true alerts", "faces": "faces",
                 "ppv": "PPV (share of alerts that are true)", "tpir": "TPIR",
                 "officer_utilisation": "officer utilisation"}
FUNNEL = ("alerts", "operator_rejected", "lost_alerts", "engagements", "arrests", "other_disposals",
          "no_action", "wrongful_stops", "wrongful_arrests")
DET_MARKERS = (0.60, 0.64)    # the Met's operating thresholds before and after July 2024


def summary_of(source: Results | pd.DataFrame | str | Path) -> pd.DataFrame:
    """The summary table of a ``Results``, a results folder, or a summary DataFrame as given."""
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, Results):
        return source.summary
    return read_results(source).summary


def group_label(name: str) -> str:
    """'female_black' -> 'Female Black'; 'all' -> 'everyone'; a declared 'male_18_29' -> 'male 18–29'."""
    if name == "all":
        return "everyone"
    try:
        g = group_named(name)
    except KeyError:
        return re.sub(r"(\d)_(\d)", "\\1–\\2", name).replace("_", " ")
    return f"{g.sex.capitalize()} {g.ethnicity.capitalize()}"


def setting_label(cell: dict[str, Any]) -> str:
    """A sweep cell as a reader names it: 'threshold 0.64, watchlist entries 16,000'."""
    if not cell:
        return "the experiment's settings"
    return ", ".join(f"{SETTING_LABELS.get(k, k.rsplit('.', 1)[-1].replace('_', ' '))} {_value_text(v)}"
                     for k, v in cell.items())


def _value_text(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return f"{v:,}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"


def count_text(x: float) -> str:
    """Counts as a table prints them: 2,208; 40.5; 0.50; – for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.1f}"
    return f"{x:.2g}"


def log_axis(axis: Any) -> None:
    """Label a log axis as plain numbers: at 1, 2 and 5 of every decade over three decades or fewer,
    else at every decade (call it once the data are drawn and the limits set)."""
    from matplotlib import ticker

    limits = axis.axes.get_xlim() if axis is axis.axes.xaxis else axis.axes.get_ylim()
    lo, hi = sorted(v for v in limits)
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 10.0
    subs = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(1, 10)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    minor_marks(axis, ticker.LogLocator(base=10, subs=np.arange(1, 10)))


def minor_marks(axis: Any, locator: Any) -> list[Any]:
    """Unlabelled minor ticks at ``locator``'s values drawn as one line of tick marks per side.

    What ``axis.set_minor_locator(locator)`` with a ``NullFormatter`` draws, but matplotlib makes a
    ``Tick`` (two marks, a grid line, two labels) of every minor tick and moves them all each time
    the axis is measured or drawn: ~0.5 ms a tick, and a log axis over nine decades has 72. The
    marks copy the axis' own minor tick (marker, size, width, colour, side), and take the
    locator's values at draw time, as the axis would: those in view and not on a major tick.
    Called again on the same axis, it replaces its marks; a later change of the axis' scale or
    minor locator brings the axis' own minor ticks back (call it again then)."""
    from matplotlib import ticker

    for old in getattr(axis, "_lfrsim_minor_marks", ()):
        old.remove()
    axis.set_minor_formatter(ticker.NullFormatter())
    axis.set_minor_locator(locator)
    tick = axis.minorTicks[0]            # the axis' own minor tick, as it would draw it
    axis.set_minor_locator(ticker.NullLocator())
    locator.set_axis(axis)
    marks = [_minor_marks_class()(axis, locator, line) for line in (tick.tick1line, tick.tick2line)
             if line.get_visible()]
    for mark in marks:
        axis.axes.add_artist(mark)
    axis._lfrsim_minor_marks = marks
    return marks


@functools.cache
def _minor_marks_class() -> type:
    from matplotlib.lines import Line2D

    class MinorMarks(Line2D):
        """One side's minor tick marks of an axis (``minor_marks``)."""

        def __init__(self, axis: Any, locator: Any, like: Any) -> None:
            super().__init__([], [], linestyle="none", marker=like.get_marker(),
                             markersize=like.get_markersize(), markeredgewidth=like.get_markeredgewidth(),
                             markeredgecolor=like.get_markeredgecolor(), color=like.get_color(),
                             transform=like.get_transform(), zorder=axis.get_zorder(), clip_on=False)
            self.set_in_layout(False)       # tick marks are not in the layout: only tick labels are
            self._marked, self._marks_at = axis, locator
            self._along_x = axis is axis.axes.xaxis
            # the mark's place across the axis (0 on the bottom or left spine, 1 on the other)
            self._across_at = float((like.get_ydata() if self._along_x else like.get_xdata())[0])

        def draw(self, renderer: Any) -> None:
            # the locations Axis.get_minorticklocs and Axis._update_ticks keep
            axis = self._marked
            transform = axis.get_transform()
            locs = np.asarray(self._marks_at(), float)
            at = transform.transform(locs)
            lo, hi = sorted(transform.transform(axis.get_view_interval()))
            major = transform.transform(np.asarray(axis.get_majorticklocs(), float))
            keep = ~np.isclose(at[:, None], major[None, :], atol=(hi - lo) * 1e-5, rtol=0).any(axis=1)
            keep &= (at >= lo - (hi - lo) * 1e-10) & (at <= hi + (hi - lo) * 1e-10)
            across = np.full(int(keep.sum()), self._across_at)
            self.set_data((locs[keep], across) if self._along_x else (across, locs[keep]))
            super().draw(renderer)

    return MinorMarks


def _thousands() -> Any:
    from matplotlib import ticker

    return ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 10 else f"{v:g}")


def _title(ax: Any, text: str, **style: Any) -> Any:
    """A panel's title, on top of the axes (``y=1``: where matplotlib would place it, nothing of
    these panels being above them), so it is not placed again at every measure and draw: placing
    it measures all the y axis' tick labels to find an offset text in its way."""
    return ax.set_title(text, y=1.0, **style)


def _measured_once(fig: Any) -> None:
    """Give a figure with no canvas of its own (``matplotlib.figure.Figure()``, as the report draws
    on) an Agg canvas: its layout then measures the texts with the renderer that saving to PNG
    draws with, which keeps their measures; without one the layout measures with a renderer of
    its own and the save measures every text again."""
    from matplotlib.backend_bases import FigureCanvasBase

    root = fig.canvas.figure            # the top-level figure (of a subfigure too), on every version
    if type(root.canvas) is FigureCanvasBase:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(root)


def _groups(summary: pd.DataFrame) -> list[str]:
    return [g for g in summary["group"].unique() if g != "all"]


def false_alerts_by_group(ax: Any, summary: pd.DataFrame, cell: int = 0, title: str = "") -> Any:
    """False alerts per million faces by passer group: simulated (with its 95% interval across
    replicates: posterior-predictive where the experiment is calibrated) and exact."""
    _measured_once(ax.figure)
    groups = _groups(summary)
    rates = np.array([summary_value(summary, cell, g, "false_alert_rate") for g in groups]) * 1e6
    expected = expected_false_alert_rate(summary)
    exact = [float(expected[(expected["cell"] == cell) & (expected["group"] == g)]["estimate"].iloc[0]) * 1e6
             for g in groups]
    xs = np.arange(len(groups))
    ax.bar(xs, rates[:, 0], color="#4472c4", label="simulated")
    ax.errorbar(xs, rates[:, 0], yerr=[np.clip(rates[:, 0] - rates[:, 1], 0, None),
                np.clip(rates[:, 2] - rates[:, 0], 0, None)], fmt="none", color="black", capsize=3,
                label="95% interval across replicates")
    ax.scatter(xs, exact, color="crimson", marker="_", s=250, zorder=3, label="exact expectation")
    ax.set_xticks(xs, [group_label(g) for g in groups], rotation=40, ha="right")
    ax.set_ylabel("false alerts per million faces")
    _title(ax, title or "False alerts per face by passer group")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def alert_funnel(ax: Any, summary: pd.DataFrame, cell: int = 0, title: str = "") -> Any:
    """Where alerts go: review, engagement and outcome, per programme (log scale, every bar labelled)."""
    _measured_once(ax.figure)
    values = np.array([summary_value(summary, cell, "all", m)[0] for m in FUNNEL])
    ys = np.arange(len(FUNNEL))[::-1]
    shown = np.where(values > 0, values, np.nan)
    ax.barh(ys, shown, color=["#70ad47" if m not in ("wrongful_stops", "wrongful_arrests") else "#c0504d"
                              for m in FUNNEL])
    ax.set_xscale("log")
    top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    low = np.nanmin(shown) if np.isfinite(shown).any() else 1.0
    ax.set_xlim(min(0.1, low / 2), top * 8)     # room on the right for every label
    for y, v in zip(ys, values, strict=True):
        # inside the limits just set: nothing for the layout to make room for (measuring every
        # label for it costs more than drawing them)
        ax.text(v if v > 0 else ax.get_xlim()[0], y, f"  {count_text(v)}", va="center", fontsize=8,
                in_layout=False)
    ax.set_yticks(ys, [METRIC_LABELS[m] for m in FUNNEL])
    log_axis(ax.xaxis)
    ax.set_xlabel("per programme (mean over replicates, log scale)")
    _title(ax, title or "Alert funnel: alert → review → engagement → outcome")
    return ax


def exposure_by_group(ax: Any, summary: pd.DataFrame, cell: int = 0, title: str = "") -> Any:
    """Faces scanned per London resident of each group (2021 census, sexes split evenly)."""
    _measured_once(ax.figure)
    exposure = exposure_per_head(summary, cell)
    xs = np.arange(len(exposure))
    ax.bar(xs, exposure["scans_per_resident"], color="#ed7d31")
    ax.set_xticks(xs, [group_label(g) for g in exposure["group"]], rotation=40, ha="right")
    ax.set_ylabel("faces scanned per London resident")
    _title(ax, title or "Exposure per head by passer group")
    return ax


def cell_numbers(ax: Any, x: np.ndarray, y: np.ndarray, texts: list[str], colors: list[str] | np.ndarray,
                 fontsize: float) -> Any:
    """Short texts centred on data points ``(x, y)`` as one collection of glyph outlines.

    What ``ax.text(x, y, text, ha="center", va="center")`` draws for each, but laid out and drawn
    once for all: matplotlib lays out and renders every ``Text``'s glyphs one by one (~2 ms each at
    the heatmap's 150 numbers). Outlines of the default font, so the same at print size; the
    layout never measures them (``in_layout`` False: they sit inside the axes)."""
    from matplotlib.collections import PathCollection
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as GlyphPath
    from matplotlib.transforms import Affine2D

    prop = FontProperties(size=fontsize)
    # centred as a Text is: on the middle of its line (ascent of the tallest glyph to the descent
    # of "lp"), not of its ink
    line = _outline_points(_glyph_outline("lp", prop))
    bottom = line[:, 1].min()
    shapes: dict[str, GlyphPath] = {}
    for text in set(texts):
        path = _glyph_outline(text, prop)
        points = _outline_points(path)
        left, right = points[:, 0].min(), points[:, 0].max()
        top = max(points[:, 1].max(), line[:, 1].max())
        shapes[text] = path.transformed(Affine2D().translate(-(left + right) / 2, -(top + bottom) / 2))
    collection = PathCollection([shapes[t] for t in texts], offsets=np.column_stack([x, y]),
                                offset_transform=ax.transData, facecolors=list(colors), edgecolors="none",
                                linewidths=0)
    # glyph outlines are in points: scaled to pixels about each offset
    collection.set_transform(Affine2D().scale(ax.figure.dpi / 72.0))
    collection.set_in_layout(False)
    ax.add_collection(collection, autolim=False)
    return collection


def _glyph_outline(text: str, prop: Any) -> Any:
    """``TextPath((0, 0), text, prop=prop)``'s outline (plain text, no mathtext), without the
    ``Text`` artist TextPath makes to tell whether the text is mathtext (a third of its cost)."""
    from matplotlib.path import Path as GlyphPath
    from matplotlib.textpath import text_to_path
    from matplotlib.transforms import Affine2D

    vertices, codes = text_to_path.get_text_path(prop, text)
    scale = prop.get_size_in_points() / text_to_path.FONT_SCALE
    return GlyphPath(Affine2D().scale(scale).transform(vertices), codes)


def _outline_points(path: Any) -> np.ndarray:
    """A glyph outline's points, which bound it (its extremes are points on the outline; the
    closing codes carry a placeholder vertex at the origin, left out)."""
    return path.vertices[path.codes != path.CLOSEPOLY]


def borough_heatmap(fig: Any, ax: Any, table: pd.DataFrame, title: str = "") -> Any:
    """Expected faces scanned per resident by borough (rows) and ethnicity (columns), numbers in cells.

    A log colour scale, so one heavily visited borough does not flatten the rest."""
    _measured_once(fig)
    from matplotlib.colors import LogNorm

    values = table.to_numpy(float)
    positive = values[np.isfinite(values) & (values > 0)]
    norm = (LogNorm(vmin=max(positive.min(), positive.max() / 1e3), vmax=positive.max())
            if positive.size else None)
    # a flat colour a cell (as the default draws a few cells this large), picked from the cells'
    # values: a third less time than colouring them first and resampling the colours
    im = ax.imshow(np.where(values > 0, values, np.nan), aspect="auto", cmap="viridis", norm=norm,
                   interpolation="nearest", interpolation_stage="data")
    ax.set_yticks(range(len(table)), table.index, fontsize=7)
    ax.set_xticks(range(len(table.columns)), [c.capitalize() for c in table.columns])
    middle = math.sqrt(positive.min() * positive.max()) if positive.size else 0.0
    rows, columns = np.indices(values.shape)
    finite = np.isfinite(values)
    cell_numbers(ax, columns.ravel(), rows.ravel(),
                 [f"{v:.2g}" if np.isfinite(v) else "–" for v in values.ravel()],
                 np.where(finite & (values < middle), "white", "black").ravel(), fontsize=6)
    _title(ax, title, fontsize=9)
    bar = fig.colorbar(im, ax=ax, label="faces scanned per resident per programme (log scale)")
    scale = bar.ax.yaxis if bar.orientation == "vertical" else bar.ax.xaxis
    if norm is not None:
        log_axis(scale)          # plain numbers, as on every log axis here (not 10^k in math text)
    return ax


def _rows(summary: pd.DataFrame, *metrics: str) -> pd.DataFrame:
    """The summary's rows of ``metrics``, its string columns as Python objects."""
    part = summary[summary["metric"].isin(metrics)]
    return part.astype({c: object for c in ("group", "metric") if c in part})


def _series(summary: pd.DataFrame, metric: str, group: str = "all") -> pd.DataFrame:
    return summary[(summary["metric"] == metric) & (summary["group"] == group)]


def lines(summary: pd.DataFrame, x: str, metric: str, group: str = "all"):
    """(label, rows sorted by x) for each combination of the other swept settings."""
    rows = _series(summary, metric, group)
    others = [p for p in parameter_columns(summary) if p != x]
    if not others:
        yield "", rows.sort_values(x)
        return
    for key, part in rows.groupby(others, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield setting_label(dict(zip(others, key, strict=True))), part.sort_values(x)


def metric_against(ax: Any, summary: pd.DataFrame, x: str, metric: str, group: str = "all",
                   scale: float = 1.0, band: bool = True, log: bool = False, floor: float | None = None,
                   **style: Any) -> Any:
    """One line per combination of the other swept settings, with its 95% band.

    On a log axis a band whose lower end is 0 is drawn down to ``floor`` (default: a third of the
    smallest positive value drawn), which becomes the axis' bottom: the band reaches the edge
    rather than stopping where its lower end has no place on the axis."""
    series = list(lines(summary, x, metric, group))
    if log and floor is None:
        drawn = np.concatenate([rows[c].to_numpy(float) for _, rows in series
                                for c in ("estimate", "ci_low", "ci_high")] or [np.zeros(0)]) * scale
        drawn = drawn[np.isfinite(drawn) & (drawn > 0)]
        floor = float(drawn.min()) / 3 if drawn.size else None
    for label, rows in series:
        xs = rows[x].astype(float).to_numpy()
        est = rows["estimate"].to_numpy(float) * scale
        if log:  # a zero count has no place on a log axis: its interval's upper end still shows
            est = np.where(est > 0, est, np.nan)
        line, = ax.plot(xs, est, marker="o", ms=3, label=label or None, **style)
        if band:
            low = rows["ci_low"].to_numpy(float) * scale
            high = rows["ci_high"].to_numpy(float) * scale
            if log:
                low = np.where(high > 0, np.where(low > 0, low, floor if floor else np.nan), np.nan)
            ax.fill_between(xs, low, high, alpha=0.2, color=line.get_color())
    if log and floor:
        ax.set_ylim(bottom=floor)
    return ax


def false_alerts_vs_threshold(ax: Any, summary: pd.DataFrame, reported: tuple[int, int, float] | None = None
                              ) -> Any:
    """False alerts per reported faces against threshold; ``reported`` = (false alerts, faces, threshold)."""
    _measured_once(ax.figure)
    x = "matcher.threshold"
    per = reported[1] if reported else 1e6
    expected = list(lines(expected_false_alert_rate(summary), x, "expected_false_alert_rate"))
    drawn = np.concatenate([rows["estimate"].to_numpy(float) * per for _, rows in expected]
                           + [summary.loc[summary["metric"] == "false_alert_rate",
                                          ["estimate", "ci_low", "ci_high"]].to_numpy(float).ravel() * per])
    drawn = drawn[np.isfinite(drawn) & (drawn > 0)]
    floor = float(drawn.min()) / 3 if drawn.size else None
    metric_against(ax, summary, x, "false_alert_rate", scale=per, log=True, floor=floor)
    for label, rows in expected:
        ax.plot(rows[x].astype(float), rows["estimate"] * per, ls="--", color="grey",
                label="exact expectation" + (f" ({label})" if label else ""))
    if reported is not None:
        count, _, threshold = reported
        lo, hi = poisson_interval(count)
        ax.errorbar([threshold], [count], yerr=[[count - lo], [hi - count]], fmt="s", color="crimson",
                    capsize=4, label=f"reported: {count} (Poisson 95%)")
    ax.set_yscale("log")
    if floor:
        ax.set_ylim(floor, max(float(drawn.max()), reported[0] if reported else 0.0) * 2)
    log_axis(ax.yaxis)
    ax.set_xlabel("threshold (vendor similarity score)")
    ax.set_ylabel(f"false alerts per {per:,.0f} faces")
    _title(ax, "False alerts against threshold (simulated, 95% band across replicates)")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def _probit_axis(axis: Any, candidates: list[float], special: Any) -> None:
    """Ticks at the candidate rates inside the data's span (probit units), the span widened to
    hold at least two of them: the curves fill the panel whatever the thresholds swept."""
    lo, hi = axis.get_data_interval()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return
    pad = max(0.15 * (hi - lo), 0.15)
    lo, hi = lo - pad, hi + pad
    at = special.ndtri(np.array(candidates))
    inside = [i for i, v in enumerate(at) if lo <= v <= hi]
    while len(inside) < 2:
        below = [i for i, v in enumerate(at) if v < lo]
        above = [i for i, v in enumerate(at) if v > hi]
        if below:
            lo = float(at[below[-1]]) - 0.05
        if above:
            hi = float(at[above[0]]) + 0.05
        if not below and not above:
            break
        inside = [i for i, v in enumerate(at) if lo <= v <= hi]
    step = -(-len(inside) // 6)                       # at most six labels, the largest rate kept
    inside = inside[::-1][::step][::-1]
    set_lim = axis.axes.set_xlim if axis is axis.axes.xaxis else axis.axes.set_ylim
    set_lim(lo, hi)
    axis.set_ticks([float(at[i]) for i in inside], [f"{candidates[i]:g}" for i in inside])


def det_by_group(ax: Any, summary: pd.DataFrame, markers: tuple[float, ...] = DET_MARKERS) -> Any:
    """DET curves per passer group (exact expectations, probit axes), operating thresholds marked."""
    _measured_once(ax.figure)
    from scipy import special

    x = "matcher.threshold"
    fpir = expected_fpir(summary)
    tpir = expected_ratio(summary, "expected_true_alerts", "watchlisted_passers", "expected_tpir")
    groups = _groups(summary)
    census = set(groups) <= set(GROUP_NAMES)    # census groups: a colour per ethnicity, a line per sex
    for i, g in enumerate(groups):
        f = fpir[fpir["group"] == g].sort_values(x)
        t = tpir[tpir["group"] == g].sort_values(x)
        if f.empty or t.empty:
            continue
        n = min(len(f), len(t))
        fp = special.ndtri(np.clip(f["estimate"].to_numpy(float)[:n], 1e-12, 1 - 1e-12))
        fn = special.ndtri(np.clip(1 - t["estimate"].to_numpy(float)[:n], 1e-6, 1 - 1e-6))
        style = ("-" if group_named(g).sex == "female" else "--") if census else "-"
        line, = ax.plot(fp, fn, style, color=f"C{i % 5}" if census else f"C{i % 10}", label=group_label(g))
        thresholds = f[x].astype(float).to_numpy()[:n]
        for m, shape in zip(markers, ("o", "s"), strict=False):
            hit = np.flatnonzero(np.isclose(thresholds, m))
            if hit.size:
                ax.plot(fp[hit], fn[hit], shape, color=line.get_color(), ms=5)
    for m, shape in zip(markers, ("o", "s"), strict=False):
        ax.plot([], [], shape, color="black", ls="none", label=f"threshold {m:.2f}")
    _probit_axis(ax.xaxis, [10.0 ** k for k in range(-14, 0)], special)
    _probit_axis(ax.yaxis, [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9], special)
    ax.set_xlabel("FPIR (exact expectation, probit scale)")
    ax.set_ylabel("FNIR = 1 − TPIR (probit scale)")
    _title(ax, "DET curves per passer group across thresholds")
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def disparity_vs_threshold(ax: Any, summary: pd.DataFrame, cells: list[dict[str, Any]]) -> Any:
    """Highest over lowest group FPIR, and Black over White, against threshold (exact expectations)."""
    _measured_once(ax.figure)
    x = "matcher.threshold"
    ratios = disparity_by_cell(summary)
    frame = ratios.drop(columns=["highest", "lowest"]).assign(group="all", metric="ratio", ci_low=np.nan,
                                                              ci_high=np.nan, replicates=0)
    for label, rows in lines(frame, x, "ratio"):
        ax.plot(rows[x].astype(float), rows["estimate"], marker="o", ms=3,
                label=("highest / lowest of the groups" + (f" ({label})" if label else "")))
    # the rows the ratio sums, strings as Python objects: summary_value picks its ~300 values out
    # of those ~2.5x faster than out of the whole table's pyarrow strings (80 ms)
    bw = black_white_ratio(_rows(summary, "expected_false_alerts", "nonmated_passers")) \
        if census_groups(summary) else {}
    points = [(float(c[x]), bw[i]) for i, c in enumerate(cells) if x in c and i in bw]
    if points and len(parameter_columns(summary)) == 1:
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="s", ms=3, color="crimson", label="Black / White passers")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_yscale("log")
    log_axis(ax.yaxis)
    ax.set_xlabel("threshold (vendor similarity score)")
    ax.set_ylabel("ratio of FPIR between groups")
    _title(ax, "Disparity between passer groups (exact expected FPIR)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def against_setting(fig: Any, summary: pd.DataFrame, x: str,
                    metrics: tuple[str, ...] = ("false_alerts", "ppv", "lost_alerts")) -> Any:
    """Panels of ``metrics`` against swept setting ``x``; one shared legend below the panels."""
    _measured_once(fig)
    axes = fig.subplots(1, len(metrics))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        values = _series(summary, metric)["estimate"].to_numpy(float)
        positive = values[np.isfinite(values) & (values > 0)]
        # counts spanning two decades or more read on a log axis
        log = metric not in ("ppv", "tpir", "officer_utilisation") and positive.size > 1 \
            and positive.max() / positive.min() >= 100
        metric_against(ax, summary, x, metric, log=log)
        if log:
            ax.set_yscale("log")
            log_axis(ax.yaxis)
        ax.set_xlabel(SETTING_LABELS.get(x, x))
        unit = "" if metric in ("ppv", "tpir", "officer_utilisation") else " per programme"
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) + unit)
        if x == "watchlist.size":
            ax.set_xscale("log")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(len(labels), 3),
                   bbox_to_anchor=(0.5, -0.02 - 0.035 * math.ceil(len(labels) / 3)))
    fig.suptitle(f"Against {SETTING_LABELS.get(x, x)} (95% intervals)")
    return fig


def cells_compared(fig: Any, summary: pd.DataFrame, cells: list[dict[str, Any]]) -> Any:
    """Key counts of every cell side by side (zipped or categorical sweeps).

    A few cells are named under their bars; more are numbered, with a key below the panels (their
    names would overlap)."""
    _measured_once(fig)
    names = [setting_label(c) for c in cells]
    keyed = len(cells) > 4
    labels = [str(i) for i in range(len(cells))] if keyed else [n.replace(", ", "\n") for n in names]
    axes = fig.subplots(2, 2)
    for ax, metric in zip(axes.ravel(), ("faces", "false_alerts", "wrongful_stops", "arrests"), strict=True):
        vals = np.array([summary_value(summary, c, "all", metric) for c in range(len(cells))])
        xs = np.arange(len(labels))
        ax.bar(xs, vals[:, 0], color="#4472c4")
        ax.errorbar(xs, vals[:, 0], yerr=[np.clip(vals[:, 0] - vals[:, 1], 0, None),
                    np.clip(vals[:, 2] - vals[:, 0], 0, None)], fmt="none", color="black", capsize=3)
        ax.set_xticks(xs, labels, fontsize=8 if keyed else 7)
        if keyed:
            ax.set_xlabel("cell")
        ax.yaxis.set_major_formatter(_thousands())
        ax.set_ylabel(f"{METRIC_LABELS[metric]} per programme")
    if keyed:
        half = -(-len(names) // 2)
        for column, start in enumerate((0, half)):
            text = "\n".join(f"{i}: {names[i]}" for i in range(start, min(start + half, len(names))))
            fig.text(0.06 + 0.5 * column, 0.0, text, fontsize=7.5, va="top", ha="left")
    fig.suptitle("Cells compared (mean per programme; bars: 2.5–97.5% of replicates)")
    return fig


def exposure_by_cell(ax: Any, summary: pd.DataFrame, cells: list[dict[str, Any]]) -> Any:
    """Exposure per head by group, one bar per cell."""
    _measured_once(ax.figure)
    width = 0.8 / max(len(cells), 1)
    groups: list[str] = []
    for i, cell in enumerate(cells):
        exposure = exposure_per_head(summary, i)
        groups = list(exposure["group"])
        ax.bar(np.arange(len(exposure)) + i * width, exposure["scans_per_resident"], width=width,
               label=setting_label(cell))
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [group_label(g) for g in groups], rotation=40,
                  ha="right")
    ax.set_ylabel("faces scanned per London resident")
    _title(ax, "Exposure per head by passer group and cell (2021 census residents)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
