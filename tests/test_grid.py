"""Deployment grids (sim.grid): read and checked row by row, and run as programmes."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import pytest

from sim import grid as G
from sim import records as rec
from sim.cli import main
from sim.config import ConfigError, from_dict, load_experiment
from sim.pipeline import run
from sim.replicate import simulate_replicate

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "sim" / "data" / "met_lfr_deployments_2020_2024.csv"
HEADER = ["date", "deployment", "borough", "ward_code", "watchlist_size", "faces_seen", "threshold",
          "alerts_total", "true_alerts_confirmed", "false_alerts_confirmed", "arrests", "duration"]
GOOD = {"date": "2024-03-01", "deployment": "Croydon", "borough": "Croydon", "ward_code": "E05011467",
        "watchlist_size": "12000", "faces_seen": "3000", "threshold": "0.60", "alerts_total": "4",
        "true_alerts_confirmed": "3", "false_alerts_confirmed": "1", "arrests": "2", "duration": "5:30:00"}
BASE = {"experiment": {"name": "grid_test", "seed": 11, "replications": 2},
        "watchlist": {"size": 16000}}


def write_grid(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def same_metrics(a: Path, b: Path) -> bool:
    return (a / "metrics.parquet").read_bytes() == (b / "metrics.parquet").read_bytes()


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        G.read_grid(path)
    return exc.value.problems


def test_the_shipped_records_read_as_a_grid_with_the_records_own_labels():
    grid = G.read_grid(RECORDS)
    records = rec.load()
    assert len(grid.rows) == len(records) == 212
    assert all(r.p_low_count == x.p_low_count for r, x in zip(grid.rows, records, strict=True))
    fitted = {r.index for r in rec.fit_rows()}
    assert {r.row - 1 for r in grid.simulated if r.outcomes is not None} == fitted
    for r in rec.fit_rows():
        row = grid.rows[r.index]
        assert (row.period, row.regime, row.outcomes.true_alerts, row.outcomes.false_alerts,
                row.outcomes.arrests) == (r.period, r.regime, r.true_alerts, r.false_alerts, r.arrests)
    assert {r.skipped for r in grid.rows if r.skipped} == {"no duration published", "no faces_seen published"}


def test_a_boroughs_short_name_is_its_census_name():
    assert G.canonical_borough("Kingston") == "Kingston upon Thames"
    assert G.canonical_borough("Richmond") == "Richmond upon Thames"
    assert G.canonical_borough("Westminster") == "Westminster"
    assert G.canonical_borough("Gotham") is None


@pytest.mark.parametrize(("column", "value", "says"), [
    ("date", "2024-13-01", "must be a date YYYY-MM-DD"),
    ("date", "yesterday", "must be a date YYYY-MM-DD"),
    ("duration", "five hours", "must be H:MM:SS or hours"),
    ("duration", "5:75:00", "must be between 0:00:00 and 24:00:00"),
    ("faces_seen", "-3", "a count >= 0"),
    ("arrests", "-1", "a count >= 0"),
    ("alerts_total", "2.5", "a count >= 0"),
    ("watchlist_size", "0", "a whole number of entries"),
    ("threshold", "1.2", "a threshold between 0 and 1"),
    ("ward_code", "E99999999", "London ward code"),
    ("borough", "Gotham", "must be a London borough"),
])
def test_a_hostile_cell_is_refused_by_row_and_column(tmp_path, column, value, says):
    path = write_grid(tmp_path / "g.csv", [GOOD, {**GOOD, column: value}])
    found = problems_of(path)
    assert len(found) == 1, found
    assert f"row 2, column {column}: must be" in found[0] and says in found[0], found
    assert repr(value) in found[0]


def test_every_bad_cell_is_reported_not_only_the_first(tmp_path):
    path = write_grid(tmp_path / "g.csv", [{**GOOD, "date": "x"}, GOOD, {**GOOD, "faces_seen": "-1",
                                                                          "borough": "Nowhere"}])
    found = problems_of(path)
    assert [p.split(": ", 1)[0].split(" ", 1)[1] for p in found] == [
        "row 1, column date", "row 3, column faces_seen", "row 3, column borough"]


def test_a_missing_required_column_is_named(tmp_path):
    path = write_grid(tmp_path / "g.csv", [GOOD], [h for h in HEADER if h != "duration"])
    found = problems_of(path)
    assert found == [f"{path}: column duration: required (a grid gives date, deployment, faces_seen, "
                     "duration), missing from the header"]


def test_not_a_grid_is_refused_in_one_line(tmp_path):
    assert "no such grid file" in problems_of(tmp_path / "absent.csv")[0]
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert "not a UTF-8" in problems_of(tmp_path / "bin.csv")[0]
    (tmp_path / "empty.csv").write_text(",".join(HEADER) + "\n")
    assert "no deployments" in problems_of(tmp_path / "empty.csv")[0]


def test_unpublished_cells_are_not_errors(tmp_path):
    blank = dict.fromkeys(("threshold", "watchlist_size", "alerts_total", "true_alerts_confirmed",
                           "false_alerts_confirmed", "arrests"), "")
    path = write_grid(tmp_path / "g.csv", [{**GOOD, "duration": ""}, {**GOOD, **blank}])
    grid = G.read_grid(path)
    assert grid.rows[0].skipped == "no duration published"
    second = grid.rows[1]
    assert not second.skipped and second.outcomes is None
    assert second.threshold is None and second.watchlist_size is None
    assert "threshold" not in second.deployment() and "watchlist_size" not in second.deployment()


@pytest.mark.parametrize("command", ["replay", "validate"])
def test_a_hostile_grid_exits_2_and_writes_nothing(tmp_path, capsys, command):
    path = write_grid(tmp_path / "g.csv", [GOOD, {**GOOD, "date": "2024-02-30"}])
    out = tmp_path / "out"
    if command == "replay":
        args = ["replay", str(path), "--out", str(out), "--draws", "2"]
    else:
        exp = tmp_path / "exp.toml"
        exp.write_text('[experiment]\nname = "g"\n[programme]\ngrid = "g.csv"\n[watchlist]\nsize = 1000\n')
        args = ["validate", str(exp)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "row 2, column date: must be a date YYYY-MM-DD, got '2024-02-30'" in err
    assert "Traceback" not in err
    assert not out.exists()
    expected = {"g.csv", "exp.toml"} if command == "validate" else {"g.csv"}
    assert {p.name for p in tmp_path.iterdir()} == expected


def test_a_grid_is_read_relative_to_the_experiment_and_resolved_once(tmp_path):
    write_grid(tmp_path / "g.csv", [GOOD, {**GOOD, "threshold": "0.64", "watchlist_size": "9000"}])
    exp = tmp_path / "exp.toml"
    exp.write_text('[experiment]\nname = "g"\n[programme]\ngrid = "g.csv"\n[watchlist]\nsize = 16000\n')
    experiment = load_experiment(exp)
    deps = experiment.programme.deployments
    assert [(d.threshold, d.watchlist_size) for d in deps] == [(0.60, 12000), (0.64, 9000)]
    assert experiment.matcher.score_floor == 0.60        # the lowest threshold in use
    assert len(experiment.programme.grid_sha256) == 64
    (tmp_path / "g.csv").unlink()                        # the resolved experiment never reads it again
    again = type(experiment).from_toml(experiment.to_toml())
    assert again == experiment


def test_a_shipped_grid_is_named_the_same_wherever_the_experiment_lives(tmp_path):
    by_name = {**copy.deepcopy(BASE), "programme": {"grid": "lfrsim:met_lfr_deployments_2020_2024.csv"}}
    by_path = {**copy.deepcopy(BASE), "programme": {"grid": str(RECORDS)}}
    a = from_dict(copy.deepcopy(by_name), tmp_path)
    b = from_dict(copy.deepcopy(by_name), None)
    c = from_dict(by_path, tmp_path)
    assert a == b
    assert a.programme.deployments == c.programme.deployments
    assert a.programme.grid_sha256 == c.programme.grid_sha256
    assert a.programme.grid == "lfrsim:met_lfr_deployments_2020_2024.csv"      # written out as named
    assert G.resolve_path("lfrsim:met_lfr_deployments_2020_2024.csv", tmp_path).samefile(RECORDS)
    assert G.resolve_path("mine.csv", tmp_path) == tmp_path / "mine.csv"     # a path is still a path


@pytest.mark.parametrize("name", ["lfrsim:nope.csv", "lfrsim:london_ward_ethnicity_census2021.csv",
                                  "lfrsim:", "lfrsim:../data/met_lfr_deployments_2020_2024.csv"])
def test_an_unknown_shipped_grid_is_one_line_listing_the_shipped_ones(tmp_path, name):
    with pytest.raises(ConfigError) as caught:
        from_dict({**copy.deepcopy(BASE), "programme": {"grid": name}}, tmp_path)
    assert caught.value.problems == [f"programme.grid: {name!r} is not a grid file shipped with lfrsim; "
                                     "the shipped ones: lfrsim:met_lfr_deployments_2020_2024.csv"]


def test_the_shipped_grids_are_those_in_the_grid_format():
    assert G.shipped_grids() == ["met_lfr_deployments_2020_2024.csv"]


def one_row_experiments(tmp_path: Path) -> tuple[dict, dict]:
    """The same deployment twice: a one-row grid, and a generator programme of one deployment."""
    row = {"date": "2023-05-02", "deployment": "Croydon", "ward_code": "E05011467", "faces_seen": "4000",
           "duration": "4:00:00"}
    write_grid(tmp_path / "one.csv", [row], ["date", "deployment", "ward_code", "faces_seen", "duration"])
    as_grid = {**copy.deepcopy(BASE), "programme": {"grid": "one.csv"}, "crowd": {"counting_regime": "2023"}}
    as_generator = {**copy.deepcopy(BASE), "crowd": {"counting_regime": "2023"}, "programme": {"generator": {
        "weeks": 1, "deployments_per_week": 1, "days_per_week": 1, "start_date": "2023-05-02",
        "sites": ["E05011467"], "duration_hours": 4.0, "recorded_faces_per_hour": 1000.0}}}
    return as_grid, as_generator


def test_a_one_row_grid_is_the_same_deployment_as_a_generator_programme(tmp_path):
    as_grid, as_generator = one_row_experiments(tmp_path)
    a, b = from_dict(as_grid, tmp_path), from_dict(as_generator, tmp_path)
    for r in range(3):
        x, y = simulate_replicate(a, r, [0.64])[0.64], simulate_replicate(b, r, [0.64])[0.64]
        for name in x["counts"]:
            assert np.array_equal(x["counts"][name], y["counts"][name]), (r, name)
    ra = run(a, out=tmp_path / "a")
    rb = run(b, out=tmp_path / "b")
    assert same_metrics(tmp_path / "a", tmp_path / "b")
    assert ra.summary.equals(rb.summary)


def test_a_one_row_grid_is_the_same_as_its_deployment_written_out(tmp_path):
    as_grid, _ = one_row_experiments(tmp_path)
    listed = {**copy.deepcopy(as_grid), "programme": {"deployments": [{
        "site": "Croydon", "date": "2023-05-02", "ward_code": "E05011467", "recorded_faces": 4000.0,
        "duration_hours": 4.0, "counting_regime": "2023"}]}}
    a, b = from_dict(as_grid, tmp_path), from_dict(listed, tmp_path)
    run(a, out=tmp_path / "a")
    run(b, out=tmp_path / "b")
    assert same_metrics(tmp_path / "a", tmp_path / "b")


def test_a_threshold_sweep_over_a_grid_overrides_every_row(tmp_path):
    # 2025: outside the calibration's periods, whose effects a row would keep under any threshold
    rows = [{**GOOD, "date": "2025-03-01"}, {**GOOD, "threshold": "0.62", "date": "2025-07-15"},
            {**GOOD, "threshold": "0.64", "date": "2025-08-01"}]
    write_grid(tmp_path / "g.csv", rows)
    write_grid(tmp_path / "bare.csv", rows, [h for h in HEADER if h != "threshold"])
    swept = {**copy.deepcopy(BASE), "programme": {"grid": "g.csv"},
             "sweep": {"parameters": {"matcher.threshold": [0.60, 0.66]}}}
    experiment = from_dict(swept, tmp_path)
    cell = experiment.with_values({"matcher.threshold": 0.66})
    assert all(d.threshold is None for d in cell.programme.deployments)
    assert experiment.with_values({}).programme.deployments[0].threshold is None   # the plan's group
    result = run(experiment, out=tmp_path / "swept")
    for t in (0.60, 0.66):
        bare = {**copy.deepcopy(BASE), "programme": {"grid": "bare.csv"},
                "matcher": {"threshold": t, "score_floor": 0.60}}
        alone = run(from_dict(bare, tmp_path))
        cell_rows = result.summary[result.summary["matcher.threshold"] == t]
        mine = cell_rows.drop(columns=["cell", "matcher.threshold"]).reset_index(drop=True)
        theirs = alone.summary.drop(columns=["cell"]).reset_index(drop=True)
        assert mine.equals(theirs), t


def test_rows_at_their_own_thresholds_alert_at_them(tmp_path):
    low = [{**GOOD, "faces_seen": "40000", "threshold": "0.58"}]
    high = [{**GOOD, "faces_seen": "40000", "threshold": "0.70"}]
    write_grid(tmp_path / "low.csv", low)
    write_grid(tmp_path / "high.csv", high)
    counts = {}
    for name in ("low", "high"):
        e = from_dict({**copy.deepcopy(BASE), "programme": {"grid": f"{name}.csv"},
                       "matcher": {"score_floor": 0.58}}, tmp_path)
        t = e.matcher.threshold
        counts[name] = sum(float(simulate_replicate(e, r, [t])[t]["counts"]["expected_false_alerts"].sum())
                           for r in range(2))
    assert counts["low"] > 10 * counts["high"] > 0
