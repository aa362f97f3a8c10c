"""lfrsim replay: a deployment grid replayed with the simulator, and docs/validation.md from it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sim import draws as dr
from sim import grid as G
from sim import records as rec
from sim import replay
from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "validation.md"
SHIPPED = ROOT / "results" / "replay_met_lfr_deployments_2020_2024"
RECORDS = ROOT / "sim" / "data" / "met_lfr_deployments_2020_2024.csv"


def small_grid(tmp_path: Path, rows: list[int], drop: tuple[str, ...] = ()) -> Path:
    """A grid of some of the Met's rows (1-based), optionally without some columns."""
    with open(RECORDS, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        every = list(reader)
        header = [c for c in reader.fieldnames if c not in drop]
    path = tmp_path / "grid.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header, extrasaction="ignore")
        w.writeheader()
        w.writerows(every[i - 1] for i in rows)
    return path


def test_the_committed_validation_page_is_current():
    assert PAGE.read_text() == replay.validation_page(SHIPPED), (
        "docs/validation.md is stale: lfrsim replay sim/data/met_lfr_deployments_2020_2024.csv "
        "--page docs/validation.md")


def test_the_shipped_replay_covers_every_recorded_deployment_and_period():
    doc = replay.read_replay(SHIPPED)
    assert doc["about"]["with_outcomes"] == len(rec.fit_rows())
    recorded = [d for d in doc["per_deployment"] if d["alerts"]["recorded"] is not None]
    assert sum(d["alerts"]["recorded"] for d in recorded) == 58 + 633 + 54 + 593
    assert [p["period"] for p in doc["periods"] if p["kind"] == "calibration_period"] == list(rec.PERIODS)
    for name, c in doc["coverage"].items():
        assert c["deployments"] == len(rec.fit_rows()), name
        assert 0.0 <= c["in_50"] <= c["in_95"] <= 1.0


def test_replay_results_do_not_depend_on_the_number_of_workers(tmp_path):
    grid = G.read_grid(small_grid(tmp_path, [20, 60, 150, 200]))
    one = replay.replay(grid, draws=4, seed=3, workers=1)
    two = replay.replay(grid, draws=4, seed=3, workers=2)
    for name in replay.COUNTS:
        assert np.array_equal(one.counts[name], two.counts[name]), name
    assert replay.deployments_csv(one.result) == replay.deployments_csv(two.result)


def test_each_row_runs_at_its_own_threshold_list_size_and_regime(tmp_path):
    grid = G.read_grid(small_grid(tmp_path, [20, 150, 200]))
    experiment = replay.replay_experiment(grid, draws=2, seed=1)
    for row, d in zip(grid.simulated, experiment.programme.deployments, strict=True):
        own = (d.threshold, d.watchlist_size, d.recorded_faces)
        assert own == (row.threshold, row.watchlist_size, row.faces)
        assert d.period == row.period
    assert experiment.watchlist.size == max(r.watchlist_size for r in grid.simulated)


def test_a_grid_without_outcome_columns_gives_a_forecast_folder(tmp_path):
    path = small_grid(tmp_path, [150, 160, 170], drop=G.OUTCOME_COLUMNS)
    out = tmp_path / "forecast"
    assert main(["replay", str(path), "--draws", "3", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    doc = json.loads((out / "replay.json").read_text())
    assert doc["forecast"] is True and doc["coverage"] == {}
    assert "(forecast)" in (out / "summary.md").read_text()
    assert (out / "figures" / "predicted_vs_recorded.png").stat().st_size > 0
    assert not (out / "figures" / "pit.png").exists()
    with open(out / "deployments.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * len(replay.COUNTS) and all(r["recorded"] == "" for r in rows)
    assert all(float(r["mean"]) >= 0 for r in rows)


def test_lfrsim_replay_writes_the_folder_and_the_page(tmp_path):
    path = small_grid(tmp_path, [10, 20, 60, 100, 150, 200])
    out, page = tmp_path / "replayed", tmp_path / "docs" / "validation.md"
    assert main(["replay", str(path), "--draws", "4", "--out", str(out), "--page", str(page),
                 "--workers", "1", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*replay.REPLAY_FILES, "figures"])
    assert page.read_text().startswith("# Validation against the Met's records")
    assert (page.parent / "figures" / "replay_pit.png").stat().st_size > 0
    # a second replay replaces the first, whole
    assert main(["replay", str(path), "--draws", "2", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert json.loads((out / "replay.json").read_text())["about"]["draws"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lfrsim_replay_refuses_a_bad_draw_count(capsys):
    assert main(["replay", str(RECORDS), "--draws", "0"]) == 2
    assert "--draws" in capsys.readouterr().err


def test_lfrsim_replay_names_a_shipped_grid_as_lfrsim_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # no records file next to the command
    assert main(["replay", "lfrsim:nope.csv"]) == 2
    err = capsys.readouterr().err
    assert "lfrsim:met_lfr_deployments_2020_2024.csv" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()
    # the shipped form reaches the shipped file: refused here only for its folder, not its name
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "replay_met_lfr_deployments_2020_2024").mkdir()
    (tmp_path / "results" / "replay_met_lfr_deployments_2020_2024" / "mine.txt").write_text("keep")
    assert main(["replay", "lfrsim:met_lfr_deployments_2020_2024.csv", "--draws", "1"]) == 2
    assert "--out" in capsys.readouterr().err


def test_lfrsim_replay_never_writes_over_a_folder_that_is_not_a_replay(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["replay", str(small_grid(tmp_path, [150])), "--draws", "1", "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_p_values_and_pit_are_those_of_the_replicates():
    rep = np.array([0, 0, 1, 1, 1, 2, 3, 5, 8, 13], dtype=float)
    c = replay.predictive(rep, 1.0, 0.5)
    assert c["p_value"] == pytest.approx(min(1.0, 2 * min(0.8, 0.5)))
    assert c["pit"] == pytest.approx(0.2 + 0.5 * 0.3)
    assert c["in_50"] and c["in_95"] and c["mean"] == pytest.approx(3.4)
    assert replay.predictive(rep, None, 0.5)["p_value"] is None


@pytest.mark.slow
def test_replay_agrees_with_the_calibrations_closed_form_per_period():
    """The simulator's replay against the calibration's closed-form expectation (``sim.likelihood``)
    for the same posterior draws and drawn regimes: per period, the mean of (simulated count -
    expected count) over replicates is Monte Carlo noise, |z| < 4 for each of 8 checks (false-
    failure rate below 5e-4 for the set; the seed is fixed)."""
    k, seed = 60, 7
    grid = G.read_grid(RECORDS)
    rp = replay.replay(grid, draws=k, seed=seed, workers=2)
    post = replay.shipped_posterior()
    fit, data, x = rec.fit_rows(), post.model.data, post.matrix()
    column = {r.row: i for i, r in enumerate(grid.simulated)}
    cols = np.array([column[r.index + 1] for r in fit])
    regime = {name: i for i, name in enumerate(rec.REGIMES)}
    expected = {"true_alerts": np.zeros((k, len(fit))), "false_alerts": np.zeros((k, len(fit)))}
    rows = np.arange(len(fit))
    for r in range(k):
        index, _ = dr.draw_index(seed, r)
        true3, false3 = post.model.expected(x[index], data)
        which = np.array([regime[name] for name in rp.regimes[r, cols]])
        expected["true_alerts"][r], expected["false_alerts"][r] = true3[rows, which], false3[rows, which]
    for period in rec.PERIODS:
        sel = np.array([f.period == period for f in fit])
        for name, mu in expected.items():
            residual = rp.counts[name][:, cols[sel]].sum(axis=1) - mu[:, sel].sum(axis=1)
            z = residual.mean() / (residual.std(ddof=1) / np.sqrt(k))
            assert abs(z) < 4, (period, name, z)


@pytest.mark.slow
def test_the_shipped_replay_folder_reproduces():
    doc = json.loads((SHIPPED / "replay.json").read_text())
    again = replay.replay(RECORDS, draws=doc["about"]["draws"], seed=doc["about"]["seed"], workers=2)
    assert replay.deployments_csv(again.result) == (SHIPPED / "deployments.csv").read_text()
