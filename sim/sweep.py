"""Sweeps: cells x replicates, spread over an executor, results independent of how.

A sweep is a grid over dotted settings (``matcher.threshold``, ``watchlist.size``, ...). Cells that
differ only in the threshold share one search: their passers are drawn once and compared with
every threshold (common random numbers), so a 100-threshold sweep costs about one run for the
search stage. The unit of work is one replicate of one such group of cells; its random streams
depend only on the root seed and the replicate, so any executor, any number of workers and any
order of completion give the same numbers.

Executors: serial (in process), local processes (the default), or an existing Dask distributed
cluster (``--scheduler tcp://HOST:PORT``). Nothing needs a server to run.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Experiment, Range, Sweep

THRESHOLD = "matcher.threshold"


def expand_cells(sweep: Sweep) -> list[dict[str, Any]]:
    """The sweep's cells in a fixed order: each a {dotted path: value} dict."""
    if not sweep.parameters:
        return [{}]
    paths = list(sweep.parameters)
    values = [v.values() if isinstance(v, Range) else list(v) for v in sweep.parameters.values()]
    if sweep.mode == "zip":
        lengths = {len(v) for v in values}
        if len(lengths) > 1:
            raise ValueError(f"mode 'zip' needs lists of equal length, got lengths {sorted(lengths)}")
        combos: Iterable[tuple[Any, ...]] = zip(*values, strict=True)
    else:
        combos = itertools.product(*values)
    return [dict(zip(paths, combo, strict=True)) for combo in combos]


@dataclass(frozen=True)
class Unit:
    """One replicate of a group of cells that differ only in threshold."""

    group: int
    replicate: int
    seed: int
    cells: tuple[int, ...]
    thresholds: tuple[float, ...]
    config: str                      # the group's resolved experiment as TOML
    params: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        return f"group{self.group:05d}-rep{self.replicate:05d}"


def plan(experiment: Experiment) -> tuple[list[dict[str, Any]], list[Unit]]:
    """The cells of an experiment and the units of work that compute them."""
    cells = expand_cells(experiment.sweep)
    groups: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        key = repr(sorted((k, v) for k, v in cell.items() if k != THRESHOLD))
        groups.setdefault(key, []).append(i)
    units = []
    meta = experiment.experiment
    for g, members in enumerate(groups.values()):
        rest = {k: v for k, v in cells[members[0]].items() if k != THRESHOLD}
        group_experiment = experiment.with_values(rest) if rest or experiment.sweep.parameters else experiment
        thresholds = tuple(float(cells[i].get(THRESHOLD, experiment.matcher.threshold)) for i in members)
        floor_ok = min(thresholds) >= group_experiment.matcher.score_floor
        assert floor_ok, "validated: thresholds are at or above the search floor"
        for r in range(meta.replications):
            units.append(Unit(group=g, replicate=r, seed=meta.seed, cells=tuple(members),
                              thresholds=thresholds, config=group_experiment.to_toml(),
                              params=tuple(cells[i] for i in members)))
    return cells, units


def run_unit(unit: Unit) -> list[dict[str, Any]]:
    """Compute one unit: tidy rows (cell, replicate, group, metric, value). Pure and picklable."""
    from .metrics import unit_rows
    from .run import simulate_replicate

    experiment = Experiment.from_toml(unit.config)
    results = simulate_replicate(experiment, unit.replicate, sorted(set(unit.thresholds)), seed=unit.seed)
    rows: list[dict[str, Any]] = []
    for cell, threshold in zip(unit.cells, unit.thresholds, strict=True):
        rows.extend(unit_rows(cell, unit.replicate, results[threshold], experiment))
    return rows


# -- executors -------------------------------------------------------------------------------

class Executor:
    """Runs units and yields (unit, rows) as each completes."""

    def run(self, units: list[Unit]) -> Iterator[tuple[Unit, list[dict[str, Any]]]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SerialExecutor(Executor):
    def run(self, units):
        for unit in units:
            yield unit, run_unit(unit)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessExecutor(Executor):
    """Local worker processes; Ctrl-C stops the parent, which cancels what has not started."""

    def __init__(self, workers: int):
        self.pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)

    def run(self, units):
        pending = {self.pool.submit(run_unit, u): u for u in units}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    unit = pending.pop(fut)
                    yield unit, fut.result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Units as tasks on an existing Dask distributed cluster."""

    def __init__(self, address: str):
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise RuntimeError("--scheduler needs Dask: pip install 'lfrsim[dask]'") from exc
        self.client = Client(address, timeout="20s")

    def run(self, units):
        from dask.distributed import as_completed

        futures = {self.client.submit(run_unit, u, pure=False, key=f"lfrsim-{u.name}-{id(self)}"): u
                   for u in units}
        try:
            for fut in as_completed(list(futures)):
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self):
        self.client.close()


def make_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    if scheduler:
        return DaskExecutor(scheduler)
    if workers <= 1:
        return SerialExecutor()
    return ProcessExecutor(workers)


def run_experiment(experiment: Experiment, replications: int | None = None, seed: int | None = None,
                   workers: int = 1, out=None, scheduler: str | None = None, resume: bool = False,
                   progress: Callable[[int, int], None] | None = None):
    """Run every unit of an experiment and return its ``Results`` (written to ``out`` if given)."""
    from .results import Results, ResultsWriter

    update: dict[str, Any] = {}
    if replications is not None:
        update["replications"] = int(replications)
    if seed is not None:
        update["seed"] = int(seed)
    if update:
        meta = experiment.experiment.model_copy(update=update)
        experiment = Experiment.model_validate({**experiment.to_dict(), "experiment": meta.model_dump(),
                                                "matcher": {**experiment.to_dict()["matcher"],
                                                            "parameters": "inline"}})
    cells, units = plan(experiment)
    writer = ResultsWriter(out, experiment, cells, resume=resume) if out is not None else None
    done_rows: dict[str, list[dict[str, Any]]] = {}
    if writer is not None:
        done_rows.update(writer.completed())
    todo = [u for u in units if u.name not in done_rows]
    executor = make_executor(workers, scheduler)
    finished = len(units) - len(todo)
    if progress:
        progress(finished, len(units))
    try:
        for unit, rows in executor.run(todo):
            done_rows[unit.name] = rows
            if writer is not None:
                writer.write_unit(unit.name, rows)
            finished += 1
            if progress:
                progress(finished, len(units))
    finally:
        executor.close()
    ordered = [row for u in units for row in done_rows[u.name]]
    results = Results.from_rows(experiment, cells, ordered)
    if writer is not None:
        writer.finish(results)
    return results


def seeds_for(experiment: Experiment) -> dict[str, Any]:
    """The seed layout, for the manifest."""
    return {"root": experiment.experiment.seed, "replications": experiment.experiment.replications,
            "streams": "SeedSequence(root, spawn_key=(replicate, deployment, stage)); stages: "
                       "0 programme, 1 watchlist, 2 crowd and search, 3 review",
            "numpy": np.__version__}
