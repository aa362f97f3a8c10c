"""Global sensitivity analysis: which assumptions move the false alerts, and who bears them.

A headline such as "41 false alerts a year, 65% of them on Black passers" rests on settings the
evidence pins only loosely: the watchlist's size, how much more alike two faces of the same
ethnicity score, how the watchlisted share follows the list, the threshold. Picture a mixing desk
with a slider per assumption: a Sobol analysis moves every slider at once, at random over its
range, and splits the spread of each output into the part each slider explains alone (its
first-order index S1) and the part it explains with the others (its total index ST). A slider
whose ST is 0 can be left where it is; one whose S1 is large is the one to argue about.

``[sensitivity]`` names the sliders (dotted settings with a range ``{low, high}``, or
``"posterior"`` for the calibration's marginal draws of a calibrated setting), a method (Sobol
indices by Saltelli's scheme, or the Morris screen) and a number of samples. SALib draws the
design and estimates the indices with bootstrap intervals. Each design point is the experiment
with those settings replaced (``Experiment.with_values``), simulated for replicates 0 to R - 1
under the experiment's own seed: every point meets the same passers (common random numbers), so
a setting that changes nothing changes no output at all. Outputs come from the exact
expectations beside every replicate where they exist (false and true alerts per group, their
Black share, the Black/White false-alert rate ratio, PPV) and from the simulated review where
they do not (wrongful stops, arrests).

Points are computed in batches on the same executors as sweeps (this process, local processes,
or a Dask cluster); each finished batch is kept in ``parts/``, so an interrupted analysis resumes
where it stopped, and the numbers never depend on the executor or the number of workers.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from SALib.analyze import morris as morris_analysis
from SALib.analyze import sobol as sobol_analysis
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from . import draws
from .config import Bounds, ConfigError, Experiment, Sensitivity, from_dict
from .errors import all_paths, plural, shown
from .groups import GROUP_NAMES, group_named
from .plot import SETTING_LABELS, group_label
from .replicate import simulate_replicate
from .results import (
    ResultsError,
    atomic_write_bytes,
    atomic_write_text,
    parquet_bytes,
    source_identity,
)
from .sweep import DaskExecutor, _start_worker, check_executor

# per group ("all" first), the replicate's metrics an output is computed from
RAW_METRICS = ("expected_false_alerts", "expected_true_alerts", "faces", "false_alerts", "true_alerts",
               "wrongful_stops", "arrests")
RAW_GROUPS = ("all", *GROUP_NAMES)
INDEX_COLUMNS = ("output", "group", "parameter", "index", "value", "conf", "ci_low", "ci_high")
BATCH_POINTS = 32
CALIBRATION = "calibration"     # the input "which posterior draw" of ``calibration = true``
ANALYSIS_FILES = ("config.toml", "manifest.json", "indices.csv", "samples.parquet", "summary.md",
                   "explain.csv", "explain_boundary.csv", "explain.json")
KIND = "sensitivity"

ProgressCallback = Callable[[int, int], None]


# -- the design ---------------------------------------------------------------------------------

def base_experiment(experiment: Experiment, extra_thresholds: Sequence[float] = ()) -> Experiment:
    """The experiment every design point starts from: no sweep, no [sensitivity], and a search
    floor at or below every threshold a point may take, so that all points draw the same passers."""
    data = experiment.to_dict()
    data.pop("sensitivity", None)
    data.pop("sweep", None)
    lows = [float(extra) for extra in extra_thresholds]
    sens = experiment.sensitivity
    spec = sens.parameters.get("matcher.threshold") if sens is not None else None
    if isinstance(spec, Bounds):
        lows.append(spec.low)
    if lows:
        data["matcher"]["score_floor"] = min([data["matcher"]["score_floor"], *lows])
    return from_dict(data)


def _value_at(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _settable(base: Experiment, path: str) -> bool:
    """Whether ``path`` names one setting of the experiment (a section's key, or one entry of a
    table of numbers such as ``matcher.scores.probe_ethnicity_shift.black``)."""
    head = path.split(".")[0]
    if head in {"experiment", "sweep", "sensitivity", "comparison"}:
        return False
    if path in all_paths(Experiment):
        return True
    parent, _, leaf = path.rpartition(".")
    found, table = _value_at(base.to_dict(), parent)
    return found and isinstance(table, dict) and leaf in table and not isinstance(table[leaf], dict)


def posterior_values(base: Experiment, path: str) -> np.ndarray | None:
    """The calibration's draws of a ``"calibrated"`` setting (sorted), or None if it is not one.

    Each draw of the shipped posterior is resolved into the experiment's settings as a replicate
    would be (``sim.draws.resolved_values``, the period effect at its mean), and the setting's
    value read back: so the draws are of the setting as the experiment states it.
    """
    if path not in draws.calibrated_settings(base):
        return None
    found = []
    count = draws.draw_count()
    for index in np.unique(np.linspace(0, count - 1, min(count, 2000)).astype(int)):
        ok, value = _value_at(draws.resolved_values(base, draws.draw(int(index)), 0.0), path)
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(float(value))
    return np.sort(np.asarray(found)) if found else None


@dataclass(frozen=True)
class Design:
    """The parameters of an analysis and its points: ``unit`` in SALib's space (a range's own
    units; a posterior setting's quantile in [0, 1]) and ``values`` as the settings take them."""

    names: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    integer: tuple[bool, ...]
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)
    draws: int = 0                  # posterior draws to choose from when CALIBRATION is an input

    def problem(self) -> dict[str, Any]:
        return {"num_vars": len(self.names), "names": list(self.names),
                "bounds": [list(b) for b in self.bounds]}

    def values(self, unit: np.ndarray) -> np.ndarray:
        """Design points as setting values: posterior quantiles looked up, counts rounded."""
        out = np.array(unit, dtype=float, copy=True)
        for j, name in enumerate(self.names):
            if name == CALIBRATION:
                out[:, j] = np.minimum(np.floor(unit[:, j] * self.draws), self.draws - 1)
            if name in self.quantiles:
                out[:, j] = np.quantile(self.quantiles[name], np.clip(unit[:, j], 0.0, 1.0))
            if self.integer[j]:
                out[:, j] = np.round(out[:, j])
        return out

    def point(self, row: np.ndarray) -> tuple[dict[str, Any], int | None]:
        """A design point's settings, and the posterior draw it takes (None: the replicate's own)."""
        values = {name: (int(v) if integer else float(v))
                  for name, v, integer in zip(self.names, row, self.integer, strict=True)}
        draw = values.pop(CALIBRATION, None)
        return values, draw


def check(experiment: Experiment) -> tuple[Experiment, Design]:
    """The base experiment and the design of its ``[sensitivity]``, or ConfigError by field.

    Every parameter must name a numeric setting; both ends of its range must make a valid
    experiment (``watchlist.size = {low = -5, ...}`` is refused at ``.low``); ``"posterior"`` only
    for a setting the experiment takes from the calibration.
    """
    sens = experiment.sensitivity
    if sens is None:
        raise ConfigError(["sensitivity: the experiment has no [sensitivity] section"])
    base = base_experiment(experiment, explain_thresholds(experiment))
    data = base.to_dict()
    problems: list[str] = []
    names, bounds, integer, quantiles = [], [], [], {}
    candidates = [p for p in all_paths(Experiment)
                  if p.split(".")[0] not in {"experiment", "sweep", "sensitivity", "comparison"}]
    for path, spec in sens.parameters.items():
        where = f"sensitivity.parameters.{path}"
        if not _settable(base, path):
            near = difflib.get_close_matches(path, candidates, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"{where}: must name a numeric setting of the experiment, got {path!r}{hint}")
            continue
        found, current = _value_at(data, path)
        if spec == "posterior":
            drawn = posterior_values(base, path)
            if drawn is None or np.ptp(drawn) == 0:
                problems.append(f"{where}: 'posterior' needs a setting the calibration draws, "
                                f"got {path!r} (calibrated here: "
                                f"{', '.join(draws.calibrated_settings(base)) or 'none'})")
                continue
            quantiles[path] = drawn
            bounds.append((0.0, 1.0))
            integer.append(False)
        else:
            is_int = found and isinstance(current, int) and not isinstance(current, bool)
            if found and (isinstance(current, bool) or isinstance(current, str) and current != "calibrated"):
                problems.append(f"{where}: must name a numeric setting, got {path!r} = {shown(current)}")
                continue
            bad = False
            for end in ("low", "high"):
                value = getattr(spec, end)
                value = round(value) if is_int else value
                try:
                    base.with_values({path: value})
                except ConfigError as exc:
                    detail = exc.problems[0].split(": ", 1)[-1]
                    problems.append(f"{where}.{end}: {shown(getattr(spec, end))} is not a valid {path}: "
                                    f"{detail}")
                    bad = True
                    break
            if bad:
                continue
            if is_int and round(spec.high) <= round(spec.low):
                problems.append(f"{where}.high: must be a whole number above low for a count, "
                                f"got {shown(spec.low)} to {shown(spec.high)}")
                continue
            bounds.append((float(spec.low), float(spec.high)))
            integer.append(is_int)
        names.append(path)
    count = 0
    if sens.calibration:
        if not draws.calibrated_settings(base):
            problems.append("sensitivity.calibration: the experiment takes no setting from the calibration "
                            "(none is \"calibrated\"), got true")
        elif sens.method != "sobol":
            problems.append(f"sensitivity.calibration: needs method 'sobol' (a draw's number has no order "
                            f"for Morris' steps), got method {sens.method!r}")
        else:
            names.append(CALIBRATION)
            bounds.append((0.0, 1.0))
            integer.append(True)
            count = draws.draw_count()
    if problems:
        raise ConfigError(problems)
    return base, Design(tuple(names), tuple(bounds), tuple(integer), quantiles, count)


def explain_thresholds(experiment: Experiment) -> list[float]:
    """The lowest threshold the ``[sensitivity.explain]`` grid may take (none if it does not vary it)."""
    sens = experiment.sensitivity
    spec = sens.explain.parameters.get("matcher.threshold") if sens and sens.explain else None
    return [spec.low] if spec is not None else []


def sample(sens: Sensitivity, design: Design) -> np.ndarray:
    """SALib's design in its own space: Saltelli on a scrambled Sobol' sequence, or Morris."""
    if sens.method == "sobol":
        return sobol_sample.sample(design.problem(), sens.samples, calc_second_order=False, scramble=True,
                            seed=sens.seed)
    return morris_sample.sample(design.problem(), sens.samples, num_levels=sens.morris_levels, seed=sens.seed)


def analyse(sens: Sensitivity, design: Design, unit: np.ndarray, outputs: dict[tuple[str, str], np.ndarray]
            ) -> pd.DataFrame:
    """Indices of every output with SALib's bootstrap intervals, as a tidy table.

    Sobol: ``S1`` and ``ST`` (``conf`` is half the ``conf_level`` interval); Morris: ``mu_star``
    (with its interval), ``mu`` and ``sigma``, in the parameters' own units (a posterior
    setting's in quantiles). An output with no spread at all has no indices (NaN).
    """
    rows = []
    problem = design.problem()
    seed = sens.seed + 1    # SALib's Sobol bootstrap takes a seed of 0 for none at all
    for (output, group), y in outputs.items():
        y = np.asarray(y, dtype=float)
        if not np.all(np.isfinite(y)) or np.ptp(y) == 0:
            found: dict[str, Any] = {}
        elif sens.method == "sobol":
            found = sobol_analysis.analyze(problem, y, calc_second_order=False, num_resamples=sens.bootstrap,
                                           conf_level=sens.conf_level, seed=seed)
        else:
            found = morris_analysis.analyze(problem, unit, y, num_resamples=sens.bootstrap,
                                            conf_level=sens.conf_level, num_levels=sens.morris_levels,
                                            seed=seed)
        names = ("S1", "ST") if sens.method == "sobol" else ("mu_star", "mu", "sigma")
        for j, parameter in enumerate(design.names):
            for index in names:
                value = float(found[index][j]) if found else float("nan")
                conf_key = f"{index}_conf"
                conf = float(found[conf_key][j]) if found and conf_key in found else float("nan")
                rows.append({"output": output, "group": group, "parameter": parameter, "index": index,
                             "value": value, "conf": conf, "ci_low": value - conf, "ci_high": value + conf})
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))


def indices(sens: Sensitivity, design: Design,
            evaluate: Callable[[np.ndarray], dict[tuple[str, str], np.ndarray]]) -> pd.DataFrame:
    """Sample, evaluate (setting values in, outputs per point out) and analyse: the whole method
    on any model, the simulator or a test's function with known indices."""
    unit = sample(sens, design)
    return analyse(sens, design, unit, evaluate(design.values(unit)))


# -- outputs of the simulator -------------------------------------------------------------------

def raw_metrics(base: Experiment, values: dict[str, Any], replicates: int, draw: int | None = None
                ) -> np.ndarray:
    """One design point: RAW_METRICS per group (``all`` first), mean over replicates 0..R-1.

    With ``draw``, every replicate takes that posterior draw (its period effect still its own)
    instead of the one its stream picks.
    """
    experiment = base.with_values(values) if values else base
    threshold = float(experiment.matcher.threshold)
    seed = experiment.experiment.seed
    total = np.zeros((len(RAW_GROUPS), len(RAW_METRICS)))
    for r in range(replicates):
        run = experiment
        if draw is not None:
            run = from_dict(draws.resolved_values(experiment, draws.draw(draw), draws.draw_index(seed, r)[1]))
        counts = simulate_replicate(run, r, [threshold])[threshold]["counts"]
        for k, metric in enumerate(RAW_METRICS):
            arr = np.asarray(counts[metric], dtype=float)
            total[0, k] += arr.sum()
            total[1:, k] += arr
    return total / replicates


def _black_white(raw: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    k, faces = RAW_METRICS.index(metric), RAW_METRICS.index("faces")
    rows = {e: [1 + i for i, g in enumerate(GROUP_NAMES) if group_named(g).ethnicity == e]
            for e in ("black", "white")}
    black = raw[:, rows["black"], :].sum(axis=1)
    white = raw[:, rows["white"], :].sum(axis=1)
    return black[:, [k, faces]], white[:, [k, faces]]


def outputs_of(raw: np.ndarray, names: Sequence[str]) -> dict[tuple[str, str], np.ndarray]:
    """The named outputs of points' raw metrics (shape points x groups x metrics), by (output, group)."""
    m = {name: raw[:, :, k] for k, name in enumerate(RAW_METRICS)}
    false, true = m["expected_false_alerts"], m["expected_true_alerts"]
    out: dict[tuple[str, str], np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in names:
            if name == "false_alerts":
                out[(name, "all")] = false[:, 0]
            elif name == "false_alerts_by_group":
                for g, group in enumerate(GROUP_NAMES):
                    out[("false_alerts", group)] = false[:, 1 + g]
            elif name == "black_share":
                black, _ = _black_white(raw, "expected_false_alerts")
                out[(name, "all")] = black[:, 0] / false[:, 0]
            elif name == "black_white_ratio":
                black, white = _black_white(raw, "expected_false_alerts")
                out[(name, "all")] = (black[:, 0] / black[:, 1]) / (white[:, 0] / white[:, 1])
            elif name == "true_alerts":
                out[(name, "all")] = true[:, 0]
            elif name == "ppv":
                out[(name, "all")] = true[:, 0] / (true[:, 0] + false[:, 0])
            else:   # simulated review outcomes
                out[(name, "all")] = m[name][:, 0]
    return out


# -- executors ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """A few design points: the unit of work of an analysis (and one file in ``parts/``)."""

    index: int
    config: str                          # the base experiment as TOML
    points: tuple[tuple[dict[str, Any], int | None], ...]    # settings, posterior draw
    replicates: int

    @property
    def name(self) -> str:
        return f"batch{self.index:05d}"


def run_batch(batch: Batch) -> np.ndarray:
    """Raw metrics of a batch's points, shape (points, groups, metrics). Pure and picklable."""
    base = Experiment.from_toml(batch.config)
    return np.stack([raw_metrics(base, values, batch.replicates, draw) for values, draw in batch.points])


def run_batches(batches: Sequence[Any], compute: Callable[[Any], Any], workers: int = 1,
                scheduler: str | None = None) -> Iterator[tuple[Any, Any]]:
    """``(batch, compute(batch))`` as each finishes, in this process, local processes or on Dask.

    The executors of ``sim.sweep`` with another unit of work: worker processes start as a sweep's
    do (deaf to Ctrl-C, gone with their parent), a scheduler address is checked the same way.
    """
    check_executor(workers, scheduler)
    if scheduler:
        dask = DaskExecutor(scheduler)
        from dask.distributed import as_completed

        futures = {dask.client.submit(compute, b, pure=False, key=f"lfrsim-{b.name}-{id(dask)}"): b
                   for b in batches}
        try:
            for fut in as_completed(list(futures)):
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()
            dask.close()
        return
    if workers == 1 or len(batches) <= 1:
        for b in batches:
            yield b, compute(b)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_start_worker)
    pending = {pool.submit(compute, b): b for b in batches}
    cancel = True
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut.result()
        cancel = False
    finally:
        if cancel:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


# -- the results folder -------------------------------------------------------------------------

@dataclass
class SensitivityResults:
    """An analysis: its indices (tidy), the design points with their outputs, and where it is stored."""

    experiment: Experiment
    indices: pd.DataFrame
    samples: pd.DataFrame
    path: Path | None = None
    reused: bool = False
    seconds: float = 0.0


def _versions() -> dict[str, str]:
    found = {}
    for name in ("lfrsim", "SALib", "numpy", "scipy", "pandas"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _manifest(experiment: Experiment, design: Design, points: int, status: str,
              **extra: Any) -> dict[str, Any]:
    sens = experiment.sensitivity
    assert sens is not None
    return {"kind": KIND, "status": status, "experiment": experiment.experiment.name,
            "seeds": {"root": experiment.experiment.seed, "replicates": list(range(sens.replicates)),
                      "design_and_bootstrap": sens.seed},
            "method": sens.method, "parameters": list(design.names), "points": points,
            "versions": _versions(), **source_identity(), **extra}


def check_folder(out: Path, experiment: Experiment, resume: bool, overwrite: bool) -> str:
    """What an analysis may do with ``out``: ``"fresh"``, ``"resume"`` or ``"finished"``; touches nothing."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"out: {out} exists and is not a folder", "out")
    if not out.exists() or not any(out.iterdir()):
        return "fresh"
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        stored = (out / "config.toml").read_text()
    except (OSError, ValueError):
        manifest, stored = None, None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        if overwrite and isinstance(manifest, dict) and "seeds" in manifest:
            return "fresh"
        raise ResultsError(f"out: {out} is not empty and holds no sensitivity analysis; choose another",
                           "out")
    same = stored == experiment.to_toml()
    if resume:
        if not same:
            raise ResultsError(f"resume: {out}/config.toml differs from this experiment", "resume")
        return "resume"
    if overwrite:
        return "fresh"
    if not same:
        raise ResultsError(f"out: {out} holds another analysis; choose another out, or overwrite=True "
                           "to replace it", "out")
    if manifest.get("status") != "complete":
        raise ResultsError(f"out: {out} holds an unfinished analysis of this experiment; resume=True "
                           "continues it, overwrite=True starts afresh", "out")
    return "finished"


def read_sensitivity(folder: str | Path) -> SensitivityResults:
    """A finished analysis read back from its folder."""
    folder = Path(folder)
    try:
        experiment = Experiment.from_toml((folder / "config.toml").read_text(), base_dir=folder)
        table = pd.read_csv(folder / "indices.csv")
        samples = pd.read_parquet(folder / "samples.parquet")
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{folder}: not a finished sensitivity analysis ({exc})") from None
    return SensitivityResults(experiment, table, samples, folder)


def samples_table(design: Design, values: np.ndarray, raw: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """One row per design point: the settings it took and its outputs."""
    frame = pd.DataFrame(values, columns=list(design.names))
    for j, name in enumerate(design.names):
        if design.integer[j]:
            frame[name] = frame[name].astype("int64")
    frame.insert(0, "point", np.arange(len(values), dtype=np.int64))
    for (output, group), y in outputs_of(raw, names).items():
        frame[output if group == "all" else f"{output}[{group}]"] = y
    return frame


def run_sensitivity(experiment: Experiment, workers: int = 1, out: str | Path | None = None,
                    scheduler: str | None = None, resume: bool = False, overwrite: bool = False,
                    progress: ProgressCallback | None = None) -> SensitivityResults:
    """Run an experiment's ``[sensitivity]`` and return its indices (written to ``out`` if given).

    Every refusal (a bad section, a bad worker count or scheduler, a folder it must not touch)
    comes before the first file is written. With ``out``, finished batches of points are kept in
    ``out/parts/``; ``resume`` runs only the missing ones.
    """
    start = time.perf_counter()
    base, design = check(experiment)
    sens = experiment.sensitivity
    assert sens is not None
    check_executor(workers, scheduler)
    target = Path(out) if out is not None else None
    action = check_folder(target, experiment, resume, overwrite) if target is not None else "fresh"
    if target is not None and action == "finished":
        stored = read_sensitivity(target)
        stored.reused = True
        return stored
    unit = sample(sens, design)
    values = design.values(unit)
    config = base.to_toml()
    points = [design.point(row) for row in values]
    batches = [Batch(i, config, tuple(points[s:s + BATCH_POINTS]), sens.replicates)
               for i, s in enumerate(range(0, len(points), BATCH_POINTS))]
    parts = target / "parts" if target is not None else None
    done: dict[int, np.ndarray] = {}
    if target is not None:
        if action == "fresh":
            for name in (*ANALYSIS_FILES, "parts", "figures"):
                path = target / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target / "config.toml", experiment.to_toml())
        atomic_write_text(target / "manifest.json", json.dumps(
            _manifest(experiment, design, len(points), "running"), indent=2))
        assert parts is not None
        for b in batches:
            path = parts / f"{b.name}.npy"
            if action == "resume" and path.is_file():
                with contextlib.suppress(OSError, ValueError):
                    arr = np.load(path)
                    if arr.shape == (len(b.points), len(RAW_GROUPS), len(RAW_METRICS)):
                        done[b.index] = arr
    todo = [b for b in batches if b.index not in done]
    finished = sum(len(b.points) for b in batches if b.index in done)
    if progress:
        progress(finished, len(points))
    for b, raw in run_batches(todo, run_batch, workers, scheduler):
        done[b.index] = raw
        if parts is not None:
            buf = io.BytesIO()
            np.save(buf, raw)
            atomic_write_bytes(parts / f"{b.name}.npy", buf.getvalue())
        finished += len(b.points)
        if progress:
            progress(finished, len(points))
    raw = np.concatenate([done[b.index] for b in batches])
    table = analyse(sens, design, unit, outputs_of(raw, sens.outputs))
    samples = samples_table(design, values, raw, sens.outputs)
    seconds = time.perf_counter() - start
    results = SensitivityResults(experiment, table, samples, target, seconds=seconds)
    if target is not None:
        atomic_write_text(target / "indices.csv", table.to_csv(index=False, float_format="%.6g"))
        atomic_write_bytes(target / "samples.parquet", parquet_bytes(samples))
        figures = draw_figures(target, results)
        atomic_write_text(target / "summary.md", summary_markdown(results, design, figures))
        shutil.rmtree(parts, ignore_errors=True)
        atomic_write_text(target / "manifest.json", json.dumps(
            _manifest(experiment, design, len(points), "complete", seconds=round(seconds, 1)), indent=2))
    return results


# -- figures and summary ------------------------------------------------------------------------

OUTPUT_LABELS = {"false_alerts": "false alerts", "black_share": "Black share of false alerts",
                 "black_white_ratio": "Black/White false-alert ratio", "true_alerts": "true alerts",
                 "ppv": "PPV", "wrongful_stops": "wrongful stops", "arrests": "arrests"}


PARAMETER_LABELS = {CALIBRATION: "calibration (joint posterior)",
                    "watchlist.female_share": "watchlist female share",
                    "crowd.female_share": "crowd female share",
                    "crowd.faces_per_passer": "recorded faces per passer",
                    "crowd.watchlisted_per_passer": "watchlisted share of passers",
                    "matcher.scores.same_sex_shift": "same-sex impostor shift",
                    "matcher.scores.same_ethnicity_shift": "same-ethnicity impostor shift",
                    "matcher.scores.lamb_share": "lamb share of entries",
                    "review.p_confirm_false": "operator confirms a false alert"}


def parameter_label(path: str) -> str:
    """A setting as a reader names it: 'watchlist entries', 'same-sex impostor shift'."""
    if path in PARAMETER_LABELS:
        return PARAMETER_LABELS[path]
    return SETTING_LABELS.get(path, path.rsplit(".", 1)[-1].replace("_", " "))


def output_label(output: str, group: str = "all") -> str:
    label = OUTPUT_LABELS.get(output, output.replace("_", " "))
    return label if group == "all" else f"{label}: {group_label(group)}"


def tornado(ax: Any, table: pd.DataFrame, output: str, group: str = "all") -> Any:
    """Sobol indices of one output as horizontal bars: total (ST) behind first-order (S1), with
    their bootstrap intervals, parameters ordered by ST (Morris: mu_star)."""
    part = table[(table["output"] == output) & (table["group"] == group)]
    wide = part.pivot(index="parameter", columns="index", values="value")
    conf = part.pivot(index="parameter", columns="index", values="conf")
    main = "ST" if "ST" in wide else "mu_star"
    order = wide[main].fillna(0).sort_values().index
    y = np.arange(len(order))
    if main == "ST":
        ax.barh(y + 0.18, wide.loc[order, "ST"], height=0.36, xerr=conf.loc[order, "ST"], color="#9ecae1",
                label="total (ST)", capsize=2)
        ax.barh(y - 0.18, wide.loc[order, "S1"], height=0.36, xerr=conf.loc[order, "S1"], color="#3182bd",
                label="first order (S1)", capsize=2)
        lowest = (wide.loc[order, "S1"] - conf.loc[order, "S1"]).min()
        ax.set_xlim(min(0.0, float(lowest) if np.isfinite(lowest) else 0.0) - 0.02, 1.05)
        ax.set_xlabel("share of the output's variance")
    else:
        ax.barh(y, wide.loc[order, "mu_star"], xerr=conf.loc[order, "mu_star"], color="#3182bd",
                label="mu* (mean |elementary effect|)", capsize=2)
        ax.set_xlabel("mu* (output units per parameter unit)")
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(y, [parameter_label(p) for p in order])
    ax.set_title(output_label(output, group))
    return ax


def draw_figures(folder: Path, results: SensitivityResults) -> list[str]:
    """``figures/indices.png`` (one tornado per output, everyone) and, with false alerts per group,
    ``figures/indices_by_group.png``: drawn from the indices table alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = results.indices
    panels = list(dict.fromkeys(table.loc[table["group"] == "all", "output"]))
    if not panels:
        return []
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    height = 0.8 + (0.3 * len(results.indices["parameter"].unique()) + 0.8) * rows
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, height), squeeze=False, layout="constrained")
    for ax, output in zip(axes.flat, panels, strict=False):
        tornado(ax, table, output)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    sens = results.experiment.sensitivity
    fig.suptitle(f"{results.experiment.experiment.name}: what moves each output "
                 f"({sens.method if sens else ''}, {len(results.samples):,} points)")
    _save(fig, folder / "figures" / "indices.png")
    drawn = ["indices.png"]
    groups = [g for g in dict.fromkeys(table["group"]) if g != "all"]
    if groups:
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(groups), 1.2 + 0.4 * table["parameter"].nunique()),
                               layout="constrained")
        by_group(ax, table, "false_alerts")
        _save(fig, folder / "figures" / "indices_by_group.png")
        drawn.append("indices_by_group.png")
    return drawn


def by_group(ax: Any, table: pd.DataFrame, output: str = "false_alerts", index: str = "ST") -> Any:
    """One output's index for every passer group (columns) and setting (rows), as a heat map."""
    part = table[(table["output"] == output) & (table["group"] != "all") & (table["index"] == index)]
    wide = part.pivot(index="parameter", columns="group", values="value")
    wide = wide.loc[list(dict.fromkeys(part["parameter"])), list(dict.fromkeys(part["group"]))]
    image = ax.imshow(wide.to_numpy(float), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), v in np.ndenumerate(wide.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 else "black")
    ax.set_xticks(range(wide.shape[1]), [group_label(g) for g in wide.columns], rotation=45, ha="right")
    ax.set_yticks(range(wide.shape[0]), [parameter_label(p) for p in wide.index])
    ax.figure.colorbar(image, ax=ax, label=f"{index} ({'total' if index == 'ST' else index} index)")
    ax.set_title(f"{output_label(output)} by passer group: {index}")
    return ax


def _save(fig: Any, path: Path) -> None:
    """A figure as PNG, atomically, with no timestamp in it (redrawing gives the same bytes)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def summary_markdown(results: SensitivityResults, design: Design, figures: list[str]) -> str:
    """summary.md: the design, then each output's indices for everyone, largest total first."""
    exp = results.experiment
    sens = exp.sensitivity
    assert sens is not None
    lines = [f"# {exp.experiment.name}: sensitivity analysis", "",
             f"{sens.method.capitalize()} over {len(design.names)} settings, {len(results.samples):,} design "
             f"points, {plural(sens.replicates, 'replicate')} each "
             f"(seed {exp.experiment.seed}, common random "
             f"numbers); intervals: SALib's bootstrap, {sens.conf_level:.0%}.", "",
             "| setting | range |", "|---|---|"]
    for j, name in enumerate(design.names):
        spec = sens.parameters.get(name)
        rng = (f"one of the calibration's {design.draws:,} joint posterior draws" if name == CALIBRATION
               else "posterior (calibration's marginal)" if spec == "posterior"
               else f"{shown(design.bounds[j][0])} to {shown(design.bounds[j][1])}")
        lines.append(f"| `{name}` | {rng} |")
    table = results.indices
    main = "ST" if sens.method == "sobol" else "mu_star"
    other = "S1" if sens.method == "sobol" else "sigma"
    for output in dict.fromkeys(table["output"]):
        part = table[(table["output"] == output) & (table["group"] == "all")]
        if part.empty:
            continue
        column = results.samples[output]
        lines += ["", f"## {output_label(output)}", "",
                  f"Across the design: median {column.median():.4g}, 5–95% {column.quantile(0.05):.4g}–"
                  f"{column.quantile(0.95):.4g}.", "",
                  f"| setting | {main} (±) | {other} (±) |", "|---|---|---|"]
        wide = part.pivot(index="parameter", columns="index", values="value")
        conf = part.pivot(index="parameter", columns="index", values="conf")
        for p in wide[main].fillna(-1).sort_values(ascending=False).index:
            spread = f" ± {conf.loc[p, other]:.3f}" if other == "S1" else ""
            lines.append(f"| `{p}` | {wide.loc[p, main]:.3f} ± {conf.loc[p, main]:.3f} | "
                         f"{wide.loc[p, other]:.3f}{spread} |")
    lines += ["", *[f"![{f}](figures/{f})" for f in figures], ""]
    return "\n".join(lines)
