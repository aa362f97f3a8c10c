"""Hostile runs: what a new user's mistakes must never do to their results, or to the command.

Each test here is one defect found by feeding ``lfrsim`` hostile input (issue 16): a mistyped or
unreachable scheduler, a name that is a path, a NUL byte, a special file, a run that cannot fit,
Ctrl-C with one worker, a run into a folder holding other results, ``--out`` below a file. The
answer is always exit 0 or exit 2 with one line per problem (130 after an interrupt), never a
traceback and never a hang, and a results folder is changed only by a run it belongs to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.cost
from sim.cli import main
from sim.config import NAME_PATTERN, ConfigError, from_dict, load_experiment
from sim.pipeline import run_experiment
from sim.results import parquet_bytes

ROOT = Path(__file__).resolve().parents[1]
LFRSIM = Path(sys.executable).parent / "lfrsim"
ERROR_LINE = re.compile(r"^error: [^\s:][^:\n]*: \S")
HANG_GUARD_SECONDS = 30

TINY = """
[experiment]
name = "tiny"
seed = 11
replications = 3

[[programme.deployments]]
site = "High Street"
duration_hours = 0.5
footfall_per_hour = 2000

[watchlist]
size = 2000

[matcher]
threshold = 0.6
"""


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(code: int, out: str, err: str, *needles: str) -> str:
    """Exit 2 with one 'error: <setting>: ...' line naming each needle; that line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert ERROR_LINE.match(lines[0]), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def command(*argv, timeout: float = HANG_GUARD_SECONDS, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """The installed ``lfrsim`` (or ``python -m sim``); still running after ``timeout`` s, it has hung."""
    prefix = [str(LFRSIM)] if LFRSIM.exists() else [sys.executable, "-m", "sim"]
    try:
        return subprocess.run([*prefix, *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"lfrsim {' '.join(map(str, argv))} still running after {timeout} s")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("experiments") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_file) -> Path:
    """A finished results folder of the tiny experiment."""
    out = tmp_path_factory.mktemp("results") / "good"
    assert main(["run", str(tiny_file), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture()
def good(tmp_path, finished) -> Path:
    out = tmp_path / "good"
    shutil.copytree(finished, out)
    return out


# -- 1. a refused run touches nothing: mistyped and unreachable schedulers ---------------------

@pytest.mark.parametrize("address", ["notanaddress", "127.0.0.1", "tcp://127.0.0.1", "tcp://:8786",
                                     "http://127.0.0.1:8786", "tcp://127.0.0.1:99999", ""])
def test_a_mistyped_scheduler_is_refused_and_leaves_a_finished_folder_byte_for_byte(address, good, tiny_file,
                                                                                     capsys):
    before = snapshot(good)
    for extra in ([], ["--overwrite"], ["--resume"]):
        refused(*cli(capsys, "run", tiny_file, "--out", good, "--quiet", "--scheduler", address, *extra),
                "--scheduler", "tcp://HOST:PORT")
        assert snapshot(good) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_refused_at_once_and_touches_nothing(good, tiny_file):
    before = snapshot(good)
    for address in ("tcp://127.0.0.1:9", f"tcp://127.0.0.1:{_closed_port()}"):
        # Dask alone would retry for 20 s; the address is probed first (hang guard well below that)
        done = command("run", tiny_file, "--out", good, "--quiet", "--scheduler", address, "--overwrite",
                       timeout=15)
        refused(done.returncode, done.stdout, done.stderr, "--scheduler", f"cannot reach a Dask scheduler at "
                                                                          f"{address}")
        assert snapshot(good) == before


# -- 2 and 3. the experiment's name is an identifier, never a path ------------------------------

def named(name: str) -> dict:
    return {"experiment": {"name": name, "replications": 1},
            "programme": {"deployments": [{"site": "a", "duration_hours": 0.1, "footfall_per_hour": 10.0}]},
            "watchlist": {"size": 10}}


def _is_one_plain_folder_name(name: str) -> bool:
    results = Path("/srv/results")
    return (name not in ("", ".", "..") and ".." not in name and "/" not in name and "\\" not in name
            and name.isascii() and name.isprintable() and not name.startswith((".", "-", " "))
            and (results / name).parent == results and not Path(name).is_absolute())


ESCAPES = ["../../escaped", "..", ".", "/tmp/absolute", "a/b", "a\\b", "C:\\results", "a\x00b", "a\nb",
           "tab\there", ".hidden", "-rf", "a..b", "name with spaces", "x" * 201, "", "résultats",
           "\u202eevil"]


@pytest.mark.parametrize("name", ESCAPES)
def test_a_name_that_is_not_a_plain_identifier_is_refused_in_one_line(name):
    with pytest.raises(ConfigError) as err:
        from_dict(named(name))
    assert len(err.value.problems) == 1, err.value.problems
    line = err.value.problems[0]
    assert line.startswith("experiment.name: ") and "\n" not in line and "\x00" not in line


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.from_regex(NAME_PATTERN, fullmatch=True),
                 st.sampled_from(ESCAPES), st.lists(st.sampled_from(["..", "/", "a", ".", "\\", "\x00", "_"]),
                                                    max_size=6).map("".join)))
def test_an_accepted_name_is_exactly_one_plain_folder_name(name):
    try:
        experiment = from_dict(named(name))
    except ConfigError as exc:
        assert [p.split(":")[0] for p in exc.problems] == ["experiment.name"]
        assert not (NAME_PATTERN.fullmatch(name) and ".." not in name and len(name) <= 200)
        return
    assert experiment.experiment.name == name
    assert _is_one_plain_folder_name(name), repr(name)


def test_a_path_as_name_writes_nowhere(tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    path = work / "escape.toml"
    path.write_text(TINY.replace('name = "tiny"', 'name = "../../escaped"'))
    refused(*cli(capsys, "validate", path), "experiment.name", "'../../escaped'")
    refused(*cli(capsys, "run", path, "--quiet", "--workers", "1"), "experiment.name")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "escape.toml", "work"]


def test_a_nul_byte_in_the_name_is_one_line_from_validate_and_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "nul.toml"
    path.write_text(TINY.replace('name = "tiny"', 'name = "tiny\\u0000x"'))
    assert load_experiment  # the TOML escape makes a real NUL in the name
    refused(*cli(capsys, "validate", path), "experiment.name", r"'tiny\x00x'")
    refused(*cli(capsys, "run", path, "--quiet", "--workers", "1"), "experiment.name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nul.toml"]


# -- 4. special files: read only regular files, with a size cap --------------------------------

def _special_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp_path / "experiment.fifo"
    os.mkfifo(fifo)
    found = {"fifo": (fifo, "named pipe"), "folder": (tmp_path, "is a folder")}
    if Path("/dev/zero").exists():
        found["/dev/zero"] = (Path("/dev/zero"), "character device")
    sock_path = tmp_path / "experiment.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    found["socket"] = (sock_path, "socket")
    return found


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_special_files_are_refused_at_once_by_the_real_command(tmp_path):
    run = ["--out", tmp_path / "out", "--quiet", "--workers", "1"]
    for path, says in _special_files(tmp_path).values():
        for argv in (["validate", path], ["run", path, *run]):
            done = command(*argv)    # a FIFO would wait for a writer for ever, /dev/zero never ends
            refused(done.returncode, done.stdout, done.stderr, str(path), says)
    assert not (tmp_path / "out").exists()


def test_an_experiment_file_over_the_size_cap_is_refused_unread(tmp_path, capsys):
    big = tmp_path / "big.toml"
    with big.open("wb") as fh:
        fh.write(TINY.encode())
        fh.truncate(17 * 2**20)                     # sparse: no 17 MiB actually written
    refused(*cli(capsys, "validate", big), "big.toml", "at most 16 MiB")


# -- 5. valid configs that cannot run: refused before anything, by validate and run --------------

HUGE_DAY = """
[experiment]
name = "huge_day"

[[programme.deployments]]
site = "Oxford Circus"
duration_hours = 24
footfall_per_hour = 10000000

[watchlist]
size = 16000

[matcher]
threshold = 0.0
"""


def _too_big(tmp_path: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    huge_day = tmp_path / "huge_day.toml"
    huge_day.write_text(HUGE_DAY)
    headline = (ROOT / "experiments" / "met_2025_headline.toml").read_text()
    assert "size = 16000" in headline and "replications = 100" in headline
    huge_list = tmp_path / "huge_list.toml"
    huge_list.write_text(headline.replace("size = 16000", "size = 100000000", 1)
                         .replace("replications = 100", "replications = 100000", 1))
    return {"24 h at 10^7 an hour at threshold 0": (huge_day, ("matcher.threshold", "alerts", "GiB")),
            "10^8 entries, 100,000 replications": (huge_list, ("experiment.replications",))}


@pytest.fixture()
def sixteen_gib_machine(monkeypatch):
    """Refusals by memory, the same on any machine: the budget of one with 16 GiB. And no unit
    may run: should the refusal ever fail, the test fails rather than run for days."""
    import sim.sweep as sweep

    monkeypatch.setattr(sim.cost, "machine_memory_bytes", lambda: 16 * 2**30)
    monkeypatch.setattr(sweep, "run_unit", lambda unit: pytest.fail("a run that cannot fit was started"))


def test_a_run_that_cannot_fit_is_refused_by_validate_and_by_run_before_any_folder(tmp_path, good, capsys,
                                                                                   sixteen_gib_machine):
    before = snapshot(good)
    for case, (path, needles) in _too_big(tmp_path).items():
        code, out, err = cli(capsys, "validate", path)
        assert code == 2 and "Traceback" not in out + err, (case, err)
        lines = err.strip().splitlines()
        assert all(ERROR_LINE.match(line) for line in lines) and len(lines) <= 2, (case, err)
        assert all(n in err for n in needles), (case, err)
        for out_dir in (tmp_path / "fresh", good):
            code, out, run_err = cli(capsys, "run", path, "--out", out_dir, "--quiet", "--workers", "1")
            assert code == 2 and run_err == err, (case, run_err)
        assert not (tmp_path / "fresh").exists()
        assert snapshot(good) == before


def test_replications_from_the_command_line_are_named_as_the_flag(tiny_file, tmp_path, capsys,
                                                                  sixteen_gib_machine):
    data = load_experiment(tiny_file).to_dict()
    data["watchlist"]["size"] = 100_000_000
    data["programme"]["deployments"][0]["duration_hours"] = 24.0
    data["programme"]["deployments"][0]["footfall_per_hour"] = 100_000.0
    path = tmp_path / "many.toml"
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    assert cli(capsys, "validate", path)[0] == 0
    code, out, err = cli(capsys, "run", path, "--out", tmp_path / "o", "--quiet", "--replications", "100000",
                         "--workers", "1")
    assert code == 2 and err.startswith("error: --replications: 100,000 replications"), err
    assert not (tmp_path / "o").exists()


def test_running_out_of_memory_anyway_is_one_line_and_keeps_the_finished_units(tiny_file, tmp_path, capsys,
                                                                               monkeypatch):
    import sim.sweep as sweep

    real = sweep.run_unit

    def unit(u):
        if u.replicate == 1:
            raise MemoryError
        return real(u)

    monkeypatch.setattr(sweep, "run_unit", unit)
    out = tmp_path / "o"
    refused(*cli(capsys, "run", tiny_file, "--out", out, "--quiet", "--workers", "1"), "out of memory",
            "finished units are kept")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["units_done"] == 1
    assert [p.name for p in (out / "parts").iterdir()] == ["group00000-rep00000.parquet"]
    monkeypatch.undo()
    assert cli(capsys, "run", tiny_file, "--out", out, "--quiet", "--workers", "1", "--resume")[0] == 0


def test_validate_says_what_a_shipped_experiment_will_cost(capsys):
    code, out, _ = cli(capsys, "validate", ROOT / "experiments" / "met_2025_headline.toml")
    assert code == 0
    assert re.search(r"estimated cost: about [\d,]+ alerts to review per replicate, [\d.,]+ [KMG]iB per unit "
                     r"of work, 100 units, [\d.,]+ (s|minutes) of CPU", out), out


# -- 6. Ctrl-C and SIGTERM with one worker, mid-unit --------------------------------------------

# The run's second unit spends minutes in one call into compiled code, as sorting or searching
# tens of millions of candidates does; Python acts on a signal only between bytecodes of the
# main thread, so a unit computed there would hold Ctrl-C off until the call returns.
SLOW_SECOND_UNIT = """
import signal
import sys
import numpy as np
import sim.sweep
from sim.cli import main

# Ctrl-C as at a terminal, even when the test suite itself was started in the background
signal.signal(signal.SIGINT, signal.default_int_handler)

real = sim.sweep.run_unit

def run_unit(unit):
    if unit.replicate == 1:
        np.convolve(np.ones(10_000_000), np.ones(100_000))
    return real(unit)

sim.sweep.run_unit = run_unit
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_single_worker_run_mid_unit_and_keeps_the_finished_units(sig, tiny_file, tmp_path,
                                                                                   capsys):
    out = tmp_path / "run"
    argv = ["run", str(tiny_file), "--out", str(out), "--workers", "1", "--quiet"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", SLOW_SECOND_UNIT, *argv], stdout=subprocess.DEVNULL,
                                   stderr=stderr, text=True)
    first = out / "parts" / "group00000-rep00000.parquet"
    deadline = time.monotonic() + 120
    while not first.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the first unit never finished"
        time.sleep(0.05)
    time.sleep(0.5)                                          # now inside the second unit's long call
    process.send_signal(sig)
    # acted on: the command says it stopped, and then it is gone, each within 10 s. The unit's
    # thread is still inside its long call; a normal exit waited for it in OpenBLAS's exit
    # handler (1 run in 10 hung for minutes), so the command leaves with os._exit
    # (sweep.unit_still_running).
    acted = time.monotonic() + 10
    while "continue with: lfrsim run" not in log.read_text():
        if time.monotonic() > acted:
            process.kill()
            process.wait()
            pytest.fail(f"{sig.name} not acted on within 10 s with one worker: {log.read_text()}")
        time.sleep(0.05)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the process did not exit within 10 s of saying it stopped ({sig.name})")
    err = log.read_text()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "continue with: lfrsim run" in err
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["group00000-rep00000.parquet"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"

    assert cli(capsys, "run", tiny_file, "--out", out, "--workers", "1", "--quiet", "--resume")[0] == 0
    reference = parquet_bytes(run_experiment(load_experiment(tiny_file)).metrics)
    assert (out / "metrics.parquet").read_bytes() == reference


def test_one_worker_gives_the_same_bytes_in_its_thread(tiny_file):
    """The serial executor computes each unit in a thread: the numbers are those of a direct call."""
    import sim.sweep as sweep

    experiment = load_experiment(tiny_file)
    _, units = sweep.plan(experiment)
    threaded = [parquet_bytes(pd.DataFrame(rows)) for _, rows in sweep.SerialExecutor().run(units)]
    assert threaded == [parquet_bytes(pd.DataFrame(sweep.run_unit(u))) for u in units]   # NaN equals NaN


def test_an_error_in_a_unit_reaches_the_caller_as_itself(tiny_file, monkeypatch):
    import sim.sweep as sweep

    def broken(unit):
        raise ZeroDivisionError("in the unit")

    monkeypatch.setattr(sweep, "run_unit", broken)
    with pytest.raises(ZeroDivisionError, match="in the unit"):
        run_experiment(load_experiment(tiny_file))


# -- 7. never silently replace a finished results folder ----------------------------------------

def test_the_same_run_again_keeps_the_folder_and_says_so(good, tiny_file, capsys, monkeypatch):
    import sim.sweep as sweep

    before = snapshot(good)
    monkeypatch.setattr(sweep, "run_unit", lambda unit: pytest.fail(f"ran {unit.name} again"))
    code, out, err = cli(capsys, "run", tiny_file, "--out", good, "--workers", "1")
    assert code == 0, err
    assert f"results: {good} already holds these results" in out and "nothing was run or rewritten" in out
    assert "mean per programme over 3 replicates" in out    # the headline table, from the stored results
    assert snapshot(good) == before


def test_another_experiment_needs_overwrite(good, tiny_file, capsys):
    before = snapshot(good)
    refused(*cli(capsys, "run", tiny_file, "--out", good, "--quiet", "--workers", "1", "--seed", "12"),
            "--out", "another experiment (experiment.seed: 11 there, 12 here)", "--overwrite")
    assert snapshot(good) == before
    assert cli(capsys, "run", tiny_file, "--out", good, "--quiet", "--workers", "1", "--seed", "12",
               "--overwrite")[0] == 0
    assert json.loads((good / "manifest.json").read_text())["seeds"]["root"] == 12


def test_resume_and_overwrite_together_are_refused(good, tiny_file, capsys):
    before = snapshot(good)
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tiny_file), "--out", str(good), "--resume", "--overwrite"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert snapshot(good) == before


def test_the_readme_command_leaves_the_committed_headline_results_untouched(tmp_path, monkeypatch, capsys):
    """``lfrsim run experiments/met_2025_headline.toml``, from the README, where results/ holds
    that experiment's committed results: they are read back, not rewritten."""
    committed = ROOT / "results" / "met_2025_headline"
    if not (committed / "metrics.parquet").is_file():
        pytest.skip("no committed headline results")
    shutil.copytree(committed, tmp_path / "results" / "met_2025_headline")
    (tmp_path / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "met_2025_headline.toml", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path / "results")
    import sim.sweep as sweep

    monkeypatch.setattr(sweep, "run_unit", lambda unit: pytest.fail("the committed results were recomputed"))
    code, out, err = cli(capsys, "run", "experiments/met_2025_headline.toml", "--quiet")
    assert code == 0, err
    assert "results/met_2025_headline already holds these results" in out
    assert snapshot(tmp_path / "results") == before


# -- 9. --out below a regular file ----------------------------------------------------------------

def test_out_below_a_file_says_not_a_directory(tiny_file, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("precious")
    for out in (a_file / "x", a_file / "x" / "y"):
        line = refused(*cli(capsys, "run", tiny_file, "--out", out, "--quiet", "--workers", "1"), "--out",
                       "not a directory")
        assert "permission" not in line
    assert a_file.read_text() == "precious"
