"""What a run will cost, from the exact expectations, before anything runs.

A schema can say that 24 hours at ten million faces an hour at threshold 0 is a valid
experiment; it cannot say that one replicate would then put 240 million alerts through the
review model, each a simpy process of about a kilobyte and a half. This module works that out
in closed form, the way a planner would on the back of an envelope, but with the search's own
numbers: for every unit of work (one replicate of a group of cells that share a search) it
takes the expected passers of each deployment, the exact chance that a passer's best candidate
clears the search floor (those are the passers scored one by one) and each threshold (the alerts
to review), and turns them into memory and processor time with per-item costs measured on the
simulator itself.

``estimate_cost(experiment)`` is pure (no clock, no files) and takes a few hundredths of a
second for the shipped experiments. ``cost_problems`` sets an estimate against a memory budget
and a time budget and says, one line each, what cannot fit and which setting to change;
``check_cost`` raises them as a ``ConfigError`` so that ``lfrsim validate`` and ``lfrsim run``
refuse alike, before any folder is touched.

The estimates are upper bounds where bounding is cheap (a passer's several frames count as their
mean number of looks, which can only overstate the chance of clearing the floor) and central
elsewhere; they are meant to be right within a factor of two or three, which is all a refusal
needs: the refused runs are off by factors of a hundred.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .config import Experiment
from .crowd import (
    footfall_factors,
    footfall_profile,
    frames_distribution,
    generator_passers_per_hour,
    place_shares,
    site_pool,
    watchlist_group_shares,
    watchlisted_probability,
)
from .draws import typical
from .errors import ConfigError
from .groups import DEFAULT_GROUPS, Group, are_declared, group_shares
from .replicate import COUNT_METRICS, PROGRAMME_METRICS, RATE_METRICS
from .scores import ScoreModel, score_model, to_latent
from .search import SearchTable, build_search_table
from .watchlist import BIN_WIDTH, WatchlistEntries

THRESHOLD = "matcher.threshold"

# Per-item costs of the simulator as it stands, measured on a 2-core machine (docs/testing.md,
# "What a run costs"); a refusal needs them right within a factor of a few, not exactly.
SECONDS_PER_UNIT = 0.02           # read the config, draw the programme and watchlist, tabulate
SECONDS_PER_DEPLOYMENT = 1e-4     # one deployment's crowd draws and bookkeeping
SECONDS_PER_CANDIDATE = 3e-6      # a passer scored one by one (drawn, sorted, given review draws)
SECONDS_PER_ALERT = 5e-5          # an alert through the simpy review
SECONDS_PER_THRESHOLD = 5e-3      # exact expectations and tallies at one threshold
SECONDS_PER_ROW = 2e-5            # pooling, summarising and storing one metric row

BYTES_PER_CANDIDATE = 350         # kept for the replicate: scores, review draws, fates, outcome columns
BYTES_PER_ALERT_IN_REVIEW = 1300  # while the replicate's alerts are reviewed (simpy, their copies)
BYTES_PER_ALERT_TALLIED = 8 * 11  # while one threshold's alerts are counted by group
BYTES_PER_ROW = 700               # a metric row pooled in memory (rows, table and summary)
BYTES_PER_PLANNED_UNIT = 600      # a unit of the plan, and its line in the manifest's bookkeeping
BYTES_PER_PROCESS = 250 * 2**20   # a worker process: Python, numpy, scipy, simpy, pydantic

MEMORY_SHARE = 0.5                 # of the machine's memory, the most one run may plan to use
FALLBACK_MEMORY_BYTES = 8 * 2**30  # when the machine does not say
MAX_CPU_SECONDS = 30 * 86_400.0    # thirty days of one core: beyond it, split the experiment
MAX_ESTIMATED_GROUPS = 64          # a bigger sweep is estimated from this many groups, evenly spread



def rows_per_cell(groups: tuple[Group, ...] = DEFAULT_GROUPS) -> int:
    """Metric rows of one cell and replicate: every count and rate per group and for all, then the
    programme's (declared groups have no Black/White figures)."""
    programme = len(PROGRAMME_METRICS) - (2 if are_declared(groups) else 0)
    return (len(groups) + 1) * (len(COUNT_METRICS) + len(RATE_METRICS)) + programme


ROWS_PER_CELL = rows_per_cell()   # of the census groups


def search_groups(cells: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Cells that differ only in ``matcher.threshold``, grouped: they share one search per
    replicate (``sim.sweep.plan`` makes one unit of work per group and replicate)."""
    groups: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        key = repr(sorted((k, v) for k, v in cell.items() if k != THRESHOLD))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


@dataclass(frozen=True)
class UnitCost:
    """The expected cost of one unit of work: one replicate of one search group."""

    deployments: int
    passers: float                 # expected captured passers of the programme
    candidates: float              # passers whose best candidate clears the floor, scored one by one
    alerts: tuple[float, ...]      # alerts to review at each of the group's thresholds, lowest first
    memory_bytes: float            # peak memory of the unit, above its process's own
    cpu_seconds: float
    alert_share: float             # alerts per passer at the lowest threshold
    lowest_threshold: float
    score_floor: float
    grid_problem: str | None = None   # a search table that cannot be built at all


@dataclass(frozen=True)
class Cost:
    """The estimated cost of a whole run (see ``estimate_cost``)."""

    cells: int
    replications: int
    groups: int                    # search groups; ``units = groups * replications``
    estimated_groups: int          # how many groups were estimated (all, or an even sample)
    units: int
    metric_rows: int
    worst: UnitCost                # the group whose unit needs the most memory
    slowest: UnitCost              # the group whose unit needs the most time
    unit_memory_bytes: float       # the most one unit needs
    pooled_memory_bytes: float     # the pooled metrics and the plan, in the process that runs it
    cpu_seconds: float             # the whole run, one core
    alerts_per_replicate: float    # reviewed alerts of one replicate of every cell, in all

    def summary(self) -> str:
        """One line for a person: alerts, memory and time."""
        return (f"estimated cost: about {_count(self.alerts_per_replicate)} alerts to review per "
                f"replicate, {_bytes(self.unit_memory_bytes)} per unit of work, {self.units:,} unit"
                f"{'s' * (self.units != 1)}, {_seconds(self.cpu_seconds)} of CPU")


def _count(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _bytes(x: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if x >= size:
            return f"{x / size:,.1f} {unit}"
    return f"{max(x, 0) / 2**10:,.0f} KiB"


def _seconds(x: float) -> str:
    if x >= 2 * 86_400:
        return f"{x / 86_400:,.0f} days"
    if x >= 2 * 3600:
        return f"{x / 3600:,.1f} hours"
    if x >= 120:
        return f"{x / 60:,.0f} minutes"
    return f"{x:,.1f} s"


# -- the search's exact chances, at a few points --------------------------------------------------

def expected_watchlist(size: int, shares: np.ndarray, model: ScoreModel,
                       bin_width: float = BIN_WIDTH) -> WatchlistEntries:
    """The watchlist's expected histogram (fractional counts): what ``draw_watchlist`` draws, on
    average, without drawing it."""
    lo, hi = model.entry_effects.support()
    first = int(np.floor(lo / bin_width))
    last = int(np.ceil(hi / bin_width))
    centres = np.arange(first, last + 1) * bin_width
    edges = np.concatenate([[-np.inf], centres[:-1] + bin_width / 2, [np.inf]])
    bin_p = np.clip(np.diff(model.entry_effects.cdf(edges)), 0.0, None)
    bin_p /= bin_p.sum()
    share = np.asarray(shares, dtype=float) / np.sum(shares)
    return WatchlistEntries(size * share[:, None] * bin_p[None, :], first, bin_width)


def exceedance_at(table: SearchTable, x: np.ndarray, looks: float) -> np.ndarray:
    """P(best impostor >= x) per probe group and latent point, shape (G, len(x)), for ``looks``
    looks: the search's own sum over probe effects, evaluated at a few points only."""
    x = np.asarray(x, dtype=float)
    p = table.offsets * table.step
    groups = np.arange(table.log_hazard.shape[0])
    shifted = np.broadcast_to(x[None, :, None] - p[None, None, :], (len(groups), len(x), len(p)))
    with np.errstate(over="ignore", invalid="ignore"):
        log_h = table.log_hazard_at(groups[:, None, None], shifted)                 # (G, X, P)
        hit = -np.expm1(-looks * np.exp(log_h))
    hit = np.where(np.isposinf(x)[None, :, None], 0.0, hit)
    return np.clip(np.nan_to_num(hit, nan=1.0) @ table.weights, 0.0, 1.0)


def genuine_sf_at(model: ScoreModel, x: np.ndarray, looks: float) -> np.ndarray:
    """P(best genuine score >= x) per group and latent point, shape (G, len(x))."""
    x = np.asarray(x, dtype=float)
    z = (x[None, :] - model.genuine_location[:, None]) / model.genuine_sd[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.clip(-np.expm1(looks * special.log_ndtr(z)), 0.0, 1.0)


# -- the programme: passers per deployment and their mix -------------------------------------------

def _programme(experiment: Experiment) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expected captured passers per deployment, the group mixes of the places, how many of the
    programme's passers each place sees (shares summing to 1), and each place's footfall factor
    on the watchlisted share (``sim.crowd.footfall_factors``)."""
    crowd, programme, groups = experiment.crowd, experiment.programme, experiment.passer_groups()
    elasticity = float(crowd.footfall_elasticity)
    if programme.deployments:
        rates = np.array([float(np.mean(footfall_profile(d, crowd))) for d in programme.deployments])
        passers = np.array([rate * d.duration_hours * d.capture_rate
                            for rate, d in zip(rates, programme.deployments, strict=True)])
        mixes = np.array([group_shares(crowd.female_share,
                                       d.ethnicity_shares if d.ethnicity_shares
                                       else place_shares(d.ward_code, d.borough), groups)
                          for d in programme.deployments])
        total = passers.sum()
        weights = passers / total if total > 0 else np.full(len(passers), 1 / len(passers))
        return passers, mixes, weights, footfall_factors(rates, elasticity)
    gen = programme.generator
    assert gen is not None
    # lognormal footfall of mean footfall_per_hour: the expectation needs no draw
    rate = generator_passers_per_hour(gen, crowd)
    passers = np.full(gen.weeks * gen.deployments_per_week, rate * gen.duration_hours * gen.capture_rate)
    pool = site_pool(gen)
    seen: dict[tuple[str, str], int] = {}
    for place in pool:
        key = (place["ward_code"], place["borough"])
        seen[key] = seen.get(key, 0) + 1
    mixes = np.array([group_shares(crowd.female_share, place_shares(*key), groups) for key in seen])
    weights = np.array(list(seen.values()), dtype=float) / len(pool)
    return passers, mixes, weights, footfall_factors(np.full(len(weights), rate), elasticity)


# -- one unit -------------------------------------------------------------------------------------

def unit_cost(experiment: Experiment, thresholds: Sequence[float],
              tables: dict[Any, SearchTable] | None = None) -> UnitCost:
    """The expected cost of one replicate of ``experiment`` compared with ``thresholds``.

    A replicate draws every deployment's candidates at once and reviews each threshold's alerts
    in one simpy environment, so what it holds at its peak is all its candidates and the alerts
    of its lowest threshold. ``tables`` caches search tables between calls (a sweep's groups
    often share one).
    """
    groups = experiment.passer_groups()
    experiment = typical(experiment)     # calibrated settings at the posterior's medians
    matcher, crowd = experiment.matcher, experiment.crowd
    scores = matcher.score_parameters()
    floor = float(matcher.score_floor)
    thresholds = sorted({float(t) for t in thresholds})
    passers, mixes, weights, footfall = _programme(experiment)
    deployments, total = len(passers), float(passers.sum())
    model = score_model(scores, groups)
    wl_shares = watchlist_group_shares(experiment.watchlist.female_share,
                                       experiment.watchlist.ethnicity_shares, groups)
    key = (scores.model_dump_json(), tuple(np.round(wl_shares, 15)), experiment.watchlist.size, floor)
    tables = {} if tables is None else tables
    table = tables.get(key)
    if table is None:
        try:
            entries = expected_watchlist(experiment.watchlist.size, wl_shares, model)
            table = build_search_table(model, entries, float(to_latent(floor)))
        except ValueError as exc:   # a grid too fine for the table: the run would stop the same way
            return UnitCost(deployments, total, 0.0, tuple(0.0 for _ in thresholds), 0.0, 0.0, 0.0,
                            thresholds[0], floor, grid_problem=str(exc))
        tables[key] = table
    frames, pmf = frames_distribution(crowd)
    # the mean number of looks: the chance of clearing a score is concave in the looks, so this
    # can only overstate it
    looks = 1.0 + (float(frames @ pmf) - 1.0) * (1.0 - crowd.frame_correlation)
    points = to_latent(np.array([floor, *thresholds]))
    impostor = exceedance_at(table, points, looks)                                   # (G, 1 + T)
    genuine = genuine_sf_at(model, points, looks)
    base = watchlisted_probability(crowd, groups, experiment.watchlist.size, wl_shares)
    mated = np.clip(footfall[:, None, None] * base[None, :, None], 0.0, 0.5)       # (places, G, 1)
    per_group = (1 - mated) * impostor + mated * np.minimum(1.0, impostor + genuine)
    # per passer: candidate, then alert at each T
    share = np.einsum("p,pg,pgt->t", weights, mixes, per_group)
    candidates = total * float(share[0])
    alerts = total * share[1:]
    # the lowest threshold's alerts are reviewed; a higher one's again only where staff were busy
    reviewed = float(alerts[0]) + 0.25 * float(np.sum(alerts[1:]))
    n_looks = len(frames) if crowd.frame_correlation < 1 else 1
    table_bytes = table.log_hazard.nbytes * (3 + n_looks)
    memory = (table_bytes + candidates * (BYTES_PER_CANDIDATE + len(thresholds))
              + float(alerts[0]) * (BYTES_PER_ALERT_IN_REVIEW + BYTES_PER_ALERT_TALLIED))
    cpu = (SECONDS_PER_UNIT + deployments * SECONDS_PER_DEPLOYMENT + candidates * SECONDS_PER_CANDIDATE
           + reviewed * SECONDS_PER_ALERT + len(thresholds) * SECONDS_PER_THRESHOLD)
    return UnitCost(deployments, total, candidates, tuple(float(a) for a in alerts), memory, cpu,
                    float(share[1]), thresholds[0], floor)


# -- the whole run ---------------------------------------------------------------------------------

def estimate_cost(experiment: Experiment) -> Cost:
    """The expected cost of running ``experiment``: units, rows, memory and processor time.

    A sweep of more than ``MAX_ESTIMATED_GROUPS`` search groups is estimated from that many,
    evenly spread and including the first and the last; its sums are scaled up accordingly.
    """
    cells = experiment.sweep.cells()
    reps = experiment.experiment.replications
    groups = search_groups(cells)
    if len(groups) > MAX_ESTIMATED_GROUPS:
        picks = sorted({round(i * (len(groups) - 1) / (MAX_ESTIMATED_GROUPS - 1))
                        for i in range(MAX_ESTIMATED_GROUPS)})
    else:
        picks = list(range(len(groups)))
    tables: dict[Any, SearchTable] = {}
    costs = []
    for g in picks:
        members = groups[g]
        rest = {k: v for k, v in cells[members[0]].items() if k != THRESHOLD}
        group_experiment = experiment.with_values(rest) if experiment.sweep.parameters else experiment
        thresholds = [float(cells[i].get(THRESHOLD, experiment.matcher.threshold)) for i in members]
        costs.append(unit_cost(group_experiment, thresholds, tables))
    scale = len(groups) / len(picks)
    worst = max(costs, key=lambda c: (c.grid_problem is not None, c.memory_bytes))
    slowest = max(costs, key=lambda c: c.cpu_seconds)
    rows = len(cells) * reps * rows_per_cell(experiment.passer_groups())
    units = len(groups) * reps
    pooled = rows * BYTES_PER_ROW + units * BYTES_PER_PLANNED_UNIT
    cpu = reps * scale * sum(c.cpu_seconds for c in costs) + rows * SECONDS_PER_ROW
    alerts = scale * sum(sum(c.alerts) for c in costs)
    return Cost(cells=len(cells), replications=reps, groups=len(groups), estimated_groups=len(picks),
                units=units, metric_rows=rows, worst=worst, slowest=slowest,
                unit_memory_bytes=worst.memory_bytes, pooled_memory_bytes=pooled, cpu_seconds=cpu,
                alerts_per_replicate=alerts)


def machine_memory_bytes() -> int:
    """This machine's physical memory (``FALLBACK_MEMORY_BYTES`` if it does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY_BYTES


def memory_budget_bytes() -> int:
    """The most memory one run may plan to use: ``MEMORY_SHARE`` of the machine's."""
    return int(MEMORY_SHARE * machine_memory_bytes())


def _threshold_setting(experiment: Experiment, unit: UnitCost) -> str:
    if unit.score_floor < unit.lowest_threshold and unit.candidates > 10 * max(sum(unit.alerts), 1.0):
        return "matcher.score_floor"
    if THRESHOLD in experiment.sweep.parameters:
        return f"sweep.parameters.{THRESHOLD}"
    return THRESHOLD


def _programme_setting(experiment: Experiment) -> str:
    deployments = experiment.programme.deployments
    if not deployments:
        gen = experiment.programme.generator
        given = "recorded_faces_per_hour" if gen is not None and gen.recorded_faces_per_hour is not None \
            else "footfall_per_hour"
        return f"programme.generator.{given}"
    busiest = max(range(len(deployments)), key=lambda i: float(np.mean(footfall_profile(
        deployments[i], typical(experiment).crowd))) * deployments[i].duration_hours)
    given = "recorded_faces" if deployments[busiest].recorded_faces is not None else "footfall_per_hour"
    return f"programme.deployments.{busiest}.{given}"


def _unit_driver(experiment: Experiment, unit: UnitCost) -> tuple[str, str]:
    """The setting to change for a unit too big, and what to say of it."""
    if unit.alert_share >= 1e-3 or unit.score_floor < unit.lowest_threshold and unit.candidates > 1e6:
        setting = _threshold_setting(experiment, unit)
        where = "matcher.score_floor" if setting == "matcher.score_floor" else "threshold"
        value = unit.score_floor if where == "matcher.score_floor" else unit.lowest_threshold
        what = (f"at {where} {value:g} one replicate would score about {_count(unit.candidates)} passers "
                f"one by one and review about {_count(sum(unit.alerts))} alerts")
        fix = "floor" if where != "threshold" else "threshold"
        return setting, f"{what}; raise the {fix}, or shorten the programme"
    setting = _programme_setting(experiment)
    what = (f"one replicate would see about {_count(unit.passers)} passers and review about "
            f"{_count(sum(unit.alerts))} alerts; lower the footfall or shorten the programme")
    return setting, what


def cost_problems(experiment: Experiment, cost: Cost, memory_bytes: int, workers: int = 1,
                  max_cpu_seconds: float = MAX_CPU_SECONDS) -> list[str]:
    """What in ``cost`` cannot fit ``memory_bytes`` of memory and ``max_cpu_seconds`` of CPU with
    ``workers`` units at once: one line each, starting with the setting to change."""
    if cost.worst.grid_problem is not None:
        return [f"matcher.score_floor: {cost.worst.grid_problem}"]
    problems: list[str] = []
    budget = f"a run may use {_bytes(memory_bytes)} here, half this machine's memory"
    unit, pooled = cost.unit_memory_bytes, cost.pooled_memory_bytes
    if unit > memory_bytes or (unit >= pooled and unit + pooled > memory_bytes):
        setting, what = _unit_driver(experiment, cost.worst)
        problems.append(f"{setting}: {what} (about {_bytes(unit)} of memory for one unit of work; {budget})")
    elif pooled > memory_bytes or unit + pooled > memory_bytes:
        need = _bytes(pooled + unit)
        if cost.replications >= cost.cells:
            fit = int(cost.replications * (memory_bytes - unit) / pooled) if memory_bytes > unit else 0
            cells = f"{cost.cells:,} cell{'s' * (cost.cells != 1)}"
            problems.append(f"experiment.replications: {cost.replications:,} replications of {cells} would "
                            f"pool {cost.metric_rows:,} metric rows (about {need} of memory; {budget}): at "
                            f"most about {fit:,} replications fit")
        else:
            problems.append(f"sweep.parameters: {cost.cells:,} cells x {cost.replications:,} replications "
                            f"would pool {cost.metric_rows:,} metric rows (about {need} of memory; "
                            f"{budget}): sweep fewer cells")
    elif workers > 1:
        each = unit + BYTES_PER_PROCESS
        at_once = min(workers, cost.units)
        if at_once * each + pooled > memory_bytes:
            fit = max(1, int((memory_bytes - pooled) // each))
            need = _bytes(at_once * each + pooled)
            problems.append(f"workers: {at_once} units at once would need about {need} of memory "
                            f"({_bytes(each)} each); {budget}: use at most {fit}")
    if cost.cpu_seconds > max_cpu_seconds:
        limit = _seconds(max_cpu_seconds)
        per_unit = cost.cpu_seconds / max(cost.units, 1)
        if cost.slowest.cpu_seconds * cost.replications > cost.cpu_seconds / 2 and cost.replications < 100:
            setting, what = _unit_driver(experiment, cost.slowest)
            problems.append(f"{setting}: {what} (about {_seconds(cost.cpu_seconds)} of CPU in all; at most "
                            f"{limit} per run)")
        elif cost.replications >= cost.groups:
            fit = int(max_cpu_seconds // (per_unit * cost.groups))
            problems.append(f"experiment.replications: {cost.replications:,} replications would take about "
                            f"{_seconds(cost.cpu_seconds)} of CPU ({cost.units:,} units of about "
                            f"{_seconds(per_unit)}); at most {limit} per run: about {fit:,} replications fit")
        else:
            problems.append(f"sweep.parameters: {cost.groups:,} search groups x {cost.replications:,} "
                            f"replications would take about {_seconds(cost.cpu_seconds)} of CPU; at most "
                            f"{limit} per run: sweep fewer cells")
    return problems


def check_cost(experiment: Experiment, workers: int = 1, memory_bytes: int | None = None,
               max_cpu_seconds: float = MAX_CPU_SECONDS) -> Cost:
    """The run's estimated cost; ``ConfigError`` (one line per problem) if it cannot fit."""
    cost = estimate_cost(experiment)
    budget = memory_budget_bytes() if memory_bytes is None else memory_bytes
    problems = cost_problems(experiment, cost, budget, workers, max_cpu_seconds)
    if problems:
        raise ConfigError(problems)
    return cost
