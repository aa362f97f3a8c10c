"""The search stage of one replicate, on its own, so it can be timed apart from review.

``sim.run.simulate_replicate`` runs crowd -> search -> review -> counts for a list of thresholds.
The benchmarks need its first half alone (everything before review) and the per-threshold alert
counting that a sweep repeats, so this module replays that first half with the same functions,
streams and seeds: the candidates it returns are the ones ``simulate_replicate`` reviews.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.config import Experiment
from sim.crowd import (
    default_groups,
    frames_distribution,
    realise_programme,
    watchlist_group_shares,
    watchlisted_probability,
)
from sim.run import STAGE_PROGRAMME, STAGE_WATCHLIST, Candidates, _search_deployment, stream
from sim.scores import ScoreModel, score_model, to_latent
from sim.search import SearchTable, build_search_table
from sim.watchlist import Watchlist, draw_watchlist

# CPU seconds of this process: what one core spends, whatever else the machine is running
clock = time.process_time


@dataclass
class Searched:
    """One replicate's search stage: the candidates of every deployment and what it cost."""

    faces: int
    candidates: list[Candidates]
    model: ScoreModel
    watchlist: Watchlist
    table: SearchTable
    pi: np.ndarray                 # P(a passer of each group is on the watchlist)
    sites: list
    setup_seconds: float           # programme, watchlist and hazard table
    deployments_seconds: float     # crowds and best scores of every deployment

    @property
    def seconds(self) -> float:
        return self.setup_seconds + self.deployments_seconds

    @property
    def n_candidates(self) -> int:
        return sum(len(c.best) for c in self.candidates)


def search_stage(experiment: Experiment, replicate: int = 0, seed: int | None = None) -> Searched:
    """Draw every deployment's crowd and best scores, as ``simulate_replicate`` does before review."""
    seed = experiment.experiment.seed if seed is None else seed
    start = clock()
    groups = default_groups()
    model = score_model(experiment.matcher.scores, groups)
    sites = realise_programme(experiment.programme, stream(seed, replicate, 0, STAGE_PROGRAMME))
    wl_shares = watchlist_group_shares(experiment.watchlist.female_share,
                                       experiment.watchlist.ethnicity_shares, groups)
    watchlist = draw_watchlist(experiment.watchlist.size, wl_shares, model.entry_effects,
                               stream(seed, replicate, 0, STAGE_WATCHLIST))
    table = build_search_table(model, watchlist, float(to_latent(experiment.matcher.score_floor)))
    frames = frames_distribution(experiment.crowd)
    pi = watchlisted_probability(experiment.crowd, groups, experiment.watchlist.size, wl_shares)
    setup = clock()
    faces = 0
    candidates = []
    for site in sites:
        shares = site.group_shares(groups, experiment.crowd.female_share)
        crowd, _, _, cands = _search_deployment(site, table, model, experiment, shares, pi, frames,
                                                seed, replicate)
        faces += int(crowd.faces(experiment.crowd.count_faces_as).sum())
        candidates.append(cands)
    end = clock()
    return Searched(faces, candidates, model, watchlist, table, pi, sites, setup - start, end - setup)


def count_alerts(searched: Searched, thresholds: Sequence[float]) -> np.ndarray:
    """Alerts, true and false alerts per group at each threshold: the search stage's answer.

    Every threshold reads the same best scores (common random numbers): the scores are sorted
    once per (group, true/false) and each threshold is one binary search. Shape (T, 3, G).
    """
    n_groups = len(searched.model.groups)
    latent = to_latent(np.asarray(thresholds, dtype=float))
    cands = searched.candidates
    group = np.concatenate([c.group for c in cands]) if cands else np.empty(0, np.int64)
    best = np.concatenate([c.best for c in cands]) if cands else np.empty(0)
    true_match = np.concatenate([c.true_match for c in cands]) if cands else np.empty(0, bool)
    out = np.zeros((len(latent), 3, n_groups), dtype=np.int64)
    for g in range(n_groups):
        for kind, sel in ((1, true_match), (2, ~true_match)):
            scores = np.sort(best[(group == g) & sel])
            out[:, kind, g] = len(scores) - np.searchsorted(scores, latent, side="left")
    out[:, 0] = out[:, 1] + out[:, 2]
    return out
