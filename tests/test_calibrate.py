"""The calibration pipeline and the shipped posterior it writes (``sim/data/posterior.*``)."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from sim import calibrate
from sim import data as shipped
from sim import likelihood as lk
from sim import records as rec
from sim.cli import main

# what forward runs read from posterior.npz (the interface with sim.draws)
INTERFACE = ("impostor_location", "impostor_sd", "genuine_location", "same_ethnicity_shift",
             "minority_probe_shift", "watchlisted_per_passer", "footfall_elasticity", "period_sd", "phi_true",
             "phi_false", "faces_per_passer[2023]", "faces_per_passer[2024 low count]",
             "faces_per_passer[2024 high count]", "p_arrest")


def _check_files(toml_path, npz_path, accounts=None):
    doc = tomllib.loads(toml_path.read_text())
    assert {"about", "priors", "evidence", "parameters", "summary", "diagnostics", "headline",
            "period_checks", "false_given_alerts", "leave_one_period_out", "slope",
            "runtime_seconds"} <= set(doc)
    if accounts is not None:
        assert set(doc["evidence"]) == set(accounts)
    assert math.isclose(sum(v["weight"] for v in doc["evidence"].values()), 1.0, rel_tol=1e-9)
    assert 0.0 <= doc["headline"]["shipped"]["p_at_most_reported"] <= 1.0
    assert doc["about"]["shipped"]["choice"] in doc["evidence"]
    with np.load(npz_path) as z:
        draws = {k: z[k] for k in z.files}
    assert set(INTERFACE) <= set(draws)
    n = len(draws["anchor"])
    assert all(len(v) == n for v in draws.values())
    assert all(v.dtype == np.float32 for v in draws.values())
    assert np.all((draws["p_arrest"] > 0) & (draws["p_arrest"] < 1))
    for name in INTERFACE:
        assert math.isclose(doc["summary"][name]["median"], float(np.median(draws[name].astype(float))),
                            rel_tol=1e-5, abs_tol=1e-7)
    return doc, draws


def test_the_shipped_posterior_has_the_interface_forward_runs_read():
    doc, draws = _check_files(shipped.path("posterior.toml"), shipped.path("posterior.npz"))
    assert doc["about"]["draws_file"] == "posterior.npz"
    params = doc["parameters"]
    assert params["same_sex_shift"] == lk.SAME_SEX_SHIFT and params["genuine_sd"] == lk.GENUINE_SD
    assert set(params["faces_per_passer"]) == set(rec.REGIMES)


def test_shipped_p_arrest_draws_follow_the_records_conjugate_beta():
    with np.load(shipped.path("posterior.npz")) as z:
        p = z["p_arrest"].astype(float)
    a, b = lk.arrest_posterior(lk.Data.from_records(rec.fit_rows()))
    mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    # the mean of n draws is within 4 standard errors of the Beta's (false failure 6e-5)
    assert abs(p.mean() - mean) < 4 * sd / math.sqrt(len(p))
    assert 0.8 < p.std() / sd < 1.2


def test_arrest_draws_are_keyed_by_the_seed():
    d = lk.Data.from_records(rec.fit_rows())
    np.testing.assert_array_equal(calibrate.arrest_draws(d, 5, 10), calibrate.arrest_draws(d, 5, 10))
    assert not np.array_equal(calibrate.arrest_draws(d, 5, 10), calibrate.arrest_draws(d, 6, 10))


def test_the_met_2025_figure_is_compared_never_fitted():
    doc = tomllib.loads(shipped.path("posterior.toml").read_text())
    assert doc["about"]["never_an_input"].startswith("Met 2025")
    assert doc["headline"]["shipped"]["reported"] == 12


@pytest.mark.slow
def test_lfrsim_calibrate_reduced_writes_both_files(tmp_path, capsys):
    assert main(["calibrate", "--reduced", "--out", str(tmp_path), "--workers", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    toml_path, npz_path = tmp_path / "posterior.toml", tmp_path / "posterior.npz"
    doc, _ = _check_files(toml_path, npz_path, accounts=lk.ACCOUNTS)
    assert doc["about"]["command"] == f"lfrsim calibrate --out {tmp_path} --reduced"
    assert len(doc["leave_one_period_out"]) == len(rec.PERIODS)
    assert toml_path.stat().st_size < 1_000_000 and npz_path.stat().st_size < 1_000_000
    assert not list(tmp_path.glob("*.tmp*"))


def test_lfrsim_calibrate_refuses_a_bad_worker_count(capsys):
    assert main(["calibrate", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_the_median_parameters_carry_a_pareto_accounts_tail():
    assert calibrate._median_tail({"anchor": np.zeros(3)}) == {"tail": "gaussian"}
    samples = {"tail_shape": np.array([0.01, 0.03, 0.2]), "tail_knot_sd": np.full(3, 3.0)}
    tail = calibrate._median_tail(samples)
    assert tail == {"tail": "pareto", "tail_knot_sd": 3.0, "tail_shape": 0.03}
