""""What must be true": where a reported figure is plausible under the model.

A force reports 12 false alerts in 3,000,000 faces. The model, at its own settings, expects about
40: does that make the claim false, or only the settings? Walk a grid of the settings in doubt
(the threshold and the watchlist's size, say) and at every point ask whether the reported count
lies inside the model's predictive interval there. The points where it does are the
combinations that would make the claim plausible; a reader sees at once whether they are
settings a force could have run.

At each point the replicates' exact expected false alerts are scaled to the report's faces
(``expected``, one value per replicate, so a calibrated setting's posterior draws enter as a
mixture); the predictive distribution of the count is the mixture of their Poisson
distributions, and the reported count is *inside* when neither tail beyond it holds less than
(1 - level) / 2. Points that differ only in threshold share one search (common random numbers),
so a threshold axis costs almost nothing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .config import ConfigError, Experiment
from .errors import shown
from .replicate import simulate_replicate
from .results import atomic_write_bytes, atomic_write_text, source_identity
from .sensitivity import base_experiment, parameter_label, run_batches

THRESHOLD = "matcher.threshold"
GRID_COLUMNS = ("expected", "pi_low", "pi_high", "p_at_most", "p_at_least", "inside")


def _grid(experiment: Experiment) -> tuple[Experiment, list[str], list[np.ndarray]]:
    sens = experiment.sensitivity
    if sens is None or sens.explain is None:
        raise ConfigError(["sensitivity.explain: the experiment has no [sensitivity.explain] section"])
    if experiment.comparison is None:
        raise ConfigError(["comparison: [sensitivity.explain] needs a reported figure ([comparison])"])
    spec = sens.explain.parameters
    base = base_experiment(experiment, [spec[THRESHOLD].low] if THRESHOLD in spec else [])
    names, axes = list(spec), []
    for name, bounds in spec.items():
        values = np.linspace(bounds.low, bounds.high, sens.explain.points)
        current = base.to_dict()
        for key in name.split("."):
            current = current.get(key) if isinstance(current, dict) else None
        if isinstance(current, int) and not isinstance(current, bool):
            values = np.unique(np.round(values))
        for end, value in (("low", values[0]), ("high", values[-1])):
            try:
                base.with_values({name: _plain(value, current)})
            except ConfigError as exc:
                detail = exc.problems[0].split(": ", 1)[-1]
                raise ConfigError([f"sensitivity.explain.parameters.{name}.{end}: {shown(float(value))} is "
                                   f"not a valid {name}: {detail}"]) from None
        axes.append(values)
    return base, names, axes


def check_explain(experiment: Experiment) -> None:
    """Refuse a bad ``[sensitivity.explain]`` by field (ConfigError); compute nothing."""
    _grid(experiment)


def _plain(value: float, current: Any) -> Any:
    return int(value) if isinstance(current, int) and not isinstance(current, bool) else float(value)


@dataclass(frozen=True)
class Column:
    """Points of the grid that differ only in threshold: one search per replicate."""

    index: int
    config: str
    values: dict[str, Any]
    thresholds: tuple[float, ...]
    replicates: int

    @property
    def name(self) -> str:
        return f"column{self.index:05d}"


def run_column(column: Column) -> np.ndarray:
    """Expected false alerts and faces per replicate at each threshold: shape (thresholds, replicates, 2)."""
    experiment = Experiment.from_toml(column.config)
    if column.values:
        experiment = experiment.with_values(column.values)
    out = np.zeros((len(column.thresholds), column.replicates, 2))
    for r in range(column.replicates):
        results = simulate_replicate(experiment, r, sorted(set(column.thresholds)))
        for i, t in enumerate(column.thresholds):
            counts = results[t]["counts"]
            out[i, r] = (float(np.sum(counts["expected_false_alerts"])), float(np.sum(counts["faces"])))
    return out


def predictive(expected: np.ndarray, reported: int, level: float) -> dict[str, Any]:
    """The reported count against a mixture of Poissons of means ``expected`` (one per replicate)."""
    at_most = float(np.mean(stats.poisson.cdf(reported, expected)))
    at_least = float(np.mean(stats.poisson.sf(reported - 1, expected)))
    tail = (1.0 - level) / 2.0
    support = np.arange(0, int(stats.poisson.ppf(1 - 1e-9, max(expected.max(), 1e-9))) + 2)
    cdf = np.mean(stats.poisson.cdf(support[:, None], expected[None, :]), axis=1)
    low = int(support[np.searchsorted(cdf, tail)])
    high = int(support[min(np.searchsorted(cdf, 1.0 - tail), len(support) - 1)])
    return {"expected": float(np.mean(expected)), "pi_low": low, "pi_high": high, "p_at_most": at_most,
            "p_at_least": at_least, "inside": bool(at_most >= tail and at_least >= tail)}


def explain(experiment: Experiment, workers: int = 1, scheduler: str | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The grid (one row per point: its settings, expected count per reported faces, predictive
    interval, tail probabilities, inside) and its boundary (per value of every axis but the last,
    the last axis's range inside), or ConfigError by field."""
    base, names, axes = _grid(experiment)
    sens, comparison = experiment.sensitivity, experiment.comparison
    assert sens is not None and sens.explain is not None and comparison is not None
    current = base.to_dict()
    plain_axes = []
    for name, values in zip(names, axes, strict=True):
        node: Any = current
        for key in name.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        plain_axes.append([_plain(v, node) for v in values])
    rest = [n for n in names if n != THRESHOLD]
    threshold_axis = plain_axes[names.index(THRESHOLD)] if THRESHOLD in names else [base.matcher.threshold]
    rest_axes = [plain_axes[names.index(n)] for n in rest]
    config = base.to_toml()
    columns = [Column(i, config, dict(zip(rest, combo, strict=True)), tuple(float(t) for t in threshold_axis),
                      sens.explain.replicates) for i, combo in enumerate(itertools.product(*rest_axes))]
    found = {c.index: out for c, out in run_batches(columns, run_column, workers, scheduler)}
    rows = []
    for column in columns:
        out = found[column.index]
        for i, t in enumerate(column.thresholds):
            expected = out[i, :, 0] * comparison.faces / np.maximum(out[i, :, 1], 1e-300)
            point = {**column.values, **({THRESHOLD: t} if THRESHOLD in names else {})}
            rows.append({**{n: point[n] for n in names},
                         **predictive(expected, comparison.false_alerts, sens.explain.level)})
    grid = pd.DataFrame(rows).sort_values(names, kind="stable").reset_index(drop=True)
    return grid, boundary(grid, names)


def boundary(grid: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Per value of every axis but the last: the lowest and highest value of the last axis at
    which the reported count is inside the interval (NaN where it is nowhere inside)."""
    *outer, last = names
    rows = []
    for key, part in grid.groupby(list(outer), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        inside = part.loc[part["inside"], last]
        rows.append({**dict(zip(outer, key, strict=True)), "along": last,
                     "inside_low": float(inside.min()) if len(inside) else float("nan"),
                     "inside_high": float(inside.max()) if len(inside) else float("nan"),
                     "points_inside": int(len(inside)), "points": int(len(part))})
    return pd.DataFrame(rows)


def contour(ax: Any, grid: pd.DataFrame, x: str, y: str, reported: int, level: float) -> Any:
    """Expected false alerts per reported faces over two settings (log colour), the reported count's
    contour, and the region where it lies inside the predictive interval (hatched)."""
    from matplotlib import colors, ticker

    wide = grid.pivot_table(index=y, columns=x, values="expected")
    inside = grid.pivot_table(index=y, columns=x, values="inside").astype(float)
    xs, ys = wide.columns.to_numpy(float), wide.index.to_numpy(float)
    z = np.clip(wide.to_numpy(), 1e-3, None)
    mesh = ax.contourf(xs, ys, z, levels=np.geomspace(z.min(), z.max(), 15), norm=colors.LogNorm(),
                       cmap="viridis")
    if z.min() < reported < z.max():
        line = ax.contour(xs, ys, z, levels=[reported], colors="white", linewidths=1.5)
        ax.clabel(line, fmt=lambda v: f"expected = {v:g}", fontsize=7)
    if inside.to_numpy().max() > 0:
        ax.contourf(xs, ys, inside.to_numpy(), levels=[0.5, 1.5], colors="none", hatches=["//"])
        ax.contour(xs, ys, inside.to_numpy(), levels=[0.5], colors="red", linewidths=1.2)
    ax.set_xlabel(parameter_label(x))
    ax.set_ylabel(parameter_label(y))
    bar = ax.figure.colorbar(mesh, ax=ax, label="expected false alerts per reported faces")
    bar.locator = ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0))
    bar.formatter = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    bar.update_ticks()
    ax.set_title(f"hatched: {reported} inside the model's {level:.0%} predictive interval", fontsize=9)
    return ax


def write_explain(folder: str | Path, experiment: Experiment, grid: pd.DataFrame, boundary_table: pd.DataFrame
                  ) -> list[str]:
    """``explain.csv``, ``explain_boundary.csv``, ``explain.json`` and ``figures/explain.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    folder = Path(folder)
    sens, comparison = experiment.sensitivity, experiment.comparison
    assert sens is not None and sens.explain is not None and comparison is not None
    names = list(sens.explain.parameters)
    atomic_write_text(folder / "explain.csv", grid.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(folder / "explain_boundary.csv",
                      boundary_table.to_csv(index=False, float_format="%.6g"))
    x, y = names[0], names[1]
    third = sorted(grid[names[2]].unique()) if len(names) > 2 else []
    slices = [None] if not third else [third[0], third[len(third) // 2], third[-1]]
    fig, axes = plt.subplots(1, len(slices), figsize=(5.2 * len(slices), 4.2), squeeze=False,
                             layout="constrained")
    for ax, value in zip(axes.flat, slices, strict=True):
        part = grid if value is None else grid[grid[names[2]] == value]
        contour(ax, part, x, y, comparison.false_alerts, sens.explain.level)
        if value is not None:
            ax.set_title(f"{parameter_label(names[2])} {value:g}", fontsize=9)
    fig.suptitle(f"What must be true for \"{comparison.label}\"", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(folder / "figures" / "explain.png", buf.getvalue())
    inside = int(grid["inside"].sum())
    atomic_write_text(folder / "explain.json", json.dumps({
        "kind": "explain", "experiment": experiment.experiment.name, "seed": experiment.experiment.seed,
        "replicates": sens.explain.replicates, "parameters": names, "points": len(grid),
        "points_inside": inside,
        "reported": {"label": comparison.label, "faces": comparison.faces,
                     "false_alerts": comparison.false_alerts},
        "level": sens.explain.level, **source_identity()}, indent=2))
    return ["explain.csv", "explain_boundary.csv", "explain.json", "figures/explain.png"]
