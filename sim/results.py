"""Results folders: write them atomically, resume them, read them back, reproduce them.

One run, one folder::

    config.toml       the fully resolved experiment (every default, the root seed)
    manifest.json     versions, git commit, seeds, start and end, units done
    metrics.parquet   one row per cell x replicate x group x metric
    summary.csv       per cell x group x metric: estimate and 95% interval
    summary.md        the readable summary, with the comparison against the reported figure
    posterior.json    the reported figure against the calibration's posterior (when it applies)
    figures/          PNG figures (``lfrsim report`` redraws them from metrics.parquet)
    parts/            finished units while the run is going (removed at the end)

Every file is written to a temporary name and renamed into place, so a crash or kill -9 never
leaves a half-written file; ``--resume`` finds the finished units in ``parts/`` and runs the rest.
The final ``metrics.parquet`` is assembled in the planned order, so an interrupted and resumed run
ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .config import ConfigError, Experiment
from .metrics import summarise
from .seeds import seed_layout

RESULT_FILES = ("config.toml", "manifest.json", "metrics.parquet", "summary.csv", "summary.md",
                "posterior.json")
ROW_COLUMNS = ("cell", "replicate", "group", "metric", "value")
DEPENDENCIES = ("numpy", "scipy", "simpy", "pydantic", "pandas", "pyarrow", "matplotlib", "rich")


class ResultsError(ValueError):
    """A results folder that cannot be read, written or resumed.

    ``setting`` names what to change where that is a run's setting (``"out"``, ``"resume"``);
    the message then starts with it.
    """

    def __init__(self, message: str, setting: str | None = None):
        self.setting = setting
        super().__init__(message)


class UnitOfWork(Protocol):
    """What the writer needs to know of a unit of work (``sim.sweep.Unit`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def cells(self) -> tuple[int, ...]: ...
    @property
    def replicate(self) -> int: ...


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` so that it is either absent, the old file, or complete: never half-written.

    The bytes go to a hidden temporary beside it (``.NAME.PID.RANDOM.tmp``, permissions as for
    any new file), are flushed to disk, and the temporary is renamed over ``path`` in one step.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


@dataclass
class Results:
    """An experiment's metrics, summary and (once written) folder."""

    experiment: Experiment
    cells: list[dict[str, Any]]
    metrics: pd.DataFrame
    summary: pd.DataFrame
    path: Path | None = None
    posterior: dict[str, Any] | None = None   # the reported figure with calibration uncertainty

    @classmethod
    def from_rows(cls, experiment: Experiment, cells: list[dict[str, Any]],
                  rows: list[dict[str, Any]]) -> Results:
        metrics = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
        param_cols = sorted({k for c in cells for k in c})
        for i, col in enumerate(param_cols):
            metrics.insert(1 + i, col, [cells[c].get(col) for c in metrics["cell"]])
        metrics["cell"] = metrics["cell"].astype("int64")
        metrics["replicate"] = metrics["replicate"].astype("int64")
        metrics["value"] = metrics["value"].astype("float64")
        return cls(experiment, cells, metrics, summarise(metrics, cells))

    def headline(self, cell: int = 0) -> pd.DataFrame:
        """The headline table of one cell: core metrics per group."""
        keep = ["faces", "alerts", "true_alerts", "false_alerts", "expected_false_alerts", "arrests",
                "wrongful_stops", "lost_alerts"]
        part = self.summary[(self.summary["cell"] == cell) & self.summary["metric"].isin(keep)]
        return part.pivot(index="group", columns="metric", values="estimate")[keep]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("lfrsim", *DEPENDENCIES):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def is_results_folder(folder: Path) -> bool:
    """Whether ``folder`` was written by ``lfrsim run`` (its config and manifest are there)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (folder / "config.toml").is_file() and isinstance(manifest, dict) and "seeds" in manifest


def _writable(folder: Path) -> bool:
    """Whether ``folder`` (or, if it does not exist yet, its nearest existing parent) takes files."""
    here = folder
    while not here.exists() and here != here.parent:
        here = here.parent
    return here.is_dir() and os.access(here, os.W_OK | os.X_OK)


def _remove_temporaries(folder: Path) -> None:
    """Drop half-written temporaries a killed run left behind (never a finished file)."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class ResultsWriter:
    """Writes a results folder as a run goes: config and manifest first, units as they finish.

    The folder is checked before anything in it changes: a non-empty folder that is not a
    results folder, or one that cannot be written, is refused with one line naming it.
    """

    def __init__(self, out: str | Path, experiment: Experiment, cells: list[dict[str, Any]],
                 units: Sequence[UnitOfWork], resume: bool):
        self.out = Path(out)
        self.experiment = experiment
        self.cells = cells
        self.units = units
        self.parts = self.out / "parts"
        config = experiment.to_toml()
        previous = self._check_target(config, resume)
        now = _now()
        self.manifest: dict[str, Any] = {
            "lfrsim": _versions().get("lfrsim"), "versions": _versions(), "git_commit": _git_commit(),
            "platform": platform.platform(),
            "seeds": seed_layout(experiment.experiment.seed, experiment.experiment.replications),
            "started": now, "resumed": [], "finished": None, "status": "running",
            "cells": len(cells), "cells_done": 0, "units": len(units), "units_done": 0,
        }
        if previous is not None:
            self.manifest["started"] = previous.get("started", now)
            self.manifest["resumed"] = [*previous.get("resumed", []), now]
        self._done: set[str] = set()
        try:
            if not resume or previous is None:
                self._clear()
            self.parts.mkdir(parents=True, exist_ok=True)
            _remove_temporaries(self.out)
            _remove_temporaries(self.parts)
            atomic_write_text(self.out / "config.toml", config)
            self._write_manifest()
        except OSError as exc:
            # config and manifest come as a pair: without both, a re-run or --resume would refuse
            # the folder, so a fresh start that cannot write them leaves nothing behind
            if previous is None:
                with contextlib.suppress(OSError):
                    self._clear()
            raise ResultsError(f"out: cannot write to {self.out}: {exc.strerror or exc}", "out") from None

    def _check_target(self, config: str, resume: bool) -> dict[str, Any] | None:
        """Refuse a target we must not touch; on resume, return the stored manifest (None: fresh)."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise ResultsError(f"out: {out} exists and is not a folder", "out")
        if not _writable(out):
            raise ResultsError(f"out: cannot write to {out}: permission denied", "out")
        empty = not out.exists() or not any(out.iterdir())
        if empty:
            return None
        if not is_results_folder(out):
            raise ResultsError(f"out: {out} is not empty and is not a results folder; choose another", "out")
        if not resume:
            return None
        if (out / "config.toml").read_text() != config:
            raise ResultsError(f"resume: {out}/config.toml differs from this experiment; "
                               "resume with the same file, seed and replications", "resume")
        return json.loads((out / "manifest.json").read_text())

    def _clear(self) -> None:
        """Start afresh in a results folder: remove what an earlier run wrote, nothing else."""
        for name in (*RESULT_FILES, "parts", "figures"):
            target = self.out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        units_per_cell: dict[int, int] = {}
        for unit in self.units:
            if unit.name in self._done:
                for cell in unit.cells:
                    units_per_cell[cell] = units_per_cell.get(cell, 0) + 1
        reps = self.experiment.experiment.replications
        self.manifest["units_done"] = len(self._done)
        self.manifest["cells_done"] = sum(1 for n in units_per_cell.values() if n == reps)
        atomic_write_text(self.out / "manifest.json", json.dumps(self.manifest, indent=2) + "\n")

    def completed(self) -> dict[str, list[dict[str, Any]]]:
        """Rows of the units already done: from ``parts/``, or from a finished ``metrics.parquet``."""
        done: dict[str, list[dict[str, Any]]] = {}
        names = {u.name for u in self.units}
        if self.manifest["resumed"] and (self.out / "metrics.parquet").is_file():
            done.update(self._from_metrics())
        for part in sorted(self.parts.glob("*.parquet")):
            if part.stem not in names:
                continue
            try:
                frame = pd.read_parquet(part)
            except Exception:  # noqa: BLE001 - an unreadable part is simply redone
                continue
            done[part.stem] = frame[list(ROW_COLUMNS)].to_dict("records")
        self._done = set(done)
        self._write_manifest()
        return done

    def _from_metrics(self) -> dict[str, list[dict[str, Any]]]:
        try:
            metrics = pd.read_parquet(self.out / "metrics.parquet")[list(ROW_COLUMNS)]
        except Exception:  # noqa: BLE001 - then every unit is redone
            return {}
        owner = {(c, u.replicate): u.name for u in self.units for c in u.cells}
        names = [owner.get((int(c), int(r)), "") for c, r in zip(metrics["cell"], metrics["replicate"],
                                                                 strict=True)]
        done = {}
        for name, frame in metrics.groupby(pd.Series(names, index=metrics.index), sort=False):
            if name:
                done[str(name)] = frame.to_dict("records")
        return done

    def write_unit(self, unit: UnitOfWork, rows: list[dict[str, Any]]) -> None:
        """Store one finished unit atomically, then count it in the manifest."""
        frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
        atomic_write_bytes(self.parts / f"{unit.name}.parquet", parquet_bytes(frame))
        self._done.add(unit.name)
        self._write_manifest()

    def interrupted(self) -> None:
        """Record that the run stopped early; its finished units stay in ``parts/``."""
        self.manifest["status"] = "interrupted"
        self._write_manifest()

    def write_outputs(self, results: Results) -> None:
        """Write metrics, summary and the posterior comparison (the report is drawn from them)."""
        out = self.out
        atomic_write_bytes(out / "metrics.parquet", parquet_bytes(results.metrics))
        atomic_write_text(out / "summary.csv", results.summary.to_csv(index=False))
        posterior = out / "posterior.json"
        if results.posterior is not None:
            atomic_write_text(posterior, json.dumps(results.posterior, indent=2) + "\n")
        else:
            posterior.unlink(missing_ok=True)
        results.path = out

    def complete(self) -> None:
        """Mark the run complete and drop ``parts/`` (metrics now hold every unit)."""
        self._done = {u.name for u in self.units}
        self.manifest.update(status="complete", finished=_now())
        self._write_manifest()
        shutil.rmtree(self.parts, ignore_errors=True)


def read_results(folder: str | Path) -> Results:
    """Load a finished results folder (config, metrics, summary)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: not a folder")
    missing = [f for f in ("config.toml", "metrics.parquet") if not (folder / f).is_file()]
    if missing:
        interrupted = (folder / "parts").is_dir()
        hint = "; an interrupted run: finish it with lfrsim run ... --resume" if interrupted else ""
        raise ResultsError(f"{folder}: not a finished results folder (missing {', '.join(missing)}){hint}")
    try:
        experiment = Experiment.from_toml((folder / "config.toml").read_text(), base_dir=folder)
    except ConfigError as exc:
        raise ResultsError(f"{folder}/config.toml: {exc.problems[0]}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{folder}/config.toml: cannot read: {exc}") from None
    try:
        metrics = pd.read_parquet(folder / "metrics.parquet")
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet is the same user error
        raise ResultsError(f"{folder}/metrics.parquet: cannot read: {exc}") from None
    absent = [c for c in ROW_COLUMNS if c not in metrics.columns]
    if absent:
        raise ResultsError(f"{folder}/metrics.parquet: not lfrsim metrics (no column {absent[0]!r})")
    cells = experiment.sweep.cells()
    try:
        summary = summarise(metrics, cells)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ResultsError(f"{folder}/metrics.parquet: does not match config.toml ({exc})") from None
    posterior = None
    if (folder / "posterior.json").is_file():
        try:
            posterior = json.loads((folder / "posterior.json").read_text())
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{folder}/posterior.json: cannot read: {exc}") from None
    return Results(experiment, cells, metrics, summary, folder, posterior)


def differences(stored: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """The metrics whose value differs between two tables, or that only one has (empty: identical).

    Columns: cell, replicate, group, metric, stored, fresh (NaN where a table lacks the row).
    Values are compared exactly; NaN equals NaN (a rate with no denominator in both).
    """
    keys = ["cell", "replicate", "group", "metric"]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[keys].astype(str)
        out["value"] = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
        out["_row"] = out.groupby(keys).cumcount()  # duplicates pair up in order, never multiply
        out["_order"] = np.arange(len(out))
        return out

    merged = keyed(stored).merge(keyed(fresh), on=[*keys, "_row"], how="outer",
                                 suffixes=("_stored", "_fresh"), indicator=True)
    # the stored table's order, then rows only the fresh one has, in its order
    merged = merged.sort_values(["_order_stored", "_order_fresh"], na_position="last", kind="stable")
    a = merged["value_stored"].to_numpy(dtype=float)
    b = merged["value_fresh"].to_numpy(dtype=float)
    same = (merged["_merge"] == "both").to_numpy() & ((a == b) | (np.isnan(a) & np.isnan(b)))
    out = merged.loc[~same, keys].copy()
    out["stored"] = a[~same]
    out["fresh"] = b[~same]
    return out.reset_index(drop=True)
