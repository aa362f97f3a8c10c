"""Random streams: one root seed, one independent stream per (replicate, deployment, stage).

Every draw in a run comes from ``stream(root, replicate, deployment, stage)``, a PCG64 generator
seeded by ``numpy.random.SeedSequence(root, spawn_key=(replicate, deployment, stage))`` (NEP 19).
The key never names the sweep cell, the worker or the order of completion: all cells of a sweep
meet the same passers (common random numbers), and a result does not depend on which executor ran
it or how many workers it had.

A replicate draws programme-wide, under deployment 0, with one stream per stage: which sites a
generated programme visits (stage 0), the watchlist (1), every deployment's crowd and search (2,
deployments drawn together, one numpy call per step with a row per deployment, see
``sim.search.search_deployments``) and every candidate's review uniforms (3, one row per candidate,
deployment by deployment in arrival order), and which posterior draw the replicate runs with
its period effect (4, ``sim.draws``). A replicate is one unit of work, never split between
workers, so its draws depend on its key alone. (Until December 2026 stages 2 and 3 had a stream
per deployment; building 400 streams cost more than drawing a replicate's crowds.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

STAGE_PROGRAMME, STAGE_WATCHLIST, STAGE_CROWD, STAGE_REVIEW, STAGE_POSTERIOR = range(5)


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one (replicate, deployment, stage) under the root seed."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def seed_layout(seed: int, replications: int) -> dict[str, Any]:
    """How a run's streams derive from its root seed, as the manifest records it."""
    return {"root": seed, "replications": replications,
            "streams": "SeedSequence(root, spawn_key=(replicate, 0, stage)); stages: "
                       "0 programme, 1 watchlist, 2 every deployment's crowd and search (drawn together), "
                       "3 review (one row of uniforms per candidate), 4 the posterior draw and "
                       "period effect; the same for every cell "
                       "(common random numbers)",
            "numpy": np.__version__}
