"""The search stage of one replicate, on its own, so it can be timed apart from review.

``sim.replicate.simulate_replicate`` runs crowd -> search -> review -> counts for a list of thresholds.
The benchmarks need its first half alone (everything before review) and the per-threshold alert
counting that a sweep repeats, so this module calls that first half (``sim.search.prepare_search`` and
``search_deployments``) on its own: the candidates it returns are the ones ``simulate_replicate``
reviews.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.config import Experiment
from sim.draws import resolve
from sim.review import UNIFORMS_PER_ALERT, Alerts, ReviewDays, draw_fates
from sim.scores import ScoreModel, to_latent
from sim.search import Candidates, Search, SearchTable, prepare_search, search_deployments
from sim.seeds import STAGE_REVIEW, stream
from sim.watchlist import WatchlistEntries

# CPU seconds of this process: what one core spends, whatever else the machine is running
clock = time.process_time


@dataclass
class Searched:
    """One replicate's search stage: the candidates of every deployment and what it cost."""

    faces: int
    candidates: list[Candidates]
    model: ScoreModel
    watchlist: WatchlistEntries
    table: SearchTable
    pi: np.ndarray                 # P(a passer of each group is on the watchlist)
    sites: list
    setup_seconds: float           # programme, watchlist and hazard table
    deployments_seconds: float     # crowds and best scores of every deployment
    search: Search | None = None   # what sim.replicate.simulate_replicate reviews

    @property
    def seconds(self) -> float:
        return self.setup_seconds + self.deployments_seconds

    @property
    def n_candidates(self) -> int:
        return sum(len(c.best) for c in self.candidates)


def search_stage(experiment: Experiment, replicate: int = 0, seed: int | None = None) -> Searched:
    """Time ``simulate_replicate``'s search stage (``sim.search.prepare_search`` and
    ``search_deployments``): the same functions, streams and seeds, stopped before review."""
    seed = experiment.experiment.seed if seed is None else seed
    experiment = resolve(experiment, replicate, seed)   # its posterior draw, as simulate_replicate
    start = clock()
    setup = prepare_search(experiment, replicate, seed)
    ready = clock()
    search = search_deployments(experiment, setup, replicate, seed)
    end = clock()
    return Searched(int(search.faces.sum()), [c for _, c in search.candidates], setup.model, setup.watchlist,
                    setup.table, setup.watchlisted_probability, setup.sites, ready - start, end - ready,
                    search)


def review_stage(experiment: Experiment, searched: Searched, threshold: float, replicate: int = 0,
                 seed: int | None = None) -> tuple[float, int]:
    """(CPU seconds, alerts) of ``simulate_replicate``'s review at one threshold, on its own.

    The same steps on the same candidates: the review stream's uniforms, every candidate's fates
    drawn once, then every deployment's alerts in one simpy environment (``ReviewDays``).
    """
    seed = experiment.experiment.seed if seed is None else seed
    experiment = resolve(experiment, replicate, seed)
    search = searched.search
    assert search is not None
    cands = search.flat
    n = len(cands.best)
    start = clock()
    uniforms = stream(seed, replicate, 0, STAGE_REVIEW).random((n, UNIFORMS_PER_ALERT))
    alerts = Alerts(cands.seconds, cands.true_match, np.zeros(n), uniforms)
    fates = draw_fates(alerts, experiment.review)
    hit = np.flatnonzero(cands.best >= to_latent(threshold))
    deployment = np.repeat(np.arange(len(search.sites)), np.diff(search.bounds))[hit]
    durations = np.array([site.duration_seconds for site in search.sites])
    day = ReviewDays(Alerts(cands.seconds[hit], cands.true_match[hit], np.zeros(len(hit)), uniforms[hit]),
                     experiment.review, deployment, durations,
                     type(fates)(*(v[hit] for v in vars(fates).values())))
    day.run()
    return clock() - start, len(hit)


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
