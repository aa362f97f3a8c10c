"""Sweeps: cells x replicates, spread over an executor, results independent of how.

A sweep is a grid over dotted settings (``matcher.threshold``, ``watchlist.size``,
``review.officers``): the product of the value lists, or their zip. Each point is a **cell**;
each cell is run ``replications`` times.

Think of a survey of one street with several cameras tuned differently: the same people walk
past every camera, so differences between cameras are differences of tuning, not of crowd.
Cells that differ only in the threshold share one search: their passers are drawn once and
compared with every threshold (common random numbers), so a 100-threshold sweep costs about one
run for the search stage. The **unit** of work is one replicate of one such group of cells.

A unit's random streams depend only on the root seed, the replicate, the deployment and the
stage (``sim.run.stream``), never on which worker runs it, when, or what ran before. So any
executor, any number of workers and any order of completion give the same numbers, and a run
interrupted and resumed gives the same numbers as one that was not.

Executors share one small interface (``run(units)`` yields ``(unit, rows)`` as units finish):
serial (in this process), local processes (the default), or an existing Dask distributed
cluster (``scheduler = "tcp://HOST:PORT"``). Nothing needs a server to run. This module plans and
computes; it never touches files (``sim.results`` does, and ``sim.pipeline`` joins the two).
"""

from __future__ import annotations

import functools
import multiprocessing.connection
import os
import re
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from .config import Experiment
from .cost import THRESHOLD, check_cost, search_groups
from .replicate import simulate_replicate, unit_rows

Rows = list[dict[str, Any]]


class ExecutorError(RuntimeError):
    """An executor that cannot start (no Dask, no scheduler at the address, bad worker count).

    ``setting`` names what to change (``"scheduler"``, ``"workers"``); the message starts with it.
    """

    def __init__(self, setting: str, detail: str):
        self.setting = setting
        self.detail = detail
        super().__init__(f"{setting}: {detail}")


@dataclass(frozen=True)
class Unit:
    """One replicate of a group of cells that differ only in threshold: the unit of work."""

    group: int
    replicate: int
    seed: int
    cells: tuple[int, ...]
    thresholds: tuple[float, ...]
    config: str                      # the group's resolved experiment as TOML
    params: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        """The unit's file name in ``parts/``: stable across runs of the same config."""
        return f"group{self.group:05d}-rep{self.replicate:05d}"


def plan(experiment: Experiment) -> tuple[list[dict[str, Any]], list[Unit]]:
    """The cells of an experiment and the units of work that compute them, in a fixed order."""
    cells = experiment.sweep.cells()
    units = []
    meta = experiment.experiment
    for g, members in enumerate(search_groups(cells)):
        rest = {k: v for k, v in cells[members[0]].items() if k != THRESHOLD}
        group_experiment = experiment.with_values(rest) if experiment.sweep.parameters else experiment
        thresholds = tuple(float(cells[i].get(THRESHOLD, experiment.matcher.threshold)) for i in members)
        if min(thresholds) < group_experiment.matcher.score_floor:  # validation forbids it; be loud
            raise ValueError(f"threshold {min(thresholds)} is below matcher.score_floor "
                             f"{group_experiment.matcher.score_floor}")
        config = group_experiment.to_toml()
        for r in range(meta.replications):
            units.append(Unit(group=g, replicate=r, seed=meta.seed, cells=tuple(members),
                              thresholds=thresholds, config=config,
                              params=tuple(cells[i] for i in members)))
    return cells, units


def run_unit(unit: Unit) -> Rows:
    """Compute one unit: tidy rows (cell, replicate, group, metric, value). Pure and picklable."""
    experiment = Experiment.from_toml(unit.config)
    results = simulate_replicate(experiment, unit.replicate, sorted(set(unit.thresholds)), seed=unit.seed)
    rows: Rows = []
    for cell, threshold in zip(unit.cells, unit.thresholds, strict=True):
        rows.extend(unit_rows(cell, unit.replicate, results[threshold]))
    return rows


# -- executors -------------------------------------------------------------------------------

class Executor:
    """Runs units and yields ``(unit, rows)`` as each completes, in any order.

    ``parallel``: whether ``submit``'s tasks run side by side (in other processes), so that
    handing work to it can save time rather than only add pickling.

    ``prepare``: readies this process for the tasks that follow the units (the report's imports).
    Local workers run it here while the first worker starts on the units, and start the other
    workers from this process once it is done, so that they inherit what it imported instead of
    each importing it again; elsewhere it is not needed and not run.
    """

    parallel = False
    begun_for: Experiment | None = None    # the experiment ``begin_run`` checked and began

    def begin(self, units: list[Unit]) -> None:
        """Start on units that a later ``run`` will ask for (it takes those it asks for again, the
        same units, and drops the others), so that they are computed while this process readies
        the rest. Here (nothing runs in the background) there is nothing to start."""

    def run(self, units: list[Unit], prepare: Callable[[], Any] | None = None
            ) -> Iterator[tuple[Unit, Rows]]:
        raise NotImplementedError

    def submit(self, fn: Callable[..., Any], /, *args: Any, prepared: bool = False) -> Future:
        """``fn(*args)`` as a task beside the units (a report's figures, the posterior comparison).

        Here: at once, in this process. Local workers run it in a worker, so that several run side
        by side; ``fn`` and ``args`` must then be picklable. ``prepared``: the task needs what
        ``run``'s ``prepare`` readied (a figure needs matplotlib), so it goes to a worker started
        after it.
        """
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - raised by result(), where the caller waits
            future.set_exception(exc)
        return future

    def close(self, cancel: bool = False) -> None:
        """Release the workers; ``cancel`` drops work in flight (after Ctrl-C)."""


class SerialExecutor(Executor):
    """Every unit in this process, one after another: the reference for the others.

    Each unit is computed in a worker thread while this thread waits for it in short slices.
    Python acts on Ctrl-C and SIGTERM in the main thread only, between two bytecodes: a unit
    computed there could hold them off for as long as one numpy call lasts (sorting or searching
    tens of millions of candidates takes minutes). Waiting in slices, the main thread takes the
    signal at once; the unit's thread is a daemon, so it never keeps the process alive. The
    numbers are those of ``run_unit`` called directly: the thread changes when, not what.
    """

    poll_seconds = 0.1

    def run(self, units: list[Unit], prepare: Callable[[], Any] | None = None
            ) -> Iterator[tuple[Unit, Rows]]:
        for unit in units:
            yield unit, _in_thread(run_unit, unit, self.poll_seconds)


UNIT_THREAD = "lfrsim-unit"
_computing: set[str] = set()          # units whose thread is inside ``compute`` (set.add/discard: atomic)


def unit_still_running() -> bool:
    """Whether a unit's thread is still inside its computation (the main thread stopped waiting).

    After Ctrl-C the thread runs on inside its library call, and leaving the process beside it
    can hang: the C library's exit handlers (OpenBLAS joining its threads) wait for that call,
    seen for over a minute. A command that stops while this is true leaves with ``os._exit`` once
    its files are written. (``Thread.is_alive`` cannot tell: in Python 3.11 a ``join`` interrupted
    by KeyboardInterrupt marks a running thread stopped.)
    """
    return bool(_computing)


def _in_thread(compute: Callable[[Unit], Rows], unit: Unit, poll_seconds: float) -> Rows:
    """``compute(unit)`` in a daemon thread, waited for in slices; its exception is raised here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["rows"] = compute(unit)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
            outcome["error"] = exc
        finally:
            _computing.discard(unit.name)

    thread = threading.Thread(target=target, name=f"{UNIT_THREAD} {unit.name}", daemon=True)
    _computing.add(unit.name)                  # before start: a signal may come at once
    try:
        thread.start()
    except BaseException:
        _computing.discard(unit.name)
        raise
    while thread.is_alive():
        thread.join(poll_seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["rows"]


def _start_worker() -> None:
    """Set up a worker process: deaf to Ctrl-C, and gone when its parent is.

    Ctrl-C reaches the whole process group; only the parent decides what stops. A parent killed
    outright (kill -9) cannot tell its workers, so each watches for its parent to change and
    exits rather than linger as an orphan.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the command's own SIGTERM handler is for the parent
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="lfrsim-parent-watch", daemon=True).start()


_Task = tuple[Future, Callable[..., Any], tuple[Any, ...]]   # (its future here, fn, args)
_PREPARED = object()            # what the thread running ``prepare`` posts when it is done


# Units the first worker holds ahead while this process imports: a unit handed back waits for
# this process's threads to give the next (each step waits for the interpreter lock the imports
# hold), which took longer than one unit of the threshold sweep (~0.1 s) with one held.
HELD_AHEAD = 2


class ProcessExecutor(Executor):
    """Local worker processes; Ctrl-C stops the parent, which stops the workers.

    Started in two steps. The first worker is started with the units and takes them at once;
    meanwhile this process runs ``run``'s ``prepare`` in a thread (the report's imports, which
    would otherwise keep the second core idle, or be paid again in every worker); the other
    workers are started after it, inheriting what it imported. Prepared tasks (the figures) go to
    those others; the rest (units, the posterior comparison) to any worker.

    Work waits here, not in the pools, and a worker is given the next piece the moment it hands
    back the last (from the pool's own thread, so even while this thread is busy): no worker
    holds work back while another is idle, and a task no worker has started can still be
    cancelled and done by the caller instead. Processes are forked only from the thread that made
    the executor. The later workers are forked while the first pool's own threads run (Python
    3.12+ warns of any fork beside other threads, a DeprecationWarning); those threads wait on the
    first worker's pipes and hold nothing a later worker uses. (Where processes start by spawn or
    forkserver rather than fork, the default from Python 3.14, nothing is inherited and a worker
    imports what a task needs: slower, the same results.)
    """

    parallel = True

    def __init__(self, workers: int):
        if workers < 2:
            raise ExecutorError("workers", f"must be >= 2 for worker processes (1 runs here), got {workers}")
        self.workers = workers
        self.first = ProcessPoolExecutor(max_workers=1, initializer=_start_worker)
        self.others = ProcessPoolExecutor(max_workers=workers - 1, initializer=_start_worker)
        self._owner = threading.get_ident()
        self._lock = threading.Lock()       # never held while a pool is called
        self._free = {self.first: 1, self.others: 0}      # the others open once prepare is done
        self._others_open = False
        self._ahead = 0                     # units the first worker holds ahead until the others open
        self._readying: threading.Thread | None = None    # prepare's thread, until it is settled
        self._started: set[ProcessPoolExecutor] = set()
        self._plain: deque[_Task] = deque()
        self._prepared: deque[_Task] = deque()
        self._begun: dict[str, tuple[Unit, Future]] = {}   # started by begin, not yet run: by name
        self._closed = False

    def begin(self, units: list[Unit]) -> None:
        self._check_open()
        if threading.get_ident() != self._owner:
            raise RuntimeError("a ProcessExecutor begins units from the thread that made it")
        with self._lock:
            for unit in units:
                if unit.name not in self._begun:
                    future: Future = Future()
                    self._begun[unit.name] = (unit, future)
                    self._plain.append((future, run_unit, (unit,)))
            self._hold_ahead(len(self._begun))  # this process is busy importing from here on
        self._dispatch()                       # the first worker is forked now, and starts

    def run(self, units: list[Unit], prepare: Callable[[], Any] | None = None
            ) -> Iterator[tuple[Unit, Rows]]:
        self._check_open()
        if threading.get_ident() != self._owner:
            raise RuntimeError("a ProcessExecutor runs units from the thread that made it")
        self._settle_prepare()
        ended: SimpleQueue[Any] = SimpleQueue()
        waiting: dict[Future, Unit] = {}
        fresh: list[_Task] = []
        with self._lock:
            begun, self._begun = self._begun, {}
        for unit in units:
            began, future = begun.get(unit.name, (None, None))
            if future is not None and began == unit:    # the same unit (its seed, its config)
                del begun[unit.name]
            else:
                future = Future()
                fresh.append((future, run_unit, (unit,)))
            waiting[future] = unit
        for _, future in begun.values():       # begun, then not asked for: dropped (one a worker
            future.cancel()                    # has started runs on, its rows unused)
        for future in waiting:
            future.add_done_callback(ended.put)   # at once for a unit begun and already done
        readying = None
        try:
            with self._lock:
                self._plain.extend(fresh)
            if prepare is not None and self._readying is None and not self._others_open:
                readying = threading.Thread(target=_then_post, args=(prepare, ended),
                                            name="lfrsim-prepare", daemon=True)
                self._readying = readying
                with self._lock:
                    self._hold_ahead(len(units))
            elif self._readying is None:
                self._open_others()
            self._dispatch()                   # the first worker starts before prepare does
            if readying is not None:
                readying.start()
            left = len(units)
            while left or (readying is not None and self._readying is readying):
                done = _next(ended)
                if done is _PREPARED:
                    assert readying is not None
                    readying.join()            # it posts just before it ends: settled below, surely
                else:
                    left -= 1
                # A failed prepare loses only the head start: the imports the report makes for
                # itself raise it where it matters.
                self._settle_prepare()
                self._dispatch()               # here: the others are forked by this thread
                if done is not _PREPARED:
                    yield waiting.pop(done), done.result()
        finally:
            for future in waiting:
                future.cancel()                # those no worker has started
            self._settle_prepare()             # a prepare still running is settled by a later call

    def submit(self, fn: Callable[..., Any], /, *args: Any, prepared: bool = False) -> Future:
        self._check_open()
        here = threading.get_ident() == self._owner
        if here:
            if prepared and self._readying is not None:
                self._readying.join()          # what a prepared task needs, readied
            self._settle_prepare()
            if self._readying is None:
                self._open_others()
        future: Future = Future()
        with self._lock:
            pools = (self.others,) if prepared else (self.first, self.others)
            if not here and not any(pool in self._started for pool in pools):
                raise RuntimeError("a ProcessExecutor's workers are started from the thread that made it: "
                                   "submit there first")
            (self._prepared if prepared else self._plain).append((future, fn, args))
        self._dispatch()
        return future

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("cannot use a ProcessExecutor after close()")

    def _hold_ahead(self, units: int) -> None:
        """While this process is busy (importing what follows the units: its threads then hold
        the interpreter, and a worker that hands back a unit waits for the pool's thread to give
        it the next), the first worker holds ``HELD_AHEAD`` units ahead, until the others are
        opened. Not with few units: one held behind another would wait there, not move while
        later workers idle. Under the lock."""
        if not self._others_open and not self._ahead and units >= (1 + HELD_AHEAD) * self.workers:
            self._ahead = HELD_AHEAD
            self._free[self.first] += HELD_AHEAD

    def _settle_prepare(self) -> None:
        """Once prepare's thread has ended (here: its fork must not run beside it), open the other
        workers."""
        readying = self._readying
        if readying is None or readying.is_alive():
            return
        readying.join()
        self._readying = None
        self._open_others()

    def _open_others(self) -> None:
        """Open the other workers; the first worker's unit ahead is given back."""
        with self._lock:
            if not self._others_open:
                self._others_open = True
                self._free[self.others] = self.workers - 1
                self._free[self.first] -= self._ahead
                self._ahead = 0

    def _dispatch(self) -> None:
        """Give waiting work to idle workers: prepared tasks to the others, the rest to any."""
        here = threading.get_ident() == self._owner
        given: list[tuple[ProcessPoolExecutor, _Task]] = []
        with self._lock:
            if self._closed:
                return
            for pool, tasks in ((self.others, self._prepared), (self.first, self._plain),
                                (self.others, self._plain)):
                if pool not in self._started and not here:
                    continue                   # forked only from the executor's own thread
                while tasks and self._free[pool] > 0:
                    task = tasks.popleft()
                    if task[0].set_running_or_notify_cancel():    # False: cancelled while waiting
                        self._free[pool] -= 1
                        given.append((pool, task))
        started = False
        for i, (pool, (future, fn, args)) in enumerate(given):
            try:
                handed = pool.submit(fn, *args)
            except RuntimeError as exc:        # the pool shut down meanwhile (closing)
                future.set_exception(exc)
                continue
            except BaseException:
                # interrupted (Ctrl-C): what was taken and not handed out ends here, its slot back
                for other, (left_out, _, _) in given[i:]:
                    left_out.set_exception(CancelledError())
                    with self._lock:
                        self._free[other] += 1
                raise
            handed.add_done_callback(functools.partial(self._ended, pool, future))
            if pool not in self._started:      # its processes exist now: other threads may use it
                with self._lock:
                    self._started.add(pool)
                started = True
        if started:
            self._dispatch()                   # what a task that ended meanwhile could not give it

    def _ended(self, pool: ProcessPoolExecutor, future: Future, task: Future) -> None:
        try:
            with self._lock:
                self._free[pool] += 1
            self._dispatch()                   # the next piece first, then the news of this one
        finally:
            if not future.done():
                if task.cancelled():
                    future.set_exception(CancelledError())
                elif task.exception() is not None:
                    future.set_exception(task.exception())
                else:
                    future.set_result(task.result())

    def close(self, cancel: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            dropped = [task[0] for task in (*self._plain, *self._prepared)]
            self._plain.clear()
            self._prepared.clear()
            self._begun.clear()
        for future in dropped:
            future.cancel()
        pools = (self.first, self.others)
        if cancel:
            # Units still running would only be thrown away: stop their processes now rather than
            # wait for them. (ProcessPoolExecutor offers no public way before Python 3.14.)
            processes = [p for pool in pools for p in (getattr(pool, "_processes", None) or {}).values()]
            for process in processes:
                process.terminate()
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=10.0)
            # A worker stopped while it wrote a unit's rows back leaves part of them in the pipe,
            # and its pool's thread waiting for the rest for ever. With every worker gone (each
            # held a copy of the pipe's writing end, this pool's or, forked later, the other's),
            # this process's copy is the last: closing it ends that wait (nothing here writes on
            # it; the pool's thread is woken by a pipe of its own).
            for pool in pools:
                queue = getattr(pool, "_result_queue", None)
                if queue is not None:
                    queue._writer.close()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def _then_post(fn: Callable[[], Any], ended: SimpleQueue[Any]) -> None:
    """``fn()``, then ``_PREPARED`` posted to ``ended`` whatever happened (see ``run``)."""
    try:
        fn()
    except Exception:  # noqa: BLE001, S110 - a failed prepare only loses the head start
        pass
    finally:
        ended.put(_PREPARED)


def _next(ended: SimpleQueue[Any]) -> Any:
    """The next item, waited for in slices (so that Ctrl-C is taken at once)."""
    while True:
        try:
            return ended.get(timeout=0.5)
        except Empty:
            continue


# tcp://HOST:PORT (or tls://): HOST a name, an IPv4 address or a bracketed IPv6 address
SCHEDULER_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})")


def scheduler_endpoint(address: str) -> tuple[str, int]:
    """The (host, port) of a scheduler address ``tcp://HOST:PORT``; ExecutorError naming it if not one."""
    found = SCHEDULER_ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if found is None or not 1 <= int(found.group(3)) <= 65535:
        shown = repr(address) if len(repr(address)) <= 80 else repr(address)[:77] + "..."
        raise ExecutorError("scheduler", f"must be tcp://HOST:PORT (e.g. tcp://10.0.0.1:8786), got {shown}")
    return found.group(2).strip("[]"), int(found.group(3))


def _probe(address: str, timeout_seconds: float) -> None:
    """Refuse at once an address where nothing listens, rather than after Dask's retries."""
    host, port = scheduler_endpoint(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            pass
    except TimeoutError:
        raise ExecutorError("scheduler", f"cannot reach a Dask scheduler at {address}: no answer within "
                                         f"{timeout_seconds:g} s") from None
    except OSError as exc:
        raise ExecutorError("scheduler", f"cannot reach a Dask scheduler at {address}: "
                                         f"{exc.strerror or exc}") from None


class DaskExecutor(Executor):
    """Units as tasks on an existing Dask distributed cluster (its workers must have lfrsim).

    The address is checked first (its form, then that something listens there, within
    ``probe_seconds``), so a typo or a stopped scheduler is one line at once, not 20 s later.
    """

    def __init__(self, address: str, timeout_seconds: float = 20.0, probe_seconds: float = 5.0):
        try:
            from dask.distributed import Client
        except ImportError:
            raise ExecutorError("scheduler", "needs Dask distributed: pip install 'lfrsim[dask]'") from None
        _probe(address, min(probe_seconds, timeout_seconds))
        try:
            self.client = Client(address, timeout=f"{timeout_seconds}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutorError("scheduler", f"cannot reach a Dask scheduler at {address}: {exc}") from None

    def run(self, units: list[Unit], prepare: Callable[[], Any] | None = None
            ) -> Iterator[tuple[Unit, Rows]]:
        from dask.distributed import as_completed

        futures = {self.client.submit(run_unit, u, pure=False, key=f"lfrsim-{u.name}-{id(self)}"): u
                   for u in units}
        try:
            for fut in as_completed(list(futures)):
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self, cancel: bool = False) -> None:
        self.client.close()


def check_executor(workers: int = 1, scheduler: str | None = None) -> None:
    """Refuse a bad worker count or scheduler address without starting anything."""
    if scheduler is not None:
        scheduler_endpoint(scheduler)
    elif workers < 1:
        raise ExecutorError("workers", f"must be >= 1, got {workers}")


def begin_run(experiment: Experiment, workers: int) -> Executor:
    """Local workers already computing an experiment's units, for ``sim.pipeline.run_experiment``
    to take over (its ``executor``): refused first as that run would be (workers, cost), then
    the first worker is started on the units while this process readies the rest (the results
    folder, and the imports pooling and the report need, which the units do not). For a run
    that will compute every unit (not one resumed) on local workers (``workers`` >= 2)."""
    check_executor(workers)
    check_cost(experiment, workers=workers)
    executor = make_executor(workers)
    try:
        executor.begin(plan(experiment)[1])
    except BaseException:
        executor.close(cancel=True)
        raise
    executor.begun_for = experiment
    return executor


def make_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    """Dask if a scheduler address is given, else local processes (or serial for one worker)."""
    check_executor(workers, scheduler)
    if scheduler:
        return DaskExecutor(scheduler)
    if workers == 1:
        return SerialExecutor()
    return ProcessExecutor(workers)
