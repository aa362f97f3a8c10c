"""Sensitivity of the headline to choices the data cannot settle, for one account (default c2):
NPL's exposure centred at 42,000 (the reading in which 7 events make "1 in 6,000") instead of
130,000; empty alert cells read as zero alerts; the period-effect prior scale doubled; the
counting-factor prior range narrowed to [0.2, 20]. Each is a nested-sampling fit plus a short
emcee chain (bridge evidence). Writes ``OUT/sensitivity.json``.
Usage: ``python sensitivity_study.py OUT [ACCOUNT]``."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import calibrate as c
import records as rec


def _one(name: str, account: str, seed: int) -> dict:
    import importlib
    cal = importlib.import_module("calibrate")
    acc = cal.ACCOUNTS[account]
    data = cal.Data.from_records(rec.fit_rows())
    if name == "npl_exposure_42000":
        acc = dataclasses.replace(acc, name=f"{account}|npl42k", npl_exposure_median=42_000.0)
    elif name == "empty_alerts_as_zero":
        data = cal.Data.from_records(rec.fit_rows(empty_as_zero=True))
    saved = (cal.PERIOD_SD_PRIOR_SCALE, cal.FACES_PER_PASSER_RANGE)   # worker processes are reused
    try:
        if name == "period_sd_prior_1.0":
            cal.PERIOD_SD_PRIOR_SCALE = 1.0
        elif name == "faces_per_passer_0.2_20":
            cal.FACES_PER_PASSER_RANGE = (0.2, 20.0)
        p = cal.fit(acc, data, seed, settings=cal.Settings.screen(), keep_pointwise=False)
        q = cal.mcmc(p, seed, keep_pointwise=False)
    finally:
        cal.PERIOD_SD_PRIOR_SCALE, cal.FACES_PER_PASSER_RANGE = saved
    h = cal.headline(q.samples, seed)
    return {"variant": name, "deployments": data.n, "logz_nested": p.logz, "logz_bridge": q.logz,
            "rhat_max": q.diagnostics["rhat_max"], "headline": h,
            "faces_per_passer[2024 high count]": q.summary("faces_per_passer[2024 high count]"),
            "npl_fpir_0.60_n10000": q.summary("npl_fpir_0.60_n10000"),
            "fpir_ratio_0.64_0.60": q.summary("fpir_ratio_0.64_0.60")}


def main(out: Path, account: str = "c2", seed: int = 20250101) -> list[dict]:
    t0 = time.perf_counter()
    names = ["baseline", "npl_exposure_42000", "empty_alerts_as_zero", "period_sd_prior_1.0", "faces_per_passer_0.2_20"]
    res = c._parallel([(_one, (n, account, seed)) for n in names], 2)
    (out / "sensitivity.json").write_text(json.dumps(c._clean({"account": account, "rows": res,
                                                               "seconds": time.perf_counter() - t0}), indent=1))
    return res


if __name__ == "__main__":  # pragma: no cover
    for r in main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "c2"):
        h = r["headline"]
        print(r["variant"], r["deployments"], round(r["logz_bridge"], 2), round(h["expected_median"], 2),
              [round(v, 2) for v in h["expected_interval_95"]], round(h["p_at_most_reported"], 3))
