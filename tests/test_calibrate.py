"""Calibration: the evidence it reads, what it never reads, and recovery of known parameters."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sim import calibrate
from sim import data as shipped
from sim.config import ScoreParameters


def test_records_split_into_the_four_threshold_periods():
    recs = calibrate.fitted_records()
    by_period = {p: [r for r in recs if r.period == p] for p in calibrate.PERIODS}
    assert sum(r.false_alerts for r in by_period["2023 at 0.60"]) == 2
    assert sum(r.false_alerts for r in by_period["Jan-Jun 2024 at 0.60"]) == 23
    assert sum(r.false_alerts for r in by_period["Jul 2024 at 0.62"]) == 4
    assert sum(r.false_alerts for r in by_period["Jul-Dec 2024 at 0.64"]) == 0
    assert all(r.threshold in (0.60, 0.62, 0.64) for r in recs)
    assert all(r.alerts == r.true_alerts + r.false_alerts > 0 for r in recs)


def test_likelihood_never_reads_the_face_counts():
    params = ScoreParameters()
    recs = calibrate.fitted_records()
    scaled = tuple(dataclasses.replace(r, faces=r.faces * 5.0) for r in recs)
    a = calibrate.log_posterior(params, calibrate.evidence(recs))[0]
    b = calibrate.log_posterior(params, calibrate.evidence(scaled))[0]
    assert a == b


def test_likelihood_never_reads_the_met_2025_headline(monkeypatch):
    params = ScoreParameters()
    before = calibrate.log_posterior(params, calibrate.evidence())[0]
    figures = dict(shipped.published_figures())
    figures["met_claims_2025"] = {**figures["met_claims_2025"], "false_alerts": 1200, "faces_scanned": 10}
    monkeypatch.setattr(shipped, "published_figures", lambda: figures)
    after = calibrate.log_posterior(params, calibrate.evidence())[0]
    assert before == after


def test_more_false_alerts_at_a_threshold_lower_the_likelihood_of_a_steep_tail():
    # the Met's 0.64 records (0 of 593 false) favour a steeper tail than 12 of 593 would
    ev = calibrate.evidence()
    steep = ScoreParameters(impostor_sd=0.22, impostor_location=0.405 - calibrate.ANCHOR_Z * 0.22)
    high = ev.met_threshold == 0.64
    more_false = dataclasses.replace(ev, met_false=np.where(high, np.minimum(ev.met_alerts, 1), ev.met_false))
    pred = calibrate.predict(steep, ev)
    assert calibrate.profile_prevalence(pred, ev)[1] > calibrate.profile_prevalence(pred, more_false)[1]


def test_shipped_parameters_reproduce_npl_within_their_intervals():
    with open(shipped.path("score_parameters.toml"), "rb") as fh:
        doc = tomllib.load(fh)
    targets = {t["name"]: t for t in doc["fit"]["targets"]}
    for name in ("npl_tpir_0.60", "npl_fp_0.60_n10000", "npl_fp_0.60_n1000", "npl_fp_0.62_of_0.60",
                 "npl_fp_0.64_of_0.62", "npl_minority_of_fp_0.60"):
        t = targets[name]
        assert t["interval_95"][0] <= t["observed"] <= t["interval_95"][1], name
    # and the stored predictions are what the stored parameters predict now
    params = ScoreParameters(**doc["parameters"])
    pred = calibrate.predict(params, calibrate.evidence())
    assert pred.npl_tpir * 4000 == pytest.approx(targets["npl_tpir_0.60"]["predicted"], rel=1e-6)


def _synthetic_evidence(truth: ScoreParameters, prevalence: float, rng: np.random.Generator):
    """NPL-like and Met-like counts drawn from the model itself, ten times NPL's sample sizes."""
    ev = calibrate.evidence()
    pred = calibrate.predict(truth, ev)
    crowd, mated = 1.3e6, 4.0e4
    f = pred.npl_fpir
    fp60 = rng.poisson(crowd * f[0.60])
    fp62 = rng.binomial(fp60, f[0.62] / f[0.60])
    fp64 = rng.binomial(fp62, f[0.64] / f[0.62])
    npl = {"crowd": crowd, "mated": mated, "tpir": rng.binomial(int(mated), pred.npl_tpir) / mated,
           "fpir_10000": fp60 / crowd, "fpir_1000": rng.poisson(crowd * pred.npl_fpir_1000) / crowd,
           "fp_0.60": float(fp60), "fp_0.62": float(fp62), "fp_0.64": float(fp64),
           "fp_0.60_minority": float(rng.binomial(fp60, pred.minority_share))}
    alerts = ev.met_alerts * 10
    false = rng.binomial(alerts, calibrate.met_false_share(pred, prevalence))
    return dataclasses.replace(ev, npl=npl, met_alerts=alerts, met_false=false)


@pytest.mark.slow
@settings(max_examples=2, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(anchor=st.floats(0.36, 0.46), sd=st.floats(0.22, 0.32), genuine=st.floats(0.85, 1.15),
       delta=st.floats(0.05, 0.15), same=st.floats(0.12, 0.2))
def test_fit_recovers_parameters_of_data_simulated_by_the_model(anchor, sd, genuine, delta, same):
    truth = calibrate.with_free(ScoreParameters(), np.array([anchor, np.log(sd), genuine, delta, same]))
    ev = _synthetic_evidence(truth, 0.008, np.random.default_rng(5))
    x = calibrate.maximise(ScoreParameters(), ev, xatol=1e-3, fatol=1e-3).x
    sd_post = np.sqrt(np.diag(calibrate.laplace_covariance(ScoreParameters(), ev, x)))
    z = (x - calibrate.free_vector(truth)) / sd_post
    # |z| < 4 for each of 5 parameters: false-failure rate about 3e-4 under the Laplace approximation
    assert np.all(np.abs(z) < 4.0), (x, calibrate.free_vector(truth), z)


@pytest.mark.slow
def test_lfrsim_calibrate_recreates_the_shipped_parameters():
    with open(shipped.path("score_parameters.toml"), "rb") as fh:
        shipped_params = ScoreParameters(**tomllib.load(fh)["parameters"])
    x = calibrate.maximise(ScoreParameters(), calibrate.evidence()).x
    np.testing.assert_allclose(x, calibrate.free_vector(shipped_params), atol=2e-3)
