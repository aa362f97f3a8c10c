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

A folder holding results is never replaced without being asked (``check_target``): a run of the
experiment it already holds, finished, leaves it untouched and reads it back; anything else there
needs ``resume`` (the same experiment, unfinished) or ``overwrite``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .config import ConfigError, Experiment
from .draws import calibrated_settings, posterior_identity
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


def metrics_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A unit's rows as a table of the metrics' columns: made as each unit comes back, so that
    pooling a run is joining tables, not building one from every row at the end."""
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


@dataclass
class Results:
    """An experiment's metrics, summary and (once written) folder."""

    experiment: Experiment
    cells: list[dict[str, Any]]
    metrics: pd.DataFrame
    summary: pd.DataFrame
    path: Path | None = None
    posterior: dict[str, Any] | None = None   # the reported figure with calibration uncertainty
    reused: bool = False    # read back from a finished folder of the same experiment: nothing ran

    @classmethod
    def from_frames(cls, experiment: Experiment, cells: list[dict[str, Any]],
                    frames: list[pd.DataFrame]) -> Results:
        """The results of units' ``metrics_frame``s, in the order given (the plan's)."""
        metrics = pd.concat(frames, ignore_index=True) if len(frames) != 1 else frames[0].copy()
        param_cols = sorted({k for c in cells for k in c})
        cell = metrics["cell"].tolist()     # each row's cell once, not a Series iterated per column
        for i, col in enumerate(param_cols):
            per_cell = [c.get(col) for c in cells]
            metrics.insert(1 + i, col, [per_cell[c] for c in cell])
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


PACKAGE = Path(__file__).resolve().parent
SOURCE_SUFFIXES = (".py", ".csv", ".toml", ".md", ".npz")   # the package's code and its shipped data


def source_sha256(package: Path = PACKAGE) -> str:
    """SHA-256 over the package's code and data files (relative name, then bytes, in name order).

    It names the code that ran whether or not it came from a git checkout: an installed wheel,
    an edited file and a clean commit each give their own value.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES
                   and "__pycache__" not in p.relative_to(package).parts)
    for path in files:
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _is_this_project(top: Path) -> bool:
    try:
        project = tomllib.loads((top / "pyproject.toml").read_text()).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(project, dict) and project.get("name") == "lfrsim"


def source_identity(package: Path = PACKAGE) -> dict[str, Any]:
    """What code ran: ``git_commit`` and ``git_dirty`` (None outside this project's own git work
    tree) and ``source_sha256`` (always).

    Git is asked only when the package is the ``sim/`` at the top level of a work tree whose
    pyproject.toml is lfrsim's own: a copy installed inside another repository (or inside a
    virtual environment in lfrsim's checkout) must not record that repository's commit.
    ``git_dirty`` is whether ``sim/`` or ``pyproject.toml`` differ from the commit, untracked
    files included.
    """
    identity: dict[str, Any] = {"git_commit": None, "git_dirty": None,
                                "source_sha256": source_sha256(package)}
    top = _git(["rev-parse", "--show-toplevel"], package)
    if top is None or not top.strip():
        return identity
    root = Path(top.strip()).resolve()
    if not _is_this_project(root) or package.resolve().parent != root:
        return identity
    commit = _git(["rev-parse", "HEAD"], root)
    status = _git(["status", "--porcelain", "--", package.name, "pyproject.toml"], root)
    if commit and commit.strip() and status is not None:
        identity.update(git_commit=commit.strip(), git_dirty=bool(status.strip()))
    return identity


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


def _nearest_existing(folder: Path) -> Path:
    here = folder
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def _remove_temporaries(folder: Path) -> None:
    """Drop half-written temporaries a killed run left behind (never a finished file)."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


FRESH, RESUME, FINISHED = "fresh", "resume", "finished"


@dataclass(frozen=True)
class Target:
    """What a run may do with its results folder, decided before anything in it changes.

    ``action`` is ``"fresh"`` (start afresh: the folder is missing, empty, or to be overwritten),
    ``"resume"`` (keep its finished units; ``previous`` is its manifest) or ``"finished"`` (it
    already holds this experiment's finished results: nothing to run, nothing to write).
    """

    out: Path
    action: str
    previous: dict[str, Any] | None = None


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def _first_difference(stored: dict[str, Any], here: dict[str, Any]) -> str:
    """The first setting that differs, as 'path: A there, B here'."""
    a, b = _flat(stored), _flat(here)
    for key in [*b, *(k for k in a if k not in b)]:
        if a.get(key, "(unset)") != b.get(key, "(unset)"):
            def shown(v: Any) -> str:
                text = repr(v)
                return text if len(text) <= 40 else text[:37] + "..."
            return f"{key}: {shown(a.get(key, '(unset)'))} there, {shown(b.get(key, '(unset)'))} here"
    return "the same settings"


def check_target(out: str | Path, experiment: Experiment, resume: bool = False,
                 overwrite: bool = False) -> Target:
    """Decide what a run may do with ``out``, or refuse in one line; touches nothing.

    The policy, in order:

    * ``out`` must be a folder or not yet exist, somewhere that can be written;
    * missing or empty: a fresh run;
    * not empty and not a results folder (no lfrsim ``config.toml`` and ``manifest.json``):
      refused whatever the flags, since it holds someone else's files;
    * ``resume``: the stored config must be this experiment's, byte for byte; its finished
      units are kept;
    * ``overwrite``: the results files, ``parts/`` and ``figures/`` are replaced, nothing else;
    * otherwise, a finished folder of the same resolved experiment (its ``config.toml`` read by
      today's schema equals this run's) is left untouched and read back; an unfinished one, or
      one of another experiment, is refused with the setting that would let the run go on.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ResultsError(f"out: {out} exists and is not a folder", "out")
    here = _nearest_existing(out)
    if not here.is_dir():
        raise ResultsError(f"out: cannot create {out}: {here} is a file, not a directory", "out")
    if not os.access(here, os.W_OK | os.X_OK):
        raise ResultsError(f"out: cannot write to {out}: permission denied", "out")
    if not out.exists() or not any(out.iterdir()):
        return Target(out, FRESH)
    if not is_results_folder(out):
        raise ResultsError(f"out: {out} is not empty and is not a results folder; choose another", "out")
    config = experiment.to_toml()
    if resume:
        if (out / "config.toml").read_text(errors="replace") != config:
            raise ResultsError(f"resume: {out}/config.toml differs from this experiment; "
                               "resume with the same file, seed and replications", "resume")
        return Target(out, RESUME, json.loads((out / "manifest.json").read_text()))
    if overwrite:
        return Target(out, FRESH)
    manifest = json.loads((out / "manifest.json").read_text())
    try:
        stored = Experiment.from_toml((out / "config.toml").read_text(), base_dir=out)
    except (ConfigError, OSError, UnicodeDecodeError):
        stored = None
    if stored is None or stored.to_toml() != config:
        why = _first_difference(stored.to_dict(), experiment.to_dict()) if stored is not None \
            else "its config.toml no longer reads as an experiment"
        raise ResultsError(f"out: {out} holds the results of another experiment ({why}); "
                           "choose another out, or overwrite=True to replace them", "out")
    finished = manifest.get("status") == "complete" and (out / "metrics.parquet").is_file()
    if not finished:
        done, units = manifest.get("units_done", "?"), manifest.get("units", "?")
        raise ResultsError(f"out: {out} holds an unfinished run of this experiment ({done} of {units} "
                           "units done); resume=True continues it, overwrite=True starts afresh", "out")
    return Target(out, FINISHED)


class ResultsWriter:
    """Writes a results folder as a run goes: config and manifest first, units as they finish.

    ``target`` is what ``check_target`` allowed, or a folder, which is then checked here with
    ``resume`` and ``overwrite``. A folder that already holds these finished results is refused:
    there is nothing to write (``sim.pipeline`` reads it back instead).
    """

    def __init__(self, target: Target | str | Path, experiment: Experiment, cells: list[dict[str, Any]],
                 units: Sequence[UnitOfWork], resume: bool = False, overwrite: bool = False):
        if not isinstance(target, Target):
            target = check_target(target, experiment, resume, overwrite)
        if target.action not in (FRESH, RESUME):
            raise ResultsError(f"out: {target.out} already holds these finished results; "
                               "overwrite=True writes them again", "out")
        self.out = target.out
        self.experiment = experiment
        self.cells = cells
        self.units = units
        self.parts = self.out / "parts"
        config = experiment.to_toml()
        previous = target.previous
        now = _now()
        versions = _versions()      # ~10 ms: each name is looked up along the whole sys.path
        self.manifest: dict[str, Any] = {
            "lfrsim": versions.get("lfrsim"), "versions": versions, **source_identity(),
            "platform": platform.platform(),
            "seeds": seed_layout(experiment.experiment.seed, experiment.experiment.replications),
            "posterior": {**posterior_identity(), "calibrated_settings": calibrated_settings(experiment)},
            "started": now, "resumed": [], "finished": None, "status": "running",
            "cells": len(cells), "cells_done": 0, "units": len(units), "units_done": 0,
        }
        if previous is not None:
            self.manifest["started"] = previous.get("started", now)
            self.manifest["resumed"] = [*previous.get("resumed", []), now]
        self._done: set[str] = set()
        try:
            if previous is None:
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

    def completed(self) -> dict[str, pd.DataFrame]:
        """The ``metrics_frame`` of each unit already done: from ``parts/``, or from a finished
        ``metrics.parquet``."""
        done: dict[str, pd.DataFrame] = {}
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
            done[part.stem] = frame[list(ROW_COLUMNS)]
        self._done = set(done)
        self._write_manifest()
        return done

    def _from_metrics(self) -> dict[str, pd.DataFrame]:
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
                done[str(name)] = frame
        return done

    def write_unit(self, unit: UnitOfWork, frame: pd.DataFrame) -> None:
        """Store one finished unit (its ``metrics_frame``) atomically, then count it in the manifest."""
        atomic_write_bytes(self.parts / f"{unit.name}.parquet", parquet_bytes(frame))
        self._done.add(unit.name)
        self._write_manifest()

    def interrupted(self, status: str = "interrupted") -> None:
        """Record that the run stopped early (``"interrupted"``, or ``"failed"``); its finished
        units stay in ``parts/`` for ``--resume``."""
        self.manifest["status"] = status
        self._write_manifest()

    def write_outputs(self, results: Results) -> None:
        """Write metrics, summary and the posterior comparison (the report is drawn from them)."""
        self.write_tables(results)
        self.write_posterior(results)

    def write_tables(self, results: Results) -> None:
        """Write metrics and summary."""
        atomic_write_bytes(self.out / "metrics.parquet", parquet_bytes(results.metrics))
        atomic_write_text(self.out / "summary.csv", results.summary.to_csv(index=False))

    def write_posterior(self, results: Results) -> None:
        """Write the posterior comparison (or remove a stale one)."""
        out = self.out
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
