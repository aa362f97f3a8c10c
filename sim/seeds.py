"""Random streams: one root seed, one independent stream per (replicate, deployment, stage).

Every draw in a run comes from ``stream(root, replicate, deployment, stage)``, a PCG64 generator
seeded by ``numpy.random.SeedSequence(root, spawn_key=(replicate, deployment, stage))`` (NEP 19).
The key never names the sweep cell, the worker or the order of completion: all cells of a sweep
meet the same passers (common random numbers), and a result does not depend on which executor ran
it or how many workers it had. Programme-wide draws (which sites a generated programme visits, the
watchlist) use deployment 0 with their own stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STAGE_PROGRAMME, STAGE_WATCHLIST, STAGE_CROWD, STAGE_REVIEW = range(4)


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one (replicate, deployment, stage) under the root seed."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def seed_layout(seed: int, replications: int) -> dict[str, Any]:
    """How a run's streams derive from its root seed, as the manifest records it."""
    return {"root": seed, "replications": replications,
            "streams": "SeedSequence(root, spawn_key=(replicate, deployment, stage)); stages: "
                       "0 programme, 1 watchlist, 2 crowd and search, 3 review; the same for every cell "
                       "(common random numbers)",
            "numpy": np.__version__}
