"""Score distributions: scipy.stats verbs agree with each other and with their own draws."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from sim.config import MINORITY_PATTERN, PasserGroup, ScoreParameters
from sim.groups import default_groups
from sim.scores import GaussianNoise, ParetoTailNoise, impostor_locations, score_model, to_latent, to_vendor

NOISES = [GaussianNoise(0.25), ParetoTailNoise(0.25, 2.0, 0.2), ParetoTailNoise(0.3, 1.5, 0.0)]
ALPHA = 1e-3   # each KS test fails falsely with probability 0.1% (fixed seeds make it reproducible)


@pytest.mark.parametrize("noise", NOISES, ids=repr)
def test_sf_is_exp_logsf_and_complements_cdf(noise):
    x = np.linspace(-3, 6, 400)
    np.testing.assert_allclose(noise.sf(x), np.exp(noise.logsf(x)), rtol=1e-12)
    np.testing.assert_allclose(noise.cdf(x) + noise.sf(x), 1.0, atol=1e-12)


@pytest.mark.parametrize("noise", NOISES, ids=repr)
def test_isf_inverts_sf_down_to_1e_15(noise):
    q = np.logspace(-15, np.log10(0.9), 200)
    np.testing.assert_allclose(noise.sf(noise.isf(q)), q, rtol=1e-9)
    p = np.logspace(-15, np.log10(0.9), 50)
    np.testing.assert_allclose(noise.cdf(noise.ppf(p)), p, rtol=1e-8)


@pytest.mark.parametrize("noise", NOISES, ids=repr)
def test_density_integrates_to_the_cdf(noise):
    x = np.linspace(-4, 8, 20001)
    integral = np.concatenate([[0], np.cumsum(0.5 * (noise.pdf(x[1:]) + noise.pdf(x[:-1])) * np.diff(x))])
    np.testing.assert_allclose(integral + noise.cdf(x[0]), noise.cdf(x), atol=1e-6)


@pytest.mark.parametrize("noise", NOISES, ids=repr)
def test_draws_follow_the_cdf(noise):
    draws = noise.rvs(np.random.default_rng(1), 20_000)
    assert stats.kstest(draws, noise.cdf).pvalue > ALPHA


def test_heavier_tail_puts_more_mass_far_out():
    x = np.array([1.5, 2.0, 3.0])
    assert np.all(ParetoTailNoise(0.25, 2.0, 0.3).sf(x) > GaussianNoise(0.25).sf(x))


def test_link_maps_the_ends_of_the_vendor_scale_to_infinities():
    assert to_latent(0.0) == -np.inf and to_latent(1.0) == np.inf
    s = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(to_vendor(to_latent(s)), s)


def test_best_of_looks_genuine_scores_follow_the_closed_form():
    model = score_model(ScoreParameters(), default_groups())
    rng = np.random.default_rng(3)
    g = np.zeros(20_000, dtype=np.int64)
    looks = np.full(20_000, 3.0)
    draws = model.genuine_rvs(g, looks, rng)
    assert stats.kstest(draws, lambda t: model.genuine_cdf(0, t, 3.0)).pvalue > ALPHA


def test_same_group_pairs_score_higher_than_mixed_pairs():
    model = score_model(ScoreParameters(), default_groups())
    mu = model.impostor_location
    assert np.all(np.diag(mu)[:, None] >= mu - 1e-12)


@pytest.mark.parametrize("declared", [False, True])
def test_impostor_locations_of_stacked_parameters_are_each_slices_own(declared):
    """Parameters given as arrays (one value per draw) give each slice exactly its own matrix."""
    groups = default_groups()
    if declared:
        groups = tuple(PasserGroup(name=f"g{i}", share=0.25, watchlist_share=0.25, sex=sex,
                                   probe_shift=0.01 * i).group()
                       for i, sex in enumerate(["female", "male", None, "female"]))
    rng = np.random.default_rng(5)
    values = {"impostor_location": rng.normal(-3.0, 0.1, 4), "same_ethnicity_shift": rng.normal(0.1, 0.05, 4)}
    shift = rng.normal(0.1, 0.05, 4)
    values["probe_ethnicity_shift"] = {e: shift * m for e, m in MINORITY_PATTERN.items()}
    base = dict(ScoreParameters())
    stacked = impostor_locations(SimpleNamespace(**{**base, **values}), groups)
    assert stacked.shape == (4, len(groups), len(groups))
    for i in range(4):
        one = ScoreParameters(**{**base, "impostor_location": values["impostor_location"][i],
                                 "same_ethnicity_shift": values["same_ethnicity_shift"][i],
                                 "probe_ethnicity_shift": {e: float(v[i]) for e, v in
                                                           values["probe_ethnicity_shift"].items()}})
        assert np.array_equal(stacked[i], score_model(one, groups).impostor_location)
