"""Invariants of the whole model, checked on experiments drawn by ``sim.testing.strategies``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.config import from_dict
from sim.crowd import realise_programme, watchlist_group_shares
from sim.groups import ETHNICITIES, default_groups
from sim.replicate import COUNT_METRICS, simulate_replicate, unit_rows
from sim.scores import score_model, to_latent
from sim.search import build_search_table
from sim.seeds import stream
from sim.testing.strategies import ethnicity_shares, experiments, score_models
from sim.watchlist import WatchlistEntries

FLOOR = 0.58
TABULATED = 1e-25
FEW = settings(max_examples=15, deadline=None)
thresholds = st.lists(st.floats(FLOOR, 0.80).map(lambda t: round(t, 5)), min_size=2, max_size=5, unique=True)


@FEW
@given(experiments(score_floor=FLOOR), thresholds)
def test_raising_threshold_never_adds_alerts(experiment, ts):
    ts = sorted(ts)
    out = simulate_replicate(experiment, 0, ts)
    for low, high in zip(ts, ts[1:], strict=False):
        a, b = out[low]["counts"], out[high]["counts"]
        for metric in ("alerts", "true_alerts", "false_alerts", "nonmated_false_alerts"):
            assert (b[metric] <= a[metric]).all(), (metric, low, high)
        # the exact expectation is monotone too
        assert (b["expected_false_alerts"] <= a["expected_false_alerts"] * (1 + 1e-9) + 1e-300).all()


@FEW
@given(score_models(), st.integers(1, 3000), st.integers(1, 5000), st.integers(0, 2**32 - 1),
       st.floats(FLOOR, 0.8))
def test_larger_watchlist_never_lowers_best_impostor_scores(params, n_short, n_more, seed, threshold):
    """Entries added, not replaced: with the same uniforms, every probe's best impostor score against
    the longer list is at least its score against the shorter one, so no probe's false alert at any
    threshold goes away; and the exact chance of a false alert never falls, for any probe group, at
    any threshold where it is above 1e-25 (the search table's range)."""
    groups = default_groups()
    model = score_model(params, groups)
    rng = np.random.default_rng(seed)
    n = n_short + n_more
    entry_groups = rng.integers(0, len(groups), n)
    entry_effects = model.entry_effects.rvs(rng, n)
    short = WatchlistEntries.from_entries(entry_groups[:n_short], entry_effects[:n_short], len(groups))
    longer = WatchlistEntries.from_entries(entry_groups, entry_effects, len(groups))
    floor = float(to_latent(FLOOR))
    table_short = build_search_table(model, short, floor)
    table_long = build_search_table(model, longer, floor)
    probes = rng.integers(0, len(groups), 4000)
    looks = np.ones(len(probes))
    best_short = table_short.draw_best_impostor(probes, looks, np.random.default_rng(seed + 1))
    best_long = table_long.draw_best_impostor(probes, looks, np.random.default_rng(seed + 1))
    assert (best_long >= best_short - 1e-9).all()
    t = float(to_latent(threshold))
    assert ((best_long >= t) | (best_short < t)).all()
    grid = to_latent(np.linspace(FLOOR, 0.95, 30))
    for g in range(len(groups)):
        short_sf = table_short.impostor_sf(g, grid)
        # within the tables' range; far beyond it (1e-30 and below) both are log-linear extrapolations
        tabulated = short_sf >= TABULATED
        assert (table_long.impostor_sf(g, grid)[tabulated] >= short_sf[tabulated] * (1 - 1e-9)).all()


@FEW
@given(experiments(score_floor=FLOOR, settings={"crowd.faces_per_passer": 1.0}), thresholds)
def test_every_passer_counted_once_and_every_alert_ends_once(experiment, ts):
    out = simulate_replicate(experiment, 0, ts)
    for t in ts:
        c = out[t]["counts"]
        # a captured passer is on the watchlist or not; a passer not captured is no face
        np.testing.assert_array_equal(c["faces"], c["nonmated_passers"] + c["watchlisted_passers"])
        assert (c["passers"] >= c["faces"]).all()
        assert (c["alerts"] <= c["faces"]).all()
        assert (c["true_alerts"] <= c["watchlisted_passers"]).all()
        np.testing.assert_array_equal(c["alerts"], c["true_alerts"] + c["false_alerts"])
        ended = c["operator_rejected"] + c["lost_alerts"] + c["engagements"]
        np.testing.assert_array_equal(c["alerts"], ended)
        engaged = c["arrests"] + c["other_disposals"] + c["no_action"] + c["wrongful_stops"]
        np.testing.assert_array_equal(c["engagements"], engaged + c["wrongful_arrests"])
        # the programme total is the sum over groups, each group once
        rows = unit_rows(0, 0, out[t])
        total = {r["metric"]: r["value"] for r in rows if r["group"] == "all"}
        for metric in COUNT_METRICS:
            assert total[metric] == float(c[metric].sum())


@FEW
@given(experiments(score_floor=FLOOR, settings={"crowd.faces_per_passer": "frames"}))
def test_frames_counted_are_at_least_passers_captured(experiment):
    c = simulate_replicate(experiment, 0, [FLOOR])[FLOOR]["counts"]
    assert (c["faces"] >= c["nonmated_passers"] + c["watchlisted_passers"]).all()


HALF_SEEN = [{"site": "Half-seen", "duration_hours": 1.0, "footfall_per_hour": 2000.0, "capture_rate": 0.5}]


@FEW
@given(experiments(settings={"programme.deployments": HALF_SEEN, "crowd.faces_per_passer": 1.0}))
def test_passers_outnumber_faces_when_capture_misses_some(experiment):
    t = experiment.matcher.threshold
    c = simulate_replicate(experiment, 0, [t])[t]["counts"]
    assert c["passers"].sum() > c["faces"].sum()   # P(not) = P(Bin(~2000, 0.5) = N) ~ 2^-2000


def _as_bytes(out) -> bytes:
    parts = []
    for t in sorted(out):
        for name in sorted(out[t]["counts"]):
            parts.append(np.ascontiguousarray(out[t]["counts"][name]).tobytes())
        parts.append(repr(sorted(out[t]["programme"].items())).encode())
    return b"".join(parts)


@FEW
@given(experiments(score_floor=FLOOR), thresholds)
def test_same_seed_gives_same_bytes(experiment, ts):
    first = _as_bytes(simulate_replicate(experiment, 0, ts))
    again = _as_bytes(simulate_replicate(experiment, 0, ts))
    assert first == again
    other = simulate_replicate(experiment, 0, ts, seed=experiment.experiment.seed ^ 0x5EED)
    sites = realise_programme(experiment.programme, experiment.crowd, stream(0, 0, 0, 0))
    if sum(d.expected_passers for d in sites) > 50:
        assert _as_bytes(other) != first


def _swap(values: dict[str, float], a: str, b: str) -> dict[str, float]:
    out = dict(values)
    out[a], out[b] = values[b], values[a]
    return out


@FEW
@given(score_models(), st.sampled_from([(a, b) for a in ETHNICITIES for b in ETHNICITIES if a < b]),
       ethnicity_shares(), ethnicity_shares(), st.integers(1, 5000), st.integers(0, 2**32 - 1))
def test_relabelling_groups_permutes_exact_outputs(params, pair, crowd_shares, list_shares, size, seed):
    """Swap two ethnicities' names everywhere (the crowd's and the watchlist's census shares, the
    probe, entry and genuine score shifts): each group's exact expected false alerts move to the
    other name and the total is unchanged. Monte Carlo draws in group order, so only its
    distribution permutes; the exact expectations must permute to round-off."""
    a, b = pair
    groups = default_groups()
    names = [g.name for g in groups]
    perm = [names.index(f"{g.sex}_{b if g.ethnicity == a else a if g.ethnicity == b else g.ethnicity}")
            for g in groups]
    swapped = params.model_copy(update={
        f: _swap(getattr(params, f), a, b)
        for f in ("probe_ethnicity_shift", "entry_ethnicity_shift", "genuine_ethnicity_shift")})
    deployment = {"site": "x", "duration_hours": 1.0, "footfall_per_hour": 1000.0}
    results = []
    for p, shares, wl_shares in ((params, crowd_shares, list_shares),
                                 (swapped, _swap(crowd_shares, a, b), _swap(list_shares, a, b))):
        model = score_model(p, groups)
        entries = watchlist_group_shares(0.3, wl_shares, groups)
        counts = np.random.default_rng(seed).multinomial(size, [entries[i] for i in range(len(groups))])
        results.append((model, counts, shares, wl_shares))
    # the same entries, relabelled: entry k of group g in one list is entry k of perm[g] in the other
    rng = np.random.default_rng(seed + 1)
    effects = [results[0][0].entry_effects.rvs(rng, int(n)) for n in results[0][1]]
    floor = float(to_latent(FLOOR))
    expected = []
    for relabel in (False, True):
        model, _, shares, _ = results[int(relabel)]
        entry_groups = np.concatenate([np.full(len(e), perm[g] if relabel else g)
                                       for g, e in enumerate(effects)])
        wl = WatchlistEntries.from_entries(entry_groups, np.concatenate(effects), len(groups))
        table = build_search_table(model, wl, floor)
        experiment = from_dict({"experiment": {"name": "x"}, "watchlist": {"size": size},
                                "programme": {"deployments": [{**deployment, "ethnicity_shares": shares}]}})
        site = realise_programme(experiment.programme, experiment.crowd, stream(0, 0, 0, 0))[0]
        crowd = site.group_shares(groups, 0.4) * site.expected_passers
        t = to_latent(np.array([0.6, 0.64, 0.7]))
        expected.append(np.array([crowd[g] * table.impostor_sf(g, t) for g in range(len(groups))]))
    plain, relabelled = expected
    np.testing.assert_allclose(relabelled[perm], plain, rtol=1e-7, atol=1e-300)
    np.testing.assert_allclose(relabelled.sum(axis=0), plain.sum(axis=0), rtol=1e-7)


def test_monte_carlo_false_alerts_agree_with_exact_expectation():
    """Given each replicate's crowd, false alerts are a sum of independent Bernoullis whose mean is
    ``expected_false_alerts``; the Poisson with that mean has at least their variance, so a
    two-sided Poisson test at 0.001 fails a correct model at most once in a thousand seeds (seed fixed).
    """
    experiment = from_dict({
        "experiment": {"name": "mc", "seed": 20251122, "replications": 1},
        "programme": {"deployments": [{"site": "a", "duration_hours": 2.0, "footfall_per_hour": 5000.0,
                                       "ethnicity_shares": {"asian": 0.3, "black": 0.3, "white": 0.4}},
                                      {"site": "b", "duration_hours": 2.0, "footfall_per_hour": 5000.0,
                                       "borough": "Newham"}]},
        "crowd": {"watchlisted_per_passer": 0.002},
        "watchlist": {"size": 16000},
        "matcher": {"threshold": 0.58, "score_floor": 0.58},
    })
    ts = [0.58, 0.6]
    observed = {t: 0.0 for t in ts}
    expected = {t: 0.0 for t in ts}
    for replicate in range(12):
        out = simulate_replicate(experiment, replicate, ts)
        for t in ts:
            observed[t] += out[t]["counts"]["false_alerts"].sum()
            expected[t] += out[t]["counts"]["expected_false_alerts"].sum()
    assert expected[0.58] > 100     # enough to detect a bias of a fifth
    for t in ts:
        k, mu = observed[t], expected[t]
        p = 2 * min(stats.poisson.cdf(k, mu), stats.poisson.sf(k - 1, mu))
        assert p > 1e-3, (t, k, mu)
