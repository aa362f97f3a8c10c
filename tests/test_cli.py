"""The ``lfrsim`` command: run, validate, report, reproduce; interruptions; hostile targets."""

from __future__ import annotations

import gc
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import _ProgressBar, main
from sim.config import from_dict, load_experiment
from sim.pipeline import run_experiment
from sim.results import parquet_bytes

TINY = """
[experiment]
name = "tiny"
seed = 5
replications = 2

[programme.generator]
weeks = 1
deployments_per_week = 2
duration_hours = 1.0
footfall_per_hour = 2000.0

[watchlist]
size = 2000
"""

# 16 units of a quarter of a second or so each: long enough to interrupt part-way.
MULTI = """
[experiment]
name = "multi"
seed = 11
replications = 8

[programme.generator]
weeks = 10
deployments_per_week = 4
duration_hours = 4.0
footfall_per_hour = 3000.0

[watchlist]
size = 16000

[sweep]
parameters = { "matcher.threshold" = [0.60, 0.62, 0.64], "review.officers" = [4, 8] }
"""


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("experiments") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, tiny_file) -> Path:
    out = tmp_path_factory.mktemp("results") / "tiny"
    assert main(["run", str(tiny_file), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


# -- validate and run --------------------------------------------------------------------------

def test_validate_a_bad_sweep_is_exit_2_with_one_line_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY + '\n[sweep.parameters]\n"watchlist.size" = [1000, -5]\n')
    assert main(["validate", str(bad)]) == 2
    one_error_line(capsys, "watchlist.size", "-5")


def test_validate_counts_the_cells(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(TINY + '\n[sweep.parameters]\n'
                    '"matcher.threshold" = {start = 0.5, stop = 0.7, step = 0.005}\n'
                    '"review.officers" = [4, 8]\n')
    assert main(["validate", str(good)]) == 0
    assert "82 cells, 2 replications, seed 5" in capsys.readouterr().out


def test_only_the_command_itself_freezes_its_objects_before_the_process_ends(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(TINY)
    frozen = gc.get_freeze_count()
    assert main(["validate", str(good)]) == 0          # called from Python: nothing frozen
    assert gc.get_freeze_count() == frozen
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "from sim.cli import main\n"
            f"sys.argv = ['lfrsim', 'validate', {str(good)!r}]\n"
            "sys.exit(main())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout and out.stdout.strip().endswith("frozen True")


def test_run_writes_the_folder_and_names_it(tiny_results, capsys):
    assert (tiny_results / "metrics.parquet").is_file()
    assert json.loads((tiny_results / "manifest.json").read_text())["status"] == "complete"


def test_run_with_bad_options_is_one_line(tiny_file, tmp_path, capsys):
    assert main(["run", str(tiny_file), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    one_error_line(capsys, "--workers")
    assert main(["run", str(tiny_file), "--out", str(tmp_path / "o"), "--replications", "0"]) == 2
    one_error_line(capsys, "--replications")
    assert not (tmp_path / "o").exists()


def test_progress_bar_shows_cell_replicates_done_and_time_left():
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    bar = _ProgressBar("6 cells × 8 replicates", enabled=True, console=console)
    bar(12, 48)                                    # a resumed run: 12 already done
    bar(18, 48)
    console.print(bar.bar.get_renderable())
    shown = buffer.getvalue()
    assert "6 cells × 8 replicates" in shown
    assert "18/48" in shown and "cell-replicates" in shown and "left" in shown
    task = bar.bar.tasks[0]
    assert task.completed == 18 and task.total == 48


def test_quiet_progress_bar_draws_nothing_and_loads_no_rich_progress():
    with _ProgressBar("1 cell × 2 replicates", enabled=False) as bar:
        bar(0, 2)
        bar(2, 2)
    assert bar.bar is None and bar.task is None
    code = ("import sys; from sim.cli import _ProgressBar\n"
            "with _ProgressBar('x', enabled=False) as bar: bar(1, 2)\n"
            "print('rich.progress' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "False"


def test_the_command_starts_numpy_without_a_blas_thread_pool_unless_asked():
    code = "import sim.cli, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "1"
    env["OPENBLAS_NUM_THREADS"] = "2"      # a user's own setting wins
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "2"


# -- hostile targets: exit 2, one line, nothing touched ---------------------------------------

def test_out_at_a_non_empty_folder_that_is_not_results_is_refused(tiny_file, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("keep me")
    assert main(["run", str(tiny_file), "--out", str(out), "--quiet"]) == 2
    one_error_line(capsys, str(out), "not a results folder")
    assert [p.name for p in out.iterdir()] == ["notes.md"]


@pytest.mark.parametrize("command", ["report", "reproduce"])
def test_report_and_reproduce_refuse_what_is_not_a_results_folder(command, tmp_path, capsys):
    (tmp_path / "notes.md").write_text("keep me")
    assert main([command, str(tmp_path)]) == 2
    one_error_line(capsys, str(tmp_path), "not a finished results folder")
    assert main([command, str(tmp_path / "absent")]) == 2
    one_error_line(capsys, "not a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]


def _without_privilege() -> list[str]:
    """A command prefix under which permissions bite: root ignores them unless it drops the power."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unwritable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_out_without_write_permission_is_one_line_and_writes_nothing(tiny_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        command = [sys.executable, "-m", "sim.cli", "run", str(tiny_file), "--out", str(locked / "new"),
                   "--quiet", "--workers", "1"]
        done = subprocess.run([*_without_privilege(), *command], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --out: cannot write"), done.stderr
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


# -- reproduce ----------------------------------------------------------------------------------

def test_reproduce_a_fresh_folder_exits_0(tiny_results, capsys):
    assert main(["reproduce", str(tiny_results), "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "reproduced: all" in out and "byte for byte" in out


def test_reproduce_detects_a_changed_metric(tiny_results, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_results, copy)
    metrics = pd.read_parquet(copy / "metrics.parquet")
    hit = metrics.index[(metrics["metric"] == "false_alerts") & (metrics["group"] == "all")
                        & (metrics["replicate"] == 1)][0]
    metrics.loc[hit, "value"] += 1
    (copy / "metrics.parquet").write_bytes(parquet_bytes(metrics))
    assert main(["reproduce", str(copy), "--workers", "1", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced: 1 metric values differ" in out
    table = [line for line in out.splitlines() if "false_alerts" in line]
    assert len(table) == 1 and "│ 1 " in table[0] and "│ all " in table[0]


def test_reproduce_detects_a_changed_seed(tiny_results, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_results, copy)
    config = (copy / "config.toml").read_text().replace("seed = 5", "seed = 6")
    (copy / "config.toml").write_text(config)
    assert main(["reproduce", str(copy), "--workers", "1", "--quiet"]) == 1
    assert "NOT reproduced" in capsys.readouterr().out


# -- interruptions: kill -9 and Ctrl-C, then --resume -----------------------------------------

@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> tuple[Path, bytes]:
    """The multi-unit experiment and the metrics bytes of an uninterrupted run."""
    path = tmp_path_factory.mktemp("experiments") / "multi.toml"
    path.write_text(MULTI)
    return path, parquet_bytes(run_experiment(load_experiment(path), workers=2).metrics)


def start_run(experiment: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim.cli", "run", str(experiment), "--out", str(out),
                             "--workers", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def interrupt(process: subprocess.Popen, sig: int, timeout: float) -> str:
    """Send ``sig`` to a running ``lfrsim run`` and wait for it to end; its stderr."""
    process.send_signal(sig)
    return process.communicate(timeout=timeout)[1]


def wait_for_parts(process: subprocess.Popen, out: Path, at_least: int) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        n = len(list((out / "parts").glob("*.parquet"))) if (out / "parts").is_dir() else 0
        if n >= at_least:
            return n
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.kill()
    raise AssertionError("no finished units appeared")


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_kill_9_then_resume_runs_the_rest_and_ends_with_the_same_bytes(multi, tmp_path):
    experiment, reference = multi
    out = tmp_path / "run"
    process = start_run(experiment, out)
    wait_for_parts(process, out, at_least=2)
    workers = children_of(process.pid) if Path("/proc").is_dir() else []
    interrupt(process, signal.SIGKILL, timeout=60)
    assert process.returncode == -signal.SIGKILL
    kept = sorted(p.stem for p in (out / "parts").glob("*.parquet"))
    assert 2 <= len(kept) < 16
    assert not (out / "metrics.parquet").exists()

    # workers notice their parent is gone and exit rather than linger
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(w) for w in workers)

    done = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(experiment), "--out", str(out),
                           "--workers", "2", "--quiet", "--resume"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / "metrics.parquet").read_bytes() == reference
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["units_done"] == 16 and len(manifest["resumed"]) == 1


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_keeps_units_and_says_how_to_resume(multi, tmp_path):
    experiment, reference = multi
    out = tmp_path / "run"
    process = start_run(experiment, out)
    wait_for_parts(process, out, at_least=2)
    err = interrupt(process, signal.SIGINT, timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert f"continue with: lfrsim run {experiment} --out {out} --resume" in err
    kept = list((out / "parts").glob("*.parquet"))
    assert 2 <= len(kept) < 16
    assert not list(out.rglob("*.tmp"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["units_done"] == len(kept)

    assert main(["run", str(experiment), "--out", str(out), "--workers", "2", "--quiet", "--resume"]) == 0
    assert (out / "metrics.parquet").read_bytes() == reference


def test_python_dash_m_sim_runs_the_command(tiny_file):
    done = subprocess.run([sys.executable, "-m", "sim", "validate", str(tiny_file)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "valid (1 cell, 2 replications, seed 5)" in done.stdout


def test_sim_run_and_the_command_agree(tiny_results, tiny_file):
    from_api = run_experiment(from_dict(load_experiment(tiny_file).to_dict()))
    assert parquet_bytes(from_api.metrics) == (tiny_results / "metrics.parquet").read_bytes()


def test_the_headline_shows_every_cell_of_a_sweep(tiny_file, capsys):
    from sim.cli import _print_headline

    data = load_experiment(tiny_file).to_dict()
    data["sweep"] = {"parameters": {"matcher.threshold": [0.58, 0.62], "review.officers": [4, 8]}}
    data["matcher"]["score_floor"] = "auto"
    results = run_experiment(from_dict(data))
    _print_headline(results, elapsed=1.0)
    out = capsys.readouterr().out
    assert "tiny (threshold 0.58, officers 4)" in out
    assert "exact" in out and "every cell" in out
    rows = [line for line in out.splitlines() if line.strip().startswith(("0.58", "0.62"))]
    assert len(rows) == 4


def test_the_headline_fits_eighty_columns_without_cutting_a_number(tiny_file, capsys, monkeypatch):
    from sim.cli import _print_headline

    monkeypatch.setenv("COLUMNS", "80")
    results = run_experiment(load_experiment(tiny_file))
    _print_headline(results, elapsed=1.0)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    table = [line for line in out.splitlines() if line.startswith((" all", " F ", " M "))]
    assert len(table) == 11 and not any("…" in line for line in table)
    assert "F Black" in out and "F/M: female/male passers" in out


def test_workers_begun_before_the_run_are_stopped_if_it_never_starts(tiny_file, tmp_path, monkeypatch,
                                                                      capsys):
    import sim.sweep as sweep

    begun = []

    def recording(experiment, workers):
        begun.append(real(experiment, workers))
        return begun[-1]

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt          # Ctrl-C while the progress bar starts

    real = sweep.begin_run
    monkeypatch.setattr(sweep, "begin_run", recording)
    monkeypatch.setattr(_ProgressBar, "__init__", interrupted)
    out = tmp_path / "never"
    assert main(["run", str(tiny_file), "--out", str(out), "--workers", "2"]) == 130
    assert len(begun) == 1 and begun[0]._closed
    assert not out.exists() and "interrupted before anything was written" in capsys.readouterr().err
