"""Sweeps: expansion, the units of work, and numbers that do not depend on how they are run."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import time

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.config import ConfigError, Range, Sweep, from_dict
from sim.pipeline import run_experiment
from sim.sweep import ExecutorError, ProcessExecutor, SerialExecutor, plan, run_unit


def tiny(sweep: dict | None = None, replications: int = 2, **sections) -> dict:
    """A programme of two one-hour deployments: a unit runs in a few hundredths of a second."""
    data = {
        "experiment": {"name": "tiny", "seed": 5, "replications": replications},
        "programme": {"generator": {"weeks": 1, "deployments_per_week": 2, "duration_hours": 1.0,
                                    "footfall_per_hour": 2000.0}},
        "watchlist": {"size": 2000},
    }
    if sweep is not None:
        data["sweep"] = sweep
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


GRID = {"parameters": {"matcher.threshold": [0.58, 0.60, 0.64], "watchlist.size": [1000, 5000]}}


# -- expansion ---------------------------------------------------------------------------------

values_lists = st.lists(st.integers(-1000, 1000), min_size=1, max_size=4)
paths = st.lists(st.sampled_from(["a.x", "b.y", "c.z", "d.w"]), min_size=1, max_size=4, unique=True)


@given(paths.flatmap(lambda ps: st.tuples(st.just(ps), st.lists(values_lists, min_size=len(ps),
                                                                   max_size=len(ps)))))
def test_product_is_every_combination_once_last_path_fastest(spec):
    names, lists = spec
    cells = Sweep(mode="product", parameters=dict(zip(names, lists, strict=True))).cells()
    assert len(cells) == math.prod(len(v) for v in lists)
    expected = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]
    assert cells == expected


@given(paths, st.integers(1, 5), st.data())
def test_zip_pairs_the_ith_values(names, length, data):
    lists = [data.draw(st.lists(st.integers(), min_size=length, max_size=length)) for _ in names]
    cells = Sweep(mode="zip", parameters=dict(zip(names, lists, strict=True))).cells()
    assert len(cells) == length
    for i, cell in enumerate(cells):
        assert cell == {n: v[i] for n, v in zip(names, lists, strict=True)}


def test_zip_of_unequal_lengths_is_refused():
    with pytest.raises(ValueError, match="equal length"):
        Sweep(mode="zip", parameters={"a.x": [1, 2], "b.y": [1, 2, 3]}).cells()


@given(st.floats(-10, 10), st.floats(0, 5), st.floats(1e-3, 1.0))
def test_range_runs_from_start_by_step_to_stop_inclusive(start, width, step):
    values = Range(start=start, stop=start + width, step=step).values()
    assert values[0] == pytest.approx(start, abs=1e-9)
    assert len(values) == math.floor(width / step + 1e-6) + 1
    assert values[-1] <= start + width + step * 1e-6 + 1e-9
    gaps = [b - a for a, b in itertools.pairwise(values)]
    assert all(g == pytest.approx(step, abs=1e-9) for g in gaps)


def test_threshold_range_050_to_070_by_0005_has_41_exact_values():
    values = Range(start=0.5, stop=0.7, step=0.005).values()
    assert len(values) == 41
    assert values[0] == 0.5 and values[-1] == 0.7 and values[20] == 0.6


def test_no_sweep_is_one_cell():
    assert Sweep().cells() == [{}]


# -- validation: one line naming the field ---------------------------------------------------

@pytest.mark.parametrize("sweep, field", [
    ({"parameters": {"matcher.treshold": [0.6]}}, "sweep.parameters.matcher.treshold"),
    ({"parameters": {"watchlist.size": [-5, 1000]}}, "watchlist.size"),
    ({"parameters": {"review.officers": [2, "many"]}}, "review.officers"),
    ({"parameters": {"matcher.threshold": []}}, "sweep.parameters.matcher.threshold"),
    ({"parameters": {"matcher.threshold": {"start": 0.6, "stop": 0.7, "step": 0}}}, "step"),
    ({"mode": "zip", "parameters": {"review.officers": [1, 2], "watchlist.size": [1, 2, 3]}}, "sweep"),
    ({"mode": "grid", "parameters": {"review.officers": [1]}}, "sweep.mode"),
])
def test_a_bad_sweep_is_one_line_naming_the_field(sweep, field):
    with pytest.raises(ConfigError) as err:
        from_dict(tiny(sweep))
    assert len(err.value.problems) == 1, err.value.problems
    line = err.value.problems[0]
    assert "\n" not in line and field in line.split(":")[0], line


def test_floor_is_the_lowest_swept_threshold():
    e = from_dict(tiny({"parameters": {"matcher.threshold": {"start": 0.55, "stop": 0.6, "step": 0.01}}}))
    assert e.matcher.score_floor == 0.55


# -- units -------------------------------------------------------------------------------------

def test_cells_differing_only_in_threshold_share_a_unit():
    e = from_dict(tiny(GRID, replications=3))
    cells, units = plan(e)
    assert len(cells) == 6
    assert len(units) == 2 * 3                      # two watchlist sizes x three replicates
    assert len({u.name for u in units}) == len(units)
    for u in units:
        sizes = {cells[c]["watchlist.size"] for c in u.cells}
        assert len(sizes) == 1
        assert sorted(u.thresholds) == [0.58, 0.60, 0.64]
    covered = sorted((c, u.replicate) for u in units for c in u.cells)
    assert covered == sorted(itertools.product(range(6), range(3)))


def test_a_unit_carries_its_cells_settings():
    e = from_dict(tiny({"parameters": {"review.officers": [1, 9]}}))
    _, units = plan(e)
    from sim.config import Experiment

    officers = sorted({Experiment.from_toml(u.config).review.officers for u in units})
    assert officers == [1, 9]


def metrics_of(data: dict, **kwargs) -> pd.DataFrame:
    return run_experiment(from_dict(data), **kwargs).metrics


def test_a_cells_numbers_do_not_depend_on_the_other_cells():
    """Common random numbers: threshold 0.60 alone equals threshold 0.60 inside a sweep."""
    floor = {"score_floor": 0.55}
    alone = metrics_of(tiny(None, matcher={"threshold": 0.60, **floor}))
    swept = metrics_of(tiny({"parameters": {"matcher.threshold": [0.55, 0.60, 0.70]}}, matcher=floor))
    inside = swept[swept["cell"] == 1].drop(columns=["cell", "matcher.threshold"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(inside, alone.drop(columns=["cell"]).reset_index(drop=True))
    assert (inside["value"] > 0).any()


def test_threshold_cells_meet_the_same_passers():
    m = metrics_of(tiny({"parameters": {"matcher.threshold": [0.50, 0.56, 0.66]}}))
    faces = m[(m["metric"] == "faces") & (m["group"] == "all")].pivot(index="replicate", columns="cell",
                                                                      values="value")
    assert (faces.nunique(axis=1) == 1).all()
    alerts = m[(m["metric"] == "alerts") & (m["group"] == "all")].pivot(index="replicate", columns="cell",
                                                                        values="value")
    assert (alerts[0] >= alerts[1]).all() and (alerts[1] >= alerts[2]).all()
    assert (alerts[0] > alerts[2]).any()


def test_sweeping_officers_changes_only_review():
    m = metrics_of(tiny({"parameters": {"review.officers": [4, 20]}}, replications=1,
                        matcher={"threshold": 0.55}))
    wide = m[m["group"] == "all"].pivot(index="metric", columns="cell", values="value")
    assert wide.loc["alerts", 0] == wide.loc["alerts", 1] > 0
    assert wide.loc["officer_utilisation", 0] > wide.loc["officer_utilisation", 1]


# -- executors: same numbers however they are run ------------------------------------------------

def rows_by_unit(executor, units):
    try:
        return {u.name: rows for u, rows in executor.run(units)}
    finally:
        executor.close()


def test_completion_order_does_not_change_a_units_rows():
    _, units = plan(from_dict(tiny(GRID)))
    forward = rows_by_unit(SerialExecutor(), units)
    backward = rows_by_unit(SerialExecutor(), list(reversed(units)))
    assert sorted(forward) == sorted(backward)
    for name, rows in forward.items():               # frames, so that NaN equals NaN
        pd.testing.assert_frame_equal(pd.DataFrame(rows), pd.DataFrame(backward[name]))
    pd.testing.assert_frame_equal(pd.DataFrame(run_unit(units[1])), pd.DataFrame(forward[units[1].name]))


def test_two_worker_processes_give_the_serial_metrics():
    data = tiny(GRID)
    serial = metrics_of(data, workers=1)
    parallel = metrics_of(data, workers=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_process_executor_yields_every_unit_once():
    _, units = plan(from_dict(tiny(GRID)))
    got = rows_by_unit(ProcessExecutor(2), units)
    assert sorted(got) == sorted(u.name for u in units)


@pytest.mark.slow
def test_a_dask_cluster_of_two_workers_gives_the_serial_metrics():
    distributed = pytest.importorskip("dask.distributed")
    data = tiny(GRID)
    serial = metrics_of(data, workers=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        on_dask = metrics_of(data, scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
    pd.testing.assert_frame_equal(serial, on_dask)


def test_no_scheduler_at_the_address_is_one_clear_error():
    pytest.importorskip("dask.distributed")
    from sim.sweep import DaskExecutor, ExecutorError

    with pytest.raises(ExecutorError, match="scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:9"):
        DaskExecutor("tcp://127.0.0.1:9", timeout_seconds=1.0)


def test_progress_counts_cell_replicates_up_to_the_total():
    seen: list[tuple[int, int]] = []
    run_experiment(from_dict(tiny(GRID, replications=2)), progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 12)
    assert seen[-1] == (12, 12)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) == 1 + 4                        # once before, then after each of 4 units


def test_overrides_replace_seed_and_replications():
    e = from_dict(tiny(None))
    r = run_experiment(e, replications=3, seed=99)
    assert r.experiment.experiment.seed == 99 and r.experiment.experiment.replications == 3
    assert sorted(r.metrics["replicate"].unique()) == [0, 1, 2]
    other = run_experiment(e, replications=3, seed=98).metrics
    assert not r.metrics["value"].equals(other["value"])


def test_sweep_of_a_watchlist_size_is_set_in_the_unit():
    _, units = plan(from_dict(tiny({"parameters": {"watchlist.size": [1000, 30000]}}, replications=1)))
    from sim.config import Experiment

    assert [Experiment.from_toml(u.config).watchlist.size for u in units] == [1000, 30000]


def _fails(x):
    raise ValueError(f"no {x}")


def test_a_task_beside_the_units_gives_its_value_or_raises_where_it_is_waited_for():
    for executor in (SerialExecutor(), ProcessExecutor(2)):
        try:
            assert executor.submit(divmod, 7, 2).result() == (3, 1)
            failed = executor.submit(_fails, "thing")
            with pytest.raises(ValueError, match="no thing"):
                failed.result()
        finally:
            executor.close()


def test_what_prepares_the_later_workers_does_not_change_the_units():
    _, units = plan(from_dict(tiny(GRID)))
    executor = ProcessExecutor(2)
    try:
        got = {u.name: rows for u, rows in executor.run(units, prepare=_ready)}
    finally:
        executor.close()
    assert sorted(got) == sorted(u.name for u in units)
    for unit in units[:2]:
        pd.testing.assert_frame_equal(pd.DataFrame(got[unit.name]), pd.DataFrame(run_unit(unit)))


def _ready() -> None:
    import matplotlib.figure  # noqa: F401


_PREPARED: list[bool] = []        # set by _prepare, in the process that runs it


def _prepare() -> None:
    _PREPARED.append(True)


def _was_prepared() -> bool:
    return bool(_PREPARED)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="inheritance needs fork")
def test_workers_started_after_prepare_inherit_it_and_the_first_is_started_before():
    _, units = plan(from_dict(tiny(None, replications=3)))
    executor = ProcessExecutor(2)
    try:
        assert len(list(executor.run(units, prepare=_prepare))) == len(units)
        assert _PREPARED == [True]                                   # run here, once
        assert executor.submit(_was_prepared, prepared=True).result()
        assert not executor.submit(_was_prepared).result()
    finally:
        executor.close()
        _PREPARED.clear()


def test_a_prepared_task_no_worker_has_started_can_be_cancelled_and_done_by_the_caller():
    executor = ProcessExecutor(2)             # one worker for prepared tasks
    try:
        busy = executor.submit(time.sleep, 1.0, prepared=True)
        waiting = executor.submit(divmod, 7, 2, prepared=True)
        assert waiting.cancel()               # held back, not queued in the worker's pool
        after = executor.submit(divmod, 9, 4, prepared=True)
        assert busy.result() is None and after.result() == (2, 1)
        assert waiting.cancelled()
        left = [executor.submit(time.sleep, 0.5, prepared=True), executor.submit(divmod, 1, 1, prepared=True)]
    finally:
        executor.close()
    assert left[1].cancelled()                # closing drops what no worker started


def test_worker_processes_are_two_or_more():
    with pytest.raises(ExecutorError, match="workers"):
        ProcessExecutor(1)


def _slow_prepare() -> None:
    time.sleep(0.6)


def _quick_prepare() -> None:
    time.sleep(0.1)


def _unit_pid(unit) -> list[dict]:
    time.sleep(1.0)                             # much longer than _quick_prepare
    return [{"unit": unit.name, "pid": os.getpid()}]


def test_a_run_left_while_prepare_runs_leaves_the_executor_usable():
    _, units = plan(from_dict(tiny(None, replications=4)))
    executor = ProcessExecutor(2)
    try:
        for _ in executor.run(units, prepare=_slow_prepare):
            break                                   # before prepare is done
        assert executor.submit(divmod, 7, 2, prepared=True).result(timeout=30) == (3, 1)
        assert len(list(executor.run(units))) == len(units)
    finally:
        executor.close()


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the workers inherit the patch")
def test_few_units_are_spread_over_the_workers_even_while_prepare_runs(monkeypatch):
    import sim.sweep as sweep

    monkeypatch.setattr(sweep, "run_unit", _unit_pid)   # before any worker is forked
    _, units = plan(from_dict(tiny(None, replications=2)))
    executor = ProcessExecutor(3)
    try:
        pids = {rows[0]["pid"] for _, rows in executor.run(units, prepare=_quick_prepare)}
    finally:
        executor.close()
    assert len(pids) == 2          # the second on a later worker, not held behind the first one


def test_an_executor_refuses_what_it_cannot_do_rather_than_wait_for_ever():
    import threading

    executor = ProcessExecutor(2)
    try:
        refused: list[BaseException] = []

        def elsewhere() -> None:
            try:
                executor.submit(divmod, 1, 1)       # no worker started yet: none may be forked there
            except RuntimeError as exc:
                refused.append(exc)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        assert refused and "thread that made it" in str(refused[0])
    finally:
        executor.close()
    with pytest.raises(RuntimeError, match="after close"):
        executor.submit(divmod, 1, 1)
    with pytest.raises(RuntimeError, match="after close"):
        list(executor.run([]))


# -- units begun before the run asks for them ----------------------------------------------------

def test_units_begun_early_are_taken_by_name_and_give_the_serial_rows():
    _, units = plan(from_dict(tiny(GRID)))
    serial = rows_by_unit(SerialExecutor(), units)
    executor = ProcessExecutor(2)
    executor.begin(units[:3])
    # the run asks for most of them again (as fresh, equal Units) and for others never begun
    asked = plan(from_dict(tiny(GRID)))[1][1:]
    got = rows_by_unit(executor, asked)
    assert sorted(got) == sorted(u.name for u in asked)
    for name, rows in got.items():
        pd.testing.assert_frame_equal(pd.DataFrame(rows), pd.DataFrame(serial[name]))


def test_a_unit_begun_and_not_asked_for_is_dropped():
    _, units = plan(from_dict(tiny(None, replications=4)))
    executor = ProcessExecutor(2)
    try:
        executor.begin(units)
        assert [u.name for u, _ in executor.run(units[:1])] == [units[0].name]
        assert not executor._begun
        # a later run computes what it asks for, whatever was begun before
        assert sorted(u.name for u, _ in executor.run(units[2:])) == sorted(u.name for u in units[2:])
    finally:
        executor.close()


def test_begin_run_refuses_what_the_run_would_refuse_before_starting_anything():
    from sim.sweep import begin_run

    with pytest.raises(ExecutorError, match="workers"):
        begin_run(from_dict(tiny(None)), 0)
    huge = from_dict(tiny(None, replications=1, watchlist={"size": 2000},
                          programme={"generator": {"weeks": 52, "deployments_per_week": 7,
                                                   "duration_hours": 24.0,
                                                   "footfall_per_hour": 10_000_000.0}},
                          matcher={"threshold": 0.0, "score_floor": 0.0}))
    with pytest.raises(ConfigError):
        begin_run(huge, 2)


def test_a_run_given_begun_workers_gives_the_serial_metrics_and_closes_them(tmp_path):
    from sim.results import ResultsError
    from sim.sweep import begin_run

    experiment = from_dict(tiny(GRID))
    serial = run_experiment(experiment).metrics
    begun = begin_run(experiment, 2)
    early = run_experiment(experiment, workers=2, out=tmp_path / "a", executor=begun)
    pd.testing.assert_frame_equal(serial, early.metrics)
    assert begun._closed
    # a finished folder is read back: what was begun for it is dropped, and closed
    again = begin_run(experiment, 2)
    assert run_experiment(experiment, workers=2, out=tmp_path / "a", executor=again).reused
    assert again._closed
    # a folder the run must not touch: refused, and what was begun is closed too
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("a user's file")
    refused = begin_run(experiment, 2)
    with pytest.raises(ResultsError):
        run_experiment(experiment, workers=2, out=tmp_path / "b", executor=refused)
    assert refused._closed and (tmp_path / "b" / "mine.txt").read_text() == "a user's file"


def test_workers_begun_for_another_experiment_are_not_used_for_this_one():
    from sim.sweep import begin_run

    experiment = from_dict(tiny(GRID))
    begun = begin_run(experiment, 2)
    # the same file, another seed: units of the same names, other numbers
    reseeded = run_experiment(experiment, seed=12345, workers=2, executor=begun)
    assert begun._closed
    pd.testing.assert_frame_equal(reseeded.metrics, run_experiment(experiment, seed=12345).metrics)


def test_a_begun_unit_is_taken_only_if_it_is_the_same_unit():
    experiment = from_dict(tiny(None, replications=2))
    _, units = plan(experiment)
    _, other = plan(from_dict(tiny(None, replications=2, experiment={"seed": 6})))
    assert [u.name for u in units] == [u.name for u in other]
    executor = ProcessExecutor(2)
    executor.begin(units)
    got = rows_by_unit(executor, other)
    for unit in other:
        pd.testing.assert_frame_equal(pd.DataFrame(got[unit.name]), pd.DataFrame(run_unit(unit)))


def _big_rows(unit) -> list[dict]:
    return [{"unit": unit.name, "blob": b"x" * (64 * 2**20)}]    # long to write back


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the workers inherit the patch")
def test_stopping_workers_while_they_write_rows_back_does_not_hang(monkeypatch):
    import threading

    import sim.sweep as sweep

    monkeypatch.setattr(sweep, "run_unit", _big_rows)        # before any worker is forked
    _, units = plan(from_dict(tiny(None, replications=40)))
    for attempt in range(3):                                   # each stop lands somewhere else
        executor = ProcessExecutor(2)
        executor.begin(units)
        time.sleep(0.15 + 0.1 * attempt)                      # mostly writing 64 MB back by now
        closing = threading.Thread(target=executor.close, kwargs={"cancel": True}, daemon=True)
        closing.start()
        closing.join(timeout=30)
        assert not closing.is_alive(), "close(cancel=True) waits for ever"


def test_a_run_whose_units_end_before_prepare_ends_returns():
    import threading

    import sim.sweep as sweep

    def post_then_linger(fn, ended):             # prepare's thread, alive a while after it posts
        try:
            fn()
        finally:
            ended.put(sweep._PREPARED)
            time.sleep(0.5)

    _, units = plan(from_dict(tiny(None, replications=1)))
    got: list = []

    def run_there() -> None:
        executor = ProcessExecutor(2)
        try:
            got.extend(executor.run(units, prepare=_quick_prepare))
        finally:
            executor.close()

    original = sweep._then_post
    sweep._then_post = post_then_linger
    try:
        thread = threading.Thread(target=run_there, daemon=True)
        thread.start()
        thread.join(timeout=60)
    finally:
        sweep._then_post = original
    assert not thread.is_alive(), "run waits for ever once prepare has posted"
    assert [u.name for u, _ in got] == [units[0].name]
