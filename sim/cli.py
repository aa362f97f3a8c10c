"""The ``lfrsim`` command: run, validate, report, reproduce, calibrate, replay and examples.

Bad input (a broken file, a bad field, a results folder that is not one) ends with one line per
problem and exit status 2, never a traceback; nothing half-written is left behind. The library
names the setting a problem is about (``out``, ``resume``, ``scheduler``, ``workers``); this module
alone knows them as command-line flags.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

# Before numpy loads: the simulator's matrix products are small and its parallelism is worker
# processes, so OpenBLAS's thread pool would only cost every command ~50-70 ms of CPU at start-up.
# A user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from . import data as shipped  # noqa: E402
from .config import ConfigError, load_experiment, with_overrides  # noqa: E402
from .cost import check_cost  # noqa: E402
from .errors import plural  # noqa: E402
from .groups import GROUP_NAMES  # noqa: E402

# Each subcommand imports the modules it runs when it runs (``_cmd_*``), so `lfrsim validate`
# does not load the simulation's results, figures, calibration or sensitivity analysis (pandas,
# matplotlib, simpy, arviz, SALib...). The architecture test counts these imports as edges.
# rich, too, is imported by what prints with it.
if TYPE_CHECKING:
    from .results import ResultsError
    from .sweep import ExecutorError

# the library's name for a setting -> the flag that sets it
FLAGS = {"out": "--out", "resume": "--resume", "scheduler": "--scheduler", "workers": "--workers",
         "overwrite": "--overwrite", "to": "--to"}
MAX_DEFAULT_WORKERS = 4

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors also exit 2, in one line
        self.print_usage(sys.stderr)
        print(f"lfrsim: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lfrsim", description="Simulate police Live Facial Recognition deployments.")
    p.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run an experiment and write a results folder")
    run.add_argument("experiment", type=Path)
    run.add_argument("--out", type=Path, help="results folder (default results/NAME)")
    run.add_argument("--replications", type=int,
                     help="replicates of every sweep cell (default: experiment.replications)")
    run.add_argument("--seed", type=int, help="root seed (default: experiment.seed)")
    run.add_argument("--workers", type=int, default=None,
                     help=f"local processes (default: the CPUs, at most {MAX_DEFAULT_WORKERS})")
    run.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask distributed scheduler")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="run only the units missing from --out")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the results --out holds (needed when they are of another experiment)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")

    val = sub.add_parser("validate", help="check an experiment file")
    val.add_argument("experiment", type=Path)

    rep = sub.add_parser("report", help="redraw figures and summary from a results folder")
    rep.add_argument("results", type=Path)

    rpr = sub.add_parser("reproduce", help="re-run a results folder and compare every metric")
    rpr.add_argument("results", type=Path)
    rpr.add_argument("--workers", type=int, default=None,
                     help=f"local processes (default: the CPUs, at most {MAX_DEFAULT_WORKERS})")
    rpr.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask distributed scheduler")
    rpr.add_argument("--quiet", action="store_true", help="no progress bar")

    cal = sub.add_parser("calibrate",
                         help="the joint Bayesian calibration: write posterior.toml and posterior.npz")
    cal.add_argument("--out", type=Path, default=None,
                     help="folder for posterior.toml and posterior.npz (default: the package's sim/data/)")
    cal.add_argument("--reduced", action="store_true",
                     help="a few seconds' sampler settings, for tests (not a posterior to ship)")
    cal.add_argument("--workers", type=int, default=2, help="worker processes (default 2; results do not "
                                                             "depend on it)")
    cal.add_argument("--seed", type=int, default=None,
                     help="root seed (default: the shipped calibration's, sim.calibrate.SEED)")

    rpl = sub.add_parser("replay",
                         help="replay a deployment grid with the simulator, deployment by deployment")
    rpl.add_argument("grid", help="the grid, a CSV in the column format of the Met's records, or "
                                  "lfrsim:NAME for one shipped with the package "
                                  "(lfrsim:met_lfr_deployments_2020_2024.csv)")
    rpl.add_argument("--draws", type=int, default=None,
                     help="posterior draws, one replicate each (default: sim.replay.DEFAULT_DRAWS, 100)")
    rpl.add_argument("--out", type=Path, help="results folder (default results/replay_GRID)")
    rpl.add_argument("--seed", type=int, default=None, help="root seed (default: sim.replay.SEED)")
    rpl.add_argument("--workers", type=int, default=None,
                     help=f"local processes (default: the CPUs, at most {MAX_DEFAULT_WORKERS})")
    rpl.add_argument("--page", type=Path, help="also write the validation page from the replay "
                                                "(docs/validation.md; its figures go to figures/ beside it)")
    rpl.add_argument("--quiet", action="store_true", help="no progress bar")

    sen = sub.add_parser("sensitivity", help="Sobol or Morris indices of an experiment's [sensitivity]")
    sen.add_argument("experiment", type=Path)
    sen.add_argument("--out", type=Path, help="results folder (default results/NAME)")
    sen.add_argument("--workers", type=int, default=None,
                     help=f"local processes (default: the CPUs, at most {MAX_DEFAULT_WORKERS})")
    sen.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask distributed scheduler")
    sen_again = sen.add_mutually_exclusive_group()
    sen_again.add_argument("--resume", action="store_true",
                           help="run only the design points missing from --out")
    sen_again.add_argument("--overwrite", action="store_true", help="replace the analysis --out holds")
    sen.add_argument("--quiet", action="store_true", help="no progress bar or table")

    exa = sub.add_parser("examples", help="list the example experiments, or copy one to run or edit")
    exa.add_argument("name", nargs="?", help="the example to copy (without NAME: list them)")
    exa.add_argument("--to", type=Path, default=None,
                     help="folder to copy it into (default: the current folder; made if missing)")
    exa.add_argument("--force", action="store_true", help="replace a file of that name in --to")

    why = sub.add_parser("explain", help="where a reported figure is plausible: [sensitivity.explain]")
    why.add_argument("experiment", type=Path)
    why.add_argument("--out", type=Path, help="folder for explain.csv and its figure (default results/NAME)")
    why.add_argument("--workers", type=int, default=None,
                     help=f"local processes (default: the CPUs, at most {MAX_DEFAULT_WORKERS})")
    why.add_argument("--scheduler", help="tcp://HOST:PORT of a Dask distributed scheduler")
    why.add_argument("--quiet", action="store_true", help="no table")
    return p


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("lfrsim")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.exit(message=f"lfrsim {_version()}\n")


def _fail(problems: list[str] | str) -> int:
    for line in [problems] if isinstance(problems, str) else problems:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_USAGE


def _as_flags(exc: ResultsError | ExecutorError) -> str:
    """A library error, its setting named as the flag that sets it."""
    message = str(exc)
    setting = getattr(exc, "setting", None)
    if setting in FLAGS and message.startswith(f"{setting}: "):
        message = FLAGS[setting] + message[len(setting):]
    for name in ("resume", "overwrite"):   # "resume=True continues it" -> "--resume continues it"
        message = message.replace(f"{name}=True", FLAGS[name])
    return message


def _problems_as_flags(problems: list[str], args) -> list[str]:
    """Cost problems that a flag of this command set: named by the flag."""
    flagged = {"workers": "--workers"}
    if getattr(args, "replications", None) is not None:
        flagged["experiment.replications"] = "--replications"
    out = []
    for line in problems:
        setting = line.split(": ", 1)[0]
        out.append(flagged[setting] + line[len(setting):] if setting in flagged else line)
    return out


def _workers(requested: int | None) -> int:
    if requested is not None:
        return requested
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def _cmd_validate(args) -> int:
    try:
        experiment = load_experiment(args.experiment)
        cost = check_cost(experiment)
        if experiment.sensitivity is not None:
            _load_analysis(args, "sensitivity")
    except ConfigError as exc:
        return _fail(exc.problems)
    cells = experiment.sweep.size()
    reps = experiment.experiment.replications
    print(f"{args.experiment}: valid ({plural(cells, 'cell')}, "
          f"{plural(reps, 'replication')}, seed {experiment.experiment.seed})")
    print(cost.summary())
    return EXIT_OK


HEADLINE = (("faces", "faces"), ("alerts", "alerts"), ("true_alerts", "true"), ("false_alerts", "false"),
            ("arrests", "arrests"), ("wrongful_stops", "wrongful\nstops"))


def _short_group(name: str) -> str:
    """'female_black' -> 'F Black' (the legend under the table says so); a declared group as named."""
    if name == "all" or name not in GROUP_NAMES:
        return name
    sex, _, ethnicity = name.partition("_")
    return f"{sex[:1].upper()} {ethnicity.capitalize()}" if ethnicity else name


def _print_headline(results, elapsed: float) -> None:
    """The run's headline in the terminal, in the words and numbers of its summary.md (sim.report)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from .metrics import compare, summary_value
    from .report import number, p_equals

    console = Console()
    exp = results.experiment
    summary = results.summary
    reps = int(summary["replicates"].max())
    params = results.cells[0] if results.cells and results.cells[0] else {}
    where = ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in params.items())
    table = Table(title=f"{exp.experiment.name}{f' ({where})' if where else ''}", box=box.SIMPLE_HEAD,
                  pad_edge=False, title_justify="left", padding=(0, 1, 0, 0))
    table.add_column("group", no_wrap=True)
    for _, title in HEADLINE:
        table.add_column(title, justify="right", no_wrap=True)
    # the one column that may wrap (estimate over interval) when a narrow terminal cannot hold it
    table.add_column("false alerts per\nmillion faces\n(95% PI)", justify="right", min_width=9)
    groups = ["all", *[g for g in summary["group"].unique() if g != "all"]]
    for group in groups:
        vals = [number(summary_value(summary, 0, group, c)[0]) for c, _ in HEADLINE]
        est, lo, hi = (v * 1e6 for v in summary_value(summary, 0, group, "false_alert_rate"))
        table.add_row(_short_group(group), *vals, f"{number(est)} ({number(lo)}–{number(hi)})")
    console.print(table)
    console.print(f"Counts: mean per programme over {plural(reps, 'replicate')}. Rates: false alerts per "
                  "million recorded faces, pooled over replicates. 95% PI: 2.5–97.5% across replicates "
                  "(summary.csv has every interval)."
                  + (" F/M: female/male passers." if set(groups) & set(GROUP_NAMES) else ""))
    if len(results.cells) > 1:
        _print_cells(console, results)
    if exp.comparison is not None:
        cmp_ = exp.comparison
        c = compare(results.metrics, 0, cmp_)
        _, lo, hi = (v * cmp_.faces for v in summary_value(summary, 0, "all", "false_alert_rate"))
        post = results.posterior
        console.print(f"Reported: {plural(cmp_.false_alerts, 'false alert')} in {cmp_.faces:,} faces.")
        if post is not None:
            lo_p, hi_p = post["predictive_interval_95"]
            console.print(
                f"Posterior predictive (cell {post['cell']} at threshold {number(post['threshold'])}, "
                f"{plural(post['draws'], 'posterior draw')}): expected {number(post['expected'])} "
                f"(95% {number(post['interval_95'][0])}–{number(post['interval_95'][1])}) in "
                f"{cmp_.faces:,} faces; the count's 95% predictive interval {number(lo_p)}–{number(hi_p)}; "
                f"{p_equals(post['p_at_most_reported'], f'P(≤ {cmp_.false_alerts})')}.")
        console.print(
            f"Footnote, parameters fixed: two-sided Poisson {p_equals(c['p_value_two_sided'])}; simulated "
            f"(cell 0) {number(c['simulated_per_reported_faces'])} in {cmp_.faces:,} faces (95% PI "
            f"{number(lo)}–{number(hi)}); exact expectation {number(c['expected_per_reported_faces'])}; "
            f"implied threshold {number(c['implied_threshold'])}.")
    faces = float(results.metrics.query("group == 'all' and metric == 'faces'")["value"].sum())
    console.print(f"{number(faces)} faces simulated; {elapsed:.1f} s in this session.")


def _print_cells(console, results, limit: int = 60) -> None:
    """One line per sweep cell, everyone together: the sweep at a glance."""
    from rich import box
    from rich.table import Table

    from .report import number

    summary = results.summary
    everyone = summary[summary["group"] == "all"]
    wide = everyone.pivot(index="cell", columns="metric", values="estimate")
    paths = list(results.cells[0])
    table = Table(title="every cell, all passers (per group: summary.csv)", box=box.SIMPLE_HEAD,
                  pad_edge=False, title_justify="left")
    for path in paths:
        table.add_column(path.rsplit(".", 1)[-1].replace("_", " "), justify="right", no_wrap=True)
    columns = (("faces", "faces"), ("alerts", "alerts"), ("false_alerts", "false"),
               ("expected_false_alerts", "exact\nfalse"), ("ppv", "PPV"))
    for _, title in columns:
        table.add_column(title, justify="right", no_wrap=True)
    for cell, params in enumerate(results.cells[:limit]):
        row = wide.loc[cell]
        table.add_row(*[str(params[p]) for p in paths], *[number(row[m]) for m, _ in columns])
    console.print(table)
    if len(results.cells) > limit:
        console.print(f"... {len(results.cells) - limit} more cells in summary.csv")


class _ProgressBar:
    """A rich progress bar over cell-replicates: done / total, elapsed and time left.

    The task is created at the first report, already advanced by the units a ``--resume`` found,
    so the time left is estimated from the pace of this run alone.
    """

    def __init__(self, label: str, enabled: bool, console=None):
        self.label = label
        self.task = None
        self.bar = None
        if not enabled:   # --quiet: nothing to show, and rich.progress (~30 ms to import) not loaded
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("cell-replicates"), TimeElapsedColumn(), TextColumn("left"),
                            TimeRemainingColumn(), transient=True, console=console)

    def __enter__(self) -> _ProgressBar:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task(self.label, total=total, completed=done)
        else:
            self.bar.update(self.task, completed=done, total=total)


def _plan_label(experiment, replications: int | None) -> str:
    cells = experiment.sweep.size()
    reps = replications or experiment.experiment.replications
    return f"{cells} cell{'s' * (cells != 1)} × {reps} replicate{'s' * (reps != 1)}"


def _stop_on_sigterm() -> None:
    """Treat SIGTERM (a job scheduler's stop) like Ctrl-C: finished units stay, resumable."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def _interrupted() -> int:
    """The exit code of a stopped command; if a unit's thread is still inside its long library
    call, leave at once (``sweep.unit_still_running``): the manifest and the finished units are
    already written, and finalising the interpreter beside that thread can hang."""
    from .sweep import unit_still_running

    if unit_still_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


def _resume_command(args, out: Path) -> str:
    extra = "".join(f" --{name} {value}" for name, value in (("seed", args.seed),
                                                             ("replications", args.replications))
                    if value is not None)
    return f"lfrsim run {args.experiment} --out {out}{extra} --resume"


def _cmd_run(args) -> int:
    try:
        experiment = load_experiment(args.experiment)
    except ConfigError as exc:
        return _fail(exc.problems)
    if experiment.sensitivity is not None:   # an analysis: run as `lfrsim sensitivity` runs it
        for flag, value in (("--replications", args.replications), ("--seed", args.seed)):
            if value is not None:
                return _fail(f"{flag}: an experiment with [sensitivity] is an analysis; its design sets "
                             f"the replicates and the seed, got {flag} {value}")
        return _cmd_sensitivity(args)
    if args.replications is not None and not 1 <= args.replications <= 100_000:
        return _fail(f"--replications: must be between 1 and 100000, got {args.replications}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        return _fail(f"--seed: must be between 0 and 2**63 - 1, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers: must be >= 1, got {args.workers}")
    from .sweep import ExecutorError, begin_run

    out = args.out or Path("results") / experiment.experiment.name
    start = time.perf_counter()
    _stop_on_sigterm()
    workers = _workers(args.workers)
    begun = None
    # (not where --out holds something: a finished run of it is read back, anything else refused)
    if workers > 1 and args.scheduler is None and not args.resume and (args.overwrite or not out.exists()):
        # The first worker starts on the units now, while this process imports what the results
        # folder, pooling and the report need (pandas and the rest: none of it is the units').
        try:
            run_as = with_overrides(experiment, args.replications, args.seed)
            begun = begin_run(run_as, workers)
        except ConfigError as exc:
            return _fail(_problems_as_flags(exc.problems, args))
        except ExecutorError as exc:
            return _fail(_as_flags(exc))
        experiment, overrides = run_as, (None, None)    # the experiment begun, as it runs
    else:
        overrides = (args.replications, args.seed)
    try:
        from .pipeline import run_experiment
        from .results import ResultsError
    except BaseException:
        if begun is not None:
            begun.close(cancel=True)
        raise
    try:
        try:
            with _ProgressBar(_plan_label(experiment, args.replications), enabled=not args.quiet) as progress:
                results = run_experiment(experiment, *overrides, workers, out,
                                         args.scheduler, args.resume, progress, overwrite=args.overwrite,
                                         executor=begun)
        finally:
            if begun is not None:       # closed by the run once it has it: only the bar's failing leaves it
                begun.close(cancel=True)
    except ConfigError as exc:
        return _fail(_problems_as_flags(exc.problems, args))
    except (ResultsError, ExecutorError) as exc:
        return _fail(_as_flags(exc))
    except KeyboardInterrupt:
        if out.is_dir():
            print(f"\ninterrupted: finished units are kept in {out}; continue with: "
                  f"{_resume_command(args, out)}", file=sys.stderr)
        else:
            print("\ninterrupted before anything was written", file=sys.stderr)
        return _interrupted()
    except MemoryError:
        kept = f"finished units are kept in {out}; " if out.is_dir() else ""
        return _fail(f"run: out of memory; {kept}use fewer --workers or a smaller experiment")
    except OSError as exc:
        return _fail(f"--out: cannot write results to {out}: {exc.strerror or exc}")
    elapsed = time.perf_counter() - start
    if not args.quiet:
        _print_headline(results, elapsed)
    if results.reused:
        print(f"results: {out} already holds these results (a finished run of the same resolved "
              f"experiment); nothing was run or rewritten. `lfrsim reproduce {out}` re-checks them; "
              "--overwrite runs them again")
        return EXIT_OK
    print(f"results: {out}")
    return EXIT_OK


def _cmd_report(args) -> int:
    from .pipeline import redraw_report
    from .results import ResultsError

    try:
        redraw_report(args.results)
    except ResultsError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.results}: cannot write figures: {exc.strerror or exc}")
    print(f"report: {args.results / 'summary.md'}")
    return EXIT_OK


def _cmd_reproduce(args) -> int:
    from .pipeline import run_experiment
    from .results import ResultsError, differences, parquet_bytes, read_results
    from .sweep import ExecutorError

    try:
        stored = read_results(args.results)
    except ResultsError as exc:
        return _fail(str(exc))
    try:
        with _ProgressBar(_plan_label(stored.experiment, None), enabled=not args.quiet) as progress:
            fresh = run_experiment(stored.experiment, workers=_workers(args.workers),
                                   scheduler=args.scheduler, progress=progress)
    except ConfigError as exc:
        return _fail(_problems_as_flags(exc.problems, args))
    except ExecutorError as exc:
        return _fail(_as_flags(exc))
    except KeyboardInterrupt:
        print("\ninterrupted: nothing compared", file=sys.stderr)
        return EXIT_INTERRUPTED
    diff = differences(stored.metrics, fresh.metrics)
    if diff.empty:
        same_bytes = parquet_bytes(fresh.metrics) == (args.results / "metrics.parquet").read_bytes()
        print(f"reproduced: all {len(stored.metrics):,} metrics identical"
              f"{' (metrics.parquet byte for byte)' if same_bytes else ''} ({args.results})")
        return EXIT_OK
    print(f"NOT reproduced: {len(diff):,} metric values differ from {args.results}/metrics.parquet "
          f"({len(stored.metrics):,} stored, {len(fresh.metrics):,} re-run)")
    _print_differences(diff)
    return EXIT_FAIL


def _print_differences(diff, limit: int = 40) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("cell", "replicate", "group", "metric", "stored", "re-run")
    for row in diff.head(limit).itertuples(index=False):
        table.add_row(row.cell, row.replicate, row.group, row.metric, f"{row.stored:.17g}",
                      f"{row.fresh:.17g}")
    Console(width=120).print(table)
    if len(diff) > limit:
        by_metric = diff.groupby("metric").size().sort_values(ascending=False)
        print(f"... and {len(diff) - limit:,} more; per metric: "
              + ", ".join(f"{m} {n}" for m, n in by_metric.items()))


def _cmd_calibrate(args) -> int:
    from . import calibrate

    seed = calibrate.SEED if args.seed is None else args.seed
    if not 1 <= args.workers <= 64:
        return _fail(f"--workers: must be between 1 and 64, got {args.workers}")
    out = args.out if args.out is not None else shipped.path("posterior.toml").parent
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {out} is a file, not a folder")
    flags = [f"--out {args.out}" if args.out is not None else "", "--reduced" if args.reduced else "",
             f"--workers {args.workers}" if args.workers != 2 else "",
             f"--seed {seed}" if seed != calibrate.SEED else ""]
    command = " ".join(["lfrsim calibrate", *(f for f in flags if f)])
    try:
        toml_path, npz_path, seconds = calibrate.run(out, seed, args.reduced, args.workers, command)
    except OSError as exc:
        return _fail(f"--out: cannot write {out}: {exc.strerror or exc}")
    doc = _read_toml(toml_path)
    h = doc["headline"]["shipped"]
    lo, hi = h["expected_interval_95"]
    print(f"shipped account {doc['about']['shipped']['choice']}; expected false alerts in 3,000,000 faces "
          f"at 0.64: {h['expected_median']:.1f} (95% {lo:.1f}–{hi:.1f}), "
          f"P(≤ 12) {h['p_at_most_reported']:.3f}")
    print(f"wrote {toml_path} and {npz_path} in {seconds:.0f} s")
    return EXIT_OK


def _read_toml(path: Path) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def _cmd_replay(args) -> int:
    from . import replay
    from .grid import read_grid, resolve_path

    if args.draws is not None and not 1 <= args.draws <= 100_000:
        return _fail(f"--draws: must be between 1 and 100000, got {args.draws}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        return _fail(f"--seed: must be between 0 and 2**63 - 1, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers: must be >= 1, got {args.workers}")
    try:
        path = resolve_path(str(args.grid), Path.cwd())       # a path, or lfrsim:NAME (a shipped grid)
    except ConfigError as exc:
        return _fail(exc.problems)
    out = args.out or replay.default_out(path)
    try:
        replay.check_out(out)
        grid = read_grid(path)
        if not grid.simulated:
            return _fail(f"{args.grid}: no row has both faces_seen and a duration published; "
                         "nothing to replay")
        draws = args.draws or replay.DEFAULT_DRAWS
        seed = replay.SEED if args.seed is None else args.seed
        _stop_on_sigterm()
        with _ProgressBar("replicates", enabled=not args.quiet) as progress:
            result = replay.replay(grid, draws, seed, _workers(args.workers), progress)
        replay.write_replay(result, out)
        if args.page is not None:
            replay.write_validation_page(out, args.page)
    except ConfigError as exc:
        return _fail(exc.problems)
    except replay.ReplayError as exc:
        return _fail(_as_flags(exc))
    except KeyboardInterrupt:
        print("\ninterrupted: a replay folder is written whole or not at all", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        return _fail(f"--out: cannot write {exc.filename or out}: {exc.strerror or exc}")
    kind = "forecast" if result.forecast else "replay"
    print(f"{kind}: {out} ({len(grid.simulated)} deployments, {draws} draws, {result.seconds:.0f} s)")
    if not result.forecast:
        for name, c in result.result["coverage"].items():
            print(f"  {name}: {c['in_50']:.0%} inside 50%, {c['in_95']:.0%} inside 95% "
                  f"({c['deployments']} deployments)")
    if args.page is not None:
        print(f"validation page: {args.page}")
    return EXIT_OK


def _load_analysis(args, section: str):
    """The experiment of ``lfrsim sensitivity`` or ``lfrsim explain``, checked; else ConfigError."""
    experiment = load_experiment(args.experiment)
    sens = experiment.sensitivity
    if sens is None or (section == "sensitivity.explain" and sens.explain is None):
        raise ConfigError([f"{section}: {args.experiment} has no [{section}] section (docs/sensitivity.md)"])
    from .explain import check_explain
    from .sensitivity import check as check_sensitivity

    if section == "sensitivity":
        check_sensitivity(experiment)
    if sens.explain is not None:
        check_explain(experiment)
    return experiment


def _cmd_sensitivity(args) -> int:
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers: must be >= 1, got {args.workers}")
    try:
        experiment = _load_analysis(args, "sensitivity")
    except ConfigError as exc:
        return _fail(exc.problems)
    from .explain import explain as explain_grid
    from .explain import write_explain
    from .results import ResultsError
    from .sensitivity import run_sensitivity
    from .sweep import ExecutorError

    out = args.out or Path("results") / experiment.experiment.name
    _stop_on_sigterm()
    try:
        with _ProgressBar("design points", enabled=not args.quiet) as progress:
            results = run_sensitivity(experiment, _workers(args.workers), out, args.scheduler, args.resume,
                                      args.overwrite, progress)
        if not results.reused and experiment.sensitivity.explain is not None:
            grid, edge = explain_grid(experiment, _workers(args.workers), args.scheduler)
            write_explain(out, experiment, grid, edge)
    except ConfigError as exc:
        return _fail(exc.problems)
    except (ResultsError, ExecutorError) as exc:
        return _fail(_as_flags(exc))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished design points are kept in {out}; continue with: "
              f"lfrsim sensitivity {args.experiment} --out {out} --resume", file=sys.stderr)
        return _interrupted()
    except OSError as exc:
        return _fail(f"--out: cannot write results to {out}: {exc.strerror or exc}")
    if not args.quiet:
        _print_indices(results)
    if results.reused:
        print(f"results: {out} already holds this analysis; nothing was run or rewritten "
              "(--overwrite runs it again)")
        return EXIT_OK
    print(f"results: {out} ({results.seconds:.0f} s)")
    return EXIT_OK


def _print_indices(results) -> None:
    """One row per setting, one column per output (everyone): the total index, then S1."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = results.indices
    main, other = ("ST", "S1") if "ST" in set(table["index"]) else ("mu_star", "sigma")
    everyone = table[table["group"] == "all"]
    outputs = list(dict.fromkeys(everyone["output"]))
    grid = Table(title=f"{results.experiment.experiment.name}: {main} ({other}) per output",
                 box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    grid.add_column("setting", no_wrap=True)
    for output in outputs:
        grid.add_column(output.replace("_", "\n"), justify="right", no_wrap=True)
    wide = everyone.set_index(["parameter", "output", "index"])["value"]

    def shown(p: str, o: str) -> str:
        a, b = wide.get((p, o, main), float("nan")), wide.get((p, o, other), float("nan"))
        return "–" if a != a else f"{a:.2f} ({b:.2f})"

    for p in dict.fromkeys(everyone["parameter"]):
        grid.add_row(p, *[shown(p, o) for o in outputs])
    console = Console()
    console.print(grid)
    console.print(f"{main}: {'total' if main == 'ST' else 'mean |elementary effect|'} index; {other}: "
                  f"{'first-order' if other == 'S1' else 'spread of the effects'}; – an output that did not "
                  "vary. Intervals in indices.csv.")


def _cmd_explain(args) -> int:
    if args.workers is not None and args.workers < 1:
        return _fail(f"--workers: must be >= 1, got {args.workers}")
    try:
        experiment = _load_analysis(args, "sensitivity.explain")
    except ConfigError as exc:
        return _fail(exc.problems)
    from rich.console import Console

    from .explain import explain as explain_grid
    from .explain import write_explain
    from .sweep import ExecutorError

    out = args.out or Path("results") / experiment.experiment.name
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {out} exists and is not a folder")
    try:
        grid, edge = explain_grid(experiment, _workers(args.workers), args.scheduler)
        write_explain(out, experiment, grid, edge)
    except ConfigError as exc:
        return _fail(exc.problems)
    except ExecutorError as exc:
        return _fail(_as_flags(exc))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        return _fail(f"--out: cannot write to {out}: {exc.strerror or exc}")
    if not args.quiet:
        Console(width=120).print(edge.to_string(index=False))
    print(f"explain: {out}/explain.csv ({int(grid['inside'].sum())} of {len(grid)} points inside)")
    return EXIT_OK


def _cmd_examples(args) -> int:
    from . import examples

    known = examples.names()
    if args.name is None:
        if args.force or args.to is not None:
            return _fail("examples: --to and --force need the NAME of an example to copy "
                         f"(one of {', '.join(known)})")
        width = max(len(n) for n in known)
        for name in known:
            print(f"{name:<{width}}  {examples.description(name, 98 - width)}")
        print("\nlfrsim examples NAME [--to DIR] copies one; lfrsim run DIR/NAME.toml runs it.")
        return EXIT_OK
    to = args.to if args.to is not None else Path(".")
    try:
        target = examples.copy(args.name, to, args.force)
    except examples.ExampleError as exc:
        if exc.setting == "name":
            return _fail(f"examples: unknown example {args.name!r}; the examples are: {', '.join(known)}")
        return _fail(_as_flags(exc).replace("force=True", "--force"))
    except OSError as exc:
        return _fail(f"--to: cannot write to {to}: {exc.strerror or exc}")
    print(f"copied: {target}; run it with: lfrsim run {target}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": _cmd_run, "validate": _cmd_validate, "report": _cmd_report,
               "reproduce": _cmd_reproduce, "calibrate": _cmd_calibrate, "replay": _cmd_replay,
               "sensitivity": _cmd_sensitivity, "explain": _cmd_explain,
               "examples": _cmd_examples}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if argv is None:
            # run as the command (the console script, ``python -m sim``): the process ends next, and
            # the collections of interpreter shutdown would trace every object it built once more
            # (~0.1 CPU s after validate, ~0.3 s after a run); frozen, they are freed all the same
            gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
