"""The pipeline: plan -> executor -> results folder -> report. The only module that chains them.

``run_experiment`` is what ``lfrsim run`` and ``sim.run`` do: check that the run can fit
(``sim.cost``), plan the experiment's units of work (``sim.sweep``), decide what the results
folder allows (``sim.results.check_target``), start an executor, open the results folder only
once nothing can refuse the run any more, compute the units and store each as it finishes, pool
them into metrics and a summary, set the reported figure against the calibration's posterior
(``sim.posterior``), store that beside the metrics, and draw the report (``sim.report``) from what
was stored. Every refusal comes before the first file is touched. Every stage below knows nothing
of the ones above it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import Experiment, load_experiment, with_overrides
from .cost import check_cost
from .metrics import posterior_cell, summary_value
from .posterior import posterior_comparison
from .report import PendingFigures, ready_to_draw, write_report
from .results import FINISHED, Results, ResultsWriter, check_target, metrics_frame, read_results
from .sweep import Executor, check_executor, make_executor, plan

# progress(cell-replicates done, cell-replicates in the run)
ProgressCallback = Callable[[int, int], None]


def _posterior_arguments(results: Results) -> tuple[int, tuple[Any, ...]] | None:
    """The report's cell and ``posterior_comparison``'s arguments there, or None (no report cell)."""
    cell = posterior_cell(results.experiment, results.cells)
    if cell is None or results.posterior is not None:
        return None
    summary = results.summary
    groups = [g for g in summary["group"].unique() if g != "all"]
    nonmated = np.array([summary_value(summary, cell, g, "nonmated_passers")[0] for g in groups])
    faces = summary_value(summary, cell, "all", "faces")[0]
    deployments = summary_value(summary, cell, "all", "deployments")[0]
    experiment = results.experiment
    if results.cells[cell]:
        experiment = experiment.with_values(results.cells[cell])
    return cell, (experiment, nonmated, faces, deployments)


def _attach(results: Results, arguments: tuple[int, tuple[Any, ...]] | None, pending: Any) -> None:
    """Set the reported figure against the calibration's posterior, at the report's cell (if any):
    the comparison computed elsewhere (``pending``), or here."""
    if arguments is None:
        return
    cell, args = arguments
    post = pending.result() if pending is not None else posterior_comparison(*args)
    if post is not None:
        results.posterior = {**post, "cell": cell}


def _report(results: Results, writer: ResultsWriter | None, executor: Executor) -> None:
    """The posterior comparison, the stored tables and the report. On local workers the comparison
    and the figures are their tasks, computed side by side while this process writes the tables
    and draws the figures no worker has started until the comparison is back (figures do not
    show it), then writes the summary and draws whatever figure is still left."""
    arguments = _posterior_arguments(results)
    parallel = executor.parallel
    pending = (executor.submit(posterior_comparison, *arguments[1])
               if parallel and arguments is not None else None)
    # on workers the figures are drawn meanwhile; here, those none has started once the tables are stored
    figures = (PendingFigures(results, functools.partial(executor.submit, prepared=True))
               if writer is not None and parallel else None)
    if writer is not None:
        writer.write_tables(results)
    if figures is not None:             # while a worker computes the comparison waited for next
        figures.draw_here(until=pending.done if pending is not None else None)
    _attach(results, arguments, pending)
    if writer is not None:
        writer.write_posterior(results)
        write_report(writer.out, results, figures)
        writer.complete()


def run_experiment(experiment: Experiment, replications: int | None = None, seed: int | None = None,
                   workers: int = 1, out: str | Path | None = None, scheduler: str | None = None,
                   resume: bool = False, progress: ProgressCallback | None = None,
                   overwrite: bool = False, executor: Executor | None = None) -> Results:
    """Run every unit of an experiment and return its ``Results`` (written to ``out`` if given).

    With ``out``, each unit is written to ``out/parts/`` as it finishes; ``resume`` keeps the
    units already there and runs only the others. A finished folder of the same experiment is
    read back untouched (``Results.reused``); results of another experiment, or an unfinished
    run without ``resume``, are replaced only with ``overwrite`` (see
    ``sim.results.check_target``). ``progress`` is told the cell-replicates done and in total,
    first before anything runs and then after each unit.

    ``executor``: workers already computing this run's units (``sim.sweep.begin_run``), closed
    here whatever happens. Used instead of new ones (with its own workers) only for the very
    experiment it began, overrides applied and none passed here: the run is then not checked
    again. For any other it is closed at once and the run starts its own.

    Raises ``ConfigError`` for a run that cannot fit (``sim.cost``), ``ExecutorError`` for bad
    workers or scheduler, ``ResultsError`` for a folder it must not touch: all before any file
    is written.
    """
    begun, executor = executor, None
    try:
        experiment = with_overrides(experiment, replications, seed)
        if begun is not None and begun.begun_for is not experiment:
            begun.close(cancel=True)    # begun for another experiment (or other overrides)
            begun = None
        if begun is None:               # else checked as it began
            check_executor(workers, scheduler)
            check_cost(experiment, workers=1 if scheduler else workers)
        cells, units = plan(experiment)
        target = check_target(out, experiment, resume, overwrite) if out is not None else None
        if target is not None and target.action == FINISHED:
            stored = read_results(target.out)
            stored.reused = True
            return stored
        executor, begun = begun or make_executor(workers, scheduler), None    # closed below from here
    finally:
        if begun is not None:           # refused, or nothing to run: what it began is dropped
            begun.close(cancel=True)
    cancel = True
    writer = None
    try:
        writer = ResultsWriter(target, experiment, cells, units) if target is not None else None
        # each unit's table, made as it comes back (while the workers compute the others)
        done: dict[str, pd.DataFrame] = writer.completed() if writer is not None else {}
        todo = [u for u in units if u.name not in done]
        total = sum(len(u.cells) for u in units)
        finished = total - sum(len(u.cells) for u in todo)
        if progress:
            progress(finished, total)
        try:
            for unit, rows in executor.run(todo, prepare=ready_to_draw if writer is not None else None):
                done[unit.name] = frame = metrics_frame(rows)
                if writer is not None:
                    writer.write_unit(unit, frame)
                finished += len(unit.cells)
                if progress:
                    progress(finished, total)
            results = Results.from_frames(experiment, cells, [done[u.name] for u in units])
            _report(results, writer, executor)
        except BaseException as exc:
            # never leave a folder that says "running" when nothing runs: its units are kept
            if writer is not None:
                with contextlib.suppress(OSError):
                    writer.interrupted("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            raise
        cancel = False
    finally:
        executor.close(cancel=cancel)
    return results


def run(experiment: Experiment | str | Path, replications: int | None = None, seed: int | None = None,
        workers: int = 1, out: str | Path | None = None, **kwargs: Any) -> Results:
    """Run an experiment (an ``Experiment`` or the path of its TOML file) and return its ``Results``.

    ``replications`` and ``seed`` override the experiment's; ``workers`` > 1 uses local processes;
    ``out`` writes a results folder; ``scheduler``, ``resume``, ``overwrite`` and ``progress`` are
    passed on to ``run_experiment``. ``Results.summary`` is the per cell x group x metric table.
    """
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    return run_experiment(experiment, replications=replications, seed=seed, workers=workers, out=out,
                          **kwargs)


def redraw_report(folder: str | Path) -> Results:
    """Redraw the figures and summary of a finished results folder from what it stores."""
    results = read_results(folder)
    write_report(folder, results)
    return results
