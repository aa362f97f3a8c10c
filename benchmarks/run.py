"""Benchmarks: lfrsim side by side with brute force, a per-passer simpy model and numpy's limit.

    python benchmarks/run.py [--quick] [--json PATH]

Every ratio is measured in this one process, baseline and lfrsim taking turns round by round, each
timed several times and the best time kept; medians are recorded too. Times are CPU seconds of this
process by default (``--clock wall`` for wall seconds): the targets are per core, and on a shared
machine CPU time is what does not change when others' jobs take the processor. Nothing here is
part of the test suite: tests never assert on time. benchmarks/README.md says what each number
means and keeps the last measured table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import stages  # noqa: E402
from baselines import brute_force_best, hazard_inversion_search, simulate_per_passer  # noqa: E402
from stages import count_alerts, review_stage, search_stage  # noqa: E402

from sim.config import Experiment, load_experiment  # noqa: E402
from sim.draws import resolve  # noqa: E402
from sim.replicate import simulate_replicate  # noqa: E402
from sim.search import prepare_search  # noqa: E402

HEADLINE = ROOT / "experiments" / "met_2025_headline.toml"
THRESHOLD_SWEEP = ROOT / "experiments" / "threshold_sweep.toml"
THRESHOLD = 0.64
HEADLINE_CLI_REPLICATES = 20
SWEEP = [round(0.600 + 0.001 * i, 3) for i in range(100)]     # 0.600 .. 0.699, floor 0.60

# metric -> (target, "min" if the measured value must be at least the target, "max" if at most)
TARGETS = {
    "faces_per_second_search": (20e6, "min"),
    "ratio_vs_bruteforce": (10_000.0, "min"),
    "ratio_vs_simpy_per_passer": (100.0, "min"),
    "search_share_of_rng_limit": (0.2, "min"),
    "n_scaling_slowdown_1e3_to_1e6": (1.5, "max"),
    "sweep_cost_ratio_100_vs_1": (2.0, "max"),
    "sweep_cost_ratio_100_vs_1_end_to_end": (2.0, "max"),
    "end_to_end_seconds_headline": (0.040, "max"),
    "review_us_per_alert": (8.0, "max"),
    "peak_rss_increase_mb_1e8_faces": (1024.0, "max"),
    "cli_headline_wall_seconds": (2.5, "max"),
    "cli_threshold_sweep_cost_ratio": (2.5, "max"),
    "cli_threshold_sweep_speedup_2_workers": (1.6, "min"),
    "import_sim_wall_seconds": (0.2, "max"),
    "cli_validate_wall_seconds": (0.2, "max"),
    "figures_headline_wall_seconds_2_workers": (0.3, "max"),
}


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(best seconds, median seconds, last result) of ``repeat`` calls, on ``stages.clock``."""
    times = []
    result = None
    for _ in range(repeat):
        start = stages.clock()
        result = fn()
        times.append(stages.clock() - start)
    return min(times), float(np.median(times)), result


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float, object]]:
    """``timed`` for several variants, run in turn within each round so load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    last: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = stages.clock()
            last[name] = fn()
            times[name].append(stages.clock() - start)
    return {name: (min(t), float(np.median(t)), last[name]) for name, t in times.items()}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak since the last reset), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# -- the measurements --------------------------------------------------------------------------


def side_by_side(experiment: Experiment, repeat: int, brute_faces: int) -> dict:
    """numpy's normal draws, lfrsim's search stage and the brute force, in turn, round by round."""
    searched = search_stage(experiment)
    model, watchlist, table = searched.model, searched.watchlist, searched.table
    rng = np.random.default_rng(1)
    size = 10_000_000
    buffer = np.empty(size)
    shares = searched.sites[0].group_shares(model.groups, experiment.crowd.female_share)
    g = rng.choice(len(shares), size=brute_faces, p=shares)
    p = rng.normal(0.0, model.probe_effect_sd, brute_faces)
    runs = []

    def inversion():
        setup = prepare_search(experiment, 0, experiment.experiment.seed)
        return hazard_inversion_search(experiment, setup.table, setup.model, setup.sites,
                                       setup.watchlisted_probability, THRESHOLD, np.random.default_rng(3))

    timings = interleaved({
        "normals": lambda: rng.standard_normal(size, out=buffer),
        "search": lambda: runs.append(search_stage(experiment)),
        "brute": lambda: brute_force_best(model, watchlist, g, p, rng),
        "inversion": inversion,
    }, repeat)
    inv_best, inv_median, (inv_faces, inv_alerts) = timings["inversion"]
    lfr_alerts = int(count_alerts(searched, [THRESHOLD])[0, 0].sum())
    best = min(runs, key=lambda s: s.seconds)
    search_best, search_median, _ = timings["search"]
    brute_best, brute_median, brute_scores = timings["brute"]
    # the brute force and the table must describe the same best score
    table_scores = table.draw_best_impostor(g, np.ones(brute_faces), np.random.default_rng(2))
    return {
        "normals_per_second": size / timings["normals"][0],
        "normals_per_second_median": size / timings["normals"][1],
        "faces_per_second_search": best.faces / search_best,
        "faces_per_second_search_median": best.faces / search_median,
        "search_seconds_headline": search_best,
        "search_setup_seconds": best.setup_seconds,
        "search_deployments_seconds": best.deployments_seconds,
        "search_seconds_per_deployment": best.deployments_seconds / len(best.sites),
        "faces_headline_replicate": best.faces,
        "deployments_headline": len(best.sites),
        "candidates_headline": best.n_candidates,
        "faces_per_second_bruteforce": brute_faces / brute_best,
        "faces_per_second_bruteforce_median": brute_faces / brute_median,
        "bruteforce_watchlist_size": watchlist.size,
        "bruteforce_sample_faces": brute_faces,
        "bruteforce_mean_best_latent": float(np.mean(brute_scores)),
        "table_mean_best_latent": float(np.mean(table_scores)),
        "bruteforce_sd_best_latent": float(np.std(brute_scores)),
        "ratio_vs_bruteforce": (best.faces / search_best) / (brute_faces / brute_best),
        "faces_per_second_hazard_inversion": inv_faces / inv_best,
        "faces_per_second_hazard_inversion_median": inv_faces / inv_median,
        "ratio_vs_hazard_inversion": (best.faces / search_best) / (inv_faces / inv_best),
        "hazard_inversion_alerts_per_million_faces": 1e6 * inv_alerts / inv_faces,
        "lfrsim_search_alerts_per_million_faces": 1e6 * lfr_alerts / searched.faces,
        "search_share_of_rng_limit": (best.faces / search_best) / (size / timings["normals"][0]),
    }


def search_cost_per_face(experiment: Experiment, repeat: int, quick: bool) -> dict:
    """One long synthetic deployment at rising footfall: the search's marginal cost per face."""
    footfalls = [1e4, 1e6, 1e7] if quick else [1e4, 1e5, 1e6, 1e7]
    hours = 10.0
    rows = []
    for footfall in footfalls:
        deployment = {"site": "synthetic", "borough": "Westminster", "duration_hours": hours,
                      "footfall_per_hour": footfall}
        synthetic = experiment.with_values({"programme": {"deployments": [deployment]}})
        best, _, searched = timed(lambda s=synthetic: search_stage(s), repeat)
        rows.append({"faces": searched.faces, "seconds": best, "candidates": searched.n_candidates,
                     "faces_per_second": searched.faces / best})
    lo, hi = rows[0], rows[-1]
    marginal = (hi["seconds"] - lo["seconds"]) / (hi["faces"] - lo["faces"])
    return {"synthetic_single_deployment": rows,
            "search_marginal_ns_per_face": marginal * 1e9,
            "faces_per_second_search_1e8_faces_one_deployment": hi["faces_per_second"]}


def per_passer(experiment: Experiment, n_sites: int, repeat: int) -> dict:
    """The per-passer simpy model on the first deployments, in turn with lfrsim's search and replicate."""
    searched = search_stage(experiment)
    sites = searched.sites[:n_sites]

    def run_all():
        return [simulate_per_passer(experiment, s, searched.table, searched.model, searched.pi,
                                    THRESHOLD, seed=1000 + s.index) for s in sites]

    timings = interleaved({"simpy": run_all,
                           "search": lambda: search_stage(experiment),
                           "end_to_end": lambda: simulate_replicate(experiment, 0, [THRESHOLD])}, repeat)
    best, median, results = timings["simpy"]
    faces = sum(r.faces for r in results)
    alerts = sum(r.alerts for r in results)
    lfr_alerts = int(count_alerts(searched, [THRESHOLD])[0, 0].sum())
    simpy_fps = faces / best
    # like for like: both sides end to end (crowd, scores, threshold, review); the search-only
    # figure divides a stage that does not review into a model that does, and is kept for reference
    return {"faces_per_second_simpy_per_passer": simpy_fps,
            "faces_per_second_simpy_per_passer_median": faces / median,
            "ratio_vs_simpy_per_passer": searched.faces / timings["end_to_end"][0] / simpy_fps,
            "ratio_vs_simpy_per_passer_search_only": searched.faces / timings["search"][0] / simpy_fps,
            "simpy_sample_deployments": len(sites),
            "simpy_sample_faces": faces,
            "simpy_alerts_per_million_faces": 1e6 * alerts / faces,
            "lfrsim_alerts_per_million_faces": 1e6 * lfr_alerts / searched.faces}


def n_scaling(experiment: Experiment, sizes: list[int], repeat: int, prevalence_sizes: list[int]) -> dict:
    """Search CPU time per face as the watchlist grows, with the crowd fixed and as the model has it.

    Fixed crowd: ``crowd.prevalence_reference_size`` = N keeps the share of watchlisted passers,
    so every N meets the same crowd and only the table changes. Default prevalence model: the
    share grows with N (``crowd.prevalence_elasticity``), so more passers are watchlisted and
    each of them is scored one by one: that cost is the model's, not the table's.
    """
    out: dict = {}
    for label, ns, fix in (("", sizes, True), ("_default_prevalence", prevalence_sizes, False)):
        scaled = {n: experiment.with_values({"watchlist.size": n, **({"crowd.prevalence_reference_size": n}
                                                                     if fix else {})}) for n in ns}
        runs: dict[int, list] = {n: [] for n in ns}
        for _ in range(repeat):
            for n in ns:
                runs[n].append(search_stage(scaled[n]))
        rows = []
        for n in ns:
            best = min(runs[n], key=lambda s: s.seconds)
            mated = int(best.search.watchlisted.sum()) if best.search is not None else None
            rows.append({"watchlist_size": n, "seconds": best.seconds, "setup_seconds": best.setup_seconds,
                         "faces": best.faces, "ns_per_face": 1e9 * best.seconds / best.faces,
                         "candidates": best.n_candidates, "watchlisted_passers": mated,
                         "table_points": int(best.table.log_hazard.shape[1])})
        per_face = {r["watchlist_size"]: r["ns_per_face"] for r in rows}
        out["n_scaling" + label] = rows
        out["n_scaling_slowdown_1e3_to_1e6" + label] = per_face[10**6] / per_face[10**3]
    return out


def sweep(experiment: Experiment, repeat: int) -> dict:
    """100 thresholds against one, on the same passers (common random numbers).

    A single-threshold run searches down to its threshold (0.64); a sweep down to its lowest
    threshold (0.60), so it scores more passers one by one. ``same_floor`` isolates the cost of
    the extra thresholds alone. The search-stage figures count alerts only; the end-to-end ones
    run ``simulate_replicate`` itself at all 100 thresholds (review, exact expectations, counts
    per group): nothing is extrapolated.
    """
    swept = experiment.with_values({"matcher.score_floor": min(SWEEP)})
    timings = interleaved({
        "one": lambda: count_alerts(search_stage(experiment), [THRESHOLD]),
        "hundred": lambda: count_alerts(search_stage(swept), SWEEP),
        "one_same_floor": lambda: count_alerts(search_stage(swept), [THRESHOLD]),
    }, repeat)
    t1, t100, t1_low = (timings[k][0] for k in ("one", "hundred", "one_same_floor"))
    counts = timings["hundred"][2]
    ends = interleaved({"one": lambda: simulate_replicate(experiment, 0, [THRESHOLD]),
                        "one_same_floor": lambda: simulate_replicate(swept, 0, [min(SWEEP)]),
                        "hundred": lambda: simulate_replicate(swept, 0, SWEEP)}, repeat)
    e1, e1_low, e100 = (ends[k][0] for k in ("one", "one_same_floor", "hundred"))
    return {
        "sweep_cost_ratio_100_vs_1": t100 / t1,
        "sweep_cost_ratio_100_vs_1_same_floor": t100 / t1_low,
        "sweep_search_seconds_1": t1,
        "sweep_search_seconds_100": t100,
        "sweep_search_seconds_1_same_floor": t1_low,
        "sweep_alerts_at_0.600_and_0.699": [int(counts[0, 0].sum()), int(counts[-1, 0].sum())],
        "sweep_cost_ratio_100_vs_1_end_to_end": e100 / e1,
        "sweep_cost_ratio_100_vs_1_end_to_end_same_floor": e100 / e1_low,
        "sweep_end_to_end_seconds_1": e1,
        "sweep_end_to_end_seconds_1_at_0.600": e1_low,
        "sweep_end_to_end_seconds_100": e100,
        "sweep_end_to_end_seconds_per_extra_threshold": (e100 - e1_low) / (len(SWEEP) - 1),
    }


def end_to_end(experiment: Experiment, repeat: int) -> dict:
    """One headline replicate by ``simulate_replicate``, and what it costs per deployment and per alert."""
    best, median, out = timed(lambda: simulate_replicate(experiment, 0, [THRESHOLD]), repeat)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        simulate_replicate(experiment, 0, [THRESHOLD])
        walls.append(time.perf_counter() - start)
    searched = search_stage(experiment)
    reviews = [review_stage(experiment, searched, THRESHOLD) for _ in range(repeat)]
    review_seconds, alerts = min(reviews)
    deployments = len(searched.sites)
    searches = [search_stage(experiment) for _ in range(repeat)]
    search_best = min(searches, key=lambda s: s.seconds)
    return {"end_to_end_seconds_headline": best, "end_to_end_seconds_headline_median": median,
            "end_to_end_wall_seconds_headline": min(walls),
            "end_to_end_wall_seconds_headline_median": float(np.median(walls)),
            "end_to_end_ms_per_deployment": 1e3 * best / deployments,
            "alerts_headline_replicate": int(out[THRESHOLD]["counts"]["alerts"].sum()),
            "review_seconds_headline": review_seconds,
            "review_us_per_alert": 1e6 * review_seconds / max(alerts, 1),
            "search_setup_ms": 1e3 * search_best.setup_seconds,
            "search_us_per_deployment": 1e6 * search_best.deployments_seconds / deployments}


def rss_child(faces: float) -> None:
    """(Run in a fresh process.) A replicate of ``faces`` faces, end to end; print peak RSS.

    The increase is measured from the RSS once the interpreter, the imports and a small run have
    settled, with the kernel's peak mark reset there, so the import footprint is not counted.
    """
    experiment = resolve(load_experiment(HEADLINE), 0)
    base = search_stage(experiment).faces
    gen = experiment.programme.generator
    # the headline gives its crowd as recorded faces an hour; either way, scaled to `faces`
    name = "recorded_faces_per_hour" if gen.recorded_faces_per_hour is not None else "footfall_per_hour"
    rate = getattr(gen, name) if getattr(gen, name) is not None else gen.passers_per_hour(1.0)
    big = experiment.with_values({f"programme.generator.{name}": rate * faces / base})
    reset = reset_peak_rss()
    before = _status_mb("VmRSS") if reset else rss_mb()
    start = time.process_time()
    result = simulate_replicate(big, 0, [THRESHOLD])
    seconds = time.process_time() - start
    counts = result[THRESHOLD]["counts"]
    print(json.dumps({"faces": float(counts["faces"].sum()), "alerts": float(counts["alerts"].sum()),
                      "seconds": seconds, "rss_mb_before": before,
                      "rss_mb_peak": _status_mb("VmHWM") if reset else rss_mb(), "peak_reset": reset,
                      "rss_mb_peak_process": rss_mb()}))


def peak_rss(faces: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(faces)], check=True,
                         capture_output=True, text=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return {"peak_rss_mb_1e8_faces": child["rss_mb_peak_process"],
            "rss_mb_after_imports_1e8_run": child["rss_mb_before"],
            "rss_peak_mark_reset": child["peak_reset"],
            "peak_rss_increase_mb_1e8_faces": child["rss_mb_peak"] - child["rss_mb_before"],
            "faces_1e8_run": child["faces"], "alerts_1e8_run": child["alerts"],
            "end_to_end_seconds_1e8_faces": child["seconds"],
            "faces_per_second_end_to_end_1e8": child["faces"] / child["seconds"]}


def _child_env(pycache: Path | None) -> dict[str, str]:
    """The environment of a fresh ``python`` for this checkout.

    With ``pycache``, compiled bytecode is kept there (``PYTHONPYCACHEPREFIX``) even where the
    environment says not to write it (``PYTHONDONTWRITEBYTECODE``, as in some development shells):
    an installed package starts from its bytecode, so that is what a user waits for. Without it,
    the environment is taken as it is.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _cli(*args: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m sim ARGS`` in a fresh process, this checkout's code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sim", *args], check=True, capture_output=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _one_threshold(path: Path, threshold: float, out: Path) -> Path:
    """The sweep experiment at one threshold: its sweep table dropped, the threshold set."""
    lines, skipping = [], False
    for line in path.read_text().splitlines():
        if line.startswith("[sweep"):
            skipping = True
            continue
        if skipping and line.startswith("["):
            skipping = False
        if not skipping:
            lines.append(line)
            if line.strip() == "[matcher]":
                lines.append(f"threshold = {threshold}")
    out.write_text("\n".join(lines) + "\n")
    return out


def cli(repeat: int) -> dict:
    """The issue's outside checks: ``lfrsim`` as a user runs it, each in a fresh process (wall time).

    Headline: 20 replicates, one worker, results folder, figures and posterior comparison.
    Threshold sweep: 41 thresholds x 10 replicates against the same experiment at its lowest
    threshold (0.50: the same search floor, so the same passers are scored), both on one worker,
    and the sweep on two workers: the four commands run in turns, ``repeat`` rounds, each a fresh
    results folder, the best round kept (medians beside). Import and validate: the cost before
    any work, best of ``repeat``. Every process
    starts from cached bytecode (``_child_env``), warmed by one run of each command first;
    validate is also timed with the environment's own setting (``*_env_bytecode``).
    """
    import pandas as pd

    results: dict = {"cli_env_dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        results["cli_validate_wall_seconds_env_bytecode"] = min(
            _cli("validate", str(HEADLINE), env=_child_env(None))[0] for _ in range(repeat))
        env = _child_env(tmp_path / "pycache")
        # warm the bytecode cache: every module the timed commands import, compiled once
        _cli("run", str(HEADLINE), "--out", str(tmp_path / "warm"), "--workers", "2", "--quiet",
             "--replications", "2", env=env)
        imports = [_cli("--help", env=env)[0] for _ in range(repeat)]
        import_walls = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import sim"], check=True, env=env, cwd=ROOT)
            import_walls.append(time.perf_counter() - start)
        results["import_sim_wall_seconds"] = min(import_walls)
        results["cli_help_wall_seconds"] = min(imports)
        results["cli_validate_wall_seconds"] = min(_cli("validate", str(HEADLINE), env=env)[0]
                                                   for _ in range(repeat))
        run_imports = []
        for _ in range(repeat):     # what `lfrsim run` imports before its first unit, nothing run
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import sim.cli, sim.pipeline"], check=True, env=env,
                           cwd=ROOT)
            run_imports.append(time.perf_counter() - start)
        results["cli_run_imports_wall_seconds"] = min(run_imports)
        def run(path: Path, name: str, workers: int, *extra: str) -> tuple[float, float]:
            out = tmp_path / name
            shutil.rmtree(out, ignore_errors=True)      # every round a fresh folder: nothing reused
            return _cli("run", str(path), "--out", str(out), "--workers", str(workers), "--quiet",
                        *extra, env=env)

        one = _one_threshold(THRESHOLD_SWEEP, 0.50, tmp_path / "one_threshold.toml")
        # the measure: 20 replicates (the experiment file itself asks for 100)
        commands = {"headline": (HEADLINE, 1, "--replications", str(HEADLINE_CLI_REPLICATES)),
                    "sweep1": (THRESHOLD_SWEEP, 1), "one": (one, 1), "sweep2": (THRESHOLD_SWEEP, 2)}
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(repeat):                           # in turns, so that load hits them alike
            for name, (path, workers, *extra) in commands.items():
                rounds[name].append(run(path, name, workers, *extra))
        best = {name: min(times) for name, times in rounds.items()}      # the least disturbed run
        median = {name: statistics.median(w for w, _ in times) for name, times in rounds.items()}
        metrics = pd.read_parquet(tmp_path / "headline" / "metrics.parquet")
        faces = float(metrics[(metrics.metric == "faces") & (metrics.group == "all")].value.sum())
        wall, cpu = best["headline"]
        results.update({"cli_headline_wall_seconds": wall, "cli_headline_cpu_seconds": cpu,
                        "cli_headline_wall_seconds_median": median["headline"],
                        "headline_cli_faces": faces, "headline_cli_faces_per_wall_second": faces / wall,
                        "headline_cli_faces_per_cpu_second": faces / cpu})
        (w1, c1), (wo, co), (w2, _) = best["sweep1"], best["one"], best["sweep2"]
        results.update({"cli_threshold_sweep_wall_seconds": w1, "cli_threshold_sweep_cpu_seconds": c1,
                        "cli_one_threshold_wall_seconds": wo, "cli_one_threshold_cpu_seconds": co,
                        "cli_threshold_sweep_cost_ratio": w1 / wo,
                        "cli_threshold_sweep_cpu_ratio": c1 / co,
                        "cli_threshold_sweep_wall_seconds_2_workers": w2,
                        "cli_threshold_sweep_speedup_2_workers": w1 / w2,
                        "cli_threshold_sweep_speedup_2_workers_median": median["sweep1"] / median["sweep2"],
                        "cli_rounds": repeat})
    return results


def sweep_workers(repeat: int) -> dict:
    """The threshold sweep's units (41 thresholds x 10 replicates) on 1 and 2 local processes, wall.

    Only the executor's part of ``lfrsim run``: plan, run every unit, gather the rows (no results
    folder, summary, figures or posterior comparison), 1 and 2 workers taking turns. The rows
    must be the same. With one worker the units run in this process (``SerialExecutor``); with
    two, in a fresh ``ProcessExecutor`` each round (its start-up counted).
    """
    from sim.sweep import make_executor, plan

    _, units = plan(load_experiment(THRESHOLD_SWEEP))

    def run_with(workers: int):
        executor = make_executor(workers)
        try:
            return sorted((u.name, repr(rows)) for u, rows in executor.run(units))   # repr: nan == nan
        finally:
            executor.close()

    walls: dict[int, list[float]] = {1: [], 2: []}
    outputs = {}
    for _ in range(repeat):
        for workers in (1, 2):
            start = time.perf_counter()
            outputs[workers] = run_with(workers)
            walls[workers].append(time.perf_counter() - start)
    assert outputs[1] == outputs[2], "two workers gave other rows than one"
    one, two = min(walls[1]), min(walls[2])
    return {"sweep_units_wall_seconds_1_worker": one, "sweep_units_wall_seconds_2_workers": two,
            "sweep_units_speedup_2_workers": one / two, "sweep_units": len(units)}


# -- driver ------------------------------------------------------------------------------------


def figures(repeat: int) -> dict:
    """The headline's report figures, drawn from its committed results folder (a figure is drawn
    from the summary: its cost does not depend on the replicates), with matplotlib imported and
    each figure drawn once before (fonts and caches loaded, as for a run's later figures).

    In this process, one after another: CPU seconds, each figure's best of ``repeat``, summed. As
    ``lfrsim run`` draws them on two local workers: the later worker (forked after matplotlib's
    import, before the clock starts) and this process side by side, ``report.PendingFigures``
    given the executor's ``submit`` and written into a fresh folder each round; wall seconds from
    handing them out to the last PNG written, best of ``repeat``.
    """
    import functools

    from sim.report import PendingFigures, draw_figure, figure_jobs, ready_to_draw
    from sim.results import read_results
    from sim.sweep import ProcessExecutor

    results = read_results(ROOT / "results" / "met_2025_headline")
    ready_to_draw()
    jobs = figure_jobs(results)
    for job in jobs:
        draw_figure(results, job)
    each = {job.name: timed(lambda job=job: draw_figure(results, job), repeat)[0] for job in jobs}
    executor = ProcessExecutor(2)
    submit = functools.partial(executor.submit, prepared=True)
    walls = []
    try:
        submit(int).result()                                    # the later worker is started
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(repeat):
                start = time.perf_counter()
                PendingFigures(results, submit).write(Path(tmp) / str(i))
                walls.append(time.perf_counter() - start)
    finally:
        executor.close()
    return {"figures_headline": len(jobs), "figures_headline_cpu_seconds": sum(each.values()),
            "figures_headline_cpu_seconds_each": each,
            "figures_headline_wall_seconds_2_workers": min(walls),
            "figures_headline_wall_seconds_2_workers_median": statistics.median(walls)}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""



def measure(quick: bool, log: Callable[[str], None]) -> dict:
    repeat = 4 if quick else 9
    # replicate 0's posterior draw in place of every calibrated setting: what simulate_replicate
    # runs for replicate 0 (resolving a resolved experiment changes nothing), so the stages and
    # the baselines, which take settings as given, all see the same numbers
    experiment = resolve(load_experiment(HEADLINE), 0)
    results: dict = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0]},
        "sim_commit": _git("rev-parse", "--short", "HEAD"),
        "sim_modified": bool(_git("status", "--porcelain", "sim")),
    }
    steps = [
        ("normals, search and brute force", lambda: side_by_side(experiment, repeat + 2,
                                                                  200 if quick else 1000)),
        ("search cost per face", lambda: search_cost_per_face(experiment, repeat, quick)),
        ("per-passer simpy", lambda: per_passer(experiment, 2 if quick else 10, 2 if quick else 3)),
        ("watchlist size scaling", lambda: n_scaling(
            experiment, [10**3, 10**4, 10**5, 10**6] if quick else [10**3, 10**4, 10**5, 10**6, 10**7],
            repeat, [10**3, 10**4, 10**5, 10**6])),
        ("threshold sweep", lambda: sweep(experiment, 2 if quick else 5)),
        ("end to end, headline", lambda: end_to_end(experiment, 3 if quick else repeat)),
        ("threshold sweep's units on 1 and 2 workers", lambda: sweep_workers(2 if quick else 3)),
        ("the headline's figures", lambda: figures(2 if quick else 5)),
    ]
    if not quick:
        steps += [("10^8 faces, peak RSS", lambda: peak_rss(1e8)),
                  ("lfrsim from outside", lambda: cli(3))]
    for name, step in steps:
        start = time.perf_counter()
        results.update(step())
        log(f"{name}: {time.perf_counter() - start:.1f} s")
    # ratios come from their own side-by-side rounds (above); these are for the table
    e2e_fps = results["faces_headline_replicate"] / results["end_to_end_seconds_headline"]
    results["faces_per_second_end_to_end"] = e2e_fps
    results["ratio_vs_bruteforce_end_to_end"] = e2e_fps / results["faces_per_second_bruteforce"]
    results["search_seconds_per_deployment_ms"] = 1e3 * results["search_seconds_per_deployment"]
    if "cli_threshold_sweep_wall_seconds" in results:
        # what two workers could give at most (Amdahl): the command's start-up and imports as on
        # one worker, everything after them (units, pooling, posterior comparison, summary,
        # figures) split in two with nothing lost; the units' part of it for comparison
        w1, units = results["cli_threshold_sweep_wall_seconds"], results["sweep_units_wall_seconds_1_worker"]
        start = min(results["cli_run_imports_wall_seconds"], w1)
        results["cli_threshold_sweep_outside_units_seconds"] = max(w1 - units, 0.0)
        results["cli_threshold_sweep_speedup_2_workers_bound"] = w1 / (start + (w1 - start) / 2)
    results["targets"] = {name: {"target": target, "kind": kind, "measured": results.get(name),
                                 "met": None if results.get(name) is None else bool(
                                     results[name] >= target if kind == "min" else results[name] <= target)}
                          for name, (target, kind) in TARGETS.items()}
    return results


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    v = float(v)
    if abs(v) >= 1e5:
        return f"{v:,.0f}"
    if abs(v) >= 1e3:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def table_rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(json key, label, value, target, met) for the summary table."""
    labels = [
        ("faces_per_second_search", "search faces/s, headline"),
        ("faces_per_second_search_1e8_faces_one_deployment", "search faces/s, 10^8 faces in one deployment"),
        ("search_marginal_ns_per_face", "search marginal ns per face"),
        ("normals_per_second", "numpy normals/s"),
        ("search_share_of_rng_limit", "search faces/s / normals/s"),
        ("faces_per_second_bruteforce", "brute force faces/s (N=16,000)"),
        ("ratio_vs_bruteforce", "search / brute force"),
        ("faces_per_second_hazard_inversion", "hazard inversion for every face, faces/s"),
        ("ratio_vs_hazard_inversion", "search / hazard inversion (both: setup + every deployment)"),
        ("faces_per_second_simpy_per_passer", "per-passer simpy faces/s (end to end)"),
        ("ratio_vs_simpy_per_passer", "end to end / per-passer simpy (both review)"),
        ("ratio_vs_simpy_per_passer_search_only", "search only / per-passer simpy (unlike)"),
        ("n_scaling_slowdown_1e3_to_1e6", "search time per face, N=1e6 / N=1e3, crowd fixed"),
        ("n_scaling_slowdown_1e3_to_1e6_default_prevalence",
         "search time per face, N=1e6 / N=1e3, default prevalence"),
        ("sweep_cost_ratio_100_vs_1", "100 thresholds / 1, search stage"),
        ("sweep_cost_ratio_100_vs_1_same_floor", "100 thresholds / 1, search stage, same floor"),
        ("sweep_cost_ratio_100_vs_1_end_to_end", "100 thresholds / 1 (0.64), end to end"),
        ("sweep_cost_ratio_100_vs_1_end_to_end_same_floor", "100 thresholds / 1 (0.60), end to end"),
        ("end_to_end_seconds_headline", "headline replicate end to end, CPU s"),
        ("end_to_end_wall_seconds_headline", "headline replicate end to end, wall s"),
        ("end_to_end_ms_per_deployment", "headline replicate, CPU ms per deployment"),
        ("search_us_per_deployment", "search stage, CPU us per deployment (after setup)"),
        ("search_setup_ms", "search setup (programme, watchlist, table), CPU ms"),
        ("review_us_per_alert", "review, CPU us per alert (simpy)"),
        ("faces_per_second_end_to_end", "end-to-end faces/s, headline"),
        ("peak_rss_increase_mb_1e8_faces", "RSS increase over imports, 10^8 faces, MB"),
        ("peak_rss_mb_1e8_faces", "peak RSS, 10^8 faces, MB"),
        ("import_sim_wall_seconds", "import sim, wall s"),
        ("cli_validate_wall_seconds", "lfrsim validate headline, wall s"),
        ("cli_headline_wall_seconds", "lfrsim run headline (20 replicates, 1 worker), wall s"),
        ("headline_cli_faces_per_wall_second", "lfrsim run headline, faces per wall s"),
        ("cli_threshold_sweep_wall_seconds", "lfrsim run threshold_sweep (41 x 10, 1 worker), wall s"),
        ("cli_threshold_sweep_cost_ratio", "threshold_sweep / same at one threshold, wall"),
        ("cli_threshold_sweep_speedup_2_workers", "threshold_sweep, 1 worker / 2 workers, wall"),
        ("cli_threshold_sweep_speedup_2_workers_bound",
         "threshold_sweep, 1 worker / 2 workers at best (all but the imports halved), wall"),
        ("cli_run_imports_wall_seconds", "lfrsim run's imports alone (sim.cli, sim.pipeline), wall s"),
        ("sweep_units_speedup_2_workers", "threshold_sweep's units alone, 1 worker / 2 workers, wall"),
        ("figures_headline_cpu_seconds", "headline's figures, one process, CPU s (matplotlib imported)"),
        ("figures_headline_wall_seconds_2_workers",
         "headline's figures as the command draws them on 2 workers, wall s"),
    ]
    rows = []
    for key, label in labels:
        if key not in results:
            continue
        target = results["targets"].get(key)
        if target is None:
            rows.append((key, label, _fmt(results[key]), "", ""))
        else:
            bound = ("≥ " if target["kind"] == "min" else "≤ ") + _fmt(target["target"])
            rows.append((key, label, _fmt(results[key]), bound, "yes" if target["met"] else "NO"))
    return rows


def show(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lfrsim benchmarks ({results['mode']}, {results['date']})")
    for col in ("measure", "value", "target", "met"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for _, label, value, bound, met in table_rows(results):
        table.add_row(label, value, bound, met)
    Console().print(table)


def markdown(results: dict) -> str:
    lines = ["| measure | JSON key | value | target | met |", "|---|---|--:|--:|:-:|"]
    lines += [f"| {label} | `{key}` | {value} | {bound} | {met} |"
              for key, label, value, bound, met in table_rows(results)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples; under a minute")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time on CPU seconds of this process (default; robust on a shared machine) "
                             "or wall seconds")
    parser.add_argument("--markdown", type=Path, metavar="JSON",
                        help="print the table of an earlier --json run as markdown, and exit")
    parser.add_argument("--rss-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.clock == "wall":
        stages.clock = time.perf_counter
    start = time.perf_counter()
    results = measure(args.quick, lambda line: print(line, file=sys.stderr))
    results["clock"] = args.clock
    results["benchmark_seconds"] = time.perf_counter() - start
    results["machine"]["load_average_1min_end"] = os.getloadavg()[0]
    show(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
