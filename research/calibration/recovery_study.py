"""Recovery study: data simulated from known parameters are refitted; is the truth inside the 95%
credible interval? Truths: draws of the fitted c+d posterior with the operator filter and the
counting factors reset uniformly (omega in [0.3, 1], k_low in [0.3, 3], k_high / k_low in [1, 8]).
Writes ``OUT/recovery.json``. Usage: ``python recovery_study.py OUT [SETS]``."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import calibrate as c
import records as rec


def main(out: Path, sets: int = 10, seed: int = 99) -> dict:
    t0 = time.perf_counter()
    data = c.Data.from_records(rec.fit_rows())
    base = c.fit("c+d", data, seed, settings=c.Settings(nlive=100, walks=25, runs=1, draws=1000), keep_pointwise=False)
    m = c.Model(c.ACCOUNTS["c+d"], data)
    rng = np.random.default_rng(seed)
    truths = []
    for i in range(sets):
        x = base.matrix()[rng.integers(len(base.matrix()))].copy()
        x[m.index["operator_pass_false"]] = rng.uniform(0.3, 1.0)
        low = rng.uniform(math.log(0.3), math.log(3.0))
        x[m.index["log_faces_per_passer_1"]] = low
        high = low + rng.uniform(0.0, math.log(8.0))
        x[m.index["log_faces_per_passer_2"]] = high
        x[m.index["log_faces_per_passer_0"]] = high + rng.normal(0, 0.3)
        truths.append(x)
    res = c.recovery(truths, "c+d", seed=seed, settings=c.Settings(nlive=100, walks=25, runs=1, draws=1000))
    res["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "recovery.json").write_text(json.dumps(c._clean(res), indent=1))
    return res


if __name__ == "__main__":  # pragma: no cover
    r = main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    print(json.dumps({k: r[k] for k in ("sets", "coverage", "overall", "seconds")}, indent=1))
