"""Results folders: the contract, atomic units, resume to the same bytes, refusals, reproduce."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from sim.config import Experiment, from_dict, load_experiment
from sim.errors import all_paths
from sim.metrics import clopper_pearson
from sim.pipeline import run_experiment
from sim.results import (
    Results,
    ResultsError,
    differences,
    is_results_folder,
    parquet_bytes,
    read_results,
    source_identity,
    source_sha256,
)

REPO = Path(__file__).resolve().parents[1]
SUMMARY_COLUMNS = ["cell", "group", "metric", "estimate", "ci_low", "ci_high", "replicates"]
CORE_METRICS = {"faces", "watchlisted_passers", "alerts", "true_alerts", "false_alerts", "false_alert_rate",
                "expected_false_alerts", "fpir", "tpir", "ppv", "operator_rejected", "engagements", "arrests",
                "other_disposals", "no_action", "wrongful_stops", "lost_alerts", "officer_utilisation"}


def tiny(replications: int = 2) -> Experiment:
    return from_dict({
        "experiment": {"name": "tiny", "seed": 5, "replications": replications},
        "programme": {"generator": {"weeks": 1, "deployments_per_week": 2, "duration_hours": 1.0,
                                    "footfall_per_hour": 2000.0}},
        "watchlist": {"size": 2000},
        "sweep": {"parameters": {"matcher.threshold": [0.58, 0.62], "watchlist.size": [1000, 5000]}},
    })


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Results]:
    out = tmp_path_factory.mktemp("results") / "tiny"
    return out, run_experiment(tiny(), out=out)


# -- the folder contract (DESIGN section 4) ----------------------------------------------------

def test_folder_holds_the_contracted_files_and_no_parts(finished):
    out, _ = finished
    for name in ("config.toml", "manifest.json", "metrics.parquet", "summary.csv", "summary.md"):
        assert (out / name).is_file(), name
    assert (out / "figures").is_dir() and any((out / "figures").glob("*.png"))
    assert not (out / "parts").exists()
    assert not list(out.rglob("*.tmp"))
    assert is_results_folder(out)


def test_config_is_fully_resolved_and_loads_back_equal(finished):
    out, results = finished
    text = (out / "config.toml").read_text()
    data = tomllib.loads(text)
    assert data["experiment"]["seed"] == 5
    # defaults are written out, not left implicit
    assert data["review"]["officers"] == results.experiment.review.officers
    # calibrated settings are recorded as such; the manifest names the posterior they drew from
    assert data["matcher"]["parameters"] == "calibrated"
    assert data["crowd"]["watchlisted_per_passer"] == "calibrated"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["posterior"]["sha256"] and "crowd.watchlisted_per_passer" in \
        manifest["posterior"]["calibrated_settings"]
    assert data["matcher"]["score_floor"] == 0.58
    assert Experiment.from_toml(text) == results.experiment


def test_config_writes_out_every_setting_of_the_schema(finished):
    # every leaf of the schema whose section is set (no optional section left out, no list of
    # deployments to walk) is in config.toml, prevalence_elasticity among them
    out, results = finished
    data = tomllib.loads((out / "config.toml").read_text())
    assert data["crowd"]["prevalence_elasticity"] == results.experiment.crowd.prevalence_elasticity
    checked = 0
    for path in all_paths(Experiment):
        *parents, leaf = path.split(".")
        model, table = results.experiment, data
        for key in parents:
            model, table = getattr(model, key), table.get(key) if isinstance(table, dict) else None
            if model is None or isinstance(model, list | dict):
                break
        else:
            if getattr(model, leaf) is not None:
                assert isinstance(table, dict) and leaf in table, path
                checked += 1
    assert checked > 50


def test_manifest_records_versions_commit_seeds_times_and_cells_done(finished):
    out, _ = finished
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"numpy", "scipy", "simpy", "pandas", "pyarrow", "python", "lfrsim"} <= set(manifest["versions"])
    assert {"git_commit", "git_dirty", "source_sha256"} <= set(manifest)
    assert manifest["seeds"]["root"] == 5 and manifest["seeds"]["replications"] == 2
    assert manifest["started"] <= manifest["finished"]
    assert manifest["status"] == "complete"
    assert manifest["cells"] == manifest["cells_done"] == 4
    assert manifest["units"] == manifest["units_done"] == 4


def test_manifest_records_which_code_ran(finished):
    out, _ = finished
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["source_sha256"]) == 64
    assert manifest["git_commit"] is None or len(manifest["git_commit"]) == 40
    assert manifest["git_dirty"] in (None, True, False)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=root,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _project(root: Path, name: str, package_at: str = "sim") -> Path:
    """A git work tree at ``root`` with a pyproject.toml named ``name`` and a copy of the package."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    package = root / package_at
    shutil.copytree(REPO / "sim", package, ignore=shutil.ignore_patterns("__pycache__"))
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "start")
    return package


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_is_recorded_only_inside_lfrsims_own_work_tree(tmp_path):
    # installed (not editable) into a virtual environment inside another project's repository
    package = _project(tmp_path / "thesis", "my-thesis", ".venv/lib/python3.11/site-packages/sim")
    identity = source_identity(package)
    assert identity["git_commit"] is None and identity["git_dirty"] is None
    assert identity["source_sha256"] == source_sha256(REPO / "sim")   # the same code, wherever it is
    # installed into a virtual environment inside lfrsim's own checkout: a copy, not the checkout's code
    checkout = _project(tmp_path / "checkout", "lfrsim").parent
    installed = checkout / ".venv" / "lib" / "site-packages" / "sim"
    shutil.copytree(checkout / "sim", installed)
    assert source_identity(installed)["git_commit"] is None
    assert source_identity(checkout / "sim")["git_commit"] == _git(checkout, "rev-parse", "HEAD")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_edited_package_is_recorded_as_dirty_with_its_own_hash(tmp_path):
    package = _project(tmp_path / "lfrsim", "lfrsim")
    clean = source_identity(package)
    assert clean["git_commit"] == _git(package.parent, "rev-parse", "HEAD")
    assert clean["git_dirty"] is False
    (package.parent / "README.md").write_text("notes outside the package do not count\n")
    assert source_identity(package)["git_dirty"] is False
    with (package / "config.py").open("a") as fh:
        fh.write("\n# an edit\n")
    edited = source_identity(package)
    assert edited["git_commit"] == clean["git_commit"] and edited["git_dirty"] is True
    assert edited["source_sha256"] != clean["source_sha256"]
    (package / "config.py").write_bytes((REPO / "sim" / "config.py").read_bytes())
    (package / "new_module.py").write_text("x = 1\n")               # untracked code counts too
    assert source_identity(package)["git_dirty"] is True


def test_metrics_are_tidy_with_the_sweeps_parameter_columns(finished):
    out, results = finished
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.columns) == ["cell", "matcher.threshold", "watchlist.size", "replicate", "group",
                                     "metric", "value"]
    assert not metrics.duplicated(["cell", "replicate", "group", "metric"]).any()
    assert CORE_METRICS <= set(metrics["metric"])
    by_cell = metrics.drop_duplicates("cell").set_index("cell")
    for i, cell in enumerate(results.cells):
        assert by_cell.loc[i, "matcher.threshold"] == cell["matcher.threshold"]
        assert by_cell.loc[i, "watchlist.size"] == cell["watchlist.size"]
    n_groups = metrics["group"].nunique()
    counts = metrics.groupby(["cell", "replicate"]).size()
    assert len(counts) == 4 * 2 and counts.nunique() == 1 and n_groups == 11


def test_summary_csv_has_the_contracted_columns(finished):
    out, _ = finished
    summary = pd.read_csv(out / "summary.csv")
    params = ["matcher.threshold", "watchlist.size"]
    assert list(summary.columns) == ["cell", *params, *SUMMARY_COLUMNS[1:]]
    assert set(summary["group"]) >= {"all"}
    assert (summary["replicates"] == 2).all()
    rates = summary[summary["metric"].isin(["false_alert_rate", "tpir", "ppv", "fpir"])].dropna()
    assert ((rates["ci_low"] <= rates["estimate"]) & (rates["estimate"] <= rates["ci_high"])).all()


def test_summary_rate_interval_is_the_spread_over_replicates(finished):
    """Each replicate runs with its own posterior draw: a rate's interval is the 2.5th-97.5th
    percentile of the replicates' rates (posterior predictive), its estimate the pooled ratio."""
    _, results = finished
    m = results.metrics
    part = m[(m["cell"] == 0) & (m["group"] == "all")]
    part = part.pivot(index="replicate", columns="metric", values="value")
    row = results.summary.query("cell == 0 and group == 'all' and metric == 'false_alert_rate'").iloc[0]
    per_replicate = (part["false_alerts"] / part["faces"]).to_numpy()
    assert row["estimate"] == pytest.approx(part["false_alerts"].sum() / part["faces"].sum())
    assert row["ci_low"] == pytest.approx(np.percentile(per_replicate, 2.5), abs=1e-15)
    assert row["ci_high"] == pytest.approx(np.percentile(per_replicate, 97.5), abs=1e-15)


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (3, 17), (12, 3_000_000), (400, 1000)])
def test_clopper_pearson_closed_form_agrees_with_binomtest(k, n):
    ci = stats.binomtest(k, n).proportion_ci(method="exact")
    low, high = clopper_pearson(k, n)
    assert low == pytest.approx(ci.low, rel=1e-6, abs=1e-300)
    assert high == pytest.approx(ci.high, rel=1e-6)
    # and it is the interval by definition: each tail holds 2.5%
    if k > 0:
        assert stats.binom.sf(k - 1, n, low) == pytest.approx(0.025, rel=1e-9)
    if k < n:
        assert stats.binom.cdf(k, n, high) == pytest.approx(0.025, rel=1e-9)


def test_read_results_gives_back_the_stored_metrics(finished):
    out, results = finished
    again = read_results(out)
    pd.testing.assert_frame_equal(again.metrics, results.metrics)
    pd.testing.assert_frame_equal(again.summary, results.summary)


# -- public API ----------------------------------------------------------------------------------

def test_sim_run_returns_results_with_a_summary_frame():
    results = sim.run(tiny(1), replications=1, seed=3)
    assert callable(sim.run)
    assert isinstance(results.summary, pd.DataFrame)
    assert list(results.summary.columns)[-6:] == SUMMARY_COLUMNS[1:]
    assert results.experiment.experiment.seed == 3


def test_sim_run_accepts_a_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny(1).to_toml())
    assert sim.run(path).summary.equals(sim.run(sim.load_experiment(path)).summary)


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_experiment_round_trips_through_toml(path):
    e = load_experiment(path)
    assert Experiment.from_toml(e.to_toml()) == e


# -- resume: only missing units, same bytes ------------------------------------------------------

class StopAfter:
    """A progress callback that interrupts the run like Ctrl-C after some units."""

    def __init__(self, units: int):
        self.left = units + 1                         # the first call comes before any unit

    def __call__(self, done: int, total: int) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_interrupted_then_resumed_run_ends_with_the_same_bytes(tmp_path, finished, monkeypatch):
    reference, _ = finished
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny(), out=out, progress=StopAfter(2))
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["group00000-rep00000.parquet",
                                                                 "group00000-rep00001.parquet"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["units_done"] == 2
    assert not (out / "metrics.parquet").exists()
    with pytest.raises(ResultsError, match="interrupted run"):
        read_results(out)

    import sim.sweep as sweep

    ran: list[str] = []
    real = sweep.run_unit
    monkeypatch.setattr(sweep, "run_unit", lambda unit: ran.append(unit.name) or real(unit))
    run_experiment(tiny(), out=out, resume=True)
    assert ran == ["group00001-rep00000", "group00001-rep00001"]
    assert (out / "metrics.parquet").read_bytes() == (reference / "metrics.parquet").read_bytes()
    assert (out / "summary.csv").read_bytes() == (reference / "summary.csv").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["resumed"]) == 1
    assert not (out / "parts").exists()


def test_resuming_a_finished_folder_runs_nothing_and_keeps_the_bytes(tmp_path, finished, monkeypatch):
    reference, _ = finished
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    import sim.sweep as sweep

    monkeypatch.setattr(sweep, "run_unit", lambda unit: pytest.fail(f"ran {unit.name} again"))
    run_experiment(tiny(), out=out, resume=True)
    assert (out / "metrics.parquet").read_bytes() == (reference / "metrics.parquet").read_bytes()


def test_resume_removes_half_written_temporaries(tmp_path, finished):
    reference, _ = finished
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny(), out=out, progress=StopAfter(1))
    leftover = out / "parts" / ".group00000-rep00001.parquet.123.abcd.tmp"
    leftover.write_bytes(b"PAR1 half a file")
    run_experiment(tiny(), out=out, resume=True)
    assert not leftover.exists()
    assert (out / "metrics.parquet").read_bytes() == (reference / "metrics.parquet").read_bytes()


def test_resume_into_an_empty_or_missing_folder_starts_afresh(tmp_path, finished):
    reference, _ = finished
    run_experiment(tiny(), out=tmp_path / "new", resume=True)
    assert (tmp_path / "new" / "metrics.parquet").read_bytes() == (reference / "metrics.parquet").read_bytes()


def test_resume_with_another_seed_is_refused(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny(), out=out, progress=StopAfter(1))
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ResultsError, match="resume: .*differs"):
        run_experiment(tiny(), seed=6, out=out, resume=True)
    assert sorted(p.name for p in out.rglob("*")) == before


# -- refusals: nothing touched ----------------------------------------------------------------

def test_a_non_empty_folder_that_is_not_results_is_left_alone(tmp_path):
    out = tmp_path / "thesis"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "chapter1.png").write_bytes(b"mine")
    (out / "config.toml").write_text("# my own config\n")
    with pytest.raises(ResultsError, match="not empty and is not a results folder") as err:
        run_experiment(tiny(1), out=out)
    assert "\n" not in str(err.value)
    assert (out / "figures" / "chapter1.png").read_bytes() == b"mine"
    assert (out / "config.toml").read_text() == "# my own config\n"
    assert sorted(p.name for p in out.rglob("*")) == ["chapter1.png", "config.toml", "figures"]


def test_a_file_as_out_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ResultsError, match="not a folder"):
        run_experiment(tiny(1), out=target)
    with pytest.raises(ResultsError, match="is a file, not a directory") as err:
        run_experiment(tiny(1), out=target / "below" / "deeper")
    assert "permission" not in str(err.value)
    assert target.read_text() == "x"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def test_results_of_another_experiment_are_replaced_only_with_overwrite(tmp_path, finished):
    reference, _ = finished
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "figures" / "stale.png").write_bytes(b"from the old run")
    (out / "notes.md").write_text("mine")
    before = snapshot(out)
    with pytest.raises(ResultsError, match=r"another experiment \(experiment.replications: 2 there, 1 here\)"
                                           r".*overwrite=True") as err:
        run_experiment(tiny(1), out=out)
    assert "\n" not in str(err.value) and err.value.setting == "out"
    assert snapshot(out) == before
    run_experiment(tiny(1), out=out, overwrite=True)
    assert (out / "metrics.parquet").read_bytes() == parquet_bytes(run_experiment(tiny(1)).metrics)
    assert not (out / "figures" / "stale.png").exists()
    assert (out / "notes.md").read_text() == "mine"          # only what a run writes is replaced
    assert json.loads((out / "manifest.json").read_text())["resumed"] == []


def test_a_finished_folder_of_the_same_experiment_is_read_back_untouched(tmp_path, finished, monkeypatch):
    reference, _ = finished
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = snapshot(out)
    import sim.sweep as sweep

    monkeypatch.setattr(sweep, "run_unit", lambda unit: pytest.fail(f"ran {unit.name} again"))
    again = run_experiment(tiny(), out=out)
    assert again.reused and again.path == out
    assert snapshot(out) == before
    assert parquet_bytes(again.metrics) == (reference / "metrics.parquet").read_bytes()


def test_the_same_experiment_is_compared_as_resolved_not_as_text(tmp_path, finished, monkeypatch):
    """A config.toml written before a setting with a default existed still holds the same experiment."""
    reference, _ = finished
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    text = (out / "config.toml").read_text()
    assert "prevalence_elasticity = 1.0\n" in text
    (out / "config.toml").write_text(text.replace("prevalence_elasticity = 1.0\n", ""))
    before = snapshot(out)
    import sim.sweep as sweep

    monkeypatch.setattr(sweep, "run_unit", lambda unit: pytest.fail(f"ran {unit.name} again"))
    assert run_experiment(tiny(), out=out).reused
    assert snapshot(out) == before


def test_an_unfinished_run_of_the_same_experiment_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny(), out=out, progress=StopAfter(1))
    before = snapshot(out)
    with pytest.raises(ResultsError, match=r"unfinished run of this experiment \(1 of 4 units done\); "
                                           r"resume=True continues it, overwrite=True starts afresh"):
        run_experiment(tiny(), out=out)
    assert snapshot(out) == before
    run_experiment(tiny(), out=out, overwrite=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["resumed"] == []


@pytest.mark.parametrize("make", ["empty", "missing", "other", "interrupted", "bad_parquet",
                                  "foreign_parquet"])
def test_read_results_refuses_what_is_not_a_finished_results_folder(tmp_path, finished, make):
    reference, _ = finished
    folder = tmp_path / "x"
    if make != "missing":
        folder.mkdir()
    if make == "other":
        (folder / "notes.txt").write_text("hello")
    if make == "interrupted":
        (folder / "parts").mkdir()
        (folder / "config.toml").write_text((reference / "config.toml").read_text())
    if make in ("bad_parquet", "foreign_parquet"):
        (folder / "config.toml").write_text((reference / "config.toml").read_text())
        if make == "bad_parquet":
            (folder / "metrics.parquet").write_bytes(b"not parquet")
        else:
            pd.DataFrame({"a": [1]}).to_parquet(folder / "metrics.parquet")
    with pytest.raises(ResultsError) as err:
        read_results(folder)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


# -- differences ------------------------------------------------------------------------------

def test_differences_is_empty_for_identical_tables_nan_included(finished):
    _, results = finished
    assert results.metrics["value"].isna().any()
    assert differences(results.metrics, results.metrics.copy()).empty


def test_differences_names_the_changed_metric(finished):
    _, results = finished
    changed = results.metrics.copy()
    i = changed.index[(changed["metric"] == "false_alerts") & (changed["group"] == "all")][3]
    changed.loc[i, "value"] = changed.loc[i, "value"] + 1
    diff = differences(results.metrics, changed)
    assert len(diff) == 1
    row = diff.iloc[0]
    assert row["metric"] == "false_alerts" and row["group"] == "all"
    assert row["fresh"] == row["stored"] + 1


def test_differences_reports_missing_and_extra_rows(finished):
    _, results = finished
    fewer = results.metrics.iloc[:-3]
    diff = differences(results.metrics, fewer)
    assert len(diff) == 3 and diff["fresh"].isna().all()
    keys = ["cell", "replicate", "group", "metric"]
    expected = results.metrics.iloc[-3:][keys].astype(str).reset_index(drop=True)
    pd.testing.assert_frame_equal(diff[keys].reset_index(drop=True), expected)
    extra = differences(fewer, results.metrics)
    assert len(extra) == 3 and extra["stored"].isna().all()


@pytest.mark.parametrize(("stop", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_a_run_stopped_while_its_figures_are_drawn_keeps_its_tables_and_says_why(tmp_path, monkeypatch,
                                                                                stop, status):
    import sim.report as report

    def broken(fig, tight=False):
        raise stop("while drawing")

    monkeypatch.setattr(report, "_png", broken)
    out = tmp_path / "run"
    with pytest.raises(stop):
        run_experiment(tiny(), out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == status
    assert (out / "metrics.parquet").is_file() and (out / "summary.csv").is_file()
    assert not (out / "summary.md").exists()
