"""Declared demographic groups: conservation, relabelling, the census groups kept, and their report.

An experiment that declares ``[[groups]]`` runs on its own groups: every table is indexed by their
names, in their order. What must hold whatever the groups: every passer and every alert is
counted in exactly one group; renaming the groups renames the rows and changes no count; a
declared copy of the census groups runs as the census groups do where the two models agree; and
an experiment that declares nothing runs exactly as before (the committed results).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.config import PasserGroup, ScoreParameters, from_dict, load_experiment
from sim.groups import DEFAULT_GROUPS, GROUP_NAMES, group_shares
from sim.pipeline import run_experiment
from sim.replicate import COUNT_METRICS, simulate_replicate, unit_rows
from sim.results import differences, read_results
from sim.scores import score_model
from sim.sweep import plan, run_unit
from sim.testing.strategies import declared_groups, experiments, group_names

ROOT = Path(__file__).resolve().parents[1]
FLOOR = 0.58
FEW = settings(max_examples=15, deadline=None)
thresholds = st.lists(st.floats(FLOOR, 0.75).map(lambda t: round(t, 5)), min_size=1, max_size=3, unique=True)
# a crowd in which some passers are on the list, each counted as one face
COUNTED = {"crowd.faces_per_passer": 1.0, "crowd.watchlisted_per_passer": 0.005}


@FEW
@given(experiments(score_floor=FLOOR, groups=declared_groups(), settings=COUNTED), thresholds)
def test_passers_and_alerts_summed_over_declared_groups_are_the_totals(experiment, ts):
    names = [g.name for g in experiment.groups]
    out = simulate_replicate(experiment, 0, ts)
    for t in ts:
        assert list(out[t]["groups"]) == names
        c = out[t]["counts"]
        np.testing.assert_array_equal(c["faces"], c["nonmated_passers"] + c["watchlisted_passers"])
        np.testing.assert_array_equal(c["alerts"], c["true_alerts"] + c["false_alerts"])
        ended = c["operator_rejected"] + c["lost_alerts"] + c["engagements"]
        np.testing.assert_array_equal(c["alerts"], ended)
        rows = pd.DataFrame(unit_rows(0, 0, out[t]))
        assert list(dict.fromkeys(rows["group"])) == ["all", *names]
        counted = rows[rows["metric"].isin(COUNT_METRICS)]
        counts = counted.pivot(index="group", columns="metric", values="value")
        for metric in COUNT_METRICS:
            assert counts.loc["all", metric] == float(c[metric].sum())
            np.testing.assert_array_equal(counts.loc[names, metric].to_numpy(), c[metric])
        # the Black/White figures are not defined for declared groups: no row, not a NaN
        assert not rows["metric"].str.startswith("black").any()


def _renamed(experiment, names: list[str]):
    data = experiment.to_dict()
    for group, name in zip(data["groups"], names, strict=True):
        group["name"] = name
    return from_dict(data)


@FEW
@given(st.data(), experiments(score_floor=FLOOR, groups=declared_groups(), settings=COUNTED), thresholds)
def test_renaming_the_groups_renames_the_rows_and_changes_no_count(data, experiment, ts):
    n = len(experiment.groups)
    names = data.draw(group_names(n, n))
    renamed = _renamed(experiment, names)
    plain, other = simulate_replicate(experiment, 0, ts), simulate_replicate(renamed, 0, ts)
    mapping = dict(zip([g.name for g in experiment.groups], names, strict=True))
    for t in ts:
        assert list(other[t]["groups"]) == names
        for metric, values in plain[t]["counts"].items():
            np.testing.assert_array_equal(other[t]["counts"][metric], values)
        assert other[t]["programme"].keys() == plain[t]["programme"].keys()
        for k, v in plain[t]["programme"].items():
            np.testing.assert_array_equal(other[t]["programme"][k], v)
        before = pd.DataFrame(unit_rows(0, 0, plain[t]))
        after = pd.DataFrame(unit_rows(0, 0, other[t]))
        before["group"] = before["group"].map(lambda g: mapping.get(g, g))
        pd.testing.assert_frame_equal(before, after)


@FEW
@given(declared_groups(min_groups=2), st.randoms(use_true_random=False))
def test_reordering_declared_groups_permutes_the_score_model(groups, random):
    params = ScoreParameters(impostor_location=-1.0, impostor_sd=0.25, same_ethnicity_shift=0.12,
                             genuine_location=1.0)
    order = list(range(len(groups)))
    random.shuffle(order)
    plain = score_model(params, tuple(g.group() for g in groups))
    moved = score_model(params, tuple(groups[i].group() for i in order))
    np.testing.assert_array_equal(moved.impostor_location, plain.impostor_location[np.ix_(order, order)])
    np.testing.assert_array_equal(moved.genuine_location, plain.genuine_location[order])


def test_declared_score_model_adds_the_same_group_uplift_and_sex_effects():
    params = ScoreParameters(impostor_location=-1.0, impostor_sd=0.25, same_ethnicity_shift=0.12,
                             same_sex_shift=0.1, probe_female_shift=0.03, genuine_location=1.0)
    groups = (PasserGroup(name="a", share=0.5, watchlist_share=0.5, sex="female", probe_shift=0.05,
                          genuine_shift=-0.2).group(),
              PasserGroup(name="b", share=0.3, watchlist_share=0.3, sex="female").group(),
              PasserGroup(name="c", share=0.2, watchlist_share=0.2, entry_shift=0.02).group())
    model = score_model(params, groups)
    mu = model.impostor_location
    np.testing.assert_allclose(mu[0], [-1.0 + 0.08 + 0.1 + 0.12, -1.0 + 0.08 + 0.1, -1.0 + 0.08 + 0.02])
    np.testing.assert_allclose(mu[1], [-1.0 + 0.03 + 0.1, -1.0 + 0.03 + 0.1 + 0.12, -1.0 + 0.03 + 0.02])
    np.testing.assert_allclose(mu[2], [-1.0, -1.0, -1.0 + 0.02 + 0.12])   # no sex: no same-sex shift
    np.testing.assert_allclose(model.genuine_location, [0.8, 1.0, 1.0])


# -- a declared copy of the census groups ------------------------------------------------------------

# ethnic shares whose products with a sex split are exact in binary: both models meet the same numbers
MIX = {"asian": 0.25, "black": 0.25, "mixed": 0.125, "white": 0.25, "other": 0.125}
SCORES = {"impostor_location": -0.9, "impostor_sd": 0.25, "same_sex_shift": 0.1, "probe_female_shift": 0.03,
          "probe_ethnicity_shift": {"black": 0.06, "asian": 0.03}, "genuine_location": 1.0}


def _census_and_copy(same_ethnicity_shift: float, watchlisted: float):
    census = {
        "experiment": {"name": "census", "seed": 7},
        "programme": {"deployments": [{"site": site, "duration_hours": 2.0, "footfall_per_hour": 4000.0,
                                       "ethnicity_shares": MIX} for site in "abc"]},
        "watchlist": {"size": 3000, "female_share": 0.25, "ethnicity_shares": MIX},
        "crowd": {"female_share": 0.5, "watchlisted_per_passer": watchlisted, "faces_per_passer": 1.0},
        "matcher": {"threshold": 0.6, "score_floor": 0.58,
                    "scores": {**SCORES, "same_ethnicity_shift": same_ethnicity_shift}},
        "review": {"p_arrest": 0.5},
    }
    passers = group_shares(0.5, MIX)
    listed = group_shares(0.25, MIX)
    copied = copy.deepcopy(census)
    for d in copied["programme"]["deployments"]:
        d.pop("ethnicity_shares")
    copied["groups"] = [{"name": g.name, "sex": g.sex, "share": float(passers[i]),
                         "watchlist_share": float(listed[i]),
                         "probe_shift": SCORES["probe_ethnicity_shift"].get(g.ethnicity, 0.0)}
                        for i, g in enumerate(DEFAULT_GROUPS)]
    return from_dict(census), from_dict(copied)


def test_a_declared_copy_of_the_census_groups_runs_as_they_do_where_the_models_agree():
    """With no same-ethnicity uplift (the one pair effect a declared group cannot copy: it joins
    female and male passers of one ethnicity) and nobody on the list (the census model sets the
    list against London's population, a declared one against its crowd), every count is the same."""
    census, copied = _census_and_copy(same_ethnicity_shift=0.0, watchlisted=0.0)
    ts = [0.58, 0.6, 0.64]
    a, b = simulate_replicate(census, 0, ts), simulate_replicate(copied, 0, ts)
    for t in ts:
        assert list(b[t]["groups"]) == list(GROUP_NAMES)
        assert a[t]["counts"]["false_alerts"].sum() > 0
        for metric, values in a[t]["counts"].items():
            np.testing.assert_array_equal(b[t]["counts"][metric], values, err_msg=metric)


def test_a_declared_copy_of_the_census_groups_never_expects_more_false_alerts():
    """With the uplift, a declared group gives it to same-sex pairs only: every impostor location is
    at most the census model's, so each group's exact expected false alerts can only fall."""
    census, copied = _census_and_copy(same_ethnicity_shift=0.12, watchlisted=0.002)
    ts = [0.6, 0.64]
    a, b = simulate_replicate(census, 0, ts), simulate_replicate(copied, 0, ts)
    for t in ts:
        np.testing.assert_array_equal(b[t]["counts"]["passers"], a[t]["counts"]["passers"])
        low, high = b[t]["counts"]["expected_false_alerts"], a[t]["counts"]["expected_false_alerts"]
        assert (low <= high * (1 + 1e-12)).all() and low.sum() < high.sum()


# -- no groups declared: as before ---------------------------------------------------------------

def test_an_experiment_without_groups_gives_the_committed_headline_rows():
    """Replicate 0 of the committed headline, re-run from its stored config: the same rows, value for
    value (``lfrsim reproduce`` checks every replicate of every committed folder)."""
    folder = ROOT / "results" / "met_2025_headline"
    experiment = load_experiment(folder / "config.toml")
    assert experiment.groups is None and experiment.passer_groups() == DEFAULT_GROUPS
    _, units = plan(experiment)
    fresh = pd.DataFrame(run_unit(units[0]))
    stored = pd.read_parquet(folder / "metrics.parquet")
    stored = stored[stored["replicate"] == 0].reset_index(drop=True)
    assert len(fresh) == len(stored) and differences(stored, fresh).empty


# -- the report -----------------------------------------------------------------------------------

def test_a_run_with_declared_groups_reports_them_by_name(tmp_path):
    experiment = load_experiment(ROOT / "experiments" / "age_bands.toml")
    data = experiment.to_dict()
    data["experiment"]["replications"] = 2
    data["programme"]["generator"]["weeks"] = 2
    run_experiment(from_dict(data), out=tmp_path / "age")
    results = read_results(tmp_path / "age")
    names = [g.name for g in experiment.groups]
    summary = pd.read_csv(tmp_path / "age" / "summary.csv")
    assert list(dict.fromkeys(summary["group"])) == ["all", *names]
    assert not summary["metric"].str.startswith("black").any()
    text = (tmp_path / "age" / "summary.md").read_text()
    assert "The Black/White ratio is not defined here" in text
    assert "Highest over lowest group expected FPIR" in text
    assert "nan" not in text.lower() and "female_18_29" in text
    drawn = {p.name for p in (tmp_path / "age" / "figures").iterdir()}
    assert {"false_alerts_by_group.png", "det_by_group.png", "disparity_vs_threshold.png"} <= drawn
    assert "exposure_per_head.png" not in drawn   # no census residents for declared groups
    assert results.experiment == from_dict(data)


BAD_GROUPS = '''
[experiment]
name = "bad"
[watchlist]
size = 1000
[[programme.deployments]]
site = "a"
duration_hours = 1.0
footfall_per_hour = 100.0
[[groups]]
name = "young"
share = 0.5
watchlist_share = 0.5
[[groups]]
name = "old"
share = 0.6
watchlist_share = 0.5
'''


def test_lfrsim_validate_refuses_bad_groups_with_exit_2_and_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_GROUPS)
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: groups.share: must sum to 1 over the groups, got 1.1 (young = 0.5, old = 0.6)"]
    bad.write_text(BAD_GROUPS.replace("share = 0.6", "share = 0.5"))
    assert main(["validate", str(bad)]) == 0
    assert "valid" in capsys.readouterr().out
