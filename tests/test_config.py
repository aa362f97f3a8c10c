"""The experiment schema: strict types, one line per problem, round trips, sweeps checked in full."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from hypothesis import given, settings

from sim.config import ConfigError, Experiment, from_dict, load_experiment
from sim.testing.strategies import experiments, sweeps

BASE = {
    "experiment": {"name": "t"},
    "programme": {"deployments": [{"site": "a", "duration_hours": 1.0, "footfall_per_hour": 3000.0}]},
    "watchlist": {"size": 5000},
}
LINE = re.compile(r"^[A-Za-z_][\w.]*: \S")


def problems(**settings) -> list[str]:
    data = copy.deepcopy(BASE)
    for path, value in settings.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[leaf] = value
    with pytest.raises(ConfigError) as caught:
        from_dict(data)
    for line in caught.value.problems:
        assert LINE.match(line) and "\n" not in line, line
    return caught.value.problems


@pytest.mark.parametrize("setting, value, expected", [
    ("watchlist__size", -5, "watchlist.size: must be > 0 and <= 100000000, got -5"),
    ("watchlist__size", 10**18, "watchlist.size: must be > 0 and <= 100000000, got 1000000000000000000"),
    ("watchlist__size", "16000", "watchlist.size: must be a whole number, got '16000'"),
    ("watchlist__size", 1.5, "watchlist.size: must be a whole number, got 1.5"),
    ("watchlist__size", True, "watchlist.size: must be a whole number, got true"),
    ("watchlist__female_share", 1.5, "watchlist.female_share: must be between 0 and 1, got 1.5"),
    ("matcher__threshold", float("nan"),
     "matcher.threshold: must be a finite number between 0 and 1, got nan"),
    ("crowd__counting_regime", "tracks",
     "crowd.counting_regime: must be '2023', '2024 low count' or '2024 high count', got 'tracks'"),
    ("experiment__name", "", "experiment.name: must not be empty, got ''"),
    ("watchlist", 5, "watchlist: must be a table, got 5"),
    ("programme__deployments__0__footfall_per_hour", "busy",
     "programme.deployments.0.footfall_per_hour: must be a number or an array [...], got 'busy'"),
    ("programme__deployments__0__footfall_per_hour", [10.0, -2.0],
     "programme.deployments.0.footfall_per_hour.1: must be >= 0, got -2"),
    ("programme__deployments__0__borough", "Camdn",
     "programme.deployments.0.borough: must be a London borough, got 'Camdn'; did you mean 'Camden'?"),
    ("watchlist__ethnicity_shares", {"white": 0.5, "black": 0.2},
     "watchlist.ethnicity_shares: shares must sum to 1, got 0.7 (white = 0.5, black = 0.2)"),
    ("watchlist__ethnicity_shares", "paris",
     "watchlist.ethnicity_shares: must be a table or 'london', got 'paris'"),
    ("matcher__scores__tail_shape", 1e-300,
     "matcher.scores.tail_shape: must be 0 or between 1e-06 and 1, got 1e-300"),
    ("watchlist__sise", 3, "watchlist.sise: unknown key; did you mean 'size'? "
                           "(allowed here: size, female_share, ethnicity_shares)"),
])
def test_each_problem_is_one_line_naming_the_field_what_is_allowed_and_what_was_given(setting, value,
                                                                                      expected):
    assert expected in problems(**{setting: value})


def test_a_setting_in_the_wrong_section_points_to_where_it_lives():
    found = problems(experiment__threshold=0.6)
    # a threshold lives in [matcher] (and, per deployment, in [[programme.deployments]])
    assert any(p.startswith("experiment.threshold: unknown key; did you mean") and "'matcher.threshold'" in p
               for p in found), found


def test_every_problem_is_reported_not_only_the_first():
    found = problems(watchlist__size=-1, crowd__female_share=2.0, nonsense=1)
    assert len(found) == 3
    assert [p.split(":")[0] for p in found] == ["crowd.female_share", "watchlist.size", "nonsense"]


def test_whole_number_floats_count_where_a_count_is_due():
    data = copy.deepcopy(BASE)
    data["watchlist"]["size"] = 16000.0
    data["comparison"] = {"faces": 3e6, "false_alerts": 12}
    experiment = from_dict(data)
    assert experiment.watchlist.size == 16000 and isinstance(experiment.watchlist.size, int)
    assert experiment.comparison.faces == 3_000_000


@pytest.mark.parametrize("sweep, expected", [
    ({"parameters": {"watchlist.size": [100, -5]}}, "sweep.parameters.watchlist.size: must be > 0"),
    ({"parameters": {"watchlist.sise": [100]}}, "did you mean 'watchlist.size'?"),
    ({"parameters": {"matcher.threshold": {"start": 0.0, "stop": 1.0, "step": 1e-300}}},
     "sweep.parameters.matcher.threshold.step: must give at most 100,000 values"),
    ({"parameters": {"watchlist.size": {"start": 1, "stop": 1000, "step": 1},
                     "crowd.female_share": {"start": 0, "stop": 1, "step": 1e-3}}},
     "sweep.parameters: must give at most 100,000 cells, got 1,001,000"),
    ({"mode": "zip", "parameters": {"watchlist.size": [1, 2], "matcher.threshold": [0.6]}},
     "sweep.mode: 'zip' needs lists of equal length"),
    ({"parameters": {"matcher.threshold": [0.6, "x"]}},
     "sweep.parameters.matcher.threshold: must be a number, got 'x'"),
    ({"parameters": {"matcher.threshold": []}},
     "sweep.parameters.matcher.threshold: must list at least one value"),
    ({"parameters": {"matcher.threshold": {"start": 0.5, "stop": 1.4, "step": 0.1}}},
     "sweep.parameters.matcher.threshold: must be between 0 and 1, got 1.1"),
])
def test_sweeps_are_checked_value_by_value_without_listing_every_cell(sweep, expected):
    found = problems(sweep=sweep)
    assert any(expected in p for p in found), found


def test_search_floor_is_the_lowest_threshold_in_use():
    data = copy.deepcopy(BASE)
    data["sweep"] = {"parameters": {"matcher.threshold": [0.64, 0.6, 0.62]}}
    assert from_dict(data).matcher.score_floor == 0.6


@settings(max_examples=25, deadline=None)
@given(experiments(sweep=sweeps()))
def test_resolved_toml_reads_back_to_an_equal_experiment(experiment):
    again = Experiment.from_toml(experiment.to_toml())
    assert again == experiment
    assert again.to_toml() == experiment.to_toml()


def test_the_shipped_headline_validates():
    root = Path(__file__).resolve().parents[1]
    experiment = load_experiment(root / "experiments" / "met_2025_headline.toml")
    assert experiment.watchlist.size == 16000


# -- per-deployment settings and grids -----------------------------------------------------------

@pytest.mark.parametrize("field, value, expected", [
    ("threshold", 1.5, "programme.deployments.0.threshold: must be"),
    ("watchlist_size", 0, "programme.deployments.0.watchlist_size: must be > 0"),
    ("counting_regime", "2025", "programme.deployments.0.counting_regime"),
    ("counting_regime", {"2024 low count": 0.5}, "probabilities must sum to 1, got 0.5"),
    ("counting_regime", {"2024 lo count": 1.0},
     "keys must be among '2023', '2024 low count', '2024 high count'"),
    ("period", "2025 at 0.64", "programme.deployments.0.period"),
    ("faces_per_passer", 0.0, "programme.deployments.0.faces_per_passer: must be > 0"),
    ("watchlisted_per_passer", 0.9, "programme.deployments.0.watchlisted_per_passer: must be"),
])
def test_a_deployments_own_settings_are_checked_by_name(field, value, expected):
    found = problems(**{f"programme__deployments__0__{field}": value})
    assert any(expected in p for p in found), found


def test_a_deployments_own_threshold_sets_the_search_floor_and_must_clear_a_given_one():
    data = copy.deepcopy(BASE)
    data["programme"]["deployments"][0]["threshold"] = 0.58
    assert from_dict(data).matcher.score_floor == 0.58
    found = problems(programme__deployments__0__threshold=0.58, matcher__score_floor=0.60)
    assert any(p.startswith("programme.deployments.0.threshold: must be >= matcher.score_floor (0.6)")
               for p in found), found


def test_a_sweep_over_threshold_or_list_size_overrides_every_deployments_own():
    data = copy.deepcopy(BASE)
    data["programme"]["deployments"][0].update(threshold=0.60, watchlist_size=9000)
    data["sweep"] = {"parameters": {"matcher.threshold": [0.62, 0.64], "watchlist.size": [4000]}}
    experiment = from_dict(data)
    cell = experiment.with_values({"matcher.threshold": 0.64, "watchlist.size": 4000})
    d = cell.programme.deployments[0]
    assert (d.threshold, d.watchlist_size) == (None, None)
    assert (cell.matcher.threshold, cell.watchlist.size) == (0.64, 4000)
    # without a sweep, a deployment keeps its own
    kept = from_dict({**copy.deepcopy(BASE), "programme": data["programme"]})
    assert kept.with_values({"review.officers": 4}).programme.deployments[0].threshold == 0.60


def test_a_programme_gives_one_source_of_deployments(tmp_path):
    data = copy.deepcopy(BASE)
    data["programme"]["grid"] = "g.csv"
    with pytest.raises(ConfigError) as caught:
        from_dict(data, tmp_path)
    assert caught.value.problems == ["programme.grid: give either grid, [[programme.deployments]] or "
                                     "[programme.generator], got more than one"]
    with pytest.raises(ConfigError) as caught:
        from_dict({**copy.deepcopy(BASE), "programme": {"grid": "absent.csv"}}, tmp_path)
    assert caught.value.problems == [f"programme.grid: {tmp_path / 'absent.csv'}: no such grid file"]


def test_the_met_records_experiment_is_a_grid_experiment():
    root = Path(__file__).resolve().parents[1]
    experiment = load_experiment(root / "experiments" / "met_records_2020_2024.toml")
    deps = experiment.programme.deployments
    assert experiment.programme.grid and len(experiment.programme.grid_sha256) == 64
    assert len(deps) == 203 and {d.threshold for d in deps} == {0.60, 0.62, 0.64}
    assert experiment.matcher.score_floor == 0.60
    assert all(d.recorded_faces is not None and d.counting_regime is not None for d in deps)


# -- declared groups ([[groups]]) -----------------------------------------------------------------

YOUNG = {"name": "young", "share": 0.4, "watchlist_share": 0.6}
OLD = {"name": "old", "share": 0.6, "watchlist_share": 0.4}


@pytest.mark.parametrize("groups, expected", [
    ([YOUNG, {**OLD, "name": "young"}],
     "groups.1.name: must be unique among the groups, got 'young' (also groups.0.name)"),
    ([{**YOUNG, "name": "18-29"}, OLD],
     "groups.0.name: must be an identifier: letters, digits and '_', not starting with a digit, got '18-29'"),
    ([{**YOUNG, "name": "2nd"}, OLD],
     "groups.0.name: must be an identifier: letters, digits and '_', not starting with a digit, got '2nd'"),
    ([{**YOUNG, "name": "all"}, OLD], "groups.0.name: must not be 'all' (summary.csv's row for everyone)"),
    ([YOUNG, {**OLD, "share": 0.5}],
     "groups.share: must sum to 1 over the groups, got 0.9 (young = 0.4, old = 0.5)"),
    ([YOUNG, {**OLD, "watchlist_share": 0.3}],
     "groups.watchlist_share: must sum to 1 over the groups, got 0.9 (young = 0.6, old = 0.3)"),
    ([{**YOUNG, "share": -0.4}, {**OLD, "share": 1.4}], "groups.0.share: must be between 0 and 1, got -0.4"),
    ([{**YOUNG, "probe_shift": 80.0}, OLD], "groups.0.probe_shift: must be between -50 and 50, got 80"),
    ([{**YOUNG, "probe_shift": "high"}, OLD], "groups.0.probe_shift: must be a number, got 'high'"),
    ([{**YOUNG, "sex": "f"}, OLD], "groups.0.sex: must be 'female' or 'male', got 'f'"),
    ([{**YOUNG, "impostor_shift": 0.1}, OLD], "groups.0.impostor_shift: unknown key"),
    ([{"name": "young", "share": 1.0}], "groups.0.watchlist_share: required, missing"),
    ([], "groups: must have at least 1 items, got []"),
    ("roma", "groups: must be an array [...], got 'roma'"),
])
def test_declared_groups_are_checked_by_name(groups, expected):
    found = problems(groups=groups)
    assert any(expected in p for p in found), found


def test_shares_sum_to_one_within_tolerance():
    thirds = [{"name": n, "share": 0.3333333, "watchlist_share": 0.3333333} for n in ("a", "b", "c")]
    declared = from_dict({**copy.deepcopy(BASE), "groups": thirds})
    assert [g.name for g in declared.passer_groups()] == ["a", "b", "c"]
    thirds[0]["share"] = 0.3333
    assert any(p.startswith("groups.share: must sum to 1") for p in problems(groups=thirds))


def test_an_unknown_ethnicity_points_to_declared_groups():
    found = problems(watchlist__ethnicity_shares={"roma": 1.0})
    assert found == ["watchlist.ethnicity_shares: keys must be among asian, black, mixed, white, other, "
                     "got 'roma' (other groups: declare them in [[groups]])"]


def test_declared_groups_refuse_settings_they_replace():
    data = copy.deepcopy(BASE)
    data["programme"]["deployments"][0]["ethnicity_shares"] = {"white": 1.0}
    data["groups"] = [YOUNG, OLD]
    with pytest.raises(ConfigError) as caught:
        from_dict(data)
    assert caught.value.problems[0].startswith("programme.deployments.0.ethnicity_shares: not used with "
                                               "declared [[groups]]")
    data = {**copy.deepcopy(BASE), "groups": [YOUNG, OLD],
            "sensitivity": {"parameters": {"matcher.threshold": {"low": 0.6, "high": 0.64}}}}
    with pytest.raises(ConfigError) as caught:
        from_dict(data)
    assert caught.value.problems[0].startswith("sensitivity: not available with declared [[groups]]")


def test_declared_groups_round_trip_and_no_groups_writes_none():
    plain = from_dict(copy.deepcopy(BASE))
    assert plain.groups is None and "groups" not in plain.to_toml()
    assert [g.name for g in plain.passer_groups()][:2] == ["female_asian", "female_black"]
    declared = from_dict({**copy.deepcopy(BASE), "groups": [{**YOUNG, "sex": "female"}, OLD]})
    again = Experiment.from_toml(declared.to_toml())
    assert again == declared and again.to_toml() == declared.to_toml()
    young, old = again.passer_groups()
    assert (young.name, young.sex, young.share, young.declared) == ("young", "female", 0.4, True)
    assert (old.name, old.sex, old.watchlist_share) == ("old", "", 0.4)


def test_the_age_bands_example_validates():
    root = Path(__file__).resolve().parents[1]
    experiment = load_experiment(root / "experiments" / "age_bands.toml")
    names = [g.name for g in experiment.passer_groups()]
    assert names == [f"{s}_{a}" for s in ("female", "male") for a in ("18_29", "30_59", "60_plus")]


def test_declared_groups_cannot_be_swept():
    data = {**copy.deepcopy(BASE), "groups": [YOUNG, OLD], "sweep": {"parameters": {"groups.0.share": [0.5]}}}
    with pytest.raises(ConfigError) as caught:
        from_dict(data)
    assert caught.value.problems == ["sweep.parameters.groups.0.share: declared [[groups]] cannot be swept; "
                                     "write one experiment for each set of groups"]


def test_a_shipped_score_parameter_file_is_named_wherever_the_experiment_lives(tmp_path):
    shipped = Path(__file__).resolve().parents[1] / "sim" / "data" / "score_parameters.toml"
    by_name = from_dict({**copy.deepcopy(BASE), "matcher": {"parameters": "lfrsim:score_parameters.toml"}},
                        tmp_path)
    by_path = from_dict({**copy.deepcopy(BASE), "matcher": {"parameters": str(shipped)}}, tmp_path)
    assert by_name.matcher.scores == by_path.matcher.scores
    with pytest.raises(ConfigError) as caught:
        from_dict({**copy.deepcopy(BASE), "matcher": {"parameters": "lfrsim:published_figures.toml"}},
                  tmp_path)
    [line] = caught.value.problems
    assert line.startswith("matcher.parameters: ") and "lfrsim:score_parameters.toml" in line
    assert "is not a score-parameter file shipped with lfrsim" in line
