"""Replay a deployment grid with the simulator: every deployment, as it ran, against its record.

A reviewer's first question of a simulator is "does it reproduce the grid?". ``replay`` answers
with the simulator itself, not with closed forms: every row of a grid (``sim.grid``) becomes a
deployment at its own date, ward mix, duration, recorded faces, watchlist size and threshold, and
the programme runs crowd -> search -> review, replicate after replicate. Each replicate takes
its own draw of the calibrated posterior (``sim.draws``): the score model, the watchlisted share
(with the estimated effect of the deployment's calibration period, where it has one), the counting
factor of the row's counting regime (drawn from its probability), the deployments' gamma effects,
arrests per engaged true alert. So the spread of a deployment's count across replicates is its
posterior-predictive spread: parameters and chance together.

For every deployment and every period (threshold x counting regime; for the Met's records also
the calibration's calendar periods) the replay gives, per count (faces -> passers, alerts, true
alerts, false alerts, arrests, wrongful stops), the predictive mean and its 50% and 95% central
intervals beside the recorded value, the p-value ``2 min(P(rep >= obs), P(rep <= obs))`` (capped
at 1), and the randomised PIT ``P(rep < obs) + V P(rep = obs)``, uniform if the model is right.
Coverage is the share of deployments whose record lies inside its 50% / 95% interval (for counts
with ties at the ends, at least nominal) and the share of PITs inside (exactly nominal). A row
without outcomes is predicted only: a grid without outcome columns gives a forecast.

The results folder, written whole or not at all (built beside the target, then renamed)::

    replay.json      what was replayed (grid, digest, draws, seed, posterior), coverage, periods
    deployments.csv  per deployment x count: recorded, mean, intervals, p-value, PIT
    periods.csv      per period x count: the same for the period's totals
    replicates.npz   every replicate's count per deployment (the predictive itself)
    skipped.csv      rows that could not be simulated (no faces or duration published), and why
    summary.md       the readable account; figures/ (PIT histogram, predicted against recorded)

``docs/validation.md`` is ``validation_page`` of the replay of the Met's shipped records, with the
leave-one-period-out refits the calibration stored in ``posterior.toml``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import data as shipped
from . import records as rec
from .config import CALIBRATED, REFERENCE_WATCHLIST_SIZE, Experiment, from_dict
from .cost import check_cost
from .draws import drawn_regimes, posterior_identity
from .grid import PERIODS, Grid, GridRow, read_grid
from .inference import Posterior
from .likelihood import ACCOUNTS, Data, Model
from .replicate import simulate_replicate
from .results import atomic_write_bytes, atomic_write_text
from .sweep import _start_worker

SEED = 20250101
DEFAULT_DRAWS = 100
# counts per deployment, and which a record gives
COUNTS = ("passers", "alerts", "true_alerts", "false_alerts", "arrests", "wrongful_stops")
RECORDED = ("alerts", "true_alerts", "false_alerts", "arrests")
LEVELS = (0.5, 0.95)
REPLAY_FILES = ("replay.json", "deployments.csv", "periods.csv", "replicates.npz", "skipped.csv",
                "summary.md")
PIT_SEED = 20240601


class ReplayError(ValueError):
    """A replay that cannot write where it is asked to (``setting`` names what to change)."""

    def __init__(self, setting: str, detail: str):
        self.setting = setting
        super().__init__(f"{setting}: {detail}")


# -- the experiment a grid replays --------------------------------------------------------------

def replay_experiment(grid: Grid, draws: int = DEFAULT_DRAWS, seed: int = SEED) -> Experiment:
    """The grid as an experiment: one deployment per row it can simulate, every estimated setting
    calibrated. The table's list is the largest of the rows' (a row's hazard is then scaled
    down, which the table is built for); rows without a size take it, rows without a threshold
    take ``matcher.threshold``'s default."""
    sizes = [r.watchlist_size for r in grid.simulated if r.watchlist_size is not None]
    data = {
        "experiment": {"name": f"replay_{_stem(grid.path)}", "seed": seed, "replications": draws,
                       "description": f"{grid.path.name} replayed deployment by deployment (lfrsim replay)"},
        "programme": {"grid": str(grid.path), "grid_sha256": grid.sha256, "deployments": grid.deployments()},
        "watchlist": {"size": max(sizes) if sizes else REFERENCE_WATCHLIST_SIZE},
    }
    return from_dict(data)


def _stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "_-." else "_" for c in path.stem)
    return stem.lstrip(".-_") or "grid"


# -- the replicates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """Replicates of one replay, computed together in one process."""

    config: str
    replicates: tuple[int, ...]
    seed: int


def run_batch(batch: Batch) -> tuple[tuple[int, ...], dict[str, np.ndarray], np.ndarray]:
    """Each replicate's counts per deployment, shape (replicates, deployments), and its regimes."""
    experiment = Experiment.from_toml(batch.config)
    threshold = experiment.matcher.threshold
    out = {name: [] for name in COUNTS}
    regimes = []
    for r in batch.replicates:
        per = simulate_replicate(experiment, r, [threshold], batch.seed, by_deployment=True)[threshold]
        for name in COUNTS:
            out[name].append(per["deployments"][name])
        regimes.append([x or "" for x in drawn_regimes(experiment, batch.seed, r)])
    return batch.replicates, {k: np.array(v) for k, v in out.items()}, np.array(regimes, dtype=str)


def simulate_grid(experiment: Experiment, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every replicate of the replay: counts (replicates, deployments) and each row's regime.

    Replicate ``r`` depends only on the seed and ``r`` (``sim.seeds``), so the numbers are the same
    for any number of workers."""
    n = experiment.experiment.replications
    seed = experiment.experiment.seed
    config = experiment.to_toml()
    chunks = max(1, min(n, 4 * workers))
    batches = [Batch(config, tuple(range(i, n, chunks)), seed) for i in range(chunks)]
    counts = {name: np.zeros((n, len(experiment.programme.deployments))) for name in COUNTS}
    regimes = np.empty((n, len(experiment.programme.deployments)), dtype=object)
    done = 0

    def store(result) -> None:
        nonlocal done
        reps, values, regime = result
        for name in COUNTS:
            counts[name][list(reps)] = values[name]
        regimes[list(reps)] = regime
        done += len(reps)
        if progress:
            progress(done, n)

    if workers <= 1:
        for b in batches:
            store(run_batch(b))
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker) as pool:
            for result in pool.map(run_batch, batches):
                store(result)
    return counts, regimes.astype(str)


# -- predictive summaries -----------------------------------------------------------------------

def _pvalue(rep: np.ndarray, observed: float) -> float:
    return float(min(1.0, 2.0 * min(np.mean(rep >= observed), np.mean(rep <= observed))))


def predictive(rep: np.ndarray, observed: float | None, v: float) -> dict[str, Any]:
    """Mean, 50% and 95% central intervals of replicates ``rep``; with a record, whether it is
    inside each, its p-value and randomised PIT (``v`` uniform)."""
    q = np.quantile(rep, [0.025, 0.25, 0.75, 0.975])
    out: dict[str, Any] = {"mean": float(rep.mean()), "q2.5": float(q[0]), "q25": float(q[1]),
                           "q75": float(q[2]), "q97.5": float(q[3])}
    if observed is None:
        return {**out, "recorded": None, "in_50": None, "in_95": None, "p_value": None, "pit": None}
    below, tied = float(np.mean(rep < observed)), float(np.mean(rep == observed))
    return {**out, "recorded": float(observed), "in_50": bool(q[1] <= observed <= q[2]),
            "in_95": bool(q[0] <= observed <= q[3]), "p_value": _pvalue(rep, observed),
            "pit": below + v * tied}


def _recorded(row: GridRow, name: str) -> float | None:
    if row.outcomes is None or name not in RECORDED:
        return None
    return float(getattr(row.outcomes, name))


def period_label(row: GridRow) -> str:
    """A row's period of the replay: its threshold and most probable counting regime."""
    return f"{row.threshold:.2f}, {row.regime}" if row.threshold is not None else f"default, {row.regime}"


def summarise_replay(grid: Grid, experiment: Experiment, counts: dict[str, np.ndarray],
                     regimes: np.ndarray) -> dict[str, Any]:
    """Per deployment and per period, each count's predictive beside its record; coverage."""
    rows = grid.simulated
    deployments = experiment.programme.deployments
    v = np.random.default_rng(PIT_SEED).random((len(rows), len(COUNTS)))
    per_deployment = []
    for i, (row, dep) in enumerate(zip(rows, deployments, strict=True)):
        entry: dict[str, Any] = {
            "row": row.row, "date": row.date, "site": row.site, "borough": row.borough,
            "threshold": dep.threshold if dep.threshold is not None else experiment.matcher.threshold,
            "watchlist_size": dep.watchlist_size or experiment.watchlist.size, "recorded_faces": row.faces,
            "duration_hours": row.duration_hours, "regime": row.regime, "p_low_count": row.p_low_count,
            "low_count_share": float(np.mean(regimes[:, i] == "2024 low count")),
            "calibration_period": row.period, "period": period_label(row),
            "has_outcomes": row.outcomes is not None}
        for k, name in enumerate(COUNTS):
            entry[name] = predictive(counts[name][:, i], _recorded(row, name), float(v[i, k]))
        per_deployment.append(entry)
    groups = {"period": [period_label(r) for r in rows]}
    if any(r.period for r in rows):
        groups["calibration_period"] = [r.period for r in rows]
    periods = []
    w = np.random.default_rng(PIT_SEED + 1)
    for kind, labels in groups.items():
        order = ([p for p in PERIODS if p in labels] if kind == "calibration_period"
                 else sorted(set(labels)))
        for label in order:
            sel = np.array([x == label for x in labels])
            known = sel & np.array([r.outcomes is not None for r in rows])
            entry = {"kind": kind, "period": label, "deployments": int(sel.sum()),
                     "with_outcomes": int(known.sum()),
                     "recorded_faces": float(sum(r.faces for r, s in zip(rows, sel, strict=True) if s))}
            for name in COUNTS:
                # a period's record is the total of its deployments with outcomes, set against theirs
                use = known if known.any() and name in RECORDED else sel
                observed = (float(sum(_recorded(r, name) for r, s in zip(rows, use, strict=True) if s))
                            if known.any() and name in RECORDED else None)
                entry[name] = predictive(counts[name][:, use].sum(axis=1), observed, float(w.random()))
            if known.any():
                entry["false_given_alerts"] = _false_given_alerts(counts, known, entry["alerts"]["recorded"],
                                                                  entry["false_alerts"]["recorded"], w)
            periods.append(entry)
    return {"per_deployment": per_deployment, "periods": periods, "coverage": coverage(per_deployment)}


def _false_given_alerts(counts: dict[str, np.ndarray], sel: np.ndarray, alerts: float, false: float,
                        rng: np.random.Generator) -> dict[str, Any]:
    """A period's false alerts given its recorded alerts: binomial in each replicate's simulated
    false share of the period's alerts (the face counts cancel)."""
    a = counts["alerts"][:, sel].sum(axis=1)
    f = counts["false_alerts"][:, sel].sum(axis=1)
    share = np.divide(f, a, out=np.zeros_like(f), where=a > 0)
    rep = rng.binomial(int(alerts), share)
    return predictive(rep.astype(float), false, float(rng.random()))


def coverage(per_deployment: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per recorded count: deployments with a record, shares inside the 50% and 95% intervals,
    shares of PITs inside [0.25, 0.75] and [0.025, 0.975], and deployments with p < 0.05."""
    out = {}
    for name in RECORDED:
        cells = [d[name] for d in per_deployment if d[name]["recorded"] is not None]
        if not cells:
            continue
        pit = np.array([c["pit"] for c in cells])
        out[name] = {"deployments": len(cells),
                     "in_50": float(np.mean([c["in_50"] for c in cells])),
                     "in_95": float(np.mean([c["in_95"] for c in cells])),
                     "pit_in_50": float(np.mean((pit >= 0.25) & (pit <= 0.75))),
                     "pit_in_95": float(np.mean((pit >= 0.025) & (pit <= 0.975))),
                     "p_below_0.05": int(sum(c["p_value"] < 0.05 for c in cells))}
    return out


# -- the whole replay ---------------------------------------------------------------------------

@dataclass
class Replay:
    """A replay's inputs and what came of them."""

    grid: Grid
    experiment: Experiment
    counts: dict[str, np.ndarray]
    regimes: np.ndarray
    result: dict[str, Any]
    seconds: float

    @property
    def forecast(self) -> bool:
        return not self.grid.has_outcomes


def replay(grid: Grid | str | Path, draws: int = DEFAULT_DRAWS, seed: int = SEED, workers: int = 1,
           progress: Callable[[int, int], None] | None = None) -> Replay:
    """Replay a grid (a ``Grid`` or the path of its CSV) over ``draws`` posterior draws.

    ``ConfigError`` for a grid that cannot be read or a replay that cannot fit (``sim.cost``)."""
    grid = grid if isinstance(grid, Grid) else read_grid(grid)
    start = time.perf_counter()
    experiment = replay_experiment(grid, draws, seed)
    check_cost(experiment, workers=workers)      # refuses a grid that cannot fit, before anything runs
    counts, regimes = simulate_grid(experiment, workers, progress)
    result = summarise_replay(grid, experiment, counts, regimes)
    result["about"] = {
        "grid": grid.path.name, "grid_sha256": grid.sha256, "rows": len(grid.rows),
        "simulated": len(grid.simulated),
        "with_outcomes": sum(r.outcomes is not None for r in grid.simulated),
        "draws": draws, "seed": seed, "table_watchlist_size": experiment.watchlist.size,
        "default_threshold": experiment.matcher.threshold,
        "posterior": {k: v for k, v in posterior_identity().items() if k != "draws_file"},
        "calibrated": experiment.crowd.watchlisted_per_passer == CALIBRATED}
    return Replay(grid, experiment, counts, regimes, result, time.perf_counter() - start)


# -- the results folder -------------------------------------------------------------------------

def _csv(header: Sequence[str], lines: list[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in line]
                 for line in lines])
    return buf.getvalue()


STAT_COLUMNS = ("recorded", "mean", "q2.5", "q25", "q75", "q97.5", "p_value", "pit", "in_50", "in_95")
DEPLOYMENT_COLUMNS = ("row", "date", "site", "borough", "threshold", "watchlist_size", "recorded_faces",
                      "duration_hours", "regime", "p_low_count", "calibration_period", "period")


def deployments_csv(result: dict[str, Any]) -> str:
    lines = [[d[c] for c in DEPLOYMENT_COLUMNS] + [name] + [d[name][s] for s in STAT_COLUMNS]
             for d in result["per_deployment"] for name in COUNTS]
    return _csv((*DEPLOYMENT_COLUMNS, "count", *STAT_COLUMNS), lines)


def periods_csv(result: dict[str, Any]) -> str:
    lines = [[p["kind"], p["period"], p["deployments"], p["with_outcomes"], p["recorded_faces"], name]
             + [p[name][s] for s in STAT_COLUMNS]
             for p in result["periods"] for name in (*COUNTS, "false_given_alerts") if name in p]
    return _csv(("kind", "period", "deployments", "with_outcomes", "recorded_faces", "count", *STAT_COLUMNS),
                lines)


def skipped_csv(grid: Grid) -> str:
    return _csv(("row", "date", "site", "reason"), [[r.row, r.date, r.site, r.skipped]
                                                     for r in grid.rows if r.skipped])


def replicates_npz(rp: Replay) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, rows=np.array([r.row for r in rp.grid.simulated]),
                        regimes=rp.regimes.astype("U16"),
                        **{name: rp.counts[name].astype(np.int64) for name in COUNTS})
    return buf.getvalue()


def is_replay_folder(folder: Path) -> bool:
    return (folder / "replay.json").is_file()


def check_out(out: Path) -> None:
    """A replay writes a new folder or replaces an earlier replay's; anything else is refused."""
    if out.exists() and not out.is_dir():
        raise ReplayError("out", f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_replay_folder(out):
        raise ReplayError("out", f"{out} holds files that are not a replay's; choose another folder")


def write_replay(rp: Replay, out: str | Path) -> Path:
    """Write the replay's folder whole: built in a hidden folder beside ``out``, then renamed into
    place (an earlier replay there is replaced only once the new one is complete)."""
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    old = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.old"
    try:
        tmp.mkdir()
        about = {**rp.result["about"], "seconds": round(rp.seconds, 1)}
        doc = {"about": about, "forecast": rp.forecast, "coverage": rp.result["coverage"],
               "periods": rp.result["periods"]}
        atomic_write_text(tmp / "replay.json", json.dumps(doc, indent=2, sort_keys=False) + "\n")
        atomic_write_text(tmp / "deployments.csv", deployments_csv(rp.result))
        atomic_write_text(tmp / "periods.csv", periods_csv(rp.result))
        atomic_write_text(tmp / "skipped.csv", skipped_csv(rp.grid))
        atomic_write_bytes(tmp / "replicates.npz", replicates_npz(rp))
        atomic_write_text(tmp / "summary.md", summary_markdown(rp.result, rp.forecast))
        for name, png in figures(rp.result, rp.forecast).items():
            atomic_write_bytes(tmp / "figures" / name, png)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out


# -- what it reads like -------------------------------------------------------------------------

def _n(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else (f"{v:.1f}" if abs(v) >= 1 else f"{v:.2f}")


def _cell(c: dict[str, Any]) -> str:
    interval = f"{_n(c['mean'])} ({c['q2.5']:,.0f}–{c['q97.5']:,.0f})"
    if c.get("recorded") is None:
        return interval
    flag = "" if c["in_95"] else " **miss**"
    return f"{c['recorded']:.0f} / {interval}, p = {c['p_value']:.2f}{flag}"


def period_table(periods: list[dict[str, Any]], kind: str, forecast: bool) -> list[str]:
    head = "predicted mean (95% interval)" if forecast else "recorded / predicted mean (95% interval), p"
    lines = [f"{head}.", "",
             "| period | deployments | recorded faces | passers | alerts | true alerts | false alerts "
             "| arrests | wrongful stops |", "|---|---:|---:|---|---|---|---|---|---|"]
    for p in periods:
        if p["kind"] != kind:
            continue
        lines.append(f"| {p['period']} | {p['deployments']} | {p['recorded_faces']:,.0f} | "
                     + " | ".join(_cell(p[m]) for m in COUNTS) + " |")
    return lines


def coverage_table(cov: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| count | deployments | inside 50% | inside 95% | PIT in [0.25, 0.75] | PIT in [0.025, 0.975] "
             "| p < 0.05 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, c in cov.items():
        lines.append(f"| {name.replace('_', ' ')} | {c['deployments']} | {c['in_50']:.0%} | {c['in_95']:.0%} "
                     f"| {c['pit_in_50']:.0%} | {c['pit_in_95']:.0%} | {c['p_below_0.05']} |")
    return lines


def summary_markdown(result: dict[str, Any], forecast: bool) -> str:
    """The replay folder's summary.md."""
    a = result["about"]
    lines = [f"# Replay of {a['grid']}" + (" (forecast)" if forecast else ""), "",
             f"{a['simulated']} of {a['rows']} rows simulated ({a['with_outcomes']} with recorded outcomes), "
             f"{a['draws']} posterior draws (one replicate each), seed {a['seed']}; the search table's list "
             f"has {a['table_watchlist_size']:,} entries, each row's hazard scaled to its own list.", ""]
    if not forecast:
        lines += ["## Coverage", "", *coverage_table(result["coverage"]), ""]
    lines += ["## Per period (threshold, counting regime)", "",
              *period_table(result["periods"], "period", forecast), ""]
    if any(p["kind"] == "calibration_period" for p in result["periods"]):
        lines += ["## Per calibration period", "",
                  *period_table(result["periods"], "calibration_period", forecast), ""]
    lines += ["Per deployment: deployments.csv. Figures: figures/."]
    return "\n".join(lines) + "\n"


def figures(result: dict[str, Any], forecast: bool) -> dict[str, bytes]:
    """PNG figures: predicted against recorded per deployment (or the forecast's intervals), and
    the PIT histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["per_deployment"]
    out = {}
    names = ("alerts", "true_alerts", "false_alerts", "arrests")
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.8))
    for ax, name in zip(axes, names, strict=True):
        labels = sorted({r["period"] for r in rows})
        for label in labels:
            part = [r for r in rows if r["period"] == label and (forecast or r[name]["recorded"] is not None)]
            if not part:
                continue
            mean = np.array([r[name]["mean"] for r in part])
            lo = np.array([r[name]["q2.5"] for r in part])
            hi = np.array([r[name]["q97.5"] for r in part])
            y = (np.arange(len(part)) if forecast else np.array([r[name]["recorded"] for r in part]))
            if forecast:
                ax.errorbar(y, mean, yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)], fmt="o", ms=3,
                            alpha=0.6, label=label)
            else:
                # predicted interval (horizontal) at the recorded count; 0 drawn at 0.3 on a log scale
                x = np.maximum(mean, 1e-2)
                ax.errorbar(x, np.maximum(y, 0.3),
                            xerr=[np.maximum(x - np.maximum(lo, 1e-2), 0),
                                  np.maximum(np.maximum(hi, 1e-2) - x, 0)],
                            fmt="o", ms=3, alpha=0.6, elinewidth=0.6, label=label)
        if not forecast:
            top = max(max(r[name]["q97.5"] for r in rows), max((r[name]["recorded"] or 0) for r in rows), 1.0)
            ax.plot([1e-2, top * 2], [1e-2, top * 2], color="grey", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"predicted {name.replace('_', ' ')} (mean, 95% interval)")
            ax.set_ylabel("recorded (0 drawn at 0.3)")
        else:
            ax.set_xlabel("deployment")
            ax.set_ylabel(f"predicted {name.replace('_', ' ')}")
        ax.set_title(name.replace("_", " "))
    axes[0].legend(fontsize=7)
    out["predicted_vs_recorded.png"] = _png(fig, plt)
    if not forecast:
        fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
        for ax, name in zip(axes, names, strict=True):
            pit = [r[name]["pit"] for r in rows if r[name]["pit"] is not None]
            ax.hist(pit, bins=10, range=(0, 1), color="tab:blue", alpha=0.8, edgecolor="white")
            ax.axhline(len(pit) / 10, color="grey", lw=0.8, ls="--")
            ax.set_title(f"PIT: {name.replace('_', ' ')} ({len(pit)} deployments)")
            ax.set_xlabel("randomised PIT (uniform if the model is right)")
        out["pit.png"] = _png(fig, plt)
    return out


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


# -- docs/validation.md -------------------------------------------------------------------------

def posterior_toml(path: Path | None = None) -> dict[str, Any]:
    """The shipped calibration's summary file (or the one at ``path``)."""
    with open(path or shipped.path("posterior.toml"), "rb") as fh:
        return tomllib.load(fh)


def shipped_posterior(draws: int | None = None, directory: Path | None = None) -> Posterior:
    """The shipped draws (``posterior.npz``) as a ``Posterior`` of the shipped account on the fitted
    records, for the calibration's closed-form checks (``sim.checks``); the first ``draws`` draws
    (they are stored in random order) or all of them."""
    toml_path = Path(directory) / "posterior.toml" if directory else shipped.path("posterior.toml")
    doc = posterior_toml(toml_path)
    account = ACCOUNTS[doc["about"]["shipped"]["choice"]]
    with np.load(toml_path.with_name(doc["about"]["draws_file"])) as z:
        samples = {k: np.asarray(z[k], dtype=float) for k in z.files if z[k].dtype.kind == "f"}
    if draws is not None:
        samples = {k: v[:draws] for k, v in samples.items()}
    model = Model(account, Data.from_records(rec.fit_rows()))
    return Posterior(account=account.name, names=model.names, samples=samples, logz=float("nan"),
                     logz_err=float("nan"), diagnostics={}, model=model)


def read_replay(folder: str | Path) -> dict[str, Any]:
    """What a replay folder stores: replay.json, with its per-deployment rows from deployments.csv."""
    folder = Path(folder)
    doc = json.loads((folder / "replay.json").read_text())
    rows: dict[int, dict[str, Any]] = {}
    with open(folder / "deployments.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            entry = rows.setdefault(int(r["row"]), {c: r[c] for c in DEPLOYMENT_COLUMNS})
            entry[r["count"]] = {s: _value(r[s]) for s in STAT_COLUMNS}
    doc["per_deployment"] = list(rows.values())
    return doc


def _value(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    return float(text)


def validation_page(folder: str | Path, doc: dict[str, Any] | None = None) -> str:
    """docs/validation.md from the replay folder of the Met's records and the leave-one-period-out
    refits stored in the calibration's ``posterior.toml``."""
    result = read_replay(folder)
    doc = posterior_toml() if doc is None else doc
    a = result["about"]
    lines = ["# Validation against the Met's records (generated)", "",
             f"Generated by `lfrsim replay sim/data/{a['grid']} --page docs/validation.md` from the replay "
             f"folder `results/replay_met_lfr_deployments_2020_2024/` ({a['draws']} posterior draws of the "
             f"shipped calibration, one replicate each, seed {a['seed']}, {a['seconds']:.0f} s). Every "
             "deployment the Met recorded with its faces and duration is simulated with the simulator "
             "itself, crowd → search → review, at its own ward mix, duration, recorded faces, watchlist "
             "size and threshold: recorded faces become passers through the calibrated counting factor of "
             "the row's counting regime, drawn per replicate from its probability; the watchlisted share "
             "carries its calibration period's estimated effect; the deployments' gamma effects, the "
             "search, the officers' review and arrests are the simulator's. No closed form enters "
             "these numbers (a test checks them against the calibration's closed forms).", "",
             f"{a['simulated']} of {a['rows']} rows are simulated ({a['with_outcomes']} with recorded "
             "alerts; "
             "the others are predicted only); rows without a duration or faces published are left out "
             "(skipped.csv). p = 2 min(P(rep ≥ obs), P(rep ≤ obs)); a **miss** is a record outside the "
             "95% predictive interval. The recorded counts are confirmed and unconfirmed together.", "",
             "## Coverage per deployment", "",
             "Share of deployments whose recorded count lies inside its predictive interval. For small "
             "counts an interval's ends are often tied (0–0, 0–1), so these shares sit at or above the "
             "nominal level by construction; the randomised PIT's shares are exactly nominal when the "
             "model is right.", "", *coverage_table(result["coverage"]), "",
             "![PIT histograms](figures/replay_pit.png)", "",
             "## Posterior-predictive checks per calibration period", "",
             *period_table(result["periods"], "calibration_period", False), "",
             "## Per period (threshold, most probable counting regime)", "",
             *period_table(result["periods"], "period", False), "",
             "## False alerts given the period's alerts", "",
             "Each replicate's simulated false share of the period's alerts, applied to the recorded alerts "
             "(binomial): the face counts cancel.", "",
             "| period | alerts | false: recorded / predicted mean (95%), p |", "|---|---:|---|"]
    for p in result["periods"]:
        if p["kind"] == "calibration_period" and "false_given_alerts" in p:
            lines.append(f"| {p['period']} | {p['alerts']['recorded']:.0f} "
                         f"| {_cell(p['false_given_alerts'])} |")
    lines += ["", "Per 1,000 recorded faces (recorded / predictive mean):", "",
              "| period | alerts | true alerts | false alerts | arrests |", "|---|---|---|---|---|"]
    for p in result["periods"]:
        if p["kind"] == "calibration_period":
            per = [f"{1000 * p[m]['recorded'] / p['recorded_faces']:.3f} / "
                   f"{1000 * p[m]['mean'] / p['recorded_faces']:.3f}" for m in RECORDED]
            lines.append(f"| {p['period']} | " + " | ".join(per) + " |")
    lines += _lopo_section(doc)
    lines += ["", "## Misses, with their numbers and reasons", ""]
    misses = [("in the replay", p["period"], m, p[m]["recorded"], p[m]["mean"], p[m]["q2.5"], p[m]["q97.5"],
               p[m]["p_value"]) for p in result["periods"] if p["kind"] == "calibration_period"
              for m in (*RECORDED, "false_given_alerts") if m in p and p[m]["recorded"] is not None
              and not p[m]["in_95"]]
    for row in doc.get("leave_one_period_out", []):
        checks = [(m, row["check"][m]) for m in ("alerts", "true_alerts", "false_alerts")]
        for m, c in [*checks, ("false_given_alerts", row["false_given_alerts"])]:
            if not c["within"]:
                misses.append(("held out", row["period"], m, c["observed"], c["mean"], *c["interval_95"],
                               c["p_value"]))
    if not misses:
        lines.append("None: every check is inside its 95% interval.")
    for where, period, m, observed, mean, lo, hi, pv in misses:
        lines.append(f"- **{period}, {m.replace('_', ' ')} ({where})**: {observed:.0f} recorded against "
                     f"{_n(mean)} predicted (95% {lo:.0f}–{hi:.0f}, p = {pv:.2f}). "
                     + _reason(where, period, m, observed, mean))
    lines += ["", "![Recorded against predicted, per deployment](figures/replay_predicted_vs_recorded.png)",
              "",
              "## Per deployment", "",
              "| row | date | site | threshold | N | recorded faces | regime | alerts rec/pred (p) "
              "| false rec/pred (p) | arrests rec/pred (p) |",
              "|---:|---|---|---:|---:|---:|---|---|---|---|"]

    def rec_pred(c: dict[str, Any]) -> str:
        if c["recorded"] is None:
            return f"–/{c['mean']:.1f}"
        return f"{c['recorded']:.0f}/{c['mean']:.1f} ({c['p_value']:.2f})"

    for d in result["per_deployment"]:
        lines.append(f"| {d['row']} | {d['date']} | {d['site']} | {float(d['threshold']):.2f} "
                     f"| {float(d['watchlist_size']):,.0f} | {float(d['recorded_faces']):,.0f} "
                     f"| {d['regime']} | {rec_pred(d['alerts'])} | {rec_pred(d['false_alerts'])} "
                     f"| {rec_pred(d['arrests'])} |")
    return "\n".join(lines) + "\n"


def _false_share(period: str) -> tuple[float, list[str]]:
    rows = [r for r in rec.fit_rows() if r.period == period]
    share = sum(r.false_alerts for r in rows) / max(sum(r.alerts for r in rows), 1)
    return share, [f"{r.site} {r.false_alerts}" for r in rows if r.false_alerts]


def _reason(where: str, period: str, metric: str, observed: float, mean: float) -> str:
    """Why a check misses, where the calibration's analysis found a reason (docs/calibration.md);
    the numbers are the records' and the check's."""
    if period == PERIODS[2] and metric in ("false_alerts", "false_given_alerts"):
        share, sites = _false_share(period)
        share_60, _ = _false_share(PERIODS[1])
        return (f"The 0.62 week's false share of alerts is {share:.1%} ({', '.join(sites)}) against "
                f"{share_60:.1%} at 0.60 in the months before, which no monotone score model gives for "
                "similar crowds and lists; the fit does not bend to it. It needs a look at those deployment "
                "grids (a list change, or a classification change).")
    if period == PERIODS[0] and metric in ("alerts", "true_alerts") and where == "held out":
        return (f"Without 2023, 2024's watchlisted share predicts {mean / max(observed, 1):.1f} "
                "times the alerts 2023 recorded; in the full fit 2023's own period effect absorbs this, "
                "held out its hierarchical prior finds the factor surprising.")
    if period == PERIODS[3] and metric in ("false_alerts", "false_given_alerts") and where == "held out":
        return (f"Without the 0.64 records, NPL's tail slope (and the 0.62 week, which pushes it up) expects "
                f"{mean:.0f} false alerts where the records show {observed:.0f}: the headline's low "
                "value rests mainly on the Met's own 0.64 records.")
    return "No reason found yet."


def _lopo_section(doc: dict[str, Any]) -> list[str]:
    """The calibration's leave-one-period-out refits, as ``posterior.toml`` stores them."""
    rows = doc.get("leave_one_period_out", [])
    if not rows:
        return []
    names = ("alerts", "true_alerts", "false_alerts")

    def cell(c: dict[str, Any]) -> str:
        lo, hi = c["interval_95"]
        flag = "" if c["within"] else " **miss**"
        return f"{c['observed']} / {_n(c['mean'])} ({lo:.0f}–{hi:.0f}), p = {c['p_value']:.2f}{flag}"

    lines = ["", f"## Leave-one-period-out (the calibration's refits, {rows[0]['account']})", "",
             "Each period is refitted without it (nested sampling, `lfrsim calibrate`) and then predicted "
             "by the calibration's closed forms; the held-out period's effect is drawn from its "
             "hierarchical prior. Recorded / predictive mean (95%), p.", "",
             "| held out | alerts | true alerts | false alerts | false given alerts "
             "| headline from the refit |",
             "|---|---|---|---|---|---|"]
    inside = 0
    total = 0
    for row in rows:
        cells = [cell(row["check"][m]) for m in names] + [cell(row["false_given_alerts"])]
        inside += sum(row["check"][m]["within"] for m in names) + row["false_given_alerts"]["within"]
        total += len(names) + 1
        h = row["headline_expected_false"]
        lines.append(f"| {row['period']} | " + " | ".join(cells)
                     + f" | {_n(h['median'])} ({_n(h['q2.5'])}–{_n(h['q97.5'])}) |")
    lines += ["", f"Inside their 95% intervals: {inside} of {total} held-out checks."]
    return lines


def write_validation_page(folder: str | Path, page: str | Path) -> None:
    """Write ``page`` from a replay folder, its figures copied to ``figures/`` beside it."""
    folder, page = Path(folder), Path(page)
    text = validation_page(folder)
    for name in ("pit.png", "predicted_vs_recorded.png"):
        if (folder / "figures" / name).exists():
            png = (folder / "figures" / name).read_bytes()
            atomic_write_bytes(page.parent / "figures" / f"replay_{name}", png)
    atomic_write_text(page, text)


def default_out(grid_path: str | Path) -> Path:
    return Path("results") / f"replay_{_stem(Path(grid_path))}"

