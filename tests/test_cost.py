"""The cost estimate: the search's exact expectations, the units of a plan, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.config import ConfigError, from_dict, load_experiment
from sim.cost import (
    MAX_ESTIMATED_GROUPS,
    ROWS_PER_CELL,
    check_cost,
    cost_problems,
    estimate_cost,
    unit_cost,
)
from sim.draws import typical
from sim.replicate import simulate_replicate
from sim.sweep import plan, run_unit

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30


def experiment(threshold: float = 0.6, footfall: float = 20000.0, hours: float = 4.0, size: int = 16000,
               replications: int = 1, sweep: dict | None = None, **matcher) -> object:
    data = {"experiment": {"name": "cost", "seed": 3, "replications": replications},
            "programme": {"deployments": [
                {"site": "a", "duration_hours": hours, "footfall_per_hour": footfall, "borough": "Lambeth"},
                {"site": "b", "duration_hours": 2.0, "footfall_per_hour": 5000.0}]},
            "watchlist": {"size": size}, "matcher": {"threshold": threshold, **matcher}}
    if sweep is not None:
        data["sweep"] = {"parameters": sweep}
    return from_dict(data)


@pytest.mark.parametrize("watchlisted", [1e-7, 0.05])
def test_expected_alerts_agree_with_the_simulations_exact_expectation(watchlisted):
    """The estimate's alerts per replicate, from the expected watchlist and crowd, against the
    exact expectations the simulation computes for the crowds it drew (mean of 8 replicates), with
    false alerts dominating (few watchlisted passers) and with true alerts dominating (many, so
    their count varies by under 2% between replicates): the estimate must sit within 5%. Every
    replicate runs at the same (median) parameters, without deployment effects."""
    thresholds = [0.6, 0.62, 0.64]
    e = typical(experiment()).with_values({"crowd.watchlisted_dispersion": 0.0,
                                           "crowd.watchlisted_per_passer": watchlisted})
    estimated = np.array(unit_cost(e, thresholds).alerts)
    exact = np.zeros(3)
    for r in range(8):
        out = simulate_replicate(e, r, thresholds)
        counts = [out[t]["counts"] for t in thresholds]
        exact += [c["expected_false_alerts"].sum() + c["expected_true_alerts"].sum() for c in counts]
    np.testing.assert_allclose(estimated, exact / 8, rtol=0.05)


def test_more_threshold_fewer_alerts_and_never_more_alerts_than_candidates():
    thresholds = [0.55, 0.6, 0.64, 0.7, 1.0]
    unit = unit_cost(experiment(0.55), thresholds)
    assert list(unit.alerts) == sorted(unit.alerts, reverse=True)
    assert unit.alerts[-1] == 0.0
    assert unit.candidates >= unit.alerts[0] * (1 - 1e-12)
    at_zero = unit_cost(experiment(0.0), [0.0])
    assert at_zero.alerts[0] == pytest.approx(at_zero.passers)     # threshold 0: every face alerts


def test_the_estimate_plans_the_same_units_and_rows_as_the_run():
    e = experiment(replications=3, sweep={"matcher.threshold": [0.6, 0.62], "watchlist.size": [1000, 2000]})
    cost = estimate_cost(e)
    cells, units = plan(e)
    assert cost.cells == len(cells) == 4 and cost.units == len(units) == 6 and cost.groups == 2
    assert cost.metric_rows == cost.cells * 3 * ROWS_PER_CELL
    assert len(run_unit(units[0])) == len(units[0].cells) * ROWS_PER_CELL


def test_a_big_sweep_is_estimated_from_a_sample_of_its_groups():
    sizes = list(range(1000, 1000 + 100 * 200, 200))
    cost = estimate_cost(experiment(sweep={"watchlist.size": sizes}))
    assert cost.groups == 100 and cost.estimated_groups == MAX_ESTIMATED_GROUPS


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_fits_a_small_machine(path):
    cost = check_cost(load_experiment(path), workers=2, memory_bytes=4 * GIB)
    assert cost.unit_memory_bytes < GIB and cost.cpu_seconds < 3600


def _problems(e, memory_gib: float = 16, workers: int = 1) -> list[str]:
    return cost_problems(e, estimate_cost(e), int(memory_gib * GIB), workers)


def test_too_many_alerts_names_the_threshold_or_the_swept_threshold():
    (line,) = _problems(experiment(0.0, footfall=1e7, hours=24.0))
    assert line.startswith("matcher.threshold: at threshold 0 one replicate would score about 240,")
    assert "GiB of memory for one unit of work" in line
    (line,) = _problems(experiment(0.0, footfall=1e7, hours=24.0, sweep={"matcher.threshold": [0.0, 0.6]}))
    assert line.startswith("sweep.parameters.matcher.threshold: ")


def test_a_low_floor_under_a_high_threshold_names_the_floor():
    (line,) = _problems(experiment(0.9, footfall=1e7, hours=24.0, score_floor=0.0))
    assert line.startswith("matcher.score_floor: at matcher.score_floor 0 ")


def test_a_crowd_too_big_at_a_sensible_threshold_names_the_footfall():
    e = from_dict({"experiment": {"name": "cost"}, "watchlist": {"size": 16000},
                   "matcher": {"threshold": 0.64},
                   "crowd": {"watchlisted_per_passer": 8e-4, "footfall_elasticity": 0.0},
                   "programme": {"generator": {"weeks": 520, "deployments_per_week": 100, "days_per_week": 7,
                                               "duration_hours": 24.0, "footfall_per_hour": 1e7}}})
    lines = _problems(e)                       # memory, and time
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("programme.generator.footfall_per_hour: one replicate would see about ")
        assert "lower the footfall or shorten the programme" in line


def test_too_many_workers_for_the_memory_names_workers():
    e = experiment(0.5, footfall=2e6, hours=24.0, replications=8)
    cost = estimate_cost(e)
    memory = int(cost.unit_memory_bytes * 2.5 + 3 * 2**28 + cost.pooled_memory_bytes)
    assert cost_problems(e, cost, memory, workers=1) == []
    (line,) = cost_problems(e, cost, memory, workers=8)
    assert line.startswith("workers: 8 units at once would need about ") and line.endswith("use at most 2")


def test_too_many_replications_names_replications_and_too_many_cells_the_sweep():
    data = load_experiment(ROOT / "experiments" / "met_2025_headline.toml").to_dict()
    data["watchlist"]["size"], data["experiment"]["replications"] = 100_000_000, 100_000
    (memory, time) = _problems(from_dict(data))
    assert memory.startswith("experiment.replications: 100,000 replications of 1 cell would pool")
    assert time.startswith("experiment.replications: 100,000 replications would take about")
    grid = {"review.officers": list(range(1, 201)), "review.operators": list(range(1, 101))}
    (line,) = _problems(experiment(replications=100, sweep=grid), memory_gib=8)
    assert line.startswith("sweep.parameters: 20,000 cells x 100 replications would pool")


def test_check_cost_raises_one_config_error_line_per_problem():
    with pytest.raises(ConfigError) as err:
        check_cost(experiment(0.0, footfall=1e7, hours=24.0), memory_bytes=16 * GIB)
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith("matcher.threshold: ")
