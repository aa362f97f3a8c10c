"""Published deployment records: parse them, check them, and sort them into periods.

The Met publishes a grid per deployment: date, site, watchlist size, "faces seen", threshold,
alerts (true and false), arrests and duration (``sim/data/met_lfr_deployments_2020_2024.csv``,
with the ward's census shares added). A **period** is a threshold and a way of counting faces:
2023 at 0.60; January to June 2024 at 0.60, when "faces seen" per hour fell to about a fifth
while true alerts per face rose five-fold (the counting changed, not the crowd); July 2024 at
0.62; and July to December 2024 at 0.64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from . import data as shipped
from .groups import ETHNICITIES

PERIODS = ("2023 at 0.60", "Jan-Jun 2024 at 0.60", "Jul 2024 at 0.62", "Jul-Dec 2024 at 0.64")


@dataclass(frozen=True)
class MetRecord:
    """One row of the Met's deployment records, as numbers (NaN where not published)."""

    date: str
    site: str
    borough: str
    ward_code: str
    period: str                  # one of PERIODS, or "" before thresholds were published
    threshold: float
    watchlist_size: float
    faces: float
    hours: float
    ethnicity_shares: tuple[float, ...]   # over ETHNICITIES, from the ward's census shares
    alerts: int                  # true + false alerts as classified by the Met (0 if empty)
    true_alerts: int
    false_alerts: int
    arrests: int
    published_alerts: bool       # False where the row gives no alert figures at all


def _num(value: str) -> float:
    return float(value) if value not in ("", None) else float("nan")


def _count(value: str) -> int:
    return int(float(value)) if value not in ("", None) else 0


def _hours(value: str) -> float:
    if not value:
        return float("nan")
    h, m, s = (int(p) for p in value.split(":"))
    return h + m / 60 + s / 3600


def _period(date: str, threshold: float) -> str:
    if not np.isfinite(threshold):
        return ""
    if date < "2024-01-01":
        return PERIODS[0]
    return {0.60: PERIODS[1], 0.62: PERIODS[2], 0.64: PERIODS[3]}[round(threshold, 2)]


@cache
def met_records() -> tuple[MetRecord, ...]:
    """Every row of the shipped Met records (2020-2024), parsed."""
    out = []
    for r in shipped.met_records():
        threshold = _num(r["threshold"])
        minority = [_num(r[f"ward_{e}_share"]) for e in ("asian", "black", "mixed", "other")]
        if all(np.isfinite(minority)):
            a, b, m, o = minority
            shares = (a, b, m, 1.0 - a - b - m - o, o)
        else:
            london = shipped.london_shares()
            shares = tuple(london[e] for e in ETHNICITIES)
        true = _count(r["true_alerts_confirmed"]) + _count(r["true_alerts_unconfirmed"])
        false = _count(r["false_alerts_confirmed"]) + _count(r["false_alerts_unconfirmed"])
        published = any(r[k] for k in ("alerts_total", "true_alerts_confirmed", "false_alerts_confirmed"))
        out.append(MetRecord(
            date=r["date"], site=r["deployment"], borough=r["borough"], ward_code=r["ward_code"],
            period=_period(r["date"], threshold), threshold=threshold,
            watchlist_size=_num(r["watchlist_size"]), faces=_num(r["faces_seen"]),
            hours=_hours(r["duration"]),
            ethnicity_shares=shares, alerts=true + false, true_alerts=true, false_alerts=false,
            arrests=_count(r["arrests"]), published_alerts=published))
    return tuple(out)


def fitted_records() -> tuple[MetRecord, ...]:
    """The records the fit uses: a published threshold and at least one alert."""
    return tuple(r for r in met_records() if r.period and r.alerts > 0)
