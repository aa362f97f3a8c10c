"""The Met's LFR deployment records as typed rows, with their period and counting regime.

Source: ``met_lfr_deployments_2020_2024.csv`` (Met deployment grids compiled by Zoe Garbett AM,
redistributed by github.com/langtonhugh/facial-recognition-doc under MIT; see
``sim/data/PROVENANCE.md``). One row per deployment; empty cells are "not published".

Two labels per row, deliberately kept apart:

* **period** = threshold x calendar, fixed by the record itself::

      "2023 at 0.60"          2023-04-06 .. 2023-12-21, threshold 0.60
      "Jan-Jun 2024 at 0.60"  2024-01-10 .. 2024-06-28, threshold 0.60
      "Jul 2024 at 0.62"      2024-07-11 .. 2024-07-23, threshold 0.62 (ten deployments)
      "Jul-Dec 2024 at 0.64"  2024-07-25 .. 2024-12-20, threshold 0.64

  The 0.64 period starts on 25 July 2024 (not 1 August): four 0.64 deployments fall in July.

* **counting regime** = what "faces seen" counted. 2023 is its own regime (``"2023"``). In 2024
  the faces-per-hour figures are bimodal (medians about 250/h and 1,600/h) and the switch is not
  a clean date: the 0.62 week is almost all low (63-710/h, one deployment at 2,500/h), late July
  and August 2024 mix both (278-432/h beside 1,850-5,200/h), early January has two Westminster
  deployments at 2,700/h and 4,500/h. A row's regime is therefore a probability, not a date:
  ``p_low_count`` = P(low-count regime | its faces per hour), from a two-component lognormal
  mixture fitted by EM to the log faces-per-hour of *all* 2024 rows (shared component means and
  sds, one mixing weight before and one from 25 July 2024). Only faces and durations enter; the
  alerts never do. ``regime`` is the more probable label (``"2024 low count"`` or
  ``"2024 high count"``); the fit marginalises over the two where both are plausible.

Counts: ``true_alerts`` = confirmed + unconfirmed true alerts, ``false_alerts`` likewise. In three
rows (2024-01-10 Westminster, 2024-10-09 Stratford and Hammersmith) the published total is one
less than confirmed + unconfirmed true alerts; the published total is taken as authoritative
there (``true_alerts = alerts_total - false_alerts``) and the row is flagged in ``quirks``.

The grid's column format, the periods and regimes, and the faces-per-hour mixture are
``sim.grid``'s (any force's grid is read there); this module is the Met's shipped records. Only
numpy, csv and the standard library are used. The data are read from the installed package
(``sim.data.path``); the vocabulary (``ETHNICITIES``, ``SEXES``, ``GROUPS``: sex slowest, female
first) is ``sim.groups``'.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import data as shipped
from . import groups
from .grid import PERIODS, REGIMES, SWITCH_DATE, RegimeMixture, fit_regime_mixture, most_probable_regime
from .grid import count as _count
from .grid import hours as _hours
from .grid import number as _num
from .groups import ETHNICITIES, GROUP_NAMES, SEXES

GROUPS = GROUP_NAMES
__all__ = ["ETHNICITIES", "SEXES", "GROUPS", "PERIODS", "REGIMES", "SWITCH_DATE", "Record", "RegimeMixture",
           "fit_regime_mixture", "load", "fit_rows", "footfall_rows"]
RECORDS_FILE = "met_lfr_deployments_2020_2024.csv"
CENSUS_FILE = "london_ward_ethnicity_census2021.csv"


def data_dir() -> Path:
    """The folder of the shipped CSVs (the installed ``sim/data``)."""
    return shipped.path(RECORDS_FILE).parent


@dataclass(frozen=True)
class Record:
    """One deployment, typed. NaN / None where the Met published nothing."""

    index: int                       # row number in the CSV (0-based, header excluded)
    date: str                        # ISO date
    site: str
    borough: str
    ward_code: str
    threshold: float                 # vendor threshold, NaN before 2023
    watchlist_size: float
    faces: float                     # "faces seen" as published (a count in the row's regime)
    hours: float                     # duration in hours
    ethnicity_shares: tuple[float, ...]   # ward census shares over ETHNICITIES (London if absent)
    ward_shares_published: bool
    alerts_total: float              # as published (NaN if empty)
    alerts: int                      # true + false, as used by the fit
    true_alerts: int
    false_alerts: int
    arrests: int
    published_alerts: bool           # False where the row gives no alert figures at all
    period: str                      # one of PERIODS, or "" (no threshold published)
    p_low_count: float               # P(2024 low-count regime | faces per hour); 0 outside 2024
    quirks: tuple[str, ...] = field(default=())

    @property
    def faces_per_hour(self) -> float:
        return self.faces / self.hours if self.hours > 0 else float("nan")

    @property
    def regime(self) -> str:
        """The most probable counting regime."""
        return most_probable_regime(self.date, self.p_low_count)

    @property
    def regime_probabilities(self) -> tuple[float, float, float]:
        """P(regime) over REGIMES."""
        if self.date < "2024-01-01":
            return (1.0, 0.0, 0.0)
        return (0.0, self.p_low_count, 1.0 - self.p_low_count)

    def group_shares(self, female_share: float = 0.5) -> np.ndarray:
        """Crowd shares over GROUPS (sex x ethnicity) from the ward mix."""
        return group_shares(np.asarray(self.ethnicity_shares), female_share)


def group_shares(ethnicity_shares: np.ndarray, female_share: float = 0.5) -> np.ndarray:
    """Shares over GROUPS: sex split ``female_share`` times the ethnic shares, normalised."""
    return groups.group_shares(female_share, np.asarray(ethnicity_shares, dtype=float))


def period_of(date: str, threshold: float) -> str:
    """The row's period (threshold x calendar), or "" where no threshold was published."""
    if not math.isfinite(threshold):
        return ""
    if date < "2024-01-01":
        return PERIODS[0]
    key = round(threshold, 2)
    if key == 0.60:
        return PERIODS[1]
    if key == 0.62:
        return PERIODS[2]
    if key == 0.64:
        return PERIODS[3]
    raise ValueError(f"unexpected threshold {threshold} on {date}")


@lru_cache(maxsize=4)
def london_ethnicity_shares(directory: str | None = None) -> tuple[float, ...]:
    """2021 census shares of all London residents over ETHNICITIES."""
    d = Path(directory) if directory else data_dir()
    totals = dict.fromkeys(ETHNICITIES, 0.0)
    with open(d / CENSUS_FILE, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for e in ETHNICITIES:
                totals[e] += float(row[e])
    s = sum(totals.values())
    return tuple(totals[e] / s for e in ETHNICITIES)


# -- counting regime from faces per hour: ``sim.grid`` (RegimeMixture, fit_regime_mixture) ----------

# -- parsing -----------------------------------------------------------------------------------

def _raw_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=4)
def _load(path_str: str) -> tuple[tuple[Record, ...], RegimeMixture]:
    path = Path(path_str)
    rows = _raw_rows(path)
    london = london_ethnicity_shares(str(path.parent))
    parsed = []
    for i, r in enumerate(rows):
        threshold = _num(r["threshold"])
        minority = [_num(r[f"ward_{e}_share"]) for e in ("asian", "black", "mixed", "other")]
        quirks: list[str] = []
        if all(math.isfinite(v) for v in minority):
            a, b, mx, o = minority
            shares = (a, b, mx, 1.0 - a - b - mx - o, o)
            published_shares = True
        else:
            shares = london
            published_shares = False
            quirks.append("no ward census shares: London's used")
        true = _count(r["true_alerts_confirmed"]) + _count(r["true_alerts_unconfirmed"])
        false = _count(r["false_alerts_confirmed"]) + _count(r["false_alerts_unconfirmed"])
        total = _num(r["alerts_total"])
        if math.isfinite(total) and round(total) != true + false:
            quirks.append(f"alerts_total {int(total)} != true {true} + false {false}: total kept")
            true = int(round(total)) - false
        published = any(r[k] for k in ("alerts_total", "true_alerts_confirmed", "false_alerts_confirmed"))
        if not published and (r["arrests"] or r["no_action"]):
            quirks.append("outcomes published without alert figures")
        parsed.append(dict(
            index=i, date=r["date"], site=r["deployment"], borough=r["borough"], ward_code=r["ward_code"],
            threshold=threshold, watchlist_size=_num(r["watchlist_size"]), faces=_num(r["faces_seen"]),
            hours=_hours(r["duration"]), ethnicity_shares=tuple(float(s) for s in shares),
            ward_shares_published=published_shares, alerts_total=total, alerts=true + false,
            true_alerts=true, false_alerts=false, arrests=_count(r["arrests"]), published_alerts=published,
            period=period_of(r["date"], threshold), quirks=tuple(quirks)))
    # counting regime of the 2024 rows, from their faces per hour alone
    in_2024 = [p for p in parsed if p["date"] >= "2024-01-01" and math.isfinite(p["faces"])
               and math.isfinite(p["hours"]) and p["hours"] > 0 and p["faces"] > 0]
    log_fph = np.log([p["faces"] / p["hours"] for p in in_2024])
    after = np.array([p["date"] >= SWITCH_DATE for p in in_2024])
    mixture = fit_regime_mixture(log_fph, after)
    p_low = dict(zip((p["index"] for p in in_2024), mixture.p_low(log_fph, after), strict=True))
    out = []
    for p in parsed:
        if p["date"] >= "2024-01-01":
            pl = float(p_low.get(p["index"], mixture.weight_low_after if p["date"] >= SWITCH_DATE
                                 else mixture.weight_low_before))
        else:
            pl = 0.0
        out.append(Record(p_low_count=pl, **p))
    return tuple(out), mixture


def load(path: str | Path | None = None) -> tuple[Record, ...]:
    """Every row of the records CSV (default: the shipped file), parsed and labelled."""
    return _load(str(Path(path) if path else data_dir() / RECORDS_FILE))[0]


def regime_mixture(path: str | Path | None = None) -> RegimeMixture:
    """The faces-per-hour mixture behind ``p_low_count`` (for reporting)."""
    return _load(str(Path(path) if path else data_dir() / RECORDS_FILE))[1]


def fit_rows(records: tuple[Record, ...] | None = None, empty_as_zero: bool = False) -> tuple[Record, ...]:
    """Rows the calibration uses: a period, a positive face count, a duration, a watchlist size,
    and published alert figures (or, with ``empty_as_zero``, empty alert cells read as zero,
    except rows that publish outcomes without alerts)."""
    records = load() if records is None else records
    out = []
    for r in records:
        if not (r.period and math.isfinite(r.faces) and r.faces > 0 and math.isfinite(r.hours) and r.hours > 0
                and math.isfinite(r.watchlist_size)):
            continue
        outcomes_only = "outcomes published without alert figures" in r.quirks
        if r.published_alerts or (empty_as_zero and not outcomes_only):
            out.append(r)
    return tuple(out)


def footfall_rows(records: tuple[Record, ...] | None = None, confident: float = 0.05) -> tuple[Record, ...]:
    """Rows whose faces per hour measure the counting: a period, faces > 0, a duration, and a
    regime known to within ``confident`` (2023, or P(low count) <= 0.05 or >= 0.95). Published
    alerts are not needed: these rows inform the counting factors only through their faces."""
    records = load() if records is None else records
    return tuple(r for r in records if r.period and math.isfinite(r.faces) and r.faces > 0
                 and math.isfinite(r.hours) and r.hours > 0
                 and (r.date < "2024-01-01" or r.p_low_count <= confident or r.p_low_count >= 1 - confident))


def headline_ethnicity_shares(records: tuple[Record, ...] | None = None) -> np.ndarray:
    """Mean ward census mix of every 0.64 deployment (the Met's 2025 operating point).

    All rows of the 0.64 period, with or without published alerts, returned over ETHNICITIES.
    """
    records = load() if records is None else records
    sel = [r.ethnicity_shares for r in records if r.period == PERIODS[3]]
    return np.mean(np.asarray(sel), axis=0)


def period_summary(rows: tuple[Record, ...]) -> list[dict[str, float | int | str]]:
    """Deployments, faces, faces per hour (median), alerts, true, false and arrests per period."""
    out: list[dict[str, float | int | str]] = []
    for p in PERIODS:
        sel = [r for r in rows if r.period == p]
        if not sel:
            continue
        out.append({"period": p, "deployments": len(sel), "faces": float(sum(r.faces for r in sel)),
                    "median_faces_per_hour": float(np.median([r.faces_per_hour for r in sel])),
                    "expected_low_count_rows": float(sum(r.p_low_count for r in sel)),
                    "alerts": sum(r.alerts for r in sel), "true_alerts": sum(r.true_alerts for r in sel),
                    "false_alerts": sum(r.false_alerts for r in sel), "arrests": sum(r.arrests for r in sel)})
    return out
