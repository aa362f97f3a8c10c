"""The fast search against brute force, the closed forms against Monte Carlo, and extremes.

Statistical tests use fixed seeds and state their false-failure rate (ALPHA per test).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.config import ScoreParameters, from_dict
from sim.crowd import watchlist_group_shares
from sim.groups import default_groups
from sim.replicate import simulate_replicate
from sim.scores import score_model, to_latent
from sim.search import brute_force_best_impostor, build_search_table, fpir, log_fpir, sel, tpir
from sim.watchlist import WatchlistEntries, expected_watchlist

ALPHA = 1e-3
GROUPS = default_groups()
# strong probe and entry effects and lambs, so that a search that ignored them would fail
PARAMS = ScoreParameters(impostor_location=-1.0, impostor_sd=0.25, probe_effect_sd=0.15, entry_effect_sd=0.1,
                         lamb_share=0.05, lamb_shift=0.4, genuine_location=0.8, genuine_sd=0.6)


@pytest.fixture(scope="module")
def small_search():
    """A 1,500-entry watchlist of explicit entries, its table, and brute-force best scores."""
    rng = np.random.default_rng(11)
    model = score_model(PARAMS, GROUPS)
    n = 1_500
    entry_groups = rng.choice(len(GROUPS), size=n, p=watchlist_group_shares(0.15, "london", GROUPS))
    entry_effects = model.entry_effects.rvs(rng, n)
    wl = WatchlistEntries.from_entries(entry_groups, entry_effects, len(GROUPS))
    # brute force uses the binned effects, so both sides search the same list
    binned = np.rint(entry_effects / wl.bin_width) * wl.bin_width
    table = build_search_table(model, wl, float(to_latent(0.3)))
    g = 8   # male_white probes
    probes = 1_500
    p = rng.normal(0.0, PARAMS.probe_effect_sd, probes)
    best = brute_force_best_impostor(model, entry_groups, binned, np.full(probes, g), p, rng)
    return model, wl, table, g, best, entry_groups, binned, p


def test_fast_best_impostor_matches_brute_force(small_search):
    model, wl, table, g, best, *_ = small_search
    fast = table.draw_best_impostor(np.full(4_000, g), np.ones(4_000), np.random.default_rng(12))
    assert stats.ks_2samp(fast, best).pvalue > ALPHA


def test_exact_sf_matches_brute_force_exceedances(small_search):
    model, wl, table, g, best, *_ = small_search
    for t in (0.35, 0.45, 0.55):
        k = int(np.sum(best >= to_latent(t)))
        p = float(fpir(table, g, t))
        assert stats.binomtest(k, len(best), p).pvalue > ALPHA, (t, k, p * len(best))


def test_exceedance_sampling_matches_brute_force_above_the_floor(small_search):
    model, wl, table, g, best, *_ = small_search
    rng = np.random.default_rng(13)
    floor = table.floor
    above = best[best >= floor]
    assert stats.binomtest(len(above), len(best), float(table.floor_exceedance(1.0)[g])).pvalue > ALPHA
    _, fast = table.draw_exceeders(g, 1.0, 4_000, rng)
    assert stats.ks_2samp(fast, above).pvalue > ALPHA


def test_selectivity_matches_brute_force_candidate_counts(small_search):
    model, wl, table, g, best, entry_groups, binned, p = small_search
    rng = np.random.default_rng(14)
    t = float(to_latent(0.40))
    counts = []
    for pi in p[:300]:
        scores = model.impostor_location[g, entry_groups] + pi + binned + model.noise.rvs(rng, len(binned))
        counts.append(np.sum(scores >= t))
    counts = np.asarray(counts)
    expected = float(sel(table, g, 0.40))
    # mean of 300 counts against its expectation: z-test at the stated rate
    z = (counts.mean() - expected) / (counts.std(ddof=1) / np.sqrt(len(counts)))
    assert abs(z) < stats.norm.isf(ALPHA / 2), (counts.mean(), expected)


def test_tpir_matches_monte_carlo_of_genuine_against_best_impostor(small_search):
    model, wl, table, g, *_ = small_search
    rng = np.random.default_rng(15)
    n = 20_000
    genuine = model.genuine_rvs(np.full(n, g), np.ones(n), rng)
    impostor = table.draw_best_impostor(np.full(n, g), np.ones(n), rng)
    for t in (0.5, 0.6, 0.7):
        hits = int(np.sum((genuine >= to_latent(t)) & (genuine >= impostor)))
        assert stats.binomtest(hits, n, float(tpir(table, g, t))).pvalue > ALPHA


@pytest.fixture(scope="module")
def big_table():
    model = score_model(ScoreParameters(), GROUPS)
    wl = expected_watchlist(10_000, watchlist_group_shares(0.15, "london", GROUPS), model.entry_effects)
    return build_search_table(model, wl, float(to_latent(0.5)))


@settings(max_examples=30, deadline=None)
@given(g=st.integers(0, 9), log_n=st.floats(2.0, 7.0), t=st.floats(0.3, 0.95))
def test_fpir_rises_with_watchlist_size_and_falls_with_threshold(big_table, g, log_n, t):
    n = 10 ** log_n
    assert fpir(big_table, g, t, 2 * n) >= fpir(big_table, g, t, n)
    assert fpir(big_table, g, t + 0.02, n) <= fpir(big_table, g, t, n)
    assert sel(big_table, g, t + 0.02, n) <= sel(big_table, g, t, n)
    assert tpir(big_table, g, t + 0.02, n) <= tpir(big_table, g, t, n) + 1e-12   # quadrature round-off


def test_rescaled_table_agrees_with_a_table_built_at_that_size(big_table):
    model = big_table.model
    for n in (100, 1_000_000):
        wl = expected_watchlist(n, watchlist_group_shares(0.15, "london", GROUPS), model.entry_effects)
        direct = build_search_table(model, wl, float(to_latent(0.5)))
        for t in (0.55, 0.6, 0.64, 0.8):
            np.testing.assert_allclose(log_fpir(big_table, 3, t, n), log_fpir(direct, 3, t),
                                       rtol=2e-3, atol=1e-9)


def test_closed_forms_are_finite_and_proper_at_the_extremes(big_table):
    for n in (100, 10_000_000):
        assert fpir(big_table, 0, 0.0, n) == pytest.approx(1.0)
        assert fpir(big_table, 0, 1.0, n) == 0.0
        assert sel(big_table, 0, 0.0, n) == pytest.approx(n)
        assert sel(big_table, 0, 1.0, n) == 0.0
        assert tpir(big_table, 0, 1.0, n) == 0.0
        assert 0.0 < tpir(big_table, 0, 0.0, n) <= 1.0
        t = np.linspace(0.5, 0.999, 200)
        lf = log_fpir(big_table, 0, t, n)
        assert np.all(np.isfinite(lf)) and np.all(np.diff(lf) <= 1e-12)
    # rates of 1e-15 and far below keep their precision in log space
    deep = log_fpir(big_table, 0, np.array([0.8, 0.85, 0.9, 0.95]), 100)
    assert np.all(np.isfinite(deep)) and deep[1] < np.log(1e-15) and np.all(np.diff(deep) < 0)


def test_fpir_is_nearly_proportional_to_size_when_small(big_table):
    a = fpir(big_table, 3, 0.70, 1_000)
    b = fpir(big_table, 3, 0.70, 10_000)
    assert b / a == pytest.approx(10.0, rel=1e-3)


# -- a deployment's own list size ----------------------------------------------------------------

def _programme(size: int, own_size: int | None) -> dict:
    deployment = {"site": "Croydon", "ward_code": "E05011467", "duration_hours": 6.0,
                  "footfall_per_hour": 20000.0}
    if own_size is not None:
        deployment["watchlist_size"] = own_size
    return {"experiment": {"name": "sizes", "seed": 5, "replications": 1},
            "programme": {"deployments": [deployment]}, "watchlist": {"size": size},
            "matcher": {"threshold": 0.60}}


def test_a_deployments_own_list_size_scales_its_hazard_like_a_list_of_that_size():
    """A deployment at 4,000 entries searched against the programme's 16,000-entry table (its
    hazard scaled by a quarter) expects the false alerts of a programme whose list is 4,000
    entries: the crowds are the same draws, the two tables differ only by the sampling of their
    entries' effects (well within 5%), and a quarter of the list is far from the full list."""
    def expected(size, own):
        e = from_dict(_programme(size, own))
        return sum(float(simulate_replicate(e, r, [0.60])[0.60]["counts"]["expected_false_alerts"].sum())
                   for r in range(3))

    scaled, small, full = expected(16000, 4000), expected(4000, None), expected(16000, None)
    assert abs(scaled / small - 1) < 0.05, (scaled, small)
    assert full > 3 * scaled
