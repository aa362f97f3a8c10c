"""Deployment grids: the table a force publishes, one line per deployment, read and checked.

A force's deployment grid says, for every day the cameras went out, where (site, borough, ward),
for how long, with how many watchlist entries, at what threshold, how many faces the cameras
"saw", and what came of it (alerts, true and false, arrests). This module reads such a grid in the
column format of the Met's records (``sim/data/met_lfr_deployments_2020_2024.csv``)::

    date, deployment, borough, ward_code, watchlist_size, faces_seen, threshold, alerts_total,
    true_alerts_confirmed, true_alerts_unconfirmed, false_alerts_confirmed,
    false_alerts_unconfirmed, arrests, other_disposal, no_action, duration,
    ward_black_share, ward_asian_share, ward_mixed_share, ward_other_share

``date``, ``deployment``, ``faces_seen`` and ``duration`` must be there; every other column may be
left out, and a grid without outcome columns is a forecast. An empty cell is "not published": a
deployment without its faces or its duration cannot be simulated and is listed as skipped; one
without a watchlist size or threshold takes the experiment's. A cell that cannot be read (a date
that is no date, a negative count, a ward that is not a London ward) is an error: every such
problem is one line naming the row (1 = the first deployment under the header) and the column.

Two labels each row gets from the records' own analysis (``sim.records`` explains them): its
**counting regime** (what one recorded face counted), a probability from its faces per hour
alone, under the two-component mixture fitted to the Met's 2024 records; and its **period** of
the calibration (threshold x calendar), where it falls in one, so that a replay of the records
uses each period's estimated effect. Only the standard library, numpy and the shipped data.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from . import data as shipped
from .errors import ConfigError
from .groups import ETHNICITIES

REQUIRED_COLUMNS = ("date", "deployment", "faces_seen", "duration")
SETTING_COLUMNS = ("borough", "ward_code", "watchlist_size", "threshold", "ward_black_share",
                   "ward_asian_share", "ward_mixed_share", "ward_other_share")
OUTCOME_COLUMNS = ("alerts_total", "true_alerts_confirmed", "true_alerts_unconfirmed",
                   "false_alerts_confirmed", "false_alerts_unconfirmed", "arrests", "other_disposal",
                   "no_action")
COLUMNS = (*REQUIRED_COLUMNS, *SETTING_COLUMNS, *OUTCOME_COLUMNS)
# a row publishes its outcomes if it gives any of these
PUBLISHED_WITH = ("alerts_total", "true_alerts_confirmed", "false_alerts_confirmed")
SHARE_COLUMNS = {"black": "ward_black_share", "asian": "ward_asian_share", "mixed": "ward_mixed_share",
                 "other": "ward_other_share"}

# the calibration's periods (threshold x calendar) and counting regimes (``sim.records``)
PERIODS = ("2023 at 0.60", "Jan-Jun 2024 at 0.60", "Jul 2024 at 0.62", "Jul-Dec 2024 at 0.64")
REGIMES = ("2023", "2024 low count", "2024 high count")
SWITCH_DATE = "2024-07-25"          # first 0.64 deployment; the mixture's weights differ either side
RECORDS_FILE = "met_lfr_deployments_2020_2024.csv"
MAX_GRID_BYTES = 16 * 2**20
MAX_ROWS = 100_000
MAX_PROBLEMS = 50


# -- cells --------------------------------------------------------------------------------------

def number(v: str | None) -> float:
    """A published number, NaN for an empty cell (no checks: the shipped records' reading)."""
    return float(v) if v not in ("", None) else float("nan")


def count(v: str | None) -> int:
    """A published count, 0 for an empty cell."""
    return int(round(float(v))) if v not in ("", None) else 0


def hours(v: str | None) -> float:
    """A duration ``H:MM:SS`` (or ``H:MM``, or decimal hours) in hours, NaN for an empty cell."""
    if not v:
        return float("nan")
    if ":" not in v:
        return float(v)
    parts = [int(p) for p in v.split(":")]
    if len(parts) == 2:
        parts.append(0)
    h, m, s = parts
    return h + m / 60 + s / 3600


_DURATION = re.compile(r"\d{1,2}:\d{2}(:\d{2})?|\d+(\.\d+)?")


def period_of(date: str, threshold: float) -> str:
    """The calibration period (threshold x calendar) of a deployment, or "" if it is in none."""
    if not math.isfinite(threshold) or not "2023-01-01" <= date < "2025-01-01":
        return ""
    key = round(threshold, 2)
    if date < "2024-01-01":
        return PERIODS[0] if key == 0.60 else ""
    return {0.60: PERIODS[1], 0.62: PERIODS[2], 0.64: PERIODS[3]}.get(key, "")


# -- the counting regime from faces per hour ------------------------------------------------------

@dataclass(frozen=True)
class RegimeMixture:
    """Two lognormal components of 2024 faces per hour; ``weight_low`` per window."""

    mean_low: float
    sd_low: float
    mean_high: float
    sd_high: float
    weight_low_before: float         # P(low) a priori, 2024-01-01 .. SWITCH_DATE (excl.)
    weight_low_after: float          # P(low) a priori, from SWITCH_DATE
    iterations: int

    def p_low(self, log_fph: np.ndarray, after: np.ndarray) -> np.ndarray:
        w = np.where(after, self.weight_low_after, self.weight_low_before)
        a = w * _normal_pdf(log_fph, self.mean_low, self.sd_low)
        b = (1.0 - w) * _normal_pdf(log_fph, self.mean_high, self.sd_high)
        return a / (a + b)


def _normal_pdf(x: np.ndarray, m: float, s: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))


def fit_regime_mixture(log_fph: np.ndarray, after: np.ndarray, tol: float = 1e-10,
                       max_iter: int = 1000) -> RegimeMixture:
    """EM for a two-component normal mixture of log faces per hour with window-specific weights.

    Deterministic (fixed start: components at the 25th and 75th percentiles). Only faces and
    durations enter: the alert counts never inform the regime.
    """
    x = np.asarray(log_fph, dtype=float)
    after = np.asarray(after, dtype=bool)
    m = RegimeMixture(float(np.quantile(x, 0.25)), float(np.std(x) / 2), float(np.quantile(x, 0.75)),
                      float(np.std(x) / 2), 0.5, 0.5, 0)
    prev = -np.inf
    for it in range(1, max_iter + 1):
        r = m.p_low(x, after)                                   # E step
        w_b = float(r[~after].mean()) if (~after).any() else 0.5
        w_a = float(r[after].mean()) if after.any() else 0.5
        ml = float(np.sum(r * x) / r.sum())
        mh = float(np.sum((1 - r) * x) / (1 - r).sum())
        sl = float(np.sqrt(np.sum(r * (x - ml) ** 2) / r.sum()))
        sh = float(np.sqrt(np.sum((1 - r) * (x - mh) ** 2) / (1 - r).sum()))
        m = RegimeMixture(ml, max(sl, 1e-3), mh, max(sh, 1e-3), w_b, w_a, it)
        w = np.where(after, w_a, w_b)
        ll = float(np.sum(np.log(w * _normal_pdf(x, ml, m.sd_low) + (1 - w) * _normal_pdf(x, mh, m.sd_high))))
        if ll - prev < tol:
            break
        prev = ll
    return m


def mixture_of(rows: list[dict[str, str]]) -> tuple[RegimeMixture, dict[int, float]]:
    """The mixture fitted to a grid's 2024 rows with faces and a duration, and P(low) of each
    (by row index)."""
    fit = [(i, number(r["faces_seen"]), hours(r["duration"])) for i, r in enumerate(rows)
           if r["date"] >= "2024-01-01"]
    fit = [(i, f, h) for i, f, h in fit if math.isfinite(f) and f > 0 and math.isfinite(h) and h > 0]
    log_fph = np.log([f / h for _, f, h in fit])
    after = np.array([rows[i]["date"] >= SWITCH_DATE for i, _, _ in fit])
    mixture = fit_regime_mixture(log_fph, after)
    return mixture, dict(zip((i for i, _, _ in fit), mixture.p_low(log_fph, after), strict=True))


@cache
def records_mixture() -> RegimeMixture:
    """The mixture fitted to the Met's 2024 records: how any grid's rows get their regime."""
    with open(shipped.path(RECORDS_FILE), newline="", encoding="utf-8") as fh:
        return mixture_of(list(csv.DictReader(fh)))[0]


def low_count_probability(date: str, faces: float, duration_hours: float) -> float:
    """P(2024 low-count regime) of a deployment from its faces per hour (0 before 2024)."""
    if date < "2024-01-01":
        return 0.0
    m = records_mixture()
    after = date >= SWITCH_DATE
    if not (math.isfinite(faces) and faces > 0 and math.isfinite(duration_hours) and duration_hours > 0):
        return m.weight_low_after if after else m.weight_low_before
    return float(m.p_low(np.array([math.log(faces / duration_hours)]), np.array([after]))[0])


# -- rows ---------------------------------------------------------------------------------------

def most_probable_regime(date: str, p_low_count: float) -> str:
    """The most probable counting regime of a row of ``date`` with P(low count) ``p_low_count``."""
    if date < "2024-01-01":
        return REGIMES[0]
    return REGIMES[1] if p_low_count >= 0.5 else REGIMES[2]


@dataclass(frozen=True)
class Outcomes:
    """What a row records came of the deployment (confirmed and unconfirmed together)."""

    alerts: int
    true_alerts: int
    false_alerts: int
    arrests: int
    quirks: tuple[str, ...] = ()


@dataclass(frozen=True)
class GridRow:
    """One deployment of a grid: its settings, its labels, and its outcomes if published."""

    row: int                         # 1 = the first deployment under the header
    date: str
    site: str
    borough: str                     # the census name ("Kingston" is "Kingston upon Thames")
    ward_code: str
    duration_hours: float            # NaN: not published
    faces: float                     # "faces seen" as recorded; NaN: not published
    watchlist_size: int | None
    threshold: float | None
    ethnicity_shares: dict[str, float] | None     # the row's ward shares, if it gives them
    p_low_count: float               # P(2024 low-count regime | faces per hour); 0 before 2024
    period: str                      # the calibration period it falls in, or ""
    outcomes: Outcomes | None        # None: not published (or a forecast)
    skipped: str = ""                # why the row cannot be simulated, or ""
    quirks: tuple[str, ...] = field(default=())

    @property
    def regime(self) -> str:
        """The most probable counting regime."""
        return most_probable_regime(self.date, self.p_low_count)

    @property
    def regime_probabilities(self) -> dict[str, float]:
        """P(regime) over REGIMES (those with a chance only)."""
        if self.date < "2024-01-01":
            return {REGIMES[0]: 1.0}
        probs = {REGIMES[1]: self.p_low_count, REGIMES[2]: 1.0 - self.p_low_count}
        return {k: v for k, v in probs.items() if v > 0}

    def deployment(self) -> dict[str, Any]:
        """The row as a ``[[programme.deployments]]`` entry (``sim.config.Deployment``)."""
        entry: dict[str, Any] = {"site": self.site, "date": self.date, "duration_hours": self.duration_hours,
                                 "recorded_faces": self.faces}
        if self.borough:
            entry["borough"] = self.borough
        if self.ward_code:
            entry["ward_code"] = self.ward_code
        if self.ethnicity_shares is not None:
            entry["ethnicity_shares"] = dict(self.ethnicity_shares)
        if self.watchlist_size is not None:
            entry["watchlist_size"] = self.watchlist_size
        if self.threshold is not None:
            entry["threshold"] = self.threshold
        probs = self.regime_probabilities
        entry["counting_regime"] = next(iter(probs)) if len(probs) == 1 else probs
        if self.period:
            entry["period"] = self.period
        return entry


@dataclass(frozen=True)
class Grid:
    """A deployment grid read and checked: every row, those to simulate, and the file's digest."""

    path: Path
    rows: tuple[GridRow, ...]
    columns: tuple[str, ...]
    sha256: str

    @property
    def simulated(self) -> tuple[GridRow, ...]:
        return tuple(r for r in self.rows if not r.skipped)

    @property
    def has_outcomes(self) -> bool:
        return any(r.outcomes is not None for r in self.simulated)

    def deployments(self) -> list[dict[str, Any]]:
        return [r.deployment() for r in self.simulated]


def canonical_borough(name: str) -> str | None:
    """The census name of a London borough, also from its short name ("Kingston", "Richmond")."""
    if shipped.has_borough(name):
        return name
    folded = name.strip().casefold()
    for b in shipped.boroughs():
        if b.casefold() == folded or b.casefold().split(" upon ")[0] == folded:
            return b
    return None


class _Problems:
    def __init__(self, where: str):
        self.where, self.lines = where, []

    def add(self, row: int, column: str, text: str) -> None:
        self.lines.append(f"{self.where} row {row}, column {column}: {text}")


def _shown(v: str) -> str:
    return repr(v if len(v) <= 40 else v[:37] + "...")


def _checked_number(problems: _Problems, row: int, column: str, cell: str, *, low: float = 0.0,
                    high: float = 1e12, whole: bool = False, what: str = "a number >= 0") -> float:
    """The cell as a number in [low, high] (NaN if empty), else a problem (NaN)."""
    if cell == "":
        return float("nan")
    try:
        value = float(cell)
    except ValueError:
        problems.add(row, column, f"must be {what}, got {_shown(cell)}")
        return float("nan")
    if not math.isfinite(value) or not low <= value <= high or (whole and not value.is_integer()):
        problems.add(row, column, f"must be {what}, got {_shown(cell)}")
        return float("nan")
    return value


def read_grid_bytes(path: Path) -> bytes:
    """The bytes of a grid file: a regular file of at most ``MAX_GRID_BYTES``, else ConfigError."""
    try:
        if not path.is_file():
            raise ConfigError([f"{path}: no such grid file" if not path.exists()
                               else f"{path}: is not a regular file"])
        if path.stat().st_size > MAX_GRID_BYTES:
            raise ConfigError([f"{path}: a grid may be at most {MAX_GRID_BYTES / 2**20:g} MiB"])
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None


def read_grid(path: str | Path) -> Grid:
    """Read and check a deployment grid; ConfigError with one line per problem (row and column)."""
    path = Path(path)
    raw = read_grid_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a UTF-8 text (CSV) file"]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ConfigError([f"{path}: column {c}: required (a grid gives {', '.join(REQUIRED_COLUMNS)}), "
                           f"missing from the header" for c in missing])
    problems = _Problems(str(path))
    rows: list[GridRow] = []
    try:
        raw_rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except csv.Error as exc:
        raise ConfigError([f"{path}: not a readable CSV file: {exc}"]) from None
    if len(raw_rows) > MAX_ROWS:
        raise ConfigError([f"{path}: a grid may have at most {MAX_ROWS:,} rows, got {len(raw_rows):,}"])
    if not raw_rows:
        raise ConfigError([f"{path}: no deployments under the header"])
    for i, cells in enumerate(raw_rows, start=1):
        rows.append(_row(problems, i, {c: cells.get(c, "") for c in COLUMNS}, set(header)))
        if len(problems.lines) >= MAX_PROBLEMS:
            problems.lines.append(f"{path}: (stopped after {MAX_PROBLEMS} problems)")
            break
    if problems.lines:
        raise ConfigError(problems.lines)
    return Grid(path=path, rows=tuple(rows), columns=header, sha256=hashlib.sha256(raw).hexdigest())


def _row(problems: _Problems, i: int, c: dict[str, str], header: set[str]) -> GridRow:
    before = len(problems.lines)
    date = c["date"]
    try:
        if dt.date.fromisoformat(date).isoformat() != date:
            raise ValueError
    except ValueError:
        problems.add(i, "date", f"must be a date YYYY-MM-DD, got {_shown(date)}")
        date = ""
    site = c["deployment"] or f"row {i}"
    duration = float("nan")
    if c["duration"]:
        if not _DURATION.fullmatch(c["duration"]):
            problems.add(i, "duration", f"must be H:MM:SS or hours >= 0, got {_shown(c['duration'])}")
        else:
            duration = hours(c["duration"])
            minutes = c["duration"].split(":")[1:] if ":" in c["duration"] else []
            if any(int(m) >= 60 for m in minutes) or not 0.0 <= duration <= 24.0:
                problems.add(i, "duration",
                             f"must be between 0:00:00 and 24:00:00, got {_shown(c['duration'])}")
                duration = float("nan")
    faces = _checked_number(problems, i, "faces_seen", c["faces_seen"], high=1e9, what="a count >= 0")
    size = _checked_number(problems, i, "watchlist_size", c["watchlist_size"], low=1, high=1e8, whole=True,
                           what="a whole number of entries >= 1")
    threshold = _checked_number(problems, i, "threshold", c["threshold"], high=1.0,
                                what="a threshold between 0 and 1")
    ward = c["ward_code"]
    if ward and not shipped.has_ward(ward):
        problems.add(i, "ward_code", f"must be a London ward code of the 2021 census (e.g. 'E05000026'), "
                                     f"got {_shown(ward)}")
    borough = ""
    if c["borough"]:
        borough = canonical_borough(c["borough"]) or ""
        if not borough:
            problems.add(i, "borough", f"must be a London borough, got {_shown(c['borough'])}")
    shares = {e: _checked_number(problems, i, col, c[col], high=1.0, what="a share between 0 and 1")
              for e, col in SHARE_COLUMNS.items()}
    ethnicity: dict[str, float] | None = None
    if all(math.isfinite(v) for v in shares.values()):
        minority = sum(shares.values())
        if minority > 1.0 + 1e-9:
            problems.add(i, "ward_other_share",
                         f"the four ward shares must sum to at most 1, got {minority:.4g}")
        else:
            ethnicity = {e: (max(0.0, 1.0 - minority) if e == "white" else shares[e]) for e in ETHNICITIES}
    counts = {col: _checked_number(problems, i, col, c[col], high=1e9, whole=True, what="a count >= 0")
              for col in OUTCOME_COLUMNS if col in header}
    if len(problems.lines) > before:
        return GridRow(i, date, site, borough, ward, float("nan"), float("nan"), None, None, None, 0.0, "",
                       None, skipped="unreadable")
    quirks: list[str] = []
    outcomes = None
    if any(c[k] for k in PUBLISHED_WITH if k in header):
        def n(col: str) -> int:
            v = counts.get(col, float("nan"))
            return int(v) if math.isfinite(v) else 0

        true = n("true_alerts_confirmed") + n("true_alerts_unconfirmed")
        false = n("false_alerts_confirmed") + n("false_alerts_unconfirmed")
        total = counts.get("alerts_total", float("nan"))
        if math.isfinite(total) and int(total) != true + false:
            quirks.append(f"alerts_total {int(total)} != true {true} + false {false}: total kept")
            if int(total) < false:
                problems.add(i, "alerts_total",
                             f"must be at least the false alerts ({false}), got {int(total)}")
            true = int(total) - false
        outcomes = Outcomes(true + false, true, false, n("arrests"), tuple(quirks))
    elif any(c[k] for k in ("arrests", "no_action") if k in header):
        quirks.append("outcomes published without alert figures")
    skipped = ""
    if not math.isfinite(faces):
        skipped = "no faces_seen published"
    elif not math.isfinite(duration) or duration <= 0:
        skipped = "no duration published"
    t = threshold if math.isfinite(threshold) else None
    return GridRow(row=i, date=date, site=site, borough=borough, ward_code=ward, duration_hours=duration,
                   faces=faces, watchlist_size=int(size) if math.isfinite(size) else None, threshold=t,
                   ethnicity_shares=ethnicity, p_low_count=low_count_probability(date, faces, duration),
                   period=period_of(date, threshold), outcomes=outcomes, skipped=skipped,
                   quirks=tuple(quirks))


def resolve_path(name: str, base_dir: Path | str | None) -> Path:
    """A grid named in an experiment: ``lfrsim:NAME`` is a grid shipped with the package
    (``lfrsim:met_lfr_deployments_2020_2024.csv``, wherever the experiment file lives), any other
    name a path relative to the experiment file's folder. An unknown shipped name is a
    ``ConfigError`` listing the shipped grids."""
    try:
        return shipped.resolve(name, base_dir, shipped_grids(), "grid")
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None


@cache
def shipped_grids() -> list[str]:
    """The shipped data files in a grid's column format (those with every required column)."""
    grids = []
    for name in shipped.names(".csv"):
        with open(shipped.path(name), newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        if set(REQUIRED_COLUMNS) <= {c.strip() for c in header}:
            grids.append(name)
    return grids
