"""Watchlists: drawn as histograms with the exact size, binned stably, ids unique."""

from __future__ import annotations

import numpy as np
from scipy import stats

from sim.scores import EntryEffects
from sim.watchlist import WatchlistEntries, draw_watchlist

EFFECTS = EntryEffects(sd=0.05, lamb_share=0.02, lamb_shift=0.2)


def test_drawn_watchlist_has_exactly_the_requested_size():
    for size in (1, 100, 16_000, 10_000_000):
        wl = draw_watchlist(size, np.full(10, 0.1), EFFECTS, np.random.default_rng(size))
        assert wl.size == size


def test_entry_effect_histogram_matches_the_effect_distribution():
    wl = draw_watchlist(200_000, np.full(10, 0.1), EFFECTS, np.random.default_rng(2))
    per_bin = wl.counts.sum(axis=0)
    edges = np.concatenate([wl.effects - wl.bin_width / 2, [wl.effects[-1] + wl.bin_width / 2]])
    expected = np.diff(EFFECTS.cdf(edges))
    expected = expected / expected.sum() * wl.size
    keep = expected > 20
    chi2 = np.sum((per_bin[keep] - expected[keep]) ** 2 / expected[keep])
    # false-failure rate 0.1%
    assert chi2 < stats.chi2.isf(1e-3, keep.sum() - 1)


def test_lamb_share_shows_in_the_drawn_effects():
    wl = draw_watchlist(100_000, np.full(10, 0.1), EFFECTS, np.random.default_rng(4))
    above = wl.counts[:, wl.effects > 0.2 - 1e-9].sum()
    # half of the lambs (2% of 100,000) sit above their shift; non-lambs almost never (4 sd)
    assert 800 < above < 1200


def test_binning_explicit_entries_keeps_every_entry_and_its_group():
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 4, 500)
    wl = WatchlistEntries.from_entries(groups, rng.normal(0, 0.05, 500), n_groups=4)
    assert wl.size == 500
    np.testing.assert_array_equal(wl.group_sizes, np.bincount(groups, minlength=4))


def test_entry_ids_are_unique_within_a_watchlist():
    wl = draw_watchlist(3_000, np.full(10, 0.1), EFFECTS, np.random.default_rng(6))
    h, b = np.nonzero(wl.counts)
    ids = np.concatenate([wl.entry_ids(np.full(n, hh), np.full(n, bb), np.arange(n))
                          for hh, bb, n in zip(h, b, wl.counts[h, b], strict=True)])
    assert len(np.unique(ids)) == wl.size == ids.max() + 1
