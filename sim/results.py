"""Results folders: write them atomically, resume them, read them back, reproduce them.

One run, one folder::

    config.toml       the fully resolved experiment (every default, the root seed)
    manifest.json     versions, git commit, seeds, start and end, units done
    metrics.parquet   one row per cell x replicate x group x metric
    summary.csv       per cell x group x metric: estimate and 95% interval
    summary.md        the readable summary, with the comparison against the reported figure
    figures/          PNG figures (``lfrsim report`` redraws them from metrics.parquet)
    parts/            finished units while the run is going (removed at the end)

Every file is written to a temporary name and renamed into place, so a crash or kill -9 never
leaves a half-written file; ``--resume`` finds the finished units in ``parts/`` and runs the rest.
The final ``metrics.parquet`` is assembled in the planned order, so an interrupted and resumed run
ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from .config import ConfigError, Experiment
from .metrics import summarise

RESULT_FILES = ("config.toml", "manifest.json", "metrics.parquet", "summary.csv", "summary.md")
DEPENDENCIES = ("numpy", "scipy", "simpy", "pydantic", "pandas", "pyarrow", "matplotlib", "rich")


class ResultsError(ValueError):
    """A results folder that cannot be read, written or resumed."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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

    @classmethod
    def from_rows(cls, experiment: Experiment, cells: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Results:
        metrics = pd.DataFrame(rows, columns=["cell", "replicate", "group", "metric", "value"])
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


class ResultsWriter:
    """Writes a results folder as a run goes: config and manifest first, units as they finish."""

    def __init__(self, out: str | Path, experiment: Experiment, cells: list[dict[str, Any]], resume: bool):
        from .sweep import seeds_for

        self.out = Path(out)
        self.experiment = experiment
        self.cells = cells
        config = experiment.to_toml()
        self._check_target(config, resume)
        self.parts = self.out / "parts"
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.toml", config)
        except OSError as exc:
            raise ResultsError(f"out: cannot write to {self.out}: {exc.strerror or exc}") from None
        self.manifest: dict[str, Any] = {
            "lfrsim": _versions().get("lfrsim"), "versions": _versions(), "git_commit": _git_commit(),
            "platform": platform.platform(), "seeds": seeds_for(experiment),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "finished": None,
            "status": "running", "cells": len(cells), "units_done": 0,
        }
        self._write_manifest()

    def _check_target(self, config: str, resume: bool) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise ResultsError(f"out: {out} exists and is not a folder")
        if resume:
            stored = out / "config.toml"
            if not stored.exists():
                raise ResultsError(f"--resume: {out} holds no config.toml to resume")
            if stored.read_text() != config:
                raise ResultsError(f"--resume: {out}/config.toml differs from this experiment; "
                                   "resume with the same file, seed and replications")
            return
        if out.exists() and any(out.iterdir()):
            if not (out / "config.toml").exists():
                raise ResultsError(f"out: {out} is not empty and is not a results folder; choose another --out")
            for name in (*RESULT_FILES, "parts", "figures"):
                target = out / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        atomic_write_text(self.out / "manifest.json", json.dumps(self.manifest, indent=2) + "\n")

    def completed(self) -> dict[str, list[dict[str, Any]]]:
        done: dict[str, list[dict[str, Any]]] = {}
        for part in sorted(self.parts.glob("*.parquet")):
            try:
                frame = pd.read_parquet(part)
            except Exception:  # noqa: BLE001 - an unreadable part is redone
                continue
            done[part.stem] = frame.to_dict("records")
        return done

    def write_unit(self, name: str, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(rows, columns=["cell", "replicate", "group", "metric", "value"])
        atomic_write_bytes(self.parts / f"{name}.parquet", parquet_bytes(frame))
        self.manifest["units_done"] += 1

    def finish(self, results: Results) -> None:
        from .report import write_report

        out = self.out
        atomic_write_bytes(out / "metrics.parquet", parquet_bytes(results.metrics))
        atomic_write_text(out / "summary.csv", results.summary.to_csv(index=False))
        results.path = out
        write_report(out, results)
        self.manifest.update(status="complete", finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                             units_done=int(results.metrics[["cell", "replicate"]].drop_duplicates().shape[0]))
        self._write_manifest()
        shutil.rmtree(self.parts, ignore_errors=True)


def read_results(folder: str | Path) -> Results:
    """Load a finished results folder (config, metrics, summary)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: not a folder")
    missing = [f for f in ("config.toml", "metrics.parquet") if not (folder / f).is_file()]
    if missing:
        raise ResultsError(f"{folder}: not a finished results folder (missing {', '.join(missing)})")
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
    from .sweep import expand_cells

    cells = expand_cells(experiment.sweep)
    return Results(experiment, cells, metrics, summarise(metrics, cells), folder)


def differences(stored: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """Rows whose value differs between two metrics tables (empty when identical)."""
    keys = ["cell", "replicate", "group", "metric"]
    if list(stored.columns) != list(fresh.columns) or len(stored) != len(fresh):
        merged = stored.merge(fresh, on=keys, how="outer", suffixes=("_stored", "_fresh"), indicator=True)
        return merged[merged["_merge"] != "both"][keys + ["_merge"]]
    a = stored["value"].to_numpy()
    b = fresh["value"].to_numpy()
    same_keys = (stored[keys].to_numpy() == fresh[keys].to_numpy()).all(axis=1)
    same = ((a == b) | (pd.isna(a) & pd.isna(b))) & same_keys
    out = stored.loc[~same, keys].copy()
    out["stored"] = a[~same]
    out["fresh"] = b[~same]
    return out
