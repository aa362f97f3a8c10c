"""The two ways of doing lfrsim's job that it is measured against.

* **Brute force**: compare each passer with every watchlist entry, one score per (face, entry),
  and keep the best. Vectorised with numpy (a block of faces x N entries of normal draws at a
  time), which is the fastest honest form of it: the cost is N draws per face.
* **Hazard inversion for every face**: lfrsim's own tabulated hazard, but no search floor: every
  captured passer's best impostor score is drawn by inverting the hazard (vectorised numpy, a
  deployment at a time), watchlisted passers' genuine scores beside it. The middle way: no N-fold
  work, but work for every face rather than for the few who may alert.
* **One simpy process per passer**: the textbook discrete-event model. A source process lets
  passers arrive one by one; each passer is a process that draws its group, whether it is on the
  watchlist, its best impostor score by order statistics (the same tabulated hazard lfrsim uses,
  inverted with a bisection, so no N-fold work), its genuine score if mated, checks the threshold,
  and, if it raised an alert, goes through the operators and intervention officers. Random numbers
  are drawn up front in numpy arrays, which flatters this model: what is left is the event loop.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import simpy

from sim.config import Experiment
from sim.crowd import Site
from sim.groups import default_groups
from sim.scores import ScoreModel, effective_looks, to_latent
from sim.search import SearchTable
from sim.watchlist import WatchlistEntries


def explicit_entries(watchlist: WatchlistEntries) -> tuple[np.ndarray, np.ndarray]:
    """Entry groups and effects, one per entry, from the binned watchlist."""
    groups, bins = np.nonzero(watchlist.counts)
    n = watchlist.counts[groups, bins]
    return np.repeat(groups, n), np.repeat(watchlist.effects[bins], n)


def brute_force_best(model: ScoreModel, watchlist: WatchlistEntries, probe_groups: np.ndarray,
                     probe_effects: np.ndarray, rng: np.random.Generator,
                     block_draws: int = 4_000_000) -> np.ndarray:
    """Best impostor score of each probe by scoring it against all N entries (one look each)."""
    entry_groups, entry_effects = explicit_entries(watchlist)
    n_entries = len(entry_groups)
    # mean score of a probe of group g against each entry, before the probe effect: (G, N)
    means = model.impostor_location[:, entry_groups] + entry_effects[None, :]
    best = np.empty(len(probe_groups))
    block = max(1, block_draws // max(n_entries, 1))
    for g in np.unique(probe_groups):
        idx = np.flatnonzero(probe_groups == g)
        for start in range(0, len(idx), block):
            sel = idx[start:start + block]
            scores = model.noise.rvs(rng, (len(sel), n_entries))
            scores += means[g]
            best[sel] = scores.max(axis=1) + probe_effects[sel]
    return best


def hazard_inversion_search(experiment: Experiment, table: SearchTable, model: ScoreModel, sites: list[Site],
                            pi: np.ndarray, threshold: float, rng: np.random.Generator) -> tuple[int, int]:
    """(faces, alerts at ``threshold``): every captured passer's best score by inverting the hazard."""
    groups = default_groups()
    t = float(to_latent(threshold))
    prior = np.cumsum(table.weights)
    prior /= prior[-1]
    extra = experiment.crowd.frames_per_passer - 1.0
    faces = alerts = 0
    for site in sites:
        cum = np.cumsum(site.group_shares(groups, experiment.crowd.female_share))
        n = int(rng.poisson(site.expected_passers))
        g = np.minimum(cum.searchsorted(rng.random(n) * cum[-1], side="right"), len(cum) - 1)
        g = g[rng.random(n) < site.capture_rate]
        frames = rng.poisson(extra, len(g)) + 1 if extra > 0 else np.ones(len(g))
        looks = effective_looks(frames, experiment.crowd.frame_correlation)
        p = table.offsets[prior.searchsorted(rng.random(len(g)), side="right")] * table.step
        best = table.invert_hazard(g, np.log(-np.log(rng.random(len(g))) / looks)) + p
        mated = np.flatnonzero(rng.random(len(g)) < pi[g])
        best[mated] = np.maximum(best[mated], model.genuine_rvs(g[mated], looks[mated], rng))
        faces += len(g)
        alerts += int((best >= t).sum())
    return faces, alerts


@dataclass
class PerPasserResult:
    passers: int
    faces: int
    alerts: int
    false_alerts: int
    outcomes: dict[str, int]


class _Inverse:
    """The inverse of one group's tabulated hazard, for scalar look-ups by bisection."""

    def __init__(self, table: SearchTable, g: int):
        lh = table.log_hazard[g]
        self.neg = (-lh).tolist()             # increasing in x
        self.grid = table.grid.tolist()
        self.top_lh = float(lh[-1])
        self.top_x = self.grid[-1]
        self.slope = float(lh[-1] - lh[-2]) / table.step

    def __call__(self, log_h: float) -> float:
        y = -log_h
        j = bisect_left(self.neg, y)
        if j == 0:
            return -math.inf if y < self.neg[0] else self.grid[0]
        if j == len(self.neg):
            return self.top_x + (log_h - self.top_lh) / self.slope
        y0, y1 = self.neg[j - 1], self.neg[j]
        return self.grid[j - 1] + (self.grid[j] - self.grid[j - 1]) * (y - y0) / (y1 - y0)


def simulate_per_passer(experiment: Experiment, site: Site, table: SearchTable, model: ScoreModel,
                        pi: np.ndarray, threshold: float, seed: int) -> PerPasserResult:
    """One deployment with one simpy process per passer (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    groups = default_groups()
    shares = site.group_shares(groups, experiment.crowd.female_share)
    expected = site.expected_passers
    n_max = int(expected + 10 * math.sqrt(expected) + 10)
    rates = site.footfall_profile / 3600.0
    slice_s = site.duration_seconds / len(rates)
    # every passer's random numbers, drawn up front (this flatters the per-passer model)
    unit_gaps = rng.exponential(1.0, n_max).tolist()
    group = rng.choice(len(shares), size=n_max, p=shares).tolist()
    u_capture, u_mated, u_offset, u_best, u_genuine = rng.random((5, n_max)).tolist()
    frames = rng.poisson(experiment.crowd.frames_per_passer - 1.0, n_max) + 1
    looks = effective_looks(frames, experiment.crowd.frame_correlation).tolist()
    weights_cdf = np.cumsum(table.weights).tolist()
    offsets = (table.offsets * table.step).tolist()
    inverse = [_Inverse(table, g) for g in range(len(groups))]
    gen_loc = model.genuine_location.tolist()
    gen_sd = model.genuine_sd.tolist()
    pi_l = pi.tolist()
    t = float(to_latent(threshold))
    normal = NormalDist()
    rev = experiment.review
    dwell = rev.zone_length_m / rev.walking_speed_m_s
    capture = site.capture_rate

    env = simpy.Environment()
    operators = simpy.Resource(env, capacity=max(rev.operators, 1))
    officers = simpy.Resource(env, capacity=rev.officers) if rev.officers > 0 else None
    tally = {"passers": 0, "faces": 0, "alerts": 0, "false_alerts": 0}
    outcomes: dict[str, int] = {}

    def gamma(mean: float, cv: float) -> float:
        if mean <= 0 or cv <= 0:
            return max(mean, 0.0)
        shape = 1.0 / cv ** 2
        return pyrng.gammavariate(shape, mean / shape)

    def best_impostor(g: int, k: float, i: int) -> float:
        p = offsets[min(bisect_right(weights_cdf, u_offset[i] * weights_cdf[-1]), len(offsets) - 1)]
        return inverse[g](math.log(-math.log(u_best[i]) / k)) + p

    def passer(i: int):
        tally["passers"] += 1
        if u_capture[i] >= capture:
            return
        tally["faces"] += 1
        g, k = group[i], looks[i]
        if u_mated[i] < pi_l[g]:
            # best of k genuine looks by order statistics: F^-1(U^(1/k))
            genuine = gen_loc[g] + gen_sd[g] * normal.inv_cdf(min(max(u_genuine[i] ** (1.0 / k), 1e-300),
                                                                  1 - 1e-16))
            impostor = best_impostor(g, k, i)
            best, true_match = max(genuine, impostor), genuine >= impostor
        else:
            best, true_match = best_impostor(g, k, i), False
        if best < t:
            return
        tally["alerts"] += 1
        tally["false_alerts"] += not true_match
        raised = env.now
        if rev.require_operator_review:
            with operators.request() as req:
                yield req
                yield env.timeout(gamma(rev.review_seconds_mean, rev.review_seconds_cv))
            p_confirm = rev.p_confirm_true if true_match else rev.p_confirm_false
            if pyrng.random() >= p_confirm:
                outcomes["operator_rejected"] = outcomes.get("operator_rejected", 0) + 1
                return
        leaves = raised + dwell
        if officers is None or env.now >= leaves:
            outcomes["lost_alerts"] = outcomes.get("lost_alerts", 0) + 1
            return
        req = officers.request()
        got = yield req | env.timeout(leaves - env.now)
        response = gamma(rev.response_seconds_mean, 0.5)
        if req not in got or env.now + response > leaves:
            if req in got:
                officers.release(req)
            else:
                req.cancel()
            outcomes["lost_alerts"] = outcomes.get("lost_alerts", 0) + 1
            return
        yield env.timeout(response + gamma(rev.engagement_minutes_mean * 60.0, 0.5))
        officers.release(req)
        if true_match:
            name = "arrests" if pyrng.random() < rev.p_arrest else "no_action"
        else:
            name = "wrongful_stops"
        outcomes[name] = outcomes.get(name, 0) + 1

    def source():
        for i in range(n_max):
            rate = rates[min(int(env.now // slice_s), len(rates) - 1)]
            gap = unit_gaps[i] / rate if rate > 0 else math.inf
            if env.now + gap > site.duration_seconds:
                return
            yield env.timeout(gap)
            env.process(passer(i))

    env.process(source())
    env.run()
    return PerPasserResult(tally["passers"], tally["faces"], tally["alerts"], tally["false_alerts"], outcomes)
