"""The ``lfrsim`` command: run, validate, report, reproduce and calibrate experiments.

Bad input (a broken file, a bad field, a results folder that is not one) ends with one line per
problem and exit status 2, never a traceback; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors also exit 2, in one line
        self.print_usage(sys.stderr)
        print(f"lfrsim: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lfrsim", description="Simulate police Live Facial Recognition deployments.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run an experiment and write a results folder")
    run.add_argument("experiment", type=Path)
    run.add_argument("--out", type=Path, help="results folder (default results/NAME)")
    run.add_argument("--replications", type=int)
    run.add_argument("--seed", type=int)
    run.add_argument("--workers", type=int, default=None, help="local processes (default: CPUs)")
    run.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask distributed scheduler")
    run.add_argument("--resume", action="store_true", help="run only the units missing from --out")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")

    val = sub.add_parser("validate", help="check an experiment file")
    val.add_argument("experiment", type=Path)

    rep = sub.add_parser("report", help="redraw figures and summary from a results folder")
    rep.add_argument("results", type=Path)

    rpr = sub.add_parser("reproduce", help="re-run a results folder and compare every metric")
    rpr.add_argument("results", type=Path)
    rpr.add_argument("--workers", type=int, default=None)

    cal = sub.add_parser("calibrate", help="fit the score model to the published operating points")
    cal.add_argument("--out", type=Path, default=Path("score_parameters.toml"))
    return p


def _fail(problems: list[str] | str) -> int:
    for line in [problems] if isinstance(problems, str) else problems:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_USAGE


def _workers(requested: int | None) -> int:
    if requested is not None:
        return requested
    return max(1, min(os.cpu_count() or 1, 4))


def _cmd_validate(args) -> int:
    from .config import ConfigError, load_experiment

    try:
        experiment = load_experiment(args.experiment)
    except ConfigError as exc:
        return _fail(exc.problems)
    from .sweep import expand_cells

    cells = len(expand_cells(experiment.sweep))
    print(f"{args.experiment}: valid ({cells} cell{'s' * (cells != 1)}, "
          f"{experiment.experiment.replications} replications, seed {experiment.experiment.seed})")
    return EXIT_OK


def _print_headline(results, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from .metrics import compare

    console = Console()
    exp = results.experiment
    summary = results.summary
    table = Table(title=f"{exp.experiment.name}: cell 0, mean per programme over "
                        f"{int(summary['replicates'].max())} replicates")
    cols = ("faces", "alerts", "true_alerts", "false_alerts", "expected_false_alerts", "arrests",
            "wrongful_stops")
    table.add_column("group")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    table.add_column("false per 3M faces (95% CI)", justify="right")
    for group in ["all", *[g for g in summary["group"].unique() if g != "all"]]:
        part = summary[(summary["cell"] == 0) & (summary["group"] == group)].set_index("metric")
        vals = [f"{part.loc[c, 'estimate']:,.1f}" if c in part.index else "–" for c in cols]
        r = part.loc["false_alert_rate"]
        rate = f"{r['estimate'] * 3e6:.1f} ({r['ci_low'] * 3e6:.1f}–{r['ci_high'] * 3e6:.1f})"
        table.add_row(group, *vals, rate)
    console.print(table)
    if exp.comparison is not None:
        c = compare(results.metrics, 0, exp.comparison)
        console.print(
            f"Reported: {exp.comparison.false_alerts} false alerts in {exp.comparison.faces:,} faces. "
            f"Simulated: {c['simulated_per_reported_faces']:.1f} per {exp.comparison.faces:,} faces "
            f"(95% CI {c['simulated_ci_low']:.1f}–{c['simulated_ci_high']:.1f}); exact expectation "
            f"{c['expected_per_reported_faces']:.1f}; consistency p = {c['p_value_two_sided']:.3g} "
            f"(two-sided Poisson); implied threshold {c['implied_threshold']:.3f}.")
    faces = float(results.metrics.query("group == 'all' and metric == 'faces'")["value"].sum())
    console.print(f"{faces:,.0f} faces simulated in {elapsed:.1f} s ({faces / max(elapsed, 1e-9):,.0f} faces/s).")


def _cmd_run(args) -> int:
    from .config import ConfigError, load_experiment
    from .results import ResultsError
    from .sweep import plan, run_experiment

    try:
        experiment = load_experiment(args.experiment)
    except ConfigError as exc:
        return _fail(exc.problems)
    if args.replications is not None and not 1 <= args.replications <= 100_000:
        return _fail(f"--replications: must be between 1 and 100000, got {args.replications}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        return _fail(f"--seed: must be between 0 and 2**63 - 1, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers: must be >= 1, got {args.workers}")
    out = args.out or Path("results") / experiment.experiment.name
    start = time.perf_counter()
    progress_bar = None
    if not args.quiet:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        progress_bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=True)
    try:
        if progress_bar is not None:
            with progress_bar:
                task = progress_bar.add_task("units", total=None)

                def progress(done: int, total: int) -> None:
                    progress_bar.update(task, completed=done, total=total)

                results = run_experiment(experiment, args.replications, args.seed, _workers(args.workers),
                                         out, args.scheduler, args.resume, progress)
        else:
            results = run_experiment(experiment, args.replications, args.seed, _workers(args.workers), out,
                                     args.scheduler, args.resume)
    except (ResultsError, ConfigError) as exc:
        return _fail(exc.problems if isinstance(exc, ConfigError) else str(exc))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished units are kept in {out}; continue with --resume", file=sys.stderr)
        return 130
    except OSError as exc:
        return _fail(f"out: cannot write results to {out}: {exc.strerror or exc}")
    elapsed = time.perf_counter() - start
    del plan
    if not args.quiet:
        _print_headline(results, elapsed)
    print(f"results: {out}")
    return EXIT_OK


def _cmd_report(args) -> int:
    from .report import write_report
    from .results import ResultsError, read_results

    try:
        results = read_results(args.results)
        write_report(args.results, results)
    except ResultsError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.results}: cannot write figures: {exc.strerror or exc}")
    print(f"report: {args.results / 'summary.md'}")
    return EXIT_OK


def _cmd_reproduce(args) -> int:
    from .results import ResultsError, differences, read_results
    from .sweep import run_experiment

    try:
        stored = read_results(args.results)
    except ResultsError as exc:
        return _fail(str(exc))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = run_experiment(stored.experiment, workers=_workers(args.workers), out=None)
        del tmp
    diff = differences(stored.metrics, fresh.metrics)
    if diff.empty:
        print(f"reproduced: all {len(stored.metrics):,} metrics identical ({args.results})")
        return EXIT_OK
    print(f"NOT reproduced: {len(diff):,} of {len(stored.metrics):,} metrics differ")
    print(diff.head(30).to_string(index=False))
    return EXIT_FAIL


def _cmd_calibrate(args) -> int:
    from .calibrate import fit, write_parameters

    params, diagnostics = fit()
    try:
        write_parameters(params, diagnostics, args.out, f"lfrsim calibrate --out {args.out}")
    except OSError as exc:
        return _fail(f"--out: cannot write {args.out}: {exc.strerror or exc}")
    for t in diagnostics["targets"]:
        print(f"{t['name']:>18}: observed {t['observed']:g}, predicted {t['predicted']:.3g} "
              f"(95% {t['interval_95'][0]:g}–{t['interval_95'][1]:g})")
    print(f"log-likelihood {diagnostics['log_likelihood']:.3f}; parameters: {args.out}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": _cmd_run, "validate": _cmd_validate, "report": _cmd_report,
               "reproduce": _cmd_reproduce, "calibrate": _cmd_calibrate}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
